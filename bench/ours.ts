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
 * Flags: --config small|large, --steps N, --warmup N, --decode-size S (128), --decode-reps N (2),
 *        --dump DIR, --dump-only (write DIR and exit).
 */
// First: the worker pool and the environment switches (ANR_THREADS, ANR_ATTENTION), as for the CLI.
import "../src/node-startup.js";
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initBackend, wasmHeapBytes } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../src/model/config.js";
import { initHostParams, toDevice, countParams } from "../src/model/params.js";
import { foldAttention, hyperNetwork } from "../src/model/model.js";
import { createImageDecoder } from "../src/model/tasks.js";
import { serializeSafetensors } from "../src/io/safetensors.js";
import { adamInit, REFERENCE_ADAM } from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";
import { Rng } from "../src/util/rng.js";
import type { HostTensor } from "../src/util/host.js";
import { BENCH_CONFIGS, isBenchConfigName, type BenchConfig } from "./configs.js";
import { trainStepFlops } from "./flops.js";
import { median } from "./stats.js";

/** Points per decode chunk: bounds memory at any output size. */
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

async function main() {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "small" },
      steps: { type: "string" },
      warmup: { type: "string" },
      "decode-size": { type: "string", default: "128" },
      "decode-reps": { type: "string", default: "2" },
      dump: { type: "string" },
      "dump-only": { type: "boolean", default: false },
    },
  });
  const name = values.config!;
  if (!isBenchConfigName(name)) throw new Error(`--config: unknown "${name}" (small, large)`);
  const bc: BenchConfig = BENCH_CONFIGS[name];
  const cfg = parseHyperNetworkConfig(bc.model, `bench config ${name}`);
  const steps = Number(values.steps ?? bc.steps);
  const warmup = Number(values.warmup ?? bc.warmup);
  const decodeSize = Number(values["decode-size"]);
  const decodeReps = Number(values["decode-reps"]);
  if (values.dump) dumpForTorch(values.dump, name, bc, cfg);
  if (values["dump-only"]) return;

  const t00 = performance.now();
  const backend = await initBackend();
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

  // Decode: R-tokens fixed, the hyponet alone on a decodeSize² grid. The untimed first call
  // compiles the chunk function on one chunk (a 64² grid).
  const db = bc.decodeBatch;
  const gen = hyperNetwork(
    state.params,
    cfg,
    np
      .array(inputs.imgs.subarray(0, db * 3 * s * s), { shape: [db, 3, s, s] })
      .mul(2)
      .sub(1),
  );
  const decode = createImageDecoder(cfg, DECODE_CHUNK);
  await decode(state.params, gen, db, 64, 64);
  const dts: number[] = [];
  for (let i = 0; i < decodeReps; i++) {
    const t0 = performance.now();
    await decode(state.params, gen, db, decodeSize, decodeSize);
    dts.push(performance.now() - t0);
  }
  decode.dispose();
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
