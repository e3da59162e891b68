/**
 * Gridded fields: preprocessing (torchvision-exact geometry, antialiased resampling checked against
 * torch), normalisation, splits, .npy folders, and a field run end to end — training, evaluation
 * in physical units, encode → decode to .npy — on temperature-like fields the test generates.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { skipWithoutData } from "./fixtures.js";
import { mkdtemp, mkdir, readdir, readFile, readlink, realpath, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fieldChannels,
  openFieldDataset,
  preprocessField,
  denormalizeField,
  FieldPreprocess,
  type FieldSpecInput,
} from "../src/data/fields.js";
import { openNetcdf, readNpy, writeNetcdf3, writeNpy } from "../src/io/array-files.js";
import { crop, resizeAntialiased, type HostImage } from "../src/data/image.js";
import { parseHyperNetworkConfig, ConfigError, type HyperNetworkConfigInput } from "../src/model/config.js";
import { resolveRunConfig, type RunConfigInput } from "../src/training/run-config.js";
import { train } from "../src/training/trainer.js";
import { runPreset } from "../src/training/run-presets.js";
import { loadModel } from "../src/io/files.js";
import { main } from "../src/cli/main.js";
import { initBackend, readF32 } from "../src/backend/index.js";
import { evaluateImages, toBatchArray } from "../src/eval/evaluate.js";
import { disposeParams, toDevice } from "../src/model/params.js";
import { numpy as np } from "../src/backend/jax.js";
import { hyperNetwork, sphereCoords } from "../src/model/model.js";
import { createImageDecoder } from "../src/model/tasks.js";

/**
 * A 2 m temperature-like field in kelvin on a (h, w) latitude/longitude grid, north up: warm
 * equator, cold poles, a sharp front whose position moves with `t`, and a travelling wave.
 */
export function temperature(h: number, w: number, t: number): Float32Array {
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const lat = 90 - (180 * (y + 0.5)) / h;
    for (let x = 0; x < w; x++) {
      const lon = (360 * (x + 0.5)) / w;
      const front = 6 * Math.tanh((lon - 120 - 15 * t) / 4) * Math.exp(-(((lat - 40) / 15) ** 2));
      out[y * w + x] =
        250 + 45 * Math.cos((lat * Math.PI) / 180) + front + 3 * Math.sin(((lon + 20 * t) * Math.PI) / 60);
    }
  }
  return out;
}

/** A NetCDF-3 file with one float32 variable over (time, lat, lon), time unlimited. */
async function writeTimeGrid(
  path: string,
  name: string,
  [nt, h, w]: number[],
  data: ArrayLike<number>,
): Promise<void> {
  await writeNetcdf3(path, {
    dims: [
      { name: "time", size: nt!, unlimited: true },
      { name: "lat", size: h! },
      { name: "lon", size: w! },
    ],
    variables: [{ name, dims: ["time", "lat", "lon"], dtype: "f4", data }],
  });
}

/** A temporary folder, removed (with everything in it) when test `t` ends. */
async function tempDir(t: TestContext, tag: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `anr-${tag}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A folder of n fields (h, w) as .npy, named by time step; optionally a second channel. */
async function npyFolder(t: TestContext, n: number, h: number, w: number, channels = 1): Promise<string> {
  const root = await tempDir(t, "fields");
  for (let t = 0; t < n; t++) {
    const base = temperature(h, w, t);
    const data = new Float32Array(channels * h * w);
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < h * w; i++) data[c * h * w + i] = base[i]! - 20 * c;
    // Names sort in time order only as strings: t10 < t2 is what a filesystem listing could give.
    await writeNpy(join(root, `t${String(t).padStart(3, "0")}.npy`), {
      shape: channels === 1 ? [h, w] : [channels, h, w],
      data,
    });
  }
  return root;
}

test("fields: antialiased resize equals torch's interpolate(bilinear, antialias=True)", () => {
  // Reference: torch 1.13 F.interpolate(x, size, mode="bilinear", antialias=True, align_corners=False)
  // on x[y, x] = sin(0.7y) + cos(0.45x)(y+1)/3 + [x > 6], a 7×13 grid, in float64.
  const src: HostImage = { c: 1, h: 7, w: 13, data: new Float32Array(7 * 13) };
  for (let y = 0; y < 7; y++)
    for (let x = 0; x < 13; x++)
      src.data[y * 13 + x] = Math.sin(0.7 * y) + (Math.cos(0.45 * x) * (y + 1)) / 3 + (x > 6 ? 1 : 0);
  const torch3x5 = [
    0.994769711185, 0.517768724871, 0.303656967045, 1.079030573807, 1.607588224049, 1.77648675102,
    0.749100011267, -0.074701137458, 0.804125532053, 1.942557394112, 1.288852794215, -0.288919698978,
    -1.722410238601, -0.740130506343, 1.008175567534,
  ];
  const torch4x13Row1 = [
    1.90964268637, 1.807435044785, 1.521162253794, 1.107822885119, 0.649715202485, 0.238051100375,
    -0.045204712768, 0.856345637006, 0.9623040456, 1.251573579804, 1.666558998954, 2.124634301136,
    2.534594039004,
  ];
  const a = resizeAntialiased(src, 3, 5);
  a.data.forEach((v, i) =>
    assert.ok(Math.abs(v - torch3x5[i]!) < 2e-6, `3×5 [${i}]: ${v} vs ${torch3x5[i]}`),
  );
  const b = resizeAntialiased(src, 4, 13);
  torch4x13Row1.forEach((v, i) => assert.ok(Math.abs(b.data[13 + i]! - v) < 2e-6, `4×13 [1, ${i}]`));
});

test("fields: antialiased resize upsampling equals torch's (non-integer, ×2, up one axis and down the other)", async () => {
  // References made by scripts/make_resize_fixtures.py with torch 1.13's F.interpolate(bilinear,
  // antialias=True, align_corners=False) in float64 on this 2-channel 7×13 source.
  const src: HostImage = { c: 2, h: 7, w: 13, data: new Float32Array(2 * 7 * 13) };
  for (let y = 0; y < 7; y++)
    for (let x = 0; x < 13; x++) {
      src.data[y * 13 + x] = Math.sin(0.7 * y) + (Math.cos(0.45 * x) * (y + 1)) / 3 + (x > 6 ? 1 : 0);
      src.data[91 + y * 13 + x] = (y - 3) ** 2 / 4 - 0.2 * x + (x === 5 ? 1 : 0);
    }
  for (const [h, w] of [
    [11, 29],
    [14, 26],
    [4, 29],
    [23, 9],
  ] as const) {
    const ref = await readNpy(join(import.meta.dirname, "fixtures", "resize", `up_${h}x${w}.npy`));
    assert.deepEqual(ref.shape, [2, h, w]);
    const ours = resizeAntialiased(src, h, w);
    let worst = 0;
    ours.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref.data[i]!))));
    // float32 source and sums against float64 read back as float32: we measure 2.4e-7 at every size,
    // one float32 step at values in [2, 4).
    assert.ok(worst < 5e-7, `${h}×${w}: largest difference ${worst}`);
  }
});

test("fields: resize-crop follows torchvision (short side, truncated long side, centre offset)", () => {
  const f: HostImage = { c: 2, h: 18, w: 36, data: new Float32Array(2 * 18 * 36) };
  for (let i = 0; i < f.data.length; i++) f.data[i] = i % 36;
  // 18×36 → short side 8 → 8×16 → centre crop 8×8 starts at column round(4) = 4.
  const p = FieldPreprocess.parse({ mode: "resize-crop", size: 8 });
  const out = preprocessField(f, p);
  assert.deepEqual([out.c, out.h, out.w], [2, 8, 8]);
  const full = resizeAntialiased(f, 8, 16);
  for (let c = 0; c < 2; c++)
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++)
        assert.equal(out.data[(c * 8 + y) * 8 + x], full.data[(c * 8 + y) * 16 + x + 4]);
  const whole = preprocessField(f, FieldPreprocess.parse({ mode: "resize", size: [9, 18] }));
  assert.deepEqual([whole.h, whole.w], [9, 18]);
  assert.throws(
    () => FieldPreprocess.parse({ mode: "resize-crop", size: 16, resize: 8 }),
    /resize must be at least/,
  );
});

test("fields: .npy folder — sorted contiguous split, normalisation, mean-std, errors naming the file", async (t) => {
  const root = await npyFolder(t, 20, 12, 24, 2);
  const spec = {
    kind: "npy" as const,
    root,
    preprocess: { mode: "resize" as const, size: [6, 12] as [number, number] },
    normalize: { shift: -260, scale: 0.01 },
  };
  const chans = await fieldChannels(spec);
  assert.deepEqual(
    chans.map((c) => [c.name, c.shift, c.scale]),
    [
      ["c0", -260, 0.01],
      ["c1", -260, 0.01],
    ],
  );
  const train = await openFieldDataset(spec, "train", chans);
  const testDs = await openFieldDataset(spec, "test", chans);
  // 0.85 / 0.10 / 0.05 of 20 in sorted (time) order: 17 / 2 / 1, the last file last.
  assert.equal(train.length, 17);
  assert.equal(testDs.length, 1);
  assert.equal(train.id(0), "t000.npy");
  assert.equal(testDs.id(0), "t019.npy");
  const item = await testDs.get(0);
  assert.deepEqual([item.c, item.h, item.w], [2, 6, 12]);
  const phys = resizeAntialiased(
    { c: 2, h: 12, w: 24, data: (await readNpy(join(root, "t019.npy"))).data },
    6,
    12,
  );
  for (let i = 0; i < item.data.length; i++)
    assert.ok(Math.abs(item.data[i]! - 0.01 * (phys.data[i]! - 260)) < 1e-6, `normalised value ${i}`);
  // Back to kelvin.
  const back = denormalizeField(item.data, chans, 6 * 12);
  // (Messages given: without one, a failing assert.ok re-parses the transpiled file for its text.)
  for (let i = 0; i < back.length; i++)
    assert.ok(Math.abs(back[i]! - phys.data[i]!) < 1e-3, `kelvin ${i}: ${back[i]} vs ${phys.data[i]}`);

  // mean-std: computed over the preprocessed training split, network sees zero mean, unit variance.
  const ms = await fieldChannels({ ...spec, normalize: "mean-std" });
  const tr = await openFieldDataset({ ...spec, normalize: "mean-std" }, "train", ms);
  const acc = [0, 0];
  const acc2 = [0, 0];
  for (let i = 0; i < tr.length; i++) {
    const f = await tr.get(i);
    for (let c = 0; c < 2; c++)
      for (let k = 0; k < 72; k++) {
        const z = 2 * f.data[c * 72 + k]! - 1;
        acc[c]! += z;
        acc2[c]! += z * z;
      }
  }
  for (let c = 0; c < 2; c++) {
    const n = tr.length * 72;
    assert.ok(Math.abs(acc[c]! / n) < 1e-4, `mean of channel ${c} in network units`);
    assert.ok(Math.abs(acc2[c]! / n - 1) < 1e-3, `variance of channel ${c} in network units`);
  }
  for (const d of [train, testDs, tr]) d.close();

  // A field of another shape, NaN gaps, too few files: the file and the expectation are named.
  await writeNpy(join(root, "t999.npy"), { shape: [2, 12, 23], data: new Float32Array(2 * 12 * 23) });
  const all = await openFieldDataset({ ...spec, split: { train: 1, val: 0, test: 0 } }, "train", chans);
  await assert.rejects(all.get(all.length - 1), /t999\.npy: field is 2×12×23, expected 2×12×24/);
  all.close();
  const gap = await npyFolder(t, 3, 4, 8);
  const g = new Float32Array(32).fill(280);
  g[5] = NaN;
  await writeNpy(join(gap, "t001.npy"), { shape: [4, 8], data: g });
  const gd = await openFieldDataset(
    { kind: "npy", root: gap, split: { train: 1, val: 0, test: 0 }, preprocess: { mode: "none" } },
    "train",
    null,
  );
  await assert.rejects(gd.get(1), /t001\.npy has 1 missing value/);
  const filled = await openFieldDataset(
    {
      kind: "npy",
      root: gap,
      split: { train: 1, val: 0, test: 0 },
      preprocess: { mode: "none" },
      fill_missing: 273.15,
    },
    "train",
    null,
  );
  assert.equal((await filled.get(1)).data[5], Math.fround(273.15));
  await assert.rejects(
    openFieldDataset({ kind: "npy", root: gap, split: { train: 0.5, val: 0.5, test: 0 } }, "test", null),
    /the test split is empty \(3 fields/,
  );
  await assert.rejects(
    openFieldDataset({ kind: "npy", root: join(gap, "nope") }, "train", null),
    /nope: no such file or directory \(expected one of the .npy files or a folder of them\)/,
  );
});

test("config: channels must match the network's channels; sphere needs in_dim 3", async () => {
  const base = (c: number, extra: Partial<HyperNetworkConfigInput> = {}): HyperNetworkConfigInput => ({
    direct_wtoken: true,
    tokenizer: { name: "ImgTokenizer", args: { input_size: 8, patch_size: 4, dim: 16, img_channels: c } },
    hyponet: {
      name: "ANR",
      args: {
        in_dim: 2,
        out_dim: c,
        depth: 1,
        hidden_dim: 16,
        pe_dim: 8,
        token_len: 4,
        n_head: 2,
        head_dim: 8,
      },
    },
    tinr_enc: { name: "TInrEncoder", args: { dim: 16, depth: 1, n_head: 2, head_dim: 8, ff_dim: 16 } },
    tinr_dec: { name: "TInrDecoder", args: { dim: 16, depth: 1, n_head: 2, head_dim: 8, ff_dim: 16 } },
    ...extra,
  });
  const ok = parseHyperNetworkConfig(base(2, { channels: [{ name: "u" }, { name: "v", units: "m/s" }] }));
  assert.deepEqual(ok.channels![1], { name: "v", units: "m/s", shift: 0, scale: 1 });
  assert.throws(
    () => parseHyperNetworkConfig(base(1, { channels: [{ name: "u" }, { name: "v" }] })),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, "e instanceof ConfigError");
      assert.match(e.message, /channels: 2 channel\(s\) listed but the hyponet's out_dim is 1/);
      return true;
    },
  );
  assert.throws(
    () => parseHyperNetworkConfig(base(1, { channels: [{ name: "t", scale: 0 }] })),
    /scale must be finite and non-zero/,
  );
  const sphere = base(1);
  (sphere.hyponet.args as Record<string, unknown>).sphere = {};
  assert.throws(
    () => parseHyperNetworkConfig(sphere),
    /sphere coordinates are 3-D unit vectors: in_dim must be 3/,
  );
  assert.throws(
    () =>
      resolveRunConfig({
        task: "field",
        data: { kind: "npy", root: "x" },
        model: base(1),
        train: { steps: 1 },
        eval: { clamp: true },
      }),
    /eval.clamp: fields have no fixed range/,
  );
  const r = resolveRunConfig({
    task: "field",
    data: { kind: "npy", root: "x" },
    model: base(1),
    train: { steps: 1 },
    eval: { split: "val" },
  });
  assert.equal(r.eval.clamp, false);
});

test("sphere coordinates: grid corners and centre land where latitude/longitude say", async () => {
  await initBackend();
  // Row −1 is the top edge (lat 90), +1 the bottom (−90); column −1 is lon 0, +1 lon 360.
  const pts = np.array(new Float32Array([0, 0, -1, -1, 0, -0.5, 0.5, 0.5]), { shape: [4, 2] });
  const out = await readF32(sphereCoords(pts, { lat: [90, -90], lon: [0, 360] }));
  const r = Math.SQRT1_2;
  const expect = [
    [-1, 0, 0], // (row 0, col 0): lat 0, lon 180
    [0, 0, 1], // top-left corner: the north pole
    [0, 1, 0], // (0, −0.5): lat 0, lon 90
    [0, -r, -r], // (0.5, 0.5): lat −45, lon 270
  ];
  for (let i = 0; i < 4; i++)
    for (let k = 0; k < 3; k++)
      assert.ok(Math.abs(out[i * 3 + k]! - expect[i]![k]!) < 1e-6, `point ${i} axis ${k}: ${out[i * 3 + k]}`);
});

/** Debian's Python, where python3-netcdf4 is installed (not whatever `python3` is first on PATH). */
const SYSTEM_PYTHON = "/usr/bin/python3";

/** Whether SYSTEM_PYTHON exists and imports `module`. */
function systemPythonHas(module: string): boolean {
  return existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ["-c", `import ${module}`]).status === 0;
}

/** netCDF4-python: a variable's file format, dimensions, dtype and values (exact, as float64 JSON). */
const PY_NC_VARIABLE = `
import json, sys, netCDF4, numpy as np
d = netCDF4.Dataset(sys.argv[1])
v = d.variables[sys.argv[2]]
v.set_auto_maskandscale(False)
x = np.asarray(v[...])
print(json.dumps({"format": d.data_model, "dims": [[k, len(d.dimensions[k])] for k in v.dimensions],
                  "dtype": str(x.dtype), "values": x.astype(np.float64).ravel().tolist()}))
`;

/** One channel's row of physical errors in a report. */
interface PhysicalRow {
  rmse: number;
  meanFieldRmse: number;
  maxAbs: number;
}

/** Physical errors recomputed from per-field errors (one array per field, physical units). */
function pooledErrors(fields: Float64Array[]): PhysicalRow {
  let se = 0;
  let n = 0;
  let maxAbs = 0;
  let rmseSum = 0;
  for (const e of fields) {
    let fse = 0;
    for (const x of e) {
      fse += x * x;
      maxAbs = Math.max(maxAbs, Math.abs(x));
    }
    se += fse;
    n += e.length;
    rmseSum += Math.sqrt(fse / e.length);
  }
  return { rmse: Math.sqrt(se / n), meanFieldRmse: rmseSum / fields.length, maxAbs };
}

/**
 * A reported row against errors recomputed here in kelvin. The evaluation works in normalised
 * float32 units and the decode writes float32 kelvin (spacing 3.05e-5 K between 256 and 512 K), so
 * one point's error moves by up to 1.5e-5 K: we measure at most 6e-6 K on the max |error| and
 * 1.2e-7 K on the RMSEs (0.5 … 14 K), 18× below the least that replacing the pooled RMSE by the
 * mean per-field RMSE changes in the runs below (1.8e-5 K).
 */
function assertErrorsMatch(got: PhysicalRow, want: PhysicalRow, what: string): void {
  const close = (k: keyof PhysicalRow, tol: number) =>
    assert.ok(Math.abs(got[k] - want[k]) < tol, `${what}: ${k} ${got[k]} vs ${want[k]} K recomputed`);
  close("rmse", 1e-6);
  close("meanFieldRmse", 1e-6);
  close("maxAbs", 3e-5);
}

/** A tiny one-channel field model on 16×32 grids (or `inputSize`). */
function tinyFieldModel(sphere: boolean, inputSize: [number, number] = [16, 32]): HyperNetworkConfigInput {
  const enc = { dim: 32, depth: 1, n_head: 2, head_dim: 8, ff_dim: 64 };
  return {
    direct_wtoken: true,
    tokenizer: {
      name: "ImgTokenizer",
      args: { input_size: inputSize, patch_size: 8, dim: 32, img_channels: 1 },
    },
    hyponet: {
      name: "ANR",
      args: sphere
        ? {
            in_dim: 3,
            out_dim: 1,
            depth: 2,
            hidden_dim: 32,
            pe_dim: 10,
            adaptive_idim: true,
            pe_sigma: 16,
            token_len: 8,
            att_threshold: 0.05,
            n_head: 2,
            head_dim: 8,
            sphere: {},
          }
        : {
            in_dim: 2,
            out_dim: 1,
            depth: 2,
            hidden_dim: 32,
            pe_dim: 16,
            pe_sigma: 16,
            token_len: 8,
            att_threshold: 0.05,
            n_head: 2,
            head_dim: 8,
          },
    },
    tinr_enc: { name: "TInrEncoder", args: enc },
    tinr_dec: { name: "TInrDecoder", args: enc },
  };
}

test("field run: trains on .npy fields, reports kelvin errors that agree with PSNR, decodes to .npy", async (t) => {
  const root = await npyFolder(t, 24, 32, 64);
  const out = await tempDir(t, "field-run");
  const cfg: RunConfigInput = {
    name: "field",
    task: "field",
    data: {
      kind: "npy",
      root,
      split: { train: 0.75, val: 0, test: 0.25 },
      preprocess: { mode: "resize", size: [16, 32] },
      normalize: { shift: -260, scale: 0.01 },
      latitudes: [87.1875, -87.1875],
    },
    model: tinyFieldModel(false),
    train: {
      steps: 12,
      batch_size: 4,
      lr: 1e-3,
      eval_every: 6,
      sample_every: 6,
      checkpoint_every: 6,
      log_every: 2,
      ema: null,
    },
    eval: { split: "test", batch_size: 4 },
  };
  const r = await train(resolveRunConfig(cfg), { out, verbose: false });
  const report = JSON.parse(await readFile(join(out, "eval.json"), "utf8")) as {
    physical: {
      name: string;
      units: string;
      rmse: number;
      maxAbs: number;
      meanFieldRmse: number;
      rmseLatWeighted?: number;
    }[];
    perImage: { id: string; psnr: number; rmse: number[] }[];
    channels: { shift: number; scale: number }[];
  };
  assert.equal(report.perImage.length, 6);
  assert.deepEqual(report.channels, [{ name: "c0", units: "", shift: -260, scale: 0.01 }]);
  // PSNR is in normalised units (peak 1): per field, RMSE_K = 10^(−PSNR/20) / 0.01.
  for (const p of report.perImage)
    assert.ok(
      Math.abs(10 ** (-p.psnr / 20) / 0.01 - p.rmse[0]!) < 1e-3 * p.rmse[0]!,
      `${p.id}: PSNR and RMSE disagree`,
    );
  const ph = report.physical[0]!;
  // The cos-latitude weighting, recomputed from the predictions: rows of the 16×32 resize of the
  // 32-row grid (first/last row centres at ±87.19°) lie at ±84.375, ±73.125, … ±5.625.
  const model0 = await loadModel(join(out, "model.safetensors"));
  const testDs = await openFieldDataset(
    resolveRunConfig(cfg).data as FieldSpecInput,
    "test",
    model0.config.channels,
  );
  assert.deepEqual(
    [...testDs.latitudes!].map((x) => +x.toFixed(4)),
    Array.from({ length: 16 }, (_, i) => 84.375 - 11.25 * i),
  );
  await initBackend();
  const P = toDevice(model0.weights);
  const all = await evaluateImages(P, model0.config, testDs, { batchSize: 4, clamp: false, keep: 6 });
  disposeParams(P);
  let wse = 0;
  let ws = 0;
  // Pooled over every grid point of every field, the largest |error| anywhere, and per field.
  let pse = 0;
  let maxAbs = 0;
  const fieldRmse: number[] = [];
  assert.equal(all.kept.length, 6);
  for (const { input, pred } of all.kept) {
    let fse = 0;
    let fmax = 0;
    for (let i = 0; i < 16 * 32; i++) {
      const e = (pred.data[i]! - input.data[i]!) / 0.01;
      const wgt = Math.cos((testDs.latitudes![Math.floor(i / 32)]! * Math.PI) / 180);
      wse += wgt * e ** 2;
      ws += wgt;
      fse += e ** 2;
      fmax = Math.max(fmax, Math.abs(e));
    }
    pse += fse;
    maxAbs = Math.max(maxAbs, fmax);
    fieldRmse.push(Math.sqrt(fse / (16 * 32)));
  }
  testDs.close();
  assert.ok(
    Math.abs(Math.sqrt(wse / ws) - ph.rmseLatWeighted!) < 1e-6 * ph.rmseLatWeighted!,
    "lat-weighted RMSE",
  );
  const pooled = Math.sqrt(pse / (6 * 16 * 32));
  const meanField = fieldRmse.reduce((a, b) => a + b, 0) / 6;
  // The same predictions (same weights, same batches of 4): we measure equality to the last bit.
  // The per-field RMSEs are close (13.51 … 13.57 K), so pooled and mean differ by only 1.8e-6
  // relative; the field maxima differ more (28.4 … 29.6 K, the largest in the third field).
  assert.ok(Math.abs(ph.rmse - pooled) < 1e-9 * pooled, `pooled RMSE ${ph.rmse} vs ${pooled}`);
  assert.ok(Math.abs(ph.maxAbs - maxAbs) < 1e-9 * maxAbs, `max |error| ${ph.maxAbs} vs ${maxAbs}`);
  assert.ok(Math.abs(ph.meanFieldRmse - meanField) < 1e-9 * meanField, "mean per-field RMSE");
  assert.ok(
    Math.abs(ph.meanFieldRmse - report.perImage.reduce((a, p) => a + p.rmse[0]!, 0) / 6) < 1e-9,
    "mean per-field RMSE against the per-image RMSEs",
  );
  assert.ok(Number.isFinite(r.final.psnr), "final PSNR");
  // The model carries the channels: it decodes to kelvin.
  const model = await loadModel(join(out, "model.safetensors"));
  assert.deepEqual(model.config.channels, [{ name: "c0", units: "", shift: -260, scale: 0.01 }]);
  const samples = await readdir(join(out, "samples"));
  assert.ok(samples.includes("final.png"), 'samples.includes("final.png")');

  // CLI eval: the same physical errors, written beside the run.
  assert.equal(await main(["eval", out]), 0);
  const ev = JSON.parse(await readFile(join(out, "eval-test-online.json"), "utf8")) as {
    physical: { rmse: number; rmseLatWeighted: number }[];
  };
  assert.ok(
    Math.abs(ev.physical[0]!.rmse - ph.rmse) < 1e-9 &&
      Math.abs(ev.physical[0]!.rmseLatWeighted - ph.rmseLatWeighted!) < 1e-9,
  );

  // CLI eval --size: super-resolution against the data prepared at 2×, with the bilinear baselines.
  assert.equal(await main(["eval", out, "--size", "32x64"]), 0);
  const sr = JSON.parse(await readFile(join(out, "eval-test-online-32x64.json"), "utf8")) as {
    fields: number;
    size: number[];
    model: { physical: PhysicalRow[] };
    bilinear: { physical: PhysicalRow[] };
    decodeThenBilinear: { physical: PhysicalRow[] };
  };
  assert.deepEqual([sr.fields, ...sr.size], [6, 32, 64]);
  // The bilinear baseline recomputed from the generated fields (test split: t018 … t023; stored at
  // 32×64, so the 2× truth is the field itself and the input its 16×32 resize).
  const bilinearErr = [18, 19, 20, 21, 22, 23].map((k) => {
    const truth = temperature(32, 64, k);
    const up = resizeAntialiased(resizeAntialiased({ c: 1, h: 32, w: 64, data: truth }, 16, 32), 32, 64).data;
    return Float64Array.from(truth, (v, i) => up[i]! - v);
  });
  const bilinearK = pooledErrors(bilinearErr);
  assertErrorsMatch(sr.bilinear.physical[0]!, bilinearK, "bilinear");
  // The model's rows recomputed from the CLI's decode of each test field (encode → decode, another
  // path through the decoder than the evaluation's), at 32×64 and at 16×32 then upsampled.
  const srDec = join(out, "sr-dec");
  const srTok = join(out, "sr-tok.safetensors");
  const testFields = [18, 19, 20, 21, 22, 23];
  const npyOf = (k: number) => join(root, `t${String(k).padStart(3, "0")}.npy`);
  const cli = [...testFields.map(npyOf), "--model", out, "--out", srTok, "--preprocess", "resize"];
  assert.equal(await main(["encode", ...cli]), 0);
  for (const size of ["32x64", "16x32"])
    assert.equal(await main(["decode", srTok, "--model", out, "--size", size, "--out", srDec]), 0);
  const modelErr: Float64Array[] = [];
  const ownErr: Float64Array[] = [];
  for (const k of testFields) {
    const truth = temperature(32, 64, k);
    const stem = join(srDec, `t${String(k).padStart(3, "0")}`);
    const fine = (await readNpy(`${stem}.32x64.npy`)).data;
    const own = resizeAntialiased(
      { c: 1, h: 16, w: 32, data: (await readNpy(`${stem}.16x32.npy`)).data },
      32,
      64,
    );
    modelErr.push(Float64Array.from(truth, (v, i) => fine[i]! - v));
    ownErr.push(Float64Array.from(truth, (v, i) => own.data[i]! - v));
  }
  const modelK = pooledErrors(modelErr);
  const ownK = pooledErrors(ownErr);
  assertErrorsMatch(sr.model.physical[0]!, modelK, "decoded at 32×64");
  assertErrorsMatch(sr.decodeThenBilinear.physical[0]!, ownK, "decoded at 16×32, then bilinear");
  // Not the baseline under another name: the model's error differs from the bilinear one.
  assert.ok(
    Math.abs(sr.model.physical[0]!.rmse - sr.bilinear.physical[0]!.rmse) > 0.05 * bilinearK.rmse,
    `model ${sr.model.physical[0]!.rmse} K vs bilinear ${sr.bilinear.physical[0]!.rmse} K`,
  );
  assert.ok(
    existsSync(join(out, "eval-test-online-32x64.png")),
    'existsSync(join(out, "eval-test-online-32x64.png"))',
  );

  // CLI: encode the last (test) field from its .npy, decode at the training size and at 2×.
  const dec = join(out, "dec");
  await mkdir(dec);
  const tokens = join(out, "tok.safetensors");
  assert.equal(
    await main(["encode", join(root, "t023.npy"), "--model", out, "--out", tokens, "--preprocess", "resize"]),
    0,
  );
  assert.equal(await main(["decode", tokens, "--model", out, "--size", "16x32", "--out", dec]), 0);
  assert.equal(await main(["decode", tokens, "--model", out, "--size", "32x64", "--out", dec]), 0);
  assert.deepEqual((await readdir(dec)).sort(), [
    "t023.16x32.npy",
    "t023.16x32.png",
    "t023.32x64.npy",
    "t023.32x64.png",
  ]);
  const d16 = await readNpy(join(dec, "t023.16x32.npy"));
  assert.deepEqual(d16.shape, [16, 32]);
  // Same field, same weights: the decoded kelvin differ from the truth by the RMSE eval reported.
  const truth = resizeAntialiased({ c: 1, h: 32, w: 64, data: temperature(32, 64, 23) }, 16, 32).data;
  let se = 0;
  for (let i = 0; i < truth.length; i++) se += (d16.data[i]! - truth[i]!) ** 2;
  const rmse = Math.sqrt(se / truth.length);
  const reported = report.perImage.find((p) => p.id === "t023.npy")!.rmse[0]!;
  assert.ok(Math.abs(rmse - reported) < 1e-3 * reported + 1e-4, `decoded RMSE ${rmse} vs eval ${reported}`);
  // The same field from a NetCDF file (the model's channel name is the variable): same tokens.
  const nc = join(out, "fields.nc");
  await writeTimeGrid(nc, "c0", [2, 32, 64], [...temperature(32, 64, 22), ...temperature(32, 64, 23)]);
  const tokNc = join(out, "tok-nc.safetensors");
  assert.equal(
    await main(["encode", nc, "--index", "1", "--model", out, "--out", tokNc, "--preprocess", "resize"]),
    0,
  );
  assert.equal(await main(["decode", tokNc, "--model", out, "--size", "16x32", "--out", dec]), 0);
  const fromNc = await readNpy(join(dec, "fields-t1.16x32.npy"));
  fromNc.data.forEach((v, i) =>
    assert.ok(Math.abs(v - d16.data[i]!) < 1e-3, `NetCDF vs .npy decode at ${i}`),
  );
  // --format nc: the same values as a NetCDF-3 variable named after the channel.
  const decNc = join(out, "dec-nc");
  assert.equal(
    await main(["decode", tokens, "--model", out, "--size", "16x32", "--format", "nc", "--out", decNc]),
    0,
  );
  const ncOut = await openNetcdf(join(decNc, "t023.16x32.nc"));
  assert.deepEqual(ncOut.variable("c0").dims, [
    { name: "y", size: 16 },
    { name: "x", size: 32 },
  ]);
  assert.deepEqual([...(await ncOut.readSlice("c0", []))], [...d16.data]);
  ncOut.close();
  // And as netCDF-C reads it (Debian's python3-netcdf4), not only our own reader.
  if (
    !skipWithoutData(
      t,
      systemPythonHas("netCDF4"),
      `${SYSTEM_PYTHON} with netCDF4 (apt install python3-netcdf4)`,
    )
  ) {
    const py = spawnSync(SYSTEM_PYTHON, ["-c", PY_NC_VARIABLE, join(decNc, "t023.16x32.nc"), "c0"], {
      encoding: "utf8",
    });
    assert.equal(py.status, 0, py.stderr);
    const read = JSON.parse(py.stdout) as {
      format: string;
      dims: [string, number][];
      dtype: string;
      values: number[];
    };
    assert.deepEqual(
      [read.format, read.dims, read.dtype],
      [
        "NETCDF3_CLASSIC",
        [
          ["y", 16],
          ["x", 32],
        ],
        "float32",
      ],
    );
    assert.deepEqual(read.values, [...d16.data]);
  }
  const d32 = await readNpy(join(dec, "t023.32x64.npy"));
  assert.deepEqual(d32.shape, [32, 64]);
  for (const v of d32.data) assert.ok(v > 150 && v < 350, `decoded value ${v} K is not a temperature`);
});

test("field super-resolution with resize-crop (the ERA5 presets): both sizes cover the same region", async (t) => {
  // Stored at 48×96. The model's input: shorter side to 20 (20×40), centre 16×16 crop at (2, 12).
  // eval --size 32x32 (×2): shorter side to 40 (40×80), centre 32×32 crop at (4, 24) — the same
  // region of the globe, now at twice the resolution.
  const root = await npyFolder(t, 8, 48, 96);
  const out = await tempDir(t, "field-sr-crop");
  const cfg: RunConfigInput = {
    name: "sr-crop",
    task: "field",
    data: {
      kind: "npy",
      root,
      split: { train: 0.5, val: 0, test: 0.5 },
      preprocess: { mode: "resize-crop", size: 16, resize: 20 },
      normalize: { shift: -260, scale: 0.01 },
    },
    model: tinyFieldModel(false, [16, 16]),
    train: {
      steps: 2,
      batch_size: 2,
      lr: 1e-3,
      eval_every: 0,
      sample_every: 0,
      checkpoint_every: 0,
      log_every: 1,
      ema: null,
    },
    eval: { split: "test", batch_size: 4 },
  };
  await train(resolveRunConfig(cfg), { out, verbose: false });
  assert.equal(await main(["eval", out, "--size", "32x32"]), 0);
  const sr = JSON.parse(await readFile(join(out, "eval-test-online-32x32.json"), "utf8")) as {
    fields: number;
    inputSize: number[];
    size: number[];
    model: { physical: PhysicalRow[] };
    bilinear: { physical: PhysicalRow[] };
  };
  assert.deepEqual([sr.fields, ...sr.inputSize, ...sr.size], [4, 16, 16, 32, 32]);
  // The test split is t004 … t007. Inputs and truths prepared here with the offsets worked out above.
  const inputs: HostImage[] = [];
  const bilinearErr: Float64Array[] = [];
  const truths: Float32Array[] = [];
  for (let k = 4; k < 8; k++) {
    const field: HostImage = { c: 1, h: 48, w: 96, data: temperature(48, 96, k) };
    const input = crop(resizeAntialiased(field, 20, 40), 2, 12, 16, 16);
    const truth = crop(resizeAntialiased(field, 40, 80), 4, 24, 32, 32).data;
    const up = resizeAntialiased(input, 32, 32).data;
    inputs.push({ ...input, data: input.data.map((v) => 0.01 * (v - 260)) });
    truths.push(truth);
    bilinearErr.push(Float64Array.from(truth, (v, i) => up[i]! - v));
  }
  assertErrorsMatch(sr.bilinear.physical[0]!, pooledErrors(bilinearErr), "bilinear, resize-crop");
  // The model decoded at 32×32 from those inputs, compared with those truths.
  const model = await loadModel(join(out, "model.safetensors"));
  await initBackend();
  const P = toDevice(model.weights);
  const decode = createImageDecoder(model.config);
  let pred: Float32Array;
  try {
    const generated = hyperNetwork(P, model.config, toBatchArray(inputs).mul(2).sub(1));
    pred = await decode(P, generated, 4, 32, 32);
    disposeParams(generated);
  } finally {
    decode.dispose();
    disposeParams(P);
  }
  const modelErr = truths.map((truth, j) =>
    Float64Array.from(truth, (v, i) => (pred[j * 1024 + i]! + 1) / 2 / 0.01 + 260 - v),
  );
  assertErrorsMatch(sr.model.physical[0]!, pooledErrors(modelErr), "decoded at 32×32, resize-crop");
});

test("field run with sphere coordinates trains and its loss falls", async (t) => {
  const root = await npyFolder(t, 12, 16, 32);
  const out = await tempDir(t, "field-sphere");
  const cfg: RunConfigInput = {
    name: "sphere",
    task: "field",
    data: { kind: "npy", root, split: { train: 0.75, val: 0, test: 0.25 }, preprocess: { mode: "none" } },
    model: tinyFieldModel(true),
    train: {
      steps: 30,
      batch_size: 4,
      lr: 2e-3,
      eval_every: 0,
      sample_every: 0,
      checkpoint_every: 0,
      log_every: 5,
      ema: null,
    },
  };
  await train(resolveRunConfig(cfg), { out, verbose: false });
  const lines = (await readFile(join(out, "metrics.jsonl"), "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss?: number; test_rmse_c0?: number });
  const losses = lines.filter((l) => l.loss !== undefined).map((l) => l.loss!);
  assert.ok(losses.at(-1)! < 0.5 * losses[0]!, `loss ${losses[0]} → ${losses.at(-1)}`);
  assert.ok(lines.at(-1)!.test_rmse_c0! > 0, "test RMSE logged");
});

test("fields: NetCDF files — time steps as instances, channels, select, north-up, units, errors", async (t) => {
  const dir = await tempDir(t, "fields-nc");
  const [nt, nl, h, w] = [5, 2, 6, 12];
  // Latitude increasing (south first), as some products store it: the dataset flips it north-up.
  const lat = Array.from({ length: h }, (_, i) => -75 + 30 * i);
  const lon = Array.from({ length: w }, (_, j) => 30 * j);
  const t2m = new Float32Array(nt * h * w);
  const u = new Float32Array(nt * nl * h * w);
  for (let t = 0; t < nt; t++) {
    const north = temperature(h, w, t); // north-up
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        t2m[(t * h + i) * w + j] = north[(h - 1 - i) * w + j]!;
        for (let l = 0; l < nl; l++) u[((t * nl + l) * h + i) * w + j] = 100 * l + t + i - j / 10;
      }
  }
  // t2m packed as int16 with scale/offset, as the CDS's NetCDF-3 files store it.
  const packed = Int16Array.from(t2m, (v) => Math.round((v - 270) / 0.002));
  for (const [k, name] of ["a.nc", "b.nc"].entries())
    await writeNetcdf3(join(dir, name), {
      dims: [
        { name: "time", size: nt, unlimited: true },
        { name: "level", size: nl },
        { name: "latitude", size: h },
        { name: "longitude", size: w },
      ],
      variables: [
        { name: "latitude", dims: ["latitude"], dtype: "f4", data: lat },
        {
          name: "time",
          dims: ["time"],
          dtype: "i4",
          data: Array.from({ length: nt }, (_, t) => 1_087_320 + 24 * k + 6 * t),
          attrs: { units: "hours since 1900-01-01 00:00:00.0", calendar: "gregorian" },
        },
        { name: "longitude", dims: ["longitude"], dtype: "f4", data: lon },
        {
          name: "t2m",
          dims: ["time", "latitude", "longitude"],
          dtype: "i2",
          data: packed.map((v) => v + k),
          attrs: { units: "K", scale_factor: 0.002, add_offset: 270 },
        },
        {
          name: "u",
          dims: ["time", "level", "latitude", "longitude"],
          dtype: "f4",
          data: u,
          attrs: { units: "m s**-1" },
        },
      ],
    });
  const spec = {
    kind: "netcdf" as const,
    root: dir,
    variables: ["t2m"],
    split: { train: 0.8, val: 0, test: 0.2 },
    preprocess: { mode: "none" as const },
    normalize: { shift: -260, scale: 0.01 },
  };
  const ch = await fieldChannels(spec);
  assert.deepEqual(ch, [{ name: "t2m", units: "K", shift: -260, scale: 0.01 }]);
  const tr = await openFieldDataset(spec, "train", ch);
  const te = await openFieldDataset(spec, "test", ch);
  // Two files × 5 steps, in file then time order; the last 2 steps of b.nc are the test split.
  assert.equal(tr.length, 8);
  assert.deepEqual([te.id(0), te.id(1)], ["b.nc#3", "b.nc#4"]);
  // CF time as the CDS writes it: 1,087,320 h after 1900-01-01 is 2024-01-16 00:00 UTC.
  assert.equal(te.time(0), "2024-01-17T18:00:00.000Z");
  // Row latitudes north-up (the file stores −75 … 75), and at the rows of a 3-row resize.
  assert.deepEqual([...tr.latitudes!], [75, 45, 15, -15, -45, -75]);
  const half = await openFieldDataset({ ...spec, preprocess: { mode: "resize", size: [3, 6] } }, "test", ch);
  assert.deepEqual([...half.latitudes!], [60, 0, -60]);
  half.close();
  // resize-crop to 4: rows 6 → 4 (the shorter side), no row cropped: centres at 0.25, 1.75, 3.25, 4.75.
  const crop = await openFieldDataset({ ...spec, preprocess: { mode: "resize-crop", size: 4 } }, "test", ch);
  assert.deepEqual([...crop.latitudes!], [67.5, 22.5, -22.5, -67.5]);
  crop.close();
  const f = await tr.get(2); // a.nc, t = 2: north-up, unpacked, normalised
  const expectK = temperature(h, w, 2);
  for (let i = 0; i < h * w; i++)
    assert.ok(
      Math.abs(f.data[i]! / 0.01 + 260 - expectK[i]!) < 0.0015,
      `value ${i}: ${f.data[i]! / 0.01 + 260} vs ${expectK[i]}`,
    );
  tr.close();
  te.close();

  // Two channels from a 4-D variable need a level; units come from the attributes.
  const two = {
    ...spec,
    variables: ["u", "u"],
    select: { level: 1 },
    normalize: { shift: 0, scale: [1, 0.5] },
  };
  const ch2 = await fieldChannels(two);
  assert.deepEqual(
    ch2.map((c) => [c.units, c.scale]),
    [
      ["m s**-1", 1],
      ["m s**-1", 0.5],
    ],
  );
  const d2 = await openFieldDataset(two, "train", ch2);
  const g = await d2.get(1);
  // North-up row 0 is the file's last latitude row (i = h − 1); level 1, t = 1.
  assert.equal(g.data[0], 100 + 1 + (h - 1));
  assert.equal(g.data[h * w], 0.5 * (100 + 1 + (h - 1)));
  d2.close();
  // A projected grid (y in metres, increasing): not a latitude, so neither flipped nor weighted.
  await mkdir(join(dir, "proj"));
  await writeNetcdf3(join(dir, "proj", "p.nc"), {
    dims: [
      { name: "time", size: 1 },
      { name: "y", size: 2 },
      { name: "x", size: 2 },
    ],
    variables: [
      { name: "y", dims: ["y"], dtype: "f4", data: [0, 5000], attrs: { units: "m" } },
      { name: "v", dims: ["time", "y", "x"], dtype: "f4", data: [1, 2, 3, 4] },
    ],
  });
  const proj = await openFieldDataset(
    {
      ...spec,
      root: join(dir, "proj"),
      variables: ["v"],
      split: { train: 1, val: 0, test: 0 },
      normalize: { shift: 0, scale: 1 },
    },
    "train",
    null,
  );
  assert.equal(proj.latitudes, null);
  assert.deepEqual([...(await proj.get(0)).data], [1, 2, 3, 4]);
  proj.close();
  await assert.rejects(
    openFieldDataset({ ...spec, variables: ["u"] }, "train", null),
    /dimension level \(size 2\) besides the time and grid; choose one with select: \{ level: <index> \}/,
  );
  await assert.rejects(
    openFieldDataset({ ...spec, variables: ["t2m", "u"], select: { level: 0 } }, "train", null),
    /variable u has dimensions \(time=5, level=2, latitude=6, longitude=12\) but t2m has/,
  );
  await assert.rejects(openFieldDataset({ ...spec, variables: ["sst"] }, "train", null), /a\.nc.*sst/);
  await assert.rejects(
    openFieldDataset({ ...spec, variables: ["u"], select: { level: 2 } }, "train", null),
    /select\.level = 2 is out of range \(size 2\)/,
  );
});

test("fields: the CDS's NetCDF-4 files (written by netCDF-C) as datasets: gaps, fill, pressure levels", async () => {
  const fx = join(import.meta.dirname, "fixtures", "netcdf");
  // era5_new_cds.nc: t2m (3, 25, 45), zlib + shuffle, NaN at (t 0, 12, 22) and (t 2, 0, 1).
  const spec = {
    kind: "netcdf" as const,
    root: join(fx, "era5_new_cds.nc"),
    variables: ["t2m"],
    split: { train: 1, val: 0, test: 0 },
    preprocess: { mode: "none" as const },
    normalize: { shift: -260, scale: 0.01 },
  };
  const ds = await openFieldDataset(spec, "train", null);
  assert.deepEqual([ds.length, ...ds.size, ds.channels[0]!.units], [3, 25, 45, "K"]);
  await assert.rejects(ds.get(0), /era5_new_cds\.nc#0 has 1 missing value/);
  const ok = await ds.get(1);
  // T = 280 + 20 cos(lat) + 5 tanh((lon − 180)/5) + t, lat 90 → −90 in 7.5° steps, lon 0, 8, 16, …
  const T = (t: number, i: number, j: number) =>
    280 + 20 * Math.cos(((90 - 7.5 * i) * Math.PI) / 180) + 5 * Math.tanh((8 * j - 180) / 5) + t;
  for (const [i, j] of [
    [0, 0],
    [12, 22],
    [24, 44],
  ] as const)
    assert.ok(Math.abs(ok.data[i * 45 + j]! - T(1, i, j)) < 1e-4, `t2m at (${i}, ${j})`);
  ds.close();
  const filled = await openFieldDataset({ ...spec, fill_missing: 273.15 }, "train", null);
  assert.equal((await filled.get(2)).data[1], Math.fround(273.15));
  filled.close();
  // era5_new_cds_pl.nc: t (2, 3 levels, 7, 12); level 2 (500 hPa) as the one channel.
  const pl = await openFieldDataset(
    { ...spec, root: join(fx, "era5_new_cds_pl.nc"), variables: ["t"], select: { pressure_level: 2 } },
    "train",
    null,
  );
  assert.equal(pl.length, 2);
  const f = await pl.get(1);
  // TA = 250 + 10k + 20 cos(lat) + 5 tanh((lon − 180)/5) + t at k 2, t 1, lat 90 − 30i, lon 30j.
  const ta =
    250 + 20 + 20 * Math.cos(((90 - 30 * 3) * Math.PI) / 180) + 5 * Math.tanh((30 * 5 - 180) / 5) + 1;
  assert.ok(Math.abs(f.data[3 * 12 + 5]! - ta) < 1e-4, `${f.data[3 * 12 + 5]} vs ${ta}`);
  pl.close();
});

test("winds-demo preset on the real monthly winds (ferret-datasets), if installed", async (t) => {
  const run = resolveRunConfig(runPreset("winds-demo"));
  assert.ok(run.task === "field", 'run.task === "field"');
  if (skipWithoutData(t, existsSync(run.data.root), `${run.data.root} (apt install ferret-datasets)`)) return;
  const ch = await fieldChannels(run.data);
  assert.deepEqual(
    ch.map((c) => [c.name, c.units]),
    [
      ["UWND", "M/S"],
      ["VWND", "M/S"],
    ],
  );
  const tr = await openFieldDataset(run.data, "train", ch);
  const te = await openFieldDataset(run.data, "test", ch);
  // 132 months (Jan 1982 … Dec 1992 by the CF time axis) cut 0.85 / 0.10 / 0.05 in time order: Jun–Dec 1992 test.
  assert.deepEqual(
    [tr.length, te.length, te.id(0), te.id(6)],
    [112, 7, "monthly_navy_winds.cdf#125", "monthly_navy_winds.cdf#131"],
  );
  // CF time "hour since 1980-01-14 14:00:00": 17598 h → mid-January 1982 (checked with scipy's values).
  assert.deepEqual([tr.time(0), te.time(6)], ["1982-01-16T20:00:00.000Z", "1992-12-17T03:30:00.000Z"]);
  const f = await te.get(0);
  assert.deepEqual([f.c, f.h, f.w], [2, 32, 64]);
  // Against netCDF-C's values resized by torch, and the training split's statistics taken from
  // those (scripts/make_winds_fixtures.py): mean-std gives shift = σ − μ, scale = 1/(2σ).
  const fx = join(import.meta.dirname, "fixtures", "winds");
  const ref = JSON.parse(await readFile(join(fx, "winds.json"), "utf8")) as { mean: number[]; std: number[] };
  const month = await readNpy(join(fx, "winds_test125.npy"));
  ch.forEach((c, k) => {
    const [mu, sigma] = [ref.mean[k]!, ref.std[k]!];
    // float32 resizing here, float64 in torch: we measure 1.2e-9 on the shift, 4e-10 relative on the scale.
    assert.ok(Math.abs(c.shift - (sigma - mu)) < 1e-7, `${c.name} shift ${c.shift} vs σ − μ = ${sigma - mu}`);
    assert.ok(
      Math.abs(c.scale * 2 * sigma - 1) < 1e-7,
      `${c.name} scale ${c.scale} vs 1/(2σ) = ${1 / (2 * sigma)}`,
    );
  });
  let worst = 0;
  for (let k = 0; k < 2; k++)
    for (let i = 0; i < 32 * 64; i++) {
      const want = ((month.data[k * 2048 + i]! - ref.mean[k]!) / ref.std[k]! + 1) / 2;
      worst = Math.max(worst, Math.abs(f.data[k * 2048 + i]! - want));
    }
  // We measure 3.1e-7: about one float32 step of values in [2, 4).
  assert.ok(worst < 1e-6, `test month 125 in network units: largest difference ${worst}`);
  tr.close();
  te.close();
});

test("compare --preset winds: ANR, MLP and IPC on real fields, with RMSE columns (if ferret-datasets)", async (t) => {
  const winds = "/usr/share/ferret-vis/data/monthly_navy_winds.cdf";
  if (skipWithoutData(t, existsSync(winds), `${winds} (apt install ferret-datasets)`)) return;
  const out = await tempDir(t, "compare-winds");
  const code = await main([
    "compare",
    "--preset",
    "winds",
    "--steps",
    "2",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.eval_every=0",
    "--out",
    out,
  ]);
  assert.equal(code, 0);
  const md = await readFile(join(out, "compare.md"), "utf8");
  assert.match(md, /\| model \| test PSNR \(dB\) \| SSIM \| RMSE UWND \(M\/S\) \| RMSE VWND \(M\/S\) \|/);
  for (const m of ["ANR", "MLP \\(TransINR\\)", "IPC"])
    assert.match(md, new RegExp(`\\| ${m} \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ \\|`));
  assert.deepEqual((await readdir(out)).sort(), [
    "compare-size.png",
    "compare-time.png",
    "compare.json",
    "compare.md",
    "compare.png",
    "winds-anr",
    "winds-ipc",
    "winds-mlp",
  ]);
});

test("field run: an interrupted and resumed run (mean-std normalisation) ends as an uninterrupted one", async (t) => {
  const root = await npyFolder(t, 10, 16, 32);
  const cfg: RunConfigInput = {
    name: "resume",
    task: "field",
    data: { kind: "npy", root, split: { train: 0.8, val: 0, test: 0.2 }, preprocess: { mode: "none" } },
    model: tinyFieldModel(false),
    train: {
      steps: 6,
      batch_size: 2,
      lr: 1e-3,
      eval_every: 3,
      sample_every: 0,
      checkpoint_every: 3,
      log_every: 1,
      ema: null,
    },
  };
  const a = await tempDir(t, "field-a");
  const b = await tempDir(t, "field-b");
  const whole = await train(resolveRunConfig(cfg), { out: a, verbose: false });
  const first = await train(resolveRunConfig(cfg), { out: b, verbose: false, stopAfter: 3 });
  assert.equal(first.interrupted, true);
  const rest = await train(resolveRunConfig(cfg), { out: b, verbose: false, resume: true });
  assert.equal(rest.steps, 6);
  const read = async (d: string, f: string) => readFile(join(d, f), "utf8");
  assert.equal(
    await read(b, "metrics.jsonl").then((t) =>
      t.replace(/"(seconds|time|images_per_s|step_s|train_seconds)":[^,}]+,?/g, ""),
    ),
    await read(a, "metrics.jsonl").then((t) =>
      t.replace(/"(seconds|time|images_per_s|step_s|train_seconds)":[^,}]+,?/g, ""),
    ),
  );
  assert.equal(await read(b, "config.json"), await read(a, "config.json"));
  assert.equal(rest.final.psnr, whole.final.psnr);
  // The statistics are taken from the run's config on resume, not recomputed: changing a training
  // field in between does not make the resumed config differ from the saved one.
  const c = await tempDir(t, "field-c");
  await train(resolveRunConfig(cfg), { out: c, verbose: false, stopAfter: 3 });
  await writeNpy(join(root, "t000.npy"), {
    shape: [16, 32],
    data: temperature(16, 32, 0).map((v) => v + 30),
  });
  const resumed = await train(resolveRunConfig(cfg), { out: c, verbose: false, resume: true });
  assert.equal(resumed.steps, 6);
});

/** How many files under `dir` this process holds open (Linux: the links in /proc/self/fd). */
async function openFilesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
    if (target.startsWith(`${dir}/`)) n++;
  }
  return n;
}

/**
 * The open files under `dir` once they number at most `bound`, or after 2 s: FileHandle.close()
 * completes asynchronously after an eviction, so a count taken at once can include files being closed.
 */
async function settledOpenFiles(dir: string, bound: number): Promise<number> {
  const until = Date.now() + 2000;
  for (;;) {
    const n = await openFilesUnder(dir);
    if (n <= bound || Date.now() > until) return n;
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("fields: a folder of many NetCDF files is read through a bounded set of open files, concurrently", async (t) => {
  if (!existsSync("/proc/self/fd")) return t.skip("needs /proc/self/fd (Linux) to count open files");
  const dir = await realpath(await tempDir(t, "fields-many"));
  const n = 20;
  // The dataset keeps at most this many files open between reads (src/data/fields.ts).
  const MAX_OPEN = 8;
  for (let k = 0; k < n; k++)
    await writeTimeGrid(
      join(dir, `h${String(k).padStart(3, "0")}.nc`),
      "v",
      [2, 3, 4],
      Array.from({ length: 24 }, (_, i) => 1000 * k + i),
    );
  const ds = await openFieldDataset(
    {
      kind: "netcdf",
      root: dir,
      // Two channels, so that each read awaits twice on its file: a file closed under a read fails.
      variables: ["v", "v"],
      split: { train: 1, val: 0, test: 0 },
      preprocess: { mode: "none" },
      normalize: { shift: 0, scale: 1 },
    },
    "train",
    null,
  );
  assert.equal(ds.length, 2 * n);
  // The scan of the headers closed every file.
  assert.equal(await settledOpenFiles(dir, 0), 0);
  const check = (f: HostImage, i: number) => {
    const [k, step] = [Math.floor(i / 2), i % 2];
    const values = Array.from({ length: 12 }, (_, q) => 1000 * k + 12 * step + q);
    assert.deepEqual([...f.data], [...values, ...values], `item ${i}`);
  };
  // One at a time through every file: the open files grow to the bound and stay there.
  for (let i = 0; i < 2 * n; i += 2) {
    check(await ds.get(i), i);
    const files = i / 2 + 1;
    assert.equal(await settledOpenFiles(dir, MAX_OPEN), Math.min(files, MAX_OPEN), `after ${files} files`);
  }
  // Twice over every item, in a scrambled order, 16 at a time: files in use are not closed under a
  // read, and once the batch is done the cache is back within its bound.
  const order = [...Array(2 * n).keys(), ...Array(2 * n).keys()].map((i) => (i * 17) % (2 * n));
  for (let s = 0; s < order.length; s += 16) {
    const batch = order.slice(s, s + 16);
    const items = await Promise.all(batch.map((i) => ds.get(i)));
    items.forEach((f, j) => check(f, batch[j]!));
    assert.ok((await settledOpenFiles(dir, MAX_OPEN)) <= MAX_OPEN, `after the batch at ${s}`);
  }
  ds.close();
  assert.equal(await settledOpenFiles(dir, 0), 0, "close() closes every file");
});
