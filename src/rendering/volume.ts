/**
 * Volume rendering as the reference (learnit) does it, quirks included (docs/conventions.md §9.2, §9.3, §13.12):
 * last δ = 1e-3, unnormalised directions, transmittance Π min(1 − α + 1e-10, 1), white background.
 */
import { numpy as np, nn } from "../backend/jax.js";
import type { Rng } from "../util/rng.js";

/** Sample depths `linspace(near, far, P)` (float32). */
export function sampleDepths(near: number, far: number, nSamples: number): Float32Array {
  const z = new Float32Array(nSamples);
  for (let k = 0; k < nSamples; k++)
    z[k] = nSamples === 1 ? near : near + ((far - near) * k) / (nSamples - 1);
  return z;
}

/**
 * Training-time stratified jitter as the reference: z_k + U[0, 1)·(far − near)/(P − 1), one
 * (n_rays, P) draw shared by every batch element (so the last sample may pass `far`).
 */
export function jitterDepths(
  near: number,
  far: number,
  nSamples: number,
  nRays: number,
  rng: Rng,
): Float32Array {
  const base = sampleDepths(near, far, nSamples);
  const step = nSamples > 1 ? (far - near) / (nSamples - 1) : 0;
  const z = new Float32Array(nRays * nSamples);
  for (let r = 0; r < nRays; r++)
    for (let k = 0; k < nSamples; k++) z[r * nSamples + k] = base[k]! + rng.uniform() * step;
  return z;
}

/**
 * Points along rays: o (B, R, 3), d (B, R, 3), z (R, P) or (P) → (B, R, P, 3) = o + d·z.
 */
export function rayPoints(o: np.Array, d: np.Array, z: np.Array): np.Array {
  const [b, r] = o.shape as [number, number];
  const zz = z.ndim === 1 ? z.reshape([1, 1, z.shape[0]!, 1]) : z.reshape([1, r, z.shape[1]!, 1]);
  return o.reshape([b, r, 1, 3]).add(d.reshape([b, r, 1, 3]).mul(zz));
}

/** Output of {@link composite}. */
export interface Composite {
  /** Rendered colour (B, R, 3), white background. */
  rgb: np.Array;
  /** Per-sample weights w_k (B, R, P). */
  weights: np.Array;
}

/**
 * raw (B, R, P, 4) = [r, g, b, σ] before activations; z (R, P) or (P) sample depths.
 * rgb = sigmoid, σ = relu, δ_k = z_{k+1} − z_k (δ_{P−1} = 1e-3), α = 1 − exp(−σδ),
 * T_k = Π_{j<k} min(1 − α_j + 1e-10, 1), w = αT, colour = Σ w·rgb + (1 − Σ w);
 * log T_k is computed as Σ_{j<k} max(−σ_j δ_j, log 1e-10), the same up to float32 rounding.
 */
export function composite(raw: np.Array, z: np.Array): Composite {
  const [b, r, nS] = raw.shape as [number, number, number, number];
  const [rgbRaw, sigmaRaw] = np.split(raw, [3], -1) as [np.Array, np.Array];
  const rgb = nn.sigmoid(rgbRaw);
  const sigma = nn.relu(sigmaRaw.reshape([b, r, nS]));
  const z2 = z.ndim === 1 ? z.reshape([1, nS]) : z;
  const [head, tail] = [z2.ref.slice([], [1, nS]), z2.slice([], [0, nS - 1])];
  const delta = np.concatenate([head.sub(tail), np.full([z2.shape[0]!, 1], 1e-3)], -1); // (1|R, P)
  const depth = sigma.mul(delta);
  // α = −expm1(−σδ): exact for small σδ, where 1 − exp(−σδ) would cancel.
  const alpha = np.expm1(depth.ref.neg()).neg();
  // The exclusive cumulative product of (1 − α_j) + 1e-10 as a cumulative sum of logs. Since
  // 1 − α = exp(−σδ), its log is −σδ, floored where the 1e-10 takes over; computing it as
  // log((1 − α) + 1e-10) would feed arguments just below 1 to jax-js's log, whose error there
  // (up to 1.3e-5 absolute) accumulated along the ray to 1e-4 in the loss
  // (docs/golden-tolerances.md, "NeRF loss").
  const logKeep = np.clip(depth.neg(), Math.log(1e-10), 0);
  const transmittance = np.exp(np.cumsum(logKeep.ref, -1).sub(logKeep));
  const weights = alpha.mul(transmittance);
  const color = np.sum(weights.ref.reshape([b, r, nS, 1]).mul(rgb), 2);
  const acc = np.sum(weights.ref, -1, { keepdims: true });
  return { rgb: color.add(acc.neg().add(1)), weights };
}
