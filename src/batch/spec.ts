/**
 * A batch: one command (encode or eval) run by one model over many input files, cut into shards
 * of a fixed number of files that any process can do, in any order, any number of times. Its
 * folder holds everything about it, so that workers on other machines need only the folder (a
 * shared path) and the model:
 *
 *   batch.json                  the spec: command, model and its fingerprint, inputs, shard size
 *   shards/00000.safetensors    encode: the shard's tokens (the token format of `anr encode`)
 *   decoded/<input>/<name>.png  decode: each instance of each token file (.npy for fields)
 *   rendered/<object>/frame-NNN.png  render: an orbit of each object
 *   shards/00000.json           the shard's record: each input's checksum and outcome; written
 *                               last, so a shard is done exactly when its record is there
 *   manifest.json               every input with its shard, checksum and outcome (when complete)
 *
 * Every file is written atomically and holds nothing that depends on who wrote it or when, so a
 * shard done twice, by one process or two, leaves the same bytes.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { InputError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";

/**
 * The commands a batch runs: encode images or fields, evaluate images, decode token files, render
 * objects (posed views, the learnit layout) from new cameras.
 */
export const BATCH_COMMANDS = ["encode", "eval", "decode", "render"] as const;
export type BatchCommand = (typeof BATCH_COMMANDS)[number];

const BatchSpecSchema = z
  .object({
    format: z.literal("anr-batch/1"),
    /** "b" and 16 hex digits of the SHA-256 of everything else: the same batch, the same id. */
    id: z.string().regex(/^b[0-9a-f]{16}$/),
    command: z.enum(BATCH_COMMANDS),
    /** The model file (absolute), and which of its weight sets. */
    model: z.string().min(1),
    weights: z.enum(["online", "ema"]),
    /** The weights' fingerprint when the batch was made: a worker refuses a model that changed. */
    model_fingerprint: z.string().min(1),
    /** The batch folder (absolute). */
    out: z.string().min(1),
    /** The folder the inputs are named relative to in the tokens and the manifest. */
    root: z.string().min(1),
    shard_size: z.number().int().positive(),
    /** Absolute paths, in the order given. */
    inputs: z.array(z.string().min(1)).min(1),
    /** decode, render: the output size [H, W], or the input size times `scale` (default: the input size). */
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
    scale: z.number().positive().optional(),
    /** render: the support views encoded, the orbit's frames, and samples per ray. */
    render: z
      .object({
        support: z.array(z.number().int().nonnegative()).min(1),
        frames: z.number().int().positive(),
        samples: z.number().int().positive(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type BatchSpec = z.infer<typeof BatchSpecSchema>;

/** A batch's spec from what it runs; its id is a hash of the rest. */
export function planBatch(o: Omit<BatchSpec, "format" | "id" | "root">): BatchSpec {
  const inputs = o.inputs.map((p) => resolve(p));
  const seen = new Set<string>();
  for (const p of inputs) {
    if (seen.has(p)) throw new InputError(p, "given twice: each input belongs to one shard");
    seen.add(p);
  }
  const spec = {
    format: "anr-batch/1" as const,
    ...o,
    out: resolve(o.out),
    inputs,
    root: commonFolder(inputs),
  };
  const { format, command, model, weights, model_fingerprint, out, root, shard_size } = spec;
  const outputs = {
    ...(o.size !== undefined ? { size: o.size } : {}),
    ...(o.scale !== undefined ? { scale: o.scale } : {}),
    ...(o.render !== undefined ? { render: o.render } : {}),
  };
  const body = {
    format,
    command,
    model,
    weights,
    model_fingerprint,
    out,
    root,
    shard_size,
    inputs,
    ...outputs,
  };
  const id = `b${createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 16)}`;
  return {
    format,
    id,
    command,
    model,
    weights,
    model_fingerprint,
    out,
    root,
    shard_size,
    inputs,
    ...outputs,
  };
}

/** The deepest folder that holds every path. */
function commonFolder(paths: string[]): string {
  let parts = paths[0]!.split(sep).slice(0, -1);
  for (const p of paths.slice(1)) {
    const q = p.split(sep);
    let k = 0;
    while (k < parts.length && k < q.length - 1 && parts[k] === q[k]) k++;
    parts = parts.slice(0, k);
  }
  return parts.join(sep) || sep;
}

export function shardCount(spec: BatchSpec): number {
  return Math.ceil(spec.inputs.length / spec.shard_size);
}

/** The inputs of shard `k`. */
export function shardInputs(spec: BatchSpec, k: number): string[] {
  return spec.inputs.slice(k * spec.shard_size, (k + 1) * spec.shard_size);
}

/** An input's name in the tokens and the manifest: its path relative to the batch's root. */
export function itemName(spec: BatchSpec, input: string): string {
  return relative(spec.root, input).split(sep).join("/");
}

const pad = (k: number) => String(k).padStart(5, "0");

/** The files of shard `k`, relative to the batch folder. */
export function shardFiles(k: number): { record: string; tokens: string } {
  return { record: `shards/${pad(k)}.json`, tokens: `shards/${pad(k)}.safetensors` };
}

export const SPEC_FILE = "batch.json";
export const MANIFEST_FILE = "manifest.json";

/** What became of one input. */
export interface ItemRecord {
  /** Its name (see {@link itemName}). */
  input: string;
  /** SHA-256 of its bytes; null when it could not be read. */
  sha256: string | null;
  status: "ok" | "failed";
  /** Why it failed: the error's message, which names the file and what was wrong. */
  error?: string;
  /** encode: its row in the shard's tokens. */
  index?: number;
  /** eval: PSNR (dB, in [0, 1]) and SSIM of its reconstruction at the model's size. */
  psnr?: number;
  ssim?: number;
  /** decode: the files written for its instances, relative to the batch folder. */
  outputs?: string[];
}

/** A shard's record (shards/NNNNN.json): written once its outputs are in place. */
export interface ShardRecord {
  format: "anr-batch-shard/1";
  batch: string;
  shard: number;
  command: BatchCommand;
  model_fingerprint: string;
  items: ItemRecord[];
  /** encode: the token file, and the SHA-256 of its bytes; null when no input of the shard could be read. */
  tokens?: { file: string; sha256: string } | null;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function parseJsonFile(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(path, `not valid JSON (${(e as Error).message})`);
  }
}

/** The spec in a batch folder (or a batch.json path). */
export async function readBatchSpec(path: string): Promise<BatchSpec> {
  const file = path.endsWith(".json") ? path : join(path, SPEC_FILE);
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new InputError(
      file,
      e.code === "ENOENT"
        ? "no batch here (no batch.json): give a batch folder or id"
        : `cannot read (${e.code})`,
    );
  });
  return parseBatchSpec(parseJsonFile(file, text), file);
}

export function parseBatchSpec(value: unknown, source: string): BatchSpec {
  const r = BatchSpecSchema.safeParse(value);
  if (!r.success)
    throw new InputError(
      source,
      `not a batch spec: ${r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
    );
  return r.data;
}

/**
 * Write the spec into its folder; a folder that already holds another batch is refused, so that
 * no batch's outputs are mixed with another's.
 */
export async function writeBatchSpec(spec: BatchSpec): Promise<void> {
  const file = join(spec.out, SPEC_FILE);
  const text = JSON.stringify(spec, null, 2) + "\n";
  const existing = await readFile(file, "utf8").catch(() => null);
  if (existing !== null && existing !== text) {
    let other = "another batch";
    try {
      const o = parseBatchSpec(JSON.parse(existing), file);
      other = `batch ${o.id} (${o.command}, ${o.inputs.length} inputs, model ${o.model})`;
    } catch {
      // An unreadable batch.json is still not ours to overwrite.
    }
    throw new InputError(file, `holds ${other}, not this one (${spec.id}): give another --out`);
  }
  if (existing === null) await writeFileAtomic(file, text, { durable: true });
}

/**
 * Shard `k`'s record if the shard is done: its record there, for this batch, with its tokens
 * intact (their checksum the record's); else null. A record of another batch is an error.
 */
export async function readShardRecord(spec: BatchSpec, k: number): Promise<ShardRecord | null> {
  const { record } = shardFiles(k);
  const path = join(spec.out, record);
  const text = await readFile(path, "utf8").catch(() => null);
  if (text === null) return null;
  const r = parseJsonFile(path, text) as ShardRecord;
  if (r.format !== "anr-batch-shard/1" || r.batch !== spec.id || r.shard !== k)
    throw new InputError(path, `not the record of shard ${k} of batch ${spec.id}`);
  if (r.tokens) {
    const bytes = await readFile(join(spec.out, r.tokens.file)).catch(() => null);
    if (bytes === null || sha256Hex(bytes) !== r.tokens.sha256) return null;
  }
  return r;
}

/** The records of the shards that are done. */
export async function doneShards(spec: BatchSpec): Promise<Map<number, ShardRecord>> {
  const n = shardCount(spec);
  const records = await Promise.all(Array.from({ length: n }, (_, k) => readShardRecord(spec, k)));
  return new Map(records.flatMap((r, k) => (r ? [[k, r] as const] : [])));
}

/** The manifest: every input in order, with its shard and outcome; totals. */
export interface Manifest {
  format: "anr-batch-manifest/1";
  batch: string;
  command: BatchCommand;
  model: string;
  model_fingerprint: string;
  shard_size: number;
  shards: number;
  /** Shards not done (a batch in progress, or whose shards failed for good). */
  missing_shards: number[];
  items: (ItemRecord & { shard: number; tokens?: string })[];
  totals: {
    inputs: number;
    ok: number;
    failed: number;
    pending: number;
    mean_psnr?: number;
    mean_ssim?: number;
  };
}

export function manifestOf(spec: BatchSpec, done: Map<number, ShardRecord>): Manifest {
  const n = shardCount(spec);
  const items: Manifest["items"] = [];
  const missing: number[] = [];
  for (let k = 0; k < n; k++) {
    const r = done.get(k);
    if (!r) {
      missing.push(k);
      continue;
    }
    for (const item of r.items)
      items.push({ ...item, shard: k, ...(r.tokens ? { tokens: r.tokens.file } : {}) });
  }
  const ok = items.filter((i) => i.status === "ok");
  const mean = (key: "psnr" | "ssim") => {
    const xs = ok.map((i) => i[key]).filter((x): x is number => x !== undefined);
    return xs.length ? { [`mean_${key}`]: xs.reduce((s, x) => s + x, 0) / xs.length } : {};
  };
  return {
    format: "anr-batch-manifest/1",
    batch: spec.id,
    command: spec.command,
    model: spec.model,
    model_fingerprint: spec.model_fingerprint,
    shard_size: spec.shard_size,
    shards: n,
    missing_shards: missing,
    items,
    totals: {
      inputs: spec.inputs.length,
      ok: ok.length,
      failed: items.length - ok.length,
      pending: spec.inputs.length - items.length,
      ...mean("psnr"),
      ...mean("ssim"),
    },
  };
}

export async function writeManifest(spec: BatchSpec, done: Map<number, ShardRecord>): Promise<Manifest> {
  const m = manifestOf(spec, done);
  await writeFileAtomic(join(spec.out, MANIFEST_FILE), JSON.stringify(m, null, 2) + "\n", { durable: true });
  return m;
}
