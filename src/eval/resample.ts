/**
 * Separable resampling with a named kernel, in floating point: the bicubic and Lanczos baselines of
 * super-resolution. sharp cannot give these two: libvips enlarges through its bicubic interpolator
 * whatever kernel is asked (`kernel: "lanczos3"` and `"cubic"` give identical pixels when
 * upsampling), and it rounds to 8 bits. The convention is Pillow's (`Image.resize`): output pixel
 * x samples the input at centre (x + 0.5)·in/out − 0.5; the kernel is widened by in/out when
 * shrinking (antialiasing), and near the borders it is cut at the image edge and its weights
 * renormalised to sum to 1. Rows first, then columns, as Pillow does.
 */
import type { HostImage } from "../data/image.js";

/** The kernels: Keys' cubic convolution with a = −0.5 (Catmull–Rom), and Lanczos with 3 lobes. */
export type ResampleKernel = "bicubic" | "lanczos3";

const KERNELS: Record<ResampleKernel, { support: number; weight: (x: number) => number }> = {
  bicubic: {
    support: 2,
    weight(x) {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos3: {
    support: 3,
    weight: (x) => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0),
  },
};

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** For each output index, the first input index it reads and the normalised weights. */
function coefficients(
  inSize: number,
  outSize: number,
  kernel: ResampleKernel,
): { first: number; weights: number[] }[] {
  const { support, weight } = KERNELS[kernel];
  const scale = inSize / outSize;
  const widen = Math.max(scale, 1);
  const reach = support * widen;
  return Array.from({ length: outSize }, (_, x) => {
    const centre = (x + 0.5) * scale;
    const first = Math.max(Math.trunc(centre - reach + 0.5), 0);
    const last = Math.min(Math.trunc(centre + reach + 0.5), inSize);
    const weights: number[] = [];
    for (let i = first; i < last; i++) weights.push(weight((i - centre + 0.5) / widen));
    const sum = weights.reduce((a, b) => a + b, 0);
    return { first, weights: weights.map((v) => (sum === 0 ? 0 : v / sum)) };
  });
}

/**
 * `img` resampled to `h`×`w` with `kernel` (channel-first, float; values are not clamped, so
 * overshoot at edges is kept for the caller to clamp as an image would be).
 */
export function resample(img: HostImage, h: number, w: number, kernel: ResampleKernel): HostImage {
  const { c, h: inH, w: inW } = img;
  const across = coefficients(inW, w, kernel);
  const down = coefficients(inH, h, kernel);
  const rows = new Float64Array(c * inH * w);
  for (let ch = 0; ch < c; ch++)
    for (let y = 0; y < inH; y++) {
      const src = (ch * inH + y) * inW;
      for (let x = 0; x < w; x++) {
        const { first, weights } = across[x]!;
        let v = 0;
        for (let k = 0; k < weights.length; k++) v += weights[k]! * img.data[src + first + k]!;
        rows[(ch * inH + y) * w + x] = v;
      }
    }
  const data = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++)
    for (let y = 0; y < h; y++) {
      const { first, weights } = down[y]!;
      for (let x = 0; x < w; x++) {
        let v = 0;
        for (let k = 0; k < weights.length; k++) v += weights[k]! * rows[(ch * inH + first + k) * w + x]!;
        data[(ch * h + y) * w + x] = v;
      }
    }
  return { c, h, w, data };
}
