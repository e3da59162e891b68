/**
 * Evaluation of an image model on a dataset split: PSNR per image averaged over the split (the
 * TransINR/IPC protocol, [0, 1] range) and SSIM, with the predictions of the first images kept
 * for a grid. For fields, PSNR is in normalised units as the reference computes it, and the
 * errors are also reported per channel in physical units (RMSE over all grid points of the split,
 * mean per-field RMSE, largest absolute error). Grid points whose input was missing (filled by
 * `fill_missing`) are not data: PSNR and the physical errors leave them out, and SSIM, whose
 * windows need every point, sees the truth there (no error).
 */
import { numpy as np } from "../backend/jax.js";
import { readF32 } from "../backend/index.js";
import type { ImageDataset } from "../data/datasets.js";
import type { FieldDataset } from "../data/fields.js";
import { psnrUnit, stackImages, type HostImage } from "../data/image.js";
import type { ChannelArgs, HyperNetworkConfig } from "../model/config.js";
import type { Params } from "../model/model.js";
import { createImageEvalStep } from "../model/tasks.js";
import { fieldGrid, imageGrid, type KeptPair } from "./grids.js";
import { ssim } from "./ssim.js";

/** Options of {@link evaluateImages}. */
export interface EvaluateArgs {
  /** Images per batch. */
  batchSize: number;
  /** Use only the first n images of the split. */
  maxImages?: number;
  /** Clamp predictions to [0, 1] before the metrics. */
  clamp: boolean;
  /** Keep this many (input, prediction) pairs for a grid. */
  keep?: number;
  /** Called after each batch with the number of images done. */
  onProgress?: (done: number, total: number) => void;
  /** The items are fields in these channels' normalised units: also report physical errors. */
  channels?: ChannelArgs[] | null;
  /** Latitude of each row (degrees): also report the RMSE weighted by cos(latitude). */
  latitudes?: Float64Array | null;
}

/** Errors of one channel in physical units, over a split. */
export interface PhysicalError {
  name: string;
  units: string;
  /** √(mean squared error) over every grid point of every field. */
  rmse: number;
  /** Mean over fields of the per-field RMSE. */
  meanFieldRmse: number;
  /** Largest absolute error at any grid point. */
  maxAbs: number;
  /**
   * With row latitudes: √(Σ cos φ · e² / Σ cos φ), the area-weighted RMSE of global grids
   * (WeatherBench's), so that the many polar points of a lat/lon grid do not dominate.
   */
  rmseLatWeighted?: number;
}

/** Metrics of one evaluation, as plain numbers. */
export interface EvalReport {
  images: number;
  /** Mean over images of 10·log10(1/mse) in [0, 1]. */
  psnr: number;
  /** Mean SSIM (Gaussian 11×11, σ 1.5). */
  ssim: number;
  /** Mean training loss (MSE in [-1, 1] space). */
  loss: number;
  perImage: { id: string; time?: string; psnr: number; ssim: number; rmse?: number[] }[];
  /** Per channel, for fields. */
  physical?: PhysicalError[];
  /** Fields: grid points left out of the metrics because their input was missing (filled). */
  missingPoints?: number;
}

/** One line per channel for logs: RMSE, latitude-weighted RMSE when known, largest error. */
export function describePhysical(
  p: Omit<PhysicalError, "meanFieldRmse"> & { meanFieldRmse?: number },
): string {
  const u = p.units ? ` ${p.units}` : "";
  const lw = p.rmseLatWeighted !== undefined ? `, lat-weighted ${p.rmseLatWeighted.toPrecision(4)}${u}` : "";
  const mf = p.meanFieldRmse !== undefined ? ` (mean per field ${p.meanFieldRmse.toPrecision(4)})` : "";
  return `${p.name}: RMSE ${p.rmse.toPrecision(4)}${u}${lw}${mf}, max |error| ${p.maxAbs.toPrecision(4)}${u}`;
}

/** One evaluation of a run's eval split, whatever the task: metrics, a JSON report and an optional picture. */
export interface EvalOutcome {
  psnr: number;
  ssim: number;
  images: number;
  /** What eval.json and `anr eval` write: the split, the protocol, the metrics and per-item results. */
  report: Record<string, unknown>;
  grid: HostImage | null;
}

/**
 * Per-channel errors of fields in physical units, accumulated field by field: network units are
 * scale·(x + shift), so an error e there is e / |scale| in physical units. With row latitudes,
 * also the cos-latitude-weighted RMSE.
 */
export class PhysicalTally {
  readonly #acc: { se: number; n: number; rmseSum: number; maxAbs: number; wse: number; wsum: number }[];
  readonly #rowWeight: Float64Array | null;
  #fields = 0;

  constructor(
    readonly channels: ChannelArgs[],
    latitudes: Float64Array | null,
  ) {
    this.#acc = channels.map(() => ({ se: 0, n: 0, rmseSum: 0, maxAbs: 0, wse: 0, wsum: 0 }));
    this.#rowWeight = latitudes
      ? Float64Array.from(latitudes, (d) => Math.max(0, Math.cos((d * Math.PI) / 180)))
      : null;
  }

  /**
   * Add one field (C, H, W) in network units, leaving out the points where `missing` (H, W) is 1;
   * returns its RMSE per channel.
   */
  add(pred: Float32Array, truth: HostImage, missing: Float32Array | null = null): number[] {
    const { h, w } = truth;
    const points = missing ? missing.reduce((n, m) => n + (m === 0 ? 1 : 0), 0) : h * w;
    this.#fields++;
    return this.channels.map((ch, k) => {
      let se = 0;
      let maxAbs = 0;
      const acc = this.#acc[k]!;
      for (let i = k * h * w; i < (k + 1) * h * w; i++) {
        if (missing && missing[i - k * h * w] !== 0) continue;
        const e = Math.abs((pred[i]! - truth.data[i]!) / ch.scale);
        se += e * e;
        if (e > maxAbs) maxAbs = e;
        if (this.#rowWeight) {
          const wy = this.#rowWeight[Math.floor((i - k * h * w) / w)]!;
          acc.wse += wy * e * e;
          acc.wsum += wy;
        }
      }
      acc.se += se;
      acc.n += points;
      acc.rmseSum += Math.sqrt(se / Math.max(1, points));
      acc.maxAbs = Math.max(acc.maxAbs, maxAbs);
      return Math.sqrt(se / Math.max(1, points));
    });
  }

  result(): PhysicalError[] {
    return this.channels.map((ch, k) => {
      const a = this.#acc[k]!;
      return {
        name: ch.name,
        units: ch.units,
        rmse: Math.sqrt(a.se / Math.max(1, a.n)),
        meanFieldRmse: a.rmseSum / Math.max(1, this.#fields),
        maxAbs: a.maxAbs,
        ...(this.#rowWeight ? { rmseLatWeighted: Math.sqrt(a.wse / Math.max(1e-30, a.wsum)) } : {}),
      };
    });
  }
}

/** Host images → one device batch (N, C, H, W). */
export function toBatchArray(imgs: HostImage[]): np.Array {
  const { data, shape } = stackImages(imgs);
  return np.array(data, { shape });
}

/** Evaluate `P` (borrowed) on a dataset split at the dataset's native size. */
export async function evaluateImages(
  P: Params,
  cfg: HyperNetworkConfig,
  ds: ImageDataset,
  args: EvaluateArgs,
): Promise<EvalReport & { kept: KeptPair[] }> {
  const n = Math.min(ds.length, args.maxImages ?? Infinity);
  const evalStep = createImageEvalStep(cfg);
  const perImage: EvalReport["perImage"] = [];
  const kept: KeptPair[] = [];
  let lossSum = 0;
  const tally = args.channels ? new PhysicalTally(args.channels, args.latitudes ?? null) : null;
  // Fields: where each input was missing (filled by fill_missing), to leave out of the metrics.
  const fields = args.channels && "getWithMissing" in ds ? (ds as FieldDataset) : null;
  const read = (i: number) =>
    fields ? fields.getWithMissing(i) : ds.get(i).then((item) => ({ item, missing: null }));
  let missingPoints = 0;
  try {
    for (let s = 0; s < n; s += args.batchSize) {
      const idx = [...Array(Math.min(args.batchSize, n - s)).keys()].map((i) => s + i);
      const items = await Promise.all(idx.map(read));
      const imgs = items.map((x) => x.item);
      const { c, h, w } = imgs[0]!;
      const out = await evalStep(P, toBatchArray(imgs));
      lossSum += out.loss * imgs.length;
      const pred = await readF32(out.pred);
      imgs.forEach((img, j) => {
        const p = new Float32Array(c * h * w);
        for (let k = 0; k < p.length; k++) {
          const v = (pred[j * c * h * w + k]! + 1) / 2;
          p[k] = args.clamp ? Math.min(1, Math.max(0, v)) : v;
        }
        // A field whose every point was missing has nothing else to score: it is scored whole.
        let missing = items[j]!.missing;
        const gaps = missing ? missing.reduce((a, m) => a + (m === 0 ? 0 : 1), 0) : 0;
        if (gaps === h * w) missing = null;
        else missingPoints += gaps;
        // The truth where the input was missing: no error there, for PSNR and SSIM alike.
        const scored = missing ? p.map((v, k) => (missing[k % (h * w)] === 0 ? v : img.data[k]!)) : p;
        const rmse = tally?.add(p, img, missing);
        const time = (ds as Partial<FieldDataset>).time?.(idx[j]!) ?? null;
        perImage.push({
          id: ds.id(idx[j]!),
          ...(time ? { time } : {}),
          psnr: missing
            ? psnrUnit(scored, img.data) - 10 * Math.log10((h * w) / (h * w - gaps))
            : psnrUnit(p, img.data),
          ssim: ssim(scored, img.data, c, h, w),
          ...(rmse ? { rmse } : {}),
        });
        if (kept.length < (args.keep ?? 0)) kept.push({ input: img, pred: { c, h, w, data: p } });
      });
      args.onProgress?.(Math.min(n, s + args.batchSize), n);
    }
  } finally {
    evalStep.dispose();
  }
  const mean = (f: (x: EvalReport["perImage"][number]) => number) =>
    perImage.reduce((a, x) => a + f(x), 0) / Math.max(1, perImage.length);
  return {
    images: perImage.length,
    psnr: mean((x) => x.psnr),
    ssim: mean((x) => x.ssim),
    loss: lossSum / Math.max(1, n),
    perImage,
    kept,
    ...(tally ? { physical: tally.result() } : {}),
    ...(missingPoints ? { missingPoints } : {}),
  };
}

/**
 * {@link evaluateImages} as an {@link EvalOutcome}: the report names the split and the protocol
 * (and the channels of fields), and with `grid` the first 8 items make a picture (fields in false
 * colour).
 */
export async function evaluateImageSplit(
  P: Params,
  cfg: HyperNetworkConfig,
  ds: ImageDataset,
  args: Omit<EvaluateArgs, "keep"> & { grid: boolean },
): Promise<EvalOutcome> {
  const { grid, ...evalArgs } = args;
  const channels = args.channels ?? null;
  const r = await evaluateImages(P, cfg, ds, { ...evalArgs, keep: grid ? 8 : 0 });
  const { kept, ...report } = r;
  return {
    psnr: r.psnr,
    ssim: r.ssim,
    images: r.images,
    report: {
      split: ds.name,
      protocol: channels
        ? `PSNR per field in normalised units (peak 1, as the reference), averaged over the split; physical errors per channel${r.missingPoints ? `; the ${r.missingPoints} grid points whose input was missing (filled by fill_missing) are left out of PSNR and the physical errors, and SSIM sees the truth there` : ""}`
        : "PSNR per image in [0,1] averaged over the split",
      ...(channels ? { channels } : {}),
      ...report,
    },
    grid: kept.length
      ? channels
        ? fieldGrid(
            kept,
            channels.length,
            channels.map((ch) => ch.name),
          )
        : imageGrid(kept)
      : null,
  };
}
