/**
 * Fault injection on run folders and the training loop (issue 10's cases, named by their ids): a
 * careless or hostile command line, a crash, a signal or a diverging run must never lose a run or
 * save NaN. Tests that need processes (locks, signals, kill -9) run the real CLI as children.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { resolveRunConfig, type ResolvedImageRun } from "../src/training/run-config.js";
import { applyOverride } from "../src/training/run-presets.js";
import { runLoop } from "../src/training/loop.js";
import { imageDriver } from "../src/training/drivers/image.js";
import { loadCheckpoint, saveCheckpoint } from "../src/training/checkpoint.js";
import { SET_ASIDE } from "../src/training/run-folder.js";
import { NonFiniteWeightsError } from "../src/io/weights.js";
import { readSafetensors, writeSafetensors } from "../src/io/files.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { initHostParams } from "../src/model/params.js";
import { Rng } from "../src/util/rng.js";
import { readMetrics, tinyConfig, withSafetensorsHeader } from "./fixtures.js";
import { runCli, tempDir, writePhoto } from "./cli-helpers.js";

const REPO = join(import.meta.dirname, "..");

/** Photos (16×16) in train/ and test/ folders, and a run config file on them; returns its path. */
async function makeRun(dir: string, train: Record<string, unknown> = {}): Promise<string> {
  for (const [split, n] of [
    ["train", 4],
    ["test", 2],
  ] as const) {
    await mkdir(join(dir, "data", split), { recursive: true });
    for (let i = 0; i < n; i++) await writePhoto(join(dir, "data", split, `${split}${i}.png`), 16, 16, i);
  }
  const path = join(dir, "run.json");
  await writeFile(
    path,
    JSON.stringify({
      name: "r",
      data: { kind: "folder", root: join(dir, "data"), split: "folders", preprocess: { size: 16 } },
      model: tinyConfig("ANR"),
      train: {
        steps: 4,
        batch_size: 2,
        lr: 1e-3,
        seed: 1,
        log_every: 1,
        eval_every: 0,
        sample_every: 0,
        checkpoint_every: 2,
        ema: { beta: 0.5, update_every: 1, update_after_step: 0 },
        ...train,
      },
      eval: { split: "test", batch_size: 2 },
    }),
  );
  return path;
}

/** Every file of a folder (recursively) with its bytes, for "nothing changed" checks. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) {
      const p = join(e.parentPath, e.name);
      out.set(relative(dir, p), (await readFile(p)).toString("base64"));
    }
  return out;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Tensors of a safetensors file, by name. */
async function tensors(path: string) {
  return (await readSafetensors(path)).tensors;
}

test("R3: training into a folder that holds a run is refused without --resume or --overwrite, and nothing in it changes", async (t) => {
  const dir = await tempDir(t, "r3");
  const cfg = await makeRun(dir);
  const out = join(dir, "run");
  assert.equal((await runCli(["train", cfg, "--out", out])).code, 0);
  const before = await snapshot(out);
  const r = await runCli(["train", cfg, "--out", out, "--set", "train.lr=0.002"]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${escape(out)}: already holds a run .*--resume.*--overwrite`));
  assert.deepEqual(await snapshot(out), before);
  const both = await runCli(["train", cfg, "--out", out, "--resume", "--overwrite"]);
  assert.equal(both.code, 2);
  assert.match(both.err, /--resume and --overwrite exclude each other/);
});

test("R4, C5: --overwrite validates the new run before touching the old one; a new run failing before its first checkpoint puts the old one back, also after a kill", async (t) => {
  const dir = await tempDir(t, "r4");
  const cfg = await makeRun(dir);
  const out = join(dir, "run");
  assert.equal((await runCli(["train", cfg, "--out", out])).code, 0);
  assert.equal((await runCli(["eval", out])).code, 0, "the old run's anr eval reports");
  const reports = ["eval-test-online.json", "eval-test-online.png"];
  for (const f of reports) assert.ok(existsSync(join(out, f)), f);
  const before = await snapshot(out);

  // C5: data that does not fit the model: exit 2 naming the size, the old run untouched.
  let r = await runCli(["train", cfg, "--out", out, "--overwrite", "--set", "data.preprocess.size=12"]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /images are 12×12 but the model's tokenizer\.args\.input_size is 16×16/);
  assert.deepEqual(await snapshot(out), before);

  // A new run that diverges at its first step (before any checkpoint): the old run comes back.
  r = await runCli([
    "train",
    cfg,
    "--out",
    out,
    "--overwrite",
    ...["--set", "train.lr=1e30", "--set", "train.max_bad_steps=1", "--set", "train.checkpoint_every=0"],
  ]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /no checkpoint of this run was written before it diverged/);
  assert.deepEqual(await snapshot(out), before, "the old run is back, unchanged");

  // An overwrite killed before its first checkpoint left the old run set aside: the next start
  // puts it back, and it resumes.
  await mkdir(join(out, SET_ASIDE));
  for (const f of await readdir(out))
    if (f !== SET_ASIDE) await rm(join(out, f), { recursive: true }).catch(() => undefined);
  for (const [name, bytes] of before) {
    await mkdir(join(out, SET_ASIDE, name, ".."), { recursive: true });
    await writeFile(join(out, SET_ASIDE, name), Buffer.from(bytes, "base64"));
  }
  await writeFile(join(out, "config.json"), "{ the new run's");
  r = await runCli(["train", cfg, "--out", out, "--resume"]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await snapshot(out), before);

  // A good overwrite replaces the run once the new one has a checkpoint; nothing old is left.
  r = await runCli(["train", cfg, "--out", out, "--overwrite", "--set", "train.steps=2"]);
  assert.equal(r.code, 0, r.err);
  assert.ok(!existsSync(join(out, SET_ASIDE)));
  for (const f of reports) assert.ok(!existsSync(join(out, f)), `the old run's ${f} went with it`);
  assert.deepEqual(
    (await readMetrics(out)).map((m) => m.step),
    [1, 2],
  );
  assert.equal((await loadCheckpoint(join(out, "checkpoint.safetensors"))).state.step, 2);
});

test("C4, C6: a patch larger than the image and absurd sizes are config errors naming the field; no folder is made", async (t) => {
  const dir = await tempDir(t, "c6");
  const cfg = await makeRun(dir);
  const out = join(dir, "run");
  let r = await runCli(["train", cfg, "--out", out, "--set", "model.tokenizer.args.patch_size=32"]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /model\.tokenizer\.args\.patch_size: 32 is larger than the input_size 16×16/);
  r = await runCli([
    ...["train", cfg, "--out", out, "--set", "data.preprocess.size=100000"],
    ...["--set", "model.tokenizer.args.input_size=100000"],
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    /model\.tokenizer\.args\.input_size: 100000×100000 in patches of 4: the position embedding would hold 2\.00e\+10 values/,
  );
  r = await runCli([
    ...["train", cfg, "--out", out, "--set", "model.tokenizer.args.input_size=4000"],
    ...["--set", "model.tokenizer.args.patch_size=1"],
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    /model\.tokenizer\.args\.input_size: 4000×4000 in patches of 1: the position embedding/,
  );
  r = await runCli([
    ...["train", cfg, "--out", out, "--set", "data.preprocess.size=10000"],
    ...["--set", "model.tokenizer.args.input_size=10000", "--set", "model.tokenizer.args.patch_size=100"],
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    /model\.tokenizer\.args\.input_size 10000×10000 with train\.batch_size 2: a batch of 6\.00e\+8/,
  );
  assert.ok(!existsSync(out), "no half-made run folder");
});

test("C4, C6: anr init and encode refuse the same sizes in any model config, naming the file and the field", async (t) => {
  const dir = await tempDir(t, "c6-model");
  const tiny = tinyConfig("ANR") as {
    tokenizer: { args: Record<string, unknown> };
    hyponet: { args: Record<string, unknown> };
  };
  const withArgs = (args: Record<string, unknown>) => ({
    ...tiny,
    tokenizer: { ...tiny.tokenizer, args: { ...tiny.tokenizer.args, ...args } },
  });
  const cases = [
    [{ patch_size: 32 }, /tokenizer\.args\.patch_size: 32 is larger than the input_size 16×16/],
    [
      { input_size: 100000 },
      /tokenizer\.args\.input_size: 100000×100000 in patches of 4: the position embedding/,
    ],
  ] as const;
  for (const [args, message] of cases) {
    const config = join(dir, "model.json");
    await writeFile(config, JSON.stringify(withArgs(args)));
    const out = join(dir, "m.safetensors");
    const r = await runCli(["init", config, "--out", out]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, new RegExp(`${escape(config)}: invalid model config:\n {2}${message.source}`));
    assert.ok(!existsSync(out));
  }
  // A depth of 2^53 (found by the fuzz test) was listed layer by layer until out of memory.
  const deep = join(dir, "deep.json");
  await writeFile(
    deep,
    JSON.stringify({ ...tiny, hyponet: { ...tiny.hyponet, args: { ...tiny.hyponet.args, depth: 2 ** 53 } } }),
  );
  const r = await runCli(["init", deep, "--out", join(dir, "deep.safetensors")]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /\n {2}hyponet\.args\.depth: at most 1024 layers/);
  // A model file whose stored config is altered the same way: encode names the file and the field.
  const good = join(dir, "good.safetensors");
  await writeFile(join(dir, "good.json"), JSON.stringify(tiny));
  assert.equal((await runCli(["init", join(dir, "good.json"), "--out", good])).code, 0);
  const png = join(dir, "p.png");
  await writePhoto(png, 16, 16);
  for (const [args, message] of cases) {
    const model = join(dir, "bad.safetensors");
    await writeFile(
      model,
      withSafetensorsHeader(await readFile(good), (h) => {
        const meta = h.__metadata__ as Record<string, string>;
        meta["anr.config"] = JSON.stringify({ ...JSON.parse(meta["anr.config"]!), ...withArgs(args) });
      }),
    );
    const tokens = join(dir, "t.safetensors");
    const r = await runCli(["encode", png, "--model", model, "--out", tokens]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, new RegExp(`${escape(model)}: invalid model config:\n {2}${message.source}`));
    assert.ok(!existsSync(tokens));
  }
});

test("R10: train into a path under a file is refused before the data is read, naming the folder", async (t) => {
  const dir = await tempDir(t, "r10-train");
  const cfg = await makeRun(dir);
  // Data that is not there: had the data been read first, the error would be about it.
  await rm(join(dir, "data"), { recursive: true });
  const file = join(dir, "a-file");
  await writeFile(file, "x");
  for (const extra of [[], ["--resume"], ["--overwrite"]]) {
    const r = await runCli(["train", cfg, "--out", join(file, "run"), ...extra]);
    assert.equal(r.code, 2, r.err);
    assert.match(
      r.err,
      new RegExp(
        `${escape(join(file, "run"))}: cannot write there: ${escape(file)} is a file, not a folder; choose another --out`,
      ),
    );
  }
});

test(
  "R10: train into a read-only folder is refused before the data is read, naming the folder",
  {
    skip:
      process.getuid?.() === 0 && "run as root, which writes into read-only folders: chmod cannot make one",
  },
  async (t) => {
    const dir = await tempDir(t, "r10-ro");
    const cfg = await makeRun(dir);
    await rm(join(dir, "data"), { recursive: true });
    const ro = join(dir, "read-only");
    await mkdir(ro);
    await chmod(ro, 0o555);
    t.after(() => chmod(ro, 0o755).catch(() => undefined)); // the folder may be gone already
    for (const out of [ro, join(ro, "run")]) {
      const r = await runCli(["train", cfg, "--out", out]);
      assert.equal(r.code, 2, r.err);
      assert.match(
        r.err,
        new RegExp(
          `${escape(out)}: the folder ${escape(ro)} is not writable \\(EACCES\\); choose another --out`,
        ),
      );
    }
    assert.deepEqual(await readdir(ro), []);
  },
);

test("R5: --resume of a mistyped folder or of one without a checkpoint is an error naming the folder", async (t) => {
  const dir = await tempDir(t, "r5");
  const cfg = await makeRun(dir);
  let r = await runCli(["train", cfg, "--out", join(dir, "nope"), "--resume"]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${escape(join(dir, "nope"))}: no such run folder to resume`));
  assert.ok(!existsSync(join(dir, "nope")));
  await mkdir(join(dir, "empty"));
  await writeFile(join(dir, "empty", "config.json"), "{}");
  r = await runCli(["train", cfg, "--out", join(dir, "empty"), "--resume"]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    new RegExp(`${escape(join(dir, "empty"))}: holds no checkpoint\\.safetensors to resume from`),
  );
  assert.deepEqual(await readdir(join(dir, "empty")), ["config.json"]);
});

test("R6, R7, R2: a resumed run may get more steps and another cadence, exactly continuing; other changes are refused field by field; a deleted config.json is rewritten from the checkpoint, which eval and a refused change use meanwhile; stale temporaries go", async (t) => {
  const dir = await tempDir(t, "r6");
  const cfg = await makeRun(dir);
  const [short, long] = [join(dir, "short"), join(dir, "long")];
  assert.equal((await runCli(["train", cfg, "--out", long, "--set", "train.steps=6"])).code, 0);
  assert.equal((await runCli(["train", cfg, "--out", short])).code, 0);

  // R6: the refusal lists each changed field with both values; a relative --out is no stack trace.
  const rel = relative(process.cwd(), short);
  let r = await runCli([
    ...["train", cfg, "--out", rel, "--resume", "--steps", "6"],
    ...["--set", "train.lr=0.002", "--set", "train.seed=5"],
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${escape(join(rel, "config.json"))}: the run config differs`));
  assert.match(
    r.err,
    /\n {2}train\.lr: 0\.001 in the checkpoint, 0\.002 now\n {2}train\.seed: 1 in the checkpoint, 5 now\n/,
  );
  assert.doesNotMatch(r.err, /train\.steps:|internal error| {4}at /);

  // R7 and R2: config.json deleted, temporaries of a killed checkpoint write left behind.
  await rm(join(short, "config.json"));
  const stale = [".checkpoint.safetensors.4242.1764000000000.tmp", ".metrics.jsonl.4242.1764000000001.tmp"];
  for (const f of stale) await writeFile(join(short, f), "partial");
  // Plain eval takes the config stored in the checkpoint, saying so.
  r = await runCli(["eval", short, "--out", join(dir, "eval-short")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /config\.json is missing: using the run config stored in .*checkpoint\.safetensors/);
  // A refused change names the checkpoint, not the missing config.json.
  r = await runCli(["train", cfg, "--out", short, "--resume", "--set", "train.lr=0.002"]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err,
    new RegExp(
      `${escape(join(short, "checkpoint.safetensors"))}: the run config differs.*\\n {2}train\\.lr: 0\\.001 in the checkpoint, 0\\.002 now`,
    ),
  );
  assert.doesNotMatch(r.err, /config\.json/);
  r = await runCli([
    ...["train", cfg, "--out", short, "--resume", "--steps", "6"],
    ...["--set", "train.log_every=2", "--set", "train.checkpoint_every=3"],
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /config\.json was missing: rewritten from the checkpoint's config/);
  for (const f of stale) assert.ok(!existsSync(join(short, f)), `${f} removed`);
  const saved = JSON.parse(await readFile(join(short, "config.json"), "utf8")) as {
    train: { steps: number; log_every: number; lr: number };
  };
  assert.deepEqual([saved.train.steps, saved.train.log_every, saved.train.lr], [6, 2, 0.001]);
  for (const f of ["model.safetensors", "model-ema.safetensors"]) {
    const [a, b] = [await tensors(join(long, f)), await tensors(join(short, f))];
    for (const [k, v] of a)
      assert.deepEqual(b.get(k)!.data, v.data, `${f} ${k}: the extended run = a 6-step run`);
  }
  assert.equal((await runCli(["eval", short])).code, 0, "eval finds the rewritten config");
});

test("R8: a torn last line of metrics.jsonl is dropped with a warning; any other bad line names the file and line", async (t) => {
  const dir = await tempDir(t, "r8");
  const cfg = await makeRun(dir);
  const out = join(dir, "run");
  assert.equal((await runCli(["train", cfg, "--out", out, "--steps", "2"])).code, 0);
  const metrics = join(out, "metrics.jsonl");
  const good = await readFile(metrics, "utf8");
  await writeFile(metrics, good + '{"step":3,"loss":0.1');
  let r = await runCli(["train", cfg, "--out", out, "--resume", "--steps", "3"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`warning: ${escape(metrics)}:3: torn last line dropped`));
  assert.deepEqual(
    (await readMetrics(out)).map((m) => m.step),
    [1, 2, 3],
  );
  await writeFile(metrics, good.replace("\n", "\nnot json\n"));
  r = await runCli(["train", cfg, "--out", out, "--resume", "--steps", "4"]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${escape(metrics)}:2: not JSON`));
});

test("N1, N3: a diverging lr: bad steps are skipped and counted, the run stops (exit 1) naming the last good checkpoint, which stays finite; --resume refuses a checkpoint holding NaN or Infinity, naming the tensors", async (t) => {
  const dir = await tempDir(t, "n1");
  const cfg = await makeRun(dir, { steps: 12, checkpoint_every: 1 });
  const out = join(dir, "run");
  const r = await runCli(["train", cfg, "--out", out, "--set", "train.lr=10"]);
  assert.equal(r.code, 1, r.err);
  const ckpt = join(out, "checkpoint.safetensors");
  const m = new RegExp(
    `training diverged: 5 steps in a row up to step (\\d+) had a non-finite loss or gradient norm.*the last good checkpoint, ${escape(ckpt)} \\(step (\\d+)\\), is intact.*lower train\\.lr \\(now 10\\)`,
  ).exec(r.err);
  assert.ok(m, r.err);
  const ck = await loadCheckpoint(ckpt);
  assert.equal(ck.state.step, Number(m[2]));
  for (const group of [ck.tensors.params, ck.tensors.m, ck.tensors.v, ck.tensors.ema!])
    for (const [k, v] of group) assert.ok(v.data.every(Number.isFinite), `${k} finite`);
  const skipped = (await readMetrics(out)).map((l) => l.skipped_steps ?? 0);
  assert.ok(skipped.at(-1)! >= 4, `skipped steps counted: ${skipped}`);
  assert.ok(!existsSync(join(out, "model.safetensors")));

  // The checkpoint writer refuses NaN too, and the old checkpoint stays.
  const config = parseHyperNetworkConfig(tinyConfig("ANR"), "tiny");
  const bad = initHostParams(config, 1);
  [...bad.values()][3]!.data[5] = Number.NaN;
  const bytes = await readFile(ckpt);
  await assert.rejects(
    saveCheckpoint(ckpt, config, { params: bad, m: bad, v: bad, ema: null }, { ...ck.state }),
    (e: unknown) => e instanceof NonFiniteWeightsError && e.message.startsWith(`${ckpt}: non-finite`),
  );
  assert.ok((await readFile(ckpt)).equals(bytes));

  // A checkpoint holding NaN (written by another tool, or before this guard) is refused at load,
  // naming the tensors, before any step: --resume neither trains on it nor logs anything.
  const good = join(dir, "good");
  assert.equal((await runCli(["train", cfg, "--out", good, "--steps", "2"])).code, 0);
  const goodCkpt = join(good, "checkpoint.safetensors");
  const file = await readSafetensors(goodCkpt);
  const poisoned = [...file.tensors.keys()].filter((k) => /^(params|adam_v)\/tokenizer\.posemb$/.test(k));
  assert.equal(poisoned.length, 2);
  for (const k of poisoned) file.tensors.get(k)!.data[0] = Number.POSITIVE_INFINITY;
  await writeSafetensors(goodCkpt, file.tensors, file.metadata);
  const metrics = await readFile(join(good, "metrics.jsonl"), "utf8");
  const resumed = await runCli(["train", cfg, "--out", good, "--resume", "--steps", "4"]);
  assert.equal(resumed.code, 2, resumed.err);
  assert.match(
    resumed.err,
    new RegExp(
      `${escape(goodCkpt)}: non-finite weights \\(NaN or ±Infinity\\) in 2 tensors: params/tokenizer\\.posemb \\(1 of \\d+\\), adam_v/tokenizer\\.posemb`,
    ),
  );
  assert.doesNotMatch(resumed.err, /update skipped/);
  assert.equal(await readFile(join(good, "metrics.jsonl"), "utf8"), metrics, "no step ran");
});

test("N1: a poisoned batch (NaN pixels) is skipped: no parameter, moment or EMA update, counted in the metrics", async (t) => {
  const dir = await tempDir(t, "n1-batch");
  const cfg = await makeRun(dir, { steps: 5 });
  const run = resolveRunConfig(JSON.parse(await readFile(cfg, "utf8"))) as ResolvedImageRun;
  const out = join(dir, "run");
  // The third step's batch (step index 2) holds NaN: a corrupt decoder or a field with holes.
  const poisoned = async () => {
    const driver = await imageDriver(run);
    const batch = driver.batch.bind(driver);
    driver.batch = async (step, g) => {
      const b = await batch(step, g);
      return step === 2 ? { ...b, imgs: b.imgs.mul(Number.NaN) } : b;
    };
    return driver;
  };
  await runLoop(run, await poisoned(), { out, verbose: false, stopAfter: 2 });
  const at2 = await loadCheckpoint(join(out, "checkpoint.safetensors"));
  await runLoop(run, await poisoned(), { out, verbose: false, resume: true, stopAfter: 3 });
  const at3 = await loadCheckpoint(join(out, "checkpoint.safetensors"));
  assert.equal(at3.state.step, 3);
  assert.equal(at3.state.skippedSteps, 1);
  assert.equal(at3.state.emaCalls, at2.state.emaCalls, "no EMA call");
  for (const g of ["params", "m", "v", "ema"] as const)
    for (const [k, v] of at2.tensors[g]!) assert.deepEqual(at3.tensors[g]!.get(k)!.data, v.data, `${g} ${k}`);
  const r = await runLoop(run, await poisoned(), { out, verbose: false, resume: true });
  assert.ok(Number.isFinite(r.final.psnr));
  const lines = await readMetrics(out);
  assert.deepEqual(
    lines.map((l) => [l.step, l.skipped_steps, l.loss === undefined]),
    [
      [1, undefined, false],
      [2, undefined, false],
      [3, 1, true],
      [4, 1, false],
      [5, 1, false],
    ],
  );
});

test('C9, C11: --set with a prototype segment is refused and pollutes nothing; --data-root "" and any other empty path are usage errors naming the option', async (t) => {
  for (const key of ["__proto__.polluted", "train.constructor.prototype.polluted", "a.prototype.b"]) {
    const segment = key.split(".").find((s) => ["__proto__", "constructor", "prototype"].includes(s))!;
    assert.throws(
      () => applyOverride({ train: {} }, `${key}=1`),
      (e: unknown) =>
        e instanceof Error && e.message.includes(`--set ${key}=1: "${segment}" is not a config field`),
    );
    const r = await runCli(["train", "--preset", "demo", "--set", `${key}=1`, "--out", "/nonexistent/x"]);
    assert.equal(r.code, 2, r.err);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"), false);
  }
  const dir = await tempDir(t, "c11");
  const r = await runCli(["train", "--preset", "demo", "--data-root", "", "--out", join(dir, "run")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--data-root: expected a path, got an empty string/);
  assert.ok(!existsSync(join(dir, "run")));
  // The same for every command and every path (an unset shell variable): never "not given".
  const cfg = await makeRun(dir);
  const model = join(dir, "m.safetensors");
  assert.equal((await runCli(["init", cfg, "--out", model])).code, 0);
  const png = join(dir, "data", "test", "test0.png");
  for (const [args, message] of [
    [["eval", dir, "--data-root", ""], /--data-root: expected a path, got an empty string/],
    [["eval", "--model", model, "--config", ""], /--config: expected a path, got an empty string/],
    [["eval", ""], /anr eval: argument RUN: expected a path, got an empty string/],
    [["train", cfg, "--out", ""], /--out: expected a path, got an empty string/],
    [["encode", png, "--model", ""], /--model: expected a path, got an empty string/],
    [["encode", png, "--model", model, "--out", ""], /--out: expected a path, got an empty string/],
    [["decode", join(dir, "t.safetensors"), "--model", model, "--out", ""], /--out: expected a path/],
  ] as const) {
    const e = await runCli([...args]);
    assert.equal(e.code, 2, `${args.join(" ")}: ${e.err}`);
    assert.match(e.err, message);
  }
  assert.deepEqual((await readdir(dir)).sort(), ["data", "m.safetensors", "run.json"]);
});

test("D2, D3: unreadable images are all listed when the data opens, before the run folder exists; with skip_corrupt they are left out and reported (printed, metrics, eval.json), the count being true", async (t) => {
  const dir = await tempDir(t, "d3");
  const cfg = await makeRun(dir, { steps: 2 });
  await writeFile(join(dir, "data", "train", "zbad.png"), "not a png");
  await writeFile(join(dir, "data", "test", "zbad.jpg"), "");
  const out = join(dir, "run");
  let r = await runCli(["train", cfg, "--out", out]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /1 of the 5 image files of folder:train cannot be read .*\n {2}train\/zbad\.png: /);
  assert.match(r.err, /\n1 of the 3 image files of folder:test cannot be read .*\n {2}test\/zbad\.jpg: /);
  assert.ok(!existsSync(out));
  r = await runCli(["train", cfg, "--out", out, "--set", "train.skip_corrupt=true"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /folder:train 4 images, folder:test 2/);
  assert.match(r.err, /skip_corrupt: 2 unreadable file\(s\) left out: train\/zbad\.png, test\/zbad\.jpg/);
  assert.deepEqual(
    (await readMetrics(out)).map((m) => m.skipped_files),
    [2, 2],
  );
  const report = JSON.parse(await readFile(join(out, "eval.json"), "utf8")) as {
    images: number;
    skipped_files: string[];
  };
  assert.deepEqual([report.images, report.skipped_files], [2, ["train/zbad.png", "test/zbad.jpg"]]);
  // anr eval on that run says so too, and its report lists the eval split's file left out.
  r = await runCli(["eval", out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /skip_corrupt: 1 unreadable file\(s\) left out: test\/zbad\.jpg/);
  assert.match(r.out, /over 2 images/);
  const evalReport = JSON.parse(await readFile(join(out, "eval-test-online.json"), "utf8")) as {
    images: number;
    skipped_files: string[];
  };
  assert.deepEqual([evalReport.images, evalReport.skipped_files], [2, ["test/zbad.jpg"]]);
});

/** `anr ARGS` as a child process, with its output collected. */
function anr(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/run.ts"), ...args], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("anr train:")) onStart();
  });
  child.stderr.on("data", (d: Buffer) => void (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  void exited.then(onStart);
  return { child, started, exited, output: () => ({ out, err }) };
}

test("R9: two concurrent train processes into one folder: the second fails at once, exit 2, naming the holder", async (t) => {
  const dir = await tempDir(t, "r9");
  const cfg = await makeRun(dir, { steps: 400, checkpoint_every: 0 });
  const out = join(dir, "run");
  const first = anr(["train", cfg, "--out", out]);
  t.after(() => first.child.kill("SIGKILL"));
  await first.started;
  for (const extra of [[], ["--resume"], ["--overwrite"]]) {
    const second = anr(["train", cfg, "--out", out, ...extra]);
    const end = await second.exited;
    assert.equal(end.code, 2, second.output().err);
    assert.match(
      second.output().err,
      new RegExp(`${escape(out)}: in use by anr train r \\(pid ${first.child.pid} on `),
    );
  }
  assert.equal(first.child.exitCode, null, "the first run is still going");
  first.child.kill("SIGKILL");
  await first.exited;
  const steps = (await readMetrics(out)).map((m) => m.step);
  assert.deepEqual(steps, [...new Set(steps)], "each step logged once, by one run");
});

for (const signal of ["SIGINT", "SIGTERM"] as const)
  test(`Ctrl-C: ${signal} during training writes a checkpoint, prints where and the command to resume, exits 130; that command finishes the run`, async (t) => {
    const dir = await tempDir(t, signal.toLowerCase());
    const cfg = await makeRun(dir, { steps: 400, checkpoint_every: 0 });
    const out = join(dir, "run");
    const run = anr(["train", cfg, "--out", out]);
    t.after(() => run.child.kill("SIGKILL"));
    await run.started;
    while (
      !existsSync(join(out, "metrics.jsonl")) ||
      (await readFile(join(out, "metrics.jsonl"), "utf8")) === ""
    )
      await new Promise((r) => setTimeout(r, 50));
    run.child.kill(signal);
    const end = await run.exited;
    const { err } = run.output();
    assert.equal(end.code, 130, err);
    const ckpt = join(out, "checkpoint.safetensors");
    const m = new RegExp(
      `${signal} at step (\\d+) of 400: checkpoint written to ${escape(ckpt)}; continue with:\\n {2}(anr train .*)\\n`,
    ).exec(err);
    assert.ok(m, err);
    const step = Number(m[1]);
    assert.ok(step >= 1);
    assert.equal((await loadCheckpoint(ckpt)).state.step, step);
    assert.equal(m[2], `anr train ${cfg} --out ${out} --resume`);
    const resumed = anr(["train", cfg, "--out", out, "--resume", "--steps", String(step + 1)]);
    assert.equal((await resumed.exited).code, 0, resumed.output().err);
    assert.equal((await loadCheckpoint(ckpt)).state.step, step + 1);
  });

/** The last step logged in `dir`'s metrics.jsonl (complete lines only); 0 when none. */
async function loggedStep(dir: string): Promise<number> {
  const text = await readFile(join(dir, "metrics.jsonl"), "utf8").catch(() => "");
  const lines = text.split("\n").slice(0, -1); // a line is complete once its newline is written
  let step = 0;
  for (const l of lines)
    try {
      step = Math.max(step, (JSON.parse(l) as { step: number }).step);
    } catch {
      // a line torn by an earlier kill, dropped by the next resume
    }
  return step;
}

test("kill -9 at 20 random moments (train → kill → resume): the run ends byte for byte as an uninterrupted one", async (t) => {
  const dir = await tempDir(t, "kill9");
  const steps = 30;
  const cfg = await makeRun(dir, { steps, checkpoint_every: 1 });
  const [reference, killed] = [join(dir, "reference"), join(dir, "killed")];
  const uninterrupted = anr(["train", cfg, "--out", reference]);
  const files = [
    "model.safetensors",
    "model-ema.safetensors",
    "checkpoint.safetensors",
    "eval.json",
    "config.json",
  ];
  let referenceDone: Promise<void> | null = null;
  /** The finished run in `killed` equals the uninterrupted one. */
  const compare = async (what: string) => {
    referenceDone ??= uninterrupted.exited.then((end) =>
      assert.equal(end.code, 0, uninterrupted.output().err),
    );
    await referenceDone;
    for (const f of files)
      assert.ok(
        (await readFile(join(killed, f))).equals(await readFile(join(reference, f))),
        `${what}: ${f} byte for byte`,
      );
    assert.deepEqual(
      await readMetrics(killed),
      await readMetrics(reference),
      `${what}: metrics (timings aside)`,
    );
    assert.ok(!existsSync(join(killed, SET_ASIDE)));
    assert.deepEqual(
      (await readdir(killed)).filter((f) => f.endsWith(".tmp") || f.startsWith(".anr.lock")),
      [],
      `${what}: no temporaries or lock left`,
    );
  };
  const rng = new Rng(20261202);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Every start is killed at a random moment while it runs: some during start-up (claiming the
  // folder, setting an old run aside or putting it back, the first step's compilation), the
  // others once the metrics show a chosen step 1 to 3 steps past the checkpoint, after a short
  // random delay (the checkpoint, metrics and, at the end, model writes of that step). A kill
  // lands only while the process runs: a run that finishes first ends a round, is compared with
  // the uninterrupted run, and is replaced (--overwrite, itself killed at random) by the next
  // round, until 20 kills have landed. So the test no longer depends on the machine's speed.
  let [kills, rounds, fresh] = [0, 0, false];
  let startup = 2000; // ms from a start to its first logged step, as last measured
  for (let attempt = 0; kills < 20; attempt++) {
    assert.ok(attempt < 200, `only ${kills} kills landed in ${attempt} runs`);
    const checkpoint = join(killed, "checkpoint.safetensors");
    const at = !fresh && existsSync(checkpoint) ? (await loadCheckpoint(checkpoint)).state.step : null;
    const child = anr(["train", cfg, "--out", killed, at === null ? "--overwrite" : "--resume"]);
    const t0 = Date.now();
    let alive = true;
    void child.exited.then(() => (alive = false));
    if (rng.uniform() < 0.4) await sleep(startup * rng.uniform());
    else {
      const target = Math.min(steps, (at ?? 0) + 1 + Math.floor(3 * rng.uniform()));
      while (alive && (await loggedStep(killed)) < target) await sleep(10);
      if (alive) startup = Math.max(200, Date.now() - t0);
      await sleep(150 * rng.uniform());
    }
    child.child.kill("SIGKILL");
    const end = await child.exited;
    if (end.signal === "SIGKILL") {
      kills++;
      fresh = false;
    } else {
      assert.equal(end.code, 0, child.output().err);
      await compare(`round ${++rounds}`);
      fresh = true; // the next round starts afresh over this finished run
    }
  }
  const resumable = !fresh && existsSync(join(killed, "checkpoint.safetensors"));
  const last = anr(["train", cfg, "--out", killed, resumable ? "--resume" : "--overwrite"]);
  assert.equal((await last.exited).code, 0, last.output().err);
  await compare(`after ${kills} kills`);
  t.diagnostic(`${kills} kills, ${rounds} finished rounds`);
});
