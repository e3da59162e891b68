/**
 * `npm start` (= `anr demo`), shrunk to 2 training steps: the run folder, the report line and the
 * super-resolution picture, panel by panel, against an independent computation of each panel.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { initBackend } from "../src/backend/index.js";
import { CAPTION_STRIP } from "../src/eval/grids.js";
import { loadModel } from "../src/io/files.js";
import { EMBEDDED_PHOTOS } from "../src/training/run-presets.js";
import { decodeWith, encodeWith, levelsOff, readPng, runCli, tempDir } from "./cli-helpers.js";

/** A photo's centre 32×32 crop as CHW bytes, decoded by sharp alone. */
async function centreCrop(path: string, size: number): Promise<Uint8Array> {
  const { data, info } = await sharp(path)
    .removeAlpha()
    .toColourspace("srgb")
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width: w, height: h, channels } = info;
  const [top, left] = [Math.floor((h - size) / 2), Math.floor((w - size) / 2)];
  const out = new Uint8Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        out[(c * size + y) * size + x] = data[((top + y) * w + left + x) * channels + c]!;
  return out;
}

/** Catmull-Rom (a = −0.5) weights of the 4 taps around `t` ∈ [0, 1). */
function catmullRom(t: number): [number, number, number, number] {
  const a = -0.5;
  const k = (x: number) => {
    const s = Math.abs(x);
    return s <= 1
      ? (a + 2) * s ** 3 - (a + 3) * s ** 2 + 1
      : s < 2
        ? a * s ** 3 - 5 * a * s ** 2 + 8 * a * s - 4 * a
        : 0;
  };
  return [k(1 + t), k(t), k(1 - t), k(2 - t)];
}

/**
 * Bicubic (Catmull-Rom) enlargement by an integer factor of CHW bytes, edges clamped: our own
 * bicubic, to check the demo's "bicubic ×4" column without asking sharp. libvips enlarges with its
 * bicubic interpolator (an affine transform), so output pixel X samples the source at X/f − 1/2
 * (found by measurement on a random image:
 * this mapping gives at most 1.04 levels against sharp's "cubic", the centre-aligned
 * (X + 1/2)/f − 1/2 gives 45, and Mitchell or B-spline kernels over 190).
 */
function bicubicUp(src: Uint8Array, n: number, f: number): Float64Array {
  const m = n * f;
  const taps = Array.from({ length: m }, (_, X) => {
    const s = X / f - 0.5;
    const i = Math.floor(s);
    const w = catmullRom(s - i);
    return [-1, 0, 1, 2].map((d, k) => [Math.min(n - 1, Math.max(0, i + d)), w[k]!] as const);
  });
  const out = new Float64Array(3 * m * m);
  for (let c = 0; c < 3; c++)
    for (let Y = 0; Y < m; Y++)
      for (let X = 0; X < m; X++) {
        let v = 0;
        for (const [y, wy] of taps[Y]!)
          for (const [x, wx] of taps[X]!) v += wy * wx * src[(c * n + y) * n + x]!;
        out[(c * m + Y) * m + X] = Math.min(255, Math.max(0, v));
      }
  return out;
}

/**
 * Panel (row, col) of the 2×-scaled super-resolution.png: 128×128 panels with 2-pixel gaps, under
 * the caption strip (drawn at the final size, so not scaled).
 */
function panel(img: { w: number; h: number; data: Uint8Array }, row: number, col: number): Uint8Array {
  const s = 128;
  const out = new Uint8Array(3 * s * s);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++) {
        // Every other pixel of the ×2 nearest-neighbour enlargement is the original pixel.
        const [Y, X] = [2 * (row * (s + 2) + y) + CAPTION_STRIP, 2 * (col * (s + 2) + x)];
        out[(c * s + y) * s + x] = img.data[(c * img.h + Y) * img.w + X]!;
      }
  return out;
}

/**
 * Our bicubic (float) against libvips's (fixed-point weights, rounded to bytes), in 8-bit levels:
 * measured worst 1.07 on the three demo crops; a wrong kernel or pixel mapping is ≥ 45 off.
 */
const BICUBIC_LEVELS = 1.25;
/** PNG bytes against predictImage, as in cli.test.ts (exact quantisation ≤ 0.5, measured 0.4999). */
const PNG_LEVELS = 0.5 + 1e-3;

test("demo: 2 steps, then 4× super-resolution of held-out crops: nearest, bicubic and ANR panels", async (t) => {
  await initBackend();
  const out = await tempDir(t, "demo");
  const r = await runCli(["demo", "--steps", "2", "--out", out]);
  assert.equal(r.code, 0, r.err);
  const files = await readdir(out);
  for (const f of [
    "config.json",
    "eval.json",
    "model.safetensors",
    "model-ema.safetensors",
    "super-resolution.png",
  ])
    assert.ok(files.includes(f), `${f} in ${files.join(", ")}`);
  const evalJson = JSON.parse(await readFile(join(out, "eval.json"), "utf8")) as {
    psnr: number;
    ssim: number;
    images: number;
  };
  assert.equal(evalJson.images, 8, "the 8 held-out photos of data/photos/test");
  assert.match(
    r.out,
    new RegExp(
      `held-out PSNR ${evalJson.psnr.toFixed(2)} dB, SSIM ${evalJson.ssim.toFixed(3)} \\(8 photos\\)`,
    ),
  );
  const config = JSON.parse(await readFile(join(out, "config.json"), "utf8")) as { train: { steps: number } };
  assert.equal(config.train.steps, 2);

  const sr = await readPng(join(out, "super-resolution.png"));
  assert.deepEqual(
    [sr.h, sr.w],
    [2 * (3 * 128 + 4) + CAPTION_STRIP, 2 * (3 * 128 + 4)],
    "3 rows of 3 panels, 2-px gaps, ×2, under the caption strip",
  );
  // Each column's caption strip (#ececec, text centred) starts at the column's left edge.
  for (let col = 0; col < 3; col++)
    for (let c = 0; c < 3; c++)
      assert.equal(
        sr.data[(c * sr.h + 1) * sr.w + 2 * col * 130 + 2],
        0xec,
        `caption strip over column ${col}`,
      );
  const { config: cfg, weights } = await loadModel(join(out, "model.safetensors"));
  const names = ["rocket.png", "face-puppy.png", "face-sunflower.png"];
  const crops = await Promise.all(names.map((n) => centreCrop(join(EMBEDDED_PHOTOS, "test", n), 32)));
  const tokens = await encodeWith(
    weights,
    cfg,
    crops.map((b) => Float32Array.from(b, (v) => v / 255)),
    [32, 32],
  );
  const anr = await decodeWith(weights, cfg, tokens, 128, 128);
  let worstBicubic = 0;
  for (const [i, name] of names.entries()) {
    const nearest = panel(sr, i, 0);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 128; y++)
        for (let x = 0; x < 128; x++) {
          const got = nearest[(c * 128 + y) * 128 + x]!;
          const want = crops[i]![(c * 32 + (y >> 2)) * 32 + (x >> 2)]!;
          if (got !== want) assert.fail(`${name}: nearest panel (${c}, ${y}, ${x}) is ${got}, input ${want}`);
        }
    const bicubic = panel(sr, i, 1);
    const ours = bicubicUp(crops[i]!, 32, 4);
    for (let k = 0; k < ours.length; k++)
      worstBicubic = Math.max(worstBicubic, Math.abs(bicubic[k]! - ours[k]!));
    const off = levelsOff(panel(sr, i, 2), anr.subarray(i * 3 * 128 * 128, (i + 1) * 3 * 128 * 128));
    assert.ok(off <= PNG_LEVELS, `${name}: ANR panel is ${off} levels from predictImage`);
  }
  assert.ok(worstBicubic <= BICUBIC_LEVELS, `bicubic panel is ${worstBicubic} levels from our bicubic`);
});
