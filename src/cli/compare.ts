/**
 * `anr compare`: the paper's claim, reproduced on our data — ANR, the TransINR-style MLP and IPC
 * trained with the same hyper-network, data, steps and seed; a table (markdown + JSON) and a
 * PSNR-vs-step plot.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { writeFileAtomic } from "../io/safetensors.js";
import { resolveRunConfig } from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import { train, type TrainResult } from "../training/trainer.js";
import { writeLinePlot } from "../util/plot.js";
import { countParams } from "../model/params.js";
import { representationSize } from "./codec.js";
import { UsageError } from "./usage.js";

export const COMPARE_USAGE = `anr compare --preset fmnist|demo [--steps N] [--set KEY=VALUE] [--out DIR]

Trains ANR, the TransINR-style MLP and IPC with the same data, steps, seed and hyper-network,
then writes compare.md / compare.json (final test PSNR, SSIM, time, sizes) and compare.png.`;

const MODELS: Record<string, Record<string, string>> = {
  fmnist: { ANR: "small32-anr", "MLP (TransINR)": "small32-mlp", IPC: "small32-ipc" },
  demo: { ANR: "tiny32-anr", "MLP (TransINR)": "tiny32-mlp", IPC: "tiny32-ipc" },
};

export async function cmdCompare(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: "string", default: "fmnist" },
      steps: { type: "string" },
      set: { type: "string", multiple: true },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(COMPARE_USAGE, 0);
  const which = values.preset!;
  const models = MODELS[which];
  if (!models) throw new UsageError(`--preset must be one of ${Object.keys(MODELS).join(", ")}`);
  const out = values.out ?? join("runs", `compare-${which}`);
  await mkdir(out, { recursive: true });
  const rows: { model: string; preset: string; result: TrainResult; params: number; repr: number }[] = [];
  for (const [label, modelPreset] of Object.entries(models)) {
    const raw = runPreset(which === "fmnist" ? "fmnist-anr" : "demo") as Record<string, unknown>;
    applyOverride(raw, `model=${JSON.stringify({ preset: modelPreset })}`);
    applyOverride(raw, `name=${JSON.stringify(`${which}-${modelPreset}`)}`);
    if (values.steps) applyOverride(raw, `train.steps=${values.steps}`);
    for (const s of values.set ?? []) applyOverride(raw, s);
    const run = resolveRunConfig(raw, `compare ${label}`);
    console.log(`\n== ${label} (${modelPreset})`);
    const result = await train(run, { out: join(out, modelPreset) });
    rows.push({
      model: label,
      preset: modelPreset,
      result,
      params: countParams(run.model),
      repr: representationSize(run.model),
    });
  }
  const steps = rows[0]!.result.steps;
  const header = `| model | test PSNR (dB) | SSIM | floats per instance | parameters | train time (s) |\n|---|---|---|---|---|---|`;
  const lines = rows.map(
    (r) =>
      `| ${r.model} | ${r.result.final.psnr.toFixed(2)} | ${r.result.final.ssim.toFixed(3)} | ${r.repr.toLocaleString("en")} | ${r.params.toLocaleString("en")} | ${r.result.seconds.toFixed(0)} |`,
  );
  const md = `Same data, ${steps} steps, seed, optimiser and hyper-network for all three (\`anr compare --preset ${which}${values.steps ? ` --steps ${values.steps}` : ""}\`).\n\n${header}\n${lines.join("\n")}\n`;
  await writeFileAtomic(join(out, "compare.md"), md);
  await writeFileAtomic(
    join(out, "compare.json"),
    JSON.stringify(
      rows.map((r) => ({
        model: r.model,
        preset: r.preset,
        psnr: r.result.final.psnr,
        ssim: r.result.final.ssim,
        curve: r.result.curve,
        seconds: r.result.seconds,
        parameters: r.params,
        floats_per_instance: r.repr,
      })),
      null,
      2,
    ) + "\n",
  );
  await writeLinePlot(join(out, "compare.png"), {
    title: `test PSNR vs step (${which})`,
    xLabel: "step",
    yLabel: "PSNR (dB)",
    series: rows.map((r) => ({ name: r.model, points: r.result.curve })),
  });
  console.log(`\n${md}\nwrote ${out}/compare.md, compare.json, compare.png`);
  return 0;
}
