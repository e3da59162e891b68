/**
 * Issue 10, the codec side: encode, decode and eval never accept the wrong input silently. One test
 * per case of the issue (W5, W6, E1/E4/E5, E7, R10, W7), each asserting the wanted behaviour, which
 * the code before the change did not have (E7 excepted: it was already a usage error; its test
 * keeps it so).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { loadModel, readSafetensors, writeSafetensors } from "../src/io/files.js";
import { weightsFingerprint } from "../src/io/tokens.js";
import { saveCheckpoint } from "../src/training/checkpoint.js";
import { golden, tinyConfig } from "./fixtures.js";
import { runCli as run, tempDir, writePhoto } from "./cli-helpers.js";

const GOLDEN_ANR = join(golden, "anr", "config.json");

/** Two models of one config with other weights (seeds 1 and 2), and tokens of two pictures by the first. */
async function twoModels(dir: string): Promise<{ a: string; b: string; tokens: string; pngs: string[] }> {
  const [a, b] = [join(dir, "a.safetensors"), join(dir, "b.safetensors")];
  for (const [path, seed] of [
    [a, "1"],
    [b, "2"],
  ] as const) {
    const r = await run(["init", GOLDEN_ANR, "--out", path, "--seed", seed]);
    assert.equal(r.code, 0, r.err);
  }
  const pngs = [join(dir, "p0.png"), join(dir, "p1.png")];
  for (const [i, p] of pngs.entries()) await writePhoto(p, 32, 32, i);
  const tokens = join(dir, "t.safetensors");
  const r = await run(["encode", ...pngs, "--model", a, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  return { a, b, tokens, pngs };
}

test("W5: tokens decode only with the weights that encoded them, whichever file holds those weights", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "w5");
  const { a, b, tokens } = await twoModels(dir);
  const meta = JSON.parse((await readSafetensors(tokens)).metadata["anr.tokens"]!) as { weights: string };
  const fa = weightsFingerprint((await loadModel(a)).weights);
  assert.equal(meta.weights, fa, "the token file records the encoding weights' fingerprint");

  // Same config, other weights: an input error naming the token file, the model file and both
  // fingerprints; nothing decoded.
  let r = await run(["decode", tokens, "--model", b, "--size", "8", "--out", join(dir, "wrong")]);
  assert.equal(r.code, 2, r.err);
  const fb = weightsFingerprint((await loadModel(b)).weights);
  assert.notEqual(fa, fb);
  assert.match(
    r.err,
    /t\.safetensors: encoded by weights crc32:[0-9a-f]{8}, but .*b\.safetensors holds weights/,
  );
  assert.ok(r.err.includes(fa) && r.err.includes(fb), r.err);
  assert.match(r.err, /--force/);
  await assert.rejects(stat(join(dir, "wrong", "p0.8x8.png")));
  // --force decodes anyway, saying so.
  r = await run(["decode", tokens, "--model", b, "--size", "8", "--out", join(dir, "forced"), "--force"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: .*t\.safetensors was encoded by weights .*decoding anyway \(--force\)/);
  // The same weights in another file (a copy, or a checkpoint's online set): accepted. The
  // fingerprint identifies the weights, not the file.
  const copy = join(dir, "copy-of-a.safetensors");
  await copyFile(a, copy);
  r = await run(["decode", tokens, "--model", copy, "--size", "8", "--out", join(dir, "ok")]);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.err, /warning/);
  const A = await loadModel(a);
  const B = await loadModel(b);
  const ck = join(dir, "checkpoint.safetensors");
  await saveCheckpoint(
    ck,
    A.config,
    { params: A.weights, m: A.weights, v: A.weights, ema: B.weights },
    { step: 1, emaCalls: 1, loader: null, rng: [0], run: {} },
  );
  assert.equal(weightsFingerprint((await loadModel(ck, { weights: "online" })).weights), fa);
  assert.equal(weightsFingerprint((await loadModel(ck, { weights: "ema" })).weights), fb);
  r = await run(["decode", tokens, "--model", ck, "--size", "8", "--out", join(dir, "ck")]);
  assert.equal(r.code, 0, r.err);
  r = await run([
    "decode",
    tokens,
    "--model",
    ck,
    "--weights",
    "ema",
    "--size",
    "8",
    "--out",
    join(dir, "ck2"),
  ]);
  assert.equal(r.code, 2, "the checkpoint's EMA weights did not encode these tokens");

  // A token file from before fingerprints still decodes, with a warning that it cannot be checked.
  const file = await readSafetensors(tokens);
  const old = join(dir, "old.safetensors");
  const oldMeta = JSON.parse(file.metadata["anr.tokens"]!) as Record<string, unknown>;
  delete oldMeta.weights;
  await writeSafetensors(old, file.tensors, { ...file.metadata, "anr.tokens": JSON.stringify(oldMeta) });
  r = await run(["decode", old, "--model", b, "--size", "8", "--out", join(dir, "old")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: .*old\.safetensors records no fingerprint of the weights/);
});

test("E1, E4, E5: decode sizes are checked before any work, naming the flag and the limit", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "sizes");
  const { a, tokens, pngs } = await twoModels(dir);
  const out = join(dir, "never");
  for (const [size, message] of [
    ["0x0", /--size 0x0: each side must be at least 1 pixel/],
    ["8x0", /--size 8x0: each side must be at least 1 pixel/],
    [
      "100000",
      /--size 100000: 100000×100000 is 10,000,000,000 pixels, over the PNG writer's limit of 268,402,689/,
    ],
    ["20000x20000", /--size 20000x20000: .*over the PNG writer's limit of 268,402,689 \(sharp\/libvips\)/],
  ] as const) {
    const t0 = performance.now();
    const r = await run(["decode", tokens, "--model", a, "--size", size, "--out", out]);
    assert.equal(r.code, 2, size);
    assert.match(r.err, message);
    assert.ok(performance.now() - t0 < 2000, `${size}: refused at once`);
  }
  // Within the PNG limit per image, but more than one decode can hold: 6 images of 16383² × 3.
  const six = join(dir, "six.safetensors");
  let r = await run(["encode", ...pngs, ...pngs, ...pngs, "--model", a, "--out", six]);
  assert.equal(r.code, 0, r.err);
  r = await run(["decode", six, "--model", a, "--size", "16383", "--out", out]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /--size 16383: 6 instance\(s\) × 3 channel\(s\) × 16383×16383 .* decode at a smaller size or fewer instances/,
  );
  await assert.rejects(stat(out), "nothing was written");
  // eval --size shares the parser.
  r = await run(["eval", dir, "--size", "0x4"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--size 0x4: each side must be at least 1 pixel/);
});

test("E7: encode --weights garbage is a usage error", async (t) => {
  const dir = await tempDir(t, "e7");
  const { a, pngs } = await twoModels(dir);
  const r = await run([
    "encode",
    pngs[0]!,
    "--model",
    a,
    "--weights",
    "garbage",
    "--out",
    join(dir, "x.safetensors"),
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--weights must be online or ema, not garbage/);
  await assert.rejects(stat(join(dir, "x.safetensors")));
});

test("R10: output folders that cannot be written are found before the work, naming the folder", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "r10");
  const { a, tokens, pngs } = await twoModels(dir);
  const file = join(dir, "a-file");
  await writeFile(file, "x");
  // A path under a file: no folder can be made there.
  let r = await run(["decode", tokens, "--model", a, "--size", "8", "--out", join(file, "sr")]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /a-file\/sr: cannot write there: .*a-file is a file, not a folder; choose another --out/,
  );
  r = await run(["encode", pngs[0]!, "--model", a, "--out", join(file, "t.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /a-file\/t\.safetensors: cannot write there: .*a-file is a file, not a folder/);
  r = await run(["encode", pngs[0]!, "--model", a, "--out", dir]);
  assert.equal(r.code, 2);
  assert.match(r.err, /: is a folder; give --out the path of the file to write/);
  // A missing folder is made (encode wrote nothing into a missing folder before: ENOENT at the end).
  r = await run(["encode", pngs[0]!, "--model", a, "--out", join(dir, "new", "sub", "t.safetensors")]);
  assert.equal(r.code, 0, r.err);
  assert.ok((await stat(join(dir, "new", "sub", "t.safetensors"))).isFile());
  // A read-only folder (the superuser writes anywhere, so only checked for others).
  if (process.getuid?.() === 0) return;
  const ro = join(dir, "read-only");
  await mkdir(ro);
  await chmod(ro, 0o555);
  t.after(() => chmod(ro, 0o755));
  r = await run(["decode", tokens, "--model", a, "--size", "8", "--out", ro]);
  assert.equal(r.code, 2);
  assert.match(r.err, /read-only: the folder .*read-only is not writable \(EACCES\); choose another --out/);
  assert.deepEqual(await readdir(ro), []);
});

/** A hand-made image run folder: its config and a freshly initialised model (seed 1). */
async function imageRun(dir: string, name: string): Promise<string> {
  const runDir = join(dir, name);
  await mkdir(join(dir, "imgs", "test"), { recursive: true });
  for (const s of [0, 1]) await writePhoto(join(dir, "imgs", "test", `p${s}.png`), 16, 16, s);
  await mkdir(runDir, { recursive: true });
  const config = {
    name,
    task: "image",
    data: { kind: "folder", root: join(dir, "imgs"), split: "folders", preprocess: { size: 16 } },
    model: tinyConfig("ANR"),
    train: { steps: 1, batch_size: 2 },
  };
  await writeFile(join(runDir, "config.json"), JSON.stringify(config));
  const r = await run(["init", join(runDir, "config.json"), "--out", join(runDir, "model.safetensors")]);
  assert.equal(r.code, 0, r.err);
  return runDir;
}

test("W6: eval RUN --model OTHER never writes OTHER's numbers as RUN's report", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "w6");
  const runA = await imageRun(dir, "run-a");
  const other = join(dir, "other.safetensors");
  let r = await run(["init", join(runA, "config.json"), "--out", other, "--seed", "7"]);
  assert.equal(r.code, 0, r.err);
  r = await run(["eval", runA, "--model", other]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(
    (await readdir(runA)).filter((f) => f.startsWith("eval")).sort(),
    ["eval-test-online-other.json", "eval-test-online-other.png"],
    "named after the model it measures; run-a's own report name stays free",
  );
  const report = JSON.parse(await readFile(join(runA, "eval-test-online-other.json"), "utf8")) as {
    model: string;
  };
  assert.equal(report.model, other);
  // Another run's folder as the model: named after that run.
  const runB = await imageRun(dir, "run-b");
  r = await run(["eval", runA, "--model", runB]);
  assert.equal(r.code, 0, r.err);
  assert.ok((await stat(join(runA, "eval-test-online-run-b.json"))).isFile());
  // The run's own model, by folder or by file, and any model with --out: the plain name.
  r = await run(["eval", runA, "--model", join(runA, "model.safetensors")]);
  assert.equal(r.code, 0, r.err);
  assert.ok((await stat(join(runA, "eval-test-online.json"))).isFile());
  r = await run(["eval", runA, "--model", other, "--out", join(dir, "ev")]);
  assert.equal(r.code, 0, r.err);
  assert.ok((await stat(join(dir, "ev", "eval-test-online.json"))).isFile());
});

test("W7: eval with a model made for another task names the model file and both tasks", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "w7");
  const runA = await imageRun(dir, "run");
  const nerf = join(dir, "nerf.safetensors");
  let r = await run(["init", join(golden, "anr_nerf", "config.json"), "--out", nerf]);
  assert.equal(r.code, 0, r.err);
  r = await run(["eval", runA, "--model", nerf]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    /nerf\.safetensors: a model for task nerf \(nvs_tokenizer\), but .*config\.json is a run of task image/,
  );
  assert.doesNotMatch(r.err, /reading 'shape'|internal error/);
  // A field model (it lists channels) on the image run.
  const field = join(dir, "field.json");
  const cfg = tinyConfig("ANR");
  await writeFile(
    field,
    JSON.stringify({
      ...cfg,
      tokenizer: { ...cfg.tokenizer, args: { ...cfg.tokenizer.args, img_channels: 1 } },
      hyponet: { ...cfg.hyponet, args: { ...cfg.hyponet.args, out_dim: 1 } },
      channels: [{ name: "t2m", units: "K", shift: -260, scale: 0.01 }],
    }),
  );
  r = await run(["init", field, "--out", join(dir, "field.safetensors")]);
  assert.equal(r.code, 0, r.err);
  r = await run(["eval", runA, "--model", join(dir, "field.safetensors")]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    /field\.safetensors: a model for task field \(ImgTokenizer, channels t2m\), but .*is a run of task image/,
  );
});
