/**
 * `anr batch encode|eval`, `anr batch status`, `anr batch resume` and `anr worker`: a command over
 * many files, cut into shards, done in this process or by workers on a Redis queue (--queue).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { makeBatch, runBatchLocally } from "../batch/batch.js";
import { BatchQueue, startWorker, waitForBatch, type BatchProgress } from "../batch/queue.js";
import {
  doneShards,
  MANIFEST_FILE,
  readBatchSpec,
  shardCount,
  writeManifest,
  type BatchCommand,
  type BatchSpec,
} from "../batch/spec.js";
import type { WeightsChoice } from "../io/weights.js";
import { CheckFailed, UsageError } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import { defaultOut, done, type Outcome } from "./common.js";

/** Options of `anr batch encode|eval`. */
export interface BatchRunOptions {
  model: string;
  weights: WeightsChoice;
  out?: string;
  shardSize?: number;
  queue?: string;
  detach?: boolean;
  size?: [number, number];
  scale?: number;
  support?: number[];
  frames?: number;
  samples?: number;
}

/** The progress bar of a batch's shards, and its last state. */
function shardProgress(total: number): {
  update: (p: Omit<BatchProgress, "total" | "retrying"> & { retrying?: number }) => void;
  finish: () => void;
} {
  const bar = new Progress({ total, label: "shards", rate: { unit: "shards", per: 1 } });
  return {
    update: (p) =>
      bar.update(p.done + p.failed, {
        done: p.done,
        failed: p.failed,
        ...(p.retrying !== undefined ? { retrying: p.retrying } : {}),
      }),
    finish: () => bar.done(),
  };
}

/**
 * The shards of `spec` not yet done, done: here, or by the queue's workers (waiting for them
 * unless `detach`). Then the manifest, and the outcome; shards that failed for good are an error
 * (exit 1) after the manifest is written.
 */
async function carryOut(spec: BatchSpec, o: { queue?: string; detach?: boolean }): Promise<Outcome> {
  const total = shardCount(spec);
  let failed: Map<number, string>;
  if (!o.queue) {
    const bar = shardProgress(total);
    try {
      failed = await runBatchLocally(spec, bar.update);
    } finally {
      bar.finish();
    }
  } else {
    const q = new BatchQueue(o.queue);
    try {
      await q.saveSpec(spec);
      const already = await doneShards(spec);
      const pending = Array.from({ length: total }, (_, k) => k).filter((k) => !already.has(k));
      const queued = await q.enqueue(spec, pending);
      console.log(
        `queued ${queued} shard job(s) on ${o.queue} (${already.size} done, ${pending.length - queued} already queued)`,
      );
      if (o.detach) {
        console.log(`detached: follow it with anr batch status ${spec.id} --queue ${o.queue}`);
        return done({ batch: spec.id, out: spec.out, queued, detached: true });
      }
      const bar = shardProgress(total);
      try {
        failed = await waitForBatch(q, spec, bar.update);
      } finally {
        bar.finish();
      }
    } finally {
      await q.close();
    }
  }
  const manifest = await writeManifest(spec, await doneShards(spec));
  const t = manifest.totals;
  const quality =
    t.mean_psnr !== undefined
      ? `; mean PSNR ${t.mean_psnr.toFixed(2)} dB, SSIM ${t.mean_ssim!.toFixed(3)}`
      : "";
  console.log(
    `batch ${spec.id}: ${t.ok} of ${t.inputs} inputs ${{ encode: "encoded", eval: "evaluated", decode: "decoded", render: "rendered" }[spec.command]}${quality}; wrote ${join(spec.out, MANIFEST_FILE)}`,
  );
  const bad = manifest.items.filter((i) => i.status === "failed");
  for (const i of bad.slice(0, 10)) console.error(`anr: warning: ${i.input}: failed: ${i.error}`);
  if (bad.length > 10)
    console.error(`anr: warning: … and ${bad.length - 10} more failed inputs (see the manifest)`);
  if (failed.size)
    throw new CheckFailed(
      `batch ${spec.id}: ${failed.size} of ${total} shard(s) failed: ${[...failed]
        .slice(0, 5)
        .map(([k, e]) => `shard ${k}: ${e}`)
        .join("; ")}; anr batch resume ${spec.id}${o.queue ? ` --queue ${o.queue}` : ""} tries them again`,
    );
  return done({
    batch: spec.id,
    command: spec.command,
    out: spec.out,
    manifest: join(spec.out, MANIFEST_FILE),
    shards: total,
    totals: t,
    failed_inputs: bad.map((i) => ({ input: i.input, error: i.error })),
  });
}

/** `anr batch encode|eval INPUTS…`: make the batch, then carry it out. */
export async function cmdBatchRun(
  command: BatchCommand,
  inputs: string[],
  o: BatchRunOptions,
): Promise<Outcome> {
  const spec = await makeBatch({
    command,
    model: o.model,
    weights: o.weights,
    inputs,
    out: o.out ?? defaultOut(`batch-${command}`, inputs[0]!),
    ...(o.shardSize !== undefined ? { shardSize: o.shardSize } : {}),
    ...(o.size !== undefined ? { size: o.size } : {}),
    ...(o.scale !== undefined ? { scale: o.scale } : {}),
    ...(o.support !== undefined ? { support: o.support } : {}),
    ...(o.frames !== undefined ? { frames: o.frames } : {}),
    ...(o.samples !== undefined ? { samples: o.samples } : {}),
  });
  console.log(
    `batch ${spec.id}: ${command} of ${spec.inputs.length} input(s) in ${shardCount(spec)} shard(s) of ${spec.shard_size}, model ${spec.model}; folder ${spec.out}`,
  );
  return carryOut(spec, o);
}

/** A batch by its folder, or by its id (looked up on the queue). */
async function findBatch(which: string, queue: string | undefined): Promise<BatchSpec> {
  if (existsSync(which) || !/^b[0-9a-f]{16}$/.test(which)) return readBatchSpec(which);
  if (!queue)
    throw new UsageError(
      `${which}: a batch id is looked up on its queue: add --queue redis://HOST:PORT/DB, or give the batch folder`,
    );
  const q = new BatchQueue(queue);
  try {
    const spec = await q.findSpec(which);
    if (!spec) throw new UsageError(`${which}: no such batch on ${queue}`);
    return spec;
  } finally {
    await q.close();
  }
}

/** `anr batch status ID|FOLDER`: shards done, queued, retrying, failed; inputs ok and failed. */
export async function cmdBatchStatus(which: string, o: { queue?: string }): Promise<Outcome> {
  const spec = await findBatch(which, o.queue);
  const total = shardCount(spec);
  const records = await doneShards(spec);
  const pending = Array.from({ length: total }, (_, k) => k).filter((k) => !records.has(k));
  const states: Record<string, number> = {};
  let failures = new Map<number, string>();
  if (o.queue) {
    const q = new BatchQueue(o.queue);
    try {
      for (const s of (await q.states(spec, pending)).values()) states[s] = (states[s] ?? 0) + 1;
      failures = await q.failures(spec, pending);
    } finally {
      await q.close();
    }
  }
  const items = [...records.values()].flatMap((r) => r.items);
  const failedItems = items.filter((i) => i.status === "failed");
  console.log(
    `batch ${spec.id} (${spec.command}, ${spec.inputs.length} inputs, model ${spec.model}), folder ${spec.out}`,
  );
  console.log(
    `shards: ${records.size} of ${total} done${
      o.queue
        ? `; ${
            Object.entries(states)
              .map(([s, n]) => `${n} ${s}`)
              .join(", ") || "none queued"
          }`
        : `; ${pending.length} not done`
    }`,
  );
  console.log(
    `inputs: ${items.length - failedItems.length} ok, ${failedItems.length} failed, ${spec.inputs.length - items.length} pending`,
  );
  for (const [k, e] of failures) console.log(`shard ${k} failed: ${e}`);
  for (const i of failedItems) console.log(`${i.input}: ${i.error}`);
  return done({
    batch: spec.id,
    out: spec.out,
    shards: { total, done: records.size, ...states },
    inputs: { total: spec.inputs.length, ok: items.length - failedItems.length, failed: failedItems.length },
    complete: records.size === total,
  });
}

/** `anr batch resume ID|FOLDER`: whatever is not done, done again (queued again with --queue). */
export async function cmdBatchResume(
  which: string,
  o: { queue?: string; detach?: boolean },
): Promise<Outcome> {
  const spec = await findBatch(which, o.queue);
  console.log(
    `batch ${spec.id}: resuming ${spec.command} of ${spec.inputs.length} input(s), folder ${spec.out}`,
  );
  return carryOut(spec, o);
}

/** `anr worker --queue URL`: do shard jobs until SIGINT or SIGTERM, then finish the ones in hand. */
export async function cmdWorker(o: {
  queue: string;
  concurrency?: number;
  lockSeconds?: number;
}): Promise<Outcome> {
  let jobs = 0;
  let failures = 0;
  const w = startWorker(o.queue, {
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
    ...(o.lockSeconds !== undefined ? { lockSeconds: o.lockSeconds } : {}),
    onJob: (e) => {
      if (e.status === "started") return console.log(`batch ${e.batch} shard ${e.shard}: started`);
      jobs++;
      if (e.status === "failed") failures++;
      const what =
        e.status === "failed" ? `failed (${e.error})` : e.status === "skipped" ? "already done" : "done";
      console.log(`batch ${e.batch} shard ${e.shard}: ${what} in ${(e.ms / 1000).toFixed(1)} s`);
    },
  });
  console.log(`worker ${process.pid}: taking shard jobs from ${o.queue} (Ctrl-C or SIGTERM to stop)`);
  await w.worker.waitUntilReady();
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  console.log(`worker ${process.pid}: ${signal}: finishing the jobs in hand`);
  await w.close();
  return done({ queue: o.queue, jobs, failed: failures });
}
