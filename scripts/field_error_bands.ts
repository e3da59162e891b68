/**
 * Where on the globe a field model errs: RMSE in physical units over the whole test split, and
 * separately at the date-line seam (the first and last columns, which a plain grid treats as far
 * apart), near the poles (the top and bottom rows) and elsewhere. Used for the README's comparison
 * of plain-grid and sphere coordinates.
 *
 *   npx tsx scripts/field_error_bands.ts RUN_DIR... [--weights online|ema] [--band 2]
 */
// First: the Node worker pool must exist before jax-js is evaluated (see src/node-threads.ts).
import "../src/node-threads.js";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initBackend } from "../src/backend/index.js";
import { openFieldDataset } from "../src/data/fields.js";
import { evaluateImages } from "../src/eval/evaluate.js";
import { loadModel } from "../src/io/files.js";
import { disposeParams, toDevice } from "../src/model/params.js";
import { resolveRunConfig } from "../src/training/run-config.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { weights: { type: "string", default: "online" }, band: { type: "string", default: "2" } },
});
const band = Number(values.band);
await initBackend();
console.log(
  `| run | channel | RMSE | lat-weighted RMSE | seam (${band} columns each side) | poles (${band} rows each side) | elsewhere |`,
);
console.log("|---|---|---|---|---|---|---|");
for (const dir of positionals) {
  const run = resolveRunConfig(JSON.parse(await readFile(join(dir, "config.json"), "utf8")), dir);
  if (run.task !== "field") throw new Error(`${dir}: not a field run`);
  const file = values.weights === "ema" ? "model-ema.safetensors" : "model.safetensors";
  const model = await loadModel(join(dir, file));
  const channels = model.config.channels!;
  const ds = await openFieldDataset(run.data, run.eval.split, channels);
  const P = toDevice(model.weights);
  const r = await evaluateImages(P, model.config, ds, {
    batchSize: run.eval.batch_size,
    clamp: false,
    keep: ds.length,
    channels,
    latitudes: ds.latitudes,
  });
  disposeParams(P);
  ds.close();
  const [h, w] = ds.size;
  channels.forEach((ch, k) => {
    const acc = { all: [0, 0], seam: [0, 0], poles: [0, 0], rest: [0, 0] };
    for (const { input, pred } of r.kept)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const i = (k * h + y) * w + x;
          const e2 = ((pred.data[i]! - input.data[i]!) / ch.scale) ** 2;
          const seam = x < band || x >= w - band;
          const pole = y < band || y >= h - band;
          for (const key of [
            "all",
            seam ? "seam" : null,
            pole ? "poles" : null,
            !seam && !pole ? "rest" : null,
          ]) {
            if (key === null) continue;
            const a = acc[key as keyof typeof acc];
            a[0]! += e2;
            a[1]! += 1;
          }
        }
    const rmse = (a: number[]) => Math.sqrt(a[0]! / a[1]!).toFixed(3);
    console.log(
      `| ${run.name} | ${ch.name} [${ch.units}] | ${rmse(acc.all)} | ${r.physical?.[k]?.rmseLatWeighted?.toFixed(3) ?? "–"} | ${rmse(acc.seam)} | ${rmse(acc.poles)} | ${rmse(acc.rest)} |`,
    );
  });
}
