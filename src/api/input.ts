/**
 * What the facade (./model.ts) takes as an image, and how it becomes the model's input: the
 * shapes users hold (ImageData-like interleaved pixels, typed arrays with a shape, anr's own
 * channel-first HostImage) converted to one (C, H, W) float image, then prepared as the CLI
 * prepares files (resize the shorter side, centre crop; the geometry of util/prepare.ts). Portable.
 */
import { resample } from "../eval/resample.js";
import { InputError } from "../util/errors.js";
import type { HostImage } from "../util/host.js";
import { centred, shorterSideTo, type Transform } from "../util/prepare.js";

/** The typed arrays an image may come in. */
export type PixelArray =
  Uint8Array | Uint8ClampedArray | Uint16Array | Int16Array | Int32Array | Float32Array | Float64Array;

/**
 * Pixels as browsers and most image libraries hold them: interleaved rows (H, W, C), like
 * `ImageData` or transformers.js's `RawImage`. `channels` is 1 (grey), 2 (grey + alpha), 3 (RGB)
 * or 4 (RGBA), by default `data.length / (width·height)`; alpha is dropped, as `anr encode` drops
 * it. 8-bit arrays hold 0–255, others values in [0, 1] (for a field model: physical values).
 */
export interface PixelImage {
  data: PixelArray;
  width: number;
  height: number;
  channels?: number;
}

/**
 * A typed array with its shape, channel-first as the model reads it (and as `.npy` fields are
 * stored): (C, H, W), or (H, W) for one channel. 8-bit arrays hold 0–255, others [0, 1] (for a
 * field model: physical values).
 */
export interface ShapedArray {
  data: PixelArray;
  shape: readonly number[];
}

/**
 * An image as the facade takes it: interleaved pixels ({@link PixelImage}), a shaped typed array
 * ({@link ShapedArray}) or anr's channel-first {@link HostImage} (float data in [0, 1]; for a
 * field model, physical values).
 */
export type ImageInput = PixelImage | ShapedArray | HostImage;

/** Whether 0–255 bytes (divided by 255 for images) rather than values. */
function isBytes(data: PixelArray): boolean {
  return data instanceof Uint8Array || data instanceof Uint8ClampedArray;
}

function checkSide(source: string, what: string, n: unknown): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
    throw new InputError(source, `${what} must be a positive integer, not ${String(n)}`);
  return n;
}

/**
 * Any {@link ImageInput} as a channel-first float image, unprepared: 8-bit data scaled to [0, 1]
 * unless `values` (field models take physical values as they are), alpha dropped from 2 and 4
 * channels unless `values`. `source` names the input in errors.
 */
export function toHostImage(input: ImageInput, source: string, values = false): HostImage {
  if (typeof input !== "object" || input === null || !ArrayBuffer.isView((input as { data?: unknown }).data))
    throw new InputError(
      source,
      "expected an image: { data, width, height, channels? } (interleaved, like ImageData), { data, shape: [C, H, W] } or { c, h, w, data } (channel-first)",
    );
  const scale = !values && isBytes(input.data) ? 1 / 255 : 1;
  if ("width" in input) {
    const w = checkSide(source, "width", input.width);
    const h = checkSide(source, "height", input.height);
    const c = input.channels ?? input.data.length / (w * h);
    if (!Number.isInteger(c) || c < 1 || c > 4 || input.data.length !== c * h * w)
      throw new InputError(
        source,
        `${input.data.length} values do not make a ${w}×${h} image of ${input.channels ?? "1 to 4"} channel(s)`,
      );
    const out = new Float32Array(c * h * w);
    for (let i = 0; i < h * w; i++)
      for (let k = 0; k < c; k++) out[k * h * w + i] = input.data[i * c + k]! * scale;
    return dropAlpha({ c, h, w, data: out }, values);
  }
  let c: number, h: number, w: number;
  if ("shape" in input) {
    const s = input.shape;
    if (s.length !== 2 && s.length !== 3)
      throw new InputError(source, `shape [${s.join(", ")}]: expected [C, H, W] or [H, W]`);
    [c, h, w] = s.length === 2 ? [1, s[0]!, s[1]!] : (s as [number, number, number]);
  } else [c, h, w] = [input.c, input.h, input.w];
  for (const [what, n] of [
    ["channels", c],
    ["height", h],
    ["width", w],
  ] as const)
    checkSide(source, what, n);
  if (input.data.length !== c * h * w)
    throw new InputError(source, `${input.data.length} values, but ${c}×${h}×${w} needs ${c * h * w}`);
  const data = Float32Array.from(input.data, (v) => v * scale);
  return dropAlpha({ c, h, w, data }, values);
}

/** Grey replicated to RGB, alpha dropped (images only; a field's channels are kept). */
function dropAlpha(img: HostImage, values: boolean): HostImage {
  if (values || img.c === 3) return img;
  const { h, w } = img;
  const n = h * w;
  if (img.c === 4) return { c: 3, h, w, data: img.data.slice(0, 3 * n) };
  if (img.c === 1 || img.c === 2) {
    const data = new Float32Array(3 * n);
    for (let k = 0; k < 3; k++) data.set(img.data.subarray(0, n), k * n);
    return { c: 3, h, w, data };
  }
  throw new InputError(`${img.c}-channel image`, "expected 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)");
}

/** A crop (top, left, h×w), copied. */
function cropImage(img: HostImage, top: number, left: number, h: number, w: number): HostImage {
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < h; y++) {
      const src = (c * img.h + top + y) * img.w + left;
      data.set(img.data.subarray(src, src + w), (c * h + y) * w);
    }
  return { c: img.c, h, w, data };
}

/** Lanczos-3 in floating point (Pillow's convention; sharp's kernel for files), clamped to [0, 1]. */
function resizeTo(img: HostImage, h: number, w: number): HostImage {
  if (img.h === h && img.w === w) return img;
  const out = resample(img, h, w, "lanczos3");
  for (let i = 0; i < out.data.length; i++) out.data[i] = Math.min(1, Math.max(0, out.data[i]!));
  return out;
}

/**
 * An image prepared for a model of input size `h`×`w`: with the transform its training data
 * recorded (`t`: the dataset's evaluation crop), else the shorter side resized and the centre
 * `h`×`w` cropped (for a non-square model: scaled to cover `h`×`w`, centre crop), as `anr encode`
 * does. The crop geometry is torchvision's, as the datasets apply it; resampling is Lanczos-3.
 */
export function prepareImage(img: HostImage, [h, w]: [number, number], t: Transform | null): HostImage {
  if (t?.mode === "crop-resize") {
    const side = t.crop ?? Math.min(img.h, img.w);
    if (side > img.h || side > img.w)
      throw new InputError(
        `${img.w}×${img.h} image`,
        `the model's ${side}×${side} centre crop does not fit (the image is too small)`,
      );
    return resizeTo(cropImage(img, centred(img.h, side), centred(img.w, side), side, side), t.size, t.size);
  }
  let rh: number, rw: number;
  if (t) [rh, rw] = shorterSideTo(img.h, img.w, t.resize ?? t.size);
  else if (h === w) [rh, rw] = shorterSideTo(img.h, img.w, h);
  // Cover h×w: the side that is shorter relative to the target fills it, the other is truncated.
  else if (img.w * h >= img.h * w) [rh, rw] = [h, Math.max(w, Math.floor((img.w * h) / img.h))];
  else [rh, rw] = [Math.max(h, Math.floor((img.h * w) / img.w)), w];
  const resized = resizeTo(img, rh, rw);
  return cropImage(resized, centred(rh, h), centred(rw, w), h, w);
}

/**
 * A channel-first image as 8-bit RGBA pixels (values clamped to [0, 1]; grey replicated), the
 * layout of `ImageData`: `new ImageData(p.data, p.width, p.height)` puts it on a canvas.
 */
export function toPixels(img: HostImage): {
  data: Uint8ClampedArray<ArrayBuffer>;
  width: number;
  height: number;
  channels: 4;
} {
  const { h, w } = img;
  const n = h * w;
  const data = new Uint8ClampedArray(4 * n);
  for (let k = 0; k < n; k++) {
    for (let ch = 0; ch < 3; ch++)
      data[4 * k + ch] = Math.round(255 * Math.min(1, Math.max(0, img.data[(img.c < 3 ? 0 : ch) * n + k]!)));
    data[4 * k + 3] = 255;
  }
  return { data, width: w, height: h, channels: 4 };
}
