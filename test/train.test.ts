import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { initBackend, readF32, readScalar, wasmHeapBytes } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import {
  initHostParams,
  toDevice,
  toHost,
  disposeParams,
  refParams,
  countParams,
} from "../src/model/params.js";
import type { Params } from "../src/model/model.js";
import {
  adamInit,
  clipByGlobalNorm,
  emaAction,
  emaUpdate,
  REFERENCE_EMA,
  globalNorm,
} from "../src/training/optim.js";
import { createImageTrainStep, createTrainStep, type TrainState } from "../src/training/step.js";
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

const PROBE = "ANR_HEAP_PROBE";
const probeSteps = { warmup: 10, steps: 30 };
if (process.env[PROBE] === "1") {
  // Child mode (see the test below): print both measures and stop before any test is declared.
  await initBackend();
  const leaky = await heapGrowth(true, probeSteps.warmup, probeSteps.steps);
  const clean = await heapGrowth(false, probeSteps.warmup, probeSteps.steps);
  console.log(`${PROBE} ${JSON.stringify({ leaky: leaky.growth, clean: clean.growth })}`);
  process.exit(0);
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

/**
 * Device-heap growth of `steps` image-training steps after `warmup` steps, as MiB, in this process.
 * With `leak`, each step keeps one extra reference to the parameters it consumed (a forgotten
 * dispose: one parameter set leaked per step); the leaked sets are returned, still alive. The heap
 * counter is a high-water mark, so a leak shows only once the allocator's free lists are used up:
 * hence a fresh process (the test below), where the leaky run goes first, on an empty heap, and its
 * leaked sets stay allocated while the clean run is measured, so that they cannot feed it.
 */
async function heapGrowth(
  leak: boolean,
  warmup: number,
  steps: number,
): Promise<{ growth: number; kept: Params[] }> {
  const cfg = parseHyperNetworkConfig(tinyConfig("ANR"));
  let state = freshState(cfg);
  const step = createImageTrainStep(cfg, {
    adam: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8 },
    clipNorm: 1,
  });
  const rng = new Rng(0);
  const data = images(3, 4);
  const kept: Params[] = [];
  let heapAfterWarmup = 0;
  for (let i = 0; i < warmup + steps; i++) {
    if (i === warmup) heapAfterWarmup = wasmHeapBytes();
    if (leak && i >= warmup) kept.push(refParams(state.params));
    const noise = np.array(rng.fill(4 * 16 * 16 * 2, { normal: true }), { shape: [4, 16, 16, 2] });
    [state] = await step(state, [{ imgs: np.array(data, { shape: [4, 3, 16, 16] }), noise }]);
  }
  const growth = (wasmHeapBytes() - heapAfterWarmup) / 2 ** 20;
  if (!leak)
    for (const a of Object.values(state.params)) assert.equal(a.refCount, 1, "each parameter is owned once");
  step.dispose();
  disposeState(state);
  return { growth, kept };
}

test("memory stays flat over 30 training steps, and the measure sees a leak of one parameter set per step", () => {
  // A fresh process, so that what earlier tests freed cannot hide or fake heap growth.
  const child = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
    env: { ...process.env, [PROBE]: "1" },
    encoding: "utf8",
  });
  const line = child.stdout.split("\n").find((l) => l.startsWith(PROBE));
  assert.ok(child.status === 0 && line, `heap probe failed (${child.status}):\n${child.stderr}`);
  const { leaky, clean } = JSON.parse(line.slice(PROBE.length + 1)) as { leaky: number; clean: number };
  const paramMiB = (countParams(parseHyperNetworkConfig(tinyConfig("ANR"))) * 4) / 2 ** 20;
  // Measured: clean 0 MiB; leaky 2.44 MiB, for 30 leaked sets of 0.084 MiB (the first few fill
  // free blocks instead of growing the heap). The clean bound is 6 leaked sets.
  assert.ok(clean <= 0.5, `device heap grew ${clean.toFixed(2)} MiB over ${probeSteps.steps} steps`);
  assert.ok(
    leaky >= 0.75 * probeSteps.steps * paramMiB,
    `a leak of ${paramMiB.toFixed(3)} MiB per step grew the heap by only ${leaky.toFixed(2)} MiB`,
  );
});

test("a training step is torch's Adam (bias-corrected) after clip_grad_norm_, on the mean gradient of its micro-batches", async () => {
  await initBackend();
  // loss = ½‖w − x̄‖² summed over coordinates, x̄ the mean row of the batch: its gradient is w − x̄.
  type B = { x: np.Array };
  const objective = (P: Params, b: B): [np.Array, np.Array] => {
    const xbar = np.sum(b.x.ref, 0).mul(1 / b.x.shape[0]!);
    b.x.dispose();
    const loss = np.sum(np.square(P.w!.sub(xbar))).mul(0.5);
    return [loss.ref, loss];
  };
  const adam = { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8 };
  const clip = 0.8;
  const w0 = [0.3, -0.2, 0.8, 0.1, -0.5];
  const k = w0.length;
  const steps = 6;
  // Per step, 2 micro-batches of 2 rows; targets drift so that some steps are clipped, some not.
  const rng = new Rng(4);
  const rows = Array.from({ length: steps }, (_, s) =>
    Array.from({ length: 4 }, () => Array.from({ length: k }, () => (rng.uniform() - 0.5) * (0.2 + 0.3 * s))),
  );

  // torch.optim.Adam (amsgrad off) after clip_grad_norm_(max_norm), in float64, written from their docs.
  const ref = { w: [...w0], m: new Array<number>(k).fill(0), v: new Array<number>(k).fill(0) };
  const refNorms: number[] = [];
  const refLosses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const halves = [rows[s]!.slice(0, 2), rows[s]!.slice(2)];
    const means = halves.map((h) => ref.w.map((_, j) => (h[0]![j]! + h[1]![j]!) / 2));
    // Micro-batch losses averaged; gradients of loss/G summed.
    refLosses.push(
      means.reduce((a, xb) => a + 0.5 * ref.w.reduce((q, wj, j) => q + (wj - xb[j]!) ** 2, 0), 0) / 2,
    );
    const g = ref.w.map((wj, j) => means.reduce((a, xb) => a + (wj - xb[j]!) / 2, 0));
    const norm = Math.hypot(...g);
    refNorms.push(norm);
    const coef = Math.min(1, clip / (norm + 1e-6));
    const t = s + 1;
    for (let j = 0; j < k; j++) {
      const gj = g[j]! * coef;
      ref.m[j] = adam.beta1 * ref.m[j]! + (1 - adam.beta1) * gj;
      ref.v[j] = adam.beta2 * ref.v[j]! + (1 - adam.beta2) * gj * gj;
      const denom = Math.sqrt(ref.v[j]!) / Math.sqrt(1 - adam.beta2 ** t) + adam.eps;
      ref.w[j] = ref.w[j]! - (adam.lr / (1 - adam.beta1 ** t)) * (ref.m[j]! / denom);
    }
  }
  const clipped = refNorms.filter((n) => n > clip).length;
  assert.ok(clipped > 0 && clipped < steps, `norms ${refNorms.map((n) => n.toFixed(3))}: both cases occur`);

  // The same steps with 2 micro-batches (accumulated) and with 1 batch of the 4 rows (fused step).
  for (const G of [2, 1]) {
    const step = createTrainStep<B>(objective, { adam, clipNorm: clip });
    const w = np.array(Float32Array.from(w0));
    let state: TrainState = { params: { w }, ...adamInit({ w }), step: 0 };
    const norms: number[] = [];
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const x = Float32Array.from(rows[s]!.flat());
      const micro =
        G === 2
          ? [0, 1].map((h) => ({ x: np.array(x.slice(2 * k * h, 2 * k * (h + 1)), { shape: [2, k] }) }))
          : [{ x: np.array(x, { shape: [4, k] }) }];
      const [next, m] = await step(state, micro);
      state = next;
      norms.push(m.gradNorm);
      losses.push(m.loss);
    }
    const got = await readF32(state.params.w!.ref);
    step.dispose();
    disposeState(state);
    // float32 against float64: measured ≤ 3.2e-8 on weights, 7.0e-8 on norms, 3.2e-8 on losses.
    const close = (a: number[], b: ArrayLike<number>, what: string) =>
      a.forEach((x, j) => assert.ok(Math.abs(x - b[j]!) < 1e-6, `G=${G} ${what}[${j}]: ${b[j]} vs ${x}`));
    close(ref.w, got, "w");
    close(refNorms, norms, "grad_norm");
    // With one batch of 4 rows the loss is of their mean; with 2 micro-batches, the mean of 2 losses.
    if (G === 2) close(refLosses, losses, "loss");
  }
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

test("EMA with other settings: warm-up epoch / inv_gamma, copy and skip calls of emaUpdate", async () => {
  // ema-pytorch 0.4.2 update(): act on calls with calls % update_every == 0; copy while
  // calls <= update_after_step; else decay = clamp(1 − (1 + epoch / inv_gamma)^−power, 0, β) with
  // epoch = (calls + 1) − update_after_step − 1 (its step counter is already incremented).
  const args = { beta: 0.9, updateEvery: 5, updateAfterStep: 20, invGamma: 4, power: 0.5 };
  const decay = (calls: number) => Math.min(0.9, 1 - (1 + (calls - 20) / 4) ** -0.5);
  assert.deepEqual(emaAction(args, 21), { kind: "skip" });
  assert.deepEqual(emaAction(args, 20), { kind: "copy" });
  for (const calls of [25, 60]) {
    const a = emaAction(args, calls) as { kind: string; decay: number };
    assert.equal(a.kind, "lerp");
    // 1/3 at 25 and 1 − 11^−½ = 0.698 at 60: below β, so the inv_gamma term decides.
    assert.ok(a.decay < 0.9 && Math.abs(a.decay - decay(calls)) < 1e-12, `${calls}: ${a.decay}`);
  }
  assert.equal((emaAction(args, 2000) as { decay: number }).decay, 0.9);

  await initBackend();
  const online = (): Params => ({ w: np.array([1, 2]), b: np.array([3]) });
  const read = async (p: Params) => ({ w: [...(await readF32(p.w!))], b: [...(await readF32(p.b!))] });
  // Copy (calls 0 and 20): every entry becomes the online weights.
  for (const calls of [0, 20]) {
    const P = online();
    const ema = emaUpdate({ w: np.array([0, 0]), b: np.array([5]) }, P, args, calls);
    assert.deepEqual(await read(ema), { w: [1, 2], b: [3] });
    disposeParams(P);
  }
  // Skip (call 21): unchanged.
  {
    const P = online();
    const ema = emaUpdate({ w: np.array([0, 0]), b: np.array([5]) }, P, args, 21);
    assert.deepEqual(await read(ema), { w: [0, 0], b: [5] });
    disposeParams(P);
  }
  // Lerp (call 60): e + (θ − e)(1 − decay) for every entry; float32, measured ≤ 3e-8.
  const P = online();
  const got = await read(emaUpdate({ w: np.array([0, 0]), b: np.array([5]) }, P, args, 60));
  disposeParams(P);
  const k = 1 - decay(60);
  const want = { w: [k, 2 * k], b: [5 + (3 - 5) * k] };
  for (const key of ["w", "b"] as const)
    want[key].forEach((x, i) =>
      assert.ok(Math.abs(got[key][i]! - x) < 1e-6, `${key}[${i}]: ${got[key][i]} vs ${x}`),
    );
});
