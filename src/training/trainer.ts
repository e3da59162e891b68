/**
 * Training and evaluation of a run, whatever its task: the run config is resolved first (a field
 * run's channels from its data), then the task's driver (./drivers) runs in the shared loop
 * (./loop.ts), which writes the run folder.
 */
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import type { EvalOutcome } from "../eval/evaluate.js";
import type { Params } from "../model/model.js";
import { imageDriver, imageEvaluator } from "./drivers/image.js";
import { nerfDriver, nerfEvaluator } from "./drivers/nerf.js";
import { runLoop, type TrainOptions, type TrainResult } from "./loop.js";
import { resolveFieldChannels, type ResolvedRunConfig, type ValidatedRunConfig } from "./run-config.js";

/**
 * Train a run: image reconstruction, field reconstruction or view synthesis, by `run.task`. A
 * field run whose model lists no channels gets them from its data first (resuming: from the run's
 * config.json), so that the config the run saves is the resolved one.
 */
export async function train(run: ValidatedRunConfig, opts: TrainOptions): Promise<TrainResult> {
  await initBackend();
  const resolved = await resolveFieldChannels(run, {
    verbose: opts.verbose,
    resumeFrom: opts.resume ? join(opts.out, "config.json") : undefined,
  });
  if (resolved.task === "nerf") return runLoop(resolved, await nerfDriver(resolved), opts);
  return runLoop(resolved, await imageDriver(resolved), opts);
}

/**
 * Evaluate (borrowed) parameters on the run's eval split, with a grid: the whole split, or its
 * first `maxImages` items. Opens that split only.
 */
export async function evaluateRun(
  run: ResolvedRunConfig,
  P: Params,
  options: { maxImages?: number } = {},
): Promise<EvalOutcome> {
  await initBackend();
  const evaluator = run.task === "nerf" ? await nerfEvaluator(run) : await imageEvaluator(run);
  try {
    return await evaluator.evaluate(P, true, true, options.maxImages);
  } finally {
    evaluator.close?.();
  }
}
