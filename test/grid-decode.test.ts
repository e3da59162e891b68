/**
 * The grid decoder (createGridDecoder, hyponetGrid): the separable forms of ANR on a grid (row and
 * column logits, row × column exponentials, to_out folded into the first Linear) against the plain
 * point-by-point hyponet, for every hyponet kind, both attention forms, thresholds on and off,
 * padding, no PE, regions that are not the unit square, and blocks that split rows; and the guard
 * that sends attention too sharp for the separable exponentials back to the plain softmax.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { initBackend, readF32, readScalar } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import {
  parseHyperNetworkConfig,
  type HyperNetworkConfig,
  type HyperNetworkConfigInput,
} from "../src/model/config.js";
import { initHostParams, toDevice, disposeParams, refParams } from "../src/model/params.js";
import {
  cellCentres,
  gridPoints,
  hyperNetwork,
  hyponet,
  hyponetGrid,
  setAttentionForm,
  GRID_GUARD_LIMIT,
  type Params,
} from "../src/model/model.js";
import { createGridDecoder, createImageDecoder, gridChunk } from "../src/model/tasks.js";
import { modelPreset } from "../src/model/presets.js";
import type { HostTensor } from "../src/util/host.js";
import { tinyConfig } from "./fixtures.js";

await initBackend({ device: "wasm" });

/**
 * The decoders compute the same sums in another order. Worst |Δ| seen: 9e-8 over the tiny ANR
 * configs below, 4.8e-7 over the MLP and IPC ones, 1.2e-6 with logits near 200 (the guard test),
 * 2.9e-6 on the zoo's twemoji32-anr at 256² (outputs in [−1, 1]); a wrong term, mask or fold moves
 * outputs by 1e-2 or more.
 */
const TOL = 1e-5;

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates as the worst
  }
  return m;
}

/** Inputs in [-1, 1] for the tiny image configs (16², 3 channels), distinct per instance. */
function images(b: number): np.Array {
  const data = new Float32Array(b * 3 * 16 * 16).map((_, i) => Math.sin(0.37 * i + 0.11 * (i % 7)));
  return np.array(data, { shape: [b, 3, 16, 16] });
}

/** The plain reference: hyponet at every (ys[i], xs[j]), row-major → (B, C, R, W). */
async function pointwise(
  P: Params,
  cfg: HyperNetworkConfig,
  generated: Record<string, np.Array>,
  b: number,
  ys: Float32Array,
  xs: Float32Array,
): Promise<Float32Array> {
  const [h, w] = [ys.length, xs.length];
  const grid = gridPoints(ys, xs);
  const coords = new Float32Array(b * grid.length);
  for (let i = 0; i < b; i++) coords.set(grid, i * grid.length);
  const vals = await readF32(
    hyponet(P, cfg, np.array(coords, { shape: [b, h * w, 2] }), refParams(generated)),
  );
  const c = cfg.hyponet.args.out_dim;
  const out = new Float32Array(b * c * h * w);
  for (let i = 0; i < b; i++)
    for (let k = 0; k < h * w; k++)
      for (let ch = 0; ch < c; ch++) out[(i * c + ch) * h * w + k] = vals[(i * h * w + k) * c + ch]!;
  return out;
}

function config(
  kind: "ANR" | "HypoMlp" | "HypoMlpIPC",
  hyponetArgs: Record<string, unknown> = {},
): HyperNetworkConfig {
  const base = tinyConfig(kind);
  return parseHyperNetworkConfig({
    ...base,
    hyponet: { ...base.hyponet, args: { ...base.hyponet.args, ...hyponetArgs } },
  } as HyperNetworkConfigInput);
}

/** Weights with the queries scaled by `sharpen` (larger logits: the threshold clips more, the spreads grow). */
function weightsFor(cfg: HyperNetworkConfig, seed: number, sharpen = 1): Map<string, HostTensor> {
  const weights = initHostParams(cfg, seed);
  const q = weights.get("hyponet.attn.to_q.weight");
  if (q && sharpen !== 1)
    weights.set("hyponet.attn.to_q.weight", { ...q, data: q.data.map((v) => v * sharpen) });
  return weights;
}

const cases: { label: string; cfg: HyperNetworkConfig; sharpen?: number }[] = [
  { label: "ANR, tiny (τ 0.05)", cfg: config("ANR"), sharpen: 4 },
  { label: "ANR, no threshold", cfg: config("ANR", { att_threshold: null }) },
  { label: "ANR, depth 1", cfg: config("ANR", { depth: 1 }) },
  {
    label: "ANR, depth 3, out_scale, out_bias",
    cfg: config("ANR", { depth: 3, out_scale: 1.5, out_bias: 0.25 }),
  },
  { label: "ANR, adaptive_idim padding", cfg: config("ANR", { pe_dim: 10, adaptive_idim: true }) },
  { label: "ANR, no PE", cfg: config("ANR", { use_pe: false, hidden_dim: 2, depth: 2 }) },
  { label: "MLP", cfg: config("HypoMlp") },
  { label: "MLP, depth 1, out_bias", cfg: config("HypoMlp", { depth: 1, out_bias: 0.5 }) },
  { label: "IPC", cfg: config("HypoMlpIPC") },
  {
    label: "IPC, shared first layer, tanh",
    cfg: config("HypoMlpIPC", { depth: 3, modulated_layer_id: 1, activation: "tanh" }),
  },
];

for (const { label, cfg, sharpen } of cases) {
  test(`grid decode equals the point-wise hyponet: ${label}`, async (t) => {
    for (const form of ["direct", "folded"] as const) {
      const previous = setAttentionForm(form);
      const P = toDevice(weightsFor(cfg, 3, sharpen));
      const generated = hyperNetwork(P, cfg, images(2));
      try {
        // A zoomed, off-centre, non-square region; chunk 40 splits it into blocks of 3 rows of 13
        // (the last padded), and chunk 7 splits each row into column blocks.
        const ys = cellCentres(11, -0.9, 0.35);
        const xs = cellCentres(13, 0.2, 1.4);
        const want = await pointwise(P, cfg, generated, 2, ys, xs);
        if (cfg.hyponet.name === "ANR") {
          // The fast form is the one under test here, not its fallback.
          const { signal, guard } = hyponetGrid(
            P,
            cfg,
            np.array(ys),
            np.array(xs),
            refParams(generated),
            true,
          );
          signal.dispose();
          const g = await readScalar(guard!);
          t.diagnostic(`${form}: guard ${g.toFixed(1)}`);
          assert.ok(g <= GRID_GUARD_LIMIT, `guard ${g}: the fast form would not be used`);
        }
        for (const chunk of [40, 7, 4096]) {
          const decode = createGridDecoder(cfg, chunk);
          const got = await decode(P, generated, 2, ys, xs);
          decode.dispose();
          const err = maxAbs(got, want);
          t.diagnostic(`${form}, chunk ${chunk}: max |Δ| ${err.toExponential(2)}`);
          assert.ok(err <= TOL, `${label}, ${form}, chunk ${chunk}: max |Δ| ${err}`);
        }
        // The whole image through createImageDecoder is the same grid decoder on the pixel centres.
        const image = createImageDecoder(cfg, 64);
        const whole = await image(P, generated, 2, 9, 14);
        image.dispose();
        const err = maxAbs(whole, await pointwise(P, cfg, generated, 2, cellCentres(9), cellCentres(14)));
        assert.ok(err <= TOL, `${label}, ${form}, image decoder: max |Δ| ${err}`);
      } finally {
        disposeParams(generated);
        disposeParams(P);
        setAttentionForm(previous);
      }
    }
  });
}

test("the fast grid form declines attention too sharp for it (guard above the limit), and the decoder falls back to the plain softmax", async (t) => {
  const cfg = config("ANR", { att_threshold: null });
  const a = cfg.hyponet.args as { hidden_dim: number; n_head: number; head_dim: number; token_len: number };
  const inner = a.n_head * a.head_dim;
  // Head 0 made by hand: token 0's logit is α·cos(πy) (encoding feature 0), token 1's α·cos(πx)
  // (feature K = 8, the column's first cosine). Near the centre both are about α, so the softmax is
  // well defined, but the row factor of token 1 and the column factor of token 0 are e^−α: with
  // α = 200 every product underflows.
  const alpha = 200;
  const weights = initHostParams(cfg, 5);
  const wq = new Float32Array(inner * a.hidden_dim);
  wq[0 * a.hidden_dim + 0] = 1;
  wq[1 * a.hidden_dim + 8] = 1;
  const wk = new Float32Array(inner * a.hidden_dim);
  for (let j = 0; j < inner; j++) wk[j * a.hidden_dim + j] = 1;
  weights.set("hyponet.attn.to_q.weight", { shape: [inner, a.hidden_dim], data: wq });
  weights.set("hyponet.attn.to_k.weight", { shape: [inner, a.hidden_dim], data: wk });
  const tokens = new Float32Array(a.token_len * a.hidden_dim).map((_, i) => 0.1 * Math.sin(i));
  tokens.fill(0, 0, 2 * a.hidden_dim);
  tokens[0] = alpha * Math.sqrt(a.head_dim);
  tokens[a.hidden_dim + 1] = alpha * Math.sqrt(a.head_dim);
  const P = toDevice(weights);
  const generated = { dtoken: np.array(tokens, { shape: [1, a.token_len, a.hidden_dim] }) };
  try {
    const ys = cellCentres(6, -0.2, 0.2);
    const xs = cellCentres(7, -0.2, 0.2);
    const fast = hyponetGrid(P, cfg, np.array(ys), np.array(xs), refParams(generated), true);
    const guard = await readScalar(fast.guard!);
    t.diagnostic(`guard ${guard.toFixed(0)}`);
    assert.ok(guard > GRID_GUARD_LIMIT, `guard ${guard} should exceed ${GRID_GUARD_LIMIT}`);
    const want = await pointwise(P, cfg, generated, 1, ys, xs);
    assert.ok(want.every(Number.isFinite), "the point-wise reference is not finite");
    // Used as it is, the fast result would be wrong (NaN: 0/0 where every product underflows).
    const unguarded = await readF32(fast.signal);
    assert.ok(!unguarded.every(Number.isFinite), "the unguarded fast form should underflow here");
    const decode = createGridDecoder(cfg);
    const got = await decode(P, generated, 1, ys, xs);
    decode.dispose();
    const err = maxAbs(got, want);
    t.diagnostic(`guarded decoder: max |Δ| ${err.toExponential(2)}`);
    assert.ok(err <= TOL, `max |Δ| ${err}`);
  } finally {
    disposeParams(generated);
    disposeParams(P);
  }
});

test("gridChunk: blocks of about 64 MB of the widest per-point intermediate, a power of two in [1,024, 16,384]", () => {
  const preset = (name: string) => parseHyperNetworkConfig(modelPreset(name), name);
  // tiny32-anr: 4 heads × 32 R-tokens = 128 wide: 2^24 / 128 = 131,072 → at most 16,384 points.
  assert.equal(gridChunk(preset("tiny32-anr")), 16384);
  // The same for 16 instances: 8,192 points each.
  assert.equal(gridChunk(preset("tiny32-anr"), 16), 8192);
  // celeba128-anr-d5 (6 heads × 256 R-tokens = 1,536 wide): 2^24 / 1,536 = 10,922 → 8,192; for
  // 8 instances 1,365 → 1,024, and never below 1,024.
  assert.equal(gridChunk(preset("celeba128-anr-d5")), 8192);
  assert.equal(gridChunk(preset("celeba128-anr-d5"), 8), 1024);
  assert.equal(gridChunk(preset("celeba128-anr-d5"), 64), 1024);
  // MLP kinds by their hidden width (64): at most 16,384.
  assert.equal(gridChunk(preset("tiny32-mlp")), 16384);
});
