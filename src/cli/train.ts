/** `anr train`, `anr presets`. */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { readConfigFile } from "../io/config-file.js";
import { resolveRunConfig, type ValidatedRunConfig } from "../training/run-config.js";
import { applyOverride, runPreset, RUN_PRESETS } from "../training/run-presets.js";
import { MODEL_PRESETS } from "../model/presets.js";
import type { TrainResult } from "../training/loop.js";
import { train } from "../training/trainer.js";
import { UsageError } from "../util/errors.js";

export const TRAIN_USAGE = `anr train CONFIG.yaml|CONFIG.json [options]
anr train --preset NAME [options]

Options:
  --preset NAME        start from a run preset (anr presets lists them)
  --data-root PATH     set data.root (a folder, or a .npy/.nc file for field data)
  --steps N            set train.steps
  --set KEY=VALUE      set any field, e.g. --set train.lr=1e-4 --set model.preset=small32-ipc
  --out DIR            run folder (default runs/<name>); a folder holding a run is refused
                       unless --resume or --overwrite
  --resume             continue the run in --out from its checkpoint, with the config stored there
                       (only train.steps and the log/eval/sample/checkpoint cadence may change)
  --overwrite          replace the run in --out (the old one is deleted only once the new one has
                       written its first checkpoint)

Ctrl-C (SIGINT) or SIGTERM stops after the current step with a checkpoint (exit 130); --resume
continues it.

Examples:
  anr train --preset fmnist-anr --out runs/fmnist-anr
  anr train --preset celeba128-anr-d5 --data-root /data/celeba --out runs/celeba-anr
  anr train --preset era5-netcdf-anr --data-root /data/era5_t2m.nc --out runs/era5
  anr train --preset winds-demo --out runs/winds    # real global winds (apt install ferret-datasets)
  anr train --preset fmnist-anr --out runs/fmnist-anr --resume`;

/** Build the resolved run config from the command line. */
export async function runConfigFromArgs(
  argv: string[],
): Promise<{ run: ValidatedRunConfig; out: string; resume: boolean; overwrite: boolean }> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      preset: { type: "string" },
      "data-root": { type: "string" },
      steps: { type: "string" },
      set: { type: "string", multiple: true },
      out: { type: "string" },
      resume: { type: "boolean", default: false },
      overwrite: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(TRAIN_USAGE, 0);
  let raw: Record<string, unknown>;
  let source: string;
  if (values.preset) {
    if (positionals.length) throw new UsageError("give a config file or --preset, not both");
    raw = runPreset(values.preset) as Record<string, unknown>;
    source = `preset ${values.preset}`;
  } else if (positionals.length === 1) {
    source = positionals[0]!;
    raw = (await readConfigFile(source, "run config")) as Record<string, unknown>;
  } else throw new UsageError(`anr train: give a config file or --preset\n\n${TRAIN_USAGE}`);
  if (values["data-root"] === "") throw new UsageError("--data-root: expected a path, got an empty string");
  if (values.resume && values.overwrite) throw new UsageError("--resume and --overwrite exclude each other");
  if (values["data-root"] !== undefined)
    applyOverride(raw, `data.root=${JSON.stringify(values["data-root"])}`);
  if (values.steps) applyOverride(raw, `train.steps=${values.steps}`);
  for (const s of values.set ?? []) applyOverride(raw, s);
  const run = resolveRunConfig(raw, source);
  if (values.out === "") throw new UsageError("--out: expected a folder, got an empty string");
  return {
    run,
    out: values.out ?? join("runs", run.name),
    resume: values.resume,
    overwrite: values.overwrite,
  };
}

/** The command line that continues the run `argv` started: the same with --resume, without --overwrite. */
function resumeCommand(argv: string[]): string {
  const args = argv.filter((a) => a !== "--overwrite" && a !== "--resume");
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
  return ["anr", "train", ...args, "--resume"].map(quote).join(" ");
}

export async function cmdTrain(argv: string[]): Promise<TrainResult> {
  const { run, out, resume, overwrite } = await runConfigFromArgs(argv);
  return train(run, { out, resume, overwrite, resumeCommand: resumeCommand(argv) });
}

export function cmdPresets(): number {
  console.log("Run presets (anr train --preset NAME):");
  for (const [k, v] of Object.entries(RUN_PRESETS)) console.log(`  ${k.padEnd(24)} ${v.description}`);
  console.log("\nModel presets (model: { preset: NAME } in a run config):");
  for (const [k, v] of Object.entries(MODEL_PRESETS)) console.log(`  ${k.padEnd(24)} ${v.description}`);
  return 0;
}
