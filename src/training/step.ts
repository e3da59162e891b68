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
import { imageObjective } from "../model/tasks.js";
import { adamScalars, adamUpdate, clipByGlobalNorm, type AdamArgs } from "./optim.js";

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
}

/** A batch of images: (B, C, H, W) in [0, 1], and coordinate noise (B, H, W, 2) ~ N(0, 1) or null. */
export interface ImageBatch {
  imgs: np.Array;
  noise: np.Array | null;
}

type Grads = { loss: np.Array; psnr: np.Array; grads: Params };

/**
 * Build the image training step. With `accumulate` > 1, call it with that many micro-batches:
 * gradients of the mean loss are summed before one update, as `loss / G` + backward in torch.
 */
export function createImageTrainStep(cfg: HyperNetworkConfig, args: TrainStepArgs) {
  // Optional arrays travel as 0- or 1-element lists: jit traces arrays and lists, not null.
  const objective = (P: Params, imgs: np.Array, noise: np.Array[]): [np.Array, np.Array] => {
    const out = imageObjective(P, cfg, imgs, noise[0]);
    out.pred.dispose();
    disposeParams(P);
    return [out.loss, out.psnr];
  };
  const lossAndGrad = (P: Params, imgs: np.Array, noise: np.Array[]): Grads => {
    const [[loss, psnr], grads] = valueAndGrad(objective, { hasAux: true })(P, imgs, noise);
    return { loss, psnr, grads };
  };
  const update = (P: Params, grads: Params, m: Params, v: Params, scalars: np.Array) => {
    let norm: np.Array;
    if (args.clipNorm !== null) ({ grads, norm } = clipByGlobalNorm(grads, args.clipNorm));
    else
      norm = np.sqrt(
        Object.values(grads)
          .map((g) => np.sum(np.square(g.ref)))
          .reduce((a, b) => a.add(b)),
      );
    return { ...adamUpdate(P, grads, m, v, scalars, args.adam), norm };
  };
  const fused = jit(
    (P: Params, m: Params, v: Params, imgs: np.Array, noise: np.Array[], scalars: np.Array) => {
      const g = lossAndGrad(refParams(P), imgs, noise);
      const u = update(P, g.grads, m, v, scalars);
      return { ...u, loss: g.loss, psnr: g.psnr };
    },
  );
  const gradOnly = jit((P: Params, imgs: np.Array, noise: np.Array[], scale: np.Array) => {
    const g = lossAndGrad(P, imgs, noise);
    const grads: Params = {};
    for (const [k, x] of Object.entries(g.grads)) grads[k] = x.mul(scale.ref);
    scale.dispose();
    return { loss: g.loss, psnr: g.psnr, grads };
  });
  const applyOnly = jit(update);

  async function trainStep(state: TrainState, batches: ImageBatch[]): Promise<[TrainState, StepMetrics]> {
    if (batches.length === 0) throw new Error("trainStep needs at least one micro-batch");
    const scalars = adamScalars(args.adam, state.step + 1);
    let out: { params: Params; m: Params; v: Params; norm: np.Array };
    let loss = 0;
    let psnr = 0;
    if (batches.length === 1) {
      const r = fused(state.params, state.m, state.v, batches[0]!.imgs, listOf(batches[0]!.noise), scalars);
      out = r;
      loss = await readScalar(r.loss);
      psnr = await readScalar(r.psnr);
    } else {
      let sum: Params | null = null;
      const scale = np.array([1 / batches.length]);
      for (const b of batches) {
        const r = gradOnly(refParams(state.params), b.imgs, listOf(b.noise), scale.ref);
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
    return [
      { params: out.params, m: out.m, v: out.v, step: state.step + 1 },
      { loss, psnr, gradNorm },
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

function listOf(x: np.Array | null): np.Array[] {
  return x === null ? [] : [x];
}

/** Jitted evaluation: loss, PSNR ([-1,1] convention) and the raw prediction of a batch. Borrows `P`. */
export function createImageEvalStep(cfg: HyperNetworkConfig) {
  const f = jit((P: Params, imgs: np.Array) => {
    const out = imageObjective(P, cfg, imgs);
    disposeParams(P);
    return out;
  });
  const evalStep = async (P: Params, imgs: np.Array) => {
    const out = f(refParams(P), imgs);
    const loss = await readScalar(out.loss);
    const psnr = await readScalar(out.psnr);
    return { loss, psnr, pred: out.pred };
  };
  evalStep.dispose = () => f.dispose();
  return evalStep;
}
