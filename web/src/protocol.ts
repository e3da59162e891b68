/**
 * Messages between the page (main.ts) and the model worker (worker.ts). Every request carries an
 * id; the worker answers it with one reply of the matching kind, or with an `error` reply.
 */

/** What the model card shows. */
export interface ModelCard {
  /** The file (or shipped model) it came from. */
  source: string;
  /** Hyponet kind: "ANR", "HypoMlp" (TransINR) or "HypoMlpIPC". */
  kind: string;
  /** "image" (ImgTokenizer) or "views" (NeRF, nvs_tokenizer). */
  task: "image" | "views";
  /** Input size [H, W] the hyper-network reads. */
  inputSize: [number, number];
  /** Colour channels in and out. */
  channels: number;
  /** Patch size of the tokenizer, and the number of data tokens. */
  patch: number;
  /** R-tokens (ANR) or weight tokens: rows of the generated tensors. */
  tokens: number;
  /** Floats per instance that the hyper-network generates (the compact representation). */
  representationSize: number;
  /** Scalars in the model. */
  parameters: number;
  /**
   * Field models: each channel's name, units and normalisation (the config's `channels`: the model
   * sees (value + shift) · scale in [0, 1]); null for images.
   */
  fields: { name: string; units: string; shift: number; scale: number }[] | null;
}

/** The jax-js device the worker runs on, and its kernel threads (wasm). */
export interface DeviceInfo {
  device: "webgpu" | "wasm";
  threads: number;
  /** Why WebGPU is not in use, when it was asked for and is not. */
  fallback?: string;
}

/** A rectangle of the image in the model's coordinates: [-1, 1]² is the whole image (y down). */
export interface Region {
  y0: number;
  x0: number;
  y1: number;
  x1: number;
}

/** Posed support views of one object, at the model's input size (`anr render`'s input). */
export interface Views {
  /** (n, 3, H, W) in [0, 1], composited on white. */
  pixels: Float32Array;
  /** n camera-to-world poses, the top 3×4 of each transform_matrix, row-major. */
  poses: Float32Array;
  /** n × [f_x, f_y] in pixels at the input size. */
  focals: Float32Array;
}

/** A camera to render the encoded object from (`anr render`'s settings). */
export interface Camera {
  /** Where the camera is; it looks at the origin, world up +z (`anr render`'s orbit cameras). */
  eye: [number, number, number];
  /** [f_x, f_y] in pixels at `size`. */
  focal: [number, number];
  /** Rendered size (square). */
  size: number;
  /** Samples per ray, and the depth interval. */
  samples: number;
  near: number;
  far: number;
}

export type Request =
  | { id: number; type: "init"; device: "webgpu" | "wasm" }
  | { id: number; type: "load-model"; bytes: ArrayBuffer; source: string }
  /** Pixels (C, H, W) in [0, 1] at the model's input size. */
  | { id: number; type: "encode"; pixels: Float32Array }
  | { id: number; type: "decode"; region: Region; width: number; height: number }
  /** The attention of the pixel at model coordinates (y, x) over the R-tokens (ANR models). */
  | { id: number; type: "attention"; y: number; x: number }
  /** The current image's R-tokens as a token file; `name` is the instance's name in it. */
  | { id: number; type: "save-tokens"; name: string }
  /** A token file (`anr encode`'s format) of the open model: its first instance becomes the image. */
  | { id: number; type: "load-tokens"; bytes: ArrayBuffer; source: string }
  /** Whether a .safetensors file is a token file or a model (the core's isTokenFile). */
  | { id: number; type: "file-kind"; bytes: ArrayBuffer; source: string }
  /** View-synthesis models: encode an object's support views (its R-tokens become current). */
  | { id: number; type: "encode-views"; views: Views }
  /** Render the encoded object from a camera. */
  | { id: number; type: "render"; camera: Camera };

/** Where one pixel looks: ANR's localized attention over the R-tokens (the paper's Figure 3). */
export interface Attention {
  heads: number;
  tokens: number;
  /** Weights after the threshold, (heads, tokens); each head's row sums to 1. */
  weights: Float32Array;
  /** Fraction of this pixel's weights (over heads and tokens) that the threshold sets to zero. */
  zeroed: number;
}

export type Reply =
  | { id: number; type: "ready"; info: DeviceInfo }
  | { id: number; type: "model"; card: ModelCard }
  /** Reconstruction (C, H, W) in [0, 1] at the model's size, its PSNR against the input, timings. */
  | {
      id: number;
      type: "encoded";
      reconstruction: Float32Array;
      psnr: number;
      encodeMs: number;
      decodeMs: number;
      /** ANR: fraction of all attention weights at the model's grid that the threshold zeroes. */
      zeroed: number | null;
    }
  /** Decoded region (C, height, width) in [0, 1]. */
  | { id: number; type: "decoded"; rgb: Float32Array; width: number; height: number; ms: number }
  | { id: number; type: "attention"; attention: Attention }
  /** The bytes of a token file (.safetensors). */
  | { id: number; type: "token-file"; bytes: Uint8Array }
  /** A token file's first instance, decoded at the model's size (as "encoded", without an input). */
  | {
      id: number;
      type: "tokens-loaded";
      reconstruction: Float32Array;
      decodeMs: number;
      zeroed: number | null;
      /** The instance's name, and how many the file holds. */
      name: string;
      instances: number;
      /** Whether the file recorded the weights' fingerprint (older token files do not). */
      checked: boolean;
    }
  | { id: number; type: "file-kind"; kind: "tokens" | "model" }
  | { id: number; type: "views-encoded"; encodeMs: number }
  /** A rendered view, (3, size, size) in [0, 1], and the camera's pose (3×4, camera-to-world). */
  | { id: number; type: "rendered"; rgb: Float32Array; size: number; pose: Float32Array; ms: number }
  | { id: number; type: "error"; name: string; message: string };

/** A reply's type for a request's type. */
export type ReplyTo<T extends Request["type"]> = Extract<
  Reply,
  {
    type: {
      init: "ready";
      "load-model": "model";
      encode: "encoded";
      decode: "decoded";
      attention: "attention";
      "save-tokens": "token-file";
      "load-tokens": "tokens-loaded";
      "file-kind": "file-kind";
      "encode-views": "views-encoded";
      render: "rendered";
    }[T];
  }
>;
