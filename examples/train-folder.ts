/**
 * Train a small ANR on a folder of your own images, then use it.
 *
 *   npx tsx examples/train-folder.ts IMAGE_FOLDER [RUN_FOLDER] [STEPS]
 *
 * The run folder gets what `anr train` writes (config, metrics, checkpoint, model, samples,
 * report.html); the run stops after 10 minutes with a checkpoint if it is not done by then, and
 * `resume: true` continues it.
 */
import { join } from "node:path";
import { Anr, resolveRunConfig, savePng, train } from "anr/node";

const [images, out = "runs/my-images", steps = "600"] = process.argv.slice(2);
if (!images) throw new Error("usage: train-folder.ts IMAGE_FOLDER [RUN_FOLDER] [STEPS]");

const run = resolveRunConfig({
  name: "my-images",
  data: {
    kind: "folder",
    root: images,
    split: { train: 0.8, val: 0, test: 0.2 },
    preprocess: { mode: "random-crop", size: 32, resize: 48, flip: true },
  },
  model: { preset: "tiny32-anr" },
  train: { steps: Number(steps), batch_size: 8, lr: 3e-4, eval_every: 100 },
});
const result = await train(run, {
  out,
  overwrite: true,
  verbose: false,
  signal: AbortSignal.timeout(10 * 60_000),
  onEval: (r) => console.log(`step ${r.step}: test PSNR ${r.test_psnr.toFixed(2)} dB`),
});
if (result.interrupted) console.log(`stopped at step ${result.steps}; train again with resume: true`);
else console.log(`done: ${result.steps} steps, test PSNR ${result.final.psnr.toFixed(2)} dB → ${out}`);

// The run folder is a model now (its checkpoint, if stopped early): a held-out image at 4×.
using m = await Anr.load(out);
const heldOut = result.final.perImage[0]?.id;
if (heldOut) {
  const img = await m.decode(await m.encode(join(images, heldOut)), { scale: 4 });
  await savePng(join(out, "held-out-x4.png"), img);
  console.log(`${heldOut} at ${img.h}×${img.w} → ${join(out, "held-out-x4.png")}`);
}
