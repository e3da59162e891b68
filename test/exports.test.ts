/**
 * The public surface of "anr" (src/index.ts) and "anr/node" (src/node.ts) is pinned to the lists
 * below, values and types alike (read with the TypeScript checker, so `export *` and re-exports
 * count). A name added to either entry fails here until it is added to the list: growth is a
 * decision, not a side effect. Helpers for the CLI, the web page or research code belong in
 * "anr/lowlevel" (src/lowlevel.ts), which is not pinned.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import ts from "typescript";

const root = join(import.meta.dirname, "..");

/** "anr": the facade, configs and presets, the model step by step, model and token bytes, errors. */
const CORE = [
  "AdamArgs",
  "Anr",
  "AnrError",
  "BackendArgs",
  "BackendInfo",
  "Camera",
  "CheckFailed",
  "ConfigError",
  "DecodeOptions",
  "DecodeRegion",
  "EmaArgs",
  "EncodeOptions",
  "HostImage",
  "HostTensor",
  "HyperNetworkConfig",
  "HyperNetworkConfigInput",
  "HyponetKind",
  "ImageInput",
  "InputError",
  "LoadOptions",
  "MODEL_PRESETS",
  "ModelFile",
  "ModelSource",
  "ModelTask",
  "NonFiniteWeightsError",
  "Params",
  "PixelArray",
  "PixelImage",
  "PosedImage",
  "REFERENCE_ADAM",
  "REFERENCE_EMA",
  "RenderOptions",
  "SafetensorsError",
  "SafetensorsFile",
  "ShapedArray",
  "StepMetrics",
  "Tokens",
  "TrainState",
  "UsageError",
  "WeightsChoice",
  "WeightsMismatchError",
  "adamInit",
  "createImageDecoder",
  "createGridDecoder",
  "createImageTrainStep",
  "createNerfTrainStep",
  "createViewRenderer",
  "disposeParams",
  "hyperNetwork",
  "initBackend",
  "initHostParams",
  "modelFromBytes",
  "modelPreset",
  "modelToBytes",
  "parseHyperNetworkConfig",
  "parseSafetensors",
  "representationSize",
  "serializeSafetensors",
  "ssim",
  "toDevice",
  "toHost",
  "toPixels",
  "tokensFromBytes",
  "tokensToBytes",
  "weightsFromBytes",
];

/** What "anr/node" adds to the core: files, datasets, the trainer, evaluation, golden, ONNX. */
const NODE_EXTRA = [
  "DatasetSpec",
  "DatasetSpecInput",
  "EvalRecord",
  "EvalReport",
  "EvaluateArgs",
  "FieldDataset",
  "FieldSpec",
  "FieldSpecInput",
  "GoldenCheck",
  "GoldenReport",
  "ImageDataset",
  "MethodErrors",
  "MultiViewDataset",
  "NcDimension",
  "NcVariable",
  "NdArray",
  "NetcdfFile",
  "NodeImageInput",
  "OnnxModels",
  "OrtImageCodec",
  "OrtOptions",
  "PosedView",
  "RUN_PRESETS",
  "ResolvedRunConfig",
  "RunConfig",
  "RunConfigInput",
  "Split",
  "StepRecord",
  "SuperResolutionReport",
  "TrainOptions",
  "TrainResult",
  "applyOverride",
  "createOrtImageCodec",
  "evaluateImages",
  "evaluateRun",
  "evaluateSuperResolution",
  "exportOnnx",
  "formatReport",
  "loadImage",
  "loadModel",
  "loadOrt",
  "openFieldDataset",
  "openImageDataset",
  "openLearnitDataset",
  "openNetcdf",
  "parseDatasetSpec",
  "readNpy",
  "readRunConfig",
  "readSafetensors",
  "readTokenFile",
  "readWeights",
  "resolveModel",
  "resolveRunConfig",
  "runGolden",
  "runPreset",
  "saveModel",
  "savePng",
  "train",
  "writeNetcdf3",
  "writeNpy",
  "writeSafetensors",
  "writeTokenFile",
  "zooModels",
];

/** The names each entry exports, values and types, as a user's TypeScript sees them. */
function exportedNames(entries: string[]): Map<string, string[]> {
  const files = entries.map((e) => join(root, "src", e));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out = new Map<string, string[]>();
  for (const [i, file] of files.entries()) {
    const source = program.getSourceFile(file);
    assert.ok(source, `${file} is not in the program`);
    const symbol = checker.getSymbolAtLocation(source);
    assert.ok(symbol, `${file} is not a module`);
    out.set(
      entries[i]!,
      checker.getExportsOfModule(symbol).map((s) => s.name),
    );
  }
  return out;
}

/** A readable difference between what an entry exports and its list. */
function surfaceDiff(actual: string[], expected: string[]): string {
  const a = new Set(actual);
  const e = new Set(expected);
  const added = actual.filter((n) => !e.has(n)).sort();
  const removed = expected.filter((n) => !a.has(n)).sort();
  return [
    added.length ? `exported but not on the list: ${added.join(", ")}` : "",
    removed.length ? `on the list but not exported: ${removed.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

test('the exports of "anr" and "anr/node" are exactly their lists', () => {
  const names = exportedNames(["index.ts", "node.ts"]);
  const core = names.get("index.ts")!;
  const node = names.get("node.ts")!;
  assert.equal(surfaceDiff(core, CORE), "", 'src/index.ts ("anr")');
  // "anr/node" re-exports the whole core (its Anr shadows the portable one) and adds NODE_EXTRA.
  const nodeSet = new Set(node);
  assert.deepEqual(
    CORE.filter((n) => !nodeSet.has(n)),
    [],
    '"anr/node" re-exports every name of "anr"',
  );
  const extra = node.filter((n) => !CORE.includes(n));
  assert.equal(surfaceDiff(extra, NODE_EXTRA), "", 'src/node.ts ("anr/node") beyond "anr"');
  assert.equal(new Set([...CORE, ...NODE_EXTRA]).size, CORE.length + NODE_EXTRA.length, "the lists overlap");
});
