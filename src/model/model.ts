/**
 * The ANR model family, written to read like the paper and docs/conventions.md.
 *
 *   tokens   = Tokenizer(x)                                  (ImgTokenizer | NvsTokenizer)
 *   encoded  = TInrEncoder(tokens)
 *   t        = TInrDecoder(wtokens, encoded)                 (one output row per weight token)
 *   θ_i      = head(t)                                       (R-tokens | TransINR "mlp" | IPC "mlp_mod")
 *   signal   = Hyponet(coords; θ_i)                          (ANR | HypoMlp | HypoMlpIPC)
 *
 * Parameters are a flat record keyed by the reference's state_dict names, so authors'
 * weights load by name. Ownership (jax-js arrays are reference-counted): every function here
 * BORROWS `P` (it takes `.ref`s of what it reads) and CONSUMES its array arguments.
 */
import { numpy as np, nn, lax } from "../backend/jax.js";

const stopGradient = lax.stopGradient;
import {
  type AnrArgs,
  type HyperNetworkConfig,
  type SphereArgs,
  type HypoMlpArgs,
  type HypoMlpIpcArgs,
  type TInrDecoderArgs,
  type TInrEncoderArgs,
  sizeHW,
} from "./config.js";
import { posesToRays } from "../rendering/rays.js";

/** Model parameters by reference state_dict key. */
export type Params = Record<string, np.Array>;
/** Optional sink for named intermediates (inspection and golden tests; eager mode only). */
export type Taps = Map<string, np.Array>;

/** Record `x` under `name` (the first record wins, e.g. the first chunk of a chunked render). */
export function tap(taps: Taps | undefined, name: string, x: np.Array): np.Array {
  if (taps && !taps.has(name)) taps.set(name, x.ref);
  return x;
}

/** A borrowed reference to parameter `key` (throws with the key name if absent). */
function p(P: Params, key: string): np.Array {
  const a = P[key];
  if (!a) throw new Error(`missing parameter "${key}"`);
  return a.ref;
}

// ---------------------------------------------------------------------------------------------
// Coordinates and positional encoding (docs/conventions.md §2, §3, §12)

/** Pixel-centre grid over (−1, 1): `grid[i, j] = (y_i, x_j)`, row coordinate first, shape (H, W, 2). */
export function coordGrid(h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * 2);
  for (let i = 0; i < h; i++) {
    const y = Math.fround(-1 + (2 * (i + 0.5)) / h);
    for (let j = 0; j < w; j++) {
      out[2 * (i * w + j)] = y;
      out[2 * (i * w + j) + 1] = Math.fround(-1 + (2 * (j + 0.5)) / w);
    }
  }
  return out;
}

/**
 * Fourier frequencies `w_k = exp(linspace(0, ln σ, K))` evaluated as torch does in float32
 * (symmetric linspace, float32 exp), so that PE features match the reference's.
 */
export function peFrequencies(k: number, sigma: number): Float32Array {
  const w = new Float32Array(k);
  const end = Math.fround(Math.log(sigma));
  if (k === 1) {
    w[0] = 1;
    return w;
  }
  const step = Math.fround(end / (k - 1));
  const half = Math.floor(k / 2);
  for (let i = 0; i < k; i++) {
    const lin = i < half ? Math.fround(i * step) : Math.fround(end - Math.fround((k - 1 - i) * step));
    w[i] = Math.fround(Math.exp(lin));
  }
  return w;
}

/**
 * PE(c) = [cos(π a), sin(π a)] with a[d·K + k] = c_d · w_k (coordinate-major), for c of shape
 * (..., D) → (..., 2·D·K). The phase is reduced modulo 2 before the multiplication by π (exact in
 * float32), so the features are accurate for any coordinate magnitude.
 */
export function positionalEncoding(coords: np.Array, freqs: Float32Array): np.Array {
  const shape = coords.shape;
  const d = shape[shape.length - 1]!;
  const k = freqs.length;
  const a = coords
    .reshape([...shape, 1])
    .mul(np.array(freqs))
    .reshape([...shape.slice(0, -1), d * k]);
  const r = a.ref.sub(np.floor(a.mul(0.5)).mul(2));
  const theta = r.mul(Math.PI);
  return np.concatenate([np.cos(theta.ref), np.sin(theta)], -1);
}

/**
 * Variational coordinates: `c + clip(0.3·u·N(0,1), ±0.5·u)` with u = 1/max(h, w), i.i.d. per
 * element. `normal` is standard-normal noise of the same shape as `coords`.
 */
export function jitterCoords(coords: np.Array, normal: np.Array, h: number, w: number): np.Array {
  const u = 1 / Math.max(h, w);
  return coords.add(np.clip(normal.mul(0.3 * u), -0.5 * u, 0.5 * u));
}

// ---------------------------------------------------------------------------------------------
// Layers

/** y = x Wᵀ + b (PyTorch layout: W is (out, in)). */
export function linear(P: Params, key: string, x: np.Array, bias = true): np.Array {
  const y = np.matmul(x, p(P, `${key}.weight`).transpose());
  return bias ? y.add(p(P, `${key}.bias`)) : y;
}

/** LayerNorm over the last axis, eps 1e-5, biased variance (as torch). */
export function layerNorm(P: Params, key: string, x: np.Array): np.Array {
  const axis = x.ndim - 1;
  const mu = np.mean(x.ref, axis, { keepdims: true });
  const xc = x.sub(mu);
  const variance = np.mean(np.square(xc.ref), axis, { keepdims: true });
  return xc
    .div(np.sqrt(variance.add(1e-5)))
    .mul(p(P, `${key}.weight`))
    .add(p(P, `${key}.bias`));
}

/** Exact GELU: x·Φ(x) with the error function (torch's default, not the tanh approximation). */
export function gelu(x: np.Array): np.Array {
  return x.ref.mul(0.5).mul(lax.erf(x.mul(Math.SQRT1_2)).add(1));
}

/** (B, N, h·d) → (B, h, N, d): feature f = head·d + j ('b n (h d) -> b h n d'). */
function splitHeads(x: np.Array, nHead: number): np.Array {
  const [b, n, f] = x.shape as [number, number, number];
  return x.reshape([b, n, nHead, f / nHead]).transpose([0, 2, 1, 3]);
}

function mergeHeads(x: np.Array): np.Array {
  const [b, h, n, d] = x.shape as [number, number, number, number];
  return x.transpose([0, 2, 1, 3]).reshape([b, n, h * d]);
}

/** Multi-head attention of the transformer: q from `x` (no bias), fused [k|v] from `ctx` (no bias). */
export function attention(
  P: Params,
  key: string,
  x: np.Array,
  ctx: np.Array,
  nHead: number,
  headDim: number,
): np.Array {
  const inner = nHead * headDim;
  const q = splitHeads(linear(P, `${key}.to_q`, x, false), nHead);
  const [k, v] = np.split(linear(P, `${key}.to_kv`, ctx, false), [inner], -1) as [np.Array, np.Array];
  const logits = np.matmul(q, splitHeads(k, nHead).transpose([0, 1, 3, 2])).mul(headDim ** -0.5);
  const out = np.matmul(nn.softmax(logits, -1), splitHeads(v, nHead));
  return linear(P, `${key}.to_out.0`, mergeHeads(out));
}

/** Linear → exact GELU → Linear (keys net.0, net.3). */
export function feedForward(P: Params, key: string, x: np.Array): np.Array {
  return linear(P, `${key}.net.3`, gelu(linear(P, `${key}.net.0`, x)));
}

// ---------------------------------------------------------------------------------------------
// Transformer (pre-norm, no final LayerNorm)

/** x + Attn(LN(x)) for self-attention; the context is the normalised stream itself. */
function selfAttnBlock(
  P: Params,
  key: string,
  x: np.Array,
  a: { n_head: number; head_dim: number },
): np.Array {
  const h = layerNorm(P, `${key}.norm`, x.ref);
  return x.add(attention(P, `${key}.fn`, h.ref, h, a.n_head, a.head_dim));
}

export function transformerEncoder(P: Params, a: TInrEncoderArgs, x: np.Array, taps?: Taps): np.Array {
  let shortcut = a.shortcut_every > 0 ? x.ref : null;
  for (let i = 0; i < a.depth; i++) {
    const key = `tinr_enc.layers.${i}`;
    x = selfAttnBlock(P, `${key}.0`, x, a);
    const ff = feedForward(P, `${key}.1.fn`, layerNorm(P, `${key}.1.norm`, x.ref));
    if (shortcut && (i + 1) % a.shortcut_every === 0) {
      // The long skip replaces this layer's feed-forward residual.
      x.dispose();
      x = ff.add(shortcut);
      shortcut = x.ref;
    } else {
      x = x.add(ff);
    }
  }
  shortcut?.dispose();
  return tap(taps, "encoded", x);
}

export function transformerDecoder(
  P: Params,
  a: TInrDecoderArgs,
  x: np.Array,
  ctx: np.Array,
  taps?: Taps,
): np.Array {
  for (let i = 0; i < a.depth; i++) {
    const key = `tinr_dec.hypobuilder.${i}`;
    x = selfAttnBlock(P, `${key}.0`, x, a);
    // Cross-attention reads the raw encoder output: PreNorm normalises only the query stream.
    x = x.ref.add(
      attention(P, `${key}.1.fn`, layerNorm(P, `${key}.1.norm`, x), ctx.ref, a.n_head, a.head_dim),
    );
    x = x.ref.add(feedForward(P, `${key}.2.fn`, layerNorm(P, `${key}.2.norm`, x)));
  }
  ctx.dispose();
  return tap(taps, "wtokens_dec", x);
}

// ---------------------------------------------------------------------------------------------
// Tokenizers

/**
 * Non-overlapping p×p patches with zero padding, row-major over patches, each patch vector
 * channel-major (c·p·p + ky·p + kx), as F.unfold. Pixels not covered by whole patches are dropped.
 * x: (B, C, H, W) → (B, L, C·p·p).
 */
export function patchify(x: np.Array, patch: number, padding: number): np.Array {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  if (padding > 0)
    x = np.pad(x, [
      [0, 0],
      [0, 0],
      [padding, padding],
      [padding, padding],
    ]);
  const gh = Math.floor((h + 2 * padding) / patch);
  const gw = Math.floor((w + 2 * padding) / patch);
  if (gh * patch !== h + 2 * padding || gw * patch !== w + 2 * padding) {
    x = x.slice([], [], [0, gh * patch], [0, gw * patch]);
  }
  return x
    .reshape([b, c, gh, patch, gw, patch])
    .transpose([0, 2, 4, 1, 3, 5])
    .reshape([b, gh * gw, c * patch * patch]);
}

/** Number of patches an image of h×w gives. */
export function patchCount(h: number, w: number, patch: number, padding: number): number {
  return Math.floor((h + 2 * padding) / patch) * Math.floor((w + 2 * padding) / patch);
}

/** Image tokens: prefc(patches) + posemb. imgs in [-1, 1], (B, C, H, W). */
export function imgTokenizer(P: Params, cfg: HyperNetworkConfig, imgs: np.Array): np.Array {
  const a = cfg.tokenizer.args as { patch_size: number; padding: number };
  return linear(P, "tokenizer.prefc", patchify(imgs, a.patch_size, a.padding)).add(p(P, "tokenizer.posemb"));
}

/** Inputs of a view-synthesis model: posed support views. */
export interface SupportViews {
  /** (B, n, 3, H, W) in [0, 1] (not normalised, as the reference). */
  imgs: np.Array;
  /** (B, n, 3, 4) camera-to-world. */
  poses: np.Array;
  /** (B, n, 2) [f_x, f_y] in pixels. */
  focals: np.Array;
}

/** View tokens: per pixel [rgb, ray origin, ray direction], patches per view, view-major; no posemb. */
export function nvsTokenizer(P: Params, cfg: HyperNetworkConfig, views: SupportViews, taps?: Taps): np.Array {
  const a = cfg.tokenizer.args as { patch_size: number; padding: number };
  const [b, n, , h, w] = views.imgs.shape as [number, number, number, number, number];
  const [rayO, rayD] = posesToRays(views.poses, views.focals, h, w); // (B, n, H, W, 3) each
  tap(taps, "support_rays_o", rayO);
  tap(taps, "support_rays_d", rayD);
  const rays = np.concatenate([rayO, rayD], -1).transpose([0, 1, 4, 2, 3]); // (B, n, 6, H, W)
  const pix = np.concatenate([views.imgs, rays], 2).reshape([b * n, 9, h, w]);
  const patches = patchify(pix, a.patch_size, a.padding);
  const [, l, f] = patches.shape as [number, number, number];
  return linear(P, "tokenizer.prefc", patches.reshape([b, n * l, f]));
}

// ---------------------------------------------------------------------------------------------
// Hyponet parameter layout and the hyper-network heads

/** Effective positional-encoding layout of a hyponet. */
export interface EncodingLayout {
  /** Frequencies per coordinate (K). */
  nFreqs: number;
  /** Encoding width before padding: in_dim·2K, or in_dim without PE. */
  encDim: number;
  /** Zero columns appended (ANR adaptive_idim). */
  padDim: number;
}

export function encodingLayout(cfg: HyperNetworkConfig): EncodingLayout {
  const h = cfg.hyponet;
  const a = h.args;
  if (h.name === "ANR") {
    // adaptive_idim replaces pe_dim by hidden // in_dim and pads the rest with zeros. Unlike the
    // reference (which crashes when hidden // in_dim is odd), the padding is sized to fit exactly.
    const peDim = a.in_dim * a.pe_dim === a.hidden_dim ? a.pe_dim : Math.floor(a.hidden_dim / a.in_dim);
    const nFreqs = a.use_pe ? Math.floor(peDim / 2) : 0;
    const encDim = a.use_pe ? a.in_dim * 2 * nFreqs : a.in_dim;
    return { nFreqs, encDim, padDim: a.hidden_dim - encDim };
  }
  // HypoMlp / HypoMlpIPC drop an odd pe_dim to pe_dim − 1.
  const nFreqs = a.use_pe ? Math.floor(a.pe_dim / 2) : 0;
  return { nFreqs, encDim: a.use_pe ? a.in_dim * 2 * nFreqs : a.in_dim, padDim: 0 };
}

/** Shapes of the MLP hyponet layers `wb_i` = (in + 1, out), weight rows first, bias last. */
export function mlpLayerShapes(cfg: HyperNetworkConfig): [number, number][] {
  const a = cfg.hyponet.args as HypoMlpArgs | HypoMlpIpcArgs;
  const { encDim } = encodingLayout(cfg);
  const shapes: [number, number][] = [];
  let last = encDim;
  for (let i = 0; i < a.depth; i++) {
    const out = i === a.depth - 1 ? a.out_dim : a.hidden_dim;
    shapes.push([last + 1, out]);
    last = out;
  }
  return shapes;
}

/** A generated hyponet parameter: its name, per-instance shape, and the weight tokens it uses. */
export interface GeneratedParam {
  name: string;
  shape: [number, number];
  /** Number of weight tokens assigned (contiguous, in this order). */
  tokens: number;
}

/** The hyponet parameters the hyper-network generates, in reference order (`hyponet.param_shapes`). */
export function generatedParams(cfg: HyperNetworkConfig): GeneratedParam[] {
  const h = cfg.hyponet;
  if (h.name === "ANR")
    return [{ name: "dtoken", shape: [h.args.token_len, h.args.hidden_dim], tokens: h.args.token_len }];
  const shapes = mlpLayerShapes(cfg);
  const layers = h.name === "HypoMlpIPC" ? [h.args.modulated_layer_id] : shapes.map((_, i) => i);
  return layers.map((i) => {
    const shape = shapes[i]!;
    return { name: `wb${i}`, shape, tokens: Math.min(cfg.n_groups, shape[1]) };
  });
}

/** Hyponet parameters of one batch, as generated by the hyper-network: name → (B, …). */
export type HypoParams = Record<string, np.Array>;

/** Turn decoder outputs t (B, n_wtokens, dim) into hyponet parameters. */
export function weightHead(P: Params, cfg: HyperNetworkConfig, t: np.Array, taps?: Taps): HypoParams {
  const out: HypoParams = {};
  let start = 0;
  for (const g of generatedParams(cfg)) {
    const slice = t.ref.slice([], [start, start + g.tokens], []);
    start += g.tokens;
    const post = linear(P, `wtoken_postfc.${g.name}.1`, layerNorm(P, `wtoken_postfc.${g.name}.0`, slice));
    let param: np.Array;
    if (cfg.direct_wtoken) {
      // R-tokens: dtoken = w ⊙ postfc(t) + b.
      param = post.mul(p(P, "base_params.dtoken_w")).add(p(P, "base_params.dtoken_b"));
    } else {
      const [rows, cols] = g.shape;
      const inDim = rows - 1;
      const x = post.transpose([0, 2, 1]); // (B, in, groups)
      const base = p(P, `base_params.${g.name}`);
      const b = t.shape[0]!;
      let weight: np.Array;
      let biasRow: np.Array;
      if (cfg.grouping_mode === "mlp") {
        // TransINR: W[:, :, j] = W0[:, j]·x[:, :, j mod g] (cyclic tile), then unit columns.
        const [w0, bias] = np.split(base, [inDim], 0) as [np.Array, np.Array];
        const modulated = np.tile(x, [1, 1, cols / g.tokens]).mul(w0);
        const norm = np.sqrt(np.sum(np.square(modulated.ref), 1, { keepdims: true }));
        weight = modulated.div(np.maximum(norm, 1e-12));
        biasRow = bias;
      } else {
        // IPC: W = x @ base[:g]; the bias row base[g] is shared.
        const [patterns, bias] = np.split(base, [g.tokens], 0) as [np.Array, np.Array];
        weight = np.matmul(x, patterns);
        biasRow = bias;
      }
      param = np.concatenate([weight, np.broadcastTo(biasRow.reshape([1, 1, cols]), [b, 1, cols])], 1);
    }
    out[g.name] = tap(taps, `params.${g.name}`, param);
  }
  t.dispose();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hyponets: coords (B, N, in_dim) → signal (B, N, out_dim)

/**
 * Grid coordinates (..., 2) in (−1, 1) → points on the unit sphere (..., 3): the row coordinate is
 * latitude φ, the column longitude λ, linear between the grid's edge values, and the point is
 * (cos φ cos λ, cos φ sin λ, sin φ).
 */
export function sphereCoords(coords: np.Array, s: SphereArgs): np.Array {
  const rad = Math.PI / 180;
  const half = (lo: number, hi: number) => [((hi - lo) / 2) * rad, ((hi + lo) / 2) * rad];
  const [sLat, oLat] = half(s.lat[0], s.lat[1]);
  const [sLon, oLon] = half(s.lon[0], s.lon[1]);
  const ang = coords.mul(np.array([sLat!, sLon!])).add(np.array([oLat!, oLon!]));
  const [lat, lon] = np.split(ang, 2, -1) as [np.Array, np.Array];
  const cosLat = np.cos(lat.ref);
  return np.concatenate([cosLat.ref.mul(np.cos(lon.ref)), cosLat.mul(np.sin(lon)), np.sin(lat)], -1);
}

function encode(cfg: HyperNetworkConfig, coords: np.Array): np.Array {
  const a = cfg.hyponet.args;
  const layout = encodingLayout(cfg);
  if (a.sphere !== null) coords = sphereCoords(coords, a.sphere);
  let x = a.use_pe ? positionalEncoding(coords, peFrequencies(layout.nFreqs, a.pe_sigma)) : coords;
  if (layout.padDim > 0)
    x = np.pad(x, [...x.shape.slice(0, -1).map(() => [0, 0] as [number, number]), [0, layout.padDim]]);
  return x;
}

/**
 * ANR: x = PE(c); p = softmax(q kᵀ/√d) against the R-tokens; p' = relu(p − τ)/Σ relu(p − τ);
 * o = to_out(p' v); y = MLP(o)·out_scale + out_bias. No residual, no LayerNorm.
 */
export function anrHyponet(P: Params, a: AnrArgs, x: np.Array, dtoken: np.Array, taps?: Taps): np.Array {
  tap(taps, "anr.attn_in", x);
  const [b, n, hidden] = x.shape as [number, number, number];
  const [h, d, t] = [a.n_head, a.head_dim, a.token_len];
  const k = splitHeads(linear(P, "hyponet.attn.to_k", dtoken.ref, false), h); // (B, h, T, d)
  const v = splitHeads(linear(P, "hyponet.attn.to_v", dtoken, false), h);
  let logits: np.Array; // (B, N, h, T)
  let y: np.Array;
  const folded = foldAttention(hidden, a);
  if (folded) {
    // Per-instance folding: q kᵀ = x (W_qᵀ kᵀ), so each coordinate meets a (hidden × h·T)
    // matrix instead of being projected to the (h·d)-wide query space first.
    // (jax-js 0.1.25 multiplies wrongly when matmul broadcasts batch axes of unequal rank, so
    // the shared weights are broadcast to the batch explicitly.)
    const wq = np.broadcastTo(p(P, "hyponet.attn.to_q.weight").reshape([1, h, d, hidden]), [b, h, d, hidden]);
    const qk = np.matmul(k, wq).mul(d ** -0.5); // (B, h, T, hidden)
    logits = np.matmul(x, qk.transpose([0, 3, 1, 2]).reshape([b, hidden, h * t])).reshape([b, n, h, t]);
  } else {
    const q = linear(P, "hyponet.attn.to_q", x, false).reshape([b, n, h, d]).transpose([0, 2, 1, 3]);
    logits = np
      .matmul(q, k.transpose([0, 1, 3, 2]))
      .mul(d ** -0.5)
      .transpose([0, 2, 1, 3]);
  }
  if (taps) tap(taps, "anr.logits", logits.ref.transpose([0, 2, 1, 3]));
  const attn = thresholdedSoftmax(logits, a.att_threshold, taps);
  if (taps) tap(taps, "anr.attn", attn.ref.transpose([0, 2, 1, 3]));
  if (folded) {
    // Σ_h p_h (v_h W_out,hᵀ): the values are projected to the output once per instance.
    const wo = p(P, "hyponet.attn.to_out.weight").reshape([hidden, h, d]).transpose([1, 2, 0]); // (h, d, hidden)
    const vo = np
      .matmul(v, np.broadcastTo(wo.reshape([1, h, d, hidden]), [b, h, d, hidden]))
      .reshape([b, h * t, hidden]);
    y = np.matmul(attn.reshape([b, n, h * t]), vo).add(p(P, "hyponet.attn.to_out.bias"));
  } else {
    const o = np.matmul(attn.transpose([0, 2, 1, 3]), v); // (B, h, N, d)
    y = linear(P, "hyponet.attn.to_out", mergeHeads(o));
  }
  tap(taps, "anr.attn_out", y);
  for (let i = 0; i < a.depth - 1; i++) y = nn.relu(linear(P, `hyponet.mlp.${i}.0`, y));
  y = linear(P, `hyponet.mlp.${a.depth - 1}`, y);
  if (a.out_scale !== 1) y = y.mul(a.out_scale);
  return a.out_bias !== 0 ? y.add(a.out_bias) : y;
}

/**
 * relu(p − τ) / Σ relu(p − τ) with p = softmax(l) over the last axis, computed as
 * relu(e − τ·S) / Σ relu(e − τ·S) with e = exp(l − max l), S = Σ e: the same function with one
 * normalisation instead of two. τ = null gives the plain softmax.
 */
export function thresholdedSoftmax(logits: np.Array, tau: number | null, taps?: Taps): np.Array {
  const axis = logits.ndim - 1;
  const e = np.exp(logits.ref.sub(stopGradient(np.max(logits, axis, { keepdims: true }))));
  const total = np.sum(e.ref, axis, { keepdims: true });
  if (taps) tap(taps, "anr.softmax", e.ref.div(total.ref).transpose([0, 2, 1, 3]));
  if (tau === null) return e.div(total);
  const kept = nn.relu(e.sub(total.mul(tau)));
  return kept.ref.div(np.sum(kept, axis, { keepdims: true }));
}

/** Which form of the ANR attention to compute: the cheaper one ("auto"), or one forced. */
export type AttentionForm = "auto" | "direct" | "folded";

let attentionForm: AttentionForm = "auto";

/**
 * Forces a form of the ANR attention for every model built or traced afterwards (tests and
 * benchmarks check both forms; they are the same function up to rounding). Returns the previous
 * setting so that callers can restore it.
 */
export function setAttentionForm(form: AttentionForm): AttentionForm {
  const previous = attentionForm;
  attentionForm = form;
  return previous;
}

/**
 * Whether the folded form of the attention is cheaper per coordinate: it costs 2·hidden·h·T
 * multiply-adds against 2·hidden·(h·d) + 2·T·(h·d) for projecting queries and values.
 */
export function foldAttention(
  hidden: number,
  a: Pick<AnrArgs, "n_head" | "head_dim" | "token_len">,
): boolean {
  if (attentionForm !== "auto") return attentionForm === "folded";
  const inner = a.n_head * a.head_dim;
  return hidden * a.n_head * a.token_len < hidden * inner + a.token_len * inner;
}

/** [x, 1] @ wb with wb (B, in+1, out) or shared (in+1, out). */
function affine(x: np.Array, wb: np.Array): np.Array {
  const rows = wb.shape[wb.ndim - 2]!;
  const [w, b] = np.split(wb, [rows - 1], wb.ndim - 2) as [np.Array, np.Array];
  return np.matmul(x, w).add(b);
}

/** MLP hyponets: ReLU between layers; `global` holds the shared layers of IPC. */
export function mlpHyponet(P: Params, cfg: HyperNetworkConfig, x: np.Array, generated: HypoParams): np.Array {
  const a = cfg.hyponet.args as HypoMlpArgs | HypoMlpIpcArgs;
  for (let i = 0; i < a.depth; i++) {
    const wb = generated[`wb${i}`] ?? p(P, `hyponet.global_params.wb${i}`);
    x = affine(x, wb);
    if (i < a.depth - 1) x = nn.relu(x);
  }
  x = a.out_bias !== 0 ? x.add(a.out_bias) : x;
  if (cfg.hyponet.name === "HypoMlpIPC") {
    const act = (a as HypoMlpIpcArgs).activation;
    if (act === "sigmoid") x = nn.sigmoid(x);
    else if (act === "tanh") x = np.tanh(x);
  }
  return x;
}

/** Evaluate the hyponet at coords (B, N, in_dim) with generated parameters (consumed). */
export function hyponet(
  P: Params,
  cfg: HyperNetworkConfig,
  coords: np.Array,
  generated: HypoParams,
  taps?: Taps,
): np.Array {
  const x = encode(cfg, coords);
  if (cfg.hyponet.name === "ANR") return anrHyponet(P, cfg.hyponet.args, x, generated.dtoken!, taps);
  return mlpHyponet(P, cfg, x, generated);
}

// ---------------------------------------------------------------------------------------------
// The hyper-network

/** Data → hyponet parameters. Input: normalised images (B, C, H, W), or support views. */
export function hyperNetwork(
  P: Params,
  cfg: HyperNetworkConfig,
  input: np.Array | SupportViews,
  taps?: Taps,
): HypoParams {
  const tokens = tap(
    taps,
    "tokens",
    cfg.tokenizer.name === "ImgTokenizer"
      ? imgTokenizer(P, cfg, input as np.Array)
      : nvsTokenizer(P, cfg, input as SupportViews, taps),
  );
  const encoded = transformerEncoder(P, cfg.tinr_enc.args, tokens, taps);
  const b = encoded.shape[0]!;
  const wtokens = p(P, "wtokens");
  const init = np.broadcastTo(wtokens.reshape([1, ...wtokens.shape]), [b, ...wtokens.shape]);
  return weightHead(P, cfg, transformerDecoder(P, cfg.tinr_dec.args, init, encoded, taps), taps);
}

/** Size of the input each tokenizer expects, [H, W]. */
export function inputSize(cfg: HyperNetworkConfig): [number, number] {
  return sizeHW(cfg.tokenizer.args.input_size);
}
