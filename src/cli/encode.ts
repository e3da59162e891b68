/** `anr encode`: the compact representation (R-tokens or generated weights) of images or fields. */
import { parseArgs } from "node:util";
import { basename } from "node:path";
import sharp from "sharp";
import { initBackend } from "../backend/index.js";
import { fromInterleaved, type HostImage } from "../data/image.js";
import { openFieldDataset, type FieldSpecInput } from "../data/fields.js";
import { toBatchArray } from "../eval/evaluate.js";
import { loadModel } from "../io/files.js";
import { representationSize, writeTokenFile } from "../io/tokens.js";
import { sizeHW, type ChannelArgs } from "../model/config.js";
import { hyperNetwork } from "../model/model.js";
import { disposeParams, toDevice, toHost } from "../model/params.js";
import { UsageError } from "../util/errors.js";
import { parseWeightsChoice, resolveModelFile } from "./common.js";

/**
 * Fields in physical units → the model's input: each path is a .npy file or a NetCDF file (the
 * channel names are its variables), preprocessed to the model's size and normalised.
 */
async function loadFieldsForModel(
  paths: string[],
  channels: ChannelArgs[],
  size: [number, number],
  o: { index?: string; preprocess?: string; select?: string },
): Promise<{ imgs: HostImage[]; names: string[] }> {
  const mode = o.preprocess ?? "resize-crop";
  if (mode !== "resize-crop" && mode !== "resize" && mode !== "none")
    throw new UsageError(`--preprocess ${mode}: expected resize-crop, resize or none`);
  const select: Record<string, number> = {};
  for (const kv of o.select ? o.select.split(",") : []) {
    const m = /^([^=]+)=(\d+)$/.exec(kv.trim());
    if (!m) throw new UsageError(`--select ${o.select}: expected dim=index[,dim=index]`);
    select[m[1]!] = Number(m[2]);
  }
  const wanted = o.index?.split(",").map((x) => {
    if (!/^\d+$/.test(x.trim()))
      throw new UsageError(`--index ${o.index}: expected comma-separated integers`);
    return Number(x);
  });
  const imgs: HostImage[] = [];
  const names: string[] = [];
  for (const path of paths) {
    const common = {
      root: path,
      split: { train: 1, val: 0, test: 0 },
      preprocess: { mode, size },
      normalize: { shift: channels.map((c) => c.shift), scale: channels.map((c) => c.scale) },
    } as const;
    const spec: FieldSpecInput = /\.npy$/i.test(path)
      ? { kind: "npy", ...common }
      : { kind: "netcdf", variables: channels.map((c) => c.name), select, ...common };
    const ds = await openFieldDataset(spec, "train", channels);
    try {
      for (const i of wanted ?? [...Array(ds.length).keys()]) {
        if (i >= ds.length)
          throw new UsageError(`${path}: --index ${i} is out of range (${ds.length} field(s))`);
        imgs.push(await ds.get(i));
        // "era5.nc#12" → "era5-t12": decode names its files after this, extension stripped.
        const [file, step] = ds.id(i).split("#") as [string, string | undefined];
        names.push(step === undefined ? file : `${file.replace(/\.[^./]+$/, "")}-t${step}`);
      }
    } finally {
      ds.close();
    }
  }
  return { imgs, names };
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

export const ENCODE_USAGE = `anr encode IMAGE... --model MODEL.safetensors|RUN_DIR --out tokens.safetensors [--weights online|ema]
anr encode FIELD.npy|FILE.nc... --model FIELD_MODEL.safetensors --out tokens.safetensors [--index 0,5,9]
           [--preprocess resize-crop|resize|none] [--select dim=index,...]

The compact representation of each image or field: its R-tokens (ANR) or generated weights
(baselines). Images are resized (shorter side) and centre-cropped to the model's input size.
Fields (models trained with task: field) are read in physical units from .npy files ((H, W) or
(C, H, W)) or NetCDF files (the model's channel names are the variables; every time step, or
those in --index), resized as in training (default resize-crop) and normalised by the model.
--weights ema with a run folder uses its model-ema.safetensors (its checkpoint while it trains).`;

export async function cmdEncode(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      out: { type: "string" },
      weights: { type: "string", default: "online" },
      index: { type: "string" },
      preprocess: { type: "string", default: "resize-crop" },
      select: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(ENCODE_USAGE, 0);
  if (!positionals.length || !values.model || !values.out) throw new UsageError(ENCODE_USAGE);
  await initBackend();
  const chosen = await resolveModelFile(values.model, parseWeightsChoice(values.weights));
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const cfg = model.config;
  if (cfg.tokenizer.name !== "ImgTokenizer")
    throw new UsageError(`${values.model}: not an image model (tokenizer ${cfg.tokenizer.name})`);
  const [h, w] = sizeHW(cfg.tokenizer.args.input_size);
  const { imgs, names } = cfg.channels
    ? await loadFieldsForModel(positionals, cfg.channels, [h, w], {
        index: values.index,
        preprocess: values.preprocess,
        select: values.select,
      })
    : {
        imgs: await Promise.all(positionals.map((p) => loadForModel(p, h, w))),
        names: positionals.map((p) => basename(p)),
      };
  const P = toDevice(model.weights);
  const gen = hyperNetwork(P, cfg, toBatchArray(imgs).mul(2).sub(1));
  const host = await toHost(gen);
  disposeParams(P);
  disposeParams(gen);
  await writeTokenFile(values.out, { names, inputSize: [h, w], config: cfg, tensors: host });
  const per = representationSize(cfg);
  console.log(
    `wrote ${values.out}: ${imgs.length} × ${per.toLocaleString("en")} floats (${[...host].map(([k, t]) => `${k} [${t.shape}]`).join(", ")})`,
  );
  return 0;
}
