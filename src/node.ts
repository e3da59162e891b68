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
// The facade with paths, run folders, zoo names and image files (it shadows the portable Anr).
export { Anr, type NodeImageInput } from "./api/node.js";
export {
  readSafetensors,
  writeSafetensors,
  readWeights,
  loadModel,
  saveModel,
  readTokenFile,
  writeTokenFile,
} from "./io/files.js";
export { readNpy, writeNpy, openNetcdf, writeNetcdf3 } from "./io/array-files.js";
export { resolveModel, zooModels } from "./io/zoo.js";
export type { NdArray } from "./io/npy.js";
export type { NetcdfFile, NcVariable, NcDimension } from "./io/netcdf.js";
export { runGolden, formatReport, type GoldenCheck, type GoldenReport } from "./golden/golden.js";
export { train, evaluateRun } from "./training/trainer.js";
export type { TrainOptions, TrainResult, StepRecord, EvalRecord } from "./training/loop.js";
export {
  RunConfig,
  resolveRunConfig,
  readRunConfig,
  type ResolvedRunConfig,
  type RunConfigInput,
} from "./training/run-config.js";
export { RUN_PRESETS, runPreset, applyOverride } from "./training/run-presets.js";
export {
  openImageDataset,
  parseDatasetSpec,
  DatasetSpec,
  type ImageDataset,
  type Split,
  type DatasetSpecInput,
} from "./data/datasets.js";
export { loadImage, savePng } from "./data/image.js";
export { exportOnnx, type OnnxModels } from "./io/onnx.js";
export { createOrtImageCodec, loadOrt, type OrtImageCodec, type OrtOptions } from "./eval/ort.js";
export { openLearnitDataset, type MultiViewDataset, type PosedView } from "./data/learnit.js";
export { FieldSpec, openFieldDataset, type FieldDataset, type FieldSpecInput } from "./data/fields.js";
export { evaluateImages, type EvalReport, type EvaluateArgs } from "./eval/evaluate.js";
export {
  evaluateSuperResolution,
  type SuperResolutionReport,
  type MethodErrors,
} from "./eval/super-resolution.js";
