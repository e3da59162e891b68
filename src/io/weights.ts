/**
 * Model weights as safetensors bytes, with the reference's state_dict key names. A model file
 * carries its full config in the metadata, so one file rebuilds the model.
 *
 * Portable: bytes in, bytes out. The file versions (loadModel, saveModel, readWeights) are in
 * ./files.ts (Node).
 */
import type { HyperNetworkConfig } from "../model/config.js";
import { parseHyperNetworkConfig, ConfigError } from "../model/config.js";
import { paramSpecs } from "../model/params.js";
import { parseSafetensors, serializeSafetensors, type HostTensor } from "./safetensors.js";
import { InputError } from "../util/errors.js";
import { CHECKPOINT_METADATA_KEY } from "../util/prepare.js";

/** Metadata key holding the JSON model config. */
export const CONFIG_METADATA_KEY = "anr.config";
const FORMAT_KEY = "anr.format";
const FORMAT = "anr-model/1";

/** Raised when a weight set does not match the model; lists every mismatch. */
export class WeightsMismatchError extends InputError {
  constructor(
    source: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly wrongShape: string[],
  ) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.length}: ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${unexpected.join(", ")}`);
    if (wrongShape.length) parts.push(`wrong shape ${wrongShape.length}: ${wrongShape.join(", ")}`);
    super(source, `weights do not match the model config:\n  ${parts.join("\n  ")}`);
    this.name = "WeightsMismatchError";
  }
}

/**
 * Raised for weights holding NaN or ±Infinity (a diverged training run): such weights are never
 * written and never loaded, since they decode every input to garbage without any other sign.
 */
export class NonFiniteWeightsError extends InputError {
  constructor(
    source: string,
    /** Each bad tensor with how many of its values are not finite. */
    readonly tensors: { key: string; nonFinite: number; size: number }[],
  ) {
    const list = tensors.map((t) => `${t.key} (${t.nonFinite} of ${t.size})`).join(", ");
    super(
      source,
      `non-finite weights (NaN or ±Infinity) in ${tensors.length} tensor${tensors.length === 1 ? "" : "s"}: ${list}; the model is unusable (a diverged training run?)`,
    );
    this.name = "NonFiniteWeightsError";
  }
}

/** Throw {@link NonFiniteWeightsError} if any tensor holds NaN or ±Infinity. */
export function assertFiniteWeights(tensors: Map<string, HostTensor>, source: string): void {
  const bad: { key: string; nonFinite: number; size: number }[] = [];
  for (const [key, t] of tensors) {
    let nonFinite = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) nonFinite++;
    if (nonFinite) bad.push({ key, nonFinite, size: t.data.length });
  }
  if (bad.length) throw new NonFiniteWeightsError(source, bad);
}

/**
 * Normalise the key names of an authors' training checkpoint (its `model` or `ema` state dict
 * exported to safetensors) to HyperNetwork keys: strip `model.`/`ema_model.`/`online_model.`
 * and `hypernet.` prefixes and drop the duplicated `hypo_model.*` copies of the hyponet, after
 * checking that each copy equals its original.
 */
export function fromReferenceCheckpoint(
  tensors: Map<string, HostTensor>,
  source: string,
): Map<string, HostTensor> {
  const stripped = new Map<string, HostTensor>();
  const duplicates = new Map<string, HostTensor>();
  for (const [rawKey, t] of tensors) {
    let key = rawKey.replace(/^(ema_model|online_model|model)\./, "");
    if (key.startsWith("hypo_model.")) {
      duplicates.set(`hyponet.${key.slice("hypo_model.".length)}`, t);
      continue;
    }
    key = key.replace(/^hypernet\./, "");
    if (stripped.has(key))
      throw new WeightsMismatchError(source, [], [], [`${rawKey} appears twice after prefix removal`]);
    stripped.set(key, t);
  }
  for (const [key, dup] of duplicates) {
    const orig = stripped.get(key);
    if (!orig) {
      stripped.set(key, dup);
      continue;
    }
    if (orig.data.length !== dup.data.length || orig.data.some((v, i) => v !== dup.data[i])) {
      throw new WeightsMismatchError(
        source,
        [],
        [],
        [`hypo_model copy of ${key} differs from hypernet.${key}`],
      );
    }
  }
  return stripped;
}

/**
 * Check a weight set against the config's parameter list, and that every value is finite; throws
 * listing every problem.
 */
export function validateWeights(
  cfg: HyperNetworkConfig,
  tensors: Map<string, HostTensor>,
  source: string,
): Map<string, HostTensor> {
  const specs = paramSpecs(cfg);
  const missing: string[] = [];
  const wrongShape: string[] = [];
  const out = new Map<string, HostTensor>();
  for (const s of specs) {
    const t = tensors.get(s.key);
    if (!t) missing.push(s.key);
    else if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      wrongShape.push(`${s.key} is [${t.shape}] but the config needs [${s.shape}]`);
    } else out.set(s.key, t);
  }
  const known = new Set(specs.map((s) => s.key));
  const unexpected = [...tensors.keys()].filter((k) => !known.has(k));
  if (missing.length || unexpected.length || wrongShape.length) {
    throw new WeightsMismatchError(source, missing, unexpected, wrongShape);
  }
  assertFiniteWeights(out, source);
  return out;
}

/**
 * Weights for a known config from safetensors bytes (plain or authors' checkpoint keys); `source`
 * names the bytes in errors.
 */
export function weightsFromBytes(
  bytes: Uint8Array,
  cfg: HyperNetworkConfig,
  source = "<buffer>",
): Map<string, HostTensor> {
  const file = parseSafetensors(bytes, source);
  return validateWeights(cfg, fromReferenceCheckpoint(file.tensors, source), source);
}

/** A model: its config and host weights. */
export interface ModelFile {
  config: HyperNetworkConfig;
  weights: Map<string, HostTensor>;
  /** Other metadata stored with the model (training run, step…). */
  metadata: Record<string, string>;
}

/** A model as safetensors bytes (config in the metadata); `source` names it in errors. */
export function modelToBytes(
  config: HyperNetworkConfig,
  weights: Map<string, HostTensor>,
  extra: Record<string, string> = {},
  source = "<model>",
): Uint8Array {
  validateWeights(config, weights, source);
  const ordered = paramSpecs(config).map((s) => [s.key, weights.get(s.key)!] as [string, HostTensor]);
  return serializeSafetensors(ordered, {
    ...extra,
    [FORMAT_KEY]: FORMAT,
    [CONFIG_METADATA_KEY]: JSON.stringify(config),
  });
}

/** Which weights of a training checkpoint to load. */
export type WeightsChoice = "online" | "ema";

/** Metadata key of a model saved by a training run: {step, name, weights?}. */
const RUN_KEY = "anr.run";

/** The weight set a model file holds: "ema" when its run metadata says so (model-ema.safetensors). */
export function modelFileWeights(metadata: Record<string, string>): WeightsChoice {
  try {
    const run = JSON.parse(metadata[RUN_KEY] ?? "null") as { weights?: unknown } | null;
    return run?.weights === "ema" ? "ema" : "online";
  } catch {
    return "online";
  }
}

/**
 * A model from the bytes of a model file ({@link modelToBytes}) or of a training checkpoint (its
 * online or EMA weights): config from the metadata, weights validated against it. `path` names
 * the bytes in errors.
 */
export function modelFromBytes(
  bytes: Uint8Array,
  path = "<buffer>",
  opts: { weights?: WeightsChoice } = {},
): ModelFile {
  const file = parseSafetensors(bytes, path);
  const raw = file.metadata[CONFIG_METADATA_KEY];
  if (raw === undefined) {
    throw new ConfigError(path, [
      `no "${CONFIG_METADATA_KEY}" metadata: not an anr model file (weights alone need a config: use readWeights)`,
    ]);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new ConfigError(path, [
      `metadata "${CONFIG_METADATA_KEY}" is not valid JSON (${(e as Error).message})`,
    ]);
  }
  const config = parseHyperNetworkConfig(json, path);
  let tensors = file.tensors;
  if (file.metadata[CHECKPOINT_METADATA_KEY] !== undefined) {
    const group = opts.weights === "ema" ? "ema/" : "params/";
    tensors = new Map(
      [...file.tensors].filter(([k]) => k.startsWith(group)).map(([k, v]) => [k.slice(group.length), v]),
    );
    if (tensors.size === 0)
      throw new InputError(path, `no ${opts.weights ?? "online"} weights in this checkpoint`);
  } else if (opts.weights === "ema" && modelFileWeights(file.metadata) !== "ema") {
    throw new InputError(
      path,
      `no EMA weights in this model file (it holds the online weights; a run keeps its EMA weights in model-ema.safetensors, or in checkpoint.safetensors while it trains)`,
    );
  }
  const weights = validateWeights(config, fromReferenceCheckpoint(tensors, path), path);
  const metadata = { ...file.metadata };
  delete metadata[CONFIG_METADATA_KEY];
  delete metadata[FORMAT_KEY];
  return { config, weights, metadata };
}
