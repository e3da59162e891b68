/** `anr eval`, `anr encode`, `anr decode`: use a trained image model. */
import { parseArgs } from "node:util";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join, basename, extname } from "node:path";
import sharp from "sharp";
import { initBackend } from "../backend/index.js";
import { numpy as np } from "../backend/jax.js";
import { fromInterleaved, hconcat, savePng, vconcat, type HostImage } from "../data/image.js";
import { toBatchArray, type PhysicalError } from "../eval/evaluate.js";
import { describePhysical, evaluateRun } from "../training/trainer.js";
import { modelFileWeights, type WeightsChoice, CONFIG_METADATA_KEY } from "../io/weights.js";
import { loadModel, readSafetensors, writeSafetensors, writeFileAtomic } from "../io/files.js";
import { type HostTensor } from "../io/safetensors.js";
import {
  parseHyperNetworkConfig,
  sizeHW,
  type ChannelArgs,
  type HyperNetworkConfig,
} from "../model/config.js";
import { denormalizeField, openFieldDataset, type FieldSpecInput } from "../data/fields.js";
import { writeNpy } from "../data/npy.js";
import { writeNetcdf3 } from "../data/netcdf.js";
import { falseColour, finiteRange } from "../util/colormap.js";
import { evaluateSuperResolution } from "../eval/super-resolution.js";
import type { Params } from "../model/model.js";
import type { ResolvedFieldRun } from "../training/run-config.js";
import { generatedParams, hyperNetwork, type HypoParams } from "../model/model.js";
import { countParams, disposeParams, toDevice, toHost } from "../model/params.js";
import { createImageDecoder } from "../model/tasks.js";
import { resolveRunConfig } from "../training/run-config.js";
import { UsageError } from "./usage.js";

/** Metadata key of a token file (R-tokens or generated weights of encoded images). */
export const TOKENS_METADATA_KEY = "anr.tokens";

/** Floats per instance that the hyper-network generates (the compact representation). */
export function representationSize(cfg: HyperNetworkConfig): number {
  return generatedParams(cfg).reduce((s, g) => s + g.shape[0] * g.shape[1], 0);
}

/** What is at `p`: a file, a folder, or nothing (or something unreadable). */
async function pathKind(p: string): Promise<"file" | "folder" | null> {
  return stat(p).then(
    (s) => (s.isFile() ? "file" : s.isDirectory() ? "folder" : null),
    () => null,
  );
}

/**
 * The model file and the weights to load from it for `--model`/RUN and `--weights`, the same for
 * eval, encode and decode. A finished run folder holds one file per weight set (model.safetensors,
 * model-ema.safetensors); a run still training holds both sets in checkpoint.safetensors. A model
 * file given by name is loaded as it is: `--weights ema` on it is checked by {@link loadModel}
 * (accepted for an EMA model file, refused for an online one).
 */
export async function resolveModelFile(
  p: string,
  weights: WeightsChoice,
): Promise<{ path: string; weights: WeightsChoice }> {
  if ((await pathKind(p)) !== "folder") return { path: p, weights };
  if ((await pathKind(join(p, "model.safetensors"))) === "file") {
    if (weights === "online") return { path: join(p, "model.safetensors"), weights };
    const ema = join(p, "model-ema.safetensors");
    if ((await pathKind(ema)) !== "file")
      throw new UsageError(
        `${p}: no model-ema.safetensors (the run was trained without EMA: train.ema is null); use --weights online`,
      );
    return { path: ema, weights };
  }
  const checkpoint = join(p, "checkpoint.safetensors");
  if ((await pathKind(checkpoint)) === "file") return { path: checkpoint, weights };
  throw new UsageError(`${p}: not a run folder (no model.safetensors or checkpoint.safetensors)`);
}

function parseWeightsChoice(text: string | undefined): WeightsChoice {
  if (text !== "online" && text !== "ema")
    throw new UsageError(`--weights must be online or ema, not ${text}`);
  return text;
}

export const EVAL_USAGE = `anr eval RUN_DIR [--split test|val] [--weights online|ema] [--max-images N] [--out DIR]
anr eval --model MODEL.safetensors --config RUN.yaml [...]

PSNR per image (in [0,1], averaged over the split: the TransINR/IPC protocol) and SSIM; writes
eval-<split>-<weights>.json and eval-<split>-<weights>.png (inputs over reconstructions).
Field runs: PSNR in normalised units (as the reference), and per channel the RMSE and largest
absolute error in physical units (e.g. K); the picture is in false colour.

--size HxW (field runs): super-resolution. Each field is encoded at the model's size, decoded at
HxW and compared with the same field prepared at HxW from the original data, next to bilinear
upsampling of the input; writes eval-<split>-<weights>-<H>x<W>.json and .png (input | bilinear |
decoded | truth).`;

export async function cmdEval(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      config: { type: "string" },
      split: { type: "string", default: "test" },
      weights: { type: "string", default: "online" },
      "max-images": { type: "string" },
      "data-root": { type: "string" },
      out: { type: "string" },
      size: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(EVAL_USAGE, 0);
  const runDir = positionals[0];
  const configPath = values.config ?? (runDir ? join(runDir, "config.json") : undefined);
  if (!configPath) throw new UsageError(EVAL_USAGE);
  const rawRun = JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>;
  if (values["data-root"]) (rawRun.data as Record<string, unknown>).root = values["data-root"];
  const run = resolveRunConfig(rawRun, configPath);
  const source = values.model ?? runDir;
  if (!source) throw new UsageError(EVAL_USAGE);
  const chosen = await resolveModelFile(source, parseWeightsChoice(values.weights));
  const mPath = chosen.path;
  const split = values.split as "val" | "test";
  run.eval.split = split;
  const maxImages = values["max-images"] === undefined ? undefined : Number(values["max-images"]);
  if (maxImages !== undefined && !(Number.isInteger(maxImages) && maxImages > 0))
    throw new UsageError(`--max-images ${values["max-images"]}: expected a whole number above 0`);
  if (maxImages !== undefined) run.eval.max_images = maxImages;
  await initBackend();
  const model = await loadModel(mPath, { weights: chosen.weights });
  // Reports name the weights evaluated: an EMA model file given by name is EMA.
  const weights = modelFileWeights(model.metadata) === "ema" ? "ema" : chosen.weights;
  const P = toDevice(model.weights);
  if (values.size) {
    if (run.task !== "field") throw new UsageError("--size (super-resolution) is for field runs");
    try {
      return await superResolution({ ...run, model: model.config }, P, parseSize(values.size), {
        out: values.out ?? runDir ?? ".",
        stem: `eval-${split}-${weights}`,
      });
    } finally {
      disposeParams(P);
    }
  }
  const t0 = performance.now();
  const r = await evaluateRun({ ...run, model: model.config } as typeof run, P, { maxImages });
  disposeParams(P);
  const out = values.out ?? runDir ?? ".";
  await mkdir(out, { recursive: true });
  const stem = `eval-${split}-${weights}`;
  const summary = {
    model: mPath,
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

function parseSize(text: string): [number, number] {
  const m = text.match(/^(\d+)(?:x(\d+))?$/);
  if (!m) throw new UsageError(`--size ${text}: expected HxW, e.g. 512x512`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

/** `anr eval --size`: decode above the training resolution and compare with real high-resolution data. */
async function superResolution(
  run: ResolvedFieldRun,
  P: Params,
  [H, W]: [number, number],
  o: { out: string; stem: string },
): Promise<number> {
  const channels = run.model.channels!;
  const p = run.data.preprocess;
  if (p.mode === "none")
    throw new UsageError(
      "--size needs data.preprocess.mode resize or resize-crop (the data is used as stored)",
    );
  const [h, w] = sizeHW(run.model.tokenizer.args.input_size);
  const factor = H / h;
  if (p.mode === "resize-crop" && Math.abs(W / w - factor) > 1e-9)
    throw new UsageError(
      `--size ${H}x${W}: with resize-crop both sides must grow by the same factor (${h}x${w} → ×${factor})`,
    );
  const highSpec = {
    ...run.data,
    preprocess: {
      ...p,
      size: [H, W] as [number, number],
      resize: p.resize ? Math.round(p.resize * factor) : undefined,
    },
  };
  const low = await openFieldDataset(run.data, run.eval.split, channels);
  const high = await openFieldDataset(highSpec, run.eval.split, channels);
  try {
    const r = await evaluateSuperResolution(P, run.model, low, high, {
      batchSize: run.eval.batch_size,
      maxFields: run.eval.max_images,
      keep: 4,
    });
    const { kept, ...report } = r;
    const stem = join(o.out, `${o.stem}-${H}x${W}`);
    await mkdir(o.out, { recursive: true });
    await writeFileAtomic(`${stem}.json`, JSON.stringify({ split: low.name, ...report }, null, 2) + "\n");
    const rows = kept.map((k) => {
      const range = finiteRange(k.truth.data.subarray(0, H * W));
      return hconcat([
        falseColour(resizeNearest(k.input, H, W), 0, range),
        falseColour(k.bilinear, 0, range),
        falseColour(k.pred, 0, range),
        falseColour(k.truth, 0, range),
      ]);
    });
    if (rows.length) await savePng(`${stem}.png`, vconcat(rows), H < 100 ? 2 : 1);
    console.log(
      `${low.name}: ${r.fields} fields encoded at ${h}×${w}, decoded at ${H}×${W} (×${factor.toFixed(2)})`,
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
  } finally {
    low.close();
    high.close();
  }
}

/** Nearest-neighbour enlargement, to show an input at the decoded size without smoothing it. */
function resizeNearest(img: HostImage, h: number, w: number): HostImage {
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        data[(c * h + y) * w + x] =
          img.data[(c * img.h + Math.floor((y * img.h) / h)) * img.w + Math.floor((x * img.w) / w)]!;
  return { c: img.c, h, w, data };
}

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
  await writeSafetensors(values.out, [...host], {
    [TOKENS_METADATA_KEY]: JSON.stringify({ images: names, input_size: [h, w] }),
    [CONFIG_METADATA_KEY]: JSON.stringify(cfg),
  });
  const per = representationSize(cfg);
  console.log(
    `wrote ${values.out}: ${imgs.length} × ${per.toLocaleString("en")} floats (${[...host].map(([k, t]) => `${k} [${t.shape}]`).join(", ")})`,
  );
  return 0;
}

export const DECODE_USAGE = `anr decode tokens.safetensors --model MODEL.safetensors|RUN_DIR --size HxW [--out DIR] [--format npy|nc]
           [--weights online|ema]

Decodes each encoded image at any resolution (super-resolution beyond the training size) and
writes PNGs <name>.<H>x<W>.png. For field models: <name>.<H>x<W>.npy in physical units (float32,
(H, W) for one channel, else (C, H, W)), or with --format nc a NetCDF-3 file with one variable
per channel (its name and units, dims y, x), and a false-colour preview per channel,
<name>.<H>x<W>[.<channel>].png. Decode with the weights that encoded (--weights ema for tokens made
with --weights ema).`;

export async function cmdDecode(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      size: { type: "string" },
      out: { type: "string", default: "." },
      weights: { type: "string", default: "online" },
      format: { type: "string", default: "npy" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(DECODE_USAGE, 0);
  if (positionals.length !== 1 || !values.model || !values.size) throw new UsageError(DECODE_USAGE);
  if (values.format !== "npy" && values.format !== "nc")
    throw new UsageError(`--format ${values.format}: expected npy or nc`);
  const [h, w] = parseSize(values.size);
  await initBackend();
  const chosen = await resolveModelFile(values.model, parseWeightsChoice(values.weights));
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const file = await readSafetensors(positionals[0]!);
  const meta = file.metadata[TOKENS_METADATA_KEY];
  if (!meta)
    throw new UsageError(
      `${positionals[0]}: not a token file (no "${TOKENS_METADATA_KEY}" metadata; make one with anr encode)`,
    );
  const tokCfg = parseHyperNetworkConfig(
    JSON.parse(file.metadata[CONFIG_METADATA_KEY] ?? "null"),
    positionals[0]!,
  );
  if (JSON.stringify(tokCfg) !== JSON.stringify(model.config))
    throw new UsageError(
      `${positionals[0]} was encoded by a model with a different config than ${values.model}`,
    );
  const names = (JSON.parse(meta) as { images: string[] }).images;
  const gens = generatedParams(model.config);
  const gen: HypoParams = {};
  for (const g of gens) {
    const t: HostTensor | undefined = file.tensors.get(g.name);
    if (!t || t.shape.length !== 3 || t.shape[1] !== g.shape[0] || t.shape[2] !== g.shape[1]) {
      throw new UsageError(
        `${positionals[0]}: tensor "${g.name}" should be [B, ${g.shape}], found ${t ? `[${t.shape}]` : "nothing"}`,
      );
    }
    gen[g.name] = np.array(t.data, { shape: t.shape });
  }
  const b = file.tensors.get(gens[0]!.name)!.shape[0]!;
  const P = toDevice(model.weights);
  const decoder = createImageDecoder(model.config);
  const t0 = performance.now();
  const rgb = await decoder(P, gen, b, h, w);
  const dt = (performance.now() - t0) / 1000;
  decoder.dispose();
  disposeParams(P);
  disposeParams(gen);
  await mkdir(values.out, { recursive: true });
  const c = model.config.hyponet.args.out_dim;
  const channels = model.config.channels;
  for (let i = 0; i < b; i++) {
    const data = rgb.slice(i * c * h * w, (i + 1) * c * h * w).map((x) => (x + 1) / 2);
    const name = basename(names[i] ?? `image${i}`, extname(names[i] ?? ""));
    const stem = join(values.out, `${name}.${h}x${w}`);
    if (!channels) {
      await savePng(`${stem}.png`, { c, h, w, data });
      continue;
    }
    const field: HostImage = { c, h, w, data: denormalizeField(data, channels, h * w) };
    if (values.format === "nc")
      await writeNetcdf3(`${stem}.nc`, {
        dims: [
          { name: "y", size: h },
          { name: "x", size: w },
        ],
        variables: channels.map((ch, k) => ({
          name: ch.name,
          dims: ["y", "x"],
          dtype: "f4" as const,
          data: field.data.subarray(k * h * w, (k + 1) * h * w),
          attrs: ch.units ? { units: ch.units } : ({} as Record<string, string>),
        })),
        attrs: {
          source: `anr decode of ${basename(positionals[0]!)} with ${basename(values.model)}`,
          Conventions: "CF-1.8",
        },
      });
    else await writeNpy(`${stem}.npy`, { shape: c === 1 ? [h, w] : [c, h, w], data: field.data });
    for (let k = 0; k < c; k++)
      await savePng(`${stem}${c === 1 ? "" : `.${channels[k]!.name}`}.png`, falseColour(field, k));
  }
  console.log(
    `decoded ${b} image(s) at ${h}×${w} in ${dt.toFixed(2)} s (${((b * h * w) / dt).toFixed(0)} px/s) → ${values.out}`,
  );
  return 0;
}
