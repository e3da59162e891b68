/**
 * Matrix-multiply FLOPs of the ANR image model, per stage, forward and backward, for the achieved
 * GFLOP/s of the benchmark and the stage profile. Only the matmuls count (2 FLOPs per
 * multiply-add); elementwise work, LayerNorm, softmax and Adam are left out, so the figures are
 * the useful arithmetic that a BLAS would do. A product's backward costs one more product of the
 * same size for each operand that needs a gradient: the images and the coordinates need none.
 */
import type { HyperNetworkConfig } from "../src/model/config.js";
import { patchCount } from "../src/model/model.js";
import type { Stage } from "./configs.js";

/** FLOPs of one stage: forward, and backward (weight and input gradients). */
export interface StageFlops {
  forward: number;
  backward: number;
}

/** One product of an (m×k) by a (k×n) matrix, `count` times; which operands need gradients. */
function mm(m: number, k: number, n: number, count: number, gradA = true, gradB = true): StageFlops {
  const f = 2 * m * k * n * count;
  return { forward: f, backward: f * (Number(gradA) + Number(gradB)) };
}

function sum(parts: StageFlops[]): StageFlops {
  return parts.reduce((s, p) => ({ forward: s.forward + p.forward, backward: s.backward + p.backward }), {
    forward: 0,
    backward: 0,
  });
}

/** Multi-head attention of `q` query tokens over `c` context tokens (batch b), with its projections. */
function attentionFlops(b: number, q: number, c: number, dim: number, h: number, hd: number): StageFlops[] {
  const inner = h * hd;
  return [
    mm(b * q, dim, inner, 1), // to_q
    mm(b * c, dim, 2 * inner, 1), // to_kv
    mm(q, hd, c, b * h), // q kᵀ
    mm(q, c, hd, b * h), // p v
    mm(b * q, inner, dim, 1), // to_out
  ];
}

/** Per-stage matmul FLOPs of one training step on a batch of b images of s×s. */
export function stageFlops(
  cfg: HyperNetworkConfig,
  b: number,
  s: number,
  form: "folded" | "direct",
): Record<Stage, StageFlops> {
  if (cfg.tokenizer.name !== "ImgTokenizer" || cfg.hyponet.name !== "ANR")
    throw new Error("FLOP counts cover the ANR image model only");
  const tok = cfg.tokenizer.args;
  const enc = cfg.tinr_enc.args;
  const dec = cfg.tinr_dec.args;
  const a = cfg.hyponet.args;
  const l = patchCount(s, s, tok.patch_size, tok.padding);
  const pin = tok.img_channels * tok.patch_size ** 2;
  const t = a.token_len;
  const hid = a.hidden_dim;
  const [h, hd] = [a.n_head, a.head_dim];
  const inner = h * hd;
  const n = s * s;
  const ff = (rows: number, dim: number, ffDim: number) => [mm(rows, dim, ffDim, 1), mm(rows, ffDim, dim, 1)];
  const encoder: StageFlops[] = [];
  for (let i = 0; i < enc.depth; i++)
    encoder.push(
      ...attentionFlops(b, l, l, enc.dim, enc.n_head, enc.head_dim),
      ...ff(b * l, enc.dim, enc.ff_dim),
    );
  const decoder: StageFlops[] = [];
  for (let i = 0; i < dec.depth; i++)
    decoder.push(
      ...attentionFlops(b, t, t, dec.dim, dec.n_head, dec.head_dim),
      ...attentionFlops(b, t, l, dec.dim, dec.n_head, dec.head_dim),
      ...ff(b * t, dec.dim, dec.ff_dim),
    );
  // The R-tokens' keys and values are projected once per instance; the coordinates' side needs no
  // input gradient (the PE is not trained).
  const attention =
    form === "direct"
      ? [
          mm(b * t, hid, inner, 2), // to_k, to_v
          mm(b * n, hid, inner, 1, false), // to_q
          mm(n, hd, t, b * h), // q kᵀ
          mm(n, t, hd, b * h), // p v
          mm(b * n, inner, hid, 1), // to_out
        ]
      : [
          mm(b * t, hid, inner, 2), // to_k, to_v
          mm(t, hd, hid, b * h), // k W_q
          mm(hd, t, hid, b * h), // v W_out (per head)
          mm(n, hid, h * t, b, false), // x (W_qᵀ kᵀ)
          mm(n, h * t, hid, b), // p (v W_outᵀ)
        ];
  const mlp: StageFlops[] = [];
  for (let i = 0; i < a.depth; i++) mlp.push(mm(b * n, hid, i < a.depth - 1 ? hid : a.out_dim, 1));
  const zero = { forward: 0, backward: 0 };
  return {
    tokenizer: sum([mm(b * l, pin, tok.dim, 1, false)]),
    encoder: sum(encoder),
    decoder: sum(decoder),
    "weight head": sum([mm(b * t, dec.dim, hid, 1)]),
    PE: zero,
    "localized attention": sum(attention),
    MLP: sum(mlp),
    loss: zero,
  };
}

/** Matmul FLOPs of one whole training step (forward and backward). */
export function trainStepFlops(
  cfg: HyperNetworkConfig,
  b: number,
  s: number,
  form: "folded" | "direct",
): number {
  return Object.values(stageFlops(cfg, b, s, form)).reduce((x, f) => x + f.forward + f.backward, 0);
}

/** Matmul FLOPs of decoding b images at s×s (the hyponet forward, with its per-instance projections). */
export function decodeFlops(
  cfg: HyperNetworkConfig,
  b: number,
  s: number,
  form: "folded" | "direct",
): number {
  const f = stageFlops(cfg, b, s, form);
  return f["localized attention"].forward + f.MLP.forward;
}
