/**
 * How an input becomes a model's input, as plain arithmetic that every path shares: the crop
 * geometry of image preparation (torchvision's output-size and offset rules) and the per-channel
 * normalisation of fields. The datasets resample files with sharp, the library facade (src/api)
 * resamples arrays in floating point; both take the geometry from here, so a model sees the same
 * crop whichever way its input came. Portable: no Node built-in, no native package.
 */
import type { HostImage } from "./host.js";
import { metadataJson } from "./metadata.js";

/**
 * Metadata key of a model file's data preparation (JSON `{ task, data }`, see
 * src/data/preparation.ts): how its training inputs were prepared.
 */
export const PREPARATION_METADATA_KEY = "anr.data";

/** Metadata key of a training checkpoint's state (JSON), whose run config also tells the preparation. */
export const CHECKPOINT_METADATA_KEY = "anr.checkpoint";

/**
 * The preparation record of a model file's metadata, parsed but not yet validated: its `anr.data`
 * entry, or the run config (`run`) a training checkpoint carries; null when the file has neither
 * key. A value that is not JSON is an InputError naming `source` and the key. The readers
 * (src/data/preparation.ts, and the portable facade in src/api/model.ts) validate it each their way.
 */
export function rawPreparation(
  metadata: Record<string, string>,
  source: string,
): { from: "data" | "checkpoint"; record: unknown } | null {
  if (metadata[PREPARATION_METADATA_KEY] !== undefined)
    return { from: "data", record: metadataJson(source, metadata, PREPARATION_METADATA_KEY) };
  if (metadata[CHECKPOINT_METADATA_KEY] !== undefined) {
    const state = metadataJson(source, metadata, CHECKPOINT_METADATA_KEY) as { run?: unknown } | null;
    return { from: "checkpoint", record: state?.run };
  }
  return null;
}

/** How an encoded image becomes a `size`×`size` item; the one transform behind every file dataset. */
export interface Transform {
  /**
   * "crop-resize": centre square crop (side `crop`, default the shorter side), then resize to `size`;
   * "resize-crop": resize the shorter side to `resize`, then crop `size`×`size`.
   */
  mode: "crop-resize" | "resize-crop";
  /** Output side. */
  size: number;
  /** crop-resize only: side of the centre crop (CelebA's 178); default the shorter side. */
  crop?: number;
  /** resize-crop only: the shorter side after resizing; default `size`. */
  resize?: number;
  /** resize-crop with an rng: crop at a uniformly random position instead of the centre. */
  randomCrop?: boolean;
  /** With an rng: probability of mirroring left–right. */
  flip?: number;
}

/** torchvision's Resize(int) output size: the shorter side becomes `short`, the longer is truncated. */
export function shorterSideTo(h: number, w: number, short: number): [number, number] {
  return w <= h ? [Math.floor((short * h) / w), short] : [short, Math.floor((short * w) / h)];
}

/** torchvision's CenterCrop offset: int(round((n − side) / 2)), Python rounding half to even. */
export function centred(n: number, side: number): number {
  const x = (n - side) / 2;
  const f = Math.floor(x);
  return x - f === 0.5 ? f + (f % 2) : Math.round(x);
}

/**
 * What {@link evalTransform} reads of an image dataset spec (a parsed `DatasetSpec` fits): the
 * fields that say how one file becomes an item.
 */
export type TransformSource =
  | {
      kind: "folder" | "lsun";
      preprocess: { mode: "resize-crop" | "crop-resize" | "random-crop"; size: number; resize?: number };
    }
  | { kind: "celeba"; protocol: "crop178" | "resize-crop"; size: number }
  | { kind: "imagenette"; size: number; resize?: number }
  | { kind: "idx" | "svg" | "twemoji"; size: number };

/**
 * How an image file becomes an item for a model trained on `spec`: the evaluation transform of
 * the dataset (centre crops, no flips), as `openImageDataset` applies it to the eval split.
 */
export function evalTransform(spec: TransformSource): Transform {
  switch (spec.kind) {
    case "folder":
    case "lsun": {
      const p = spec.preprocess;
      return p.mode === "crop-resize"
        ? { mode: "crop-resize", size: p.size }
        : { mode: "resize-crop", size: p.size, resize: p.resize };
    }
    case "celeba":
      return spec.protocol === "crop178"
        ? { mode: "crop-resize", size: spec.size, crop: 178 }
        : { mode: "resize-crop", size: spec.size };
    case "imagenette":
      return { mode: "resize-crop", size: spec.size, resize: spec.resize };
    case "idx":
    case "svg":
    case "twemoji":
      // Square items from square sources (28² digits, drawings fitted into a square): the whole
      // picture, resized.
      return { mode: "crop-resize", size: spec.size };
  }
}

/** A field channel's normalisation, `n = scale·(x + shift)` (a model config's channels fit). */
export interface Normalization {
  shift: number;
  scale: number;
}

/** x (physical) → n = scale·(x + shift), per channel, in place. */
export function normalizeField(img: HostImage, channels: readonly Normalization[]): HostImage {
  const n = img.h * img.w;
  channels.forEach((ch, k) => {
    for (let i = k * n; i < (k + 1) * n; i++) img.data[i] = ch.scale * (img.data[i]! + ch.shift);
  });
  return img;
}

/** n (network units) → x = n/scale − shift, per channel; (…, C, H, W) data with C = channels.length. */
export function denormalizeField(
  data: Float32Array,
  channels: readonly Normalization[],
  hw: number,
): Float32Array {
  const out = new Float32Array(data.length);
  const c = channels.length;
  for (let i = 0; i < data.length; i++) {
    const ch = channels[Math.floor(i / hw) % c]!;
    out[i] = data[i]! / ch.scale - ch.shift;
  }
  return out;
}
