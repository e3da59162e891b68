/**
 * The error model (src/util/errors.ts) as the CLI reports it: an error anr raises on purpose
 * prints its message and returns its own exit code; a file-system error is the user's input;
 * anything else is a bug, reported in one line (the stack only with ANR_DEBUG=1) with exit 70.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { reportError } from "../src/cli/main.js";
import { CheckFailed, InputError, UsageError } from "../src/util/errors.js";
import { ConfigError } from "../src/model/config.js";
import { SafetensorsError } from "../src/io/safetensors.js";

/** reportError(e) with console.log/error captured. */
function report(e: unknown, debug = false): { code: number; out: string; err: string } {
  const [log, error, env] = [console.log, console.error, process.env.ANR_DEBUG];
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  if (debug) process.env.ANR_DEBUG = "1";
  else delete process.env.ANR_DEBUG;
  try {
    return { code: reportError(e), out, err };
  } finally {
    [console.log, console.error] = [log, error];
    if (env === undefined) delete process.env.ANR_DEBUG;
    else process.env.ANR_DEBUG = env;
  }
}

test("errors: each kind prints its message and returns its exit code", async () => {
  let r = report(new InputError("data/a.npy", 'variable "t2m": expected 3 dimensions, found 2'));
  assert.deepEqual([r.code, r.err], [2, 'anr: data/a.npy: variable "t2m": expected 3 dimensions, found 2\n']);
  r = report(new UsageError("--steps: expected a positive integer"));
  assert.equal(r.code, 2);
  assert.equal(r.err, "anr: --steps: expected a positive integer\n(anr help for usage)\n");
  r = report(new UsageError("usage text", 0));
  assert.deepEqual([r.code, r.out, r.err], [0, "usage text\n", ""]);
  r = report(new CheckFailed("golden: 2 of 5 variants failed"));
  assert.deepEqual([r.code, r.err], [1, "anr: golden: 2 of 5 variants failed\n"]);
  // The format and config errors are input errors.
  assert.equal(report(new SafetensorsError("m.safetensors", "truncated")).code, 2);
  assert.equal(report(new ConfigError("run.yaml", ["train.steps: too small"], "run config")).code, 2);
  // A missing file, from the file system itself.
  const missing = await readFile("/nonexistent/run.yaml").catch((e: unknown) => e);
  r = report(missing);
  assert.equal(r.code, 2);
  assert.match(r.err, /^anr: ENOENT: no such file or directory, open '\/nonexistent\/run\.yaml'\n$/);
});

test("errors: a bug is reported as one, with its stack only under ANR_DEBUG=1", () => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'shape')");
  let r = report(bug);
  assert.equal(r.code, 70);
  assert.equal(
    r.err,
    "anr: internal error (a bug in anr, please report it): TypeError: Cannot read properties of undefined (reading 'shape')\n(run with ANR_DEBUG=1 for the stack trace)\n",
  );
  r = report(bug, true);
  assert.equal(r.code, 70);
  assert.ok(r.err.includes(bug.stack!), "the stack is printed");
  assert.equal(report("a thrown string").code, 70);
});
