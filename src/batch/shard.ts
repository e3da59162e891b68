/**
 * One shard of a batch, done by whichever process takes it: the model (cached by path and
 * fingerprint), each input read on its own so that a bad one fails alone, the readable ones
 * encoded (and, for eval, decoded and measured) together, then the outputs written atomically
 * and durably, the record last. A shard already done is not done again.
 */
import { readFile, stat, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ImageInput } from "../api/input.js";
import { Anr } from "../api/node.js";
import { ssim } from "../eval/ssim.js";
import { pngBytes, psnrUnit } from "../data/image.js";
import { encodeNpy } from "../io/npy.js";
import { tokensFromBytes, tokensToBytes } from "../io/tokens.js";
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
 * be read or prepared are recorded as failed with the error; anything else that goes wrong (the
 * model, the disk) throws, and the shard stays undone, to be retried.
 */
export async function runShard(spec: BatchSpec, k: number, models: ModelCache): Promise<ShardOutcome> {
  const done = await readShardRecord(spec, k);
  if (done) return { record: done, computed: false };
  const model = await models.get(spec);
  if (spec.command === "decode") return { record: await decodeShard(spec, k, model), computed: true };
  const items: ItemRecord[] = [];
  const readable: { input: ImageInput; name: string; item: ItemRecord }[] = [];
  for (const path of shardInputs(spec, k)) {
    const name = itemName(spec, path);
    const item: ItemRecord = { input: name, sha256: null, status: "failed" };
    items.push(item);
    try {
      const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
        throw new InputError(path, `cannot read (${e.code ?? e.message})`);
      });
      item.sha256 = sha256Hex(bytes);
      const input = await model.read(path, name);
      model.prepare(input, name); // checked alone: a bad input fails alone
      readable.push({ input, name, item });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      item.error = e.message;
    }
  }
  const record: ShardRecord = {
    format: "anr-batch-shard/1",
    batch: spec.id,
    shard: k,
    command: spec.command,
    model_fingerprint: spec.model_fingerprint,
    items,
  };
  const files = shardFiles(k);
  await mkdir(dirname(join(spec.out, files.record)), { recursive: true });
  if (readable.length) {
    const tokens = await model.encode(
      readable.map((r) => r.input),
      { names: readable.map((r) => r.name) },
    );
    readable.forEach((r, i) => {
      r.item.status = "ok";
      r.item.index = i;
    });
    if (spec.command === "encode") {
      const bytes = tokensToBytes(tokens);
      await writeFileAtomic(join(spec.out, files.tokens), bytes, { durable: true });
      record.tokens = { file: files.tokens, sha256: sha256Hex(bytes) };
    } else {
      const decoded = await model.decodeAll(tokens);
      readable.forEach((r, i) => {
        const truth = model.prepare(r.input, r.name);
        const out = decoded[i]!;
        r.item.psnr = psnrUnit(out.data, truth.data);
        r.item.ssim = ssim(out.data, truth.data, truth.c, truth.h, truth.w);
        delete r.item.index;
      });
    }
  } else if (spec.command === "encode") record.tokens = null;
  await writeFileAtomic(join(spec.out, files.record), JSON.stringify(record, null, 2) + "\n", {
    durable: true,
  });
  return { record, computed: true };
}

/** A path inside a folder for an instance's name: its "/"-separated parts, none empty, "." or "..". */
function safeRelative(name: string): string {
  const parts = name.split(/[\\/]+/).filter((p) => p !== "" && p !== "." && p !== "..");
  return parts.length ? parts.join("/") : "instance";
}

/**
 * decode: each token file of the shard, every instance decoded (at the spec's size or scale) to
 * `decoded/<token file>/<instance name>.png` (fields: `.npy`, physical units, NaN where the input
 * was missing). A file that is not a token file of this model fails alone.
 */
async function decodeShard(spec: BatchSpec, k: number, model: Anr): Promise<ShardRecord> {
  const items: ItemRecord[] = [];
  for (const path of shardInputs(spec, k)) {
    const name = itemName(spec, path);
    const item: ItemRecord = { input: name, sha256: null, status: "failed" };
    items.push(item);
    try {
      const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
        throw new InputError(path, `cannot read (${e.code ?? e.message})`);
      });
      item.sha256 = sha256Hex(bytes);
      const tokens = tokensFromBytes(bytes, path);
      let images;
      try {
        images = await model.decodeAll(tokens, {
          ...(spec.size ? { size: spec.size } : {}),
          ...(spec.scale !== undefined ? { scale: spec.scale } : {}),
        });
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
        await mkdir(dirname(join(spec.out, file)), { recursive: true });
        await writeFileAtomic(join(spec.out, file), out, { durable: true });
        outputs.push(file);
      }
      item.status = "ok";
      item.outputs = outputs;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      item.error = e.message;
    }
  }
  const record: ShardRecord = {
    format: "anr-batch-shard/1",
    batch: spec.id,
    shard: k,
    command: spec.command,
    model_fingerprint: spec.model_fingerprint,
    items,
  };
  const { record: recordFile } = shardFiles(k);
  await mkdir(dirname(join(spec.out, recordFile)), { recursive: true });
  await writeFileAtomic(join(spec.out, recordFile), JSON.stringify(record, null, 2) + "\n", {
    durable: true,
  });
  return record;
}
