/**
 * anr — attention-based implicit neural representations (ANR, ECCV 2024) in TypeScript.
 *
 * The portable core: model configs and presets, the model family, its tasks (image decoding at
 * any resolution, view rendering), the optimiser and training steps, and model files as bytes.
 * It imports no Node built-in and no native package, so it runs unchanged in Node and in a
 * browser (jax-js on wasm or WebGPU). Files, datasets, the trainer and the CLI's pieces are in
 * "anr/node" (src/node.ts), which also re-exports all of this.
 *
 *   import { initBackend, modelFromBytes, toDevice, hyperNetwork, createImageDecoder } from "anr";
 *   await initBackend();                                   // jax-js on wasm (or webgpu)
 *   const { config, weights } = modelFromBytes(bytes);     // bytes of a .safetensors model file
 *   const P = toDevice(weights);
 *   const tokens = hyperNetwork(P, config, images);        // R-tokens, (B, T, hidden)
 *   const rgb = await createImageDecoder(config)(P, tokens, B, 512, 512);
 */
export {
  initBackend,
  readF32,
  readScalar,
  wasmHeapBytes,
  type BackendArgs,
  type BackendInfo,
} from "./backend/index.js";
export * from "./model/config.js";
export {
  coordGrid,
  peFrequencies,
  positionalEncoding,
  jitterCoords,
  hyperNetwork,
  hyponet,
  anrHyponet,
  mlpHyponet,
  thresholdedSoftmax,
  foldAttention,
  setAttentionForm,
  type AttentionForm,
  transformerEncoder,
  transformerDecoder,
  weightHead,
  generatedParams,
  encodingLayout,
  patchify,
  inputSize,
  type Params,
  type HypoParams,
  type Taps,
  type SupportViews,
  type GeneratedParam,
  type EncodingLayout,
} from "./model/model.js";
export {
  paramSpecs,
  initHostParams,
  toDevice,
  toHost,
  countParams,
  disposeParams,
  refParams,
  type ParamSpec,
  type Init,
} from "./model/params.js";
export {
  imageObjective,
  predictImage,
  createImageDecoder,
  createImageEvalStep,
  createViewRenderer,
  nerfObjective,
  renderRays,
  type ImageOutput,
  type NerfOutput,
  type RayBatch,
} from "./model/tasks.js";
export { posesToRays } from "./rendering/rays.js";
export { composite, rayPoints, sampleDepths, jitterDepths, type Composite } from "./rendering/volume.js";
export * from "./training/optim.js";
export * from "./training/step.js";
export * from "./io/safetensors.js";
export * from "./io/weights.js";
export { MODEL_PRESETS, modelPreset } from "./model/presets.js";
export { Rng } from "./util/rng.js";
export { ssim } from "./eval/ssim.js";
export { sphereCoords } from "./model/model.js";
