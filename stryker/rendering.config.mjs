// Rays and volume rendering: test/render.test.ts (1.5 s). The golden NeRF step (test/nerf.test.ts,
// test/golden.test.ts "golden anr_nerf") also covers them but takes 20–25 s per run, too slow per
// mutant; check survivors there by hand. See stryker/base.mjs.
import { nodeTest, strykerConfig } from "./base.mjs";

export default strykerConfig(
  "rendering",
  ["src/rendering/volume.ts", "src/rendering/rays.ts"],
  nodeTest(["test/render.test.ts"]),
);
