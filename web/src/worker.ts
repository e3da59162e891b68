/**
 * The model worker: jax-js (WebGPU or wasm), the loaded model and the current image's (or
 * object's) generated hyponet parameters live here, so that encoding, decoding and rendering never
 * freeze the page. It uses the portable entries ("anr", "anr/lowlevel") as the CLI does: the
 * hyper-network, the view renderer of `anr render`, the token file checks of `anr decode`. The only thing of its own is
 * the region decoder, which evaluates the hyponet at the pixel centres of any rectangle (the core's
 * decoder takes whole grids).
 */
// First: the thread count, before jax-js (imported by "anr") sizes its pool.
import "./threads.js";
import {
  createGridDecoder,
  createViewRenderer,
  disposeParams,
  hyperNetwork,
  initBackend,
  modelFromBytes,
  InputError,
  parseSafetensors,
  representationSize,
  toDevice,
  toHost,
  tokensFromBytes,
  tokensToBytes,
  type HyperNetworkConfig,
  type Params,
} from "anr";
import {
  countParams,
  generatedParams,
  isTokenFile,
  tokensMismatch,
  weightsFingerprint,
  attentionWeights as coreAttentionWeights,
  cellCentres,
  gridPoints,
  inputSize,
  lookAtPose,
  refParams,
  viewsToDevice,
  type HypoParams,
} from "anr/lowlevel";
import { numpy as np } from "@jax-js/jax";
import type { Attention, Camera, DeviceInfo, ModelCard, Region, Reply, Request, Views } from "./protocol.js";

interface Loaded {
  /** The file it came from (named in errors). */
  source: string;
  config: HyperNetworkConfig;
  /** {@link weightsFingerprint} of its weights: token files record it, and must match it. */
  fingerprint: string;
  P: Params;
  /** The core's grid decoder (rows × columns of any region; `createGridDecoder`). */
  decodeGrid: ReturnType<typeof createGridDecoder>;
  /** View renderers (`anr render`'s), by their sampling: one compiled function each. */
  renderers: Map<string, ReturnType<typeof createViewRenderer>>;
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
  for (const r of model.renderers.values()) r.dispose();
  model.decodeGrid.dispose();
  disposeParams(model.P);
  model = null;
}

function load(bytes: ArrayBuffer, source: string): ModelCard {
  const { config, weights } = modelFromBytes(new Uint8Array(bytes), source);
  const task = config.tokenizer.name === "ImgTokenizer" ? "image" : "views";
  const [h, w] = inputSize(config);
  const patch = config.tokenizer.args.patch_size;
  const card: ModelCard = {
    source,
    kind: config.hyponet.name,
    task,
    inputSize: [h, w],
    channels: config.hyponet.args.out_dim,
    patch,
    tokens: generatedParams(config)[0]?.shape[0] ?? 0,
    representationSize: representationSize(config),
    parameters: countParams(config),
    fields: config.channels,
  };
  const fingerprint = weightsFingerprint(weights);
  // Only a model that parsed replaces the current one: a bad file leaves the page as it was.
  const P = toDevice(weights);
  unload();
  const decodeGrid = createGridDecoder(config);
  model = { source, config, fingerprint, P, decodeGrid, renderers: new Map(), generated: null };
  return card;
}

function requireModel(): Loaded {
  if (!model) throw new Error("no model is loaded: open one first");
  return model;
}

/** Pixel centres of `region` at width × height, (y, x) pairs in row-major order (as coordGrid). */
function regionCoords(r: Region, width: number, height: number): Float32Array {
  return gridPoints(cellCentres(height, r.y0, r.y1), cellCentres(width, r.x0, r.x1));
}

/** The hyponet at the pixel centres of `region`: (C, height, width) in [0, 1] (not clamped). */
async function decodeRegion(m: Loaded, region: Region, width: number, height: number): Promise<Float32Array> {
  if (!m.generated) throw new Error("no image is encoded: encode one first");
  const ys = cellCentres(height, region.y0, region.y1);
  const xs = cellCentres(width, region.x0, region.x1);
  const out = await m.decodeGrid(m.P, m.generated, 1, ys, xs);
  for (let i = 0; i < out.length; i++) out[i] = (out[i]! + 1) / 2;
  return out;
}

/**
 * ANR's attention weights after the threshold at `coords` (n (y, x) pairs): (heads, n, tokens),
 * the core's (as `anr decode --attention` computes them); null for other hyponet kinds.
 */
async function attentionWeights(m: Loaded, coords: Float32Array): Promise<Float32Array | null> {
  if (m.config.hyponet.name !== "ANR") return null;
  if (!m.generated) throw new Error("no image is encoded: encode one first");
  return coreAttentionWeights(m.P, m.config, m.generated, coords);
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
  const encodeMs = performance.now() - t0;
  const shown = await show(m, generated);
  let se = 0;
  for (let i = 0; i < pixels.length; i++) {
    const d = Math.min(1, Math.max(0, shown.reconstruction[i]!)) - pixels[i]!;
    se += d * d;
  }
  const psnr = 10 * Math.log10(1 / Math.max(se / pixels.length, 1e-12));
  return { id: 0, type: "encoded", ...shown, psnr, encodeMs };
}

/**
 * Make `generated` the current image's representation, and decode it at the model's size: the
 * reconstruction, its time, and the fraction of attention weights the threshold zeroes (ANR).
 */
async function show(
  m: Loaded,
  generated: HypoParams,
): Promise<{ reconstruction: Float32Array; decodeMs: number; zeroed: number | null }> {
  if (m.generated) disposeParams(m.generated);
  m.generated = generated;
  const [h, w] = inputSize(m.config);
  const t0 = performance.now();
  const reconstruction = await decodeRegion(m, WHOLE, w, h);
  const decodeMs = performance.now() - t0;
  const all = await attentionWeights(m, regionCoords(WHOLE, w, h));
  return { reconstruction, decodeMs, zeroed: all ? zeroedFraction(all) : null };
}

/** The current image's R-tokens as a token file (the CLI's format: `anr decode` reads it). */
async function tokenFile(name: string): Promise<Uint8Array> {
  const m = requireModel();
  if (!m.generated) throw new Error("no image is encoded: encode one first");
  return tokensToBytes({
    names: [name],
    inputSize: inputSize(m.config),
    config: m.config,
    tensors: await toHost(refParams(m.generated)),
    weights: m.fingerprint,
  });
}

/**
 * A token file's first instance as the current image. As `anr decode`, it must come from this
 * model: the same config, and the same weights (the fingerprint the file records, when it has one).
 */
async function loadTokens(
  bytes: Uint8Array,
  source: string,
): Promise<Extract<Reply, { type: "tokens-loaded" }>> {
  const m = requireModel();
  const tokens = tokensFromBytes(bytes, source);
  const mismatch = tokensMismatch(tokens, m.config, m.fingerprint, m.source);
  if (mismatch)
    throw new InputError(
      source,
      mismatch.reason === "weights"
        ? `${mismatch.message}: open the model that encoded it`
        : mismatch.message,
    );
  const generated: HypoParams = {};
  for (const [name, t] of tokens.tensors) {
    const per = t.data.length / t.shape[0]!;
    generated[name] = np.array(t.data.slice(0, per), { shape: [1, ...t.shape.slice(1)] });
  }
  const shown = await show(m, generated);
  return {
    id: 0,
    type: "tokens-loaded",
    ...shown,
    name: tokens.names[0]!,
    instances: tokens.names.length,
    checked: tokens.weights !== undefined,
  };
}

/**
 * Posed support views of one object (`anr render`'s input) as the current representation: the
 * hyper-network's R-tokens for them, and the time it took.
 */
async function encodeViews(v: Views): Promise<number> {
  const m = requireModel();
  if (m.config.tokenizer.name !== "nvs_tokenizer")
    throw new Error("this is an image model: the orbit viewer needs a view-synthesis (NeRF) model");
  const [h, w] = inputSize(m.config);
  const n = v.poses.length / 12;
  if (!Number.isInteger(n) || n < 1 || v.pixels.length !== n * 3 * h * w || v.focals.length !== 2 * n)
    throw new Error(`support views: expected n × 3×${h}×${w} pixels, n × 12 pose and n × 2 focal values`);
  const t0 = performance.now();
  const generated = hyperNetwork(
    m.P,
    m.config,
    viewsToDevice({ imgs: v.pixels, poses: v.poses, focals: v.focals, shape: { b: 1, n, h, w } }),
  );
  await Promise.all(Object.values(generated).map((a) => a.ref.data()));
  if (m.generated) disposeParams(m.generated);
  m.generated = generated;
  return performance.now() - t0;
}

/** Most rays per compiled call of the view renderer (as `anr render`). */
const RENDER_CHUNK = 1024;

/**
 * The current object seen from `camera` (looking at the origin, as `anr render`'s orbit): (3, size,
 * size) in [0, 1] on a white background, and the camera's pose.
 */
async function renderView(camera: Camera): Promise<{ rgb: Float32Array; pose: Float32Array }> {
  const m = requireModel();
  if (!m.generated || m.config.tokenizer.name !== "nvs_tokenizer")
    throw new Error("no object is encoded: pick one and its support views first");
  // A frame smaller than a chunk gets a chunk of its own size: the renderer pads the last chunk,
  // and a preview padded to a full chunk would cost as much as a full frame.
  const chunk = Math.min(RENDER_CHUNK, camera.size * camera.size);
  const key = `${chunk}:${camera.samples}:${camera.near}:${camera.far}`;
  let render = m.renderers.get(key);
  if (!render) {
    render = createViewRenderer(m.config, {
      chunk,
      nSamples: camera.samples,
      near: camera.near,
      far: camera.far,
    });
    m.renderers.set(key, render);
  }
  const pose = lookAtPose(camera.eye);
  return { rgb: await render(m.P, m.generated, pose, camera.focal, camera.size, camera.size), pose };
}

/**
 * Whether safetensors bytes are a token file (else a model), by the core's test. Anything that does
 * not parse is routed to the model loader, whose error names the problem.
 */
function fileKind(bytes: Uint8Array, source: string): "tokens" | "model" {
  try {
    return isTokenFile(parseSafetensors(bytes, source)) ? "tokens" : "model";
  } catch {
    return "model";
  }
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
    case "save-tokens":
      return { id: req.id, type: "token-file", bytes: await tokenFile(req.name) };
    case "load-tokens":
      return { ...(await loadTokens(new Uint8Array(req.bytes), req.source)), id: req.id };
    case "file-kind":
      return { id: req.id, type: "file-kind", kind: fileKind(new Uint8Array(req.bytes), req.source) };
    case "encode-views":
      return { id: req.id, type: "views-encoded", encodeMs: await encodeViews(req.views) };
    case "render": {
      const t0 = performance.now();
      const { rgb, pose } = await renderView(req.camera);
      return { id: req.id, type: "rendered", rgb, pose, size: req.camera.size, ms: performance.now() - t0 };
    }
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
      reply.type === "encoded" || reply.type === "tokens-loaded"
        ? [reply.reconstruction.buffer]
        : reply.type === "decoded" || reply.type === "rendered"
          ? [reply.rgb.buffer]
          : reply.type === "token-file"
            ? [reply.bytes.buffer]
            : [];
    (self as unknown as Worker).postMessage(reply, transfer as Transferable[]);
  });
};
