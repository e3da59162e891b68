/**
 * The parameter list of a model (reference state_dict names, shapes, initialisation) and the
 * conversions between host tensors and device parameters.
 */
import { numpy as np, tree } from "../backend/jax.js";
import { readF32 } from "../backend/index.js";
import type { HyperNetworkConfig } from "./config.js";
import type { ParamSpec } from "./layers.js";
import {
  decoderParams,
  encoderParams,
  hyponetOf,
  postfcParams,
  tokenizerParams,
  wtokensParams,
  type Params,
} from "./model.js";
import type { HostTensor } from "../util/host.js";
import { Rng } from "../util/rng.js";
import { numel } from "../util/shape.js";

export type { Init, ParamSpec } from "./layers.js";

/**
 * Every parameter of the model, in the reference's state_dict order (docs/conventions.md §10.3).
 * Each part declares its own parameters beside the forward that reads them (model.ts, layers.ts,
 * hyponets/); this is only their order.
 */
export function paramSpecs(cfg: HyperNetworkConfig): ParamSpec[] {
  const kind = hyponetOf(cfg);
  return [
    ...wtokensParams(cfg, kind),
    ...kind.params,
    ...tokenizerParams(cfg),
    ...encoderParams(cfg.tinr_enc.args),
    ...decoderParams(cfg.tinr_dec.args),
    // Bases then post-projections, as the reference registers them.
    ...kind.generated.flatMap((g) => kind.headParams(g)),
    ...postfcParams(cfg, kind),
  ];
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

/** Release every array of a parameter tree (jax-js's tree.dispose, typed for parameter records). */
export function disposeParams(P: Record<string, np.Array>): void {
  tree.dispose(P);
}

/** A second reference to every array, for passing a tree that the callee consumes (jax-js's tree.ref). */
export function refParams<T extends Record<string, np.Array>>(P: T): T {
  return tree.ref(P);
}

/** Total number of scalars in the model. */
export function countParams(cfg: HyperNetworkConfig): number {
  return paramSpecs(cfg).reduce((s, p) => s + numel(p.shape), 0);
}
