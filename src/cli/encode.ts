/** `anr encode`: the compact representation (R-tokens or generated weights) of images or fields. */
import { parseArgs } from "node:util";
import { mkdir } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import sharp from "sharp";
import { initBackend } from "../backend/index.js";
import { decodeTransformed, type DatasetSpec, type Transform } from "../data/datasets.js";
import { fromInterleaved, type HostImage } from "../data/image.js";
import { openFieldDataset, type FieldSpec } from "../data/fields.js";
import {
  describePreparation,
  describeTransform,
  evalTransform,
  readPreparation,
  specWith,
  type Preparation,
} from "../data/preparation.js";
import { renderSvg, SVG_FILE } from "../data/svg.js";
import { toBatchArray } from "../eval/evaluate.js";
import { loadModel } from "../io/files.js";
import type { HostTensor } from "../io/safetensors.js";
import { representationSize, weightsFingerprint } from "../io/tokens.js";
import { writeTokenFile } from "../io/files.js";
import { sizeHW, type ChannelArgs } from "../model/config.js";
import { hyperNetwork } from "../model/model.js";
import { disposeParams, toDevice, toHost } from "../model/params.js";
import { InputError, UsageError } from "../util/errors.js";
import {
  checkWritable,
  givenFlags,
  overrideFieldPreparation,
  parseResize,
  parseWeightsChoice,
  PREPARATION_OPTIONS,
  resolveModelFile,
  type PreparationFlags,
} from "./common.js";

/**
 * The spec that prepares field file `path` for the model: the recorded preparation (of a file of
 * the other kind: its preprocessing and fill_missing), else the defaults (resize-crop to the
 * model's size, no fill), each field overridden by its flag, normalised by the model's channels.
 */
function fieldSpecFor(
  path: string,
  channels: ChannelArgs[],
  size: [number, number],
  recorded: Preparation | null,
  o: PreparationFlags,
  modelPath: string,
): FieldSpec {
  const kind = /\.npy$/i.test(path) ? "npy" : "netcdf";
  // A NetCDF file for a model trained on .npy files (or the reverse) keeps what applies to both.
  const field = recorded?.task === "field" ? recorded.data : null;
  const base: Record<string, unknown> =
    field?.kind === kind
      ? { ...field }
      : {
          kind,
          preprocess: field?.preprocess ?? { mode: "resize-crop", size },
          ...(field?.fill_missing === undefined ? {} : { fill_missing: field.fill_missing }),
        };
  if (kind === "netcdf") base.variables = channels.map((c) => c.name);
  overrideFieldPreparation(base, o, path);
  const spec = specWith(
    { task: "field", data: base as Preparation["data"] & { kind: typeof kind } },
    {
      root: path,
      split: { train: 1, val: 0, test: 0 },
      normalize: { shift: channels.map((c) => c.shift), scale: channels.map((c) => c.scale) },
    },
    givenFlags(o).length ? `${modelPath} with ${givenFlags(o).join(" ")}` : modelPath,
  ) as FieldSpec;
  return spec;
}

/**
 * Fields in physical units → the model's input: each path is a .npy file or a NetCDF file (the
 * channel names are its variables), prepared as {@link fieldSpecFor} says and normalised; with
 * where each input was missing, for decode to write NaN there.
 */
async function loadFieldsForModel(
  paths: string[],
  channels: ChannelArgs[],
  size: [number, number],
  recorded: Preparation | null,
  o: PreparationFlags & { index?: string },
  modelPath: string,
): Promise<{ imgs: HostImage[]; names: string[]; missing: (Float32Array | null)[] }> {
  const wanted = o.index?.split(",").map((x) => {
    if (!/^\d+$/.test(x.trim()))
      throw new UsageError(`--index ${o.index}: expected comma-separated integers`);
    return Number(x);
  });
  const imgs: HostImage[] = [];
  const names: string[] = [];
  const missing: (Float32Array | null)[] = [];
  const flags: PreparationFlags = { ...o };
  delete (flags as { index?: string }).index;
  for (const path of paths) {
    const spec = fieldSpecFor(path, channels, size, recorded, flags, modelPath);
    console.log(`${path}: ${describePreparation(spec)} (${preparationSource(recorded, flags)})`);
    const ds = await openFieldDataset(spec, "train", channels);
    try {
      if (ds.size[0] !== size[0] || ds.size[1] !== size[1])
        throw new InputError(
          path,
          `prepared fields are ${ds.size[0]}×${ds.size[1]} but the model reads ${size[0]}×${size[1]} (preprocess ${spec.preprocess.mode})`,
        );
      for (const i of wanted ?? [...Array(ds.length).keys()]) {
        if (i >= ds.length)
          throw new UsageError(`${path}: --index ${i} is out of range (${ds.length} field(s))`);
        const r = await ds.getWithMissing(i);
        imgs.push(r.item);
        missing.push(r.missing);
        // "era5.nc#12" → "era5-t12": decode names its files after this, extension stripped.
        const [file, step] = ds.id(i).split("#") as [string, string | undefined];
        names.push(step === undefined ? file : `${file.replace(/\.[^./]+$/, "")}-t${step}`);
      }
    } finally {
      ds.close();
    }
  }
  return { imgs, names, missing };
}

/** Where the preparation came from, for the line encode prints. */
function preparationSource(recorded: Preparation | null, o: PreparationFlags): string {
  const from = recorded ? "as the model was trained" : "defaults: the model file records no preparation";
  const flags = givenFlags(o);
  return flags.length ? `${from}, overridden by ${flags.join(" ")}` : from;
}

/** Decode an image file to the model's input: resize the shorter side, centre crop. */
async function loadForModel(path: string, h: number, w: number): Promise<HostImage> {
  try {
    const { data, info } = await sharp(path)
      .removeAlpha()
      .toColourspace("srgb")
      .resize(w, h, { fit: "cover" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return fromInterleaved(data, h, w, info.channels);
  } catch (e) {
    throw new UsageError(`${path}: cannot decode image (${(e as Error).message})`);
  }
}

/**
 * Image files → the model's input, prepared as the model's training data was (its evaluation
 * transform; SVG files rendered on its background), each setting overridden by its flag. A model
 * file that records no preparation, given no flags, gets the shorter side resized and centre crop.
 */
async function loadImagesForModel(
  paths: string[],
  [h, w]: [number, number],
  recorded: Preparation | null,
  o: PreparationFlags,
  modelPath: string,
): Promise<HostImage[]> {
  if (o.select !== undefined || o["fill-missing"] !== undefined)
    throw new UsageError(`--select and --fill-missing are for field models; ${modelPath} is an image model`);
  const spec =
    recorded?.task === "image" ? (specWith(recorded, { root: "." }, modelPath) as DatasetSpec) : null;
  if (!spec && !givenFlags(o).length) {
    console.log(
      `images: shorter side to ${Math.min(h, w)}, centre ${h}×${w} (${preparationSource(null, o)})`,
    );
    return Promise.all(paths.map((p) => loadForModel(p, h, w)));
  }
  if (h !== w)
    throw new UsageError(`${modelPath}: --preprocess needs a model of square input, not ${h}×${w}`);
  const t: Transform = spec ? evalTransform(spec) : { mode: "resize-crop", size: h };
  if (o.preprocess !== undefined) {
    if (o.preprocess !== "resize-crop" && o.preprocess !== "crop-resize")
      throw new UsageError(`--preprocess ${o.preprocess}: expected resize-crop or crop-resize for images`);
    t.mode = o.preprocess;
    if (t.mode === "resize-crop") delete t.crop;
  }
  const resize = parseResize(o.resize);
  if (resize !== undefined) {
    if (t.mode !== "resize-crop") throw new UsageError(`--resize is for --preprocess resize-crop`);
    if (resize < t.size)
      throw new UsageError(`--resize ${resize}: must be at least the model's size ${t.size}`);
    t.resize = resize;
  }
  const background =
    o.background ?? (spec && (spec.kind === "svg" || spec.kind === "twemoji") ? spec.background : "#ffffff");
  if (!/^#[0-9a-fA-F]{6}$/.test(background))
    throw new UsageError(`--background ${background}: expected a colour "#rrggbb"`);
  console.log(
    `images: ${describeTransform(t)}; SVG files rendered on ${background} (${preparationSource(recorded, o)})`,
  );
  return Promise.all(
    paths.map(async (p) =>
      SVG_FILE.test(p)
        ? fromInterleaved(await renderSvg(p, t.size, background), t.size, t.size, 3)
        : decodeTransformed(p, t),
    ),
  );
}

export const ENCODE_USAGE = `anr encode IMAGE... --model MODEL.safetensors|RUN_DIR --out tokens.safetensors [--weights online|ema]
           [--preprocess resize-crop|crop-resize] [--resize N] [--background #rrggbb]
anr encode FIELD.npy|FILE.nc... --model FIELD_MODEL.safetensors|RUN_DIR --out tokens.safetensors
           [--index 0,5,9] [--preprocess resize-crop|resize|none] [--resize N] [--select dim=index,...]
           [--fill-missing VALUE|none]

The compact representation of each image or field: its R-tokens (ANR) or generated weights
(baselines). Inputs are prepared as the model's training data was: the model file records that
preparation, and each flag overrides one part of it; the command prints what it used.
Images: the dataset's evaluation crop (e.g. shorter side resized, centre crop; CelebA's 178 crop),
SVG files rendered on the training background. A model file that records no preparation (older
files, anr init) resizes the shorter side and centre-crops to the model's input size.
Fields (models trained with task: field) are read in physical units from .npy files ((H, W) or
(C, H, W)) or NetCDF files (the model's channel names are the variables; every time step, or
those in --index), with the training's preprocessing, select, north-up flip and fill_missing
(without a record: resize-crop, no fill), and normalised by the model. Where fill_missing filled
a gap, the token file keeps a mask, and decode writes NaN there.
--weights ema with a run folder uses its model-ema.safetensors (its checkpoint while it trains).
The token file records a fingerprint of the weights, which decode checks.`;

export async function cmdEncode(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      out: { type: "string" },
      weights: { type: "string", default: "online" },
      index: { type: "string" },
      ...PREPARATION_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(ENCODE_USAGE, 0);
  if (!positionals.length || !values.model || !values.out) throw new UsageError(ENCODE_USAGE);
  const weightsChoice = parseWeightsChoice(values.weights);
  await checkWritable(values.out, { flag: "--out", file: true });
  await initBackend();
  const chosen = await resolveModelFile(values.model, weightsChoice);
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const cfg = model.config;
  if (cfg.tokenizer.name !== "ImgTokenizer")
    throw new UsageError(`${values.model}: not an image model (tokenizer ${cfg.tokenizer.name})`);
  const [h, w] = sizeHW(cfg.tokenizer.args.input_size);
  const recorded = readPreparation(model.metadata, chosen.path);
  const flags: PreparationFlags = {
    preprocess: values.preprocess,
    resize: values.resize,
    select: values.select,
    "fill-missing": values["fill-missing"],
    background: values.background,
  };
  const { imgs, names, missing } = cfg.channels
    ? await loadFieldsForModel(
        positionals,
        cfg.channels,
        [h, w],
        recorded,
        { ...flags, index: values.index },
        chosen.path,
      )
    : {
        imgs: await loadImagesForModel(positionals, [h, w], recorded, flags, chosen.path),
        names: positionals.map((p) => basename(p)),
        missing: [],
      };
  const P = toDevice(model.weights);
  const gen = hyperNetwork(P, cfg, toBatchArray(imgs).mul(2).sub(1));
  const host = await toHost(gen);
  disposeParams(P);
  disposeParams(gen);
  let mask: HostTensor | undefined;
  if (missing.some((m) => m !== null)) {
    mask = { shape: [imgs.length, h, w], data: new Float32Array(imgs.length * h * w) };
    missing.forEach((m, i) => m && mask!.data.set(m, i * h * w));
  }
  await mkdir(dirname(resolve(values.out)), { recursive: true });
  await writeTokenFile(values.out, {
    names,
    inputSize: [h, w],
    config: cfg,
    tensors: host,
    weights: weightsFingerprint(model.weights),
    ...(mask ? { missing: mask } : {}),
  });
  const per = representationSize(cfg);
  const gaps = missing.filter((m) => m !== null).length;
  console.log(
    `wrote ${values.out}: ${imgs.length} × ${per.toLocaleString("en")} floats (${[...host].map(([k, t]) => `${k} [${t.shape}]`).join(", ")})${gaps ? `; ${gaps} with filled gaps, kept as a mask (decoded as NaN)` : ""}`,
  );
  return 0;
}
