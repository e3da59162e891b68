/** `anr presets`: the run presets, each with whether its data is here, and the model presets. */
import { MODEL_PRESETS } from "../model/presets.js";
import { RUN_PRESETS } from "../training/run-presets.js";
import { dataStatus, done, type Outcome } from "./common.js";

/** Two sections, runs then models; each run says "runs out of the box" or what data it needs. */
export function cmdPresets(): Outcome {
  const width =
    Math.max(...[...Object.keys(RUN_PRESETS), ...Object.keys(MODEL_PRESETS)].map((k) => k.length)) + 2;
  const indent = " ".repeat(2 + width);
  const runs = Object.entries(RUN_PRESETS).map(([name, p]) => {
    const status = dataStatus(p.config);
    return status.ready
      ? { name, description: p.description, ready: true, data: status.where }
      : { name, description: p.description, ready: false, needs: status.needs };
  });
  console.log("Runs (anr train --preset NAME):");
  for (const r of runs) {
    console.log(`  ${r.name.padEnd(width)}${r.description}`);
    console.log(`${indent}${"needs" in r ? `needs DATA: ${r.needs}` : "runs out of the box"}`);
  }
  console.log("\nModels (model: { preset: NAME } in a run config):");
  const models = Object.entries(MODEL_PRESETS).map(([name, p]) => ({ name, description: p.description }));
  for (const m of models) console.log(`  ${m.name.padEnd(width)}${m.description}`);
  return done({ runs, models });
}
