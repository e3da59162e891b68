/**
 * The training loop, shared by every task: a resolved run config and a task's driver
 * (./drivers) in, a run folder out (nerfstudio-style: the resolved config beside the outputs),
 * metrics as plain records. Resumable: `resume: true` continues from the folder's checkpoint with the
 * same data order, optimiser state, step count and RNG, so the metrics continue exactly.
 *
 * Run folder:
 *   config.json            the resolved run config (preset expanded, defaults filled)
 *   metrics.jsonl          one JSON object per logged step / evaluation (wall time, lr, speed)
 *   checkpoint.safetensors params + Adam moments + EMA + training state (latest)
 *   model.safetensors      final online weights (config in the metadata)
 *   model-ema.safetensors  final EMA weights (when EMA is on)
 *   samples/step-N.png     eval inputs (top) and reconstructions (bottom)
 *   psnr.png               loss and PSNR vs step
 *   eval.json              final evaluation report (with a time budget: the steps done, the
 *                          training time and what ended the run)
 *   report.html            curves, evaluation, samples and config in one offline page
 *   events.out.tfevents.anr  the same scalars for TensorBoard (`tensorboard --logdir runs/`)
 *   (the last two are rebuilt from the files above at each checkpoint and at the end)
 */
import { skippedFilesWarning } from "../data/datasets.js";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import type { HostImage } from "../data/image.js";
import type { EvalOutcome } from "../eval/evaluate.js";
import { saveGrid } from "../eval/grids.js";
import type { Params } from "../model/model.js";
import { initHostParams, toDevice, toHost, countParams, disposeParams, refParams } from "../model/params.js";
import { InputError, UsageError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { Progress } from "../util/progress.js";
import { finishRun, type TrainResult } from "./artifacts.js";
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint } from "./checkpoint.js";
import { diverged, stopped, TrainingInterrupted } from "./guards.js";
import {
  appendRecord,
  loggedSoFar,
  metricsUpTo,
  physicalMetrics,
  type EvalRecord,
  type MetricsRecord,
  type StepRecord,
} from "./metrics-log.js";
import { adamInit, emaUpdate, type EmaArgs } from "./optim.js";
import { writeRunLogs } from "./report.js";
import type { ResolvedRunConfig } from "./run-config.js";
import { claimRunFolder, type FolderMode, type RunFolderClaim } from "./run-folder.js";
import type { StepMetrics, TrainState } from "./step.js";

export type { EvalRecord, StepRecord } from "./metrics-log.js";
export type { TrainResult } from "./artifacts.js";

/** Options of a training run. */
export interface TrainOptions {
  /** Run folder. */
  out: string;
  /** Continue from `out/checkpoint.safetensors` (an error if there is none). */
  resume?: boolean;
  /**
   * Replace the run in `out`. The old run is set aside and deleted only once the new one has
   * written its first checkpoint; without this (or `resume`), a run folder is never reused.
   */
  overwrite?: boolean;
  /** Print progress (default true). */
  verbose?: boolean;
  /** Stop (with a checkpoint) once this step is reached, as an interruption would; resume later. */
  stopAfter?: number;
  /**
   * A budget of training time in seconds: the run ends at the step whose training time (the steps
   * alone: batches, optimiser step and EMA; not evaluations, samples, checkpoints or callbacks)
   * reaches it, then evaluates and writes its models as a run that reached `train.steps` does
   * (which is then an upper bound). Its metrics lines carry `train_seconds`, and eval.json
   * `steps`, `budget_seconds`, `train_seconds` and `stopped_by` ("budget", or "steps" when
   * `train.steps` came first). The run's checkpoint is that of its last step, so `resume` (without
   * a budget) continues it to `train.steps`; a budget cannot be given with `resume`, as the training
   * time before the checkpoint is known only to the last logged step.
   */
  budgetSeconds?: number;
  /** The command that continues this run, printed when a signal interrupts it. */
  resumeCommand?: string;
  /**
   * Called after every step with its metrics, and awaited (a slow callback slows training; one
   * that throws stops the run, as any error does).
   */
  onStep?: (metrics: StepRecord) => void | Promise<void>;
  /**
   * Called after every evaluation (step 0, every `eval_every` steps, the last step) with the
   * line it adds to metrics.jsonl, and awaited.
   */
  onEval?: (record: EvalRecord) => void | Promise<void>;
  /**
   * Aborting it stops the run as SIGINT does: the step in progress finishes, a checkpoint is
   * written, and `train()` returns with `interrupted: true`; `resume: true` continues the run.
   */
  signal?: AbortSignal;
}

/** How a run uses its folder, from its options. */
export function folderMode(opts: TrainOptions): FolderMode {
  if (opts.resume && opts.overwrite) throw new UsageError("--resume and --overwrite exclude each other");
  return opts.resume ? "resume" : opts.overwrite ? "overwrite" : "new";
}

/** A run's evaluation split and how to evaluate on it: what `anr eval` needs of a task. */
export interface RunEvaluator {
  /** Name of the evaluation split (with its protocol), for logs and the plot. */
  evalName: string;
  /**
   * Evaluate (borrowed) parameters; `final` uses the whole split (images and fields) unless
   * `maxImages` limits it; `grid` asks for a picture.
   */
  evaluate(P: Params, final: boolean, grid: boolean, maxImages?: number): Promise<EvalOutcome>;
  /** Integer upscaling of sample grids. */
  gridScale: number;
  /** Release open files. */
  close?(): void;
  /** Identifiers of the unreadable items passed over so far (`train.skip_corrupt`). */
  skippedItems?(): readonly string[];
}

/** What differs between tasks: data, batches, the step and evaluation. The loop is shared. */
export interface TaskDriver<B> extends RunEvaluator {
  /** Data summary for the start-up line. */
  describe: string;
  /** Instances per micro-batch. */
  batchSize: number;
  step: ((state: TrainState, batches: B[]) => Promise<[TrainState, StepMetrics]>) & { dispose(): void };
  /** Micro-batch `g` of step `step` (0-based). */
  batch(step: number, g: number): Promise<B>;
  /** Data position and RNG, for exact resumption. */
  state(): unknown;
  restore(s: unknown): void;
}

function emaArgs(run: ResolvedRunConfig): EmaArgs | null {
  const e = run.train.ema;
  return e
    ? {
        beta: e.beta,
        updateEvery: e.update_every,
        updateAfterStep: e.update_after_step,
        invGamma: 1,
        power: 2 / 3,
      }
    : null;
}

/** A claimed run folder and, when resuming, its checkpoint (see trainer.ts). */
export interface LoopStart {
  claim: RunFolderClaim;
  checkpoint: LoadedCheckpoint | null;
}

/**
 * Train `run` with a task's driver: the shared loop (steps, EMA, periodic evaluation, metrics,
 * checkpoints, resumption), then the final evaluation and the run's artifacts. `start`: the run
 * folder already claimed (and the checkpoint read) by the caller; without it, the loop claims the
 * folder itself, and releases it at the end.
 */
export async function runLoop<B>(
  run: ResolvedRunConfig,
  driver: TaskDriver<B>,
  opts: TrainOptions,
  start?: LoopStart,
): Promise<TrainResult> {
  const claim = start?.claim ?? (await claimRunFolder(opts.out, folderMode(opts), `anr train ${run.name}`));
  try {
    const checkpoint =
      start?.checkpoint ??
      (claim.mode === "resume" ? await loadCheckpoint(join(opts.out, "checkpoint.safetensors")) : null);
    return await loop(run, driver, opts, claim, checkpoint);
  } finally {
    driver.step.dispose();
    driver.close?.();
    if (!start) await claim.release();
  }
}

/** What the loop carries from step to step: a checkpoint saves it, and a resume restores it. */
interface LoopState {
  state: TrainState;
  ema: Params | null;
  emaCalls: number;
  /** Training losses summed since the last metrics line. */
  window: { loss: number; psnr: number; n: number };
  skippedSteps: number;
  /** Skipped steps in a row: `train.max_bad_steps` of them end the run as diverged. */
  badStreak: number;
}

async function loop<B>(
  run: ResolvedRunConfig,
  driver: TaskDriver<B>,
  opts: TrainOptions,
  claim: RunFolderClaim,
  ck: LoadedCheckpoint | null,
): Promise<TrainResult> {
  const log = opts.verbose === false ? () => undefined : (s: string) => console.log(s);
  const warn = (s: string) => console.error(`anr: warning: ${s}`);
  const backend = await initBackend();
  const cfg = run.model;
  const t = run.train;
  const ckptPath = join(opts.out, "checkpoint.safetensors");
  const metricsPath = join(opts.out, "metrics.jsonl");
  const budget = opts.budgetSeconds;
  checkStart(run, opts, ck, ckptPath);
  await claim.prepare();

  const { s, records } = ck
    ? await resumeFrom(run, driver, ck, opts.out, log, warn)
    : await startFresh(run, opts.out);
  log(
    `anr train: ${cfg.hyponet.name}, ${countParams(cfg).toLocaleString("en")} parameters; ${driver.describe}; ${backend.threads} threads; run folder ${opts.out}`,
  );
  const skippedItems = () => driver.skippedItems?.() ?? [];
  if (skippedItems().length) warn(skippedFilesWarning(skippedItems()));

  const eArgs = emaArgs(run);
  const before = loggedSoFar(records);
  const { curve, timeCurve } = before;
  // A run resumed from metrics without `train_seconds` (written before every run logged it) has no
  // known training time before this process: its time curve gets no points rather than ones
  // shifted to the resume.
  const timeKnown = !ck || before.trainSeconds !== null;
  const logTrainSeconds = budget !== undefined || timeKnown;
  // Training time of the steps alone (what a budget counts), in this process.
  let trainSeconds = 0;
  const trainTotal = () => (before.trainSeconds ?? 0) + trainSeconds;
  let budgetStopped = false;
  // Time in driver.step alone (no data loading, evaluation or checkpoints), per logged window.
  let stepTime = { s: 0, n: 0 };
  const saveSample = async (grid: HostImage | null, name: string) => {
    if (grid) await saveGrid(join(opts.out, "samples", name), grid, driver.gridScale);
  };
  /** Wall time (seconds since the epoch) at which this process began training: dates the logs. */
  const startedAt = Date.now() / 1000;
  let lastCheckpoint = ck ? s.state.step : null;
  const writeCheckpoint = async () => {
    await saveCheckpoint(
      ckptPath,
      cfg,
      {
        params: await toHost(s.state.params),
        m: await toHost(s.state.m),
        v: await toHost(s.state.v),
        ema: s.ema ? await toHost(s.ema) : null,
      },
      {
        step: s.state.step,
        emaCalls: s.emaCalls,
        loader: driver.state(),
        rng: [],
        run,
        window: s.window,
        skippedSteps: s.skippedSteps,
        badStreak: s.badStreak,
      },
    );
    lastCheckpoint = s.state.step;
    await claim.committed();
    await writeRunLogs(opts.out, startedAt);
  };
  const disposeState = () => {
    for (const P of [s.state.params, s.state.m, s.state.v, s.ema]) if (P) disposeParams(P);
  };

  // SIGINT / SIGTERM: finish the step, write a checkpoint, say how to resume; a second one quits.
  let signal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal !== null) process.exit(130);
    signal = sig;
    console.error(`\nanr: ${sig}: stopping after this step with a checkpoint (${sig} again to quit at once)`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const progress =
    opts.verbose === false
      ? null
      : new Progress({
          total: t.steps,
          label: "train",
          rate: { unit: "images", per: driver.batchSize * t.grad_accumulation },
        });
  const t0 = performance.now();
  try {
    if (s.state.step === 0 && !ck && t.eval_every > 0) {
      const r = await driver.evaluate(s.state.params, false, true);
      curve.push([0, r.psnr]);
      timeCurve.push([0, r.psnr]);
      const record: EvalRecord = { step: 0, test_psnr: r.psnr, test_ssim: r.ssim };
      if (logTrainSeconds) record.train_seconds = 0;
      await appendRecord(metricsPath, record);
      await opts.onEval?.(record);
      await saveSample(r.grid, "step-000000.png");
      log(`step 0: test PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}`);
    }
    const startStep = s.state.step;
    while (s.state.step < t.steps) {
      if (opts.signal?.aborted) {
        progress?.done();
        await writeCheckpoint();
        disposeState();
        log(
          `aborted at step ${s.state.step} of ${t.steps}: checkpoint written to ${ckptPath}; resume to continue`,
        );
        return stopped(opts.out, s.state.step, curve, t0, { trainSeconds: trainTotal(), timeCurve });
      }
      if (signal !== null) {
        progress?.done();
        await writeCheckpoint();
        const how = opts.resumeCommand ?? "the same command with --resume";
        throw new TrainingInterrupted(
          `${signal} at step ${s.state.step} of ${t.steps}: checkpoint written to ${ckptPath}; continue with:\n  ${how}`,
        );
      }

      const stepsStart = performance.now();
      const { m, stepSeconds } = await trainStep(driver, s, t.grad_accumulation, eArgs);
      stepTime = { s: stepTime.s + stepSeconds, n: stepTime.n + 1 };
      if (m.skipped) {
        progress?.done();
        warn(
          `step ${s.state.step}: loss ${m.loss}, gradient norm ${m.gradNorm}: not finite, update skipped (${s.badStreak} in a row)`,
        );
        if (s.badStreak >= t.max_bad_steps) throw diverged(m, s.state.step, t, lastCheckpoint, ckptPath);
      }
      trainSeconds += (performance.now() - stepsStart) / 1000;

      // The step that reaches the budget is the last: logged, evaluated and checkpointed as such.
      const budgetHit = budget !== undefined && trainTotal() >= budget && s.state.step < t.steps;
      const last = s.state.step === t.steps || budgetHit;
      const elapsed = (performance.now() - t0) / 1000;
      const perS = ((s.state.step - startStep) * driver.batchSize * t.grad_accumulation) / elapsed;
      progress?.update(s.state.step, { loss: m.loss, psnr: m.psnr });
      await opts.onStep?.({ ...m, step: s.state.step, steps: t.steps, imagesPerS: perS, seconds: elapsed });

      const record: Record<string, number> = { step: s.state.step };
      if (s.state.step % t.log_every === 0 || last) {
        const clock = { seconds: before.seconds + elapsed, lr: t.lr, imagesPerS: perS };
        Object.assign(record, trainingFields(s, m, stepTime, clock, skippedItems().length));
        s.window = { loss: 0, psnr: 0, n: 0 };
        stepTime = { s: 0, n: 0 };
      }
      if ((t.eval_every > 0 && s.state.step % t.eval_every === 0) || last) {
        const grid = t.sample_every > 0 && s.state.step % t.sample_every === 0;
        const r = await driver.evaluate(s.state.params, false, grid);
        Object.assign(record, { test_psnr: r.psnr, test_ssim: r.ssim, ...physicalMetrics(r.report) });
        curve.push([s.state.step, r.psnr]);
        if (timeKnown) timeCurve.push([trainTotal(), r.psnr]);
        await saveSample(r.grid, `step-${String(s.state.step).padStart(6, "0")}.png`);
      }
      if (logTrainSeconds && Object.keys(record).length > 1) record.train_seconds = trainTotal();
      if (Object.keys(record).length > 1) await appendRecord(metricsPath, record);
      if (record.test_psnr !== undefined) await opts.onEval?.(record as EvalRecord);

      const stop = opts.stopAfter !== undefined && s.state.step >= opts.stopAfter && !last;
      if ((t.checkpoint_every > 0 && s.state.step % t.checkpoint_every === 0) || last || stop)
        await writeCheckpoint();
      if (stop) {
        progress?.done();
        disposeState();
        log(`stopped at step ${s.state.step}; continue with --resume`);
        return stopped(opts.out, s.state.step, curve, t0, { trainSeconds: trainTotal(), timeCurve });
      }
      if (budgetHit) {
        budgetStopped = true;
        progress?.done();
        log(
          `time budget of ${budget} s reached at step ${s.state.step} of ${t.steps} (${trainTotal().toFixed(1)} s of training)`,
        );
        break;
      }
    }
    progress?.done();
  } catch (e) {
    progress?.done();
    disposeState();
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return finishRun(run, driver, opts, {
    state: s.state,
    ema: s.ema,
    curve,
    skippedFiles: skippedItems(),
    t0,
    disposeState,
    timeCurve,
    trainSeconds: trainTotal(),
    budget: budget === undefined ? null : { seconds: budget, stopped: budgetStopped },
  });
}

/** Refuse a start that cannot go on: a checkpoint past `train.steps`, or a bad or resumed time budget. */
function checkStart(
  run: ResolvedRunConfig,
  opts: TrainOptions,
  ck: LoadedCheckpoint | null,
  ckptPath: string,
): void {
  const t = run.train;
  if (ck && ck.state.step > t.steps)
    throw new InputError(
      ckptPath,
      `the run is at step ${ck.state.step}, past train.steps ${t.steps}; resume with at least ${ck.state.step} steps`,
    );
  const budget = opts.budgetSeconds;
  if (budget !== undefined && !(Number.isFinite(budget) && budget > 0))
    throw new UsageError(`a time budget must be a number of seconds above 0, not ${budget}`);
  if (budget !== undefined && ck)
    throw new UsageError(
      `${opts.out}: a time budget cannot be given when resuming a run (its training time before the checkpoint is known only to its last logged step); resume without one to continue it to train.steps (${t.steps}), or start it again`,
    );
}

/** A new run: its config written, its metrics empty, its parameters initialised from the seed. */
async function startFresh(
  run: ResolvedRunConfig,
  out: string,
): Promise<{ s: LoopState; records: MetricsRecord[] }> {
  await writeFileAtomic(join(out, "config.json"), JSON.stringify(run, null, 2) + "\n");
  await writeFileAtomic(join(out, "metrics.jsonl"), "");
  const params = toDevice(initHostParams(run.model, run.train.seed));
  const { m, v } = adamInit(params);
  const state = { params, m, v, step: 0 };
  return {
    s: { state, ema: null, emaCalls: 0, window: { loss: 0, psnr: 0, n: 0 }, skippedSteps: 0, badStreak: 0 },
    records: [],
  };
}

/**
 * A resumed run: the data position and the training state of the checkpoint, and the metrics
 * records up to it (those after it are redone, so the file is rewritten without them).
 */
async function resumeFrom<B>(
  run: ResolvedRunConfig,
  driver: TaskDriver<B>,
  ck: LoadedCheckpoint,
  out: string,
  log: (s: string) => void,
  warn: (s: string) => void,
): Promise<{ s: LoopState; records: MetricsRecord[] }> {
  const ckptPath = join(out, "checkpoint.safetensors");
  const configPath = join(out, "config.json");
  const metricsPath = join(out, "metrics.jsonl");
  try {
    driver.restore(ck.state.loader);
  } catch (e) {
    throw new InputError(
      ckptPath,
      `its data position does not fit the data (${(e as Error).message}); has the data changed since the run started?`,
    );
  }
  const records = await metricsUpTo(metricsPath, ck.state.step, warn);
  await writeFileAtomic(metricsPath, records.map((r) => r.line + "\n").join(""));
  const s: LoopState = {
    state: {
      params: toDevice(ck.tensors.params),
      m: toDevice(ck.tensors.m),
      v: toDevice(ck.tensors.v),
      step: ck.state.step,
    },
    ema: ck.tensors.ema ? toDevice(ck.tensors.ema) : null,
    emaCalls: ck.state.emaCalls,
    window: ck.state.window ?? { loss: 0, psnr: 0, n: 0 },
    skippedSteps: ck.state.skippedSteps ?? 0,
    badStreak: ck.state.badStreak ?? 0,
  };
  const resolvedJson = JSON.stringify(run, null, 2) + "\n";
  const saved = await readFile(configPath, "utf8").catch(() => null);
  if (saved !== resolvedJson) {
    await writeFileAtomic(configPath, resolvedJson);
    log(
      `${configPath} ${saved === null ? "was missing" : "differed"}: rewritten from the checkpoint's config`,
    );
  }
  log(`resuming ${out} at step ${s.state.step}`);
  const previous = (await readFile(join(out, "eval.json"), "utf8")
    .then((text) => JSON.parse(text) as unknown)
    .catch(() => null)) as { stopped_by?: unknown; steps?: unknown; budget_seconds?: unknown } | null;
  if (previous?.stopped_by === "budget" && previous.steps === s.state.step)
    log(
      `its time budget (${String(previous.budget_seconds)} s) ended this run at step ${s.state.step}: continuing it to train.steps ${run.train.steps} without a budget`,
    );
  return { s, records };
}

/**
 * One optimiser step over `accumulation` micro-batches. A step whose loss or gradient was not
 * finite had its update skipped: it counts towards divergence, and neither the EMA nor the log
 * window sees it. `stepSeconds`: the time in `driver.step` alone.
 */
async function trainStep<B>(
  driver: TaskDriver<B>,
  s: LoopState,
  accumulation: number,
  eArgs: EmaArgs | null,
): Promise<{ m: StepMetrics; stepSeconds: number }> {
  const micro: B[] = [];
  for (let g = 0; g < accumulation; g++) micro.push(await driver.batch(s.state.step, g));
  const stepStart = performance.now();
  const [next, m] = await driver.step(s.state, micro);
  const stepSeconds = (performance.now() - stepStart) / 1000;
  s.state = next;
  if (m.skipped) {
    s.skippedSteps++;
    s.badStreak++;
  } else {
    s.badStreak = 0;
    if (eArgs) {
      s.ema = emaUpdate(s.ema ?? refParams(s.state.params), s.state.params, eArgs, s.emaCalls);
      s.emaCalls++;
    }
    s.window = { loss: s.window.loss + m.loss, psnr: s.window.psnr + m.psnr, n: s.window.n + 1 };
  }
  return { m, stepSeconds };
}

/** The training fields of a logged metrics line: means over the window since the last line, and clocks. */
function trainingFields(
  s: LoopState,
  m: StepMetrics,
  stepTime: { s: number; n: number },
  clock: { seconds: number; lr: number; imagesPerS: number },
  skippedFiles: number,
): Record<string, number> {
  const fields: Record<string, number> = {};
  if (s.window.n > 0)
    Object.assign(fields, {
      loss: s.window.loss / s.window.n,
      train_psnr: s.window.psnr / s.window.n,
      grad_norm: m.gradNorm,
    });
  Object.assign(fields, {
    seconds: clock.seconds,
    time: Date.now() / 1000,
    lr: clock.lr,
    images_per_s: clock.imagesPerS,
    step_s: stepTime.s / Math.max(1, stepTime.n),
  });
  if (s.skippedSteps > 0) fields.skipped_steps = s.skippedSteps;
  if (skippedFiles > 0) fields.skipped_files = skippedFiles;
  return fields;
}
