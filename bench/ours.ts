/**
 * Our side of the interleaved benchmark, run by bench/bench.ts in a child process of its own:
 * the training step (forward, backward, clipping, Adam: one jitted function) and the decode
 * throughput of one benchmark configuration, printed as one JSON line on stdout.
 *
 * With --dump DIR it first writes what PyTorch needs to run the same work: DIR/cfg.json (the parsed
 * model config, batch, image size, the attention form used) and DIR/init.safetensors (the initial
 * weights under the reference's state_dict names, the images and the coordinate noise of the
 * first two steps). The losses and gradient norms of those two steps are in the JSON line, so
 * that bench/torch_step.py can be checked against the very function that is timed.
 *
 * The decode is also timed on ONNX Runtime's CPU engine (the model's exported graphs, the same
 * tokens and grid, as many threads as ours), after checking that it decodes what ours does.
 *
 * Flags: --config small|large|paper, --device wasm|webgpu (wasm), --steps N, --warmup N,
 *        --decode-size S (128), --decode-reps N (2), --no-ort, --dump DIR, --dump-only (write DIR
 *        and exit).
 */
// First: the worker pool and the environment switches (ANR_THREADS, ANR_ATTENTION), as for the CLI.
import "../src/node-startup.js";
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initBackend, readF32, wasmHeapBytes } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../src/model/config.js";
import { initHostParams, toDevice, toHost, countParams } from "../src/model/params.js";
import { foldAttention, hyperNetwork, type Params } from "../src/model/model.js";
import type { HypoParams } from "../src/model/hyponets/hyponet.js";
import { exportOnnx } from "../src/io/onnx.js";
import { createOrtImageCodec } from "../src/eval/ort.js";
import { createImageDecoder } from "../src/model/tasks.js";
import { serializeSafetensors } from "../src/io/safetensors.js";
import { adamInit, REFERENCE_ADAM } from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";
import { Rng } from "../src/util/rng.js";
import type { HostTensor } from "../src/util/host.js";
import { BENCH_CONFIGS, isBenchConfigName, type BenchConfig } from "./configs.js";
import { trainStepFlops } from "./flops.js";
import { median } from "./stats.js";

/** Points per ONNX Runtime decode call (ours uses the library's default blocks, gridChunk). */
const DECODE_CHUNK = 4096;

/** The attention form our model uses for `cfg` (ANR_ATTENTION or the cheaper one). */
export function attentionFormOf(cfg: HyperNetworkConfig): "folded" | "direct" {
  if (cfg.hyponet.name !== "ANR") throw new Error("the benchmark times ANR models only");
  return foldAttention(cfg.hyponet.args.hidden_dim, cfg.hyponet.args) ? "folded" : "direct";
}

/** The inputs of the benchmark: fixed images, and a coordinate-noise stream (one draw per step). */
export function benchInputs(bc: BenchConfig, seed = 0) {
  const rng = new Rng(seed);
  const { batch: b, size: s } = bc;
  const imgs = rng.fill(b * 3 * s * s, { lo: 0, hi: 1 });
  return { imgs, nextNoise: () => rng.fill(b * s * s * 2, { normal: true }) };
}

/**
 * Write the files bench/torch_step.py reads: the parsed config and the initial weights with the
 * images and the first two noise draws. Uses its own copy of the input stream.
 */
export function dumpForTorch(dir: string, name: string, bc: BenchConfig, cfg: HyperNetworkConfig): void {
  mkdirSync(dir, { recursive: true });
  const { batch: b, size: s } = bc;
  const inputs = benchInputs(bc);
  const tensors: [string, HostTensor][] = [...initHostParams(cfg, 0)];
  tensors.push(["input.imgs", { shape: [b, 3, s, s], data: inputs.imgs }]);
  for (const i of [0, 1])
    tensors.push([`input.noise.${i}`, { shape: [b, s, s, 2], data: inputs.nextNoise() }]);
  writeFileSync(join(dir, "init.safetensors"), serializeSafetensors(tensors));
  const meta = {
    name,
    config: cfg,
    batch: b,
    size: s,
    decode_batch: bc.decodeBatch,
    attention: attentionFormOf(cfg),
    adam: REFERENCE_ADAM,
  };
  writeFileSync(join(dir, "cfg.json"), JSON.stringify(meta, null, 1));
}

/**
 * The decode on ONNX Runtime: the model exported to ONNX, the same generated tokens and grid,
 * `threads` intra-op threads; the largest difference from our decode, then the timed calls
 * (after one untimed call on 64², as ours).
 */
async function ortDecode(
  cfg: HyperNetworkConfig,
  params: Params,
  gen: HypoParams,
  o: { db: number; size: number; reps: number; threads: number },
  ours: Float32Array,
): Promise<{ times: number[]; maxAbsDiff: number }> {
  const codec = await createOrtImageCodec(exportOnnx(cfg, await toHost(params), "bench model"), {
    threads: o.threads,
    chunk: DECODE_CHUNK,
  });
  try {
    const tokens = new Map<string, HostTensor>();
    for (const [k, a] of Object.entries(gen)) tokens.set(k, { shape: a.shape, data: await readF32(a.ref) });
    await codec.decode(tokens, 64, 64);
    const times: number[] = [];
    let out: Float32Array = new Float32Array(0);
    for (let i = 0; i < o.reps; i++) {
      const t0 = performance.now();
      out = await codec.decode(tokens, o.size, o.size);
      times.push(performance.now() - t0);
    }
    let maxAbsDiff = 0;
    for (let i = 0; i < out.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(out[i]! - ours[i]!));
    if (out.length !== ours.length) maxAbsDiff = Infinity;
    return { times, maxAbsDiff };
  } finally {
    await codec.dispose();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "small" },
      device: { type: "string", default: "wasm" },
      steps: { type: "string" },
      warmup: { type: "string" },
      "decode-size": { type: "string", default: "128" },
      "decode-reps": { type: "string", default: "2" },
      dump: { type: "string" },
      "dump-only": { type: "boolean", default: false },
      "no-ort": { type: "boolean", default: false },
    },
  });
  const name = values.config!;
  if (!isBenchConfigName(name)) throw new Error(`--config: unknown "${name}" (small, large, paper)`);
  const device = values.device;
  if (device !== "wasm" && device !== "webgpu")
    throw new Error(`--device: "${device}", expected wasm or webgpu`);
  const bc: BenchConfig = BENCH_CONFIGS[name];
  const cfg = parseHyperNetworkConfig(bc.model, `bench config ${name}`);
  const steps = Number(values.steps ?? bc.steps);
  const warmup = Number(values.warmup ?? bc.warmup);
  const decodeSize = Number(values["decode-size"]);
  const decodeReps = Number(values["decode-reps"]);
  if (values.dump) dumpForTorch(values.dump, name, bc, cfg);
  if (values["dump-only"]) return;

  const t00 = performance.now();
  const backend = await initBackend({ device });
  const { batch: b, size: s } = bc;
  const inputs = benchInputs(bc);
  const params = toDevice(initHostParams(cfg, 0));
  const { m, v } = adamInit(params);
  let state: TrainState = { params, m, v, step: 0 };
  const step = createImageTrainStep(cfg, { adam: REFERENCE_ADAM, clipNorm: 1 });
  // Host-side noise is drawn inside the timed region, as torch.randn is in PyTorch's step.
  const batch = () => ({
    imgs: np.array(inputs.imgs, { shape: [b, 3, s, s] }),
    noise: np.array(inputs.nextNoise(), { shape: [b, s, s, 2] }),
  });
  const times: number[] = [];
  const losses: number[] = [];
  const gradNorms: number[] = [];
  let cpu = 0;
  let wall = 0;
  let firstStepMs = NaN;
  for (let i = 0; i < warmup + steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const [next, metrics] = await step(state, [batch()]);
    const dt = performance.now() - t0;
    state = next;
    if (i === 0) firstStepMs = dt;
    losses.push(metrics.loss);
    gradNorms.push(metrics.gradNorm);
    if (i >= warmup) {
      times.push(dt);
      const c = process.cpuUsage(c0);
      cpu += (c.user + c.system) / 1000;
      wall += dt;
    }
  }
  step.dispose();
  const trainRss = process.resourceUsage().maxRSS / 1024;
  const trainHeap = wasmHeapBytes() / 2 ** 20;

  // Decode: R-tokens fixed, the hyponet alone on a decodeSize² grid. The untimed first call, at
  // the same size, compiles the block function: blocks are sized by the grid (square, up to
  // gridChunk points), so a smaller warm-up grid may compile another block shape.
  const db = bc.decodeBatch;
  const gen = hyperNetwork(
    state.params,
    cfg,
    np
      .array(inputs.imgs.subarray(0, db * 3 * s * s), { shape: [db, 3, s, s] })
      .mul(2)
      .sub(1),
  );
  const decode = createImageDecoder(cfg);
  await decode(state.params, gen, db, decodeSize, decodeSize);
  const dts: number[] = [];
  let decoded: Float32Array = new Float32Array(0);
  for (let i = 0; i < decodeReps; i++) {
    const t0 = performance.now();
    decoded = await decode(state.params, gen, db, decodeSize, decodeSize);
    dts.push(performance.now() - t0);
  }
  decode.dispose();
  const ort = values["no-ort"]
    ? null
    : await ortDecode(
        cfg,
        state.params,
        gen,
        { db, size: decodeSize, reps: decodeReps, threads: backend.threads },
        decoded,
      );
  const stepMs = median(times);
  const result = {
    side: "ours",
    config: name,
    backend: `jax-js ${backend.device}`,
    threads: backend.threads,
    attention: attentionFormOf(cfg),
    n_params: countParams(cfg),
    step_ms_median: stepMs,
    step_ms_all: times.map((t) => Math.round(t * 10) / 10),
    first_step_ms: firstStepMs,
    step_gflops: trainStepFlops(cfg, b, s, attentionFormOf(cfg)) / 1e9 / (stepMs / 1000),
    cpu_per_wall: cpu / wall,
    decode_batch: db,
    decode_pixels_per_s: (db * decodeSize * decodeSize) / (median(dts) / 1000),
    decode_ms_all: dts.map((t) => Math.round(t)),
    ...(ort
      ? {
          ort_decode_pixels_per_s: (db * decodeSize * decodeSize) / (median(ort.times) / 1000),
          ort_decode_ms_all: ort.times.map((t) => Math.round(t)),
          ort_max_abs_diff: ort.maxAbsDiff,
          ort_threads: backend.threads,
        }
      : {}),
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    train_peak_rss_mib: trainRss,
    train_device_heap_mib: trainHeap,
    device_heap_mib: wasmHeapBytes() / 2 ** 20,
    losses: losses.slice(0, 2),
    grad_norms: gradNorms.slice(0, 2),
    loss_last: losses.at(-1),
    total_ms: performance.now() - t00,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
