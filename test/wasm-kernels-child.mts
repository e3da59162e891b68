/**
 * Run by test/wasm-kernels.test.ts in a process of its own, with the kernel thread count the test
 * sets in ANR_THREADS. Prints one JSON line:
 *   - products: for each batched matrix product case, the largest ratio of its error against the
 *     float64 product to the float32 summation bound γ(k+1)·Σ|a||b| (≤ 1 when correct);
 *   - chainMismatches: how many of the 64 × 64 results of a jitted chain of 300 dependent
 *     products differ from the exact answer;
 *   - simdMismatches: for exp, 1/x, sin, cos, erf and erfc, how many of 2^16 values (and NaN, ±∞,
 *     ±0, tiny and huge ones) differ in their bits between the SIMD kernel (a length that is a
 *     multiple of 4) and the scalar one (one element more, which keeps a kernel off SIMD).
 */
import "../src/node-startup.js";
import { initBackend } from "../src/backend/index.js";
import { numpy as np, jit, scipySpecial } from "../src/backend/jax.js";
import { Rng } from "../src/util/rng.js";

await initBackend({});
const rng = new Rng(11);
const U = 2 ** -24;

type Layout = "nn" | "nt" | "tn" | "tt" | "shared-b";
/** (batch, rows, reduced, columns) and how each operand is stored. */
const CASES: [number, number, number, number, Layout][] = [];
for (const layout of ["nn", "nt", "tn", "tt", "shared-b"] as Layout[]) {
  // 64 rows × 48 columns: whole micro-tiles; 3 × 8: a batch ends inside a micro-tile of two rows; 6 × 12:
  // batches end on micro-tile edges; 1 row; and odd sizes that leave SIMD for scalar code.
  for (const shape of [
    [8, 64, 32, 48],
    [4, 3, 20, 8],
    [4, 3, 16, 8],
    [4, 6, 12, 12],
    [5, 1, 16, 4],
    [2, 5, 7, 9],
  ] as const)
    CASES.push([...shape, layout]);
}

async function product(bn: number, n: number, k: number, m: number, layout: Layout): Promise<number> {
  const a = rng.fill(bn * n * k, { lo: -1, hi: 1 }); // (b, n, k), row-major
  const bShared = layout === "shared-b";
  const b = rng.fill((bShared ? 1 : bn) * k * m, { lo: -1, hi: 1 }); // (b, k, m)
  const aT = layout === "tn" || layout === "tt";
  const bT = layout === "nt" || layout === "tt";
  // The operands as stored: transposed ones are held as (b, k, n) / (b, m, k) and transposed back.
  const store = (x: Float32Array, bb: number, r: number, c: number, t: boolean) => {
    if (!t) return np.array(x).reshape([bb, r, c]);
    const y = new Float32Array(x.length);
    for (let s = 0; s < bb; s++)
      for (let i = 0; i < r; i++)
        for (let j = 0; j < c; j++) y[s * r * c + j * r + i] = x[s * r * c + i * c + j]!;
    return np.array(y).reshape([bb, c, r]).transpose([0, 2, 1]);
  };
  const f = jit((x: np.Array, y: np.Array) => np.matmul(x, y));
  const A = store(a, bn, n, k, aT);
  const B = bShared ? np.array(b).reshape([k, m]) : store(b, bn, k, m, bT);
  const out = (await f(A, B).data()) as Float32Array;
  const gamma = ((k + 1) * U) / (1 - (k + 1) * U);
  let worst = 0;
  for (let s = 0; s < bn; s++)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let sum = 0;
        let abs = 0;
        for (let l = 0; l < k; l++) {
          const p = a[s * n * k + i * k + l]! * b[(bShared ? 0 : s) * k * m + l * m + j]!;
          sum += p;
          abs += Math.abs(p);
        }
        const err = Math.abs(out[s * n * m + i * m + j]! - sum);
        worst = Math.max(worst, err / (gamma * abs + Number.MIN_VALUE));
      }
  return worst;
}

const products: { name: string; ratio: number }[] = [];
for (const [bn, n, k, m, layout] of CASES)
  products.push({
    name: `${layout} (${bn}, ${n}, ${k}) @ (${k}, ${m})`,
    ratio: await product(bn, n, k, m, layout),
  });

// The chain: x ← P·x + 1, 300 times, P a permutation that moves every row to the other half,
// so that each product's rows on one worker read rows another worker wrote one kernel earlier.
// Every value is a small integer, so the float32 result is exact: P^300·x0 + 300.
const S = 64;
const SHIFT = 33;
const perm = new Float32Array(S * S);
for (let i = 0; i < S; i++) perm[i * S + ((i + SHIFT) % S)] = 1;
const x0 = Float32Array.from({ length: S * S }, () => rng.int(1000));
const STEPS = 300;
const chain = jit((p: np.Array, x: np.Array) => {
  for (let i = 0; i < STEPS; i++) x = np.matmul(p.ref, x).add(1);
  p.dispose();
  return x;
});
const got = (await chain(
  np.array(perm).reshape([S, S]),
  np.array(x0).reshape([S, S]),
).data()) as Float32Array;
let chainMismatches = 0;
for (let i = 0; i < S; i++)
  for (let j = 0; j < S; j++)
    if (got[i * S + j] !== x0[((i + STEPS * SHIFT) % S) * S + j]! + STEPS) chainMismatches++;
const n = 2 ** 16;
const xs = new Float32Array(n + 8);
for (let i = 0; i < n; i++) xs[i] = -200 + (400 * i) / n + (i % 7) * 1e-3;
xs.set([NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-30, 3e38], n);
const padded = new Float32Array(xs.length + 1);
padded.set(xs);
const simdMismatches: Record<string, number> = {};
for (const [name, f] of [
  ["exp", (x: np.Array) => np.exp(x)],
  ["reciprocal", (x: np.Array) => np.reciprocal(x)],
  ["sin", (x: np.Array) => np.sin(x)],
  ["cos", (x: np.Array) => np.cos(x)],
  ["erf", (x: np.Array) => scipySpecial.erf(x)],
  ["erfc", (x: np.Array) => scipySpecial.erfc(x)],
] as const) {
  const g = jit(f);
  const simd = new Uint32Array(((await g(np.array(xs)).data()) as Float32Array).buffer);
  const scalar = new Uint32Array(((await g(np.array(padded)).data()) as Float32Array).buffer);
  simdMismatches[name] = simd.reduce((count, bits, i) => count + (bits !== scalar[i] ? 1 : 0), 0);
}
console.log(
  JSON.stringify({ threads: Number(process.env.ANR_THREADS), products, chainMismatches, simdMismatches }),
);
process.exit(0);
