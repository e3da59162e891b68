import { test } from "node:test";
import assert from "node:assert/strict";
import { initBackend, readF32, readScalar, wasmHeapBytes } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { initHostParams, toDevice, toHost, disposeParams, refParams } from "../src/model/params.js";
import {
  adamInit,
  clipByGlobalNorm,
  emaAction,
  emaUpdate,
  REFERENCE_EMA,
  globalNorm,
} from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";
import { Rng } from "../src/util/rng.js";
import { tinyConfig } from "./fixtures.js";

function images(seed: number, b: number, s = 16): Float32Array {
  // Smooth, image-like patterns: different per instance, learnable by a small model.
  const rng = new Rng(seed);
  const out = new Float32Array(b * 3 * s * s);
  for (let i = 0; i < b; i++) {
    const [fx, fy, ph] = [rng.uniform() * 3, rng.uniform() * 3, rng.uniform() * 6];
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++)
          out[((i * 3 + c) * s + y) * s + x] = 0.5 + 0.4 * Math.sin(((fx * x + fy * y) / s) * 6 + ph + c);
  }
  return out;
}

function freshState(cfg: ReturnType<typeof parseHyperNetworkConfig>, seed = 0): TrainState {
  const params = toDevice(initHostParams(cfg, seed));
  const { m, v } = adamInit(params);
  return { params, m, v, step: 0 };
}

function disposeState(s: TrainState): void {
  disposeParams(s.params);
  disposeParams(s.m);
  disposeParams(s.v);
}

for (const kind of ["ANR", "HypoMlp", "HypoMlpIPC"] as const) {
  test(`train step: ${kind} fits a fixed batch (loss falls, jitted step)`, async () => {
    await initBackend();
    const cfg = parseHyperNetworkConfig(tinyConfig(kind));
    let state = freshState(cfg);
    const step = createImageTrainStep(cfg, {
      adam: { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8 },
      clipNorm: 1,
    });
    const data = images(1, 4);
    const losses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const [next, m] = await step(state, [{ imgs: np.array(data, { shape: [4, 3, 16, 16] }), noise: null }]);
      state = next;
      losses.push(m.loss);
      assert.ok(Number.isFinite(m.loss) && Number.isFinite(m.gradNorm));
    }
    assert.equal(state.step, 60);
    const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = losses.slice(-3).reduce((a, b) => a + b) / 3;
    assert.ok(last < 0.5 * first, `${kind}: loss ${first.toFixed(4)} → ${last.toFixed(4)}`);
    step.dispose();
    disposeState(state);
  });
}

test("gradient accumulation over 2 micro-batches equals one step on their union", async () => {
  await initBackend();
  const cfg = parseHyperNetworkConfig(tinyConfig("ANR"));
  const step = createImageTrainStep(cfg, {
    adam: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8 },
    clipNorm: 1,
  });
  const data = images(2, 4);
  const half = 2 * 3 * 16 * 16;
  const [a] = await step(freshState(cfg), [
    { imgs: np.array(data.slice(0, half), { shape: [2, 3, 16, 16] }), noise: null },
    { imgs: np.array(data.slice(half), { shape: [2, 3, 16, 16] }), noise: null },
  ]);
  const [b] = await step(freshState(cfg), [{ imgs: np.array(data, { shape: [4, 3, 16, 16] }), noise: null }]);
  const ha = await toHost(a.params);
  const hb = await toHost(b.params);
  let worst = 0;
  for (const [k, t] of ha)
    t.data.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - hb.get(k)!.data[i]!))));
  // Adam's first step moves each entry by ≈ lr·sign(g): any real difference would show as ~1e-3.
  assert.ok(worst < 2e-5, `max |Δθ| ${worst}`);
  step.dispose();
  disposeState(a);
  disposeState(b);
});

test("memory stays flat over 200 training steps (no leaked arrays)", async () => {
  await initBackend();
  const cfg = parseHyperNetworkConfig(tinyConfig("ANR"));
  let state = freshState(cfg);
  const step = createImageTrainStep(cfg, {
    adam: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8 },
    clipNorm: 1,
  });
  const rng = new Rng(0);
  const data = images(3, 4);
  let heapAfterWarmup = 0;
  for (let i = 0; i < 200; i++) {
    const noise = np.array(rng.fill(4 * 16 * 16 * 2, { normal: true }), { shape: [4, 16, 16, 2] });
    [state] = await step(state, [{ imgs: np.array(data, { shape: [4, 3, 16, 16] }), noise }]);
    if (i === 20) heapAfterWarmup = wasmHeapBytes();
  }
  const growth = (wasmHeapBytes() - heapAfterWarmup) / 2 ** 20;
  // One leaked copy of the parameters per step would add 180 × 0.2 MB.
  assert.ok(growth <= 1, `device heap grew ${growth.toFixed(2)} MiB between step 20 and 200`);
  for (const a of Object.values(state.params)) assert.equal(a.refCount, 1, "each parameter is owned once");
  step.dispose();
  disposeState(state);

  // The measure does see leaks: 64 undisposed 256 KiB arrays grow the heap by ≥ 16 MiB.
  const before = wasmHeapBytes();
  const leaked = [...Array(64).keys()].map((i) => np.array(new Float32Array(65536).fill(i)));
  await Promise.all(leaked.map((a) => a.blockUntilReady()));
  assert.ok(wasmHeapBytes() - before >= 15 * 2 ** 20, "leak detector sensitivity");
  for (const a of leaked) a.dispose();
});

test("clip_grad_norm_: scales to max_norm above it, leaves smaller gradients alone", async () => {
  await initBackend();
  const g = { a: np.array([3, 0]), b: np.array([[4]]) };
  const { grads, norm } = clipByGlobalNorm(refParams(g), 1);
  assert.equal(await readScalar(norm), 5);
  assert.ok(Math.abs((await readScalar(globalNorm(grads))) - 1) < 1e-5);
  const small = clipByGlobalNorm({ a: np.array([0.3, 0.4]) }, 1);
  assert.deepEqual(
    [...(await readF32(small.grads.a!))].map((x) => Math.round(x * 1e6) / 1e6),
    [0.3, 0.4],
  );
  small.norm.dispose();
  disposeParams(grads);
  disposeParams(g);
});

test("EMA follows ema-pytorch 0.4.2: every 10th call, copy until 100, then warm-up decay capped at β", async () => {
  assert.deepEqual(emaAction(REFERENCE_EMA, 0), { kind: "copy" });
  assert.deepEqual(emaAction(REFERENCE_EMA, 7), { kind: "skip" });
  assert.deepEqual(emaAction(REFERENCE_EMA, 100), { kind: "copy" });
  const a = emaAction(REFERENCE_EMA, 110);
  assert.equal(a.kind, "lerp");
  assert.ok(Math.abs((a as { decay: number }).decay - (1 - 11 ** (-2 / 3))) < 1e-12);
  assert.deepEqual(emaAction(REFERENCE_EMA, 1_000_000), { kind: "lerp", decay: 0.995 });
  await initBackend();
  const ema = emaUpdate({ w: np.array([0]) }, { w: np.array([1]) }, REFERENCE_EMA, 110);
  assert.ok(Math.abs((await readScalar(ema.w!)) - 11 ** (-2 / 3)) < 1e-6);
});
