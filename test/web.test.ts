/**
 * The web app (web/) in a real browser: Debian's Chromium, headless, driven by playwright-core.
 * The test builds the app with Vite's API into a temporary folder, serves it with the
 * cross-origin isolation headers from a small static server, and checks in the page: the shipped
 * model and its card; a dropped model and a picked run folder; the encode and decode of a known
 * image against the Node decode of the same model and image (wasm within 1e-5, WebGPU on
 * SwiftShader within 1e-3); that zooming raises the decoded resolution of the visible region; the
 * hovered pixel's attention against Node's; the R-tokens downloaded as a token file that the
 * CLI decodes to the page's pixels, opened again, and refused when other weights made it (as by
 * the CLI, naming both fingerprints); a field model's decode in physical units (K) with its
 * legend and the value under the cursor, against Node's; that a corrupt model file is an error message naming
 * the problem, after which the page still works; a webcam snapshot; a device switch; a token file
 * of another model refused with the core's tokensMismatch message; the .npy download against the
 * page's decode; the orbit viewer of the shipped NeRF model against Node's render of the same
 * support views and camera, and a drag that previews at low resolution and turns the view.
 * Screenshots go to reports/web/ (gitignored).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { chromium, type Browser, type Page } from "playwright-core";
import {
  createImageDecoder,
  createViewRenderer,
  hyperNetwork,
  initBackend,
  modelFromBytes,
  modelToBytes,
  parseHyperNetworkConfig,
  representationSize,
  toDevice,
  tokensFromBytes,
  tokensToBytes,
  type HyperNetworkConfig,
} from "../src/index.js";
import {
  readF32,
  tokensMismatch,
  weightsFingerprint,
  hyponet,
  refParams,
  viewsToDevice,
  type Taps,
} from "../src/lowlevel.js";
import { parseNpy } from "../src/io/npy.js";
import { openLearnitObject } from "../src/data/learnit.js";
import { lookAtPose } from "../src/rendering/rays.js";
import { disposeParams, initHostParams, toHost } from "../src/model/params.js";
import { numpy as np } from "../src/backend/jax.js";
import { skipWithoutData, tinyConfig } from "./fixtures.js";
import { runCli } from "./cli-helpers.js";
import { buildApp, CHROMIUM, CHROMIUM_ARGS, serve } from "../bench/web-browser.js";

const root = join(import.meta.dirname, "..");
const MODEL = join(root, "models", "demo-photos-anr.safetensors");
const NERF_MODEL = join(root, "models", "multiview-nerf-anr.safetensors");
const ARTIFACTS = join(root, "reports", "web");

/** The page's state as the tests read it (web/src/main.ts `anrPage`). */
interface PageState {
  card: {
    source: string;
    kind: string;
    task: string;
    inputSize: [number, number];
    representationSize: number;
  } | null;
  device: { device: string; threads: number; fallback?: string } | null;
  psnr: number | null;
  tokens: { source: string; name: string } | null;
}

/** Drop a file on the page as a user would: a DataTransfer holding a File, in a drop event. */
async function dropFile(page: Page, name: string, bytes: Uint8Array, type: string): Promise<void> {
  await page.evaluate(
    ({ name, base64, type }) => {
      const data = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data], name, { type }));
      document.body.dispatchEvent(
        new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }),
      );
    },
    { name, base64: Buffer.from(bytes).toString("base64"), type },
  );
  await actions(page);
}

const actions = (page: Page) => page.evaluate(() => (window as unknown as AnrWindow).anrPage.actions());
const idle = (page: Page) => page.evaluate(() => (window as unknown as AnrWindow).anrPage.idle());
type OrbitWindow = {
  anrPage: {
    orbit: {
      frame: {
        rgb: Float32Array;
        size: number;
        full: boolean;
        pose: Float32Array;
        camera: {
          eye: [number, number, number];
          focal: [number, number];
          samples: number;
          near: number;
          far: number;
        };
        azimuth: number;
      } | null;
      previews: number;
      lastPreviewSize: number;
    };
    state: {
      views: {
        object: string;
        support: number[];
        pixels: Float32Array;
        poses: Float32Array;
        focals: Float32Array;
      } | null;
    };
  };
};
type AnrWindow = {
  anrPage: {
    actions(): Promise<void>;
    idle(): Promise<void>;
    decodeMs(width: number, height: number): Promise<number>;
    state: PageState & {
      field: { values: Float32Array } | null;
      fieldHover: { i: number; j: number; value: number } | null;
      timing: { encodeMs: number; decodeMs: number } | null;
      input: { pixels: Float32Array } | null;
      reconstruction: Float32Array | null;
      attention: {
        y: number;
        x: number;
        attention: { heads: number; tokens: number; weights: Float32Array; zeroed: number };
      } | null;
    };
  };
};
const state = (page: Page): Promise<PageState> =>
  page.evaluate(() => {
    const { card, device, psnr, tokens } = (window as unknown as AnrWindow).anrPage.state;
    return { card, device, psnr, tokens };
  });
/** The encoded input and its reconstruction, as plain arrays. */
const decoded = (page: Page) =>
  page.evaluate(() => {
    const s = (window as unknown as AnrWindow).anrPage.state;
    return { input: Array.from(s.input?.pixels ?? []), reconstruction: Array.from(s.reconstruction ?? []) };
  });
const message = (page: Page) =>
  page.evaluate(() => {
    const m = document.getElementById("message")!;
    return m.hidden ? "" : (m.textContent ?? "");
  });
const zoomData = (page: Page) =>
  page.evaluate(() => ({ ...(document.getElementById("zoom") as HTMLCanvasElement).dataset }));

/** The known image: a test photo at the model's 32×32, as PNG bytes and (C, H, W) floats in [0, 1]. */
async function knownImage(): Promise<{ png: Uint8Array; chw: Float32Array }> {
  const png = await sharp(join(root, "data", "photos", "test", "face-puppy.png"))
    .resize(32, 32, { fit: "cover" })
    .png()
    .toBuffer();
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const chw = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let k = 0; k < n; k++) chw[c * n + k] = data[3 * k + c]! / 255;
  return { png: new Uint8Array(png), chw };
}

/**
 * The Node side of the same model and image: the decode at the model's size mapped to [0, 1] as
 * the page does, and ANR's attention weights after the threshold at one coordinate.
 */
async function nodeReference(model: Uint8Array, chw: Float32Array) {
  await initBackend();
  const { config, weights } = modelFromBytes(model, MODEL);
  const P = toDevice(weights);
  const x = np.array(
    chw.map((v) => 2 * v - 1),
    { shape: [1, 3, 32, 32] },
  );
  const generated = hyperNetwork(P, config, x);
  const decode = createImageDecoder(config);
  const reconstruction = (await decode(P, generated, 1, 32, 32)).map((v) => (v + 1) / 2);
  decode.dispose();
  const attention = async (y: number, x: number): Promise<Float32Array> => {
    const taps: Taps = new Map();
    hyponet(P, config, np.array([y, x], { shape: [1, 1, 2] }), refParams(generated), taps).dispose();
    let weights: Float32Array | undefined;
    for (const [name, a] of taps) {
      if (name === "anr.attn") weights = await readF32(a);
      else a.dispose();
    }
    return weights!;
  };
  const dispose = () => {
    disposeParams(generated);
    disposeParams(P);
  };
  return { reconstruction, attention, dispose };
}

/**
 * A field model (random weights; two channels: "t2m" in K, normalised as (K − 250) · 0.02, and
 * "u10" in m/s, as (m/s + 20) · 0.025), a token file of a smooth 16×16 field it encoded, and Node's
 * decode of it at 256² in physical units (as `anr decode`), one array per channel.
 */
async function fieldModel(): Promise<{ model: Uint8Array; tokens: Uint8Array; physical: Float32Array[] }> {
  const tiny = tinyConfig("ANR");
  const channels = [
    { name: "t2m", units: "K", shift: -250, scale: 0.02 },
    { name: "u10", units: "m/s", shift: 20, scale: 0.025 },
  ];
  const config = parseHyperNetworkConfig({
    ...tiny,
    tokenizer: { name: "ImgTokenizer", args: { ...tiny.tokenizer.args, img_channels: 2 } },
    hyponet: { ...tiny.hyponet, args: { ...tiny.hyponet.args, out_dim: 2 } },
    channels,
  });
  const weights = initHostParams(config, 0);
  const P = toDevice(weights);
  const input = new Float32Array(512).map((_, k) => 0.5 + 0.4 * Math.sin(k / 16) * Math.cos(k % 16));
  const generated = hyperNetwork(
    P,
    config,
    np
      .array(input, { shape: [1, 2, 16, 16] })
      .mul(2)
      .sub(1),
  );
  const tokens = tokensToBytes({
    names: ["t2m"],
    inputSize: [16, 16],
    config,
    tensors: await toHost(refParams(generated)),
    weights: weightsFingerprint(weights),
  });
  const decode = createImageDecoder(config);
  const out = await decode(P, generated, 1, 256, 256);
  const physical = channels.map(({ shift, scale }, k) =>
    out.slice(k * 65536, (k + 1) * 65536).map((v) => (v + 1) / 2 / scale - shift),
  );
  decode.dispose();
  disposeParams(generated);
  disposeParams(P);
  return { model: modelToBytes(config, weights), tokens, physical };
}

/** A token file of another kind of model (a random-weight TransINR-style MLP on 16×16 images). */
async function mlpTokens(): Promise<Uint8Array> {
  const config = parseHyperNetworkConfig(tinyConfig("HypoMlp"));
  const weights = initHostParams(config, 1);
  const P = toDevice(weights);
  const generated = hyperNetwork(P, config, np.zeros([1, 3, 16, 16]));
  const bytes = tokensToBytes({
    names: ["mlp.png"],
    inputSize: [16, 16],
    config,
    tensors: await toHost(generated),
    weights: weightsFingerprint(weights),
  });
  disposeParams(P);
  return bytes;
}

test("tokensMismatch: config (kind first, else the first differing field), weights, or nothing", async () => {
  const anr = parseHyperNetworkConfig(tinyConfig("ANR"));
  const tokens = tokensFromBytes(await mlpTokens());
  assert.deepEqual(tokensMismatch(tokens, anr, "crc32:00000000", "m.safetensors"), {
    reason: "config",
    message:
      'was encoded by a model with a different config than m.safetensors (hyponet.name is "HypoMlp" in the token file, "ANR" in m.safetensors)',
  });
  const wider = parseHyperNetworkConfig({
    ...tinyConfig("HypoMlp"),
    hyponet: { name: "HypoMlp", args: { ...tinyConfig("HypoMlp").hyponet.args, hidden_dim: 48 } },
  });
  assert.match(
    tokensMismatch(tokens, wider)?.message ?? "",
    /\(hyponet\.args\.hidden_dim is 32 in the token file, 48 in the model\)$/,
  );
  // The same config with its keys in another order is the same config.
  const reordered = Object.fromEntries(Object.entries(tokens.config).reverse()) as HyperNetworkConfig;
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(tokens.config));
  assert.equal(tokensMismatch(tokens, reordered, tokens.weights), null);
  assert.deepEqual(tokensMismatch(tokens, tokens.config, "crc32:00000000", "m"), {
    reason: "weights",
    message: `encoded by weights ${tokens.weights}, but m holds weights crc32:00000000`,
  });
  // No fingerprint to compare (not given, or not recorded): only the config is checked.
  assert.equal(tokensMismatch(tokens, tokens.config), null);
  assert.equal(tokensMismatch({ ...tokens, weights: undefined }, tokens.config, "crc32:00000000"), null);
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test("the web app in headless Chromium: model, encode, zoom, drop, errors", async (t) => {
  if (skipWithoutData(t, existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (Debian package chromium)`)) return;
  const dist = await mkdtemp(join(tmpdir(), "anr-web-"));
  await buildApp(dist);
  await mkdir(ARTIFACTS, { recursive: true });
  const model = new Uint8Array(await readFile(MODEL));
  const known = await knownImage();
  const reference = await nodeReference(model, known.chw);
  const { server, url } = await serve(dist);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${url}?device=wasm&photo=none`);
    await page.waitForFunction(() => "anrPage" in window);
    await actions(page);

    await t.test("opens the shipped model and shows its card", async () => {
      const s = await state(page);
      assert.equal(await message(page), "");
      assert.deepEqual(s.device?.device, "wasm");
      assert.equal(s.card?.source, "demo-photos-anr.safetensors");
      assert.equal(s.card?.kind, "ANR");
      assert.equal(s.card?.task, "image");
      assert.deepEqual(s.card?.inputSize, [32, 32]);
      const card = await page.textContent("#model-card");
      assert.match(card ?? "", /kindANR/);
      assert.match(card ?? "", /representation2,048 floats per image/);
      assert.equal(s.card?.representationSize, representationSize(modelFromBytes(model, MODEL).config));
      assert.match(card ?? "", /devicewasm, \d+ threads?/);
    });

    await t.test("opens a model dropped on the page", async () => {
      await dropFile(page, "dropped-demo.safetensors", model, "application/octet-stream");
      assert.equal(await message(page), "");
      assert.equal((await state(page)).card?.source, "dropped-demo.safetensors");
    });

    await t.test("opens the model of a picked run folder", async () => {
      const run = join(dist, "..", "my-run");
      await mkdir(join(run, "samples"), { recursive: true });
      await writeFile(join(run, "model.safetensors"), model);
      await writeFile(join(run, "config.json"), "{}");
      await writeFile(join(run, "samples", "model.safetensors"), "not this one");
      await page.setInputFiles("#run-folder", run);
      await actions(page);
      assert.equal(await message(page), "");
      assert.equal((await state(page)).card?.source, "my-run/model.safetensors");
      await dropFile(page, "dropped-demo.safetensors", model, "application/octet-stream");
    });

    await t.test("encodes a dropped image as Node does (wasm, within 1e-5)", async (t) => {
      await dropFile(page, "known.png", known.png, "image/png");
      assert.equal(await message(page), "");
      const { input, reconstruction } = await decoded(page);
      assert.ok(maxAbsDiff(input, known.chw) <= 1e-7, "the page reads the PNG's pixels unchanged");
      const diff = maxAbsDiff(reconstruction, reference.reconstruction);
      t.diagnostic(`wasm vs Node decode: max |Δ| ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `browser vs Node decode: max |Δ| ${diff}`);
      const psnr = (await state(page)).psnr!;
      assert.ok(Number.isFinite(psnr) && psnr > 5, `PSNR ${psnr}`);
      assert.match((await page.textContent("#psnr")) ?? "", /dB PSNR/);
    });

    await t.test("downloads the decoded values as .npy: (H, W, C) float32, the page's decode", async () => {
      await page.fill("#png-width", "32");
      await page.fill("#png-height", "32");
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#npy-download")]);
      await actions(page);
      assert.equal(await message(page), "");
      assert.equal(download.suggestedFilename(), "known-32x32.npy");
      const file = join(dist, "..", download.suggestedFilename());
      await download.saveAs(file);
      const npy = parseNpy(new Uint8Array(await readFile(file)), file);
      assert.equal(npy.dtype, "<f4");
      assert.deepEqual(npy.shape, [32, 32, 3]);
      // The same decode as the page's reconstruction (C, H, W), bit for bit, interleaved.
      const chw = (await decoded(page)).reconstruction;
      const hwc = new Float32Array(chw.length);
      for (let k = 0; k < 1024; k++) for (let c = 0; c < 3; c++) hwc[3 * k + c] = chw[c * 1024 + k]!;
      assert.equal(maxAbsDiff(npy.data, hwc), 0);
    });

    await t.test("downloads the R-tokens as the CLI's token file, and opens one", async (t) => {
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#tokens-download")]);
      await actions(page);
      assert.equal(await message(page), "");
      assert.equal(download.suggestedFilename(), "known.tokens.safetensors");
      const file = join(dist, "..", download.suggestedFilename());
      await download.saveAs(file);
      const bytes = new Uint8Array(await readFile(file));
      const tokens = tokensFromBytes(bytes, file);
      assert.deepEqual(tokens.names, ["known.png"]);
      assert.deepEqual(tokens.inputSize, [32, 32]);
      assert.equal(tokens.weights, weightsFingerprint(modelFromBytes(model, MODEL).weights));
      // The CLI decodes the page's file to the page's pixels (its PNG rounds them to 8 bits).
      const page32 = (await decoded(page)).reconstruction;
      const out = join(dist, "..", "cli-decode");
      const cli = await runCli(["decode", file, "--model", MODEL, "--size", "32x32", "--out", out]);
      assert.equal(cli.code, 0, cli.err);
      const { data } = await sharp(join(out, "known.32x32.png")).raw().toBuffer({ resolveWithObject: true });
      const png = new Float32Array(page32.length);
      for (let c = 0; c < 3; c++) for (let k = 0; k < 1024; k++) png[c * 1024 + k] = data[3 * k + c]! / 255;
      const clamped = page32.map((v) => Math.min(1, Math.max(0, v)));
      const pngDiff = maxAbsDiff(png, clamped);
      assert.ok(pngDiff <= 0.5 / 255 + 1e-5, `CLI PNG vs page: max |Δ| ${pngDiff}`);
      // …and the core's decoder (the CLI's) on the file's floats, within the wasm tolerance.
      const { config, weights } = modelFromBytes(model, MODEL);
      const P = toDevice(weights);
      const generated = Object.fromEntries(
        [...tokens.tensors].map(([name, t]) => [name, np.array(t.data, { shape: t.shape })]),
      );
      const decode = createImageDecoder(config);
      const node32 = (await decode(P, generated, 1, 32, 32)).map((v) => (v + 1) / 2);
      decode.dispose();
      disposeParams(generated);
      disposeParams(P);
      const diff = maxAbsDiff(node32, page32);
      t.diagnostic(`CLI decode of the page's token file vs the page: max |Δ| ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `CLI decode of the page's tokens vs page: max |Δ| ${diff}`);

      // The file opened again (dropped) decodes to the same image.
      await dropFile(page, "known.tokens.safetensors", bytes, "application/octet-stream");
      assert.equal(await message(page), "");
      const s = await state(page);
      assert.deepEqual(s.tokens, { source: "known.tokens.safetensors", name: "known.png" });
      assert.equal(s.psnr, null);
      assert.equal(maxAbsDiff((await decoded(page)).reconstruction, page32), 0);
      assert.match(
        (await page.textContent("#timing")) ?? "",
        /^known\.tokens\.safetensors: known\.png decoded/,
      );

      // Tokens of other weights (same config) are refused, naming both fingerprints, as by the CLI.
      const other = tokensToBytes({ ...tokens, weights: "crc32:00000000" });
      await dropFile(page, "other.safetensors", other, "application/octet-stream");
      assert.match(
        await message(page),
        /Could not open the token file other\.safetensors: InputError: other\.safetensors: encoded by weights crc32:00000000, but dropped-demo\.safetensors holds weights crc32:[0-9a-f]{8}/,
      );
      await writeFile(join(dist, "..", "other.safetensors"), other);
      const refused = await runCli([
        "decode",
        join(dist, "..", "other.safetensors"),
        "--model",
        MODEL,
        "--size",
        "8x8",
        "--out",
        out,
      ]);
      assert.equal(refused.code, 2);
      assert.match(refused.err, /encoded by weights crc32:00000000, but .* holds weights crc32:[0-9a-f]{8}/);
      assert.equal(maxAbsDiff((await decoded(page)).reconstruction, page32), 0, "the image stays");

      // A token file of another kind of model: the worker's message is the core's tokensMismatch.
      const mlp = await mlpTokens();
      await dropFile(page, "mlp.tokens.safetensors", mlp, "application/octet-stream");
      const mismatch = tokensMismatch(
        tokensFromBytes(mlp),
        modelFromBytes(model, MODEL).config,
        weightsFingerprint(modelFromBytes(model, MODEL).weights),
        "dropped-demo.safetensors",
      );
      assert.equal(
        await message(page),
        `Could not open the token file mlp.tokens.safetensors: InputError: mlp.tokens.safetensors: ${mismatch?.message}`,
      );
      assert.match(
        mismatch?.message ?? "",
        /hyponet\.name is "HypoMlp" in the token file, "ANR" in dropped-demo/,
      );
      await page.setInputFiles("#tokens-file", file);
      await actions(page);
      assert.equal(await message(page), "", "a picked token file opens too");
    });

    await t.test("zooming decodes the visible region at a higher resolution", async () => {
      await idle(page);
      const whole = await zoomData(page);
      assert.equal(whole.frameSize, "384");
      assert.equal(Number(whole.regionModelPixels), 32);
      assert.equal(Number(whole.samplesPerModelPixel), 12);
      await page.screenshot({ path: join(ARTIFACTS, "web-whole.png") });
      await page.click("#zoom-in");
      await page.click("#zoom-in");
      await idle(page);
      const zoomed = await zoomData(page);
      assert.equal(zoomed.frameSize, "384", "still decoded at the canvas's resolution");
      assert.equal(Number(zoomed.regionModelPixels), 8, "a quarter of the image's width is visible");
      assert.equal(Number(zoomed.samplesPerModelPixel), 48, "4× the decoded pixels per model pixel");
      assert.match((await page.textContent("#zoom-stats")) ?? "", /384² in \d+ ms/);
      await page.screenshot({ path: join(ARTIFACTS, "web-zoomed.png") });
    });

    await t.test("hovering a pixel shows the R-tokens it attends to, as Node computes them", async () => {
      const box = (await page.locator("#zoom").boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.6);
      await page.waitForFunction(() => (window as unknown as AnrWindow).anrPage.state.attention !== null);
      await idle(page);
      const { y, x, weights, heads, tokens, zeroed } = await page.evaluate(() => {
        const a = (window as unknown as AnrWindow).anrPage.state.attention!;
        return { y: a.y, x: a.x, ...a.attention, weights: Array.from(a.attention.weights) };
      });
      assert.equal(heads, 4);
      assert.equal(tokens, 32);
      for (let h = 0; h < heads; h++) {
        const row = weights.slice(h * tokens, (h + 1) * tokens);
        assert.ok(Math.abs(row.reduce((s, w) => s + w, 0) - 1) < 1e-5, `head ${h} sums to 1`);
      }
      assert.equal(zeroed, weights.filter((w) => w === 0).length / weights.length);
      const diff = maxAbsDiff(weights, await reference.attention(y, x));
      assert.ok(diff <= 1e-5, `attention, browser vs Node: max |Δ| ${diff}`);
      assert.match((await page.textContent("#attention-text")) ?? "", /attends to \d+ of 32 R-tokens/);
      await page.screenshot({ path: join(ARTIFACTS, "web-attention.png") });
    });

    await t.test("a corrupt model file is an error message, and the page still works", async () => {
      const corrupt = model.slice(0, 4096);
      await dropFile(page, "corrupt.safetensors", corrupt, "application/octet-stream");
      const text = await message(page);
      assert.match(
        text,
        /Could not open the model corrupt\.safetensors: SafetensorsError: .*corrupt\.safetensors/,
      );
      await page.screenshot({ path: join(ARTIFACTS, "web-error.png") });
      assert.equal((await state(page)).card?.source, "dropped-demo.safetensors", "the open model stays");
      const before = (await state(page)).psnr;
      await page.click('#photos button[data-name="face-sunset.png"]');
      await actions(page);
      assert.equal(await message(page), "", "the next action clears the message");
      const after = (await state(page)).psnr;
      assert.ok(after !== null && after !== before, `a new image was encoded (PSNR ${before} → ${after})`);
    });
    await t.test("encodes a webcam snapshot (Chromium's synthetic camera)", async () => {
      await page.click("#webcam");
      await actions(page);
      assert.equal(await message(page), "");
      assert.match((await page.textContent("#timing")) ?? "", /^webcam: encoded in \d+ ms/);
      assert.ok(Number.isFinite((await state(page)).psnr));
    });
    await t.test("bench:web's hooks: decode timings, and ?threads=1 runs wasm on one thread", async () => {
      const ms = await page.evaluate(() => (window as unknown as AnrWindow).anrPage.decodeMs(16, 16));
      assert.ok(Number.isFinite(ms) && ms >= 0, `decodeMs ${ms}`);
      const timing = await page.evaluate(() => (window as unknown as AnrWindow).anrPage.state.timing);
      assert.ok(timing && timing.encodeMs >= 0 && timing.decodeMs >= 0, "the last encode's times");
      const one = await browser!.newPage();
      await one.goto(`${url}?device=wasm&threads=1&photo=none`);
      await one.waitForFunction(() => "anrPage" in window);
      await actions(one);
      assert.equal((await state(one)).device?.threads, 1);
      assert.match((await one.textContent("#model-card")) ?? "", /devicewasm, 1 thread$/m);
      await one.close();
    });
    await t.test(
      "a field model's tokens: false colour, legend and the value under the cursor in K; another channel picked",
      async () => {
        const field = await fieldModel();
        const fp = await browser!.newPage();
        await fp.goto(`${url}?device=wasm&photo=none`);
        await fp.waitForFunction(() => "anrPage" in window);
        await actions(fp);
        await dropFile(fp, "t2m-model.safetensors", field.model, "application/octet-stream");
        await dropFile(fp, "t2m.tokens.safetensors", field.tokens, "application/octet-stream");
        assert.equal(await message(fp), "");
        assert.match((await fp.textContent("#model-card")) ?? "", /fieldst2m \(K\), u10 \(m\/s\)/);
        assert.match(
          (await fp.textContent("#field-legend-text")) ?? "",
          /^t2m: [\d.]+ K \(blue\) to [\d.]+ K \(red\)/,
        );
        const shown = () =>
          fp.evaluate(() => Array.from((window as unknown as AnrWindow).anrPage.state.field?.values ?? []));
        const kelvin = await shown();
        const diff = maxAbsDiff(kelvin, field.physical[0]!);
        assert.ok(diff <= 1e-3, `field in K, browser vs Node: max |Δ| ${diff}`);
        await fp.locator("#field").scrollIntoViewIfNeeded();
        const box = (await fp.locator("#field").boundingBox())!;
        await fp.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.75);
        await fp.waitForFunction(() => (window as unknown as AnrWindow).anrPage.state.fieldHover !== null);
        const hover = await fp.evaluate(() => (window as unknown as AnrWindow).anrPage.state.fieldHover);
        assert.ok(hover, "a value under the cursor");
        assert.ok(
          Math.abs(hover.value - field.physical[0]![hover.i * 256 + hover.j]!) <= 1e-3,
          `value ${hover.value}`,
        );
        assert.match(
          (await fp.textContent("#field-value")) ?? "",
          new RegExp(`^t2m = [\\d.]+ K at pixel \\(${hover.i}, ${hover.j}\\)`),
        );
        // The second channel, picked: its values in m/s, its legend.
        assert.deepEqual(await fp.$$eval("#field-channel option", (os) => os.map((o) => o.textContent)), [
          "t2m (K)",
          "u10 (m/s)",
        ]);
        await fp.selectOption("#field-channel", "1");
        await actions(fp);
        assert.match((await fp.textContent("#field-legend-text")) ?? "", /^u10: -?[\d.]+ m\/s \(blue\)/);
        const wind = await shown();
        const windDiff = maxAbsDiff(wind, field.physical[1]!);
        assert.ok(windDiff <= 1e-3, `u10 in m/s, browser vs Node: max |Δ| ${windDiff}`);
        await fp.screenshot({ path: join(ARTIFACTS, "web-field.png"), fullPage: true });
        // Its .npy: every channel in its units, (C, H, W) as anr decode writes them, the page's values.
        await fp.fill("#png-width", "256");
        await fp.fill("#png-height", "256");
        const [download] = await Promise.all([fp.waitForEvent("download"), fp.click("#npy-download")]);
        const file = join(dist, "..", download.suggestedFilename());
        await download.saveAs(file);
        const npy = parseNpy(new Uint8Array(await readFile(file)), file);
        assert.deepEqual(npy.shape, [2, 256, 256]);
        assert.equal(maxAbsDiff(npy.data.subarray(0, 65536), kelvin), 0);
        assert.equal(maxAbsDiff(npy.data.subarray(65536), wind), 0);
        await fp.close();
      },
    );
    assert.deepEqual(pageErrors, [], "uncaught errors in the page");
    await page.close();

    await t.test(
      "the orbit viewer renders the shipped NeRF model as Node does; dragging turns it",
      async (t) => {
        const op = await browser!.newPage({ viewport: { width: 1100, height: 720 } });
        const errors: string[] = [];
        op.on("pageerror", (e) => errors.push(e.message));
        // 32 samples per ray (the training's) keep the renders short.
        await op.goto(`${url}?device=wasm&model=multiview-nerf-anr&samples=32`);
        await op.waitForFunction(() => "anrPage" in window);
        await idle(op);
        assert.equal(await message(op), "");
        const s = await state(op);
        assert.equal(s.card?.task, "views");
        assert.match((await op.textContent("#model-card")) ?? "", /representation3,072 floats per object/);
        const read = () =>
          op.evaluate(() => {
            const { orbit, state } = (window as unknown as OrbitWindow).anrPage;
            const f = orbit.frame!;
            const v = state.views!;
            return {
              rgb: Array.from(f.rgb),
              size: f.size,
              full: f.full,
              pose: Array.from(f.pose),
              camera: f.camera,
              azimuth: f.azimuth,
              previews: orbit.previews,
              lastPreviewSize: orbit.lastPreviewSize,
              views: {
                object: v.object,
                support: v.support,
                pixels: Array.from(v.pixels),
                poses: Array.from(v.poses),
                focals: Array.from(v.focals),
              },
            };
          });
        const before = await read();
        assert.deepEqual([before.views.object, before.views.support], ["cat", [0, 1, 2]]);
        assert.equal(before.size, 32);
        assert.equal(before.full, true);
        assert.equal(before.camera.samples, 32);
        await op.screenshot({ path: join(ARTIFACTS, "web-orbit.png") });

        // Node: the page's support views, and the camera the page rendered from, through the core.
        const { config, weights } = modelFromBytes(new Uint8Array(await readFile(NERF_MODEL)), NERF_MODEL);
        assert.deepEqual(before.pose, Array.from(lookAtPose(before.camera.eye)), "the orbit camera");
        const P = toDevice(weights);
        const generated = hyperNetwork(
          P,
          config,
          viewsToDevice({
            imgs: Float32Array.from(before.views.pixels),
            poses: Float32Array.from(before.views.poses),
            focals: Float32Array.from(before.views.focals),
            shape: { b: 1, n: 3, h: 32, w: 32 },
          }),
        );
        const render = createViewRenderer(config, {
          chunk: Math.min(1024, before.size ** 2),
          nSamples: before.camera.samples,
          near: before.camera.near,
          far: before.camera.far,
        });
        const node = await render(P, generated, Float32Array.from(before.pose), before.camera.focal, 32, 32);
        render.dispose();
        disposeParams(generated);
        disposeParams(P);
        const diff = maxAbsDiff(before.rgb, node);
        t.diagnostic(`orbit frame, wasm vs Node: max |Δ| ${diff.toExponential(2)}`);
        assert.ok(diff <= 1e-5, `orbit frame, browser vs Node: max |Δ| ${diff}`);
        // The page's support views against the data loader's (sharp's Lanczos-3 instead of a 2×2 mean).
        const cat = await openLearnitObject(join(root, "data", "multiview", "objects", "cat"), 32);
        const loader = await Promise.all([0, 1, 2].map((i) => cat.view(i)));
        const pixelDiff = maxAbsDiff(
          before.views.pixels,
          loader.flatMap((v) => Array.from(v.img.data)),
        );
        t.diagnostic(`support views, page (2×2 mean) vs loader (Lanczos-3): max |Δ| ${pixelDiff.toFixed(3)}`);
        assert.deepEqual(
          before.views.poses,
          Array.from(new Float32Array(loader.flatMap((v) => Array.from(v.pose)))),
        );
        assert.deepEqual(before.views.focals, Array.from(new Float32Array(loader.flatMap((v) => v.focal))));

        // A drag: previews at half the size while the pointer is down, a full frame once released.
        const box = (await op.locator("#orbit").boundingBox())!;
        await op.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
        await op.mouse.down();
        await op.mouse.move(box.x + box.width / 2 + 96, box.y + box.height / 2, { steps: 4 });
        await op.mouse.up();
        await idle(op);
        const after = await read();
        assert.ok(after.previews > 0, "previews while dragging");
        assert.equal(after.lastPreviewSize, 16);
        assert.equal(after.full, true);
        assert.equal(after.size, 32);
        // 96 of the canvas's 384 CSS pixels, at half a turn per width: an eighth of a turn.
        assert.ok(
          Math.abs(after.azimuth - (before.azimuth - Math.PI / 4)) < 1e-9,
          `azimuth ${after.azimuth}`,
        );
        assert.notDeepEqual(after.pose, before.pose);
        const changed = maxAbsDiff(after.rgb, before.rgb);
        assert.ok(changed > 0.01, `the view changed: max |Δ| ${changed}`);
        await op.screenshot({ path: join(ARTIFACTS, "web-orbit-turned.png") });
        assert.deepEqual(errors, [], "uncaught errors in the page");
        await op.close();
      },
    );

    await t.test("encodes on WebGPU (SwiftShader) as Node does, within 1e-3; switches to wasm", async (t) => {
      const gpu = await browser!.newPage();
      await gpu.goto(`${url}?device=webgpu&photo=none`);
      await gpu.waitForFunction(() => "anrPage" in window);
      await actions(gpu);
      const device = (await state(gpu)).device;
      if (device?.device !== "webgpu") {
        t.skip(`no WebGPU in this Chromium: ${device?.fallback ?? "unknown"}`);
        return;
      }
      await dropFile(gpu, "known.png", known.png, "image/png");
      assert.equal(await message(gpu), "");
      const diff = maxAbsDiff((await decoded(gpu)).reconstruction, reference.reconstruction);
      t.diagnostic(`WebGPU vs Node decode: max |Δ| ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-3, `WebGPU vs Node decode: max |Δ| ${diff}`);
      // Switching device starts a new worker with the same model and image.
      await gpu.selectOption("#device", "wasm");
      await actions(gpu);
      assert.equal(await message(gpu), "");
      assert.equal((await state(gpu)).device?.device, "wasm");
      assert.match((await gpu.textContent("#model-card")) ?? "", /devicewasm/);
      const back = maxAbsDiff((await decoded(gpu)).reconstruction, reference.reconstruction);
      assert.ok(back <= 1e-5, `after switching to wasm: max |Δ| ${back}`);
      await gpu.close();
    });
  } finally {
    await browser?.close();
    server.close();
    reference.dispose();
  }
});
