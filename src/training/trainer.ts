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
import { fieldChannels, openFieldDataset, type FieldDataset } from "../data/fields.js";
import { falseColour, finiteRange } from "../util/colormap.js";
import {
  openLearnitDataset,
  sampleViews,
  stackViews,
  type MultiViewObject,
  type PosedView,
} from "../data/learnit.js";
import { ssim } from "../eval/ssim.js";
import { hyperNetwork } from "../model/model.js";
import { createViewRenderer, viewsToDevice } from "../model/tasks.js";
import { jitterDepths } from "../rendering/volume.js";
import { BatchLoader, type LoaderState } from "../data/loader.js";
import { hconcat, vconcat, savePng, stackImages, psnrUnit, type HostImage } from "../data/image.js";
import { evaluateImages, type EvalReport, type PhysicalError } from "../eval/evaluate.js";
import { writeFileAtomic } from "../util/fs.js";
import { saveModel } from "../io/files.js";
import { initHostParams, toDevice, toHost, countParams, disposeParams, refParams } from "../model/params.js";
import { parseHyperNetworkConfig, sizeHW, type ChannelArgs } from "../model/config.js";
import type { Params } from "../model/model.js";
import { Rng } from "../util/rng.js";
import { Progress } from "../util/progress.js";
import { writeLinePlot } from "../util/plot.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { adamInit, emaUpdate, type EmaArgs } from "./optim.js";
import type { ResolvedRunConfig, ResolvedImageRun, ResolvedNerfRun, ResolvedFieldRun } from "./run-config.js";
import {
  createImageTrainStep,
  createNerfTrainStep,
  type ImageBatch,
  type NerfBatch,
  type StepMetrics,
  type TrainState,
} from "./step.js";

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

function checkSize(name: string, size: [number, number], run: ResolvedRunConfig): void {
  const [h, w] = sizeHW(run.model.tokenizer.args.input_size);
  if (size[0] !== h || size[1] !== w) {
    throw new Error(
      `${name}: images are ${size[0]}×${size[1]} but the model's tokenizer.args.input_size is ${h}×${w} (set data size to match)`,
    );
  }
}

/** A seed from several integers (step, micro-batch…), so that per-step randomness needs no state. */
function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
  return h;
}

/** One evaluation: metrics, a JSON report and an optional picture. */
export interface EvalOutcome {
  psnr: number;
  ssim: number;
  images: number;
  report: Record<string, unknown>;
  grid: HostImage | null;
}

/** What differs between tasks: data, batches, the step and evaluation. The loop is shared. */
interface TaskDriver<B> {
  /** Data summary for the start-up line. */
  describe: string;
  /** Name of the evaluation split. */
  evalName: string;
  /** Instances per micro-batch. */
  batchSize: number;
  step: ((state: TrainState, batches: B[]) => Promise<[TrainState, StepMetrics]>) & { dispose(): void };
  /** Micro-batch `g` of step `step` (0-based). */
  batch(step: number, g: number): Promise<B>;
  /** Data position and RNG, for exact resumption. */
  state(): unknown;
  restore(s: unknown): void;
  /**
   * Evaluate (borrowed) parameters; `final` uses the whole split (images and fields) unless
   * `maxImages` limits it.
   */
  evaluate(P: Params, final: boolean, grid: boolean, maxImages?: number): Promise<EvalOutcome>;
  /** Integer upscaling of sample grids. */
  gridScale: number;
  /** Release open files. */
  close?(): void;
}

function adamOf(run: ResolvedRunConfig) {
  const t = run.train;
  return { adam: { lr: t.lr, beta1: t.betas[0], beta2: t.betas[1], eps: t.eps }, clipNorm: t.clip_norm };
}

async function imageDriver(run: ResolvedImageRun | ResolvedFieldRun): Promise<TaskDriver<ImageBatch>> {
  const t = run.train;
  const cfg = run.model;
  const channels = run.task === "field" ? requireChannels(run) : null;
  const open = (split: "train" | "val" | "test") =>
    run.task === "field"
      ? openFieldDataset(run.data, split, channels)
      : openImageDataset(run.data, split, { skipCorrupt: t.skip_corrupt });
  const trainDs = await open("train");
  const evalDs = await open(run.eval.split);
  checkSize(trainDs.name, trainDs.size, run);
  checkSize(evalDs.name, evalDs.size, run);
  const loader = new BatchLoader(trainDs, { batchSize: t.batch_size, seed: t.seed });
  const order = t.order_file
    ? await readOrder(t.order_file, t.steps * t.grad_accumulation, trainDs.length)
    : null;
  const rng = new Rng(t.seed + 7919);
  const [h, w] = trainDs.size;
  const items = channels
    ? `fields (${channels.map((c) => (c.units ? `${c.name} [${c.units}]` : c.name)).join(", ")})`
    : "images";
  return {
    describe: `${trainDs.name} ${trainDs.length} ${items}, ${evalDs.name} ${evalDs.length}`,
    evalName: evalDs.name,
    batchSize: t.batch_size,
    step: createImageTrainStep(cfg, adamOf(run)),
    async batch(step, g) {
      const b = order
        ? await orderedBatch(trainDs, order[step * t.grad_accumulation + g]!)
        : await loader.next();
      const noise = t.coord_noise
        ? np.array(rng.fill(b.shape[0] * h * w * 2, { normal: true }), { shape: [b.shape[0], h, w, 2] })
        : null;
      return { imgs: np.array(b.data, { shape: b.shape }), noise };
    },
    state: () => ({ loader: loader.state, rng: rng.state }),
    restore(s) {
      const st = s as { loader: LoaderState; rng: number[] };
      loader.restore(st.loader);
      rng.state = st.rng;
    },
    async evaluate(P, final, grid, maxImages) {
      const r = await evaluateImages(P, cfg, evalDs, {
        batchSize: run.eval.batch_size,
        maxImages: maxImages ?? (final ? undefined : run.eval.max_images),
        clamp: run.eval.clamp,
        keep: grid ? 8 : 0,
        channels,
        latitudes: (evalDs as Partial<FieldDataset>).latitudes ?? null,
      });
      const { kept, ...report } = r;
      return {
        psnr: r.psnr,
        ssim: r.ssim,
        images: r.images,
        report: {
          split: evalDs.name,
          protocol: channels
            ? "PSNR per field in normalised units (peak 1, as the reference), averaged over the split; physical errors per channel"
            : "PSNR per image in [0,1] averaged over the split",
          ...(channels ? { channels } : {}),
          ...report,
        },
        grid: kept.length ? (channels ? fieldGrid(kept, channels.length) : imageGrid(kept)) : null,
      };
    },
    gridScale: h < 64 ? 4 : 1,
    close() {
      for (const ds of [trainDs, evalDs]) (ds as Partial<FieldDataset>).close?.();
    },
  };
}

function imageGrid(kept: { input: HostImage; pred: HostImage }[]): HostImage {
  return vconcat([hconcat(kept.map((k) => k.input)), hconcat(kept.map((k) => k.pred))]);
}

/** Per channel, a row of true fields over a row of decoded ones, in false colour on the truth's range. */
function fieldGrid(kept: { input: HostImage; pred: HostImage }[], c: number): HostImage {
  const rows: HostImage[] = [];
  for (let k = 0; k < c; k++) {
    const ranges = kept.map((x) =>
      finiteRange(x.input.data.subarray(k * x.input.h * x.input.w, (k + 1) * x.input.h * x.input.w)),
    );
    const range: [number, number] = [
      Math.min(...ranges.map((r) => r[0])),
      Math.max(...ranges.map((r) => r[1])),
    ];
    rows.push(hconcat(kept.map((x) => falseColour(x.input, k, range))));
    rows.push(hconcat(kept.map((x) => falseColour(x.pred, k, range))));
  }
  return vconcat(rows);
}

/** The channels a field run's model carries (filled in by {@link withFieldChannels}). */
function requireChannels(run: ResolvedFieldRun): ChannelArgs[] {
  if (run.model.channels === null)
    throw new Error(
      `run ${run.name}: model.channels is not set; train() fills it from the data (or set it in the model config)`,
    );
  return run.model.channels;
}

/**
 * A field run with `model.channels` filled from the data: names and units from the files,
 * normalisation from data.normalize (mean/std computed on the training split). A model config that
 * already lists channels keeps them (e.g. fine-tuning a trained model).
 */
export async function withFieldChannels(
  run: ResolvedFieldRun,
  opts: { verbose?: boolean; resumeFrom?: string } = {},
): Promise<ResolvedFieldRun> {
  if (run.model.channels !== null) return run;
  // A resumed run takes the channels it started with instead of recomputing the statistics.
  const saved = opts.resumeFrom
    ? await readFile(opts.resumeFrom, "utf8").then(
        (t) => (JSON.parse(t) as { model?: { channels?: ChannelArgs[] | null } }).model?.channels ?? null,
        () => null,
      )
    : null;
  let progress: Progress | null = null;
  const onProgress = (done: number, total: number) => {
    progress ??= new Progress({ total, label: "mean/std of the training split" });
    progress.update(done);
  };
  const channels = saved ?? (await fieldChannels(run.data, opts.verbose === false ? undefined : onProgress));
  (progress as Progress | null)?.done();
  const model = parseHyperNetworkConfig(
    { ...run.model, channels },
    `run ${run.name} (model with the data's ${channels.length} channel(s))`,
  );
  return { ...run, model };
}

async function nerfDriver(run: ResolvedNerfRun): Promise<TaskDriver<NerfBatch>> {
  const t = run.train;
  const nf = run.nerf;
  const cfg = run.model;
  const trainDs = await openLearnitDataset(run.data, "train");
  const evalDs = await openLearnitDataset(run.data, run.eval.split);
  checkSize(trainDs.name, trainDs.size, run);
  const [h, w] = trainDs.size;
  const { near, far } = trainDs;
  let perm: { epoch: number; order: number[] } | null = null;
  const objectAt = (pos: number) => {
    const epoch = Math.floor(pos / trainDs.length);
    if (perm?.epoch !== epoch)
      perm = { epoch, order: new Rng(mixSeed(t.seed, epoch)).permutation(trainDs.length) };
    return trainDs.object(perm.order[pos % trainDs.length]!);
  };
  const views = async (obj: MultiViewObject, idx: number[]) => Promise.all(idx.map((i) => obj.view(i)));
  return {
    describe: `${trainDs.name} ${trainDs.length} objects, ${evalDs.name} ${evalDs.length}${trainDs.broken.length ? ` (${trainDs.broken.length} broken skipped)` : ""}; ${nf.n_support} support + ${nf.n_query} query views, ${nf.train_n_rays} rays × ${nf.n_samples} samples`,
    evalName: `${evalDs.name} (protocol ${nf.eval_protocol}, ${nf.eval_pairs} pair(s) per object)`,
    batchSize: t.batch_size,
    step: createNerfTrainStep(cfg, { ...adamOf(run), chunk: nf.chunk }),
    async batch(step, g) {
      // All randomness of a micro-batch derives from (seed, step, g): resuming needs no state.
      const rng = new Rng(mixSeed(t.seed, step, g));
      const support: PosedView[][] = [];
      const query: PosedView[][] = [];
      for (let j = 0; j < t.batch_size; j++) {
        const obj = objectAt((step * t.grad_accumulation + g) * t.batch_size + j);
        const range: [number, number] = [nf.view_range[0], Math.min(nf.view_range[1], obj.nViews)];
        const pick = sampleViews(obj.nViews, rng, { nSupport: nf.n_support, nQuery: nf.n_query, range });
        support.push(await views(obj, pick.support));
        query.push(await views(obj, pick.query));
      }
      const rayIds = Int32Array.from(rng.permutation(nf.n_query * h * w).slice(0, nf.train_n_rays));
      const sd = viewsToDevice(stackViews(support));
      const qd = viewsToDevice(stackViews(query));
      return {
        supportImgs: sd.imgs,
        supportPoses: sd.poses,
        supportFocals: sd.focals,
        queryImgs: qd.imgs,
        queryPoses: qd.poses,
        queryFocals: qd.focals,
        rayIds: np.array(rayIds, { dtype: np.int32 }),
        z: np.array(jitterDepths(near, far, nf.n_samples, rayIds.length, rng), {
          shape: [rayIds.length, nf.n_samples],
        }),
      };
    },
    state: () => ({}),
    restore: () => undefined,
    async evaluate(P, final, grid, maxImages) {
      // TransINR protocol: per test object, random support/query draws over all its views; the
      // whole query view is rendered (deterministic depths) and compared at full resolution.
      const n = Math.min(
        evalDs.length,
        maxImages ?? (final ? (run.eval.max_images ?? Infinity) : (run.eval.max_images ?? 8)),
      );
      const render = createViewRenderer(cfg, { chunk: nf.chunk, nSamples: nf.n_samples, near, far });
      const per: { id: string; psnr: number; ssim: number }[] = [];
      const rows: HostImage[] = [];
      try {
        for (let i = 0; i < n; i++) {
          const obj = evalDs.object(i);
          for (let pair = 0; pair < nf.eval_pairs; pair++) {
            const rng = new Rng(mixSeed(0x5eed, i, pair));
            const anr = nf.eval_protocol === "anr";
            const range: [number, number] | undefined = anr
              ? [nf.view_range[0], Math.min(nf.view_range[1], obj.nViews)]
              : undefined;
            const pick = sampleViews(obj.nViews, rng, { nSupport: nf.n_support, nQuery: 1, range });
            const sv = stackViews([await views(obj, pick.support)]);
            const qv = (await views(obj, pick.query))[0]!;
            const gen = hyperNetwork(P, cfg, viewsToDevice(sv));
            const sub = anr ? stridedPixels(h, w, nf.eval_downsample, rng) : null;
            const rgb = await render(P, gen, qv.pose, qv.focal, h, w, sub?.pixels);
            disposeParams(gen);
            const pred = run.eval.clamp ? rgb.map((x) => Math.min(1, Math.max(0, x))) : rgb;
            const truth = sub ? gatherPixels(qv.img.data, h * w, sub.pixels) : qv.img.data;
            per.push({
              id: `${obj.id}#${pick.query[0]}`,
              psnr: psnrUnit(pred, truth),
              ssim: sub ? ssim(pred, truth, 3, sub.rows, sub.cols) : ssim(pred, truth, 3, h, w),
            });
            if (grid && rows.length < 4 && pair === 0) {
              const first = (await views(obj, [pick.support[0]!]))[0]!.img;
              const [ph, pw] = sub ? [sub.rows, sub.cols] : [h, w];
              rows.push(
                hconcat([first, { c: 3, h: ph, w: pw, data: pred }, { c: 3, h: ph, w: pw, data: truth }]),
              );
            }
          }
        }
      } finally {
        render.dispose();
      }
      const mean = (f: (x: (typeof per)[number]) => number) =>
        per.reduce((a, x) => a + f(x), 0) / Math.max(1, per.length);
      return {
        psnr: mean((x) => x.psnr),
        ssim: mean((x) => x.ssim),
        images: per.length,
        report: {
          split: evalDs.name,
          protocol:
            nf.eval_protocol === "anr"
              ? `anr: support/query drawn from views [${nf.view_range}) as in training, query rendered at stride ${nf.eval_downsample} from a random phase (the reference's infer_nerf), ${nf.eval_pairs} draw(s) per object`
              : `transinr: ${nf.eval_pairs} random support/query draw(s) per object over all views, full-image PSNR`,
          images: per.length,
          psnr: mean((x) => x.psnr),
          ssim: mean((x) => x.ssim),
          perImage: per,
        },
        grid: rows.length ? vconcat(rows) : null,
      };
    },
    gridScale: h < 64 ? 4 : 1,
  };
}

/**
 * Evaluate (borrowed) parameters on the run's eval split, with a grid: the whole split, or its
 * first `maxImages` items.
 */
export async function evaluateRun(
  run: ResolvedRunConfig,
  P: Params,
  options: { maxImages?: number } = {},
): Promise<EvalOutcome> {
  await initBackend();
  const driver = run.task === "nerf" ? await nerfDriver(run) : await imageDriver(run);
  try {
    return await driver.evaluate(P, true, true, options.maxImages);
  } finally {
    driver.step.dispose();
    driver.close?.();
  }
}

/** Row-major indices of every `stride`-th pixel in both directions, from a random phase: a rows × cols grid. */
function stridedPixels(
  h: number,
  w: number,
  stride: number,
  rng: Rng,
): { pixels: Int32Array; rows: number; cols: number } {
  const [y0, x0] = [rng.int(stride), rng.int(stride)];
  const out: number[] = [];
  for (let y = y0; y < h; y += stride) for (let x = x0; x < w; x += stride) out.push(y * w + x);
  return {
    pixels: Int32Array.from(out),
    rows: Math.ceil((h - y0) / stride),
    cols: Math.ceil((w - x0) / stride),
  };
}

/** (3, n) values of `pixels` from a (3, H·W) image. */
function gatherPixels(img: Float32Array, hw: number, pixels: Int32Array): Float32Array {
  const out = new Float32Array(3 * pixels.length);
  for (let c = 0; c < 3; c++)
    for (let k = 0; k < pixels.length; k++) out[c * pixels.length + k] = img[c * hw + pixels[k]!]!;
  return out;
}

/** One line per channel for logs: RMSE, latitude-weighted RMSE when known, largest error. */
export function describePhysical(
  p: Omit<PhysicalError, "meanFieldRmse"> & { meanFieldRmse?: number },
): string {
  const u = p.units ? ` ${p.units}` : "";
  const lw = p.rmseLatWeighted !== undefined ? `, lat-weighted ${p.rmseLatWeighted.toPrecision(4)}${u}` : "";
  const mf = p.meanFieldRmse !== undefined ? ` (mean per field ${p.meanFieldRmse.toPrecision(4)})` : "";
  return `${p.name}: RMSE ${p.rmse.toPrecision(4)}${u}${lw}${mf}, max |error| ${p.maxAbs.toPrecision(4)}${u}`;
}

/** `test_rmse_<channel>` (physical units) of a field evaluation report, for metrics.jsonl. */
function physicalMetrics(report: Record<string, unknown>): Record<string, number> {
  const phys = report.physical as PhysicalError[] | undefined;
  return Object.fromEntries((phys ?? []).map((p) => [`test_rmse_${p.name}`, p.rmse]));
}

/** Train a run: image reconstruction, field reconstruction or view synthesis, by `run.task`. */
export async function train(run: ResolvedRunConfig, opts: TrainOptions): Promise<TrainResult> {
  await initBackend();
  if (run.task === "nerf") return runLoop(run, await nerfDriver(run), opts);
  if (run.task === "field") {
    const resolved = await withFieldChannels(run, {
      verbose: opts.verbose,
      resumeFrom: opts.resume ? join(opts.out, "config.json") : undefined,
    });
    return runLoop(resolved, await imageDriver(resolved), opts);
  }
  return runLoop(run, await imageDriver(run), opts);
}

async function runLoop<B>(
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
  for (const p of (final.report.physical as PhysicalError[] | undefined) ?? [])
    log(`  ${describePhysical(p)}`);
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
    },
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
