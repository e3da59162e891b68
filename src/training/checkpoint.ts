/**
 * Training checkpoints: parameters, Adam moments and EMA weights in one safetensors file, with
 * everything else needed to continue the same run exactly (step, data position, RNG state,
 * resolved run config) in its metadata. Written atomically.
 */
import type { HostTensor } from "../io/safetensors.js";
import { readSafetensors, writeSafetensors } from "../io/files.js";
import { assertFiniteWeights, CONFIG_METADATA_KEY } from "../io/weights.js";
import type { HyperNetworkConfig } from "../model/config.js";
import { InputError } from "../util/errors.js";
import { metadataJson } from "../util/metadata.js";
// Declared with the preparation keys: the portable facade and io/weights.ts read checkpoints too.
import { CHECKPOINT_METADATA_KEY } from "../util/prepare.js";

/** Non-tensor training state (JSON). */
export interface CheckpointState {
  /** Optimiser steps taken. */
  step: number;
  /** Calls of the EMA update so far. */
  emaCalls: number;
  /** Data loader position. */
  loader: unknown;
  /** Host RNG state (coordinate noise). */
  rng: number[];
  /**
   * Sums of the steps since the last metrics line (loss, train PSNR, count), so that a resumed run
   * logs the same averages; absent in older checkpoints (the window then restarts).
   */
  window?: { loss: number; psnr: number; n: number };
  /** Steps skipped so far for a non-finite loss or gradient norm; absent in older checkpoints (0). */
  skippedSteps?: number;
  /** Of those, how many in a row up to this step; absent in older checkpoints (0). */
  badStreak?: number;
  /** The resolved run config (what a resumed run continues with). */
  run: unknown;
}

/** A checkpoint as read back. */
export interface LoadedCheckpoint {
  tensors: CheckpointTensors;
  state: CheckpointState;
  /** The model config of its metadata. */
  model: unknown;
}

/** Tensor groups of a checkpoint. */
export interface CheckpointTensors {
  params: Map<string, HostTensor>;
  m: Map<string, HostTensor>;
  v: Map<string, HostTensor>;
  ema: Map<string, HostTensor> | null;
}

const GROUPS = ["params", "adam_m", "adam_v", "ema"] as const;

/**
 * Write a checkpoint atomically. Non-finite values are refused (NonFiniteWeightsError, io/weights.ts),
 * and the previous checkpoint then stays as it was.
 */
export async function saveCheckpoint(
  path: string,
  model: HyperNetworkConfig,
  t: CheckpointTensors,
  state: CheckpointState,
): Promise<void> {
  const entries: [string, HostTensor][] = [];
  const add = (group: string, m: Map<string, HostTensor> | null) => {
    if (m) for (const [k, v] of m) entries.push([`${group}/${k}`, v]);
  };
  add("params", t.params);
  add("adam_m", t.m);
  add("adam_v", t.v);
  add("ema", t.ema);
  assertFiniteWeights(new Map(entries), path);
  await writeSafetensors(path, entries, {
    [CHECKPOINT_METADATA_KEY]: JSON.stringify(state),
    [CONFIG_METADATA_KEY]: JSON.stringify(model),
  });
}

/** Read a checkpoint written by {@link saveCheckpoint}; errors name the file and what is wrong. */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const file = await readSafetensors(path);
  if (file.metadata[CHECKPOINT_METADATA_KEY] === undefined)
    throw new InputError(path, `not a training checkpoint (no "${CHECKPOINT_METADATA_KEY}" metadata)`);
  const state = metadataJson(path, file.metadata, CHECKPOINT_METADATA_KEY) as CheckpointState;
  // A run never continues from NaN or ±Infinity (parameters, moments or EMA), whoever wrote them.
  assertFiniteWeights(file.tensors, path);
  const groups: Record<string, Map<string, HostTensor>> = {};
  for (const [k, v] of file.tensors) {
    const slash = k.indexOf("/");
    const g = k.slice(0, slash);
    if (!(GROUPS as readonly string[]).includes(g))
      throw new InputError(
        path,
        `unexpected tensor "${k}" in a checkpoint (expected ${GROUPS.map((g) => `${g}/…`).join(", ")})`,
      );
    (groups[g] ??= new Map()).set(k.slice(slash + 1), v);
  }
  if (!groups.params) throw new InputError(path, `checkpoint has no parameters (no "params/…" tensors)`);
  return {
    tensors: {
      params: groups.params,
      m: groups.adam_m ?? new Map(),
      v: groups.adam_v ?? new Map(),
      ema: groups.ema ?? null,
    },
    state,
    model: metadataJson(path, file.metadata, CONFIG_METADATA_KEY),
  };
}
