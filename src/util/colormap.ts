/**
 * False colour for scalar fields: values → RGB through viridis (perceptually uniform, readable in
 * grey and by colour-blind readers), over an explicit range so that several panels share a scale.
 */
import type { HostImage } from "./host.js";

// Viridis as a degree-6 polynomial per channel (max error < 0.01 against matplotlib's table).
const C: [number, number, number][] = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

/** Viridis at t ∈ [0, 1] (clamped), as [r, g, b] in [0, 1]. */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  const out: [number, number, number] = [0, 0, 0];
  for (let ch = 0; ch < 3; ch++) {
    let v = 0;
    for (let k = C.length - 1; k >= 0; k--) v = v * x + C[k]![ch]!;
    out[ch] = Math.min(1, Math.max(0, v));
  }
  return out;
}

/** Finite minimum and maximum of the values (NaN/±∞ ignored); [0, 1] if there are none. */
export function finiteRange(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/** Channel `c` of a (C, H, W) field as an RGB image, `range` mapped onto the colour map; NaN is grey. */
export function falseColour(field: HostImage, c = 0, range = finiteRange(channelOf(field, c))): HostImage {
  const { h, w } = field;
  const n = h * w;
  const src = channelOf(field, c);
  const data = new Float32Array(3 * n);
  const span = range[1] - range[0] || 1;
  for (let i = 0; i < n; i++) {
    const v = src[i]!;
    const rgb = Number.isFinite(v) ? viridis((v - range[0]) / span) : ([0.5, 0.5, 0.5] as const);
    for (let k = 0; k < 3; k++) data[k * n + i] = rgb[k]!;
  }
  return { c: 3, h, w, data };
}

function channelOf(field: HostImage, c: number): Float32Array {
  if (c < 0 || c >= field.c) throw new RangeError(`channel ${c} of a ${field.c}-channel field`);
  const n = field.h * field.w;
  return field.data.subarray(c * n, (c + 1) * n);
}
