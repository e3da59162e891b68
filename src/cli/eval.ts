/** `anr eval`: PSNR/SSIM of a trained model on its run's eval split, or super-resolution of fields. */
import { parseArgs } from "node:util";
import { mkdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { initBackend } from "../backend/index.js";
import { savePng } from "../data/image.js";
import { describePreparation, readPreparation, specWith, type Preparation } from "../data/preparation.js";
import { describePhysical, type PhysicalError } from "../eval/evaluate.js";
import { superResolutionGrid } from "../eval/grids.js";
import { evaluateFieldSuperResolution } from "../eval/super-resolution.js";
import {
  evaluateSvgSuperResolution,
  svgSuperResolutionPicture,
  svgSuperResolutionTable,
} from "../eval/svg-super-resolution.js";
import type { DatasetSpec } from "../data/datasets.js";
import { readConfigFile } from "../io/config-file.js";
import { loadModel, writeFileAtomic } from "../io/files.js";
import { representationSize } from "../io/tokens.js";
import { findZooModel } from "../io/zoo.js";
import { modelFileWeights } from "../io/weights.js";
import type { Params } from "../model/model.js";
import { countParams, disposeParams, toDevice } from "../model/params.js";
import {
  resolveRunConfig,
  runWithModel,
  type ResolvedFieldRun,
  type ResolvedRunConfig,
} from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import { evaluateRun } from "../training/trainer.js";
import { UsageError } from "../util/errors.js";
import {
  checkModelTask,
  checkWritable,
  givenFlags,
  overrideFieldPreparation,
  parseSize,
  parseWeightsChoice,
  PREPARATION_OPTIONS,
  resolveModelFile,
  type PreparationFlags,
} from "./common.js";

export const EVAL_USAGE = `anr eval RUN_DIR [--split test|val] [--weights online|ema] [--max-images N] [--out DIR]
anr eval --model MODEL.safetensors --config RUN.yaml|--preset NAME [...]
anr eval --model ZOO_NAME [...]       (a zoo model on the data of its run preset; anr models)

PSNR per image (in [0,1], averaged over the split: the TransINR/IPC protocol) and SSIM; writes
eval-<split>-<weights>.json and eval-<split>-<weights>.png (inputs over reconstructions), into
--out, else into RUN_DIR. A model from elsewhere (--model) evaluated on RUN_DIR's data without
--out is reported as eval-<split>-<weights>-<model name>: RUN_DIR's own reports stay its own.
The data is prepared as the model was trained (its file records how; printed when that differs
from the run config), and the model must be made for the run's task (image, field or NeRF). Field
runs: --preprocess resize-crop|resize|none, --resize N, --select dim=index,... and
--fill-missing VALUE|none override that preparation.
Field runs: PSNR in normalised units (as the reference), and per channel the RMSE and largest
absolute error in physical units (e.g. K); the picture is in false colour.

--size HxW (field runs): super-resolution. Each field is encoded at the model's size, decoded at
HxW and compared with the same field prepared at HxW from the original data, next to bilinear
upsampling of the input; writes eval-<split>-<weights>-<H>x<W>.json and .png (input | bilinear |
decoded | truth).

--sr 4,8 (runs on SVG data: data.kind svg or twemoji): super-resolution against the truth. Each
item of the split is rendered at the model's size, encoded, decoded at ×4 and ×8, and compared
with the same SVG rendered at that size, beside bicubic and Lanczos-3 upsampling of the input;
prints PSNR/SSIM per method and factor, writes eval-<split>-<weights>-sr.json and one picture per
factor, eval-<split>-<weights>-sr-x<F>.png (input | bicubic | Lanczos-3 | ANR | truth).`;

export async function cmdEval(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      config: { type: "string" },
      preset: { type: "string" },
      split: { type: "string", default: "test" },
      weights: { type: "string", default: "online" },
      "max-images": { type: "string" },
      "data-root": { type: "string" },
      out: { type: "string" },
      size: { type: "string" },
      sr: { type: "string" },
      ...PREPARATION_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(EVAL_USAGE, 0);
  const runDir = positionals[0];
  // A zoo model alone is evaluated on the data of the preset it was trained with.
  const zooPreset =
    values.model && !values.config && !runDir ? (await findZooModel(values.model))?.preset : undefined;
  const presetName = values.preset ?? zooPreset;
  const configPath = values.config ?? (runDir && !presetName ? join(runDir, "config.json") : undefined);
  if (!configPath && !presetName) throw new UsageError(EVAL_USAGE);
  if (values.config && values.preset) throw new UsageError("give --config or --preset, not both");
  const configSource = configPath ?? `preset "${presetName}"`;
  const source = values.model ?? runDir;
  if (!source) throw new UsageError(EVAL_USAGE);
  const split = values.split;
  if (split !== "test" && split !== "val") throw new UsageError(`--split ${split}: expected test or val`);
  const maxImages = values["max-images"] === undefined ? undefined : Number(values["max-images"]);
  if (maxImages !== undefined && !(Number.isInteger(maxImages) && maxImages > 0))
    throw new UsageError(`--max-images ${values["max-images"]}: expected a whole number above 0`);
  const size = values.size === undefined ? null : parseSize(values.size);
  const preparationFlags: PreparationFlags = {
    preprocess: values.preprocess,
    resize: values.resize,
    select: values.select,
    "fill-missing": values["fill-missing"],
    background: values.background,
  };
  const rawRun = (
    configPath ? await readConfigFile(configPath, "run config") : runPreset(presetName!)
  ) as Record<string, unknown>;
  if (values["data-root"]) applyOverride(rawRun, `data.root=${JSON.stringify(values["data-root"])}`);
  const validated = resolveRunConfig(rawRun, configSource);
  const chosen = await resolveModelFile(source, parseWeightsChoice(values.weights));
  const out = values.out ?? runDir ?? ".";
  await checkWritable(out, { flag: "--out" });
  await initBackend();
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  checkModelTask(model.config, chosen.path, validated.task, configSource);
  // The model file's config is the one evaluated (a field model carries its channels), on data
  // prepared as the model was trained.
  const run = runWithModel(validated, model.config, chosen.path);
  prepareRunData(run, readPreparation(model.metadata, chosen.path), preparationFlags, chosen.path);
  run.eval.split = split;
  if (maxImages !== undefined) run.eval.max_images = maxImages;
  // Reports name the weights evaluated: an EMA model file given by name is EMA.
  const weights = modelFileWeights(model.metadata) === "ema" ? "ema" : chosen.weights;
  // A report in a run folder is that run's, unless it is named after the model it measures.
  const foreign =
    values.out === undefined && runDir !== undefined && !isInside(chosen.path, runDir)
      ? `-${modelLabel(chosen.path)}`
      : "";
  const stem = `eval-${split}-${weights}${foreign}`;
  if (values.sr !== undefined) {
    if (size) throw new UsageError("give --size (fields) or --sr (SVG images), not both");
    const factors = parseFactors(values.sr);
    if (run.task !== "image" || (run.data.kind !== "svg" && run.data.kind !== "twemoji"))
      throw new UsageError(
        `--sr is for runs on SVG data (data.kind svg or twemoji), whose truth renders at any size; ${configSource} is a ${run.task} run${run.task === "image" ? ` on data.kind ${run.data.kind}` : ""} (fields: --size)`,
      );
    const P = toDevice(model.weights);
    try {
      return await svgSuperResolution(run, run.data, P, factors, { out, stem });
    } finally {
      disposeParams(P);
    }
  }
  if (size) {
    if (run.task !== "field") throw new UsageError("--size (super-resolution) is for field runs");
    const P = toDevice(model.weights);
    try {
      return await superResolution(run, P, size, { out, stem });
    } finally {
      disposeParams(P);
    }
  }
  const t0 = performance.now();
  const P = toDevice(model.weights);
  const r = await evaluateRun(run, P, { maxImages }).finally(() => disposeParams(P));
  await mkdir(out, { recursive: true });
  const summary = {
    model: chosen.path,
    weights,
    ...r.report,
    representation_floats_per_instance: representationSize(model.config),
    model_parameters: countParams(model.config),
    model_bytes_f32: 4 * countParams(model.config),
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFileAtomic(join(out, `${stem}.json`), JSON.stringify(summary, null, 2) + "\n");
  if (r.grid) await savePng(join(out, `${stem}.png`), r.grid, r.grid.h < 100 ? 4 : 1);
  console.log(
    `${String(r.report.split)}: PSNR ${r.psnr.toFixed(3)} dB, SSIM ${r.ssim.toFixed(4)} over ${r.images} ${model.config.channels ? "fields" : "images"} (${weights} weights)`,
  );
  for (const p of (r.report.physical as PhysicalError[] | undefined) ?? [])
    console.log(`  ${describePhysical(p)}`);
  console.log(
    `representation ${summary.representation_floats_per_instance.toLocaleString("en")} floats per instance; model ${summary.model_parameters.toLocaleString("en")} parameters`,
  );
  console.log(`wrote ${join(out, stem)}.json and .png`);
  return 0;
}

/** Whether `path` lies in `folder`. */
function isInside(path: string, folder: string): boolean {
  return resolve(dirname(path)) === resolve(folder);
}

/**
 * A short name for a model file: its run folder's name for a run's own files (model.safetensors,
 * model-ema.safetensors, checkpoint.safetensors), else the file name without its extension.
 */
function modelLabel(path: string): string {
  const file = basename(path);
  const stem = /^(model|model-ema|checkpoint)\.safetensors$/.test(file)
    ? basename(resolve(dirname(path)))
    : file.replace(/\.safetensors$/i, "");
  return stem.replace(/[^A-Za-z0-9._-]+/g, "_");
}

/**
 * Prepare the run's data as the model was trained (the preparation its file records, when it was
 * trained on the same kind of data), then as the flags say (field runs); prints the preparation
 * when it differs from the run config's.
 */
function prepareRunData(
  run: ResolvedRunConfig,
  p: Preparation | null,
  flags: PreparationFlags,
  modelPath: string,
): void {
  const given = givenFlags(flags);
  if (given.length && run.task !== "field")
    throw new UsageError(`${given.join(" ")}: eval takes these for field runs only`);
  if (run.task === "nerf") return;
  const recorded = p !== null && p.task === run.task && p.data.kind === run.data.kind;
  if (!recorded && !given.length) return;
  const data: Record<string, unknown> = { ...run.data, ...(recorded ? p.data : {}) };
  overrideFieldPreparation(data, flags, run.data.root ?? run.data.kind);
  const source = given.length ? `${modelPath} with ${given.join(" ")}` : modelPath;
  const prepared = specWith({ task: run.task, data } as Preparation, {}, source);
  const [before, after] = [describePreparation(run.data), describePreparation(prepared)];
  if (after !== before)
    console.log(
      `data: ${after} (${recorded ? `as ${modelPath} was trained` : "the run config"}${given.length ? `, overridden by ${given.join(" ")}` : ""}; the run config says: ${before})`,
    );
  (run as { data: unknown }).data = prepared;
}

/** `--sr 4,8`: whole factors of at least 2, e.g. [4, 8]. */
function parseFactors(text: string): number[] {
  const factors = text.split(",").map((t) => Number(t.trim()));
  if (!text.trim() || factors.some((f) => !Number.isInteger(f) || f < 2 || f > 64))
    throw new UsageError(`--sr ${text}: expected whole factors from 2 to 64, e.g. --sr 4,8`);
  return factors;
}

/** Shown wherever Twemoji graphics are (CC-BY 4.0 asks for it). */
const TWEMOJI_ATTRIBUTION = "Twemoji graphics © Twitter, Inc. and other contributors, CC-BY 4.0";

/** `anr eval --sr`: decode SVG items at several factors and compare with their true renderings. */
async function svgSuperResolution(
  run: ResolvedRunConfig,
  data: Extract<DatasetSpec, { kind: "svg" | "twemoji" }>,
  P: Params,
  factors: number[],
  o: { out: string; stem: string },
): Promise<number> {
  const t0 = performance.now();
  const r = await evaluateSvgSuperResolution(P, run.model, data, run.eval.split, factors, {
    batchSize: run.eval.batch_size,
    maxImages: run.eval.max_images,
    keep: 4,
  });
  const stem = join(o.out, `${o.stem}-sr`);
  await mkdir(o.out, { recursive: true });
  await writeFileAtomic(
    `${stem}.json`,
    JSON.stringify({ ...r, kept: undefined, seconds: (performance.now() - t0) / 1000 }, null, 2) + "\n",
  );
  const attribution = data.kind === "twemoji" ? TWEMOJI_ATTRIBUTION : undefined;
  for (const [k, { factor }] of r.factors.entries()) {
    const png = await svgSuperResolutionPicture(r, k, attribution);
    if (png) await writeFileAtomic(`${stem}-x${factor}.png`, png);
  }
  console.log(
    `${r.split}: ${r.items.length} items encoded at ${r.inputSize}², decoded at ${factors.map((f) => `×${f}`).join(", ")} and compared with their renderings at that size`,
  );
  console.log(svgSuperResolutionTable(r));
  if (attribution) console.log(attribution);
  console.log(`wrote ${stem}.json and ${factors.map((f) => `${basename(stem)}-x${f}.png`).join(", ")}`);
  return 0;
}

/** `anr eval --size`: decode above the training resolution and compare with real high-resolution data. */
async function superResolution(
  run: ResolvedFieldRun,
  P: Params,
  [H, W]: [number, number],
  o: { out: string; stem: string },
): Promise<number> {
  const r = await evaluateFieldSuperResolution(P, run.model, run.data, run.eval.split, [H, W], {
    batchSize: run.eval.batch_size,
    maxFields: run.eval.max_images,
    keep: 4,
  });
  const { kept, ...report } = r;
  const [h, w] = r.inputSize;
  const stem = join(o.out, `${o.stem}-${H}x${W}`);
  await mkdir(o.out, { recursive: true });
  await writeFileAtomic(`${stem}.json`, JSON.stringify(report, null, 2) + "\n");
  const grid = superResolutionGrid(kept);
  if (grid) await savePng(`${stem}.png`, grid, H < 100 ? 2 : 1);
  console.log(
    `${r.split}: ${r.fields} fields encoded at ${h}×${w}, decoded at ${H}×${W} (×${(H / h).toFixed(2)})`,
  );
  for (const [name, m] of [
    [`decoded at ${H}×${W}`, r.model],
    [`decoded at ${h}×${w}, then bilinear`, r.decodeThenBilinear],
    ["bilinear upsampling of the input", r.bilinear],
  ] as const) {
    console.log(`  ${name}: PSNR ${m.psnr.toFixed(3)} dB (normalised units)`);
    for (const ph of m.physical) console.log(`    ${describePhysical(ph)}`);
  }
  console.log(`wrote ${stem}.json and .png`);
  return 0;
}
