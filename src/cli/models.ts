/** `anr models`: the model zoo, the trained models shipped with the package. */
import { stat } from "node:fs/promises";
import { relative } from "node:path";
import { sizeHW } from "../model/config.js";
import { loadModel } from "../io/files.js";
import { representationSize } from "../io/tokens.js";
import { zooModels, ZOO_DIR } from "../io/zoo.js";
import { modelTask } from "./common.js";

export const MODELS_USAGE = `anr models

The model zoo: trained models shipped in the package's models/ folder (listed in models/zoo.json,
each with a model card). Their names work anywhere a model path does, e.g.
  anr encode photo.jpg --model demo-photos-anr --out tokens.safetensors
  anr eval --model demo-photos-anr          (on the test split of the preset it was trained with)`;

/** Print the zoo as a table: name, task, hyponet, input size, representation, test PSNR, file size. */
export async function cmdModels(): Promise<number> {
  const rows = [["name", "task", "kind", "input", "representation", "test PSNR", "size", "card"]];
  for (const m of await zooModels()) {
    const { config } = await loadModel(m.file);
    const [h, w] = sizeHW(config.tokenizer.args.input_size);
    const bytes = (await stat(m.file)).size;
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
  return 0;
}
