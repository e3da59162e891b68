/**
 * Structural similarity (SSIM, Wang et al. 2004) for CHW float images.
 *
 * Matches scikit-image's
 * `structural_similarity(a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,
 *  use_sample_covariance=False, data_range=1)`:
 * an 11×11 Gaussian window (σ = 1.5, truncated at 3.5σ → radius 5), K1 = 0.01, K2 = 0.03,
 * the SSIM map averaged over the region at least one window radius away from every border
 * (skimage crops `(win_size - 1) / 2` pixels per side), then averaged over channels.
 */

/** Gaussian σ of the SSIM window, as in Wang et al. 2004. */
export const SSIM_SIGMA = 1.5;
/** Full window size for images at least this large on both sides: 2·int(3.5·1.5 + 0.5) + 1. */
export const SSIM_WINDOW = 11;
const K1 = 0.01;
const K2 = 0.03;
const DATA_RANGE = 1;

/**
 * The window size `ssim` uses for an h×w image: 11, or for images smaller than 11 px on a side
 * the largest odd size that fits (skimage would refuse these). The Gaussian keeps σ = 1.5 and is
 * truncated to the smaller window and renormalised, so results on such tiny images are a
 * reasonable extension rather than a number any reference implementation reproduces.
 */
export function ssimWindowSize(h: number, w: number): number {
  const m = Math.min(h, w, SSIM_WINDOW);
  return m % 2 === 1 ? m : m - 1;
}

function gaussianKernel(radius: number): Float64Array {
  // Same construction as scipy.ndimage's _gaussian_kernel1d, which skimage's gaussian() uses.
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp((-0.5 * i * i) / (SSIM_SIGMA * SSIM_SIGMA));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

/**
 * Mean SSIM of two CHW images with values in [0, 1] (data range 1).
 *
 * Identical images give exactly 1; the score is symmetric in `a` and `b` up to rounding.
 * Computed in float64. Throws on mismatched or non-positive shapes.
 */
export function ssim(a: Float32Array, b: Float32Array, c: number, h: number, w: number): number {
  for (const [name, v] of [
    ["c", c],
    ["h", h],
    ["w", w],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0)
      throw new RangeError(`ssim: ${name} must be a positive integer, got ${v}`);
  }
  const n = c * h * w;
  if (a.length !== n || b.length !== n) {
    throw new RangeError(`ssim: expected ${c}×${h}×${w} = ${n} values, got ${a.length} and ${b.length}`);
  }

  const win = ssimWindowSize(h, w);
  const r = (win - 1) / 2;
  const kern = gaussianKernel(r);
  const C1 = (K1 * DATA_RANGE) ** 2;
  const C2 = (K2 * DATA_RANGE) ** 2;

  // Only the cropped region is averaged, and every window centred there lies inside the image,
  // so skimage's border mode never matters and we filter just the valid outputs.
  const vh = h - 2 * r;
  const vw = w - 2 * r;
  // Horizontal pass results for all rows, valid columns only: 5 moments per pixel.
  const hx = new Float64Array(h * vw);
  const hy = new Float64Array(h * vw);
  const hxx = new Float64Array(h * vw);
  const hyy = new Float64Array(h * vw);
  const hxy = new Float64Array(h * vw);

  let total = 0;
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    for (let i = 0; i < h; i++) {
      const row = base + i * w;
      for (let j = 0; j < vw; j++) {
        let sx = 0;
        let sy = 0;
        let sxx = 0;
        let syy = 0;
        let sxy = 0;
        for (let k = 0; k < win; k++) {
          const x = a[row + j + k]!;
          const y = b[row + j + k]!;
          const g = kern[k]!;
          sx += g * x;
          sy += g * y;
          sxx += g * x * x;
          syy += g * y * y;
          sxy += g * x * y;
        }
        const o = i * vw + j;
        hx[o] = sx;
        hy[o] = sy;
        hxx[o] = sxx;
        hyy[o] = syy;
        hxy[o] = sxy;
      }
    }

    let chSum = 0;
    for (let i = 0; i < vh; i++) {
      for (let j = 0; j < vw; j++) {
        let ux = 0;
        let uy = 0;
        let uxx = 0;
        let uyy = 0;
        let uxy = 0;
        for (let k = 0; k < win; k++) {
          const o = (i + k) * vw + j;
          const g = kern[k]!;
          ux += g * hx[o]!;
          uy += g * hy[o]!;
          uxx += g * hxx[o]!;
          uyy += g * hyy[o]!;
          uxy += g * hxy[o]!;
        }
        // Population covariance (use_sample_covariance=False), exactly skimage's expression order.
        const vx = uxx - ux * ux;
        const vy = uyy - uy * uy;
        const vxy = uxy - ux * uy;
        const num = (2 * ux * uy + C1) * (2 * vxy + C2);
        const den = (ux * ux + uy * uy + C1) * (vx + vy + C2);
        chSum += num / den;
      }
    }
    total += chSum / (vh * vw);
  }
  return total / c;
}
