// SSIM: the ssim tests of test/utils.test.ts, including the comparison with scikit-image (skipped
// without python3-skimage, which leaves most arithmetic mutants alive). See stryker/base.mjs.
import { nodeTest, strykerConfig } from "./base.mjs";

export default strykerConfig("ssim", ["src/eval/ssim.ts"], nodeTest(["test/utils.test.ts"], "^ssim:"));
