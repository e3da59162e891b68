/** `anr eval`: PSNR/SSIM of a trained model on its run's eval split, or super-resolution of fields. */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { initBackend } from "../backend/index.js";
import { listFiles, skippedFilesWarning, type ImageDataset } from "../data/datasets.js";
import { describePreparation, readPreparation, specWith, type Preparation } from "../data/preparation.js";
import {
  describePhysical,
  evaluateImageSplit,
  type EvalOutcome,
  type PhysicalError,
} from "../eval/evaluate.js";
import { saveGrid, superResolutionGrid } from "../eval/grids.js";
import { evaluateFieldSuperResolution } from "../eval/super-resolution.js";
import { readConfigFile } from "../io/config-file.js";
import { loadModel, writeFileAtomic } from "../io/files.js";
import { representationSize } from "../io/tokens.js";
import { findZooModel } from "../io/zoo.js";
import { modelFileWeights, type WeightsChoice } from "../io/weights.js";
import { sizeHW, type HyperNetworkConfig } from "../model/config.js";
import type { Params } from "../model/model.js";
import { countParams, disposeParams, toDevice } from "../model/params.js";
import { runWithModel, type ResolvedFieldRun, type ResolvedRunConfig } from "../training/run-config.js";
import { applyOverride } from "../training/run-presets.js";
import { loadCheckpoint } from "../training/checkpoint.js";
import { evaluateRun } from "../training/trainer.js";
import { InputError, UsageError } from "../util/errors.js";
import {
  checkModelTask,
  checkWritable,
  defaultOut,
  done,
  givenFlags,
  imagePreparer,
  inputName,
  modelLabel,
  modelTask,
  overrideFieldPreparation,
  resolveModelFile,
  resolveRun,
  runPresetNamed,
  sizeFrom,
  svgSuperResolution,
  type Outcome,
  type PreparationFlags,
} from "./common.js";

/** `anr eval`'s options. */
export interface EvalOptions {
  model?: string;
  config?: string;
  preset?: string;
  images?: string;
  split: "test" | "val";
  weights: WeightsChoice;
  maxImages?: number;
  dataRoot?: string;
  out?: string;
  size?: [number, number];
  scale?: number[];
  sr?: number[];
  preparation: PreparationFlags;
}

/**
 * PSNR/SSIM of a model: on its run's evaluation split (a run folder, or a model with a run config
 * or preset), on a folder of images (`--images`), or super-resolution (`--size`/`--scale`: fields
 * against high-resolution data, SVG data against its true renderings).
 */
export async function cmdEval(runDir: string | undefined, values: EvalOptions): Promise<Outcome> {
  if (values.images !== undefined) return evalImages(runDir, values.images, values);
  // A zoo model alone is evaluated on the data of the preset it was trained with.
  const zooPreset =
    values.model && !values.config && !runDir ? (await findZooModel(values.model))?.preset : undefined;
  const presetName = values.preset ?? zooPreset;
  if (values.config && values.preset) throw new UsageError("give --config or --preset, not both");
  const configPath = values.config ?? (runDir && !presetName ? join(runDir, "config.json") : undefined);
  const source = values.model ?? runDir;
  if ((!configPath && !presetName) || !source)
    throw new UsageError(
      "anr eval: give a run folder (anr eval RUN), a model with --config FILE or --preset NAME, a zoo model (--model NAME), or --images DIR",
    );
  const split = values.split;
  const maxImages = values.maxImages;
  const { raw: rawRun, source: configSource } = configPath
    ? await runConfigAt(configPath, values.config === undefined ? runDir : undefined)
    : { raw: runPresetNamed(presetName!), source: `preset "${presetName}"` };
  if (values.dataRoot !== undefined) applyOverride(rawRun, `data.root=${JSON.stringify(values.dataRoot)}`);
  const validated = resolveRun(rawRun, configSource);
  const chosen = await resolveModelFile(source, values.weights);
  const out = values.out ?? runDir ?? defaultOut("eval", modelLabel(chosen.path));
  await checkWritable(out, { flag: "--out" });
  await initBackend();
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  checkModelTask(model.config, chosen.path, validated.task, configSource);
  // The model file's config is the one evaluated (a field model carries its channels), on data
  // prepared as the model was trained.
  const run = runWithModel(validated, model.config, chosen.path);
  prepareRunData(run, readPreparation(model.metadata, chosen.path), values.preparation, chosen.path);
  run.eval.split = split;
  if (maxImages !== undefined) run.eval.max_images = maxImages;
  const weights = reportedWeights(model.metadata, chosen.weights);
  // A report in a run folder is that run's, unless it is named after the model it measures.
  const foreign =
    values.out === undefined && runDir !== undefined && !isInside(chosen.path, runDir)
      ? `-${modelLabel(chosen.path)}`
      : "";
  const stem = `eval-${split}-${weights}${foreign}`;
  const svg = run.task === "image" && (run.data.kind === "svg" || run.data.kind === "twemoji");
  if (values.sr !== undefined || (values.scale !== undefined && svg)) {
    if (values.size) throw new UsageError("give --size (fields) or --sr/--scale (SVG images), not both");
    if (values.sr !== undefined && values.scale !== undefined)
      throw new UsageError("give --sr or --scale, not both");
    const factors = values.sr ?? checkFactors(values.scale!, "--scale");
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
  if (values.size || values.scale !== undefined) {
    if (run.task !== "field")
      throw new UsageError(
        "--size and --scale (super-resolution) are for field runs, and --scale also for runs on SVG data",
      );
    if ((values.scale?.length ?? 0) > 1)
      throw new UsageError(`--scale ${values.scale!.join(",")}: field runs take one factor`);
    const size = sizeFrom(
      { size: values.size, scale: values.scale?.[0] },
      sizeHW(run.model.tokenizer.args.input_size),
    )!;
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
  return writeReport(r, { model: model.config, path: chosen.path, weights, out, stem, t0 });
}

/**
 * The run config at `configPath`; for a run folder (`runDir`) whose config.json is gone, the one
 * stored in its checkpoint (which a resume would rewrite config.json from), with a warning.
 */
async function runConfigAt(
  configPath: string,
  runDir: string | undefined,
): Promise<{ raw: Record<string, unknown>; source: string }> {
  const ckpt = runDir === undefined ? undefined : join(runDir, "checkpoint.safetensors");
  if (ckpt !== undefined && !existsSync(configPath) && existsSync(ckpt)) {
    const stored = (await loadCheckpoint(ckpt)).state.run;
    if (typeof stored === "object" && stored !== null) {
      console.error(`anr: warning: ${configPath} is missing: using the run config stored in ${ckpt}`);
      return { raw: stored as Record<string, unknown>, source: ckpt };
    }
  }
  return {
    raw: (await readConfigFile(configPath, "run config")) as Record<string, unknown>,
    source: configPath,
  };
}

/** The weights a report names: an EMA model file given by name is EMA whatever --weights says. */
function reportedWeights(metadata: Record<string, string>, chosen: WeightsChoice): WeightsChoice {
  return modelFileWeights(metadata) === "ema" ? "ema" : chosen;
}

/** Write an evaluation's JSON report and grid as `out/stem.json|png` and say what it measured. */
async function writeReport(
  r: EvalOutcome,
  o: { model: HyperNetworkConfig; path: string; weights: string; out: string; stem: string; t0: number },
): Promise<Outcome> {
  await mkdir(o.out, { recursive: true });
  const summary = {
    model: o.path,
    weights: o.weights,
    ...r.report,
    representation_floats_per_instance: representationSize(o.model),
    model_parameters: countParams(o.model),
    model_bytes_f32: 4 * countParams(o.model),
    seconds: (performance.now() - o.t0) / 1000,
  };
  const skipped = (r.report.skipped_files as string[] | undefined) ?? [];
  if (skipped.length) console.error(`anr: warning: ${skippedFilesWarning(skipped)}`);
  const files = [join(o.out, `${o.stem}.json`)];
  await writeFileAtomic(files[0]!, JSON.stringify(summary, null, 2) + "\n");
  if (r.grid) {
    files.push(join(o.out, `${o.stem}.png`));
    await saveGrid(files[1]!, r.grid, r.grid.h < 100 ? 4 : 1);
  }
  console.log(
    `${String(r.report.split)}: PSNR ${r.psnr.toFixed(3)} dB, SSIM ${r.ssim.toFixed(4)} over ${r.images} ${o.model.channels ? "fields" : "images"} (${o.weights} weights)`,
  );
  for (const p of (r.report.physical as PhysicalError[] | undefined) ?? [])
    console.log(`  ${describePhysical(p)}`);
  console.log(
    `representation ${summary.representation_floats_per_instance.toLocaleString("en")} floats per instance; model ${summary.model_parameters.toLocaleString("en")} parameters`,
  );
  console.log(`wrote ${files.join(" and ")}`);
  return done({ ...summary, out: o.out, files });
}

/** Image files that `--images` evaluates on. */
const IMAGE_FILES = /\.(jpe?g|png|webp|svg)$/i;

/**
 * `anr eval RUN --images DIR`: the model on every image under DIR (recursively, sorted), each
 * prepared as `anr encode` prepares it; reports `eval-<DIR name>-<weights>.json|png`.
 */
async function evalImages(runDir: string | undefined, dir: string, values: EvalOptions): Promise<Outcome> {
  const given = values.model ?? runDir;
  if (given === undefined)
    throw new UsageError("--images DIR: give the model too (anr eval RUN --images DIR)");
  if (values.model !== undefined && runDir !== undefined)
    throw new UsageError("--images: give the model once, as RUN or as --model");
  const unused = (
    [
      ["--config", values.config],
      ["--preset", values.preset],
      ["--data-root", values.dataRoot],
      ["--size", values.size],
      ["--scale", values.scale],
      ["--sr", values.sr],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (unused.length)
    throw new UsageError(
      `--images evaluates the folder as it is: ${unused.map(([k]) => k).join(", ")} do not apply`,
    );
  const chosen = await resolveModelFile(given, values.weights);
  const files = await listFiles(dir, IMAGE_FILES, ".jpg/.jpeg/.png/.webp/.svg images");
  const out = values.out ?? defaultOut("eval", dir);
  await checkWritable(out, { flag: "--out" });
  await initBackend();
  const t0 = performance.now();
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const cfg = model.config;
  if (modelTask(cfg) !== "image")
    throw new InputError(chosen.path, `a model for task ${modelTask(cfg)}; --images evaluates image models`);
  const size = sizeHW(cfg.tokenizer.args.input_size);
  const prepare = imagePreparer(
    size,
    readPreparation(model.metadata, chosen.path),
    values.preparation,
    chosen.path,
  );
  console.log(prepare.describe);
  const ds: ImageDataset = {
    name: `images:${dir}`,
    length: files.length,
    size,
    get: (i) => prepare.load(join(dir, files[i]!)),
    id: (i) => files[i]!,
    skipped: 0,
    skippedIds: [],
  };
  const P = toDevice(model.weights);
  const r = await evaluateImageSplit(P, cfg, ds, {
    batchSize: 16,
    maxImages: values.maxImages,
    clamp: true,
    grid: true,
  }).finally(() => disposeParams(P));
  const weights = reportedWeights(model.metadata, chosen.weights);
  return writeReport(r, {
    model: cfg,
    path: chosen.path,
    weights,
    out,
    stem: `eval-${inputName(dir)}-${weights}`,
    t0,
  });
}

/** Whether `path` lies in `folder`. */
function isInside(path: string, folder: string): boolean {
  return resolve(dirname(path)) === resolve(folder);
}

/**
 * Prepare the run's data as the model was trained (the preparation its file records, when it was
 * trained on the same kind of data), then as the flags say (field runs), and print the
 * preparation used, with the run config's when it differs.
 */
function prepareRunData(
  run: ResolvedRunConfig,
  p: Preparation | null,
  flags: PreparationFlags,
  modelPath: string,
): void {
  const given = givenFlags(flags);
  if (given.length && run.task !== "field")
    throw new UsageError(
      run.task === "image"
        ? `${given.join(" ")}: eval of an image run measures the model on its dataset prepared as it was trained (the crop of data.kind ${run.data.kind}, recorded in the model file), so these flags do not apply; to prepare image files another way, give them as a folder: anr eval MODEL --images DIR ${given.join(" ")}`
        : `${given.join(" ")}: a view-synthesis run's views are prepared by the model config; these flags are for image and field inputs`,
    );
  if (run.task === "nerf") return;
  const recorded = p !== null && p.task === run.task && p.data.kind === run.data.kind;
  const data: Record<string, unknown> = { ...run.data, ...(recorded ? p.data : {}) };
  if (run.task === "field") overrideFieldPreparation(data, flags, run.data.root ?? run.data.kind);
  const source = given.length ? `${modelPath} with ${given.join(" ")}` : modelPath;
  const prepared =
    recorded || given.length ? specWith({ task: run.task, data } as Preparation, {}, source) : run.data;
  const [before, after] = [describePreparation(run.data), describePreparation(prepared)];
  const from = recorded
    ? `as ${modelPath} was trained`
    : `the run config; ${p === null ? `${modelPath} records no preparation` : `${modelPath} was trained on ${p.task === run.task ? `data.kind ${p.data.kind}` : `${p.task} data`}`}`;
  console.log(
    `data: ${after} (${from}${given.length ? `, overridden by ${given.join(" ")}` : ""}${after !== before ? `; the run config says: ${before}` : ""})`,
  );
  (run as { data: unknown }).data = prepared;
}

/** `--sr 4,8`: whole factors of at least 2, e.g. [4, 8]. */
export function parseFactors(text: string): number[] {
  return checkFactors(
    text.split(",").map((t) => (t.trim() === "" ? NaN : Number(t.trim()))),
    "--sr",
  );
}

/** Factors of SVG super-resolution: whole, from 2 to 64. */
function checkFactors(factors: number[], flag: string): number[] {
  if (!factors.length || factors.some((f) => !Number.isInteger(f) || f < 2 || f > 64))
    throw new UsageError(
      `${flag} ${factors.join(",")}: expected whole factors from 2 to 64, e.g. ${flag} 4,8`,
    );
  return factors;
}

/** `anr eval --size`: decode above the training resolution and compare with real high-resolution data. */
async function superResolution(
  run: ResolvedFieldRun,
  P: Params,
  [H, W]: [number, number],
  o: { out: string; stem: string },
): Promise<Outcome> {
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
  if (grid) await saveGrid(`${stem}.png`, grid, H < 100 ? 2 : 1);
  const files = grid ? [`${stem}.json`, `${stem}.png`] : [`${stem}.json`];
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
  return done({ ...report, out: o.out, files });
}
