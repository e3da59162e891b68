/**
 * The main job (README's first command), in two parts:
 * 1. The zoo's Twemoji model at work, in seconds: held-out emoji encoded at 32², decoded at ×4 and
 *    ×8, and measured against the same SVGs rendered at those sizes, beside bicubic and Lanczos-3
 *    upsampling of the 32² input (a table and a labelled picture per factor).
 * 2. The training loop, live: a fresh model trained with the zoo model's own recipe for a few
 *    hundred steps, its PSNR curve drawn over the curve of the zoo model's training at the same
 *    steps. Training is deterministic (same data order, initialisation and arithmetic), so the two
 *    curves should coincide: the shipped model is what this loop makes.
 * The photo demo of earlier versions is the `demo` run preset (`anr train --preset demo`).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import { loadModel } from "../io/files.js";
import { findZooModel } from "../io/zoo.js";
import { disposeParams, toDevice } from "../model/params.js";
import { parseMetrics } from "../training/report.js";
import { folderMode } from "../training/loop.js";
import { claimRunFolder } from "../training/run-folder.js";
import { resolveRunConfig, runWithModel } from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import { train } from "../training/trainer.js";
import { writeLinePlot, type LineSeries } from "../util/plot.js";
import { done, resumeCommand, svgSuperResolution, type Outcome } from "./common.js";

/** `anr demo`'s options. */
export interface DemoOptions {
  steps?: number;
  items?: number;
  out?: string;
  resume?: boolean;
  overwrite?: boolean;
}

/** The zoo model the demo shows and whose recipe it retrains. */
export const DEMO_MODEL = "twemoji32-anr";
/**
 * Training steps of part 2: about 5 minutes on 2 cores, and a step at which the zoo model's
 * training logged its test PSNR (every 500 steps), so the two test figures can be set side by side.
 */
export const DEMO_STEPS = 500;
/** Held-out emoji of part 1: a few seconds of decoding at ×4 and ×8 on 2 cores. */
export const DEMO_ITEMS = 24;
/** The upsampling factors of part 1. */
const FACTORS = [4, 8];
/** Part 2's picture: this run's PSNR curve over the zoo model's training curve. */
export const TRAINING_PLOT = "training-vs-zoo.png";

/** The train PSNR of each logged step, and the test PSNR where it was evaluated. */
function curves(records: Record<string, number>[], maxStep: number) {
  const at = (key: string) =>
    records
      .filter((r) => r.step! <= maxStep && r[key] !== undefined)
      .map((r) => [r.step!, r[key]!] as [number, number]);
  return { train: at("train_psnr"), test: at("test_psnr") };
}

export async function runDemo(values: DemoOptions, args: string[]): Promise<Outcome> {
  const zoo = await findZooModel(DEMO_MODEL);
  if (!zoo) throw new Error(`the zoo (models/zoo.json) has no ${DEMO_MODEL}`);
  const steps = values.steps ?? DEMO_STEPS;
  const raw = runPreset(zoo.preset) as Record<string, unknown>;
  applyOverride(raw, `train.steps=${steps}`);
  applyOverride(raw, `name="demo"`);
  const run = resolveRunConfig(raw, `preset ${zoo.preset}`);
  const out = values.out ?? join("runs", "demo");
  const opts = {
    out,
    resume: values.resume === true,
    overwrite: values.overwrite === true,
    resumeCommand: resumeCommand(args),
  };
  // What training would refuse (a run there, and no --resume or --overwrite) is refused before part 1.
  if (steps > 0) await (await claimRunFolder(out, folderMode(opts), "anr demo")).release();
  await initBackend();

  console.log(`1/2  The zoo model ${zoo.name} (${zoo.data.split(" (")[0]}) on held-out emoji`);
  const model = await loadModel(zoo.file);
  const withModel = runWithModel(run, model.config, zoo.file);
  // A copy of the eval block: part 2 evaluates on the whole test split.
  const shipped = { ...withModel, eval: { ...withModel.eval, max_images: values.items ?? DEMO_ITEMS } };
  if (shipped.data.kind !== "twemoji") throw new Error(`${zoo.name} was not trained on Twemoji`);
  const P = toDevice(model.weights);
  let sr: Outcome;
  try {
    sr = await svgSuperResolution(shipped, shipped.data, P, FACTORS, { out, stem: zoo.name });
  } finally {
    disposeParams(P);
  }

  if (steps === 0) {
    console.log(
      `results in ${out}/: ${zoo.name}-sr-x4.png, -x8.png, -sr.json (input | bicubic | Lanczos-3 | ANR | truth)`,
    );
    return done({ out, super_resolution: sr.result });
  }

  console.log(`\n2/2  Training a fresh model with ${zoo.name}'s recipe for ${steps} steps`);
  const result = await train(run, opts);
  const ours = curves(parseMetrics(await readFile(join(out, "metrics.jsonl"), "utf8")), steps);
  const theirs = zoo.metrics
    ? curves(parseMetrics(await readFile(zoo.metrics, "utf8")), steps)
    : { train: [], test: [] };
  // This run dashed over the zoo's training: where they coincide, both colours show.
  const series: LineSeries[] = [
    { name: `train, ${zoo.name}'s training`, points: theirs.train },
    { name: "train, this run", points: ours.train, dashed: true },
    { name: `test, ${zoo.name}'s training`, points: theirs.test },
    { name: "test, this run", points: ours.test, dashed: true },
  ].filter((s) => s.points.length > 0);
  await writeLinePlot(join(out, TRAINING_PLOT), {
    title: `PSNR by step: this run and the training of ${zoo.name}`,
    xLabel: "step",
    yLabel: "PSNR (dB)",
    series,
  });
  const zooTrain = new Map(theirs.train);
  const gaps = ours.train.filter(([s]) => zooTrain.has(s)).map(([s, v]) => Math.abs(v - zooTrain.get(s)!));
  const trainGap = gaps.length ? Math.max(...gaps) : null;
  const zooTest = theirs.test.find(([s]) => s === result.steps)?.[1] ?? null;
  console.log(
    `\nthis run: test PSNR ${result.final.psnr.toFixed(2)} dB, SSIM ${result.final.ssim.toFixed(3)} over ${result.final.images} held-out emoji after ${result.steps} steps` +
      (zooTest !== null ? ` (${zoo.name}'s training at the same step: ${zooTest.toFixed(2)} dB)` : ""),
  );
  if (trainGap !== null)
    console.log(
      `train PSNR at the ${gaps.length} logged step${gaps.length === 1 ? "" : "s"}: at most ${trainGap.toFixed(4)} dB from ${zoo.name}'s training (${TRAINING_PLOT})`,
    );
  console.log(`results in ${out}/:`);
  console.log(
    `  ${zoo.name}-sr-x4.png, -x8.png, -sr.json   part 1: input | bicubic | Lanczos-3 | ANR | truth`,
  );
  console.log(`  ${TRAINING_PLOT}   part 2: this run's PSNR over the zoo model's training`);
  console.log(
    `  config.json metrics.jsonl eval.json psnr.png report.html model.safetensors checkpoint.safetensors`,
  );
  return done({
    out,
    super_resolution: sr.result,
    training: {
      steps: result.steps,
      seconds: result.seconds,
      final: { psnr: result.final.psnr, ssim: result.final.ssim, images: result.final.images },
      zoo_test_psnr_at_same_step: zooTest,
      max_train_psnr_gap_db: trainGap,
      logged_steps_compared: gaps.length,
      plot: join(out, TRAINING_PLOT),
    },
  });
}
