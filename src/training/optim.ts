/**
 * Adam with PyTorch's semantics and operation order, global gradient-norm clipping as
 * `clip_grad_norm_`, and the EMA rule of ema-pytorch 0.4.2 (docs/conventions.md §11).
 * Pure functions over parameter records; they consume their array arguments.
 */
import { numpy as np } from "../backend/jax.js";
import type { Params } from "../model/model.js";

/** Adam hyper-parameters. */
export interface AdamArgs {
  /** Learning rate. */
  lr: number;
  /** First-moment decay (β1). */
  beta1: number;
  /** Second-moment decay (β2); the reference trainer uses 0.99. */
  beta2: number;
  /** Added to the denominator; torch's default 1e-8. */
  eps: number;
}

/** The reference trainer's optimiser: lr 5e-5, betas (0.9, 0.99), eps 1e-8. */
export const REFERENCE_ADAM: AdamArgs = { lr: 5e-5, beta1: 0.9, beta2: 0.99, eps: 1e-8 };

/** Optimiser state: moments and the number of steps taken. */
export interface AdamState {
  step: number;
  m: Params;
  v: Params;
}

export function adamInit(P: Params): AdamState {
  const zeros = (): Params => Object.fromEntries(Object.entries(P).map(([k, a]) => [k, np.zerosLike(a.ref)]));
  return { step: 0, m: zeros(), v: zeros() };
}

/**
 * Step-dependent scalars of update number `t` (1-based), as a (2,) array so that a jitted step
 * does not recompile: [lr / (1 − β1^t), sqrt(1 − β2^t)].
 */
export function adamScalars(args: AdamArgs, t: number): np.Array {
  return np.array([args.lr / (1 - args.beta1 ** t), Math.sqrt(1 - args.beta2 ** t)]);
}

/**
 * One Adam update, in torch's order: m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
 * p −= (lr/bc1) · m / (sqrt(v)/sqrt(bc2) + eps). `scalars` from {@link adamScalars}.
 */
export function adamUpdate(
  P: Params,
  grads: Params,
  m: Params,
  v: Params,
  scalars: np.Array,
  args: AdamArgs,
): { params: Params; m: Params; v: Params } {
  const [stepSize, bc2Sqrt] = np.split(scalars, 2) as [np.Array, np.Array];
  const out = { params: {} as Params, m: {} as Params, v: {} as Params };
  for (const k of Object.keys(P)) {
    const g = grads[k]!;
    const mk = m[k]!.mul(args.beta1).add(g.ref.mul(1 - args.beta1));
    const vk = v[k]!.mul(args.beta2).add(g.ref.mul(g).mul(1 - args.beta2));
    const denom = np.sqrt(vk.ref).div(bc2Sqrt.ref).add(args.eps);
    out.params[k] = P[k]!.sub(mk.ref.div(denom).mul(stepSize.ref));
    out.m[k] = mk;
    out.v[k] = vk;
  }
  stepSize.dispose();
  bc2Sqrt.dispose();
  return out;
}

/** Global L2 norm of all gradients (borrows `grads`). */
export function globalNorm(grads: Params): np.Array {
  const sq = Object.values(grads).map((g) => np.sum(np.square(g.ref)));
  return np.sqrt(sq.reduce((a, b) => a.add(b)));
}

/**
 * clip_grad_norm_(max_norm): g · min(1, max_norm / (‖g‖ + 1e-6)). Returns the clipped
 * gradients and the norm before clipping.
 */
export function clipByGlobalNorm(grads: Params, maxNorm: number): { grads: Params; norm: np.Array } {
  const norm = globalNorm(grads);
  const coef = np.minimum(np.reciprocal(norm.ref.add(1e-6)).mul(maxNorm), 1);
  const out: Params = {};
  for (const [k, g] of Object.entries(grads)) out[k] = g.mul(coef.ref);
  coef.dispose();
  return { grads: out, norm };
}

/** EMA settings (ema-pytorch 0.4.2 defaults, as the reference trainer). */
export interface EmaArgs {
  /** Maximum decay. */
  beta: number;
  /** Act on every n-th call. */
  updateEvery: number;
  /** Copy the online weights up to this call count. */
  updateAfterStep: number;
  /** Warm-up: decay = 1 − (1 + epoch/invGamma)^−power. */
  invGamma: number;
  power: number;
}

export const REFERENCE_EMA: EmaArgs = {
  beta: 0.995,
  updateEvery: 10,
  updateAfterStep: 100,
  invGamma: 1,
  power: 2 / 3,
};

/**
 * What the `calls`-th call of `update()` (0-based) does: nothing, copy the online weights, or
 * lerp towards them with weight 1 − decay.
 */
export function emaAction(
  args: EmaArgs,
  calls: number,
): { kind: "skip" } | { kind: "copy" } | { kind: "lerp"; decay: number } {
  if (calls % args.updateEvery !== 0) return { kind: "skip" };
  if (calls <= args.updateAfterStep) return { kind: "copy" };
  const epoch = Math.max(0, calls + 1 - args.updateAfterStep - 1);
  if (epoch <= 0) return { kind: "lerp", decay: 0 };
  const value = 1 - (1 + epoch / args.invGamma) ** -args.power;
  return { kind: "lerp", decay: Math.min(args.beta, Math.max(0, value)) };
}

/** Apply one EMA call: consumes `ema`, borrows `P`. */
export function emaUpdate(ema: Params, P: Params, args: EmaArgs, calls: number): Params {
  const act = emaAction(args, calls);
  if (act.kind === "skip") return ema;
  const out: Params = {};
  for (const [k, e] of Object.entries(ema)) {
    const theta = P[k]!.ref;
    if (act.kind === "copy") {
      e.dispose();
      out[k] = theta;
    } else {
      out[k] = e.ref.add(theta.sub(e).mul(1 - act.decay));
    }
  }
  return out;
}
