/**
 * `--device` (and ANR_DEVICE) is read once, before the command: a device this platform lacks, or
 * a name that is no device, exits 2 naming it; a valid one is where the command runs. In its own
 * file because the backend of a process is set once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli } from "./cli-helpers.js";
import { initBackend } from "../src/backend/index.js";

test("cli --device: unknown names and unavailable devices exit 2; the chosen device runs the command", async () => {
  let r = await runCli(["presets", "--device", "gpu"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--device must be wasm, webgpu or cpu, not gpu \(did you mean "cpu"\?\)/);
  const saved = process.env.ANR_DEVICE;
  process.env.ANR_DEVICE = "tpu";
  try {
    r = await runCli(["presets"]);
  } finally {
    if (saved === undefined) delete process.env.ANR_DEVICE;
    else process.env.ANR_DEVICE = saved;
  }
  assert.equal(r.code, 2);
  assert.match(r.err, /ANR_DEVICE must be wasm, webgpu or cpu, not tpu/);
  // Node has no WebGPU: refused before the command runs, and nothing is initialised.
  r = await runCli(["--device=webgpu", "presets"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--device webgpu: jax-js device "webgpu" is not available here/);
  // A valid device is initialised before the command, whatever the command (the flag may come
  // after it). (The golden checks also pass on cpu with the uniform bounds, but its gradients sit
  // further from the reference than wasm's, 1.6e-4 vs 9.7e-6 L2 on ipc, so the wasm-measured
  // per-key bounds do not apply there; and cpu is too slow for the suite.)
  r = await runCli(["presets", "--device", "cpu"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /tiny32-anr/);
  assert.equal((await initBackend()).device, "cpu");
});
