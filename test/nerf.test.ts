import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { readSafetensors } from "../src/io/safetensors.js";
import { readWeights } from "../src/io/weights.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { toDevice, disposeParams } from "../src/model/params.js";
import { adamInit } from "../src/training/optim.js";
import { createNerfTrainStep, type NerfBatch, type TrainState } from "../src/training/step.js";
import { jitterDepths, sampleDepths } from "../src/rendering/volume.js";
import { Rng } from "../src/util/rng.js";
import { golden } from "./fixtures.js";

test("view synthesis: the jitted NeRF step reproduces the golden loss, then fits the query view", async () => {
  await initBackend();
  const dir = join(golden, "anr_nerf");
  const gc = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as {
    hn: unknown;
    ppr: number;
    near: number;
    far: number;
    mini_batch: number;
  };
  const cfg = parseHyperNetworkConfig(gc.hn);
  const io = (await readSafetensors(join(dir, "io.safetensors"))).tensors;
  const dev = (k: string) => np.array(io.get(k)!.data, { shape: io.get(k)!.shape });
  const ids = Int32Array.from(io.get("ray_ids")!.data, Math.round);
  const batch = (z: Float32Array, zShape: number[], rayIds: Int32Array): NerfBatch => ({
    supportImgs: dev("support_imgs"),
    supportPoses: dev("support_poses"),
    supportFocals: dev("support_focals"),
    queryImgs: dev("query_imgs"),
    queryPoses: dev("query_poses"),
    queryFocals: dev("query_focals"),
    rayIds: np.array(rayIds, { dtype: np.int32 }),
    z: np.array(z, { shape: zShape }),
  });
  const params = toDevice(await readWeights(join(dir, "weights.safetensors"), cfg));
  const { m, v } = adamInit(params);
  let state: TrainState = { params, m, v, step: 0 };
  const step = createNerfTrainStep(cfg, {
    adam: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    clipNorm: null,
    chunk: gc.mini_batch,
  });

  // Step 1 with the golden rays and unjittered depths: its loss is the golden loss.
  let metrics;
  [state, metrics] = await step(state, [batch(sampleDepths(gc.near, gc.far, gc.ppr), [gc.ppr], ids)]);
  const goldenLoss = io.get("loss")!.data[0]!;
  assert.ok(
    Math.abs(metrics.loss - goldenLoss) / goldenLoss < 1e-5,
    `loss ${metrics.loss} vs golden ${goldenLoss}`,
  );

  // Then: random rays of the query view and jittered depths, as in training.
  const rng = new Rng(0);
  const nPix = 32 * 32;
  const losses: number[] = [];
  for (let i = 0; i < 40; i++) {
    const pick = Int32Array.from(rng.permutation(nPix).slice(0, 64));
    [state, metrics] = await step(state, [
      batch(jitterDepths(gc.near, gc.far, gc.ppr, 64, rng), [64, gc.ppr], pick),
    ]);
    assert.ok(Number.isFinite(metrics.loss));
    losses.push(metrics.loss);
  }
  const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
  assert.ok(last < 0.7 * first, `loss ${first.toFixed(4)} → ${last.toFixed(4)}`);
  step.dispose();
  for (const P of [state.params, state.m, state.v]) disposeParams(P);
});
