/** `anr encode`: the compact representation (R-tokens or generated weights) of images or fields. */
import { mkdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { initBackend } from "../backend/index.js";
import type { HostImage } from "../data/image.js";
import { openFieldDataset, type FieldSpec } from "../data/fields.js";
import { describePreparation, readPreparation, specWith, type Preparation } from "../data/preparation.js";
import { toBatchArray } from "../eval/evaluate.js";
import { loadModel } from "../io/files.js";
import type { HostTensor } from "../io/safetensors.js";
import { representationSize, weightsFingerprint } from "../io/tokens.js";
import { writeTokenFile } from "../io/files.js";
import { sizeHW, type ChannelArgs } from "../model/config.js";
import { hyperNetwork } from "../model/model.js";
import { disposeParams, toDevice, toHost } from "../model/params.js";
import { InputError, UsageError } from "../util/errors.js";
import type { WeightsChoice } from "../io/weights.js";
import {
  checkWritable,
  defaultOut,
  done,
  imagePreparer,
  overrideFieldPreparation,
  preparationSource,
  resolveModelFile,
  givenFlags,
  type Outcome,
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

/** `anr encode`'s options. */
export interface EncodeOptions extends PreparationFlags {
  model: string;
  out?: string;
  weights: WeightsChoice;
  index?: string;
}

/**
 * The compact representation of each image or field: its R-tokens (ANR) or generated weights
 * (baselines), in one token file (default `out/encode-<first input>/tokens.safetensors`).
 */
export async function cmdEncode(positionals: string[], values: EncodeOptions): Promise<Outcome> {
  const out = values.out ?? join(defaultOut("encode", positionals[0]!), "tokens.safetensors");
  await checkWritable(out, { flag: "--out", file: true });
  await initBackend();
  const chosen = await resolveModelFile(values.model, values.weights);
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const cfg = model.config;
  if (cfg.tokenizer.name !== "ImgTokenizer")
    throw new InputError(chosen.path, `not an image model (tokenizer ${cfg.tokenizer.name})`);
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
    : await loadImages(positionals, [h, w], recorded, flags, chosen.path);
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
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeTokenFile(out, {
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
    `wrote ${out}: ${imgs.length} × ${per.toLocaleString("en")} floats (${[...host].map(([k, t]) => `${k} [${t.shape}]`).join(", ")})${gaps ? `; ${gaps} with filled gaps, kept as a mask (decoded as NaN)` : ""}`,
  );
  return done({
    out,
    folder: dirname(out),
    model: chosen.path,
    weights: chosen.weights,
    instances: names,
    floats_per_instance: per,
    tensors: Object.fromEntries([...host].map(([k, t]) => [k, t.shape])),
    filled_gaps: gaps,
  });
}

/** Image files → the model's input, as {@link imagePreparer} says (which it prints). */
async function loadImages(
  paths: string[],
  size: [number, number],
  recorded: Preparation | null,
  flags: PreparationFlags,
  modelPath: string,
): Promise<{ imgs: HostImage[]; names: string[]; missing: (Float32Array | null)[] }> {
  const prepare = imagePreparer(size, recorded, flags, modelPath);
  console.log(prepare.describe);
  return {
    imgs: await Promise.all(paths.map(prepare.load)),
    names: paths.map((p) => basename(p)),
    missing: [],
  };
}
