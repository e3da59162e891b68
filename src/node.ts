/**
 * anr for Node: the portable core ("anr", src/index.ts) plus files, datasets, the trainer,
 * evaluation, plots and the multi-threaded wasm backend.
 *
 *   import { initBackend, loadModel, toDevice, hyperNetwork, createImageDecoder } from "anr/node";
 *   await initBackend();                                   // jax-js on wasm, all cores
 *   const { config, weights } = await loadModel("model.safetensors");
 */
// First: the worker pool and the environment switches (node-startup.ts).
import "./node-startup.js";

export * from "./index.js";
export * from "./io/files.js";
export { runGolden, formatReport, type GoldenCheck, type GoldenReport } from "./golden/golden.js";
export { train, evaluateRun } from "./training/trainer.js";
export type { TrainOptions, TrainResult } from "./training/loop.js";
export type { EvalOutcome } from "./eval/evaluate.js";
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
export { readIdx, writeIdx } from "./io/array-files.js";
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
export { parseNpy, encodeNpy, type NdArray, type NpyInfo } from "./io/npy.js";
export { readNpy, writeNpy, openNetcdf, writeNetcdf3 } from "./io/array-files.js";
export { type NetcdfFile, type NcVariable, type NcDimension } from "./io/netcdf.js";
export { viridis, falseColour, finiteRange } from "./util/colormap.js";
export { resolveFieldChannels, runWithModel } from "./training/run-config.js";
export type { PhysicalError } from "./eval/evaluate.js";
export {
  evaluateSuperResolution,
  type SuperResolutionReport,
  type MethodErrors,
} from "./eval/super-resolution.js";
