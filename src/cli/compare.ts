/**
 * `anr compare`: the paper's claim, reproduced on our data — ANR, the TransINR-style MLP and IPC
 * trained with the same hyper-network, data, steps and seed; a table (markdown + JSON) and a
 * PSNR-vs-step plot.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { writeFileAtomic } from "../io/files.js";
import { resolveRunConfig } from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import type { TrainResult } from "../training/loop.js";
import { train } from "../training/trainer.js";
import { writeLinePlot } from "../util/plot.js";
import { countParams } from "../model/params.js";
import { representationSize } from "../io/tokens.js";
import { globe32x64 } from "../model/presets.js";
import type { HyperNetworkConfigInput } from "../model/config.js";
import type { PhysicalError } from "../eval/evaluate.js";
import { UsageError } from "../util/errors.js";

export const COMPARE_USAGE = `anr compare --preset fmnist|demo|winds [--steps N] [--set KEY=VALUE] [--out DIR] [--overwrite]

Trains ANR, the TransINR-style MLP and IPC with the same data, steps, seed and hyper-network,
then writes compare.md / compare.json (final test PSNR, SSIM, time, sizes; physical RMSE per
channel for fields) and compare.png. "winds" is the winds-demo field run (ferret-datasets).
Run folders that hold runs are refused unless --overwrite replaces them.`;

/** Per comparison: the run preset, and the model (a preset name or a config) of each contender. */
const COMPARISONS: Record<string, { run: string; models: Record<string, string | HyperNetworkConfigInput> }> =
  {
    fmnist: {
      run: "fmnist-anr",
      models: { ANR: "small32-anr", "MLP (TransINR)": "small32-mlp", IPC: "small32-ipc" },
    },
    demo: { run: "demo", models: { ANR: "tiny32-anr", "MLP (TransINR)": "tiny32-mlp", IPC: "tiny32-ipc" } },
    winds: {
      run: "winds-demo",
      models: {
        ANR: globe32x64("ANR", 2),
        "MLP (TransINR)": globe32x64("HypoMlp", 2),
        IPC: globe32x64("HypoMlpIPC", 2),
      },
    },
  };

export async function cmdCompare(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: "string", default: "fmnist" },
      steps: { type: "string" },
      set: { type: "string", multiple: true },
      out: { type: "string" },
      overwrite: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(COMPARE_USAGE, 0);
  const which = values.preset!;
  const comparison = COMPARISONS[which];
  if (!comparison) throw new UsageError(`--preset must be one of ${Object.keys(COMPARISONS).join(", ")}`);
  const out = values.out ?? join("runs", `compare-${which}`);
  await mkdir(out, { recursive: true });
  const rows: {
    model: string;
    preset: string;
    result: TrainResult;
    params: number;
    repr: number;
    physical: PhysicalError[];
  }[] = [];
  for (const [label, model] of Object.entries(comparison.models)) {
    const raw = runPreset(comparison.run) as Record<string, unknown>;
    const modelPreset = typeof model === "string" ? model : `${which}-${label.split(" ")[0]!.toLowerCase()}`;
    applyOverride(raw, `model=${JSON.stringify(typeof model === "string" ? { preset: model } : model)}`);
    applyOverride(raw, `name=${JSON.stringify(`${which}-${modelPreset}`)}`);
    if (values.steps) applyOverride(raw, `train.steps=${values.steps}`);
    for (const s of values.set ?? []) applyOverride(raw, s);
    const run = resolveRunConfig(raw, `compare ${label}`);
    console.log(`\n== ${label} (${modelPreset})`);
    const result = await train(run, { out: join(out, modelPreset), overwrite: values.overwrite });
    rows.push({
      model: label,
      preset: modelPreset,
      result,
      params: countParams(run.model),
      repr: representationSize(run.model),
      physical: result.final.physical ?? [],
    });
  }
  const steps = rows[0]!.result.steps;
  const physCols = rows[0]!.physical.map((p) => `RMSE ${p.name}${p.units ? ` (${p.units})` : ""}`);
  const header = `| model | test PSNR (dB) | SSIM | ${physCols.map((c) => `${c} | `).join("")}floats per instance | parameters | train time (s) |\n|---|---|---|${physCols.map(() => "---|").join("")}---|---|---|`;
  const lines = rows.map(
    (r) =>
      `| ${r.model} | ${r.result.final.psnr.toFixed(2)} | ${r.result.final.ssim.toFixed(3)} | ${r.physical.map((p) => `${p.rmse.toFixed(3)} | `).join("")}${r.repr.toLocaleString("en")} | ${r.params.toLocaleString("en")} | ${r.result.seconds.toFixed(0)} |`,
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
        physical: r.physical,
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
