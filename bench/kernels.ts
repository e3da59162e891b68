/**
 * The wasm engine's matrix products and kernel dispatch, alone: the figures behind the jax-js patch
 * (patches/README.md). Prints a table and one JSON line.
 *
 *   ANR_THREADS=1 node --import tsx bench/kernels.ts    # products on one thread: GFLOP/s per core
 *   node --import tsx bench/kernels.ts                   # and the dispatch cost with the worker pool
 *
 * Products: the training step's shapes (bench config: 8 instances, 1,024 points, hidden 128,
 * h·T = 384) in each operand layout, plus 2-D ones; the least time of --reps calls of a jitted
 * product (2 FLOPs per multiply-add). Dispatch: a jitted chain of 200 small dependent products
 * (8 × 8, each its own kernel), time per kernel, least and median over --reps calls; with the
 * worker pool this is the pool's round trip, without it a synchronous call.
 *
 * Flags: --reps N (8), --only TEXT (cases whose name contains it).
 */
import "../src/node-startup.js";
import { parseArgs } from "node:util";
import { cpus, loadavg } from "node:os";
import { initBackend } from "../src/backend/index.js";
import { numpy as np, jit, blockUntilReady } from "../src/backend/jax.js";
import { median } from "./stats.js";

const { values } = parseArgs({
  options: { reps: { type: "string", default: "8" }, only: { type: "string" } },
});
const REPS = Number(values.reps);
const backend = await initBackend({});

const [B, N, D, HT] = [8, 1024, 128, 384];
type Product = (a: np.Array, b: np.Array) => np.Array;
const t = (x: np.Array) => x.transpose([0, 2, 1]);
const CASES: { name: string; a: number[]; b: number[]; f: Product; flops: number }[] = [
  {
    name: "(8,1024,128) @ (8,128,384)",
    a: [B, N, D],
    b: [B, D, HT],
    f: np.matmul,
    flops: 2 * B * N * D * HT,
  },
  {
    name: "(8,1024,128) @ (8,384,128)ᵀ",
    a: [B, N, D],
    b: [B, HT, D],
    f: (a, b) => np.matmul(a, t(b)),
    flops: 2 * B * N * D * HT,
  },
  {
    name: "(8,1024,384)ᵀ @ (8,1024,128)",
    a: [B, N, HT],
    b: [B, N, D],
    f: (a, b) => np.matmul(t(a), b),
    flops: 2 * B * N * D * HT,
  },
  { name: "(8,1024,128) @ (128,384)", a: [B, N, D], b: [D, HT], f: np.matmul, flops: 2 * B * N * D * HT },
  { name: "(8192,128) @ (128,128)", a: [B * N, D], b: [D, D], f: np.matmul, flops: 2 * B * N * D * D },
  {
    name: "(8192,128)ᵀ @ (8192,128)",
    a: [B * N, D],
    b: [B * N, D],
    f: (a, b) => np.matmul(a.transpose(), b),
    flops: 2 * B * N * D * D,
  },
];

async function timed(call: () => np.Array): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < REPS + 1; i++) {
    const t0 = performance.now();
    const y = call();
    await blockUntilReady(y);
    if (i > 0) ms.push(performance.now() - t0); // the first call compiles
    y.dispose();
  }
  return ms;
}

const load0 = loadavg()[0]!;
const products: { name: string; ms: number; gflops: number }[] = [];
for (const c of CASES) {
  if (values.only && !c.name.includes(values.only)) continue;
  const f = jit(c.f);
  const a = np.ones(c.a).mul(0.5);
  const b = np.ones(c.b).mul(0.25);
  const ms = Math.min(...(await timed(() => f(a.ref, b.ref))));
  products.push({ name: c.name, ms, gflops: c.flops / ms / 1e6 });
  a.dispose();
  b.dispose();
}

const KERNELS = 200;
const chain = jit((x: np.Array, w: np.Array) => {
  for (let i = 0; i < KERNELS; i++) x = np.sin(np.matmul(x, w.ref));
  w.dispose();
  return x;
});
const x = np.ones([8, 8]).mul(0.1);
const w = np.ones([8, 8]).mul(0.01);
const perKernel = (await timed(() => chain(x.ref, w.ref))).map((ms) => (ms / KERNELS) * 1000);
const dispatch = { least_us: Math.min(...perKernel), median_us: median(perKernel) };

console.log(
  `${cpus()[0]?.model ?? "?"}, ${backend.threads} kernel thread(s), load ${load0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`,
);
console.log("| product | ms | GFLOP/s |\n|---|---|---|");
for (const p of products) console.log(`| ${p.name} | ${p.ms.toFixed(1)} | ${p.gflops.toFixed(1)} |`);
console.log(
  `dispatch, ${KERNELS} small kernels in one jitted call: ${dispatch.least_us.toFixed(1)} µs per kernel (least), ${dispatch.median_us.toFixed(1)} (median)`,
);
console.log(JSON.stringify({ threads: backend.threads, load: [load0, loadavg()[0]], products, dispatch }));
process.exit(0);
