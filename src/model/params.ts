/**
 * The parameter list of a model (reference state_dict names, shapes, initialisation) and the
 * conversions between host tensors and device parameters.
 */
import { numpy as np } from "../backend/jax.js";
import { readF32 } from "../backend/index.js";
import type { HyperNetworkConfig } from "./config.js";
import { generatedParams, mlpLayerShapes, patchCount, type Params } from "./model.js";
import { sizeHW } from "./config.js";
import type { HostTensor } from "../util/host.js";
import { Rng } from "../util/rng.js";
import { numel } from "../util/shape.js";

/** How a parameter is initialised (docs/conventions.md §10; same distributions as torch, not bit-identical). */
export type Init =
  { kind: "uniform"; bound: number } | { kind: "normal" } | { kind: "ones" } | { kind: "zeros" };

/** One parameter: its state_dict key, shape and initialiser. */
export interface ParamSpec {
  key: string;
  shape: number[];
  init: Init;
}

/** Every parameter of the model, in the reference's state_dict order. */
export function paramSpecs(cfg: HyperNetworkConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const add = (key: string, shape: number[], init: Init) => specs.push({ key, shape, init });
  const linear = (key: string, inDim: number, outDim: number, bias = true) => {
    const bound = 1 / Math.sqrt(inDim);
    add(`${key}.weight`, [outDim, inDim], { kind: "uniform", bound });
    if (bias) add(`${key}.bias`, [outDim], { kind: "uniform", bound });
  };
  const norm = (key: string, d: number) => {
    add(`${key}.weight`, [d], { kind: "ones" });
    add(`${key}.bias`, [d], { kind: "zeros" });
  };
  const dim = cfg.tinr_dec.args.dim;
  const gens = generatedParams(cfg);
  add("wtokens", [gens.reduce((s, g) => s + g.tokens, 0), dim], { kind: "normal" });

  const h = cfg.hyponet;
  if (h.name === "ANR") {
    const inner = h.args.n_head * h.args.head_dim;
    for (const x of ["q", "k", "v"]) linear(`hyponet.attn.to_${x}`, h.args.hidden_dim, inner, false);
    linear("hyponet.attn.to_out", inner, h.args.hidden_dim);
    for (let i = 0; i < h.args.depth - 1; i++)
      linear(`hyponet.mlp.${i}.0`, h.args.hidden_dim, h.args.hidden_dim);
    linear(`hyponet.mlp.${h.args.depth - 1}`, h.args.hidden_dim, h.args.out_dim);
  } else if (h.name === "HypoMlpIPC") {
    mlpLayerShapes(cfg).forEach(([rows, cols], i) => {
      if (i !== h.args.modulated_layer_id) {
        add(`hyponet.global_params.wb${i}`, [rows, cols], {
          kind: "uniform",
          bound: 1 / Math.sqrt(rows - 1),
        });
      }
    });
  }

  const t = cfg.tokenizer;
  const [th, tw] = sizeHW(t.args.input_size);
  const p = t.args.patch_size;
  if (t.name === "ImgTokenizer") {
    add("tokenizer.posemb", [patchCount(th, tw, p, t.args.padding), dim], { kind: "normal" });
    linear("tokenizer.prefc", t.args.img_channels * p * p, dim);
  } else {
    linear("tokenizer.prefc", 9 * p * p, dim);
  }

  const block = (
    key: string,
    a: { dim: number; n_head: number; head_dim: number; ff_dim: number },
    kind: "attn" | "ff",
  ) => {
    norm(`${key}.norm`, a.dim);
    if (kind === "attn") {
      const inner = a.n_head * a.head_dim;
      linear(`${key}.fn.to_q`, a.dim, inner, false);
      linear(`${key}.fn.to_kv`, a.dim, 2 * inner, false);
      linear(`${key}.fn.to_out.0`, inner, a.dim);
    } else {
      linear(`${key}.fn.net.0`, a.dim, a.ff_dim);
      linear(`${key}.fn.net.3`, a.ff_dim, a.dim);
    }
  };
  const enc = cfg.tinr_enc.args;
  for (let i = 0; i < enc.depth; i++) {
    block(`tinr_enc.layers.${i}.0`, enc, "attn");
    block(`tinr_enc.layers.${i}.1`, enc, "ff");
  }
  const dec = cfg.tinr_dec.args;
  for (let i = 0; i < dec.depth; i++) {
    block(`tinr_dec.hypobuilder.${i}.0`, dec, "attn");
    block(`tinr_dec.hypobuilder.${i}.1`, dec, "attn");
    block(`tinr_dec.hypobuilder.${i}.2`, dec, "ff");
  }

  // Bases then post-projections, as the reference registers them.
  for (const g of gens) {
    const [rows, cols] = g.shape;
    if (cfg.direct_wtoken) {
      add("base_params.dtoken_w", [rows, cols], { kind: "ones" });
      add("base_params.dtoken_b", [rows, cols], { kind: "normal" });
    } else if (cfg.grouping_mode === "mlp") {
      add(`base_params.${g.name}`, [rows, cols], { kind: "uniform", bound: 1 / Math.sqrt(rows - 1) });
    } else {
      add(`base_params.${g.name}`, [g.tokens + 1, cols], {
        kind: "uniform",
        bound: 1 / Math.sqrt(g.tokens + 1),
      });
    }
  }
  for (const g of gens) {
    norm(`wtoken_postfc.${g.name}.0`, dim);
    linear(`wtoken_postfc.${g.name}.1`, dim, cfg.direct_wtoken ? g.shape[1] : g.shape[0] - 1);
  }
  if (cfg.grouping_mode === "mlp" && !cfg.direct_wtoken) {
    for (const g of gens) {
      if (g.shape[1] % g.tokens !== 0) {
        throw new Error(
          `n_groups ${cfg.n_groups}: layer ${g.name} has ${g.shape[1]} outputs, not a multiple of ${g.tokens} groups`,
        );
      }
    }
  }
  return specs;
}

export { numel };

/** Fresh host tensors with the reference's initial distributions. */
export function initHostParams(cfg: HyperNetworkConfig, seed: number): Map<string, HostTensor> {
  const rng = new Rng(seed);
  const out = new Map<string, HostTensor>();
  for (const s of paramSpecs(cfg)) {
    const n = numel(s.shape);
    let data: Float32Array;
    switch (s.init.kind) {
      case "uniform":
        data = rng.fill(n, { lo: -s.init.bound, hi: s.init.bound });
        break;
      case "normal":
        data = rng.fill(n, { normal: true });
        break;
      case "ones":
        data = new Float32Array(n).fill(1);
        break;
      case "zeros":
        data = new Float32Array(n);
        break;
    }
    out.set(s.key, { shape: s.shape, data });
  }
  return out;
}

/** Host tensors → device parameters. */
export function toDevice(host: Map<string, HostTensor>): Params {
  const P: Params = {};
  for (const [k, t] of host) P[k] = np.array(t.data, { shape: t.shape });
  return P;
}

/** Device parameters → host tensors (borrows `P`). */
export async function toHost(P: Params): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [k, a] of Object.entries(P)) {
    out.set(k, { shape: a.shape, data: await readF32(a.ref) });
  }
  return out;
}

/** Release every array of a parameter tree. */
export function disposeParams(P: Record<string, np.Array>): void {
  for (const a of Object.values(P)) a.dispose();
}

/** A second reference to every array (for passing a tree that the callee consumes). */
export function refParams<T extends Record<string, np.Array>>(P: T): T {
  return Object.fromEntries(Object.entries(P).map(([k, v]) => [k, v.ref])) as T;
}

/** Total number of scalars in the model. */
export function countParams(cfg: HyperNetworkConfig): number {
  return paramSpecs(cfg).reduce((s, p) => s + numel(p.shape), 0);
}
