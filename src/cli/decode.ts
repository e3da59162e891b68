/** `anr decode`: images or fields at any resolution from their tokens. */
import { mkdir } from "node:fs/promises";
import { join, basename, extname } from "node:path";
import sharp from "sharp";
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
import type { HypoParams, Params } from "../model/model.js";
import { disposeParams, toDevice } from "../model/params.js";
import {
  attentionMaps,
  createGridDecoder,
  regionCentres,
  WHOLE_IMAGE,
  type AttentionMaps,
  type DecodeRegion,
} from "../model/tasks.js";
import type { HyperNetworkConfig } from "../model/config.js";
import { CAPTION_STRIP, gridLayout, gridPng, labelledGrid, sizeText } from "../eval/grids.js";
import { falseColour } from "../util/colormap.js";
import { InputError, UsageError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import type { ModelFile, WeightsChoice } from "../io/weights.js";
import {
  checkWritable,
  defaultOut,
  done,
  MAX_PNG_PIXELS,
  resolveModelFile,
  sizeFrom,
  type Outcome,
} from "./common.js";

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
  /** Also write ANR's attention maps per R-token (see {@link writeAttention}). */
  attention?: boolean;
  /** Only this part of the image (fractions: top, left, bottom, right). */
  region?: DecodeRegion;
}

/**
 * What decodes image models: our engine (the backend of --device) or ONNX Runtime's CPU engine
 * running the exported graphs (src/eval/ort.ts; about 4× faster in Node, docs/onnx.md).
 */
export const DECODE_ENGINES = ["wasm", "ort"] as const;

/**
 * Decode each encoded instance at any resolution: `--size HxW`, `--scale K` (K × the encoded
 * size), else the encoded size; PNGs `<name>.<H>x<W>.png`, and for field models .npy or NetCDF in
 * physical units with a false-colour preview per channel. `attention`: ANR's attention maps too
 * (`<name>.<H>x<W>.attention.png` and `.npy`, {@link writeAttention}).
 */
export async function cmdDecode(tokensPath: string, values: DecodeOptions): Promise<Outcome> {
  const out = values.out ?? defaultOut("decode", tokensPath);
  await checkWritable(out, { flag: "--out" });
  const chosen = await resolveModelFile(values.model, values.weights);
  const tokens = await readTokenFile(tokensPath);
  const region = values.region;
  if (region && values.engine === "ort")
    throw new UsageError(
      "--region decodes on our engine only (--engine wasm); ORT's graph takes whole grids",
    );
  if (region && values.attention)
    throw new UsageError(
      "--region and --attention: the attention maps are drawn over the whole image; decode it whole",
    );
  const [h, w] = sizeFrom(values, tokens.inputSize) ?? tokens.inputSize;
  const b = tokens.names.length;
  const c = tokens.config.hyponet.args.out_dim;
  if (b * c * h * w > MAX_DECODED_FLOATS)
    throw new UsageError(
      `${sizeFlag(values)}: ${b} instance(s) × ${c} channel(s) × ${h}×${w} is ${(b * c * h * w).toLocaleString("en")} values, over the ${MAX_DECODED_FLOATS.toLocaleString("en")} one decode can hold; decode at a smaller size or fewer instances`,
    );
  if (values.attention) checkAttentionSize(tokens.config, b, h, w, sizeFlag(values));
  await initBackend();
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const mismatch = tokensMismatch(tokens, model.config, weightsFingerprint(model.weights), chosen.path);
  if (mismatch?.reason === "config") throw new UsageError(`${tokensPath} ${mismatch.message}`);
  checkFingerprint(tokensPath, tokens, chosen.path, mismatch, values.force === true);
  if (values.attention && model.config.hyponet.name !== "ANR")
    throw new UsageError(
      `--attention: ${chosen.path} has a ${model.config.hyponet.name} hyponet, which has no attention over R-tokens (every coordinate goes through the same generated weights); attention maps need an ANR model`,
    );
  const tau = model.config.hyponet.name === "ANR" ? model.config.hyponet.args.att_threshold : null;
  const names = tokens.names;
  const { rgb, seconds: dt } =
    values.engine === "ort"
      ? await decodeOnOrt(model, tokens, h, w, chosen.path)
      : await decodeOnBackend(model, tokens, b, h, w, region);
  const attention = values.attention
    ? await withTokensOnDevice(model, tokens, (P, gen) => attentionMaps(P, model.config, gen, h, w))
    : null;
  await mkdir(out, { recursive: true });
  const channels = model.config.channels;
  const files: string[] = [];
  for (let i = 0; i < b; i++) {
    const data = rgb.slice(i * c * h * w, (i + 1) * c * h * w).map((x) => (x + 1) / 2);
    const name = basename(names[i] ?? `image${i}`, extname(names[i] ?? ""));
    const stem = join(out, `${name}.${h}x${w}${region ? `.region-${region.join("-")}` : ""}`);
    if (!channels) {
      await savePng(`${stem}.png`, { c, h, w, data });
      files.push(`${stem}.png`);
      if (attention) files.push(...(await writeAttention(stem, { c, h, w, data }, attention, i, tau)));
      continue;
    }
    const field: HostImage = { c, h, w, data: denormalizeField(data, channels, h * w) };
    if (tokens.missing) markMissing(field, tokens.missing, i, region);
    if (attention) files.push(...(await writeAttention(stem, falseColour(field, 0), attention, i, tau)));
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
  if (attention)
    console.log(
      `attention maps of ${attention.tokens} R-tokens (mean over ${attention.heads} heads): ${zeroedText(tau, attention.zeroed.map(percent).join(", "))}`,
    );
  return done({
    out,
    size: [h, w],
    instances: names,
    files,
    seconds: dt,
    model: chosen.path,
    engine: values.engine,
    ...(attention
      ? { attention: { heads: attention.heads, tokens: attention.tokens, zeroed: attention.zeroed } }
      : {}),
  });
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/** What share of the attention weights are 0 (`share`, as text), and why. */
function zeroedText(tau: number | null, share: string): string {
  return tau === null
    ? `no threshold (τ null): ${share} of the weights are 0`
    : `the threshold τ ${tau} zeroed ${share} of the weights`;
}

/** Panels per row of the attention picture: a power of two near √tokens (8 for 32 tokens). */
function attentionColumns(tokens: number): number {
  return 2 ** Math.ceil(Math.log2(Math.sqrt(tokens)));
}

/** How much the attention picture enlarges its panels: enough for a "token 31" caption. */
function attentionScale(w: number): number {
  return Math.max(1, Math.ceil(64 / w));
}

/**
 * Refuse, before any work, attention maps that one array cannot hold or a picture too large for
 * the PNG writer. Configs without attention pass (the caller names the model when it refuses them).
 */
function checkAttentionSize(cfg: HyperNetworkConfig, b: number, h: number, w: number, flag: string): void {
  if (cfg.hyponet.name !== "ANR") return;
  const t = cfg.hyponet.args.token_len;
  if (b * t * h * w > MAX_DECODED_FLOATS)
    throw new UsageError(
      `--attention with ${flag}: ${b} instance(s) × ${t} R-tokens × ${h}×${w} is ${(b * t * h * w).toLocaleString("en")} weights, over the ${MAX_DECODED_FLOATS.toLocaleString("en")} one array can hold; decode at a smaller size or fewer instances`,
    );
  const cols = attentionColumns(t);
  const s = attentionScale(w);
  const pixels =
    ((Math.ceil(t / cols) + 1) * (h * s + CAPTION_STRIP) + CAPTION_STRIP) * (cols * (w + 2) - 2) * s;
  if (pixels > MAX_PNG_PIXELS)
    throw new UsageError(
      `--attention with ${flag}: the picture of ${t} maps of ${h}×${w} has ${pixels.toLocaleString("en")} pixels, over the PNG writer's limit of ${MAX_PNG_PIXELS.toLocaleString("en")}; decode at a smaller size`,
    );
}

/**
 * Instance `i`'s attention maps: `<stem>.attention.npy`, float32 (tokens, H, W), each R-token's
 * weight from every pixel after the threshold, averaged over the heads; and `<stem>.attention.png`,
 * the decoded picture (`shown`) over one panel per R-token ("token k", viridis from 0 to the
 * largest weight), with a note of the share of weights the threshold zeroed. Returns the files.
 */
async function writeAttention(
  stem: string,
  shown: HostImage,
  a: AttentionMaps,
  i: number,
  tau: number | null,
): Promise<string[]> {
  const { h, w } = shown;
  const t = a.tokens;
  const maps = a.maps.subarray(i * t * h * w, (i + 1) * t * h * w);
  await writeNpy(`${stem}.attention.npy`, { shape: [t, h, w], data: maps });
  // One colour scale for all panels, so that they compare: from 0 to the largest weight.
  let top = 0;
  for (const v of maps) if (v > top) top = v;
  const range: [number, number] = [0, top];
  const panels = Array.from({ length: t }, (_, k) => falseColour({ c: t, h, w, data: maps }, k, range));
  const cols = attentionColumns(t);
  const blank: HostImage = { c: 3, h, w, data: new Float32Array(3 * h * w).fill(1) };
  const strips = [labelledGrid([[shown]], { columns: [`decoded ${sizeText(h, w)}`] })];
  for (let k = 0; k < t; k += cols) {
    const row = panels.slice(k, k + cols);
    const captions = row.map((_, j) => `token ${k + j}`);
    // The last row is padded to full width, so that the note under it has the picture's width.
    while (row.length < cols) {
      row.push(blank);
      captions.push("");
    }
    strips.push(labelledGrid([row], { columns: captions }));
  }
  strips[strips.length - 1]!.captions!.note = [
    zeroedText(tau, percent(a.zeroed[i]!)),
    `mean over ${a.heads} heads`,
    `colour 0–${range[1].toPrecision(2)}`,
  ].join(" · ");
  const s = attentionScale(w);
  const pngs = await Promise.all(strips.map((g) => gridPng(g, s)));
  const sizes = strips.map((g) => gridLayout(g, s));
  const tops = sizes.map((_, j) => sizes.slice(0, j).reduce((y, z) => y + z.height, 0));
  const picture = await sharp({
    create: {
      width: Math.max(...sizes.map((z) => z.width)),
      height: tops.at(-1)! + sizes.at(-1)!.height,
      channels: 3,
      background: "#ffffff",
    },
  })
    .composite(pngs.map((input, j) => ({ input, left: 0, top: tops[j]! })))
    .png()
    .toBuffer();
  await writeFileAtomic(`${stem}.attention.png`, picture);
  return [`${stem}.attention.png`, `${stem}.attention.npy`];
}

/** The model's weights and the token file's tensors on the device, for `f`; disposed after. */
async function withTokensOnDevice<T>(
  model: ModelFile,
  tokens: Tokens,
  f: (P: Params, gen: HypoParams) => Promise<T>,
): Promise<T> {
  const gen: HypoParams = {};
  for (const [name, t] of tokens.tensors) gen[name] = np.array(t.data, { shape: t.shape });
  const P = toDevice(model.weights);
  try {
    return await f(P, gen);
  } finally {
    disposeParams(P);
    disposeParams(gen);
  }
}

/** Decode on our engine (the backend): (B, C, h, w) in [-1, 1] (of `region`, default the whole image), and the seconds it took. */
async function decodeOnBackend(
  model: ModelFile,
  tokens: Tokens,
  b: number,
  h: number,
  w: number,
  region: DecodeRegion = WHOLE_IMAGE,
): Promise<{ rgb: Float32Array; seconds: number }> {
  const decoder = createGridDecoder(model.config);
  try {
    return await withTokensOnDevice(model, tokens, async (P, gen) => {
      const t0 = performance.now();
      const rgb = await decoder(P, gen, b, ...regionCentres(region, h, w));
      return { rgb, seconds: (performance.now() - t0) / 1000 };
    });
  } finally {
    decoder.dispose();
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
