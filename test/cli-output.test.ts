/**
 * What the commands take and write (issue 11): `--size` and `--scale` name the same pixels,
 * `eval --images` scores any folder of images as the library computes it, and `info` describes a
 * run folder and any safetensors file (a table, or one JSON object).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { psnrUnit } from "../src/data/image.js";
import { ssim } from "../src/eval/ssim.js";
import { loadModel, readSafetensors } from "../src/io/files.js";
import { countParams } from "../src/model/params.js";
import { formatNumber } from "../src/util/progress.js";
import { golden } from "./fixtures.js";
import {
  chwFromBytes,
  decodeWith,
  encodeWith,
  levelsOff,
  pixels,
  readPng,
  runCli as run,
  tempDir,
  tinyRunConfig,
  writePhoto,
} from "./cli-helpers.js";

/** PNG bytes against predictImage, as in cli.test.ts (exact quantisation ≤ 0.5 levels). */
const PNG_LEVELS = 0.5 + 1e-3;
/**
 * eval computes with the jit evaluation step, we with predictImage: measured 0 dB and 0 SSIM
 * apart in cli.test.ts; the bounds leave room for summation order only.
 */
const PSNR_DB = 1e-6;
const SSIM_ABS = 1e-6;

/** The golden ANR (32×32 inputs) initialised with seed 1, in `dir`. */
async function goldenModel(dir: string): Promise<string> {
  const path = join(dir, "m.safetensors");
  const r = await run(["init", join(golden, "anr", "config.json"), "--out", path, "--seed", "1"]);
  assert.equal(r.code, 0, r.err);
  return path;
}

test("decode: --scale K and --size (K·h)x(K·w) write the same pixels, those of predictImage", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "scale");
  const model = await goldenModel(dir);
  await writePhoto(join(dir, "a.png"), 32, 32, 4);
  const tokens = join(dir, "t.safetensors");
  let r = await run(["encode", join(dir, "a.png"), "--model", model, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  const decoded = async (flags: string[], out: string) => {
    const d = await run(["decode", tokens, "--model", model, ...flags, "--out", join(dir, out), "--json"]);
    assert.equal(d.code, 0, d.err);
    return JSON.parse(d.out) as { size: [number, number]; files: string[] };
  };
  const bySize = await decoded(["--size", "64x64"], "size");
  const bySquare = await decoded(["--size", "64"], "square");
  const byScale = await decoded(["--scale", "2"], "scale");
  const native = await decoded([], "native");
  const fractional = await decoded(["--scale", "1.5"], "fractional");
  assert.deepEqual(
    [bySize.size, bySquare.size, byScale.size, native.size, fractional.size],
    [
      [64, 64],
      [64, 64],
      [64, 64],
      [32, 32],
      [48, 48],
    ],
  );
  assert.deepEqual(await readdir(join(dir, "scale")), ["a.64x64.png"]);
  const png = await readPng(join(dir, "scale", "a.64x64.png"));
  assert.deepEqual((await readPng(join(dir, "size", "a.64x64.png"))).data, png.data);
  assert.deepEqual((await readPng(join(dir, "square", "a.64x64.png"))).data, png.data);
  const { config, weights } = await loadModel(model);
  const want = await decodeWith(weights, config, (await readSafetensors(tokens)).tensors, 64, 64);
  assert.ok(levelsOff(png.data, want) <= PNG_LEVELS, `${levelsOff(png.data, want)} levels from predictImage`);
  r = await run(["decode", tokens, "--model", model, "--size", "64", "--scale", "2"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /give --size or --scale, not both/);
});

test("eval RUN --images DIR: PSNR/SSIM of every image under DIR, prepared as encode prepares it", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "images");
  const model = await goldenModel(dir);
  const imgs = join(dir, "my photos");
  await mkdir(join(imgs, "sub"), { recursive: true });
  // a.png is the model's size; sub/b.png is 48 wide: shorter side kept, centre columns 8–39.
  await writePhoto(join(imgs, "a.png"), 32, 32, 0);
  await writePhoto(join(imgs, "sub", "b.png"), 48, 32, 1);
  await writeFile(join(imgs, "notes.txt"), "not an image");
  const inputs = [chwFromBytes(pixels(32, 32, 0), 32, 32), chwFromBytes(pixels(48, 32, 1), 48, 32, 8, 32)];
  const out = join(dir, "ev");
  const r = await run(["eval", model, "--images", imgs, "--out", out]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readdir(out)).sort(), ["eval-my-photos-online.json", "eval-my-photos-online.png"]);
  const report = JSON.parse(await readFile(join(out, "eval-my-photos-online.json"), "utf8")) as {
    images: number;
    psnr: number;
    ssim: number;
    perImage: { id: string; psnr: number; ssim: number }[];
  };
  assert.equal(report.images, 2);
  assert.deepEqual(
    report.perImage.map((p) => p.id),
    ["a.png", "sub/b.png"],
  );
  // The library's own path: tokens, decoded at 32×32, clamped to [0, 1].
  const { config, weights } = await loadModel(model);
  const pred = await decodeWith(weights, config, await encodeWith(weights, config, inputs, [32, 32]), 32, 32);
  const n = 3 * 32 * 32;
  for (const [i, img] of inputs.entries()) {
    const p = pred.subarray(i * n, (i + 1) * n).map((v) => Math.min(1, Math.max(0, v)));
    const got = report.perImage[i]!;
    assert.ok(
      Math.abs(got.psnr - psnrUnit(p, img)) < PSNR_DB,
      `${got.id}: ${got.psnr} vs ${psnrUnit(p, img)}`,
    );
    assert.ok(Math.abs(got.ssim - ssim(p, img, 3, 32, 32)) < SSIM_ABS, `${got.id}: SSIM`);
  }
  assert.ok(Math.abs(report.psnr - (report.perImage[0]!.psnr + report.perImage[1]!.psnr) / 2) < 1e-9);
  assert.match(
    r.out,
    new RegExp(`PSNR ${report.psnr.toFixed(3)} dB, SSIM ${report.ssim.toFixed(4)} over 2 images`),
  );
  // A config of its own is no part of it; the model must be given.
  let bad = await run(["eval", model, "--images", imgs, "--preset", "demo"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--images evaluates the folder as it is: --preset do not apply/);
  bad = await run(["eval", "--images", imgs]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--images DIR: give the model too/);
});

/** The table row `info` prints for a tensor. */
const row = (name: string, dtype: string, shape: number[], numel: number) =>
  new RegExp(
    `^ {2}${name.replace(/\./g, "\\.")} +${dtype} +\\[${shape.join(", ")}\\] +${numel.toLocaleString("en")}$`,
    "m",
  );

test("info RUN: config, steps done, last metrics and files; a stopped run says how to continue", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "info-run");
  const runDir = join(dir, "run");
  let r = await run(["train", await tinyRunConfig(dir, 2), "--out", runDir]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`run folder: ${runDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/\n$`));
  r = await run(["info", runDir]);
  assert.equal(r.code, 0, r.err);
  const metrics = (await readFile(join(runDir, "metrics.jsonl"), "utf8")).trim().split("\n");
  const last = JSON.parse(metrics.at(-1)!) as { step: number; test_psnr: number };
  assert.match(r.out, /: run "tiny", task image\n/);
  // tinyConfig's ANR: 8 R-tokens of the hidden size 32.
  assert.match(r.out, /^ {2}model {7}ANR, [\d,]+ parameters, 256 floats per instance$/m);
  const cfg = JSON.parse(await readFile(join(runDir, "config.json"), "utf8")) as { train: { lr: number } };
  assert.match(
    r.out,
    new RegExp(`^ {2}training {4}2 steps of 2 images, lr ${cfg.train.lr}, EMA 0\\.995, seed 0$`, "m"),
  );
  assert.match(r.out, /^ {2}progress {4}2 of 2 steps: finished \(model\.safetensors written\)$/m);
  assert.match(
    r.out,
    new RegExp(`^ {2}last metrics step 2, .*test_psnr ${formatNumber(last.test_psnr)}`, "m"),
  );
  for (const f of ["config.json", "metrics.jsonl", "model.safetensors", "eval.json"])
    assert.match(r.out, new RegExp(`^ {4}${f.replace(".", "\\.")} +[\\d.]+ k?B$`, "m"), f);
  const j = JSON.parse((await run(["info", runDir, "--json"])).out) as {
    kind: string;
    steps: { done: number; total: number; finished: boolean };
    last_metrics: { step: number };
    files: { name: string; bytes?: number }[];
  };
  assert.equal(j.kind, "run");
  assert.deepEqual(j.steps, { done: 2, total: 2, finished: true, checkpoint: 2 });
  assert.equal(j.last_metrics.step, 2);
  const model = j.files.find((f) => f.name === "model.safetensors")!;
  assert.equal(model.bytes, (await readFile(join(runDir, "model.safetensors"))).length);

  // A run stopped before its end: its checkpoint and logs only.
  const stopped = join(dir, "stopped");
  await mkdir(stopped);
  for (const f of ["config.json", "checkpoint.safetensors", "metrics.jsonl"])
    await copyFile(join(runDir, f), join(stopped, f));
  const stoppedCfg = JSON.parse(await readFile(join(runDir, "config.json"), "utf8")) as {
    train: { steps: number };
  };
  stoppedCfg.train.steps = 5;
  await writeFile(join(stopped, "config.json"), JSON.stringify(stoppedCfg));
  r = await run(["info", stopped]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /progress {4}2 of 5 steps: stopped; anr train … --resume continues it from the checkpoint at step 2/,
  );
  r = await run(["info", join(dir, "imgs")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /imgs: not a run folder/);
});

test("info FILE.safetensors: a table of name, dtype, shape and numel, for any file; --json the same", async (t) => {
  const dir = await tempDir(t, "info-file");
  // A file anr did not write: dtypes it does not read (I64) beside F16, and its own metadata.
  const header = {
    __metadata__: { format: "pt", note: "x".repeat(100) },
    "layer.weight": { dtype: "F16", shape: [2, 3], data_offsets: [0, 12] },
    "layer.step": { dtype: "I64", shape: [], data_offsets: [12, 20] },
  };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  await writeFile(join(dir, "other.safetensors"), Buffer.concat([len, json, Buffer.alloc(20)]));
  let r = await run(["info", join(dir, "other.safetensors")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /other\.safetensors: safetensors file\n/);
  assert.match(r.out, /^ {4}format: pt$/m);
  assert.match(r.out, /^ {4}note: x{80}… \(100 characters\)$/m);
  assert.match(r.out, /^ {2}name +dtype +shape +numel$/m);
  assert.match(r.out, row("layer.weight", "F16", [2, 3], 6));
  assert.match(r.out, row("layer.step", "I64", [], 1));
  assert.match(r.out, /^ {2}2 tensors, 7 values$/m);
  const j = JSON.parse((await run(["info", join(dir, "other.safetensors"), "--json"])).out) as {
    kind: string;
    tensors: unknown[];
    metadata: Record<string, string>;
  };
  assert.equal(j.kind, "safetensors");
  assert.deepEqual(j.tensors, [
    { name: "layer.weight", dtype: "F16", shape: [2, 3], numel: 6 },
    { name: "layer.step", dtype: "I64", shape: [], numel: 1 },
  ]);
  assert.equal(j.metadata.format, "pt");

  // An anr model: its summary, then every tensor, adding up to its parameter count.
  const model = await goldenModel(dir);
  r = await run(["info", model]);
  assert.equal(r.code, 0, r.err);
  const { config, weights } = await loadModel(model);
  assert.match(r.out, /m\.safetensors: anr model\n/);
  for (const [name, w] of weights) assert.match(r.out, row(name, "F32", w.shape, w.data.length));
  assert.match(
    r.out,
    new RegExp(`^ {2}${weights.size} tensors, ${countParams(config).toLocaleString("en")} values$`, "m"),
  );
  assert.doesNotMatch(r.out, /anr\.config: \{"/, "the config is summarised, not dumped");
  r = await run(["info", join(dir, "not-there.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /not-there\.safetensors: no such file or folder/);
  await writeFile(join(dir, "junk.safetensors"), "not a safetensors file at all");
  r = await run(["info", join(dir, "junk.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /junk\.safetensors: not a safetensors file/);
});

test("compare: missing data is found before anything is trained or written, saying how to get it", async (t) => {
  const dir = await tempDir(t, "compare-nodata");
  const out = join(dir, "cmp");
  const r = await run([
    ...["compare", "--preset", "fmnist", "--out", out],
    ...["--set", `data.root=${JSON.stringify(join(dir, "nowhere"))}`],
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /compare --preset fmnist: needs data: /);
  assert.doesNotMatch(r.out, /== ANR/, "no run started");
  assert.ok(!existsSync(out), "no folder made");
});
