import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import {
  openImageDataset,
  parseDatasetSpec,
  type DatasetSpec,
  type ImageDataset,
} from "../src/data/datasets.js";
import {
  fnv1a32,
  hashSplit,
  LIBRSVG_VERSION,
  renderSvg,
  twemojiRoot,
  twemojiSplitKey,
} from "../src/data/svg.js";
import { InputError } from "../src/util/errors.js";
import { ConfigError } from "../src/model/config.js";
import { resolveRunConfig } from "../src/training/run-config.js";
import { runPreset } from "../src/training/run-presets.js";

/** Temporary folders, all removed once this file's tests are done. */
const made: string[] = [];
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const tmp = async (tag: string) => {
  const dir = await mkdtemp(join(tmpdir(), `anr-svg-${tag}-`));
  made.push(dir);
  return dir;
};

/** Write SVG files (name → body inside <svg viewBox>) into `dir`. */
async function writeSvgs(dir: string, files: Record<string, string>, viewBox = "0 0 8 8"): Promise<void> {
  for (const [name, body] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(
      join(dir, name),
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="${viewBox}">${body}</svg>`,
    );
  }
}

const ids = (ds: ImageDataset) => Array.from({ length: ds.length }, (_, i) => ds.id(i));
const ALL_TRAIN = { train: 1, val: 0, test: 0 };
const SQUARE = '<rect x="2" y="2" width="4" height="4" fill="#3366cc"/>';

test("an SVG renders to exact pixels: a square of its colour on the configured background", async () => {
  const dir = await tmp("square");
  await writeSvgs(dir, { "square.svg": SQUARE });
  // Scaled ×2 and ×8 the square covers whole pixels, so every pixel is exactly fill or background.
  for (const size of [16, 64]) {
    const px = await renderSvg(join(dir, "square.svg"), size, "#ff8000");
    assert.equal(px.length, size * size * 3);
    const [lo, hi] = [size / 4, (3 * size) / 4];
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const inside = x >= lo && x < hi && y >= lo && y < hi;
        const want = inside ? [0x33, 0x66, 0xcc] : [0xff, 0x80, 0x00];
        assert.deepEqual(
          [...px.subarray((y * size + x) * 3, (y * size + x) * 3 + 3)],
          want,
          `(${x}, ${y}) at ${size}`,
        );
      }
  }
  // The dataset item is the same pixels as floats in [0, 1], channel-major.
  const ds = await openImageDataset(
    { kind: "svg", root: dir, size: 16, background: "#ff8000", split: ALL_TRAIN },
    "train",
  );
  const img = await ds.get(0);
  assert.deepEqual([img.c, img.h, img.w], [3, 16, 16]);
  assert.equal(img.data[0 * 256 + 8 * 16 + 8], Math.fround(0x33 / 255));
  assert.equal(img.data[2 * 256 + 8 * 16 + 8], Math.fround(0xcc / 255));
  assert.equal(img.data[1 * 256 + 0], Math.fround(0x80 / 255));
});

test("the background defaults to white, edges are antialiased, and rendering twice gives the same bytes", async () => {
  const dir = await tmp("circle");
  await writeSvgs(dir, { "circle.svg": '<circle cx="4" cy="4" r="3" fill="#000000"/>' });
  const a = await renderSvg(join(dir, "circle.svg"), 32, "#ffffff");
  const b = await renderSvg(join(dir, "circle.svg"), 32, "#ffffff");
  assert.deepEqual(a, b);
  assert.deepEqual([...a.subarray(0, 3)], [255, 255, 255]);
  assert.deepEqual([...a.subarray((16 * 32 + 16) * 3, (16 * 32 + 16) * 3 + 3)], [0, 0, 0]);
  const grey = a.filter((v) => v > 0 && v < 255);
  assert.ok(grey.length > 0, "the circle's edge has intermediate (antialiased) values");
  const ds = await openImageDataset({ kind: "svg", root: dir, split: ALL_TRAIN }, "train");
  assert.equal(ds.size[0], 32);
  const item = await ds.get(0);
  assert.equal(item.data[0], 1);
  const again = await (await openImageDataset({ kind: "svg", root: dir, split: ALL_TRAIN }, "train")).get(0);
  assert.deepEqual(again.data, item.data);
});

test("a non-square drawing is rasterised at scale and centred on the background", async () => {
  const dir = await tmp("wide");
  await writeSvgs(dir, { "wide.svg": '<rect width="8" height="4" fill="#ff0000"/>' }, "0 0 8 4");
  const px = await renderSvg(join(dir, "wide.svg"), 8, "#0000ff");
  for (let y = 0; y < 8; y++) {
    const want = y >= 2 && y < 6 ? [255, 0, 0] : [0, 0, 255];
    for (let x = 0; x < 8; x++)
      assert.deepEqual([...px.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)], want, `(${x}, ${y})`);
  }
});

test("FNV-1a 32 matches the published test vectors", () => {
  assert.equal(fnv1a32(""), 0x811c9dc5);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
});

test("hashSplit cuts u = hash / 2^32 at the cumulative fractions", () => {
  const f = { train: 0.9, val: 0.05, test: 0.05 };
  const names = Array.from({ length: 2000 }, (_, i) => `item-${i}.svg`);
  for (const name of names) {
    const u = fnv1a32(name) / 2 ** 32;
    assert.equal(hashSplit(name, f), u < 0.9 ? "train" : u < 0.95 ? "val" : "test");
  }
  const count = (s: string) => names.filter((n) => hashSplit(n, f) === s).length;
  assert.ok(Math.abs(count("train") - 1800) < 60 && count("val") > 60 && count("test") > 60);
  assert.equal(hashSplit("anything", { train: 1, val: 0, test: 0 }), "train");
  assert.equal(hashSplit("anything", { train: 0, val: 0, test: 1 }), "test");
});

test("a file's split never depends on the other files: adding files moves none", async () => {
  const dir = await tmp("stable");
  const square = (i: number) =>
    `<rect width="${1 + (i % 7)}" height="8" fill="#00${(10 + i).toString(16)}00"/>`;
  const first = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`a${i}.svg`, square(i)]));
  await writeSvgs(dir, first);
  const split = { train: 0.6, val: 0.2, test: 0.2 };
  const before = new Map<string, string>();
  for (const s of ["train", "val", "test"] as const)
    for (const id of ids(await openImageDataset({ kind: "svg", root: dir, size: 8, split }, s)))
      before.set(id, s);
  assert.equal(before.size, 60);
  await writeSvgs(
    dir,
    Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`sub/b${i}.svg`, square(i)])),
  );
  const after = new Map<string, string>();
  for (const s of ["train", "val", "test"] as const)
    for (const id of ids(await openImageDataset({ kind: "svg", root: dir, size: 8, split }, s)))
      after.set(id, s);
  assert.equal(after.size, 100);
  for (const [id, s] of before) assert.equal(after.get(id), s, id);
  for (const [id, s] of after) assert.equal(s, hashSplit(id, split), id);
});

test("a corrupt SVG is named when the dataset opens; skip_corrupt leaves it out and lists it", async () => {
  const dir = await tmp("corrupt");
  await writeSvgs(dir, { "good.svg": SQUARE });
  await writeFile(join(dir, "broken.svg"), '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect');
  await writeFile(
    join(dir, "png-inside.svg"),
    await sharp({ create: { width: 4, height: 4, channels: 3, background: "#000" } })
      .png()
      .toBuffer(),
  );
  const spec = { kind: "svg", root: dir, size: 8, split: ALL_TRAIN } as const;
  await assert.rejects(openImageDataset(spec, "train"), (e: Error) => {
    assert.ok(e instanceof InputError);
    assert.equal(e.source, join(dir, "broken.svg"));
    // libvips's own detail after "corrupt header:" is its process-wide error buffer, which other
    // threads can empty first (seen in CI), so only our part of the message is asserted.
    assert.match(e.message, /broken\.svg: cannot render the SVG \(.+\)$/);
    return true;
  });
  await rm(join(dir, "broken.svg"));
  await assert.rejects(
    openImageDataset(spec, "train"),
    (e: Error) =>
      e instanceof InputError &&
      e.message === `${join(dir, "png-inside.svg")}: cannot render the SVG (the content is png, not SVG)`,
  );
  await writeFile(join(dir, "broken.svg"), "<svg");
  const tolerant = await openImageDataset(spec, "train", { skipCorrupt: true });
  assert.deepEqual(ids(tolerant), ["good.svg"]);
  assert.deepEqual([...tolerant.skippedIds], ["broken.svg", "png-inside.svg"]);
  assert.equal(tolerant.skipped, 2);
});

test("svg specs are checked: background colour, empty split, missing folder, librsvg recorded and enforced", async () => {
  assert.throws(
    () => parseDatasetSpec({ kind: "svg", root: "x", background: "white" }),
    (e: Error) => e instanceof ConfigError && /background/.test(e.message) && /#rrggbb/.test(e.message),
  );
  const spec = parseDatasetSpec({ kind: "twemoji" });
  assert.ok(LIBRSVG_VERSION !== undefined);
  assert.equal(LIBRSVG_VERSION, sharp.versions.rsvg);
  assert.deepEqual(spec, {
    kind: "twemoji",
    size: 32,
    background: "#ffffff",
    split: { train: 0.9, val: 0.05, test: 0.05 },
    librsvg: sharp.versions.rsvg,
  });
  const dir = await tmp("spec");
  await writeSvgs(dir, { "one.svg": SQUARE });
  await assert.rejects(
    openImageDataset({ kind: "svg", root: dir, split: ALL_TRAIN }, "test"),
    (e: Error) =>
      e instanceof InputError && e.message.startsWith(`${dir}: the test split is empty (1 SVG files`),
  );
  await assert.rejects(openImageDataset({ kind: "svg", root: join(dir, "nowhere") }, "train"), InputError);
  await assert.rejects(
    openImageDataset({ kind: "svg", root: dir, split: ALL_TRAIN, librsvg: "0.0.1" }, "train"),
    (e: Error) =>
      e instanceof InputError &&
      e.message.includes(
        `data.librsvg is "0.0.1", but sharp ${sharp.versions.sharp} renders with librsvg ${sharp.versions.rsvg}`,
      ),
  );
});

test("twemoji: the package is found by Node's module resolution; a missing package is a clear error", async () => {
  const root = twemojiRoot();
  assert.equal(root, dirname(createRequire(import.meta.url).resolve("@twemoji/svg/package.json")));
  const files = (await readdir(root)).filter((f) => f.endsWith(".svg"));
  assert.equal(files.length, 3720);
  assert.throws(
    () => twemojiRoot(new URL("file:///nonexistent/folder/module.js")),
    (e: Error) =>
      e instanceof InputError &&
      /@twemoji\/svg package is not installed \(npm install @twemoji\/svg@15\.0\.0/.test(e.message),
  );

  // Skin tones share the base emoji's split, so no test emoji is a recoloured training one.
  assert.equal(twemojiSplitKey("1f44b-1f3fd.svg"), "1f44b.svg");
  assert.equal(
    twemojiSplitKey("1f9d1-1f3fb-200d-1f91d-200d-1f9d1-1f3ff.svg"),
    "1f9d1-200d-1f91d-200d-1f9d1.svg",
  );
  assert.equal(twemojiSplitKey("1f3fb.svg"), "1f3fb.svg");
  const test = await openImageDataset({ kind: "twemoji", size: 16 }, "test");
  const val = await openImageDataset({ kind: "twemoji", size: 16 }, "val");
  assert.equal(test.name, "twemoji:test");
  // The published split of @twemoji/svg 15.0.0: 3,340 / 181 / 199.
  assert.deepEqual([test.length, val.length], [199, 181]);
  assert.deepEqual(ids(test).slice(0, 3), ["1f199.svg", "1f1e7-1f1ec.svg", "1f1e7-1f1fe.svg"]);
  const splitOf = new Map<string, string>(files.map((n) => [n, "train"]));
  for (const id of ids(val)) splitOf.set(id, "val");
  for (const id of ids(test)) splitOf.set(id, "test");
  const toned = files.filter((n) => /-1f3f[b-f]/.test(n) && splitOf.has(twemojiSplitKey(n)));
  assert.ok(toned.length > 1000);
  for (const n of toned) assert.equal(splitOf.get(n), splitOf.get(twemojiSplitKey(n)), n);
  // A real emoji renders to the same bytes twice, and is not blank.
  const grin = join(root, "1f600.svg");
  const a = await renderSvg(grin, 32, "#ffffff");
  assert.deepEqual(await renderSvg(grin, 32, "#ffffff"), a);
  assert.deepEqual([...a.subarray(0, 3)], [255, 255, 255]);
  assert.deepEqual([...a.subarray((16 * 32 + 4) * 3, (16 * 32 + 4) * 3 + 3)], [0xff, 0xcc, 0x4d]);
  // The same bytes on every machine: the first ten test emoji at 32², pinned for the librsvg that
  // sharp 0.34.5 carries (a sharp upgrade that changes librsvg must re-pin this deliberately).
  assert.equal(LIBRSVG_VERSION, "2.61.2", "sharp's librsvg changed: check the pixels and re-pin the digest");
  const digest = createHash("sha256");
  for (const id of ids(test).slice(0, 10)) digest.update(await renderSvg(join(root, id), 32, "#ffffff"));
  assert.equal(digest.digest("hex"), "07832959ea849e85dc78cfb20e6568ce1862600e5498371fee510eac060d70c3");
});

test("run preset twemoji32-anr: Twemoji at 32² from the installed package, with the renderer recorded", async () => {
  const run = resolveRunConfig(runPreset("twemoji32-anr"), "twemoji32-anr");
  assert.equal(run.task, "image");
  assert.deepEqual(run.data, {
    kind: "twemoji",
    size: 32,
    background: "#ffffff",
    split: { train: 0.9, val: 0.05, test: 0.05 },
    librsvg: sharp.versions.rsvg,
  });
  const ds = await openImageDataset(run.data as DatasetSpec, run.eval.split);
  assert.deepEqual([ds.name, ds.length, ds.size], ["twemoji:test", 199, [32, 32]]);
});
