/**
 * The examples in examples/ run as written, on small data made here: each Node example as a
 * script (its "anr" imports resolved to src/ by examples/tsconfig.json), checked by what it
 * writes; the browser example bundled for the browser as test/portable.test.ts bundles the core.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import sharp from "sharp";
import { readNpy, writeNpy } from "../src/io/array-files.js";
import { saveModel, readTokenFile } from "../src/io/files.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { initHostParams } from "../src/model/params.js";
import { bundledPackages, tinyConfig } from "./fixtures.js";

const REPO = resolve(fileURLToPath(import.meta.url), "..", "..");

/** Run examples/<name> with `args` from the repository root, as its header says. */
function example(name: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, ["--import", "tsx", join("examples", name), ...args], {
      cwd: REPO,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(REPO, "examples", "tsconfig.json") },
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d));
    p.stderr.on("data", (d: Buffer) => (err += d));
    p.on("error", fail);
    p.on("close", (code) => ok({ code, out, err }));
  });
}

/** A w×h PNG of smooth colour bands, different per `seed`. */
async function writePattern(path: string, w: number, h: number, seed: number): Promise<void> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++)
        px[(y * w + x) * 3 + c] = Math.round(
          127.5 + 120 * Math.sin((x * (1 + (seed % 3)) + y * (c + 1) + seed) / 6),
        );
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

test("examples/encode-decode.ts: a photo of any size to tokens (a token file) and back at 4×, and its middle at 16×", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "anr-ex-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writePattern(join(dir, "mine.png"), 50, 40, 1);
  const r = await example("encode-decode.ts", [join(dir, "mine.png"), join(dir, "mine-x4.png")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /2,048 floats at 32×32 → .*mine-x4\.png \(128×128\)/);
  const meta = await sharp(join(dir, "mine-x4.png")).metadata();
  assert.deepEqual([meta.width, meta.height], [128, 128]);
  // The middle quarter at 16× the model's 32²: 256².
  const zoom = await sharp(join(dir, "mine-x4.zoom.png")).metadata();
  assert.deepEqual([zoom.width, zoom.height], [256, 256]);
  const tokens = await readTokenFile(join(dir, "mine-x4.tokens.safetensors"));
  assert.deepEqual(tokens.names, ["mine.png"]);
});

test("examples/train-folder.ts: trains on a folder with its short config and uses the run folder as a model", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "anr-ex-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, "imgs"));
  for (let i = 0; i < 10; i++) await writePattern(join(dir, "imgs", `im${i}.png`), 48, 40 + i, i);
  const run = join(dir, "run");
  const r = await example("train-folder.ts", [join(dir, "imgs"), run, "3"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /step 0: test PSNR [\d.]+ dB/);
  assert.match(r.out, /done: 3 steps, test PSNR [\d.]+ dB/);
  const meta = await sharp(join(run, "held-out-x4.png")).metadata();
  assert.deepEqual([meta.width, meta.height], [128, 128]);
  const metrics = (await readFile(join(run, "metrics.jsonl"), "utf8")).trim().split("\n");
  assert.equal((JSON.parse(metrics.at(-1)!) as { step: number }).step, 3);
});

test("examples/field-units.ts: a field in kelvin in, the field at 4× in kelvin out", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "anr-ex-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const base = tinyConfig("ANR");
  const config = parseHyperNetworkConfig({
    ...base,
    tokenizer: { ...base.tokenizer, args: { ...base.tokenizer.args, img_channels: 1 } },
    hyponet: { ...base.hyponet, args: { ...base.hyponet.args, out_dim: 1 } },
    channels: [{ name: "t2m", units: "K", shift: -260, scale: 0.01 }],
  });
  await saveModel(join(dir, "field.safetensors"), config, initHostParams(config, 7));
  const [h, w] = [16, 16];
  const data = Float32Array.from({ length: h * w }, (_, i) => 250 + 30 * Math.cos(i / 20));
  await writeNpy(join(dir, "t2m.npy"), { shape: [h, w], data });
  const out = join(dir, "t2m-x4.npy");
  const r = await example("field-units.ts", [join(dir, "field.safetensors"), join(dir, "t2m.npy"), out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^t2m: [\d.]+ to [\d.]+ K, mean [\d.]+ K \(64×64\)$/m);
  const x4 = await readNpy(out);
  assert.deepEqual(x4.shape, [1, 64, 64]);
  // Physical units: the normalisation n = 0.01·(x − 260) undone; n of an untrained model stays
  // within a few units of 0, so x within a few hundred kelvin of 260, not near 0 or 1.
  const mean = x4.data.reduce((a, b) => a + b, 0) / x4.data.length;
  assert.ok(Math.abs(mean - 260) < 300 && Math.abs(mean) > 10, `mean ${mean}`);
});

test("examples/browser: bundles for the browser with the portable core only", async () => {
  const result = await build({
    entryPoints: [join(REPO, "examples", "browser", "main.ts")],
    absWorkingDir: REPO,
    tsconfig: join(REPO, "examples", "tsconfig.json"),
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "silent",
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.deepEqual(bundledPackages(inputs), ["@jax-js/jax", "zod"]);
  assert.ok(inputs.includes("src/api/model.ts"), inputs.join(", "));
  // None of the Node shell (as test/portable.test.ts lists it), nor the facade's Node subclass.
  const shell = inputs.filter((f) =>
    /^src\/(cli|data|golden)\/|^src\/api\/node|^src\/io\/(files|array-files|zoo)|^src\/training\/(trainer|loop|drivers|checkpoint|run-)/.test(
      f,
    ),
  );
  assert.deepEqual(shell, []);
});
