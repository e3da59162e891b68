/**
 * ONNX export: a model (config + weights) as two ONNX graphs (opset 17, float32, dynamic batch and
 * point counts) that any ONNX runtime can run, with the same math as src/model/:
 *
 *   encoder.onnx   images (B, C, H, W) in [-1, 1]          → generated parameters (R-tokens, or
 *                  or views (B, n, 3, H, W) in [0, 1] with     the baselines' weights), one output
 *                  poses (B, n, 3, 4) and focals (B, n, 2)     per `generatedParams(config)` entry
 *   decoder.onnx   generated parameters + coords (B|1, N, in_dim) → signal (B, N, out_dim)
 *
 * Inputs and outputs are in the network's own units, as `hyperNetwork` and `hyponet` take and give
 * them: images are 2·img − 1 (fields: their normalised values, then the same), the signal is the
 * raw hyponet output ([-1, 1] for images; for radiance fields the (rgb, σ) logits before volume
 * rendering). Coordinates are the pixel-centre grid (`coordGrid`), or 3-D sample points. A coords
 * batch of 1 is shared by every instance, so the grid's encoding is computed once.
 *
 * Portable: it imports no Node built-in (protobufjs writes the bytes).
 */
import type { HyperNetworkConfig } from "../model/config.js";
import { sizeHW } from "../model/config.js";
import {
  type GeneratedParam,
  type Hyponet,
  foldAttention,
  hyponetOf,
  peFrequencies,
} from "../model/model.js";
import { baseKey, layerName } from "../model/hyponets/mlp.js";
import { unhandledKind } from "../model/hyponets/hyponet.js";
import type { HostTensor } from "../util/host.js";
import { GraphBuilder, IR_VERSION, OPSET } from "./onnx-graph.js";
import { type ModelSummary, decodeModelSummary, encodeModel } from "./onnx-proto.js";
import { CONFIG_METADATA_KEY, validateWeights } from "./weights.js";

export { type ModelSummary, decodeModelSummary };

/** The two graphs of an exported model. */
export interface OnnxModels {
  /** Data → generated parameters. */
  encoder: Uint8Array;
  /** Generated parameters + coordinates → signal. */
  decoder: Uint8Array;
}

/** Metadata key of an exported graph: "encoder" or "decoder". */
export const ONNX_ROLE_KEY = "anr.role";
/** Name of the decoder's coordinate input and of its output. */
export const ONNX_COORDS = "coords";
export const ONNX_SIGNAL = "signal";
/** Names of the encoder's inputs: images, or posed views. */
export const ONNX_IMAGES = "images";
export const ONNX_VIEWS = ["views", "poses", "focals"] as const;

const LN_EPS = 1e-5;

/** Graph code over one model's weights: the layers of layers.ts as ONNX nodes. */
class ModelGraph {
  readonly g = new GraphBuilder();
  private readonly used = new Map<string, string>();

  constructor(
    readonly cfg: HyperNetworkConfig,
    private readonly weights: Map<string, HostTensor>,
  ) {}

  private tensor(key: string): HostTensor {
    const t = this.weights.get(key);
    // Weights were validated against the config, so a missing key is a bug here.
    if (!t) throw new Error(`missing parameter "${key}"`);
    return t;
  }

  /** Parameter `key` as an initialiser, reshaped to `dims` (the same values in the same order). */
  param(key: string, dims?: number[]): string {
    const t = this.tensor(key);
    const shape = dims ?? t.shape;
    const id = `${key}[${shape}]`;
    let name = this.used.get(id);
    if (!name) {
      name = this.g.constant(key, t.data, shape);
      this.used.set(id, name);
    }
    return name;
  }

  /** Rows [r0, r1) of the (out, in) weight `key`, transposed to (in, r1 − r0) for x @ W. */
  weightT(key: string, r0 = 0, r1?: number): string {
    const t = this.tensor(key);
    const [rows, cols] = t.shape as [number, number];
    const end = r1 ?? rows;
    const out = new Float32Array((end - r0) * cols);
    for (let r = r0; r < end; r++)
      for (let c = 0; c < cols; c++) out[c * (end - r0) + (r - r0)] = t.data[r * cols + c]!;
    return this.g.constant(`${key}^T[${r0}:${end}]`, out, [cols, end - r0]);
  }

  /** y = x Wᵀ + b. */
  linear(x: string, key: string, bias = true): string {
    const y = this.g.matmul(x, this.weightT(`${key}.weight`));
    return bias ? this.g.add(y, this.param(`${key}.bias`)) : y;
  }

  layerNorm(x: string, key: string): string {
    return this.g.op("LayerNormalization", [x, this.param(`${key}.weight`), this.param(`${key}.bias`)], {
      axis: -1,
      epsilon: { f: LN_EPS },
    });
  }

  /** Exact GELU, x·0.5·(1 + erf(x/√2)) (opset 17 has no Gelu). */
  gelu(x: string): string {
    const g = this.g;
    const erf = g.op("Erf", [g.mul(x, g.scalar(Math.SQRT1_2))]);
    return g.mul(g.mul(x, g.scalar(0.5)), g.add(erf, g.scalar(1)));
  }

  /** (B, N, h·d) → (B, h, N, d), or (B, h, d, N) with `keysT`. */
  heads(x: string, h: number, d: number, keysT = false): string {
    return this.g.transpose(this.g.reshape(x, [0, 0, h, d]), keysT ? [0, 2, 3, 1] : [0, 2, 1, 3]);
  }

  /** The transformer's multi-head attention: q from x, [k | v] from ctx (layers.ts `attention`). */
  attention(x: string, ctx: string, key: string, h: number, d: number): string {
    const g = this.g;
    const inner = h * d;
    const q = this.heads(g.matmul(x, this.weightT(`${key}.to_q.weight`)), h, d);
    const kT = this.heads(g.matmul(ctx, this.weightT(`${key}.to_kv.weight`, 0, inner)), h, d, true);
    const v = this.heads(g.matmul(ctx, this.weightT(`${key}.to_kv.weight`, inner, 2 * inner)), h, d);
    const logits = g.mul(g.matmul(q, kT), g.scalar(d ** -0.5));
    const o = g.matmul(g.op("Softmax", [logits], { axis: -1 }), v);
    return this.linear(g.reshape(g.transpose(o, [0, 2, 1, 3]), [0, 0, inner]), `${key}.to_out.0`);
  }

  feedForward(x: string, key: string): string {
    return this.linear(this.gelu(this.linear(x, `${key}.net.0`)), `${key}.net.3`);
  }

  selfAttnBlock(x: string, key: string, a: { n_head: number; head_dim: number }): string {
    const h = this.layerNorm(x, `${key}.norm`);
    return this.g.add(x, this.attention(h, h, `${key}.fn`, a.n_head, a.head_dim));
  }

  /** model.ts `transformerEncoder` (the reference's state_dict names). */
  encoder(x: string): string {
    const a = this.cfg.tinr_enc.args;
    let shortcut = a.shortcut_every > 0 ? x : null;
    for (let i = 0; i < a.depth; i++) {
      const key = `tinr_enc.layers.${i}`;
      x = this.selfAttnBlock(x, `${key}.0`, a);
      const ff = this.feedForward(this.layerNorm(x, `${key}.1.norm`), `${key}.1.fn`);
      if (shortcut && (i + 1) % a.shortcut_every === 0) {
        x = this.g.add(ff, shortcut);
        shortcut = x;
      } else {
        x = this.g.add(x, ff);
      }
    }
    return x;
  }

  /** model.ts `transformerDecoder`: the weight tokens, broadcast to the batch of `ctx`. */
  decoder(ctx: string, batch: string): string {
    const g = this.g;
    const a = this.cfg.tinr_dec.args;
    const wt = this.tensor("wtokens");
    const [n, dim] = wt.shape as [number, number];
    let x = g.op("Expand", [this.param("wtokens", [1, n, dim]), g.concat([batch, g.int64([n, dim])], 0)]);
    for (let i = 0; i < a.depth; i++) {
      const key = `tinr_dec.hypobuilder.${i}`;
      x = this.selfAttnBlock(x, `${key}.0`, a);
      // Cross-attention reads the raw encoder output: PreNorm normalises only the query stream.
      x = g.add(
        x,
        this.attention(this.layerNorm(x, `${key}.1.norm`), ctx, `${key}.1.fn`, a.n_head, a.head_dim),
      );
      x = g.add(x, this.feedForward(this.layerNorm(x, `${key}.2.norm`), `${key}.2.fn`));
    }
    return x;
  }

  /** F.unfold with stride = patch over the last two axes of (lead…, C, H, W) → (lead₀, L·…, C·p·p). */
  patchify(x: string, lead: number, c: number, h: number, w: number): string {
    const g = this.g;
    const { patch_size: p, padding } = this.cfg.tokenizer.args;
    const rank = lead + 3;
    if (padding > 0) {
      const pads = Array.from({ length: 2 * rank }, (_, i) => (i % rank >= rank - 2 ? padding : 0));
      x = g.op("Pad", [x, g.int64(pads)], { mode: "constant" });
    }
    const gh = Math.floor((h + 2 * padding) / p);
    const gw = Math.floor((w + 2 * padding) / p);
    // Pixels not covered by whole patches are dropped, as F.unfold does.
    if (gh * p !== h + 2 * padding) x = g.slice(x, rank - 2, 0, gh * p);
    if (gw * p !== w + 2 * padding) x = g.slice(x, rank - 1, 0, gw * p);
    const keep = Array<number>(lead).fill(0);
    x = g.reshape(x, [...keep, c, gh, p, gw, p]);
    const l = [...keep.keys()];
    x = g.transpose(x, [...l, lead + 1, lead + 3, lead, lead + 2, lead + 4]);
    return g.reshape(x, [0, -1, c * p * p]);
  }

  /** ImgTokenizer: prefc(patches) + posemb. */
  imageTokens(images: string): string {
    const a = this.cfg.tokenizer.args;
    const [h, w] = sizeHW(a.input_size);
    const c = "img_channels" in a ? a.img_channels : 3;
    return this.g.add(
      this.linear(this.patchify(images, 1, c, h, w), "tokenizer.prefc"),
      this.param("tokenizer.posemb"),
    );
  }

  /** NvsTokenizer: per pixel [rgb, ray origin, ray direction] (rendering/rays.ts), patches per view, view-major. */
  viewTokens(views: string, poses: string, focals: string): string {
    const g = this.g;
    const [h, w] = sizeHW(this.cfg.tokenizer.args.input_size);
    const u = new Float32Array(h * w);
    const v = new Float32Array(h * w);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        u[i * w + j] = j + 0.5 - w / 2;
        v[i * w + j] = -(i + 0.5 - h / 2);
      }
    const col = (x: string) => g.reshape(x, [0, 0, h * w, 1]);
    const dx = col(g.op("Div", [g.constant("ray_u", u, [h * w]), g.slice(focals, -1, 0, 1)]));
    const dy = col(g.op("Div", [g.constant("ray_v", v, [h * w]), g.slice(focals, -1, 1, 2)]));
    const dz = g.op("Expand", [g.scalar(-1), g.op("Shape", [dx])]);
    const dirs = g.concat([dx, dy, dz], -1); // (B, n, HW, 3)
    const rot = g.slice(poses, -1, 0, 3);
    const d = g.matmul(dirs, g.transpose(rot, [0, 1, 3, 2]));
    const o = g.op("Expand", [g.transpose(g.slice(poses, -1, 3, 4), [0, 1, 3, 2]), g.op("Shape", [d])]);
    const rays = g.reshape(g.transpose(g.concat([o, d], -1), [0, 1, 3, 2]), [0, 0, 6, h, w]);
    const pix = g.concat([views, rays], 2); // (B, n, 9, H, W)
    return this.linear(this.patchify(pix, 2, 9, h, w), "tokenizer.prefc");
  }

  /** model.ts `weightHead`: decoder outputs → each generated parameter, (B, rows, cols). */
  head(kind: Hyponet, t: string, batch: string): Map<string, string> {
    const g = this.g;
    const out = new Map<string, string>();
    let start = 0;
    for (const gp of kind.generated) {
      const slice = g.slice(t, 1, start, start + gp.tokens);
      start += gp.tokens;
      const postfc = `wtoken_postfc.${gp.name}`;
      const post = this.linear(this.layerNorm(slice, `${postfc}.0`), `${postfc}.1`);
      out.set(gp.name, this.headOf(kind, gp, post, batch));
    }
    return out;
  }

  private headOf(kind: Hyponet, gp: GeneratedParam, post: string, batch: string): string {
    const g = this.g;
    const h = this.cfg.hyponet;
    const [rows, cols] = gp.shape;
    // The shared bias row: the last row of the learned base, broadcast to the batch.
    const bias = () => {
      const base = this.tensor(baseKey(gp));
      const row = base.data.slice((base.shape[0]! - 1) * cols);
      const shape = g.concat([batch, g.int64([1, cols])], 0);
      return g.op("Expand", [g.constant(`${baseKey(gp)}[bias]`, row, [1, 1, cols]), shape]);
    };
    switch (h.name) {
      case "ANR": {
        // dtoken = w ⊙ postfc(t) + b.
        const [scale, shift] = kind.headParams(gp).map((s) => this.param(s.key));
        return g.add(g.mul(post, scale!), shift!);
      }
      case "HypoMlp": {
        // W[:, :, j] = W0[:, j]·x[:, :, j mod g] (cyclic tile), unit columns, then the shared bias row.
        const base = this.tensor(baseKey(gp));
        const w0 = g.constant(`${baseKey(gp)}[weight]`, base.data.slice(0, (rows - 1) * cols), [
          rows - 1,
          cols,
        ]);
        const x = g.op("Tile", [g.transpose(post, [0, 2, 1]), g.int64([1, 1, cols / gp.tokens])]);
        const m = g.mul(x, w0);
        const norm = g.op("Sqrt", [g.op("ReduceSum", [g.mul(m, m), g.int64([1])], { keepdims: 1 })]);
        const weight = g.op("Div", [m, g.op("Max", [norm, g.scalar(1e-12)])]);
        return g.concat([weight, bias()], 1);
      }
      case "HypoMlpIPC": {
        // W = x @ base[:g] (the weight tokens mix g learned patterns), then the shared bias row base[g].
        const base = this.tensor(baseKey(gp));
        const patterns = g.constant(`${baseKey(gp)}[patterns]`, base.data.slice(0, gp.tokens * cols), [
          gp.tokens,
          cols,
        ]);
        return g.concat([g.matmul(g.transpose(post, [0, 2, 1]), patterns), bias()], 1);
      }
      default:
        return unhandledKind(h);
    }
  }

  /** model.ts `encode`: sphere mapping, Fourier features (phase reduced mod 2), zero padding. */
  encodeCoords(coords: string, kind: Hyponet): string {
    const g = this.g;
    const a = this.cfg.hyponet.args;
    let c = coords;
    let d = a.in_dim;
    if (a.sphere !== null) {
      const rad = Math.PI / 180;
      const half = (lo: number, hi: number) => [((hi - lo) / 2) * rad, ((hi + lo) / 2) * rad] as const;
      const [sLat, oLat] = half(a.sphere.lat[0], a.sphere.lat[1]);
      const [sLon, oLon] = half(a.sphere.lon[0], a.sphere.lon[1]);
      const ang = g.add(
        g.mul(c, g.constant("sphere_scale", Float32Array.of(sLat, sLon), [2])),
        g.constant("sphere_offset", Float32Array.of(oLat, oLon), [2]),
      );
      const lat = g.slice(ang, -1, 0, 1);
      const lon = g.slice(ang, -1, 1, 2);
      const cosLat = g.op("Cos", [lat]);
      c = g.concat(
        [g.mul(cosLat, g.op("Cos", [lon])), g.mul(cosLat, g.op("Sin", [lon])), g.op("Sin", [lat])],
        -1,
      );
      d = 3;
    }
    const { nFreqs: k, padDim } = kind.encoding;
    let x = c;
    if (a.use_pe) {
      const freqs = g.constant("pe_freqs", peFrequencies(k, a.pe_sigma), [k]);
      const ph = g.reshape(g.mul(g.reshape(c, [0, 0, d, 1]), freqs), [0, 0, d * k]);
      const r = g.op("Sub", [ph, g.mul(g.op("Floor", [g.mul(ph, g.scalar(0.5))]), g.scalar(2))]);
      const theta = g.mul(r, g.scalar(Math.PI));
      x = g.concat([g.op("Cos", [theta]), g.op("Sin", [theta])], -1);
    }
    if (padDim > 0) x = g.op("Pad", [x, g.int64([0, 0, 0, 0, 0, padDim])], { mode: "constant" });
    return x;
  }

  /** relu(p − τ)/Σ relu(p − τ) with p = softmax over the last axis (anr.ts `thresholdedSoftmax`). */
  thresholdedSoftmax(logits: string, tau: number | null): string {
    const g = this.g;
    const sum = (x: string) => g.op("ReduceSum", [x, g.int64([-1])], { keepdims: 1 });
    const e = g.op("Exp", [g.op("Sub", [logits, g.op("ReduceMax", [logits], { axes: [-1], keepdims: 1 })])]);
    const total = sum(e);
    if (tau === null) return g.op("Div", [e, total]);
    const kept = g.op("Relu", [g.op("Sub", [e, g.mul(total, g.scalar(tau))])]);
    return g.op("Div", [kept, sum(kept)]);
  }

  /** anr.ts `anrHyponet`, in the same form (folded or direct) as our engine picks. */
  anr(x: string, dtoken: string, kind: Hyponet): string {
    const g = this.g;
    const h0 = this.cfg.hyponet;
    if (h0.name !== "ANR") throw new Error("not an ANR config");
    const a = h0.args;
    const [h, d, t, hidden] = [a.n_head, a.head_dim, a.token_len, a.hidden_dim];
    const attn = "hyponet.attn";
    const k = g.matmul(dtoken, this.weightT(`${attn}.to_k.weight`));
    const v = this.heads(g.matmul(dtoken, this.weightT(`${attn}.to_v.weight`)), h, d); // (B, h, T, d)
    let y: string;
    if (foldAttention(hidden, a)) {
      // q kᵀ = x (W_qᵀ kᵀ): each coordinate meets a (hidden × h·T) matrix per instance.
      const wq = this.param(`${attn}.to_q.weight`, [1, h, d, hidden]);
      const qk = g.mul(g.matmul(this.heads(k, h, d), wq), g.scalar(d ** -0.5)); // (B, h, T, hidden)
      const logits = g.matmul(x, g.reshape(g.transpose(qk, [0, 3, 1, 2]), [0, hidden, h * t]));
      const p = this.thresholdedSoftmax(g.reshape(logits, [0, 0, h, t]), a.att_threshold);
      // Σ_h p_h (v_h W_out,hᵀ): the values projected to the output once per instance.
      const wo = this.tensor(`${attn}.to_out.weight`); // (hidden, h·d) → (h, d, hidden)
      const woT = new Float32Array(wo.data.length);
      for (let r = 0; r < hidden; r++)
        for (let c = 0; c < h * d; c++) woT[c * hidden + r] = wo.data[r * h * d + c]!;
      const vo = g.reshape(g.matmul(v, g.constant(`${attn}.to_out.weight^T`, woT, [1, h, d, hidden])), [
        0,
        h * t,
        hidden,
      ]);
      y = g.add(g.matmul(g.reshape(p, [0, 0, h * t]), vo), this.param(`${attn}.to_out.bias`));
    } else {
      const q = this.heads(g.matmul(x, this.weightT(`${attn}.to_q.weight`)), h, d); // (B, h, N, d)
      const logits = g.mul(
        g.matmul(q, g.transpose(g.reshape(k, [0, 0, h, d]), [0, 2, 3, 1])),
        g.scalar(d ** -0.5),
      );
      const o = g.matmul(this.thresholdedSoftmax(logits, a.att_threshold), v); // (B, h, N, d)
      y = this.linear(g.reshape(g.transpose(o, [0, 2, 1, 3]), [0, 0, h * d]), `${attn}.to_out`);
    }
    const mlp = kind.params.filter((s) => s.key.startsWith("hyponet.mlp.") && s.key.endsWith(".weight"));
    mlp.forEach((s, i) => {
      y = this.linear(y, s.key.slice(0, -".weight".length));
      if (i < mlp.length - 1) y = g.op("Relu", [y]);
    });
    if (a.out_scale !== 1) y = g.mul(y, g.scalar(a.out_scale));
    return a.out_bias !== 0 ? g.add(y, g.scalar(a.out_bias)) : y;
  }

  /** mlp.ts / ipc.ts: [x, 1] @ wb_i, ReLU between layers; generated layers come from `inputs`. */
  mlp(x: string, inputs: Map<string, string>, kind: Hyponet): string {
    const g = this.g;
    const h = this.cfg.hyponet;
    switch (h.name) {
      case "HypoMlp":
      case "HypoMlpIPC":
        break;
      case "ANR":
        throw new Error("not an MLP config");
      default:
        unhandledKind(h);
    }
    const a = h.args;
    for (let i = 0; i < a.depth; i++) {
      const gen = inputs.get(layerName(i));
      let w: string;
      let b: string;
      if (gen) {
        const rows = kind.generated.find((gp) => gp.name === layerName(i))!.shape[0];
        [w, b] = [g.slice(gen, 1, 0, rows - 1), g.slice(gen, 1, rows - 1, rows)];
      } else {
        const key = kind.params.find((s) => s.key.endsWith(`.${layerName(i)}`))!.key;
        const t = this.tensor(key);
        const [rows, cols] = t.shape as [number, number];
        w = g.constant(`${key}[weight]`, t.data.slice(0, (rows - 1) * cols), [rows - 1, cols]);
        b = g.constant(`${key}[bias]`, t.data.slice((rows - 1) * cols), [1, cols]);
      }
      x = g.add(g.matmul(x, w), b);
      if (i < a.depth - 1) x = g.op("Relu", [x]);
    }
    if (a.out_bias !== 0) x = g.add(x, g.scalar(a.out_bias));
    if (h.name === "HypoMlpIPC" && h.args.activation !== null)
      x = g.op(h.args.activation === "sigmoid" ? "Sigmoid" : "Tanh", [x]);
    return x;
  }
}

function modelBytes(b: ModelGraph, role: "encoder" | "decoder", doc: string): Uint8Array {
  return encodeModel({
    ir_version: IR_VERSION,
    opset_import: [{ domain: "", version: OPSET }],
    producer_name: "anr",
    producer_version: "",
    doc_string: doc,
    graph: b.g.graph(`anr_${role}`, doc),
    metadata_props: [
      { key: ONNX_ROLE_KEY, value: role },
      { key: CONFIG_METADATA_KEY, value: JSON.stringify(b.cfg) },
    ],
  });
}

const ENCODER_DOC =
  "anr encoder: images (batch, C, H, W) as 2*img - 1 (or views (batch, n, 3, H, W) in [0, 1] with poses and focals) -> the generated parameters, one output each";
const DECODER_DOC =
  "anr decoder: generated parameters (batch, rows, cols) + coords (batch or 1, points, in_dim) -> signal (batch, points, out_dim), the raw hyponet output";

/**
 * Export a model as ONNX graphs: `encoder` (data → generated parameters) and `decoder` (generated
 * parameters + coordinates → signal), for every hyponet kind and both tokenizers. The weights are
 * checked against the config first (`source` names them in errors).
 */
export function exportOnnx(
  config: HyperNetworkConfig,
  weights: Map<string, HostTensor>,
  source = "<weights>",
): OnnxModels {
  weights = validateWeights(config, weights, source);
  const kind = hyponetOf(config);
  const [h, w] = sizeHW(config.tokenizer.args.input_size);

  const enc = new ModelGraph(config, weights);
  let tokens: string;
  let first: string;
  if (config.tokenizer.name === "ImgTokenizer") {
    const c = config.tokenizer.args.img_channels;
    first = enc.g.input(ONNX_IMAGES, ["batch", c, h, w], "2*img - 1, NCHW");
    tokens = enc.imageTokens(first);
  } else {
    const [views, poses, focals] = ONNX_VIEWS;
    first = enc.g.input(views, ["batch", "views", 3, h, w], "support views in [0, 1]");
    enc.g.input(poses, ["batch", "views", 3, 4], "camera-to-world, OpenGL axes");
    enc.g.input(focals, ["batch", "views", 2], "[f_x, f_y] in pixels");
    tokens = enc.viewTokens(views, poses, focals);
  }
  const batch = enc.g.op("Shape", [first], { start: 0, end: 1 });
  const generated = enc.head(kind, enc.decoder(enc.encoder(tokens), batch), batch);
  for (const gp of kind.generated) enc.g.output(generated.get(gp.name)!, gp.name, ["batch", ...gp.shape]);

  const dec = new ModelGraph(config, weights);
  const inputs = new Map<string, string>();
  for (const gp of kind.generated) inputs.set(gp.name, dec.g.input(gp.name, ["batch", ...gp.shape]));
  const a = config.hyponet.args;
  const coords = dec.g.input(
    ONNX_COORDS,
    ["coords_batch", "points", a.sphere ? 2 : a.in_dim],
    "coordinates; a batch of 1 is shared",
  );
  const x = dec.encodeCoords(coords, kind);
  const hyponet = config.hyponet;
  let signal: string;
  switch (hyponet.name) {
    case "ANR":
      signal = dec.anr(x, inputs.get(kind.generated[0]!.name)!, kind);
      break;
    case "HypoMlp":
    case "HypoMlpIPC":
      signal = dec.mlp(x, inputs, kind);
      break;
    default:
      return unhandledKind(hyponet);
  }
  dec.g.output(signal, ONNX_SIGNAL, ["batch", "points", a.out_dim]);

  return {
    encoder: modelBytes(enc, "encoder", ENCODER_DOC),
    decoder: modelBytes(dec, "decoder", DECODER_DOC),
  };
}
