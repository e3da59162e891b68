/**
 * The facade in Node ("anr/node"): the portable {@link CoreAnr} plus what a file system gives —
 * models by path, run folder or zoo name, and inputs as image files (any format sharp reads; SVG
 * rendered as the model's training rendered it), their bytes (a Buffer), or `.npy` fields, and
 * fields of any size prepared as the model's training prepared them.
 *
 *   import { Anr, savePng } from "anr/node";
 *   using m = await Anr.load("demo-photos-anr");
 *   const img = await m.decode(await m.encode("photo.jpg"), { scale: 4 });
 *   await savePng("photo-x4.png", img);
 */
import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FieldPreprocess, preprocessField } from "../data/fields.js";
import { fromInterleaved, loadImage } from "../data/image.js";
import { specWith, type Preparation } from "../data/preparation.js";
import { renderSvg, SVG_FILE } from "../data/svg.js";
import { readNpy } from "../io/array-files.js";
import type { Tokens } from "../io/tokens.js";
import type { WeightsChoice } from "../io/weights.js";
import { resolveModel } from "../io/zoo.js";
import { InputError } from "../util/errors.js";
import type { HostImage } from "../util/host.js";
import type { ImageInput } from "./input.js";
import { Anr as CoreAnr, type EncodeOptions, type LoadOptions, type ModelSource } from "./model.js";

/**
 * An input in Node: anything the portable facade takes, a file path (an image sharp reads, an SVG
 * drawing, or a `.npy` field), or the bytes of an image file (a Buffer).
 */
export type NodeImageInput = ImageInput | string | Uint8Array;

/** What is at `p`: a file, a folder, or nothing (or something unreadable). */
async function pathKind(p: string): Promise<"file" | "folder" | null> {
  return stat(p).then(
    (s) => (s.isFile() ? "file" : s.isDirectory() ? "folder" : null),
    () => null,
  );
}

/**
 * The model file and the weights to load from it for a model argument: a file as it is, a zoo
 * name as its shipped file, a run folder as its model file for the weight set (model.safetensors,
 * model-ema.safetensors), or while it trains its checkpoint (which holds both sets).
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
      throw new InputError(
        p,
        `no model-ema.safetensors (the run was trained without EMA: train.ema is null); load its online weights`,
      );
    return { path: ema, weights };
  }
  const checkpoint = join(p, "checkpoint.safetensors");
  if ((await pathKind(checkpoint)) === "file") return { path: checkpoint, weights };
  throw new InputError(p, `not a run folder (no model.safetensors or checkpoint.safetensors)`);
}

/** A loaded model, in Node: see {@link CoreAnr} for what it does. */
export class Anr extends CoreAnr {
  #fieldPreprocess: FieldPreprocess | null = null;

  /**
   * Load a model: a model file's path, a run folder (its final model, or its checkpoint while it
   * trains; `weights: "ema"` for the EMA set), a zoo name (`anr models`), a `file:` or `http(s):`
   * URL, the bytes of a model file, or a parsed model.
   */
  static override async load(source: ModelSource, options: LoadOptions = {}): Promise<Anr> {
    const file =
      typeof source === "string"
        ? source
        : source instanceof URL && source.protocol === "file:"
          ? fileURLToPath(source)
          : null;
    if (file === null) return (await super.load(source, options)) as Anr;
    const chosen = await resolveModelFile(file, options.weights ?? "online");
    let bytes: Uint8Array;
    try {
      bytes = await readFile(chosen.path);
    } catch (e) {
      throw new InputError(
        chosen.path,
        `cannot read the model (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    return (await this.fromBytes(bytes, chosen.path, { ...options, weights: chosen.weights })) as Anr;
  }

  /**
   * Encode images or fields (see {@link CoreAnr.encode}); a path or Buffer is read first, and a
   * path's file name becomes the instance's name.
   */
  override async encode(
    input: NodeImageInput | readonly NodeImageInput[],
    options: EncodeOptions = {},
  ): Promise<Tokens> {
    const list: readonly NodeImageInput[] = Array.isArray(input) ? input : [input as NodeImageInput];
    const names = options.names ?? list.map((x, i) => (typeof x === "string" ? basename(x) : `image${i}`));
    const read = await Promise.all(list.map((x, i) => this.read(x, names[i] ?? `image${i}`)));
    return super.encode(read, { ...options, names });
  }

  /**
   * A path or Buffer as an unprepared input (an image at its own size in [0, 1], an SVG drawing
   * rendered at the model's size on its training background, a `.npy` array as stored); other
   * inputs as they are.
   */
  async read(input: NodeImageInput, name = "image"): Promise<ImageInput> {
    if (input instanceof Uint8Array) return loadImage(input, name);
    if (typeof input !== "string") return input;
    if (/\.npy$/i.test(input)) {
      const a = await readNpy(input);
      return { shape: a.shape, data: a.data };
    }
    if (SVG_FILE.test(input) && this.task === "image") {
      const [h, w] = this.inputSize;
      if (h !== w) throw new InputError(input, `SVG drawings are rendered square; the model reads ${h}×${w}`);
      const rec = this.recorded?.task === "image" ? this.recorded.data : null;
      const background = typeof rec?.background === "string" ? rec.background : "#ffffff";
      return fromInterleaved(await renderSvg(input, h, background), h, h, 3);
    }
    return loadImage(input);
  }

  /** A field prepared as the model's training prepared its fields (default: resize-crop). */
  protected override prepareField(field: HostImage, name: string): HostImage {
    const [h, w] = this.inputSize;
    this.#fieldPreprocess ??=
      this.recorded?.task === "field"
        ? (
            specWith(this.recorded as Preparation, { root: "." }, this.source) as {
              preprocess: FieldPreprocess;
            }
          ).preprocess
        : FieldPreprocess.parse({ mode: "resize-crop", size: [h, w] });
    let out: HostImage;
    try {
      out = preprocessField(field, this.#fieldPreprocess);
    } catch (e) {
      throw new InputError(name, `cannot prepare the ${field.h}×${field.w} field (${(e as Error).message})`);
    }
    const [oh, ow] = [out.h, out.w];
    if (oh !== h || ow !== w)
      throw new InputError(
        name,
        `prepared as the model's training (preprocess ${this.#fieldPreprocess.mode}), the ${field.h}×${field.w} field is ${oh}×${ow}, but the model reads ${h}×${w}`,
      );
    return out;
  }
}
