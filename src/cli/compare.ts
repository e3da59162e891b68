/**
 * `anr compare`: the paper's claim, reproduced on our data — ANR, the TransINR-style MLP and IPC
 * trained with the same hyper-network, data, steps (or training time) and seeds; a table (markdown
 * + JSON: mean ± sample standard deviation over the seeds, and each seed's run) and three plots:
 * test PSNR by step, by training time, and against the size of the representation.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../io/files.js";
import type { RunConfigInput, ValidatedRunConfig } from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import type { TrainResult } from "../training/loop.js";
import { readFinishedRun } from "../training/artifacts.js";
import { train } from "../training/trainer.js";
import { writeLinePlot, type LinePlotSpec, type LineSeries } from "../util/plot.js";
import { countParams } from "../model/params.js";
import { representationSize } from "../io/tokens.js";
import { globe32x64, modelPreset } from "../model/presets.js";
import type { HyperNetworkConfigInput } from "../model/config.js";
import type { PhysicalError } from "../eval/evaluate.js";
import { CheckFailed, InputError, UsageError } from "../util/errors.js";
import { dataStatus, done, resolveRun, type Outcome } from "./common.js";

/** The three contenders of the 32×32 comparisons: the demo's hyper-network with each hyponet. */
const TINY32 = { ANR: "tiny32-anr", "MLP (TransINR)": "tiny32-mlp", IPC: "tiny32-ipc" };

/** Per comparison: the run preset, and the model (a preset name or a config) of each contender. */
export const COMPARISONS: Record<
  string,
  { run: string; models: Record<string, string | HyperNetworkConfigInput> }
> = {
  fmnist: {
    run: "fmnist-anr",
    models: { ANR: "small32-anr", "MLP (TransINR)": "small32-mlp", IPC: "small32-ipc" },
  },
  demo: { run: "demo", models: TINY32 },
  winds: {
    run: "winds-demo",
    models: {
      ANR: globe32x64("ANR", 2),
      "MLP (TransINR)": globe32x64("HypoMlp", 2),
      IPC: globe32x64("HypoMlpIPC", 2),
    },
  },
  twemoji32: { run: "twemoji32-anr", models: TINY32 },
  twemoji64: {
    run: "twemoji64-anr",
    models: { ANR: "tiny64-anr", "MLP (TransINR)": "tiny64-mlp", IPC: "tiny64-ipc" },
  },
};

/** The files a comparison writes beside its runs. */
export const COMPARE_FILES = [
  "compare.md",
  "compare.json",
  "compare.png",
  "compare-time.png",
  "compare-size.png",
] as const;

/** `anr compare`'s options. */
export interface CompareOptions {
  preset: string;
  steps?: number;
  set?: string[];
  out?: string;
  overwrite?: boolean;
  /** Runs per contender, with seeds train.seed, train.seed + 1, … (default 1). */
  seeds?: number;
  /** Each run's budget of training time (TrainOptions.budgetSeconds); train.steps bounds it. */
  budgetSeconds?: number;
  /** Contenders to train, by the first word of their label (anr, mlp, ipc); default all. */
  models?: string[];
  /**
   * Settings swept one at a time, `key=v1,v2,…` with the key inside the model config (e.g.
   * `hyponet.args.pe_sigma=16,128`): each value adds a variant of every contender trained,
   * beside the contender as its preset has it.
   */
  vary?: string[];
  /**
   * Runs trained at once (default 1, in this process). Above 1, each run is an `anr train` child
   * process with ANR_THREADS = cores / jobs (or ANR_THREADS / jobs where set), so that every run
   * gets the same share of the machine.
   */
  jobs?: number;
}

/** One run of a comparison: a contender with one seed, and its folder. */
export interface ComparisonRun {
  label: string;
  /** The model preset's name (or `<comparison>-<anr|mlp|ipc>` for a model config). */
  modelPreset: string;
  seed: number;
  /** Its run folder: `<out>/<modelPreset>`, or `<out>/<modelPreset>/seed-<seed>` with several seeds. */
  out: string;
  run: ValidatedRunConfig;
  raw: Record<string, unknown>;
}

/**
 * Every run of a comparison, contender by contender and seed by seed, resolved (so that a bad
 * `--set` fails before anything trains). The seeds count up from the run's train.seed (after the
 * `--set`s).
 */
export function comparisonRuns(values: CompareOptions, out: string): ComparisonRun[] {
  const which = values.preset;
  const comparison = COMPARISONS[which];
  if (!comparison) throw new UsageError(`--preset must be one of ${Object.keys(COMPARISONS).join(", ")}`);
  const seeds = values.seeds ?? 1;
  if (!(Number.isSafeInteger(seeds) && seeds >= 1))
    throw new UsageError(`--seeds ${seeds}: expected a whole number above 0`);
  if (
    values.budgetSeconds !== undefined &&
    !(Number.isFinite(values.budgetSeconds) && values.budgetSeconds > 0)
  )
    throw new UsageError(`--budget-seconds ${values.budgetSeconds}: expected a number of seconds above 0`);
  const short = (label: string) => label.split(" ")[0]!.toLowerCase();
  const known = Object.keys(comparison.models).map(short);
  for (const m of values.models ?? [])
    if (!known.includes(m.toLowerCase()))
      throw new UsageError(`--models ${m}: expected some of ${known.join(", ")}`);
  const chosen = Object.entries(comparison.models).filter(
    ([label]) => !values.models || values.models.some((m) => m.toLowerCase() === short(label)),
  );
  const variants = (values.vary ?? []).flatMap(parseVary);
  const contenders = chosen.flatMap(([label, model]) => {
    const base = typeof model === "string" ? model : `${which}-${short(label)}`;
    const expanded = () =>
      JSON.parse(JSON.stringify(typeof model === "string" ? modelPreset(model) : model)) as Record<
        string,
        unknown
      >;
    return [
      { label, model, modelPreset: base },
      ...variants.map((v) => {
        const config = expanded();
        applyOverride(config, `${v.key}=${v.value}`);
        const field = v.key.split(".").at(-1)!;
        return {
          label: `${label} ${field}=${v.value}`,
          model: config,
          modelPreset: `${base}-${field}-${v.value}`,
        };
      }),
    ];
  });
  return contenders.flatMap(({ label, model, modelPreset }) => {
    const configured = (seed: number | null) => {
      const raw = runPreset(comparison.run) as Record<string, unknown>;
      applyOverride(raw, `model=${JSON.stringify(typeof model === "string" ? { preset: model } : model)}`);
      applyOverride(raw, `name=${JSON.stringify(`${which}-${modelPreset}`)}`);
      if (values.steps !== undefined) applyOverride(raw, `train.steps=${values.steps}`);
      for (const s of values.set ?? []) applyOverride(raw, s);
      if (seed !== null) {
        applyOverride(raw, `train.seed=${seed}`);
        applyOverride(raw, `name=${JSON.stringify(`${which}-${modelPreset}-seed-${seed}`)}`);
      }
      return { raw, run: resolveRun(raw, `compare ${label}`) };
    };
    const first = configured(null);
    if (seeds === 1)
      return [{ label, modelPreset, seed: first.run.train.seed, out: join(out, modelPreset), ...first }];
    return Array.from({ length: seeds }, (_, k) => {
      const seed = first.run.train.seed + k;
      return { label, modelPreset, seed, out: join(out, modelPreset, `seed-${seed}`), ...configured(seed) };
    });
  });
}

/** `key=v1,v2,…` (a --vary) → one setting per value; the values are JSON where they parse, else text. */
function parseVary(spec: string): { key: string; value: string }[] {
  const eq = spec.indexOf("=");
  const values = spec
    .slice(eq + 1)
    .split(",")
    .filter((v) => v !== "");
  if (eq <= 0 || !values.length)
    throw new UsageError(`--vary ${spec}: expected key.path=value1,value2 (a key inside the model config)`);
  const key = spec.slice(0, eq);
  if (key.startsWith("model."))
    throw new UsageError(`--vary ${spec}: the key is inside the model config already (drop "model.")`);
  return values.map((value) => ({ key, value }));
}

/** Mean and sample standard deviation (n − 1; null for one value) of `xs`. */
export function meanStd(xs: number[]): { mean: number; std: number | null } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  if (xs.length < 2) return { mean, std: null };
  return { mean, std: Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) };
}

/** `12.34` for one seed, `12.34 ± 0.56` for several. */
function pm(s: { mean: number; std: number | null }, digits: number): string {
  return s.std === null ? s.mean.toFixed(digits) : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

/** One seed's run as compare.json lists it. */
interface SeedRow {
  seed: number;
  out: string;
  /** Steps done: train.steps, or fewer where the time budget ended the run. */
  steps: number;
  budget_stopped: boolean;
  psnr: number;
  ssim: number;
  physical: PhysicalError[];
  /** Training time of the steps alone (no evaluations), and the whole run's wall time. */
  train_seconds: number;
  seconds: number;
  /** Test PSNR by step, and by training time (`[train seconds, PSNR]`). */
  curve: [number, number][];
  time_curve: [number, number][];
}

function seedRow(r: ComparisonRun, result: TrainResult): SeedRow {
  return {
    seed: r.seed,
    out: r.out,
    steps: result.steps,
    budget_stopped: result.budgetStopped,
    psnr: result.final.psnr,
    ssim: result.final.ssim,
    physical: result.final.physical ?? [],
    train_seconds: result.trainSeconds,
    seconds: result.seconds,
    curve: result.curve,
    time_curve: result.timeCurve,
  };
}

/**
 * The plot of final test PSNR against the representation's size (floats per instance), one point
 * per contender, its error bar the mean ± the sample standard deviation over the seeds (none for
 * one seed): the ANR paper's Figure 5 on our data.
 */
export function sizePlot(
  which: string,
  rows: { model: string; floats_per_instance: number; psnr: number; psnr_std: number | null }[],
): LinePlotSpec {
  return {
    title: `final test PSNR vs representation size (${which})`,
    xLabel: "floats per instance",
    yLabel: rows.some((r) => r.psnr_std !== null) ? "PSNR (dB), mean ± std over seeds" : "PSNR (dB)",
    series: rows.map((r) => ({
      name: r.model,
      points: [[r.floats_per_instance, r.psnr]],
      ...(r.psnr_std !== null ? { yErrors: [[r.psnr - r.psnr_std, r.psnr + r.psnr_std]] } : {}),
    })),
  };
}

/**
 * The result of the run already finished in `r.out`, when it was trained with `r`'s config and
 * the same time budget; null when the folder holds no finished run. A finished run that differs
 * is refused (naming the first setting that differs) rather than mixed into the table.
 */
async function finishedRunLike(r: ComparisonRun, budget: number | null): Promise<TrainResult | null> {
  if (!existsSync(r.out)) return null;
  const finished = await readFinishedRun(r.out);
  if (!finished) return null;
  const replace = "--overwrite to train it again, or another --out";
  if (finished.budgetSeconds !== budget)
    throw new InputError(
      r.out,
      `holds a run finished with ${finished.budgetSeconds === null ? "no time budget" : `a time budget of ${finished.budgetSeconds} s`}, not ${budget === null ? "none" : `${budget} s`} as asked: ${replace}`,
    );
  const wanted = JSON.parse(JSON.stringify(r.run)) as unknown;
  const differs = firstDifference(wanted, finished.config, "");
  if (differs !== null)
    throw new InputError(
      join(r.out, "config.json"),
      `holds a finished run whose ${differs.path || "config"} is ${JSON.stringify(differs.there)}, not ${JSON.stringify(differs.wanted)} as this comparison asks: ${replace}`,
    );
  return finished.result;
}

/**
 * The first place where `there` (a stored run config) differs from `wanted`; null where they agree.
 * A field run's `model.channels` left null in `wanted` is filled from the data by training, so
 * any value there agrees with it.
 */
function firstDifference(
  wanted: unknown,
  there: unknown,
  path: string,
): { path: string; wanted: unknown; there: unknown } | null {
  if (wanted === null && path === "model.channels") return null;
  if (typeof wanted !== "object" || wanted === null || typeof there !== "object" || there === null)
    return Object.is(wanted, there) ? null : { path, wanted, there };
  if (Array.isArray(wanted) !== Array.isArray(there)) return { path, wanted, there };
  const keys = new Set([...Object.keys(wanted), ...Object.keys(there)]);
  for (const k of keys) {
    const d = firstDifference(
      (wanted as Record<string, unknown>)[k],
      (there as Record<string, unknown>)[k],
      path ? `${path}.${k}` : k,
    );
    if (d) return d;
  }
  return null;
}

/**
 * Trains `runs`, `jobs` at a time, each as an `anr train` child process of this executable with
 * its share of the kernel threads; the children's output is passed through, each line prefixed
 * with its run. Runs that fail do not stop the others; they are named together at the end.
 */
async function trainInChildren(
  runs: ComparisonRun[],
  values: CompareOptions,
  jobs: number,
  name: (r: ComparisonRun) => string,
): Promise<void> {
  if (!runs.length) return;
  const threads = Math.max(1, Math.floor((Number(process.env.ANR_THREADS) || availableParallelism()) / jobs));
  // The executable beside this module: run.ts under tsx, run.js once built.
  const here = fileURLToPath(import.meta.url);
  const entry = join(here, "..", `run${extname(here)}`);
  const dir = await mkdtemp(join(tmpdir(), "anr-compare-"));
  const failed: string[] = [];
  console.log(
    `training ${runs.length} run(s), ${Math.min(jobs, runs.length)} at a time, ${threads} kernel thread(s) each`,
  );
  try {
    let next = 0;
    const worker = async () => {
      while (next < runs.length) {
        const k = next++;
        const r = runs[k]!;
        const config = join(dir, `run-${k}.json`);
        await writeFile(config, JSON.stringify(r.run, null, 2) + "\n");
        const args = [
          ...process.execArgv,
          entry,
          "train",
          config,
          ...["--out", r.out],
          ...(values.budgetSeconds !== undefined ? ["--budget-seconds", String(values.budgetSeconds)] : []),
          ...(values.overwrite ? ["--overwrite"] : []),
        ];
        console.log(`\n== ${name(r)}: ${r.out}`);
        const code = await runPrefixed(
          args,
          { ...process.env, ANR_THREADS: String(threads) },
          `[${name(r)}] `,
        );
        if (code !== 0) failed.push(`${name(r)} in ${r.out} (anr train exited with ${code})`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, runs.length) }, worker));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (failed.length)
    throw new CheckFailed(
      `${failed.length} of ${runs.length} run(s) failed: ${failed.join("; ")} (their output is above; runs that finished are reused by the same command)`,
    );
}

/** Runs Node with `args`, passing its output on line by line with `prefix`; its exit code. */
function runPrefixed(args: string[], env: NodeJS.ProcessEnv, prefix: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    for (const [from, print] of [
      [child.stdout, (s: string) => console.log(s)],
      [child.stderr, (s: string) => console.error(s)],
    ] as const) {
      let pending = "";
      from.setEncoding("utf8");
      // Progress bars end their updates with \r: each becomes a line of its own.
      from.on("data", (chunk: string) => {
        const lines = (pending + chunk).split(/\r?\n|\r/);
        pending = lines.pop()!;
        for (const line of lines) if (line.trim()) print(prefix + line);
      });
      from.on("end", () => {
        if (pending.trim()) print(prefix + pending);
      });
    }
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * ANR, the TransINR-style MLP and IPC trained with the same data, steps, seeds and hyper-network
 * into `--out` (default runs/compare-<preset>), then a table and plots. Every run config is
 * resolved, and the data looked for, before anything is trained or written. The runs go seed by
 * seed, the three contenders in turn, so that a change in the machine's load over the study
 * falls on all of them alike. Runs already finished in `--out` with the same config and budget
 * are reused, so a long study continues where it stopped; `--jobs` trains several at once.
 */
export async function cmdCompare(values: CompareOptions): Promise<Outcome> {
  const which = values.preset;
  const out = values.out ?? join("runs", `compare-${which}`);
  const runs = comparisonRuns(values, out);
  const jobs = values.jobs ?? 1;
  if (!(Number.isSafeInteger(jobs) && jobs >= 1))
    throw new UsageError(`--jobs ${jobs}: expected a whole number above 0`);
  const data = dataStatus(runs[0]!.raw as RunConfigInput);
  if (!data.ready) throw new InputError(`compare --preset ${which}`, `needs data: ${data.needs}`);
  const seedList = [...new Set(runs.map((r) => r.seed))];
  const labels = [...new Set(runs.map((r) => r.label))];
  const ordered = seedList.flatMap((seed) => runs.filter((r) => r.seed === seed));
  const name = (r: ComparisonRun) =>
    `${r.label} (${r.modelPreset})${seedList.length > 1 ? `, seed ${r.seed}` : ""}`;
  await mkdir(out, { recursive: true });

  // A run that already finished in its folder with this config and budget is taken as it is, so
  // that a study of many hours can be stopped and continued, or its runs trained elsewhere.
  const results = new Map<ComparisonRun, TrainResult>();
  for (const r of ordered) {
    const reused = values.overwrite ? null : await finishedRunLike(r, values.budgetSeconds ?? null);
    if (reused) results.set(r, reused);
  }
  const toTrain = ordered.filter((r) => !results.has(r));
  if (results.size)
    console.log(
      `reusing ${results.size} finished run(s) in ${out}: ${ordered
        .filter((r) => results.has(r))
        .map(name)
        .join("; ")}`,
    );
  if (jobs === 1)
    for (const r of toTrain) {
      console.log(`\n== ${name(r)}`);
      const result = await train(r.run, {
        out: r.out,
        overwrite: values.overwrite === true,
        ...(values.budgetSeconds !== undefined ? { budgetSeconds: values.budgetSeconds } : {}),
      });
      results.set(r, result);
    }
  else {
    await trainInChildren(toTrain, values, jobs, name);
    for (const r of toTrain) {
      const finished = await readFinishedRun(r.out);
      if (!finished) throw new CheckFailed(`${r.out}: the training of ${name(r)} left no eval.json`);
      results.set(r, finished.result);
    }
  }

  const rows = labels.map((label) => {
    const mine = runs.filter((r) => r.label === label);
    const seedRows = mine.map((r) => seedRow(r, results.get(r)!));
    const psnr = meanStd(seedRows.map((s) => s.psnr));
    const ssim = meanStd(seedRows.map((s) => s.ssim));
    const physical = seedRows[0]!.physical.map((p, i) => {
      const rmse = meanStd(seedRows.map((s) => s.physical[i]!.rmse));
      return { name: p.name, units: p.units, rmse: rmse.mean, rmse_std: rmse.std };
    });
    const model = mine[0]!.run.model;
    return {
      model: label,
      preset: mine[0]!.modelPreset,
      seeds: seedRows.map((s) => s.seed),
      psnr: psnr.mean,
      psnr_std: psnr.std,
      psnr_min: Math.min(...seedRows.map((s) => s.psnr)),
      psnr_max: Math.max(...seedRows.map((s) => s.psnr)),
      ssim: ssim.mean,
      ssim_std: ssim.std,
      physical,
      steps: meanStd(seedRows.map((s) => s.steps)).mean,
      train_seconds: meanStd(seedRows.map((s) => s.train_seconds)).mean,
      budget_seconds: values.budgetSeconds ?? null,
      parameters: countParams(model),
      floats_per_instance: representationSize(model),
      runs: seedRows,
    };
  });

  const steps = runs[0]!.run.train.steps;
  const budget = values.budgetSeconds;
  const range = (xs: number[]) =>
    Math.min(...xs) === Math.max(...xs)
      ? xs[0]!.toLocaleString("en")
      : `${Math.min(...xs).toLocaleString("en")}–${Math.max(...xs).toLocaleString("en")}`;
  const physCols = rows[0]!.physical.map((p) => `RMSE ${p.name}${p.units ? ` (${p.units})` : ""}`);
  const header = `| model | test PSNR (dB) | SSIM | ${physCols.map((c) => `${c} | `).join("")}floats per instance | parameters | steps | train time (s) |\n|---|---|---|${physCols.map(() => "---|").join("")}---|---|---|---|`;
  const lines = rows.map(
    (r) =>
      `| ${r.model} | ${pm({ mean: r.psnr, std: r.psnr_std }, 2)} | ${pm({ mean: r.ssim, std: r.ssim_std }, 3)} | ${r.physical.map((p) => `${pm({ mean: p.rmse, std: p.rmse_std }, 3)} | `).join("")}${r.floats_per_instance.toLocaleString("en")} | ${r.parameters.toLocaleString("en")} | ${range(r.runs.map((s) => s.steps))} | ${r.train_seconds.toFixed(0)} |`,
  );
  const command = [
    `anr compare --preset ${which}`,
    ...(values.steps !== undefined ? [`--steps ${values.steps}`] : []),
    ...(values.seeds !== undefined && values.seeds !== 1 ? [`--seeds ${values.seeds}`] : []),
    ...(budget !== undefined ? [`--budget-seconds ${budget}`] : []),
    ...(values.jobs !== undefined && values.jobs > 1 ? [`--jobs ${values.jobs}`] : []),
    ...(values.models ? [`--models ${values.models.join(",")}`] : []),
    ...(values.vary ?? []).map((v) => `--vary ${v}`),
    ...(values.set ?? []).map((s) => `--set ${s}`),
  ].join(" ");
  const seedsText =
    seedList.length === 1
      ? `seed ${seedList[0]}`
      : `seeds ${seedList[0]}–${seedList.at(-1)} (mean ± sample standard deviation over the ${seedList.length} runs of each)`;
  const budgetText =
    budget === undefined
      ? ""
      : `; each run stopped at ${budget} s of training time (the steps alone, without evaluations), at most ${steps} steps`;
  const md = `Same data, ${steps} steps${budgetText}, ${seedsText}, optimiser and hyper-network for all ${rows.length === 3 ? "three" : rows.length} (\`${command}\`). Train time: the steps alone, without evaluations.\n\n${header}\n${lines.join("\n")}\n`;
  await writeFileAtomic(join(out, "compare.md"), md);
  await writeFileAtomic(join(out, "compare.json"), JSON.stringify(rows, null, 2) + "\n");

  // Each contender's seeds share a colour and one legend entry.
  const seedSeries = (curve: (s: SeedRow) => [number, number][]): LineSeries[] =>
    rows.flatMap((r, i) =>
      r.runs.map((s, k) => ({
        name: r.runs.length > 1 ? `${r.model} (${r.runs.length} seeds)` : r.model,
        points: curve(s),
        colour: i,
        ...(k > 0 ? { legend: false } : {}),
      })),
    );
  await writeLinePlot(join(out, "compare.png"), {
    title: `test PSNR vs step (${which})`,
    xLabel: "step",
    yLabel: "PSNR (dB)",
    series: seedSeries((s) => s.curve),
  });
  await writeLinePlot(join(out, "compare-time.png"), {
    title: `test PSNR vs training time (${which})`,
    xLabel: "training time (s; the steps alone, without evaluations)",
    yLabel: "PSNR (dB)",
    series: seedSeries((s) => s.time_curve),
  });
  await writeLinePlot(join(out, "compare-size.png"), sizePlot(which, rows));
  const files = COMPARE_FILES.map((f) => join(out, f));
  console.log(`\n${md}\nwrote ${out}/${COMPARE_FILES.join(", ")}`);
  return done({
    out,
    preset: which,
    steps,
    seeds: seedList,
    budget_seconds: budget ?? null,
    rows,
    files,
  });
}
