import { test } from "node:test";
import assert from "node:assert/strict";
import { initBackend, readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { composite, jitterDepths, sampleDepths } from "../src/rendering/volume.js";
import { posesToRays } from "../src/rendering/rays.js";
import { Rng } from "../src/util/rng.js";
import { saveGif } from "../src/data/image.js";
import sharp from "sharp";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("jittered depths stay within one interval of the grid and are shared over the batch", () => {
  const z = jitterDepths(2, 6, 5, 3, new Rng(0));
  const base = sampleDepths(2, 6, 5);
  assert.equal(z.length, 15);
  for (let i = 0; i < 15; i++) {
    const d = z[i]! - base[i % 5]!;
    assert.ok(d >= 0 && d < 1, `offset ${d}`);
  }
  assert.notDeepEqual(z.slice(0, 5), z.slice(5, 10), "each ray draws its own offsets");
});

test("empty space renders white; an opaque first sample renders its colour", async () => {
  await initBackend();
  const z = np.array(sampleDepths(2, 6, 4));
  // raw: ray 0 has σ = 0 everywhere; ray 1 has a huge σ at sample 0 with colour logit (+∞, −∞, 0).
  const raw = new Float32Array(2 * 4 * 4);
  raw.set([20, -20, 0, 1e4], 4 * 4);
  const { rgb, weights } = composite(np.array(raw, { shape: [1, 2, 4, 4] }), z);
  const c = await readF32(rgb);
  assert.deepEqual(
    [...c.slice(0, 3)].map((x) => Math.round(x * 1e5) / 1e5),
    [1, 1, 1],
  );
  assert.ok(Math.abs(c[3]! - 1) < 1e-5 && Math.abs(c[4]!) < 1e-5 && Math.abs(c[5]! - 0.5) < 1e-5);
  const w = await readF32(weights);
  assert.ok(Math.abs(w[4]! - 1) < 1e-6 && w.slice(5, 8).every((x) => Math.abs(x) < 1e-6));
});

test("rays: centre pixel of a camera at the origin looks down −z; focal scales columns/rows separately", async () => {
  await initBackend();
  const pose = np.array([1, 0, 0, 0.5, 0, 1, 0, -1, 0, 0, 1, 4], { shape: [1, 3, 4] });
  const [o, d] = posesToRays(pose, np.array([10, 20], { shape: [1, 2] }), 2, 2);
  const dd = await readF32(d);
  // pixel (0, 0): ((0.5 − 1)/10, −(0.5 − 1)/20, −1)
  assert.deepEqual(
    [...dd.slice(0, 3)].map((x) => Math.round(x * 1e6) / 1e6),
    [-0.05, 0.025, -1],
  );
  assert.deepEqual([...(await readF32(o)).slice(9, 12)], [0.5, -1, 4]);
});

test("saveGif: distinct frames become an animated, looping GIF", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "anr-gif-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const frames = [0.1, 0.5, 0.9].map((v) => ({ c: 3, h: 6, w: 8, data: new Float32Array(3 * 48).fill(v) }));
  await saveGif(join(dir, "a.gif"), frames);
  const m = await sharp(join(dir, "a.gif"), { animated: true }).metadata();
  assert.deepEqual([m.format, m.pages, m.width, m.pageHeight, m.loop], ["gif", 3, 8, 6, 0]);
});
