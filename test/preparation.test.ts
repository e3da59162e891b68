/**
 * Issue 16: models remember how their data was prepared. A field model trained with fill_missing
 * encodes its own NetCDF file (land gaps and all) without being told anything, and decodes it with
 * NaN where the input was missing; an image model trained on resize-crop images encodes new
 * images with the same crop unless told otherwise. Each flag overrides its part.
 */
import { test } from "node:test";
import { recordedPreparation } from "../src/api/model.js";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { decodeTransformed } from "../src/data/datasets.js";
import { evaluateImageSplit } from "../src/eval/evaluate.js";
import { disposeParams, toDevice } from "../src/model/params.js";
import { fromInterleaved } from "../src/data/image.js";
import { renderSvg } from "../src/data/svg.js";
import { PREPARATION_METADATA_KEY, readPreparation } from "../src/data/preparation.js";
import { readNpy, writeNetcdf3 } from "../src/io/array-files.js";
import { loadModel, readSafetensors, saveModel } from "../src/io/files.js";
import { MISSING_TENSOR } from "../src/io/tokens.js";
import { tinyConfig } from "./fixtures.js";
import { encodeWith, runCli as run, tempDir, writePhoto } from "./cli-helpers.js";

const [H, W] = [8, 16];
/** Land: a block of the grid where every time step is missing (_FillValue), as over continents. */
const isLand = (y: number, x: number) => y >= 2 && y < 6 && x >= 5 && x < 11;
const FILL = 9.96921e36;
/** The pressure (hPa) at step t, row y, column x, where it is not land. */
const slp = (t: number, y: number, x: number) => 1010 + 8 * Math.sin((x + 2 * t) / 3) - 6 * Math.cos(y / 2);

/** Sea-level pressure (hPa) over (time, lat, lon), _FillValue over land, latitudes north up. */
async function pressureFile(path: string, steps: number): Promise<void> {
  const data = new Float32Array(steps * H * W);
  for (let t = 0; t < steps; t++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) data[(t * H + y) * W + x] = isLand(y, x) ? FILL : slp(t, y, x);
  await writeNetcdf3(path, {
    dims: [
      { name: "time", size: steps, unlimited: true },
      { name: "lat", size: H },
      { name: "lon", size: W },
    ],
    variables: [
      {
        name: "lat",
        dims: ["lat"],
        dtype: "f4",
        data: Float32Array.from({ length: H }, (_, y) => 78.75 - 22.5 * y),
        attrs: { units: "degrees_north" },
      },
      {
        name: "SLP",
        dims: ["time", "lat", "lon"],
        dtype: "f4",
        data,
        attrs: { units: "hPa", _FillValue: FILL },
      },
    ],
  });
}

test("a field model trained with fill_missing encodes its own file unaided; gaps decode as NaN", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "prep-field");
  const file = join(dir, "slp.nc");
  await pressureFile(file, 4);
  const enc = { dim: 32, depth: 1, n_head: 2, head_dim: 8, ff_dim: 64 };
  await writeFile(
    join(dir, "run.json"),
    JSON.stringify({
      name: "slp",
      task: "field",
      data: {
        kind: "netcdf",
        root: file,
        variables: ["SLP"],
        fill_missing: 1011,
        split: { train: 0.5, val: 0, test: 0.5 },
        preprocess: { mode: "resize", size: [H, W] },
      },
      model: {
        direct_wtoken: true,
        tokenizer: {
          name: "ImgTokenizer",
          args: { input_size: [H, W], patch_size: 4, dim: 32, img_channels: 1 },
        },
        hyponet: {
          name: "ANR",
          args: {
            ...{ in_dim: 2, out_dim: 1, depth: 2, hidden_dim: 32, pe_dim: 16, pe_sigma: 16 },
            ...{ token_len: 8, att_threshold: 0.05, n_head: 2, head_dim: 8 },
          },
        },
        tinr_enc: { name: "TInrEncoder", args: enc },
        tinr_dec: { name: "TInrDecoder", args: enc },
      },
      train: { steps: 2, batch_size: 2, ema: null, eval_every: 0, sample_every: 0, checkpoint_every: 0 },
    }),
  );
  const runDir = join(dir, "run");
  let r = await run(["train", join(dir, "run.json"), "--out", runDir]);
  assert.equal(r.code, 0, r.err);
  const model = await loadModel(join(runDir, "model.safetensors"));
  assert.deepEqual(readPreparation(model.metadata, "model")?.data, {
    kind: "netcdf",
    variables: ["SLP"],
    select: {},
    north_up: true,
    preprocess: { mode: "resize", size: [H, W], antialias: true },
    fill_missing: 1011,
  });

  // No flags: the recorded preparation (fill_missing included), and the command says so.
  const tokens = join(dir, "t.safetensors");
  r = await run(["encode", file, "--index", "0,3", "--model", runDir, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /slp\.nc: resized to 8×16, antialiased, variables SLP, fill_missing 1011 \(as the model was trained\)/,
  );
  assert.match(r.out, /2 with filled gaps, kept as a mask \(decoded as NaN\)/);
  const mask = (await readSafetensors(tokens)).tensors.get(MISSING_TENSOR)!;
  assert.deepEqual(mask.shape, [2, H, W]);
  for (let i = 0; i < 2; i++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) assert.equal(mask.data[(i * H + y) * W + x], isLand(y, x) ? 1 : 0);

  // Decoded at 2×: NaN exactly over the land (each input pixel becomes 2×2), finite hPa elsewhere.
  r = await run([
    "decode",
    tokens,
    "--model",
    runDir,
    "--size",
    `${2 * H}x${2 * W}`,
    "--out",
    join(dir, "dec"),
  ]);
  assert.equal(r.code, 0, r.err);
  for (const name of ["slp-t0", "slp-t3"]) {
    const d = await readNpy(join(dir, "dec", `${name}.${2 * H}x${2 * W}.npy`));
    assert.deepEqual(d.shape, [2 * H, 2 * W]);
    for (let y = 0; y < 2 * H; y++)
      for (let x = 0; x < 2 * W; x++) {
        const v = d.data[y * 2 * W + x]!;
        if (isLand(y >> 1, x >> 1)) assert.ok(Number.isNaN(v), `${name} (${y}, ${x}) over land: ${v}`);
        else assert.ok(Number.isFinite(v) && v > 900 && v < 1100, `${name} (${y}, ${x}): ${v} is not hPa`);
      }
  }

  // eval RUN and eval --data-root print the preparation they used, even when it is the run config's.
  for (const args of [[runDir], [runDir, "--data-root", file]]) {
    r = await run(["eval", ...args, "--out", join(dir, "ev")]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^data: resized to 8×16, antialiased, variables SLP, fill_missing 1011 \(as .*model\.safetensors was trained\)$/m,
    );
  }

  // eval prepares a run config's data as the model was trained too: this config forgot fill_missing.
  const config = JSON.parse(await readFile(join(dir, "run.json"), "utf8")) as {
    data: Record<string, unknown>;
  };
  delete config.data.fill_missing;
  await writeFile(join(dir, "forgot.json"), JSON.stringify(config));
  r = await run(["eval", "--model", runDir, "--config", join(dir, "forgot.json"), "--out", join(dir, "ev")]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /data: .*fill_missing 1011 \(as .*model\.safetensors was trained; the run config says: .*no fill_missing\)/,
  );
  // Its metrics leave out the filled land: they are those of the sea points of the test steps (2
  // and 3) decoded at the input size, in hPa, and PSNR in normalised units agrees with them.
  const ev = JSON.parse(await readFile(join(dir, "ev", "eval-test-online.json"), "utf8")) as {
    missingPoints: number;
    protocol: string;
    perImage: { psnr: number; rmse: number[] }[];
    physical: { rmse: number }[];
  };
  assert.equal(ev.missingPoints, 2 * 24);
  assert.match(ev.protocol, /the 48 grid points whose input was missing .* are left out/);
  r = await run([
    "encode",
    file,
    "--index",
    "2,3",
    "--model",
    runDir,
    "--out",
    join(dir, "test.safetensors"),
  ]);
  assert.equal(r.code, 0, r.err);
  r = await run(["decode", join(dir, "test.safetensors"), "--model", runDir, "--out", join(dir, "dec1")]);
  assert.equal(r.code, 0, r.err);
  const scale = model.config.channels![0]!.scale;
  let [seAll, nAll] = [0, 0];
  for (const [k, step] of [2, 3].entries()) {
    const d = (await readNpy(join(dir, "dec1", `slp-t${step}.${H}x${W}.npy`))).data;
    let se = 0;
    let n = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        if (!isLand(y, x)) {
          se += (d[y * W + x]! - Math.fround(slp(step, y, x))) ** 2;
          n++;
        }
    const rmse = Math.sqrt(se / n);
    const field = ev.perImage[k]!;
    assert.ok(
      Math.abs(field.rmse[0]! - rmse) <= 1e-4 * rmse,
      `t${step}: RMSE ${field.rmse[0]} vs ${rmse} hPa`,
    );
    const psnr = -10 * Math.log10((scale * rmse) ** 2);
    assert.ok(Math.abs(field.psnr - psnr) < 1e-3, `t${step}: PSNR ${field.psnr} vs ${psnr} dB`);
    [seAll, nAll] = [seAll + se, nAll + n];
  }
  const rmseAll = Math.sqrt(seAll / nAll);
  assert.ok(
    Math.abs(ev.physical[0]!.rmse - rmseAll) <= 1e-4 * rmseAll,
    `${ev.physical[0]!.rmse} vs ${rmseAll}`,
  );
  r = await run([
    ...["eval", "--model", runDir, "--config", join(dir, "forgot.json"), "--out", join(dir, "ev")],
    ...["--fill-missing", "none"],
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /has 24 missing value\(s\)/);

  // Flags override: without fill_missing the gaps are an error again, naming the file.
  r = await run([
    "encode",
    file,
    "--model",
    runDir,
    "--out",
    join(dir, "x.safetensors"),
    "--fill-missing",
    "none",
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /slp\.nc#0 has 24 missing value\(s\) .* set fill_missing/);
  // A model file that records nothing (older files) needs the flag, which is then enough.
  const bare = join(dir, "bare.safetensors");
  const meta = { ...model.metadata };
  delete meta[PREPARATION_METADATA_KEY];
  await saveModel(bare, model.config, model.weights, meta);
  r = await run([
    "encode",
    file,
    "--model",
    bare,
    "--out",
    join(dir, "y.safetensors"),
    "--preprocess",
    "resize",
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /missing value/);
  r = await run([
    ...["encode", file, "--model", bare, "--out", join(dir, "y.safetensors")],
    ...["--preprocess", "resize", "--fill-missing", "1011", "--index", "0,3"],
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /defaults: the model file records no preparation, overridden by --preprocess resize --fill-missing 1011/,
  );
  const same = (await readSafetensors(join(dir, "y.safetensors"))).tensors;
  const recorded = (await readSafetensors(tokens)).tensors;
  for (const [k, v] of recorded) assert.deepEqual(same.get(k)!.data, v.data, `${k}: flags = record`);
});

test("an image model trained on resize-crop images encodes with that crop unless told otherwise", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "prep-image");
  for (const split of ["train", "val", "test"]) {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(dir, "imgs", split), { recursive: true });
    for (const s of [0, 1]) await writePhoto(join(dir, "imgs", split, `p${s}.png`), 30, 20, s);
  }
  await writeFile(
    join(dir, "run.json"),
    JSON.stringify({
      name: "crop",
      data: {
        kind: "folder",
        root: join(dir, "imgs"),
        split: "folders",
        preprocess: { mode: "resize-crop", size: 16, resize: 20 },
      },
      model: tinyConfig("ANR"),
      train: { steps: 1, batch_size: 2, ema: null, eval_every: 0, sample_every: 0, checkpoint_every: 0 },
    }),
  );
  const runDir = join(dir, "run");
  let r = await run(["train", join(dir, "run.json"), "--out", runDir]);
  assert.equal(r.code, 0, r.err);
  const { config, weights } = await loadModel(join(runDir, "model.safetensors"));
  const photo = join(dir, "new.png");
  await writePhoto(photo, 40, 24, 5);
  const tokensOf = async (path: string) => (await readSafetensors(path)).tensors.get("dtoken")!.data;
  const expected = async (t: Parameters<typeof decodeTransformed>[1]) =>
    (await encodeWith(weights, config, [(await decodeTransformed(photo, t)).data], [16, 16])).get("dtoken")!
      .data;

  // No flags: the shorter side to 20, then the centre 16×16, as in training.
  r = await run(["encode", photo, "--model", runDir, "--out", join(dir, "a.safetensors")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /images: shorter side to 20, centre 16×16; .*\(as the model was trained\)/);
  const trained = await expected({ mode: "resize-crop", size: 16, resize: 20 });
  assert.deepEqual(await tokensOf(join(dir, "a.safetensors")), trained);
  // Told otherwise: the centre square resized, or another resize.
  r = await run([
    "encode",
    photo,
    "--model",
    runDir,
    "--out",
    join(dir, "b.safetensors"),
    "--preprocess",
    "crop-resize",
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /centre square, resized to 16×16; .*overridden by --preprocess crop-resize/);
  assert.deepEqual(
    await tokensOf(join(dir, "b.safetensors")),
    await expected({ mode: "crop-resize", size: 16 }),
  );
  r = await run(["encode", photo, "--model", runDir, "--out", join(dir, "c.safetensors"), "--resize", "16"]);
  assert.equal(r.code, 0, r.err);
  const cover = await expected({ mode: "resize-crop", size: 16 });
  assert.deepEqual(await tokensOf(join(dir, "c.safetensors")), cover);
  assert.notDeepEqual(cover, trained, "the two crops differ, so the test can tell them apart");

  // eval --images prepares a folder of files the same way: its PSNRs are those of the images
  // cropped as recorded (shorter side 20, centre 16), and --resize 16 changes the crop.
  const folder = join(dir, "new");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(folder);
  await writePhoto(join(folder, "a.png"), 40, 24, 5);
  await writePhoto(join(folder, "b.png"), 21, 33, 6);
  const psnrs = async (t: Parameters<typeof decodeTransformed>[1]) => {
    const files = ["a.png", "b.png"];
    const P = toDevice(weights);
    const r = await evaluateImageSplit(
      P,
      config,
      {
        name: "x",
        length: files.length,
        size: [16, 16],
        get: (i) => decodeTransformed(join(folder, files[i]!), t),
        id: (i) => files[i]!,
        skipped: 0,
        skippedIds: [],
      },
      { batchSize: 16, clamp: true, grid: false },
    ).finally(() => disposeParams(P));
    return (r.report.perImage as { psnr: number }[]).map((x) => x.psnr);
  };
  const reported = async (out: string) =>
    (
      JSON.parse(await readFile(join(out, "eval-new-online.json"), "utf8")) as {
        perImage: { psnr: number }[];
      }
    ).perImage.map((x) => x.psnr);
  r = await run(["eval", runDir, "--images", folder, "--out", join(dir, "ev1")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /images: shorter side to 20, centre 16×16; .*\(as the model was trained\)/);
  const asTrained = await psnrs({ mode: "resize-crop", size: 16, resize: 20 });
  const asCover = await psnrs({ mode: "resize-crop", size: 16 });
  assert.notDeepEqual(asTrained, asCover, "the two crops give other PSNRs, so the test can tell them apart");
  assert.deepEqual(await reported(join(dir, "ev1")), asTrained);
  r = await run(["eval", runDir, "--images", folder, "--out", join(dir, "ev2"), "--resize", "16"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /images: shorter side to 16, centre 16×16; .*overridden by --resize 16/);
  assert.deepEqual(await reported(join(dir, "ev2")), asCover);

  // eval RUN prints the preparation it used, though it is the run config's; the preparation flags
  // are refused for an image run's dataset, pointing at --images.
  r = await run(["eval", runDir, "--out", join(dir, "ev3")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^data: shorter side to 20, centre 16×16 \(as .*model\.safetensors was trained\)$/m);
  r = await run(["eval", runDir, "--out", join(dir, "ev3"), "--resize", "16"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--resize 16: eval of an image run .* anr eval MODEL --images DIR --resize 16/);
});

test("SVG models render new drawings on their background; checkpoints tell their preparation; bad records are named", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "prep-svg");
  const init = join(dir, "init.safetensors");
  await writeFile(join(dir, "model.json"), JSON.stringify(tinyConfig("ANR")));
  let r = await run(["init", join(dir, "model.json"), "--out", init]);
  assert.equal(r.code, 0, r.err);
  const { config, weights } = await loadModel(init);
  const svgModel = join(dir, "svg.safetensors");
  const record = { task: "image", data: { kind: "svg", size: 16, background: "#ff0000" } };
  await saveModel(svgModel, config, weights, { [PREPARATION_METADATA_KEY]: JSON.stringify(record) });
  const drawing = join(dir, "d.svg");
  await writeFile(
    drawing,
    '<svg xmlns="http://www.w3.org/2000/svg" width="36" height="24"><circle cx="12" cy="12" r="9" fill="#0000ff"/></svg>',
  );
  r = await run(["encode", drawing, "--model", svgModel, "--out", join(dir, "t.safetensors")]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /SVG files rendered on #ff0000 \(as the model was trained\)/);
  const pixels = fromInterleaved(await renderSvg(drawing, 16, "#ff0000"), 16, 16, 3).data;
  const want = (await encodeWith(weights, config, [pixels], [16, 16])).get("dtoken")!.data;
  assert.deepEqual((await readSafetensors(join(dir, "t.safetensors"))).tensors.get("dtoken")!.data, want);

  // A checkpoint records no anr.data, but its run config tells the preparation.
  const data = { kind: "npy", root: "/data", preprocess: { mode: "resize", size: 8 }, fill_missing: 0 };
  const fromCheckpoint = readPreparation(
    { "anr.checkpoint": JSON.stringify({ step: 3, run: { task: "field", data } }) },
    "ck.safetensors",
  );
  assert.deepEqual(fromCheckpoint, {
    task: "field",
    data: { kind: "npy", preprocess: { mode: "resize", size: 8 }, fill_missing: 0 },
  });
  // A damaged record is an input error naming the file and the key.
  assert.throws(
    () => readPreparation({ [PREPARATION_METADATA_KEY]: "{" }, "m.safetensors"),
    /^InputError: m\.safetensors: metadata "anr\.data" is not valid JSON/,
  );
  // The portable facade reads the same records (one reader of the raw JSON, util/prepare.ts).
  const checkpointRun = { "anr.checkpoint": JSON.stringify({ step: 3, run: { task: "field", data } }) };
  assert.deepEqual(recordedPreparation(checkpointRun, "ck.safetensors"), { task: "field", data });
  assert.equal(recordedPreparation({}, "m.safetensors"), null);
  const views = { "anr.checkpoint": JSON.stringify({ run: { task: "nerf", data: { kind: "learnit" } } }) };
  assert.equal(recordedPreparation(views, "ck.safetensors"), null, "view synthesis records no preparation");
  assert.equal(readPreparation(views, "ck.safetensors"), null);
  assert.throws(
    () => recordedPreparation({ [PREPARATION_METADATA_KEY]: "{" }, "m.safetensors"),
    /^InputError: m\.safetensors: metadata "anr\.data" is not valid JSON/,
  );
  assert.throws(
    () => recordedPreparation({ "anr.checkpoint": "[" }, "ck.safetensors"),
    /^InputError: ck\.safetensors: metadata "anr\.checkpoint" is not valid JSON/,
  );
  assert.throws(
    () =>
      readPreparation(
        {
          [PREPARATION_METADATA_KEY]: JSON.stringify({
            task: "field",
            data: { kind: "npy", fill_missing: "x" },
          }),
        },
        "m.safetensors",
      ),
    /m\.safetensors: metadata "anr\.data" is not a valid field preparation: fill_missing/,
  );
});
