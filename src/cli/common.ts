/** What the command files share: the model a command runs, and the parsing of common flags. */
import { access, constants, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { HyperNetworkConfig } from "../model/config.js";
import type { WeightsChoice } from "../io/weights.js";
import { resolveModel } from "../io/zoo.js";
import { InputError, UsageError } from "../util/errors.js";

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
 * file given by name is loaded as it is: `--weights ema` on it is checked by `loadModel`
 * (accepted for an EMA model file, refused for an online one). A zoo name (`anr models`) stands for
 * its shipped model file.
 */
export async function resolveModelFile(
  given: string,
  weights: WeightsChoice,
): Promise<{ path: string; weights: WeightsChoice }> {
  const p = await resolveModel(given);
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

/** `--weights online|ema`. */
export function parseWeightsChoice(text: string | undefined): WeightsChoice {
  if (text !== "online" && text !== "ema")
    throw new UsageError(`--weights must be online or ema, not ${text}`);
  return text;
}

/**
 * The most pixels one PNG may have: sharp (libvips) refuses larger raw images than 0x3FFF² unless
 * told otherwise, and every decoded image is written as a PNG (fields as a false-colour preview).
 */
export const MAX_PNG_PIXELS = 0x3fff * 0x3fff;

/**
 * `--size HxW` (or `--size N` for N×N): at least one pixel a side, and at most
 * {@link MAX_PNG_PIXELS} pixels, so that an output the PNG writer would refuse is refused before
 * any work rather than after hours of decoding.
 */
export function parseSize(text: string): [number, number] {
  const m = text.match(/^(\d+)(?:x(\d+))?$/);
  if (!m) throw new UsageError(`--size ${text}: expected HxW, e.g. 512x512`);
  const [h, w] = [Number(m[1]), Number(m[2] ?? m[1])];
  if (h < 1 || w < 1) throw new UsageError(`--size ${text}: each side must be at least 1 pixel`);
  if (h * w > MAX_PNG_PIXELS)
    throw new UsageError(
      `--size ${text}: ${h}×${w} is ${(h * w).toLocaleString("en")} pixels, over the PNG writer's limit of ${MAX_PNG_PIXELS.toLocaleString("en")} (sharp/libvips); decode at a smaller size`,
    );
  return [h, w];
}

/**
 * Check before any work that `path` (a folder, or with `file` a file to write) can be written:
 * the folder, or its nearest existing ancestor if it is still to be made, must be a writable
 * folder. Errors name the path and suggest `flag`, the option that chooses another.
 */
export async function checkWritable(path: string, o: { flag: string; file?: boolean }): Promise<void> {
  if (o.file && (await pathKind(path)) === "folder")
    throw new InputError(path, `is a folder; give ${o.flag} the path of the file to write`);
  let folder = resolve(o.file ? dirname(path) : path);
  for (;;) {
    const kind = await pathKind(folder);
    if (kind === "file")
      throw new InputError(
        path,
        `cannot write there: ${folder} is a file, not a folder; choose another ${o.flag}`,
      );
    if (kind === "folder") break;
    const parent = dirname(folder);
    if (parent === folder) break;
    folder = parent;
  }
  try {
    await access(folder, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as { code?: string }).code ?? (e as Error).message;
    throw new InputError(path, `the folder ${folder} is not writable (${code}); choose another ${o.flag}`);
  }
}

/** What a model was made for: NeRF models have a views tokenizer, field models list their channels. */
export function modelTask(cfg: HyperNetworkConfig): "image" | "field" | "nerf" {
  if (cfg.tokenizer.name === "nvs_tokenizer") return "nerf";
  return cfg.channels ? "field" : "image";
}

/** Refuse a model made for another task than the run's, naming the model file and both tasks. */
export function checkModelTask(
  cfg: HyperNetworkConfig,
  modelPath: string,
  runTask: string,
  runSource: string,
): void {
  const task = modelTask(cfg);
  if (task !== runTask)
    throw new InputError(
      modelPath,
      `a model for task ${task} (${cfg.tokenizer.name}${cfg.channels ? `, channels ${cfg.channels.map((c) => c.name).join(", ")}` : ""}), but ${runSource} is a run of task ${runTask}; give a model trained for ${runTask}`,
    );
}

/** parseArgs options of the {@link PreparationFlags}. */
export const PREPARATION_OPTIONS = {
  preprocess: { type: "string" },
  resize: { type: "string" },
  select: { type: "string" },
  "fill-missing": { type: "string" },
  background: { type: "string" },
} as const;

/** Flags that override a field of the recorded data preparation (encode, eval). */
export interface PreparationFlags {
  preprocess?: string;
  resize?: string;
  select?: string;
  "fill-missing"?: string;
  background?: string;
}

/** The flags of `o` that were given, as "--name value", for the commands to say what overrode what. */
export function givenFlags(o: PreparationFlags): string[] {
  return Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `--${k} ${v as string}`);
}

/** `--resize N`: the shorter side before the centre crop. */
export function parseResize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new UsageError(`--resize ${text}: expected a whole number of pixels above 0`);
  return Number(text);
}

/**
 * Override the fields of a field preparation (`data`: a field spec or its recorded part, changed
 * in place) that flags give: --preprocess (mode), --resize, --select (NetCDF), --fill-missing
 * (a value, or none). `what` names the data in errors.
 */
export function overrideFieldPreparation(
  data: Record<string, unknown>,
  o: PreparationFlags,
  what: string,
): void {
  if (o.preprocess !== undefined) {
    if (!["resize-crop", "resize", "none"].includes(o.preprocess))
      throw new UsageError(`--preprocess ${o.preprocess}: expected resize-crop, resize or none for fields`);
    const { resize, ...rest } = data.preprocess as Record<string, unknown>;
    data.preprocess = { ...rest, mode: o.preprocess, ...(o.preprocess === "resize-crop" ? { resize } : {}) };
  }
  const resize = parseResize(o.resize);
  if (resize !== undefined) data.preprocess = { ...(data.preprocess as object), resize };
  if (o.select !== undefined) {
    if (data.kind !== "netcdf") throw new UsageError(`--select is for NetCDF files, not ${what}`);
    const select: Record<string, number> = {};
    for (const kv of o.select ? o.select.split(",") : []) {
      const m = /^([^=]+)=(\d+)$/.exec(kv.trim());
      if (!m) throw new UsageError(`--select ${o.select}: expected dim=index[,dim=index]`);
      select[m[1]!] = Number(m[2]);
    }
    data.select = select;
  }
  const fill = o["fill-missing"];
  if (fill !== undefined) {
    if (fill === "none") delete data.fill_missing;
    else if (fill.trim() !== "" && Number.isFinite(Number(fill))) data.fill_missing = Number(fill);
    else throw new UsageError(`--fill-missing ${fill}: expected a number, or none`);
  }
  if (o.background !== undefined) throw new UsageError(`--background is for images (SVG), not fields`);
}
