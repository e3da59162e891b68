import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { openLearnitDataset, sampleViews, stackViews, type PosedView } from "../src/data/learnit.js";
import type { HostImage } from "../src/data/image.js";
import { Rng } from "../src/util/rng.js";
import { discColour, writeObject } from "./fixtures.js";
import { EMBEDDED_MULTIVIEW } from "../src/training/run-presets.js";

const at = (img: HostImage, c: number, y: number, x: number) => img.data[c * img.h * img.w + y * img.w + x]!;

interface Fixture {
  root: string;
  mats: Map<string, number[][][]>;
}

let fixture: Promise<Fixture> | undefined;
/** Built once: 3 good objects, one missing an image, one empty folder; plus a "planes" category with problems. */
function getFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), "anr-learnit-"));
    const cat = join(root, "cars");
    const mats = new Map<string, number[][][]>();
    for (const [o, id] of ["a", "b", "c"].entries()) mats.set(id, await writeObject(join(cat, id), o, 4));
    await writeObject(join(cat, "broken"), 3, 4, 3);
    await mkdir(join(cat, "empty"));
    await writeFile(
      join(root, "cars_splits.json"),
      JSON.stringify({ train: ["a", "broken", "b", "empty", "c"], test: ["c"] }),
    );
    // planes: the test split is empty, the train split has only unusable objects.
    await mkdir(join(root, "planes", "p0"), { recursive: true });
    await writeFile(join(root, "planes_splits.json"), JSON.stringify({ train: ["p0", "p1"], test: [] }));
    return { root, mats };
  })();
  return fixture;
}

test.after(async () => {
  if (fixture) await rm((await fixture).root, { recursive: true, force: true });
});

/** Run `f` with stderr captured; returns what was written. */
async function captureStderr<T>(f: () => Promise<T>): Promise<{ value: T; err: string }> {
  const orig = process.stderr.write.bind(process.stderr);
  let err = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await f(), err };
  } finally {
    process.stderr.write = orig;
  }
}

test("learnit: broken objects are reported by id, once on stderr, and skipped", async () => {
  const { root } = await getFixture();
  const { value: ds, err } = await captureStderr(() =>
    openLearnitDataset({ kind: "learnit", root, category: "cars" }, "train"),
  );
  assert.equal(ds.name, "learnit:cars:train");
  assert.equal(ds.length, 3);
  assert.deepEqual(
    Array.from({ length: ds.length }, (_, i) => ds.object(i).id),
    ["a", "b", "c"],
  );
  assert.deepEqual(
    ds.broken.map((b) => b.id),
    ["broken", "empty"],
  );
  assert.match(ds.broken[0]!.reason, /1 of 4 images missing.*r_3\.png/);
  assert.match(ds.broken[1]!.reason, /transforms\.json/);
  assert.equal(err.trim().split("\n").length, 1);
  assert.match(err, /2 of 5 broken objects: broken .*empty/);
  assert.deepEqual(ds.size, [16, 16]);
  assert.equal(ds.near, 2);
  assert.equal(ds.far, 6);
  assert.equal(ds.object(0).nViews, 4);
  assert.throws(() => ds.object(3), RangeError);
  await assert.rejects(ds.object(0).view(4), RangeError);

  const { value: test, err: quiet } = await captureStderr(() =>
    openLearnitDataset({ kind: "learnit", root, category: "cars", near: 1, far: 3 }, "test"),
  );
  assert.equal(quiet, "");
  assert.equal(test.length, 1);
  assert.deepEqual(test.broken, []);
  assert.deepEqual([test.near, test.far], [1, 3]);
});

test("learnit: RGBA composited on white, pose is the top 3×4, focal from camera_angle_x", async () => {
  const { root, mats } = await getFixture();
  const ds = await captureStderr(() =>
    openLearnitDataset({ kind: "learnit", root, category: "cars" }, "train"),
  );
  const obj = ds.value.object(1);
  for (const v of [0, 1, 2]) {
    const view = await obj.view(v);
    const rgb = discColour(1, v);
    assert.deepEqual([view.img.c, view.img.h, view.img.w], [3, 16, 16]);
    // Transparent background: exactly white, whatever RGB it stored.
    for (let c = 0; c < 3; c++) assert.equal(at(view.img, c, 15, 15), 1);
    assert.equal(at(view.img, 1, 0, 8), 1);
    // Opaque disc: exactly its colour.
    for (let c = 0; c < 3; c++) assert.equal(at(view.img, c, 8, 8), Math.fround(rgb[c]! / 255));
    // Half transparent: rgb·a + (1 − a).
    const a = 128 / 255;
    [200, 100, 0].forEach((x, c) =>
      assert.ok(Math.abs(at(view.img, c, 0, 0) - ((x / 255) * a + 1 - a)) < 1e-6),
    );

    const m = mats.get("b")![v]!;
    assert.deepEqual(Array.from(view.pose), Array.from(Float32Array.from(m.slice(0, 3).flat())));
    const f = (0.5 * 16) / Math.tan(0.345);
    assert.ok(Math.abs(view.focal[0] - f) < 1e-9 && Math.abs(view.focal[1] - f) < 1e-9);
  }
});

test("learnit: size 8 resizes views and halves the focal", async () => {
  const { root } = await getFixture();
  const ds = (
    await captureStderr(() =>
      openLearnitDataset({ kind: "learnit", root, category: "cars", size: 8 }, "test"),
    )
  ).value;
  assert.deepEqual(ds.size, [8, 8]);
  const view = await ds.object(0).view(2);
  assert.deepEqual([view.img.c, view.img.h, view.img.w], [3, 8, 8]);
  const f = (0.5 * 16) / Math.tan(0.345);
  assert.ok(Math.abs(view.focal[0] - f / 2) < 1e-9 && Math.abs(view.focal[1] - f / 2) < 1e-9);
  // The disc centre keeps its colour, a background corner stays white (up to resampling).
  const rgb = discColour(2, 2);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(at(view.img, c, 4, 4) - rgb[c]! / 255) < 0.03);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(at(view.img, c, 7, 7) - 1) < 0.03);
});

test("learnit: sampleViews draws distinct in-range views, deterministic per seed", () => {
  for (const [nSupport, nQuery] of [
    [1, 1],
    [3, 1],
  ] as const) {
    for (let seed = 0; seed < 50; seed++) {
      const s = sampleViews(50, new Rng(seed), { nSupport, nQuery, range: [0, 25] });
      assert.equal(s.support.length, nSupport);
      assert.equal(s.query.length, nQuery);
      const all = [...s.support, ...s.query];
      assert.equal(new Set(all).size, all.length);
      assert.ok(all.every((v) => Number.isInteger(v) && v >= 0 && v < 25));
      assert.deepEqual(sampleViews(50, new Rng(seed), { nSupport, nQuery, range: [0, 25] }), s);
    }
  }
  const a = sampleViews(4, new Rng(1), { nSupport: 3, nQuery: 1 });
  assert.deepEqual([...a.support, ...a.query].sort(), [0, 1, 2, 3]);
  const seen = new Set<string>();
  for (let seed = 0; seed < 20; seed++)
    seen.add(JSON.stringify(sampleViews(25, new Rng(seed), { nSupport: 3, nQuery: 1 })));
  assert.ok(seen.size > 10);
  const r = sampleViews(10, new Rng(3), { nSupport: 2, nQuery: 2, range: [5, 9] });
  assert.ok([...r.support, ...r.query].every((v) => v >= 5 && v < 9));
  assert.throws(
    () => sampleViews(24, new Rng(0), { nSupport: 3, nQuery: 1, range: [0, 25] }),
    /range \[0, 25\)/,
  );
  assert.throws(() => sampleViews(3, new Rng(0), { nSupport: 3, nQuery: 1 }), /need 4 distinct views/);
});

test("learnit: stackViews gives (B, n, 3, H, W), (B, n, 3, 4), (B, n, 2), views contiguous per object", async () => {
  const { root } = await getFixture();
  const ds = (
    await captureStderr(() => openLearnitDataset({ kind: "learnit", root, category: "cars" }, "train"))
  ).value;
  const pick = [
    [3, 0],
    [1, 2],
  ];
  const views: PosedView[][] = await Promise.all(
    pick.map((vs, i) => Promise.all(vs.map((v) => ds.object(i).view(v)))),
  );
  const s = stackViews(views);
  assert.deepEqual(s.shape, { b: 2, n: 2, h: 16, w: 16 });
  assert.equal(s.imgs.length, 2 * 2 * 3 * 16 * 16);
  assert.equal(s.poses.length, 2 * 2 * 12);
  assert.equal(s.focals.length, 2 * 2 * 2);
  const px = 3 * 16 * 16;
  for (let b = 0; b < 2; b++) {
    for (let j = 0; j < 2; j++) {
      const k = b * 2 + j;
      const v = views[b]![j]!;
      assert.deepEqual(s.imgs.subarray(k * px, (k + 1) * px), v.img.data);
      assert.deepEqual(s.poses.subarray(k * 12, (k + 1) * 12), v.pose);
      assert.deepEqual(Array.from(s.focals.subarray(k * 2, k * 2 + 2)), v.focal.map(Math.fround));
      // Green of the disc centre identifies the view index.
      assert.equal(s.imgs[k * px + 1 * 256 + 8 * 16 + 8], Math.fround(discColour(b, pick[b]![j]!)[1] / 255));
    }
  }
  assert.throws(() => stackViews([views[0]!, views[1]!.slice(0, 1)]), /object 1 has 1 views/);
  assert.throws(() => stackViews([]), /no views/);
});

test("learnit: wrong root, missing splits file, unknown or empty split and no usable object fail at open", async () => {
  const { root } = await getFixture();
  const spec = (r: string, category = "cars") => ({ kind: "learnit" as const, root: r, category });
  const missing = join(root, "nope");
  await assert.rejects(openLearnitDataset(spec(missing), "train"), (e: Error) => {
    assert.ok(e.message.startsWith(`${missing}: no such directory`));
    assert.match(e.message, /cars_splits\.json/);
    return true;
  });
  const splits = join(root, "chairs_splits.json");
  await assert.rejects(openLearnitDataset(spec(root, "chairs"), "train"), (e: Error) => {
    assert.ok(e.message.startsWith(`${splits}: cannot read`));
    assert.match(e.message, /"train": \[object ids\]/);
    return true;
  });
  await assert.rejects(
    openLearnitDataset(spec(root), "val"),
    startsWith(`${join(root, "cars_splits.json")}: no "val" split (has train, test`),
  );
  await assert.rejects(
    openLearnitDataset(spec(root, "planes"), "test"),
    startsWith(`${join(root, "planes_splits.json")}: the "test" split lists no objects`),
  );
  await assert.rejects(
    captureStderr(() => openLearnitDataset(spec(root, "planes"), "train")),
    startsWith(`${join(root, "planes")}: none of the 2 objects of the train split is usable (first: p0: `),
  );
  await assert.rejects(
    openLearnitDataset({ ...spec(root), near: 6, far: 2 }, "train"),
    /far: far must exceed near/,
  );
});

test("learnit: a view that fails to decode throws an error starting with its path", async () => {
  const root = await mkdtemp(join(tmpdir(), "anr-learnit-bad-"));
  try {
    const dir = join(root, "cars", "x");
    await writeObject(dir, 0, 3);
    await writeFile(join(dir, "r_1.png"), "not a png");
    // A view of another size than view 0.
    await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 1 } } })
      .png()
      .toFile(join(dir, "r_2.png"));
    await writeFile(join(root, "cars_splits.json"), JSON.stringify({ train: ["x"], test: [] }));
    const ds = await openLearnitDataset({ kind: "learnit", root, category: "cars" }, "train");
    const obj = ds.object(0);
    await obj.view(0);
    await assert.rejects(obj.view(1), (e: Error) =>
      e.message.startsWith(`${join(dir, "r_1.png")}: cannot read image`),
    );
    await assert.rejects(obj.view(2), (e: Error) => {
      assert.ok(e.message.startsWith(`${join(dir, "r_2.png")}: 8×8, but view 0 of object x`));
      return true;
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** An assert.rejects validator: the message starts with `prefix` (a RegExp would see "Error: " first). */
function startsWith(prefix: string): (e: Error) => boolean {
  return (e) => {
    assert.ok(e.message.startsWith(prefix), `expected a message starting with ${prefix}\ngot ${e.message}`);
    return true;
  };
}

test("the embedded multi-view set (Blender renders of real models) opens cleanly", async () => {
  const spec = { kind: "learnit" as const, root: EMBEDDED_MULTIVIEW, category: "objects" };
  const train = await openLearnitDataset(spec, "train");
  const test = await openLearnitDataset(spec, "test");
  assert.deepEqual([train.length, test.length, train.broken.length, test.broken.length], [5, 2, 0, 0]);
  assert.deepEqual(train.size, [64, 64]);
  const v = await test.object(0).view(3);
  assert.ok(Math.abs(v.focal[0] - 32 / Math.tan(0.5 * 0.6911112070083618)) < 1e-3);
  // Camera 4 units from the object, looking at it: the centre pixel is object, a corner is white.
  const eye = [v.pose[3]!, v.pose[7]!, v.pose[11]!];
  assert.ok(Math.abs(Math.hypot(...eye) - 4) < 1e-3);
  assert.ok(
    [0, 1, 2].every((c) => v.img.data[c * 64 * 64] === 1),
    "corner is white background",
  );
});
