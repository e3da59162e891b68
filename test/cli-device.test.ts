/**
 * `--device` (and ANR_DEVICE) is read once, before the command: a device this platform lacks, or
 * a name that is no device, exits 2 naming it; a valid one is where the command runs. In its own
 * file because the backend of a process is set once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./cli-helpers.js";
import { initBackend } from "../src/backend/index.js";
import { golden } from "./fixtures.js";

test("cli --device: unknown names and unavailable devices exit 2; the chosen device runs the command", async () => {
  let r = await runCli(["presets", "--device", "gpu"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--device gpu: expected one of wasm, webgpu, cpu/);
  const saved = process.env.ANR_DEVICE;
  process.env.ANR_DEVICE = "tpu";
  try {
    r = await runCli(["presets"]);
  } finally {
    if (saved === undefined) delete process.env.ANR_DEVICE;
    else process.env.ANR_DEVICE = saved;
  }
  assert.equal(r.code, 2);
  assert.match(r.err, /ANR_DEVICE tpu: expected one of/);
  // Node has no WebGPU: refused before the command runs, and nothing is initialised.
  r = await runCli(["--device=webgpu", "presets"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--device webgpu: jax-js device "webgpu" is not available here/);
  // The golden checks on the cpu device (the flag may come after the command).
  r = await runCli(["golden", join(golden, "ipc"), "--device", "cpu"]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /all golden checks passed/);
  assert.equal((await initBackend()).device, "cpu");
});
