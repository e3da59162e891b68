// Adam, clip_grad_norm_ and EMA: the three optimiser tests of test/train.test.ts (the fitting and
// memory tests there take 20 s more and test the optimiser only loosely). See stryker/base.mjs.
import { nodeTest, strykerConfig } from "./base.mjs";

export default strykerConfig(
  "optim",
  ["src/training/optim.ts"],
  nodeTest(["test/train.test.ts"], "torch's Adam|^clip_grad_norm_|^EMA"),
);
