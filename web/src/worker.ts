/**
 * The model worker: jax-js (WebGPU or wasm), the loaded model and the current image's generated
 * hyponet parameters live here, so that encoding and decoding never freeze the page. It uses the
 * portable core ("anr") as the CLI does; the only thing of its own is the region decoder, which
 * evaluates the hyponet at the pixel centres of any rectangle (the core's decoder takes whole grids).
 */
import {
  countParams,
  disposeParams,
  generatedParams,
  hyperNetwork,
  initBackend,
  modelFromBytes,
  readF32,
  toDevice,
  type HyperNetworkConfig,
  type Params,
} from "anr";
import { hyponet, inputSize, refParams, type HypoParams, type Taps } from "anr/lowlevel";
import { jit, numpy as np } from "@jax-js/jax";
import type { Attention, DeviceInfo, ModelCard, Region, Reply, Request } from "./protocol.js";

/** Points per jit call: one compiled shape for every region size (the last chunk is padded). */
const CHUNK = 4096;

interface Loaded {
  config: HyperNetworkConfig;
  P: Params;
  decodeChunk: (P: Params, g: HypoParams, coords: np.Array) => np.Array;
  generated: HypoParams | null;
}

let device: DeviceInfo | null = null;
let model: Loaded | null = null;

async function start(wanted: "webgpu" | "wasm"): Promise<DeviceInfo> {
  if (device) return device;
  let fallback: string | undefined;
  if (wanted === "webgpu") {
    try {
      const info = await initBackend({ device: "webgpu" });
      device = { device: "webgpu", threads: info.threads };
      return device;
    } catch (e) {
      fallback = e instanceof Error ? e.message : String(e);
    }
  }
  const info = await initBackend({ device: "wasm" });
  device = { device: "wasm", threads: info.threads, ...(fallback ? { fallback } : {}) };
  return device;
}

function unload(): void {
  if (!model) return;
  if (model.generated) disposeParams(model.generated);
  disposeParams(model.P);
  model = null;
}

function load(bytes: ArrayBuffer, source: string): ModelCard {
  const { config, weights } = modelFromBytes(new Uint8Array(bytes), source);
  const task = config.tokenizer.name === "ImgTokenizer" ? "image" : "views";
  const [h, w] = inputSize(config);
  const patch = config.tokenizer.args.patch_size;
  const generated = generatedParams(config);
  const card: ModelCard = {
    source,
    kind: config.hyponet.name,
    task,
    inputSize: [h, w],
    channels: config.hyponet.args.out_dim,
    patch,
    tokens: generated[0]?.shape[0] ?? 0,
    representationSize: generated.reduce((s, g) => s + g.shape[0] * g.shape[1], 0),
    parameters: countParams(config),
  };
  // Only a model that parsed replaces the current one: a bad file leaves the page as it was.
  const P = toDevice(weights);
  unload();
  const decodeChunk = jit((P: Params, g: HypoParams, coords: np.Array) => {
    const out = hyponet(P, config, coords, g);
    disposeParams(P);
    return out;
  });
  model = { config, P, decodeChunk, generated: null };
  return card;
}

function requireModel(): Loaded {
  if (!model) throw new Error("no model is loaded: open one first");
  return model;
}

/** Pixel centres of `region` at width × height, (y, x) pairs in row-major order (as coordGrid). */
function regionCoords(r: Region, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height * 2);
  for (let i = 0; i < height; i++) {
    const y = Math.fround(r.y0 + ((r.y1 - r.y0) * (i + 0.5)) / height);
    for (let j = 0; j < width; j++) {
      out[2 * (i * width + j)] = y;
      out[2 * (i * width + j) + 1] = Math.fround(r.x0 + ((r.x1 - r.x0) * (j + 0.5)) / width);
    }
  }
  return out;
}

/** The hyponet at the pixel centres of `region`: (C, height, width) in [0, 1] (not clamped). */
async function decodeRegion(m: Loaded, region: Region, width: number, height: number): Promise<Float32Array> {
  if (!m.generated) throw new Error("no image is encoded: encode one first");
  const coords = regionCoords(region, width, height);
  const n = width * height;
  const c = m.config.hyponet.args.out_dim;
  const out = new Float32Array(c * n);
  const buf = new Float32Array(CHUNK * 2);
  for (let s = 0; s < n; s += CHUNK) {
    const e = Math.min(n, s + CHUNK);
    buf.fill(0);
    buf.set(coords.subarray(2 * s, 2 * e));
    const vals = await readF32(
      m.decodeChunk(refParams(m.P), refParams(m.generated), np.array(buf, { shape: [1, CHUNK, 2] })),
    );
    for (let k = s; k < e; k++)
      for (let ch = 0; ch < c; ch++) out[ch * n + k] = (vals[(k - s) * c + ch]! + 1) / 2;
  }
  return out;
}

/**
 * ANR's attention weights after the threshold at `coords` (n (y, x) pairs): (heads, n, tokens),
 * read from the hyponet's "anr.attn" tap; null for other hyponet kinds.
 */
async function attentionWeights(m: Loaded, coords: Float32Array): Promise<Float32Array | null> {
  if (m.config.hyponet.name !== "ANR") return null;
  if (!m.generated) throw new Error("no image is encoded: encode one first");
  const taps: Taps = new Map();
  const n = coords.length / 2;
  hyponet(m.P, m.config, np.array(coords, { shape: [1, n, 2] }), refParams(m.generated), taps).dispose();
  let weights: Float32Array | null = null;
  for (const [name, a] of taps) {
    if (name === "anr.attn") weights = await readF32(a);
    else a.dispose();
  }
  return weights;
}

function zeroedFraction(weights: Float32Array): number {
  let zeros = 0;
  for (const w of weights) if (w === 0) zeros++;
  return zeros / weights.length;
}

async function attentionAt(m: Loaded, y: number, x: number): Promise<Attention> {
  const weights = await attentionWeights(m, new Float32Array([y, x]));
  if (!weights || m.config.hyponet.name !== "ANR")
    throw new Error(`${m.config.hyponet.name} has no attention over R-tokens: hover needs an ANR model`);
  const { n_head: heads, token_len: tokens } = m.config.hyponet.args;
  return { heads, tokens, weights, zeroed: zeroedFraction(weights) };
}

const WHOLE: Region = { y0: -1, x0: -1, y1: 1, x1: 1 };

async function encode(pixels: Float32Array): Promise<Extract<Reply, { type: "encoded" }>> {
  const m = requireModel();
  if (m.config.tokenizer.name !== "ImgTokenizer")
    throw new Error("this model synthesises views (NeRF): the page encodes images with image models only");
  const [h, w] = inputSize(m.config);
  const c = m.config.tokenizer.args.img_channels;
  if (pixels.length !== c * h * w)
    throw new Error(`the image has ${pixels.length} values, the model reads ${c}×${h}×${w}`);
  const t0 = performance.now();
  const x = np.array(
    pixels.map((v) => 2 * v - 1),
    { shape: [1, c, h, w] },
  );
  const generated = hyperNetwork(m.P, m.config, x);
  // The generated tensors are the representation: reading them finishes the encode.
  await Promise.all(Object.values(generated).map((a) => a.ref.data()));
  const t1 = performance.now();
  if (m.generated) disposeParams(m.generated);
  m.generated = generated;
  const reconstruction = await decodeRegion(m, WHOLE, w, h);
  const t2 = performance.now();
  let se = 0;
  for (let i = 0; i < pixels.length; i++) {
    const d = Math.min(1, Math.max(0, reconstruction[i]!)) - pixels[i]!;
    se += d * d;
  }
  const psnr = 10 * Math.log10(1 / Math.max(se / pixels.length, 1e-12));
  const all = await attentionWeights(m, regionCoords(WHOLE, w, h));
  const zeroed = all ? zeroedFraction(all) : null;
  return { id: 0, type: "encoded", reconstruction, psnr, encodeMs: t1 - t0, decodeMs: t2 - t1, zeroed };
}

async function handle(req: Request): Promise<Reply> {
  switch (req.type) {
    case "init":
      return { id: req.id, type: "ready", info: await start(req.device) };
    case "load-model":
      return { id: req.id, type: "model", card: load(req.bytes, req.source) };
    case "encode":
      return { ...(await encode(req.pixels)), id: req.id };
    case "decode": {
      const t0 = performance.now();
      const rgb = await decodeRegion(requireModel(), req.region, req.width, req.height);
      return {
        id: req.id,
        type: "decoded",
        rgb,
        width: req.width,
        height: req.height,
        ms: performance.now() - t0,
      };
    }
    case "attention":
      return { id: req.id, type: "attention", attention: await attentionAt(requireModel(), req.y, req.x) };
  }
}

// One request at a time, in order: jax-js's device state is not shared between overlapping calls.
let queue: Promise<void> = Promise.resolve();
self.onmessage = (ev: MessageEvent<Request>) => {
  const req = ev.data;
  queue = queue.then(async () => {
    let reply: Reply;
    try {
      reply = await handle(req);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      reply = { id: req.id, type: "error", name: err.name, message: err.message };
    }
    const transfer =
      reply.type === "encoded"
        ? [reply.reconstruction.buffer]
        : reply.type === "decoded"
          ? [reply.rgb.buffer]
          : [];
    (self as unknown as Worker).postMessage(reply, transfer as Transferable[]);
  });
};
