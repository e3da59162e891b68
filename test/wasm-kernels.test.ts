/**
 * The wasm engine's kernels as patched in patches/ (jax-js): batched matrix products in every
 * operand layout, where a micro-tile's rows share their loads of the per-batch operand only when
 * they lie in one batch, and the worker pool's batches, where each kernel must see what every
 * worker wrote in the kernels before it; and the SIMD forms of exp, 1/x, sin, cos, erf and erfc,
 * which must give the scalar forms' bits. The checks run in a child process with two kernel
 * threads, so that the pool is there whatever this machine's core count.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./cli-helpers.js";

interface ChildOut {
  threads: number;
  products: { name: string; ratio: number }[];
  chainMismatches: number;
  simdMismatches: Record<string, number>;
}

function runChild(threads: number): ChildOut {
  const r = spawnSync(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), join(REPO, "test", "wasm-kernels-child.mts")],
    { cwd: REPO, env: { ...process.env, ANR_THREADS: String(threads) }, encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(r.status, 0, `child with ${threads} threads exited with ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ChildOut;
}

for (const threads of [2, 1]) {
  test(`wasm kernels, ${threads} thread(s): batched products within the float32 summation bound, a 300-kernel chain exact, SIMD functions bit for bit`, () => {
    const out = runChild(threads);
    assert.equal(out.threads, threads);
    assert.equal(out.products.length, 30);
    // The bound γ(k+1)·Σ|a||b| holds for any order of float32 sums and products; a row that read
    // another batch's operand is off by the size of the values, about 10^5–10^6 bounds.
    for (const p of out.products)
      assert.ok(p.ratio <= 1, `${p.name}: error ${p.ratio.toFixed(3)} × the bound`);
    assert.equal(out.chainMismatches, 0, "results of the chain that differ from P^300·x0 + 300");
    // The SIMD forms of these functions do the scalar ones' float32 operations lane by lane.
    assert.deepEqual(out.simdMismatches, { exp: 0, reciprocal: 0, sin: 0, cos: 0, erf: 0, erfc: 0 });
  });
}
