/**
 * `anr batch` and `anr worker`: the same batch done in this process and by 1, 2 and 3 worker
 * processes on a real Redis (Debian's redis-server, started here on a free port) gives the same
 * bytes; a worker killed with SIGKILL mid-batch, Redis restarted mid-batch and a submitter killed
 * and resumed all end the same way; a corrupt image is recorded as failed, with its path and
 * error, and the rest of its shard completes.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { Anr } from "../src/api/node.js";
import { tokensFromBytes } from "../src/io/tokens.js";
import type { Manifest, ShardRecord } from "../src/batch/spec.js";
import { REPO, runCli, tempDir, writePhoto } from "./cli-helpers.js";
import { skipWithoutData } from "./fixtures.js";

const MODEL = "demo-photos-anr";
/** A queued batch that waits for ever (a lost job never queued again) fails rather than hangs. */
/** A test that needs Debian's redis-server: skipped, with the reason, where it is not installed. */
function queueTest(name: string, body: () => Promise<void>): void {
  test(name, { timeout: 120_000 }, async (t) => {
    if (skipWithoutData(t, redisAvailable, "redis-server (apt-get install redis-server)")) return;
    await body();
  });
}
const SHARD_SIZE = "3";

/** Every file of a batch folder (lock-free names only), path → bytes. */
async function folderBytes(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else out.set(`${rel}${e.name}`, await readFile(join(d, e.name)));
    }
  };
  await walk(dir, "");
  return out;
}

/** 12 photos of two sizes and one file that is not an image, in a folder. */
async function inputsFolder(dir: string): Promise<{ folder: string; corrupt: string }> {
  const folder = join(dir, "inputs");
  await mkdir(join(folder, "b"), { recursive: true });
  for (let i = 0; i < 12; i++)
    await writePhoto(
      join(folder, i < 6 ? "" : "b", `p${String(i).padStart(2, "0")}.png`),
      40 + (i % 3) * 8,
      36,
      i,
    );
  const corrupt = join(folder, "b", "p06x.png");
  await writeFile(corrupt, "this is not a PNG file");
  return { folder, corrupt };
}

let redisAvailable = false;
before(() => {
  redisAvailable = spawnSync("redis-server", ["--version"]).status === 0;
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/**
 * A redis-server of our own on `port`, once it accepts connections; `persistent`: its data kept
 * in an append-only file in `dir` (else a restart loses every job).
 */
function startRedis(port: number, dir: string, persistent = true): Promise<ChildProcess> {
  const p = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      persistent ? "yes" : "no",
      "--appendfsync",
      "always",
      "--dir",
      dir,
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  return new Promise((resolve, reject) => {
    let text = "";
    p.stdout!.on("data", (d: Buffer) => {
      text += d.toString();
      if (/Ready to accept connections/.test(text)) resolve(p);
    });
    p.once("exit", () => reject(new Error(`redis-server on port ${port} exited: ${text}`)));
  });
}

function stop(p: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once("exit", () => resolve());
    p.kill(signal);
  });
}

/** The exit code of `p`, or null if it is still running after `ms` (then it is killed). */
function exitWithin(p: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve(p.exitCode);
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      resolve(null);
    }, ms);
    p.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** `anr …` in a child process that runs until stopped; its output so far, and a wait for a line. */
function startAnr(args: string[]): {
  child: ChildProcess;
  output: () => string;
  waitFor: (re: RegExp) => Promise<void>;
} {
  const child = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), join(REPO, "src", "cli", "run.ts"), ...args],
    {
      cwd: REPO,
      env: { ...process.env, ANR_THREADS: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let text = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of [...waiters])
      if (w.re.test(text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  return {
    child,
    output: () => text,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(text)) return resolve();
        waiters.push({ re, resolve });
        child.once("exit", () =>
          re.test(text) ? resolve() : reject(new Error(`exited before ${re}: ${text}`)),
        );
      }),
  };
}

let work = "";
/** `anr batch encode` of the test inputs into the batch folder, in shards of 3 (or `shardSize`). */
const encodeArgs = (shardSize = SHARD_SIZE) => [
  ...["batch", "encode", inputs.folder, "--model", MODEL],
  ...["--out", OUT(), "--shard-size", shardSize],
];
let inputs: { folder: string; corrupt: string };
/** The batch done in this process, in the folder every scenario then uses: its files. */
let reference: Map<string, Buffer>;
const OUT = () => join(work, "batch");

before(async () => {
  work = await mkdtemp(join(tmpdir(), "anr-batch-"));
  inputs = await inputsFolder(work);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

test("batch encode in this process: one token file and record per shard, the corrupt file failed alone, a manifest of every input; again: nothing redone", async () => {
  const r = await runCli(encodeArgs());
  assert.equal(r.code, 0, r.err);
  reference = await folderBytes(OUT());
  const manifest = JSON.parse(reference.get("manifest.json")!.toString()) as Manifest;
  assert.equal(manifest.shards, 5);
  assert.deepEqual(manifest.missing_shards, []);
  assert.deepEqual(manifest.totals, { inputs: 13, ok: 12, failed: 1, pending: 0 });
  // Every input once, in order, with its shard; the corrupt one failed with its path and why.
  const names = manifest.items.map((i) => i.input);
  assert.deepEqual(names, [...names].sort());
  assert.equal(names.length, 13);
  const bad = manifest.items.find((i) => i.status === "failed")!;
  assert.equal(bad.input, "b/p06x.png");
  assert.match(
    bad.error!,
    new RegExp(`${inputs.corrupt.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: cannot decode image`),
  );
  assert.match(r.err, /b\/p06x\.png: failed/);
  // The checksums are the inputs' bytes', and each token row is what the model encodes alone.
  using model = await Anr.load(MODEL);
  for (const item of manifest.items) {
    const bytes = await readFile(join(inputs.folder, item.input));
    assert.equal(item.sha256, createHash("sha256").update(bytes).digest("hex"), item.input);
    assert.equal(item.shard, Math.floor(names.indexOf(item.input) / 3));
    if (item.status !== "ok") continue;
    const tokens = tokensFromBytes(reference.get(item.tokens!)!, item.tokens!);
    assert.equal(tokens.names[item.index!], item.input);
    const alone = await model.encode(join(inputs.folder, item.input));
    for (const [k, t] of alone.tensors) {
      const per = t.data.length;
      const row = tokens.tensors.get(k)!.data.subarray(item.index! * per, (item.index! + 1) * per);
      let diff = 0;
      for (let i = 0; i < per; i++) diff = Math.max(diff, Math.abs(row[i]! - t.data[i]!));
      assert.ok(diff <= 1e-5, `${item.input} ${k}: ${diff}`);
    }
  }
  // The shard with the corrupt file still encoded its other two inputs.
  const record = JSON.parse(reference.get(`shards/0000${bad.shard}.json`)!.toString()) as ShardRecord;
  assert.deepEqual(
    record.items.map((i) => [i.input, i.status]),
    [
      ["b/p06.png", "ok"],
      ["b/p06x.png", "failed"],
      ["b/p07.png", "ok"],
    ],
  );
  // The same command again computes nothing and changes nothing: no shard file is even rewritten.
  const shardTimes = async () =>
    Promise.all(
      (await readdir(join(OUT(), "shards"))).map(async (f) => [
        f,
        (await stat(join(OUT(), "shards", f))).mtimeMs,
      ]),
    );
  const before = await shardTimes();
  const again = await runCli(encodeArgs());
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(await folderBytes(OUT()), reference);
  assert.deepEqual(await shardTimes(), before);
  // A worker handed a shard that is already done (its job retried after the record was written)
  // computes and writes nothing either.
  const { ModelCache, runShard } = await import("../src/batch/shard.js");
  const { readBatchSpec } = await import("../src/batch/spec.js");
  const models = new ModelCache();
  try {
    const again0 = await runShard(await readBatchSpec(OUT()), 0, models);
    assert.equal(again0.computed, false);
  } finally {
    models.dispose();
  }
  assert.deepEqual(await shardTimes(), before);
  // A shard whose token file is lost (or damaged) is not done: status says so, resume redoes it.
  await rm(join(OUT(), "shards", "00001.safetensors"));
  const status = await runCli(["batch", "status", OUT()]);
  assert.match(status.out, /shards: 4 of 5 done; 1 not done/);
  const resumed = await runCli(["batch", "resume", OUT()]);
  assert.equal(resumed.code, 0, resumed.err);
  assert.deepEqual(await folderBytes(OUT()), reference);
  // Another batch into the same folder is refused.
  const other = await runCli(encodeArgs("4"));
  assert.equal(other.code, 2);
  assert.match(other.err, /batch\.json: holds batch b[0-9a-f]{16} \(encode, 13 inputs/);
  assert.deepEqual(await folderBytes(OUT()), reference);
});

/** Redoes the batch in a fresh copy of its folder (only batch.json kept), with `run`; then compares. */
async function sameBytesAfter(what: string, run: (url: string) => Promise<void>): Promise<void> {
  await rm(OUT(), { recursive: true, force: true });
  await mkdir(OUT());
  await writeFile(join(OUT(), "batch.json"), reference.get("batch.json")!);
  const port = await freePort();
  const data = join(work, `redis-${port}`);
  await mkdir(data);
  const redis = await startRedis(port, data);
  try {
    await run(`redis://127.0.0.1:${port}/0`);
  } finally {
    await stop(redis, "SIGKILL");
  }
  const got = await folderBytes(OUT());
  assert.deepEqual([...got.keys()].sort(), [...reference.keys()].sort(), what);
  for (const [k, v] of reference) assert.ok(got.get(k)!.equals(v), `${what}: ${k} differs`);
}

const submit = (url: string, extra: string[] = []) => runCli([...encodeArgs(), "--queue", url, ...extra]);

for (const n of [1, 2, 3])
  queueTest(
    `batch encode --queue with ${n} worker process(es): the same bytes as in this process`,
    async () => {
      assert.ok(reference, "the in-process batch ran first");
      await sameBytesAfter(`${n} workers`, async (url) => {
        const workers = Array.from({ length: n }, () =>
          startAnr(["worker", "--queue", url, "--lock-seconds", "3"]),
        );
        try {
          const r = await submit(url);
          assert.equal(r.code, 0, r.err);
          assert.match(r.out, /queued 5 shard job\(s\)/);
          // Every shard was done by some worker, each once (none was computed twice).
          const lines = workers.flatMap((w) => w.output().match(/shard \d+: done/g) ?? []);
          assert.equal(lines.length, 5, workers.map((w) => w.output()).join("\n"));
        } finally {
          await Promise.all(workers.map((w) => stop(w.child)));
        }
      });
    },
  );

queueTest(
  "a worker killed with SIGKILL mid-batch: its shard is taken over, the batch completes with the same bytes",
  async () => {
    await sameBytesAfter("SIGKILL", async (url) => {
      const victim = startAnr(["worker", "--queue", url, "--lock-seconds", "2"]);
      const survivor = startAnr(["worker", "--queue", url, "--lock-seconds", "2"]);
      try {
        const submitted = submit(url);
        // Once the victim has done a shard and started the next, kill it there (a shard takes
        // hundreds of milliseconds; the kill follows its "started" line within a few).
        await victim.waitFor(/shard \d+: done[\s\S]*shard \d+: started/);
        victim.child.kill("SIGKILL");
        const held = [...victim.output().matchAll(/shard (\d+): started/g)].at(-1)![1]!;
        const r = await submitted;
        assert.equal(r.code, 0, r.err);
        assert.doesNotMatch(victim.output(), new RegExp(`shard ${held}: done`), "killed before it finished");
        assert.match(
          survivor.output(),
          new RegExp(`shard ${held}: done`),
          "the survivor took the shard over",
        );
      } finally {
        await Promise.all([stop(victim.child), stop(survivor.child)]);
      }
    });
  },
);

for (const persistent of [true, false])
  queueTest(
    `Redis restarted mid-batch${persistent ? "" : " with its data lost"}: the batch completes with the same bytes`,
    async () => {
      await rm(OUT(), { recursive: true, force: true });
      await mkdir(OUT());
      await writeFile(join(OUT(), "batch.json"), reference.get("batch.json")!);
      const port = await freePort();
      const data = join(work, `redis-restart-${port}`);
      await mkdir(data);
      const url = `redis://127.0.0.1:${port}/0`;
      let redis = await startRedis(port, data, persistent);
      const worker = startAnr(["worker", "--queue", url, "--lock-seconds", "3"]);
      // The submitter in a process of its own: one that waits for ever is killed at the deadline
      // (and the test fails) rather than keeping this test file alive.
      const submitter = startAnr([...encodeArgs(), "--queue", url]);
      try {
        await worker.waitFor(/shard \d+: done/);
        await stop(redis, "SIGKILL");
        const doneAtRestart = (await readdir(join(OUT(), "shards"))).filter((f) =>
          f.endsWith(".json"),
        ).length;
        assert.ok(doneAtRestart < 5, `Redis went away mid-batch (${doneAtRestart} of 5 shards done)`);
        await new Promise((r) => setTimeout(r, 1500));
        redis = await startRedis(port, data, persistent);
        // Without its data, the queue has forgotten every job: the submitter queues the missing again.
        const code = await exitWithin(submitter.child, 90_000);
        assert.equal(code, 0, submitter.output());
        assert.match(submitter.output(), /12 of 13 inputs encoded/);
      } finally {
        await Promise.all([stop(submitter.child, "SIGKILL"), stop(worker.child)]);
        await stop(redis, "SIGKILL");
      }
      const got = await folderBytes(OUT());
      for (const [k, v] of reference)
        assert.ok(got.get(k)?.equals(v), `Redis restart: ${k} differs or is missing`);
    },
  );

queueTest(
  "the submitter killed: batch status names what is done, batch resume ID finishes it with the same bytes",
  async () => {
    await sameBytesAfter("resume", async (url) => {
      const submitter = startAnr([...encodeArgs(), "--queue", url]);
      await submitter.waitFor(/queued 5 shard job\(s\)/);
      submitter.child.kill("SIGKILL");
      const id = /batch (b[0-9a-f]{16})/.exec(submitter.output())![1]!;
      const status = await runCli(["batch", "status", id, "--queue", url]);
      assert.equal(status.code, 0, status.err);
      assert.match(status.out, /shards: 0 of 5 done; 5 queued/);
      const worker = startAnr(["worker", "--queue", url, "--lock-seconds", "3"]);
      try {
        const r = await runCli(["batch", "resume", id, "--queue", url]);
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /12 of 13 inputs encoded/);
      } finally {
        await stop(worker.child);
      }
      const done = await runCli(["batch", "status", OUT()]);
      assert.match(done.out, /shards: 5 of 5 done/);
      assert.match(done.out, /inputs: 12 ok, 1 failed, 0 pending/);
    });
  },
);

test("batch: bad requests are usage errors naming what is wrong, and write nothing", async (t) => {
  const dir = await tempDir(t, "batch-usage");
  for (const [args, problem] of [
    [
      ["batch", "encode", join(dir, "nothing-here"), "--model", MODEL],
      /nothing-here: no such file or folder/,
    ],
    [["batch", "encode", inputs.folder, "--model", MODEL, "--shard-size", "0"], /--shard-size/],
    [
      ["batch", "eval", inputs.folder, "--model", "multiview-nerf-anr", "--out", join(dir, "x")],
      /view-synthesis model/,
    ],
    [
      [
        "batch",
        "encode",
        inputs.folder,
        "--model",
        MODEL,
        "--queue",
        "http://localhost",
        "--out",
        join(dir, "y"),
      ],
      /--queue http:\/\/localhost: expected a redis:\/\/ URL/,
    ],
    [["batch", "status", "b0123456789abcdef"], /a batch id is looked up on its queue: add --queue/],
  ] as const) {
    const r = await runCli([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, problem, args.join(" "));
  }
  assert.equal(existsSync(join(dir, "x")), false);
});

test("batch eval: PSNR and SSIM of every readable input, the corrupt one failed; the manifest's means are the items'", async (t) => {
  const out = join(await tempDir(t, "batch-eval"), "eval");
  const r = await runCli([
    "batch",
    "eval",
    inputs.folder,
    "--model",
    MODEL,
    "--out",
    out,
    "--shard-size",
    "5",
  ]);
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
  const ok = m.items.filter((i) => i.status === "ok");
  assert.equal(ok.length, 12);
  assert.ok(ok.every((i) => Number.isFinite(i.psnr) && i.psnr! > 5 && i.ssim! > -1 && i.ssim! <= 1));
  assert.ok(
    Math.abs(m.totals.mean_psnr! - ok.reduce((s, i) => s + i.psnr!, 0) / ok.length) < 1e-12,
    "mean PSNR",
  );
  // Each figure is that of the model's own encode and decode of the input, against the input as
  // the model prepares it.
  using model = await Anr.load(MODEL);
  for (const item of ok.slice(0, 3)) {
    const path = join(inputs.folder, item.input);
    const decoded = await model.decode(await model.encode(path));
    const truth = model.prepare(await model.read(path));
    let se = 0;
    for (let i = 0; i < truth.data.length; i++) se += (decoded.data[i]! - truth.data[i]!) ** 2;
    assert.ok(Math.abs(item.psnr! - -10 * Math.log10(se / truth.data.length)) < 1e-4, item.input);
  }
  // Eval writes no token files.
  assert.equal((await readdir(join(out, "shards"))).filter((f) => f.endsWith(".safetensors")).length, 0);
});

test("batch decode: every instance of every token file as the model decodes it; a file that is not a token file fails alone", async (t) => {
  assert.ok(reference, "the in-process batch ran first");
  const dir = await tempDir(t, "batch-decode");
  const tokensDir = join(dir, "tokens");
  await mkdir(tokensDir);
  const manifest = JSON.parse(reference.get("manifest.json")!.toString()) as Manifest;
  const files = [...new Set(manifest.items.flatMap((i) => (i.tokens ? [i.tokens] : [])))];
  for (const f of files) await writeFile(join(tokensDir, f.replace("shards/", "")), reference.get(f)!);
  await writeFile(join(tokensDir, "zz-broken.safetensors"), "not safetensors");
  const out = join(dir, "decoded");
  const r = await runCli([
    "batch",
    "decode",
    tokensDir,
    "--model",
    MODEL,
    "--scale",
    "2",
    "--out",
    out,
    "--shard-size",
    "2",
  ]);
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
  assert.deepEqual(m.totals, { inputs: 6, ok: 5, failed: 1, pending: 0 });
  assert.match(m.items.find((i) => i.status === "failed")!.error!, /zz-broken\.safetensors: /);
  using model = await Anr.load(MODEL);
  const { pngBytes } = await import("../src/data/image.js");
  let pictures = 0;
  for (const item of m.items.filter((i) => i.status === "ok")) {
    const tokens = tokensFromBytes(await readFile(join(tokensDir, item.input)), item.input);
    assert.equal(item.outputs!.length, tokens.names.length);
    for (const [k, file] of item.outputs!.entries()) {
      assert.equal(
        file,
        `decoded/${item.input.replace(".safetensors", "")}/${tokens.names[k]!.replace(".png", "")}.png`,
      );
      const expected = await pngBytes(await model.decode(tokens, { index: k, scale: 2 }));
      assert.ok((await readFile(join(out, file))).equals(expected), file);
      pictures++;
    }
  }
  assert.equal(pictures, 12);
});

test("a batch's model file replaced by other weights: its shards fail naming both fingerprints, nothing is written", async (t) => {
  const dir = await tempDir(t, "batch-model-changed");
  const modelFile = join(dir, "model.safetensors");
  await writeFile(modelFile, await readFile(join(REPO, "models", "demo-photos-anr.safetensors")));
  const out = join(dir, "out");
  // The batch is made (its spec written) with one model, then the file changes before it runs.
  const { makeBatch } = await import("../src/batch/batch.js");
  const spec = await makeBatch({
    command: "encode",
    model: modelFile,
    inputs: [inputs.folder],
    out,
    shardSize: 5,
  });
  await writeFile(modelFile, await readFile(join(REPO, "models", "twemoji32-anr.safetensors")));
  const r = await runCli(["batch", "resume", out]);
  assert.equal(r.code, 1, r.err);
  assert.match(
    r.err,
    new RegExp(
      `3 of 3 shard\\(s\\) failed: shard 0: .*model\\.safetensors: holds weights \\S+, but the batch was made with weights ${spec.model_fingerprint}`,
    ),
  );
  assert.deepEqual((await readdir(out)).sort(), ["batch.json", "manifest.json"]);
});

test("batch render: an orbit of every object, frame for frame what anr render gives; a folder that is no object fails alone", async (t) => {
  const dir = await tempDir(t, "batch-render");
  const objects = join(dir, "objects");
  await mkdir(objects);
  const names = (await readdir(join(REPO, "data", "multiview", "objects"), { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
    .slice(0, 2);
  for (const n of names)
    await cp(join(REPO, "data", "multiview", "objects", n), join(objects, n), { recursive: true });
  // A folder that looks like an object but whose views are missing.
  await mkdir(join(objects, "zz-broken"));
  await writeFile(
    join(objects, "zz-broken", "transforms.json"),
    '{"camera_angle_x": 0.7, "frames": [{"file_path": "./r_0", "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]}]}',
  );
  const out = join(dir, "rendered");
  const flags = ["--frames", "2", "--samples", "8"];
  const r = await runCli([
    "batch",
    "render",
    objects,
    "--model",
    "multiview-nerf-anr",
    "--out",
    out,
    "--shard-size",
    "2",
    ...flags,
  ]);
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
  assert.deepEqual(m.totals, { inputs: 3, ok: 2, failed: 1, pending: 0 });
  assert.match(m.items.find((i) => i.status === "failed")!.error!, /zz-broken/);
  for (const n of names) {
    const item = m.items.find((i) => i.input === n)!;
    assert.deepEqual(item.outputs, [`rendered/${n}/frame-000.png`, `rendered/${n}/frame-001.png`]);
    const single = join(dir, `single-${n}`);
    const s = await runCli([
      "render",
      "--model",
      "multiview-nerf-anr",
      "--views",
      join(objects, n),
      "--support",
      "0,1,2",
      "--poses",
      "orbit",
      ...flags,
      "--out",
      single,
    ]);
    assert.equal(s.code, 0, s.err);
    for (const [k, f] of item.outputs!.entries())
      assert.ok(
        (await readFile(join(out, f))).equals(
          await readFile(join(single, `frame-${String(k).padStart(3, "0")}.png`)),
        ),
        `${f} is anr render's frame ${k}`,
      );
  }
});
