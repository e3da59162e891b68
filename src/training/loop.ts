/**
 * The training loop, shared by every task: a resolved run config and a task's driver
 * (./drivers) in, a run folder out (nerfstudio-style: the resolved config beside the outputs),
 * metrics as plain records. Resumable: `resume: true` continues from the folder's checkpoint with the
 * same data order, optimiser state, step count and RNG, so the metrics continue exactly.
 *
 * Run folder:
 *   config.json            the resolved run config (preset expanded, defaults filled)
 *   metrics.jsonl          one JSON object per logged step / evaluation
 *   checkpoint.safetensors params + Adam moments + EMA + training state (latest)
 *   model.safetensors      final online weights (config in the metadata)
 *   model-ema.safetensors  final EMA weights (when EMA is on)
 *   samples/step-N.png     eval inputs (top) and reconstructions (bottom)
 *   psnr.png               PSNR vs step
 *   eval.json              final evaluation report
 */
import { mkdir, readFile, writeFile, appendFile, access } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import { savePng, type HostImage } from "../data/image.js";
import { describePhysical, type EvalOutcome, type EvalReport, type PhysicalError } from "../eval/evaluate.js";
import { saveModel } from "../io/files.js";
import type { Params } from "../model/model.js";
import { initHostParams, toDevice, toHost, countParams, disposeParams, refParams } from "../model/params.js";
import { InputError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { writeLinePlot } from "../util/plot.js";
import { Progress } from "../util/progress.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { adamInit, emaUpdate, type EmaArgs } from "./optim.js";
import type { ResolvedRunConfig } from "./run-config.js";
import type { StepMetrics, TrainState } from "./step.js";

/** Options of a training run. */
export interface TrainOptions {
  /** Run folder. */
  out: string;
  /** Continue from `out/checkpoint.safetensors`. */
  resume?: boolean;
  /** Print progress (default true). */
  verbose?: boolean;
  /** Stop (with a checkpoint) once this step is reached, as an interruption would; resume later. */
  stopAfter?: number;
}

/** What a finished run reports. */
export interface TrainResult {
  out: string;
  steps: number;
  /** True when the run stopped at `stopAfter` before its last step. */
  interrupted: boolean;
  /** The final evaluation of the online weights (as eval.json), with physical errors for fields. */
  final: EvalReport;
  /** Test PSNR by step (the curve in psnr.png). */
  curve: [number, number][];
  seconds: number;
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

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** `test_rmse_<channel>` (physical units) of a field evaluation report, for metrics.jsonl. */
function physicalMetrics(report: Record<string, unknown>): Record<string, number> {
  const phys = report.physical as PhysicalError[] | undefined;
  return Object.fromEntries((phys ?? []).map((p) => [`test_rmse_${p.name}`, p.rmse]));
}

/**
 * Train `run` with a task's driver: the shared loop (steps, EMA, periodic evaluation, metrics,
 * checkpoints, resumption), then the final evaluation and the run's artifacts.
 */
export async function runLoop<B>(
  run: ResolvedRunConfig,
  driver: TaskDriver<B>,
  opts: TrainOptions,
): Promise<TrainResult> {
  const log = opts.verbose === false ? () => undefined : (s: string) => console.log(s);
  const backend = await initBackend();
  const cfg = run.model;
  const t = run.train;
  await mkdir(join(opts.out, "samples"), { recursive: true });
  const configPath = join(opts.out, "config.json");
  const ckptPath = join(opts.out, "checkpoint.safetensors");
  const metricsPath = join(opts.out, "metrics.jsonl");
  const resolvedJson = JSON.stringify(run, null, 2) + "\n";

  let state: TrainState;
  let ema: Params | null = null;
  let emaCalls = 0;
  let window = { loss: 0, psnr: 0, n: 0 };
  if (opts.resume && (await exists(ckptPath))) {
    const saved = await readFile(configPath, "utf8").catch(() => "");
    if (saved && saved !== resolvedJson) {
      throw new InputError(
        configPath,
        "the run config differs from the one this run was started with; resume with the same config or use a new --out",
      );
    }
    const ck = await loadCheckpoint(ckptPath);
    state = {
      params: toDevice(ck.tensors.params),
      m: toDevice(ck.tensors.m),
      v: toDevice(ck.tensors.v),
      step: ck.state.step,
    };
    ema = ck.tensors.ema ? toDevice(ck.tensors.ema) : null;
    emaCalls = ck.state.emaCalls;
    window = ck.state.window ?? window;
    driver.restore(ck.state.loader);
    // Metrics logged after the checkpoint are redone: drop them.
    const lines = (await readFile(metricsPath, "utf8").catch(() => ""))
      .split("\n")
      .filter((l) => l && (JSON.parse(l) as { step: number }).step <= state.step);
    await writeFile(metricsPath, lines.map((l) => l + "\n").join(""));
    log(`resuming ${opts.out} at step ${state.step}`);
  } else {
    await writeFileAtomic(configPath, resolvedJson);
    await writeFile(metricsPath, "");
    const params = toDevice(initHostParams(cfg, t.seed));
    const { m, v } = adamInit(params);
    state = { params, m, v, step: 0 };
  }
  log(
    `anr train: ${cfg.hyponet.name}, ${countParams(cfg).toLocaleString("en")} parameters; ${driver.describe}; ${backend.threads} threads; run folder ${opts.out}`,
  );

  const eArgs = emaArgs(run);
  const curve: [number, number][] = (await readFile(metricsPath, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; test_psnr?: number })
    .filter((r) => r.test_psnr !== undefined)
    .map((r) => [r.step, r.test_psnr!]);
  const saveGrid = async (grid: HostImage | null, name: string) => {
    if (grid) await savePng(join(opts.out, "samples", name), grid, driver.gridScale);
  };
  const writeCheckpoint = async () =>
    saveCheckpoint(
      ckptPath,
      cfg,
      {
        params: await toHost(state.params),
        m: await toHost(state.m),
        v: await toHost(state.v),
        ema: ema ? await toHost(ema) : null,
      },
      { step: state.step, emaCalls, loader: driver.state(), rng: [], run, window },
    );
  const release = () => {
    driver.step.dispose();
    driver.close?.();
    for (const P of [state.params, state.m, state.v, ema]) if (P) disposeParams(P);
  };

  const t0 = performance.now();
  if (state.step === 0 && t.eval_every > 0) {
    const r = await driver.evaluate(state.params, false, true);
    curve.push([0, r.psnr]);
    await appendFile(metricsPath, JSON.stringify({ step: 0, test_psnr: r.psnr, test_ssim: r.ssim }) + "\n");
    await saveGrid(r.grid, "step-000000.png");
    log(`step 0: test PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}`);
  }
  const progress = opts.verbose === false ? null : new Progress({ total: t.steps, label: "train" });
  const startStep = state.step;
  while (state.step < t.steps) {
    const micro: B[] = [];
    for (let g = 0; g < t.grad_accumulation; g++) micro.push(await driver.batch(state.step, g));
    const [next, m] = await driver.step(state, micro);
    state = next;
    if (eArgs) {
      ema = emaUpdate(ema ?? refParams(state.params), state.params, eArgs, emaCalls);
      emaCalls++;
    }
    window = { loss: window.loss + m.loss, psnr: window.psnr + m.psnr, n: window.n + 1 };
    const elapsed = (performance.now() - t0) / 1000;
    const perS = ((state.step - startStep) * driver.batchSize * t.grad_accumulation) / elapsed;
    progress?.update(state.step, { loss: m.loss, psnr: m.psnr, "items/s": perS });
    const record: Record<string, number> = { step: state.step };
    if (state.step % t.log_every === 0 || state.step === t.steps) {
      Object.assign(record, {
        loss: window.loss / window.n,
        train_psnr: window.psnr / window.n,
        grad_norm: m.gradNorm,
        seconds: elapsed,
        images_per_s: perS,
      });
      window = { loss: 0, psnr: 0, n: 0 };
    }
    const last = state.step === t.steps;
    if ((t.eval_every > 0 && state.step % t.eval_every === 0) || last) {
      const r = await driver.evaluate(
        state.params,
        false,
        t.sample_every > 0 && state.step % t.sample_every === 0,
      );
      Object.assign(record, { test_psnr: r.psnr, test_ssim: r.ssim, ...physicalMetrics(r.report) });
      curve.push([state.step, r.psnr]);
      await saveGrid(r.grid, `step-${String(state.step).padStart(6, "0")}.png`);
    }
    if (Object.keys(record).length > 1) await appendFile(metricsPath, JSON.stringify(record) + "\n");
    const stop = opts.stopAfter !== undefined && state.step >= opts.stopAfter && !last;
    if ((t.checkpoint_every > 0 && state.step % t.checkpoint_every === 0) || last || stop)
      await writeCheckpoint();
    if (stop) {
      progress?.done();
      release();
      log(`stopped at step ${state.step}; continue with --resume`);
      return {
        out: opts.out,
        steps: state.step,
        interrupted: true,
        final: { images: 0, psnr: NaN, ssim: NaN, loss: NaN, perImage: [] },
        curve,
        seconds: (performance.now() - t0) / 1000,
      };
    }
  }
  progress?.done();

  // Final: full evaluation of the online weights, models, plot.
  const final = await driver.evaluate(state.params, true, true);
  await saveGrid(final.grid, "final.png");
  await writeFileAtomic(
    join(opts.out, "eval.json"),
    JSON.stringify({ weights: "online", ...final.report }, null, 2) + "\n",
  );
  await saveModel(join(opts.out, "model.safetensors"), cfg, await toHost(state.params), {
    "anr.run": JSON.stringify({ step: state.step, name: run.name }),
  });
  if (ema)
    await saveModel(join(opts.out, "model-ema.safetensors"), cfg, await toHost(ema), {
      "anr.run": JSON.stringify({ step: state.step, name: run.name, weights: "ema" }),
    });
  await writeLinePlot(join(opts.out, "psnr.png"), {
    title: `${run.name}: test PSNR (${driver.evalName})`,
    xLabel: "step",
    yLabel: "PSNR (dB)",
    series: [{ name: cfg.hyponet.name, points: curve }],
  });
  const seconds = (performance.now() - t0) / 1000;
  log(
    `done: ${state.step} steps in ${seconds.toFixed(0)} s; ${driver.evalName} PSNR ${final.psnr.toFixed(2)} dB, SSIM ${final.ssim.toFixed(3)} over ${final.images} ${cfg.channels ? "fields" : "images"}`,
  );
  const physical = (final.report.physical as PhysicalError[] | undefined) ?? [];
  for (const p of physical) log(`  ${describePhysical(p)}`);
  release();
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
  };
}
