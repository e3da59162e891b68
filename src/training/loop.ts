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
import { readFile, appendFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import type { HostImage } from "../data/image.js";
import { saveGrid } from "../eval/grids.js";
import { preparationOf } from "../data/preparation.js";
import { describePhysical, type EvalOutcome, type EvalReport, type PhysicalError } from "../eval/evaluate.js";
import { saveModel } from "../io/files.js";
import type { Params } from "../model/model.js";
import { initHostParams, toDevice, toHost, countParams, disposeParams, refParams } from "../model/params.js";
import { AnrError, CheckFailed, InputError, UsageError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { Progress } from "../util/progress.js";
import { writeRunLogs } from "./report.js";
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint } from "./checkpoint.js";
import { adamInit, emaUpdate, type EmaArgs } from "./optim.js";
import type { ResolvedRunConfig } from "./run-config.js";
import { claimRunFolder, type FolderMode, type RunFolderClaim } from "./run-folder.js";
import type { StepMetrics, TrainState } from "./step.js";

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

/** What {@link TrainOptions.onStep} receives after each step. */
export interface StepRecord extends StepMetrics {
  /** The step just done (1-based: the number of steps done). */
  step: number;
  /** The run's last step (`train.steps`). */
  steps: number;
  /** Training items per second since this process started training. */
  imagesPerS: number;
  /** Seconds since this process started training. */
  seconds: number;
}

/**
 * What {@link TrainOptions.onEval} receives: a metrics.jsonl record holding an evaluation (test
 * PSNR and SSIM on the run's evaluation split; for fields also `test_rmse_<channel>` in physical
 * units), with the training metrics logged at that step.
 */
export interface EvalRecord {
  step: number;
  test_psnr: number;
  test_ssim: number;
  [metric: string]: number;
}

/** How a run uses its folder, from its options. */
export function folderMode(opts: TrainOptions): FolderMode {
  if (opts.resume && opts.overwrite) throw new UsageError("--resume and --overwrite exclude each other");
  return opts.resume ? "resume" : opts.overwrite ? "overwrite" : "new";
}

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

/** A metrics record: the step, and what was measured at it. */
type MetricsRecord = { step: number; test_psnr?: number; line: string };

/**
 * The records of a run's metrics.jsonl up to step `upTo` (those after the checkpoint are redone
 * by the resumed run). A torn last line (the process was killed while appending it) is dropped
 * with a warning; any other line that is not a record is an error naming the file and line.
 */
async function metricsUpTo(path: string, upTo: number, warn: (s: string) => void): Promise<MetricsRecord[]> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "";
    throw e;
  });
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === "") last--;
  const records: MetricsRecord[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    let r: unknown;
    let problem: string | null = null;
    try {
      r = JSON.parse(line);
      if (typeof r !== "object" || r === null || !Number.isInteger((r as { step?: unknown }).step))
        problem = "not a metrics record (an object with an integer step)";
    } catch (e) {
      problem = `not JSON (${(e as Error).message})`;
    }
    if (problem !== null && i === last) {
      warn(`${path}:${i + 1}: torn last line dropped (the run was stopped while writing it)`);
      continue;
    }
    if (problem !== null) throw new InputError(`${path}:${i + 1}`, problem);
    const { step, test_psnr } = r as { step: number; test_psnr?: number };
    if (step <= upTo) records.push({ step, test_psnr, line });
  }
  return records;
}

/** `test_rmse_<channel>` (physical units) of a field evaluation report, for metrics.jsonl. */
function physicalMetrics(report: Record<string, unknown>): Record<string, number> {
  const phys = report.physical as PhysicalError[] | undefined;
  return Object.fromEntries((phys ?? []).map((p) => [`test_rmse_${p.name}`, p.rmse]));
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
  const configPath = join(opts.out, "config.json");
  const ckptPath = join(opts.out, "checkpoint.safetensors");
  const metricsPath = join(opts.out, "metrics.jsonl");
  const resolvedJson = JSON.stringify(run, null, 2) + "\n";
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
  await claim.prepare();

  let state: TrainState;
  let ema: Params | null = null;
  let emaCalls = 0;
  let window = { loss: 0, psnr: 0, n: 0 };
  // Time in driver.step alone (no data loading, evaluation or checkpoints), per logged window.
  let stepTime = { s: 0, n: 0 };
  let skippedSteps = 0;
  let badStreak = 0;
  let records: MetricsRecord[];
  // `seconds` counts training time across resumes, so that curves against time continue.
  let secondsBefore = 0;
  // Training time of the steps alone (what a budget counts): logged as `train_seconds` by
  // budgeted runs only, so before a resume it is known only where the metrics carry it.
  let trainSecondsBefore: number | null = null;
  if (ck) {
    try {
      driver.restore(ck.state.loader);
    } catch (e) {
      throw new InputError(
        ckptPath,
        `its data position does not fit the data (${(e as Error).message}); has the data changed since the run started?`,
      );
    }
    // Metrics logged after the checkpoint are redone: drop them, rewriting the file whole.
    records = await metricsUpTo(metricsPath, ck.state.step, warn);
    secondsBefore = records.reduce((s, r) => (JSON.parse(r.line) as { seconds?: number }).seconds ?? s, 0);
    trainSecondsBefore = records.reduce<number | null>(
      (s, r) => (JSON.parse(r.line) as { train_seconds?: number }).train_seconds ?? s,
      null,
    );
    await writeFileAtomic(metricsPath, records.map((r) => r.line + "\n").join(""));
    state = {
      params: toDevice(ck.tensors.params),
      m: toDevice(ck.tensors.m),
      v: toDevice(ck.tensors.v),
      step: ck.state.step,
    };
    ema = ck.tensors.ema ? toDevice(ck.tensors.ema) : null;
    emaCalls = ck.state.emaCalls;
    window = ck.state.window ?? window;
    skippedSteps = ck.state.skippedSteps ?? 0;
    badStreak = ck.state.badStreak ?? 0;
    const saved = await readFile(configPath, "utf8").catch(() => null);
    if (saved !== resolvedJson) {
      await writeFileAtomic(configPath, resolvedJson);
      log(
        `${configPath} ${saved === null ? "was missing" : "differed"}: rewritten from the checkpoint's config`,
      );
    }
    log(`resuming ${opts.out} at step ${state.step}`);
    const previous = (await readFile(join(opts.out, "eval.json"), "utf8")
      .then((text) => JSON.parse(text) as unknown)
      .catch(() => null)) as { stopped_by?: unknown; steps?: unknown; budget_seconds?: unknown } | null;
    if (previous?.stopped_by === "budget" && previous.steps === state.step)
      log(
        `its time budget (${String(previous.budget_seconds)} s) ended this run at step ${state.step}: continuing it to train.steps ${t.steps} without a budget`,
      );
  } else {
    await writeFileAtomic(configPath, resolvedJson);
    await writeFileAtomic(metricsPath, "");
    records = [];
    const params = toDevice(initHostParams(cfg, t.seed));
    const { m, v } = adamInit(params);
    state = { params, m, v, step: 0 };
  }
  log(
    `anr train: ${cfg.hyponet.name}, ${countParams(cfg).toLocaleString("en")} parameters; ${driver.describe}; ${backend.threads} threads; run folder ${opts.out}`,
  );
  const skippedItems = () => driver.skippedItems?.() ?? [];
  if (skippedItems().length)
    warn(`skip_corrupt: ${skippedItems().length} unreadable file(s) left out: ${skippedItems().join(", ")}`);

  const eArgs = emaArgs(run);
  const curve: [number, number][] = records
    .filter((r) => r.test_psnr !== undefined)
    .map((r) => [r.step, r.test_psnr!]);
  const timeCurve: [number, number][] = records.flatMap((r) => {
    const s = (JSON.parse(r.line) as { train_seconds?: number }).train_seconds;
    return r.test_psnr !== undefined && s !== undefined ? [[s, r.test_psnr] as [number, number]] : [];
  });
  const logTrainSeconds = budget !== undefined || trainSecondsBefore !== null;
  // A run resumed from metrics without `train_seconds` has no known training time before this
  // process: its time curve gets no points rather than ones shifted to the resume.
  const timeKnown = !ck || trainSecondsBefore !== null;
  let trainSeconds = 0;
  const trainTotal = () => (trainSecondsBefore ?? 0) + trainSeconds;
  let budgetStopped = false;
  const saveSample = async (grid: HostImage | null, name: string) => {
    if (grid) await saveGrid(join(opts.out, "samples", name), grid, driver.gridScale);
  };
  /** Wall time (seconds since the epoch) at which this process began training: dates the logs. */
  const startedAt = Date.now() / 1000;
  let lastCheckpoint = ck ? state.step : null;
  const writeCheckpoint = async () => {
    await saveCheckpoint(
      ckptPath,
      cfg,
      {
        params: await toHost(state.params),
        m: await toHost(state.m),
        v: await toHost(state.v),
        ema: ema ? await toHost(ema) : null,
      },
      { step: state.step, emaCalls, loader: driver.state(), rng: [], run, window, skippedSteps, badStreak },
    );
    lastCheckpoint = state.step;
    await claim.committed();
    await writeRunLogs(opts.out, startedAt);
  };
  const disposeState = () => {
    for (const P of [state.params, state.m, state.v, ema]) if (P) disposeParams(P);
  };

  // SIGINT / SIGTERM: finish the step, write a checkpoint, say how to resume; a second one quits.
  let signal: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals) => {
    if (signal !== null) process.exit(130);
    signal = s;
    console.error(`\nanr: ${s}: stopping after this step with a checkpoint (${s} again to quit at once)`);
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
    if (state.step === 0 && !ck && t.eval_every > 0) {
      const r = await driver.evaluate(state.params, false, true);
      curve.push([0, r.psnr]);
      timeCurve.push([0, r.psnr]);
      const record: EvalRecord = { step: 0, test_psnr: r.psnr, test_ssim: r.ssim };
      if (logTrainSeconds) record.train_seconds = 0;
      await appendFile(metricsPath, JSON.stringify(record) + "\n");
      await opts.onEval?.(record);
      await saveSample(r.grid, "step-000000.png");
      log(`step 0: test PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}`);
    }
    const startStep = state.step;
    while (state.step < t.steps) {
      if (opts.signal?.aborted) {
        progress?.done();
        await writeCheckpoint();
        disposeState();
        log(
          `aborted at step ${state.step} of ${t.steps}: checkpoint written to ${ckptPath}; resume to continue`,
        );
        return stopped(opts.out, state.step, curve, t0, { trainSeconds: trainTotal(), timeCurve });
      }
      if (signal !== null) {
        progress?.done();
        await writeCheckpoint();
        const how = opts.resumeCommand ?? "the same command with --resume";
        throw new TrainingInterrupted(
          `${signal} at step ${state.step} of ${t.steps}: checkpoint written to ${ckptPath}; continue with:\n  ${how}`,
        );
      }
      const stepsStart = performance.now();
      const micro: B[] = [];
      for (let g = 0; g < t.grad_accumulation; g++) micro.push(await driver.batch(state.step, g));
      const stepStart = performance.now();
      const [next, m] = await driver.step(state, micro);
      stepTime = { s: stepTime.s + (performance.now() - stepStart) / 1000, n: stepTime.n + 1 };
      state = next;
      if (m.skipped) {
        skippedSteps++;
        badStreak++;
        progress?.done();
        warn(
          `step ${state.step}: loss ${m.loss}, gradient norm ${m.gradNorm}: not finite, update skipped (${badStreak} in a row)`,
        );
        if (badStreak >= t.max_bad_steps) throw diverged(m, state.step, t, lastCheckpoint, ckptPath);
      } else {
        badStreak = 0;
        if (eArgs) {
          ema = emaUpdate(ema ?? refParams(state.params), state.params, eArgs, emaCalls);
          emaCalls++;
        }
        window = { loss: window.loss + m.loss, psnr: window.psnr + m.psnr, n: window.n + 1 };
      }
      trainSeconds += (performance.now() - stepsStart) / 1000;
      // The step that reaches the budget is the last: logged, evaluated and checkpointed as such.
      const budgetHit = budget !== undefined && trainTotal() >= budget && state.step < t.steps;
      const last = state.step === t.steps || budgetHit;
      const elapsed = (performance.now() - t0) / 1000;
      const perS = ((state.step - startStep) * driver.batchSize * t.grad_accumulation) / elapsed;
      progress?.update(state.step, { loss: m.loss, psnr: m.psnr });
      await opts.onStep?.({ ...m, step: state.step, steps: t.steps, imagesPerS: perS, seconds: elapsed });
      const record: Record<string, number> = { step: state.step };
      if (state.step % t.log_every === 0 || last) {
        if (window.n > 0)
          Object.assign(record, {
            loss: window.loss / window.n,
            train_psnr: window.psnr / window.n,
            grad_norm: m.gradNorm,
          });
        Object.assign(record, {
          seconds: secondsBefore + elapsed,
          time: Date.now() / 1000,
          lr: t.lr,
          images_per_s: perS,
          step_s: stepTime.s / Math.max(1, stepTime.n),
        });
        if (skippedSteps > 0) record.skipped_steps = skippedSteps;
        if (skippedItems().length > 0) record.skipped_files = skippedItems().length;
        window = { loss: 0, psnr: 0, n: 0 };
        stepTime = { s: 0, n: 0 };
      }
      if ((t.eval_every > 0 && state.step % t.eval_every === 0) || last) {
        const r = await driver.evaluate(
          state.params,
          false,
          t.sample_every > 0 && state.step % t.sample_every === 0,
        );
        Object.assign(record, { test_psnr: r.psnr, test_ssim: r.ssim, ...physicalMetrics(r.report) });
        curve.push([state.step, r.psnr]);
        if (timeKnown) timeCurve.push([trainTotal(), r.psnr]);
        await saveSample(r.grid, `step-${String(state.step).padStart(6, "0")}.png`);
      }
      if (logTrainSeconds && Object.keys(record).length > 1) record.train_seconds = trainTotal();
      if (Object.keys(record).length > 1) await appendFile(metricsPath, JSON.stringify(record) + "\n");
      if (record.test_psnr !== undefined) await opts.onEval?.(record as EvalRecord);
      const stop = opts.stopAfter !== undefined && state.step >= opts.stopAfter && !last;
      if ((t.checkpoint_every > 0 && state.step % t.checkpoint_every === 0) || last || stop)
        await writeCheckpoint();
      if (stop) {
        progress?.done();
        disposeState();
        log(`stopped at step ${state.step}; continue with --resume`);
        return stopped(opts.out, state.step, curve, t0, { trainSeconds: trainTotal(), timeCurve });
      }
      if (budgetHit) {
        budgetStopped = true;
        progress?.done();
        log(
          `time budget of ${budget} s reached at step ${state.step} of ${t.steps} (${trainTotal().toFixed(1)} s of training)`,
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
  return finish(run, driver, opts, {
    state,
    ema,
    curve,
    skippedFiles: skippedItems(),
    t0,
    disposeState,
    timeCurve,
    trainSeconds: trainTotal(),
    budget: budget === undefined ? null : { seconds: budget, stopped: budgetStopped },
  });
}

/** What a run stopped before its last step (`stopAfter`, or aborted) reports: no final evaluation. */
function stopped(
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
function diverged(
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

/** The final evaluation of the online weights, the models, eval.json and the plot. */
async function finish<B>(
  run: ResolvedRunConfig,
  driver: TaskDriver<B>,
  opts: TrainOptions,
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
