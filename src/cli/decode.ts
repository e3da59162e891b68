/** `anr decode`: images or fields at any resolution from their tokens. */
import { mkdir } from "node:fs/promises";
import { join, basename, extname } from "node:path";
import { initBackend } from "../backend/index.js";
import { numpy as np } from "../backend/jax.js";
import { denormalizeField } from "../data/fields.js";
import { savePng, type HostImage } from "../data/image.js";
import { writeNetcdf3, writeNpy } from "../io/array-files.js";
import { markMissing } from "../api/model.js";
import { createOrtImageCodec } from "../eval/ort.js";
import { loadModel } from "../io/files.js";
import { exportOnnx } from "../io/onnx.js";
import { tokensMismatch, weightsFingerprint, type Tokens, type TokensMismatch } from "../io/tokens.js";
import { readTokenFile } from "../io/files.js";
import type { HypoParams } from "../model/model.js";
import { disposeParams, toDevice } from "../model/params.js";
import { createImageDecoder } from "../model/tasks.js";
import { falseColour } from "../util/colormap.js";
import { InputError, UsageError } from "../util/errors.js";
import type { ModelFile, WeightsChoice } from "../io/weights.js";
import { checkWritable, defaultOut, done, resolveModelFile, sizeFrom, type Outcome } from "./common.js";

/** JavaScript's largest typed array: the decoded batch is assembled in one. */
const MAX_DECODED_FLOATS = 2 ** 32 - 1;

/** `anr decode`'s options. */
export interface DecodeOptions {
  model: string;
  size?: [number, number];
  scale?: number;
  out?: string;
  weights: WeightsChoice;
  format: "npy" | "nc";
  force?: boolean;
  engine: (typeof DECODE_ENGINES)[number];
}

/**
 * What decodes image models: our engine (the backend of --device) or ONNX Runtime's CPU engine
 * running the exported graphs (src/eval/ort.ts; about 4× faster in Node, docs/onnx.md).
 */
export const DECODE_ENGINES = ["wasm", "ort"] as const;

/**
 * Decode each encoded instance at any resolution: `--size HxW`, `--scale K` (K × the encoded
 * size), else the encoded size; PNGs `<name>.<H>x<W>.png`, and for field models .npy or NetCDF in
 * physical units with a false-colour preview per channel.
 */
export async function cmdDecode(tokensPath: string, values: DecodeOptions): Promise<Outcome> {
  const out = values.out ?? defaultOut("decode", tokensPath);
  await checkWritable(out, { flag: "--out" });
  const chosen = await resolveModelFile(values.model, values.weights);
  const tokens = await readTokenFile(tokensPath);
  const [h, w] = sizeFrom(values, tokens.inputSize) ?? tokens.inputSize;
  const b = tokens.names.length;
  const c = tokens.config.hyponet.args.out_dim;
  if (b * c * h * w > MAX_DECODED_FLOATS)
    throw new UsageError(
      `${sizeFlag(values)}: ${b} instance(s) × ${c} channel(s) × ${h}×${w} is ${(b * c * h * w).toLocaleString("en")} values, over the ${MAX_DECODED_FLOATS.toLocaleString("en")} one decode can hold; decode at a smaller size or fewer instances`,
    );
  await initBackend();
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const mismatch = tokensMismatch(tokens, model.config, weightsFingerprint(model.weights), chosen.path);
  if (mismatch?.reason === "config") throw new UsageError(`${tokensPath} ${mismatch.message}`);
  checkFingerprint(tokensPath, tokens, chosen.path, mismatch, values.force === true);
  const names = tokens.names;
  const { rgb, seconds: dt } =
    values.engine === "ort"
      ? await decodeOnOrt(model, tokens, h, w, chosen.path)
      : await decodeOnBackend(model, tokens, b, h, w);
  await mkdir(out, { recursive: true });
  const channels = model.config.channels;
  const files: string[] = [];
  for (let i = 0; i < b; i++) {
    const data = rgb.slice(i * c * h * w, (i + 1) * c * h * w).map((x) => (x + 1) / 2);
    const name = basename(names[i] ?? `image${i}`, extname(names[i] ?? ""));
    const stem = join(out, `${name}.${h}x${w}`);
    if (!channels) {
      await savePng(`${stem}.png`, { c, h, w, data });
      files.push(`${stem}.png`);
      continue;
    }
    const field: HostImage = { c, h, w, data: denormalizeField(data, channels, h * w) };
    if (tokens.missing) markMissing(field, tokens.missing, i);
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
          source: `anr decode of ${basename(tokensPath)} with ${basename(values.model)}`,
          Conventions: "CF-1.8",
        },
      });
    else await writeNpy(`${stem}.npy`, { shape: c === 1 ? [h, w] : [c, h, w], data: field.data });
    files.push(`${stem}.${values.format}`);
    for (let k = 0; k < c; k++) {
      const png = `${stem}${c === 1 ? "" : `.${channels[k]!.name}`}.png`;
      await savePng(png, falseColour(field, k));
      files.push(png);
    }
  }
  console.log(
    `decoded ${b} image(s) at ${h}×${w} in ${dt.toFixed(2)} s (${((b * h * w) / dt).toFixed(0)} px/s) → ${out}`,
  );
  return done({
    out,
    size: [h, w],
    instances: names,
    files,
    seconds: dt,
    model: chosen.path,
    engine: values.engine,
  });
}

/** Decode on our engine (the backend): (B, C, h, w) in [-1, 1], and the seconds it took. */
async function decodeOnBackend(
  model: ModelFile,
  tokens: Tokens,
  b: number,
  h: number,
  w: number,
): Promise<{ rgb: Float32Array; seconds: number }> {
  const gen: HypoParams = {};
  for (const [name, t] of tokens.tensors) gen[name] = np.array(t.data, { shape: t.shape });
  const P = toDevice(model.weights);
  const decoder = createImageDecoder(model.config);
  try {
    const t0 = performance.now();
    const rgb = await decoder(P, gen, b, h, w);
    return { rgb, seconds: (performance.now() - t0) / 1000 };
  } finally {
    decoder.dispose();
    disposeParams(P);
    disposeParams(gen);
  }
}

/**
 * Decode on ONNX Runtime: the model exported as ONNX graphs (the same math, to float32 rounding),
 * the same (B, C, h, w) in [-1, 1]; the seconds count the decode, not the export.
 */
async function decodeOnOrt(
  model: ModelFile,
  tokens: Tokens,
  h: number,
  w: number,
  modelPath: string,
): Promise<{ rgb: Float32Array; seconds: number }> {
  if (model.config.tokenizer.name !== "ImgTokenizer")
    throw new UsageError(
      `--engine ort: ${modelPath} is not an image model (tokenizer ${model.config.tokenizer.name}); decode it with --engine wasm`,
    );
  const codec = await createOrtImageCodec(exportOnnx(model.config, model.weights, modelPath), {}, modelPath);
  try {
    const t0 = performance.now();
    const rgb = await codec.decode(tokens.tensors, h, w);
    return { rgb, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await codec.dispose();
  }
}

/** The flag that chose the size, as given, for errors. */
function sizeFlag(o: DecodeOptions): string {
  if (o.size) return `--size ${o.size[0] === o.size[1] ? o.size[0] : o.size.join("x")}`;
  return o.scale !== undefined ? `--scale ${o.scale}` : "the encoded size";
}

/**
 * Refuse tokens encoded by other weights than `modelPath`'s (same config, another run or the other
 * weight set: `mismatch` from tokensMismatch, which names both fingerprints); `force` decodes
 * anyway with a warning. Token files from before fingerprints decode with a warning.
 */
function checkFingerprint(
  tokensPath: string,
  tokens: Tokens,
  modelPath: string,
  mismatch: TokensMismatch | null,
  force: boolean,
): void {
  if (tokens.weights === undefined)
    console.error(
      `warning: ${tokensPath} records no fingerprint of the weights that encoded it (written by an older anr); it cannot be checked against ${modelPath}`,
    );
  if (!mismatch) return;
  if (force) {
    console.error(`warning: ${tokensPath} was ${mismatch.message}; decoding anyway (--force)`);
    return;
  }
  throw new InputError(
    tokensPath,
    `${mismatch.message}: decode with the model (and --weights) that encoded it, or pass --force`,
  );
}
