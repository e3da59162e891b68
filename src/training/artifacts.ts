/**
 * What a run that reached its end leaves behind: the final evaluation of the online weights
 * (eval.json, samples/final.png), the models, the rebuilt logs, and the result `train()` returns.
 */
import { join } from "node:path";
import { describePhysical, type EvalReport, type PhysicalError } from "../eval/evaluate.js";
import { saveGrid } from "../eval/grids.js";
import { preparationOf } from "../data/preparation.js";
import { saveModel } from "../io/files.js";
import type { Params } from "../model/model.js";
import { toHost } from "../model/params.js";
import { writeFileAtomic } from "../util/fs.js";
import type { RunEvaluator, TrainOptions } from "./loop.js";
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
   * `train_seconds` (those of a run without a budget), and then none.
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
          ...(end.budget
            ? {
                steps: state.step,
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
