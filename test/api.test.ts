/**
 * The facade (src/api): Anr.load / encode / decode / dispose on the shipped photo model, a field
 * model and a view-synthesis model; every input form gives the same tokens as the file; inputs are
 * prepared as the model's training data was (the card's test PSNR reproduced through the facade);
 * wrong inputs are InputErrors; device memory stays flat; train() reports steps and evaluations
 * and stops on an AbortSignal with a run that resumes to the same weights as an uninterrupted one.
 * (The declarations without @types/node are checked on the packed package: test/pack.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import sharp from "sharp";
import { Anr } from "../src/node.js";
import { wasmHeapBytes } from "../src/backend/index.js";
import { numpy } from "../src/backend/jax.js";
import { saveModel } from "../src/io/files.js";
import { loadImage } from "../src/data/image.js";
import { tokensFromBytes, tokensToBytes } from "../src/io/tokens.js";
import { disposeParams, toDevice } from "../src/model/params.js";
import { createImageDecoder } from "../src/model/tasks.js";
import { Anr as CoreAnr, type HostImage } from "../src/index.js";
import { markMissing } from "../src/api/model.js";
import { preparationOf } from "../src/data/preparation.js";
import { preprocessField, FieldPreprocess } from "../src/data/fields.js";
import { readSafetensors, loadModel } from "../src/io/files.js";
import { writeNpy } from "../src/io/array-files.js";
import { zooModels } from "../src/io/zoo.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { modelPreset } from "../src/model/presets.js";
import { initHostParams } from "../src/model/params.js";
import { lookAtPose } from "../src/rendering/rays.js";
import { resolveRunConfig } from "../src/training/run-config.js";
import { runPreset } from "../src/training/run-presets.js";
import { train } from "../src/training/trainer.js";
import type { EvalRecord, StepRecord } from "../src/training/loop.js";
import { InputError } from "../src/util/errors.js";
import { tinyConfig } from "./fixtures.js";

const REPO = resolve(fileURLToPath(import.meta.url), "..", "..");
const PHOTOS = join(REPO, "data", "photos", "test");

async function testPhotos(): Promise<string[]> {
  return (await readdir(PHOTOS)).filter((f) => /\.(png|jpe?g)$/i.test(f)).map((f) => join(PHOTOS, f));
}

function psnr(a: HostImage, b: HostImage): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i]! - b.data[i]!) ** 2;
  return -10 * Math.log10(se / a.data.length);
}

/** Equal values (NaN equal to NaN), or a short message: assert's diff of long arrays is slow. */
function sameData(a: Float32Array, b: Float32Array, what: string): void {
  const i = a.findIndex((v, j) => !Object.is(v, b[j]));
  assert.ok(
    a.length === b.length && i === -1,
    `${what}: lengths ${a.length}, ${b.length}; first difference at ${i}: ${a[i]} vs ${b[i]}`,
  );
}

function sameTensors(a: Map<string, { data: Float32Array }>, b: Map<string, { data: Float32Array }>): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, t] of a) sameData(t.data, b.get(k)!.data, k);
}

test("api: a photo as a path, a Buffer, ImageData-like pixels, a shaped array and a HostImage gives the same tokens; tokens survive the token file", async () => {
  using m = await Anr.load("demo-photos-anr");
  assert.equal(m.task, "image");
  assert.deepEqual(m.inputSize, [32, 32]);
  const [photo] = await testPhotos();
  const fromPath = await m.encode(photo!);
  assert.deepEqual(fromPath.names, ["face-puppy.png"]);
  const bytes = await readFile(photo!);
  const { data, info } = await sharp(photo!).raw().toBuffer({ resolveWithObject: true });
  const hwc = { data: new Uint8ClampedArray(data), width: info.width, height: info.height };
  // The photo as read, before preparation: every form is prepared (cropped) the same way.
  const host = await loadImage(photo!);
  const chw = { data: host.data, shape: [host.c, host.h, host.w] };
  for (const other of [bytes, hwc, host, chw]) sameTensors((await m.encode(other)).tensors, fromPath.tensors);
  // A batch holds the same instances.
  const batch = await m.encode([photo!, hwc], { names: ["a", "b"] });
  assert.deepEqual(batch.names, ["a", "b"]);
  const [x4a, x4b] = await m.decodeAll(batch, { scale: 4 });
  const x4 = await m.decode(fromPath, { size: [128, 128] });
  sameData(x4a!.data, x4.data, "batch instance 0");
  sameData(x4b!.data, x4.data, "batch instance 1");
  assert.deepEqual([x4.c, x4.h, x4.w], [3, 128, 128]);
  assert.ok(
    x4.data.every((v) => v >= 0 && v <= 1),
    "decoded image values in [0, 1]",
  );
  // A region is the same function on a part of the grid: the middle half of rows and the right
  // half of columns at 64×64 are pixels 32–95 × 64–127 of the 128² decode (sums in another order).
  const right = await m.decode(fromPath, { size: [64, 64], region: [0.25, 0.5, 0.75, 1] });
  let worst = 0;
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++)
        worst = Math.max(
          worst,
          Math.abs(right.data[(c * 64 + y) * 64 + x]! - x4.data[(c * 128 + y + 32) * 128 + x + 64]!),
        );
  assert.ok(worst < 1e-5, `region vs the whole decode: max |Δ| ${worst}`);
  // scale multiplies the region's share of the input size; so does the default size.
  assert.deepEqual(
    [
      (await m.decode(fromPath, { scale: 4, region: [0, 0, 0.5, 0.25] })).h,
      (await m.decode(fromPath, { scale: 4, region: [0, 0, 0.5, 0.25] })).w,
    ],
    [64, 32],
  );
  const share = await m.decode(fromPath, { region: [0.5, 0.5, 1, 1] });
  assert.deepEqual([share.h, share.w], [16, 16]);
  // The token file format carries them unchanged.
  const again = tokensFromBytes(tokensToBytes(fromPath));
  sameData(
    (await m.decode(again, { size: 48 })).data,
    (await m.decode(fromPath, { size: 48 })).data,
    "token file",
  );
});

test("api: the preparation is the CLI's: with none recorded within a few levels of sharp's cover crop, and with the zoo model's recorded one it reproduces the card's test PSNR", async (t) => {
  const photos = await testPhotos();
  const zoo = (await zooModels()).find((z) => z.name === "demo-photos-anr")!;
  const model = await loadModel(zoo.file);
  const dir = await mkdtemp(join(tmpdir(), "anr-api-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // The same weights with no preparation recorded (as `anr init` or older files): shorter side to
  // 32, centre crop (sharp: fit cover).
  const bare = join(dir, "bare.safetensors");
  await saveModel(bare, model.config, model.weights);
  using m = await Anr.load(bare);
  for (const p of photos.slice(0, 3)) {
    const ref = await sharp(p).removeAlpha().resize(32, 32, { fit: "cover" }).raw().toBuffer();
    const mine = m.prepare(await m.read(p));
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < 32 * 32; i++)
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(ref[i * 3 + c]! / 255 - mine.data[c * 1024 + i]!);
        worst = Math.max(worst, d);
        sum += d;
      }
    // Measured: at most 7.2/255, mean 0.33/255 (float Lanczos-3 against libvips' 8-bit one).
    assert.ok(
      worst < 12 / 255 && sum / 3072 < 1 / 255,
      `${p}: max ${worst * 255}, mean ${(sum / 3072) * 255}`,
    );
  }
  // The zoo file records the demo run's preparation (shorter side to 64, centre 32): the facade
  // prepares as the evaluation did, and decodes the card's figure.
  assert.equal(
    model.metadata["anr.data"],
    preparationOf(resolveRunConfig(runPreset("demo")))["anr.data"],
    "the zoo file records the demo preset's preparation",
  );
  using r = await Anr.load("demo-photos-anr");
  let sum = 0;
  for (const p of photos) {
    // encode() prepares its input itself; prepare() shows what it gives the network.
    sum += psnr(await r.decode(await r.encode(p)), r.prepare(await r.read(p)));
  }
  const mean = sum / photos.length;
  // Measured 19.5218 dB against the card's 19.522 (sharp-prepared data in anr eval).
  assert.ok(Math.abs(mean - zoo.test.psnr) < 0.01, `mean PSNR ${mean} vs card ${zoo.test.psnr}`);
});

test("api: the portable entry loads bytes and http URLs; the Node entry paths, file: URLs, run folders and zoo names, all to the same weights", async (t) => {
  const zoo = (await zooModels()).find((z) => z.name === "demo-photos-anr")!;
  const bytes = await readFile(zoo.file);
  const server = createServer((req, res) => {
    if (req.url === "/m.safetensors") res.end(bytes);
    else res.writeHead(404).end();
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), "anr-api-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "model.safetensors"), bytes);
  const models = [
    await CoreAnr.load(bytes),
    await CoreAnr.load(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)),
    await CoreAnr.load(new URL(`http://127.0.0.1:${port}/m.safetensors`)),
    await CoreAnr.load(await loadModel(zoo.file)),
    await Anr.load(zoo.file),
    await Anr.load(pathToFileURL(zoo.file)),
    await Anr.load(dir),
    await Anr.load("demo-photos-anr"),
  ];
  assert.equal(new Set(models.map((m) => m.fingerprint)).size, 1);
  assert.equal(models[2]!.source, `http://127.0.0.1:${port}/m.safetensors`);
  for (const m of models) m.dispose();
  await assert.rejects(CoreAnr.load(new URL(`http://127.0.0.1:${port}/missing`)), /HTTP 404/);
  await assert.rejects(Anr.load(dir, { weights: "ema" }), (e: Error) => {
    assert.ok(e instanceof InputError, `${e.name}: ${e.message}`);
    assert.match(e.message, /no model-ema\.safetensors/);
    return true;
  });
  await assert.rejects(
    Anr.load("no-such-model"),
    /no such file, folder or zoo model; the zoo has demo-photos-anr/,
  );
});

test("api: wrong inputs are InputErrors that say what was expected, never a broadcast failure; odd sizes are resized", async () => {
  using m = await Anr.load("demo-photos-anr");
  // Any size and shape of image is prepared to the model's 32×32: a strip, a tiny image, grey, RGBA.
  const strip = { data: new Uint8Array(7 * 300 * 3).fill(90), width: 300, height: 7 };
  const grey = { data: new Float32Array(5 * 9).fill(0.5), shape: [5, 9] };
  const rgba = { data: new Uint8ClampedArray(40 * 20 * 4).fill(200), width: 40, height: 20 };
  const tokens = await m.encode([strip, grey, rgba]);
  assert.equal(tokens.tensors.get("dtoken")!.shape[0], 3);
  for (const x of [strip, grey, rgba]) assert.deepEqual([m.prepare(x).h, m.prepare(x).w], [32, 32]);
  const refuse = async (p: Promise<unknown> | (() => unknown), re: RegExp) => {
    if (typeof p === "function")
      assert.throws(p, (e: Error) => e instanceof InputError && re.test(e.message));
    else await assert.rejects(p, (e: Error) => e instanceof InputError && re.test(e.message));
  };
  await refuse(
    m.encode({ data: new Uint8Array(10), width: 4, height: 4 }),
    /10 values do not make a 4×4 image/,
  );
  await refuse(
    m.encode({ data: new Float32Array(12), shape: [1, 2, 2, 3] }),
    /expected \[C, H, W\] or \[H, W\]/,
  );
  await refuse(m.encode({ data: new Float32Array(6 * 4 * 4), shape: [6, 4, 4] }), /expected 1 \(grey\), 2/);
  await refuse(m.encode("nothing.png" as string), /nothing\.png: cannot decode image/);
  await refuse(m.encode({ nope: 1 } as never), /expected an image/);
  await refuse(m.decode(tokens, { size: [0, 5] }), /size: expected a positive integer or \[height, width\]/);
  await refuse(m.decode(tokens, { size: 64, scale: 2 }), /give size or scale, not both/);
  await refuse(m.decode(tokens, { index: 3 }), /index: 3 is out of range: the tokens hold 3/);
  await refuse(m.decode(tokens, { size: [70000, 70000] }), /over the 4,294,967,295 values/);
  await refuse(m.decode(tokens, { region: [0.5, 0, 0.25, 1] }), /region: top must be above bottom/);
  await refuse(m.decode(tokens, { region: [0, 0, 1.5, 1] }), /region: fractions of the image go from 0 to 1/);
  await refuse(
    m.decode(tokens, { region: [0, 0, 1] as unknown as [number, number, number, number] }),
    /region: expected four numbers top, left, bottom, right/,
  );
  await refuse(m.encodeViews([]), /encodeViews is for nerf models, but this is a image model/);
  // Tokens of other weights (same config) are refused unless forced; another config always.
  const other = await CoreAnr.load({
    config: m.config,
    weights: initHostParams(m.config, 5),
    metadata: {},
  });
  await refuse(other.decode(tokens), /encoded by weights .* holds weights .*force: true/);
  assert.equal((await other.decode(tokens, { force: true })).h, 32);
  other.dispose();
  const cfg = parseHyperNetworkConfig(tinyConfig("ANR"));
  using small = await CoreAnr.load({ config: cfg, weights: initHostParams(cfg, 1), metadata: {} });
  await refuse(small.decode(tokens), /tokens: encoded by a model with another config/);
  // After dispose, a clear error; `using` disposes at the end of the block.
  let scoped: Anr;
  {
    using s = await Anr.load("demo-photos-anr");
    scoped = s;
    assert.equal(s.disposed, false);
  }
  assert.equal(scoped.disposed, true);
  await refuse(scoped.encode(strip), /this model was disposed/);
});

test("api: device memory stays flat over repeated encode and decode (ownership is inside)", async () => {
  using m = await Anr.load("demo-photos-anr");
  const [photo] = await testPhotos();
  const cycle = async () => m.decode(await m.encode(photo!), { scale: 4 });
  await cycle();
  await cycle();
  const before = wasmHeapBytes();
  for (let i = 0; i < 8; i++) await cycle();
  assert.equal(wasmHeapBytes(), before);
});

test("api: a field model takes physical values (any size in Node, prepared as trained; the model's size in the portable entry), fills gaps as recorded, and decodes to physical units with NaN where the input was missing", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "anr-api-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const base = tinyConfig("ANR");
  const config = parseHyperNetworkConfig({
    ...base,
    tokenizer: { ...base.tokenizer, args: { ...base.tokenizer.args, input_size: [16, 24], img_channels: 1 } },
    hyponet: { ...base.hyponet, args: { ...base.hyponet.args, out_dim: 1 } },
    channels: [{ name: "t2m", units: "K", shift: -260, scale: 0.01 }],
  });
  const weights = initHostParams(config, 2);
  const record = {
    task: "field",
    data: { kind: "npy", preprocess: { mode: "resize-crop", size: [16, 24] }, fill_missing: 250 },
  };
  const file = join(dir, "field.safetensors");
  await saveModel(file, config, weights, { "anr.data": JSON.stringify(record) });
  // A 40×50 field of temperatures with two missing values.
  const [H, W] = [40, 50];
  const data = Float32Array.from({ length: H * W }, (_, i) => 240 + 40 * Math.sin(i / 37));
  // A 4×4 gap inside the centre crop that the model's preparation keeps, one value outside it.
  for (let y = 18; y < 22; y++) for (let x = 23; x < 27; x++) data[y * W + x] = NaN;
  data[3] = NaN;
  await writeNpy(join(dir, "t2m.npy"), { shape: [H, W], data });
  using m = await Anr.load(file);
  assert.equal(m.task, "field");
  const tokens = await m.encode(join(dir, "t2m.npy"));
  // Node prepares as training did: fill, then resize-crop (what preprocessField does to the file).
  const filled = data.map((v) => (Number.isNaN(v) ? 250 : v));
  const prepared = preprocessField(
    { c: 1, h: H, w: W, data: filled },
    FieldPreprocess.parse(record.data.preprocess),
  );
  sameData(m.prepare({ data, shape: [H, W] }).data, prepared.data, "prepared field");
  using core = await CoreAnr.load(new Uint8Array(await readFile(file)));
  sameTensors((await core.encode(prepared)).tensors, tokens.tensors);
  await assert.rejects(
    core.encode({ data, shape: [H, W] }),
    /a 40×50 field, but the model reads 16×24: .*"anr\/node"/,
  );
  // The gaps are kept as a mask at the input size, and decode to NaN.
  const gaps = tokens.missing?.data.filter((v) => v === 1).length ?? 0;
  // 4×4 input pixels at 0.6 scale: a 2×2 or 3×3 patch of the 16×24 input grid.
  assert.ok(gaps >= 4 && gaps <= 9, `${gaps} missing input pixels`);
  const out = await m.decode(tokens, { scale: 2 });
  assert.deepEqual([out.c, out.h, out.w], [1, 32, 48]);
  const nan = out.data.filter(Number.isNaN).length;
  assert.ok(nan > 0 && nan < out.data.length / 10, `${nan} NaN`);
  // A region (rows 8–23, columns 12–35 of the 32×48 decode) takes the same pixels, NaN included:
  // the gaps follow the region, not the whole image.
  const part = await m.decode(tokens, { scale: 2, region: [0.25, 0.25, 0.75, 0.75] });
  assert.deepEqual([part.c, part.h, part.w], [1, 16, 24]);
  const crop = new Float32Array(16 * 24);
  for (let y = 0; y < 16; y++)
    for (let x = 0; x < 24; x++) crop[y * 24 + x] = out.data[(y + 8) * 48 + x + 12]!;
  assert.deepEqual(
    [...part.data].map(Number.isNaN),
    [...crop].map(Number.isNaN),
    "NaN where the whole decode has NaN",
  );
  part.data.forEach((v, i) => {
    if (!Number.isNaN(v)) assert.ok(Math.abs(v - crop[i]!) < 1e-3, `region pixel ${i}: ${v} vs ${crop[i]}`);
  });
  // Physical units: the network's output n (here from the low-level decoder) as n/scale − shift.
  const P = toDevice(weights);
  const gen = Object.fromEntries(
    [...tokens.tensors].map(([k, v]) => [k, numpy.array(v.data, { shape: v.shape })]),
  );
  const dec = createImageDecoder(config);
  const raw = await dec(P, gen, 1, 32, 48);
  dec.dispose();
  disposeParams(P);
  disposeParams(gen);
  raw.forEach((n, i) => {
    if (!Number.isNaN(out.data[i]!))
      assert.ok(Math.abs(out.data[i]! - ((n + 1) / 2 / 0.01 + 260)) < 1e-3, `${i}`);
  });
  // Without a recorded fill_missing, gaps are refused; a wrong channel count too.
  using bare = await CoreAnr.load({ config, weights, metadata: {} });
  await assert.rejects(
    bare.encode({ data: new Float32Array(16 * 24).fill(NaN), shape: [16, 24] }),
    /records no fill_missing/,
  );
  await assert.rejects(
    bare.encode({ data: new Float32Array(2 * 16 * 24), shape: [2, 16, 24] }),
    /2 channel\(s\), but the model reads 1 \(t2m\)/,
  );
});

test("api: a view-synthesis model encodes posed views (resized with their focal length) and renders new views; encode/decode say to use them", async () => {
  const config = parseHyperNetworkConfig(modelPreset("small32-nerf-anr"));
  using m = await CoreAnr.load({ config, weights: initHostParams(config, 4), metadata: {} });
  assert.equal(m.task, "nerf");
  const views = [0, 1, 2].map((i) => {
    const data = Float32Array.from({ length: 3 * 64 * 64 }, (_, k) => ((k * (i + 3)) % 97) / 96);
    return {
      image: { c: 3, h: 64, w: 64, data },
      pose: lookAtPose([4 * Math.cos(i), 4 * Math.sin(i), 1]),
      focal: 60,
    };
  });
  const tokens = await m.encodeViews(views);
  // The same views given at the model's 32×32, focal halved: the same tokens.
  const small = views.map((v) => ({ ...v, image: m.prepare(v.image), focal: 30 }));
  // prepare() of a view is the image preparation; a nerf model's prepare refuses (it is not an image model).
  sameTensors((await m.encodeViews(small)).tensors, tokens.tensors);
  const img = await m.render(tokens, { pose: lookAtPose([0, 4, 1]), focal: 20, size: 20, samples: 8 });
  assert.deepEqual([img.c, img.h, img.w], [3, 20, 20]);
  assert.ok(
    img.data.every((v) => Number.isFinite(v)),
    "rendered colours are finite",
  );
  await assert.rejects(
    m.encode(views[0]!.image),
    /encode is for image models, but this is a nerf model: encode an object's posed views with encodeViews/,
  );
  await assert.rejects(m.decode(tokens), /decode is for image models, but this is a nerf model/);
  await assert.rejects(
    m.render(tokens, { pose: [1, 2, 3], focal: 20 }),
    /pose has 3 values; expected 12 \(3×4\) or 16/,
  );
  await assert.rejects(
    m.encodeViews([{ ...views[0]!, image: { c: 3, h: 32, w: 48, data: new Float32Array(3 * 32 * 48) } }]),
    /a 48×32 view, but the model reads 32×32 views/,
  );
});

test("api: train() calls onStep and onEval, and an AbortSignal stops it with a checkpoint that resumes to an uninterrupted run's weights", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "anr-api-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, "imgs"));
  for (let i = 0; i < 8; i++) {
    const px = Buffer.alloc(20 * 20 * 3);
    for (let k = 0; k < px.length; k++)
      px[k] = Math.round(127.5 + 120 * Math.sin((k * (1 + (i % 3))) / 41 + i));
    await sharp(px, { raw: { width: 20, height: 20, channels: 3 } })
      .png()
      .toFile(join(root, "imgs", `im${i}.png`));
  }
  const run = resolveRunConfig({
    name: "abort",
    data: {
      kind: "folder",
      root: join(root, "imgs"),
      split: { train: 0.75, val: 0, test: 0.25 },
      preprocess: { mode: "random-crop", size: 16, resize: 20 },
    },
    model: tinyConfig("ANR"),
    train: {
      steps: 6,
      batch_size: 2,
      lr: 1e-3,
      seed: 3,
      eval_every: 2,
      sample_every: 0,
      checkpoint_every: 100,
      log_every: 1,
      ema: null,
    },
    eval: { split: "test", batch_size: 2, clamp: true },
  });
  const steps: StepRecord[] = [];
  const evals: EvalRecord[] = [];
  const whole = await train(run, {
    out: join(root, "whole"),
    verbose: false,
    onStep: (s) => void steps.push(s),
    onEval: (r) => void evals.push(r),
  });
  assert.equal(whole.interrupted, false);
  assert.deepEqual(
    steps.map((s) => s.step),
    [1, 2, 3, 4, 5, 6],
  );
  assert.ok(
    steps.every((s) => s.steps === 6 && Number.isFinite(s.loss) && s.imagesPerS > 0),
    JSON.stringify(steps),
  );
  assert.deepEqual(
    evals.map((r) => r.step),
    [0, 2, 4, 6],
  );
  const logged = (await readFile(join(root, "whole", "metrics.jsonl"), "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EvalRecord)
    .filter((r) => r.test_psnr !== undefined);
  assert.deepEqual(evals, logged);
  // Abort from the callback after step 3: the run stops there with a checkpoint, like Ctrl-C.
  const ctl = new AbortController();
  const cut = join(root, "cut");
  const first = await train(run, {
    out: cut,
    verbose: false,
    signal: ctl.signal,
    onStep: (s) => (s.step === 3 ? ctl.abort() : undefined),
  });
  assert.deepEqual([first.interrupted, first.steps], [true, 3]);
  const ck = await readSafetensors(join(cut, "checkpoint.safetensors"));
  assert.equal(JSON.parse(ck.metadata["anr.checkpoint"]!).step, 3);
  const rest = await train(run, { out: cut, verbose: false, resume: true });
  assert.deepEqual([rest.interrupted, rest.steps], [false, 6]);
  sameTensors(
    (await readSafetensors(join(cut, "model.safetensors"))).tensors,
    (await readSafetensors(join(root, "whole", "model.safetensors"))).tensors,
  );
});

test("markMissing: a decoded pixel takes the mask cell its centre falls in, exactly on cell boundaries too, for the whole image and for a region", () => {
  // 22 mask rows, 11 decoded rows: pixel 7's centre is at 7.5/11 of the height, exactly the top of
  // mask row 15 (rounding that divides first lands in row 14).
  const mask = { shape: [1, 22, 1], data: new Float32Array(22) };
  mask.data[15] = 1;
  const whole: HostImage = { c: 1, h: 11, w: 1, data: new Float32Array(11) };
  markMissing(whole, mask, 0);
  assert.deepEqual(
    [...whole.data].map((v, y) => (Number.isNaN(v) ? y : -1)).filter((y) => y >= 0),
    [7],
  );
  // The region [0.25, 0, 0.75, 1] at 6 rows is pixels 3–8 of a 12-row decode: their mask rows are
  // the same (72 rows: 12-row pixel 8 → row 51, which is the region's pixel 5).
  const tall = { shape: [1, 72, 1], data: new Float32Array(72) };
  tall.data[51] = 1;
  const full: HostImage = { c: 1, h: 12, w: 1, data: new Float32Array(12) };
  markMissing(full, tall, 0);
  const part: HostImage = { c: 1, h: 6, w: 1, data: new Float32Array(6) };
  markMissing(part, tall, 0, [0.25, 0, 0.75, 1]);
  assert.deepEqual([...part.data].map(Number.isNaN), [...full.data.subarray(3, 9)].map(Number.isNaN));
  assert.ok(Number.isNaN(part.data[5]!));
});
