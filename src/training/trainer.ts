/**
 * Training and evaluation of a run, whatever its task: the run config is resolved first (a field
 * run's channels from its data), then the task's driver (./drivers) runs in the shared loop
 * (./loop.ts), which writes the run folder.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import type { EvalOutcome } from "../eval/evaluate.js";
import type { Params } from "../model/model.js";
import { InputError } from "../util/errors.js";
import { loadCheckpoint, type LoadedCheckpoint } from "./checkpoint.js";
import { imageDriver, imageEvaluator } from "./drivers/image.js";
import { nerfDriver, nerfEvaluator } from "./drivers/nerf.js";
import { folderMode, runLoop, type TrainOptions, type TrainResult } from "./loop.js";
import {
  resolveFieldChannels,
  resumeRunConfig,
  type ResolvedRunConfig,
  type ValidatedRunConfig,
} from "./run-config.js";
import { claimRunFolder } from "./run-folder.js";

/**
 * Train a run: image reconstruction, field reconstruction or view synthesis, by `run.task`. The
 * run folder is claimed first (locked if it exists; a run there is refused unless `resume` or
 * `overwrite`), then the config is resolved (resuming: the one stored in the checkpoint, where
 * `run` may change only the length and the bookkeeping cadence; a field run's channels from its
 * data), then the data opens, which checks it; only then does the loop change the folder.
 */
export async function train(run: ValidatedRunConfig, opts: TrainOptions): Promise<TrainResult> {
  await initBackend();
  const claim = await claimRunFolder(opts.out, folderMode(opts), `anr train ${run.name}`);
  try {
    const checkpoint =
      claim.mode === "resume" ? await loadCheckpoint(join(opts.out, "checkpoint.safetensors")) : null;
    const resolved = checkpoint
      ? await resumedConfig(run, checkpoint, opts.out)
      : await resolveFieldChannels(run, { verbose: opts.verbose });
    const start = { claim, checkpoint };
    if (resolved.task === "nerf") return await runLoop(resolved, await nerfDriver(resolved), opts, start);
    return await runLoop(resolved, await imageDriver(resolved), opts, start);
  } finally {
    await claim.release();
  }
}

/** The config a resumed run continues with: its checkpoint's (older checkpoints: config.json's). */
async function resumedConfig(
  run: ValidatedRunConfig,
  checkpoint: LoadedCheckpoint,
  out: string,
): Promise<ResolvedRunConfig> {
  const ckptPath = join(out, "checkpoint.safetensors");
  const configPath = join(out, "config.json");
  if (checkpoint.state.run !== undefined && checkpoint.state.run !== null)
    // A refused change names config.json, or the checkpoint when config.json is gone (R7).
    return resumeRunConfig(
      run,
      checkpoint.state.run,
      ckptPath,
      existsSync(configPath) ? configPath : ckptPath,
    );
  const text = await readFile(configPath, "utf8").catch(() => {
    throw new InputError(
      ckptPath,
      `holds no run config, and ${configPath} cannot be read: nothing to resume with`,
    );
  });
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (e) {
    throw new InputError(configPath, `not valid JSON (${(e as Error).message})`);
  }
  return resumeRunConfig(run, stored, configPath, configPath);
}

/**
 * Evaluate (borrowed) parameters on the run's eval split, with a grid: the whole split, or its
 * first `maxImages` items. Opens that split only. The report lists the split's files left out as
 * unreadable (`skipped_files`, with `train.skip_corrupt`).
 */
export async function evaluateRun(
  run: ResolvedRunConfig,
  P: Params,
  options: { maxImages?: number } = {},
): Promise<EvalOutcome> {
  await initBackend();
  const evaluator = run.task === "nerf" ? await nerfEvaluator(run) : await imageEvaluator(run);
  try {
    const r = await evaluator.evaluate(P, true, true, options.maxImages);
    // Files of the split left out as unreadable (train.skip_corrupt), found at open or on reading.
    const skipped = [...(evaluator.skippedItems?.() ?? [])];
    return skipped.length ? { ...r, report: { ...r.report, skipped_files: skipped } } : r;
  } finally {
    evaluator.close?.();
  }
}
