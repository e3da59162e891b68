/**
 * Fault injection: each test is one way a careless or hostile user (or a crash) could lose data or
 * get a silently wrong result, and asserts the guarded behaviour (issue 10's cases, named by their
 * ids: W3, N3, W2, …).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { initHostParams } from "../src/model/params.js";
import { serializeSafetensors } from "../src/io/safetensors.js";
import {
  CONFIG_METADATA_KEY,
  NonFiniteWeightsError,
  modelFromBytes,
  modelToBytes,
} from "../src/io/weights.js";
import { loadModel, saveModel } from "../src/io/files.js";
import { FolderLockedError, LOCK_FILE, lockFolder } from "../src/util/lock.js";
import { removeStaleTemporaries } from "../src/util/fs.js";
import { runCli, tempDir, writePhoto } from "./cli-helpers.js";

const config = parseHyperNetworkConfig(MODEL_PRESETS["tiny32-anr"]!.config, "tiny32-anr");

/** Good weights with `count` values of tensor number `which` (in file order) set to `value`. */
function poisoned(which: number, count: number, value: number) {
  const weights = initHostParams(config, 1);
  const [key, t] = [...weights][which]!;
  for (let i = 0; i < count; i++) t.data[i * 3] = value;
  return { weights, key };
}

/** Model-file bytes written without our writer's checks, as another tool could. */
function rawModelBytes(weights: Map<string, { shape: number[]; data: Float32Array }>): Uint8Array {
  return serializeSafetensors(weights, { [CONFIG_METADATA_KEY]: JSON.stringify(config) });
}

test("N3: non-finite weights are never written, and the old model file stays", async (t) => {
  const dir = await tempDir(t, "nan-save");
  const path = join(dir, "model.safetensors");
  await saveModel(path, config, initHostParams(config, 1));
  const { weights, key } = poisoned(2, 4, Number.NaN);
  assert.throws(
    () => modelToBytes(config, weights, {}, "m.safetensors"),
    (e: unknown) =>
      e instanceof NonFiniteWeightsError &&
      e.exitCode === 2 &&
      e.message.startsWith("m.safetensors: non-finite weights") &&
      e.message.includes(`${key} (4 of `),
  );
  await assert.rejects(saveModel(path, config, weights), NonFiniteWeightsError);
  const kept = await loadModel(path);
  assert.ok(
    [...kept.weights.values()].every((w) => w.data.every(Number.isFinite)),
    "the good model is intact",
  );
  assert.deepEqual(await readdir(dir), ["model.safetensors"], "no temporary file left");
});

test("W3: a model file holding NaN or Infinity is refused at load, naming each bad tensor", async (t) => {
  const nan = poisoned(0, 2, Number.NaN);
  const inf = poisoned(5, 1, Number.POSITIVE_INFINITY);
  const both = nan.weights;
  both.set(inf.key, inf.weights.get(inf.key)!);
  assert.throws(
    () => modelFromBytes(rawModelBytes(both), "bad.safetensors"),
    (e: unknown) => {
      assert.ok(e instanceof NonFiniteWeightsError);
      assert.deepEqual(
        e.tensors.map((b) => [b.key, b.nonFinite]),
        [
          [nan.key, 2],
          [inf.key, 1],
        ],
      );
      return true;
    },
  );
  // Through the CLI: encode stops with exit 2 and writes nothing (it used to write black images).
  const dir = await tempDir(t, "nan-encode");
  await writeFile(join(dir, "bad.safetensors"), rawModelBytes(both));
  await writePhoto(join(dir, "photo.png"), 32, 32);
  const r = await runCli([
    "encode",
    join(dir, "photo.png"),
    "--model",
    join(dir, "bad.safetensors"),
    "--out",
    join(dir, "tokens.safetensors"),
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /bad\.safetensors: non-finite weights .* in 2 tensors/);
  assert.ok(r.err.includes(nan.key) && r.err.includes(inf.key), r.err);
  assert.deepEqual((await readdir(dir)).sort(), ["bad.safetensors", "photo.png"]);
});

test("W2: two same-shape tensors whose data were swapped in a model file are refused", () => {
  const weights = initHostParams(config, 1);
  const bytes = modelToBytes(config, weights);
  // Swap the data of the first two tensors of equal shape, keeping the header: the file stays
  // valid by the format's rules, and only the checksum can tell.
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { shape?: number[]; data_offsets?: [number, number] }
  >;
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__");
  const [a, b] = (() => {
    for (const [i, [, x]] of entries.entries())
      for (const [, y] of entries.slice(i + 1))
        if (JSON.stringify(x.shape) === JSON.stringify(y.shape)) return [x, y];
    throw new Error("the preset has no two tensors of equal shape");
  })();
  const swapped = bytes.slice();
  const base = 8 + n;
  const [a0, a1] = a.data_offsets!;
  const [b0, b1] = b.data_offsets!;
  swapped.set(bytes.subarray(base + b0, base + b1), base + a0);
  swapped.set(bytes.subarray(base + a0, base + a1), base + b0);
  assert.throws(
    () => modelFromBytes(swapped, "swapped.safetensors"),
    /^SafetensorsError: swapped\.safetensors: checksum mismatch/,
  );
});

/** The pid of a process that has exited: no process runs under it (until the pid is reused). */
function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString(),
  );
}

/** A lock file's contents for holder `pid` on `host`. */
const lockHolder = (pid: number, host: string) =>
  JSON.stringify({ pid, host, since: "2026-01-01T00:00:00.000Z", purpose: "anr train" });

test("R9: a folder lock admits one holder; a dead holder's lock is taken over at once; another host's never", async (t) => {
  const dir = await tempDir(t, "lock");
  const first = await lockFolder(dir, "anr train");
  await assert.rejects(lockFolder(dir, "anr train"), (e: unknown) => {
    assert.ok(e instanceof FolderLockedError);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, new RegExp(`in use by anr train \\(pid ${process.pid} on `));
    assert.ok(e.message.includes(join(dir, LOCK_FILE)), "says which file to delete");
    return true;
  });
  await first.release();
  await first.release();
  const second = await lockFolder(dir, "anr train");
  await second.release();
  assert.deepEqual(await readdir(dir), [], "released: no lock or temporary file left");

  // A holder killed with -9 leaves its lock behind; its pid no longer runs.
  const dead = deadPid();
  await writeFile(join(dir, LOCK_FILE), lockHolder(dead, hostname()));
  const taken = await lockFolder(dir, "anr train");
  assert.equal(JSON.parse(await readFile(join(dir, LOCK_FILE), "utf8")).pid, process.pid);
  await taken.release();
  await writeFile(join(dir, LOCK_FILE), lockHolder(dead, "another-host"));
  await assert.rejects(lockFolder(dir, "anr train"), /in use by anr train \(pid \d+ on another-host/);
});

test("R9: the pending lock files of holders killed while taking the lock are removed by the next holder", async (t) => {
  const dir = await tempDir(t, "lock-pending");
  const dead = deadPid();
  const pending = (pid: number, n: number) => `${LOCK_FILE}.${pid}.${n}.pending`;
  await writeFile(join(dir, pending(dead, 1)), lockHolder(dead, hostname())); // killed before the link
  await writeFile(join(dir, pending(dead, 2)), lockHolder(dead, "another-host")); // its pid means nothing here
  await writeFile(join(dir, pending(dead, 3)), ""); // killed while writing it, just now
  await writeFile(join(dir, pending(dead, 4)), ""); // the same, long ago
  const old = new Date(Date.now() - 3_600_000);
  await utimes(join(dir, pending(dead, 4)), old, old);
  await writeFile(join(dir, pending(1, 5)), lockHolder(1, hostname())); // a live process's (init)
  const lock = await lockFolder(dir, "anr train");
  assert.deepEqual(
    (await readdir(dir)).sort(),
    [LOCK_FILE, pending(dead, 2), pending(dead, 3), pending(1, 5)].sort(),
  );
  await lock.release();
});

test("R9: a process that exits without releasing its lock leaves none behind", async (t) => {
  const dir = await tempDir(t, "lock-exit");
  const script = `import("${pathToFileURL(join(import.meta.dirname, "../src/util/lock.ts")).href}").then((m) => m.lockFolder(process.argv[1], "x")).then(() => process.exit(0));`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script, dir], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(await readdir(dir), []);
});

test("R2: temporaries of writes killed midway are found and removed; other files are kept", async (t) => {
  const dir = await tempDir(t, "tmp");
  const names = [
    ".checkpoint.safetensors.4242.1764000000000.tmp",
    ".metrics.jsonl.1.2.tmp",
    "model.safetensors",
    "notes.tmp",
    ".hidden",
  ];
  for (const n of names) await writeFile(join(dir, n), "x");
  assert.deepEqual((await removeStaleTemporaries(dir)).sort(), names.slice(0, 2).sort());
  assert.deepEqual((await readdir(dir)).sort(), [".hidden", "model.safetensors", "notes.tmp"]);
});
