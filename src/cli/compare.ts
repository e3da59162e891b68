/**
 * `anr compare`: the paper's claim, reproduced on our data — ANR, the TransINR-style MLP and IPC
 * trained with the same hyper-network, data, steps and seed; a table (markdown + JSON) and a
 * PSNR-vs-step plot.
 */
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { writeFileAtomic } from "../io/files.js";
import type { RunConfigInput } from "../training/run-config.js";
import { applyOverride, runPreset } from "../training/run-presets.js";
import type { TrainResult } from "../training/loop.js";
import { train } from "../training/trainer.js";
import { writeLinePlot } from "../util/plot.js";
import { countParams } from "../model/params.js";
import { representationSize } from "../io/tokens.js";
import { globe32x64 } from "../model/presets.js";
import type { HyperNetworkConfigInput } from "../model/config.js";
import type { PhysicalError } from "../eval/evaluate.js";
import { InputError, UsageError } from "../util/errors.js";
import { dataStatus, done, resolveRun, type Outcome } from "./common.js";

/** Per comparison: the run preset, and the model (a preset name or a config) of each contender. */
export const COMPARISONS: Record<
  string,
  { run: string; models: Record<string, string | HyperNetworkConfigInput> }
> = {
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

/** `anr compare`'s options. */
export interface CompareOptions {
  preset: string;
  steps?: number;
  set?: string[];
  out?: string;
  overwrite?: boolean;
}

/**
 * ANR, the TransINR-style MLP and IPC trained with the same data, steps, seed and hyper-network
 * into `--out` (default runs/compare-<preset>), then a table and a plot. Every run config is
 * resolved, and the data looked for, before anything is trained or written.
 */
export async function cmdCompare(values: CompareOptions): Promise<Outcome> {
  const which = values.preset;
  const comparison = COMPARISONS[which];
  if (!comparison) throw new UsageError(`--preset must be one of ${Object.keys(COMPARISONS).join(", ")}`);
  const out = values.out ?? join("runs", `compare-${which}`);
  const runs = Object.entries(comparison.models).map(([label, model]) => {
    const raw = runPreset(comparison.run) as Record<string, unknown>;
    const modelPreset = typeof model === "string" ? model : `${which}-${label.split(" ")[0]!.toLowerCase()}`;
    applyOverride(raw, `model=${JSON.stringify(typeof model === "string" ? { preset: model } : model)}`);
    applyOverride(raw, `name=${JSON.stringify(`${which}-${modelPreset}`)}`);
    if (values.steps !== undefined) applyOverride(raw, `train.steps=${values.steps}`);
    for (const s of values.set ?? []) applyOverride(raw, s);
    return { label, modelPreset, run: resolveRun(raw, `compare ${label}`), raw };
  });
  const data = dataStatus(runs[0]!.raw as RunConfigInput);
  if (!data.ready) throw new InputError(`compare --preset ${which}`, `needs data: ${data.needs}`);
  await mkdir(out, { recursive: true });
  const rows: {
    model: string;
    preset: string;
    result: TrainResult;
    params: number;
    repr: number;
    physical: PhysicalError[];
  }[] = [];
  for (const { label, modelPreset, run } of runs) {
    console.log(`\n== ${label} (${modelPreset})`);
    const result = await train(run, { out: join(out, modelPreset), overwrite: values.overwrite === true });
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
  const md = `Same data, ${steps} steps, seed, optimiser and hyper-network for all three (\`anr compare --preset ${which}${values.steps !== undefined ? ` --steps ${values.steps}` : ""}\`).\n\n${header}\n${lines.join("\n")}\n`;
  await writeFileAtomic(join(out, "compare.md"), md);
  const table = rows.map((r) => ({
    model: r.model,
    preset: r.preset,
    psnr: r.result.final.psnr,
    ssim: r.result.final.ssim,
    curve: r.result.curve,
    seconds: r.result.seconds,
    physical: r.physical,
    parameters: r.params,
    floats_per_instance: r.repr,
  }));
  await writeFileAtomic(join(out, "compare.json"), JSON.stringify(table, null, 2) + "\n");
  await writeLinePlot(join(out, "compare.png"), {
    title: `test PSNR vs step (${which})`,
    xLabel: "step",
    yLabel: "PSNR (dB)",
    series: rows.map((r) => ({ name: r.model, points: r.result.curve })),
  });
  console.log(`\n${md}\nwrote ${out}/compare.md, compare.json, compare.png`);
  return done({
    out,
    preset: which,
    steps,
    rows: table,
    files: ["compare.md", "compare.json", "compare.png"].map((f) => join(out, f)),
  });
}
