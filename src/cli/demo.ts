/**
 * The main job (README's first command): train the `demo` run preset — a small ANR on random
 * crops of the embedded photos, evaluated on held-out photos — then show 4× super-resolution of
 * held-out crops next to bicubic upsampling. Prints where the results are.
 */
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import { loadImage, crop, resizeImage, type HostImage } from "../data/image.js";
import { labelledGrid, saveGrid } from "../eval/grids.js";
import { toBatchArray } from "../eval/evaluate.js";
import { loadModel } from "../io/files.js";
import { hyperNetwork } from "../model/model.js";
import { disposeParams, toDevice } from "../model/params.js";
import { createImageDecoder } from "../model/tasks.js";
import { sizeHW } from "../model/config.js";
import { resolveRunConfig } from "../training/run-config.js";
import { applyOverride, EMBEDDED_PHOTOS, runPreset } from "../training/run-presets.js";
import { train } from "../training/trainer.js";
import { done, resumeCommand, type Outcome } from "./common.js";

/** `anr demo`'s options. */
export interface DemoOptions {
  steps?: number;
  out?: string;
  resume?: boolean;
  overwrite?: boolean;
}

/** The file of the demo's 4× super-resolution picture in its run folder. */
const SUPER_RESOLUTION_PNG = "super-resolution.png";

export async function runDemo(values: DemoOptions, args: string[]): Promise<Outcome> {
  const raw = runPreset("demo") as Record<string, unknown>;
  if (values.steps !== undefined) applyOverride(raw, `train.steps=${values.steps}`);
  const run = resolveRunConfig(raw, "preset demo");
  const out = values.out ?? join("runs", run.name);
  await initBackend();
  const result = await train(run, {
    out,
    resume: values.resume === true,
    overwrite: values.overwrite === true,
    resumeCommand: resumeCommand(args),
  });

  // 4× super-resolution: R-tokens from 32×32 crops of held-out photos, decoded on a 128×128 grid.
  const { config, weights } = await loadModel(join(out, "model.safetensors"));
  const [h, w] = sizeHW(config.tokenizer.args.input_size);
  const photos = await Promise.all(
    ["test/rocket.png", "test/face-puppy.png", "test/face-sunflower.png"].map((f) =>
      loadImage(join(EMBEDDED_PHOTOS, f)),
    ),
  );
  const crops = photos.map((p) => crop(p, Math.floor((p.h - h) / 2), Math.floor((p.w - w) / 2), h, w));
  const P = toDevice(weights);
  const gen = hyperNetwork(P, config, toBatchArray(crops).mul(2).sub(1));
  const decoder = createImageDecoder(config);
  const sr = await decoder(P, gen, crops.length, 4 * h, 4 * w);
  decoder.dispose();
  disposeParams(gen);
  disposeParams(P);
  const rows: HostImage[][] = [];
  for (let i = 0; i < crops.length; i++) {
    const n = 3 * 16 * h * w;
    const ours: HostImage = {
      c: 3,
      h: 4 * h,
      w: 4 * w,
      data: sr.slice(i * n, (i + 1) * n).map((x) => (x + 1) / 2),
    };
    rows.push([
      await resizeImage(crops[i]!, 4 * h, 4 * w, "nearest"),
      await resizeImage(crops[i]!, 4 * h, 4 * w, "cubic"),
      ours,
    ]);
  }
  await saveGrid(
    join(out, SUPER_RESOLUTION_PNG),
    labelledGrid(rows, { columns: [`input ${h}²`, "bicubic ×4", "ANR ×4"] }),
    2,
  );
  console.log(
    `\nheld-out PSNR ${result.final.psnr.toFixed(2)} dB, SSIM ${result.final.ssim.toFixed(3)} (${result.final.images} photos)`,
  );
  console.log(`results in ${out}/:`);
  console.log(
    `  config.json metrics.jsonl eval.json psnr.png report.html samples/ model.safetensors model-ema.safetensors checkpoint.safetensors`,
  );
  console.log(`  ${SUPER_RESOLUTION_PNG}   (32×32 input | bicubic ×4 | ANR ×4, held-out photos)`);
  return done({
    out,
    steps: result.steps,
    final: { psnr: result.final.psnr, ssim: result.final.ssim, images: result.final.images },
    seconds: result.seconds,
    super_resolution: join(out, SUPER_RESOLUTION_PNG),
  });
}
