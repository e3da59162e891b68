/**
 * Making a batch (its inputs found, its model checked and fingerprinted, its spec written) and
 * running it in this process, shard after shard: the same shards, by the same code, as workers on
 * a queue would do them (./queue.ts), so the outputs are the same bytes either way.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Anr, resolveModelFile } from "../api/node.js";
import { listFiles } from "../data/datasets.js";
import type { WeightsChoice } from "../io/weights.js";
import { InputError, UsageError } from "../util/errors.js";
import { ModelCache, runShard } from "./shard.js";
import {
  doneShards,
  planBatch,
  shardCount,
  writeBatchSpec,
  type BatchCommand,
  type BatchSpec,
} from "./spec.js";

/** The files a batch takes from a folder: images, SVG drawings and `.npy` fields. */
const INPUT_FILE = /\.(jpe?g|png|webp|svg|npy)$/i;

/** What decode takes from a folder: token files. */
const TOKEN_FILE = /\.safetensors$/i;

/**
 * The input files: each argument a file, or a folder whose input files are taken (recursively,
 * sorted): images and fields, or for decode token files.
 */
export async function expandInputs(args: string[], command: BatchCommand): Promise<string[]> {
  if (command === "render") return expandObjects(args);
  const [ext, what] =
    command === "decode"
      ? [TOKEN_FILE, "token files (.safetensors)"]
      : [INPUT_FILE, "images (.jpg/.png/.webp/.svg) or .npy fields"];
  const out: string[] = [];
  for (const a of args) {
    const s = await stat(a).catch(() => null);
    if (!s) throw new InputError(a, "no such file or folder");
    if (s.isDirectory()) out.push(...(await listFiles(a, ext, what)).map((f) => join(a, f)));
    else out.push(a);
  }
  if (!out.length) throw new UsageError(`no inputs: give ${what} or folders of them`);
  return out;
}

/**
 * render's inputs: objects, each a folder holding `transforms.json` and its views (the learnit
 * layout); an argument is an object, or a folder whose subfolders (sorted) are objects.
 */
async function expandObjects(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of args) {
    const s = await stat(a).catch(() => null);
    if (!s?.isDirectory())
      throw new InputError(a, "not a folder: render takes object folders (transforms.json and views)");
    if (existsSync(join(a, "transforms.json"))) {
      out.push(a);
      continue;
    }
    const subs = (await readdir(a, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && existsSync(join(a, e.name, "transforms.json")))
      .map((e) => e.name)
      .sort();
    if (!subs.length) throw new InputError(a, "holds no object folders (folders with a transforms.json)");
    out.push(...subs.map((n) => join(a, n)));
  }
  return out;
}

/** What a new batch runs. */
export interface BatchRequest {
  command: BatchCommand;
  /** A model file, run folder or zoo name. */
  model: string;
  weights?: WeightsChoice;
  /** Files and folders of inputs. */
  inputs: string[];
  out: string;
  /** Inputs per shard (default 64). */
  shardSize?: number;
  /** decode, render: the output size, or the input size times `scale`; default the input size. */
  size?: [number, number];
  scale?: number;
  /** render: the views encoded (default 0, 1, 2), the orbit's frames (default 8), samples per ray (default 64). */
  support?: number[];
  frames?: number;
  samples?: number;
}

/**
 * A batch's spec from a request: the model resolved and loaded once (to fingerprint it and to check
 * that it can do the command), the inputs expanded; written into its folder, which must hold no
 * other batch.
 */
export async function makeBatch(req: BatchRequest): Promise<BatchSpec> {
  const shardSize = req.shardSize ?? 64;
  if (!(Number.isSafeInteger(shardSize) && shardSize >= 1))
    throw new UsageError(`--shard-size ${shardSize}: expected a whole number above 0`);
  if (req.size !== undefined && req.scale !== undefined)
    throw new UsageError("give --size or --scale, not both");
  if (
    (req.size !== undefined || req.scale !== undefined) &&
    req.command !== "decode" &&
    req.command !== "render"
  )
    throw new UsageError(`--size and --scale are for batch decode and render, not batch ${req.command}`);
  if ((req.support ?? req.frames ?? req.samples) !== undefined && req.command !== "render")
    throw new UsageError(`--support, --frames and --samples are for batch render, not batch ${req.command}`);
  const inputs = await expandInputs(req.inputs, req.command);
  const chosen = await resolveModelFile(req.model, req.weights ?? "online");
  const model = await Anr.load(chosen.path, { weights: chosen.weights });
  try {
    if ((model.task === "nerf") !== (req.command === "render"))
      throw new InputError(
        chosen.path,
        req.command === "render"
          ? `a ${model.task} model: batch render takes view-synthesis models`
          : `a view-synthesis model: batch ${req.command} takes image or field models (batch render renders objects)`,
      );
    if (req.command === "eval" && model.task !== "image")
      throw new InputError(
        chosen.path,
        `a ${model.task} model: batch eval measures image models (PSNR/SSIM in [0, 1])`,
      );
    const spec = planBatch({
      command: req.command,
      model: resolve(chosen.path),
      weights: chosen.weights,
      model_fingerprint: model.fingerprint,
      out: req.out,
      shard_size: shardSize,
      inputs,
      ...(req.size !== undefined ? { size: req.size } : {}),
      ...(req.scale !== undefined ? { scale: req.scale } : {}),
      ...(req.command === "render"
        ? {
            render: {
              support: req.support ?? [0, 1, 2],
              frames: req.frames ?? 8,
              samples: req.samples ?? 64,
            },
          }
        : {}),
    });
    await mkdir(spec.out, { recursive: true });
    await writeBatchSpec(spec);
    return spec;
  } finally {
    model.dispose();
  }
}

/**
 * Do every shard of `spec` not yet done, here, in order. A shard that throws is reported and the
 * others go on; returns the failed shards with their errors.
 */
export async function runBatchLocally(
  spec: BatchSpec,
  onProgress: (p: { done: number; failed: number; total: number }) => void,
): Promise<Map<number, string>> {
  const models = new ModelCache();
  const total = shardCount(spec);
  const failed = new Map<number, string>();
  try {
    const done = await doneShards(spec);
    let count = done.size;
    onProgress({ done: count, failed: 0, total });
    for (let k = 0; k < total; k++) {
      if (done.has(k)) continue;
      try {
        await runShard(spec, k, models);
        count++;
      } catch (e) {
        failed.set(k, (e as Error).message);
      }
      onProgress({ done: count, failed: failed.size, total });
    }
  } finally {
    models.dispose();
  }
  return failed;
}
