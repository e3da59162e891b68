/** `anr models`: the model zoo, the trained models shipped with the package. */
import { stat } from "node:fs/promises";
import { relative } from "node:path";
import { sizeHW } from "../model/config.js";
import { loadModel } from "../io/files.js";
import { representationSize } from "../io/tokens.js";
import { zooModels, ZOO_DIR } from "../io/zoo.js";
import { done, modelTask, type Outcome } from "./common.js";

/** Print the zoo as a table: name, task, hyponet, input size, representation, test PSNR, file size. */
export async function cmdModels(): Promise<Outcome> {
  const rows = [["name", "task", "kind", "input", "representation", "test PSNR", "size", "card"]];
  const models: Record<string, unknown>[] = [];
  for (const m of await zooModels()) {
    const { config } = await loadModel(m.file);
    const [h, w] = sizeHW(config.tokenizer.args.input_size);
    const bytes = (await stat(m.file)).size;
    models.push({
      ...m,
      task: modelTask(config),
      hyponet: config.hyponet.name,
      input_size: [h, w],
      floats_per_instance: representationSize(config),
      bytes,
    });
    rows.push([
      m.name,
      modelTask(config),
      config.hyponet.name,
      `${h}×${w}`,
      `${representationSize(config).toLocaleString("en")} floats`,
      `${m.test.psnr.toFixed(2)} dB (${m.test.split})`,
      `${(bytes / 1e6).toFixed(1)} MB`,
      relative(process.cwd(), m.card) || m.card,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    );
  console.log(`(${ZOO_DIR})`);
  return done({ models, folder: ZOO_DIR });
}
