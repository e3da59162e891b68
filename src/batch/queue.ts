/**
 * Batches across machines on a BullMQ job queue in Redis: one job per shard, named by the batch
 * and shard (so a shard is never queued twice), retried with backoff when it fails, and taken
 * back from a worker that stops renewing its lock (killed, or its machine lost). Redis holds only
 * the jobs and the batch specs; the outputs are in the batch folder, and a shard counts as done
 * when its record is there (see ./spec.ts), whatever the queue says.
 */
import { Queue, Worker, type Job, type RedisOptions } from "bullmq";
import { Redis } from "ioredis";
import { UsageError } from "../util/errors.js";
import { ModelCache, runShard } from "./shard.js";
import { doneShards, parseBatchSpec, readBatchSpec, shardCount, type BatchSpec } from "./spec.js";

/** The queue every batch's jobs go on. */
export const QUEUE_NAME = "anr-batch";
/** Attempts per shard before it counts as failed (the first run and two retries). */
export const SHARD_ATTEMPTS = 3;
const specKey = (id: string) => `anr:batch:${id}`;

/** What a shard's job carries: where the batch's spec is, and which shard. */
export interface ShardJob {
  batch: string;
  spec: string;
  shard: number;
}

/** `redis://[user:password@]host[:port][/db]` as connection options, or a usage error. */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--queue ${url}: expected a Redis URL, redis://HOST:PORT/DB`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw new UsageError(`--queue ${url}: expected a redis:// URL, not ${u.protocol}`);
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db))
    throw new UsageError(`--queue ${url}: the database (after the host) must be a number, not "${db}"`);
  return {
    host: u.hostname || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    ...(db ? { db: Number(db) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    // Workers block on Redis; a command must wait for a reconnection rather than fail.
    maxRetriesPerRequest: null,
    // Reconnect for as long as it takes (Redis restarting), at most every 2 s.
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

const jobId = (spec: BatchSpec, k: number) => `${spec.id}-${k}`;

/** A queue handle for submitting and watching batches. */
export class BatchQueue {
  readonly queue: Queue<ShardJob>;
  /** A plain connection for the batch specs (BullMQ keeps its own). */
  readonly #redis: Redis;
  constructor(readonly url: string) {
    this.queue = new Queue<ShardJob>(QUEUE_NAME, { connection: redisOptions(url) });
    this.#redis = new Redis(redisOptions(url));
    // Errors while Redis is away are retried by the clients; the wait loop reports the state.
    this.queue.on("error", () => undefined);
    this.#redis.on("error", () => undefined);
  }

  /** Keep the spec in Redis too, so that `anr batch status ID` finds the batch folder. */
  async saveSpec(spec: BatchSpec): Promise<void> {
    await this.#redis.set(specKey(spec.id), JSON.stringify(spec));
  }

  async findSpec(id: string): Promise<BatchSpec | null> {
    const text = await this.#redis.get(specKey(id));
    return text === null ? null : parseBatchSpec(JSON.parse(text), `${this.url} ${specKey(id)}`);
  }

  /**
   * Queue the shards that are not done and have no live job: new ones are added, failed ones
   * retried, and finished ones whose outputs are gone (a deleted folder) replaced. Returns how
   * many were queued.
   */
  async enqueue(spec: BatchSpec, shards: number[]): Promise<number> {
    let queued = 0;
    for (const k of shards) {
      const id = jobId(spec, k);
      const job = (await this.queue.getJob(id)) as Job<ShardJob> | undefined;
      const state = job ? await job.getState() : null;
      if (state === "failed") {
        await job!.retry("failed");
        queued++;
        continue;
      }
      if (state === "completed") await job!.remove();
      else if (state !== null && state !== "unknown") continue; // waiting, active, delayed: live
      await this.queue.add(
        spec.command,
        { batch: spec.id, spec: `${spec.out}/batch.json`, shard: k },
        {
          jobId: id,
          attempts: SHARD_ATTEMPTS,
          backoff: { type: "exponential", delay: 1000 },
          removeOnComplete: false,
          removeOnFail: false,
        },
      );
      queued++;
    }
    return queued;
  }

  /** Per shard not done: "failed" (attempts used up), "retrying", "queued" or "lost" (no job). */
  async states(
    spec: BatchSpec,
    shards: number[],
  ): Promise<Map<number, "failed" | "retrying" | "queued" | "lost">> {
    const out = new Map<number, "failed" | "retrying" | "queued" | "lost">();
    for (const k of shards) {
      const job = (await this.queue.getJob(jobId(spec, k))) as Job<ShardJob> | undefined;
      if (!job) {
        out.set(k, "lost");
        continue;
      }
      const state = await job.getState();
      out.set(k, state === "failed" ? "failed" : job.attemptsMade > 0 ? "retrying" : "queued");
    }
    return out;
  }

  /** The last error of each failed shard's job. */
  async failures(spec: BatchSpec, shards: number[]): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    for (const k of shards) {
      const job = (await this.queue.getJob(jobId(spec, k))) as Job<ShardJob> | undefined;
      if (job?.failedReason) out.set(k, job.failedReason);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.#redis.disconnect();
  }
}

/** Progress of a batch: shards done, failed for good, being retried; of all. */
export interface BatchProgress {
  done: number;
  failed: number;
  retrying: number;
  total: number;
}

/**
 * Wait until every shard of `spec` is done or has failed for good, reporting progress. Shards whose
 * job vanished (Redis restarted without its data) are queued again, so nothing is lost. Returns
 * the shards that failed, with their last error.
 */
export async function waitForBatch(
  q: BatchQueue,
  spec: BatchSpec,
  onProgress: (p: BatchProgress) => void,
  pollMs = 500,
): Promise<Map<number, string>> {
  const total = shardCount(spec);
  for (;;) {
    const done = await doneShards(spec);
    const pending = Array.from({ length: total }, (_, k) => k).filter((k) => !done.has(k));
    let states: Map<number, string>;
    try {
      states = await q.states(spec, pending);
      const lost = pending.filter((k) => states.get(k) === "lost");
      if (lost.length) await q.enqueue(spec, lost);
    } catch {
      // Redis unreachable for now: report what the folder says, and try again.
      states = new Map();
    }
    const failed = pending.filter((k) => states.get(k) === "failed");
    onProgress({
      done: done.size,
      failed: failed.length,
      retrying: pending.filter((k) => states.get(k) === "retrying").length,
      total,
    });
    if (done.size + failed.length === total)
      return failed.length ? await q.failures(spec, failed) : new Map();
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Settings of a worker process. */
export interface WorkerOptions {
  /** Jobs at once in this process (default 1: the kernels already use every core). */
  concurrency?: number;
  /**
   * Seconds a job's lock lasts without renewal (default 30): a worker that stops renewing it
   * (killed) loses the job to another after about this long.
   */
  lockSeconds?: number;
  /** Each finished or failed job, for the log. */
  onJob?: (e: {
    batch: string;
    shard: number;
    status: "started" | "done" | "skipped" | "failed";
    error?: string;
    ms: number;
  }) => void;
}

/**
 * A worker: takes shard jobs of any batch from the queue and does them, one model load per
 * model. A job completes only after its outputs and record are durably written. Close it to stop
 * after the jobs in hand.
 */
export function startWorker(
  url: string,
  opts: WorkerOptions = {},
): { worker: Worker<ShardJob>; close: () => Promise<void> } {
  const models = new ModelCache();
  const specs = new Map<string, Promise<BatchSpec>>();
  const lockMs = (opts.lockSeconds ?? 30) * 1000;
  const worker = new Worker<ShardJob>(
    QUEUE_NAME,
    async (job) => {
      const t0 = performance.now();
      const { batch, spec: specPath, shard } = job.data;
      opts.onJob?.({ batch, shard, status: "started", ms: 0 });
      try {
        let spec = specs.get(batch);
        if (!spec) {
          spec = readBatchSpec(specPath);
          specs.set(batch, spec);
          spec.catch(() => specs.delete(batch));
        }
        const s = await spec;
        const r = await runShard(s, shard, models);
        opts.onJob?.({ batch, shard, status: r.computed ? "done" : "skipped", ms: performance.now() - t0 });
        return {
          items: r.record.items.length,
          failed: r.record.items.filter((i) => i.status === "failed").length,
        };
      } catch (e) {
        opts.onJob?.({
          batch,
          shard,
          status: "failed",
          error: (e as Error).message,
          ms: performance.now() - t0,
        });
        throw e;
      }
    },
    {
      connection: redisOptions(url),
      concurrency: opts.concurrency ?? 1,
      lockDuration: lockMs,
      stalledInterval: Math.max(1000, lockMs / 2),
      maxStalledCount: 2,
    },
  );
  worker.on("error", () => undefined);
  return {
    worker,
    close: async () => {
      await worker.close();
      models.dispose();
    },
  };
}
