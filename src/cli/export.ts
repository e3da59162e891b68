/** `anr export`: a model as files other engines run. */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { loadModel } from "../io/files.js";
import { exportOnnx } from "../io/onnx.js";
import type { WeightsChoice } from "../io/weights.js";
import { writeFileAtomic } from "../util/fs.js";
import { checkWritable, defaultOut, done, modelLabel, resolveModelFile, type Outcome } from "./common.js";

/** The formats `anr export` writes. */
export const EXPORT_FORMATS = ["onnx"] as const;

/** `anr export`'s options. */
export interface ExportOptions {
  format: (typeof EXPORT_FORMATS)[number];
  out?: string;
  weights: WeightsChoice;
}

/**
 * Export a model (a file, run folder or zoo name) as ONNX graphs: DIR/encoder.onnx and
 * DIR/decoder.onnx (docs/onnx.md), default DIR `out/export-<model>`.
 */
export async function cmdExport(model: string, values: ExportOptions): Promise<Outcome> {
  const chosen = await resolveModelFile(model, values.weights);
  const out = values.out ?? defaultOut("export", modelLabel(chosen.path));
  await checkWritable(out, { flag: "--out" });
  const { config, weights } = await loadModel(chosen.path, { weights: chosen.weights });
  const graphs = exportOnnx(config, weights, chosen.path);
  await mkdir(out, { recursive: true });
  const encoder = join(out, "encoder.onnx");
  const decoder = join(out, "decoder.onnx");
  await writeFileAtomic(encoder, graphs.encoder);
  await writeFileAtomic(decoder, graphs.decoder);
  const bytes = graphs.encoder.byteLength + graphs.decoder.byteLength;
  console.log(
    `exported ${chosen.path} (${chosen.weights} weights) as ONNX: encoder.onnx ${(graphs.encoder.byteLength / 1e6).toFixed(2)} MB, decoder.onnx ${(graphs.decoder.byteLength / 1e6).toFixed(2)} MB → ${out}`,
  );
  return done({ out, encoder, decoder, bytes, model: chosen.path, weights: chosen.weights });
}
