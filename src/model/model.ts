/**
 * The ANR model family, written to read like the paper and docs/conventions.md.
 *
 *   tokens   = Tokenizer(x)                                  (ImgTokenizer | NvsTokenizer)
 *   encoded  = TInrEncoder(tokens)
 *   t        = TInrDecoder(wtokens, encoded)                 (one output row per weight token)
 *   θ_i      = head(t)                                       (R-tokens | TransINR "mlp" | IPC "mlp_mod")
 *   signal   = Hyponet(coords; θ_i)                          (ANR | HypoMlp | HypoMlpIPC)
 *
 * The hyponet kinds, each with its head, live in src/model/hyponets/, the building blocks in
 * layers.ts. Each part declares its parameters beside the forward that reads them; params.ts puts
 * the declarations in order. Parameters are a flat record keyed by the reference's state_dict
 * names, so authors' weights load by name. Ownership (jax-js arrays are reference-counted): every function here
 * BORROWS `P` (it takes `.ref`s of what it reads) and CONSUMES its array arguments.
 */
import { numpy as np } from "../backend/jax.js";
import {
  type HyperNetworkConfig,
  type ImgTokenizerArgs,
  type NvsTokenizerArgs,
  type SphereArgs,
  type TInrDecoderArgs,
  type TInrEncoderArgs,
  sizeHW,
} from "./config.js";
import {
  type AttentionSizes,
  type ParamSpec,
  type Params,
  type Taps,
  attention,
  attentionParams,
  feedForward,
  feedForwardParams,
  layerNorm,
  layerNormParams,
  linear,
  linearParams,
  param,
  tap,
} from "./layers.js";
import {
  type EncodingLayout,
  type GridOutput,
  type GeneratedParam,
  type HypoParams,
  type Hyponet,
  type HyponetCommonArgs,
  batchOf,
  unhandledKind,
} from "./hyponets/hyponet.js";
import { anr } from "./hyponets/anr.js";
import { hypoMlp } from "./hyponets/mlp.js";
import { hypoMlpIpc } from "./hyponets/ipc.js";
import { posesToRays } from "../rendering/rays.js";

export { type Params, type Taps, tap, linear, layerNorm, gelu, attention, feedForward } from "./layers.js";
export type { EncodingLayout, GeneratedParam, GridOutput, HypoParams, Hyponet } from "./hyponets/hyponet.js";
export { GRID_GUARD_LIMIT, batchOf } from "./hyponets/hyponet.js";
export {
  anrHyponet,
  anrAttention,
  anrMlp,
  thresholdedSoftmax,
  setAttentionForm,
  foldAttention,
  type AttentionForm,
} from "./hyponets/anr.js";
export { mlpHyponet } from "./hyponets/mlp.js";
export { ipcHyponet } from "./hyponets/ipc.js";

// ---------------------------------------------------------------------------------------------
// Coordinates and positional encoding (docs/conventions.md §2, §3, §12)

/** Centres of n equal cells over (lo, hi), in float32: lo + (hi − lo)·(i + ½)/n. */
export function cellCentres(n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + ((hi - lo) * (i + 0.5)) / n;
  return out;
}

/** Pixel-centre grid over (−1, 1): `grid[i, j] = (y_i, x_j)`, row coordinate first, shape (H, W, 2). */
export function coordGrid(h: number, w: number): Float32Array {
  return gridPoints(cellCentres(h), cellCentres(w));
}

/** The points of the grid rows ys × columns xs: `grid[i, j] = (ys[i], xs[j])`, shape (R, C, 2). */
export function gridPoints(ys: Float32Array, xs: Float32Array): Float32Array {
  const [h, w] = [ys.length, xs.length];
  const out = new Float32Array(h * w * 2);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      out[2 * (i * w + j)] = ys[i]!;
      out[2 * (i * w + j) + 1] = xs[j]!;
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
// Transformer (pre-norm, no final LayerNorm)

/** Parameters of a pre-norm attention block `key` (self- or cross-attention): its LayerNorm, then the attention. */
const attnBlockParams = (key: string, a: AttentionSizes) => [
  ...layerNormParams(`${key}.norm`, a.dim),
  ...attentionParams(`${key}.fn`, a),
];
/** Parameters of a pre-norm feed-forward block `key`. */
const feedForwardBlockParams = (key: string, a: { dim: number; ff_dim: number }) => [
  ...layerNormParams(`${key}.norm`, a.dim),
  ...feedForwardParams(`${key}.fn`, a),
];
const layers = (depth: number) => Array.from({ length: depth }, (_, i) => i);

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

const encoderLayer = (i: number) => `tinr_enc.layers.${i}`;

/** Parameters of `transformerEncoder`: per layer, self-attention then feed-forward. */
export function encoderParams(a: TInrEncoderArgs): ParamSpec[] {
  return layers(a.depth).flatMap((i) => [
    ...attnBlockParams(`${encoderLayer(i)}.0`, a),
    ...feedForwardBlockParams(`${encoderLayer(i)}.1`, a),
  ]);
}

export function transformerEncoder(P: Params, a: TInrEncoderArgs, x: np.Array, taps?: Taps): np.Array {
  let shortcut = a.shortcut_every > 0 ? x.ref : null;
  for (let i = 0; i < a.depth; i++) {
    const key = encoderLayer(i);
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

const decoderLayer = (i: number) => `tinr_dec.hypobuilder.${i}`;

/** Parameters of `transformerDecoder`: per layer, self-attention, cross-attention, feed-forward. */
export function decoderParams(a: TInrDecoderArgs): ParamSpec[] {
  return layers(a.depth).flatMap((i) => [
    ...attnBlockParams(`${decoderLayer(i)}.0`, a),
    ...attnBlockParams(`${decoderLayer(i)}.1`, a),
    ...feedForwardBlockParams(`${decoderLayer(i)}.2`, a),
  ]);
}

export function transformerDecoder(
  P: Params,
  a: TInrDecoderArgs,
  x: np.Array,
  ctx: np.Array,
  taps?: Taps,
): np.Array {
  for (let i = 0; i < a.depth; i++) {
    const key = decoderLayer(i);
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

const PREFC = "tokenizer.prefc";
const POSEMB = "tokenizer.posemb";

/** Parameters of the tokenizer of `cfg`. */
export function tokenizerParams(cfg: HyperNetworkConfig): ParamSpec[] {
  const t = cfg.tokenizer;
  return t.name === "ImgTokenizer" ? imgTokenizerParams(t.args) : nvsTokenizerParams(t.args);
}

/** Parameters of `imgTokenizer`: the position embedding (one row per patch), then prefc. */
function imgTokenizerParams(a: ImgTokenizerArgs): ParamSpec[] {
  const [h, w] = sizeHW(a.input_size);
  const p = a.patch_size;
  return [
    { key: POSEMB, shape: [patchCount(h, w, p, a.padding), a.dim], init: { kind: "normal" } },
    ...linearParams(PREFC, a.img_channels * p * p, a.dim),
  ];
}

/** Image tokens: prefc(patches) + posemb. imgs in [-1, 1], (B, C, H, W). */
export function imgTokenizer(P: Params, cfg: HyperNetworkConfig, imgs: np.Array): np.Array {
  const a = cfg.tokenizer.args as { patch_size: number; padding: number };
  return linear(P, PREFC, patchify(imgs, a.patch_size, a.padding)).add(param(P, POSEMB));
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

/** Features per pixel of a support view: rgb, ray origin, ray direction. */
const VIEW_PIXEL_FEATURES = 9;

/** Parameters of `nvsTokenizer`: prefc only. */
function nvsTokenizerParams(a: NvsTokenizerArgs): ParamSpec[] {
  return linearParams(PREFC, VIEW_PIXEL_FEATURES * a.patch_size * a.patch_size, a.dim);
}

/** View tokens: per pixel [rgb, ray origin, ray direction], patches per view, view-major; no posemb. */
export function nvsTokenizer(P: Params, cfg: HyperNetworkConfig, views: SupportViews, taps?: Taps): np.Array {
  const a = cfg.tokenizer.args as { patch_size: number; padding: number };
  const [b, n, , h, w] = views.imgs.shape as [number, number, number, number, number];
  const [rayO, rayD] = posesToRays(views.poses, views.focals, h, w); // (B, n, H, W, 3) each
  tap(taps, "support_rays_o", rayO);
  tap(taps, "support_rays_d", rayD);
  const rays = np.concatenate([rayO, rayD], -1).transpose([0, 1, 4, 2, 3]); // (B, n, 6, H, W)
  const pix = np.concatenate([views.imgs, rays], 2).reshape([b * n, VIEW_PIXEL_FEATURES, h, w]);
  const patches = patchify(pix, a.patch_size, a.padding);
  const [, l, f] = patches.shape as [number, number, number];
  return linear(P, PREFC, patches.reshape([b, n * l, f]));
}

// ---------------------------------------------------------------------------------------------
// The hyponet kinds and the hyper-network's head

/** The hyponet kind of a config (src/model/hyponets/): its parameters, head and forward. */
export function hyponetOf(cfg: HyperNetworkConfig): Hyponet {
  const h = cfg.hyponet;
  switch (h.name) {
    case "ANR":
      return anr(h.args);
    case "HypoMlp":
      return hypoMlp(h.args, cfg.n_groups);
    case "HypoMlpIPC":
      return hypoMlpIpc(h.args, cfg.n_groups);
    default:
      return unhandledKind(h);
  }
}

/** The positional-encoding layout of the hyponet of `cfg`. */
export function encodingLayout(cfg: HyperNetworkConfig): EncodingLayout {
  return hyponetOf(cfg).encoding;
}

/** The hyponet parameters the hyper-network generates, in reference order (`hyponet.param_shapes`). */
export function generatedParams(cfg: HyperNetworkConfig): GeneratedParam[] {
  return hyponetOf(cfg).generated;
}

/** Post-projection of generated parameter g's weight tokens: LayerNorm then Linear (`wtoken_postfc.<g>`). */
const postfcKey = (g: GeneratedParam) => `wtoken_postfc.${g.name}`;

/** Parameters of the head's post-projections, in the reference's order (after the bases). */
export function postfcParams(cfg: HyperNetworkConfig, kind: Hyponet): ParamSpec[] {
  const dim = cfg.tinr_dec.args.dim;
  return kind.generated.flatMap((g) => [
    ...layerNormParams(`${postfcKey(g)}.0`, dim),
    ...linearParams(`${postfcKey(g)}.1`, dim, kind.postfcWidth(g)),
  ]);
}

/** Turn decoder outputs t (B, n_wtokens, dim) into hyponet parameters. */
export function weightHead(P: Params, cfg: HyperNetworkConfig, t: np.Array, taps?: Taps): HypoParams {
  const kind = hyponetOf(cfg);
  const out: HypoParams = {};
  let start = 0;
  for (const g of kind.generated) {
    const slice = t.ref.slice([], [start, start + g.tokens], []);
    start += g.tokens;
    const post = linear(P, `${postfcKey(g)}.1`, layerNorm(P, `${postfcKey(g)}.0`, slice));
    out[g.name] = tap(taps, `params.${g.name}`, kind.head(P, post, g));
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

/** The hyponet's input: the coordinates (on the sphere if asked), Fourier-encoded, zero-padded. */
function encode(a: HyponetCommonArgs, layout: EncodingLayout, coords: np.Array): np.Array {
  if (a.sphere !== null) coords = sphereCoords(coords, a.sphere);
  let x = a.use_pe ? positionalEncoding(coords, peFrequencies(layout.nFreqs, a.pe_sigma)) : coords;
  if (layout.padDim > 0)
    x = np.pad(x, [...x.shape.slice(0, -1).map(() => [0, 0] as [number, number]), [0, layout.padDim]]);
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
  const kind = hyponetOf(cfg);
  return kind.forward(P, encode(cfg.hyponet.args, kind.encoding, coords), generated, taps);
}

/** Whether the grid of `cfg` goes through its kind's grid form (Hyponet.gridForward). */
function usesGridForm(cfg: HyperNetworkConfig): boolean {
  const a = cfg.hyponet.args;
  return hyponetOf(cfg).gridForward !== undefined && a.in_dim === 2 && a.sphere === null;
}

/** Whether {@link hyponetGridPrepare} computes anything for `cfg` (or gives the parameters back). */
export function gridPrepares(cfg: HyperNetworkConfig): boolean {
  return usesGridForm(cfg) && hyponetOf(cfg).gridPrepare !== undefined;
}

/**
 * The generated parameters as {@link hyponetGridPrepared} takes them: what the grid form computes
 * once per instance (Hyponet.gridPrepare), or the parameters themselves. A decoder prepares once
 * and evaluates any number of grid blocks with the result.
 */
export function hyponetGridPrepare(P: Params, cfg: HyperNetworkConfig, generated: HypoParams): HypoParams {
  return gridPrepares(cfg) ? hyponetOf(cfg).gridPrepare!(P, generated) : generated;
}

/**
 * The hyponet on the grid of rows ys (R) × columns xs (C), as `hyponet` at the points (ys[i], xs[j])
 * in row-major order: (B, R·C, out_dim). Where the encoding is per coordinate (2-D, not on the
 * sphere) and the kind has a grid form, the rows and the columns are encoded once each
 * (Hyponet.gridForward, which `fast` is passed to); otherwise point by point.
 */
export function hyponetGrid(
  P: Params,
  cfg: HyperNetworkConfig,
  ys: np.Array,
  xs: np.Array,
  generated: HypoParams,
  fast = false,
): GridOutput {
  return hyponetGridPrepared(P, cfg, ys, xs, hyponetGridPrepare(P, cfg, generated), fast);
}

/** {@link hyponetGrid} from parameters already made by {@link hyponetGridPrepare}. */
export function hyponetGridPrepared(
  P: Params,
  cfg: HyperNetworkConfig,
  ys: np.Array,
  xs: np.Array,
  prepared: HypoParams,
  fast = false,
): GridOutput {
  const kind = hyponetOf(cfg);
  const a = cfg.hyponet.args;
  const [r, c] = [ys.shape[0]!, xs.shape[0]!];
  const zeros = (n: number) => np.zeros([n, 1]);
  if (usesGridForm(cfg)) {
    const [rowMask, colMask] = coordinateFeatureMasks(a, kind.encoding);
    const rows = encode(a, kind.encoding, np.concatenate([ys.reshape([r, 1]), zeros(r)], -1)).mul(
      np.array(rowMask),
    );
    const cols = encode(a, kind.encoding, np.concatenate([zeros(c), xs.reshape([c, 1])], -1)).mul(
      np.array(colMask),
    );
    return kind.gridForward!(P, rows, cols, prepared, fast);
  }
  const b = batchOf(prepared);
  const points = np
    .concatenate(
      [np.broadcastTo(ys.reshape([r, 1, 1]), [r, c, 1]), np.broadcastTo(xs.reshape([1, c, 1]), [r, c, 1])],
      -1,
    )
    .reshape([1, r * c, 2]);
  return { signal: hyponet(P, cfg, np.broadcastTo(points, [b, r * c, 2]), prepared) };
}

/**
 * Which encoding features depend on the row coordinate and which on the column one (1 or 0 each,
 * padding in neither): the PE's features are [cos(π a), sin(π a)] with a[d·K + k] = c_d·w_k, and
 * without PE the features are the coordinates themselves.
 */
function coordinateFeatureMasks(a: HyponetCommonArgs, layout: EncodingLayout): [Float32Array, Float32Array] {
  const width = layout.encDim + layout.padDim;
  const masks: [Float32Array, Float32Array] = [new Float32Array(width), new Float32Array(width)];
  const perCoord = a.use_pe ? layout.nFreqs : 1;
  const half = a.in_dim * perCoord;
  for (let f = 0; f < layout.encDim; f++) masks[Math.floor((f % half) / perCoord)]![f] = 1;
  return masks;
}

// ---------------------------------------------------------------------------------------------
// The hyper-network

const WTOKENS = "wtokens";

/** The learned weight tokens the decoder starts from: as many as the generated parameters use. */
export function wtokensParams(cfg: HyperNetworkConfig, kind: Hyponet): ParamSpec[] {
  const n = kind.generated.reduce((s, g) => s + g.tokens, 0);
  return [{ key: WTOKENS, shape: [n, cfg.tinr_dec.args.dim], init: { kind: "normal" } }];
}

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
  const wtokens = param(P, WTOKENS);
  const init = np.broadcastTo(wtokens.reshape([1, ...wtokens.shape]), [b, ...wtokens.shape]);
  return weightHead(P, cfg, transformerDecoder(P, cfg.tinr_dec.args, init, encoded, taps), taps);
}

/** Size of the input each tokenizer expects, [H, W]. */
export function inputSize(cfg: HyperNetworkConfig): [number, number] {
  return sizeHW(cfg.tokenizer.args.input_size);
}
