/**
 * IDX files (the MNIST / Fashion-MNIST container): a 4-byte magic (0, 0, type, ndim), ndim big-endian
 * uint32 dimensions, then the data in C order. Only unsigned bytes (type 0x08) are supported, which is
 * all the image and label files use.
 *
 * Portable: bytes in, bytes out. `readIdx` and `writeIdx` in ./array-files.ts (Node) read and write
 * files, gzipped or not.
 */
import { InputError } from "../util/errors.js";

const UBYTE = 0x08;

/** The contents of an IDX file. */
export interface IdxFile {
  /** Dimensions from the header, e.g. [60000, 28, 28]. */
  dims: number[];
  /** The body, C order, exactly prod(dims) bytes. */
  data: Uint8Array;
}

/** What the caller expects, so that a mismatch is reported in the caller's terms. */
export interface IdxExpectation {
  /** Required number of dimensions (3 for images, 1 for labels). */
  ndim: number;
  /** What the file should hold, for messages ("images"). */
  what: string;
}

/** Parse IDX bytes (already decompressed); `source` names them in errors, which name the field. */
export function parseIdx(bytes: Uint8Array, source: string, expect?: IdxExpectation): IdxFile {
  if (bytes.length < 4)
    throw new InputError(source, `${bytes.length} bytes, too short for an IDX magic number`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const ndim = bytes[3]!;
  const wanted = expect ? (UBYTE << 8) | expect.ndim : null;
  if (wanted !== null && magic !== wanted) {
    throw new InputError(source, `magic ${hex(wanted)} expected for ${expect!.what}, found ${hex(magic)}`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE || ndim === 0) {
    throw new InputError(source, `magic ${hex(magic)} is not an IDX ubyte header (0x000008NN expected)`);
  }
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) {
    throw new InputError(
      source,
      `header declares ${ndim} dimensions but the file has only ${bytes.length} bytes`,
    );
  }
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const need = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - headerBytes;
  if (have !== need) {
    const what = expect?.what ?? "items";
    const item = dims.length > 1 ? ` of ${dims.slice(1).join("×")}` : "";
    const says = `header says ${dims[0]} ${what}${item} (${need} bytes)`;
    throw new InputError(
      source,
      have < need
        ? `${says} but the file has only ${have} bytes`
        : `${says} but the file has ${have - need} bytes more`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Encode an IDX ubyte file (uncompressed). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const need = dims.reduce((a, b) => a * b, 1);
  if (data.length !== need)
    throw new RangeError(`encodeIdx: dims ${dims.join("×")} need ${need} bytes, got ${data.length}`);
  const bytes = new Uint8Array(4 + 4 * dims.length + need);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, (UBYTE << 8) | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  bytes.set(data, 4 + 4 * dims.length);
  return bytes;
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, "0")}`;
}
