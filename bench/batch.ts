/**
 * `npm run bench:batch`: encode throughput of `anr batch` in this machine's three set-ups, and
 * what the queue costs per job. Each round, in turn: the batch in one process (`anr batch encode`
 * without --queue, all cores), then through a Redis queue with one worker (all cores), then with
 * two workers (half the cores each). Every measurement is a fresh batch folder and a fresh
 * redis-server; the workers are started and ready before the clock starts, and the clock stops
 * when the submitter exits (its manifest written). Images/s is over the whole batch, model loading
 * and compilation included, as a user sees it; the queue's cost per job is (one worker − in
 * process) / shards.
 *
 * Flags: --images N (192), --shard-size S (16), --rounds R (3), --out FILE (reports/bench-batch-<time>.json).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { writeFileAtomic } from "../src/util/fs.js";
import { loadNow, machine, ROOT } from "./harness.js";
import { median, range } from "./stats.js";

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "192" },
    "shard-size": { type: "string", default: "16" },
    rounds: { type: "string", default: "3" },
    out: { type: "string" },
  },
});
const IMAGES = Number(values.images);
const SHARD = Number(values["shard-size"]);
const ROUNDS = Number(values.rounds);
const MODEL = "demo-photos-anr";
const CORES = availableParallelism();
const OUT =
  values.out ?? join(ROOT, "reports", `bench-batch-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);

function anr(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", join(ROOT, "src", "cli", "run.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function waitLine(p: ChildProcess, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    const on = (d: Buffer) => {
      text += d.toString();
      if (re.test(text)) resolve();
    };
    p.stdout?.on("data", on);
    p.stderr?.on("data", on);
    p.once("exit", () => reject(new Error(`exited before ${re}: ${text}`)));
  });
}

function exit(p: ChildProcess): Promise<number> {
  return new Promise((resolve) => p.once("exit", (code) => resolve(code ?? -1)));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One timed batch: the submitter's wall time, with `workers` worker processes (0: in process). */
async function measure(work: string, inputs: string, workers: number, tag: string) {
  const out = join(work, `out-${tag}`);
  const loadBefore = loadNow();
  let redis: ChildProcess | null = null;
  const ws: ChildProcess[] = [];
  const args = ["batch", "encode", inputs, "--model", MODEL, "--out", out, "--shard-size", String(SHARD)];
  try {
    if (workers > 0) {
      const port = await freePort();
      const data = join(work, `redis-${tag}`);
      await mkdir(data);
      redis = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", data],
        {
          stdio: ["ignore", "pipe", "ignore"],
        },
      );
      await waitLine(redis, /Ready to accept connections/);
      const url = `redis://127.0.0.1:${port}/0`;
      const threads = String(Math.max(1, Math.floor(CORES / workers)));
      for (let i = 0; i < workers; i++) ws.push(anr(["worker", "--queue", url], { ANR_THREADS: threads }));
      await Promise.all(ws.map((w) => waitLine(w, /taking shard jobs/)));
      args.push("--queue", url);
    }
    const t0 = performance.now();
    const code = await exit(anr(args));
    const wall = (performance.now() - t0) / 1000;
    if (code !== 0) throw new Error(`${tag}: anr batch encode exited with ${code}`);
    return {
      tag,
      workers,
      wall_s: wall,
      images_per_s: IMAGES / wall,
      load_before: loadBefore,
      load_after: loadNow(),
    };
  } finally {
    for (const w of ws) w.kill("SIGTERM");
    await Promise.all(ws.map(exit));
    if (redis) {
      redis.kill("SIGKILL");
      await exit(redis);
    }
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "anr-bench-batch-"));
  try {
    const inputs = join(work, "inputs");
    await mkdir(inputs);
    // Photos-like inputs of the model's scale: smooth colour fields with noise, 48×40.
    for (let i = 0; i < IMAGES; i++) {
      const px = Buffer.alloc(48 * 40 * 3);
      for (let k = 0; k < px.length; k++) px[k] = (k * (i + 7) + ((k * 2654435761) >>> 24)) & 255;
      await sharp(px, { raw: { width: 48, height: 40, channels: 3 } })
        .png()
        .toFile(join(inputs, `img-${String(i).padStart(4, "0")}.png`));
    }
    const shards = Math.ceil(IMAGES / SHARD);
    console.error(
      `bench:batch: ${IMAGES} images, ${shards} shards of ${SHARD}, ${ROUNDS} rounds, ${CORES} cores, model ${MODEL}`,
    );
    const runs: ({ round: number } & Awaited<ReturnType<typeof measure>>)[] = [];
    for (let round = 1; round <= ROUNDS; round++)
      for (const workers of [0, 1, 2]) {
        const r = await measure(work, inputs, workers, `r${round}-w${workers}`);
        console.error(
          `round ${round}, ${workers ? `${workers} worker(s)` : "in process"}: ${r.wall_s.toFixed(1)} s, ${r.images_per_s.toFixed(1)} images/s (load ${r.load_before[0]}→${r.load_after[0]})`,
        );
        runs.push({ round, ...r });
      }
    const by = (w: number) => runs.filter((r) => r.workers === w);
    const summary = [0, 1, 2].map((w) => {
      const xs = by(w).map((r) => r.images_per_s);
      return { workers: w, images_per_s_median: median(xs), images_per_s_range: range(xs) };
    });
    const overhead = by(1).map((r) => (r.wall_s - by(0).find((x) => x.round === r.round)!.wall_s) / shards);
    const record = {
      machine: machine(),
      images: IMAGES,
      shard_size: SHARD,
      shards,
      rounds: ROUNDS,
      runs,
      summary,
      queue_overhead_s_per_job: { median: median(overhead), range: range(overhead) },
    };
    await mkdir(join(ROOT, "reports"), { recursive: true });
    await writeFileAtomic(OUT, JSON.stringify(record, null, 1) + "\n");
    console.log(`\n${record.machine.cpu_model}, ${CORES} cores, commit ${record.machine.commit}`);
    console.log("\n| set-up | images/s: median [range over rounds] |\n|---|---|");
    for (const s of summary)
      console.log(
        `| ${s.workers ? `queue, ${s.workers} worker(s) × ${Math.max(1, Math.floor(CORES / s.workers))} thread(s)` : `in process, ${CORES} threads`} | ${s.images_per_s_median.toFixed(1)} [${s.images_per_s_range.map((x) => x.toFixed(1)).join("–")}] |`,
      );
    console.log(
      `\nqueue overhead per job (one worker − in process, per shard): ${record.queue_overhead_s_per_job.median.toFixed(3)} s [${record.queue_overhead_s_per_job.range.map((x) => x.toFixed(3)).join("–")}]`,
    );
    console.log(`JSON record: ${relative(process.cwd(), OUT)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
