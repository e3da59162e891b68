/**
 * Encode your own image with a pretrained model, then decode it at 4× the model's input size, and
 * its middle quarter at 16× (`<out>.zoom.png`).
 *
 *   npx tsx examples/encode-decode.ts photo.jpg [out.png] [model]
 *
 * `model` is a zoo name (default demo-photos-anr, shipped with anr), a model file or a run folder.
 * The image is prepared as `anr encode` prepares it (shorter side resized, centre crop), and the
 * tokens are also written as a token file that `anr decode` reads.
 */
import { writeFile } from "node:fs/promises";
import { Anr, representationSize, savePng, tokensToBytes } from "anr/node";

const [image, out = "decoded.png", model = "demo-photos-anr"] = process.argv.slice(2);
if (!image) throw new Error("usage: encode-decode.ts IMAGE [OUT.png] [MODEL]");

using m = await Anr.load(model); // weights on the device until the end of the script
const tokens = await m.encode(image); // a path, a Buffer, ImageData-like pixels or a typed array
const img = await m.decode(tokens, { scale: 4 }); // (C, H, W) floats in [0, 1], any size
await savePng(out, img);
// Any part at any resolution: the middle quarter of the image at 16× the model's pixels.
const zoom = await m.decode(tokens, { scale: 16, region: [0.25, 0.25, 0.75, 0.75] });
await savePng(out.replace(/\.png$/i, "") + ".zoom.png", zoom);
await writeFile(out.replace(/\.png$/i, "") + ".tokens.safetensors", tokensToBytes(tokens));
console.log(
  `${image}: ${representationSize(m.config).toLocaleString("en")} floats at ${m.inputSize.join("×")} → ${out} (${img.h}×${img.w})`,
);
