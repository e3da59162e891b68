/**
 * What the command files share: the model a command runs, the parsing of common flags (sizes,
 * numbers, choices), where results go, how images are prepared for a model, and "did you mean".
 */
import { existsSync } from "node:fs";
import { access, constants, mkdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import sharp from "sharp";
import { decodeTransformed, type DatasetSpec, type Transform } from "../data/datasets.js";
import { fromInterleaved, type HostImage } from "../data/image.js";
import { describeTransform, evalTransform, specWith, type Preparation } from "../data/preparation.js";
import { renderSvg, SVG_FILE, twemojiRoot } from "../data/svg.js";
import {
  evaluateSvgSuperResolution,
  svgSuperResolutionPicture,
  svgSuperResolutionTable,
} from "../eval/svg-super-resolution.js";
import { writeFileAtomic } from "../io/files.js";
import { ConfigError, type HyperNetworkConfig } from "../model/config.js";
import type { Params } from "../model/model.js";
import { regionProblem, regionSize, WHOLE_IMAGE, type DecodeRegion } from "../model/tasks.js";
import {
  resolveRunConfig,
  type ResolvedRunConfig,
  type RunConfigInput,
  type ValidatedRunConfig,
} from "../training/run-config.js";
import { DEBIAN_FASHION_MNIST, DEBIAN_FERRET_DATA, RUN_PRESETS, runPreset } from "../training/run-presets.js";
import { didYouMean, closest } from "../util/edit-distance.js";
import { InputError, UsageError } from "../util/errors.js";

/** What is at `p`: a file, a folder, or nothing (or something unreadable). */
async function pathKind(p: string): Promise<"file" | "folder" | null> {
  return stat(p).then(
    (s) => (s.isFile() ? "file" : s.isDirectory() ? "folder" : null),
    () => null,
  );
}

/**
 * The model file and the weights to load for `--model`/RUN and `--weights` (eval, encode, decode,
 * render, export): the library's resolution, so that a run folder or zoo name means the same thing
 * to the CLI and to `Anr.load`.
 */
export { resolveModelFile } from "../api/node.js";

/**
 * What a command hands back: its result, the one JSON object `--json` prints (and from which the
 * human output is made), and the exit code (0, or 1 when a check it performs failed).
 */
export interface Outcome {
  result: Record<string, unknown>;
  exitCode: number;
}

/** A command that succeeded with `result`. */
export function done(result: Record<string, unknown>): Outcome {
  return { result, exitCode: 0 };
}

/** "a", "a or b", "a, b or c". */
export function orList(values: readonly string[]): string {
  return values.length < 2 ? (values[0] ?? "") : `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
}

/**
 * The parser of an option that takes one of `values`: a usage error naming the flag, the choices
 * and the nearest one otherwise.
 */
export function parseChoice<const V extends string>(flag: string, values: readonly V[]): (text: string) => V {
  return (text) => {
    if ((values as readonly string[]).includes(text)) return text as V;
    throw new UsageError(`${flag} must be ${orList(values)}, not ${text}${didYouMean(text, values)}`);
  };
}

/** The weight sets of a run: `--weights online|ema`. */
export const WEIGHTS = ["online", "ema"] as const;

/** The parser of a whole number of at least `min` (1: a count, 0: e.g. a seed) for `flag`. */
export function parseWhole(flag: string, min = 1): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min)
      throw new UsageError(
        `${flag} ${text}: expected a whole number${min === 1 ? " above 0" : min === 0 ? "" : ` of at least ${min}`}`,
      );
    return n;
  };
}

/** The parser of a finite number (e.g. a depth) for `flag`. */
export function parseReal(flag: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} ${text}: expected a number`);
    return n;
  };
}

/**
 * The most pixels one PNG may have: sharp (libvips) refuses larger raw images than 0x3FFF² unless
 * told otherwise, and every decoded image is written as a PNG (fields as a false-colour preview).
 */
export const MAX_PNG_PIXELS = 0x3fff * 0x3fff;

/**
 * Refuse an output size of less than one pixel a side or over {@link MAX_PNG_PIXELS} pixels, so
 * that an output the PNG writer would refuse is refused before any work rather than after hours
 * of decoding. `what` is the flag and value as given.
 */
export function checkSize([h, w]: [number, number], what: string): [number, number] {
  if (h < 1 || w < 1) throw new UsageError(`${what}: each side must be at least 1 pixel`);
  if (h * w > MAX_PNG_PIXELS)
    throw new UsageError(
      `${what}: ${h}×${w} is ${(h * w).toLocaleString("en")} pixels, over the PNG writer's limit of ${MAX_PNG_PIXELS.toLocaleString("en")} (sharp/libvips); decode at a smaller size`,
    );
  return [h, w];
}

/** `--size HxW`, or `--size S` for S×S, checked by {@link checkSize}. */
export function parseSize(text: string): [number, number] {
  const m = text.match(/^(\d+)(?:x(\d+))?$/);
  if (!m) throw new UsageError(`--size ${text}: expected HxW or S (square), e.g. 512x256 or 512`);
  return checkSize([Number(m[1]), Number(m[2] ?? m[1])], `--size ${text}`);
}

/** `--scale K`: a factor above 0 (K × the native size; 4 is 4× super-resolution). */
export function parseScale(text: string): number {
  const k = Number(text);
  if (text.trim() === "" || !Number.isFinite(k) || k <= 0)
    throw new UsageError(`--scale ${text}: expected a factor above 0, e.g. 4`);
  return k;
}

/** `--region 0.25,0.25,0.75,0.75`: a part of the image, top, left, bottom, right as fractions. */
export function parseRegion(text: string): DecodeRegion {
  const values = text.split(",").map((t) => (t.trim() === "" ? NaN : Number(t)));
  const problem = regionProblem(values);
  if (problem) throw new UsageError(`--region ${text}: ${problem}`);
  return values as unknown as DecodeRegion;
}

/** `--scale 4,8`: several factors (eval of SVG runs). */
export function parseScales(text: string): number[] {
  return text.split(",").map((t) => parseScale(t.trim()));
}

/**
 * The output size from `--size` or `--scale` (K × `native`, rounded), or undefined when neither
 * was given; both is a usage error. With `--region`, `--scale` and the default take the region's
 * share of `native`.
 */
export function sizeFrom(
  o: { size?: [number, number]; scale?: number; region?: DecodeRegion },
  native: [number, number],
): [number, number] | undefined {
  if (o.size && o.scale !== undefined) throw new UsageError("give --size or --scale, not both");
  if (o.size) return o.size;
  const [h, w] = native;
  if (o.scale === undefined) return o.region ? regionSize(o.region, h, w) : undefined;
  // Not regionSize, which makes a side of 0 one pixel: a scale that small is refused.
  const [top, left, bottom, right] = o.region ?? WHOLE_IMAGE;
  return checkSize(
    [Math.round(o.scale * h * (bottom - top)), Math.round(o.scale * w * (right - left))],
    `--scale ${o.scale}`,
  );
}

/** A file or folder name made safe for a folder name: `face.jpg` → `face`. */
export function inputName(path: string): string {
  const base = basename(path.replace(/[\\/]+$/, "")).replace(/\.[^.]+$/, "");
  return base.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "input";
}

/**
 * Where a command writes when not given `--out`: `out/<command>-<input>` (training commands write
 * to `runs/<name>` instead), so that every command's results are found in the same place.
 */
export function defaultOut(command: string, input: string): string {
  return join("out", `${command}-${inputName(input)}`);
}

/**
 * A short name for a model file: its run folder's name for a run's own files (model.safetensors,
 * model-ema.safetensors, checkpoint.safetensors), else the file name without its extension.
 */
export function modelLabel(path: string): string {
  const file = basename(path);
  return /^(model|model-ema|checkpoint)\.safetensors$/.test(file)
    ? inputName(basename(resolve(dirname(path))))
    : inputName(file.replace(/\.safetensors$/i, ""));
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

/** A run preset by name; an unknown name lists the presets and the nearest one. */
export function runPresetNamed(name: string): Record<string, unknown> {
  if (!Object.hasOwn(RUN_PRESETS, name)) {
    const near = closest(name, Object.keys(RUN_PRESETS));
    throw new InputError(
      `preset "${name}"`,
      `unknown run preset (known: ${Object.keys(RUN_PRESETS).join(", ")})${near ? `; did you mean "${near}"?` : ""}`,
    );
  }
  return runPreset(name) as Record<string, unknown>;
}

/** `path: Unrecognized key(s): "a", "b"`, as zod words it, split into the path and the keys. */
function unrecognized(issue: string): { path: string[]; keys: string[] } | null {
  const m = /^(.+?): Unrecognized keys?: (.+)$/.exec(issue);
  if (!m) return null;
  return {
    path: m[1] === "(root)" ? [] : m[1]!.split("."),
    keys: [...m[2]!.matchAll(/"([^"]*)"/g)].map((k) => k[1]!),
  };
}

/** The object at `path` in `o`, or null. */
function objectAt(o: unknown, path: string[]): Record<string, unknown> | null {
  let node = o;
  for (const k of path) {
    if (typeof node !== "object" || node === null) return null;
    node = (node as Record<string, unknown>)[k];
  }
  return typeof node === "object" && node !== null ? (node as Record<string, unknown>) : null;
}

/**
 * `resolve(raw)`, with "did you mean" added to each unrecognized key of a {@link ConfigError}
 * (a typo in `--set train.lrr=1` or in a config file): the candidates are the keys at that path
 * of the same config resolved without the unknown keys (which has every field with a default)
 * and of the config as given.
 */
export function withKeyHints<T>(
  raw: Record<string, unknown>,
  resolve: (raw: Record<string, unknown>) => T,
): T {
  try {
    return resolve(raw);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const bad = e.issues.map(unrecognized);
    if (!bad.some((b) => b !== null)) throw e;
    const clean = structuredClone(raw);
    for (const b of bad) for (const k of b?.keys ?? []) delete objectAt(clean, b!.path)?.[k];
    let resolved: unknown = null;
    try {
      resolved = resolve(clean);
    } catch {
      // Other errors too: the keys as given are the only candidates.
    }
    const issues = e.issues.map((line, i) => {
      const b = bad[i];
      if (!b) return line;
      const known = [objectAt(resolved, b.path), objectAt(raw, b.path)].flatMap((o) => Object.keys(o ?? {}));
      const candidates = known.filter((k) => !b.keys.includes(k));
      const hints = b.keys.map((k) => closest(k, candidates)).filter((k) => k !== undefined);
      return hints.length ? `${line} (did you mean ${hints.map((h) => `"${h}"`).join(", ")}?)` : line;
    });
    throw new ConfigError(e.source, issues, e.what);
  }
}

/** {@link resolveRunConfig} with {@link withKeyHints}. */
export function resolveRun(raw: Record<string, unknown>, source: string): ValidatedRunConfig {
  return withKeyHints(raw, (r) => resolveRunConfig(r, source));
}

/**
 * Whether a run config's data is here: found (an embedded or installed dataset, the Twemoji
 * package), or what to get and how. A relative `root` is a placeholder for `--data-root`.
 */
export function dataStatus(
  config: RunConfigInput,
): { ready: true; where: string } | { ready: false; needs: string } {
  const data = config.data as { kind: string; root?: string };
  if (data.kind === "twemoji" && data.root === undefined) {
    try {
      return { ready: true, where: twemojiRoot() };
    } catch {
      return { ready: false, needs: "the @twemoji/svg package (npm install @twemoji/svg@15.0.0)" };
    }
  }
  const root = data.root ?? "";
  if (root !== "" && existsSync(root)) return { ready: true, where: root };
  if (root.startsWith(DEBIAN_FASHION_MNIST))
    return { ready: false, needs: `Fashion-MNIST: apt-get install dataset-fashion-mnist (into ${root})` };
  if (root.startsWith(DEBIAN_FERRET_DATA))
    return {
      ready: false,
      needs: `NOAA PMEL's climate files: apt-get install ferret-datasets (into ${root})`,
    };
  const how: Record<string, string> = {
    celeba:
      "CelebA: img_align_celeba/ and list_eval_partition.txt from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; --data-root DIR",
    npy: "ERA5 2 m temperature as .npy fields (721×1440), from the Copernicus Climate Data Store (https://cds.climate.copernicus.eu); --data-root DIR",
    netcdf:
      "ERA5 2 m temperature NetCDF files from the Copernicus Climate Data Store (https://cds.climate.copernicus.eu); --data-root FILE_OR_DIR",
    learnit:
      "renders in the learnit layout (ShapeNet cars/chairs/lamps from the learnit project, https://github.com/tancik/learnit); --data-root DIR",
  };
  return { ready: false, needs: how[data.kind] ?? `a ${data.kind} dataset; --data-root PATH` };
}

/** Where the preparation came from, for the line encode and eval print. */
export function preparationSource(recorded: Preparation | null, o: PreparationFlags): string {
  const from = recorded ? "as the model was trained" : "defaults: the model file records no preparation";
  const flags = givenFlags(o);
  return flags.length ? `${from}, overridden by ${flags.join(" ")}` : from;
}

/** Decode an image file to the model's input: resize the shorter side, centre crop. */
async function loadCentreCrop(path: string, h: number, w: number): Promise<HostImage> {
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
 * How image files become the model's input, prepared as the model's training data was (its
 * evaluation transform; SVG files rendered on its background), each setting overridden by its
 * flag. A model file that records no preparation, given no flags, gets the shorter side resized
 * and centre crop. Returns what it does, in words, and the loader.
 */
export function imagePreparer(
  [h, w]: [number, number],
  recorded: Preparation | null,
  o: PreparationFlags,
  modelPath: string,
): { describe: string; load: (path: string) => Promise<HostImage> } {
  if (o.select !== undefined || o["fill-missing"] !== undefined)
    throw new UsageError(`--select and --fill-missing are for field models; ${modelPath} is an image model`);
  const spec =
    recorded?.task === "image" ? (specWith(recorded, { root: "." }, modelPath) as DatasetSpec) : null;
  if (!spec && !givenFlags(o).length)
    return {
      describe: `images: shorter side to ${Math.min(h, w)}, centre ${h}×${w} (${preparationSource(null, o)})`,
      load: (p) => loadCentreCrop(p, h, w),
    };
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
  return {
    describe: `images: ${describeTransform(t)}; SVG files rendered on ${background} (${preparationSource(recorded, o)})`,
    load: async (p) =>
      SVG_FILE.test(p)
        ? fromInterleaved(await renderSvg(p, t.size, background), t.size, t.size, 3)
        : decodeTransformed(p, t),
  };
}

/**
 * The command line that continues a run: `args` (the command line after `anr`, the command name
 * included) with --resume and without --overwrite, quoted for a POSIX shell.
 */
export function resumeCommand(args: string[]): string {
  const kept = args.filter((a) => a !== "--overwrite" && a !== "--resume");
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
  return ["anr", ...kept, "--resume"].map(quote).join(" ");
}

/** Shown wherever Twemoji graphics are (CC-BY 4.0 asks for it). */
const TWEMOJI_ATTRIBUTION = "Twemoji graphics © Twitter, Inc. and other contributors, CC-BY 4.0";

/**
 * `anr eval --sr` (and the first part of `anr demo`): decode SVG items at several factors, compare
 * with their true renderings, write `<stem>-sr.json` and a picture per factor into `o.out`.
 */
export async function svgSuperResolution(
  run: ResolvedRunConfig,
  data: Extract<DatasetSpec, { kind: "svg" | "twemoji" }>,
  P: Params,
  factors: number[],
  o: { out: string; stem: string },
): Promise<Outcome> {
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
  const files = [`${stem}.json`];
  for (const [k, { factor }] of r.factors.entries()) {
    const png = await svgSuperResolutionPicture(r, k, attribution);
    if (png) await writeFileAtomic(`${stem}-x${factor}.png`, png);
    if (png) files.push(`${stem}-x${factor}.png`);
  }
  console.log(
    `${r.split}: ${r.items.length} items encoded at ${r.inputSize}², decoded at ${factors.map((f) => `×${f}`).join(", ")} and compared with their renderings at that size`,
  );
  console.log(svgSuperResolutionTable(r));
  if (attribution) console.log(attribution);
  console.log(`wrote ${stem}.json and ${factors.map((f) => `${basename(stem)}-x${f}.png`).join(", ")}`);
  return done({ ...r, kept: undefined, out: o.out, files });
}
