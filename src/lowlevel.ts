/**
 * anr's building blocks, for research code that takes the model apart: the layers, the hyponet
 * kinds, positional encoding, tokenizers, the transformer, the weight heads, volume rendering,
 * parameter declarations and the optimiser's pieces. Portable like "anr"; imported as
 * "anr/lowlevel". The names follow the paper and the authors' code (docs/conventions.md).
 */
export { setAttentionForm, foldAttention, type AttentionForm } from "./model/hyponets/anr.js";
export {
  coordGrid,
  peFrequencies,
  positionalEncoding,
  jitterCoords,
  sphereCoords,
  transformerEncoder,
  transformerDecoder,
  patchify,
  patchCount,
  imgTokenizer,
  nvsTokenizer,
  hyponetOf,
  hyponet,
  anrHyponet,
  mlpHyponet,
  ipcHyponet,
  thresholdedSoftmax,
  weightHead,
  encodingLayout,
  inputSize,
  linear,
  layerNorm,
  gelu,
  attention,
  feedForward,
  tap,
  type Taps,
  type HypoParams,
  type Hyponet,
  type EncodingLayout,
  type SupportViews,
} from "./model/model.js";
export { paramSpecs, refParams, type ParamSpec, type Init } from "./model/params.js";
export {
  attentionMaps,
  attentionWeights,
  predictImage,
  renderRays,
  viewsToDevice,
  type AttentionMaps,
  type RayBatch,
} from "./model/tasks.js";
export { lookAtPose, posesToRays } from "./rendering/rays.js";
export { composite, rayPoints, sampleDepths, jitterDepths, type Composite } from "./rendering/volume.js";
export * from "./training/optim.js";
export {
  createTrainStep,
  queryRays,
  type TrainStepArgs,
  type StepBatch,
  type Objective,
  type ImageBatch,
  type NerfBatch,
} from "./training/step.js";
export { fromReferenceCheckpoint, validateWeights, CONFIG_METADATA_KEY } from "./io/weights.js";
export { CHECKSUM_METADATA_KEY } from "./io/safetensors.js";
export { readScalar, wasmHeapBytes, preciseLog10 } from "./backend/index.js";
