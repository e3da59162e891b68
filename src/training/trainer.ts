/**
 * The image trainer: a run config in, a run folder out (nerfstudio-style: the resolved config
 * beside the outputs). Resumable: `resume: true` continues from the folder's checkpoint with the
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
import { numpy as np } from "../backend/jax.js";
import { initBackend } from "../backend/index.js";
import { openImageDataset, type ImageDataset } from "../data/datasets.js";
import { BatchLoader, type LoaderState } from "../data/loader.js";
import { hconcat, vconcat, savePng, stackImages } from "../data/image.js";
import { evaluateImages, type EvalReport } from "../eval/evaluate.js";
import { writeFileAtomic } from "../io/safetensors.js";
import { saveModel } from "../io/weights.js";
import { initHostParams, toDevice, toHost, countParams, disposeParams, refParams } from "../model/params.js";
import { sizeHW } from "../model/config.js";
import type { Params } from "../model/model.js";
import { Rng } from "../util/rng.js";
import { Progress } from "../util/progress.js";
import { writeLinePlot } from "../util/plot.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { adamInit, emaUpdate, type EmaArgs } from "./optim.js";
import type { ResolvedRunConfig } from "./run-config.js";
import { createImageTrainStep, type TrainState } from "./step.js";

/** Options of {@link train}. */
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
  final: EvalReport;
  /** Test PSNR by step (the curve in psnr.png). */
  curve: [number, number][];
  seconds: number;
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

function checkSize(ds: ImageDataset, run: ResolvedRunConfig): void {
  const [h, w] = sizeHW(run.model.tokenizer.args.input_size);
  if (ds.size[0] !== h || ds.size[1] !== w) {
    throw new Error(
      `${ds.name}: images are ${ds.size[0]}×${ds.size[1]} but the model's tokenizer.args.input_size is ${h}×${w} (set data size to match)`,
    );
  }
}

export async function train(run: ResolvedRunConfig, opts: TrainOptions): Promise<TrainResult> {
  const log = opts.verbose === false ? () => undefined : (s: string) => console.log(s);
  const backend = await initBackend();
  const cfg = run.model;
  const t = run.train;
  await mkdir(join(opts.out, "samples"), { recursive: true });
  const configPath = join(opts.out, "config.json");
  const ckptPath = join(opts.out, "checkpoint.safetensors");
  const metricsPath = join(opts.out, "metrics.jsonl");
  const resolvedJson = JSON.stringify(run, null, 2) + "\n";

  const trainDs = await openImageDataset(run.data, "train", { skipCorrupt: t.skip_corrupt });
  const evalDs = await openImageDataset(run.data, run.eval.split, { skipCorrupt: t.skip_corrupt });
  checkSize(trainDs, run);
  checkSize(evalDs, run);
  const loader = new BatchLoader(trainDs, { batchSize: t.batch_size, seed: t.seed });
  const order = t.order_file
    ? await readOrder(t.order_file, t.steps * t.grad_accumulation, trainDs.length)
    : null;

  let state: TrainState;
  let ema: Params | null = null;
  let emaCalls = 0;
  const rng = new Rng(t.seed + 7919);
  if (opts.resume && (await exists(ckptPath))) {
    const saved = await readFile(configPath, "utf8").catch(() => "");
    if (saved && saved !== resolvedJson) {
      throw new Error(
        `${configPath}: the run config differs from the one this run was started with; resume with the same config or use a new --out`,
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
    loader.restore(ck.state.loader as LoaderState);
    rng.state = ck.state.rng;
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
    `anr train: ${cfg.hyponet.name}, ${countParams(cfg).toLocaleString("en")} parameters; ${trainDs.name} ${trainDs.length} images, ${evalDs.name} ${evalDs.length}; ${backend.threads} threads; run folder ${opts.out}`,
  );

  const step = createImageTrainStep(cfg, {
    adam: { lr: t.lr, beta1: t.betas[0], beta2: t.betas[1], eps: t.eps },
    clipNorm: t.clip_norm,
  });
  const eArgs = emaArgs(run);
  const [h, w] = trainDs.size;
  const curve: [number, number][] = (await readFile(metricsPath, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; test_psnr?: number })
    .filter((r) => r.test_psnr !== undefined)
    .map((r) => [r.step, r.test_psnr!]);

  const evaluate = async (maxImages: number | undefined, keep: number) =>
    evaluateImages(state.params, cfg, evalDs, {
      batchSize: run.eval.batch_size,
      maxImages,
      clamp: run.eval.clamp,
      keep,
    });
  const saveSamples = async (
    kept: { input: import("../data/image.js").HostImage; pred: import("../data/image.js").HostImage }[],
    name: string,
  ) => {
    if (kept.length)
      await savePng(
        join(opts.out, "samples", name),
        vconcat([hconcat(kept.map((k) => k.input)), hconcat(kept.map((k) => k.pred))]),
        h < 64 ? 4 : 1,
      );
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
      {
        step: state.step,
        emaCalls,
        loader: loader.state,
        rng: rng.state,
        run,
      },
    );

  const t0 = performance.now();
  if (state.step === 0 && t.eval_every > 0) {
    const r = await evaluate(run.eval.max_images, 8);
    curve.push([0, r.psnr]);
    await appendFile(metricsPath, JSON.stringify({ step: 0, test_psnr: r.psnr, test_ssim: r.ssim }) + "\n");
    await saveSamples(r.kept, "step-000000.png");
    log(`step 0: test PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}`);
  }
  const progress = opts.verbose === false ? null : new Progress({ total: t.steps, label: "train" });
  const startStep = state.step;
  let window = { loss: 0, psnr: 0, n: 0 };
  while (state.step < t.steps) {
    const micro = [];
    for (let g = 0; g < t.grad_accumulation; g++) {
      const b = order
        ? await orderedBatch(trainDs, order[state.step * t.grad_accumulation + g]!)
        : await loader.next();
      const noise = t.coord_noise
        ? np.array(rng.fill(b.shape[0] * h * w * 2, { normal: true }), { shape: [b.shape[0], h, w, 2] })
        : null;
      micro.push({ imgs: np.array(b.data, { shape: b.shape }), noise });
    }
    const [next, m] = await step(state, micro);
    state = next;
    if (eArgs) {
      const updated = emaUpdate(ema ?? refParams(state.params), state.params, eArgs, emaCalls);
      ema = updated;
      emaCalls++;
    }
    window = { loss: window.loss + m.loss, psnr: window.psnr + m.psnr, n: window.n + 1 };
    const elapsed = (performance.now() - t0) / 1000;
    const imgsPerS = ((state.step - startStep) * t.batch_size * t.grad_accumulation) / elapsed;
    progress?.update(state.step, { loss: m.loss, psnr: m.psnr, "img/s": imgsPerS });
    const record: Record<string, number> = { step: state.step };
    if (state.step % t.log_every === 0 || state.step === t.steps) {
      Object.assign(record, {
        loss: window.loss / window.n,
        train_psnr: window.psnr / window.n,
        grad_norm: m.gradNorm,
        seconds: elapsed,
        images_per_s: imgsPerS,
      });
      window = { loss: 0, psnr: 0, n: 0 };
    }
    const last = state.step === t.steps;
    if ((t.eval_every > 0 && state.step % t.eval_every === 0) || last) {
      const r = await evaluate(
        run.eval.max_images,
        t.sample_every > 0 && state.step % t.sample_every === 0 ? 8 : 0,
      );
      Object.assign(record, { test_psnr: r.psnr, test_ssim: r.ssim });
      curve.push([state.step, r.psnr]);
      await saveSamples(r.kept, `step-${String(state.step).padStart(6, "0")}.png`);
    }
    if (Object.keys(record).length > 1) await appendFile(metricsPath, JSON.stringify(record) + "\n");
    const stop = opts.stopAfter !== undefined && state.step >= opts.stopAfter && !last;
    if ((t.checkpoint_every > 0 && state.step % t.checkpoint_every === 0) || last || stop)
      await writeCheckpoint();
    if (stop) {
      progress?.done();
      step.dispose();
      for (const P of [state.params, state.m, state.v, ema]) if (P) disposeParams(P);
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
  step.dispose();

  // Final: full evaluation of the online weights, models, plot.
  const final = await evaluate(undefined, 8);
  await saveSamples(final.kept, "final.png");
  const { kept: _kept, ...report } = final;
  void _kept;
  await writeFileAtomic(
    join(opts.out, "eval.json"),
    JSON.stringify({ split: run.eval.split, weights: "online", ...report }, null, 2) + "\n",
  );
  await saveModel(join(opts.out, "model.safetensors"), cfg, await toHost(state.params), {
    "anr.run": JSON.stringify({ step: state.step, name: run.name }),
  });
  if (ema)
    await saveModel(join(opts.out, "model-ema.safetensors"), cfg, await toHost(ema), {
      "anr.run": JSON.stringify({ step: state.step, name: run.name, weights: "ema" }),
    });
  await writeLinePlot(join(opts.out, "psnr.png"), {
    title: `${run.name}: test PSNR (${evalDs.name})`,
    xLabel: "step",
    yLabel: "PSNR (dB)",
    series: [{ name: cfg.hyponet.name, points: curve }],
  });
  const seconds = (performance.now() - t0) / 1000;
  log(
    `done: ${state.step} steps in ${seconds.toFixed(0)} s; ${evalDs.name} PSNR ${final.psnr.toFixed(2)} dB, SSIM ${final.ssim.toFixed(3)} over ${final.images} images`,
  );
  disposeParams(state.params);
  disposeParams(state.m);
  disposeParams(state.v);
  if (ema) disposeParams(ema);
  return {
    out: opts.out,
    steps: state.step,
    interrupted: false,
    final: report as EvalReport,
    curve,
    seconds,
  };
}

async function readOrder(path: string, need: number, n: number): Promise<number[][]> {
  let order: unknown;
  try {
    order = (JSON.parse(await readFile(path, "utf8")) as { order?: unknown }).order;
  } catch (e) {
    throw new Error(`${path}: cannot read the batch order (${(e as Error).message})`);
  }
  if (
    !Array.isArray(order) ||
    order.length < need ||
    !order.every(
      (b) => Array.isArray(b) && b.length > 0 && b.every((i) => Number.isInteger(i) && i >= 0 && i < n),
    )
  ) {
    throw new Error(`${path}: "order" must list at least ${need} batches of indices in [0, ${n})`);
  }
  return order as number[][];
}

async function orderedBatch(
  ds: ImageDataset,
  idx: number[],
): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  return stackImages(await Promise.all(idx.map((i) => ds.get(i))), (k) => ds.id(idx[k]!));
}
