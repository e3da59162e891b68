/**
 * Variational coordinates (the training-time coordinate noise): c + clip(0.3·u·n, ±0.5·u) with
 * u = 1/max(h, w), checked element by element against the formula evaluated here in float64.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { initBackend, readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { coordGrid, jitterCoords } from "../src/model/model.js";

test("jitterCoords: c + clip(0.3·u·n, ±0.5·u), u = 1/max(h, w), on a non-square grid", async () => {
  await initBackend();
  const [h, w] = [6, 10];
  const grid = coordGrid(h, w);
  // Normals from −4 to 4, so that both the linear part and the clipping (|n| > 5/3) are exercised.
  const normal = Float32Array.from(grid, (_, i) => (((i * 37) % 97) / 96) * 8 - 4);
  const ours = await readF32(
    jitterCoords(np.array(grid, { shape: [h * w, 2] }), np.array(normal, { shape: [h * w, 2] }), h, w),
  );
  const unit = 1 / Math.max(h, w);
  let clipped = 0;
  for (let i = 0; i < grid.length; i++) {
    const step = Math.min(0.5 * unit, Math.max(-0.5 * unit, 0.3 * unit * normal[i]!));
    if (Math.abs(step) === 0.5 * unit) clipped++;
    // float32 arithmetic on values below 1: a few ulps.
    assert.ok(
      Math.abs(ours[i]! - (grid[i]! + step)) < 4e-7,
      `element ${i}: ${ours[i]} vs ${grid[i]! + step}`,
    );
  }
  assert.ok(clipped > 10 && clipped < grid.length - 10, `clipped ${clipped} of ${grid.length}`);
});
