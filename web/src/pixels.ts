/** Images on the page: files to model input, (C, H, W) floats to canvases, bicubic resampling. */
import type { Region } from "./protocol.js";

/**
 * An image file (or blob) as the model's input: the shorter side resized, centre-cropped to
 * h × w (as `anr encode` does), (C, H, W) floats in [0, 1]. Colour profiles are ignored, so a
 * PNG's values arrive unchanged.
 */
export async function imageToPixels(blob: Blob, h: number, w: number, c: number): Promise<Float32Array> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const scale = Math.max(w / bitmap.width, h / bitmap.height);
  const sw = w / scale;
  const sh = h / scale;
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { colorSpace: "srgb" })!;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, (bitmap.width - sw) / 2, (bitmap.height - sh) / 2, sw, sh, 0, 0, w, h);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++)
    for (let k = 0; k < h * w; k++) out[ch * h * w + k] = rgba[4 * k + (c === 1 ? 0 : ch)]! / 255;
  return out;
}

/**
 * A rendered RGBA view (the multi-view set's PNGs) at size × size, composited on white
 * (rgb·a + 1 − a, as the data loader does): (3, size, size) in [0, 1]. A whole-number reduction
 * (the shipped 64² views to a 32² model) averages each block of pixels after compositing; any
 * other size is resampled by the canvas. The loader resizes with Lanczos-3 (sharp) instead, so
 * the support views differ from Node's slightly at edges (test/web.test.ts measures how much).
 * Also the file's own width (its focal length is given at that width).
 */
export async function viewToPixels(
  blob: Blob,
  size: number,
): Promise<{ pixels: Float32Array; width: number }> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const width = bitmap.width;
  const whole = bitmap.width === bitmap.height && bitmap.width % size === 0;
  const side = whole ? bitmap.width : size;
  const canvas = new OffscreenCanvas(side, side);
  const ctx = canvas.getContext("2d", { colorSpace: "srgb" })!;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, side, side);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, side, side).data;
  const k = side / size;
  const n = size * size;
  const out = new Float32Array(3 * n);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const p = 4 * (y * side + x);
      const a = rgba[p + 3]! / 255;
      const o = Math.floor(y / k) * size + Math.floor(x / k);
      for (let c = 0; c < 3; c++) out[c * n + o]! += ((rgba[p + c]! / 255) * a + 1 - a) / (k * k);
    }
  return { pixels: out, width };
}

/** (C, H, W) floats in [0, 1] (clamped here) as an opaque RGBA ImageData. */
export function pixelsToImageData(chw: Float32Array, c: number, h: number, w: number): ImageData {
  const img = new ImageData(w, h);
  const n = h * w;
  for (let k = 0; k < n; k++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = chw[(c === 1 ? 0 : ch) * n + k]!;
      img.data[4 * k + ch] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
    img.data[4 * k + 3] = 255;
  }
  return img;
}

/** A canvas holding (C, H, W) floats. */
export function pixelsToCanvas(chw: Float32Array, c: number, h: number, w: number): HTMLCanvasElement {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d")!.putImageData(pixelsToImageData(chw, c, h, w), 0, 0);
  return canvas;
}

/** Keys' cubic convolution kernel (a = −0.5), the usual "bicubic". */
function cubic(t: number): number {
  const x = Math.abs(t);
  if (x <= 1) return 1.5 * x * x * x - 2.5 * x * x + 1;
  if (x < 2) return -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2;
  return 0;
}

/**
 * Bicubic upsampling of an h × w input (C, H, W) at the pixel centres of `region` (the model's
 * [-1, 1]² coordinates), width × height samples, edges clamped: the baseline the split view shows.
 */
export function bicubicRegion(
  chw: Float32Array,
  c: number,
  h: number,
  w: number,
  region: Region,
  width: number,
  height: number,
): Float32Array {
  const out = new Float32Array(c * width * height);
  const n = width * height;
  const taps = (u: number, size: number): { idx: number[]; wts: number[] } => {
    const f = Math.floor(u);
    const idx: number[] = [];
    const wts: number[] = [];
    for (let k = -1; k <= 2; k++) {
      idx.push(Math.min(size - 1, Math.max(0, f + k)));
      wts.push(cubic(u - (f + k)));
    }
    return { idx, wts };
  };
  const cols = Array.from({ length: width }, (_, j) =>
    taps(((region.x0 + ((region.x1 - region.x0) * (j + 0.5)) / width + 1) / 2) * w - 0.5, w),
  );
  for (let i = 0; i < height; i++) {
    const row = taps(((region.y0 + ((region.y1 - region.y0) * (i + 0.5)) / height + 1) / 2) * h - 0.5, h);
    for (let j = 0; j < width; j++) {
      const col = cols[j]!;
      for (let ch = 0; ch < c; ch++) {
        const base = ch * h * w;
        let v = 0;
        for (let a = 0; a < 4; a++) {
          const r = base + row.idx[a]! * w;
          let s = 0;
          for (let b = 0; b < 4; b++) s += col.wts[b]! * chw[r + col.idx[b]!]!;
          v += row.wts[a]! * s;
        }
        out[ch * n + i * width + j] = v;
      }
    }
  }
  return out;
}
