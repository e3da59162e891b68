import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { resolveRunConfig, readRunConfig, type RunConfigInput } from "../src/training/run-config.js";
import { applyOverride, runPreset, RUN_PRESETS } from "../src/training/run-presets.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { parseHyperNetworkConfig, ConfigError } from "../src/model/config.js";
import { train } from "../src/training/trainer.js";
import { type HostTensor } from "../src/io/safetensors.js";
import { readSafetensors } from "../src/io/files.js";
import { loadCheckpoint } from "../src/training/checkpoint.js";
import { readMetrics, tinyConfig } from "./fixtures.js";
import { initBackend } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { initHostParams, toDevice, toHost, disposeParams } from "../src/model/params.js";
import { adamInit } from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";

/** A folder of real PNG photos-to-be: smooth colour patterns, 20×20. */
async function makeImageFolder(n: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "anr-trainer-"));
  await mkdir(join(root, "imgs"));
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(20 * 20 * 3);
    for (let y = 0; y < 20; y++)
      for (let x = 0; x < 20; x++)
        for (let c = 0; c < 3; c++)
          px[(y * 20 + x) * 3 + c] = Math.round(
            127.5 + 120 * Math.sin((x * (1 + (i % 3)) + y * (c + 1) + i) / 5),
          );
    await sharp(px, { raw: { width: 20, height: 20, channels: 3 } })
      .png()
      .toFile(join(root, "imgs", `im${String(i).padStart(2, "0")}.png`));
  }
  return root;
}

function runConfig(root: string, steps: number, train: Record<string, unknown> = {}): RunConfigInput {
  return {
    name: "t",
    data: {
      kind: "folder",
      root: join(root, "imgs"),
      split: { train: 0.75, val: 0, test: 0.25 },
      seed: 1,
      preprocess: { mode: "random-crop", size: 16, resize: 20, flip: true },
    },
    model: tinyConfig("ANR"),
    train: {
      steps,
      batch_size: 4,
      lr: 1e-3,
      seed: 3,
      eval_every: 3,
      sample_every: 3,
      checkpoint_every: 3,
      log_every: 1,
      ema: { beta: 0.5, update_every: 2, update_after_step: 1 },
      ...train,
    },
    eval: { split: "test", batch_size: 4, clamp: true },
  };
}

/** max |a − b| over every tensor of `a` (which `b` must also hold). */
function maxDiff(a: Map<string, HostTensor>, b: Map<string, HostTensor>): number {
  let worst = 0;
  for (const [k, t] of a) {
    const u = b.get(k);
    assert.ok(u, `${k} present in both`);
    t.data.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - u.data[i]!))));
  }
  return worst;
}

/** ema + (θ − ema)·(1 − decay) in float64: one lerp of the EMA rule, computed here, not by src. */
function lerp(
  ema: Map<string, HostTensor>,
  theta: Map<string, HostTensor>,
  decay: number,
): Map<string, HostTensor> {
  return new Map(
    [...ema].map(([k, e]) => [
      k,
      {
        shape: e.shape,
        data: Float32Array.from(e.data, (x, i) => x + (theta.get(k)!.data[i]! - x) * (1 - decay)),
      },
    ]),
  );
}

test("trainer: a run resumed after a crash (metrics logged past its checkpoint) ends exactly where an uninterrupted one does; the EMA follows its rule", async (t) => {
  const root = await makeImageFolder(12);
  t.after(() => rm(root, { recursive: true, force: true }));
  // log_every 2 with stops at odd steps: resuming must also restore the half-filled logging window.
  const run = resolveRunConfig(runConfig(root, 6, { log_every: 2 }));
  const a = join(root, "a");
  const b = join(root, "b");
  const ra = await train(run, { out: a, verbose: false });
  assert.equal(ra.steps, 6);
  assert.ok(ra.final.images === 3 && Number.isFinite(ra.final.psnr));

  // Run b stops after steps 1, 3 and 5 (each stop checkpoints), so that the online weights θ_s and
  // the EMA can be read at those steps.
  const ckpt = join(b, "checkpoint.safetensors");
  const at: Record<number, Awaited<ReturnType<typeof loadCheckpoint>>> = {};
  for (const stop of [1, 3, 5]) {
    const r = await train(run, { out: b, verbose: false, resume: stop > 1, stopAfter: stop });
    assert.ok(r.interrupted && r.steps === stop);
    at[stop] = await loadCheckpoint(ckpt);
    assert.equal(at[stop].state.step, stop);
    assert.equal(at[stop].state.emaCalls, stop, "one EMA call per step");
    if (stop === 3) await copyFile(ckpt, join(root, "step3.safetensors"));
  }
  // The crash: the process died after step 5, having logged step 4, its last checkpoint being step 3's
  // (the regular checkpoint_every 3). This is the folder such a crash leaves behind.
  await copyFile(join(root, "step3.safetensors"), ckpt);
  const logged = (await readMetrics(b)).map((r) => r.step!);
  assert.ok(logged.includes(4), `a metrics line past the checkpoint: steps ${logged}`);
  const rb = await train(run, { out: b, verbose: false, resume: true });
  assert.ok(!rb.interrupted && rb.steps === 6);

  assert.deepEqual(await readMetrics(b), await readMetrics(a), "same metrics, step by step, each step once");
  for (const f of ["model.safetensors", "model-ema.safetensors"]) {
    const [ta, tb] = [
      (await readSafetensors(join(a, f))).tensors,
      (await readSafetensors(join(b, f))).tensors,
    ];
    for (const [k, t] of ta) assert.deepEqual(tb.get(k)!.data, t.data, `${f}: ${k}`);
  }

  // The EMA recomputed from the online weights with the rule (ema-pytorch 0.4.2; update_every 2,
  // update_after_step 1, β 0.5): call c (after step c + 1) acts when c is even; it copies while
  // c ≤ 1, then lerps with decay min(β, 1 − (1 + c − 1)^(−2/3)).
  const theta = (s: number) => at[s]!.tensors.params;
  const emaAt = (s: number) => at[s]!.tensors.ema!;
  assert.equal(maxDiff(theta(1), emaAt(1)), 0, "call 0 copies θ_1");
  const d2 = 1 - 2 ** (-2 / 3); // call 2: 0.370, below β
  const d4 = Math.min(0.5, 1 - 4 ** (-2 / 3)); // call 4: 0.603, capped at β = 0.5
  // float32 lerps on the device against float64 here: measured 1.5e-8 (step 3) and 2.3e-10 (step 5);
  // an EMA left at θ_1 would be off by 7e-4 at step 3.
  const tol = 1e-6;
  const e3 = maxDiff(emaAt(3), lerp(emaAt(1), theta(3), d2));
  assert.ok(e3 < tol, `EMA after step 3 off the rule by ${e3}`);
  const e5 = maxDiff(emaAt(5), lerp(emaAt(3), theta(5), d4));
  assert.ok(e5 < tol, `EMA after step 5 off the rule by ${e5}`);
  // Call 5 (step 6) is skipped: the final EMA is step 5's.
  const finalEma = (await readSafetensors(join(a, "model-ema.safetensors"))).tensors;
  assert.equal(maxDiff(emaAt(5), finalEma), 0, "call 5 skips");
  // The rule moved the EMA by far more than the tolerance (a stale EMA would fail above).
  assert.ok(maxDiff(emaAt(5), emaAt(1)) > 100 * tol);

  const files = await readdir(a);
  for (const f of [
    "config.json",
    "metrics.jsonl",
    "checkpoint.safetensors",
    "eval.json",
    "psnr.png",
    "samples",
  ])
    assert.ok(files.includes(f), `${f} in the run folder`);
  assert.deepEqual(
    JSON.parse(await readFile(join(a, "config.json"), "utf8")),
    JSON.parse(JSON.stringify(run)),
  );
  assert.ok((await readdir(join(a, "samples"))).includes("step-000003.png"));
  const evalJson = JSON.parse(await readFile(join(a, "eval.json"), "utf8")) as {
    psnr: number;
    perImage: unknown[];
  };
  assert.equal(evalJson.perImage.length, 3);

  // Resuming with a different config is refused.
  const other = runConfig(root, 6, { log_every: 2 });
  await assert.rejects(
    train(resolveRunConfig({ ...other, train: { ...other.train, lr: 2e-3 } }), {
      out: b,
      verbose: false,
      resume: true,
    }),
    /differs/,
  );
});

/** Pixel (x, y), channel c of the i-th training image of the order-file test: distinct per image. */
const orderPixel = (i: number, x: number, y: number, c: number) =>
  Math.round(127.5 + 120 * Math.sin((x * (1 + i) + y * (c + 2) + 3 * i) / 4));

test("trainer: train.order_file with grad_accumulation 3: step s takes micro-batch g from order[3s + g]", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "anr-order-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  // split "folders": train items are the files of imgs/train in sorted order, so index i is im{i}.png.
  for (const [split, n] of [
    ["train", 6],
    ["test", 2],
  ] as const) {
    await mkdir(join(root, "imgs", split), { recursive: true });
    for (let i = 0; i < n; i++) {
      const px = Buffer.alloc(16 * 16 * 3);
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 16; x++)
          for (let c = 0; c < 3; c++)
            px[(y * 16 + x) * 3 + c] = orderPixel(i + (split === "test" ? 6 : 0), x, y, c);
      await sharp(px, { raw: { width: 16, height: 16, channels: 3 } })
        .png()
        .toFile(join(root, "imgs", split, `im${i}.png`));
    }
  }
  // Batches of 2 although batch_size is 4: the order file decides. One spare batch at the end.
  const order = [
    [5, 0],
    [1, 4],
    [2, 3],
    [0, 0],
    [3, 1],
    [4, 2],
    [5, 5],
  ];
  await writeFile(join(root, "order.json"), JSON.stringify({ order }));
  const G = 3;
  const input = (o: string, steps = 2): RunConfigInput => ({
    name: "order",
    data: { kind: "folder", root: join(root, "imgs"), split: "folders", preprocess: { size: 16 } },
    model: tinyConfig("ANR"),
    train: {
      steps,
      batch_size: 4,
      grad_accumulation: G,
      lr: 1e-3,
      seed: 5,
      coord_noise: false,
      ema: null,
      eval_every: 0,
      sample_every: 0,
      checkpoint_every: 0,
      log_every: 1,
      order_file: o,
    },
    eval: { split: "test", batch_size: 2, clamp: true },
  });
  const run = resolveRunConfig(input(join(root, "order.json")));
  const out = join(root, "run");
  await train(run, { out, verbose: false });
  const trained = (await readSafetensors(join(out, "model.safetensors"))).tensors;

  // The same steps replayed here from the images as written (x/255, CHW) and the order as meant.
  await initBackend();
  const image = (i: number) =>
    Float32Array.from(
      { length: 3 * 16 * 16 },
      (_, k) => orderPixel(i, k % 16, Math.floor(k / 16) % 16, Math.floor(k / 256)) / 255,
    );
  const cfg = run.model;
  const params = toDevice(initHostParams(cfg, 5));
  let state: TrainState = { params, ...adamInit(params), step: 0 };
  const step = createImageTrainStep(cfg, {
    adam: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8 },
    clipNorm: 1,
  });
  const losses: number[] = [];
  for (let s = 0; s < 2; s++) {
    const micro = [0, 1, 2].map((g) => {
      const idx = order[s * G + g]!;
      const data = new Float32Array(idx.length * 3 * 256);
      idx.forEach((i, k) => data.set(image(i), k * 3 * 256));
      return { imgs: np.array(data, { shape: [idx.length, 3, 16, 16] }), noise: null };
    });
    const [next, m] = await step(state, micro);
    state = next;
    losses.push(m.loss);
  }
  const replayed = await toHost(state.params);
  step.dispose();
  for (const P of [state.params, state.m, state.v]) disposeParams(P);
  // Same kernels on the same inputs: measured bit-identical.
  assert.equal(maxDiff(replayed, trained), 0, "the trained weights are the replay's");
  assert.deepEqual(
    (await readMetrics(out)).filter((r) => r.loss !== undefined).map((r) => r.loss),
    losses,
    "logged loss: mean over the 3 micro-batches",
  );
  // Another order gives other weights (the check above can fail): step 1 swapped with step 0.
  const swapped = [...order.slice(3, 6), ...order.slice(0, 3), order[6]!];
  await writeFile(join(root, "swapped.json"), JSON.stringify({ order: swapped }));
  await train(resolveRunConfig(input(join(root, "swapped.json"))), {
    out: join(root, "swapped"),
    verbose: false,
  });
  const other = (await readSafetensors(join(root, "swapped", "model.safetensors"))).tensors;
  assert.ok(maxDiff(other, trained) > 1e-5, "the order matters");

  // An order file must cover steps × grad_accumulation micro-batches.
  await assert.rejects(
    train(resolveRunConfig(input(join(root, "order.json"), 3)), { out: join(root, "short"), verbose: false }),
    /"order" must list at least 9 batches of indices in \[0, 6\)/,
  );
  await writeFile(join(root, "bad.json"), JSON.stringify({ order: [[0], [6], [1], [2], [3], [4]] }));
  await assert.rejects(
    train(resolveRunConfig(input(join(root, "bad.json"))), { out: join(root, "bad"), verbose: false }),
    /bad\.json: "order" must list at least 6 batches of indices in \[0, 6\)/,
  );
});

test("trainer: data that does not fit the model, or a wrong path, fails before training", async (t) => {
  const root = await makeImageFolder(4);
  t.after(() => rm(root, { recursive: true, force: true }));
  const bad = runConfig(root, 2);
  (bad.data as { preprocess: { size: number } }).preprocess.size = 12;
  await assert.rejects(
    train(resolveRunConfig(bad), { out: join(root, "x"), verbose: false }),
    /12×12 but the model's tokenizer.args.input_size is 16×16/,
  );
  const missing = runConfig(root, 2);
  (missing.data as { root: string }).root = join(root, "nope");
  await assert.rejects(train(resolveRunConfig(missing), { out: join(root, "y"), verbose: false }), /nope/);
});

test("run configs: errors name the field; presets resolve; overrides apply", async (t) => {
  assert.throws(
    () =>
      resolveRunConfig(
        {
          data: { kind: "idx", root: "/x" },
          model: { preset: "small32-anr" },
          train: { steps: -1, lr: "fast" },
        },
        "r.yaml",
      ),
    (e: unknown) =>
      e instanceof ConfigError &&
      /r\.yaml/.test(e.message) &&
      /train\.steps/.test(e.message) &&
      /train\.lr/.test(e.message),
  );
  assert.throws(
    () =>
      resolveRunConfig(
        { data: { kind: "idx", root: "/x" }, model: { preset: "nope" }, train: { steps: 1 } },
        "run.yaml",
      ),
    /^ConfigError: run\.yaml: invalid run config:\n {2}model\.preset: unknown model preset "nope" \(known: /,
  );
  for (const name of Object.keys(RUN_PRESETS))
    assert.ok(resolveRunConfig(runPreset(name), name).model.hyponet);
  for (const [name, p] of Object.entries(MODEL_PRESETS)) assert.ok(parseHyperNetworkConfig(p.config, name));
  const paper = resolveRunConfig(runPreset("celeba128-anr-d5"));
  assert.equal(paper.model.hyponet.name === "ANR" && paper.model.hyponet.args.token_len, 256);
  assert.equal(paper.train.batch_size * paper.train.grad_accumulation, 18);
  const raw = runPreset("fmnist-anr") as Record<string, unknown>;
  applyOverride(raw, "train.lr=0.001");
  applyOverride(raw, 'data.root="/tmp/fm"');
  const r = resolveRunConfig(raw);
  assert.equal(r.train.lr, 0.001);
  assert.equal((r.data as { root: string }).root, "/tmp/fm");
  // YAML files work, with their errors located.
  const dir = await mkdtemp(join(tmpdir(), "anr-rc-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, "run.yaml"),
    "data: {kind: idx, root: /x}\nmodel: {preset: small32-ipc}\ntrain:\n  steps: 10\n  batch_size: 0\n",
  );
  await assert.rejects(readRunConfig(join(dir, "run.yaml")), /run\.yaml[\s\S]*train\.batch_size/);
});

test("the README's example run config is valid", async (t) => {
  const md = await readFile(join(import.meta.dirname, "..", "README.md"), "utf8");
  const block = md.match(/```yaml\n([\s\S]*?)```/);
  assert.ok(block, "README has a yaml example");
  const dir = await mkdtemp(join(tmpdir(), "anr-readme-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "run.yaml"), block[1]!);
  const run = await readRunConfig(join(dir, "run.yaml"));
  assert.equal(run.model.hyponet.name, "ANR");
  assert.equal(run.train.grad_accumulation * run.train.batch_size, 18);
});
