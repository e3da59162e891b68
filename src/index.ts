/**
 * anr — attention-based implicit neural representations (ANR, ECCV 2024) in TypeScript.
 *
 * The portable core: it imports no Node built-in and no native package, so it runs unchanged in
 * Node and in a browser (jax-js on wasm or WebGPU). Start with the facade, {@link Anr}:
 *
 *   import { Anr } from "anr";
 *   using m = await Anr.load(await (await fetch("model.safetensors")).arrayBuffer()); // or a URL
 *   const tokens = await m.encode(imageData);              // ImageData, typed arrays, HostImage
 *   const img = await m.decode(tokens, { size: [512, 512] }); // (C, H, W) floats in [0, 1]
 *   ctx.putImageData(new ImageData(toPixels(img).data, img.w, img.h), 0, 0);
 *
 * Below it, the model's functions for step-by-step use and training (hyperNetwork,
 * createImageDecoder, …). Files, datasets, the trainer and a facade that takes paths, run folders
 * and zoo names are in "anr/node" (which re-exports all of this); the model's building blocks are
 * in "anr/lowlevel".
 */
export {
  Anr,
  type ModelTask,
  type ModelSource,
  type LoadOptions,
  type EncodeOptions,
  type DecodeOptions,
  type Camera,
  type PosedImage,
  type RenderOptions,
} from "./api/model.js";
export {
  toPixels,
  type ImageInput,
  type PixelImage,
  type ShapedArray,
  type PixelArray,
} from "./api/input.js";
export { initBackend, type BackendArgs, type BackendInfo } from "./backend/index.js";
export { AnrError, InputError, UsageError, CheckFailed } from "./util/errors.js";
export {
  HyperNetworkConfig,
  parseHyperNetworkConfig,
  ConfigError,
  type HyperNetworkConfigInput,
  type HyponetKind,
} from "./model/config.js";
export { MODEL_PRESETS, modelPreset } from "./model/presets.js";
export { hyperNetwork, type Params } from "./model/model.js";
export { initHostParams, toDevice, toHost, disposeParams } from "./model/params.js";
export {
  createImageDecoder,
  createGridDecoder,
  createViewRenderer,
  type DecodeRegion,
} from "./model/tasks.js";
export {
  createImageTrainStep,
  createNerfTrainStep,
  type TrainState,
  type StepMetrics,
} from "./training/step.js";
export { adamInit, REFERENCE_ADAM, REFERENCE_EMA, type AdamArgs, type EmaArgs } from "./training/optim.js";
export {
  parseSafetensors,
  serializeSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  type HostTensor,
} from "./io/safetensors.js";
export {
  modelFromBytes,
  modelToBytes,
  weightsFromBytes,
  WeightsMismatchError,
  NonFiniteWeightsError,
  type ModelFile,
  type WeightsChoice,
} from "./io/weights.js";
export { tokensToBytes, tokensFromBytes, representationSize, type Tokens } from "./io/tokens.js";
export type { HostImage } from "./util/host.js";
export { ssim } from "./eval/ssim.js";
