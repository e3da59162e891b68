/**
 * Token files: the compact representation of encoded images or fields (the R-tokens of ANR, the
 * generated weights of the baselines), one (B, …) tensor per generated parameter, with the names
 * of the instances and the config of the model that encoded them in the metadata. Bytes in and out
 * (portable), plus thin file functions.
 */
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../model/config.js";
import { generatedParams } from "../model/model.js";
import { InputError } from "../util/errors.js";
import { metadataJson } from "../util/metadata.js";
import {
  parseSafetensors,
  serializeSafetensors,
  tensorChecksum,
  type HostTensor,
  type SafetensorsFile,
} from "./safetensors.js";
import { CONFIG_METADATA_KEY } from "./weights.js";

/**
 * Metadata key of a token file: `{ images: string[], input_size: [H, W], weights?: string }`,
 * `weights` being the {@link weightsFingerprint} of the model that encoded them.
 */
export const TOKENS_METADATA_KEY = "anr.tokens";

/**
 * Tensor of a token file marking, per instance, the input pixels that were missing (NaN or
 * _FillValue, filled by `fill_missing` before encoding): (B, H, W) at the input size, 1 = missing.
 * Decoding writes NaN there, since the model only saw the fill value.
 */
export const MISSING_TENSOR = "anr.missing";

/**
 * A fingerprint of a model's weights: CRC-32 over each tensor's name and float32 bytes, in name
 * order. It is computed on the weights as loaded, so the same weights give the same fingerprint
 * whether they come from model.safetensors, the checkpoint or a copy, and other weights (another
 * run, the EMA set) another one.
 */
export function weightsFingerprint(weights: Map<string, HostTensor>): string {
  // The float32 bytes as the host holds them: little-endian, as on every host anr writes files.
  return tensorChecksum(
    [...weights].map(([name, t]) => [
      name,
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    ]),
  );
}

/** Floats per instance that the hyper-network generates (the compact representation). */
export function representationSize(cfg: HyperNetworkConfig): number {
  return generatedParams(cfg).reduce((s, g) => s + g.shape[0] * g.shape[1], 0);
}

/** Encoded instances and what made them. */
export interface Tokens {
  /** Name of each instance (e.g. the encoded file's name), in batch order. */
  names: string[];
  /** The model's input size [H, W], at which the instances were encoded. */
  inputSize: [number, number];
  /** Config of the model that encoded them: decode with the same model. */
  config: HyperNetworkConfig;
  /** The generated tensors, name → (B, …), as `generatedParams(config)` lists them. */
  tensors: Map<string, HostTensor>;
  /**
   * {@link weightsFingerprint} of the weights that encoded them; absent in token files written
   * before anr recorded it (they cannot be checked).
   */
  weights?: string;
  /** (B, H, W), 1 where the input was missing ({@link MISSING_TENSOR}); absent when nothing was. */
  missing?: HostTensor;
}

/** Why a token file cannot be decoded with a model ({@link tokensMismatch}). */
export interface TokensMismatch {
  /**
   * "config": another architecture or setting, so the tokens mean nothing to this model;
   * "weights": the same config but other weights (another run, or the other weight set), which
   * decode to something wrong (`anr decode --force` does it anyway).
   */
  reason: "config" | "weights";
  /** What differs, for a message that starts with the token file's name. */
  message: string;
}

/** The first place two JSON values differ, as a dotted path with both values; null if none. */
function jsonDifference(a: unknown, b: unknown, path: string): { path: string; a: string; b: string } | null {
  if (
    a !== null &&
    b !== null &&
    typeof a === "object" &&
    typeof b === "object" &&
    Array.isArray(a) === Array.isArray(b)
  )
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = jsonDifference(
        (a as Record<string, unknown>)[key],
        (b as Record<string, unknown>)[key],
        path ? `${path}.${key}` : key,
      );
      if (d) return d;
    }
  else if (JSON.stringify(a) !== JSON.stringify(b))
    return { path, a: JSON.stringify(a) ?? "nothing", b: JSON.stringify(b) ?? "nothing" };
  return null;
}

/**
 * Why `tokens` cannot be decoded with a model of `config` whose weights have `fingerprint`
 * ({@link weightsFingerprint}; not checked when omitted, nor when the token file records none),
 * or null when they can: the checks `anr decode` and the web page make before decoding. The
 * message names the model as `modelName` and says what differs (the hyponet kind, else the first
 * differing config field, else both fingerprints).
 */
export function tokensMismatch(
  tokens: Tokens,
  config: HyperNetworkConfig,
  fingerprint?: string,
  modelName = "the model",
): TokensMismatch | null {
  // Field by field, so that the same config with its keys in another order is the same config;
  // the hyponet kind first, as the difference that explains the others.
  const d =
    jsonDifference(tokens.config.hyponet.name, config.hyponet.name, "hyponet.name") ??
    jsonDifference(tokens.config, config, "");
  if (d !== null)
    return {
      reason: "config",
      message: `was encoded by a model with a different config than ${modelName} (${d.path} is ${d.a} in the token file, ${d.b} in ${modelName})`,
    };
  if (fingerprint !== undefined && tokens.weights !== undefined && tokens.weights !== fingerprint)
    return {
      reason: "weights",
      message: `encoded by weights ${tokens.weights}, but ${modelName} holds weights ${fingerprint}`,
    };
  return null;
}

/** Tokens as safetensors bytes. */
export function tokensToBytes(t: Tokens): Uint8Array {
  const tensors = [...t.tensors];
  if (t.missing) tensors.push([MISSING_TENSOR, t.missing]);
  return serializeSafetensors(tensors, {
    [TOKENS_METADATA_KEY]: JSON.stringify({
      images: t.names,
      input_size: t.inputSize,
      ...(t.weights === undefined ? {} : { weights: t.weights }),
    }),
    [CONFIG_METADATA_KEY]: JSON.stringify(t.config),
  });
}

/** Parse one JSON metadata entry of a token file. */
/**
 * Tokens from the bytes of a token file (`source` names it in errors): the metadata, the encoding
 * model's config, and one tensor of shape [B, …] per parameter that config generates.
 */
export function tokensFromBytes(bytes: Uint8Array, source = "<buffer>"): Tokens {
  return tokensFromSafetensors(parseSafetensors(bytes, source), source);
}

/** Whether a parsed safetensors file is a token file (has the token metadata). */
export function isTokenFile(file: SafetensorsFile): boolean {
  return file.metadata[TOKENS_METADATA_KEY] !== undefined;
}

/** Tokens from a parsed safetensors file, every field validated ({@link tokensFromBytes}). */
export function tokensFromSafetensors(file: SafetensorsFile, source: string): Tokens {
  if (file.metadata[TOKENS_METADATA_KEY] === undefined)
    throw new InputError(
      source,
      `not a token file (no "${TOKENS_METADATA_KEY}" metadata; make one with anr encode)`,
    );
  const meta = metadataJson(source, file.metadata, TOKENS_METADATA_KEY) as {
    images?: unknown;
    input_size?: unknown;
    weights?: unknown;
  } | null;
  const names = meta?.images;
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string"))
    throw new InputError(
      source,
      `metadata "${TOKENS_METADATA_KEY}": "images" must list the instances' names`,
    );
  const inputSize = meta?.input_size;
  if (
    !Array.isArray(inputSize) ||
    inputSize.length !== 2 ||
    !inputSize.every((n) => Number.isInteger(n) && n > 0)
  )
    throw new InputError(source, `metadata "${TOKENS_METADATA_KEY}": "input_size" must be [H, W]`);
  const config = parseHyperNetworkConfig(metadataJson(source, file.metadata, CONFIG_METADATA_KEY), source);
  const tensors = new Map<string, HostTensor>();
  for (const g of generatedParams(config)) {
    const t = file.tensors.get(g.name);
    const b = tensors.size ? [...tensors.values()][0]!.shape[0] : t?.shape[0];
    if (
      !t ||
      t.shape.length !== 3 ||
      t.shape[0] !== b ||
      t.shape[1] !== g.shape[0] ||
      t.shape[2] !== g.shape[1]
    )
      throw new InputError(
        source,
        `tensor "${g.name}" should be [${b ?? "B"}, ${g.shape}], found ${t ? `[${t.shape}]` : "nothing"}`,
      );
    tensors.set(g.name, t);
  }
  const weights = meta?.weights;
  if (weights !== undefined && typeof weights !== "string")
    throw new InputError(source, `metadata "${TOKENS_METADATA_KEY}": "weights" must be a fingerprint string`);
  const b = [...tensors.values()][0]?.shape[0] ?? names.length;
  if (names.length !== b)
    throw new InputError(
      source,
      `metadata "${TOKENS_METADATA_KEY}" names ${names.length} instance(s) but the tensors hold ${b}`,
    );
  const missing = file.tensors.get(MISSING_TENSOR);
  const [h, w] = inputSize as [number, number];
  if (
    missing &&
    (missing.shape.length !== 3 || missing.shape[0] !== b || missing.shape[1] !== h || missing.shape[2] !== w)
  )
    throw new InputError(
      source,
      `tensor "${MISSING_TENSOR}" should be [${b}, ${h}, ${w}], found [${missing.shape}]`,
    );
  return {
    names: names as string[],
    inputSize: [h, w],
    config,
    tensors,
    ...(weights === undefined ? {} : { weights }),
    ...(missing ? { missing } : {}),
  };
}
