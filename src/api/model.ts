/**
 * The facade: a model in three lines, in the style of transformers.js's `pipeline()`.
 *
 *   const m = await Anr.load(bytes);                        // or a URL; in Node ("anr/node") a path,
 *   const t = await m.encode(image);                        //   run folder or zoo name, and files
 *   const img = await m.decode(t, { size: [512, 512] });    // any resolution
 *   m.dispose();                                            // or: using m = await Anr.load(…)
 *
 * Inputs are prepared as `anr encode` prepares files (./input.ts); tokens are the token file's
 * object (`tokensToBytes` writes it, `tokensFromBytes` reads one); device arrays live and die
 * inside: the weights from load to dispose(), everything else within one call. Portable; the
 * Node entry's subclass (./node.ts) adds paths, run folders, zoo names and image files.
 */
import { initBackend, type BackendArgs } from "../backend/index.js";
import { numpy as np } from "../backend/jax.js";
import {
  parseHyperNetworkConfig,
  sizeHW,
  type ChannelArgs,
  type HyperNetworkConfig,
} from "../model/config.js";
import type { HypoParams, Params } from "../model/model.js";
import { disposeParams, toDevice, toHost } from "../model/params.js";
import {
  createGridDecoder,
  createViewRenderer,
  regionCentres,
  regionProblem,
  regionSize,
  viewsToDevice,
  WHOLE_IMAGE,
  type DecodeRegion,
} from "../model/tasks.js";
import { hyperNetwork } from "../model/model.js";
import type { HostTensor } from "../io/safetensors.js";
import { weightsFingerprint, type Tokens } from "../io/tokens.js";
import { modelFromBytes, validateWeights, type ModelFile, type WeightsChoice } from "../io/weights.js";
import { InputError } from "../util/errors.js";
import type { HostImage } from "../util/host.js";
import {
  denormalizeField,
  evalTransform,
  normalizeField,
  PREPARATION_METADATA_KEY,
  rawPreparation,
  type Transform,
  type TransformSource,
} from "../util/prepare.js";
import { prepareImage, toHostImage, type ImageInput } from "./input.js";

declare global {
  // The well-known symbol of `using` (TypeScript's esnext.disposable lib, @types/node), declared
  // here too so that the types of "anr" compile without either.
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

/** What a model was made for: images, gridded physical fields, or novel views of an object. */
export type ModelTask = "image" | "field" | "nerf";

/**
 * Where a model comes from: the bytes of a model file (`.safetensors` written by anr, or a run's
 * checkpoint), a URL to fetch them from, or a model already parsed (`modelFromBytes`).
 */
export type ModelSource = Uint8Array | ArrayBuffer | URL | string | ModelFile;

/** Options of {@link Anr.load}. */
export interface LoadOptions {
  /** From a training checkpoint (or, in Node, a run folder): its online (default) or EMA weights. */
  weights?: WeightsChoice;
  /** The jax-js device ("wasm" by default; "webgpu" in a browser that has it). */
  device?: BackendArgs["device"];
}

/** Options of {@link Anr.encode}. */
export interface EncodeOptions {
  /** A name per input, kept in the tokens (and the token file); default image0, image1, … */
  names?: string[];
}

/** Options of {@link Anr.decode}. */
export interface DecodeOptions {
  /** Output size, `[height, width]` or one side of a square; default the model's input size. */
  size?: number | [number, number];
  /** Or: the input size times this factor (e.g. 4 for 4× super-resolution). */
  scale?: number;
  /** Which encoded instance (default 0); {@link Anr.decodeAll} decodes every one. */
  index?: number;
  /** Decode tokens that other weights encoded (refused by default: they would decode to noise). */
  force?: boolean;
  /**
   * Only this part of the image, `[top, left, bottom, right]` as fractions of its height and
   * width (default the whole image): a crop decoded at any resolution. `size` is then the part's
   * size, `scale` multiplies the part's share of the input size (the default is that share).
   */
  region?: DecodeRegion;
}

/** A camera: pose and focal length (the learnit / NeRF convention). */
export interface Camera {
  /** Camera-to-world matrix, row-major, 3×4 (12 values) or 4×4 (16; the last row is ignored). */
  pose: ArrayLike<number>;
  /** Focal length in pixels at the image's size: one value, or `[f_x, f_y]`. */
  focal: number | [number, number];
}

/** One support view of an object, for {@link Anr.encodeViews}. */
export interface PosedImage extends Camera {
  image: ImageInput;
}

/** Options of {@link Anr.render}: the camera, and how to render. */
export interface RenderOptions extends Camera {
  /** Output size, `[height, width]` or one side; default the model's view size. */
  size?: number | [number, number];
  /** Which encoded object (default 0). */
  index?: number;
  /** Samples per ray (default 64). */
  samples?: number;
  /** Depth range along each ray (default 2 to 6, the learnit ShapeNet range). */
  near?: number;
  far?: number;
  /** Render tokens that other weights encoded. */
  force?: boolean;
}

/** JavaScript's largest typed array: one decode assembles its batch in one. */
const MAX_DECODED_FLOATS = 2 ** 32 - 1;

/** How a model's training inputs were prepared, as its file records it (see data/preparation.ts). */
interface Recorded {
  task: "image" | "field";
  data: Record<string, unknown>;
}

/**
 * The preparation a model file records: its `anr.data` entry, or the run config of a training
 * checkpoint; null when it records none (older files, `anr init`, view synthesis).
 */
export function recordedPreparation(metadata: Record<string, string>, source: string): Recorded | null {
  const raw = rawPreparation(metadata, source);
  if (raw === null) return null;
  const rec = raw.record as { task?: unknown; data?: { kind?: unknown } } | null | undefined;
  if (raw.from === "checkpoint" && rec?.task === "nerf") return null;
  if ((rec?.task !== "image" && rec?.task !== "field") || typeof rec.data?.kind !== "string")
    throw new InputError(
      source,
      `metadata "${PREPARATION_METADATA_KEY}" should be { task: "image" | "field", data: { kind, … } }`,
    );
  return rec as Recorded;
}

const IMAGE_KINDS = new Set(["folder", "lsun", "celeba", "imagenette", "idx", "svg", "twemoji"]);

/** The evaluation transform of a recorded image preparation, checked against the model's size. */
function recordedTransform(rec: Recorded | null, [h, w]: [number, number], source: string): Transform | null {
  if (rec?.task !== "image") return null;
  const bad = (detail: string) =>
    new InputError(
      source,
      `metadata "${PREPARATION_METADATA_KEY}" is not a valid image preparation: ${detail}`,
    );
  if (!IMAGE_KINDS.has(rec.data.kind as string)) throw bad(`unknown kind ${String(rec.data.kind)}`);
  const t = evalTransform(rec.data as unknown as TransformSource);
  for (const [k, v] of Object.entries({ size: t.size, resize: t.resize, crop: t.crop }))
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw bad(`${k} ${String(v)}`);
  if (t.size !== h || t.size !== w)
    throw bad(`it makes ${t.size}×${t.size} items, but the model reads ${h}×${w}`);
  return t;
}

/** `value` as [h, w] of positive integers, or an InputError naming `what`. */
function sizeOption(what: string, value: number | [number, number]): [number, number] {
  const hw = typeof value === "number" ? [value, value] : value;
  if (!Array.isArray(hw) || hw.length !== 2 || !hw.every((n) => Number.isInteger(n) && n > 0))
    throw new InputError(
      what,
      `expected a positive integer or [height, width], not ${JSON.stringify(value)}`,
    );
  return hw as [number, number];
}

/** A pose of 12 or 16 values as the 3×4 the renderer takes. */
function pose3x4(pose: ArrayLike<number>, source: string): Float32Array {
  if (pose.length !== 12 && pose.length !== 16)
    throw new InputError(source, `pose has ${pose.length} values; expected 12 (3×4) or 16 (4×4), row-major`);
  const p = Float32Array.from({ length: 12 }, (_, i) => pose[i]!);
  if (!p.every(Number.isFinite)) throw new InputError(source, "pose holds values that are not finite");
  return p;
}

function focalPair(focal: number | [number, number], source: string): [number, number] {
  const f = typeof focal === "number" ? [focal, focal] : focal;
  if (!Array.isArray(f) || f.length !== 2 || !f.every((x) => Number.isFinite(x) && x > 0))
    throw new InputError(
      source,
      `focal must be a positive number of pixels or [f_x, f_y], not ${JSON.stringify(focal)}`,
    );
  return f as [number, number];
}

/**
 * NaN where a field's input was missing: each decoded pixel takes the mask of the input pixel its
 * centre falls in (`mask`: (B, h, w) at the input size, instance `i`; `region`: the part decoded).
 */
export function markMissing(field: HostImage, mask: HostTensor, i: number, region = WHOLE_IMAGE): void {
  const [, mh, mw] = mask.shape as [number, number, number];
  const { c, h, w } = field;
  const [top, left, bottom, right] = region;
  for (let y = 0; y < h; y++) {
    // Multiplied before divided, so that centres on a mask-cell boundary land as for the whole
    // image (the formula is floor((y + ½)·mh/h) there).
    const my = Math.min(mh - 1, Math.floor(((top * h + (y + 0.5) * (bottom - top)) * mh) / h));
    for (let x = 0; x < w; x++) {
      const mx = Math.min(mw - 1, Math.floor(((left * w + (x + 0.5) * (right - left)) * mw) / w));
      if (mask.data[(i * mh + my) * mw + mx]! === 0) continue;
      for (let k = 0; k < c; k++) field.data[(k * h + y) * w + x] = NaN;
    }
  }
}

/** Bytes of a {@link ModelSource} other than a parsed model, and the name errors use for it. */
async function sourceBytes(source: Exclude<ModelSource, ModelFile>): Promise<[Uint8Array, string]> {
  if (source instanceof Uint8Array) return [source, "<bytes>"];
  if (source instanceof ArrayBuffer) return [new Uint8Array(source), "<bytes>"];
  const url = String(source);
  let res: Response;
  try {
    res = await fetch(source);
  } catch (e) {
    throw new InputError(url, `cannot fetch the model (${(e as Error).message})`);
  }
  if (!res.ok) throw new InputError(url, `cannot fetch the model (HTTP ${res.status} ${res.statusText})`);
  return [new Uint8Array(await res.arrayBuffer()), url];
}

/**
 * A loaded model: encode images (or fields, or posed views) to tokens, decode tokens at any
 * resolution (or render views). Holds the weights on the device until {@link Anr.dispose}.
 */
export class Anr {
  /** What the model was loaded from (a path, URL or "<bytes>"), as errors name it. */
  readonly source: string;
  readonly config: HyperNetworkConfig;
  /** The model file's metadata besides the config (run, preparation). */
  readonly metadata: Record<string, string>;
  readonly task: ModelTask;
  /** The size its inputs are prepared to, [height, width]. */
  readonly inputSize: [number, number];
  /** A field model's channels (names, units, normalisation); null for images and views. */
  readonly channels: ChannelArgs[] | null;
  /** The weights' fingerprint, which tokens carry so that other weights refuse them. */
  readonly fingerprint: string;
  /** How inputs are prepared: the transform the model's training data recorded, if any. */
  protected readonly recorded: Recorded | null;
  #P: Params | null;
  #decoder: ReturnType<typeof createGridDecoder> | null = null;

  protected constructor(file: ModelFile, source: string) {
    this.source = source;
    this.config = file.config;
    this.metadata = file.metadata;
    this.task =
      file.config.tokenizer.name === "nvs_tokenizer" ? "nerf" : file.config.channels ? "field" : "image";
    this.inputSize = sizeHW(file.config.tokenizer.args.input_size);
    this.channels = file.config.channels;
    this.fingerprint = weightsFingerprint(file.weights);
    this.recorded = recordedPreparation(file.metadata, source);
    // Checked now, so that a damaged record fails the load rather than the first encode.
    recordedTransform(this.recorded, this.inputSize, source);
    this.#P = toDevice(file.weights);
  }

  /**
   * Load a model: bytes of a model file, a URL (fetched), or a parsed {@link ModelFile}. Starts
   * the compute backend if it is not running.
   */
  static async load(source: ModelSource, options: LoadOptions = {}): Promise<Anr> {
    if (typeof source === "object" && "config" in source && "weights" in source) {
      await initBackend(options.device ? { device: options.device } : {});
      const config = parseHyperNetworkConfig(source.config, "<model>");
      return new this(
        { ...source, config, weights: validateWeights(config, source.weights, "<model>") },
        "<model>",
      );
    }
    const [bytes, name] = await sourceBytes(source);
    return this.fromBytes(bytes, name, options);
  }

  /** A model from the bytes of a model file; `name` names it in errors. */
  protected static async fromBytes(bytes: Uint8Array, name: string, options: LoadOptions): Promise<Anr> {
    await initBackend(options.device ? { device: options.device } : {});
    return new this(modelFromBytes(bytes, name, { weights: options.weights }), name);
  }

  /** Whether {@link Anr.dispose} was called. */
  get disposed(): boolean {
    return this.#P === null;
  }

  /** The device weights, or an error if disposed. */
  #params(): Params {
    if (this.#P === null)
      throw new InputError(
        this.source,
        "this model was disposed (dispose(), or the end of its using block); load it again",
      );
    return this.#P;
  }

  #expectTask(task: ModelTask, what: string): void {
    if (this.task === task) return;
    const hint =
      this.task === "nerf"
        ? "encode an object's posed views with encodeViews(views), then render(tokens, camera)"
        : "encode(image) and decode(tokens) serve image and field models";
    throw new InputError(
      this.source,
      `${what} is for ${task} models, but this is a ${this.task} model: ${hint}`,
    );
  }

  /**
   * An input as the model will see it, before normalisation: an image (or a view) resized
   * (shorter side) and centre-cropped to the input size as its training data was, in [0, 1]; a
   * field in physical units at the input size, its missing values filled as the model's training
   * filled them. {@link Anr.encode} prepares its inputs itself: this shows what it gives the
   * network (preparing twice can crop twice).
   */
  prepare(input: ImageInput, name = "image"): HostImage {
    return this.#prepare(input, name).image;
  }

  #prepare(input: ImageInput, name: string): { image: HostImage; missing: Float32Array | null } {
    if (this.task !== "field") {
      // A view of a view-synthesis model is prepared as an image with no recorded transform.
      const t = recordedTransform(this.recorded, this.inputSize, this.source);
      return { image: prepareImage(toHostImage(input, name), this.inputSize, t), missing: null };
    }
    const channels = this.channels!;
    const raw = toHostImage(input, name, true);
    if (raw.c !== channels.length)
      throw new InputError(
        name,
        `${raw.c} channel(s), but the model reads ${channels.length} (${channels.map((c) => c.name).join(", ")}): give (C, H, W) with C = ${channels.length}`,
      );
    const fill = this.recorded?.task === "field" ? this.recorded.data.fill_missing : undefined;
    const hw = raw.h * raw.w;
    let mask: Float32Array | null = null;
    for (let k = 0; k < raw.data.length; k++)
      if (!Number.isFinite(raw.data[k]!)) {
        if (typeof fill !== "number")
          throw new InputError(
            name,
            `missing values (NaN or ±Infinity), and the model records no fill_missing: fill them before encoding`,
          );
        raw.data[k] = fill;
        (mask ??= new Float32Array(hw))[k % hw] = 1;
      }
    const image = this.prepareField(raw, name);
    if (!mask) return { image, missing: null };
    // The mask goes through the same preparation; gaps that the crop leaves out are no gaps.
    const m = this.prepareField({ c: 1, h: raw.h, w: raw.w, data: mask }, name).data.map((v) =>
      v >= 0.5 ? 1 : 0,
    );
    return { image, missing: m.includes(1) ? m : null };
  }

  /**
   * A field (physical units, any finite values) at the model's input size. Here only a field of
   * that size is taken; the Node entry prepares other sizes as the model's training did.
   */
  protected prepareField(field: HostImage, name: string): HostImage {
    const [h, w] = this.inputSize;
    if (field.h === h && field.w === w) return field;
    throw new InputError(
      name,
      `a ${field.h}×${field.w} field, but the model reads ${h}×${w}: resample it to ${h}×${w} first, or use Anr from "anr/node", which prepares fields as the model's training did`,
    );
  }

  /**
   * The tokens (R-tokens of ANR, generated weights of the baselines) of one image or field, or of
   * several in one batch. Each input is prepared first ({@link Anr.prepare}).
   */
  async encode(input: ImageInput | readonly ImageInput[], options: EncodeOptions = {}): Promise<Tokens> {
    const P = this.#params();
    if (this.task === "nerf") this.#expectTask("image", "encode");
    const list: readonly ImageInput[] = Array.isArray(input) ? input : [input as ImageInput];
    if (!list.length) throw new InputError("encode", "no inputs");
    const names = options.names ?? list.map((_, i) => `image${i}`);
    if (names.length !== list.length)
      throw new InputError("names", `${names.length} name(s) for ${list.length} input(s)`);
    const items = list.map((x, i) => this.#prepare(x, names[i]!));
    const [h, w] = this.inputSize;
    const c = items[0]!.image.c;
    const batch = new Float32Array(items.length * c * h * w);
    items.forEach(({ image }, i) => {
      const n = this.channels ? normalizeField({ ...image, data: image.data.slice() }, this.channels) : image;
      batch.set(n.data, i * c * h * w);
    });
    const gen = hyperNetwork(
      P,
      this.config,
      np
        .array(batch, { shape: [items.length, c, h, w] })
        .mul(2)
        .sub(1),
    );
    const tensors = await toHost(gen);
    disposeParams(gen);
    let missing: HostTensor | undefined;
    if (items.some((x) => x.missing)) {
      missing = { shape: [items.length, h, w], data: new Float32Array(items.length * h * w) };
      items.forEach((x, i) => x.missing && missing!.data.set(x.missing, i * h * w));
    }
    return {
      names: [...names],
      inputSize: [h, w],
      config: this.config,
      tensors,
      weights: this.fingerprint,
      ...(missing ? { missing } : {}),
    };
  }

  /** Tokens made by this model's config (and weights, unless `force`), or an InputError. */
  #checkTokens(tokens: Tokens, force: boolean | undefined): void {
    if (JSON.stringify(tokens.config) !== JSON.stringify(this.config))
      throw new InputError("tokens", `encoded by a model with another config than ${this.source}`);
    if (!force && tokens.weights !== undefined && tokens.weights !== this.fingerprint)
      throw new InputError(
        "tokens",
        `encoded by weights ${tokens.weights}, but ${this.source} holds weights ${this.fingerprint}: decode with the model that encoded them (or pass force: true)`,
      );
  }

  /** Device arrays of the instances `indices` of `tokens` (the caller disposes them). */
  #generated(tokens: Tokens, indices: number[]): HypoParams {
    const gen: HypoParams = {};
    for (const [name, t] of tokens.tensors) {
      const per = t.data.length / t.shape[0]!;
      const data = new Float32Array(indices.length * per);
      indices.forEach((i, k) => data.set(t.data.subarray(i * per, (i + 1) * per), k * per));
      gen[name] = np.array(data, { shape: [indices.length, ...t.shape.slice(1)] });
    }
    return gen;
  }

  #index(tokens: Tokens, index: number | undefined): number {
    const i = index ?? 0;
    if (!Number.isInteger(i) || i < 0 || i >= tokens.names.length)
      throw new InputError(
        "index",
        `${i} is out of range: the tokens hold ${tokens.names.length} instance(s)`,
      );
    return i;
  }

  /**
   * One encoded instance decoded at any size (default the input size; `scale: 4` for 4×): an
   * image in [0, 1], or a field in physical units (NaN where its input was missing).
   */
  async decode(tokens: Tokens, options: DecodeOptions = {}): Promise<HostImage> {
    return (await this.#decode(tokens, [this.#index(tokens, options.index)], options))[0]!;
  }

  /** Every encoded instance, decoded in one batch (see {@link Anr.decode}). */
  async decodeAll(tokens: Tokens, options: Omit<DecodeOptions, "index"> = {}): Promise<HostImage[]> {
    return this.#decode(tokens, [...tokens.names.keys()], options);
  }

  async #decode(tokens: Tokens, indices: number[], options: DecodeOptions): Promise<HostImage[]> {
    const P = this.#params();
    if (this.task === "nerf") this.#expectTask("image", "decode");
    this.#checkTokens(tokens, options.force);
    if (options.size !== undefined && options.scale !== undefined)
      throw new InputError("scale", "give size or scale, not both");
    const region = options.region ?? WHOLE_IMAGE;
    const problem = regionProblem(region);
    if (problem) throw new InputError("region", problem);
    let h: number, w: number;
    if (options.scale !== undefined) {
      if (!(Number.isFinite(options.scale) && options.scale > 0))
        throw new InputError("scale", `must be a positive number, not ${options.scale}`);
      const [ih, iw] = this.inputSize;
      [h, w] = regionSize(region, ih * options.scale, iw * options.scale);
    } else if (options.size !== undefined) [h, w] = sizeOption("size", options.size);
    else [h, w] = regionSize(region, ...this.inputSize);
    const b = indices.length;
    const c = this.config.hyponet.args.out_dim;
    if (b * c * h * w > MAX_DECODED_FLOATS)
      throw new InputError(
        "size",
        `${b} instance(s) × ${c} channel(s) × ${h}×${w} is over the ${MAX_DECODED_FLOATS.toLocaleString("en")} values one decode can hold; decode fewer or smaller`,
      );
    const gen = this.#generated(tokens, indices);
    this.#decoder ??= createGridDecoder(this.config);
    let out: Float32Array;
    try {
      out = await this.#decoder(P, gen, b, ...regionCentres(region, h, w));
    } finally {
      disposeParams(gen);
    }
    const n = c * h * w;
    return indices.map((i, k) => {
      const data = out.subarray(k * n, (k + 1) * n).map((x) => (x + 1) / 2);
      if (!this.channels) {
        for (let j = 0; j < data.length; j++) data[j] = Math.min(1, Math.max(0, data[j]!));
        return { c, h, w, data };
      }
      const field: HostImage = { c, h, w, data: denormalizeField(data, this.channels, h * w) };
      if (tokens.missing) markMissing(field, tokens.missing, i, region);
      return field;
    });
  }

  /**
   * The tokens of one object from its posed support views (view-synthesis models). A view of
   * another size than the model's is resized, its focal length scaled with it; a view of another
   * aspect ratio is refused.
   */
  async encodeViews(views: readonly PosedImage[], options: { name?: string } = {}): Promise<Tokens> {
    const P = this.#params();
    this.#expectTask("nerf", "encodeViews");
    if (!views.length) throw new InputError("views", "no views");
    const [h, w] = this.inputSize;
    const n = views.length;
    const imgs = new Float32Array(n * 3 * h * w);
    const poses = new Float32Array(n * 12);
    const focals = new Float32Array(n * 2);
    views.forEach((v, i) => {
      const name = `views[${i}]`;
      const img = toHostImage(v.image, name);
      if (img.h * w !== img.w * h)
        throw new InputError(
          name,
          `a ${img.w}×${img.h} view, but the model reads ${w}×${h} views (another aspect ratio)`,
        );
      const [fx, fy] = focalPair(v.focal, name);
      imgs.set(prepareImage(img, [h, w], null).data, i * 3 * h * w);
      poses.set(pose3x4(v.pose, name), i * 12);
      focals.set([(fx * w) / img.w, (fy * h) / img.h], i * 2);
    });
    const gen = hyperNetwork(
      P,
      this.config,
      viewsToDevice({ imgs, poses, focals, shape: { b: 1, n, h, w } }),
    );
    const tensors = await toHost(gen);
    disposeParams(gen);
    return {
      names: [options.name ?? "object"],
      inputSize: [h, w],
      config: this.config,
      tensors,
      weights: this.fingerprint,
    };
  }

  /** A new view of an encoded object from `camera` (view-synthesis models), colours in [0, 1]. */
  async render(tokens: Tokens, camera: RenderOptions): Promise<HostImage> {
    const P = this.#params();
    this.#expectTask("nerf", "render");
    this.#checkTokens(tokens, camera.force);
    const i = this.#index(tokens, camera.index);
    const [h, w] = camera.size === undefined ? this.inputSize : sizeOption("size", camera.size);
    const samples = camera.samples ?? 64;
    if (!(Number.isInteger(samples) && samples > 0))
      throw new InputError("samples", `must be a positive integer, not ${samples}`);
    const [near, far] = [camera.near ?? 2, camera.far ?? 6];
    if (!(near >= 0 && far > near)) throw new InputError("near", `need 0 ≤ near < far, not ${near}, ${far}`);
    const pose = pose3x4(camera.pose, "camera");
    const focal = focalPair(camera.focal, "camera");
    const render = createViewRenderer(this.config, { chunk: 4096, nSamples: samples, near, far });
    const gen = this.#generated(tokens, [i]);
    try {
      return { c: 3, h, w, data: await render(P, gen, pose, focal, h, w) };
    } finally {
      render.dispose();
      disposeParams(gen);
    }
  }

  /** Free the weights on the device (and compiled functions); the model is unusable after. */
  dispose(): void {
    if (this.#P === null) return;
    disposeParams(this.#P);
    this.#P = null;
    this.#decoder?.dispose();
    this.#decoder = null;
  }

  /** `using m = await Anr.load(…)` disposes the model at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
