/**
 * Super-resolution of SVG data against the truth (`anr eval --sr`): on a few sharp-edged SVGs
 * written here, the bicubic and Lanczos-3 numbers of the report are recomputed independently —
 * the SVGs rendered by this test with sharp at 32², 128² and 256², upsampled by Pillow in floating
 * point (Debian's python3-pil) — and must match; which also shows the truth the evaluation uses is
 * the SVG rendered at the higher resolution, not an upsampled one. The resampler itself is checked
 * against Pillow on random values (shrinking too), and the reason for it: sharp enlarges with the
 * same bicubic interpolator whatever kernel is asked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { initBackend } from "../src/backend/index.js";
import { resample, type ResampleKernel } from "../src/eval/resample.js";
import { skipWithoutData } from "./fixtures.js";
import { runCli as run, tempDir } from "./cli-helpers.js";

/** Debian's Python, where python3-pil is installed (with python3-skimage). */
const SYSTEM_PYTHON = "/usr/bin/python3";
const HAS_PIL =
  existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ["-c", "import PIL, numpy"]).status === 0;

/** Shapes with sharp edges and flat colours, on a 36×36 view box. */
const SVGS: Record<string, string> = {
  "square.svg": `<rect x="7" y="9" width="20" height="17" fill="#d03020"/>`,
  "rings.svg": `<circle cx="18" cy="17" r="11" fill="#2050c0"/><circle cx="18" cy="17" r="4" fill="#f0d020"/>`,
  "triangle.svg": `<path d="M4 32 L18 4 L32 32 Z" fill="#20a040"/>`,
};

/** The test's own rendering: the 36-unit view box at `size` pixels, on white, RGB bytes. */
async function renderHere(svg: string, size: number): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: (72 * size) / 36 })
    .flatten({ background: "#ffffff" })
    .removeAlpha()
    .raw()
    .toBuffer();
}

/**
 * Pillow: each channel of the input PNG as a float image ("F") resized with BICUBIC and LANCZOS,
 * clipped to [0, 1], against the truth PNG at that size; prints the PSNR per item and method.
 */
const PY_SR = `
import json, sys, numpy as np
from PIL import Image
def channels(path):
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    return [a[:, :, k] for k in range(3)]
out = {}
for inp, truth, size in json.loads(sys.argv[1]):
    t = np.stack(channels(truth))
    for name, f in (("bicubic", Image.BICUBIC), ("lanczos3", Image.LANCZOS)):
        up = np.stack([np.asarray(Image.fromarray(c.astype(np.float32), "F").resize((size, size), f)) for c in channels(inp)])
        up = np.clip(up.astype(np.float64), 0, 1)
        out.setdefault(truth, {})[name] = -10 * np.log10(np.mean((up - t) ** 2))
print(json.dumps(out))
`;

test("svg super-resolution: the report's bicubic and Lanczos-3 PSNR match Pillow's against the SVG rendered at ×4 and ×8", async (t) => {
  if (skipWithoutData(t, HAS_PIL, `${SYSTEM_PYTHON} with PIL (apt install python3-pil)`)) return;
  await initBackend();
  const dir = await tempDir(t, "svg-sr");
  await mkdir(join(dir, "svgs"));
  const wrapped = Object.fromEntries(
    Object.entries(SVGS).map(([f, body]) => [
      f,
      `<svg xmlns="http://www.w3.org/2000/svg" width="36" height="36" viewBox="0 0 36 36">${body}</svg>`,
    ]),
  );
  for (const [f, svg] of Object.entries(wrapped)) await writeFile(join(dir, "svgs", f), svg);
  const config = join(dir, "run.json");
  await writeFile(
    config,
    JSON.stringify({
      name: "svg-sr",
      data: { kind: "svg", root: join(dir, "svgs"), size: 32, split: { train: 0, val: 0, test: 1 } },
      model: { preset: "tiny32-anr" },
      train: { steps: 1, batch_size: 2 },
      eval: { split: "test", batch_size: 2, clamp: true },
    }),
  );
  // The shipped demo model (an image ANR at 32²): what is checked is the truth and the baselines.
  const out = join(dir, "out");
  const r = await run([
    "eval",
    "--model",
    "demo-photos-anr",
    "--config",
    config,
    "--sr",
    "4,8",
    "--out",
    out,
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /×4\s+128²\s+bicubic\s+\d+\.\d{3}\s+0\.\d{4}/);
  const report = JSON.parse(await readFile(join(out, "eval-test-online-sr.json"), "utf8")) as {
    items: string[];
    inputSize: number;
    factors: { factor: number; size: number; scores: Record<string, { psnr: number; ssim: number }> }[];
  };
  assert.deepEqual([...report.items].sort(), Object.keys(SVGS).sort());
  assert.deepEqual(
    report.factors.map((f) => [f.factor, f.size]),
    [
      [4, 128],
      [8, 256],
    ],
  );
  for (const f of [4, 8]) assert.ok(existsSync(join(out, `eval-test-online-sr-x${f}.png`)));
  // Independently: render each SVG here at 32² and at the truth sizes, and let Pillow upsample.
  const jobs: [string, string, number][] = [];
  for (const item of report.items) {
    const png = async (size: number) => {
      const path = join(dir, `${item}.${size}.png`);
      await sharp(await renderHere(wrapped[item]!, size), { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toFile(path);
      return path;
    };
    const input = await png(32);
    for (const size of [128, 256]) jobs.push([input, await png(size), size]);
  }
  const py = spawnSync(SYSTEM_PYTHON, ["-c", PY_SR, JSON.stringify(jobs)], { encoding: "utf8" });
  assert.equal(py.status, 0, py.stderr);
  const pil = JSON.parse(py.stdout) as Record<string, Record<string, number>>;
  for (const { size, scores } of report.factors)
    for (const method of ["bicubic", "lanczos3"]) {
      const mine = jobs.filter(([, , s]) => s === size).map(([, truth]) => pil[truth]![method]!);
      const mean = mine.reduce((a, b) => a + b, 0) / mine.length;
      assert.ok(
        Math.abs(scores[method]!.psnr - mean) < 1e-3,
        `${method} at ${size}²: report ${scores[method]!.psnr} dB, Pillow ${mean} dB`,
      );
    }
});

/** Pillow's resize of one float channel (mode "F"), for the resampler's own check. */
const PY_RESAMPLE = `
import json, sys, numpy as np
from PIL import Image
h, w, H, W, kernel, values = json.loads(sys.argv[1])
f = {"bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}[kernel]
a = np.array(values, dtype=np.float32).reshape(h, w)
print(json.dumps(np.asarray(Image.fromarray(a, "F").resize((W, H), f), dtype=np.float64).ravel().tolist()))
`;

test("svg super-resolution: the resampler is Pillow's bicubic and Lanczos-3, enlarging and shrinking", (t) => {
  if (skipWithoutData(t, HAS_PIL, `${SYSTEM_PYTHON} with PIL (apt install python3-pil)`)) return;
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
  for (const kernel of ["bicubic", "lanczos3"] as ResampleKernel[])
    for (const [h, w, H, W] of [
      [5, 7, 23, 13],
      [9, 9, 36, 72],
      [30, 20, 7, 11],
    ] as const) {
      const values = Array.from({ length: h * w }, random);
      const mine = resample({ c: 1, h, w, data: Float32Array.from(values) }, H, W, kernel);
      const py = spawnSync(SYSTEM_PYTHON, ["-c", PY_RESAMPLE, JSON.stringify([h, w, H, W, kernel, values])], {
        encoding: "utf8",
      });
      assert.equal(py.status, 0, py.stderr);
      const theirs = JSON.parse(py.stdout) as number[];
      assert.equal(theirs.length, H * W);
      const worst = Math.max(...theirs.map((v, i) => Math.abs(v - mine.data[i]!)));
      assert.ok(worst < 1e-5, `${kernel} ${h}×${w} → ${H}×${W}: differs from Pillow by ${worst}`);
    }
});

test("svg super-resolution: why not sharp — libvips enlarges with one bicubic interpolator whatever the kernel", async () => {
  const src = Buffer.from(Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37 + (i % 5) * 50) % 256));
  const up = (kernel: "cubic" | "lanczos3") =>
    sharp(src, { raw: { width: 8, height: 8, channels: 3 } })
      .resize(32, 32, { kernel, fit: "fill" })
      .raw()
      .toBuffer();
  // If this ever fails, sharp has a real Lanczos enlargement and the baselines could use it.
  assert.deepEqual(await up("lanczos3"), await up("cubic"));
  // Ours differ, as the kernels do.
  const img = { c: 1, h: 8, w: 24, data: Float32Array.from(src, (v) => v / 255) };
  assert.notDeepEqual(resample(img, 32, 32, "lanczos3").data, resample(img, 32, 32, "bicubic").data);
});
