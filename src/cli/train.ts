/** `anr train`. */
import { join } from "node:path";
import { readConfigFile } from "../io/config-file.js";
import type { ValidatedRunConfig } from "../training/run-config.js";
import { applyOverride } from "../training/run-presets.js";
import { train } from "../training/trainer.js";
import { UsageError } from "../util/errors.js";
import { checkWritable, done, resolveRun, resumeCommand, runPresetNamed, type Outcome } from "./common.js";

/** `anr train`'s options. */
export interface TrainOptions {
  preset?: string;
  dataRoot?: string;
  steps?: number;
  set?: string[];
  out?: string;
  resume?: boolean;
  overwrite?: boolean;
  /** End the run once its training time (the steps alone) reaches this many seconds. */
  budgetSeconds?: number;
}

/** The resolved run config, from a config file or a preset, with the flags applied. */
async function runConfigFrom(
  config: string | undefined,
  values: TrainOptions,
): Promise<{ run: ValidatedRunConfig; out: string }> {
  let raw: Record<string, unknown>;
  let source: string;
  if (values.preset) {
    if (config !== undefined) throw new UsageError("give a config file or --preset, not both");
    raw = runPresetNamed(values.preset);
    source = `preset ${values.preset}`;
  } else if (config !== undefined) {
    source = config;
    raw = (await readConfigFile(source, "run config")) as Record<string, unknown>;
  } else throw new UsageError("anr train: give a config file or --preset NAME (anr presets lists them)");
  if (values.resume && values.overwrite) throw new UsageError("--resume and --overwrite exclude each other");
  if (values.dataRoot !== undefined) applyOverride(raw, `data.root=${JSON.stringify(values.dataRoot)}`);
  if (values.steps !== undefined) applyOverride(raw, `train.steps=${values.steps}`);
  for (const s of values.set ?? []) applyOverride(raw, s);
  const run = resolveRun(raw, source);
  return { run, out: values.out ?? join("runs", run.name) };
}

/** Train a run into `--out` (default runs/<name>) and say where it is. */
export async function cmdTrain(
  config: string | undefined,
  values: TrainOptions,
  args: string[],
): Promise<Outcome> {
  const { run, out } = await runConfigFrom(config, values);
  // Before the data is read (minutes, for large sets): an --out that cannot be written.
  await checkWritable(out, { flag: "--out" });
  const r = await train(run, {
    out,
    resume: values.resume === true,
    overwrite: values.overwrite === true,
    resumeCommand: resumeCommand(args),
    ...(values.budgetSeconds !== undefined ? { budgetSeconds: values.budgetSeconds } : {}),
  });
  console.log(`run folder: ${out}/`);
  return done({
    out,
    name: run.name,
    steps: r.steps,
    interrupted: r.interrupted,
    final: { psnr: r.final.psnr, ssim: r.final.ssim, images: r.final.images, physical: r.final.physical },
    seconds: r.seconds,
  });
}
