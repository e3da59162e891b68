/**
 * The command line end to end, through `main`: exit codes and messages, and the values of the files
 * it writes, each compared with the library computing the same thing directly (hyperNetwork for
 * tokens, predictImage for decoded pictures, psnrUnit for evaluation reports).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile, readFile, copyFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { serializeSafetensors, type HostTensor } from "../src/io/safetensors.js";
import { readSafetensors, loadModel } from "../src/io/files.js";
import { psnrUnit } from "../src/data/image.js";
import { weightsFingerprint } from "../src/io/tokens.js";
import { golden, tinyConfig } from "./fixtures.js";
import {
  chwFromBytes,
  decodeWith,
  encodeWith,
  levelsOff,
  pixels,
  readPng,
  runCli as run,
  tempDir,
  writePhoto,
} from "./cli-helpers.js";

/**
 * PNG bytes against the decoder's float output: exact quantisation is ≤ 0.5 levels (measured
 * 0.49999); the CLI decodes with the chunked jit decoder and we with predictImage, so 1e-3 level
 * is left for float32 differences at a rounding tie.
 */
const PNG_LEVELS = 0.5 + 1e-3;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test("cli: init → info → encode → decode: tokens and pictures equal the library's", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "cli");
  const model = join(dir, "m.safetensors");
  let r = await run(["init", join(golden, "anr", "config.json"), "--out", model, "--seed", "1"]);
  assert.equal(r.code, 0, r.err);
  r = await run(["info", model]);
  assert.equal(r.code, 0);
  assert.match(r.out, /ANR/);
  assert.match(r.out, /representation 1,024 floats per instance/);
  const { config: cfg, weights } = await loadModel(model);
  // The golden ANR reads 32×32 images. a.png has that size (no resampling); b.png is 48 wide, so
  // the cover resize keeps its scale and the centre crop is columns 8–39: both inputs are known.
  await writePhoto(join(dir, "a.png"), 32, 32, 0);
  await writePhoto(join(dir, "b.png"), 48, 32, 1);
  const inputs = [chwFromBytes(pixels(32, 32, 0), 32, 32), chwFromBytes(pixels(48, 32, 1), 48, 32, 8, 32)];
  const tokens = join(dir, "t.safetensors");
  r = await run(["encode", join(dir, "a.png"), join(dir, "b.png"), "--model", model, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  const file = await readSafetensors(tokens);
  const expected = await encodeWith(weights, cfg, inputs, [32, 32]);
  assert.deepEqual([...file.tensors.keys()], ["dtoken"]);
  assert.deepEqual(file.tensors.get("dtoken")!.shape, [2, 16, 64]);
  // The same computation on the same inputs: identical R-tokens, to the bit.
  assert.deepEqual(file.tensors.get("dtoken")!.data, expected.get("dtoken")!.data);
  assert.deepEqual(JSON.parse(file.metadata["anr.tokens"]!), {
    images: ["a.png", "b.png"],
    input_size: [32, 32],
    weights: weightsFingerprint(weights),
  });
  assert.deepEqual(JSON.parse(file.metadata["anr.config"]!), cfg);
  r = await run(["info", tokens]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /encoded images \(ANR model\), 2 instance\(s\), 1,024 floats each/);
  assert.match(r.out, /images: a\.png, b\.png/);

  // Decode at 48×40 (H×W, not square, so a swapped size shows) and compare every byte.
  r = await run(["decode", tokens, "--model", model, "--size", "48x40", "--out", join(dir, "sr")]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readdir(join(dir, "sr"))).sort(), ["a.48x40.png", "b.48x40.png"]);
  const want = await decodeWith(weights, cfg, file.tensors, 48, 40);
  for (const [i, name] of ["a", "b"].entries()) {
    const png = await readPng(join(dir, "sr", `${name}.48x40.png`));
    assert.deepEqual([png.h, png.w], [48, 40]);
    const off = levelsOff(png.data, want.subarray(i * 3 * 48 * 40, (i + 1) * 3 * 48 * 40));
    assert.ok(off <= PNG_LEVELS, `${name}: decoded PNG is ${off} levels from predictImage`);
  }

  // A region: the lower three quarters and right half at 3× (72×48), the crop of a 96² decode.
  r = await run([
    "decode",
    tokens,
    "--model",
    model,
    "--scale",
    "3",
    "--region",
    "0.25,0.5,1,1",
    "--out",
    join(dir, "part"),
  ]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readdir(join(dir, "part"))).sort(), [
    "a.72x48.region-0.25-0.5-1-1.png",
    "b.72x48.region-0.25-0.5-1-1.png",
  ]);
  const whole = await decodeWith(weights, cfg, file.tensors, 96, 96);
  for (const [i, name] of ["a", "b"].entries()) {
    const png = await readPng(join(dir, "part", `${name}.72x48.region-0.25-0.5-1-1.png`));
    assert.deepEqual([png.h, png.w], [72, 48]);
    const crop = new Float32Array(3 * 72 * 48);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 72; y++)
        for (let x = 0; x < 48; x++)
          crop[(c * 72 + y) * 48 + x] = whole[((i * 3 + c) * 96 + y + 24) * 96 + x + 48]!;
    const off = levelsOff(png.data, crop);
    assert.ok(off <= PNG_LEVELS, `${name}: the region's PNG is ${off} levels from the whole decode's crop`);
  }
  for (const [args, why] of [
    [["--region", "0.5,0,0.25,1"], /--region 0\.5,0,0\.25,1: top must be above bottom/],
    [["--region", "0,0,1"], /--region 0,0,1: expected four numbers top, left, bottom, right/],
    [["--region", "0,0,.5,.5", "--engine", "ort"], /--region decodes on our engine only/],
    [["--region", "0,0,.5,.5", "--attention"], /--region and --attention/],
    [["--region", "0,0,.5,.5", "--scale", "0.01"], /--scale 0\.01: each side must be at least 1 pixel/],
  ] as const) {
    r = await run(["decode", tokens, "--model", model, ...args, "--out", join(dir, "refused")]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, why);
  }

  // A token file decoded with a model of another config is refused.
  const other = join(dir, "ipc.safetensors");
  assert.equal((await run(["init", join(golden, "ipc", "config.json"), "--out", other])).code, 0);
  r = await run(["decode", tokens, "--model", other, "--size", "8"]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /t\.safetensors was encoded by a model with a different config than .*ipc\.safetensors/,
  );
  // So is a token file that lost a tensor, naming it and the expected shape.
  await writeFile(
    join(dir, "short.safetensors"),
    serializeSafetensors([["other", file.tensors.get("dtoken")!]], file.metadata),
  );
  r = await run(["decode", join(dir, "short.safetensors"), "--model", model, "--size", "8"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /short\.safetensors: tensor "dtoken" should be \[B, 16,64\], found nothing/);
  // And one whose metadata is not JSON: an input error naming the file and the key, not a crash.
  await writeFile(
    join(dir, "garbled.safetensors"),
    serializeSafetensors([...file.tensors], { ...file.metadata, "anr.tokens": "{" }),
  );
  r = await run(["decode", join(dir, "garbled.safetensors"), "--model", model, "--size", "8"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /garbled\.safetensors: metadata "anr\.tokens" is not valid JSON/);
  r = await run(["decode", tokens, "--model", model, "--size", "8by8"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--size 8by8: expected HxW/);
});

test("cli: golden exits 1 when a weight is off, naming what failed", async (t) => {
  const dir = await tempDir(t, "cli-golden");
  for (const f of ["config.json", "io.safetensors"])
    await copyFile(join(golden, "anr_clip", f), join(dir, f));
  const w = await readSafetensors(join(golden, "anr_clip", "weights.safetensors"));
  const t0 = w.tensors.get("hyponet.mlp.2.bias")!;
  t0.data[0]! += 0.01;
  await writeFile(join(dir, "weights.safetensors"), serializeSafetensors([...w.tensors]));
  const r = await run(["golden", dir]);
  assert.equal(r.code, 1);
  assert.match(r.out, /pred32_raw .* FAIL/);
  assert.match(r.out, /GOLDEN CHECKS FAILED/);
});

test("cli: golden applies the measured per-key bounds, which catch what the uniform ones miss", async (t) => {
  let r = await run(["golden", join(golden, "ipc")]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /per-key bounds from .*tolerances\.json/);
  // One reference prediction moved by 2e-5: inside the uniform bound on pred32_raw (6.9e-5 for
  // anr_clip) but twice the measured one (1.1e-5).
  const dir = await tempDir(t, "cli-golden-tight");
  const variant = join(dir, "anr_clip_off");
  await mkdir(variant);
  for (const f of ["config.json", "weights.safetensors"])
    await copyFile(join(golden, "anr_clip", f), join(variant, f));
  const io = await readSafetensors(join(golden, "anr_clip", "io.safetensors"));
  io.tensors.get("pred32_raw")!.data[0]! += 2e-5;
  await writeFile(join(variant, "io.safetensors"), serializeSafetensors([...io.tensors], io.metadata));
  r = await run(["golden", variant]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /\(uniform bounds\)/);
  const table = JSON.parse(await readFile(join(golden, "tolerances.json"), "utf8")) as Record<
    string,
    unknown
  >;
  await writeFile(join(dir, "bounds.json"), JSON.stringify({ anr_clip_off: table.anr_clip }));
  r = await run(["golden", variant, "--tolerances", join(dir, "bounds.json")]);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /pred32_raw .* FAIL/);
  r = await run(["golden", join(golden, "ipc"), "--tolerances", join(dir, "bounds.json")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /no bounds for "ipc"/);
});

/** A run folder of 16×16 PNGs (exactly the model's size, so the inputs are the pixels themselves). */
async function imageFolder(
  root: string,
  sets: Record<string, readonly number[]> = { train: [0, 1, 2, 3], val: [4, 5], test: [6, 7, 8] },
): Promise<Record<"train" | "val" | "test", Float32Array[]>> {
  const out: Record<string, Float32Array[]> = {};
  for (const [split, seeds] of Object.entries(sets)) {
    await mkdir(join(root, split), { recursive: true });
    out[split] = [];
    for (const s of seeds) {
      await writePhoto(join(root, split, `p${s}.png`), 16, 16, s);
      out[split]!.push(chwFromBytes(pixels(16, 16, s), 16, 16));
    }
  }
  return out as Record<"train" | "val" | "test", Float32Array[]>;
}

/** Mean PSNR (clamped to [0, 1], the eval protocol) of the model's reconstructions of `imgs`. */
async function recomputedPsnr(path: string, imgs: Float32Array[]): Promise<number[]> {
  const { config, weights } = await loadModel(path);
  const pred = await decodeWith(weights, config, await encodeWith(weights, config, imgs, [16, 16]), 16, 16);
  const n = 3 * 16 * 16;
  return imgs.map((img, i) =>
    psnrUnit(
      pred.subarray(i * n, (i + 1) * n).map((v) => Math.min(1, Math.max(0, v))),
      img,
    ),
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * DIR/run.json: a tiny model of `kind` on the folder DIR/imgs (train/val/test subfolders, 16×16
 * crops), batch 2, no periodic evaluation, checkpoints or samples; `train` adds to that. Returns
 * the config written.
 */
async function writeRunConfig(
  dir: string,
  kind: "ANR" | "HypoMlp" | "HypoMlpIPC",
  train: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const cfg = {
    name: "cli",
    data: {
      kind: "folder",
      root: join(dir, "imgs"),
      split: "folders",
      preprocess: { mode: "resize-crop", size: 16 },
    },
    model: tinyConfig(kind),
    train: { batch_size: 2, eval_every: 0, checkpoint_every: 0, sample_every: 0, ...train },
  };
  await writeFile(join(dir, "run.json"), JSON.stringify(cfg));
  return cfg;
}

/**
 * eval computes PSNR with the jit evaluation step, we with predictImage and psnrUnit; measured
 * difference 0 dB (online, EMA and val reports). 1e-6 dB leaves room only for summation order.
 */
const PSNR_DB = 1e-6;

test("cli: train a tiny run, then eval (online, EMA, split, out, model+config) and encode/decode --weights ema", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "cli-train");
  const imgs = await imageFolder(join(dir, "imgs"));
  // EMA copies the online weights at its first call (after step 1) and skips the next nine, so
  // after 4 steps at a large learning rate the two weight sets clearly differ.
  await writeRunConfig(dir, "ANR", {
    steps: 4,
    lr: 1e-2,
    ema: { beta: 0.9, update_every: 10, update_after_step: 0 },
  });
  const runDir = join(dir, "run");
  let r = await run(["train", join(dir, "run.json"), "--out", runDir]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readdir(runDir)).filter((f) => f.startsWith("model")).sort(), [
    "model-ema.safetensors",
    "model.safetensors",
  ]);
  const online = join(runDir, "model.safetensors");
  const ema = join(runDir, "model-ema.safetensors");
  type Report = { images: number; psnr: number; weights: string; perImage: { id: string; psnr: number }[] };
  const report = async (path: string) => JSON.parse(await readFile(path, "utf8")) as Report;

  // eval: the reported PSNR is the mean over the test images of PSNR recomputed from the weights.
  r = await run(["eval", runDir]);
  assert.equal(r.code, 0, r.err);
  const onlineReport = await report(join(runDir, "eval-test-online.json"));
  const onlinePsnr = await recomputedPsnr(online, imgs.test);
  assert.equal(onlineReport.images, 3);
  assert.ok(
    Math.abs(onlineReport.psnr - mean(onlinePsnr)) < PSNR_DB,
    `${onlineReport.psnr} vs ${mean(onlinePsnr)}`,
  );
  assert.match(r.out, new RegExp(`PSNR ${onlineReport.psnr.toFixed(3)} dB`));

  r = await run(["eval", runDir, "--weights", "ema"]);
  assert.equal(r.code, 0, r.err);
  const emaReport = await report(join(runDir, "eval-test-ema.json"));
  const emaPsnr = await recomputedPsnr(ema, imgs.test);
  assert.equal(emaReport.weights, "ema");
  assert.ok(Math.abs(emaReport.psnr - mean(emaPsnr)) < PSNR_DB, `${emaReport.psnr} vs ${mean(emaPsnr)}`);
  assert.ok(
    Math.abs(emaReport.psnr - onlineReport.psnr) > 0.1,
    "EMA and online evaluations differ (measured 11.25 vs 10.03 dB)",
  );

  // --split val --out: the validation images, the report written where asked.
  r = await run(["eval", runDir, "--split", "val", "--out", join(dir, "ev")]);
  assert.equal(r.code, 0, r.err);
  const val = await report(join(dir, "ev", "eval-val-online.json"));
  assert.deepEqual(
    val.perImage.map((p) => p.id),
    ["val/p4.png", "val/p5.png"],
  );
  assert.ok(Math.abs(val.psnr - mean(await recomputedPsnr(online, imgs.val))) < PSNR_DB);

  // --max-images: the first N test images of the full evaluation, and their mean PSNR.
  r = await run(["eval", runDir, "--max-images", "2", "--out", join(dir, "ev-max")]);
  assert.equal(r.code, 0, r.err);
  const firstTwo = await report(join(dir, "ev-max", "eval-test-online.json"));
  assert.deepEqual(firstTwo.perImage, onlineReport.perImage.slice(0, 2));
  assert.equal(firstTwo.images, 2);
  assert.ok(Math.abs(firstTwo.psnr - mean(onlineReport.perImage.slice(0, 2).map((p) => p.psnr))) < PSNR_DB);
  r = await run(["eval", runDir, "--max-images", "0", "--out", join(dir, "ev-max")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--max-images 0: expected a whole number above 0/);

  // --data-root: the same run evaluated on another folder's test images. Eval opens the test split
  // only: a training split smaller than one batch (batch_size 2) does not matter.
  const other = await imageFolder(join(dir, "other"), { train: [11], test: [9, 10] });
  r = await run(["eval", runDir, "--data-root", join(dir, "other"), "--out", join(dir, "ev-other")]);
  assert.equal(r.code, 0, r.err);
  const elsewhere = await report(join(dir, "ev-other", "eval-test-online.json"));
  assert.deepEqual(
    elsewhere.perImage.map((p) => p.id),
    ["test/p10.png", "test/p9.png"],
  );
  const otherPsnr = await recomputedPsnr(online, [other.test[1]!, other.test[0]!]);
  assert.ok(Math.abs(elsewhere.psnr - mean(otherPsnr)) < PSNR_DB);

  // --model FILE --config FILE: the EMA model file evaluated by name reports as EMA.
  r = await run(["eval", "--model", ema, "--config", join(runDir, "config.json"), "--out", join(dir, "ev2")]);
  assert.equal(r.code, 0, r.err);
  const byName = await report(join(dir, "ev2", "eval-test-ema.json"));
  assert.equal(byName.psnr, emaReport.psnr);

  // encode / decode --weights ema: the run's EMA file, by folder or by name; never the online one.
  const tokens = {
    online: join(dir, "on.safetensors"),
    ema: join(dir, "ema.safetensors"),
    byName: join(dir, "emab.safetensors"),
  };
  const png = join(dir, "imgs", "test", "p6.png");
  assert.equal((await run(["encode", png, "--model", runDir, "--out", tokens.online])).code, 0);
  r = await run(["encode", png, "--model", runDir, "--weights", "ema", "--out", tokens.ema]);
  assert.equal(r.code, 0, r.err);
  r = await run(["encode", png, "--model", ema, "--weights", "ema", "--out", tokens.byName]);
  assert.equal(r.code, 0, r.err);
  const emaModel = await loadModel(ema);
  const onlineModel = await loadModel(online);
  const emaDirect = (await encodeWith(emaModel.weights, emaModel.config, [imgs.test[0]!], [16, 16])).get(
    "dtoken",
  )!;
  const tok = async (p: string) => (await readSafetensors(p)).tensors.get("dtoken")!;
  assert.deepEqual((await tok(tokens.ema)).data, emaDirect.data);
  assert.deepEqual((await tok(tokens.byName)).data, emaDirect.data);
  assert.ok(
    maxAbsDiff((await tok(tokens.online)).data, emaDirect.data) > 1e-3,
    "online tokens differ from EMA tokens",
  );

  r = await run([
    "decode",
    tokens.ema,
    "--model",
    runDir,
    "--weights",
    "ema",
    "--size",
    "24x20",
    "--out",
    join(dir, "d-ema"),
  ]);
  assert.equal(r.code, 0, r.err);
  const decoded = await readPng(join(dir, "d-ema", "p6.24x20.png"));
  const emaTokens = new Map<string, HostTensor>([["dtoken", emaDirect]]);
  const wantEma = await decodeWith(emaModel.weights, emaModel.config, emaTokens, 24, 20);
  const wantOnline = await decodeWith(onlineModel.weights, onlineModel.config, emaTokens, 24, 20);
  assert.ok(
    levelsOff(decoded.data, wantEma) <= PNG_LEVELS,
    `EMA decode is ${levelsOff(decoded.data, wantEma)} levels off`,
  );
  assert.ok(
    levelsOff(decoded.data, wantOnline) > 2,
    "decoding with the online weights is far off (measured 47 levels)",
  );
  r = await run([
    "decode",
    tokens.ema,
    "--model",
    ema,
    "--weights",
    "ema",
    "--size",
    "24x20",
    "--out",
    join(dir, "d-ema2"),
  ]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readPng(join(dir, "d-ema2", "p6.24x20.png"))).data, decoded.data);

  // A run still training has only its checkpoint, holding both weight sets: --weights picks one.
  const training = join(dir, "training");
  await mkdir(training);
  for (const f of ["config.json", "checkpoint.safetensors"])
    await copyFile(join(runDir, f), join(training, f));
  for (const [w, want] of [
    ["ema", emaDirect],
    ["online", await tok(tokens.online)],
  ] as const) {
    const path = join(dir, `ck-${w}.safetensors`);
    r = await run(["encode", png, "--model", training, "--weights", w, "--out", path]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((await tok(path)).data, want.data, `checkpoint, ${w} weights`);
  }

  // The online model file asked for EMA weights: refused, pointing at model-ema.safetensors.
  for (const cmd of [
    ["encode", png, "--model", online, "--weights", "ema", "--out", join(dir, "x.safetensors")],
    ["decode", tokens.ema, "--model", online, "--weights", "ema", "--size", "8"],
  ]) {
    r = await run(cmd);
    assert.equal(r.code, 2, cmd.join(" "));
    assert.match(r.err, /model\.safetensors: no EMA weights in this model file .*model-ema\.safetensors/);
  }
  r = await run(["encode", png, "--model", runDir, "--weights", "best", "--out", join(dir, "x.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--weights must be online or ema, not best/);
});

test("cli: a run trained without EMA has no EMA weights; usage errors exit 2", async (t) => {
  const dir = await tempDir(t, "cli-noema");
  await imageFolder(join(dir, "imgs"));
  const cfg = await writeRunConfig(dir, "HypoMlpIPC", { steps: 1, ema: null });
  let r = await run(["train", join(dir, "run.json"), "--out", join(dir, "run")]);
  assert.equal(r.code, 0, r.err);
  r = await run(["eval", join(dir, "run")]);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(await readFile(join(dir, "run", "eval-test-online.json"), "utf8")) as {
    representation_floats_per_instance: number;
  };
  assert.equal(
    report.representation_floats_per_instance,
    33 * 3,
    "IPC generates only layer 1 (here the output layer)",
  );
  for (const cmd of [
    ["eval", join(dir, "run"), "--weights", "ema"],
    [
      "encode",
      join(dir, "imgs", "test", "p6.png"),
      "--model",
      join(dir, "run"),
      "--weights",
      "ema",
      "--out",
      join(dir, "t.safetensors"),
    ],
  ]) {
    r = await run(cmd);
    assert.equal(r.code, 2, cmd.join(" "));
    assert.match(r.err, /run: no model-ema\.safetensors \(the run was trained without EMA/);
  }
  r = await run([
    "encode",
    join(dir, "imgs", "test", "p6.png"),
    "--model",
    join(dir, "imgs"),
    "--out",
    join(dir, "t.safetensors"),
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /imgs: not a run folder \(no model\.safetensors or checkpoint\.safetensors\)/);

  assert.equal((await run(["bogus"])).code, 2);
  for (const c of [
    "train",
    "eval",
    "encode",
    "decode",
    "compare",
    "demo",
    "golden",
    "init",
    "info",
    "presets",
  ]) {
    r = await run([c, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`anr ${c}`));
  }
  r = await run(["train", "--preset", "nope"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /preset "nope": unknown run preset \(known: .*fmnist-anr/);
  await writeFile(join(dir, "bad.json"), JSON.stringify({ ...cfg, train: { steps: 0 } }));
  r = await run(["train", join(dir, "bad.json")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /bad\.json[\s\S]*train\.steps/);
});
