/**
 * Helpers of the command-line tests (test/cli*.test.ts): run `main` capturing what it prints,
 * temporary folders removed after each test, small PNGs with known pixels, and the library's own
 * path from pixels to R-tokens and back, to compare the CLI's files with.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { main } from "../src/cli/main.js";
import { readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import type { HyperNetworkConfig } from "../src/model/config.js";
import { generatedParams, hyperNetwork, type HypoParams } from "../src/model/model.js";
import { disposeParams, toDevice, toHost } from "../src/model/params.js";
import { predictImage } from "../src/model/tasks.js";
import type { HostTensor } from "../src/io/safetensors.js";
import { tinyConfig } from "./fixtures.js";

let captureLock: Promise<void> = Promise.resolve();

/**
 * `main(args)` with console.log, console.error and process.stderr.write captured. The commands
 * print through the global console (the trainer too), so capturing means replacing it; the lock
 * makes captures strictly one at a time even if tests of a file ever run concurrently, and the
 * originals are restored in `finally` whatever `main` does.
 */
export async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const previous = captureLock;
  let release!: () => void;
  captureLock = new Promise<void>((r) => (release = r));
  await previous;
  const [log, error, write] = [console.log, console.error, process.stderr.write.bind(process.stderr)];
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  process.stderr.write = ((s: string | Uint8Array) => (
    (err += String(s)),
    true
  )) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
    release();
  }
}

/** A fresh temporary folder, removed with everything in it when the test ends. */
export async function tempDir(t: { after(fn: () => Promise<void>): void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `anr-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Deterministic RGB bytes (HWC) of a w×h picture; `seed` makes pictures differ. */
export function pixels(w: number, h: number, seed = 0): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const [y, x] = [Math.floor(i / w), i % w];
    px.set(
      [(x * 7 + y * 3 + seed * 40) % 256, (y * 11 + seed * 17) % 256, (x * y + 128 + seed * 5) % 256],
      i * 3,
    );
  }
  return px;
}

/** Write `pixels(w, h, seed)` as a PNG. */
export async function writePhoto(path: string, w: number, h: number, seed = 0): Promise<void> {
  await sharp(Buffer.from(pixels(w, h, seed)), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

/** HWC bytes of columns [x0, x0 + cw) → CHW floats in [0, 1]. */
export function chwFromBytes(px: Uint8Array, w: number, h: number, x0 = 0, cw = w): Float32Array {
  const out = new Float32Array(3 * h * cw);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < cw; x++) out[(c * h + y) * cw + x] = px[(y * w + x0 + x) * 3 + c]! / 255;
  return out;
}

/** A PNG's pixels as CHW bytes (0–255) and its size. */
export async function readPng(path: string): Promise<{ h: number; w: number; data: Uint8Array }> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width: w, height: h, channels } = info;
  const out = new Uint8Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) out[c * h * w + i] = data[i * channels + c]!;
  return { h, w, data: out };
}

/** The hyper-network's generated tensors (R-tokens for ANR) of CHW images in [0, 1], on the host. */
export async function encodeWith(
  weights: Map<string, HostTensor>,
  cfg: HyperNetworkConfig,
  imgs: Float32Array[],
  [h, w]: [number, number],
): Promise<Map<string, HostTensor>> {
  const data = new Float32Array(imgs.length * 3 * h * w);
  imgs.forEach((img, i) => data.set(img, i * 3 * h * w));
  const P = toDevice(weights);
  const gen = hyperNetwork(
    P,
    cfg,
    np
      .array(data, { shape: [imgs.length, 3, h, w] })
      .mul(2)
      .sub(1),
  );
  const host = await toHost(gen);
  disposeParams(gen);
  disposeParams(P);
  return host;
}

/** predictImage of generated tensors at h×w, mapped to [0, 1] (not clamped): (B, C, H, W) flat. */
export async function decodeWith(
  weights: Map<string, HostTensor>,
  cfg: HyperNetworkConfig,
  tokens: Map<string, HostTensor>,
  h: number,
  w: number,
): Promise<Float32Array> {
  const P = toDevice(weights);
  const gen: HypoParams = {};
  let b = 0;
  for (const g of generatedParams(cfg)) {
    const t = tokens.get(g.name)!;
    gen[g.name] = np.array(t.data, { shape: t.shape });
    b = t.shape[0]!;
  }
  const out = await readF32(predictImage(P, cfg, gen, b, h, w));
  disposeParams(P);
  return out.map((v) => (v + 1) / 2);
}

/**
 * Largest distance, in 8-bit levels, between PNG bytes and the [0, 1] values they should hold
 * (clamped, ×255). Exact quantisation gives ≤ 0.5; a little more allows float noise at .5 ties.
 */
export function levelsOff(png: Uint8Array, values: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < png.length; i++)
    worst = Math.max(worst, Math.abs(png[i]! - 255 * Math.min(1, Math.max(0, values[i]!))));
  return worst;
}

/** The repository root (the binary's package). */
export const REPO = join(import.meta.dirname, "..");

/**
 * The real `anr` executable (src/cli/run.ts under tsx, as bin/anr.js runs dist/cli/run.js) in a
 * child process, with its own stdout and stderr: what a shell or a script sees. `cwd` defaults to
 * the repository.
 */
export function spawnAnr(
  args: string[],
  o: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(REPO, "src", "cli", "run.ts"), ...args],
      { cwd: o.cwd ?? REPO, env: { ...process.env, ...o.env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ code: code ?? -1, out, err }));
  });
}

/**
 * A folder of 16×16 PNGs in train/val/test subfolders (exactly the tiny model's size, so its inputs
 * are the pixels themselves), and a run config training `tinyConfig("ANR")` on it for `steps`
 * steps (batch 2, evaluated at the end only); returns the config's path.
 */
export async function tinyRunConfig(dir: string, steps: number): Promise<string> {
  for (const [split, seeds] of Object.entries({ train: [0, 1, 2, 3], val: [4], test: [5, 6] })) {
    await mkdir(join(dir, "imgs", split), { recursive: true });
    for (const s of seeds) await writePhoto(join(dir, "imgs", split, `p${s}.png`), 16, 16, s);
  }
  const path = join(dir, "run.json");
  await writeFile(
    path,
    JSON.stringify({
      name: "tiny",
      data: { kind: "folder", root: join(dir, "imgs"), split: "folders", preprocess: { size: 16 } },
      model: tinyConfig("ANR"),
      train: { steps, batch_size: 2, eval_every: 0, checkpoint_every: 0, sample_every: 0 },
    }),
  );
  return path;
}
