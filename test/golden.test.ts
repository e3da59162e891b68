/**
 * Every golden variant in test/golden (or $ANR_GOLDEN): forward intermediates, predictions
 * (super-resolution and non-square grids included), loss, PSNR, all gradients and one Adam step,
 * each key within the tolerance measured for it (test/golden/tolerances.json, made by
 * scripts/golden_tolerances.ts; the margins are in docs/golden-tolerances.md).
 *
 * Another set ($ANR_GOLDEN) is read as `anr golden` reads it: the variants are the folders found
 * there (each with a config.json), and the bounds come from the tolerances.json beside them when
 * the set has one, else from the shipped table. Every variant found needs measured bounds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { golden } from "./fixtures.js";
import { initBackend } from "../src/backend/index.js";
import {
  runGolden,
  formatReport,
  readToleranceTable,
  type GoldenReport,
  type GoldenTolerances,
} from "../src/golden/golden.js";
import { foldAttention, setAttentionForm } from "../src/model/model.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";

const root = golden;
const shippedDir = join(import.meta.dirname, "golden");
/** The shipped set (test/golden itself), whose five variants must all be there. */
const shipped = resolve(root) === resolve(shippedDir);
const variants = existsSync(root)
  ? readdirSync(root)
      .filter((d) => existsSync(join(root, d, "config.json")))
      .sort()
  : [];
/** The set's own tolerances.json (as `anr golden` reads it), else the shipped one. */
const tableFile = existsSync(join(root, "tolerances.json"))
  ? join(root, "tolerances.json")
  : join(shippedDir, "tolerances.json");
const table = await readToleranceTable(tableFile);
const tolerances = (v: string): GoldenTolerances => table.get(v) ?? {};
/** Each variant's model config, read once (the attention-form tests pick the ANR variants by it). */
const configs = new Map(
  variants.map((v) => [
    v,
    parseHyperNetworkConfig(
      (JSON.parse(readFileSync(join(root, v, "config.json"), "utf8")) as { hn: unknown }).hn,
      join(root, v, "config.json"),
    ),
  ]),
);

test("golden data is present, with a tolerance for every variant", () => {
  assert.ok(variants.length >= 1, `expected golden variants (folders with config.json) under ${root}`);
  if (shipped) {
    assert.equal(tableFile, join(shippedDir, "tolerances.json"));
    for (const v of ["anr", "anr_clip", "transinr", "ipc", "anr_nerf"])
      assert.ok(variants.includes(v), `missing golden variant ${v}`);
  }
  for (const v of variants)
    assert.ok(
      Object.keys(tolerances(v)).length > (shipped ? 20 : 0),
      `no tolerances for ${v} in ${tableFile}${shipped ? "" : ` (measure them with scripts/golden_tolerances.ts and put the table beside the set as tolerances.json)`}`,
    );
});

/** The default-form report of each variant, for the direct-form comparison below. */
const defaultReports = new Map<string, GoldenReport>();

for (const v of variants) {
  test(`golden ${v}`, async () => {
    await initBackend();
    const report = await runGolden(join(root, v), { tolerances: tolerances(v) });
    defaultReports.set(v, report);
    const failed = report.checks.filter((c) => !c.ok);
    assert.equal(failed.length, 0, formatReport(report));
    // Everything that the reference stored must have been compared, each key with its own bound.
    assert.deepEqual(report.unchecked, [], `io keys not compared: ${report.unchecked.join(", ")}`);
    const untabled = report.checks
      .filter((c) => !c.tabled && !c.key.startsWith("after_step."))
      .map((c) => c.key);
    assert.deepEqual(
      untabled,
      [],
      `checked without a measured tolerance (rerun scripts/golden_tolerances.ts)`,
    );
    const bounds = tolerances(v);
    for (const c of report.checks.filter((x) => x.tabled))
      assert.equal(c.tol, bounds[c.key], `${c.key}: bound ${c.tol} applied, ${bounds[c.key]} measured`);
    const keys = new Set(report.checks.map((c) => c.key));
    for (const k of ["loss", "psnr", "grad_total_norm", "tokens", "encoded", "wtokens_dec"])
      assert.ok(keys.has(k), `${k} not checked`);
    assert.ok(
      [...keys].some((k) => k.startsWith("grad.")) && [...keys].some((k) => k.startsWith("after_step.")),
    );
  });
}

// The shipped golden ANR configs pick the folded attention by cost, so the runs above cover it;
// the direct form (queries projected, as the reference computes) must match too, and must really
// be computed: the two forms round differently, so identical errors everywhere would mean one form
// ran twice. (An ANR variant of another set that picks the direct form is checked folded here.)
const otherForm = (v: string): "direct" | "folded" => {
  const h = configs.get(v)!.hyponet;
  return h.name === "ANR" && !foldAttention(h.args.hidden_dim, h.args) ? "folded" : "direct";
};
for (const v of variants.filter((x) => configs.get(x)!.hyponet.name === "ANR")) {
  test(`golden ${v}, ${otherForm(v)} form of the attention`, async () => {
    await initBackend();
    const cfg = configs.get(v)!;
    assert.ok(cfg.hyponet.name === "ANR");
    if (shipped)
      assert.ok(
        foldAttention(cfg.hyponet.args.hidden_dim, cfg.hyponet.args),
        `${v}: default form is not folded`,
      );
    const previous = setAttentionForm(otherForm(v));
    let report: GoldenReport;
    try {
      report = await runGolden(join(root, v), { tolerances: tolerances(v) });
    } finally {
      setAttentionForm(previous);
    }
    assert.ok(report.ok, formatReport(report));
    const byDefault = defaultReports.get(v);
    assert.ok(byDefault, `golden ${v} (default form) did not run first`);
    const errs = (r: GoldenReport) => r.checks.filter((c) => c.metric !== "bounds").map((c) => c.err);
    assert.notDeepEqual(errs(report), errs(byDefault), "direct and folded forms gave bit-identical results");
  });
}
