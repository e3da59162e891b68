/**
 * Pure, jitted training and evaluation steps (flax style): `trainStep(state, batch)` returns the
 * new state and a plain record of metrics. The whole step — forward, backward, gradient
 * clipping and Adam — is one jit-compiled function, so jax-js fuses it into few kernels.
 */
import { numpy as np, jit, valueAndGrad } from "../backend/jax.js";
import { readScalar } from "../backend/index.js";
import type { HyperNetworkConfig } from "../model/config.js";
import type { Params } from "../model/model.js";
import { disposeParams, refParams } from "../model/params.js";
import { imageObjective, nerfObjective, type RayBatch } from "../model/tasks.js";
import { posesToRays } from "../rendering/rays.js";
import { adamScalars, adamUpdate, clipByGlobalNorm, globalNorm, type AdamArgs } from "./optim.js";

/** Everything that changes during training. */
export interface TrainState {
  params: Params;
  /** Adam first moments. */
  m: Params;
  /** Adam second moments. */
  v: Params;
  /** Optimiser steps taken. */
  step: number;
}

/** Options of a training step. */
export interface TrainStepArgs {
  adam: AdamArgs;
  /** Clip the global gradient norm to this value (the reference: 1.0); null disables. */
  clipNorm: number | null;
}

/** Metrics of one step, as plain numbers. */
export interface StepMetrics {
  loss: number;
  psnr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /**
   * The loss or the gradient norm was not finite, so the update was skipped: parameters and Adam
   * moments are those before the step (only the step count moves on, past the batch).
   */
  skipped: boolean;
}

/** A batch of images: (B, C, H, W) in [0, 1], and coordinate noise (B, H, W, 2) ~ N(0, 1) or null. */
export interface ImageBatch {
  imgs: np.Array;
  noise: np.Array | null;
}

/** A batch as the jitted step sees it: named arrays or lists of arrays (jit traces no nulls). */
export type StepBatch = { [name: string]: np.Array | np.Array[] };

/** Loss and PSNR of one batch; consumes `P` and the batch. */
export type Objective<B extends StepBatch> = (P: Params, batch: B) => [np.Array, np.Array];

type Grads = { loss: np.Array; psnr: np.Array; grads: Params };

/**
 * Build a training step for any objective. Called with several micro-batches, it sums the
 * gradients of the mean loss before one update, as `loss / G` + backward does in torch.
 */
export function createTrainStep<B extends StepBatch>(objective: Objective<B>, args: TrainStepArgs) {
  // jax-js's transformation types do not see through a generic batch type; the casts restate them.
  const vg = valueAndGrad(objective, { hasAux: true }) as unknown as (
    P: Params,
    b: B,
  ) => [[np.Array, np.Array], Params];
  const lossAndGrad = (P: Params, batch: B): Grads => {
    const [[loss, psnr], grads] = vg(P, batch);
    return { loss, psnr, grads };
  };
  const update = (P: Params, grads: Params, m: Params, v: Params, scalars: np.Array) => {
    let norm: np.Array;
    if (args.clipNorm !== null) ({ grads, norm } = clipByGlobalNorm(grads, args.clipNorm));
    else norm = globalNorm(grads);
    return { ...adamUpdate(P, grads, m, v, scalars, args.adam), norm };
  };
  type Updated = { params: Params; m: Params; v: Params; norm: np.Array };
  const fused = jit((P: Params, m: Params, v: Params, batch: StepBatch, scalars: np.Array) => {
    const g = lossAndGrad(refParams(P), batch as B);
    const u = update(P, g.grads, m, v, scalars);
    return { ...u, loss: g.loss, psnr: g.psnr };
  }) as unknown as ((
    P: Params,
    m: Params,
    v: Params,
    batch: B,
    scalars: np.Array,
  ) => Updated & { loss: np.Array; psnr: np.Array }) & { dispose(): void };
  const gradOnly = jit((P: Params, batch: StepBatch, scale: np.Array) => {
    const g = lossAndGrad(P, batch as B);
    const grads: Params = {};
    for (const [k, x] of Object.entries(g.grads)) grads[k] = x.mul(scale.ref);
    scale.dispose();
    return { loss: g.loss, psnr: g.psnr, grads };
  }) as unknown as ((P: Params, batch: B, scale: np.Array) => Grads) & { dispose(): void };
  const applyOnly = jit(update);

  async function trainStep(state: TrainState, batches: B[]): Promise<[TrainState, StepMetrics]> {
    if (batches.length === 0) throw new Error("trainStep needs at least one micro-batch");
    // Kept until the step is known to be finite: a NaN or infinite step must not reach them.
    const before = { params: refParams(state.params), m: refParams(state.m), v: refParams(state.v) };
    const scalars = adamScalars(args.adam, state.step + 1);
    let out: { params: Params; m: Params; v: Params; norm: np.Array };
    let loss = 0;
    let psnr = 0;
    if (batches.length === 1) {
      const r = fused(state.params, state.m, state.v, batches[0]!, scalars);
      out = r;
      loss = await readScalar(r.loss);
      psnr = await readScalar(r.psnr);
    } else {
      let sum: Params | null = null;
      const scale = np.array([1 / batches.length]);
      for (const b of batches) {
        const r = gradOnly(refParams(state.params), b, scale.ref);
        loss += (await readScalar(r.loss)) / batches.length;
        psnr += (await readScalar(r.psnr)) / batches.length;
        const prev: Params | null = sum;
        sum =
          prev === null
            ? r.grads
            : Object.fromEntries(Object.entries(prev).map(([k, s]) => [k, (s as np.Array).add(r.grads[k]!)]));
      }
      scale.dispose();
      out = applyOnly(state.params, sum!, state.m, state.v, scalars);
    }
    const gradNorm = await readScalar(out.norm);
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    const [kept, dropped] = skipped ? [before, out] : [out, before];
    for (const P of [dropped.params, dropped.m, dropped.v]) disposeParams(P);
    return [
      { params: kept.params, m: kept.m, v: kept.v, step: state.step + 1 },
      { loss, psnr, gradNorm, skipped },
    ];
  }
  /** Release the compiled kernels. */
  trainStep.dispose = () => {
    fused.dispose();
    gradOnly.dispose();
    applyOnly.dispose();
  };
  return trainStep;
}

/** The image training step (the reference's `forward_image` loss, optional coordinate noise). */
export function createImageTrainStep(cfg: HyperNetworkConfig, args: TrainStepArgs) {
  type B = { imgs: np.Array; noise: np.Array[] };
  const step = createTrainStep<B>((P, b) => {
    const out = imageObjective(P, cfg, b.imgs, b.noise[0]);
    out.pred.dispose();
    disposeParams(P);
    return [out.loss, out.psnr];
  }, args);
  const trainStep = (state: TrainState, batches: ImageBatch[]) =>
    step(
      state,
      batches.map((b) => ({ imgs: b.imgs, noise: b.noise === null ? [] : [b.noise] })),
    );
  trainStep.dispose = step.dispose;
  return trainStep;
}

/** A view-synthesis batch (docs/conventions.md §8.2, §9): support views, a query view, chosen rays. */
export type NerfBatch = {
  /** Support views (B, n, 3, H, W) in [0, 1]. */
  supportImgs: np.Array;
  /** (B, n, 3, 4) camera-to-world. */
  supportPoses: np.Array;
  /** (B, n, 2) [f_x, f_y]. */
  supportFocals: np.Array;
  /** Query views (B, q, 3, H, W), the ground truth. */
  queryImgs: np.Array;
  queryPoses: np.Array;
  queryFocals: np.Array;
  /** Indices of the trained rays into the flattened query pixels (R,), int32; the same for every batch element. */
  rayIds: np.Array;
  /** Sample depths (R, P), jittered during training, or (P). */
  z: np.Array;
};

/** The view-synthesis training step: random rays of the query views, volume-rendered, L2 loss. */
export function createNerfTrainStep(cfg: HyperNetworkConfig, args: TrainStepArgs & { chunk?: number }) {
  return createTrainStep<NerfBatch>((P, b) => {
    const out = nerfObjective(
      P,
      cfg,
      { imgs: b.supportImgs, poses: b.supportPoses, focals: b.supportFocals },
      ...queryRays(b),
      args.chunk ?? Infinity,
    );
    out.pred.dispose();
    disposeParams(P);
    return [out.loss, out.psnr];
  }, args);
}

/** Rays and ground-truth colours of a NeRF batch's chosen query pixels. */
export function queryRays(b: NerfBatch): [RayBatch, np.Array] {
  const [bs, q, , h, w] = b.queryImgs.shape as [number, number, number, number, number];
  const [o, d] = posesToRays(b.queryPoses, b.queryFocals, h, w);
  const take = (x: np.Array) => np.take(x.reshape([bs, q * h * w, 3]), b.rayIds.ref, 1);
  const gt = take(b.queryImgs.transpose([0, 1, 3, 4, 2]));
  const rays = { o: take(o), d: take(d), z: b.z };
  b.rayIds.dispose();
  return [rays, gt];
}
