// numel: exercised by the parameter initialisation test (shapes → counts). See stryker/base.mjs.
import { nodeTest, strykerConfig } from "./base.mjs";

export default strykerConfig("shape", ["src/util/shape.ts"], nodeTest(["test/model.test.ts"], "^init:"));
