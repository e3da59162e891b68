/**
 * An image codec on onnxruntime-node (Node only): the exported ONNX graphs of a model
 * (io/onnx.ts) run by ONNX Runtime's native CPU engine instead of jax-js. It gives what our engine
 * gives: `encode` the generated parameters that `hyperNetwork` gives, `decode` what
 * `createImageDecoder` gives. onnxruntime-node is an optional dependency, loaded on first use.
 */
import type * as Ort from "onnxruntime-node";
import { coordGrid } from "../model/model.js";
import { parseHyperNetworkConfig, sizeHW, type HyperNetworkConfig } from "../model/config.js";
import {
  type OnnxModels,
  ONNX_COORDS,
  ONNX_IMAGES,
  ONNX_ROLE_KEY,
  ONNX_SIGNAL,
  decodeModelSummary,
} from "../io/onnx.js";
import { CONFIG_METADATA_KEY } from "../io/weights.js";
import { stackImages } from "../data/image.js";
import { InputError, UsageError } from "../util/errors.js";
import type { HostImage, HostTensor } from "../util/host.js";

type OrtModule = typeof Ort;

let ortModule: Promise<OrtModule> | null = null;

/** onnxruntime-node, imported once; a clear error where the optional package is not installed. */
export function loadOrt(): Promise<OrtModule> {
  ortModule ??= import("onnxruntime-node").then(
    // A CommonJS package: its names are on the namespace or on its default export.
    (m) => (m.default ?? m) as OrtModule,
    (e: unknown) => {
      ortModule = null;
      const code = (e as { code?: unknown }).code;
      if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND")
        throw new UsageError(
          "the ONNX Runtime engine needs the optional package onnxruntime-node, which is not installed (npm install onnxruntime-node)",
        );
      throw e;
    },
  );
  return ortModule;
}

/** Settings of the ONNX Runtime sessions. */
export interface OrtOptions {
  /** Threads per operator (ONNX Runtime's intraOpNumThreads); default: its own choice (all cores). */
  threads?: number;
  /** Grid points decoded per run (bounds the memory of the attention weights); default 4096, as createImageDecoder. */
  chunk?: number;
}

/** A model's encode and decode on ONNX Runtime. */
export interface OrtImageCodec {
  /** The config recorded in the exported graphs. */
  readonly config: HyperNetworkConfig;
  /** Images (C, H, W) in [0, 1] at the model's input size → the generated parameters, name → (B, rows, cols). */
  encode(images: HostImage[]): Promise<Map<string, HostTensor>>;
  /** Generated parameters (B, rows, cols) → the h×w pixel-centre grid's signal, (B, C, h, w) in [-1, 1] space. */
  decode(tokens: Map<string, HostTensor>, h: number, w: number): Promise<Float32Array>;
  /** Release both sessions. */
  dispose(): Promise<void>;
}

function checkRole(bytes: Uint8Array, role: "encoder" | "decoder", source: string): HyperNetworkConfig {
  const s = decodeModelSummary(bytes);
  if (s.metadata[ONNX_ROLE_KEY] !== role)
    throw new InputError(
      source,
      `not an anr ${role} graph (metadata ${ONNX_ROLE_KEY} is ${s.metadata[ONNX_ROLE_KEY] ?? "absent"})`,
    );
  const raw = s.metadata[CONFIG_METADATA_KEY];
  if (raw === undefined) throw new InputError(source, `no ${CONFIG_METADATA_KEY} metadata`);
  return parseHyperNetworkConfig(JSON.parse(raw), source);
}

/**
 * Open the encoder and decoder graphs of an image model ({@link exportOnnx}'s output, or the
 * files `anr export --format onnx` writes) on ONNX Runtime's CPU engine.
 */
export async function createOrtImageCodec(
  models: OnnxModels,
  opts: OrtOptions = {},
  source = "<onnx>",
): Promise<OrtImageCodec> {
  const config = checkRole(models.encoder, "encoder", `${source} encoder`);
  checkRole(models.decoder, "decoder", `${source} decoder`);
  if (config.tokenizer.name !== "ImgTokenizer")
    throw new InputError(source, `not an image model (tokenizer ${config.tokenizer.name})`);
  const ort = await loadOrt();
  const session = (bytes: Uint8Array) =>
    ort.InferenceSession.create(bytes, {
      executionProviders: ["cpu"],
      graphOptimizationLevel: "all",
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    });
  const [enc, dec] = await Promise.all([session(models.encoder), session(models.decoder)]);
  const [ih, iw] = sizeHW(config.tokenizer.args.input_size);
  const chunk = opts.chunk ?? 4096;
  const outDim = config.hyponet.args.out_dim;

  const encode = async (images: HostImage[]) => {
    const { data, shape } = stackImages(images, (k) => `image ${k}`);
    if (shape[2] !== ih || shape[3] !== iw)
      throw new InputError(
        `${source} encoder`,
        `images are ${shape[2]}×${shape[3]}, the model reads ${ih}×${iw}`,
      );
    const x = data.map((v) => 2 * v - 1);
    const out = await enc.run({ [ONNX_IMAGES]: new ort.Tensor("float32", x, shape) });
    const tensors = new Map<string, HostTensor>();
    for (const name of enc.outputNames) {
      const t = out[name]!;
      tensors.set(name, { shape: [...t.dims], data: t.data as Float32Array });
    }
    return tensors;
  };

  const decode = async (tokens: Map<string, HostTensor>, h: number, w: number) => {
    const feeds: Record<string, Ort.Tensor> = {};
    let b = 0;
    for (const name of dec.inputNames) {
      if (name === ONNX_COORDS) continue;
      const t = tokens.get(name);
      if (!t)
        throw new InputError(
          `${source} decoder`,
          `no "${name}" among the tokens (${[...tokens.keys()].join(", ")})`,
        );
      feeds[name] = new ort.Tensor("float32", t.data, t.shape);
      b = t.shape[0]!;
    }
    const grid = coordGrid(h, w);
    const n = h * w;
    const out = new Float32Array(b * outDim * n);
    for (let s = 0; s < n; s += chunk) {
      const e = Math.min(n, s + chunk);
      // One grid for the whole batch (coords batch 1): its encoding is computed once per chunk.
      feeds[ONNX_COORDS] = new ort.Tensor("float32", grid.subarray(2 * s, 2 * e), [1, e - s, 2]);
      const r = await dec.run(feeds);
      const vals = r[ONNX_SIGNAL]!.data as Float32Array;
      const m = e - s;
      for (let i = 0; i < b; i++)
        for (let k = 0; k < m; k++)
          for (let ch = 0; ch < outDim; ch++)
            out[(i * outDim + ch) * n + s + k] = vals[(i * m + k) * outDim + ch]!;
    }
    return out;
  };

  return {
    config,
    encode,
    decode,
    dispose: async () => {
      await Promise.all([enc.release(), dec.release()]);
    },
  };
}
