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

/** Whether this machine stores numbers little-endian, as typed arrays then do. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
