/**
 * One shard of a batch, done by whichever process takes it: the model (cached by path and
 * fingerprint), each input read on its own so that a bad one fails alone (recorded with its
 * error), the work (encode, eval, decode or render), then the outputs written atomically and
 * durably, the record last. A shard already done is not done again.
 */
import { readFile, stat, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ImageInput } from "../api/input.js";
import { Anr } from "../api/node.js";
import { ssim } from "../eval/ssim.js";
import { pngBytes, psnrUnit } from "../data/image.js";
import { openLearnitObject } from "../data/learnit.js";
import { encodeNpy } from "../io/npy.js";
import { tokensFromBytes, tokensToBytes } from "../io/tokens.js";
import { regionSize, WHOLE_IMAGE } from "../model/tasks.js";
import { orbitPoses } from "../rendering/rays.js";
import { InputError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import {
  itemName,
  readShardRecord,
  sha256Hex,
  shardFiles,
  shardInputs,
  type BatchSpec,
  type ItemRecord,
  type ShardRecord,
} from "./spec.js";

/**
 * Loaded models by file, weight set and the file's size and time, the last few kept: a worker
 * loads a model once for all the shards of its batches.
 */
export class ModelCache {
  readonly #models = new Map<string, Promise<Anr>>();
  constructor(readonly limit = 2) {}

  /** The model of `spec`, checked to be the one the batch was made with. */
  async get(spec: Pick<BatchSpec, "model" | "weights" | "model_fingerprint">): Promise<Anr> {
    const s = await stat(spec.model).catch(() => {
      throw new InputError(spec.model, "the batch's model file cannot be read on this machine");
    });
    const key = `${spec.model}\0${spec.weights}\0${s.size}\0${s.mtimeMs}`;
    let model = this.#models.get(key);
    if (!model) {
      model = Anr.load(spec.model, { weights: spec.weights });
      this.#models.set(key, model);
      model.catch(() => this.#models.delete(key));
      while (this.#models.size > this.limit) {
        const [oldest, evicted] = this.#models.entries().next().value!;
        this.#models.delete(oldest);
        void evicted.then(
          (m) => m.dispose(),
          () => undefined,
        );
      }
    }
    const m = await model;
    if (m.fingerprint !== spec.model_fingerprint)
      throw new InputError(
        spec.model,
        `holds weights ${m.fingerprint}, but the batch was made with weights ${spec.model_fingerprint}: the model file changed since; make a new batch`,
      );
    return m;
  }

  dispose(): void {
    for (const m of this.#models.values())
      void m.then(
        (x) => x.dispose(),
        () => undefined,
      );
    this.#models.clear();
  }
}

/** What a shard's work reports besides its record. */
export interface ShardOutcome {
  record: ShardRecord;
  /** False when the shard was found done and nothing was computed. */
  computed: boolean;
}

/**
 * Do shard `k` of `spec`: its outputs and then its record, in the batch folder. Inputs that cannot
 * be read or used are recorded as failed with the error; anything else that goes wrong (the
 * model, the disk) throws, and the shard stays undone, to be retried.
 */
export async function runShard(spec: BatchSpec, k: number, models: ModelCache): Promise<ShardOutcome> {
  const done = await readShardRecord(spec, k);
  if (done) return { record: done, computed: false };
  const model = await models.get(spec);
  const work = { encode: encodeShard, eval: encodeShard, decode: decodeShard, render: renderShard }[
    spec.command
  ];
  return { record: await work(spec, k, model), computed: true };
}

/**
 * Each input of shard `k` in turn: its item record, its bytes read (and checksummed; for an
 * object folder, those of its `transforms.json`), then `use`. An input error marks that item
 * failed with its message, and the others go on; any other error stops the shard.
 */
async function eachInput(
  spec: BatchSpec,
  k: number,
  use: (input: { path: string; name: string; bytes: Uint8Array; item: ItemRecord }) => Promise<void>,
): Promise<ItemRecord[]> {
  const items: ItemRecord[] = [];
  for (const path of shardInputs(spec, k)) {
    const name = itemName(spec, path);
    const item: ItemRecord = { input: name, sha256: null, status: "failed" };
    items.push(item);
    const file = spec.command === "render" ? join(path, "transforms.json") : path;
    try {
      const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
        throw new InputError(file, `cannot read (${e.code ?? e.message})`);
      });
      item.sha256 = sha256Hex(bytes);
      await use({ path, name, bytes, item });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      item.error = e.message;
    }
  }
  return items;
}

/** A shard's record, written last (durably): once it is there, the shard is done. */
async function writeShardRecord(
  spec: BatchSpec,
  k: number,
  items: ItemRecord[],
  tokens?: ShardRecord["tokens"],
): Promise<ShardRecord> {
  const record: ShardRecord = {
    format: "anr-batch-shard/1",
    batch: spec.id,
    shard: k,
    command: spec.command,
    model_fingerprint: spec.model_fingerprint,
    items,
    ...(tokens !== undefined ? { tokens } : {}),
  };
  await writeOutput(spec, shardFiles(k).record, JSON.stringify(record, null, 2) + "\n");
  return record;
}

/** Write one file of the batch folder (durably), its folders made; returns its relative path. */
async function writeOutput(spec: BatchSpec, file: string, bytes: Uint8Array | string): Promise<string> {
  await mkdir(dirname(join(spec.out, file)), { recursive: true });
  await writeFileAtomic(join(spec.out, file), bytes, { durable: true });
  return file;
}

/**
 * encode and eval: each readable input prepared on its own (so that one that cannot be prepared
 * fails alone), then all encoded together. encode writes the shard's token file; eval decodes
 * each at the model's size and measures PSNR and SSIM against the prepared input.
 */
async function encodeShard(spec: BatchSpec, k: number, model: Anr): Promise<ShardRecord> {
  const readable: { input: ImageInput; name: string; item: ItemRecord }[] = [];
  const items = await eachInput(spec, k, async ({ path, name, item }) => {
    const input = await model.read(path, name);
    model.prepare(input, name);
    readable.push({ input, name, item });
  });
  if (!readable.length) return writeShardRecord(spec, k, items, spec.command === "encode" ? null : undefined);
  const tokens = await model.encode(
    readable.map((r) => r.input),
    { names: readable.map((r) => r.name) },
  );
  for (const r of readable) r.item.status = "ok";
  if (spec.command === "encode") {
    readable.forEach((r, i) => (r.item.index = i));
    const bytes = tokensToBytes(tokens);
    const file = await writeOutput(spec, shardFiles(k).tokens, bytes);
    return writeShardRecord(spec, k, items, { file, sha256: sha256Hex(bytes) });
  }
  const decoded = await model.decodeAll(tokens);
  readable.forEach((r, i) => {
    const truth = model.prepare(r.input, r.name);
    r.item.psnr = psnrUnit(decoded[i]!.data, truth.data);
    r.item.ssim = ssim(decoded[i]!.data, truth.data, truth.c, truth.h, truth.w);
  });
  return writeShardRecord(spec, k, items);
}

/** A path inside a folder for an instance's name: its "/"-separated parts, none empty, "." or "..". */
function safeRelative(name: string): string {
  const parts = name.split(/[\\/]+/).filter((p) => p !== "" && p !== "." && p !== "..");
  return parts.length ? parts.join("/") : "instance";
}

/** The output size of decode and render: the spec's size, or `scale` × the model's input size. */
function outputSize(spec: BatchSpec, [h, w]: [number, number]): [number, number] {
  if (spec.size) return spec.size;
  if (spec.scale === undefined) return [h, w];
  return regionSize(WHOLE_IMAGE, h * spec.scale, w * spec.scale);
}

/**
 * decode: each token file of the shard, every instance decoded (at the spec's size or scale) to
 * `decoded/<token file>/<instance name>.png` (fields: `.npy`, physical units, NaN where the input
 * was missing). A file that is not a token file of this model fails alone.
 */
async function decodeShard(spec: BatchSpec, k: number, model: Anr): Promise<ShardRecord> {
  const items = await eachInput(spec, k, async ({ path, name, bytes, item }) => {
    const tokens = tokensFromBytes(bytes, path);
    let images;
    try {
      images = await model.decodeAll(tokens, { size: outputSize(spec, model.inputSize) });
    } catch (e) {
      // The facade names "tokens"; here the tokens are this file.
      if (e instanceof InputError) throw new InputError(path, e.message.replace(/^tokens: /, ""));
      throw e;
    }
    const folder = `decoded/${safeRelative(name.replace(/\.safetensors$/i, ""))}`;
    const outputs: string[] = [];
    const used = new Set<string>();
    for (const [i, img] of images.entries()) {
      let stem = safeRelative(tokens.names[i]!.replace(/\.[^./]+$/, ""));
      if (used.has(stem)) stem = `${stem}-${i}`;
      used.add(stem);
      const file = `${folder}/${stem}.${model.channels ? "npy" : "png"}`;
      const out = model.channels
        ? encodeNpy({ shape: [img.c, img.h, img.w], data: img.data })
        : await pngBytes(img);
      outputs.push(await writeOutput(spec, file, out));
    }
    item.status = "ok";
    item.outputs = outputs;
  });
  return writeShardRecord(spec, k, items);
}

/**
 * render: each object of the shard (a folder of posed views, the learnit layout) encoded from the
 * spec's support views, then rendered from an orbit of cameras at their distance and elevation
 * to `rendered/<object>/frame-NNN.png`. An object that cannot be read fails alone.
 */
async function renderShard(spec: BatchSpec, k: number, model: Anr): Promise<ShardRecord> {
  const r = spec.render!;
  const [h, w] = model.inputSize;
  const [H, W] = outputSize(spec, [h, w]);
  const items = await eachInput(spec, k, async ({ path, name, item }) => {
    const obj = await openLearnitObject(path, h === w ? h : undefined);
    if (r.support.some((i) => i >= obj.nViews))
      throw new InputError(
        path,
        `has views 0 to ${obj.nViews - 1}; the batch's support views are ${r.support.join(", ")}`,
      );
    const support = await Promise.all(r.support.map((i) => obj.view(i)));
    const tokens = await model.encodeViews(
      support.map((v) => ({ image: v.img, pose: v.pose, focal: v.focal })),
      { name },
    );
    // The same field of view at the output size: the focal length grows with the image.
    const [fx, fy] = support[0]!.focal;
    const focal: [number, number] = [(fx * W) / w, (fy * H) / h];
    const poses = orbitPoses(
      support.map((v) => v.pose),
      r.frames,
    );
    const outputs: string[] = [];
    for (const [i, pose] of poses.entries()) {
      const img = await model.render(tokens, { pose, focal, size: [H, W], samples: r.samples });
      const file = `rendered/${safeRelative(name)}/frame-${String(i).padStart(3, "0")}.png`;
      outputs.push(await writeOutput(spec, file, await pngBytes(img)));
    }
    item.status = "ok";
    item.outputs = outputs;
  });
  return writeShardRecord(spec, k, items);
}
