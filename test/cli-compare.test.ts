/**
 * `anr compare --preset demo|fmnist`, shrunk to 2 steps: the three contenders are trained with the
 * same run settings, and the table's numbers are those of each run's own files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { loadModel } from "../src/io/files.js";
import { countParams } from "../src/model/params.js";
import { DEBIAN_FASHION_MNIST } from "../src/training/run-presets.js";
import { skipWithoutData } from "./fixtures.js";
import { encodeWith, runCli, tempDir } from "./cli-helpers.js";

interface Row {
  model: string;
  preset: string;
  psnr: number;
  ssim: number;
  curve: [number, number][];
  parameters: number;
  floats_per_instance: number;
}

/** Floats the hyper-network generates per image, counted from its output on one blank image. */
async function generatedFloats(modelPath: string): Promise<number> {
  const { config, weights } = await loadModel(modelPath);
  const [h, w] = [32, 32];
  const gen = await encodeWith(weights, config, [new Float32Array(3 * h * w)], [h, w]);
  return [...gen.values()].reduce((s, t) => s + t.data.length, 0);
}

async function checkComparison(
  out: string,
  which: string,
  presets: [string, string, string],
  hyponets: [string, string, string],
  steps: number,
): Promise<void> {
  const rows = JSON.parse(await readFile(join(out, "compare.json"), "utf8")) as Row[];
  assert.deepEqual(
    rows.map((r) => [r.model, r.preset]),
    [
      ["ANR", presets[0]],
      ["MLP (TransINR)", presets[1]],
      ["IPC", presets[2]],
    ],
  );
  const md = await readFile(join(out, "compare.md"), "utf8");
  assert.match(md, new RegExp(`Same data, ${steps} steps`));
  const configs: Record<string, unknown>[] = [];
  for (const [i, r] of rows.entries()) {
    const dir = join(out, r.preset);
    const evalJson = JSON.parse(await readFile(join(dir, "eval.json"), "utf8")) as {
      psnr: number;
      ssim: number;
    };
    const cfg = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown> & {
      name: string;
      model: Parameters<typeof countParams>[0];
      train: { steps: number };
    };
    // The table reports each run's own final evaluation, its model's size and its curve.
    assert.equal(r.psnr, evalJson.psnr, r.model);
    assert.equal(r.ssim, evalJson.ssim, r.model);
    assert.deepEqual(r.curve.at(-1), [steps, r.psnr], `${r.model}: the curve ends at the final evaluation`);
    assert.equal(cfg.name, `${which}-${r.preset}`);
    assert.equal(cfg.model.hyponet.name, hyponets[i]);
    assert.equal(cfg.train.steps, steps);
    assert.equal(r.parameters, countParams(cfg.model), r.model);
    assert.equal(r.floats_per_instance, await generatedFloats(join(dir, "model.safetensors")), r.model);
    const line = md.split("\n").find((l) => l.startsWith(`| ${r.model} |`));
    assert.ok(line, `${r.model} row in compare.md`);
    assert.ok(
      line.startsWith(
        `| ${r.model} | ${r.psnr.toFixed(2)} | ${r.ssim.toFixed(3)} | ${r.floats_per_instance.toLocaleString("en")} | ${r.parameters.toLocaleString("en")} |`,
      ),
      line,
    );
    configs.push(Object.fromEntries(Object.entries(cfg).filter(([k]) => k !== "name" && k !== "model")));
  }
  // "Same everything else": the runs differ only in their name and model.
  assert.deepEqual(configs[1], configs[0]);
  assert.deepEqual(configs[2], configs[0]);
  assert.ok((await readdir(out)).includes("compare.png"));
}

test("compare --preset demo --steps 2: three contenders, same settings, table from their runs", async (t) => {
  await initBackend();
  const out = await tempDir(t, "compare-demo");
  const r = await runCli(["compare", "--preset", "demo", "--steps", "2", "--out", out]);
  assert.equal(r.code, 0, r.err);
  await checkComparison(
    out,
    "demo",
    ["tiny32-anr", "tiny32-mlp", "tiny32-ipc"],
    ["ANR", "HypoMlp", "HypoMlpIPC"],
    2,
  );
});

test("compare --preset fmnist (Fashion-MNIST, 2 steps of 4 on 64 images)", async (t) => {
  const present = existsSync(join(DEBIAN_FASHION_MNIST, "train-images-idx3-ubyte.gz"));
  if (skipWithoutData(t, present, `Debian's dataset-fashion-mnist (${DEBIAN_FASHION_MNIST})`)) return;
  await initBackend();
  const out = await tempDir(t, "compare-fmnist");
  const r = await runCli([
    "compare",
    ...["--preset", "fmnist", "--steps", "2", "--out", out],
    ...[
      "--set",
      "data.train_count=64",
      "--set",
      "data.test_count=16",
      "--set",
      "train.eval_every=0",
      "--set",
      "train.batch_size=4",
    ],
  ]);
  assert.equal(r.code, 0, r.err);
  await checkComparison(
    out,
    "fmnist",
    ["small32-anr", "small32-mlp", "small32-ipc"],
    ["ANR", "HypoMlp", "HypoMlpIPC"],
    2,
  );
  const rows = JSON.parse(await readFile(join(out, "compare.json"), "utf8")) as Row[];
  const evalJson = JSON.parse(await readFile(join(out, rows[0]!.preset, "eval.json"), "utf8")) as {
    images: number;
  };
  assert.equal(evalJson.images, 16, "--set data.test_count reached the runs");
});
