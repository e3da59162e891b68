/**
 * anr — attention-based implicit neural representations (ANR, ECCV 2024) in TypeScript.
 *
 * The portable core: what a user needs to load a model, turn images or posed views into R-tokens,
 * decode them at any resolution or render new views, and train step by step. It imports no Node
 * built-in and no native package, so it runs unchanged in Node and in a browser (jax-js on wasm or
 * WebGPU). Files, datasets and the trainer are in "anr/node" (which re-exports all of this); the
 * model's building blocks are in "anr/lowlevel".
 *
 *   import { initBackend, modelFromBytes, toDevice, hyperNetwork, createImageDecoder } from "anr";
 *   await initBackend();                                   // jax-js on wasm (or webgpu)
 *   const { config, weights } = modelFromBytes(bytes);     // bytes of a .safetensors model file
 *   const P = toDevice(weights);
 *   const tokens = hyperNetwork(P, config, images);        // R-tokens, (B, T, hidden)
 *   const rgb = await createImageDecoder(config)(P, tokens, B, 512, 512);
 */
export { initBackend, readF32, type BackendArgs, type BackendInfo } from "./backend/index.js";
export { AnrError, InputError, UsageError, CheckFailed } from "./util/errors.js";
export {
  HyperNetworkConfig,
  parseHyperNetworkConfig,
  sizeHW,
  ConfigError,
  type HyperNetworkConfigInput,
  type HyponetKind,
} from "./model/config.js";
export { MODEL_PRESETS, modelPreset } from "./model/presets.js";
export { hyperNetwork, generatedParams, type Params, type GeneratedParam } from "./model/model.js";
export { initHostParams, toDevice, toHost, countParams, disposeParams } from "./model/params.js";
export {
  createImageDecoder,
  createViewRenderer,
  createImageEvalStep,
  imageObjective,
  nerfObjective,
  type ImageOutput,
  type NerfOutput,
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
export {
  tokensToBytes,
  tokensFromBytes,
  isTokenFile,
  TOKENS_METADATA_KEY,
  MISSING_TENSOR,
  representationSize,
  weightsFingerprint,
  type Tokens,
} from "./io/tokens.js";
export { Rng } from "./util/rng.js";
export { viridis, falseColour, finiteRange } from "./util/colormap.js";
export type { HostImage } from "./util/host.js";
export { ssim } from "./eval/ssim.js";
