/**
 * Model configuration: the reference's constructor arguments (`HyperNetwork(**cfg.hn)`), in the
 * reference's own snake_case field names so that the authors' configs and the golden
 * `config.json` files load unchanged. Validated with zod; every error names the field.
 */
import { z } from "zod";
import { InputError, zodIssueLines } from "../util/errors.js";
import {
  type ConfigIssue,
  type HeadSettings,
  MAX_DEPTH,
  SphereArgs,
  unhandledKind,
} from "./hyponets/hyponet.js";
import { AnrArgs, AnrConfig, anrConfigIssues } from "./hyponets/anr.js";
import { HypoMlpArgs, HypoMlpConfig, hypoMlpConfigIssues } from "./hyponets/mlp.js";
import { HypoMlpIpcArgs, HypoMlpIpcConfig, hypoMlpIpcConfigIssues } from "./hyponets/ipc.js";
import { numel, paramSpecs } from "./params.js";

export { SphereArgs, AnrArgs, HypoMlpArgs, HypoMlpIpcArgs };

/** Fields shared by the tokenizers. */
const tokenizerCommon = {
  /** Input side (square) or [height, width]; fixes the number of patches (and the posemb size). */
  input_size: z.union([
    z.number().int().positive(),
    z.tuple([z.number().int().positive(), z.number().int().positive()]),
  ]),
  /** Patch side in pixels. */
  patch_size: z.number().int().positive(),
  /** Zero padding added to every border before patching (for images in [-1,1], so 0 is mid-grey). */
  padding: z.number().int().nonnegative().default(0),
  /** Token width. */
  dim: z.number().int().positive(),
};

/** ImgTokenizer: non-overlapping patches of an image, linear projection, learned position embedding. */
export const ImgTokenizerArgs = z.strictObject({
  ...tokenizerCommon,
  /** Image channels. */
  img_channels: z.number().int().positive().default(3),
});
export type ImgTokenizerArgs = z.infer<typeof ImgTokenizerArgs>;

/** NvsTokenizer: per support view, pixels [rgb, ray origin, ray direction] cut into patches; no posemb. */
export const NvsTokenizerArgs = z.strictObject(tokenizerCommon);
export type NvsTokenizerArgs = z.infer<typeof NvsTokenizerArgs>;

/**
 * One signal channel of a field (e.g. 2 m temperature): its name, units and the normalisation the
 * network sees, `n = scale·(x + shift)` (the reference's ERA5 form: shift −260, scale 0.01), so that
 * decoding returns physical units `x = n / scale − shift`.
 */
export const ChannelArgs = z.strictObject({
  /** Variable name, e.g. "t2m". */
  name: z.string().min(1),
  /** Physical units, e.g. "K" (free text, reported with errors and decodes). */
  units: z.string().default(""),
  /** Added before scaling. */
  shift: z.number().default(0),
  /** Multiplies the shifted value; non-zero. */
  scale: z
    .number()
    .refine((v) => v !== 0 && Number.isFinite(v), { message: "scale must be finite and non-zero" })
    .default(1),
});
export type ChannelArgs = z.infer<typeof ChannelArgs>;

const transformerCommon = {
  /** Token width. */
  dim: z.number().int().positive(),
  /** Number of layers. */
  depth: z
    .number()
    .int()
    .nonnegative()
    .max(MAX_DEPTH, { message: `at most ${MAX_DEPTH} layers`, abort: true }),
  /** Attention heads. */
  n_head: z.number().int().positive(),
  /** Width per head. */
  head_dim: z.number().int().positive(),
  /** Feed-forward hidden width. */
  ff_dim: z.number().int().positive(),
  /** Dropout (the reference uses 0; only 0 is supported). */
  dropout: z.literal(0).default(0),
};

/** Transformer encoder over the data tokens. */
export const TInrEncoderArgs = z.strictObject({
  ...transformerCommon,
  /**
   * Every `shortcut_every`-th layer replaces its feed-forward residual by a long skip (0 = off).
   * The reference class defaults to 2 while every paper config sets 0; we default to 0.
   */
  shortcut_every: z.number().int().nonnegative().default(0),
});
export type TInrEncoderArgs = z.infer<typeof TInrEncoderArgs>;

/** Transformer decoder: learned weight tokens attend to themselves and to the encoder output. */
export const TInrDecoderArgs = z.strictObject(transformerCommon);
export type TInrDecoderArgs = z.infer<typeof TInrDecoderArgs>;

export const TokenizerConfig = z.discriminatedUnion("name", [
  z.strictObject({ name: z.literal("ImgTokenizer"), args: ImgTokenizerArgs }),
  z.strictObject({ name: z.literal("nvs_tokenizer"), args: NvsTokenizerArgs }),
]);
export type TokenizerConfig = z.infer<typeof TokenizerConfig>;

/** The coordinate network: one block per hyponet kind (src/model/hyponets/). */
export const HyponetConfig = z.discriminatedUnion("name", [AnrConfig, HypoMlpConfig, HypoMlpIpcConfig]);
export type HyponetConfig = z.infer<typeof HyponetConfig>;
/** The hyponet kinds: "ANR", "HypoMlp" (TransINR), "HypoMlpIPC". */
export type HyponetKind = HyponetConfig["name"];

/** What the config of a hyponet kind must satisfy beyond its field types. */
function hyponetConfigIssues(h: HyponetConfig, head: HeadSettings): ConfigIssue[] {
  switch (h.name) {
    case "ANR":
      return anrConfigIssues(h.args, head);
    case "HypoMlp":
      return hypoMlpConfigIssues(h.args, head);
    case "HypoMlpIPC":
      return hypoMlpIpcConfigIssues(h.args, head);
    default:
      return unhandledKind(h);
  }
}

/**
 * Values one tensor may hold (2^28 float32s: 1 GiB, and four such copies with Adam and the EMA).
 * Larger sizes are typing slips (a size of 100000), and would fail deep in the allocator.
 */
export const MAX_TENSOR_VALUES = 2 ** 28;

/** The config part a parameter belongs to, for naming it in an error ("tokenizer.args"). */
const PARAM_PARTS = ["tokenizer", "hyponet", "tinr_enc", "tinr_dec"] as const;

/**
 * Sizes no model can have, whatever its data: a patch larger than the input (no patch at all),
 * and, when the config is otherwise valid (`checkParams`), a parameter too large to allocate.
 */
function sizeIssues(c: HyperNetworkConfig, checkParams: boolean): ConfigIssue[] {
  const [h, w] = sizeHW(c.tokenizer.args.input_size);
  const patch = c.tokenizer.args.patch_size;
  if (patch > h || patch > w)
    return [
      {
        path: ["tokenizer", "args", "patch_size"],
        message: `${patch} is larger than the input_size ${h}×${w}`,
      },
    ];
  if (!checkParams) return [];
  const max = MAX_TENSOR_VALUES.toExponential(2);
  for (const p of paramSpecs(c)) {
    const n = numel(p.shape);
    if (n <= MAX_TENSOR_VALUES) continue;
    if (p.key === "tokenizer.posemb")
      return [
        {
          path: ["tokenizer", "args", "input_size"],
          message: `${h}×${w} in patches of ${patch}: the position embedding would hold ${n.toExponential(2)} values, more than ${max} (check input_size, patch_size and dim)`,
        },
      ];
    const part = PARAM_PARTS.find((k) => p.key.startsWith(`${k}.`));
    return [
      {
        path: part ? [part, "args"] : [],
        message: `parameter ${p.key} would hold ${n.toExponential(2)} values, more than ${max} (check the sizes: input_size, patch_size, dims)`,
      },
    ];
  }
  return [];
}

/** The hyper-network: tokenizer → encoder → decoder over weight tokens → hyponet parameters. */
export const HyperNetworkConfig = z
  .strictObject({
    /** Data → tokens. */
    tokenizer: TokenizerConfig,
    /** The coordinate network whose per-instance parameters are generated. */
    hyponet: HyponetConfig,
    /** Encoder over the data tokens. */
    tinr_enc: z.strictObject({ name: z.literal("TInrEncoder"), args: TInrEncoderArgs }),
    /** Decoder over the learned weight tokens. */
    tinr_dec: z.strictObject({ name: z.literal("TInrDecoder"), args: TInrDecoderArgs }),
    /** Weight tokens per generated layer (the "mlp"/"mlp_mod" heads). */
    n_groups: z.number().int().positive().default(64),
    /** ANR's R-token head: one weight token per R-token, `dtoken = w ⊙ postfc(t) + b`. */
    direct_wtoken: z.boolean().default(false),
    /** Head for MLP hyponets: "mlp" (TransINR grouped modulation) or "mlp_mod" (IPC pattern composer). */
    grouping_mode: z.enum(["mlp", "mlp_mod"]).default("mlp"),
    /**
     * The signal's channels with their physical units and normalisation, for fields (ERA5 and other
     * gridded data); null for RGB images in [0, 1] and radiance fields. Not in the reference.
     */
    channels: z.array(ChannelArgs).min(1).nullable().default(null),
  })
  .superRefine((c, ctx) => {
    const dims = [c.tokenizer.args.dim, c.tinr_enc.args.dim, c.tinr_dec.args.dim];
    if (new Set(dims).size !== 1) {
      ctx.addIssue({
        code: "custom",
        path: ["tinr_dec", "args", "dim"],
        message: `tokenizer, encoder and decoder dims must agree, got ${dims.join(", ")}`,
      });
    }
    const h = c.hyponet;
    if (c.channels !== null) {
      const nIn = c.tokenizer.name === "ImgTokenizer" ? c.tokenizer.args.img_channels : null;
      if (c.channels.length !== h.args.out_dim)
        ctx.addIssue({
          code: "custom",
          path: ["channels"],
          message: `${c.channels.length} channel(s) listed but the hyponet's out_dim is ${h.args.out_dim}`,
        });
      if (nIn !== c.channels.length)
        ctx.addIssue({
          code: "custom",
          path: ["channels"],
          message:
            nIn === null
              ? "channels need the ImgTokenizer (a field is encoded from its own values)"
              : `${c.channels.length} channel(s) listed but tokenizer.args.img_channels is ${nIn}`,
        });
    }
    if (h.args.sphere !== null) {
      if (h.args.in_dim !== 3)
        ctx.addIssue({
          code: "custom",
          path: ["hyponet", "args", "in_dim"],
          message: `sphere coordinates are 3-D unit vectors: in_dim must be 3, got ${h.args.in_dim}`,
        });
      if (c.tokenizer.name !== "ImgTokenizer")
        ctx.addIssue({
          code: "custom",
          path: ["hyponet", "args", "sphere"],
          message: "sphere coordinates apply to grids (ImgTokenizer), not to rays",
        });
    }
    for (const issue of hyponetConfigIssues(h, c)) ctx.addIssue({ code: "custom", ...issue });
    for (const issue of sizeIssues(c, ctx.issues.length === 0)) ctx.addIssue({ code: "custom", ...issue });
  });
export type HyperNetworkConfig = z.infer<typeof HyperNetworkConfig>;
/** What a user may write: defaults filled in on parsing. */
export type HyperNetworkConfigInput = z.input<typeof HyperNetworkConfig>;

/**
 * Raised for an invalid config; the message names the source (a file, a preset) and what it is
 * ("model config", "run config", "dataset spec"), then lists every problem with its field path.
 */
export class ConfigError extends InputError {
  constructor(
    source: string,
    readonly issues: string[],
    readonly what = "model config",
    /** Replaces "invalid <what>" when the problem is the file itself (e.g. it cannot be read). */
    summary?: string,
  ) {
    const lines = issues.map((i) => `\n  ${i}`).join("");
    super(source, `${summary ?? `invalid ${what}`}${issues.length ? ":" : ""}${lines}`);
    this.name = "ConfigError";
  }
}

/** Validate a model config (e.g. the `hn` block of a golden config.json), filling defaults. */
export function parseHyperNetworkConfig(raw: unknown, source = "config"): HyperNetworkConfig {
  const r = HyperNetworkConfig.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(source, zodIssueLines(r.error));
  }
  return r.data;
}

/** Height and width from an `input_size` field. */
export function sizeHW(size: number | [number, number]): [number, number] {
  return typeof size === "number" ? [size, size] : size;
}
