/** Shared test fixtures: small model configs and the golden data location. */
import { join, resolve } from "node:path";
import type { HyperNetworkConfigInput } from "../src/model/config.js";

/** The golden directory: $ANR_GOLDEN or ../shared/golden beside the repository. */
export const golden = resolve(
  process.env.ANR_GOLDEN ?? join(import.meta.dirname, "..", "..", "shared", "golden"),
);

/** A tiny model of each kind (16×16 images), fast enough for many steps in a test. */
export function tinyConfig(kind: "ANR" | "HypoMlp" | "HypoMlpIPC" = "ANR"): HyperNetworkConfigInput {
  const enc = { dim: 32, depth: 1, n_head: 2, head_dim: 8, ff_dim: 64 };
  const common = { in_dim: 2, out_dim: 3, depth: 2, hidden_dim: 32, pe_dim: 16, pe_sigma: 16 };
  const hyponet =
    kind === "ANR"
      ? {
          name: "ANR" as const,
          args: { ...common, token_len: 8, att_threshold: 0.05, n_head: 2, head_dim: 8 },
        }
      : kind === "HypoMlp"
        ? { name: "HypoMlp" as const, args: common }
        : { name: "HypoMlpIPC" as const, args: common };
  return {
    n_groups: 8,
    direct_wtoken: kind === "ANR",
    grouping_mode: kind === "HypoMlpIPC" ? "mlp_mod" : "mlp",
    tokenizer: { name: "ImgTokenizer", args: { input_size: 16, patch_size: 4, padding: 0, dim: 32 } },
    hyponet,
    tinr_enc: { name: "TInrEncoder", args: enc },
    tinr_dec: { name: "TInrDecoder", args: enc },
  };
}
