/**
 * Node only: safetensors and model files on disk, over the portable byte formats of
 * ./safetensors.ts and ./weights.ts. Every write is atomic (a temporary file, then a rename).
 */
import { readFile } from "node:fs/promises";
import type { HyperNetworkConfig } from "../model/config.js";
import { writeFileAtomic } from "../util/fs.js";
import { parseSafetensors, serializeSafetensors, SafetensorsError } from "./safetensors.js";
import type { HostTensor, SafetensorsFile } from "./safetensors.js";
import { tokensFromBytes, tokensToBytes, type Tokens } from "./tokens.js";
import {
  modelFromBytes,
  modelToBytes,
  weightsFromBytes,
  type ModelFile,
  type WeightsChoice,
} from "./weights.js";

export { writeFileAtomic };

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot read (${(e as Error).message})`);
  }
}

/** Read a safetensors file from disk. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await readBytes(path), path);
}

/** Write tensors and metadata as a safetensors file, atomically. */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, HostTensor]>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/** Read weights for a known config from a safetensors file (plain or authors' checkpoint keys). */
export async function readWeights(path: string, cfg: HyperNetworkConfig): Promise<Map<string, HostTensor>> {
  return weightsFromBytes(await readBytes(path), cfg, path);
}

/** Save a model (config in the metadata), atomically. */
export async function saveModel(
  path: string,
  config: HyperNetworkConfig,
  weights: Map<string, HostTensor>,
  extra: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, modelToBytes(config, weights, extra, path));
}

/**
 * Load a model saved by {@link saveModel}, or the model inside a training checkpoint (its
 * online or EMA weights): config from the metadata, weights validated against it.
 */
export async function loadModel(path: string, opts: { weights?: WeightsChoice } = {}): Promise<ModelFile> {
  return modelFromBytes(await readBytes(path), path, opts);
}

/** Read a token file (see ./tokens.ts). */
export async function readTokenFile(path: string): Promise<Tokens> {
  return tokensFromBytes(await readBytes(path), path);
}

/** Write a token file, atomically. */
export async function writeTokenFile(path: string, t: Tokens): Promise<void> {
  await writeFileAtomic(path, tokensToBytes(t));
}
