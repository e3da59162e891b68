/**
 * The image and field tasks: batches of images (or normalised fields) from a shuffled, resumable
 * loader or an order file, the jitted image step, and evaluation by PSNR/SSIM (and physical errors
 * for fields) on the run's eval split.
 */
import { readFile } from "node:fs/promises";
import { numpy as np } from "../../backend/jax.js";
import { openImageDataset, type ImageDataset } from "../../data/datasets.js";
import { openFieldDataset, type FieldDataset } from "../../data/fields.js";
import { stackImages } from "../../data/image.js";
import { BatchLoader, type LoaderState } from "../../data/loader.js";
import { evaluateImageSplit } from "../../eval/evaluate.js";
import type { ChannelArgs } from "../../model/config.js";
import { InputError } from "../../util/errors.js";
import { Rng } from "../../util/rng.js";
import type { RunEvaluator, TaskDriver } from "../loop.js";
import type { ResolvedFieldRun, ResolvedImageRun } from "../run-config.js";
import { createImageTrainStep, type ImageBatch } from "../step.js";
import { adamOf, checkSize } from "./common.js";

type ImageRun = ResolvedImageRun | ResolvedFieldRun;

function openSplit(run: ImageRun, split: "train" | "val" | "test"): Promise<ImageDataset | FieldDataset> {
  return run.task === "field"
    ? openFieldDataset(run.data, split, run.model.channels)
    : openImageDataset(run.data, split, { skipCorrupt: run.train.skip_corrupt });
}

function closeSplit(ds: ImageDataset): void {
  (ds as Partial<FieldDataset>).close?.();
}

/** Evaluation on an opened eval split. */
function evaluation(run: ImageRun, evalDs: ImageDataset): RunEvaluator {
  const channels = run.task === "field" ? run.model.channels : null;
  return {
    evalName: evalDs.name,
    evaluate: (P, final, grid, maxImages) =>
      evaluateImageSplit(P, run.model, evalDs, {
        batchSize: run.eval.batch_size,
        maxImages: maxImages ?? (final ? undefined : run.eval.max_images),
        clamp: run.eval.clamp,
        grid,
        channels,
        latitudes: (evalDs as Partial<FieldDataset>).latitudes ?? null,
      }),
    gridScale: evalDs.size[0] < 64 ? 4 : 1,
    close: () => closeSplit(evalDs),
    skippedItems: () => evalDs.skippedIds,
  };
}

/** The eval split of an image or field run (and nothing else: `anr eval` needs no training data). */
export async function imageEvaluator(run: ImageRun): Promise<RunEvaluator> {
  const evalDs = await openSplit(run, run.eval.split);
  try {
    checkSize(evalDs.name, evalDs.size, run);
  } catch (e) {
    closeSplit(evalDs);
    throw e;
  }
  return evaluation(run, evalDs);
}

/**
 * The train and eval splits, opened together, so that what is wrong with both (the unreadable
 * files of each) is reported at once, in one error, rather than the second after the first is fixed.
 */
async function openSplits(run: ImageRun): Promise<[ImageDataset, ImageDataset]> {
  const [a, b] = await Promise.allSettled([openSplit(run, "train"), openSplit(run, run.eval.split)]);
  if (a.status === "fulfilled" && b.status === "fulfilled") return [a.value, b.value];
  for (const r of [a, b]) if (r.status === "fulfilled") closeSplit(r.value);
  const [x, y] = [a, b].flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  if (y === undefined || !(x instanceof InputError) || !(y instanceof InputError) || x.message === y.message)
    throw x;
  const detail = (e: InputError) =>
    e.source === x.source ? e.message.slice(e.source.length + 2) : e.message;
  throw new InputError(x.source, `${detail(x)}\n${detail(y)}`);
}

/** The driver of an image or field run. */
export async function imageDriver(run: ImageRun): Promise<TaskDriver<ImageBatch>> {
  const t = run.train;
  const channels: ChannelArgs[] | null = run.task === "field" ? run.model.channels : null;
  const [trainDs, evalDs] = await openSplits(run);
  checkSize(trainDs.name, trainDs.size, run);
  checkSize(evalDs.name, evalDs.size, run);
  if (trainDs.length < t.batch_size)
    throw new InputError(
      trainDs.name,
      `${trainDs.length} items, fewer than one batch of train.batch_size ${t.batch_size}`,
    );
  const loader = new BatchLoader(trainDs, { batchSize: t.batch_size, seed: t.seed });
  const order = t.order_file
    ? await readOrder(t.order_file, t.steps * t.grad_accumulation, trainDs.length)
    : null;
  const rng = new Rng(t.seed + 7919);
  const [h, w] = trainDs.size;
  const items = channels
    ? `fields (${channels.map((c) => (c.units ? `${c.name} [${c.units}]` : c.name)).join(", ")})`
    : "images";
  const evaluator = evaluation(run, evalDs);
  return {
    ...evaluator,
    describe: `${trainDs.name} ${trainDs.length} ${items}, ${evalDs.name} ${evalDs.length}`,
    batchSize: t.batch_size,
    step: createImageTrainStep(run.model, adamOf(run)),
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
    skippedItems: () => [...new Set([...trainDs.skippedIds, ...evalDs.skippedIds])],
    restore(s) {
      const st = s as { loader: LoaderState; rng: number[] };
      loader.restore(st.loader);
      rng.state = st.rng;
    },
    close() {
      closeSplit(trainDs);
      evaluator.close?.();
    },
  };
}

/** train.order_file: the training-set indices of every micro-batch. */
async function readOrder(path: string, need: number, n: number): Promise<number[][]> {
  let order: unknown;
  try {
    order = (JSON.parse(await readFile(path, "utf8")) as { order?: unknown }).order;
  } catch (e) {
    throw new InputError(path, `cannot read the batch order of train.order_file (${(e as Error).message})`);
  }
  if (
    !Array.isArray(order) ||
    order.length < need ||
    !order.every(
      (b) => Array.isArray(b) && b.length > 0 && b.every((i) => Number.isInteger(i) && i >= 0 && i < n),
    )
  ) {
    throw new InputError(
      path,
      `"order" must list at least ${need} batches of indices in [0, ${n}) (train.order_file: steps × grad_accumulation micro-batches of training-set indices)`,
    );
  }
  return order as number[][];
}

async function orderedBatch(
  ds: ImageDataset,
  idx: number[],
): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  return stackImages(await Promise.all(idx.map((i) => ds.get(i))), (k) => ds.id(idx[k]!));
}
