/**
 * Every golden variant in ../shared/golden (or $ANR_GOLDEN): forward intermediates, predictions
 * (super-resolution and non-square grids included), loss, PSNR, all gradients and one Adam step,
 * within the tolerances justified in each variant's README (see src/golden/golden.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { golden } from "./fixtures.js";
import { initBackend } from "../src/backend/index.js";
import { runGolden, formatReport } from "../src/golden/golden.js";

const root = golden;
const variants = existsSync(root)
  ? readdirSync(root)
      .filter((d) => existsSync(join(root, d, "config.json")))
      .sort()
  : [];

test("golden data is present", () => {
  assert.ok(
    variants.length >= 5,
    `expected the golden variants under ${root} (set ANR_GOLDEN), found ${variants.length}`,
  );
  for (const v of ["anr", "anr_clip", "transinr", "ipc", "anr_nerf"])
    assert.ok(variants.includes(v), `missing golden variant ${v}`);
});

for (const v of variants) {
  test(`golden ${v}`, async () => {
    await initBackend();
    const report = await runGolden(join(root, v));
    const failed = report.checks.filter((c) => !c.ok);
    assert.equal(failed.length, 0, formatReport(report));
    // Everything that the reference stored must have been compared.
    assert.deepEqual(report.unchecked, [], `io keys not compared: ${report.unchecked.join(", ")}`);
    const keys = new Set(report.checks.map((c) => c.key));
    for (const k of ["loss", "psnr", "grad_total_norm", "tokens", "encoded", "wtokens_dec"])
      assert.ok(keys.has(k), `${k} not checked`);
    assert.ok(
      [...keys].some((k) => k.startsWith("grad.")) && [...keys].some((k) => k.startsWith("after_step.")),
    );
  });
}

// Both forms of the ANR attention (projected queries, or W_q folded into the keys) must match.
for (const v of variants.filter((x) => x.startsWith("anr"))) {
  for (const form of ["direct", "folded"]) {
    test(`golden ${v} with ANR_ATTENTION=${form}`, async () => {
      await initBackend();
      const saved = process.env.ANR_ATTENTION;
      process.env.ANR_ATTENTION = form;
      try {
        const report = await runGolden(join(root, v));
        assert.ok(report.ok, formatReport(report));
      } finally {
        if (saved === undefined) delete process.env.ANR_ATTENTION;
        else process.env.ANR_ATTENTION = saved;
      }
    });
  }
}
