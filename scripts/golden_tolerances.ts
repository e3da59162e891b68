/**
 * Per-key golden tolerances from evidence: runs every variant of test/golden in both forms of the
 * ANR attention, measures each key's error against the authors' PyTorch output, and writes
 *   test/golden/tolerances.json   the bounds golden.test.ts applies (with what they came from)
 *   docs/golden-tolerances.md     the same as a table, with the margins
 *
 *   node --import tsx scripts/golden_tolerances.ts
 *
 * Rules (the reasons are in docs/golden-tolerances.md):
 *   forward tensors  max(10 × measured, float32 noise), float32 noise = max(the reference's own
 *                    float32-vs-float64 difference on that key, 2⁻²³·max|ref|)
 *   PE features      the uniform bound 1e-6 + c·max|ref| (float32 rounding of phases of thousands
 *                    of radians, far above our other errors)
 *   loss, psnr, grad_total_norm
 *                    max(10 × measured, the reference's float32-vs-float64 relative difference, 1e-7);
 *                    for view synthesis, loss and psnr are also floored by the float32 noise that the
 *                    float64 computation of test/float64-reference.ts measures on the variant itself:
 *                    |reference − float64| + |float64 with our float32 roundings − float64|
 *   gradients        max(2 × the variant's worst float32-vs-float64 L2-relative gradient
 *                    difference, 3 × measured): what we measure is the reference's own rounding
 *   Adam, bounds     unchanged (1e-6 absolute; the coordinate-noise bound)
 */
// First: the Node worker pool must exist before jax-js is evaluated (see src/node-threads.ts).
import "../src/node-threads.js";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { runGolden, type GoldenCheck } from "../src/golden/golden.js";
import { setAttentionForm } from "../src/model/model.js";
import { writeFileAtomic } from "../src/util/fs.js";
import { goldenNerfScene, nerf64, nerfOurs } from "../test/float32-error.js";

const root = resolve(import.meta.dirname, "..");
const goldenDir = join(root, "test", "golden");

interface Summary {
  variants: Record<
    string,
    {
      f32_vs_f64: Record<string, { max_abs: number; max_rel_to_maxabs: number; l2_rel: number }>;
      f32_vs_f64_grad_worst_l2_rel: number;
    }
  >;
}

export interface ToleranceEntry {
  metric: GoldenCheck["metric"];
  /** Our error against the reference: the worst over the attention forms. */
  measured: number;
  /** The float32 noise floor the rule used (0 where the rule has none). */
  floor: number;
  tol: number;
  rule: "forward" | "pe" | "scalar" | "gradient" | "bounds";
}

const isPe = (key: string) => /^pe\d+$/.test(key) || key === "anr.attn_in";

/** Relative float32 noise of loss and PSNR of a view-synthesis variant, and our error, against float64. */
interface NerfNoise {
  /** |reference − float64|, relative: the authors' float32 result. */
  reference: Record<"loss" | "psnr", number>;
  /** float64 with our float32 roundings (sample points, phase argument, sequential rendering). */
  float32: Record<"loss" | "psnr", number>;
  /** Our jax-js result against float64. */
  ours: Record<"loss" | "psnr", number>;
}

async function nerfNoise(dir: string): Promise<NerfNoise> {
  const scene = await goldenNerfScene(dir);
  const exact = nerf64(scene);
  const rounded = nerf64(scene, { float32: { coords: true, peArgument: true, rendering: true } });
  const ours = await nerfOurs(scene);
  const rel = (x: { loss: number; psnr: number }) => ({
    loss: Math.abs(x.loss - exact.loss) / Math.abs(exact.loss),
    psnr: Math.abs(x.psnr - exact.psnr) / Math.abs(exact.psnr),
  });
  return { reference: rel(scene.torch), float32: rel(rounded), ours: rel(ours) };
}

function entry(
  check: GoldenCheck,
  measured: number,
  summary: Summary["variants"][string],
  noise?: NerfNoise,
): ToleranceEntry {
  const ref = summary.f32_vs_f64[check.key];
  const { key, metric } = check;
  if (metric === "bounds") return { metric, measured, floor: 0, tol: check.tol, rule: "bounds" };
  if (metric === "max-abs" && isPe(key)) return { metric, measured, floor: 0, tol: check.tol, rule: "pe" };
  if (metric === "max-abs") {
    const floor = Math.max(ref?.max_abs ?? 0, 2 ** -23 * (check.scale ?? 0));
    return { metric, measured, floor, tol: Math.max(10 * measured, floor), rule: "forward" };
  }
  if (metric === "rel") {
    const f64 = noise && (key === "loss" || key === "psnr") ? noise.reference[key] + noise.float32[key] : 0;
    const floor = Math.max(ref?.max_rel_to_maxabs ?? 0, 1e-7, f64);
    return { metric, measured, floor, tol: Math.max(10 * measured, floor), rule: "scalar" };
  }
  const floor = 2 * summary.f32_vs_f64_grad_worst_l2_rel;
  return { metric, measured, floor, tol: Math.max(floor, 3 * measured), rule: "gradient" };
}

/** Two significant digits, rounded up, so that the JSON stays readable and never tighter than the rule. */
function roundUp(x: number): number {
  if (x === 0) return 0;
  const e = Math.floor(Math.log10(x)) - 1;
  return Math.ceil(x / 10 ** e - 1e-9) * 10 ** e;
}

async function main(): Promise<void> {
  await initBackend();
  const summary = JSON.parse(readFileSync(join(goldenDir, "summary_main.json"), "utf8")) as Summary;
  const variants = readdirSync(goldenDir)
    .filter((d) => existsSync(join(goldenDir, d, "config.json")))
    .sort();
  const table: Record<string, Record<string, ToleranceEntry>> = {};
  const md: string[] = [];
  const noises = new Map<string, NerfNoise>();
  for (const v of variants) {
    const kind = (JSON.parse(readFileSync(join(goldenDir, v, "config.json"), "utf8")) as { kind?: string })
      .kind;
    const noise = kind === "nerf" ? await nerfNoise(join(goldenDir, v)) : undefined;
    if (noise) noises.set(v, noise);
    const forms = v.startsWith("anr") ? (["folded", "direct"] as const) : (["auto"] as const);
    const worst = new Map<string, GoldenCheck & { err: number }>();
    for (const form of forms) {
      const previous = setAttentionForm(form);
      try {
        const report = await runGolden(join(goldenDir, v));
        for (const c of report.checks) {
          if (c.key.startsWith("after_step.")) continue;
          const w = worst.get(c.key);
          if (!w || !(c.err <= w.err)) worst.set(c.key, c);
        }
      } finally {
        setAttentionForm(previous);
      }
      console.log(`measured ${v} (${form})`);
    }
    table[v] = {};
    for (const [key, c] of [...worst].sort(([a], [b]) => a.localeCompare(b))) {
      const e = entry(c, c.err, summary.variants[v]!, noise);
      table[v][key] = { ...e, tol: roundUp(e.tol) };
    }
  }

  await writeFileAtomic(join(goldenDir, "tolerances.json"), JSON.stringify(table, null, 1) + "\n");

  md.push("# Golden tolerances, from evidence");
  md.push("");
  md.push(
    "Made by `node --import tsx scripts/golden_tolerances.ts` from the golden data in `test/golden/`",
    "(the authors' PyTorch output, float32, 1 thread) and our jax-js wasm backend; `golden.test.ts`",
    "applies `test/golden/tolerances.json`. *measured* is our error, the worst over both forms of the",
    "ANR attention; *floor* is the float32 noise the rule allows at least; *margin* = tolerance / measured.",
    "",
    "Why these rules:",
    "",
    "- **Forward tensors:** ten times what we measure, but never below the reference's own float32",
    "  rounding on that key (its float32-vs-float64 difference, from `summary_main.json`) or one",
    "  float32 ulp of the tensor's scale. A change of float32 summation order moves errors by about",
    "  the measured amount; a real change of the arithmetic (LayerNorm's epsilon, a missing scale)",
    "  moves them by orders of magnitude.",
    "- **Positional-encoding features** keep the uniform bound `1e-6 + c·max|ref|`: phases reach",
    "  thousands of radians, where float32 spacing is 1e-4 to 1e-3, so their error is rounding, not",
    "  logic.",
    "- **Loss, PSNR and the gradient norm:** ten times what we measure, at least the reference's own",
    "  float32 relative error. For view synthesis, loss and PSNR are also floored by the float32 noise",
    "  of the variant measured against a float64 computation of the same pipeline (below).",
    "- **Gradients:** twice the variant's worst float32-vs-float64 L2-relative gradient difference (or",
    "  three times ours, if larger). Our gradients agree with float64 arithmetic better than the",
    "  reference does: the error we see is the reference's own rounding, which these files fix.",
    "- **One Adam step** (`after_step.*`, not listed): 1e-6 absolute, our optimiser on the golden",
    "  gradients. **Coordinate noise:** its bound, 0.5/s in coordinate units (a quarter of the 2/s pixel spacing).",
    "",
  );
  md.push(...nerfSection(noises));
  for (const v of variants) {
    md.push(
      `## ${v}`,
      "",
      "| key | metric | measured | floor | tolerance | margin | rule |",
      "|---|---|---|---|---|---|---|",
    );
    const rows = Object.entries(table[v]!);
    const grads = rows.filter(([k]) => k.startsWith("grad."));
    for (const [k, e] of rows.filter(([key]) => !key.startsWith("grad."))) md.push(row(k, e));
    if (grads.length) {
      const w = grads.reduce((a, b) => (b[1].measured > a[1].measured ? b : a));
      md.push(row(`grad.* (${grads.length} tensors; worst: ${w[0]})`, w[1]));
    }
    md.push("");
  }
  await writeFileAtomic(join(root, "docs", "golden-tolerances.md"), md.join("\n"));
  console.log(`wrote test/golden/tolerances.json and docs/golden-tolerances.md`);
}

/** The float64 evidence on view synthesis: what was seen, what float64 showed, the resulting floor. */
function nerfSection(noises: Map<string, NerfNoise>): string[] {
  const f = (x: number) => x.toExponential(1);
  const lines = [
    "## Float32 error against float64 (view synthesis)",
    "",
    "A golden NeRF set with other sizes (image 40, patch 10, T = 24, τ = 0.03, hidden 104, seed 8) once",
    "failed on loss and PSNR only: relative errors 5.1e-5 and 2.5e-5 against the reference, while the",
    "rendered colours agreed to 1.5e-5. `test/float64-reference.ts` computes the same pipeline in float64",
    "on the same float32 weights and inputs, with single stages switchable back to float32 rounding, and",
    "`test/float64.test.ts` compares our float32 results with it at several sizes and seeds:",
    "",
    "- **Not float32 noise.** Two correct float32 pipelines stay within about 3e-7 (loss) of float64 at",
    "  initial densities, and within 2e-6 on denser scenes (α up to 0.9): the reference itself (2.2e-7",
    "  on `anr_nerf`), and float64 with our float32 roundings switched on. Ours was 10–600 times further",
    "  off, growing with the samples per ray P: up to 3.2e-5 at P = 16 and 1.9e-4 at P = 64 on the sizes",
    "  above.",
    "- **Not the positional encoding, not the summation order.** The float32 sample points o + d·z",
    "  explain our whole error in the hyponet's raw output (3–4e-5 of its scale; at our points, the",
    "  float32 phase product c·w adds 4–6e-6 and the network's arithmetic 4e-7), and their effect on",
    "  the loss stays below 3e-7 (1.2e-6 on the denser scenes). Rendering with every operation rounded",
    "  to float32 and sums in sequence stays within 8e-8 of float64 (3.6e-7 on the denser scenes).",
    "- **The logarithm in the transmittance.** Our `composite` alone, on our own raw output, is",
    "  off by up to 0.9e-6·P. jax-js 0.1.25's wasm `log` has an absolute error of up to 1.25e-5 for",
    "  arguments just below a power of two, and the transmittance takes log((1 − α) + 1e-10) of values",
    "  just below 1 at every sample. With log keep = clip(−σδ, ln 1e-10, 0) (the same value: 1 − α is",
    "  exp(−σδ)) and α = −expm1(−σδ), the rendering lands within 1e-7 of float64 (2.8e-7 on a denser",
    "  scene), the loss within 3.5e-7 on every test scene, and the golden `anr_nerf` comparison gets",
    "  better on 87 keys and stays identical on the other 16, in both forms of the attention (colours",
    "  1.3e-6 → 3.6e-7, loss 2.4e-6 → 3.1e-7, PSNR 1.8e-6 → 1.8e-7, gradient norm 5.4e-5 → 2.0e-7,",
    "  worst gradient 7.3e-5 → 4.3e-5). `composite` in `src/rendering/volume.ts` now computes it",
    "  that way, and `test/float64.test.ts` bounds rendering, loss and PSNR at 1–2e-6 on every scene,",
    "  which the old computation fails by two orders of magnitude at 64 samples per ray.",
    "- **PSNR** took the same `log` of mse_b (log10 = log·log10 e): up to 5.4e-5 dB when mse_b falls",
    "  just below a power of two, a relative 1e-5 at 5 dB, in both tasks. One Newton step on jax-js's",
    "  value, y + x·exp(−y) − 1 with y = log x, is within 1.2e-7 to 1e-6 of the true log on [1e-4, 400];",
    "  the PSNR now takes it (`preciseLog10` in `src/backend/index.ts`).",
    "",
    "So the loss and PSNR bounds are **not** widened to the error seen: the floor below is the float32",
    "noise that the float64 computation measures on each NeRF variant (the reference's own error plus",
    "that of float64 with our roundings). Per variant, relative to float64:",
    "",
    "| variant | key | reference | float32 roundings | floor | ours (jax-js) |",
    "|---|---|---|---|---|---|",
  ];
  for (const [v, n] of noises)
    for (const k of ["loss", "psnr"] as const)
      lines.push(
        `| ${v} | \`${k}\` | ${f(n.reference[k])} | ${f(n.float32[k])} | ${f(n.reference[k] + n.float32[k])} | ${f(n.ours[k])} |`,
      );
  lines.push("");
  return lines;
}

function row(key: string, e: ToleranceEntry): string {
  const f = (x: number) => (x === 0 ? "0" : x.toExponential(1));
  const margin = e.measured > 0 ? `${(e.tol / e.measured).toPrecision(2)}×` : "–";
  return `| \`${key}\` | ${e.metric} | ${f(e.measured)} | ${f(e.floor)} | ${f(e.tol)} | ${margin} | ${e.rule} |`;
}

await main();
