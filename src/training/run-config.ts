/**
 * A training run, as a file (YAML or JSON): data, model (a preset name or a full model config),
 * optimisation and bookkeeping. Validated with zod; every error names the field. The resolved
 * config (preset expanded, defaults filled) is saved beside every run.
 */
import { z } from "zod";
import { DatasetSpec } from "../data/datasets.js";
import { fieldChannels, FieldSpec } from "../data/fields.js";
import { LearnitSpec } from "../data/learnit.js";
import {
  HyperNetworkConfig,
  ConfigError,
  MAX_TENSOR_VALUES,
  parseHyperNetworkConfig,
  sizeHW,
  type ChannelArgs,
} from "../model/config.js";
import { InputError, zodIssueLines } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import { readConfigFile } from "../io/config-file.js";
import { MODEL_PRESETS, modelPreset } from "../model/presets.js";

export const TrainArgs = z.strictObject({
  /** Optimiser steps. */
  steps: z.number().int().positive(),
  /** Images per micro-batch. */
  batch_size: z.number().int().positive().default(16),
  /** Micro-batches per step (the reference: 3); gradients of the mean loss are summed. */
  grad_accumulation: z.number().int().positive().default(1),
  /** Adam learning rate (the reference: 5e-5, constant). */
  lr: z.number().positive().default(5e-5),
  /** Adam (β1, β2); the reference uses (0.9, 0.99). */
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.99]),
  /** Adam ε. */
  eps: z.number().positive().default(1e-8),
  /** Global gradient-norm clip (the reference: 1.0); null disables. */
  clip_norm: z.number().positive().nullable().default(1),
  /** Variational coordinates: jitter the query grid during training. */
  coord_noise: z.boolean().default(true),
  /** EMA of the weights (ema-pytorch 0.4.2 rule); null disables. */
  ema: z
    .strictObject({
      beta: z.number().min(0).max(1).default(0.995),
      update_every: z.number().int().positive().default(10),
      update_after_step: z.number().int().nonnegative().default(100),
    })
    .nullable()
    .default({ beta: 0.995, update_every: 10, update_after_step: 100 }),
  /** Seed of initialisation, data order, augmentation and coordinate noise. */
  seed: z.number().int().nonnegative().default(0),
  /** Append a metrics line every n steps. */
  log_every: z.number().int().positive().default(10),
  /** Evaluate on the eval split every n steps (0 = only at the end). */
  eval_every: z.number().int().nonnegative().default(500),
  /** Write a checkpoint every n steps (0 = only at the end). */
  checkpoint_every: z.number().int().nonnegative().default(1000),
  /** Write an input | reconstruction grid every n steps (0 = only at the end). */
  sample_every: z.number().int().nonnegative().default(500),
  /**
   * A JSON file `{ "order": number[][] }` giving the training-set indices of every micro-batch
   * (micro-batch g of step s uses order[(s − 1)·grad_accumulation + g]), e.g.
   * shared/anchors/fashion-mnist-order.json, to see exactly the data another implementation saw.
   * Overrides the shuffled loader (and batch_size).
   */
  order_file: z.string().optional(),
  /** Skip unreadable images (counted and reported) instead of failing. */
  skip_corrupt: z.boolean().default(false),
  /**
   * Stop the run after this many steps in a row whose loss or gradient norm is not finite (each
   * such step is skipped: no parameter, Adam-moment or EMA update); the last checkpoint stays good.
   */
  max_bad_steps: z.number().int().positive().default(5),
});
export type TrainArgs = z.infer<typeof TrainArgs>;

export const EvalArgs = z.strictObject({
  /** Which split to evaluate on. */
  split: z.enum(["val", "test"]).default("test"),
  /** Use at most this many images (periodic evaluation during training). */
  max_images: z.number().int().positive().optional(),
  /** Images per evaluation batch. */
  batch_size: z.number().int().positive().default(16),
  /**
   * Clamp predictions to [0, 1] before PSNR (the reference's infer_image does not; TransINR's eval
   * does). Images only: field values have no fixed range.
   */
  clamp: z.boolean().default(true),
});
export type EvalArgs = z.infer<typeof EvalArgs>;

const common = {
  /** A name for the run (used in the default output folder). */
  name: z.string().default("run"),
  /** The model: `{ preset: NAME }` or a full model config. */
  model: z.union([z.strictObject({ preset: z.string() }), HyperNetworkConfig]),
  train: TrainArgs,
  eval: EvalArgs.default({ split: "test", batch_size: 16, clamp: true }),
};

/** Novel-view synthesis settings (docs/conventions.md §8.2, §9; the ANR ShapeNet config). */
export const NerfArgs = z.strictObject({
  /** Support views per object (ANR: 3, TransINR: 1). */
  n_support: z.number().int().positive().default(3),
  /** Query views per object (rays are drawn from these). */
  n_query: z.number().int().positive().default(1),
  /** Training views are drawn from [lo, hi) (the reference: views 0–24). */
  view_range: z.tuple([z.number().int().nonnegative(), z.number().int().positive()]).default([0, 25]),
  /** Query rays per step, drawn without replacement, the same for every object of a batch. */
  train_n_rays: z.number().int().positive().default(512),
  /** Samples per ray (the reference trainer: 128). */
  n_samples: z.number().int().min(2).default(128),
  /** Rays rendered at once (bounds memory; does not change results). */
  chunk: z.number().int().positive().default(1024),
  /**
   * Evaluation protocol. "transinr": per test object, `eval_pairs` random support/query draws over
   * all its views, full-image PSNR. "anr": support and query drawn as in training (view_range),
   * the query rendered on every `eval_downsample`-th pixel in each direction from a random phase,
   * as the reference's infer_nerf (square_sample_rays, "downsample") does.
   */
  eval_protocol: z.enum(["transinr", "anr"]).default("transinr"),
  /** Pixel stride of the "anr" protocol. */
  eval_downsample: z.number().int().positive().default(2),
  /** Support/query draws per test object in evaluation. */
  eval_pairs: z.number().int().positive().default(1),
});
export type NerfArgs = z.infer<typeof NerfArgs>;

const ImageRun = z.strictObject({ ...common, task: z.literal("image"), data: DatasetSpec });
const NerfRun = z.strictObject({
  ...common,
  task: z.literal("nerf"),
  data: LearnitSpec,
  nerf: NerfArgs.default(NerfArgs.parse({})),
});

/**
 * Gridded physical fields (ERA5 and the like): the image pipeline on normalised values, with the
 * channels' units and normalisation written into the model config (`model.channels`) when the run
 * is resolved ({@link resolveFieldChannels}), so that evaluation reports physical errors and
 * decoding returns physical units.
 */
const FieldRun = z.strictObject({
  ...common,
  task: z.literal("field"),
  data: FieldSpec,
  eval: z
    .preprocess((e) => (typeof e === "object" && e !== null ? { clamp: false, ...e } : e), EvalArgs)
    .prefault({}),
});

/** A run config; `task` defaults to "image". */
export const RunConfig = z.preprocess(
  (raw) => (typeof raw === "object" && raw !== null && !("task" in raw) ? { task: "image", ...raw } : raw),
  z.discriminatedUnion("task", [ImageRun, NerfRun, FieldRun]),
);
export type RunConfigInput =
  | z.input<typeof ImageRun>
  | z.input<typeof NerfRun>
  | z.input<typeof FieldRun>
  | Omit<z.input<typeof ImageRun>, "task">;
type Parsed = z.infer<typeof ImageRun> | z.infer<typeof NerfRun> | z.infer<typeof FieldRun>;
/**
 * A validated run config with its model preset expanded ({@link resolveRunConfig}). A field run's
 * model may not list its channels yet: {@link resolveFieldChannels} takes them from the data.
 */
export type ValidatedRunConfig = Parsed extends infer P
  ? P extends Parsed
    ? Omit<P, "model"> & { model: HyperNetworkConfig }
    : never
  : never;
export type ValidatedFieldRun = Extract<ValidatedRunConfig, { task: "field" }>;
/** A field model: one that carries the units and normalisation of its channels. */
export type FieldModelConfig = HyperNetworkConfig & { channels: ChannelArgs[] };
export type ResolvedImageRun = Extract<ValidatedRunConfig, { task: "image" }>;
export type ResolvedNerfRun = Extract<ValidatedRunConfig, { task: "nerf" }>;
export type ResolvedFieldRun = Omit<ValidatedFieldRun, "model"> & { model: FieldModelConfig };
/**
 * A run config fully resolved: validated, the model preset expanded, and a field run's channels
 * known. What training uses and saves as config.json.
 */
export type ResolvedRunConfig = ResolvedImageRun | ResolvedNerfRun | ResolvedFieldRun;

/**
 * Validate a run config and expand its model preset. Image and view-synthesis runs are then
 * resolved; a field run whose model lists no channels gets them from its data when it trains
 * (`train` resolves them first).
 */
export function resolveRunConfig(raw: unknown, source = "run config"): ValidatedRunConfig {
  const r = RunConfig.safeParse(raw);
  if (!r.success) throw new ConfigError(source, zodIssueLines(r.error), "run config");
  const m = r.data.model;
  let model: HyperNetworkConfig;
  if ("preset" in m) {
    if (!(m.preset in MODEL_PRESETS))
      throw new ConfigError(
        source,
        [
          `model.preset: unknown model preset "${m.preset}" (known: ${Object.keys(MODEL_PRESETS).join(", ")})`,
        ],
        "run config",
      );
    const p = HyperNetworkConfig.safeParse(modelPreset(m.preset));
    if (!p.success) throw new ConfigError(`${source} (model preset ${m.preset})`, zodIssueLines(p.error));
    model = p.data;
  } else model = m;
  if (r.data.task === "field" && r.data.eval.clamp)
    throw new ConfigError(
      source,
      ["eval.clamp: fields have no fixed range; set clamp: false (the default for fields)"],
      "run config",
    );
  checkSizes(model, r.data.train, source);
  return { ...r.data, model } as ValidatedRunConfig;
}

/**
 * Refuse a batch too large to allocate (the model config itself refuses a patch larger than the
 * input and oversized parameters).
 */
function checkSizes(model: HyperNetworkConfig, train: TrainArgs, source: string): void {
  const [h, w] = sizeHW(model.tokenizer.args.input_size);
  const batch = train.batch_size * model.hyponet.args.out_dim * h * w;
  if (batch > MAX_TENSOR_VALUES)
    throw new ConfigError(
      source,
      [
        `model.tokenizer.args.input_size ${h}×${w} with train.batch_size ${train.batch_size}: a batch of ${batch.toExponential(2)} values, more than ${MAX_TENSOR_VALUES.toExponential(2)}`,
      ],
      "run config",
    );
}

/**
 * The run with `model` as its model (e.g. the config inside a trained model file, `source`): a
 * field run needs a model that lists its channels.
 */
export function runWithModel(
  run: ValidatedRunConfig,
  model: HyperNetworkConfig,
  source: string,
): ResolvedRunConfig {
  if (run.task !== "field") return { ...run, model };
  const { channels } = model;
  if (channels === null)
    throw new InputError(
      source,
      `model.channels: a field run needs a model that lists its channels (names, units, normalisation), found none`,
    );
  return { ...run, model: { ...model, channels } };
}

/**
 * The fully resolved run: a field run's model gets its channels from the data (names and units
 * from the files, normalisation from data.normalize, with mean/std computed on the training
 * split), unless its model config lists them already (e.g. fine-tuning a trained model). A resumed
 * run takes the channels stored with its checkpoint instead ({@link resumeRunConfig}).
 */
export async function resolveFieldChannels(
  run: ValidatedRunConfig,
  opts: { verbose?: boolean } = {},
): Promise<ResolvedRunConfig> {
  if (run.task !== "field" || run.model.channels !== null)
    return runWithModel(run, run.model, `run ${run.name}`);
  let progress: Progress | null = null;
  const onProgress = (done: number, total: number) => {
    progress ??= new Progress({ total, label: "mean/std of the training split" });
    progress.update(done);
  };
  const channels = await fieldChannels(run.data, opts.verbose === false ? undefined : onProgress);
  (progress as Progress | null)?.done();
  const model = parseHyperNetworkConfig(
    { ...run.model, channels },
    `run ${run.name} (model with the data's ${channels.length} channel(s))`,
  );
  return runWithModel(run, model, `run ${run.name}`);
}

/**
 * The fields a resumed run may change: its length and its bookkeeping cadence, which do not alter
 * the parameters of any step.
 */
export const RESUME_MAY_CHANGE = [
  "train.steps",
  "train.log_every",
  "train.eval_every",
  "train.sample_every",
  "train.checkpoint_every",
  "train.max_bad_steps",
] as const;

/** A JSON value's leaves by dotted path (arrays are leaves, compared whole). */
function leaves(x: unknown, path = "", out = new Map<string, string>()): Map<string, string> {
  if (typeof x === "object" && x !== null && !Array.isArray(x))
    for (const [k, v] of Object.entries(x)) leaves(v, path ? `${path}.${k}` : k, out);
  else out.set(path, JSON.stringify(x));
  return out;
}

/**
 * The config a resumed run continues with: the one stored with its checkpoint (`stored`, from
 * `source`), with the fields of {@link RESUME_MAY_CHANGE} taken from `run`, the config given now.
 * Any other difference would change the math of the continued run, and is refused with a
 * field-by-field list (the error names `configPath`: the run's config.json, or its checkpoint when
 * config.json is gone). A field run given without channels takes the stored ones.
 */
export function resumeRunConfig(
  run: ValidatedRunConfig,
  stored: unknown,
  source: string,
  configPath: string,
): ResolvedRunConfig {
  const before = resolveRunConfig(stored, `${source} (the run config it was started with)`);
  const was = runWithModel(before, before.model, source);
  const now =
    run.task === "field" && run.model.channels === null
      ? runWithModel(run, { ...run.model, channels: was.model.channels }, `run ${run.name}`)
      : runWithModel(run, run.model, `run ${run.name}`);
  const [a, b] = [leaves(JSON.parse(JSON.stringify(was))), leaves(JSON.parse(JSON.stringify(now)))];
  const mayChange = new Set<string>(RESUME_MAY_CHANGE);
  const diff = [...new Set([...a.keys(), ...b.keys()])]
    .filter((k) => a.get(k) !== b.get(k) && !mayChange.has(k))
    .map((k) => `  ${k}: ${a.get(k) ?? "absent"} in the checkpoint, ${b.get(k) ?? "absent"} now`);
  if (diff.length)
    throw new InputError(
      configPath,
      `the run config differs from the one this run was started with:\n${diff.join("\n")}\nonly ${RESUME_MAY_CHANGE.join(", ")} may change on resume; keep the rest, or start a new run (another --out, or --overwrite)`,
    );
  const train = { ...was.train };
  for (const k of RESUME_MAY_CHANGE) {
    const field = k.slice("train.".length) as keyof typeof train;
    (train as Record<string, unknown>)[field] = now.train[field];
  }
  return { ...was, train } as ResolvedRunConfig;
}

/** Read a run config from a .yaml/.yml/.json file. */
export async function readRunConfig(path: string): Promise<ValidatedRunConfig> {
  const raw = await readConfigFile(path, "run config");
  return resolveRunConfig(raw, path);
}
