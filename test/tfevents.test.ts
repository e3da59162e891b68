/**
 * TensorBoard event files: what we write is read back by an independent reader, Python's protobuf
 * and crc32c packages (scripts/read_tfevents.py), with every record's CRC checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeTfEvents, type ScalarRecord } from "../src/io/tfevents.js";
import { crc32c } from "../src/util/crc32.js";
import { EVENTS_FILE, REPORT_FILE, writeRunLogs } from "../src/training/report.js";
import { skipWithoutData } from "./fixtures.js";
import { tempDir } from "./cli-helpers.js";

const PYTHON = "/usr/bin/python3";
const reader = join(import.meta.dirname, "..", "scripts", "read_tfevents.py");

function pythonHas(modules: string): boolean {
  return spawnSync(PYTHON, ["-c", `import ${modules}`]).status === 0;
}

test("CRC-32C matches the standard check value", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
});

test("tfevents: scalars read back by Python's protobuf and crc32c", async (t) => {
  if (
    skipWithoutData(
      t,
      pythonHas("google.protobuf, crc32c"),
      "Python's protobuf and crc32c (Debian packages python3-protobuf, python3-crc32c)",
    )
  )
    return;
  const records: ScalarRecord[] = [
    { step: 1, wallTime: 1764672000.25, values: { loss: 0.5, "train/psnr": 12.75 } },
    { step: 300, wallTime: 1764672100.5, values: { "test/psnr": 19.52, lr: 3e-4, "test/rmse_t2m": 1.25 } },
    { step: 2 ** 33 + 7, wallTime: 1764672200, values: { loss: Number.NaN, big: 3.4e38 } },
  ];
  const dir = await tempDir(t, "tfevents");
  const path = join(dir, "events.out.tfevents.1764672000.host");
  await writeFile(path, encodeTfEvents(records, 1764672000));
  const r = spawnSync(PYTHON, [reader, path], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split("\n")
    .map(
      (l) =>
        JSON.parse(l.replace(/\bNaN\b/g, '"NaN"')) as {
          wall_time: number;
          step: number;
          file_version: string;
          values: Record<string, number | string>;
        },
    );
  assert.equal(events.length, 4);
  assert.deepEqual(events[0], { wall_time: 1764672000, step: 0, file_version: "brain.Event:2", values: {} });
  for (const [i, rec] of records.entries()) {
    const e = events[i + 1]!;
    assert.equal(e.wall_time, rec.wallTime);
    assert.equal(e.step, rec.step);
    const expected = Object.fromEntries(
      Object.entries(rec.values).map(([k, v]) => [k, Number.isNaN(v) ? "NaN" : Math.fround(v)]),
    );
    assert.deepEqual(e.values, expected);
  }
});

test("tfevents: a run folder's metrics.jsonl becomes its event file (train/, test/ groups, wall times)", async (t) => {
  if (
    skipWithoutData(
      t,
      pythonHas("google.protobuf, crc32c"),
      "Python's protobuf and crc32c (python3-protobuf, python3-crc32c)",
    )
  )
    return;
  const out = await tempDir(t, "tfevents-run");
  const lines = [
    { step: 0, test_psnr: 8.5 },
    { step: 10, loss: 0.25, train_psnr: 12.5, seconds: 4, images_per_s: 40 },
    {
      step: 20,
      loss: 0.125,
      train_psnr: 14.5,
      seconds: 8,
      time: 1764672999.5,
      test_psnr: 15.5,
      test_rmse_u: 2.5,
    },
  ];
  await writeFile(join(out, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  await writeRunLogs(out, 1764672000);
  const r = spawnSync(PYTHON, [reader, join(out, EVENTS_FILE)], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { wall_time: number; step: number; values: Record<string, number> });
  assert.deepEqual(
    events.slice(1).map((e) => [e.step, e.wall_time, e.values]),
    [
      // The run's start comes from its first timed record (step 20: time − seconds), whatever
      // the fallback, so the same files always give the same events.
      [0, 1764672991.5, { "test/psnr": 8.5 }],
      [10, 1764672995.5, { loss: 0.25, "train/psnr": 12.5, images_per_s: 40 }],
      [20, 1764672999.5, { loss: 0.125, "train/psnr": 14.5, "test/psnr": 15.5, "test/rmse_u": 2.5 }],
    ],
  );
  assert.ok((await readFile(join(out, REPORT_FILE), "utf8")).includes("<svg"), "the report is written too");
});
