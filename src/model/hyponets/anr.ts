/**
 * ANR: each coordinate attends, with a thresholded (localized) softmax, to the instance's R-tokens,
 * which the hyper-network generates directly; an MLP maps the result to the signal
 * (docs/conventions.md §6, §7).
 */
import { z } from "zod";
import { numpy as np, nn, lax } from "../../backend/jax.js";
import {
  type ParamSpec,
  type Params,
  type Taps,
  linear,
  linearParams,
  mergeHeads,
  param,
  splitHeads,
  tap,
} from "../layers.js";
import {
  type ConfigIssue,
  type EncodingLayout,
  type GeneratedParam,
  type GridOutput,
  type HeadSettings,
  type HypoParams,
  type Hyponet,
  hyponetCommon,
} from "./hyponet.js";

const stopGradient = lax.stopGradient;

/** ANR: positional encoding → localized (thresholded) cross-attention to the R-tokens → MLP. */
export const AnrArgs = z.strictObject({
  ...hyponetCommon,
  /** Number of R-tokens T. */
  token_len: z.number().int().positive(),
  /** τ of the thresholded softmax relu(p − τ)/Σ; null disables thresholding. Must be < 1/token_len. */
  att_threshold: z.number().nonnegative().nullable().default(null),
  /** Attention heads (reference default 6, never overridden by the authors' configs). */
  n_head: z.number().int().positive().default(6),
  /** Width per head (reference default 64). */
  head_dim: z.number().int().positive().default(64),
  /** Hidden-layer activation (the reference supports only relu). */
  activation: z.literal("relu").default("relu"),
  /** Pad the encoding with zeros up to hidden_dim when in_dim·pe_dim ≠ hidden_dim (pe_dim is then hidden_dim // in_dim). */
  adaptive_idim: z.boolean().default(false),
  /** Output scale (applied before out_bias). */
  out_scale: z.number().default(1),
});
export type AnrArgs = z.infer<typeof AnrArgs>;

/** The `hyponet` block of a model config for ANR. */
export const AnrConfig = z.strictObject({ name: z.literal("ANR"), args: AnrArgs });

/** What an ANR config must satisfy beyond its field types. */
export function anrConfigIssues(a: AnrArgs, head: HeadSettings): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!head.direct_wtoken)
    issues.push({ path: ["direct_wtoken"], message: "the ANR hyponet needs direct_wtoken: true (R-tokens)" });
  const tau = a.att_threshold;
  if (tau !== null && tau >= 1 / a.token_len) {
    issues.push({
      path: ["hyponet", "args", "att_threshold"],
      message: `att_threshold ${tau} must be < 1/token_len = ${1 / a.token_len}: otherwise a uniform attention row has Σ relu(p − τ) = 0 and the output is NaN`,
    });
  }
  if (a.use_pe) {
    const enc = a.in_dim * a.pe_dim;
    if (enc !== a.hidden_dim) {
      if (!a.adaptive_idim) {
        issues.push({
          path: ["hyponet", "args", "pe_dim"],
          message: `in_dim·pe_dim = ${enc} must equal hidden_dim ${a.hidden_dim} (or set adaptive_idim: true)`,
        });
      } else if (Math.floor(a.hidden_dim / a.in_dim) < 2) {
        issues.push({
          path: ["hyponet", "args", "hidden_dim"],
          message: `hidden_dim ${a.hidden_dim} leaves no frequency for in_dim ${a.in_dim}`,
        });
      }
    }
  } else if (a.in_dim !== a.hidden_dim && !a.adaptive_idim) {
    issues.push({
      path: ["hyponet", "args", "use_pe"],
      message: `without PE, in_dim ${a.in_dim} must equal hidden_dim ${a.hidden_dim} (or set adaptive_idim: true)`,
    });
  }
  return issues;
}

/** ANR as the model uses it: R-tokens from the head, attention and MLP in the hyponet. */
export function anr(a: AnrArgs): Hyponet {
  return {
    encoding: anrEncodingLayout(a),
    generated: [{ name: R_TOKENS, shape: [a.token_len, a.hidden_dim], tokens: a.token_len }],
    params: anrParams(a),
    headParams: rTokenHeadParams,
    postfcWidth: (g) => g.shape[1],
    head: rTokenHead,
    forward: (P, x, generated, taps) => anrHyponet(P, a, x, generated[R_TOKENS]!, taps),
    gridPrepare: (P, generated) => anrGridPrepare(P, a, generated[R_TOKENS]!),
    gridForward: (P, rows, cols, prepared, fast) => anrGridHyponet(P, a, rows, cols, prepared, fast),
  };
}

function anrEncodingLayout(a: AnrArgs): EncodingLayout {
  // adaptive_idim replaces pe_dim by hidden // in_dim and pads the rest with zeros. Unlike the
  // reference (which crashes when hidden // in_dim is odd), the padding is sized to fit exactly.
  const peDim = a.in_dim * a.pe_dim === a.hidden_dim ? a.pe_dim : Math.floor(a.hidden_dim / a.in_dim);
  const nFreqs = a.use_pe ? Math.floor(peDim / 2) : 0;
  const encDim = a.use_pe ? a.in_dim * 2 * nFreqs : a.in_dim;
  return { nFreqs, encDim, padDim: a.hidden_dim - encDim };
}

// ---------------------------------------------------------------------------------------------
// The head: R-tokens, one weight token each

/** Name of the generated parameter: the R-tokens (T, hidden) of an instance. */
const R_TOKENS = "dtoken";
const R_TOKEN_SCALE = "base_params.dtoken_w";
const R_TOKEN_SHIFT = "base_params.dtoken_b";

function rTokenHeadParams(g: GeneratedParam): ParamSpec[] {
  return [
    { key: R_TOKEN_SCALE, shape: [...g.shape], init: { kind: "ones" } },
    { key: R_TOKEN_SHIFT, shape: [...g.shape], init: { kind: "normal" } },
  ];
}

/** dtoken = w ⊙ postfc(t) + b. */
function rTokenHead(P: Params, post: np.Array): np.Array {
  return post.mul(param(P, R_TOKEN_SCALE)).add(param(P, R_TOKEN_SHIFT));
}

// ---------------------------------------------------------------------------------------------
// The hyponet

const ATTN = "hyponet.attn";
/** Layer i of the MLP: hidden layers are Sequential(Linear, ReLU) in the reference, the last a bare Linear. */
const mlpLayer = (a: AnrArgs, i: number) => (i < a.depth - 1 ? `hyponet.mlp.${i}.0` : `hyponet.mlp.${i}`);

function anrParams(a: AnrArgs): ParamSpec[] {
  const inner = a.n_head * a.head_dim;
  const specs = [
    ...linearParams(`${ATTN}.to_q`, a.hidden_dim, inner, false),
    ...linearParams(`${ATTN}.to_k`, a.hidden_dim, inner, false),
    ...linearParams(`${ATTN}.to_v`, a.hidden_dim, inner, false),
    ...linearParams(`${ATTN}.to_out`, inner, a.hidden_dim),
  ];
  for (let i = 0; i < a.depth; i++)
    specs.push(...linearParams(mlpLayer(a, i), a.hidden_dim, i < a.depth - 1 ? a.hidden_dim : a.out_dim));
  return specs;
}

/**
 * ANR: x = PE(c); p = softmax(q kᵀ/√d) against the R-tokens; p' = relu(p − τ)/Σ relu(p − τ);
 * o = to_out(p' v); y = MLP(o)·out_scale + out_bias. No residual, no LayerNorm.
 */
export function anrHyponet(P: Params, a: AnrArgs, x: np.Array, dtoken: np.Array, taps?: Taps): np.Array {
  return anrMlp(P, a, anrAttention(P, a, x, dtoken, taps));
}

/**
 * Per-instance folding of the queries into the keys: q kᵀ/√d = x (W_qᵀ kᵀ/√d), a (B, hidden, h·T)
 * matrix that each encoded coordinate meets instead of being projected to the (h·d)-wide query
 * space first. k: (B, h, T, d).
 */
function foldedQueryKeys(P: Params, a: AnrArgs, k: np.Array, hidden: number): np.Array {
  const b = k.shape[0]!;
  const [h, d, t] = [a.n_head, a.head_dim, a.token_len];
  // (jax-js 0.1.25 multiplies wrongly when matmul broadcasts batch axes of unequal rank, so the
  // shared weights are broadcast to the batch explicitly.)
  const wq = np.broadcastTo(param(P, `${ATTN}.to_q.weight`).reshape([1, h, d, hidden]), [b, h, d, hidden]);
  const qk = np.matmul(k, wq).mul(d ** -0.5); // (B, h, T, hidden)
  return qk.transpose([0, 3, 1, 2]).reshape([b, hidden, h * t]);
}

/** Σ_h p_h (v_h W_out,hᵀ) as one product: the values projected to the output per instance, (B, h·T, hidden). v: (B, h, T, d). */
function foldedValuesOut(P: Params, a: AnrArgs, v: np.Array, hidden: number): np.Array {
  const b = v.shape[0]!;
  const [h, d, t] = [a.n_head, a.head_dim, a.token_len];
  const wo = param(P, `${ATTN}.to_out.weight`).reshape([hidden, h, d]).transpose([1, 2, 0]); // (h, d, hidden)
  return np
    .matmul(v, np.broadcastTo(wo.reshape([1, h, d, hidden]), [b, h, d, hidden]))
    .reshape([b, h * t, hidden]);
}

/** The localized attention: the encoded coordinates x (B, N, hidden) → to_out(p' v) (B, N, hidden). */
export function anrAttention(P: Params, a: AnrArgs, x: np.Array, dtoken: np.Array, taps?: Taps): np.Array {
  tap(taps, "anr.attn_in", x);
  const [b, n, hidden] = x.shape as [number, number, number];
  const [h, d, t] = [a.n_head, a.head_dim, a.token_len];
  const k = splitHeads(linear(P, `${ATTN}.to_k`, dtoken.ref, false), h); // (B, h, T, d)
  const v = splitHeads(linear(P, `${ATTN}.to_v`, dtoken, false), h);
  let logits: np.Array; // (B, N, h, T)
  let y: np.Array;
  const folded = foldAttention(hidden, a);
  if (folded) {
    logits = np.matmul(x, foldedQueryKeys(P, a, k, hidden)).reshape([b, n, h, t]);
  } else {
    const q = linear(P, `${ATTN}.to_q`, x, false).reshape([b, n, h, d]).transpose([0, 2, 1, 3]);
    logits = np
      .matmul(q, k.transpose([0, 1, 3, 2]))
      .mul(d ** -0.5)
      .transpose([0, 2, 1, 3]);
  }
  if (taps) tap(taps, "anr.logits", logits.ref.transpose([0, 2, 1, 3]));
  const attn = thresholdedSoftmax(logits, a.att_threshold, taps);
  if (taps) tap(taps, "anr.attn", attn.ref.transpose([0, 2, 1, 3]));
  if (folded) {
    y = np
      .matmul(attn.reshape([b, n, h * t]), foldedValuesOut(P, a, v, hidden))
      .add(param(P, `${ATTN}.to_out.bias`));
  } else {
    const o = np.matmul(attn.transpose([0, 2, 1, 3]), v); // (B, h, N, d)
    y = linear(P, `${ATTN}.to_out`, mergeHeads(o));
  }
  tap(taps, "anr.attn_out", y);
  return y;
}

/** The MLP after the attention: ReLU layers, a linear last one, then out_scale and out_bias. */
export function anrMlp(P: Params, a: AnrArgs, y: np.Array): np.Array {
  return anrMlpAfterFirst(P, a, linear(P, mlpLayer(a, 0), y));
}

/** The MLP from the output of its first Linear on (that layer's ReLU, if it has one, and the rest). */
function anrMlpAfterFirst(P: Params, a: AnrArgs, y: np.Array): np.Array {
  for (let i = 1; i < a.depth; i++) y = linear(P, mlpLayer(a, i), nn.relu(y));
  if (a.out_scale !== 1) y = y.mul(a.out_scale);
  return a.out_bias !== 0 ? y.add(a.out_bias) : y;
}

/**
 * ANR on a grid (Hyponet.gridForward): the same function as {@link anrHyponet} at every grid point,
 * with savings that are exact in real arithmetic (the order of the sums differs):
 * - each encoding feature depends on one coordinate, so the folded logits x (W_qᵀ kᵀ) are a row
 *   term plus a column term, computed per row and per column;
 * - `fast`: so the exponentials are a row factor times a column factor, exp(r − max r)·exp(c − max c),
 *   and the softmax needs one product per point instead of a maximum and an exponential. The shift
 *   differs from the point's own maximum, which the threshold and the normalisation do not see;
 *   but a point's largest weight can be as small as e^−g, g the smaller of the largest row and
 *   column spreads of the logits, so g is returned as the guard (GRID_GUARD_LIMIT);
 * - nothing nonlinear lies between to_out and the MLP's first Linear, so both fold into the
 *   values once per instance, and each point meets one (h·T × hidden) product instead of two.
 * Per point, what is left is the normalisation, that product and the MLP's later layers. The
 * per-instance parts come `prepared` by {@link anrGridPrepare}.
 */
export function anrGridHyponet(
  P: Params,
  a: AnrArgs,
  rows: np.Array,
  cols: np.Array,
  prepared: HypoParams,
  fast: boolean,
): GridOutput {
  const [r, hidden] = rows.shape as [number, number];
  const c = cols.shape[0]!;
  const { qk, vo0, bias0 } = prepared as Record<"qk" | "vo0" | "bias0", np.Array>;
  const b = qk.shape[0]!;
  const [h, t] = [a.n_head, a.token_len];
  const perInstance = (x: np.Array, n: number) => np.broadcastTo(x.reshape([1, n, hidden]), [b, n, hidden]);
  const rowLogits = np.matmul(perInstance(rows, r), qk.ref).reshape([b, r, 1, h, t]);
  const colLogits = np.matmul(perInstance(cols, c), qk).reshape([b, 1, c, h, t]);
  const grid = [b, r, c, h, t];
  let attn: np.Array;
  let guard: np.Array | undefined;
  if (fast) {
    const factor = (l: np.Array) => np.exp(l.ref.sub(np.max(l, -1, { keepdims: true })));
    const spread = (l: np.Array) => np.max(np.max(l.ref, -1).sub(np.min(l, -1)));
    guard = np.minimum(spread(rowLogits.ref), spread(colLogits.ref));
    const e = np.broadcastTo(factor(rowLogits), grid).mul(np.broadcastTo(factor(colLogits), grid));
    attn = thresholdedNormalise(e.reshape([b, r * c, h, t]), a.att_threshold);
  } else {
    const logits = np.broadcastTo(rowLogits, grid).add(np.broadcastTo(colLogits, grid));
    attn = thresholdedSoftmax(logits.reshape([b, r * c, h, t]), a.att_threshold);
  }
  const y0 = np.matmul(attn.reshape([b, r * c, h * t]), vo0).add(bias0);
  const signal = anrMlpAfterFirst(P, a, y0);
  return guard ? { signal, guard } : { signal };
}

/**
 * ANR's per-instance part on a grid (Hyponet.gridPrepare), from the R-tokens (B, T, hidden): the
 * folded query-keys qk (B, hidden, h·T), and to_out folded with the MLP's first Linear,
 * vo0 (B, h·T, width₀) and bias0 (width₀): (p vo + b_out) W₀ᵀ + b₀ = p (vo W₀ᵀ) + (b_out W₀ᵀ + b₀).
 */
export function anrGridPrepare(P: Params, a: AnrArgs, dtoken: np.Array): HypoParams {
  const [b, , hidden] = dtoken.shape as [number, number, number];
  const h = a.n_head;
  const k = splitHeads(linear(P, `${ATTN}.to_k`, dtoken.ref, false), h); // (B, h, T, d)
  const v = splitHeads(linear(P, `${ATTN}.to_v`, dtoken, false), h);
  const qk = foldedQueryKeys(P, a, k, hidden);
  const w0t = param(P, `${mlpLayer(a, 0)}.weight`).transpose(); // (hidden, width₀)
  const width0 = w0t.shape[1]!;
  const vo0 = np.matmul(
    foldedValuesOut(P, a, v, hidden),
    np.broadcastTo(w0t.ref.reshape([1, hidden, width0]), [b, hidden, width0]),
  );
  const bias0 = np
    .matmul(param(P, `${ATTN}.to_out.bias`).reshape([1, hidden]), w0t)
    .reshape([width0])
    .add(param(P, `${mlpLayer(a, 0)}.bias`));
  return { qk, vo0, bias0 };
}

/**
 * relu(p − τ) / Σ relu(p − τ) with p = softmax(l) over the last axis, computed as
 * relu(e − τ·S) / Σ relu(e − τ·S) with e = exp(l − max l), S = Σ e: the same function with one
 * normalisation instead of two. τ = null gives the plain softmax.
 */
export function thresholdedSoftmax(logits: np.Array, tau: number | null, taps?: Taps): np.Array {
  const axis = logits.ndim - 1;
  return thresholdedNormalise(
    np.exp(logits.ref.sub(stopGradient(np.max(logits, axis, { keepdims: true })))),
    tau,
    taps,
  );
}

/** The thresholded softmax from e = exp(l − m), for any shift m constant along the last axis. */
function thresholdedNormalise(e: np.Array, tau: number | null, taps?: Taps): np.Array {
  const axis = e.ndim - 1;
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
