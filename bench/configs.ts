/**
 * The benchmark's model configurations, shared by the interleaved bench (bench/bench.ts), our
 * timed child (bench/ours.ts) and the stage profile (bench/profile.ts). This module imports no
 * compute code, so the parent process of the bench never loads jax-js or its worker pool.
 */
import type { HyperNetworkConfigInput } from "../src/model/config.js";
import { modelPreset } from "../src/model/presets.js";

/** One benchmark setting: the model, the training batch and the timing lengths. */
export interface BenchConfig {
  description: string;
  model: HyperNetworkConfigInput;
  /** Images per training step. */
  batch: number;
  /** Image side (the tokenizer's input_size). */
  size: number;
  /** Timed training steps (their median is the figure) and untimed warm-up steps before them. */
  steps: number;
  warmup: number;
  /** Images decoded at once when timing the decode. */
  decodeBatch: number;
}

/** The bench model of the core issue: the `small32-anr` preset (the Fashion-MNIST anchor's ANR at 32×32). */
export const BENCH_MODEL = modelPreset("small32-anr");

/**
 * The larger setting of issue 14: 64² images in 4×4 patches (256 tokens), dim 256, 4 + 4 layers
 * of 4 × 64 heads, 128 R-tokens, ANR hidden 256, depth 3. τ keeps the small model's τ·T = 0.384.
 * Batch 4 (and one image per decode) keeps three interleaved rounds near ten minutes on two cores.
 */
const LARGE_MODEL: HyperNetworkConfigInput = (() => {
  const t = { dim: 256, depth: 4, n_head: 4, head_dim: 64, ff_dim: 1024 };
  return {
    n_groups: 128,
    direct_wtoken: true,
    tokenizer: {
      name: "ImgTokenizer",
      args: { input_size: 64, patch_size: 4, padding: 0, dim: 256, img_channels: 3 },
    },
    hyponet: {
      name: "ANR",
      args: {
        in_dim: 2,
        out_dim: 3,
        out_bias: 0,
        use_pe: true,
        depth: 3,
        hidden_dim: 256,
        token_len: 128,
        pe_dim: 128,
        pe_sigma: 1024,
        att_threshold: 0.003,
      },
    },
    tinr_enc: { name: "TInrEncoder", args: { shortcut_every: 0, ...t } },
    tinr_dec: { name: "TInrDecoder", args: t },
  };
})();

export const BENCH_CONFIGS = {
  small: {
    description: "bench: small32-anr, batch 8 of 32², dim 128, 2 + 2 layers, 64 R-tokens, hidden 128",
    model: BENCH_MODEL,
    batch: 8,
    size: 32,
    steps: 10,
    warmup: 2,
    decodeBatch: 8,
  },
  large: {
    description: "large: batch 4 of 64², 256 patch tokens, dim 256, 4 + 4 layers, 128 R-tokens, hidden 256",
    model: LARGE_MODEL,
    batch: 4,
    size: 64,
    steps: 3,
    warmup: 1,
    decodeBatch: 1,
  },
  paper: {
    description:
      "paper: celeba128-anr-d5, batch 6 of 128² (the paper's CelebA setting), for the GPU benchmark (bench/gpu.sh)",
    model: modelPreset("celeba128-anr-d5"),
    batch: 6,
    size: 128,
    steps: 5,
    warmup: 2,
    decodeBatch: 1,
  },
} satisfies Record<string, BenchConfig>;

export type BenchConfigName = keyof typeof BENCH_CONFIGS;

export function isBenchConfigName(name: string): name is BenchConfigName {
  return Object.hasOwn(BENCH_CONFIGS, name);
}

/**
 * Agreement required of PyTorch's first two steps with ours (relative): float32 sums in another
 * order, measured at ≤ 4e-7 for the loss and ≤ 7e-6 for the gradient norm on both configurations.
 */
export const LOSS_TOLERANCE = 1e-5;
export const GRAD_NORM_TOLERANCE = 1e-4;
/**
 * ONNX Runtime's decode against ours, max abs in [-1, 1] space: the exported graphs compute the
 * same function in another summation order (test/onnx.test.ts holds small models to 1e-5).
 */
export const ORT_TOLERANCE = 1e-4;

/** The stages of the profile, in the order the step runs them (here, so that the parent needs no compute code). */
export const STAGES = [
  "tokenizer",
  "encoder",
  "decoder",
  "weight head",
  "PE",
  "localized attention",
  "MLP",
  "loss",
] as const;
export type Stage = (typeof STAGES)[number];
