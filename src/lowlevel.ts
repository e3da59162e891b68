/**
 * anr's building blocks, for research code that takes the model apart: the layers, the hyponet
 * kinds, positional encoding, tokenizers, the transformer, the weight heads, volume rendering,
 * parameter declarations and the optimiser's pieces; and the helpers the facade, the CLI and the
 * web page are built from (input preparation, token-file checks, colour maps). Portable like
 * "anr"; imported as "anr/lowlevel". The names follow the paper and the authors' code
 * (docs/conventions.md).
 */
export { setAttentionForm, foldAttention, type AttentionForm } from "./model/hyponets/anr.js";
export {
  cellCentres,
  coordGrid,
  gridPoints,
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
  hyponetGrid,
  hyponetGridPrepare,
  hyponetGridPrepared,
  GRID_GUARD_LIMIT,
  type GridOutput,
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
  generatedParams,
  type GeneratedParam,
} from "./model/model.js";
export { sizeHW } from "./model/config.js";
export { paramSpecs, refParams, countParams, type ParamSpec, type Init } from "./model/params.js";
export {
  gridChunk,
  imageObjective,
  nerfObjective,
  createImageEvalStep,
  type ImageOutput,
  type NerfOutput,
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
export { readF32, readScalar, wasmHeapBytes, preciseLog10 } from "./backend/index.js";
export {
  isTokenFile,
  tokensMismatch,
  weightsFingerprint,
  TOKENS_METADATA_KEY,
  MISSING_TENSOR,
  type TokensMismatch,
} from "./io/tokens.js";
export { prepareImage, toHostImage } from "./api/input.js";
export {
  evalTransform,
  shorterSideTo,
  centred,
  normalizeField,
  denormalizeField,
  type Transform,
  type TransformSource,
  type Normalization,
} from "./util/prepare.js";
export { Rng } from "./util/rng.js";
export { viridis, falseColour, finiteRange } from "./util/colormap.js";
