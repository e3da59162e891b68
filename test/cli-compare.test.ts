/**
 * `anr compare`, shrunk to a few steps: the three contenders are trained with the same run
 * settings (and seeds), and the table's numbers are those of each run's own files: per contender
 * the mean and sample standard deviation over the seeds; a time budget ends each run early, which
 * still evaluates and writes its model; the size plot carries the table's numbers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { loadModel, readSafetensors } from "../src/io/files.js";
import { representationSize } from "../src/io/tokens.js";
import { countParams, initHostParams } from "../src/model/params.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { resolveRunConfig } from "../src/training/run-config.js";
import { applyOverride, DEBIAN_FASHION_MNIST, runPreset } from "../src/training/run-presets.js";
import { train } from "../src/training/trainer.js";
import { comparisonRuns, sizePlot } from "../src/cli/compare.js";
import { svgLinePlot } from "../src/util/plot.js";
import { UsageError } from "../src/util/errors.js";
import { skipWithoutData } from "./fixtures.js";
import { encodeWith, runCli, tempDir } from "./cli-helpers.js";

interface SeedRun {
  seed: number;
  out: string;
  steps: number;
  budget_stopped: boolean;
  psnr: number;
  ssim: number;
  train_seconds: number;
  curve: [number, number][];
  time_curve: [number, number][];
}

interface Row {
  model: string;
  preset: string;
  seeds: number[];
  psnr: number;
  psnr_std: number | null;
  psnr_min: number;
  psnr_max: number;
  ssim: number;
  ssim_std: number | null;
  steps: number;
  train_seconds: number;
  budget_seconds: number | null;
  parameters: number;
  floats_per_instance: number;
  runs: SeedRun[];
}

interface EvalJson {
  psnr: number;
  ssim: number;
  images: number;
  steps?: number;
  budget_seconds?: number;
  train_seconds?: number;
  stopped_by?: string;
}

/** Floats the hyper-network generates per image, counted from its output on one blank image. */
async function generatedFloats(
  weights: Parameters<typeof encodeWith>[0],
  config: Parameters<typeof encodeWith>[1],
  size: number,
): Promise<number> {
  const gen = await encodeWith(weights, config, [new Float32Array(3 * size * size)], [size, size]);
  return [...gen.values()].reduce((s, t) => s + t.data.length, 0);
}

/** Mean and sample standard deviation (n − 1), computed here from the per-seed values. */
function stats(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) };
}

/** Equal up to float summation order. */
function close(a: number | null, b: number, what: string): void {
  assert.ok(a !== null && Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, "utf8")) as T;
}

async function checkComparison(
  out: string,
  which: string,
  presets: [string, string, string],
  hyponets: [string, string, string],
  steps: number,
  seeds: number[],
): Promise<Row[]> {
  const rows = await readJson<Row[]>(join(out, "compare.json"));
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
    assert.deepEqual(r.seeds, seeds, r.model);
    assert.deepEqual(
      r.runs.map((s) => s.seed),
      seeds,
    );
    for (const s of r.runs) {
      const what = `${r.model}, seed ${s.seed}`;
      const dir = seeds.length === 1 ? join(out, r.preset) : join(out, r.preset, `seed-${s.seed}`);
      assert.equal(s.out, dir, what);
      const evalJson = await readJson<EvalJson>(join(dir, "eval.json"));
      const cfg = await readJson<
        Record<string, unknown> & {
          name: string;
          model: Parameters<typeof countParams>[0];
          train: Record<string, unknown> & { steps: number; seed: number };
        }
      >(join(dir, "config.json"));
      // The table reports each run's own final evaluation, its model's size and its curves.
      assert.equal(s.psnr, evalJson.psnr, what);
      assert.equal(s.ssim, evalJson.ssim, what);
      assert.equal(evalJson.stopped_by, undefined, `${what}: no budget, none recorded`);
      assert.equal(s.steps, steps, what);
      assert.deepEqual(s.curve.at(-1), [steps, s.psnr], `${what}: the curve ends at the final evaluation`);
      // The time curve has the same evaluations, at increasing training time, the last at the
      // run's whole training time.
      assert.deepEqual(
        s.time_curve.map((p) => p[1]),
        s.curve.map((p) => p[1]),
        what,
      );
      for (let k = 1; k < s.time_curve.length; k++)
        assert.ok(s.time_curve[k]![0] > s.time_curve[k - 1]![0], `${what}: time curve increases`);
      assert.equal(s.time_curve.at(-1)![0], s.train_seconds, what);
      assert.equal(
        cfg.name,
        seeds.length === 1 ? `${which}-${r.preset}` : `${which}-${r.preset}-seed-${s.seed}`,
      );
      assert.equal(cfg.model.hyponet.name, hyponets[i]);
      assert.equal(cfg.train.steps, steps);
      assert.equal(cfg.train.seed, s.seed, what);
      assert.equal(r.parameters, countParams(cfg.model), what);
      const { config, weights } = await loadModel(join(dir, "model.safetensors"));
      assert.equal(r.floats_per_instance, await generatedFloats(weights, config, 32), what);
      configs.push({
        ...Object.fromEntries(Object.entries(cfg).filter(([k]) => k !== "name" && k !== "model")),
        train: { ...cfg.train, seed: undefined },
      });
    }
    // Mean and sample standard deviation over the seeds, from the runs' own eval.json.
    const psnrs = r.runs.map((s) => s.psnr);
    const ssims = r.runs.map((s) => s.ssim);
    let line = `| ${r.model} | ${r.psnr.toFixed(2)} | ${r.ssim.toFixed(3)} |`;
    if (seeds.length === 1) {
      assert.equal(r.psnr, psnrs[0]);
      assert.equal(r.ssim, ssims[0]);
      assert.equal(r.psnr_std, null);
      assert.equal(r.ssim_std, null);
    } else {
      const [p, q] = [stats(psnrs), stats(ssims)];
      close(r.psnr, p.mean, `${r.model} PSNR mean`);
      close(r.psnr_std, p.std, `${r.model} PSNR std`);
      close(r.ssim, q.mean, `${r.model} SSIM mean`);
      close(r.ssim_std, q.std, `${r.model} SSIM std`);
      assert.equal(r.psnr_min, Math.min(...psnrs));
      assert.equal(r.psnr_max, Math.max(...psnrs));
      line = `| ${r.model} | ${p.mean.toFixed(2)} ± ${p.std.toFixed(2)} | ${q.mean.toFixed(3)} ± ${q.std.toFixed(3)} |`;
    }
    const mdLine = md.split("\n").find((l) => l.startsWith(`| ${r.model} |`));
    assert.ok(mdLine, `${r.model} row in compare.md`);
    assert.ok(
      mdLine.startsWith(
        `${line} ${r.floats_per_instance.toLocaleString("en")} | ${r.parameters.toLocaleString("en")} | ${steps} |`,
      ),
      `${mdLine}\nexpected to start with\n${line}`,
    );
  }
  // "Same everything else": the runs differ only in their name, model and seed.
  for (const c of configs.slice(1)) assert.deepEqual(c, configs[0]);
  const files = await readdir(out);
  for (const f of ["compare.png", "compare-time.png", "compare-size.png"]) assert.ok(files.includes(f), f);
  return rows;
}

test("compare --preset demo --steps 2 --seeds 2: mean ± sample std over the seeds, each seed's run in its folder", async (t) => {
  await initBackend();
  const out = await tempDir(t, "compare-demo");
  const r = await runCli(["compare", "--preset", "demo", "--steps", "2", "--seeds", "2", "--out", out]);
  assert.equal(r.code, 0, r.err);
  const rows = await checkComparison(
    out,
    "demo",
    ["tiny32-anr", "tiny32-mlp", "tiny32-ipc"],
    ["ANR", "HypoMlp", "HypoMlpIPC"],
    2,
    [0, 1],
  );
  // Two seeds of one model are two trainings (else the std would measure nothing).
  for (const row of rows) assert.notEqual(row.runs[0]!.psnr, row.runs[1]!.psnr, row.model);
  // The size plot: one point per contender at (floats per instance, mean PSNR), its error bar the
  // mean ± the std, as in the table; the floats those the models generate (checked above).
  const spec = sizePlot("demo", rows);
  assert.deepEqual(
    spec.series.map((s) => [s.name, s.points, s.yErrors]),
    rows.map((row) => [
      row.model,
      [[row.floats_per_instance, row.psnr]],
      [[row.psnr - row.psnr_std!, row.psnr + row.psnr_std!]],
    ]),
  );
  const svg = svgLinePlot(spec);
  assert.equal(svg.match(/<g class="error-bars"/g)?.length, 3, "an error bar per contender");
  for (const row of rows) assert.match(svg, new RegExp(`>${row.model.replace(/[()]/g, "\\$&")}</text>`));
});

test("compare --budget-seconds 1 --steps 40: each run stops at the step that reaches 1 s of training, then evaluates", async (t) => {
  await initBackend();
  const out = await tempDir(t, "compare-budget");
  const steps = 40;
  const r = await runCli([
    "compare",
    ...["--preset", "demo", "--steps", String(steps), "--budget-seconds", "1", "--out", out],
    ...["--set", "train.eval_every=0", "--set", "train.log_every=1", "--set", "train.checkpoint_every=0"],
  ]);
  assert.equal(r.code, 0, r.err);
  const rows = await readJson<Row[]>(join(out, "compare.json"));
  assert.equal(rows.length, 3);
  for (const row of rows) {
    const s = row.runs[0]!;
    const dir = join(out, row.preset);
    const evalJson = await readJson<EvalJson>(join(dir, "eval.json"));
    // Stopped early by the budget, with the final evaluation and model of that step. (The first
    // step alone, JIT compilation included, takes seconds here; 40 steps take tens.)
    assert.equal(evalJson.stopped_by, "budget", row.model);
    assert.equal(evalJson.budget_seconds, 1);
    assert.ok(evalJson.steps! >= 1 && evalJson.steps! < steps, `${row.model}: ${evalJson.steps} steps`);
    assert.ok(evalJson.train_seconds! >= 1, row.model);
    assert.equal(evalJson.images, 8, `${row.model}: evaluated on the whole test split`);
    assert.deepEqual(
      [s.steps, s.budget_stopped, s.psnr, s.train_seconds],
      [evalJson.steps, true, evalJson.psnr, evalJson.train_seconds],
    );
    assert.deepEqual(s.curve, [[s.steps, s.psnr]], `${row.model}: evaluated at its last step`);
    const model = await readSafetensors(join(dir, "model.safetensors"));
    assert.equal((JSON.parse(model.metadata["anr.run"]!) as { step: number }).step, s.steps);
    const ckpt = await readSafetensors(join(dir, "checkpoint.safetensors"));
    assert.equal((JSON.parse(ckpt.metadata["anr.checkpoint"]!) as { step: number }).step, s.steps);
    // The config stays the full one: train.steps is the bound, not the steps done.
    assert.equal((await readJson<{ train: { steps: number } }>(join(dir, "config.json"))).train.steps, steps);
    // Every step is logged with its training time: the last is the first to reach the budget.
    const lines = (await readFile(join(dir, "metrics.jsonl"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { step: number; train_seconds: number });
    assert.deepEqual(
      lines.map((l) => l.step),
      Array.from({ length: s.steps }, (_, k) => k + 1),
    );
    assert.equal(lines.at(-1)!.train_seconds, s.train_seconds);
    if (lines.length > 1) assert.ok(lines.at(-2)!.train_seconds < 1, `${row.model}: stopped late`);
    assert.equal(row.budget_seconds, 1);
  }
  const md = await readFile(join(out, "compare.md"), "utf8");
  assert.match(md, /each run stopped at 1 s of training time/);
});

test("compare --jobs 2: each run an anr train child with half the threads, the same numbers as in one process; the same command again reuses the runs; a changed one is refused", async (t) => {
  await initBackend();
  const [single, jobs] = [await tempDir(t, "compare-single"), await tempDir(t, "compare-jobs")];
  const flags = ["--preset", "demo", "--steps", "2", "--set", "train.eval_every=0"];
  const a = await runCli(["compare", ...flags, "--out", single]);
  assert.equal(a.code, 0, a.err);
  const b = await runCli(["compare", ...flags, "--jobs", "2", "--out", jobs]);
  assert.equal(b.code, 0, b.err);
  const rows = await checkComparison(
    jobs,
    "demo",
    ["tiny32-anr", "tiny32-mlp", "tiny32-ipc"],
    ["ANR", "HypoMlp", "HypoMlpIPC"],
    2,
    [0],
  );
  assert.match(b.out, /training 3 run\(s\), 2 at a time, 1 kernel thread\(s\) each/);
  for (const row of rows)
    assert.match(
      b.out,
      new RegExp(
        `^\\[${row.model.replace(/[()]/g, "\\$&")} \\(${row.preset}\\)\\] anr train: .*; 1 threads;`,
        "m",
      ),
      `${row.model}: trained by its own process with one thread`,
    );
  // The kernels' results do not depend on the thread count: the runs train to the same numbers.
  const inProcess = await readJson<Row[]>(join(single, "compare.json"));
  assert.deepEqual(
    rows.map((r) => [r.model, r.psnr, r.ssim, r.runs[0]!.curve]),
    inProcess.map((r) => [r.model, r.psnr, r.ssim, r.runs[0]!.curve]),
  );

  // The same command again trains nothing: the finished runs and the table are as they were.
  const files = (dir: string) =>
    Promise.all(["eval.json", "model.safetensors"].map((f) => readFile(join(dir, f))));
  const before = await Promise.all(rows.map((r) => files(join(jobs, r.preset))));
  const again = await runCli(["compare", ...flags, "--jobs", "2", "--out", jobs]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /reusing 3 finished run\(s\)/);
  assert.doesNotMatch(again.out + again.err, /anr train:/);
  assert.deepEqual(await readJson<Row[]>(join(jobs, "compare.json")), rows);
  assert.deepEqual(await Promise.all(rows.map((r) => files(join(jobs, r.preset)))), before);

  // A run finished with another config or budget is not mixed into the table: refused, naming
  // the run's config.json and the setting, before anything trains or is written.
  const table = await readFile(join(jobs, "compare.json"), "utf8");
  for (const [extra, problem] of [
    [["--steps", "3"], /tiny32-anr[/\\]config\.json: holds a finished run whose train\.steps is 2, not 3/],
    [["--set", "train.lr=0.001"], /config\.json: holds a finished run whose train\.lr is/],
    [["--budget-seconds", "100"], /tiny32-anr: holds a run finished with no time budget, not 100 s/],
  ] as const) {
    const r = await runCli(["compare", ...flags, ...extra, "--jobs", "2", "--out", jobs]);
    assert.equal(r.code, 2, `${extra.join(" ")}: ${r.err}`);
    assert.match(r.err, problem, extra.join(" "));
    assert.doesNotMatch(r.out, /anr train:/);
  }
  assert.equal(await readFile(join(jobs, "compare.json"), "utf8"), table);
  assert.deepEqual(await Promise.all(rows.map((r) => files(join(jobs, r.preset)))), before);
});

test("a budget-stopped run: --resume with a budget is refused; without one it continues to train.steps", async (t) => {
  await initBackend();
  const raw = runPreset("demo") as Record<string, unknown>;
  for (const s of ["train.steps=4", "train.eval_every=0", "train.log_every=1", "train.checkpoint_every=0"])
    applyOverride(raw, s);
  const run = resolveRunConfig(raw);
  const [whole, split] = [await tempDir(t, "budget-whole"), await tempDir(t, "budget-split")];
  const full = await train(run, { out: whole, verbose: false });
  assert.equal(full.budgetStopped, false);
  // A budget no step fits in: the run ends after its first step.
  const first = await train(run, { out: split, verbose: false, budgetSeconds: 1e-9 });
  assert.deepEqual([first.steps, first.budgetStopped, first.interrupted], [1, true, false]);
  const evalBefore = await readFile(join(split, "eval.json"), "utf8");
  assert.equal((JSON.parse(evalBefore) as EvalJson).stopped_by, "budget");
  await assert.rejects(
    train(run, { out: split, verbose: false, resume: true, budgetSeconds: 10 }),
    (e: unknown) => e instanceof UsageError && /time budget cannot be given when resuming/.test(e.message),
  );
  assert.equal(
    await readFile(join(split, "eval.json"), "utf8"),
    evalBefore,
    "the refused resume changed nothing",
  );
  // Resumed without a budget, it is not taken for finished: it trains steps 2–4 and ends as the
  // uninterrupted run does (the evaluation at the budget's step draws no randomness).
  const rest = await train(run, { out: split, verbose: false, resume: true });
  assert.deepEqual([rest.steps, rest.budgetStopped], [4, false]);
  assert.equal(rest.final.psnr, full.final.psnr);
  const evalAfter = await readJson<EvalJson>(join(split, "eval.json"));
  assert.equal(evalAfter.stopped_by, undefined);
  assert.equal(evalAfter.psnr, full.final.psnr);
  // Its training time continues from the budget-stopped run's, and so does its time curve.
  assert.ok(rest.trainSeconds > first.trainSeconds);
  assert.deepEqual(
    rest.timeCurve.map((p) => p[1]),
    rest.curve.map((p) => p[1]),
  );
  assert.deepEqual(first.timeCurve, [[first.trainSeconds, first.curve[0]![1]]]);
  assert.deepEqual(rest.timeCurve[0], first.timeCurve[0]);
  assert.equal(rest.timeCurve.at(-1)![0], rest.trainSeconds);
  // A budget that train.steps comes before: the run ends at train.steps, and says so.
  const ample = await tempDir(t, "budget-ample");
  const r = await train(run, { out: ample, verbose: false, budgetSeconds: 1e6 });
  assert.deepEqual([r.steps, r.budgetStopped], [4, false]);
  const e = await readJson<EvalJson>(join(ample, "eval.json"));
  assert.deepEqual([e.stopped_by, e.steps, e.budget_seconds], ["steps", 4, 1e6]);
});

test("compare --preset twemoji32 / twemoji64: the zoo's recipes with tiny32-* / tiny64-* models, seeds in order", async () => {
  await initBackend();
  for (const [which, size, family] of [
    ["twemoji32", 32, "tiny32"],
    ["twemoji64", 64, "tiny64"],
  ] as const) {
    const runs = comparisonRuns({ preset: which, seeds: 2, set: ["train.seed=5"] }, "/nowhere");
    assert.deepEqual(
      runs.map((r) => [r.label, r.modelPreset, r.seed, r.out, r.run.name]),
      ["ANR", "MLP (TransINR)", "IPC"].flatMap((label, i) =>
        [5, 6].map((seed) => {
          const preset = `${family}-${["anr", "mlp", "ipc"][i]}`;
          return [
            label,
            preset,
            seed,
            join("/nowhere", preset, `seed-${seed}`),
            `${which}-${preset}-seed-${seed}`,
          ];
        }),
      ),
    );
    const recipe = resolveRunConfig(runPreset(`${which}-anr`));
    for (const r of runs) {
      assert.deepEqual(r.run.data, recipe.data, `${which} ${r.label}: the recipe's data`);
      assert.deepEqual([r.run.data.kind, (r.run.data as { size?: number }).size], ["twemoji", size]);
      assert.deepEqual(
        { ...r.run.train, seed: 0 },
        recipe.train,
        `${which} ${r.label}: the recipe's training`,
      );
      assert.equal(r.run.train.seed, r.seed);
    }
  }
  // The 64² MLP and IPC: tiny32's, carried to 64² as tiny64-anr is (its hyper-network, the PE
  // bandwidth doubled); they generate the floats they are said to.
  for (const kind of ["mlp", "ipc"]) {
    const small = parseHyperNetworkConfig(MODEL_PRESETS[`tiny32-${kind}`]!.config, kind);
    const big = parseHyperNetworkConfig(MODEL_PRESETS[`tiny64-${kind}`]!.config, kind);
    const anr64 = parseHyperNetworkConfig(MODEL_PRESETS["tiny64-anr"]!.config, "tiny64-anr");
    assert.deepEqual(
      {
        ...big,
        tokenizer: small.tokenizer,
        hyponet: { ...big.hyponet, args: { ...big.hyponet.args, pe_sigma: 0 } },
      },
      { ...small, hyponet: { ...small.hyponet, args: { ...small.hyponet.args, pe_sigma: 0 } } },
      `tiny64-${kind} is tiny32-${kind} but for the tokenizer and pe_sigma`,
    );
    assert.deepEqual(big.tokenizer, anr64.tokenizer);
    assert.equal(big.hyponet.args.pe_sigma, 2 * small.hyponet.args.pe_sigma);
    assert.equal(big.hyponet.args.pe_sigma, anr64.hyponet.args.pe_sigma);
    const floats = await generatedFloats(initHostParams(big, 0), big, 64);
    assert.equal(floats, representationSize(big), kind);
  }
});

test("compare: --seeds and --budget-seconds must be above 0 (usage errors, nothing written)", async (t) => {
  const out = await tempDir(t, "compare-usage");
  for (const flags of [
    ["--seeds", "0"],
    ["--jobs", "0"],
    ["--budget-seconds", "0"],
    ["--budget-seconds", "-5"],
    ["--budget-seconds", "soon"],
  ]) {
    const r = await runCli(["compare", "--preset", "demo", ...flags, "--out", join(out, "x")]);
    assert.equal(r.code, 2, `${flags.join(" ")}: ${r.err}`);
    assert.match(r.err, new RegExp(flags[0]!), flags.join(" "));
  }
  assert.equal(existsSync(join(out, "x")), false);
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
  const rows = await checkComparison(
    out,
    "fmnist",
    ["small32-anr", "small32-mlp", "small32-ipc"],
    ["ANR", "HypoMlp", "HypoMlpIPC"],
    2,
    [0],
  );
  const evalJson = await readJson<EvalJson>(join(out, rows[0]!.preset, "eval.json"));
  assert.equal(evalJson.images, 16, "--set data.test_count reached the runs");
});

test("compare --models / --vary: chosen contenders, one variant per value with only that setting changed, bad sweeps refused before training", () => {
  const runs = comparisonRuns(
    {
      preset: "twemoji32",
      models: ["ANR"],
      vary: ["hyponet.args.pe_sigma=16,128", "hyponet.args.att_threshold=null"],
    },
    "/nowhere",
  );
  assert.deepEqual(
    runs.map((r) => [r.label, r.modelPreset, r.out]),
    [
      ["ANR", "tiny32-anr", join("/nowhere", "tiny32-anr")],
      ["ANR pe_sigma=16", "tiny32-anr-pe_sigma-16", join("/nowhere", "tiny32-anr-pe_sigma-16")],
      ["ANR pe_sigma=128", "tiny32-anr-pe_sigma-128", join("/nowhere", "tiny32-anr-pe_sigma-128")],
      [
        "ANR att_threshold=null",
        "tiny32-anr-att_threshold-null",
        join("/nowhere", "tiny32-anr-att_threshold-null"),
      ],
    ],
  );
  const base = runs[0]!.run.model;
  const changed = (i: number) => {
    const m = runs[i]!.run.model;
    return Object.entries(m.hyponet.args).filter(
      ([k, v]) => JSON.stringify(v) !== JSON.stringify((base.hyponet.args as Record<string, unknown>)[k]),
    );
  };
  assert.deepEqual(changed(1), [["pe_sigma", 16]]);
  assert.deepEqual(changed(2), [["pe_sigma", 128]]);
  assert.deepEqual(changed(3), [["att_threshold", null]]);
  for (const r of runs)
    assert.deepEqual({ ...r.run.model, hyponet: null }, { ...base, hyponet: null }, r.label);
  // Every contender, and each with its variants.
  assert.equal(comparisonRuns({ preset: "twemoji32", vary: ["hyponet.args.depth=2"] }, "/n").length, 6);
  // A setting one contender does not have is named for it.
  assert.throws(
    () => comparisonRuns({ preset: "twemoji32", vary: ["hyponet.args.token_len=16"] }, "/n"),
    /MLP \(TransINR\) token_len=16: invalid run config:\s+model\.hyponet\.args: Unrecognized key: "token_len"/,
  );
  assert.throws(
    () =>
      comparisonRuns({ preset: "twemoji32", models: ["anr"], vary: ["hyponet.args.token_len=128"] }, "/n"),
    /att_threshold 0\.01 must be < 1\/token_len/,
  );
  assert.throws(
    () => comparisonRuns({ preset: "twemoji32", models: ["transinr"] }, "/n"),
    /--models transinr: expected some of anr, mlp, ipc/,
  );
  assert.throws(
    () => comparisonRuns({ preset: "twemoji32", vary: ["hyponet.args.pe_sigma="] }, "/n"),
    /--vary/,
  );
  assert.throws(
    () => comparisonRuns({ preset: "twemoji32", vary: ["model.hyponet.args.pe_sigma=8"] }, "/n"),
    /drop "model\."/,
  );
});
