/**
 * anr — attention-based implicit neural representations (ANR, ECCV 2024) in TypeScript.
 *
 * Library entry. Typical use:
 *
 *   import { initBackend, loadModel, toDevice, hyperNetwork, createImageDecoder } from "anr";
 *   await initBackend();                                   // jax-js on wasm (or webgpu)
 *   const { config, weights } = await loadModel("model.safetensors");
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
export { runGolden, formatReport, type GoldenCheck, type GoldenReport } from "./golden/golden.js";
export { Rng } from "./util/rng.js";
export {
  train,
  evaluateRun,
  type TrainOptions,
  type TrainResult,
  type EvalOutcome,
} from "./training/trainer.js";
export {
  RunConfig,
  TrainArgs,
  EvalArgs,
  resolveRunConfig,
  readRunConfig,
  type ResolvedRunConfig,
  type RunConfigInput,
} from "./training/run-config.js";
export { RUN_PRESETS, runPreset, applyOverride } from "./training/run-presets.js";
export { MODEL_PRESETS, modelPreset } from "./training/presets.js";
export {
  saveCheckpoint,
  loadCheckpoint,
  type CheckpointState,
  type CheckpointTensors,
} from "./training/checkpoint.js";
export {
  openImageDataset,
  parseDatasetSpec,
  DatasetSpec,
  type ImageDataset,
  type Split,
  type DatasetSpecInput,
} from "./data/datasets.js";
export { BatchLoader, type LoaderState, type Batch } from "./data/loader.js";
export { readIdx, writeIdx } from "./data/idx.js";
export {
  loadImage,
  savePng,
  crop,
  randomCrop,
  resizeImage,
  resizeBilinear,
  resizeAntialiased,
  type HostImage,
} from "./data/image.js";
export { evaluateImages, toBatchArray, type EvalReport, type EvaluateArgs } from "./eval/evaluate.js";
export { ssim } from "./eval/ssim.js";
export { writeLinePlot, svgLinePlot } from "./util/plot.js";
export { Progress } from "./util/progress.js";
export {
  openLearnitDataset,
  openLearnitObject,
  sampleViews,
  stackViews,
  LearnitSpec,
  type MultiViewDataset,
  type MultiViewObject,
  type PosedView,
} from "./data/learnit.js";
export { saveGif } from "./data/image.js";
export {
  FieldSpec,
  FieldPreprocess,
  Normalize,
  openFieldDataset,
  fieldChannels,
  preprocessField,
  normalizeField,
  denormalizeField,
  type FieldDataset,
  type FieldSpecInput,
} from "./data/fields.js";
export { parseNpy, readNpy, encodeNpy, writeNpy, type NdArray, type NpyInfo } from "./data/npy.js";
export {
  openNetcdf,
  writeNetcdf3,
  type NetcdfFile,
  type NcVariable,
  type NcDimension,
} from "./data/netcdf.js";
export { viridis, falseColour, finiteRange } from "./util/colormap.js";
export { sphereCoords } from "./model/model.js";
export { withFieldChannels } from "./training/trainer.js";
export type { PhysicalError } from "./eval/evaluate.js";
export {
  evaluateSuperResolution,
  type SuperResolutionReport,
  type MethodErrors,
} from "./eval/super-resolution.js";
