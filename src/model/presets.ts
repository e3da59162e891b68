/**
 * Model presets: the paper's settings (the authors' configs, verbatim in our schema) and small
 * CPU-sized versions of each. A run config names one with `model: { preset: NAME }`.
 */
import type { HyperNetworkConfigInput, HyponetKind } from "./config.js";
import { unhandledKind } from "./hyponets/hyponet.js";
import { InputError } from "../util/errors.js";

type HyponetBlock = HyperNetworkConfigInput["hyponet"];
type Head = Partial<Pick<HyperNetworkConfigInput, "direct_wtoken" | "grouping_mode">>;

/** An image hyper-network family: tokenizer and transformer fixed, hyponet and head chosen. */
function imageFamily(a: {
  size: number | [number, number];
  /** Input channels (default 3, RGB). */
  channels?: number;
  patch: number;
  padding: number;
  dim: number;
  depth: number;
  nHead: number;
  headDim: number;
  ff: number;
  groups: number;
}) {
  const t = { dim: a.dim, depth: a.depth, n_head: a.nHead, head_dim: a.headDim, ff_dim: a.ff };
  return (hyponet: HyponetBlock, head: Head): HyperNetworkConfigInput => ({
    n_groups: a.groups,
    ...head,
    tokenizer: {
      name: "ImgTokenizer",
      args: {
        input_size: a.size,
        patch_size: a.patch,
        padding: a.padding,
        dim: a.dim,
        img_channels: a.channels ?? 3,
      },
    },
    hyponet,
    tinr_enc: { name: "TInrEncoder", args: { shortcut_every: 0, ...t } },
    tinr_dec: { name: "TInrDecoder", args: t },
  });
}

/** The authors' CelebA 128 settings: 10×10 patches with padding 1, dim 512, 6 + 6 layers of 6 × 64 heads. */
const CELEBA128 = {
  size: 128,
  patch: 10,
  padding: 1,
  dim: 512,
  depth: 6,
  nHead: 6,
  headDim: 64,
  ff: 3072,
  groups: 128,
};
const celeba128 = imageFamily(CELEBA128);
/** Small 32×32 settings (the Fashion-MNIST anchor): patch 4 (64 tokens), dim 128, 2 + 2 layers. */
const small32 = imageFamily({
  size: 32,
  patch: 4,
  padding: 0,
  dim: 128,
  depth: 2,
  nHead: 4,
  headDim: 32,
  ff: 512,
  groups: 64,
});
/** The demo's 32×32 hyper-network: 8×8 patches (16 tokens), dim 96, 2 + 2 layers. */
const tiny32 = imageFamily({
  size: 32,
  patch: 8,
  padding: 0,
  dim: 96,
  depth: 2,
  nHead: 4,
  headDim: 24,
  ff: 192,
  groups: 32,
});

/** The CelebA 128 architecture on one-channel fields (ERA5's 2 m temperature after resize + crop). */
const era5128 = imageFamily({ ...CELEBA128, channels: 1 });

/**
 * The 32×32 hyper-network carried to 64×64 at the same token count: 16×16 patches (16 tokens), so
 * the transformer costs what it does at 32² and only the hyponet grows (4× the queries).
 */
const tiny64 = imageFamily({
  size: 64,
  patch: 16,
  padding: 0,
  dim: 96,
  depth: 2,
  nHead: 4,
  headDim: 24,
  ff: 192,
  groups: 32,
});

/** The CPU-sized whole-globe hyper-network: 32 × 64 grid, 8×8 patches (32 tokens), dim 128, 2 + 2 layers. */
function globe32x64Family(channels: number) {
  return imageFamily({
    size: [32, 64],
    channels,
    patch: 8,
    padding: 0,
    dim: 128,
    depth: 2,
    nHead: 4,
    headDim: 32,
    ff: 512,
    groups: 64,
  });
}

/**
 * A CPU-sized model for whole-globe fields of `channels` variables on a 32 × 64 latitude/longitude
 * grid: ANR (64 R-tokens, hidden 128, depth 3), plain or sphere coordinates, or one of the
 * baselines with the same hyper-network (64 groups, hidden 128, depth 3; plain grid).
 */
export function globe32x64(kind: HyponetKind, channels: number, sphere = false): HyperNetworkConfigInput {
  const family = globe32x64Family(channels);
  const common = { out_dim: channels, out_bias: 0, use_pe: true, depth: 3, hidden_dim: 128, pe_sigma: 256 };
  switch (kind) {
    case "ANR": {
      const anr = { ...common, token_len: 64, att_threshold: 0.006 };
      return family(
        {
          name: "ANR",
          args: sphere
            ? // 3-D unit vectors: hidden // 3 = 42 features (21 frequencies) per axis, 2 zero-padded.
              { ...anr, in_dim: 3, pe_dim: 42, adaptive_idim: true, sphere: {} }
            : { ...anr, in_dim: 2, pe_dim: 64 },
        },
        { direct_wtoken: true },
      );
    }
    case "HypoMlp":
      return family(
        { name: "HypoMlp", args: { ...common, in_dim: 2, pe_dim: 64 } },
        { grouping_mode: "mlp" },
      );
    case "HypoMlpIPC":
      return family(
        { name: "HypoMlpIPC", args: { ...common, in_dim: 2, pe_dim: 64, modulated_layer_id: 1 } },
        { grouping_mode: "mlp_mod" },
      );
    default:
      return unhandledKind(kind);
  }
}

const celeba128Transformer = { dim: 512, depth: 6, n_head: 6, head_dim: 64, ff_dim: 3072 };
const img = { in_dim: 2, out_dim: 3, out_bias: 0, use_pe: true };
/** The ANR of Celeba128_anr_d5.yaml: 256 R-tokens, τ 0.0015, hidden 512, depth 5. */
const anrD5 = {
  ...img,
  depth: 5,
  hidden_dim: 512,
  token_len: 256,
  pe_dim: 256,
  pe_sigma: 1024,
  att_threshold: 0.0015,
};

export const MODEL_PRESETS: Record<string, { description: string; config: HyperNetworkConfigInput }> = {
  "celeba128-anr-d5": {
    description:
      "paper: ANR on CelebA 128 (Celeba128_anr_d5.yaml): 256 R-tokens, τ 0.0015, hidden 512, depth 5",
    config: celeba128({ name: "ANR", args: anrD5 }, { direct_wtoken: true }),
  },
  "celeba128-mlp-g128-d6": {
    description: "paper baseline: TransINR-style MLP on CelebA 128 (Celeba128_mlp_g128_d6.yaml)",
    config: celeba128(
      { name: "HypoMlp", args: { ...img, depth: 6, hidden_dim: 512, pe_dim: 256, pe_sigma: 1024 } },
      { direct_wtoken: false, grouping_mode: "mlp" },
    ),
  },
  "celeba128-ipc-g128-d6": {
    description: "paper baseline: IPC on CelebA 128 (Celeba128_ipc_g128_d6.yaml)",
    config: celeba128(
      {
        name: "HypoMlpIPC",
        args: { ...img, depth: 6, hidden_dim: 512, pe_dim: 256, pe_sigma: 1024, modulated_layer_id: 1 },
      },
      { direct_wtoken: false, grouping_mode: "mlp_mod" },
    ),
  },
  "shapenet-cars-anr-d5": {
    description:
      "paper: ANR radiance field on ShapeNet cars 128 (ShapenetCar128_anr_d5.yaml): 128 R-tokens, τ 0.003",
    config: {
      n_groups: 128,
      direct_wtoken: true,
      tokenizer: { name: "nvs_tokenizer", args: { input_size: 128, patch_size: 8, dim: 512 } },
      hyponet: {
        name: "ANR",
        args: {
          in_dim: 3,
          out_dim: 4,
          out_bias: 0,
          adaptive_idim: true,
          depth: 5,
          hidden_dim: 512,
          token_len: 128,
          pe_dim: 128,
          pe_sigma: 512,
          att_threshold: 0.003,
        },
      },
      tinr_enc: { name: "TInrEncoder", args: { shortcut_every: 0, ...celeba128Transformer } },
      tinr_dec: { name: "TInrDecoder", args: celeba128Transformer },
    },
  },
  "small32-nerf-anr": {
    description:
      "CPU-sized ANR radiance field: 32×32 views, 8×8 patches, dim 64, 2 + 2 layers, 32 R-tokens, hidden 96",
    config: {
      n_groups: 32,
      direct_wtoken: true,
      tokenizer: { name: "nvs_tokenizer", args: { input_size: 32, patch_size: 8, dim: 64 } },
      hyponet: {
        name: "ANR",
        args: {
          in_dim: 3,
          out_dim: 4,
          out_bias: 0,
          adaptive_idim: true,
          depth: 3,
          hidden_dim: 96,
          token_len: 32,
          pe_dim: 32,
          pe_sigma: 512,
          att_threshold: 0.01,
          n_head: 4,
          head_dim: 32,
        },
      },
      tinr_enc: {
        name: "TInrEncoder",
        args: { shortcut_every: 0, dim: 64, depth: 2, n_head: 4, head_dim: 16, ff_dim: 128 },
      },
      tinr_dec: { name: "TInrDecoder", args: { dim: 64, depth: 2, n_head: 4, head_dim: 16, ff_dim: 128 } },
    },
  },
  "era5-128-anr-d5": {
    description:
      "ERA5 2 m temperature at 128×128 (the authors' ERA5_npy pipeline): the CelebA 128 ANR architecture with 1 channel",
    config: era5128({ name: "ANR", args: { ...anrD5, out_dim: 1 } }, { direct_wtoken: true }),
  },
  "globe32x64-anr": {
    description:
      "CPU-sized ANR for one-channel global fields on a 32×64 lat/lon grid, plain grid coordinates",
    config: globe32x64("ANR", 1),
  },
  "globe32x64-anr-sphere": {
    description: "as globe32x64-anr, with coordinates on the sphere (lat/lon → unit vector)",
    config: globe32x64("ANR", 1, true),
  },
  "small32-anr": {
    description:
      "CPU-sized ANR at 32×32 (the Fashion-MNIST anchor): 64 R-tokens, hidden 128, depth 3, τ 0.006",
    config: small32(
      {
        name: "ANR",
        args: {
          ...img,
          depth: 3,
          hidden_dim: 128,
          token_len: 64,
          pe_dim: 64,
          pe_sigma: 1024,
          att_threshold: 0.006,
        },
      },
      { direct_wtoken: true },
    ),
  },
  "small32-mlp": {
    description: "CPU-sized TransINR-style MLP at 32×32 (the anchor): 64 groups, hidden 128, depth 3",
    config: small32(
      { name: "HypoMlp", args: { ...img, depth: 3, hidden_dim: 128, pe_dim: 64, pe_sigma: 1024 } },
      { direct_wtoken: false, grouping_mode: "mlp" },
    ),
  },
  "small32-ipc": {
    description: "CPU-sized IPC at 32×32 (the anchor): 64 groups, hidden 128, depth 3, modulated layer 1",
    config: small32(
      {
        name: "HypoMlpIPC",
        args: { ...img, depth: 3, hidden_dim: 128, pe_dim: 64, pe_sigma: 1024, modulated_layer_id: 1 },
      },
      { direct_wtoken: false, grouping_mode: "mlp_mod" },
    ),
  },
  "tiny32-anr": {
    description: "the demo's ANR: 32×32, 16 patch tokens, dim 96, 32 R-tokens, hidden 64 (fast on 2 cores)",
    config: tiny32(
      {
        name: "ANR",
        args: {
          ...img,
          depth: 3,
          hidden_dim: 64,
          token_len: 32,
          pe_dim: 32,
          pe_sigma: 64,
          att_threshold: 0.01,
          n_head: 4,
          head_dim: 32,
        },
      },
      { direct_wtoken: true },
    ),
  },
  "tiny64-anr": {
    description:
      "tiny32-anr at 64×64: 16×16 patches (16 tokens), 32 R-tokens, hidden 64, PE bandwidth doubled with the resolution",
    config: tiny64(
      {
        name: "ANR",
        args: {
          ...img,
          depth: 3,
          hidden_dim: 64,
          token_len: 32,
          pe_dim: 32,
          pe_sigma: 128,
          att_threshold: 0.01,
          n_head: 4,
          head_dim: 32,
        },
      },
      { direct_wtoken: true },
    ),
  },
  "tiny32-mlp": {
    description: "the demo's hyper-network with a TransINR-style MLP: 32 groups, hidden 64, depth 3",
    config: tiny32(
      { name: "HypoMlp", args: { ...img, depth: 3, hidden_dim: 64, pe_dim: 32, pe_sigma: 64 } },
      { direct_wtoken: false, grouping_mode: "mlp" },
    ),
  },
  "tiny32-ipc": {
    description: "the demo's hyper-network with IPC: 32 groups, hidden 64, depth 3, modulated layer 1",
    config: tiny32(
      {
        name: "HypoMlpIPC",
        args: { ...img, depth: 3, hidden_dim: 64, pe_dim: 32, pe_sigma: 64, modulated_layer_id: 1 },
      },
      { direct_wtoken: false, grouping_mode: "mlp_mod" },
    ),
  },
  "tiny64-mlp": {
    description:
      "tiny32-mlp at 64×64 (tiny64-anr's hyper-network with a TransINR-style MLP): 32 groups, hidden 64, depth 3, PE bandwidth doubled",
    config: tiny64(
      { name: "HypoMlp", args: { ...img, depth: 3, hidden_dim: 64, pe_dim: 32, pe_sigma: 128 } },
      { direct_wtoken: false, grouping_mode: "mlp" },
    ),
  },
  "tiny64-ipc": {
    description:
      "tiny32-ipc at 64×64 (tiny64-anr's hyper-network with IPC): 32 groups, hidden 64, depth 3, modulated layer 1, PE bandwidth doubled",
    config: tiny64(
      {
        name: "HypoMlpIPC",
        args: { ...img, depth: 3, hidden_dim: 64, pe_dim: 32, pe_sigma: 128, modulated_layer_id: 1 },
      },
      { direct_wtoken: false, grouping_mode: "mlp_mod" },
    ),
  },
};

/** The model config of a preset; an `InputError` (on `model.preset`) listing the known names otherwise. */
export function modelPreset(name: string): HyperNetworkConfigInput {
  const p = MODEL_PRESETS[name];
  if (!p)
    throw new InputError(
      "model.preset",
      `unknown model preset "${name}" (known: ${Object.keys(MODEL_PRESETS).join(", ")})`,
    );
  return structuredClone(p.config);
}
