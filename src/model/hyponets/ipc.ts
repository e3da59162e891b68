/**
 * IPC's hyponet: an MLP with one layer generated per instance, composed from learned patterns by
 * the weight tokens, and the other layers shared (docs/conventions.md §6, §7).
 */
import { z } from "zod";
import { numpy as np, nn } from "../../backend/jax.js";
import { type ParamSpec, type Params, param, uniformInit } from "../layers.js";
import {
  type ConfigIssue,
  type GeneratedParam,
  type HeadSettings,
  type HypoParams,
  type Hyponet,
  batchOf,
  hyponetCommon,
  rTokensNeedAnr,
} from "./hyponet.js";
import {
  baseKey,
  layerInputs,
  layerName,
  mlpEncodingLayout,
  mlpGenerated,
  mlpLayerShapes,
  mlpLayers,
  mlpLayersGrid,
  withOutBias,
  withBiasRow,
} from "./mlp.js";

/** IPC-style MLP: one generated layer, the others shared. */
export const HypoMlpIpcArgs = z.strictObject({
  ...hyponetCommon,
  /** Index of the layer generated per instance. */
  modulated_layer_id: z.number().int().nonnegative().default(1),
  /** Optional output activation (the reference's `activation` argument); hidden layers always use relu. */
  activation: z.enum(["sigmoid", "tanh"]).nullable().default(null),
});
export type HypoMlpIpcArgs = z.infer<typeof HypoMlpIpcArgs>;

/** The `hyponet` block of a model config for IPC. */
export const HypoMlpIpcConfig = z.strictObject({ name: z.literal("HypoMlpIPC"), args: HypoMlpIpcArgs });

/** What an IPC config must satisfy beyond its field types. */
export function hypoMlpIpcConfigIssues(a: HypoMlpIpcArgs, head: HeadSettings): ConfigIssue[] {
  if (head.direct_wtoken) return [rTokensNeedAnr("HypoMlpIPC")];
  const issues: ConfigIssue[] = [];
  if (head.grouping_mode !== "mlp_mod")
    issues.push({ path: ["grouping_mode"], message: 'HypoMlpIPC needs grouping_mode "mlp_mod"' });
  if (a.modulated_layer_id >= a.depth) {
    issues.push({
      path: ["hyponet", "args", "modulated_layer_id"],
      message: `modulated_layer_id ${a.modulated_layer_id} must be < depth ${a.depth}`,
    });
  }
  return issues;
}

/** IPC as the model uses it: the pattern-composer head generates one layer, the others are shared. */
export function hypoMlpIpc(a: HypoMlpIpcArgs, nGroups: number): Hyponet {
  return {
    encoding: mlpEncodingLayout(a),
    generated: mlpGenerated(mlpLayerShapes(a), [a.modulated_layer_id], nGroups),
    params: ipcParams(a),
    headParams: (g) => [
      { key: baseKey(g), shape: [g.tokens + 1, g.shape[1]], init: uniformInit(g.tokens + 1) },
    ],
    postfcWidth: layerInputs,
    head: patternComposerHead,
    forward: (P, x, generated) => ipcHyponet(P, a, x, generated),
    gridForward: (P, rows, cols, generated) => ({ signal: ipcGridHyponet(P, a, rows, cols, generated) }),
  };
}

// ---------------------------------------------------------------------------------------------
// The head: IPC's pattern composer

/** W = x @ base[:g] (the weight tokens mix g learned patterns); the bias row base[g] is shared. */
function patternComposerHead(P: Params, post: np.Array, g: GeneratedParam): np.Array {
  const x = post.transpose([0, 2, 1]); // (B, in, groups)
  const [patterns, bias] = np.split(param(P, baseKey(g)), [g.tokens], 0) as [np.Array, np.Array];
  return withBiasRow(np.matmul(x, patterns), bias);
}

// ---------------------------------------------------------------------------------------------
// The hyponet

/** Shared layer i (every layer but the modulated one). */
const sharedKey = (i: number) => `hyponet.global_params.${layerName(i)}`;

function ipcParams(a: HypoMlpIpcArgs): ParamSpec[] {
  return mlpLayerShapes(a).flatMap(([rows, cols], i) =>
    i === a.modulated_layer_id
      ? []
      : [{ key: sharedKey(i), shape: [rows, cols], init: uniformInit(rows - 1) }],
  );
}

/**
 * IPC's MLP hyponet: layer `modulated_layer_id` is generated (consumed), the others are the shared
 * `hyponet.global_params.wb_i`; ReLU between layers, then out_bias and the optional output activation.
 */
export function ipcHyponet(P: Params, a: HypoMlpIpcArgs, x: np.Array, generated: HypoParams): np.Array {
  return ipcOutput(a, mlpLayers(x, a.depth, ipcLayer(P, a, generated)));
}

/** IPC on a grid (Hyponet.gridForward): its first layer per row and per column, as mlpLayersGrid. */
function ipcGridHyponet(
  P: Params,
  a: HypoMlpIpcArgs,
  rows: np.Array,
  cols: np.Array,
  generated: HypoParams,
): np.Array {
  return ipcOutput(a, mlpLayersGrid(rows, cols, batchOf(generated), a.depth, ipcLayer(P, a, generated)));
}

/** Layer i's wb: the generated one, or a shared one. */
const ipcLayer = (P: Params, a: HypoMlpIpcArgs, generated: HypoParams) => (i: number) =>
  i === a.modulated_layer_id ? generated[layerName(i)]! : param(P, sharedKey(i));

/** out_bias, then the output activation. */
function ipcOutput(a: HypoMlpIpcArgs, x: np.Array): np.Array {
  x = withOutBias(a, x);
  switch (a.activation) {
    case "sigmoid":
      return nn.sigmoid(x);
    case "tanh":
      return np.tanh(x);
    case null:
      return x;
  }
}
