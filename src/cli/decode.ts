/** `anr decode`: images or fields at any resolution from their tokens. */
import { parseArgs } from "node:util";
import { mkdir } from "node:fs/promises";
import { join, basename, extname } from "node:path";
import { initBackend } from "../backend/index.js";
import { numpy as np } from "../backend/jax.js";
import { denormalizeField } from "../data/fields.js";
import { savePng, type HostImage } from "../data/image.js";
import { writeNetcdf3, writeNpy } from "../io/array-files.js";
import { loadModel } from "../io/files.js";
import { weightsFingerprint, type Tokens } from "../io/tokens.js";
import { readTokenFile } from "../io/files.js";
import type { HypoParams } from "../model/model.js";
import { disposeParams, toDevice } from "../model/params.js";
import { createImageDecoder } from "../model/tasks.js";
import { falseColour } from "../util/colormap.js";
import { InputError, UsageError } from "../util/errors.js";
import { checkWritable, parseSize, parseWeightsChoice, resolveModelFile } from "./common.js";

/** JavaScript's largest typed array: the decoded batch is assembled in one. */
const MAX_DECODED_FLOATS = 2 ** 32 - 1;

export const DECODE_USAGE = `anr decode tokens.safetensors --model MODEL.safetensors|RUN_DIR --size HxW [--out DIR] [--format npy|nc]
           [--weights online|ema] [--force]

Decodes each encoded image at any resolution (super-resolution beyond the training size) and
writes PNGs <name>.<H>x<W>.png. For field models: <name>.<H>x<W>.npy in physical units (float32,
(H, W) for one channel, else (C, H, W)), or with --format nc a NetCDF-3 file with one variable
per channel (its name and units, dims y, x), and a false-colour preview per channel,
<name>.<H>x<W>[.<channel>].png. Where a field's input was missing (NaN or _FillValue, filled by the
model's fill_missing to encode it), the decoded field is NaN: the model only saw the fill value.

A token file records a fingerprint of the weights that encoded it; decoding with other weights
(another run, or online instead of EMA: --weights ema for tokens made with --weights ema) is an
error, unless --force. Sizes are checked before any work: at least 1 pixel a side, and at most
268,402,689 pixels an image (the PNG writer's limit).`;

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
      force: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(DECODE_USAGE, 0);
  if (positionals.length !== 1 || !values.model || !values.size) throw new UsageError(DECODE_USAGE);
  if (values.format !== "npy" && values.format !== "nc")
    throw new UsageError(`--format ${values.format}: expected npy or nc`);
  const [h, w] = parseSize(values.size);
  await checkWritable(values.out, { flag: "--out" });
  const chosen = await resolveModelFile(values.model, parseWeightsChoice(values.weights));
  const tokens = await readTokenFile(positionals[0]!);
  const b = tokens.names.length;
  const c = tokens.config.hyponet.args.out_dim;
  if (b * c * h * w > MAX_DECODED_FLOATS)
    throw new UsageError(
      `--size ${values.size}: ${b} instance(s) × ${c} channel(s) × ${h}×${w} is ${(b * c * h * w).toLocaleString("en")} values, over the ${MAX_DECODED_FLOATS.toLocaleString("en")} one decode can hold; decode at a smaller size or fewer instances`,
    );
  await initBackend();
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  if (JSON.stringify(tokens.config) !== JSON.stringify(model.config))
    throw new UsageError(
      `${positionals[0]} was encoded by a model with a different config than ${values.model}`,
    );
  checkFingerprint(positionals[0]!, tokens, chosen.path, weightsFingerprint(model.weights), values.force);
  const names = tokens.names;
  const gen: HypoParams = {};
  for (const [name, t] of tokens.tensors) gen[name] = np.array(t.data, { shape: t.shape });
  const P = toDevice(model.weights);
  const decoder = createImageDecoder(model.config);
  const t0 = performance.now();
  const rgb = await decoder(P, gen, b, h, w);
  const dt = (performance.now() - t0) / 1000;
  decoder.dispose();
  disposeParams(P);
  disposeParams(gen);
  await mkdir(values.out, { recursive: true });
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

/**
 * Refuse tokens encoded by other weights than `modelPath`'s (same config, another run or the other
 * weight set), naming both fingerprints; `force` decodes anyway with a warning. Token files from
 * before fingerprints decode with a warning.
 */
function checkFingerprint(
  tokensPath: string,
  tokens: Tokens,
  modelPath: string,
  fingerprint: string,
  force: boolean,
): void {
  if (tokens.weights === undefined) {
    console.error(
      `warning: ${tokensPath} records no fingerprint of the weights that encoded it (written by an older anr); it cannot be checked against ${modelPath}`,
    );
    return;
  }
  if (tokens.weights === fingerprint) return;
  const what = `encoded by weights ${tokens.weights}, but ${modelPath} holds weights ${fingerprint}`;
  if (force) {
    console.error(`warning: ${tokensPath} was ${what}; decoding anyway (--force)`);
    return;
  }
  throw new InputError(
    tokensPath,
    `${what}: decode with the model (and --weights) that encoded it, or pass --force`,
  );
}

/**
 * NaN where the input was missing: each decoded pixel takes the mask of the input pixel its centre
 * falls in (`mask`: (B, h, w) at the input size, instance `i`).
 */
function markMissing(field: HostImage, mask: { shape: number[]; data: Float32Array }, i: number): void {
  const [, mh, mw] = mask.shape as [number, number, number];
  const { c, h, w } = field;
  for (let y = 0; y < h; y++) {
    const my = Math.min(mh - 1, Math.floor(((y + 0.5) * mh) / h));
    for (let x = 0; x < w; x++) {
      const mx = Math.min(mw - 1, Math.floor(((x + 0.5) * mw) / w));
      if (mask.data[(i * mh + my) * mw + mx]! === 0) continue;
      for (let k = 0; k < c; k++) field.data[(k * h + y) * w + x] = NaN;
    }
  }
}
