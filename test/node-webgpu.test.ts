/**
 * `--device webgpu` in Node: Dawn (the `webgpu` package) on a Vulkan driver. Here there is no GPU,
 * so the driver is SwiftShader from Debian's chromium package (the same software GPU the browser
 * tests use). The demo model's encode and 2× decode, and two training steps, agree with the wasm
 * engine within the WebGPU tolerance (1e-3); without a driver the CLI says what to set.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO, spawnAnr, tempDir } from "./cli-helpers.js";
import { skipWithoutData } from "./fixtures.js";

const SWIFTSHADER = {
  LD_LIBRARY_PATH: "/usr/lib/chromium",
  VK_ICD_FILENAMES: "/usr/lib/chromium/vk_swiftshader_icd.json",
};
const haveSwiftShader =
  existsSync(SWIFTSHADER.VK_ICD_FILENAMES) && existsSync("/usr/lib/chromium/libvulkan.so.1");
const haveDawn = existsSync(join(REPO, "node_modules", "webgpu"));

interface ChildOut {
  device: string;
  tokens: number[];
  decoded: number[];
  losses: number[];
}

function runChild(device: string, env: Record<string, string>): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(REPO, "test", "webgpu-child.mts"), device],
      { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`${device} child exited with ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split("\n").at(-1)!) as ChildOut);
    });
  });
}

const maxAbs = (a: number[], b: number[]) => {
  assert.equal(a.length, b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
};

test("node webgpu (Dawn on SwiftShader): encode, decode and two training steps agree with wasm within 1e-3", async (t) => {
  if (skipWithoutData(t, haveDawn, "the optional package webgpu (npm install)")) return;
  if (skipWithoutData(t, haveSwiftShader, "Chromium's SwiftShader Vulkan driver (apt-get install chromium)"))
    return;
  const [gpu, wasm] = [await runChild("webgpu", SWIFTSHADER), await runChild("wasm", {})];
  assert.deepEqual([gpu.device, wasm.device], ["webgpu", "wasm"]);
  assert.equal(wasm.decoded.length, 3 * 64 * 64);
  const dTokens = maxAbs(gpu.tokens, wasm.tokens);
  const dDecoded = maxAbs(gpu.decoded, wasm.decoded);
  const dLosses = maxAbs(gpu.losses, wasm.losses);
  assert.ok(dTokens <= 1e-3, `tokens differ by ${dTokens}`);
  assert.ok(dDecoded <= 1e-3, `decoded pixels differ by ${dDecoded}`);
  assert.ok(dLosses <= 1e-3, `losses / gradient norms differ by ${dLosses}`);
  // The two sides really ran different engines: float32 on another device never agrees bit for bit.
  assert.ok(dTokens > 0 || dDecoded > 0, "webgpu gave wasm's exact bits: was it the wasm engine?");
});

test("node webgpu without a Vulkan driver: a usage error that says what to install or set", async (t) => {
  if (skipWithoutData(t, haveDawn, "the optional package webgpu (npm install)")) return;
  // A machine with a system Vulkan loader may have a real driver; the message is for one without.
  const loader = spawnSync("sh", ["-c", "ldconfig -p | grep -q 'libvulkan.so.1 '"]);
  if (loader.status === 0) return t.skip("this machine has a system Vulkan loader");
  const dir = await tempDir(t, "webgpu-none");
  const r = await spawnAnr(
    [
      "encode",
      "data/photos/test/rocket.png",
      "--model",
      "demo-photos-anr",
      "--device",
      "webgpu",
      "--out",
      join(dir, "t.safetensors"),
    ],
    { env: { LD_LIBRARY_PATH: "", VK_ICD_FILENAMES: "" } },
  );
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--device webgpu: no WebGPU adapter found/);
  assert.match(r.err, /VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/);
  assert.equal(existsSync(join(dir, "t.safetensors")), false);
});
