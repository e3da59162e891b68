/**
 * The page: open a model (from the zoo, picked or dropped), encode an image in the model worker,
 * show the input, the reconstruction and PSNR, and a zoomable view that decodes only what is
 * visible; or, with a view-synthesis (NeRF) model, encode an object's support views and orbit it.
 * Every action runs through `act`, so a failure becomes a message on the page and the page goes on.
 */
// The npy writer itself, not through "anr": the core's index would bring jax-js into the page's
// bundle (it runs in the worker).
import { encodeNpy } from "../../src/io/npy.js";
import { ModelWorker } from "./client.js";
import { OBJECTS, OrbitView, supportViews, type ShippedObject } from "./orbit.js";
import { imageToPixels, pixelsToCanvas, pixelsToImageData } from "./pixels.js";
import type { Attention, DeviceInfo, ModelCard, Region } from "./protocol.js";
import { ZoomView, type ZoomInput } from "./zoom.js";

/** The shipped model zoo (models/zoo.json and its files), in the file's order. */
const ZOO_FILES = import.meta.glob<string>("../../models/*.safetensors", {
  query: "?url",
  import: "default",
  eager: true,
});
const ZOO_JSON = import.meta.glob<{ models: { name: string; file: string; data?: string }[] }>(
  "../../models/zoo.json",
  { eager: true, import: "default" },
)["../../models/zoo.json"];
const ZOO = (ZOO_JSON?.models ?? []).flatMap((m) => {
  const url = ZOO_FILES[`../../models/${m.file}`];
  return url ? [{ name: m.name, file: m.file, data: m.data ?? "", url }] : [];
});
/** The model the page opens at start (`?model=NAME` picks another zoo model). */
const DEFAULT_MODEL = "demo-photos-anr";

/** The shipped test photos (data/photos/test, see data/photos/SOURCES.md). */
const PHOTOS = Object.entries(
  import.meta.glob<string>("../../data/photos/test/*.png", { query: "?url", import: "default", eager: true }),
)
  .map(([path, url]) => ({ name: path.slice(path.lastIndexOf("/") + 1), url }))
  .sort((a, b) => a.name.localeCompare(b.name));

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const message = $<HTMLDivElement>("message");

interface Current {
  card: ModelCard | null;
  modelBytes: ArrayBuffer | null;
  device: DeviceInfo | null;
  image: { name: string; blob: Blob } | null;
  input: ZoomInput | null;
  reconstruction: Float32Array | null;
  psnr: number | null;
  /** ANR: the fraction of attention weights the threshold zeroes over the model's grid. */
  zeroed: number | null;
  /** The last hovered pixel's attention, at model coordinates (y, x). */
  attention: { y: number; x: number; attention: Attention } | null;
  /**
   * Field models: the chosen channel (index into the card's fields) decoded at the field view's
   * size, in physical units, and the value under the cursor (pixel row, column of that grid).
   */
  field: {
    channel: number;
    name: string;
    units: string;
    size: number;
    values: Float32Array;
    min: number;
    max: number;
  } | null;
  fieldHover: { i: number; j: number; value: number } | null;
  /** The last encode's times: the hyper-network forward, and the decode at the model's size. */
  timing: { encodeMs: number; decodeMs: number } | null;
  /** The token file the current image came from (instead of an encoded image), and its name. */
  tokens: { source: string; name: string } | null;
  /**
   * View-synthesis models: the object whose support views are encoded, their indices, the views
   * as the model read them ((n, 3, H, W), poses, focals) and the encode's milliseconds.
   */
  views: {
    object: string;
    support: number[];
    pixels: Float32Array;
    poses: Float32Array;
    focals: Float32Array;
    encodeMs: number;
  } | null;
}
const state: Current = {
  card: null,
  modelBytes: null,
  device: null,
  image: null,
  input: null,
  reconstruction: null,
  psnr: null,
  zeroed: null,
  attention: null,
  timing: null,
  tokens: null,
  field: null,
  fieldHover: null,
  views: null,
};

/** ?threads=N: wasm kernel threads of the model worker (default: all the browser offers). */
const askedThreads = Number(new URLSearchParams(location.search).get("threads")) || undefined;
let worker = new ModelWorker(askedThreads);
const zoom = new ZoomView($<HTMLCanvasElement>("zoom"), $("zoom-stats"));
const orbit = new OrbitView($<HTMLCanvasElement>("orbit"), $("orbit-stats"));
/** ?samples=N: the orbit viewer's samples per ray (default 64, as `anr render`). */
const askedSamples = Number(new URLSearchParams(location.search).get("samples"));
if (Number.isInteger(askedSamples) && askedSamples > 0) {
  orbit.samples = askedSamples;
  const select = $<HTMLSelectElement>("orbit-samples");
  if (![...select.options].some((o) => o.value === String(askedSamples)))
    select.append(new Option(String(askedSamples), String(askedSamples)));
  select.value = String(askedSamples);
}

/** Actions run one after another; `idle()` waits for all of them (the tests use it). */
let chain: Promise<void> = Promise.resolve();
function act(what: string | (() => string), task: () => Promise<void>): Promise<void> {
  chain = chain.then(async () => {
    message.hidden = true;
    try {
      await task();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      message.textContent = `Could not ${typeof what === "string" ? what : what()}: ${err.name}: ${err.message}`;
      message.hidden = false;
      console.error(err);
      if (state.device?.device === "webgpu" && gpuFailure(err)) {
        message.textContent += "\nWebGPU failed: the page goes on with wasm.";
        try {
          await switchDevice("wasm");
        } catch (e2) {
          message.textContent += ` That failed too: ${e2 instanceof Error ? e2.message : String(e2)}`;
        }
      }
    }
  });
  return chain;
}

/** A failure of the GPU rather than of the input: a lost device, or a worker that died with it. */
function gpuFailure(err: Error): boolean {
  return (
    err.name === "WorkerError" ||
    /device (was |is )?lost|GPUDevice|GPUBuffer|out of memory/i.test(err.message)
  );
}

async function startDevice(wanted: "webgpu" | "wasm"): Promise<void> {
  const { info } = await worker.request({ type: "init", device: wanted });
  state.device = info;
  $<HTMLSelectElement>("device").value = info.device;
  $("device-status").textContent =
    info.device === "webgpu"
      ? "WebGPU"
      : `wasm, ${info.threads} thread${info.threads === 1 ? "" : "s"}` +
        (info.fallback ? ` (no WebGPU: ${info.fallback})` : "");
  document.body.dataset.device = info.device;
}

function showCard(card: ModelCard): void {
  const rows: [string, string][] = [
    ["model", card.source],
    ["kind", card.kind],
    ["task", card.task === "views" ? "views (NeRF)" : card.fields ? "fields" : "images"],
    [
      "input",
      card.task === "views"
        ? `posed views, ${card.inputSize[0]}×${card.inputSize[1]}, patch ${card.patch}`
        : `${card.inputSize[0]}×${card.inputSize[1]}, ${card.channels} channel(s), patch ${card.patch}`,
    ],
    ["R-tokens", String(card.tokens)],
    [
      "representation",
      `${card.representationSize.toLocaleString("en")} floats per ${card.task === "views" ? "object" : "image"}`,
    ],
    ["parameters", card.parameters.toLocaleString("en")],
    ...(card.fields
      ? [
          ["fields", card.fields.map((f) => (f.units ? `${f.name} (${f.units})` : f.name)).join(", ")] as [
            string,
            string,
          ],
        ]
      : []),
    ["device", $("device-status").textContent ?? ""],
  ];
  const dl = $<HTMLDListElement>("model-card");
  dl.replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dd.dataset.field = k;
      return [dt, dd];
    }),
  );
}

async function openModel(bytes: ArrayBuffer, source: string): Promise<void> {
  // The worker takes a copy: the page keeps the bytes to reopen them on a device switch.
  const { card } = await worker.request({ type: "load-model", bytes: bytes.slice(0), source });
  state.card = card;
  state.modelBytes = bytes;
  showCard(card);
  document.body.dataset.task = card.task;
  if (card.task === "views") {
    await encodeObject(viewsObject, state.views?.support ?? supportIndices());
    return;
  }
  for (const c of [$<HTMLCanvasElement>("input"), $<HTMLCanvasElement>("reconstruction")]) {
    c.width = card.inputSize[1];
    c.height = card.inputSize[0];
  }
  if (state.image) await encodeImage(state.image.name, state.image.blob);
}

/** The object the orbit viewer shows: the first held-out one until another is picked. */
let viewsObject: ShippedObject = OBJECTS[0]!;

/** The support view indices typed in the page ("0, 8, 16"). */
function supportIndices(): number[] {
  const text = $<HTMLInputElement>("support").value;
  const indices = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (indices.length === 0 || !indices.every((i) => Number.isInteger(i) && i >= 0))
    throw new Error(`support views "${text}": expected view numbers separated by commas, e.g. 0, 8, 16`);
  return indices;
}

/**
 * Encode `support` views of `object` with the open view-synthesis model (in the worker), show them,
 * and start the orbit viewer at support view 0's camera.
 */
async function encodeObject(object: ShippedObject, support: number[]): Promise<void> {
  const card = state.card;
  if (card?.task !== "views") throw new Error("open a view-synthesis (NeRF) model first");
  const [h, w] = card.inputSize;
  if (h !== w) throw new Error(`the orbit viewer needs square views; the model reads ${h}×${w}`);
  const views = await supportViews(object, support, h);
  const { encodeMs } = await worker.request({
    type: "encode-views",
    views: { pixels: views.pixels.slice(), poses: views.poses.slice(), focals: views.focals.slice() },
  });
  viewsObject = object;
  state.views = { object: object.id, support, ...views, encodeMs };
  $<HTMLInputElement>("support").value = support.join(", ");
  const strip = $("support-views");
  strip.replaceChildren(
    ...support.map((i, k) => {
      const figure = document.createElement("figure");
      const canvas = pixelsToCanvas(views.pixels.subarray(k * 3 * h * w, (k + 1) * 3 * h * w), 3, h, w);
      const caption = document.createElement("figcaption");
      caption.textContent = `view ${i}`;
      figure.append(canvas, caption);
      return figure;
    }),
  );
  $("views-timing").textContent =
    `${object.id}${object.heldOut ? " (held out: the shipped model never saw it)" : ""}: ` +
    `${support.length} support views encoded in ${encodeMs.toFixed(0)} ms`;
  for (const b of document.querySelectorAll<HTMLButtonElement>("#objects button"))
    b.classList.toggle("current", b.dataset.id === object.id);
  // The viewer renders on its own; `idle()` waits for it, the next action does not.
  void orbit.show(
    async (camera) => {
      const { rgb, pose, ms } = await worker.request({ type: "render", camera });
      return { rgb, pose, ms };
    },
    views,
    h,
  );
}

async function encodeImage(name: string, blob: Blob): Promise<void> {
  const card = state.card;
  if (!card) throw new Error("open a model first");
  if (card.task !== "image")
    throw new Error(`${card.source} is a view-synthesis (NeRF) model: images need an image model`);
  const [h, w] = card.inputSize;
  const c = card.channels;
  const pixels = await imageToPixels(blob, h, w, c);
  const reply = await worker.request({ type: "encode", pixels: pixels.slice() });
  state.image = { name, blob };
  state.tokens = null;
  state.input = { pixels, channels: c, height: h, width: w };
  state.reconstruction = reply.reconstruction;
  state.psnr = reply.psnr;
  state.timing = { encodeMs: reply.encodeMs, decodeMs: reply.decodeMs };
  state.zeroed = reply.zeroed;
  state.attention = null;
  $<HTMLCanvasElement>("input")
    .getContext("2d")!
    .putImageData(pixelsToImageData(pixels, c, h, w), 0, 0);
  $<HTMLCanvasElement>("reconstruction")
    .getContext("2d")!
    .putImageData(pixelsToImageData(reply.reconstruction, c, h, w), 0, 0);
  $("psnr").textContent = `${reply.psnr.toFixed(2)} dB PSNR`;
  $("timing").textContent =
    `${name}: encoded in ${reply.encodeMs.toFixed(0)} ms, decoded at ${w}×${h} in ${reply.decodeMs.toFixed(0)} ms`;
  for (const b of document.querySelectorAll<HTMLButtonElement>("#photos button"))
    b.classList.toggle("current", b.dataset.name === name);
  await showField();
  // The view decodes on its own; `idle()` waits for it, the next action does not.
  void zoom.show(decodeRegion, state.input);
}

/** Bars of the mean weight over heads per R-token, and what they say in words. */
function showAttention(y: number, x: number, a: Attention): void {
  const chart = $<HTMLCanvasElement>("attention-chart");
  const ctx = chart.getContext("2d")!;
  const mean = new Float32Array(a.tokens);
  for (let h = 0; h < a.heads; h++)
    for (let t = 0; t < a.tokens; t++) mean[t]! += a.weights[h * a.tokens + t]! / a.heads;
  const peak = Math.max(...mean, 1e-9);
  const bar = chart.width / a.tokens;
  ctx.clearRect(0, 0, chart.width, chart.height);
  for (let t = 0; t < a.tokens; t++) {
    const v = mean[t]! / peak;
    ctx.fillStyle = mean[t] === 0 ? "#ddd" : "#1d6fd3";
    const height = mean[t] === 0 ? 2 : Math.max(2, v * (chart.height - 4));
    ctx.fillRect(t * bar + 1, chart.height - height, bar - 2, height);
  }
  const used = [...mean].filter((w) => w > 0).length;
  const top = [...mean.keys()]
    .sort((i, j) => mean[j]! - mean[i]!)
    .slice(0, 3)
    .map((t) => `#${t} ${mean[t]!.toFixed(2)}`);
  const [h, w] = state.card!.inputSize;
  $("attention-text").textContent =
    `Pixel (${(((y + 1) / 2) * h - 0.5).toFixed(1)}, ${(((x + 1) / 2) * w - 0.5).toFixed(1)}) attends to ` +
    `${used} of ${a.tokens} R-tokens (mean over ${a.heads} heads; most: ${top.join(", ")}). ` +
    `The threshold zeroes ${(100 * a.zeroed).toFixed(0)}% of its weights` +
    (state.zeroed === null ? "." : `, ${(100 * state.zeroed).toFixed(0)}% over the whole image.`);
}

/** Hover requests coalesce: one in flight, and only the latest position waits behind it. */
let hoverBusy = false;
let hoverNext: [number, number] | null = null;
async function hover(y: number, x: number): Promise<void> {
  if (state.card?.kind !== "ANR" || !state.input) return;
  if (hoverBusy) {
    hoverNext = [y, x];
    return;
  }
  hoverBusy = true;
  try {
    const { attention } = await worker.request({ type: "attention", y, x });
    state.attention = { y, x, attention };
    showAttention(y, x, attention);
  } catch (e) {
    $("attention-text").textContent = `No attention here: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    hoverBusy = false;
    const next = hoverNext;
    hoverNext = null;
    if (next) void hover(...next);
  }
}
zoom.onHover = (y, x) => void hover(y, x);

const decodeRegion = async (region: Region, width: number, height: number) => {
  const { rgb, ms } = await worker.request({ type: "decode", region, width, height });
  return { rgb, ms };
};

/** Open the zoo model `name` (models/zoo.json). */
async function openZooModel(name: string): Promise<void> {
  const entry = ZOO.find((m) => m.name === name);
  if (!entry) throw new Error(`no model "${name}" in the zoo (it has ${ZOO.map((m) => m.name).join(", ")})`);
  const res = await fetch(entry.url);
  if (!res.ok) throw new Error(`${entry.url}: HTTP ${res.status}`);
  await openModel(await res.arrayBuffer(), entry.file);
  $<HTMLSelectElement>("zoo").value = name;
}

async function openPhoto(name: string, url: string): Promise<void> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  await encodeImage(name, await res.blob());
}

/** One frame of the webcam as a PNG (the camera is on only while it is taken). */
async function webcamFrame(): Promise<Blob> {
  if (!navigator.mediaDevices?.getUserMedia)
    throw new Error("this browser (or an insecure page) has no camera access");
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  try {
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    await video.play();
    // The first frames of a camera are often black while it adjusts: wait a moment.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d")!.drawImage(video, 0, 0);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!blob) throw new Error("the browser could not capture the camera's frame");
    return blob;
  } finally {
    for (const track of stream.getTracks()) track.stop();
  }
}

/** The model files of a run folder (`anr train --out`), the one the page prefers first. */
const RUN_MODELS = ["model.safetensors", "model-ema.safetensors", "checkpoint.safetensors"];

/** A run folder's files (picked, or read from a dropped folder): open its model. */
function openRunFolder(folder: string, files: File[]): Promise<void> {
  return act(`open the run folder ${folder}`, async () => {
    const file = RUN_MODELS.map((name) => files.find((f) => f.name === name)).find((f) => f !== undefined);
    if (!file)
      throw new Error(
        `${folder}: no ${RUN_MODELS.join(", ")} in this folder: is it a run folder (anr train --out)?`,
      );
    await openModel(await file.arrayBuffer(), `${folder}/${file.name}`);
  });
}

/** The files directly inside a dropped folder. */
async function folderFiles(dir: FileSystemDirectoryEntry): Promise<File[]> {
  const reader = dir.createReader();
  const entries: FileSystemEntry[] = [];
  // readEntries returns the entries in batches, then an empty batch.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject),
    );
    if (batch.length === 0) break;
    entries.push(...batch);
  }
  const files = entries.filter((e): e is FileSystemFileEntry => e.isFile);
  return Promise.all(files.map((e) => new Promise<File>((resolve, reject) => e.file(resolve, reject))));
}

/** A file from a picker or a drop: a token file or a model by its contents, else an image. */
function openFile(file: File): Promise<void> {
  if (file.name.toLowerCase().endsWith(".safetensors")) {
    // Queued at once (the bytes are read inside), so that `actions()` right after a drop waits for it.
    let what = `open ${file.name}`;
    return act(
      () => what,
      async () => {
        const bytes = await file.arrayBuffer();
        // The worker tells (the core's isTokenFile); unreadable files go to the model loader.
        const copy = bytes.slice(0);
        const { kind } = await worker.request({ type: "file-kind", bytes: copy, source: file.name }, [copy]);
        const tokens = kind === "tokens";
        what = `open the ${tokens ? "token file" : "model"} ${file.name}`;
        await (tokens ? openTokens(bytes, file.name) : openModel(bytes, file.name));
      },
    );
  }
  return act(`open the image ${file.name}`, () => encodeImage(file.name, file));
}

/** The bytes of the token file the current image came from (see `state.tokens`). */
let tokenBytes: ArrayBuffer | null = null;

/** A token file of the open model: its (first) image, decoded; no input to compare, so no PSNR. */
async function openTokens(bytes: ArrayBuffer, source: string): Promise<void> {
  const card = state.card;
  if (!card) throw new Error("open the model that made the token file first");
  // The worker takes a copy: the page keeps the bytes to reopen them on a device switch.
  const reply = await worker.request({ type: "load-tokens", bytes: bytes.slice(0), source });
  tokenBytes = bytes;
  const [h, w] = card.inputSize;
  const c = card.channels;
  // The reconstruction stands in for the input: the split view's bicubic upsamples it.
  state.image = null;
  state.input = { pixels: reply.reconstruction.slice(), channels: c, height: h, width: w };
  state.reconstruction = reply.reconstruction;
  state.psnr = null;
  state.zeroed = reply.zeroed;
  state.attention = null;
  state.tokens = { source, name: reply.name };
  const image = pixelsToImageData(reply.reconstruction, c, h, w);
  // No input: a token file holds only the representation.
  $<HTMLCanvasElement>("input").getContext("2d")!.clearRect(0, 0, w, h);
  $<HTMLCanvasElement>("reconstruction").getContext("2d")!.putImageData(image, 0, 0);
  $("psnr").textContent = "no input: decoded from tokens";
  $("timing").textContent =
    `${source}: ${reply.name}${reply.instances > 1 ? ` (1 of ${reply.instances})` : ""} decoded at ${w}×${h} ` +
    `in ${reply.decodeMs.toFixed(0)} ms` +
    (reply.checked ? "" : "; the file records no fingerprint of its weights (older anr): not checked");
  for (const b of document.querySelectorAll<HTMLButtonElement>("#photos button"))
    b.classList.remove("current");
  await showField();
  void zoom.show(decodeRegion, state.input);
}

/** Side of the field view's decode (its canvas's pixels). */
const FIELD_SIZE = 256;

/** Blue (low) to red (high): the field view's false colour for t in [0, 1], as RGB bytes. */
function ramp(t: number): [number, number, number] {
  const u = Math.min(1, Math.max(0, t));
  return [Math.round(255 * u), Math.round(255 * (1 - Math.abs(2 * u - 1)) * 0.8), Math.round(255 * (1 - u))];
}

/**
 * Field models: decode the channel chosen in the field view (the first at first) at FIELD_SIZE²,
 * in physical units (the model's output in [0, 1] is (value + shift) · scale, which `anr decode`
 * undoes the same way), and draw it with its legend.
 */
async function showField(): Promise<void> {
  const fields = state.card?.fields ?? [];
  $("field-view").hidden = fields.length === 0;
  state.field = null;
  state.fieldHover = null;
  if (fields.length === 0) return;
  const picker = $<HTMLSelectElement>("field-channel");
  const names = fields.map((f) => (f.units ? `${f.name} (${f.units})` : f.name));
  if ([...picker.options].map((o) => o.text).join("\n") !== names.join("\n"))
    picker.replaceChildren(...names.map((text, k) => new Option(text, String(k))));
  picker.parentElement!.hidden = fields.length < 2;
  const k = Math.min(Math.max(0, Number(picker.value) || 0), fields.length - 1);
  const channel = fields[k]!;
  const n = FIELD_SIZE;
  const { rgb } = await decodeRegion({ y0: -1, x0: -1, y1: 1, x1: 1 }, n, n);
  // The decode is channel-major (C, n, n).
  const values = rgb.slice(k * n * n, (k + 1) * n * n).map((v) => v / channel.scale - channel.shift);
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) if (Number.isFinite(v)) [min, max] = [Math.min(min, v), Math.max(max, v)];
  state.field = { channel: k, name: channel.name, units: channel.units, size: n, values, min, max };
  const ctx = $<HTMLCanvasElement>("field").getContext("2d")!;
  const image = ctx.createImageData(n, n);
  const span = max - min || 1;
  for (let k = 0; k < n * n; k++) image.data.set([...ramp((values[k]! - min) / span), 255], 4 * k);
  ctx.putImageData(image, 0, 0);
  const legend = $<HTMLCanvasElement>("field-legend");
  const lctx = legend.getContext("2d")!;
  for (let x = 0; x < legend.width; x++) {
    const [r, g, b] = ramp(x / (legend.width - 1));
    lctx.fillStyle = `rgb(${r} ${g} ${b})`;
    lctx.fillRect(x, 0, 1, legend.height);
  }
  const unit = channel.units ? ` ${channel.units}` : "";
  $("field-legend-text").textContent =
    `${channel.name}: ${min.toPrecision(4)}${unit} (blue) to ${max.toPrecision(4)}${unit} (red), decoded at ${n}×${n}`;
}

/** The field's value under the cursor, in physical units. */
function fieldHover(ev: MouseEvent): void {
  const f = state.field;
  if (!f) return;
  const box = $<HTMLCanvasElement>("field").getBoundingClientRect();
  const i = Math.min(f.size - 1, Math.max(0, Math.floor(((ev.clientY - box.top) / box.height) * f.size)));
  const j = Math.min(f.size - 1, Math.max(0, Math.floor(((ev.clientX - box.left) / box.width) * f.size)));
  const value = f.values[i * f.size + j]!;
  state.fieldHover = { i, j, value };
  $("field-value").textContent =
    `${f.name} = ${value.toPrecision(5)}${f.units ? ` ${f.units}` : ""} at pixel (${i}, ${j}) of ${f.size}×${f.size}`;
}

/** The current image's R-tokens as a token file (`anr decode tokens.safetensors --model …`). */
async function downloadTokens(): Promise<void> {
  if (!state.input) throw new Error("encode an image first");
  const name = state.image?.name ?? state.tokens?.name ?? "image";
  const { bytes } = await worker.request({ type: "save-tokens", name });
  const a = document.createElement("a");
  // A copy: the Blob wants bytes of a plain (not shared) ArrayBuffer.
  a.href = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type: "application/octet-stream" }));
  a.download = `${name.replace(/\.[^.]*$/, "")}.tokens.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** The download size typed beside the PNG and .npy buttons. */
function downloadSize(): [number, number] {
  const width = Number($<HTMLInputElement>("png-width").value);
  const height = Number($<HTMLInputElement>("png-height").value);
  if (!(
    Number.isInteger(width) &&
    Number.isInteger(height) &&
    width > 0 &&
    height > 0 &&
    width * height <= 4096 * 4096
  ))
    throw new Error(`size ${width}×${height}: expected whole numbers above 0, at most 4096² pixels`);
  return [width, height];
}

/** Save `blob` as `name` (the browser's download). */
function download(blob: Blob, name: string): void {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** The current image's name without its extension, for downloads. */
const stem = (): string => (state.image?.name ?? state.tokens?.name ?? "image").replace(/\.[^.]*$/, "");

async function downloadPng(): Promise<void> {
  const { card, input } = state;
  if (!card || !input) throw new Error("encode an image first");
  const [width, height] = downloadSize();
  const { rgb } = await decodeRegion({ y0: -1, x0: -1, y1: 1, x1: 1 }, width, height);
  const blob = await new Promise<Blob | null>((resolve) =>
    pixelsToCanvas(rgb, card.channels, height, width).toBlob(resolve, "image/png"),
  );
  if (!blob) throw new Error("the browser could not encode the PNG");
  download(blob, `${stem()}-${width}x${height}.png`);
}

/**
 * The decoded values at the download size as a NumPy file (float32, NumPy's own bytes). Images:
 * (H, W, C), the decode in [0, 1], not clamped. Fields: in physical units, shaped as
 * `anr decode` writes them ((H, W) for one channel, else (C, H, W)), so the files agree.
 */
async function downloadNpy(): Promise<void> {
  const { card, input } = state;
  if (!card || !input) throw new Error("encode an image first");
  const [width, height] = downloadSize();
  const { rgb } = await decodeRegion({ y0: -1, x0: -1, y1: 1, x1: 1 }, width, height);
  const c = card.channels;
  const n = width * height;
  let array: { shape: number[]; data: Float32Array };
  if (card.fields) {
    const fields = card.fields;
    const data = rgb.map((v, k) => v / fields[Math.floor(k / n)]!.scale - fields[Math.floor(k / n)]!.shift);
    array = { shape: c === 1 ? [height, width] : [c, height, width], data };
  } else {
    const data = new Float32Array(c * n);
    for (let k = 0; k < n; k++) for (let ch = 0; ch < c; ch++) data[k * c + ch] = rgb[ch * n + k]!;
    array = { shape: [height, width, c], data };
  }
  // encodeNpy allocates a plain ArrayBuffer; its type says ArrayBufferLike.
  const bytes = encodeNpy(array) as Uint8Array<ArrayBuffer>;
  download(new Blob([bytes], { type: "application/octet-stream" }), `${stem()}-${width}x${height}.npy`);
}

/** A new worker on another device, with the same model and image. */
async function switchDevice(wanted: "webgpu" | "wasm"): Promise<void> {
  worker.terminate();
  worker = new ModelWorker(askedThreads);
  await startDevice(wanted);
  // The new worker has no object encoded: the viewer renders after openModel encodes it again.
  await orbit.settled();
  if (state.modelBytes && state.card) await openModel(state.modelBytes, state.card.source);
  if (state.tokens && tokenBytes) await openTokens(tokenBytes, state.tokens.source);
}

// ---- wiring ----
for (const p of PHOTOS) {
  const b = document.createElement("button");
  b.type = "button";
  b.title = p.name;
  b.dataset.name = p.name;
  const img = document.createElement("img");
  img.src = p.url;
  img.alt = p.name;
  b.append(img);
  b.onclick = () => act(`open the photo ${p.name}`, () => openPhoto(p.name, p.url));
  $("photos").append(b);
}
for (const m of ZOO) {
  const option = document.createElement("option");
  option.value = m.name;
  option.textContent = m.name;
  option.title = m.data;
  $("zoo").append(option);
}
$("model-shipped").onclick = () => {
  const name = $<HTMLSelectElement>("zoo").value;
  void act(`open the zoo model ${name}`, () => openZooModel(name));
};
for (const o of OBJECTS) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.id = o.id;
  b.title = `${o.id}${o.heldOut ? " (held out)" : ""}`;
  const img = document.createElement("img");
  img.src = o.views[0]!.url;
  img.alt = o.id;
  const label = document.createElement("span");
  label.textContent = o.heldOut ? `${o.id}*` : o.id;
  b.append(img, label);
  b.onclick = () => act(`encode the object ${o.id}`, () => encodeObject(o, supportIndices()));
  $("objects").append(b);
}
$<HTMLInputElement>("support").onchange = () =>
  act("encode the support views", () => encodeObject(viewsObject, supportIndices()));
const orbitSettings = () =>
  act("change the orbit viewer's settings", () =>
    orbit.configure(
      Number($<HTMLSelectElement>("orbit-size").value),
      Number($<HTMLSelectElement>("orbit-samples").value),
    ),
  );
$("orbit-size").onchange = orbitSettings;
$("orbit-samples").onchange = orbitSettings;
$("npy-download").onclick = () => act("download the .npy", downloadNpy);
for (const id of ["model-file", "image-file", "tokens-file"]) {
  const input = $<HTMLInputElement>(id);
  input.onchange = () => {
    const file = input.files?.[0];
    input.value = "";
    if (file) void openFile(file);
  };
}
$<HTMLInputElement>("run-folder").onchange = (ev) => {
  const input = ev.target as HTMLInputElement;
  const files = [...(input.files ?? [])];
  input.value = "";
  // Only the folder's own files: a run folder's models are at its top (samples/ is below).
  const top = files.filter((f) => f.webkitRelativePath.split("/").length === 2);
  const folder = files[0]?.webkitRelativePath.split("/")[0] ?? "folder";
  void openRunFolder(folder, top);
};
$("webcam").onclick = () =>
  act("take a webcam snapshot", async () => encodeImage("webcam", await webcamFrame()));
$("png-download").onclick = () => act("download the PNG", downloadPng);
$("field").onmousemove = fieldHover;
$("field-channel").onchange = () => act("show the field channel", showField);
$("tokens-download").onclick = () => act("download the R-tokens", downloadTokens);
$("zoom-in").onclick = () => void zoom.zoomAbout(2);
$("zoom-out").onclick = () => void zoom.zoomAbout(0.5);
$("zoom-reset").onclick = () => void zoom.reset();
$<HTMLInputElement>("split").oninput = (ev) => zoom.setSplit(Number((ev.target as HTMLInputElement).value));
$<HTMLSelectElement>("device").onchange = (ev) => {
  const wanted = (ev.target as HTMLSelectElement).value as "webgpu" | "wasm";
  void act(`switch to ${wanted}`, () => switchDevice(wanted));
};
document.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  document.body.classList.add("dropping");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  document.body.classList.remove("dropping");
  const entry = ev.dataTransfer?.items[0]?.webkitGetAsEntry();
  if (entry?.isDirectory) {
    const dir = entry as FileSystemDirectoryEntry;
    void folderFiles(dir).then(
      (files) => openRunFolder(dir.name, files),
      (e: unknown) => act(`read the folder ${dir.name}`, () => Promise.reject(e)),
    );
    return;
  }
  const file = ev.dataTransfer?.files[0];
  if (file) void openFile(file);
});

// WebGPU where the browser has it (else wasm); the query string can ask for one: ?device=wasm.
const asked = new URLSearchParams(location.search).get("device");
const firstDevice = asked === "wasm" || (asked !== "webgpu" && !("gpu" in navigator)) ? "wasm" : "webgpu";
void act("start jax-js", () => startDevice(firstDevice));
const firstModel = new URLSearchParams(location.search).get("model") ?? DEFAULT_MODEL;
void act(`open the zoo model ${firstModel}`, () => openZooModel(firstModel));
// ?photo=none opens no photo (the browser tests drop their own image).
const firstPhoto = new URLSearchParams(location.search).get("photo") === "none" ? undefined : PHOTOS[0];
// Not with a view-synthesis model: it shows an object instead.
if (firstPhoto)
  void act(`open the photo ${firstPhoto.name}`, async () => {
    if (state.card?.task !== "views") await openPhoto(firstPhoto.name, firstPhoto.url);
  });

/** Resolves once the queued actions are done, including any they queued meanwhile. */
async function actionsDone(): Promise<void> {
  let seen: Promise<void>;
  do {
    seen = chain;
    await seen;
  } while (seen !== chain);
}

/** What the browser tests read: the state, and promises for the queued work. */
const page = {
  state,
  /** The queued actions are done (the zoomable view may still be decoding). */
  actions: actionsDone,
  /** The queued actions and the zoomable view's decode are done. */
  idle: async (): Promise<void> => {
    await actionsDone();
    await zoom.settled();
    await orbit.settled();
    await actionsDone();
  },
  zoom,
  /** The orbit viewer (view-synthesis models): its camera, its frame on screen, its previews. */
  orbit,
  /** Hover the pixel at model coordinates (y, x); resolves once its attention is shown. */
  hover,
  /** Decode the whole current image at width × height in the worker: its milliseconds (bench:web). */
  decodeMs: async (width: number, height: number): Promise<number> =>
    (await decodeRegion({ y0: -1, x0: -1, y1: 1, x1: 1 }, width, height)).ms,
};
(window as unknown as { anrPage: typeof page }).anrPage = page;
