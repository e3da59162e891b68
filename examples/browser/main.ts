/**
 * anr in a web page: pick an image, see it encoded by the model and decoded at 8× its input size.
 * Only the portable entry ("anr") is used: no Node built-in, jax-js on wasm (or WebGPU).
 *
 * Bundle it (any bundler; esbuild shown) and serve this folder with the model file beside it:
 *   npx esbuild examples/browser/main.ts --bundle --format=esm --outfile=examples/browser/main.js
 *   cp node_modules/anr/models/demo-photos-anr.safetensors examples/browser/
 *   npx http-server examples/browser      (any static server)
 */
import { Anr, toPixels } from "anr";

const status = document.querySelector<HTMLElement>("#status")!;
const input = document.querySelector<HTMLInputElement>("#file")!;
const canvas = document.querySelector<HTMLCanvasElement>("#out")!;

status.textContent = "loading the model…";
const model = await Anr.load(new URL("./demo-photos-anr.safetensors", location.href));
status.textContent = `${model.task} model, input ${model.inputSize.join("×")}: pick an image`;

input.addEventListener("change", async () => {
  const file = input.files?.[0];
  if (!file) return;
  // The browser decodes the file; the model prepares the pixels (shorter side, centre crop).
  const bitmap = await createImageBitmap(file);
  const scratch = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d")!;
  scratch.drawImage(bitmap, 0, 0);
  const pixels = scratch.getImageData(0, 0, bitmap.width, bitmap.height); // ImageData is an input
  const t0 = performance.now();
  const tokens = await model.encode(pixels);
  const img = await model.decode(tokens, { scale: 8 });
  const rgba = toPixels(img);
  canvas.width = rgba.width;
  canvas.height = rgba.height;
  canvas.getContext("2d")!.putImageData(new ImageData(rgba.data, rgba.width, rgba.height), 0, 0);
  status.textContent = `${file.name}: encoded and decoded at ${img.h}×${img.w} in ${(performance.now() - t0).toFixed(0)} ms`;
});
