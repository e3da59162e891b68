/**
 * `anr compare`: the paper's claim, reproduced on our data — ANR, the TransINR-style MLP and IPC
 * trained with the same hyper-network, data, steps (or training time) and seeds; a table (markdown
 * + JSON: mean ± sample standard deviation over the seeds, and each seed's run) and three plots:
 * test PSNR by step, by training time, and against the size of the representation.
 */
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { writeFileAtomic } from "../io/files.js";
import type { RunConfigInput, ValidatedRunConfig } from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import type { TrainResult } from "../training/loop.js";
import { train } from "../training/trainer.js";
import { writeLinePlot, type LinePlotSpec, type LineSeries } from "../util/plot.js";
import { countParams } from "../model/params.js";
import { representationSize } from "../io/tokens.js";
import { globe32x64 } from "../model/presets.js";
import type { HyperNetworkConfigInput } from "../model/config.js";
import type { PhysicalError } from "../eval/evaluate.js";
import { InputError, UsageError } from "../util/errors.js";
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
  return Object.entries(comparison.models).flatMap(([label, model]) => {
    const modelPreset = typeof model === "string" ? model : `${which}-${label.split(" ")[0]!.toLowerCase()}`;
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
 * ANR, the TransINR-style MLP and IPC trained with the same data, steps, seeds and hyper-network
 * into `--out` (default runs/compare-<preset>), then a table and plots. Every run config is
 * resolved, and the data looked for, before anything is trained or written. The runs go seed by
 * seed, the three contenders in turn, so that a change in the machine's load over the study
 * falls on all of them alike.
 */
export async function cmdCompare(values: CompareOptions): Promise<Outcome> {
  const which = values.preset;
  const out = values.out ?? join("runs", `compare-${which}`);
  const runs = comparisonRuns(values, out);
  const data = dataStatus(runs[0]!.raw as RunConfigInput);
  if (!data.ready) throw new InputError(`compare --preset ${which}`, `needs data: ${data.needs}`);
  const seedList = [...new Set(runs.map((r) => r.seed))];
  const labels = [...new Set(runs.map((r) => r.label))];
  await mkdir(out, { recursive: true });
  const results = new Map<ComparisonRun, TrainResult>();
  for (const seed of seedList)
    for (const r of runs.filter((x) => x.seed === seed)) {
      console.log(`\n== ${r.label} (${r.modelPreset})${seedList.length > 1 ? `, seed ${seed}` : ""}`);
      const result = await train(r.run, {
        out: r.out,
        overwrite: values.overwrite === true,
        ...(values.budgetSeconds !== undefined ? { budgetSeconds: values.budgetSeconds } : {}),
      });
      results.set(r, result);
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
  const md = `Same data, ${steps} steps${budgetText}, ${seedsText}, optimiser and hyper-network for all three (\`${command}\`). Train time: the steps alone, without evaluations.\n\n${header}\n${lines.join("\n")}\n`;
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
