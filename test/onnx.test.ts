/**
 * ONNX export (src/io/onnx.ts) and the ONNX Runtime engine (src/eval/ort.ts): the exported graphs,
 * run by onnxruntime-node, give our numbers (≤ 1e-5, max abs) for every hyponet kind, both
 * attention forms, both tokenizers, fields on the sphere and the shipped demo model on real photos;
 * the files pass onnx.checker where Python's onnx is installed.
 *
 * Tolerance: float32 rounding in another operation order. Measured max |Δ| (printed as
 * diagnostics): random weights ≤ 7.2e-7, the demo model on the test photos 1.9e-6.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as Ort from "onnxruntime-node";
import { initBackend, readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import {
  type HyperNetworkConfigInput,
  parseHyperNetworkConfig,
  type HyperNetworkConfig,
} from "../src/model/config.js";
import { modelPreset } from "../src/model/presets.js";
import { initHostParams, toDevice, disposeParams } from "../src/model/params.js";
import {
  coordGrid,
  generatedParams,
  hyperNetwork,
  hyponet,
  setAttentionForm,
  type AttentionForm,
  type HypoParams,
  type Params,
  type Taps,
} from "../src/model/model.js";
import { createImageDecoder } from "../src/model/tasks.js";
import { lookAtPose } from "../src/rendering/rays.js";
import { decodeModelSummary, exportOnnx, type OnnxModels } from "../src/io/onnx.js";
import { loadModel } from "../src/io/files.js";
import { loadImage, resizeImage } from "../src/data/image.js";
import { createOrtImageCodec, loadOrt } from "../src/eval/ort.js";
import { InputError } from "../src/util/errors.js";
import type { HostTensor } from "../src/util/host.js";
import { Rng } from "../src/util/rng.js";
import { tinyConfig } from "./fixtures.js";

const TOL = 1e-5;
const REPO = join(import.meta.dirname, "..");

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

async function sessions(m: OnnxModels) {
  const ort = await loadOrt();
  // One thread: the test machine is shared, and a spinning thread pool only adds waiting.
  const create = (b: Uint8Array) =>
    ort.InferenceSession.create(b, { executionProviders: ["cpu"], intraOpNumThreads: 1 });
  return { ort, enc: await create(m.encoder), dec: await create(m.decoder) };
}

const tensor = (ort: typeof Ort, data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);

/**
 * Export, run both graphs on ONNX Runtime and compare with ours: the encoder on `input`, the
 * decoder on a shared grid (coords batch 1) and on per-instance coordinates. Returns max |Δ|.
 */
async function compare(
  t: TestContext,
  label: string,
  cfg: HyperNetworkConfig,
  weights: Map<string, HostTensor>,
  input: { feeds: Record<string, [Float32Array, number[]]>; ours: () => Parameters<typeof hyperNetwork>[2] },
  points: { shared: Float32Array; each: Float32Array },
): Promise<number> {
  const models = exportOnnx(cfg, weights);
  const { ort, enc, dec } = await sessions(models);
  const P: Params = toDevice(weights);
  try {
    const feeds = Object.fromEntries(
      Object.entries(input.feeds).map(([k, [d, s]]) => [k, tensor(ort, d, s)]),
    );
    const out = await enc.run(feeds);
    const gen = hyperNetwork(P, cfg, input.ours());
    let worst = 0;
    const host: Record<string, HostTensor> = {};
    for (const g of generatedParams(cfg)) {
      const ours = await readF32(gen[g.name]!);
      const theirs = out[g.name]!;
      assert.deepEqual([...theirs.dims].slice(1), g.shape, `${label}: ${g.name} shape`);
      worst = Math.max(worst, maxAbs(ours, theirs.data as Float32Array));
      host[g.name] = { shape: [...theirs.dims], data: ours };
    }
    const b = Object.values(host)[0]!.shape[0]!;
    const d = cfg.hyponet.args.sphere ? 2 : cfg.hyponet.args.in_dim;
    for (const [coords, cb] of [
      [points.shared, 1],
      [points.each, b],
    ] as const) {
      const n = coords.length / d / cb;
      const decFeeds: Record<string, Ort.Tensor> = { coords: tensor(ort, coords, [cb, n, d]) };
      const ourGen: HypoParams = {};
      for (const [k, v] of Object.entries(host)) {
        decFeeds[k] = tensor(ort, v.data, v.shape);
        ourGen[k] = np.array(v.data, { shape: v.shape });
      }
      const signal = (await dec.run(decFeeds)).signal!;
      assert.deepEqual([...signal.dims], [b, n, cfg.hyponet.args.out_dim], `${label}: signal shape`);
      const c = np.broadcastTo(np.array(coords, { shape: [cb, n, d] }), [b, n, d]);
      worst = Math.max(worst, maxAbs(await readF32(hyponet(P, cfg, c, ourGen)), signal.data as Float32Array));
    }
    t.diagnostic(`${label}: max |Δ| ${worst.toExponential(2)}`);
    assert.ok(worst <= TOL, `${label}: ONNX Runtime differs from ours by ${worst}`);
    return worst;
  } finally {
    disposeParams(P);
    await Promise.all([enc.release(), dec.release()]);
  }
}

/** A shared grid and per-instance points, some beyond (−1, 1) (the phase is reduced mod 2). */
function points(b: number, d: number, seed: number) {
  return { shared: coordGrid(12, 20), each: new Rng(seed).fill(b * 50 * d, { lo: -1.5, hi: 1.5 }) };
}

function imageInput(cfg: HyperNetworkConfig, b: number, seed: number) {
  const a = cfg.tokenizer.args as { input_size: number; img_channels: number };
  const shape = [b, a.img_channels, a.input_size, a.input_size];
  const data = new Rng(seed).fill(
    shape.reduce((x, y) => x * y),
    { lo: -1, hi: 1 },
  );
  return {
    feeds: { images: [data, shape] as [Float32Array, number[]] },
    ours: () => np.array(data, { shape }),
  };
}

async function withForm<T>(form: AttentionForm, f: () => Promise<T>): Promise<T> {
  const previous = setAttentionForm(form);
  try {
    return await f();
  } finally {
    setAttentionForm(previous);
  }
}

test("onnx: every hyponet kind on random weights gives our tokens and signal (≤ 1e-5)", async (t) => {
  await initBackend();
  for (const kind of ["ANR", "HypoMlp", "HypoMlpIPC"] as const) {
    const cfg = parseHyperNetworkConfig(tinyConfig(kind));
    await compare(t, kind, cfg, initHostParams(cfg, 3), imageInput(cfg, 3, 11), points(3, 2, 12));
  }
});

test("onnx: ANR in both attention forms, padded tokenizer that drops pixels, long skips, scaled output", async (t) => {
  await initBackend();
  const base = tinyConfig("ANR");
  const raw: HyperNetworkConfigInput = {
    ...base,
    tokenizer: { name: "ImgTokenizer", args: { input_size: 18, patch_size: 4, padding: 1, dim: 32 } },
    hyponet: {
      name: "ANR",
      args: {
        ...(base.hyponet.args as object),
        token_len: 8,
        att_threshold: 0.1,
        out_scale: 1.5,
        out_bias: 0.25,
      },
    } as HyperNetworkConfigInput["hyponet"],
    tinr_enc: { name: "TInrEncoder", args: { ...base.tinr_enc.args, depth: 2, shortcut_every: 2 } },
  };
  const cfg = parseHyperNetworkConfig(raw);
  // Sharpen the attention so that the threshold clips: larger query weights give larger logits.
  const weights = initHostParams(cfg, 4);
  const q = weights.get("hyponet.attn.to_q.weight")!;
  weights.set("hyponet.attn.to_q.weight", { ...q, data: q.data.map((v) => v * 6) });
  const input = imageInput(cfg, 2, 21);
  {
    // The threshold's relu path is exercised: most attention weights of the grid are clipped to 0.
    const P = toDevice(weights);
    const taps: Taps = new Map();
    const grid = np.broadcastTo(np.array(coordGrid(12, 20), { shape: [1, 240, 2] }), [2, 240, 2]);
    hyponet(P, cfg, grid, hyperNetwork(P, cfg, input.ours()), taps).dispose();
    const attn = await readF32(taps.get("anr.attn")!);
    for (const a of taps.values()) a.dispose();
    disposeParams(P);
    const clipped = attn.filter((x) => x === 0).length / attn.length;
    t.diagnostic(`clipped attention weights: ${(100 * clipped).toFixed(0)}%`);
    assert.ok(clipped > 0.3, `only ${clipped} of the attention weights clipped`);
  }
  for (const form of ["direct", "folded"] as const)
    await withForm(form, () => compare(t, `ANR ${form}`, cfg, weights, input, points(2, 2, 22)));
});

test("onnx: IPC with an output activation and bias; a field model on the sphere (one channel, padded encoding)", async (t) => {
  await initBackend();
  const ipc = tinyConfig("HypoMlpIPC");
  const ipcCfg = parseHyperNetworkConfig({
    ...ipc,
    hyponet: {
      name: "HypoMlpIPC",
      args: { ...ipc.hyponet.args, depth: 3, activation: "tanh", out_bias: 0.1 },
    },
  } as HyperNetworkConfigInput);
  await compare(
    t,
    "IPC tanh",
    ipcCfg,
    initHostParams(ipcCfg, 5),
    imageInput(ipcCfg, 2, 31),
    points(2, 2, 32),
  );

  const anr = tinyConfig("ANR");
  const fieldCfg = parseHyperNetworkConfig({
    ...anr,
    tokenizer: { name: "ImgTokenizer", args: { input_size: 16, patch_size: 4, dim: 32, img_channels: 1 } },
    hyponet: {
      name: "ANR",
      args: {
        ...(anr.hyponet.args as object),
        in_dim: 3,
        out_dim: 1,
        adaptive_idim: true,
        sphere: { lat: [90, -90], lon: [0, 360] },
      },
    },
    channels: [{ name: "t2m", units: "K", shift: -260, scale: 0.01 }],
  } as HyperNetworkConfigInput);
  await compare(
    t,
    "field on the sphere",
    fieldCfg,
    initHostParams(fieldCfg, 6),
    imageInput(fieldCfg, 2, 41),
    points(2, 2, 42),
  );
});

test("onnx: views → R-tokens for a radiance field (rays built in the graph), 3-D points → (rgb, σ)", async (t) => {
  await initBackend();
  const preset = modelPreset("small32-nerf-anr");
  for (const [label, raw] of [
    ["small32-nerf-anr", preset],
    [
      "NeRF, padded views, padded encoding",
      {
        ...preset,
        tokenizer: { name: "nvs_tokenizer", args: { input_size: 18, patch_size: 4, padding: 1, dim: 64 } },
        hyponet: { name: "ANR", args: { ...(preset.hyponet.args as object), hidden_dim: 40 } },
      } as HyperNetworkConfigInput,
    ],
  ] as const) {
    const cfg = parseHyperNetworkConfig(raw);
    const s = cfg.tokenizer.args.input_size as number;
    const [b, n] = [2, 3];
    const rng = new Rng(51);
    const imgs = rng.fill(b * n * 3 * s * s, { lo: 0, hi: 1 });
    const poses = new Float32Array(b * n * 12);
    for (let i = 0; i < b * n; i++)
      poses.set(lookAtPose([4 * Math.cos(i), 4 * Math.sin(i), 1 + 0.3 * i]), 12 * i);
    const focals = Float32Array.from({ length: b * n * 2 }, (_, i) => 20 + i);
    const shapes = { views: [b, n, 3, s, s], poses: [b, n, 3, 4], focals: [b, n, 2] };
    const input = {
      feeds: {
        views: [imgs, shapes.views],
        poses: [poses, shapes.poses],
        focals: [focals, shapes.focals],
      } as Record<string, [Float32Array, number[]]>,
      ours: () => ({
        imgs: np.array(imgs, { shape: shapes.views }),
        poses: np.array(poses, { shape: shapes.poses }),
        focals: np.array(focals, { shape: shapes.focals }),
      }),
    };
    const pts = {
      shared: rng.fill(40 * 3, { lo: -4, hi: 4 }),
      each: rng.fill(b * 40 * 3, { lo: -4, hi: 4 }),
    };
    await compare(t, label, cfg, initHostParams(cfg, 7), input, pts);
  }
});

/** The held-out photos at the demo model's input size. */
async function testPhotos(size: number) {
  const dir = join(REPO, "data", "photos", "test");
  const names = [
    "face-puppy",
    "face-sunflower",
    "face-sunset",
    "face-surfer",
    "face-tomatoes",
    "face-tree",
    "face-yellow-rose",
    "rocket",
  ];
  return Promise.all(names.map(async (n) => resizeImage(await loadImage(join(dir, `${n}.png`)), size, size)));
}

test("onnx: the shipped demo model on the test photos: the ORT codec encodes and decodes as our engine (≤ 1e-5)", async (t) => {
  await initBackend();
  const model = await loadModel(join(REPO, "models", "demo-photos-anr.safetensors"));
  const cfg = model.config;
  const photos = await testPhotos(32);
  const shape = [photos.length, 3, 32, 32];
  const batch = new Float32Array(shape.reduce((a, b) => a * b));
  photos.forEach((p, i) => batch.set(p.data, i * p.data.length));

  // The graphs against ours, grid and free points.
  const worstGraphs = await compare(
    t,
    "demo model",
    cfg,
    model.weights,
    {
      feeds: { images: [batch.map((v) => 2 * v - 1), shape] },
      ours: () => np.array(batch, { shape }).mul(2).sub(1),
    },
    points(photos.length, 2, 61),
  );

  // The codec against createImageDecoder, at a grid whose last chunk is partial.
  const exported = exportOnnx(cfg, model.weights);
  const codec = await createOrtImageCodec(exported, { chunk: 1000, threads: 1 });
  const P = toDevice(model.weights);
  const decoder = createImageDecoder(cfg);
  try {
    const tokens = await codec.encode(photos);
    const gen = hyperNetwork(P, cfg, np.array(batch, { shape }).mul(2).sub(1));
    const ourTokens = await readF32(gen.dtoken!.ref);
    const encErr = maxAbs(ourTokens, tokens.get("dtoken")!.data);
    const [h, w] = [40, 56];
    const theirs = await codec.decode(tokens, h, w);
    const ours = await decoder(P, gen, photos.length, h, w);
    const decErr = maxAbs(ours, theirs);
    disposeParams(gen);
    t.diagnostic(
      `demo codec: encode max |Δ| ${encErr.toExponential(2)}, decode ${decErr.toExponential(2)}; graphs ${worstGraphs.toExponential(2)}`,
    );
    assert.ok(encErr <= TOL && decErr <= TOL, `codec differs: encode ${encErr}, decode ${decErr}`);
    // A decoder graph given to the encoder's place is refused by name.
    await assert.rejects(
      createOrtImageCodec({ encoder: exported.decoder, decoder: exported.decoder }),
      (e: unknown) => e instanceof InputError && /not an anr encoder graph/.test(e.message),
    );
  } finally {
    decoder.dispose();
    disposeParams(P);
    await codec.dispose();
  }
});

test("onnx: the files say opset 17, IR 8, dynamic batch and points, and pass onnx.checker", async (t) => {
  const cfgs = [
    parseHyperNetworkConfig(tinyConfig("HypoMlp")),
    parseHyperNetworkConfig(modelPreset("small32-nerf-anr")),
  ];
  const dir = mkdtempSync(join(tmpdir(), "onnx-"));
  const files: string[] = [];
  cfgs.forEach((cfg, i) => {
    const m = exportOnnx(cfg, initHostParams(cfg, 1));
    const dec = decodeModelSummary(m.decoder);
    assert.equal(dec.opset, 17);
    assert.equal(dec.irVersion, 8);
    assert.equal(dec.metadata["anr.role"], "decoder");
    assert.deepEqual(dec.outputs, [{ name: "signal", dims: ["batch", "points", cfg.hyponet.args.out_dim] }]);
    assert.deepEqual(dec.inputs.at(-1), {
      name: "coords",
      dims: ["coords_batch", "points", cfg.hyponet.args.in_dim],
    });
    assert.deepEqual(
      JSON.parse(decodeModelSummary(m.encoder).metadata["anr.config"]!),
      JSON.parse(JSON.stringify(cfg)),
    );
    for (const [role, bytes] of Object.entries(m)) {
      const path = join(dir, `${i}-${role}.onnx`);
      writeFileSync(path, bytes);
      files.push(path);
    }
  });
  // Python's onnx: the first interpreter that has it (pyenv's python3 may not see Debian's python3-onnx).
  const python = ["python3", "/usr/bin/python3"].find(
    (p) => spawnSync(p, ["-c", "import onnx"], { encoding: "utf8" }).status === 0,
  );
  if (!python) {
    t.skip("Python's onnx is not installed (apt-get install python3-onnx), so onnx.checker cannot run");
    return;
  }
  const script =
    "import onnx, sys\nfor p in sys.argv[1:]: onnx.checker.check_model(onnx.load(p), full_check=True)\nprint(onnx.__version__)";
  const r = spawnSync(python, ["-c", script, ...files], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  t.diagnostic(
    `onnx.checker (onnx ${r.stdout.trim()}, full_check with shape inference) passed ${files.length} files`,
  );
});
