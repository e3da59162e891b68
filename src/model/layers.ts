/**
 * The building blocks of the model: parameter records, the declarations of a layer's parameters
 * (key, shape, initialisation) and the layers that read them. A layer's parameter declaration sits
 * beside its forward, so the state_dict key suffixes are spelled once.
 *
 * Ownership (jax-js arrays are reference-counted): every function here BORROWS `P` (it takes
 * `.ref`s of what it reads) and CONSUMES its array arguments.
 */
import { numpy as np, nn, lax } from "../backend/jax.js";

/** Model parameters by reference state_dict key. */
export type Params = Record<string, np.Array>;
/** Optional sink for named intermediates (inspection and golden tests; eager mode only). */
export type Taps = Map<string, np.Array>;

/** Record `x` under `name` (the first record wins, e.g. the first chunk of a chunked render). */
export function tap(taps: Taps | undefined, name: string, x: np.Array): np.Array {
  if (taps && !taps.has(name)) taps.set(name, x.ref);
  return x;
}

/** A borrowed reference to parameter `key` (throws with the key name if absent). */
export function param(P: Params, key: string): np.Array {
  const a = P[key];
  // Weights are checked against the config's parameter list when they are read, so a key missing
  // here is a bug in the model code, not a bad file.
  if (!a) throw new Error(`missing parameter "${key}"`);
  return a.ref;
}

// ---------------------------------------------------------------------------------------------
// Parameter declarations (docs/conventions.md §10)

/** How a parameter is initialised (docs/conventions.md §10; same distributions as torch, not bit-identical). */
export type Init =
  { kind: "uniform"; bound: number } | { kind: "normal" } | { kind: "ones" } | { kind: "zeros" };

/** One parameter: its state_dict key, shape and initialiser. */
export interface ParamSpec {
  key: string;
  shape: number[];
  init: Init;
}

/** torch's default for a Linear(in → out) and for the hyponet bases: U(±1/√in). */
export function uniformInit(inDim: number): Init {
  return { kind: "uniform", bound: 1 / Math.sqrt(inDim) };
}

// ---------------------------------------------------------------------------------------------
// Layers

/** Parameters of `linear(P, key, …)`: `key.weight` (out, in) and `key.bias` (out), U(±1/√in). */
export function linearParams(key: string, inDim: number, outDim: number, bias = true): ParamSpec[] {
  const init = uniformInit(inDim);
  const weight: ParamSpec = { key: `${key}.weight`, shape: [outDim, inDim], init };
  return bias ? [weight, { key: `${key}.bias`, shape: [outDim], init }] : [weight];
}

/** y = x Wᵀ + b (PyTorch layout: W is (out, in)). */
export function linear(P: Params, key: string, x: np.Array, bias = true): np.Array {
  const y = np.matmul(x, param(P, `${key}.weight`).transpose());
  return bias ? y.add(param(P, `${key}.bias`)) : y;
}

/** Parameters of `layerNorm(P, key, …)`: weight ones, bias zeros. */
export function layerNormParams(key: string, dim: number): ParamSpec[] {
  return [
    { key: `${key}.weight`, shape: [dim], init: { kind: "ones" } },
    { key: `${key}.bias`, shape: [dim], init: { kind: "zeros" } },
  ];
}

/** LayerNorm over the last axis, eps 1e-5, biased variance (as torch). */
export function layerNorm(P: Params, key: string, x: np.Array): np.Array {
  const axis = x.ndim - 1;
  const mu = np.mean(x.ref, axis, { keepdims: true });
  const xc = x.sub(mu);
  const variance = np.mean(np.square(xc.ref), axis, { keepdims: true });
  return xc
    .div(np.sqrt(variance.add(1e-5)))
    .mul(param(P, `${key}.weight`))
    .add(param(P, `${key}.bias`));
}

/** Exact GELU: x·Φ(x) with the error function (torch's default, not the tanh approximation). */
export function gelu(x: np.Array): np.Array {
  return x.ref.mul(0.5).mul(lax.erf(x.mul(Math.SQRT1_2)).add(1));
}

/** (B, N, h·d) → (B, h, N, d): feature f = head·d + j ('b n (h d) -> b h n d'). */
export function splitHeads(x: np.Array, nHead: number): np.Array {
  const [b, n, f] = x.shape as [number, number, number];
  return x.reshape([b, n, nHead, f / nHead]).transpose([0, 2, 1, 3]);
}

/** (B, h, N, d) → (B, N, h·d), the inverse of `splitHeads`. */
export function mergeHeads(x: np.Array): np.Array {
  const [b, h, n, d] = x.shape as [number, number, number, number];
  return x.transpose([0, 2, 1, 3]).reshape([b, n, h * d]);
}

/** Sizes of a transformer layer. */
export interface AttentionSizes {
  dim: number;
  n_head: number;
  head_dim: number;
}

/** Parameters of `attention(P, key, …)`: to_q and the fused to_kv without bias, to_out.0 with. */
export function attentionParams(key: string, a: AttentionSizes): ParamSpec[] {
  const inner = a.n_head * a.head_dim;
  return [
    ...linearParams(`${key}.to_q`, a.dim, inner, false),
    ...linearParams(`${key}.to_kv`, a.dim, 2 * inner, false),
    ...linearParams(`${key}.to_out.0`, inner, a.dim),
  ];
}

/** Multi-head attention of the transformer: q from `x` (no bias), fused [k|v] from `ctx` (no bias). */
export function attention(
  P: Params,
  key: string,
  x: np.Array,
  ctx: np.Array,
  nHead: number,
  headDim: number,
): np.Array {
  const inner = nHead * headDim;
  const q = splitHeads(linear(P, `${key}.to_q`, x, false), nHead);
  const [k, v] = np.split(linear(P, `${key}.to_kv`, ctx, false), [inner], -1) as [np.Array, np.Array];
  const logits = np.matmul(q, splitHeads(k, nHead).transpose([0, 1, 3, 2])).mul(headDim ** -0.5);
  const out = np.matmul(nn.softmax(logits, -1), splitHeads(v, nHead));
  return linear(P, `${key}.to_out.0`, mergeHeads(out));
}

/** Parameters of `feedForward(P, key, …)`: net.0 (dim → ff_dim) and net.3 (ff_dim → dim). */
export function feedForwardParams(key: string, a: { dim: number; ff_dim: number }): ParamSpec[] {
  return [...linearParams(`${key}.net.0`, a.dim, a.ff_dim), ...linearParams(`${key}.net.3`, a.ff_dim, a.dim)];
}

/** Linear → exact GELU → Linear (keys net.0, net.3). */
export function feedForward(P: Params, key: string, x: np.Array): np.Array {
  return linear(P, `${key}.net.3`, gelu(linear(P, `${key}.net.0`, x)));
}
