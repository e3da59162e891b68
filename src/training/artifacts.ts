/**
 * What a run that reached its end leaves behind: the final evaluation of the online weights
 * (eval.json, samples/final.png), the models, the rebuilt logs, and the result `train()` returns.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describePhysical, type EvalReport, type PhysicalError } from "../eval/evaluate.js";
import { saveGrid } from "../eval/grids.js";
import { preparationOf } from "../data/preparation.js";
import { saveModel } from "../io/files.js";
import type { Params } from "../model/model.js";
import { toHost } from "../model/params.js";
import { writeFileAtomic } from "../util/fs.js";
import { InputError } from "../util/errors.js";
import type { RunEvaluator, TrainOptions } from "./loop.js";
import { loggedSoFar, metricsUpTo } from "./metrics-log.js";
import { writeRunLogs } from "./report.js";
import type { ResolvedRunConfig } from "./run-config.js";
import type { TrainState } from "./step.js";

/** What a finished run reports. */
export interface TrainResult {
  out: string;
  steps: number;
  /**
   * True when the run stopped before its last step (at `stopAfter`, or aborted by `signal`); not
   * when its time budget ended it (see `budgetStopped`).
   */
  interrupted: boolean;
  /** The final evaluation of the online weights (as eval.json), with physical errors for fields. */
  final: EvalReport;
  /** Test PSNR by step (the curve in psnr.png). */
  curve: [number, number][];
  seconds: number;
  /**
   * Training time in seconds, the steps alone (see {@link TrainOptions.budgetSeconds}): this
   * process's, plus that logged before a resume where the metrics carry `train_seconds`.
   */
  trainSeconds: number;
  /**
   * Test PSNR by training time (`[trainSeconds, PSNR]`) at the evaluations of `curve` whose
   * training time is known: all of them unless the run was resumed from metrics that do not carry
   * `train_seconds` (unbudgeted runs logged before 3 Dec 2026), and then none.
   */
  timeCurve: [number, number][];
  /** True when `budgetSeconds` ended the run before `train.steps`. */
  budgetStopped: boolean;
}

/** The final evaluation of the online weights, the models, eval.json and the plot. */
export async function finishRun(
  run: ResolvedRunConfig,
  driver: RunEvaluator,
  opts: Pick<TrainOptions, "out" | "verbose">,
  end: {
    state: TrainState;
    ema: Params | null;
    curve: [number, number][];
    skippedFiles: readonly string[];
    /** When training started (performance.now()). */
    t0: number;
    disposeState: () => void;
    timeCurve: [number, number][];
    trainSeconds: number;
    /** The time budget, and whether it ended the run; null without one. */
    budget: { seconds: number; stopped: boolean } | null;
  },
): Promise<TrainResult> {
  const log = opts.verbose === false ? () => undefined : (s: string) => console.log(s);
  const cfg = run.model;
  const { state, ema, curve, skippedFiles, t0 } = end;
  try {
    const final = await driver.evaluate(state.params, true, true);
    if (final.grid) await saveGrid(join(opts.out, "samples", "final.png"), final.grid, driver.gridScale);
    await writeFileAtomic(
      join(opts.out, "eval.json"),
      JSON.stringify(
        {
          weights: "online",
          steps: state.step,
          ...(end.budget
            ? {
                budget_seconds: end.budget.seconds,
                train_seconds: end.trainSeconds,
                stopped_by: end.budget.stopped ? "budget" : "steps",
              }
            : {}),
          ...final.report,
          ...(skippedFiles.length ? { skipped_files: skippedFiles } : {}),
        },
        null,
        2,
      ) + "\n",
    );
    await saveModel(join(opts.out, "model.safetensors"), cfg, await toHost(state.params), {
      "anr.run": JSON.stringify({ step: state.step, name: run.name }),
      ...preparationOf(run),
    });
    if (ema)
      await saveModel(join(opts.out, "model-ema.safetensors"), cfg, await toHost(ema), {
        "anr.run": JSON.stringify({ step: state.step, name: run.name, weights: "ema" }),
        ...preparationOf(run),
      });
    await writeRunLogs(opts.out, Date.now() / 1000 - (performance.now() - t0) / 1000);
    const seconds = (performance.now() - t0) / 1000;
    log(
      `done: ${state.step} steps in ${seconds.toFixed(0)} s; ${driver.evalName} PSNR ${final.psnr.toFixed(2)} dB, SSIM ${final.ssim.toFixed(3)} over ${final.images} ${cfg.channels ? "fields" : "images"}`,
    );
    const physical = (final.report.physical as PhysicalError[] | undefined) ?? [];
    for (const p of physical) log(`  ${describePhysical(p)}`);
    return {
      out: opts.out,
      steps: state.step,
      interrupted: false,
      final: {
        images: final.images,
        psnr: final.psnr,
        ssim: final.ssim,
        loss: NaN,
        perImage: (final.report.perImage ?? []) as EvalReport["perImage"],
        ...(physical.length ? { physical } : {}),
      },
      curve,
      seconds,
      trainSeconds: end.trainSeconds,
      timeCurve: end.timeCurve,
      budgetStopped: end.budget?.stopped ?? false,
    };
  } finally {
    end.disposeState();
  }
}

/** A run folder's finished run, as {@link readFinishedRun} reads it back. */
export interface FinishedRun {
  /** config.json as stored. */
  config: Record<string, unknown>;
  /** The time budget it ran under (eval.json's `budget_seconds`), or null. */
  budgetSeconds: number | null;
  result: TrainResult;
}

/**
 * The result of the run that finished in `out`, from its own files (eval.json, config.json,
 * metrics.jsonl), or null when it holds no eval.json. Lets a study reuse runs done earlier, or by
 * other processes, instead of training them again. An eval.json written before it recorded its
 * steps is an error naming the file.
 */
export async function readFinishedRun(out: string): Promise<FinishedRun | null> {
  const evalPath = join(out, "eval.json");
  const text = await readFile(evalPath, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return null;
    throw e;
  });
  if (text === null) return null;
  const parseJson = (path: string, t: string): Record<string, unknown> => {
    try {
      const v: unknown = JSON.parse(t);
      if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch (e) {
      throw new InputError(path, `not valid JSON (${(e as Error).message})`);
    }
    throw new InputError(path, "expected a JSON object");
  };
  const ev = parseJson(evalPath, text);
  const num = (key: string, optional = false): number | null => {
    const v = ev[key];
    if (typeof v === "number" && Number.isFinite(v)) return v;
    if (optional && v === undefined) return null;
    throw new InputError(
      evalPath,
      `${key}: expected a finite number${key === "steps" ? " (eval.json from before runs recorded their steps: train the run again)" : ""}, found ${JSON.stringify(v)}`,
    );
  };
  const steps = num("steps")!;
  const configPath = join(out, "config.json");
  const config = parseJson(
    configPath,
    await readFile(configPath, "utf8").catch(() => {
      throw new InputError(configPath, "missing beside eval.json: the run folder is incomplete");
    }),
  );
  const logged = loggedSoFar(await metricsUpTo(join(out, "metrics.jsonl"), steps, () => undefined));
  const physical = (ev.physical as PhysicalError[] | undefined) ?? [];
  return {
    config,
    budgetSeconds: num("budget_seconds", true),
    result: {
      out,
      steps,
      interrupted: false,
      final: {
        images: num("images")!,
        psnr: num("psnr")!,
        ssim: num("ssim")!,
        loss: NaN,
        perImage: (ev.perImage ?? []) as EvalReport["perImage"],
        ...(physical.length ? { physical } : {}),
      },
      curve: logged.curve,
      // The whole run's wall time is not kept; the training time logged last stands for it.
      seconds: logged.seconds,
      trainSeconds: num("train_seconds", true) ?? logged.trainSeconds ?? logged.seconds,
      timeCurve: logged.timeCurve,
      budgetStopped: ev.stopped_by === "budget",
    },
  };
}
