/**
 * `anr decode --attention` (issue 13): ANR's attention maps per R-token, checked against the
 * attention computed again in float64 from the model's weights and the token file (PE, q·k,
 * softmax, threshold, renormalisation, mean over heads), against the structure the threshold rule
 * guarantees (docs/conventions.md §7: per head, a pixel's weights sum to 1 over the tokens, since
 * τ < 1/tokens always leaves one), and the picture against the maps. Non-ANR models are refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { CAPTION_STRIP } from "../src/eval/grids.js";
import { loadModel, readSafetensors } from "../src/io/files.js";
import { parseNpy } from "../src/io/npy.js";
import type { HostTensor } from "../src/io/safetensors.js";
import type { HyperNetworkConfig } from "../src/model/config.js";
import { coordGrid, type HypoParams } from "../src/model/model.js";
import { disposeParams, toDevice } from "../src/model/params.js";
import { attentionMaps, attentionWeights } from "../src/model/tasks.js";
import { viridis } from "../src/util/colormap.js";
import { golden } from "./fixtures.js";
import { encode as encode64 } from "./float64-reference.js";
import { readPng, REPO, runCli as run, tempDir, writePhoto } from "./cli-helpers.js";

const MODEL = join(REPO, "models", "demo-photos-anr.safetensors");

/**
 * ANR's attention at one point (y, x), per head (heads, tokens), in float64 from the weights:
 * q = PE(c) W_qᵀ, k = R W_kᵀ, the softmax p = softmax(q_h k_hᵀ/√d) and the weights after the
 * threshold, relu(p − τ)/Σ relu(p − τ).
 * The PE argument is rounded to float32 as our model rounds it (the rest is exact), so that what
 * is left between the two is float32 arithmetic.
 */
function attention64(
  W: Map<string, HostTensor>,
  cfg: HyperNetworkConfig,
  dtoken: Float32Array,
  y: number,
  x: number,
): { softmax: Float64Array; weights: Float64Array } {
  assert.equal(cfg.hyponet.name, "ANR");
  if (cfg.hyponet.name !== "ANR") throw new Error("unreachable");
  const {
    n_head: heads,
    head_dim: d,
    token_len: t,
    hidden_dim: hidden,
    att_threshold: tau,
  } = cfg.hyponet.args;
  const enc = encode64(cfg, Float64Array.of(Math.fround(y), Math.fround(x)), {
    float32: { peArgument: true },
  });
  const wq = W.get("hyponet.attn.to_q.weight")!.data;
  const wk = W.get("hyponet.attn.to_k.weight")!.data;
  const dot = (a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number) => {
    let s = 0;
    for (let j = 0; j < hidden; j++) s += a[ao + j]! * b[bo + j]!;
    return s;
  };
  const q = Float64Array.from({ length: heads * d }, (_, f) => dot(enc, 0, wq, f * hidden));
  const k = Float64Array.from({ length: t * heads * d }, (_, i) =>
    dot(dtoken, Math.floor(i / (heads * d)) * hidden, wk, (i % (heads * d)) * hidden),
  );
  const softmax = new Float64Array(heads * t);
  const out = new Float64Array(heads * t);
  for (let h = 0; h < heads; h++) {
    const p = out.subarray(h * t, (h + 1) * t);
    for (let j = 0; j < t; j++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += q[h * d + e]! * k[j * heads * d + h * d + e]!;
      p[j] = s / Math.sqrt(d);
    }
    const m = Math.max(...p);
    for (let j = 0; j < t; j++) p[j] = Math.exp(p[j]! - m);
    const total = p.reduce((a, b) => a + b, 0);
    for (let j = 0; j < t; j++) p[j] = p[j]! / total;
    softmax.set(p, h * t);
    if (tau === null) continue;
    for (let j = 0; j < t; j++) p[j] = Math.max(p[j]! - tau, 0);
    const kept = p.reduce((a, b) => a + b, 0);
    for (let j = 0; j < t; j++) p[j] = p[j]! / kept;
  }
  return { softmax, weights: out };
}

test("cli: decode --attention writes per-token maps equal to the attention computed in float64", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "attention");
  await writePhoto(join(dir, "a.png"), 32, 32, 0);
  await writePhoto(join(dir, "b.png"), 32, 32, 3);
  const tokensPath = join(dir, "t.safetensors");
  let r = await run([
    "encode",
    join(dir, "a.png"),
    join(dir, "b.png"),
    "--model",
    MODEL,
    "--out",
    tokensPath,
  ]);
  assert.equal(r.code, 0, r.err);
  // 24×40: not the encoded size (--size applies) and not square (a swapped H and W shows).
  const [H, W] = [24, 40];
  const out = join(dir, "dec");
  r = await run([
    "decode",
    tokensPath,
    "--model",
    MODEL,
    "--size",
    `${H}x${W}`,
    "--attention",
    "--out",
    out,
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as { attention: { heads: number; tokens: number; zeroed: number[] } };
  assert.deepEqual((await readdir(out)).sort(), [
    "a.24x40.attention.npy",
    "a.24x40.attention.png",
    "a.24x40.png",
    "b.24x40.attention.npy",
    "b.24x40.attention.png",
    "b.24x40.png",
  ]);

  const { config: cfg, weights } = await loadModel(MODEL);
  assert.ok(cfg.hyponet.name === "ANR");
  const { n_head: heads, token_len: T, hidden_dim: hidden, att_threshold: tau } = cfg.hyponet.args;
  assert.ok(tau !== null && tau > 0, "the zoo model thresholds its attention");
  assert.deepEqual([json.attention.heads, json.attention.tokens], [heads, T]);
  const dtoken = (await readSafetensors(tokensPath)).tensors.get("dtoken")!;
  const n = H * W;

  // The core's weights per head at every pixel, for the structural checks and the zero count.
  const P = toDevice(weights);
  const gen: HypoParams = { dtoken: np.array(dtoken.data, { shape: dtoken.shape }) };
  t.after(() => {
    disposeParams(P);
    disposeParams(gen);
  });
  const perHead = (await attentionWeights(P, cfg, gen, coordGrid(H, W)))!; // (B, heads, n, T)
  assert.equal(perHead.length, 2 * heads * n * T);

  for (const [i, name] of ["a", "b"].entries()) {
    const npy = parseNpy(await readFile(join(out, `${name}.24x40.attention.npy`)), name);
    assert.equal(npy.dtype, "<f4");
    assert.deepEqual(npy.shape, [T, H, W]);
    const maps = npy.data;
    const inst = perHead.subarray(i * heads * n * T, (i + 1) * heads * n * T);

    // Per head, every pixel's weights sum to 1 over the tokens (the threshold renormalises), and
    // the file holds their mean over the heads (measured: 6e-8 and 1e-7, float32 sums of 32 terms).
    let worstSum = 0;
    let worstMean = 0;
    let zeros = 0;
    for (let p = 0; p < n; p++) {
      let mapSum = 0;
      for (let k = 0; k < T; k++) {
        let mean = 0;
        for (let h = 0; h < heads; h++) mean += inst[(h * n + p) * T + k]!;
        worstMean = Math.max(worstMean, Math.abs(mean / heads - maps[k * n + p]!));
        mapSum += maps[k * n + p]!;
      }
      worstSum = Math.max(worstSum, Math.abs(mapSum - 1));
      for (let h = 0; h < heads; h++) {
        let s = 0;
        for (let k = 0; k < T; k++) {
          const v = inst[(h * n + p) * T + k]!;
          s += v;
          if (v === 0) zeros++;
        }
        assert.ok(Math.abs(s - 1) < 1e-5, `${name}: pixel ${p}, head ${h}: weights sum to ${s}`);
      }
    }
    assert.ok(worstMean <= 1e-6, `${name}: the maps are ${worstMean} from the mean over heads`);
    assert.ok(worstSum <= 1e-6, `${name}: a pixel's maps sum to 1 within ${worstSum}`);
    // The zeroed share reported is the share of exact zeros; the trained model zeroes many.
    assert.equal(json.attention.zeroed[i], zeros / (heads * n * T));
    assert.ok(zeros > 0.2 * heads * n * T, `${name}: the threshold zeroes ${zeros} weights`);

    // Against float64 at the corners and a few pixels inside: each token's mean weight, and per
    // head which weights are exactly zero: those whose softmax is below τ (away from τ by more
    // than float32 rounding could move it).
    // Measured: at most 1.0e-7 from float64 on these pixels (float32 sums of 64 and 32 terms).
    const own = dtoken.data.subarray(i * T * hidden, (i + 1) * T * hidden);
    for (const [py, px] of [
      [0, 0],
      [0, W - 1],
      [H - 1, 0],
      [H - 1, W - 1],
      [11, 7],
      [5, 30],
      [17, 21],
    ] as const) {
      const { softmax, weights: want } = attention64(
        weights,
        cfg,
        own,
        -1 + (2 * py + 1) / H,
        -1 + (2 * px + 1) / W,
      );
      const p = py * W + px;
      for (let k = 0; k < T; k++) {
        let mean = 0;
        for (let h = 0; h < heads; h++) mean += want[h * T + k]!;
        const got = maps[k * n + p]!;
        assert.ok(
          Math.abs(got - mean / heads) <= 1e-6,
          `${name} (${py}, ${px}) token ${k}: ${got} vs ${mean / heads}`,
        );
        for (let h = 0; h < heads; h++) {
          const p64 = softmax[h * T + k]!;
          const w32 = inst[(h * n + p) * T + k]!;
          const where = `${name} (${py}, ${px}) head ${h} token ${k}`;
          if (p64 < tau - 1e-6) assert.equal(w32, 0, `${where}: softmax ${p64} < τ, yet ${w32}`);
          if (p64 > tau + 1e-6) assert.ok(w32 > 0, `${where}: softmax ${p64} > τ, yet 0`);
        }
      }
    }

    // The picture: the decoded image in a strip of its own, then 8 panels a row, 2× enlarged (40
    // pixels wide is too narrow for "token 31"), each in viridis from 0 to the largest weight.
    const png = await readPng(join(out, `${name}.24x40.attention.png`));
    const [cols, s] = [8, 2];
    const strip = CAPTION_STRIP + H * s;
    assert.equal(png.w, (cols * W + (cols - 1) * 2) * s);
    assert.ok(png.h > (1 + T / cols) * strip && png.h < (2 + T / cols) * strip, `height ${png.h}`);
    const decoded = await readPng(join(out, `${name}.24x40.png`));
    const at = (img: { w: number; h: number; data: Uint8Array }, c: number, y: number, x: number) =>
      img.data[(c * img.h + y) * img.w + x]!;
    for (const [py, px] of [
      [3, 5],
      [20, 33],
    ])
      for (let c = 0; c < 3; c++)
        assert.equal(at(png, c, CAPTION_STRIP + py * s, px * s), at(decoded, c, py, px), "the decoded panel");
    const top = Math.max(...maps);
    let worstLevel = 0;
    for (let k = 0; k < T; k++) {
      const y0 = (1 + Math.floor(k / cols)) * strip + CAPTION_STRIP;
      const x0 = (k % cols) * (W + 2) * s;
      // Where the token's map peaks, and one pixel far from it.
      let peak = 0;
      for (let p = 1; p < n; p++) if (maps[k * n + p]! > maps[k * n + peak]!) peak = p;
      for (const p of [peak, (peak + n / 2) % n]) {
        const rgb = viridis(maps[k * n + p]! / top);
        const [py, px] = [Math.floor(p / W), p % W];
        for (let c = 0; c < 3; c++)
          worstLevel = Math.max(worstLevel, Math.abs(at(png, c, y0 + py * s, x0 + px * s) - 255 * rgb[c]!));
      }
    }
    // Quantisation to 8 bits is ≤ 0.5 levels (measured 0.4997), and the colours are computed alike.
    assert.ok(worstLevel <= 0.5 + 1e-3, `token panels are ${worstLevel} levels from their maps`);
  }

  // A size whose picture of 32 maps is over the PNG writer's limit is refused before any work.
  r = await run(["decode", tokensPath, "--model", MODEL, "--size", "4000", "--attention", "--out", out]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /--attention with --size 4000: the picture of 32 maps of 4000×4000 has [\d,]+ pixels, over the PNG writer's limit/,
  );
});

test("attention maps and weights do not depend on the chunk size", async (t) => {
  await initBackend();
  const { config: cfg, weights } = await loadModel(MODEL);
  const P = toDevice(weights);
  assert.ok(cfg.hyponet.name === "ANR");
  const { token_len: T, hidden_dim: hidden } = cfg.hyponet.args;
  // Two instances of arbitrary R-tokens (this is about the assembly of chunks, not the values).
  const dtoken = new Float32Array(2 * T * hidden).map((_, i) => Math.sin(i));
  const gen: HypoParams = { dtoken: np.array(dtoken, { shape: [2, T, hidden] }) };
  t.after(() => {
    disposeParams(P);
    disposeParams(gen);
  });
  const [H, W] = [9, 13];
  // Measured: identical; 1e-6 allows another kernel's rounding for the other chunk shapes.
  const whole = (await attentionMaps(P, cfg, gen, H, W))!;
  const chunked = (await attentionMaps(P, cfg, gen, H, W, 7))!;
  assert.deepEqual(chunked.zeroed, whole.zeroed);
  let worst = 0;
  for (let j = 0; j < whole.maps.length; j++)
    worst = Math.max(worst, Math.abs(whole.maps[j]! - chunked.maps[j]!));
  assert.ok(worst <= 1e-6, `maps: chunks of 7 are ${worst} from one chunk`);
  const a = (await attentionWeights(P, cfg, gen, coordGrid(H, W)))!;
  const b = (await attentionWeights(P, cfg, gen, coordGrid(H, W), 7))!;
  worst = 0;
  for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j]! - b[j]!));
  assert.ok(worst <= 1e-6, `weights: chunks of 7 are ${worst} from one chunk`);
});

test("cli: decode --attention refuses a model without attention over R-tokens, naming it", async (t) => {
  const dir = await tempDir(t, "attention-ipc");
  const model = join(dir, "ipc.safetensors");
  assert.equal((await run(["init", join(golden, "ipc", "config.json"), "--out", model])).code, 0);
  await writePhoto(join(dir, "a.png"), 32, 32, 0);
  const tokens = join(dir, "t.safetensors");
  let r = await run(["encode", join(dir, "a.png"), "--model", model, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  r = await run(["decode", tokens, "--model", model, "--attention", "--out", join(dir, "dec")]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /--attention: .*ipc\.safetensors has a HypoMlpIPC hyponet, which has no attention over R-tokens/,
  );
  // Without --attention the same tokens decode.
  r = await run(["decode", tokens, "--model", model, "--out", join(dir, "dec")]);
  assert.equal(r.code, 0, r.err);
});
