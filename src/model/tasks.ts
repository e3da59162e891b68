/**
 * The two tasks of the paper as pure functions of (params, batch): image reconstruction and
 * novel-view synthesis. They mirror the reference's `ModelMangager` (docs/conventions.md §2, §8, §9).
 * As in model.ts, `P` is borrowed and array arguments are consumed.
 */
import { numpy as np, jit } from "../backend/jax.js";
import { preciseLog10, readF32, readScalar } from "../backend/index.js";
import { disposeParams, refParams } from "./params.js";
import type { HyperNetworkConfig } from "./config.js";
import {
  cellCentres,
  coordGrid,
  hyperNetwork,
  hyponet,
  gridPrepares,
  hyponetGridPrepare,
  hyponetGridPrepared,
  GRID_GUARD_LIMIT,
  batchOf,
  jitterCoords,
  tap,
  type Params,
  type SupportViews,
  type Taps,
  type HypoParams,
} from "./model.js";
import { composite, rayPoints, sampleDepths } from "../rendering/volume.js";
import { posesToRays } from "../rendering/rays.js";

/**
 * Prediction (B, C, H, W) in [-1, 1] space at an h×w pixel-centre grid; `noise` (B, H, W, 2)
 * jitters the coordinates. Consumes `generated`. For large grids use {@link createImageDecoder}.
 */
export function predictImage(
  P: Params,
  cfg: HyperNetworkConfig,
  generated: HypoParams,
  b: number,
  h: number,
  w: number,
  noise?: np.Array,
  taps?: Taps,
): np.Array {
  let coords = np.broadcastTo(np.array(coordGrid(h, w), { shape: [1, h * w, 2] }), [b, h * w, 2]);
  if (noise) coords = jitterCoords(coords, noise.reshape([b, h * w, 2]), h, w);
  const out = hyponet(P, cfg, coords, generated, taps);
  const c = out.shape[2]!;
  return out.reshape([b, h, w, c]).transpose([0, 3, 1, 2]);
}

/**
 * A decoder for any resolution with bounded memory: the grid is evaluated in blocks of at most
 * `chunk` points (default {@link gridChunk}) by one jit-compiled function (the last blocks padded),
 * and assembled on the host.
 * Returns (B, C, H, W) in [-1, 1] space. Borrows `P` and `generated`.
 */
export function createImageDecoder(cfg: HyperNetworkConfig, chunk?: number) {
  const grid = createGridDecoder(cfg, chunk);
  const decode = (P: Params, generated: HypoParams, b: number, h: number, w: number): Promise<Float32Array> =>
    grid(P, generated, b, cellCentres(h), cellCentres(w));
  decode.dispose = () => grid.dispose();
  return decode;
}

/**
 * A part of an image as fractions of its height and width, `[top, left, bottom, right]`, each in
 * [0, 1] with top < bottom and left < right; `[0, 0, 1, 1]` is the whole image.
 */
export type DecodeRegion = readonly [number, number, number, number];

/** The whole image as a {@link DecodeRegion}. */
export const WHOLE_IMAGE: DecodeRegion = [0, 0, 1, 1];

/** What is wrong with `region` as a {@link DecodeRegion}, or null. */
export function regionProblem(region: readonly number[]): string | null {
  if (region.length !== 4 || !region.every((v) => Number.isFinite(v)))
    return `expected four numbers top, left, bottom, right, not ${JSON.stringify(region)}`;
  const [top, left, bottom, right] = region as [number, number, number, number];
  if (!region.every((v) => v >= 0 && v <= 1))
    return `fractions of the image go from 0 to 1 (${region.join(", ")})`;
  if (!(top < bottom && left < right))
    return `top must be above bottom and left before right (${region.join(", ")})`;
  return null;
}

/** The pixel centres of an h×w decode of `region`, in the hyponet's (−1, 1) coordinates: [rows, columns]. */
export function regionCentres(region: DecodeRegion, h: number, w: number): [Float32Array, Float32Array] {
  const [top, left, bottom, right] = region;
  return [cellCentres(h, 2 * top - 1, 2 * bottom - 1), cellCentres(w, 2 * left - 1, 2 * right - 1)];
}

/** The size of `region` when the whole image is h×w pixels (at least one pixel each way). */
export function regionSize(region: DecodeRegion, h: number, w: number): [number, number] {
  const [top, left, bottom, right] = region;
  return [Math.max(1, Math.round(h * (bottom - top))), Math.max(1, Math.round(w * (right - left)))];
}

/**
 * Grid points per decoder call for B instances: as many as keep the widest per-point intermediate
 * (ANR's attention weights, h·T wide; else the hidden width) near 64 MB (2^24 floats), a power of
 * two between 1,024 and 16,384. Larger calls cost less per point (each call has its rows' and
 * columns' terms and a round trip to the engine; on 2 threads 1,024-point blocks decoded 8 images
 * 10–15% slower than 4,096-point ones); the bound keeps memory in check at any size, and within
 * WebGPU's default 128 MiB storage buffers.
 */
export function gridChunk(cfg: HyperNetworkConfig, b = 1): number {
  const h = cfg.hyponet;
  const widest =
    h.name === "ANR" ? Math.max(h.args.n_head * h.args.token_len, h.args.hidden_dim) : h.args.hidden_dim;
  return Math.min(16384, Math.max(1024, 2 ** Math.floor(Math.log2(2 ** 24 / (widest * b)))));
}

/**
 * The hyponet on any rectangular grid, rows ys × columns xs (a zoomed region, or the whole image),
 * through `hyponetGrid`: (B, C, R, W) in [-1, 1] space. Square blocks of about `chunk` points
 * (default {@link gridChunk}) bound the memory of each call; the per-instance part
 * (`hyponetGridPrepare`) is computed once per decode. Borrows `P` and `generated`.
 */
export function createGridDecoder(cfg: HyperNetworkConfig, chunk?: number) {
  // The per-instance part is computed once per decode, then each block starts from it.
  const prepare = jit((P: Params, g: HypoParams): HypoParams => {
    const prepared = hyponetGridPrepare(P, cfg, g);
    disposeParams(P);
    return prepared;
  });
  const compiled = (fast: boolean) =>
    jit((P: Params, g: HypoParams, ys: np.Array, xs: np.Array): { signal: np.Array; guard: np.Array } => {
      const { signal, guard } = hyponetGridPrepared(P, cfg, ys, xs, g, fast);
      disposeParams(P);
      return { signal, guard: guard ?? np.zeros([]) };
    });
  const fast = compiled(true);
  const exact = compiled(false);
  // A block whose fast result does not hold (its guard is too large) is evaluated again.
  const block = async (P: Params, g: HypoParams, ys: Float32Array, xs: Float32Array) => {
    const out = fast(refParams(P), refParams(g), np.array(ys), np.array(xs));
    // Both read together: one wait for the device (a round trip on WebGPU) where the guard holds.
    const [guard, signal] = await Promise.all([readScalar(out.guard), readF32(out.signal)]);
    if (guard <= GRID_GUARD_LIMIT) return signal;
    const again = exact(refParams(P), refParams(g), np.array(ys), np.array(xs));
    again.guard.dispose();
    return readF32(again.signal);
  };
  const c = cfg.hyponet.args.out_dim;
  const decode = async (
    P: Params,
    generated: HypoParams,
    b: number,
    ys: Float32Array,
    xs: Float32Array,
  ): Promise<Float32Array> => {
    const [h, w] = [ys.length, xs.length];
    const points = chunk ?? gridChunk(cfg, b);
    // Square blocks: a block computes its rows' and its columns' terms, (rb + cb)/(rb·cb) of its
    // per-point work, which is least when rb ≈ cb.
    const cb = Math.min(w, 2 ** Math.round(Math.log2(Math.sqrt(points))));
    const rb = Math.min(h, Math.max(1, Math.floor(points / cb)));
    const out = new Float32Array(b * c * h * w);
    const rowBuf = new Float32Array(rb);
    const colBuf = new Float32Array(cb);
    const prepared = gridPrepares(cfg) ? prepare(refParams(P), refParams(generated)) : refParams(generated);
    try {
      for (let r0 = 0; r0 < h; r0 += rb) {
        const r1 = Math.min(h, r0 + rb);
        rowBuf.fill(0).set(ys.subarray(r0, r1));
        for (let c0 = 0; c0 < w; c0 += cb) {
          const c1 = Math.min(w, c0 + cb);
          colBuf.fill(0).set(xs.subarray(c0, c1));
          const vals = await block(P, prepared, rowBuf, colBuf); // (B, rb·cb, C)
          for (let i = 0; i < b; i++)
            for (let y = r0; y < r1; y++)
              for (let x = c0; x < c1; x++) {
                const src = ((i * rb + y - r0) * cb + x - c0) * c;
                for (let ch = 0; ch < c; ch++) out[((i * c + ch) * h + y) * w + x] = vals[src + ch]!;
              }
        }
      }
    } finally {
      disposeParams(prepared);
    }
    return out;
  };
  decode.dispose = () => {
    prepare.dispose();
    fast.dispose();
    exact.dispose();
  };
  return decode;
}

/** Loss and metrics of one image batch. */
export type ImageOutput = {
  /** mean((pred − target)²) over B, C, H, W, in [-1, 1] space. */
  loss: np.Array;
  /** mean_b 10·log10(4 / mse_b) (peak-to-peak 2 in [-1, 1] space). */
  psnr: np.Array;
  /** Raw prediction (B, C, H, W) in [-1, 1] space. */
  pred: np.Array;
};

/**
 * imgs (B, C, H, W) in [0, 1] → x = 2·img − 1 → hyper-network → prediction at the same grid
 * (optionally with coordinate noise, standard normal (B, H, W, 2)) → L2 loss against x.
 */
export function imageObjective(
  P: Params,
  cfg: HyperNetworkConfig,
  imgs: np.Array,
  noise?: np.Array,
  taps?: Taps,
): ImageOutput {
  const [b, , h, w] = imgs.shape as [number, number, number, number];
  const x = imgs.mul(2).sub(1);
  const generated = hyperNetwork(P, cfg, x.ref, taps);
  const pred = predictImage(P, cfg, generated, b, h, w, noise, taps);
  return { ...imageLoss(pred.ref, x), pred };
}

/**
 * The L2 loss of a prediction against its target, both (B, …) in [-1, 1] space: the mean squared
 * error, and the mean over the batch of each item's PSNR (peak-to-peak 2). Consumes both.
 */
export function imageLoss(pred: np.Array, x: np.Array): { loss: np.Array; psnr: np.Array } {
  const b = pred.shape[0]!;
  const mseB = np.mean(np.square(pred.sub(x)).reshape([b, -1]), 1);
  const loss = np.mean(mseB.ref);
  const psnr = np.mean(preciseLog10(np.reciprocal(mseB).mul(4)).mul(10));
  return { loss, psnr };
}

/**
 * A renderer of whole views with bounded memory: rays of a camera (pose (3, 4) row-major, focal
 * [f_x, f_y]) are rendered `chunk` at a time by one jit-compiled function, deterministic depths
 * (rand = False, as the reference's evaluation). Returns (3, H, W) colours, or (3, m) for the m
 * given `pixels`. Borrows `P` and `generated` (one instance: batch size 1).
 */
export function createViewRenderer(
  cfg: HyperNetworkConfig,
  opts: { chunk: number; nSamples: number; near: number; far: number },
) {
  const z = sampleDepths(opts.near, opts.far, opts.nSamples);
  const f = jit((P: Params, g: HypoParams, o: np.Array, d: np.Array, zz: np.Array) => {
    const out = renderRays(P, cfg, g, { o, d, z: zz });
    out.weights.dispose();
    disposeParams(P);
    disposeParams(g);
    return out.rgb;
  });
  const render = async (
    P: Params,
    generated: HypoParams,
    pose: Float32Array,
    focal: [number, number],
    h: number,
    w: number,
    pixels?: ArrayLike<number>,
  ): Promise<Float32Array> => {
    const [o, d] = posesToRays(
      np.array(pose, { shape: [1, 3, 4] }),
      np.array(Float32Array.from(focal), { shape: [1, 2] }),
      h,
      w,
    );
    let [oh, dh] = [await readF32(o), await readF32(d)];
    if (pixels) {
      // Only these pixels (row-major indices): e.g. the reference's strided evaluation square.
      const pick = (a: Float32Array) =>
        Float32Array.from(
          { length: 3 * pixels.length },
          (_, k) => a[3 * pixels[Math.floor(k / 3)]! + (k % 3)]!,
        );
      [oh, dh] = [pick(oh), pick(dh)];
    }
    const n = oh.length / 3;
    const out = new Float32Array(3 * n);
    const ob = new Float32Array(opts.chunk * 3);
    const db = new Float32Array(opts.chunk * 3);
    for (let s = 0; s < n; s += opts.chunk) {
      const e = Math.min(n, s + opts.chunk);
      ob.fill(0);
      db.fill(0);
      ob.set(oh.subarray(3 * s, 3 * e));
      db.set(dh.subarray(3 * s, 3 * e));
      const rgb = await readF32(
        f(
          refParams(P),
          refParams(generated),
          np.array(ob, { shape: [1, opts.chunk, 3] }),
          np.array(db, { shape: [1, opts.chunk, 3] }),
          np.array(z),
        ),
      );
      for (let k = s; k < e; k++) for (let c = 0; c < 3; c++) out[c * n + k] = rgb[(k - s) * 3 + c]!;
    }
    return out;
  };
  render.dispose = () => f.dispose();
  return render;
}

/** Posed views stacked on the host (learnit's `stackViews`) → device arrays of a view batch. */
export function viewsToDevice(v: {
  imgs: Float32Array;
  poses: Float32Array;
  focals: Float32Array;
  shape: { b: number; n: number; h: number; w: number };
}): SupportViews {
  const { b, n, h, w } = v.shape;
  return {
    imgs: np.array(v.imgs, { shape: [b, n, 3, h, w] }),
    poses: np.array(v.poses, { shape: [b, n, 3, 4] }),
    focals: np.array(v.focals, { shape: [b, n, 2] }),
  };
}

/** Query rays of a view-synthesis batch. */
export type RayBatch = {
  /** Origins (B, R, 3). */
  o: np.Array;
  /** Unnormalised directions (B, R, 3). */
  d: np.Array;
  /** Sample depths (R, P) (jittered) or (P). */
  z: np.Array;
};

/** Render rays with generated parameters (borrowed), in chunks of `chunk` rays. */
export function renderRays(
  P: Params,
  cfg: HyperNetworkConfig,
  generated: HypoParams,
  rays: RayBatch,
  chunk = Infinity,
  taps?: Taps,
): { rgb: np.Array; weights: np.Array } {
  const [b, r] = rays.o.shape as [number, number];
  const nS = rays.z.shape[rays.z.ndim - 1]!;
  const parts: { rgb: np.Array; weights: np.Array }[] = [];
  for (let s = 0; s < r; s += Math.min(chunk, r)) {
    const e = Math.min(r, s + chunk);
    const o = rays.o.ref.slice([], [s, e], []);
    const d = rays.d.ref.slice([], [s, e], []);
    const z = rays.z.ndim === 1 ? rays.z.ref : rays.z.ref.slice([s, e], []);
    const pts = tap(taps, "pts", rayPoints(o, d, z.ref));
    const gen = refParams(generated);
    const raw = hyponet(P, cfg, pts.reshape([b, (e - s) * nS, 3]), gen, taps).reshape([b, e - s, nS, -1]);
    parts.push(composite(tap(taps, "raw", raw), z));
  }
  rays.o.dispose();
  rays.d.dispose();
  rays.z.dispose();
  if (parts.length === 1) return parts[0]!;
  return {
    rgb: np.concatenate(
      parts.map((x) => x.rgb),
      1,
    ),
    weights: np.concatenate(
      parts.map((x) => x.weights),
      1,
    ),
  };
}

/** Loss and metrics of one view-synthesis batch. */
export type NerfOutput = {
  /** mean_b mean((pred − gt)²). */
  loss: np.Array;
  /** mean_b −10·log10(mse_b). */
  psnr: np.Array;
  /** Rendered colours (B, R, 3). */
  pred: np.Array;
};

/** Support views → R-tokens → render the query rays → L2 loss against `gt` (B, R, 3). */
export function nerfObjective(
  P: Params,
  cfg: HyperNetworkConfig,
  views: SupportViews,
  rays: RayBatch,
  gt: np.Array,
  chunk = Infinity,
  taps?: Taps,
): NerfOutput {
  const generated = hyperNetwork(P, cfg, views, taps);
  const { rgb, weights } = renderRays(P, cfg, generated, rays, chunk, taps);
  tap(taps, "vr.weights", weights).dispose();
  disposeParams(generated);
  const b = rgb.shape[0]!;
  const mseB = np.mean(np.square(rgb.ref.sub(gt)).reshape([b, -1]), 1);
  const loss = np.mean(mseB.ref);
  const psnr = np.mean(preciseLog10(mseB).mul(-10));
  return { loss, psnr, pred: rgb };
}

/** Jitted evaluation: loss, PSNR ([-1,1] convention) and the raw prediction of a batch. Borrows `P`. */
export function createImageEvalStep(cfg: HyperNetworkConfig) {
  const f = jit((P: Params, imgs: np.Array) => {
    const out = imageObjective(P, cfg, imgs);
    disposeParams(P);
    return out;
  });
  const evalStep = async (P: Params, imgs: np.Array) => {
    const out = f(refParams(P), imgs);
    const loss = await readScalar(out.loss);
    const psnr = await readScalar(out.psnr);
    return { loss, psnr, pred: out.pred };
  };
  evalStep.dispose = () => f.dispose();
  return evalStep;
}

/**
 * ANR's attention weights after the threshold (the hyponet's "anr.attn" tap) at `coords`, n points
 * of in_dim values shared by the B instances of `generated`. The points are evaluated `chunk` at a
 * time, so that memory stays bounded whatever n is: `each(start, weights)` receives the weights
 * (B, heads, m, tokens) of points start … start + m − 1, in order. Returns false (and calls nothing)
 * for hyponets without attention over R-tokens (MLP, IPC). Eager (taps need it); borrows `P` and
 * `generated`.
 */
export async function forEachAttentionChunk(
  P: Params,
  cfg: HyperNetworkConfig,
  generated: HypoParams,
  coords: Float32Array,
  each: (start: number, weights: Float32Array) => void,
  chunk = 4096,
): Promise<boolean> {
  if (cfg.hyponet.name !== "ANR") return false;
  const dim = cfg.hyponet.args.in_dim;
  const n = coords.length / dim;
  const b = batchOf(generated);
  for (let s = 0; s < n; s += chunk) {
    const e = Math.min(n, s + chunk);
    const x = np.array(coords.subarray(dim * s, dim * e), { shape: [1, e - s, dim] });
    const taps: Taps = new Map();
    hyponet(P, cfg, np.broadcastTo(x, [b, e - s, dim]), refParams(generated), taps).dispose();
    let weights: Float32Array | null = null;
    for (const [name, a] of taps) {
      if (name === "anr.attn") weights = await readF32(a);
      else a.dispose();
    }
    if (!weights) throw new Error('the ANR hyponet recorded no "anr.attn" tap');
    each(s, weights);
  }
  return true;
}

/**
 * ANR's attention weights after the threshold (the hyponet's "anr.attn" tap) at `coords`, n points
 * of in_dim values shared by the B instances of `generated`, all on the host: (B, heads, n,
 * tokens); per point and head they sum to 1 (the threshold renormalises). The points are evaluated
 * `chunk` at a time, so device memory stays bounded. Null for hyponets without attention over
 * R-tokens (MLP, IPC).
 */
export async function attentionWeights(
  P: Params,
  cfg: HyperNetworkConfig,
  generated: HypoParams,
  coords: Float32Array,
  chunk = 4096,
): Promise<Float32Array | null> {
  if (cfg.hyponet.name !== "ANR") return null;
  const { n_head: heads, token_len: t, in_dim: dim } = cfg.hyponet.args;
  const n = coords.length / dim;
  const b = batchOf(generated);
  const out = new Float32Array(b * heads * n * t);
  await forEachAttentionChunk(
    P,
    cfg,
    generated,
    coords,
    (s, w) => {
      const m = w.length / (b * heads * t);
      for (let bh = 0; bh < b * heads; bh++)
        out.set(w.subarray(bh * m * t, (bh + 1) * m * t), (bh * n + s) * t);
    },
    chunk,
  );
  return out;
}

/** Per-token attention maps of a pixel grid: what {@link attentionMaps} returns. */
export interface AttentionMaps {
  /** (B, tokens, H, W): each pixel's weight to each R-token after the threshold, the mean over heads. */
  maps: Float32Array;
  /** Per instance, the fraction of its weights (heads × pixels × tokens) that are exactly 0. */
  zeroed: number[];
  heads: number;
  tokens: number;
}

/**
 * ANR's attention at the pixel centres of an h×w grid, as maps per R-token: for each token, the
 * weight every pixel gives it after the threshold, averaged over the heads (each pixel's maps sum
 * to 1 over the tokens). Chunked over pixels like {@link createImageDecoder}; memory beyond the
 * maps is one chunk's weights. Null for hyponets without attention over R-tokens. Borrows `P` and
 * `generated` (B instances).
 */
export async function attentionMaps(
  P: Params,
  cfg: HyperNetworkConfig,
  generated: HypoParams,
  h: number,
  w: number,
  chunk = 4096,
): Promise<AttentionMaps | null> {
  if (cfg.hyponet.name !== "ANR") return null;
  const { n_head: heads, token_len: t } = cfg.hyponet.args;
  const n = h * w;
  const b = batchOf(generated);
  const maps = new Float32Array(b * t * n);
  const zeros = new Array<number>(b).fill(0);
  await forEachAttentionChunk(
    P,
    cfg,
    generated,
    coordGrid(h, w),
    (s, wts) => {
      const m = wts.length / (b * heads * t);
      for (let i = 0; i < b; i++)
        for (let hd = 0; hd < heads; hd++)
          for (let p = 0; p < m; p++) {
            const row = ((i * heads + hd) * m + p) * t;
            for (let k = 0; k < t; k++) {
              const v = wts[row + k]!;
              if (v === 0) zeros[i]!++;
              maps[(i * t + k) * n + s + p]! += v;
            }
          }
    },
    chunk,
  );
  for (let j = 0; j < maps.length; j++) maps[j]! /= heads;
  return { maps, zeroed: zeros.map((z) => z / (heads * n * t)), heads, tokens: t };
}
