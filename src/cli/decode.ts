/** `anr decode`: images or fields at any resolution from their tokens. */
import { parseArgs } from "node:util";
import { mkdir } from "node:fs/promises";
import { join, basename, extname } from "node:path";
import { initBackend } from "../backend/index.js";
import { numpy as np } from "../backend/jax.js";
import { denormalizeField } from "../data/fields.js";
import { savePng, type HostImage } from "../data/image.js";
import { writeNetcdf3, writeNpy } from "../io/array-files.js";
import { loadModel } from "../io/files.js";
import { readTokenFile } from "../io/tokens.js";
import type { HypoParams } from "../model/model.js";
import { disposeParams, toDevice } from "../model/params.js";
import { createImageDecoder } from "../model/tasks.js";
import { falseColour } from "../util/colormap.js";
import { UsageError } from "../util/errors.js";
import { parseSize, parseWeightsChoice, resolveModelFile } from "./common.js";

export const DECODE_USAGE = `anr decode tokens.safetensors --model MODEL.safetensors|RUN_DIR --size HxW [--out DIR] [--format npy|nc]
           [--weights online|ema]

Decodes each encoded image at any resolution (super-resolution beyond the training size) and
writes PNGs <name>.<H>x<W>.png. For field models: <name>.<H>x<W>.npy in physical units (float32,
(H, W) for one channel, else (C, H, W)), or with --format nc a NetCDF-3 file with one variable
per channel (its name and units, dims y, x), and a false-colour preview per channel,
<name>.<H>x<W>[.<channel>].png. Decode with the weights that encoded (--weights ema for tokens made
with --weights ema).`;

export async function cmdDecode(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      size: { type: "string" },
      out: { type: "string", default: "." },
      weights: { type: "string", default: "online" },
      format: { type: "string", default: "npy" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(DECODE_USAGE, 0);
  if (positionals.length !== 1 || !values.model || !values.size) throw new UsageError(DECODE_USAGE);
  if (values.format !== "npy" && values.format !== "nc")
    throw new UsageError(`--format ${values.format}: expected npy or nc`);
  const [h, w] = parseSize(values.size);
  await initBackend();
  const chosen = await resolveModelFile(values.model, parseWeightsChoice(values.weights));
  const model = await loadModel(chosen.path, { weights: chosen.weights });
  const tokens = await readTokenFile(positionals[0]!);
  if (JSON.stringify(tokens.config) !== JSON.stringify(model.config))
    throw new UsageError(
      `${positionals[0]} was encoded by a model with a different config than ${values.model}`,
    );
  const names = tokens.names;
  const gen: HypoParams = {};
  for (const [name, t] of tokens.tensors) gen[name] = np.array(t.data, { shape: t.shape });
  const b = tokens.tensors.values().next().value!.shape[0]!;
  const P = toDevice(model.weights);
  const decoder = createImageDecoder(model.config);
  const t0 = performance.now();
  const rgb = await decoder(P, gen, b, h, w);
  const dt = (performance.now() - t0) / 1000;
  decoder.dispose();
  disposeParams(P);
  disposeParams(gen);
  await mkdir(values.out, { recursive: true });
  const c = model.config.hyponet.args.out_dim;
  const channels = model.config.channels;
  for (let i = 0; i < b; i++) {
    const data = rgb.slice(i * c * h * w, (i + 1) * c * h * w).map((x) => (x + 1) / 2);
    const name = basename(names[i] ?? `image${i}`, extname(names[i] ?? ""));
    const stem = join(values.out, `${name}.${h}x${w}`);
    if (!channels) {
      await savePng(`${stem}.png`, { c, h, w, data });
      continue;
    }
    const field: HostImage = { c, h, w, data: denormalizeField(data, channels, h * w) };
    if (values.format === "nc")
      await writeNetcdf3(`${stem}.nc`, {
        dims: [
          { name: "y", size: h },
          { name: "x", size: w },
        ],
        variables: channels.map((ch, k) => ({
          name: ch.name,
          dims: ["y", "x"],
          dtype: "f4" as const,
          data: field.data.subarray(k * h * w, (k + 1) * h * w),
          attrs: ch.units ? { units: ch.units } : ({} as Record<string, string>),
        })),
        attrs: {
          source: `anr decode of ${basename(positionals[0]!)} with ${basename(values.model)}`,
          Conventions: "CF-1.8",
        },
      });
    else await writeNpy(`${stem}.npy`, { shape: c === 1 ? [h, w] : [c, h, w], data: field.data });
    for (let k = 0; k < c; k++)
      await savePng(`${stem}${c === 1 ? "" : `.${channels[k]!.name}`}.png`, falseColour(field, k));
  }
  console.log(
    `decoded ${b} image(s) at ${h}×${w} in ${dt.toFixed(2)} s (${((b * h * w) / dt).toFixed(0)} px/s) → ${values.out}`,
  );
  return 0;
}
