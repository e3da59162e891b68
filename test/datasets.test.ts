import { after, test } from "node:test";
import assert from "node:assert/strict";
import { skipWithoutData } from "./fixtures.js";
import { access, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { openImageDataset, parseDatasetSpec, type ImageDataset } from "../src/data/datasets.js";
import { parseIdx, type IdxFile } from "../src/io/idx.js";
import { readIdx, readNpy, writeIdx } from "../src/io/array-files.js";
import { BatchLoader, type Batch } from "../src/data/loader.js";
import type { HostImage } from "../src/data/image.js";
import { Rng } from "../src/util/rng.js";
import { InputError } from "../src/util/errors.js";

type Pixel = (x: number, y: number) => [number, number, number];

/** Write a w×h RGB image (PNG unless the name ends in .jpg/.jpeg and `jpeg` is set), creating folders. */
async function writeImage(path: string, w: number, h: number, px: Pixel, jpeg = false): Promise<void> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(px(x, y), (y * w + x) * 3);
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await (jpeg ? img.jpeg({ quality: 95 }) : img.png()).toBuffer());
}

/** Temporary folders, all removed once this file's tests are done. */
const made: string[] = [];
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const tmp = async (tag: string) => {
  const dir = await mkdtemp(join(tmpdir(), `anr-ds-${tag}-`));
  made.push(dir);
  return dir;
};
const at = (img: HostImage, c: number, y: number, x: number) => img.data[c * img.h * img.w + y * img.w + x]!;
const ids = (ds: ImageDataset) => Array.from({ length: ds.length }, (_, i) => ds.id(i));
const solid =
  (v: number): Pixel =>
  () => [v, v, v];

// ---------------------------------------------------------------- folder

async function makeFolder(root: string, names: string[]): Promise<void> {
  for (const n of names) await writeImage(join(root, n), 8, 6, solid(10));
}

const FOLDER_NAMES = [
  ...Array.from({ length: 16 }, (_, i) => `a/img${String(i).padStart(2, "0")}.png`),
  "b/deep/x.JPG",
  "b/y.Jpeg",
  "c.WEBP",
  "z.png",
];

test("folder: sorted, seeded split is stable, complete, disjoint and independent of creation order", async () => {
  const r1 = await tmp("f1");
  const r2 = await tmp("f2");
  await makeFolder(r1, FOLDER_NAMES);
  await makeFolder(r2, [...FOLDER_NAMES].reverse());
  // Not images, or metadata: never listed.
  await writeFile(join(r1, "notes.txt"), "x");
  await writeFile(join(r1, "a", "._img00.png"), "resource fork");
  const spec = (root: string) => ({
    kind: "folder" as const,
    root,
    split: { train: 0.6, val: 0.2, test: 0.2 },
  });
  const splits = async (root: string) => {
    const out: string[][] = [];
    for (const s of ["train", "val", "test"] as const) out.push(ids(await openImageDataset(spec(root), s)));
    return out;
  };
  const a = await splits(r1);
  const b = await splits(r2);
  assert.deepEqual(a, b);
  assert.deepEqual(
    a.map((s) => s.length),
    [12, 4, 4],
  );
  assert.deepEqual([...a.flat()].sort(), [...FOLDER_NAMES].sort());
  // Pinned: the split may never change silently (sorted by UTF-16 code units, Rng(0) permutation).
  assert.deepEqual(a[1], ["a/img04.png", "a/img15.png", "a/img07.png", "z.png"]);
  const other = ids(await openImageDataset({ ...spec(r1), seed: 1 }, "val"));
  assert.notDeepEqual(other, a[1]);
});

test("folder: preprocess modes give the requested size; random-crop and flip only with an rng", async () => {
  const root = await tmp("pp");
  // 40×20: red channel is a horizontal ramp, so crops and flips are visible in it.
  await writeImage(join(root, "ramp.png"), 40, 20, (x) => [x * 6, 0, 0]);
  const open = (preprocess: object) =>
    openImageDataset({ kind: "lsun", root, split: { train: 1, val: 0, test: 0 }, preprocess }, "train");
  const rc = await open({ mode: "resize-crop", size: 20 });
  const cr = await open({ mode: "crop-resize", size: 10 });
  const rnd = await open({ mode: "random-crop", size: 16, resize: 20, flip: true });
  assert.deepEqual(rc.size, [20, 20]);
  const a = await rc.get(0);
  assert.deepEqual([a.c, a.h, a.w], [3, 20, 20]);
  // Centre crop of the 40-wide ramp: columns 10..29.
  assert.ok(Math.abs(at(a, 0, 5, 0) - 60 / 255) < 1e-6, "Math.abs(at(a, 0, 5, 0) - 60 / 255) < 1e-6");
  assert.ok(Math.abs(at(a, 0, 5, 19) - 174 / 255) < 1e-6, "Math.abs(at(a, 0, 5, 19) - 174 / 255) < 1e-6");
  const b = await cr.get(0);
  assert.deepEqual([b.h, b.w], [10, 10]);
  // Eval transform is deterministic and centred even in random-crop mode.
  assert.deepEqual((await rnd.get(0)).data, (await rnd.get(0)).data);
  const seen = new Set<string>();
  let flipped = 0;
  for (let s = 0; s < 40; s++) {
    const img = await rnd.get(0, new Rng(s));
    assert.deepEqual([img.h, img.w], [16, 16]);
    seen.add(Array.from(img.data.subarray(0, 16)).join());
    if (at(img, 0, 0, 0) > at(img, 0, 0, 15)) flipped++;
    assert.deepEqual(img.data, (await rnd.get(0, new Rng(s))).data, "same rng, same item");
  }
  assert.ok(seen.size > 10, `random crops vary (${seen.size} distinct)`);
  assert.ok(flipped > 5 && flipped < 35, `about half flipped (${flipped}/40)`);
});

test('folder: split "folders" takes root/train, root/val, root/test as they are', async () => {
  const root = await tmp("folders");
  await makeFolder(root, ["train/b.png", "train/a/c.png", "test/d.png"]);
  const spec = { kind: "folder" as const, root, split: "folders" as const };
  assert.deepEqual(ids(await openImageDataset(spec, "train")), ["train/a/c.png", "train/b.png"]);
  assert.deepEqual(ids(await openImageDataset(spec, "test")), ["test/d.png"]);
  await assert.rejects(openImageDataset(spec, "val"), (e: Error) =>
    e.message.startsWith(`${join(root, "val")}: no such directory`),
  );
});

// ---------------------------------------------------------------- CelebA

/** CelebA-like 178×218: red left half, blue right half, green = vertical ramp row/217. */
const celebaPixel: Pixel = (x, y) =>
  x < 89 ? [255, Math.round((255 * y) / 217), 0] : [0, Math.round((255 * y) / 217), 255];

async function makeCeleba(root: string, partition: [string, number][], withList = true): Promise<void> {
  for (const [name] of partition)
    await writeImage(join(root, "img_align_celeba", name), 178, 218, celebaPixel);
  if (withList)
    await writeFile(
      join(root, "list_eval_partition.txt"),
      partition.map(([n, p]) => `${n} ${p}`).join("\n") + "\n",
    );
}

const PARTITION: [string, number][] = [
  ["000001.jpg", 0],
  ["000002.jpg", 0],
  ["000003.jpg", 1],
  ["000004.jpg", 0],
  ["000005.jpg", 2],
  ["000006.jpg", 1],
];

test("celeba: official partitions are respected", async () => {
  const root = await tmp("celeba");
  await makeCeleba(root, PARTITION);
  const spec = { kind: "celeba" as const, root, protocol: "crop178" as const };
  const got = async (s: "train" | "val" | "test") => ids(await openImageDataset(spec, s));
  assert.deepEqual(await got("train"), [
    "img_align_celeba/000001.jpg",
    "img_align_celeba/000002.jpg",
    "img_align_celeba/000004.jpg",
  ]);
  assert.deepEqual(await got("val"), ["img_align_celeba/000003.jpg", "img_align_celeba/000006.jpg"]);
  assert.deepEqual(await got("test"), ["img_align_celeba/000005.jpg"]);
  // A parsed spec (defaults filled) is accepted as well as a user-written one.
  const ds = await openImageDataset(parseDatasetSpec(spec), "train");
  assert.equal(ds.name, "celeba:train");
  assert.deepEqual(ds.size, [128, 128]);
});

test("celeba: crop178 and resize-crop geometry", async () => {
  const root = await tmp("celeba-geo");
  await makeCeleba(root, PARTITION);
  const open = async (protocol: "crop178" | "resize-crop", size: number) =>
    (await openImageDataset({ kind: "celeba", root, protocol, size }, "test")).get(0);
  const tol = 2 / 255;
  // crop178 at 178: no resampling, the crop is rows 20..197 exactly.
  const exact = await open("crop178", 178);
  assert.deepEqual([exact.h, exact.w], [178, 178]);
  for (const y of [0, 88, 177]) {
    assert.equal(at(exact, 1, y, 0), Math.fround(Math.round((255 * (y + 20)) / 217) / 255));
    assert.deepEqual([at(exact, 0, y, 88), at(exact, 2, y, 88)], [1, 0]);
    assert.deepEqual([at(exact, 0, y, 89), at(exact, 2, y, 89)], [0, 1]);
  }
  // crop178 at 64: output row y samples crop row (y + 0.5)·178/64 − 0.5, i.e. source row + 20.
  const small = await open("crop178", 64);
  assert.deepEqual([small.h, small.w], [64, 64]);
  for (const y of [5, 32, 58]) {
    const src = 20 + (y + 0.5) * (178 / 64) - 0.5;
    assert.ok(Math.abs(at(small, 1, y, 10) - src / 217) < tol, `crop178 row ${y}`);
  }
  assert.ok(at(small, 0, 32, 3) > 0.99 && at(small, 2, 32, 3) < 0.01, "left half red");
  assert.ok(at(small, 2, 32, 60) > 0.99 && at(small, 0, 32, 60) < 0.01, "right half blue");
  // resize-crop at 128: 178×218 → 128×156 (long side truncated), centre crop from row round(28/2) = 14.
  const rc = await open("resize-crop", 128);
  assert.deepEqual([rc.h, rc.w], [128, 128]);
  for (const y of [4, 64, 120]) {
    const src = (y + 14 + 0.5) * (218 / 156) - 0.5;
    assert.ok(
      Math.abs(at(rc, 1, y, 10) - src / 217) < tol,
      `resize-crop row ${y}: ${at(rc, 1, y, 10) * 217} vs ${src}`,
    );
  }
  assert.ok(
    at(rc, 0, 64, 5) > 0.99 && at(rc, 2, 64, 122) > 0.99,
    "at(rc, 0, 64, 5) > 0.99 && at(rc, 2, 64, 122) > 0.99",
  );
});

test("celeba: missing partition file, missing images and wrong root fail on open, naming the path", async () => {
  const root = await tmp("celeba-bad");
  await makeCeleba(root, PARTITION, false);
  const spec = { kind: "celeba" as const, root, protocol: "resize-crop" as const };
  await assert.rejects(openImageDataset(spec, "train"), (e: Error) =>
    e.message.includes(join(root, "list_eval_partition.txt")),
  );
  await writeFile(join(root, "list_eval_partition.txt"), "000001.jpg 0\n999999.jpg 0\n");
  await assert.rejects(
    openImageDataset(spec, "train"),
    /img_align_celeba: 1 of the 2 train images .* missing \(first: 999999\.jpg\)/,
  );
  await assert.rejects(openImageDataset(spec, "val"), /no image is in the val partition/);
  const nowhere = join(root, "nope");
  await assert.rejects(openImageDataset({ ...spec, root: nowhere }, "train"), (e: Error) =>
    e.message.startsWith(`${nowhere}: no such directory`),
  );
});

// ---------------------------------------------------------------- Imagenette

test("imagenette: train/ for train, val/ for val and test; random crop + flip only for training", async () => {
  const root = await tmp("inette");
  const ramp: Pixel = (x, y) => [x * 8, y * 8, 100];
  await writeImage(join(root, "train", "n01", "a.JPEG"), 30, 24, ramp, true);
  await writeImage(join(root, "train", "n02", "b.JPEG"), 24, 30, ramp, true);
  await writeImage(join(root, "val", "n01", "c.JPEG"), 30, 24, ramp, true);
  const spec = { kind: "imagenette" as const, root, size: 16, resize: 20 };
  const train = await openImageDataset(spec, "train");
  assert.deepEqual(ids(train), ["train/n01/a.JPEG", "train/n02/b.JPEG"]);
  assert.deepEqual(ids(await openImageDataset(spec, "val")), ["val/n01/c.JPEG"]);
  assert.deepEqual(ids(await openImageDataset(spec, "test")), ["val/n01/c.JPEG"]);
  const evalA = await train.get(0);
  assert.deepEqual(evalA.data, (await train.get(0)).data);
  assert.deepEqual([evalA.h, evalA.w], [16, 16]);
  const crops = new Set<string>();
  for (let s = 0; s < 20; s++)
    crops.add(Array.from((await train.get(0, new Rng(s))).data.subarray(0, 16)).join());
  assert.ok(crops.size > 4, `random training crops (${crops.size} distinct)`);
  await assert.rejects(
    openImageDataset({ ...spec, root: join(root, "train") }, "train"),
    /train[/\\]train: no such directory/,
  );
});

// ---------------------------------------------------------------- IDX

/** 10 images, 28×28: image k is the horizontal ramp 9·x, plus k in row 0 (so items differ). */
function idxImages(n = 10): Uint8Array {
  const d = new Uint8Array(n * 28 * 28);
  for (let k = 0; k < n; k++)
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) d[k * 784 + y * 28 + x] = 9 * x + (y === 0 ? k : 0);
  return d;
}

test("idx: bilinear 28→32 matches PyTorch's align_corners=False on a ramp; gz and raw agree", async () => {
  const gz = await tmp("idx-gz");
  const raw = await tmp("idx-raw");
  const data = idxImages();
  await writeIdx(join(gz, "train-images-idx3-ubyte.gz"), [10, 28, 28], data, { gzip: true });
  await writeIdx(join(gz, "t10k-images-idx3-ubyte.gz"), [4, 28, 28], data.subarray(0, 4 * 784), {
    gzip: true,
  });
  await writeIdx(join(raw, "train-images-idx3-ubyte"), [10, 28, 28], data);
  assert.deepEqual(
    (await readFile(join(gz, "train-images-idx3-ubyte.gz"))).subarray(0, 2),
    Buffer.from([0x1f, 0x8b]),
  );
  assert.deepEqual(
    await readIdx(join(gz, "train-images-idx3-ubyte.gz")),
    await readIdx(join(raw, "train-images-idx3-ubyte")),
  );
  const a = await openImageDataset({ kind: "idx", root: gz }, "train");
  const b = await openImageDataset({ kind: "idx", root: raw }, "train");
  assert.equal(a.length, 10);
  assert.deepEqual(a.size, [32, 32]);
  for (let i = 0; i < 10; i++) assert.deepEqual((await a.get(i)).data, (await b.get(i)).data);
  const img = await a.get(3);
  assert.deepEqual([img.c, img.h, img.w], [3, 32, 32]);
  // Source x = (x + 0.5)·28/32 − 0.5, clamped at 0; value 9·x_src on the ramp (rows ≥ 2 are pure ramp).
  const expect: [number, number][] = [
    [0, 0],
    [1, 9 * 0.8125],
    [10, 9 * 8.6875],
    [30, 9 * 26.1875],
    // 27.0625: past the last pixel, both neighbours clamp to column 27.
    [31, 9 * 27],
  ];
  for (const [x, v] of expect)
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(at(img, c, 16, x) - v / 255) < 1e-6, `x=${x}`);
  // Row 0 of item 3 carries +3; output row 0 samples source row 0 only (clamped), row 1 mixes rows 0 and 1.
  assert.ok(Math.abs(at(img, 0, 0, 0) - 3 / 255) < 1e-6, "Math.abs(at(img, 0, 0, 0) - 3 / 255) < 1e-6");
  assert.ok(
    Math.abs(at(img, 0, 1, 0) - (3 * (1 - 0.8125)) / 255) < 1e-6,
    "Math.abs(at(img, 0, 1, 0) - (3 * (1 - 0.8125)) / 255) < 1e-6",
  );
  assert.equal(a.id(3), "train-images-idx3-ubyte.gz#3");
});

test("idx: train_count / val_count / test_count", async () => {
  const root = await tmp("idx-split");
  await writeIdx(join(root, "train-images-idx3-ubyte"), [10, 28, 28], idxImages());
  await writeIdx(join(root, "t10k-images-idx3-ubyte"), [10, 28, 28], idxImages(), { gzip: true });
  const spec = { kind: "idx" as const, root, train_count: 5, val_count: 3, test_count: 2 };
  assert.deepEqual(
    ids(await openImageDataset(spec, "train")),
    [0, 1, 2, 3, 4].map((i) => `train-images-idx3-ubyte#${i}`),
  );
  assert.deepEqual(
    ids(await openImageDataset(spec, "val")),
    [7, 8, 9].map((i) => `train-images-idx3-ubyte#${i}`),
  );
  assert.deepEqual(ids(await openImageDataset(spec, "test")), [
    "t10k-images-idx3-ubyte#0",
    "t10k-images-idx3-ubyte#1",
  ]);
  assert.equal(ids(await openImageDataset({ kind: "idx", root }, "train")).length, 10);
  await assert.rejects(openImageDataset({ kind: "idx", root }, "val"), /the val split is empty/);
  await assert.rejects(
    openImageDataset({ ...spec, train_count: 8 }, "train"),
    /train_count 8 \+ val_count 3 exceed the 10 images/,
  );
});

test("idx: wrong magic and truncated body fail naming the file and the field", async () => {
  const root = await tmp("idx-bad");
  const labels = join(root, "train-images-idx3-ubyte");
  await writeIdx(labels, [10], new Uint8Array(10));
  await assert.rejects(
    openImageDataset({ kind: "idx", root }, "train"),
    (e: Error) =>
      e instanceof InputError &&
      e.message === `${labels}: magic 0x00000803 expected for images, found 0x00000801`,
  );
  const t10k = join(root, "t10k-images-idx3-ubyte.gz");
  await writeIdx(t10k, [10, 28, 28], idxImages());
  await truncate(t10k, 16 + 5000);
  await assert.rejects(
    openImageDataset({ kind: "idx", root }, "test"),
    (e: Error) =>
      e instanceof InputError &&
      e.message === `${t10k}: header says 10 images of 28×28 (7840 bytes) but the file has only 5000 bytes`,
  );
  const empty = await tmp("idx-none");
  await assert.rejects(
    openImageDataset({ kind: "idx", root: empty }, "train"),
    (e: Error) =>
      e instanceof InputError &&
      e.message.startsWith(`${empty}: neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz found`),
  );
});

test("idx: the installed Fashion-MNIST, if present: counts, stored pixels and the 32×32 resize match torch", async (t) => {
  const root = "/usr/share/datasets/fashion-mnist";
  const present = await access(join(root, "t10k-images-idx3-ubyte.gz")).then(
    () => true,
    () => false,
  );
  if (skipWithoutData(t, present, `${root} (apt install dataset-fashion-mnist)`)) return;
  // References read from the same files with gzip + NumPy and resized by torch
  // (scripts/make_fmnist_fixtures.py); the file hashes say they come from these very files.
  const fx = join(import.meta.dirname, "fixtures", "fmnist");
  const meta = JSON.parse(await readFile(join(fx, "fmnist.json"), "utf8")) as {
    files: Record<string, { sha256: string; count: number }>;
    images: { file: string; index: number; label: number; sum: number }[];
  };
  // The stored bytes as our IDX reader parses them (from the hashed bytes, not a second read).
  const rawFiles: Record<string, IdxFile> = {};
  for (const [base, f] of Object.entries(meta.files)) {
    const bytes = gunzipSync(await readFile(join(root, `${base}.gz`)));
    assert.equal(
      createHash("sha256").update(bytes).digest("hex"),
      f.sha256,
      `${base}: not the file the references were made from`,
    );
    rawFiles[base] = parseIdx(bytes, base, { ndim: 3, what: "images" });
  }
  // Fashion-MNIST: 60,000 training and 10,000 test images of 28×28.
  assert.deepEqual(rawFiles["train-images-idx3-ubyte"]!.dims, [60000, 28, 28]);
  assert.deepEqual(rawFiles["t10k-images-idx3-ubyte"]!.dims, [10000, 28, 28]);
  const test = await openImageDataset({ kind: "idx", root }, "test");
  const train = await openImageDataset({ kind: "idx", root }, "train");
  assert.deepEqual([test.length, train.length], [10000, 60000]);
  const raw = await readNpy(join(fx, "raw.npy"));
  const resized = await readNpy(join(fx, "resized32.npy"));
  assert.deepEqual(resized.shape, [meta.images.length, 32, 32]);
  let worst = 0;
  for (const [n, im] of meta.images.entries()) {
    const what = `${im.file}#${im.index}`;
    // The stored bytes, against NumPy's, and their sum, as NumPy took it.
    const px = rawFiles[im.file]!.data.subarray(784 * im.index, 784 * (im.index + 1));
    assert.deepEqual([...px], [...raw.data.subarray(784 * n, 784 * (n + 1))], what);
    assert.equal(
      px.reduce((a, b) => a + b, 0),
      im.sum,
      what,
    );
    // The dataset item: the three channels are the torch resize of pixels / 255.
    const ds = im.file.startsWith("t10k") ? test : train;
    const item = await ds.get(im.index);
    assert.equal(ds.id(im.index), `${im.file}.gz#${im.index}`);
    assert.deepEqual([item.c, item.h, item.w], [3, 32, 32]);
    for (let c = 0; c < 3; c++)
      for (let k = 0; k < 1024; k++)
        worst = Math.max(worst, Math.abs(item.data[c * 1024 + k]! - resized.data[n * 1024 + k]!));
  }
  // float32 against float64: we measure 6.0e-8, one float32 step just below 1.
  assert.ok(worst < 1.2e-7, `largest difference from torch ${worst}`);
});

// ---------------------------------------------------------------- errors

test("corrupt files: every unreadable header is listed on open; a body that does not decode fails on get, naming the file; skipCorrupt passes over and records both", async () => {
  const root = await tmp("corrupt");
  await writeImage(join(root, "a.png"), 8, 8, solid(50));
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#808080" } })
    .png()
    .toBuffer();
  await writeFile(join(root, "c.png"), png.subarray(0, png.length >> 1));
  await writeImage(join(root, "d.png"), 8, 8, solid(200));
  const spec = {
    kind: "folder" as const,
    root,
    split: { train: 1, val: 0, test: 0 },
    seed: 0,
    preprocess: { size: 8 },
  };
  // c.png's header is whole: only decoding its pixels finds it.
  const ds = await openImageDataset(spec, "train");
  await assert.rejects(ds.get(ids(ds).indexOf("c.png")), (e: Error) =>
    e.message.startsWith(`${join(root, "c.png")}: `),
  );
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#808080" } })
    .jpeg()
    .toBuffer();
  await writeFile(join(root, "b.jpg"), jpeg.subarray(0, jpeg.length >> 1));
  await writeFile(join(root, "e.webp"), "this is not a webp");
  await assert.rejects(openImageDataset(spec, "train"), (e: Error) => {
    assert.ok(
      e.message.startsWith(`${root}: 2 of the 5 image files of folder:train cannot be read`),
      e.message,
    );
    assert.match(e.message, /skip_corrupt/);
    assert.match(e.message, /\n {2}b\.jpg: .+\n {2}e\.webp: /);
    return true;
  });
  const tolerant = await openImageDataset(spec, "train", { skipCorrupt: true });
  assert.equal(tolerant.length, 3, "the unreadable headers are left out");
  assert.deepEqual([...tolerant.skippedIds], ["b.jpg", "e.webp"]);
  for (let i = 0; i < tolerant.length; i++) {
    const img = await tolerant.get(i, new Rng(i));
    assert.deepEqual([img.h, img.w], [8, 8]);
  }
  assert.equal(tolerant.skipped, 3);
  assert.deepEqual([...tolerant.skippedIds].sort(), ["b.jpg", "c.png", "e.webp"]);
});

test("wrong root, empty folder and empty split fail on open, naming the path", async () => {
  const root = await tmp("empty");
  const nowhere = join(root, "missing");
  await assert.rejects(openImageDataset({ kind: "folder", root: nowhere }, "train"), (e: Error) =>
    e.message.startsWith(`${nowhere}: no such directory`),
  );
  await assert.rejects(openImageDataset({ kind: "folder", root }, "train"), (e: Error) =>
    e.message.startsWith(`${root}: no .jpg/.jpeg/.png/.webp images found`),
  );
  await makeFolder(root, ["a.png", "b.png", "c.png"]);
  await assert.rejects(openImageDataset({ kind: "folder", root }, "val"), (e: Error) =>
    e.message.startsWith(`${root}: the val split is empty (3 images`),
  );
  assert.throws(
    () => parseDatasetSpec({ kind: "folder", root, split: { train: 0.5, val: 0.1, test: 0.1 } }),
    /split: fractions must sum to 1/,
  );
  assert.throws(() => parseDatasetSpec({ kind: "celeba", root }), /protocol/);
  assert.throws(() => parseDatasetSpec({ kind: "folder", root, extra: 1 }), /extra/);
});

// ---------------------------------------------------------------- loader

/** In-memory dataset: item i is constant i (+ an rng draw when augmented), decoded after a random delay. */
function fakeDataset(n: number, delay = true): ImageDataset & { calls: { i: number; rng: boolean }[] } {
  const calls: { i: number; rng: boolean }[] = [];
  return {
    name: "fake:train",
    length: n,
    size: [2, 2],
    skipped: 0,
    skippedIds: [],
    calls,
    id: (i) => `item${i}`,
    async get(i, rng) {
      calls.push({ i, rng: rng !== undefined });
      if (delay) await new Promise((r) => setTimeout(r, Math.random() * 3));
      return { c: 3, h: 2, w: 2, data: new Float32Array(12).fill(i + (rng ? rng.uniform() : 0)) };
    },
  };
}

async function take(loader: BatchLoader, k: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < k; i++) out.push(await loader.next());
  return out;
}

test("loader: drop_last, epochs roll over with fresh permutations, batches are (B, C, H, W)", async () => {
  const loader = new BatchLoader(fakeDataset(10), { batchSize: 3, seed: 7 });
  assert.equal(loader.batchesPerEpoch, 3);
  const bs = await take(loader, 6);
  assert.deepEqual(bs[0]!.shape, [3, 3, 2, 2]);
  assert.equal(bs[0]!.data.length, 36);
  assert.deepEqual(loader.state, { epoch: 2, index: 0, rng: [] });
  const epoch0 = bs.slice(0, 3).flatMap((b) => b.ids);
  const epoch1 = bs.slice(3).flatMap((b) => b.ids);
  assert.equal(new Set(epoch0).size, 9, "no repeats within an epoch; one item dropped");
  assert.deepEqual(
    epoch0,
    new Rng(7)
      .permutation(10)
      .slice(0, 9)
      .map((i) => `item${i}`),
  );
  assert.deepEqual(
    epoch1,
    new Rng(8)
      .permutation(10)
      .slice(0, 9)
      .map((i) => `item${i}`),
  );
  // Each image in the batch is its item: value i + u with u ∈ [0, 1).
  bs[0]!.ids.forEach((id, k) => assert.equal(Math.floor(bs[0]!.data[k * 12]!), Number(id.slice(4))));
  assert.throws(() => new BatchLoader(fakeDataset(2), { batchSize: 3, seed: 0 }), /fewer than one batch/);
});

test("loader: deterministic given the seed; shuffle and augment off", async () => {
  const a = await take(new BatchLoader(fakeDataset(10), { batchSize: 4, seed: 3 }), 5);
  const b = await take(new BatchLoader(fakeDataset(10), { batchSize: 4, seed: 3 }), 5);
  const c = await take(new BatchLoader(fakeDataset(10), { batchSize: 4, seed: 4 }), 5);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const plainDs = fakeDataset(5);
  const plain = await take(
    new BatchLoader(plainDs, { batchSize: 2, seed: 3, shuffle: false, augment: false }),
    3,
  );
  assert.deepEqual(
    plain.map((x) => x.ids),
    [
      ["item0", "item1"],
      ["item2", "item3"],
      ["item0", "item1"],
    ],
  );
  assert.deepEqual(Array.from(plain[1]!.data), [...Array(12).fill(2), ...Array(12).fill(3)]);
  assert.ok(
    plainDs.calls.every((x) => !x.rng),
    "plainDs.calls.every((x) => !x.rng)",
  );
});

test("loader: prefetch depth does not change the sequence", async () => {
  const one = await take(new BatchLoader(fakeDataset(11), { batchSize: 3, seed: 5, prefetch: 1 }), 8);
  const four = await take(new BatchLoader(fakeDataset(11), { batchSize: 3, seed: 5, prefetch: 4 }), 8);
  const many = await take(new BatchLoader(fakeDataset(11), { batchSize: 3, seed: 5, prefetch: 9 }), 8);
  assert.deepEqual(one, four);
  assert.deepEqual(one, many);
});

test("loader: resume from state reproduces the following batches exactly", async () => {
  const opts = { batchSize: 3, seed: 11, prefetch: 3 };
  const full = await take(new BatchLoader(fakeDataset(10), opts), 8);
  const first = new BatchLoader(fakeDataset(10), opts);
  await take(first, 4);
  const saved = JSON.parse(JSON.stringify(first.state));
  assert.deepEqual(saved, { epoch: 1, index: 1, rng: [] });
  const resumed = new BatchLoader(fakeDataset(10), opts);
  resumed.restore(saved);
  assert.deepEqual(await take(resumed, 4), full.slice(4));
  // Restoring an already running loader discards its prefetched batches.
  first.restore({ epoch: 0, index: 2, rng: [] });
  assert.deepEqual(await take(first, 2), full.slice(2, 4));
  assert.throws(() => first.restore({ epoch: 0, index: 3, rng: [] }), /invalid for 3 batches per epoch/);
});

test("loader over real files: random crops are reproducible across prefetch depths and resume", async () => {
  const root = await tmp("loader");
  for (let k = 0; k < 7; k++)
    await writeImage(join(root, `${k}.png`), 24, 20, (x, y) => [x * 10, y * 10, k * 30]);
  const ds = await openImageDataset(
    {
      kind: "folder",
      root,
      split: { train: 1, val: 0, test: 0 },
      preprocess: { mode: "random-crop", size: 12, resize: 16, flip: true },
    },
    "train",
  );
  const a = await take(new BatchLoader(ds, { batchSize: 2, seed: 1, prefetch: 1 }), 5);
  const b = await take(new BatchLoader(ds, { batchSize: 2, seed: 1, prefetch: 4 }), 5);
  assert.deepEqual(a, b);
  assert.deepEqual(a[0]!.shape, [2, 3, 12, 12]);
  const r = new BatchLoader(ds, { batchSize: 2, seed: 1 });
  r.restore({ epoch: 1, index: 0, rng: [] });
  assert.deepEqual(await take(r, 2), a.slice(3, 5));
});
