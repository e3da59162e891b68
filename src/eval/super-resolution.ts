/**
 * Super-resolution of fields, measured: each field is encoded at the model's input size, decoded on
 * a finer grid, and compared with the same field prepared at that finer size from the original
 * data — the check of variational coordinates (decoding above the training resolution without
 * aliasing) on data that has a real high-resolution truth. Two baselines: bilinear upsampling of
 * the input itself, and bilinear upsampling of the model's own decode at the input size — the
 * second isolates what decoding on the finer grid adds beyond the reconstruction error. Images from
 * vector sources (SVG, Twemoji) are measured the same way in ./svg-super-resolution.ts.
 */
import type { Split } from "../data/datasets.js";
import { openFieldDataset, type FieldDataset, type FieldSpec } from "../data/fields.js";
import { psnrUnit, resizeAntialiased, type HostImage } from "../data/image.js";
import { sizeHW, type ChannelArgs, type HyperNetworkConfig } from "../model/config.js";
import { InputError } from "../util/errors.js";
import { hyperNetwork, type Params } from "../model/model.js";
import { createImageDecoder } from "../model/tasks.js";
import { disposeParams } from "../model/params.js";
import { PhysicalTally, toBatchArray, type PhysicalError } from "./evaluate.js";

/** Errors of one method (the model, or bilinear upsampling) over the split. */
export interface MethodErrors {
  /** Mean over fields of the PSNR in normalised units (peak 1). */
  psnr: number;
  /** Per channel, physical units (RMSE, mean per field, max, cos-latitude-weighted when known). */
  physical: PhysicalError[];
}

/** What {@link evaluateSuperResolution} reports. */
export interface SuperResolutionReport {
  /** Input (model) size and decoded size, [H, W]. */
  inputSize: [number, number];
  size: [number, number];
  fields: number;
  model: MethodErrors;
  /** Bilinear upsampling of the input. */
  bilinear: MethodErrors;
  /** The model decoded at the input size, then upsampled bilinearly. */
  decodeThenBilinear: MethodErrors;
  /** The first fields: input, bilinear, decoded, truth (network units), for a picture. */
  kept: { input: HostImage; bilinear: HostImage; pred: HostImage; truth: HostImage }[];
}

/** PSNR (normalised units) and physical errors of one method over the split. */
class MethodTally {
  psnrSum = 0;
  n = 0;
  readonly physical: PhysicalTally;

  constructor(channels: ChannelArgs[], latitudes: Float64Array | null) {
    this.physical = new PhysicalTally(channels, latitudes);
  }

  add(pred: Float32Array, truth: HostImage): void {
    this.psnrSum += psnrUnit(pred, truth.data);
    this.n++;
    this.physical.add(pred, truth);
  }

  result(): MethodErrors {
    return { psnr: this.psnrSum / Math.max(1, this.n), physical: this.physical.result() };
  }
}

/**
 * Evaluate `P` (borrowed): `low` gives the model's inputs, `high` the same fields (same order) at
 * the decoded size; both in the model channels' normalised units.
 */
export async function evaluateSuperResolution(
  P: Params,
  cfg: HyperNetworkConfig,
  low: FieldDataset,
  high: FieldDataset,
  o: { batchSize: number; maxFields?: number; keep?: number },
): Promise<SuperResolutionReport> {
  if (low.length !== high.length)
    throw new Error(`${low.name} has ${low.length} fields but ${high.name} has ${high.length}`);
  const channels = cfg.channels;
  if (!channels) throw new Error("super-resolution evaluation needs a field model (model.channels)");
  const [H, W] = high.size;
  const c = channels.length;
  const model = new MethodTally(channels, high.latitudes);
  const bilinear = new MethodTally(channels, high.latitudes);
  const decodeThenBilinear = new MethodTally(channels, high.latitudes);
  const [h, w] = low.size;
  const kept: SuperResolutionReport["kept"] = [];
  const decode = createImageDecoder(cfg);
  const n = Math.min(low.length, o.maxFields ?? Infinity);
  try {
    for (let s = 0; s < n; s += o.batchSize) {
      const idx = Array.from({ length: Math.min(o.batchSize, n - s) }, (_, j) => s + j);
      const inputs = await Promise.all(idx.map((i) => low.get(i)));
      const truths = await Promise.all(idx.map((i) => high.get(i)));
      const x = toBatchArray(inputs).mul(2).sub(1);
      const generated = hyperNetwork(P, cfg, x);
      const out = await decode(P, generated, idx.length, H, W);
      const coarse = await decode(P, generated, idx.length, h, w);
      disposeParams(generated);
      idx.forEach((_, j) => {
        const pred = out.subarray(j * c * H * W, (j + 1) * c * H * W).map((v) => (v + 1) / 2);
        const up = resizeAntialiased(inputs[j]!, H, W);
        model.add(pred, truths[j]!);
        bilinear.add(up.data, truths[j]!);
        const own = coarse.subarray(j * c * h * w, (j + 1) * c * h * w).map((v) => (v + 1) / 2);
        decodeThenBilinear.add(resizeAntialiased({ c, h, w, data: own }, H, W).data, truths[j]!);
        if (kept.length < (o.keep ?? 0))
          kept.push({
            input: inputs[j]!,
            bilinear: up,
            pred: { c, h: H, w: W, data: pred },
            truth: truths[j]!,
          });
      });
    }
  } finally {
    decode.dispose();
  }
  return {
    inputSize: low.size,
    size: [H, W],
    fields: n,
    model: model.result(),
    bilinear: bilinear.result(),
    decodeThenBilinear: decodeThenBilinear.result(),
    kept,
  };
}

/**
 * Super-resolution on a split of field data (`cfg` a field model, `data` the spec it was trained
 * on): each field, prepared as in training, is decoded at `size` and compared with the same field
 * prepared at `size` from the original data. The data must be resized to the model's size
 * (preprocess mode resize or resize-crop; with resize-crop both sides grow by the same factor).
 */
export async function evaluateFieldSuperResolution(
  P: Params,
  cfg: HyperNetworkConfig,
  data: FieldSpec,
  split: Split,
  size: [number, number],
  o: { batchSize: number; maxFields?: number; keep?: number },
): Promise<SuperResolutionReport & { split: string }> {
  const [H, W] = size;
  const p = data.preprocess;
  if (p.mode === "none")
    throw new InputError(
      `size ${H}x${W}`,
      "super-resolution needs data.preprocess.mode resize or resize-crop (the data is used as stored)",
    );
  const [h, w] = sizeHW(cfg.tokenizer.args.input_size);
  const factor = H / h;
  if (p.mode === "resize-crop" && Math.abs(W / w - factor) > 1e-9)
    throw new InputError(
      `size ${H}x${W}`,
      `with data.preprocess.mode resize-crop both sides must grow by the same factor (${h}x${w} → ×${factor})`,
    );
  const highSpec = {
    ...data,
    preprocess: { ...p, size, resize: p.resize ? Math.round(p.resize * factor) : undefined },
  };
  const low = await openFieldDataset(data, split, cfg.channels);
  try {
    const high = await openFieldDataset(highSpec, split, cfg.channels);
    try {
      return { split: low.name, ...(await evaluateSuperResolution(P, cfg, low, high, o)) };
    } finally {
      high.close();
    }
  } finally {
    low.close();
  }
}
