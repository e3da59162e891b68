import { test } from "node:test";
import assert from "node:assert/strict";
import { initBackend, readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { composite, jitterDepths, rayPoints, sampleDepths } from "../src/rendering/volume.js";
import { lookAtPose, posesToRays } from "../src/rendering/rays.js";
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

/** Deterministic values in [lo, hi) for test inputs. */
function spread(n: number, lo: number, hi: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());
}

test("composite: partly transparent samples match a float64 transcription of the reference, for shared and per-ray depths", async () => {
  await initBackend();
  const [B, R, P] = [2, 3, 5];
  // σ logits in [−1, 1.5) (some clipped by relu), colour logits in [−3, 3).
  // Rounded to float32 here, so that the reference sees the values the device sees.
  const raw = spread(B * R * P * 4, -3, 3, 11).map((x, i) =>
    Math.fround(i % 4 === 3 ? (x + 3) * (2.5 / 6) - 1 : x),
  );
  const shared = [2, 2.4, 3.1, 3.5, 4.6].map(Math.fround);
  const perRay = Array.from({ length: R }, (_, r) => shared.map((z, k) => Math.fround(z + 0.15 * r * k)));
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  for (const zs of [shared, perRay]) {
    const depth = (r: number, k: number) => (zs === shared ? shared[k]! : perRay[r]![k]!);
    const expRgb: number[] = [];
    const expW: number[] = [];
    const accs: number[] = [];
    for (let b = 0; b < B; b++)
      for (let r = 0; r < R; r++) {
        let keep = 1; // Π_{j<k} min(1 − α_j + 1e-10, 1)
        const c = [0, 0, 0];
        let acc = 0;
        for (let k = 0; k < P; k++) {
          const at = ((b * R + r) * P + k) * 4;
          const delta = k < P - 1 ? depth(r, k + 1) - depth(r, k) : 1e-3;
          const alpha = 1 - Math.exp(-Math.max(0, raw[at + 3]!) * delta);
          const w = alpha * keep;
          for (let ch = 0; ch < 3; ch++) c[ch]! += w * sig(raw[at + ch]!);
          acc += w;
          expW.push(w);
          keep *= Math.min(1 - alpha + 1e-10, 1);
        }
        expRgb.push(...c.map((x) => x + 1 - acc));
        accs.push(acc);
      }
    const z = zs === shared ? np.array(shared) : np.array(perRay.flat(), { shape: [R, P] });
    const { rgb, weights } = composite(np.array(raw, { shape: [B, R, P, 4] }), z);
    const [gotRgb, gotW] = [await readF32(rgb), await readF32(weights)];
    assert.equal(gotRgb.length, B * R * 3);
    assert.equal(gotW.length, B * R * P);
    // float32 (wasm exp/log, transmittance as exp of a cumulative sum of logs) against float64:
    // measured ≤ 2.6e-6 on colours and 6.2e-6 on weights.
    expRgb.forEach((x, i) => assert.ok(Math.abs(gotRgb[i]! - x) < 2e-5, `rgb[${i}]: ${gotRgb[i]} vs ${x}`));
    expW.forEach((x, i) => assert.ok(Math.abs(gotW[i]! - x) < 2e-5, `w[${i}]: ${gotW[i]} vs ${x}`));
    // Not a degenerate case: weights strictly between 0 and 1 occur, and some rays see the background.
    assert.ok(expW.some((w) => w > 0.05 && w < 0.95));
    assert.ok(
      accs.some((a) => a < 0.9),
      `accumulated weights ${accs.map((a) => a.toFixed(3))}`,
    );
  }
});

test("rayPoints: o + d·z for depths shared by all rays (P) and per ray (R, P)", async () => {
  await initBackend();
  const [B, R, P] = [2, 3, 4];
  const o = spread(B * R * 3, -1, 1, 21);
  const d = spread(B * R * 3, -1, 1, 22);
  const zShared = [2, 3, 4.5, 6];
  const zRay = spread(R * P, 2, 6, 23);
  for (const [z, zShape] of [
    [zShared, [P]],
    [zRay, [R, P]],
  ] as const) {
    const pts = await readF32(
      rayPoints(
        np.array(o, { shape: [B, R, 3] }),
        np.array(d, { shape: [B, R, 3] }),
        np.array([...z], { shape: [...zShape] }),
      ),
    );
    assert.equal(pts.length, B * R * P * 3);
    for (let b = 0; b < B; b++)
      for (let r = 0; r < R; r++)
        for (let k = 0; k < P; k++)
          for (let ax = 0; ax < 3; ax++) {
            const zk = zShape.length === 1 ? z[k]! : z[r * P + k]!;
            const want = o[(b * R + r) * 3 + ax]! + d[(b * R + r) * 3 + ax]! * zk;
            const got = pts[((b * R + r) * P + k) * 3 + ax]!;
            // float32 rounding of inputs and product: measured ≤ 2.9e-7.
            assert.ok(Math.abs(got - want) < 1e-5, `(${b}, ${r}, ${k}, ${ax}): ${got} vs ${want}`);
          }
  }
});

test("sampleDepths is linspace(near, far, P) with a single sample at near; jitter is none for one sample", () => {
  assert.deepEqual([...sampleDepths(2, 6, 5)], [2, 3, 4, 5, 6]);
  assert.deepEqual([...sampleDepths(1, 2, 3)], [1, 1.5, 2]);
  assert.deepEqual([...sampleDepths(2, 6, 1)], [2]);
  assert.deepEqual([...jitterDepths(2, 6, 1, 3, new Rng(0))], [2, 2, 2]);
  // Offsets are U[0, 1) times the interval (0.5 here): within it, and reaching above 0.9 of it
  // over 200 draws (measured 0.99 of it).
  const z = jitterDepths(0, 2, 5, 40, new Rng(1));
  const off = [...z].map((x, i) => x - 0.5 * (i % 5));
  assert.ok(
    off.every((d) => d >= 0 && d < 0.5),
    "offsets within one interval",
  );
  assert.ok(Math.max(...off) > 0.45, `largest offset ${Math.max(...off)}`);
});

test("rays: rotated cameras, H ≠ W, two poses with their own focals: d = R · dir_cam, o = t, at every pixel", async () => {
  await initBackend();
  const [H, W] = [3, 4];
  // Two rotations about unit axes, written as Rodrigues' formula, and their translations.
  const rot = (axis: number[], a: number): number[][] => {
    const [x, y, z] = axis.map((v) => v / Math.hypot(...axis)) as [number, number, number];
    const [c, s, t] = [Math.cos(a), Math.sin(a), 1 - Math.cos(a)];
    return [
      [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
      [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
      [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ];
  };
  const Rs = [rot([1, 2, 3], 0.7), rot([-2, 0.5, 1], 2.1)];
  const ts = [
    [0.5, -1, 4],
    [-3, 2, 0.25],
  ];
  const focals = [
    [10, 20],
    [7, 5],
  ];
  const poses = Rs.flatMap((R, b) => R.flatMap((row, i) => [...row, ts[b]![i]!]));
  const [o, d] = posesToRays(
    np.array(poses, { shape: [2, 3, 4] }),
    np.array(focals.flat(), { shape: [2, 2] }),
    H,
    W,
  );
  assert.deepEqual(o.shape, [2, H, W, 3]);
  assert.deepEqual(d.shape, [2, H, W, 3]);
  const [oo, dd] = [await readF32(o), await readF32(d)];
  for (let b = 0; b < 2; b++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const cam = [(j + 0.5 - W / 2) / focals[b]![0]!, -(i + 0.5 - H / 2) / focals[b]![1]!, -1];
        for (let ax = 0; ax < 3; ax++) {
          const at = ((b * H + i) * W + j) * 3 + ax;
          const want = Rs[b]![ax]!.reduce((s, rij, k) => s + rij * cam[k]!, 0);
          // float32: measured ≤ 5.6e-8.
          assert.ok(Math.abs(dd[at]! - want) < 1e-6, `d(${b}, ${i}, ${j})[${ax}]: ${dd[at]} vs ${want}`);
          assert.ok(Math.abs(oo[at]! - ts[b]![ax]!) < 1e-6, `o(${b}, ${i}, ${j})[${ax}]`);
        }
      }
});

test("lookAtPose: an orthonormal, right-handed camera at eye whose axis points at the origin, x level, y up", () => {
  for (const eye of [
    [0, -4, 0],
    [2.5, 1, 1.5],
    [-1, -3, -2],
  ] as [number, number, number][]) {
    const p = lookAtPose(eye);
    assert.equal(p.length, 12);
    const col = (c: number) => [0, 1, 2].map((r) => p[r * 4 + c]!);
    const [x, y, z, t] = [col(0), col(1), col(2), col(3)];
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    const n = Math.hypot(...eye);
    // float32 storage: measured ≤ 6.8e-8.
    const near = (a: number, b: number, what: string) =>
      assert.ok(Math.abs(a - b) < 1e-6, `${eye} ${what}: ${a} vs ${b}`);
    t.forEach((v, i) => near(v, eye[i]!, `t[${i}]`));
    z.forEach((v, i) => near(v, eye[i]! / n, `z[${i}]`)); // looks along −z, i.e. at the origin
    near(x[2]!, 0, "x level");
    assert.ok(y[2]! > 0, `${eye}: y points up`);
    for (const [a, b, what] of [
      [x, x, "x·x"],
      [y, y, "y·y"],
      [z, z, "z·z"],
    ] as const)
      near(dot(a, b), 1, what);
    near(dot(x, y), 0, "x·y");
    near(dot(x, z), 0, "x·z");
    near(dot(y, z), 0, "y·z");
    // Right-handed: x × y = z.
    near(x[1]! * y[2]! - x[2]! * y[1]!, z[0]!, "(x×y)_0");
    near(x[2]! * y[0]! - x[0]! * y[2]!, z[1]!, "(x×y)_1");
    near(x[0]! * y[1]! - x[1]! * y[0]!, z[2]!, "(x×y)_2");
  }
  // + 0 turns −0 into 0 (a cross product of axis vectors gives −0 here).
  assert.deepEqual(
    [...lookAtPose([0, -4, 0])].map((v) => v + 0),
    [1, 0, 0, 0, 0, 0, -1, -4, 0, 1, 0, 0],
  );
});
