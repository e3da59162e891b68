/** Plain host-side data that every layer shares: a tensor and an image as float32 arrays. */

/** A host-side tensor: float32 data in C order plus its shape. */
export interface HostTensor {
  /** Dimensions; `[]` for a scalar. */
  shape: number[];
  /** Values in C (row-major) order; length = product of `shape`. */
  data: Float32Array;
}

/** A host-side image or field: channels × height × width, float32. */
export interface HostImage {
  c: number;
  h: number;
  w: number;
  /** (c, h, w) C order. */
  data: Float32Array;
}
