import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { resolveRunConfig, readRunConfig, type RunConfigInput } from "../src/training/run-config.js";
import { applyOverride, runPreset, RUN_PRESETS } from "../src/training/run-presets.js";
import { MODEL_PRESETS } from "../src/training/presets.js";
import { parseHyperNetworkConfig, ConfigError } from "../src/model/config.js";
import { train } from "../src/training/trainer.js";
import { readSafetensors } from "../src/io/safetensors.js";
import { loadModel } from "../src/io/weights.js";
import { tinyConfig } from "./fixtures.js";

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

function runConfig(root: string, steps: number): RunConfigInput {
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
      ema: { beta: 0.9, update_every: 1, update_after_step: 2 },
    },
    eval: { split: "test", batch_size: 4, clamp: true },
  };
}

const volatile = new Set(["seconds", "images_per_s"]);
async function metrics(dir: string): Promise<Record<string, number>[]> {
  return (await readFile(join(dir, "metrics.jsonl"), "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) =>
      Object.fromEntries(
        Object.entries(JSON.parse(l) as Record<string, number>).filter(([k]) => !volatile.has(k)),
      ),
    );
}

test("trainer: an interrupted and resumed run ends exactly where an uninterrupted one does", async () => {
  const root = await makeImageFolder(12);
  const run = resolveRunConfig(runConfig(root, 6));
  const a = join(root, "a");
  const b = join(root, "b");
  const ra = await train(run, { out: a, verbose: false });
  assert.equal(ra.steps, 6);
  assert.ok(ra.final.images === 3 && Number.isFinite(ra.final.psnr));
  const rb1 = await train(run, { out: b, verbose: false, stopAfter: 4 });
  assert.ok(rb1.interrupted && rb1.steps === 4);
  const rb2 = await train(run, { out: b, verbose: false, resume: true });
  assert.ok(!rb2.interrupted && rb2.steps === 6);

  assert.deepEqual(await metrics(b), await metrics(a), "same metrics, step by step");
  for (const f of ["model.safetensors", "model-ema.safetensors"]) {
    const [ta, tb] = [
      (await readSafetensors(join(a, f))).tensors,
      (await readSafetensors(join(b, f))).tensors,
    ];
    for (const [k, t] of ta) assert.deepEqual(tb.get(k)!.data, t.data, `${f}: ${k}`);
  }
  // The EMA differs from the online weights (it was lerped, not only copied).
  const [online, ema] = [
    await loadModel(join(a, "model.safetensors")),
    await loadModel(join(a, "checkpoint.safetensors"), { weights: "ema" }),
  ];
  assert.notDeepEqual(online.weights.get("wtokens")!.data, ema.weights.get("wtokens")!.data);

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
  await assert.rejects(
    train(resolveRunConfig({ ...runConfig(root, 6), train: { ...runConfig(root, 6).train, lr: 2e-3 } }), {
      out: b,
      verbose: false,
      resume: true,
    }),
    /differs/,
  );
});

test("trainer: data that does not fit the model, or a wrong path, fails before training", async () => {
  const root = await makeImageFolder(4);
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

test("run configs: errors name the field; presets resolve; overrides apply", async () => {
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
      resolveRunConfig({ data: { kind: "idx", root: "/x" }, model: { preset: "nope" }, train: { steps: 1 } }),
    /unknown model preset "nope"/,
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
  const { writeFile } = await import("node:fs/promises");
  await writeFile(
    join(dir, "run.yaml"),
    "data: {kind: idx, root: /x}\nmodel: {preset: small32-ipc}\ntrain:\n  steps: 10\n  batch_size: 0\n",
  );
  await assert.rejects(readRunConfig(join(dir, "run.yaml")), /run\.yaml[\s\S]*train\.batch_size/);
});

test("the README's example run config is valid", async () => {
  const md = await readFile(join(import.meta.dirname, "..", "README.md"), "utf8");
  const block = md.match(/```yaml\n([\s\S]*?)```/);
  assert.ok(block, "README has a yaml example");
  const dir = await mkdtemp(join(tmpdir(), "anr-readme-"));
  const { writeFile } = await import("node:fs/promises");
  await writeFile(join(dir, "run.yaml"), block[1]!);
  const run = await readRunConfig(join(dir, "run.yaml"));
  assert.equal(run.model.hyponet.name, "ANR");
  assert.equal(run.train.grad_accumulation * run.train.batch_size, 18);
});
