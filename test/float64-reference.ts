/**
 * A float64 yardstick for the model's float32 rounding: the image and view-synthesis objectives
 * (docs/conventions.md §1–§9) written again as plain loops over Float64Array, on the same float32
 * weights and inputs. Everything after the inputs is computed in double precision, so the result
 * stands for the exact value of the function that our float32 code (jax-js) approximates, and
 * `|ours − float64|` is our rounding error.
 *
 * `Float32Stages` switches single stages back to float32 rounding (`Math.fround`), so that the
 * share of one stage in the total error can be read off: `float64(stage rounded) − float64`. One
 * option emulates the reference's own positional encoding (`float32(π)·float32(c·w)`, §3.3), to
 * estimate how far the authors' float32 numbers lie from the exact ones on configurations that
 * have no golden file.
 *
 * Only what the tests use is here: R-tokens with the ANR hyponet ("mlp" and "mlp_mod" heads with
 * the MLP hyponets too, for the image task), batch sizes of one or more, any sizes.
 */
import { type HyperNetworkConfig, type HostTensor } from "../src/index.js";
import { generatedParams, encodingLayout, peFrequencies } from "../src/lowlevel.js";

/** Stages of the pipeline computed with float32 rounding instead of float64. */
export interface Float32Stages {
  /**
   * The coordinates that enter the encoding: grid coordinates and ray sample points as our
   * float32 code holds them (`o + d·z` with o, d and z in float32, one rounding per operation).
   */
  coords?: boolean;
  /** The phase argument `a = c·w` of the encoding rounded to float32, as in our `positionalEncoding`. */
  peArgument?: boolean;
  /**
   * The reference's (torch's) encoding: `cos(float32(float32(π)·float32(c·w)))`, features rounded
   * to float32 (docs/conventions.md §3.3). Implies `peArgument`.
   */
  torchPe?: boolean;
  /** Volume rendering (§9.3) with every operation rounded to float32 and sums taken in sequence. */
  rendering?: boolean;
}

/** Options of the float64 objectives. */
export interface Float64Options {
  /** Stages to round to float32 (none: the whole pipeline in float64). */
  float32?: Float32Stages;
  /** Frequencies of the encoding (default: `peFrequencies` of the config, as our model uses). */
  freqs?: ArrayLike<number>;
  /**
   * View synthesis: the sample points (B, R·P, 3) to evaluate the hyponet at, instead of o + d·z
   * (e.g. the float32 points of our own pipeline, to leave out their rounding).
   */
  points?: ArrayLike<number>;
}

type Weights = ReadonlyMap<string, HostTensor>;

const f32 = Math.fround;

function w(W: Weights, key: string): Float32Array {
  const t = W.get(key);
  if (!t) throw new Error(`float64 reference: missing parameter "${key}"`);
  return t.data;
}

// ---------------------------------------------------------------------------------------------
// Dense layers on row-major (n, width) matrices

/** y = x Wᵀ + b for x (n, in) and W (out, in), torch layout. */
function linear(W: Weights, key: string, x: Float64Array, n: number, bias = true): Float64Array {
  const weight = w(W, `${key}.weight`);
  const inDim = x.length / n;
  const outDim = weight.length / inDim;
  const b = bias ? w(W, `${key}.bias`) : null;
  const y = new Float64Array(n * outDim);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o]! : 0;
      for (let j = 0; j < inDim; j++) s += x[i * inDim + j]! * weight[o * inDim + j]!;
      y[i * outDim + o] = s;
    }
  }
  return y;
}

/** LayerNorm over rows of width d, eps 1e-5, biased variance. */
function layerNorm(W: Weights, key: string, x: Float64Array, d: number): Float64Array {
  const [g, b] = [w(W, `${key}.weight`), w(W, `${key}.bias`)];
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let mu = 0;
    for (let j = 0; j < d; j++) mu += x[r * d + j]!;
    mu /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[r * d + j]! - mu) ** 2;
    const inv = 1 / Math.sqrt(v / d + 1e-5);
    for (let j = 0; j < d; j++) y[r * d + j] = (x[r * d + j]! - mu) * inv * g[j]! + b[j]!;
  }
  return y;
}

/**
 * erf to about 1e-15: its Taylor series below 2.5, the continued fraction of erfc above (JavaScript
 * has no erf).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf x = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc x = exp(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))), evaluated from the tail.
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function gelu(x: Float64Array): Float64Array {
  return x.map((v) => 0.5 * v * (1 + erf(v * Math.SQRT1_2)));
}

/** softmax over each row of width t, in place; then relu(p − τ)/Σ relu(p − τ) when τ is set. */
function softmaxRows(x: Float64Array, t: number, tau: number | null = null): void {
  for (let r = 0; r < x.length / t; r++) {
    let m = -Infinity;
    for (let j = 0; j < t; j++) m = Math.max(m, x[r * t + j]!);
    let s = 0;
    for (let j = 0; j < t; j++) s += x[r * t + j] = Math.exp(x[r * t + j]! - m);
    for (let j = 0; j < t; j++) x[r * t + j]! /= s;
    if (tau === null) continue;
    let kept = 0;
    for (let j = 0; j < t; j++) kept += x[r * t + j] = Math.max(x[r * t + j]! - tau, 0);
    for (let j = 0; j < t; j++) x[r * t + j]! /= kept;
  }
}

/**
 * Multi-head attention of one instance: queries q (n, h·d) against keys and values (m, h·d), feature
 * f = head·d + j; `tau` thresholds the softmax as ANR does. Returns the merged heads (n, h·d).
 */
function mha(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  m: number,
  nHead: number,
  tau: number | null = null,
): Float64Array {
  const inner = k.length / m;
  const n = q.length / inner;
  const d = inner / nHead;
  const out = new Float64Array(n * inner);
  const p = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < m; t++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += q[i * inner + h * d + j]! * k[t * inner + h * d + j]!;
        p[t] = s / Math.sqrt(d);
      }
      softmaxRows(p, m, tau);
      for (let t = 0; t < m; t++)
        for (let j = 0; j < d; j++) out[i * inner + h * d + j]! += p[t]! * v[t * inner + h * d + j]!;
    }
  }
  return out;
}

const add = (a: Float64Array, b: Float64Array) => a.map((x, i) => x + b[i]!);

// ---------------------------------------------------------------------------------------------
// Hyper-network (§4–§6), one instance at a time

/** Transformer attention block `key` (to_q, fused to_kv, to_out.0) of one instance. */
function attention(
  W: Weights,
  key: string,
  x: Float64Array,
  n: number,
  ctx: Float64Array,
  m: number,
  nHead: number,
): Float64Array {
  const q = linear(W, `${key}.to_q`, x, n, false);
  const kv = linear(W, `${key}.to_kv`, ctx, m, false);
  const inner = q.length / n;
  const k = new Float64Array(m * inner);
  const v = new Float64Array(m * inner);
  for (let t = 0; t < m; t++) {
    k.set(kv.subarray(t * 2 * inner, t * 2 * inner + inner), t * inner);
    v.set(kv.subarray(t * 2 * inner + inner, (t + 1) * 2 * inner), t * inner);
  }
  return linear(W, `${key}.to_out.0`, mha(q, k, v, m, nHead), n);
}

function feedForward(W: Weights, key: string, x: Float64Array, n: number): Float64Array {
  return linear(W, `${key}.net.3`, gelu(linear(W, `${key}.net.0`, x, n)), n);
}

/** Patches (L, C·p·p) of one (C, H, W) image, zero-padded, channel-major inside a patch (§4.1). */
function patchify(img: Float64Array, c: number, h: number, wd: number, p: number, pad: number): Float64Array {
  const gh = Math.floor((h + 2 * pad) / p);
  const gw = Math.floor((wd + 2 * pad) / p);
  const out = new Float64Array(gh * gw * c * p * p);
  let o = 0;
  for (let py = 0; py < gh; py++)
    for (let px = 0; px < gw; px++)
      for (let ch = 0; ch < c; ch++)
        for (let ky = 0; ky < p; ky++)
          for (let kx = 0; kx < p; kx++) {
            const [y, x] = [py * p + ky - pad, px * p + kx - pad];
            out[o++] = y >= 0 && y < h && x >= 0 && x < wd ? img[(ch * h + y) * wd + x]! : 0;
          }
  return out;
}

/** Camera rays (§9.1) of a pose (3, 4) row-major and focal [f_x, f_y]: origins and directions (H·W, 3). */
export function cameraRays(
  pose: ArrayLike<number>,
  focal: ArrayLike<number>,
  h: number,
  wd: number,
): { o: Float64Array; d: Float64Array } {
  const o = new Float64Array(h * wd * 3);
  const d = new Float64Array(h * wd * 3);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < wd; j++) {
      const cam = [(j + 0.5 - wd / 2) / focal[0]!, -(i + 0.5 - h / 2) / focal[1]!, -1];
      for (let r = 0; r < 3; r++) {
        const px = i * wd + j;
        o[px * 3 + r] = pose[r * 4 + 3]!;
        d[px * 3 + r] = pose[r * 4]! * cam[0]! + pose[r * 4 + 1]! * cam[1]! + pose[r * 4 + 2]! * cam[2]!;
      }
    }
  return { o, d };
}

/** Posed support views of one instance: images (n, 3, H, W) in [0, 1], poses (n, 3, 4), focals (n, 2). */
export interface Views64 {
  imgs: ArrayLike<number>;
  poses: ArrayLike<number>;
  focals: ArrayLike<number>;
  n: number;
  h: number;
  w: number;
}

function tokens(W: Weights, cfg: HyperNetworkConfig, input: Float64Array | Views64): [Float64Array, number] {
  const { patch_size: p, padding: pad } = cfg.tokenizer.args;
  if (input instanceof Float64Array) {
    // Images in [−1, 1], (C, H, W).
    const [h, wd] = imageSize(cfg);
    const c = input.length / (h * wd);
    const patches = patchify(input, c, h, wd, p, pad);
    const l = patches.length / (c * p * p);
    return [add(linear(W, "tokenizer.prefc", patches, l), Float64Array.from(w(W, "tokenizer.posemb"))), l];
  }
  // Views: per pixel [rgb, o, d], patches per view, view-major, no posemb (§4.2).
  const { n, h, w: wd } = input;
  const all: Float64Array[] = [];
  for (let view = 0; view < n; view++) {
    const rays = cameraRays(
      Array.prototype.slice.call(input.poses, view * 12, view * 12 + 12) as number[],
      [input.focals[2 * view]!, input.focals[2 * view + 1]!],
      h,
      wd,
    );
    const pix = new Float64Array(9 * h * wd);
    for (let q = 0; q < h * wd; q++) {
      for (let ch = 0; ch < 3; ch++) {
        pix[ch * h * wd + q] = input.imgs[(view * 3 + ch) * h * wd + q]!;
        pix[(3 + ch) * h * wd + q] = rays.o[q * 3 + ch]!;
        pix[(6 + ch) * h * wd + q] = rays.d[q * 3 + ch]!;
      }
    }
    all.push(patchify(pix, 9, h, wd, p, pad));
  }
  const patches = new Float64Array(all.reduce((s, a) => s + a.length, 0));
  all.reduce((o, a) => (patches.set(a, o), o + a.length), 0);
  const l = patches.length / (9 * p * p);
  return [linear(W, "tokenizer.prefc", patches, l), l];
}

function imageSize(cfg: HyperNetworkConfig): [number, number] {
  const s = cfg.tokenizer.args.input_size;
  return typeof s === "number" ? [s, s] : s;
}

/** Generated hyponet parameters of one instance, name → row-major data. */
type Generated = Record<string, Float64Array>;

/** Tokens → encoder → decoder → weight heads (§5, §6) for one instance. */
function hyperNetwork(W: Weights, cfg: HyperNetworkConfig, input: Float64Array | Views64): Generated {
  const [tokenRows, l] = tokens(W, cfg, input);
  let x = tokenRows;
  const enc = cfg.tinr_enc.args;
  let shortcut = x;
  for (let i = 0; i < enc.depth; i++) {
    const key = `tinr_enc.layers.${i}`;
    const h = layerNorm(W, `${key}.0.norm`, x, enc.dim);
    x = add(x, attention(W, `${key}.0.fn`, h, l, h, l, enc.n_head));
    const ff = feedForward(W, `${key}.1.fn`, layerNorm(W, `${key}.1.norm`, x, enc.dim), l);
    if (enc.shortcut_every > 0 && (i + 1) % enc.shortcut_every === 0) shortcut = x = add(ff, shortcut);
    else x = add(x, ff);
  }
  const dec = cfg.tinr_dec.args;
  let t = Float64Array.from(w(W, "wtokens"));
  const nt = t.length / dec.dim;
  for (let i = 0; i < dec.depth; i++) {
    const key = `tinr_dec.hypobuilder.${i}`;
    const h = layerNorm(W, `${key}.0.norm`, t, dec.dim);
    t = add(t, attention(W, `${key}.0.fn`, h, nt, h, nt, dec.n_head));
    t = add(t, attention(W, `${key}.1.fn`, layerNorm(W, `${key}.1.norm`, t, dec.dim), nt, x, l, dec.n_head));
    t = add(t, feedForward(W, `${key}.2.fn`, layerNorm(W, `${key}.2.norm`, t, dec.dim), nt));
  }

  const out: Generated = {};
  let start = 0;
  for (const g of generatedParams(cfg)) {
    const rows = t.subarray(start * dec.dim, (start + g.tokens) * dec.dim);
    start += g.tokens;
    const post = linear(
      W,
      `wtoken_postfc.${g.name}.1`,
      layerNorm(W, `wtoken_postfc.${g.name}.0`, rows, dec.dim),
      g.tokens,
    );
    if (cfg.direct_wtoken) {
      const [dw, db] = [w(W, "base_params.dtoken_w"), w(W, "base_params.dtoken_b")];
      out[g.name] = post.map((v, i) => v * dw[i]! + db[i]!);
      continue;
    }
    const [rowsN, cols] = g.shape;
    const inDim = rowsN - 1;
    const base = w(W, `base_params.${g.name}`);
    const wb = new Float64Array(rowsN * cols);
    // post (g, in): x[i, grp] = post[grp, i].
    if (cfg.grouping_mode === "mlp") {
      // W[i, j] = W0[i, j]·x[i, j mod g], unit columns; bias row unmodulated (§6.2).
      for (let j = 0; j < cols; j++) {
        let norm = 0;
        for (let i = 0; i < inDim; i++)
          norm += (base[i * cols + j]! * post[(j % g.tokens) * inDim + i]!) ** 2;
        const inv = 1 / Math.max(Math.sqrt(norm), 1e-12);
        for (let i = 0; i < inDim; i++)
          wb[i * cols + j] = base[i * cols + j]! * post[(j % g.tokens) * inDim + i]! * inv;
        wb[inDim * cols + j] = base[inDim * cols + j]!;
      }
    } else {
      // W = x @ base[:g]; bias row base[g] (§6.3).
      for (let i = 0; i < inDim; i++)
        for (let j = 0; j < cols; j++) {
          let s = 0;
          for (let grp = 0; grp < g.tokens; grp++) s += post[grp * inDim + i]! * base[grp * cols + j]!;
          wb[i * cols + j] = s;
        }
      for (let j = 0; j < cols; j++) wb[inDim * cols + j] = base[g.tokens * cols + j]!;
    }
    out[g.name] = wb;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hyponets (§3, §7): coordinates (N, D) → signal (N, out_dim)

/** PE(c) (§3.1) plus the ANR zero columns (§3.4), (N, D) → (N, width). */
export function encode(
  cfg: HyperNetworkConfig,
  coords: Float64Array,
  opts: Float64Options = {},
): Float64Array {
  const a = cfg.hyponet.args;
  const dim = a.in_dim;
  const n = coords.length / dim;
  if (!a.use_pe) return coords;
  const layout = encodingLayout(cfg);
  const freqs = opts.freqs ?? peFrequencies(layout.nFreqs, a.pe_sigma);
  const k = freqs.length;
  const width = layout.encDim + layout.padDim;
  const torch = opts.float32?.torchPe ?? false;
  const roundArg = torch || (opts.float32?.peArgument ?? false);
  const out = new Float64Array(n * width);
  for (let i = 0; i < n; i++)
    for (let d = 0; d < dim; d++)
      for (let f = 0; f < k; f++) {
        let arg = coords[i * dim + d]! * freqs[f]!;
        if (roundArg) arg = f32(arg);
        let cos: number, sin: number;
        if (torch) {
          const theta = f32(f32(Math.PI) * arg);
          [cos, sin] = [f32(Math.cos(theta)), f32(Math.sin(theta))];
        } else {
          // cos and sin have period 2 in units of π: reduce first, so that π·a loses nothing.
          const theta = Math.PI * (arg - 2 * Math.floor(arg / 2));
          [cos, sin] = [Math.cos(theta), Math.sin(theta)];
        }
        out[i * width + d * k + f] = cos;
        out[i * width + dim * k + d * k + f] = sin;
      }
  return out;
}

/** ANR (§7.1) of one instance at encoded points x (N, hidden), R-tokens dtoken (T, hidden). */
function anr(W: Weights, cfg: HyperNetworkConfig, x: Float64Array, dtoken: Float64Array): Float64Array {
  if (cfg.hyponet.name !== "ANR") throw new Error("float64 reference: not an ANR hyponet");
  const a = cfg.hyponet.args;
  const n = x.length / a.hidden_dim;
  const q = linear(W, "hyponet.attn.to_q", x, n, false);
  const k = linear(W, "hyponet.attn.to_k", dtoken, a.token_len, false);
  const v = linear(W, "hyponet.attn.to_v", dtoken, a.token_len, false);
  let y = linear(W, "hyponet.attn.to_out", mha(q, k, v, a.token_len, a.n_head, a.att_threshold), n);
  for (let i = 0; i < a.depth - 1; i++) y = linear(W, `hyponet.mlp.${i}.0`, y, n).map((v) => Math.max(v, 0));
  y = linear(W, `hyponet.mlp.${a.depth - 1}`, y, n);
  return y.map((v) => v * a.out_scale + a.out_bias);
}

/** HypoMlp / HypoMlpIPC (§7.2, §7.3) of one instance. */
function mlp(W: Weights, cfg: HyperNetworkConfig, x: Float64Array, gen: Generated): Float64Array {
  const h = cfg.hyponet;
  if (h.name === "ANR") throw new Error("float64 reference: not an MLP hyponet");
  const n = x.length / encodingLayout(cfg).encDim;
  for (let l = 0; l < h.args.depth; l++) {
    const wb = gen[`wb${l}`] ?? w(W, `hyponet.global_params.wb${l}`);
    const inDim = x.length / n;
    const cols = wb.length / (inDim + 1);
    const y = new Float64Array(n * cols);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < cols; j++) {
        let s = wb[inDim * cols + j]!;
        for (let r = 0; r < inDim; r++) s += x[i * inDim + r]! * wb[r * cols + j]!;
        y[i * cols + j] = l < h.args.depth - 1 ? Math.max(s, 0) : s + h.args.out_bias;
      }
    x = y;
  }
  if (h.name === "HypoMlpIPC" && h.args.activation === "sigmoid") return x.map((v) => 1 / (1 + Math.exp(-v)));
  if (h.name === "HypoMlpIPC" && h.args.activation === "tanh") return x.map(Math.tanh);
  return x;
}

function hyponet(
  W: Weights,
  cfg: HyperNetworkConfig,
  coords: Float64Array,
  gen: Generated,
  opts: Float64Options,
) {
  const x = encode(cfg, coords, opts);
  return cfg.hyponet.name === "ANR" ? anr(W, cfg, x, gen.dtoken!) : mlp(W, cfg, x, gen);
}

// ---------------------------------------------------------------------------------------------
// Objectives (§8, §9)

/** The float64 values of an objective. */
export interface Float64Result {
  loss: number;
  psnr: number;
  /** Prediction: (B, C, H, W) in [−1, 1] for images, (B, R, 3) colours for views. */
  pred: Float64Array;
}

/**
 * Image reconstruction (§8.1) of imgs (B, C, H, W) in [0, 1]: L2 loss in [−1, 1] space and
 * mean_b 10·log10(4/mse_b).
 */
export function imageObjective64(
  W: Weights,
  cfg: HyperNetworkConfig,
  imgs: ArrayLike<number>,
  b: number,
  opts: Float64Options = {},
): Float64Result {
  const [h, wd] = imageSize(cfg);
  const c = imgs.length / (b * h * wd);
  const coords = new Float64Array(h * wd * 2);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < wd; j++) {
      coords[2 * (i * wd + j)] = -1 + (2 * (i + 0.5)) / h;
      coords[2 * (i * wd + j) + 1] = -1 + (2 * (j + 0.5)) / wd;
    }
  if (opts.float32?.coords) coords.forEach((v, i) => (coords[i] = f32(v)));
  const pred = new Float64Array(b * c * h * wd);
  let loss = 0;
  let psnr = 0;
  for (let s = 0; s < b; s++) {
    const x = Float64Array.from({ length: c * h * wd }, (_, i) => 2 * imgs[s * c * h * wd + i]! - 1);
    const y = hyponet(W, cfg, coords, hyperNetwork(W, cfg, x), opts); // (H·W, C)
    let mse = 0;
    for (let q = 0; q < h * wd; q++)
      for (let ch = 0; ch < c; ch++) {
        const v = (pred[(s * c + ch) * h * wd + q] = y[q * c + ch]!);
        mse += (v - x[ch * h * wd + q]!) ** 2;
      }
    mse /= c * h * wd;
    loss += mse / b;
    psnr += (10 * Math.log10(4 / mse)) / b;
  }
  return { loss, psnr, pred };
}

/** Query rays of one instance: origins and directions (R, 3), depths (P) shared by all rays. */
export interface Rays64 {
  o: ArrayLike<number>;
  d: ArrayLike<number>;
  z: ArrayLike<number>;
}

/**
 * Volume rendering (§9.3) of raw (R·P, 4) at depths z (P): colours (R, 3) on white. With `round`,
 * every operation is rounded to float32 and the sums run in sequence.
 */
export function composite64(raw: ArrayLike<number>, z: ArrayLike<number>, round = false): Float64Array {
  const r = (v: number) => (round ? f32(v) : v);
  const nS = z.length;
  const nRays = raw.length / (4 * nS);
  const rgb = new Float64Array(nRays * 3);
  for (let ray = 0; ray < nRays; ray++) {
    let logT = 0;
    let acc = 0;
    const col = [0, 0, 0];
    for (let k = 0; k < nS; k++) {
      const o = (ray * nS + k) * 4;
      const sigma = Math.max(raw[o + 3]!, 0);
      const delta = k < nS - 1 ? r(z[k + 1]! - z[k]!) : r(1e-3);
      const alpha = r(1 - r(Math.exp(-r(sigma * delta))));
      // Exclusive product of min((1 − α) + 1e-10, 1), as exp of a running sum of logs (ours).
      const weight = r(alpha * r(Math.exp(logT)));
      logT = r(logT + r(Math.log(Math.min(r(r(1 - alpha) + 1e-10), 1))));
      acc = r(acc + weight);
      for (let c = 0; c < 3; c++) col[c] = r(col[c]! + r(weight * r(1 / (1 + Math.exp(-raw[o + c]!)))));
    }
    for (let c = 0; c < 3; c++) rgb[ray * 3 + c] = r(col[c]! + r(1 - acc));
  }
  return rgb;
}

/** Sample points o + d·z (R·P, 3) of one instance, rounded as our float32 code rounds them if asked. */
export function rayPoints64(rays: Rays64, round = false): Float64Array {
  const nS = rays.z.length;
  const nRays = rays.o.length / 3;
  const pts = new Float64Array(nRays * nS * 3);
  for (let ray = 0; ray < nRays; ray++)
    for (let k = 0; k < nS; k++)
      for (let c = 0; c < 3; c++) {
        const [o, d, z] = [rays.o[ray * 3 + c]!, rays.d[ray * 3 + c]!, rays.z[k]!];
        pts[(ray * nS + k) * 3 + c] = round ? f32(f32(o) + f32(f32(d) * f32(z))) : o + d * z;
      }
  return pts;
}

/** Intermediates of {@link nerfObjective64}, per instance. */
export interface NerfResult64 extends Float64Result {
  /** Sample points (B, R·P, 3). */
  pts: Float64Array;
  /** Hyponet output (B, R·P, 4) before the activations. */
  raw: Float64Array;
}

/**
 * View synthesis (§8.2, §9) with unjittered depths: support views → R-tokens → raw at the sample
 * points of the query rays → colours; loss = mean_b mse_b, psnr = mean_b −10·log10(mse_b) against
 * gt (B, R, 3). Views, rays and gt are given per instance.
 */
export function nerfObjective64(
  W: Weights,
  cfg: HyperNetworkConfig,
  views: Views64[],
  rays: Rays64[],
  gt: ArrayLike<number>[],
  opts: Float64Options = {},
): NerfResult64 {
  const b = views.length;
  const parts = views.map((v, s) => {
    const gen = hyperNetwork(W, cfg, v);
    let pts = rayPoints64(rays[s]!, opts.float32?.coords);
    if (opts.points)
      pts = Float64Array.from(
        Array.prototype.slice.call(opts.points, s * pts.length, (s + 1) * pts.length) as number[],
      );
    const raw = hyponet(W, cfg, pts, gen, opts);
    const pred = composite64(raw, rays[s]!.z, opts.float32?.rendering);
    let mse = 0;
    for (let i = 0; i < pred.length; i++) mse += (pred[i]! - gt[s]![i]!) ** 2;
    return { pts, raw, pred, mse: mse / pred.length };
  });
  const cat = (k: "pts" | "raw" | "pred") => {
    const out = new Float64Array(parts.reduce((s, p) => s + p[k].length, 0));
    parts.reduce((o, p) => (out.set(p[k], o), o + p[k].length), 0);
    return out;
  };
  return {
    loss: parts.reduce((s, p) => s + p.mse / b, 0),
    psnr: parts.reduce((s, p) => s - (10 * Math.log10(p.mse)) / b, 0),
    pred: cat("pred"),
    pts: cat("pts"),
    raw: cat("raw"),
  };
}
