/**
 * `npm run bench:web`: the web app's speed in headless Chromium, in one run: the in-browser encode
 * (the hyper-network forward) and the decode of a 256² frame on wasm with 1 and N threads and on
 * WebGPU (SwiftShader, software), and the same model's encode and 256² decode in Node. Each is
 * measured over several rounds (the first, which compiles, reported apart); the machine's load is
 * printed before and after, since other work on it slows every figure. Then the orbit viewer of
 * the zoo's NeRF model (multiview-nerf-anr): the support views' encode and a 32² frame at 64
 * samples per ray on wasm with N threads, and the same in Node. A benchmark, not a test: nothing
 * is asserted about times.
 *
 * Flags: --rounds N (encodes per setting, default 4), --frames N (256² decodes per round, 2),
 *        --size S (frame side, 256), --model NAME (an image model of the zoo, default
 *        twemoji32-anr: the model of the page's ≤ 100 ms target; the input is a test photo either
 *        way, since the decode's cost does not depend on what the image shows).
 */
// First: the worker pool (ANR_THREADS), as for the CLI.
import "../src/node-startup.js";
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { chromium, type Browser } from "playwright-core";
import { initBackend, readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { hyperNetwork } from "../src/model/model.js";
import { disposeParams, toDevice } from "../src/model/params.js";
import { createImageDecoder, createViewRenderer, viewsToDevice } from "../src/model/tasks.js";
import { openLearnitObject, stackViews } from "../src/data/learnit.js";
import { lookAtPose } from "../src/rendering/rays.js";
import { modelFromBytes } from "../src/io/weights.js";
import { zooModels } from "../src/io/zoo.js";
import { buildApp, CHROMIUM, CHROMIUM_ARGS, serve } from "./web-browser.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "4" },
    frames: { type: "string", default: "2" },
    size: { type: "string", default: "256" },
    model: { type: "string", default: "twemoji32-anr" },
  },
});
const ROUNDS = Number(values.rounds);
const FRAMES = Number(values.frames);
const SIZE = Number(values.size);
const root = join(import.meta.dirname, "..");
const MODEL_NAME = values.model;
const zooEntry = (await zooModels()).find((m) => m.name === MODEL_NAME);
if (!zooEntry) throw new Error(`--model ${MODEL_NAME}: no such model in models/zoo.json`);
const MODEL = zooEntry.file;
const NERF = join(root, "models", "multiview-nerf-anr.safetensors");
/** The orbit figures: frames of ORBIT_SIZE² at ORBIT_SAMPLES samples per ray (the viewer's default). */
const ORBIT_SIZE = 32;
const ORBIT_SAMPLES = 64;
const PHOTOS = join(root, "data", "photos", "test");

/** First (compiling) figure, then the rest's range and median, in ms. */
interface Timing {
  first: number;
  min: number;
  median: number;
  max: number;
}
function summarise(ms: number[]): Timing {
  const rest = ms.slice(1).sort((a, b) => a - b);
  const r = rest.length ? rest : ms;
  return { first: ms[0]!, min: r[0]!, median: r[Math.floor((r.length - 1) / 2)]!, max: r[r.length - 1]! };
}

interface Row {
  setting: string;
  threads: number;
  encode: Timing;
  decode: Timing;
}

type BenchWindow = {
  anrPage: {
    actions(): Promise<void>;
    idle(): Promise<void>;
    state: {
      device: { device: string; threads: number; fallback?: string } | null;
      timing: { encodeMs: number } | null;
    };
    decodeMs(width: number, height: number): Promise<number>;
  };
};

async function benchPage(
  browser: Browser,
  url: string,
  setting: string,
  query: string,
): Promise<Row | string> {
  const page = await browser.newPage();
  try {
    await page.goto(`${url}?${query}&photo=none&model=${MODEL_NAME}`);
    await page.waitForFunction(() => "anrPage" in window);
    await page.evaluate(() => (window as unknown as BenchWindow).anrPage.actions());
    const device = await page.evaluate(() => (window as unknown as BenchWindow).anrPage.state.device);
    if (query.includes("webgpu") && device?.device !== "webgpu")
      return `no WebGPU in this Chromium (${device?.fallback ?? "unknown"})`;
    const names = await page.$$eval("#photos button", (bs) =>
      bs.map((b) => (b as HTMLElement).dataset.name!),
    );
    const encode: number[] = [];
    const decode: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await page.click(`#photos button[data-name="${names[r % names.length]}"]`);
      await page.evaluate(() => (window as unknown as BenchWindow).anrPage.idle());
      const msg = await page.evaluate(() => {
        const m = document.getElementById("message")!;
        return m.hidden ? "" : m.textContent;
      });
      if (msg) throw new Error(`${setting}: ${msg}`);
      encode.push(
        await page.evaluate(() => (window as unknown as BenchWindow).anrPage.state.timing!.encodeMs),
      );
      for (let f = 0; f < FRAMES; f++)
        decode.push(
          await page.evaluate(
            (size) => (window as unknown as BenchWindow).anrPage.decodeMs(size, size),
            SIZE,
          ),
        );
    }
    return { setting, threads: device?.threads ?? 0, encode: summarise(encode), decode: summarise(decode) };
  } finally {
    await page.close();
  }
}

/** The same model in Node (the CLI's path): encode one photo, and decode SIZE² frames. */
async function benchNode(): Promise<Row> {
  const info = await initBackend();
  const { config, weights } = modelFromBytes(new Uint8Array(await readFile(MODEL)), MODEL);
  const P = toDevice(weights);
  const decoder = createImageDecoder(config);
  const { data } = await sharp(join(PHOTOS, "face-puppy.png"))
    .resize(32, 32, { fit: "cover" })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const chw = new Float32Array(3 * 1024);
  for (let c = 0; c < 3; c++)
    for (let k = 0; k < 1024; k++) chw[c * 1024 + k] = (2 * data[3 * k + c]!) / 255 - 1;
  const encode: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const gen = hyperNetwork(P, config, np.array(chw, { shape: [1, 3, 32, 32] }));
    await Promise.all(Object.values(gen).map((a) => readF32(a.ref)));
    encode.push(performance.now() - t0);
    for (let f = 0; f < FRAMES; f++) {
      const t1 = performance.now();
      await decoder(P, gen, 1, SIZE, SIZE);
      decode.push(performance.now() - t1);
    }
    disposeParams(gen);
  }
  decoder.dispose();
  disposeParams(P);
  return {
    setting: "Node (CLI path)",
    threads: info.threads,
    encode: summarise(encode),
    decode: summarise(decode),
  };
}

type OrbitWindow = {
  anrPage: {
    idle(): Promise<void>;
    state: { views: { encodeMs: number } | null };
    orbit: { turnTo(az: number, el: number): Promise<void>; frame: { ms: number } | null; elevation: number };
  };
};

/** The orbit viewer in the page: the support views' encode, and ROUNDS frames at new azimuths. */
async function benchOrbitPage(browser: Browser, url: string): Promise<Row> {
  const page = await browser.newPage();
  try {
    await page.goto(`${url}?device=wasm&model=multiview-nerf-anr&samples=${ORBIT_SAMPLES}`);
    await page.waitForFunction(() => "anrPage" in window);
    await page.evaluate(() => (window as unknown as OrbitWindow).anrPage.idle());
    const encode = await page.evaluate(
      () => (window as unknown as OrbitWindow).anrPage.state.views!.encodeMs,
    );
    const frames: number[] = [];
    for (let r = 0; r < ROUNDS; r++)
      frames.push(
        await page.evaluate(async (az) => {
          const { orbit } = (window as unknown as OrbitWindow).anrPage;
          await orbit.turnTo(az, orbit.elevation);
          return orbit.frame!.ms;
        }, 0.4 * r),
      );
    const threads = await page.evaluate(
      () => (window as unknown as BenchWindow).anrPage.state.device?.threads ?? 0,
    );
    return {
      setting: "orbit: Chromium wasm, N threads",
      threads,
      encode: summarise([encode]),
      decode: summarise(frames),
    };
  } finally {
    await page.close();
  }
}

/** The same in Node: support views 0, 1, 2 of the cat, and ROUNDS frames (the CLI's anr render path). */
async function benchOrbitNode(): Promise<Row> {
  const info = await initBackend();
  const { config, weights } = modelFromBytes(new Uint8Array(await readFile(NERF)), NERF);
  const P = toDevice(weights);
  const cat = await openLearnitObject(join(root, "data", "multiview", "objects", "cat"), 32);
  const support = await Promise.all([0, 1, 2].map((i) => cat.view(i)));
  const t0 = performance.now();
  const gen = hyperNetwork(P, config, viewsToDevice(stackViews([support])));
  await Promise.all(Object.values(gen).map((a) => readF32(a.ref)));
  const encode = performance.now() - t0;
  const render = createViewRenderer(config, { chunk: 1024, nSamples: ORBIT_SAMPLES, near: 2, far: 6 });
  const frames: number[] = [];
  const focal = support[0]!.focal;
  for (let r = 0; r < ROUNDS; r++) {
    const az = 0.4 * r;
    const t1 = performance.now();
    await render(P, gen, lookAtPose([4 * Math.cos(az), 4 * Math.sin(az), 2]), focal, ORBIT_SIZE, ORBIT_SIZE);
    frames.push(performance.now() - t1);
  }
  render.dispose();
  disposeParams(gen);
  disposeParams(P);
  return {
    setting: "orbit: Node (anr render path)",
    threads: info.threads,
    encode: summarise([encode]),
    decode: summarise(frames),
  };
}

const fmt = (t: Timing) =>
  `${t.min.toFixed(0)}–${t.max.toFixed(0)} (median ${t.median.toFixed(0)}; first ${t.first.toFixed(0)})`;
const load = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(", ")} on ${availableParallelism()} cores`;

if (!existsSync(CHROMIUM)) {
  console.error(`bench:web needs Chromium at ${CHROMIUM} (Debian package chromium)`);
  process.exit(1);
}
console.log(`bench:web: ${MODEL}, ${ROUNDS} rounds × ${FRAMES} frames of ${SIZE}²; before: ${load()}`);
const dist = await mkdtemp(join(tmpdir(), "anr-bench-web-"));
await buildApp(dist);
const { server, url } = await serve(dist);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
const rows: Row[] = [];
const orbitRows: Row[] = [];
const skipped: string[] = [];
try {
  for (const [setting, query] of [
    ["Chromium wasm, 1 thread", "device=wasm&threads=1"],
    ["Chromium wasm, N threads", "device=wasm"],
    ["Chromium WebGPU (SwiftShader)", "device=webgpu"],
  ] as const) {
    const row = await benchPage(browser, url, setting, query);
    if (typeof row === "string") skipped.push(`${setting}: ${row}`);
    else rows.push(row);
  }
  if (existsSync(NERF)) orbitRows.push(await benchOrbitPage(browser, url));
  else skipped.push(`orbit: no ${NERF}`);
} finally {
  await browser.close();
  server.close();
  await rm(dist, { recursive: true, force: true });
}
rows.push(await benchNode());
console.log(`\n| setting | threads | encode ms | decode ms per ${SIZE}² frame |\n|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.setting} | ${r.threads} | ${fmt(r.encode)} | ${fmt(r.decode)} |`);
if (orbitRows.length) {
  orbitRows.push(await benchOrbitNode());
  console.log(
    `\n| orbit viewer (multiview-nerf-anr) | threads | support views encode ms | ms per ${ORBIT_SIZE}² frame, ${ORBIT_SAMPLES} samples per ray |\n|---|---|---|---|`,
  );
  for (const r of orbitRows)
    console.log(`| ${r.setting} | ${r.threads} | ${r.encode.first.toFixed(0)} | ${fmt(r.decode)} |`);
}
for (const s of skipped) console.log(`skipped: ${s}`);
console.log(
  `\nafter: ${load()}. Ranges exclude each setting's first (compiling) round; other work on the machine slows every figure.`,
);
console.log(
  JSON.stringify({ size: SIZE, rounds: ROUNDS, frames: FRAMES, loadavg: loadavg(), rows, orbitRows }),
);
