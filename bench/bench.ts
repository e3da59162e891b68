/**
 * `npm run bench`: speed and memory of the fixed benchmark configuration (batch 8 of 32×32
 * images, dim 128, 2 + 2 transformer layers, 64 R-tokens, ANR depth 3), and — where Debian's
 * python3-torch is installed — the same model in PyTorch (bench/torch_step.py), timed in the
 * same run, one after the other, with the ratio. Prints a table and one JSON line.
 *
 * Flags: --steps N (timed steps, default 10), --warmup N (3), --threads-torch N (1),
 *        --no-torch, --decode-size S (128).
 */
// First: the worker pool and the environment switches (ANR_ATTENTION), as for the CLI.
import "../src/node-startup.js";
import { parseArgs } from "node:util";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { initBackend, wasmHeapBytes } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../src/model/config.js";
import { initHostParams, toDevice, countParams } from "../src/model/params.js";
import { hyperNetwork } from "../src/model/model.js";
import { createImageDecoder } from "../src/model/tasks.js";
import { adamInit, REFERENCE_ADAM } from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";
import { Rng } from "../src/util/rng.js";
import { modelPreset } from "../src/model/presets.js";

/** The benchmark model: the `small32-anr` preset (the Fashion-MNIST anchor's ANR at 32×32). */
export const BENCH_MODEL = modelPreset("small32-anr");

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    "threads-torch": { type: "string", default: "1" },
    "no-torch": { type: "boolean", default: false },
    "decode-size": { type: "string", default: "128" },
  },
});
const STEPS = Number(values.steps);
const WARMUP = Number(values.warmup);
const DECODE = Number(values["decode-size"]);
const B = 8;
/** Points per decode chunk: bounds memory at any output size. */
const DECODE_CHUNK = 4096;
const S = 32;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function benchJax(cfg: HyperNetworkConfig) {
  const backend = await initBackend();
  const rng = new Rng(0);
  const params = toDevice(initHostParams(cfg, 0));
  const { m, v } = adamInit(params);
  let state: TrainState = { params, m, v, step: 0 };
  const step = createImageTrainStep(cfg, { adam: REFERENCE_ADAM, clipNorm: 1 });
  const imgs = rng.fill(B * 3 * S * S, { lo: 0, hi: 1 });
  const batch = () => ({
    imgs: np.array(imgs, { shape: [B, 3, S, S] }),
    noise: np.array(rng.fill(B * S * S * 2, { normal: true }), { shape: [B, S, S, 2] }),
  });
  const times: number[] = [];
  let cpu = 0;
  let wall = 0;
  let firstLoss = NaN;
  let lastLoss = NaN;
  for (let i = 0; i < WARMUP + STEPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const [next, metrics] = await step(state, [batch()]);
    const dt = performance.now() - t0;
    state = next;
    if (i === 0) firstLoss = metrics.loss;
    lastLoss = metrics.loss;
    if (i >= WARMUP) {
      times.push(dt);
      const c = process.cpuUsage(c0);
      cpu += (c.user + c.system) / 1000;
      wall += dt;
    }
  }
  step.dispose();
  const trainHeap = wasmHeapBytes() / 2 ** 20;
  const trainRss = process.resourceUsage().maxRSS / 1024;

  // Decode: fixed R-tokens, the hyponet alone on a DECODE² grid.
  const gen = hyperNetwork(
    state.params,
    cfg,
    np
      .array(imgs, { shape: [B, 3, S, S] })
      .mul(2)
      .sub(1),
  );
  const decode = createImageDecoder(cfg, DECODE_CHUNK);
  await decode(state.params, gen, B, DECODE, DECODE);
  const dts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await decode(state.params, gen, B, DECODE, DECODE);
    dts.push(performance.now() - t0);
  }
  decode.dispose();
  return {
    backend: `jax-js ${backend.device}`,
    threads: backend.threads,
    step_ms_median: median(times),
    step_ms_all: times.map((t) => Math.round(t)),
    cpu_per_wall: cpu / wall,
    decode_pixels_per_s: (B * DECODE * DECODE) / (median(dts) / 1000),
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    train_peak_rss_mib: trainRss,
    train_device_heap_mib: trainHeap,
    device_heap_mib: wasmHeapBytes() / 2 ** 20,
    loss_first: firstLoss,
    loss_last: lastLoss,
  };
}

function findTorchPython(): string | null {
  for (const py of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(py, ["-c", "import torch"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  return null;
}

function benchTorch(): Record<string, unknown> | { skipped: string } {
  if (values["no-torch"]) return { skipped: "--no-torch" };
  const py = findTorchPython();
  if (!py)
    return { skipped: "python3-torch is not installed (apt-get install python3-torch libopenblas0-pthread)" };
  const script = join(import.meta.dirname, "torch_step.py");
  const r = spawnSync(
    py,
    [
      script,
      "--json",
      "--threads",
      values["threads-torch"]!,
      "--steps",
      String(STEPS),
      "--warmup",
      String(WARMUP),
      "--decode-size",
      String(DECODE),
    ],
    {
      encoding: "utf8",
      env: {
        ...process.env,
        OPENBLAS_NUM_THREADS: values["threads-torch"]!,
        OMP_NUM_THREADS: values["threads-torch"]!,
      },
    },
  );
  if (r.status !== 0) return { skipped: `torch_step.py failed: ${r.stderr.slice(-500)}` };
  const line = r.stdout.trim().split("\n").at(-1)!;
  const blas = existsSync("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3")
    ? "OpenBLAS installed"
    : "reference BLAS (slow: install libopenblas0-pthread)";
  return { ...(JSON.parse(line) as Record<string, unknown>), blas };
}

const cfg = parseHyperNetworkConfig(BENCH_MODEL, "bench model");
console.log(
  `bench: ANR, ${countParams(cfg).toLocaleString("en")} parameters; batch ${B} of ${S}×${S}; ${WARMUP} warm-up + ${STEPS} timed steps`,
);
const jax = await benchJax(cfg);
const torch = benchTorch();
const fmt = (x: unknown, d = 1) => (typeof x === "number" ? x.toFixed(d) : String(x ?? "-"));
console.log("");
console.log(`| measure | ours (${jax.backend}, ${jax.threads} threads) | PyTorch | ratio ours/torch |`);
console.log("|---|---|---|---|");
const t = torch as Record<string, number | undefined>;
const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) + "×" : "-");
console.log(
  `| train step, median ms | ${fmt(jax.step_ms_median)} | ${fmt(t.step_ms_median)} | ${ratio(jax.step_ms_median, t.step_ms_median)} |`,
);
console.log(
  `| decode ${DECODE}², pixels/s | ${fmt(jax.decode_pixels_per_s, 0)} | ${fmt(t.decode_pixels_per_s, 0)} | ${ratio(jax.decode_pixels_per_s, t.decode_pixels_per_s)} |`,
);
console.log(
  `| peak RSS, MiB | ${fmt(jax.peak_rss_mib)} | ${fmt(t.peak_rss_mib)} | ${ratio(jax.peak_rss_mib, t.peak_rss_mib)} |`,
);
console.log(`| CPU time / wall time in training | ${fmt(jax.cpu_per_wall, 2)} | | |`);
console.log(`| peak RSS after training only, MiB | ${fmt(jax.train_peak_rss_mib)} | | |`);
console.log(
  `| device (wasm) heap: training / with decode, MiB | ${fmt(jax.train_device_heap_mib)} / ${fmt(jax.device_heap_mib)} | | |`,
);
if ("skipped" in torch) console.log(`PyTorch baseline skipped: ${torch.skipped}`);
else console.log(`PyTorch ${t.torch} with ${t.threads} thread(s), ${(torch as { blas: string }).blas}`);
console.log(JSON.stringify({ ours: jax, torch }));
