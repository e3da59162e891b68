/**
 * Super-resolution of vector images, measured against the truth: an SVG renders at any size, so a
 * model trained at h² encodes the held-out items rendered at h², decodes them at (f·h)², and is
 * compared with the same SVGs rendered at (f·h)² — the check of "decoding at any resolution" that
 * photographs cannot give, since no higher-resolution truth exists for them. Beside the model, the
 * h² input upsampled by bicubic and Lanczos-3 (./resample.ts). The image counterpart of
 * ./super-resolution.ts (fields against finer data); here PSNR and SSIM in [0, 1], per method and
 * factor, and a labelled picture.
 */
import {
  openImageDataset,
  type ImageDataset,
  type Split,
  type SvgSpec,
  type TwemojiSpec,
} from "../data/datasets.js";
import { psnrUnit, type HostImage } from "../data/image.js";
import { sizeHW, type HyperNetworkConfig } from "../model/config.js";
import { hyperNetwork, type Params } from "../model/model.js";
import { disposeParams } from "../model/params.js";
import { createImageDecoder } from "../model/tasks.js";
import { InputError } from "../util/errors.js";
import { toBatchArray } from "./evaluate.js";
import { gridPng, labelledGrid, resizeNearest, sizeText } from "./grids.js";
import { resample } from "./resample.js";
import { ssim } from "./ssim.js";
import type { z } from "zod";

/** The methods compared, in the order of the table and the picture. */
export const SR_METHODS = ["bicubic", "lanczos3", "anr"] as const;
/** One of {@link SR_METHODS}: an upsampling of the input, or the model decoded at the finer size. */
export type SrMethod = (typeof SR_METHODS)[number];

/** Mean PSNR (dB, peak 1) and SSIM of one method at one factor over the items. */
export interface SrScore {
  psnr: number;
  ssim: number;
}

/** What {@link evaluateSvgSuperResolution} reports. */
export interface SvgSuperResolutionReport {
  /** Dataset and split, e.g. "twemoji:test". */
  split: string;
  /** The model's input side (pixels). */
  inputSize: number;
  /** Item ids (file paths relative to the data root), in order. */
  items: string[];
  /**
   * The model decoded at the input size, scored against its own input: what the model reproduces
   * at all, an upper bound of sorts for what its decodes at finer sizes can recover.
   */
  reconstruction: SrScore;
  /** Per factor: the decoded side and each method's scores against the rendering at that side. */
  factors: { factor: number; size: number; scores: Record<SrMethod, SrScore> }[];
  /** The first items: input, then per factor each method's output and the truth, for a picture. */
  kept: { id: string; input: HostImage; byFactor: (Record<SrMethod, HostImage> & { truth: HostImage })[] }[];
}

type VectorSpec = z.infer<typeof SvgSpec> | z.infer<typeof TwemojiSpec>;

/** Values clamped to [0, 1], as an image stores them. */
function clampUnit(img: HostImage): HostImage {
  return { ...img, data: img.data.map((v) => Math.min(1, Math.max(0, v))) };
}

/**
 * Evaluate `P` (borrowed) on a split of vector images (`data` an svg or twemoji spec; its size is
 * taken from the model): each item is rendered at the model's input size, encoded, decoded at
 * `factor`× that side for each of `factors`, and scored against the item rendered at that side;
 * bicubic and Lanczos-3 upsamplings of the input are scored the same way. Every output is clamped
 * to [0, 1] before scoring.
 */
export async function evaluateSvgSuperResolution(
  P: Params,
  cfg: HyperNetworkConfig,
  data: VectorSpec,
  split: Split,
  factors: number[],
  o: { batchSize: number; maxImages?: number; keep?: number },
): Promise<SvgSuperResolutionReport> {
  const [h, w] = sizeHW(cfg.tokenizer.args.input_size);
  if (h !== w)
    throw new InputError(`model input ${h}x${w}`, "super-resolution of SVG data needs a square model input");
  for (const f of factors)
    if (!(Number.isInteger(f) && f >= 1))
      throw new InputError(`factor ${f}`, "super-resolution factors must be whole numbers of at least 1");
  const open = (size: number) => openImageDataset({ ...data, size }, split);
  const low = await open(h);
  const highs: ImageDataset[] = [];
  for (const f of factors) highs.push(await open(f * h));
  const ids = (ds: ImageDataset) => Array.from({ length: ds.length }, (_, i) => ds.id(i));
  const items = ids(low);
  for (const [k, ds] of highs.entries())
    if (ids(ds).join("\n") !== items.join("\n"))
      throw new Error(`${ds.name} at ×${factors[k]} has other items than at ×1`);
  const n = Math.min(items.length, o.maxImages ?? Infinity);
  const sums = factors.map(
    () => Object.fromEntries(SR_METHODS.map((m) => [m, { psnr: 0, ssim: 0 }])) as Record<SrMethod, SrScore>,
  );
  const kept: SvgSuperResolutionReport["kept"] = [];
  const reconstruction: SrScore = { psnr: 0, ssim: 0 };
  const decode = createImageDecoder(cfg);
  try {
    for (let s = 0; s < n; s += o.batchSize) {
      const idx = Array.from({ length: Math.min(o.batchSize, n - s) }, (_, j) => s + j);
      const inputs = await Promise.all(idx.map((i) => low.get(i)));
      const generated = hyperNetwork(P, cfg, toBatchArray(inputs).mul(2).sub(1));
      try {
        const own = await decode(P, generated, idx.length, h, h);
        inputs.forEach((input, j) => {
          const n = input.c * h * h;
          const pred = clampUnit({
            ...input,
            data: own.subarray(j * n, (j + 1) * n).map((v) => (v + 1) / 2),
          });
          reconstruction.psnr += psnrUnit(pred.data, input.data);
          reconstruction.ssim += ssim(pred.data, input.data, input.c, h, h);
        });
        for (const [k, f] of factors.entries()) {
          const H = f * h;
          const out = await decode(P, generated, idx.length, H, H);
          const truths = await Promise.all(idx.map((i) => highs[k]!.get(i)));
          idx.forEach((i, j) => {
            const c = inputs[j]!.c;
            const anr = clampUnit({
              c,
              h: H,
              w: H,
              data: out.subarray(j * c * H * H, (j + 1) * c * H * H).map((v) => (v + 1) / 2),
            });
            const outputs: Record<SrMethod, HostImage> = {
              bicubic: clampUnit(resample(inputs[j]!, H, H, "bicubic")),
              lanczos3: clampUnit(resample(inputs[j]!, H, H, "lanczos3")),
              anr,
            };
            const truth = truths[j]!;
            for (const m of SR_METHODS) {
              sums[k]![m].psnr += psnrUnit(outputs[m].data, truth.data);
              sums[k]![m].ssim += ssim(outputs[m].data, truth.data, c, H, H);
            }
            if (i < (o.keep ?? 0)) {
              if (k === 0) kept.push({ id: items[i]!, input: inputs[j]!, byFactor: [] });
              kept[i]!.byFactor.push({ ...outputs, truth });
            }
          });
        }
      } finally {
        disposeParams(generated);
      }
    }
  } finally {
    decode.dispose();
  }
  return {
    split: low.name,
    inputSize: h,
    items: items.slice(0, n),
    reconstruction: { psnr: reconstruction.psnr / n, ssim: reconstruction.ssim / n },
    factors: factors.map((factor, k) => ({
      factor,
      size: factor * h,
      scores: Object.fromEntries(
        SR_METHODS.map((m) => [m, { psnr: sums[k]![m].psnr / n, ssim: sums[k]![m].ssim / n }]),
      ) as Record<SrMethod, SrScore>,
    })),
    kept,
  };
}

/** The methods' names in the picture's captions and the table. */
const CAPTIONS: Record<SrMethod, string> = {
  bicubic: "bicubic",
  lanczos3: "Lanczos-3",
  anr: "ANR",
};

/**
 * The picture of one factor: a row per kept item, columns input (enlarged without smoothing) |
 * bicubic | Lanczos-3 | ANR | truth, each shown at least 96² and under a caption strip (the
 * input's size, each method's PSNR, the truth's size); with `attribution`, a line at the foot
 * (e.g. Twemoji's CC-BY notice). PNG bytes; null when nothing was kept.
 */
export async function svgSuperResolutionPicture(
  r: SvgSuperResolutionReport,
  factorIndex: number,
  attribution?: string,
): Promise<Buffer | null> {
  if (!r.kept.length) return null;
  const { size, scores } = r.factors[factorIndex]!;
  const side = Math.max(size, 96);
  const columns = ["input", ...SR_METHODS, "truth"] as const;
  const cells = r.kept.map((item) =>
    columns.map((name) =>
      resizeNearest(name === "input" ? item.input : item.byFactor[factorIndex]![name], side, side),
    ),
  );
  const captions = columns.map((name) =>
    name === "input"
      ? `input ${sizeText(r.inputSize, r.inputSize)}`
      : name === "truth"
        ? `truth ${sizeText(size, size)}`
        : `${CAPTIONS[name]} ${scores[name].psnr.toFixed(2)} dB`,
  );
  return gridPng(
    labelledGrid(cells, { columns: captions, ...(attribution ? { note: attribution } : {}) }, 4),
  );
}

/** The report as a text table: one row per factor and method, PSNR and SSIM. */
export function svgSuperResolutionTable(r: SvgSuperResolutionReport): string {
  const row = (factor: number, size: number, method: string, { psnr, ssim }: SrScore) =>
    `×${String(factor).padEnd(6)}${`${size}²`.padEnd(9)}${method.padEnd(11)}${psnr.toFixed(3).padStart(9)}  ${ssim.toFixed(4)}`;
  const lines = [`factor  size     method     PSNR (dB)  SSIM`];
  lines.push(`${row(1, r.inputSize, "ANR", r.reconstruction)}   (its own input)`);
  for (const { factor, size, scores } of r.factors)
    for (const m of SR_METHODS) lines.push(row(factor, size, CAPTIONS[m], scores[m]));
  return lines.join("\n");
}
