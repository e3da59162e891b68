/**
 * How a run ends before its last step: stopped on request (`stopAfter`, an aborted signal: a
 * result without a final evaluation), interrupted by a signal, or diverged (errors with their
 * own exit codes, saying what is intact and how to go on).
 */
import { AnrError, CheckFailed } from "../util/errors.js";
import type { TrainResult } from "./artifacts.js";
import type { ResolvedRunConfig } from "./run-config.js";
import type { StepMetrics } from "./step.js";

/**
 * SIGINT or SIGTERM stopped the run after it wrote a checkpoint; exit 130, as a shell reports a
 * command stopped by Ctrl-C.
 */
export class TrainingInterrupted extends AnrError {
  readonly exitCode = 130;
  constructor(message: string) {
    super(message);
    this.name = "TrainingInterrupted";
  }
}

/**
 * `train.max_bad_steps` steps in a row had a non-finite loss or gradient norm. Exit 1 (a check
 * failed), not 2: each input was valid on its own, and the run ran; its finiteness check failed.
 */
export class TrainingDiverged extends CheckFailed {
  constructor(message: string) {
    super(message);
    this.name = "TrainingDiverged";
  }
}

/** What a run stopped before its last step (`stopAfter`, or aborted) reports: no final evaluation. */
export function stopped(
  out: string,
  steps: number,
  curve: [number, number][],
  t0: number,
  time: { trainSeconds: number; timeCurve: [number, number][] },
): TrainResult {
  return {
    out,
    steps,
    interrupted: true,
    final: { images: 0, psnr: NaN, ssim: NaN, loss: NaN, perImage: [] },
    curve,
    seconds: (performance.now() - t0) / 1000,
    ...time,
    budgetStopped: false,
  };
}

/** The error that stops a diverged run: where it stopped, what is intact, what to try. */
export function diverged(
  m: StepMetrics,
  step: number,
  t: ResolvedRunConfig["train"],
  lastCheckpoint: number | null,
  ckptPath: string,
): TrainingDiverged {
  const kept =
    lastCheckpoint === null
      ? "no checkpoint of this run was written before it diverged"
      : `the last good checkpoint, ${ckptPath} (step ${lastCheckpoint}), is intact`;
  const clip = t.clip_norm === null ? ", or with gradient clipping (train.clip_norm: 1)" : "";
  return new TrainingDiverged(
    `training diverged: ${t.max_bad_steps} steps in a row up to step ${step} had a non-finite loss or gradient norm (last: loss ${m.loss}, gradient norm ${m.gradNorm}), and their updates were skipped (train.max_bad_steps ${t.max_bad_steps}); ${kept}. Start again (--overwrite) with a lower train.lr (now ${t.lr})${clip}.`,
  );
}
