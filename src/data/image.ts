/**
 * Images and other (C, H, W) float grids on the host: decoding with sharp into float CHW in [0, 1],
 * resampling (PyTorch's bilinear, antialiased bilinear), crops, and PNG output.
 */
import sharp from "sharp";
import { writeFileAtomic } from "../util/fs.js";
import { InputError } from "../util/errors.js";
import type { Rng } from "../util/rng.js";
import type { HostImage } from "../util/host.js";

/** A host image: channel-major float data in [0, 1]. */
export type { HostImage };

/**
 * Decode any image sharp reads (PNG, JPEG, WebP, …), a file or its bytes, to RGB; grayscale becomes
 * 3 channels. `source` names the image in errors (default the path, or "<bytes>").
 */
export async function loadImage(
  file: string | Uint8Array,
  source = typeof file === "string" ? file : "<bytes>",
): Promise<HostImage> {
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await sharp(file).removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new InputError(source, `cannot decode image (${(e as Error).message})`);
  }
  return fromInterleaved(out.data, out.info.height, out.info.width, out.info.channels);
}

/** 8-bit interleaved pixels (HWC, as sharp's raw output) to RGB CHW in [0, 1]; 1 channel is replicated. */
export function fromInterleaved(bytes: Uint8Array, h: number, w: number, channels: number): HostImage {
  const data = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) data[c * h * w + i] = bytes[i * channels + (channels === 1 ? 0 : c)]! / 255;
  }
  return { c: 3, h, w, data };
}

/** Mirror left–right, in place. */
export function flipHorizontal(img: HostImage): HostImage {
  for (let row = 0; row < img.c * img.h; row++) img.data.subarray(row * img.w, (row + 1) * img.w).reverse();
  return img;
}

/**
 * Bilinear resize exactly as PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` without
 * antialias: source coordinate (dst + 0.5)·in/out − 0.5, clamped at 0, neighbours clamped to the edge.
 * MNIST-style pipelines use it to go 28 → 32, and sharp has no such kernel.
 */
export function resizeBilinear(img: HostImage, h: number, w: number): HostImage {
  const ys = bilinearTaps(img.h, h);
  const xs = bilinearTaps(img.w, w);
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++) {
    const src = img.data.subarray(c * img.h * img.w, (c + 1) * img.h * img.w);
    for (let y = 0; y < h; y++) {
      const r0 = ys.i0[y]! * img.w;
      const r1 = ys.i1[y]! * img.w;
      const ly = ys.l[y]!;
      for (let x = 0; x < w; x++) {
        const x0 = xs.i0[x]!;
        const x1 = xs.i1[x]!;
        const lx = xs.l[x]!;
        const top = (1 - lx) * src[r0 + x0]! + lx * src[r0 + x1]!;
        const bottom = (1 - lx) * src[r1 + x0]! + lx * src[r1 + x1]!;
        data[c * h * w + y * w + x] = (1 - ly) * top + ly * bottom;
      }
    }
  }
  return { c: img.c, h, w, data };
}

/** Per output index along one axis: the two source neighbours and the weight of the second. */
function bilinearTaps(size: number, out: number): { i0: Int32Array; i1: Int32Array; l: Float64Array } {
  const i0 = new Int32Array(out);
  const i1 = new Int32Array(out);
  const l = new Float64Array(out);
  const scale = size / out;
  for (let d = 0; d < out; d++) {
    const s = Math.max(0, (d + 0.5) * scale - 0.5);
    i0[d] = Math.min(Math.floor(s), size - 1);
    i1[d] = Math.min(i0[d]! + 1, size - 1);
    l[d] = s - i0[d]!;
  }
  return { i0, i1, l };
}

/**
 * Antialiased bilinear resampling of float (C, H, W) data, as PIL's BILINEAR reduce and
 * torch's `interpolate(mode="bilinear", antialias=True)`: a triangle filter widened by the
 * shrink factor, weights renormalised at the borders.
 */
export function resizeAntialiased(img: HostImage, h: number, w: number): HostImage {
  const ys = triangleTaps(img.h, h);
  const xs = triangleTaps(img.w, w);
  const tmp = new Float32Array(img.c * img.h * w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < img.h; y++) {
      const row = (c * img.h + y) * img.w;
      for (let x = 0; x < w; x++) {
        let acc = 0;
        const t = xs[x]!;
        for (let k = 0; k < t.weights.length; k++) acc += t.weights[k]! * img.data[row + t.first + k]!;
        tmp[(c * img.h + y) * w + x] = acc;
      }
    }
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < h; y++) {
      const t = ys[y]!;
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let k = 0; k < t.weights.length; k++)
          acc += t.weights[k]! * tmp[(c * img.h + t.first + k) * w + x]!;
        data[(c * h + y) * w + x] = acc;
      }
    }
  return { c: img.c, h, w, data };
}

function triangleTaps(size: number, out: number): { first: number; weights: Float64Array }[] {
  const scale = size / out;
  const support = Math.max(scale, 1);
  return Array.from({ length: out }, (_, i) => {
    const centre = (i + 0.5) * scale;
    const first = Math.max(Math.trunc(centre - support + 0.5), 0);
    const last = Math.min(Math.trunc(centre + support + 0.5), size);
    const weights = new Float64Array(last - first);
    let sum = 0;
    for (let j = 0; j < weights.length; j++) {
      const t = Math.abs((j + first - centre + 0.5) / support);
      weights[j] = t < 1 ? 1 - t : 0;
      sum += weights[j]!;
    }
    for (let j = 0; j < weights.length; j++) weights[j]! /= sum;
    return { first, weights };
  });
}

/** A crop (top, left, size×size), copied. */
export function crop(img: HostImage, top: number, left: number, h: number, w: number): HostImage {
  if (top < 0 || left < 0 || top + h > img.h || left + w > img.w) {
    throw new Error(`crop ${h}×${w} at (${top}, ${left}) does not fit a ${img.h}×${img.w} image`);
  }
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++) {
    for (let y = 0; y < h; y++) {
      const src = c * img.h * img.w + (top + y) * img.w + left;
      data.set(img.data.subarray(src, src + w), c * h * w + y * w);
    }
  }
  return { c: img.c, h, w, data };
}

/** A uniformly random size×size crop, flipped horizontally with probability `flip`. */
export function randomCrop(img: HostImage, size: number, rng: Rng, flip = 0): HostImage {
  const out = crop(img, rng.int(img.h - size + 1), rng.int(img.w - size + 1), size, size);
  if (flip > 0 && rng.uniform() < flip) flipHorizontal(out);
  return out;
}

/** Resize with sharp (Lanczos, or "cubic" for the bicubic baseline of super-resolution). */
export async function resizeImage(
  img: HostImage,
  h: number,
  w: number,
  kernel: "lanczos3" | "cubic" | "nearest" = "lanczos3",
): Promise<HostImage> {
  const raw = Buffer.from(toInterleavedBytes(img));
  const out = await sharp(raw, { raw: { width: img.w, height: img.h, channels: 3 } })
    .resize(w, h, { kernel, fit: "fill" })
    .raw()
    .toBuffer();
  return fromInterleaved(out, h, w, 3);
}

function toInterleavedBytes(img: HostImage): Uint8Array {
  const { h, w } = img;
  const bytes = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++)
      bytes[i * 3 + c] = Math.round(
        Math.min(1, Math.max(0, img.data[(img.c === 1 ? 0 : c) * h * w + i]!)) * 255,
      );
  }
  return bytes;
}

/** Images side by side (same height), with a gap, as one image. */
export function hconcat(images: HostImage[], gap = 2): HostImage {
  const h = Math.max(...images.map((i) => i.h));
  const w = images.reduce((s, i) => s + i.w, 0) + gap * (images.length - 1);
  const data = new Float32Array(3 * h * w).fill(1);
  let x0 = 0;
  for (const img of images) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < img.h; y++) {
        const src = (img.c === 1 ? 0 : c) * img.h * img.w + y * img.w;
        data.set(img.data.subarray(src, src + img.w), c * h * w + y * w + x0);
      }
    }
    x0 += img.w + gap;
  }
  return { c: 3, h, w, data };
}

/** Rows of images stacked vertically (rows may differ in width; padded white). */
export function vconcat(rows: HostImage[], gap = 2): HostImage {
  const w = Math.max(...rows.map((r) => r.w));
  const h = rows.reduce((s, r) => s + r.h, 0) + gap * (rows.length - 1);
  const data = new Float32Array(3 * h * w).fill(1);
  let y0 = 0;
  for (const r of rows) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < r.h; y++) {
        const src = (r.c === 1 ? 0 : c) * r.h * r.w + y * r.w;
        data.set(r.data.subarray(src, src + r.w), c * h * w + (y0 + y) * w);
      }
    }
    y0 += r.h + gap;
  }
  return { c: 3, h, w, data };
}

/**
 * An image as PNG bytes; values are clamped to [0, 1], grey becomes RGB. A `w`×`h` other than the
 * image's own enlarges (or shrinks) it without smoothing, so pixels stay visible.
 */
export async function pngBytes(img: HostImage, w = img.w, h = img.h): Promise<Buffer> {
  let s = sharp(Buffer.from(toInterleavedBytes(img)), { raw: { width: img.w, height: img.h, channels: 3 } });
  if (w !== img.w || h !== img.h) s = s.resize(w, h, { kernel: "nearest" });
  return s.png().toBuffer();
}

/** Write an image as PNG (atomically); values are clamped to [0, 1]. Optional integer upscaling. */
export async function savePng(path: string, img: HostImage, scale = 1): Promise<void> {
  await writeFileAtomic(path, await pngBytes(img, img.w * scale, img.h * scale));
}

/** PSNR of values in [0, 1] (peak 1): −10·log10(mean squared error). */
export function psnrUnit(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  let se = 0;
  for (let i = 0; i < target.length; i++) se += (pred[i]! - target[i]!) ** 2;
  return -10 * Math.log10(se / target.length);
}

/** Images of one size stacked into one (N, C, H, W) buffer; `name(k)` labels item k in errors. */
export function stackImages(
  imgs: HostImage[],
  name: (k: number) => string = (k) => `item ${k}`,
): { data: Float32Array; shape: [number, number, number, number] } {
  const { c, h, w } = imgs[0]!;
  const data = new Float32Array(imgs.length * c * h * w);
  imgs.forEach((img, k) => {
    if (img.c !== c || img.h !== h || img.w !== w)
      throw new InputError(
        name(k),
        `item is ${img.c}×${img.h}×${img.w}, expected ${c}×${h}×${w} like the batch's first`,
      );
    data.set(img.data, k * c * h * w);
  });
  return { data, shape: [imgs.length, c, h, w] };
}

/** Frames of one size as an animated GIF (looping), written atomically. */
export async function saveGif(path: string, frames: HostImage[], delayMs = 100): Promise<void> {
  const pngs = await Promise.all(
    frames.map((f) =>
      sharp(Buffer.from(toInterleavedBytes(f)), { raw: { width: f.w, height: f.h, channels: 3 } })
        .png()
        .toBuffer(),
    ),
  );
  const gif = await sharp(pngs, { join: { animated: true } })
    .gif({ delay: frames.map(() => delayMs), loop: 0 })
    .toBuffer();
  await writeFileAtomic(path, gif);
}
