/**
 * Token files: the compact representation of encoded images or fields (the R-tokens of ANR, the
 * generated weights of the baselines), one (B, …) tensor per generated parameter, with the names
 * of the instances and the config of the model that encoded them in the metadata. Bytes in and out
 * (portable), plus thin file functions.
 */
import { readFile } from "node:fs/promises";
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../model/config.js";
import { generatedParams } from "../model/model.js";
import { writeFileAtomic } from "../util/fs.js";
import { InputError } from "../util/errors.js";
import { parseSafetensors, serializeSafetensors, type HostTensor } from "./safetensors.js";
import { CONFIG_METADATA_KEY } from "./weights.js";

/** Metadata key of a token file: `{ images: string[], input_size: [H, W] }`. */
export const TOKENS_METADATA_KEY = "anr.tokens";

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
}

/** Tokens as safetensors bytes. */
export function tokensToBytes(t: Tokens): Uint8Array {
  return serializeSafetensors([...t.tensors], {
    [TOKENS_METADATA_KEY]: JSON.stringify({ images: t.names, input_size: t.inputSize }),
    [CONFIG_METADATA_KEY]: JSON.stringify(t.config),
  });
}

/** Parse one JSON metadata entry of a token file. */
function metadataJson(source: string, metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key] ?? "null");
  } catch (e) {
    throw new InputError(source, `metadata "${key}" is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Tokens from the bytes of a token file (`source` names it in errors): the metadata, the encoding
 * model's config, and one tensor of shape [B, …] per parameter that config generates.
 */
export function tokensFromBytes(bytes: Uint8Array, source = "<buffer>"): Tokens {
  const file = parseSafetensors(bytes, source);
  if (file.metadata[TOKENS_METADATA_KEY] === undefined)
    throw new InputError(
      source,
      `not a token file (no "${TOKENS_METADATA_KEY}" metadata; make one with anr encode)`,
    );
  const meta = metadataJson(source, file.metadata, TOKENS_METADATA_KEY) as {
    images?: unknown;
    input_size?: unknown;
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
  return { names: names as string[], inputSize: inputSize as [number, number], config, tensors };
}

/** Read a token file. */
export async function readTokenFile(path: string): Promise<Tokens> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new InputError(path, `cannot read (${(e as Error).message})`);
  }
  return tokensFromBytes(bytes, path);
}

/** Write a token file, atomically. */
export async function writeTokenFile(path: string, t: Tokens): Promise<void> {
  await writeFileAtomic(path, tokensToBytes(t));
}
