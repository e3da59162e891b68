/**
 * The view-synthesis task: per micro-batch, objects in a seeded per-epoch order, support and
 * query views drawn from each, and a random subset of the query rays with jittered depths; the
 * jitted NeRF step; evaluation by the run's protocol (src/eval/views.ts).
 */
import { numpy as np } from "../../backend/jax.js";
import {
  openLearnitDataset,
  sampleViews,
  stackViews,
  type MultiViewDataset,
  type MultiViewObject,
  type PosedView,
} from "../../data/learnit.js";
import { evaluateViews } from "../../eval/views.js";
import { viewsToDevice } from "../../model/tasks.js";
import { jitterDepths } from "../../rendering/volume.js";
import { Rng, mixSeed } from "../../util/rng.js";
import type { RunEvaluator, TaskDriver } from "../loop.js";
import type { ResolvedNerfRun } from "../run-config.js";
import { createNerfTrainStep, type NerfBatch } from "../step.js";
import { adamOf, checkSize } from "./common.js";

/** Evaluation on an opened eval split, by the run's protocol. */
function evaluation(run: ResolvedNerfRun, evalDs: MultiViewDataset): RunEvaluator {
  const nf = run.nerf;
  return {
    evalName: `${evalDs.name} (protocol ${nf.eval_protocol}, ${nf.eval_pairs} pair(s) per object)`,
    evaluate: (P, final, grid, maxImages) =>
      evaluateViews(P, run.model, evalDs, {
        objects: Math.min(
          evalDs.length,
          maxImages ?? (final ? (run.eval.max_images ?? Infinity) : (run.eval.max_images ?? 8)),
        ),
        nSupport: nf.n_support,
        pairs: nf.eval_pairs,
        protocol: nf.eval_protocol,
        viewRange: nf.view_range,
        downsample: nf.eval_downsample,
        nSamples: nf.n_samples,
        chunk: nf.chunk,
        clamp: run.eval.clamp,
        grid,
      }),
    gridScale: evalDs.size[0] < 64 ? 4 : 1,
  };
}

/** The eval split of a view-synthesis run (and nothing else: `anr eval` needs no training data). */
export async function nerfEvaluator(run: ResolvedNerfRun): Promise<RunEvaluator> {
  const evalDs = await openLearnitDataset(run.data, run.eval.split);
  checkSize(evalDs.name, evalDs.size, run);
  return evaluation(run, evalDs);
}

/** The driver of a view-synthesis run. */
export async function nerfDriver(run: ResolvedNerfRun): Promise<TaskDriver<NerfBatch>> {
  const t = run.train;
  const nf = run.nerf;
  const trainDs = await openLearnitDataset(run.data, "train");
  const evalDs = await openLearnitDataset(run.data, run.eval.split);
  checkSize(trainDs.name, trainDs.size, run);
  checkSize(evalDs.name, evalDs.size, run);
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
    ...evaluation(run, evalDs),
    describe: `${trainDs.name} ${trainDs.length} objects, ${evalDs.name} ${evalDs.length}${trainDs.broken.length ? ` (${trainDs.broken.length} broken skipped)` : ""}; ${nf.n_support} support + ${nf.n_query} query views, ${nf.train_n_rays} rays × ${nf.n_samples} samples`,
    batchSize: t.batch_size,
    step: createNerfTrainStep(run.model, { ...adamOf(run), chunk: nf.chunk }),
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
  };
}
