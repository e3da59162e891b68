/**
 * IDX files (the MNIST / Fashion-MNIST container): a 4-byte magic (0, 0, type, ndim), ndim big-endian
 * uint32 dimensions, then the data in C order. Only unsigned bytes (type 0x08) are supported, which is
 * all the image and label files use. Gzip is detected by its magic bytes, not by the file name.
 */
import { readFile } from "node:fs/promises";
import { gunzip, gzip } from "node:zlib";
import { promisify } from "node:util";
import { writeFileAtomic } from "../util/fs.js";

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

/** Read and validate an IDX ubyte file, gzipped or not; every error names the file and the field. */
export async function readIdx(path: string, expect?: IdxExpectation): Promise<IdxFile> {
  let bytes: Uint8Array = await readFile(path);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await promisify(gunzip)(bytes);
    } catch (e) {
      throw new Error(`${path}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  return parseIdx(bytes, path, expect);
}

/** Parse IDX bytes (already decompressed); `source` names them in errors. */
export function parseIdx(bytes: Uint8Array, source: string, expect?: IdxExpectation): IdxFile {
  if (bytes.length < 4)
    throw new Error(`${source}: ${bytes.length} bytes, too short for an IDX magic number`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const ndim = bytes[3]!;
  const wanted = expect ? (UBYTE << 8) | expect.ndim : null;
  if (wanted !== null && magic !== wanted) {
    throw new Error(`${source}: magic ${hex(wanted)} expected for ${expect!.what}, found ${hex(magic)}`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE || ndim === 0) {
    throw new Error(`${source}: magic ${hex(magic)} is not an IDX ubyte header (0x000008NN expected)`);
  }
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) {
    throw new Error(
      `${source}: header declares ${ndim} dimensions but the file has only ${bytes.length} bytes`,
    );
  }
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const need = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - headerBytes;
  if (have !== need) {
    const what = expect?.what ?? "items";
    const item = dims.length > 1 ? ` of ${dims.slice(1).join("×")}` : "";
    const says = `header says ${dims[0]} ${what}${item} (${need} bytes)`;
    throw new Error(
      have < need
        ? `${source}: ${says} but the file has only ${have} bytes`
        : `${source}: ${says} but the file has ${have - need} bytes more`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Write an IDX ubyte file (atomically), optionally gzipped; used to make test fixtures. */
export async function writeIdx(
  path: string,
  dims: number[],
  data: Uint8Array,
  opts: { gzip?: boolean } = {},
): Promise<void> {
  const need = dims.reduce((a, b) => a * b, 1);
  if (data.length !== need)
    throw new Error(`writeIdx: dims ${dims.join("×")} need ${need} bytes, got ${data.length}`);
  const bytes = new Uint8Array(4 + 4 * dims.length + need);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, (UBYTE << 8) | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  bytes.set(data, 4 + 4 * dims.length);
  await writeFileAtomic(path, opts.gzip ? await promisify(gzip)(bytes) : bytes);
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, "0")}`;
}
