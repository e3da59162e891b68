/**
 * safetensors: read and write, with every malformation reported against the file it came from.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`,
 * then the data block; offsets are relative to the data block. Tensors are little-endian, C order.
 * F32, F16 and BF16 are read (converted to Float32Array); everything is written as F32.
 *
 * Portable: bytes in, bytes out. Reading and writing files is in ./files.ts (Node).
 */
import { f16ToF32 } from "../util/float16.js";
import { numel } from "../util/shape.js";
import { InputError } from "../util/errors.js";
import { crc32 } from "../util/crc32.js";
import type { HostTensor } from "../util/host.js";

export type { HostTensor };

/** A parsed safetensors file: tensors by name, in file order, and the string metadata. */
export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/** Raised for any file that is not a valid safetensors file; the message names the file. */
export class SafetensorsError extends InputError {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(file, detail);
    this.name = "SafetensorsError";
  }
}

/**
 * Metadata key of the checksum anr writes into every safetensors file: CRC-32 over each tensor's
 * name and bytes, in name order. It binds names to data, so it also catches two same-shape tensors
 * whose offsets were swapped, which the format's own rules cannot see. Verified on load when
 * present; files from elsewhere do not carry it.
 */
export const CHECKSUM_METADATA_KEY = "anr.checksum";

/** The checksum of tensors given as (name, raw little-endian bytes), as stored in the metadata. */
export function tensorChecksum(entries: Iterable<[string, Uint8Array]>): string {
  const enc = new TextEncoder();
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let crc = 0;
  for (const [name, bytes] of sorted) crc = crc32(bytes, crc32(enc.encode(name + "\0"), crc));
  return `crc32:${crc.toString(16).padStart(8, "0")}`;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

function decode(dtype: string, bytes: Uint8Array, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === "F32") {
    // Little-endian hosts (all that run JavaScript in practice) copy the bytes as they are (the
    // input may be a view at any offset into a shared buffer, e.g. a Node Buffer).
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
    else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === "F16") {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  } else {
    const tmp = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < n; i++) {
      tmp.setUint32(0, view.getUint16(2 * i, true) << 16, false);
      out[i] = tmp.getFloat32(0, false);
    }
  }
  return out;
}

/** Parse safetensors bytes. `file` only names the source in errors. */
export function parseSafetensors(buf: Uint8Array, file = "<buffer>"): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new SafetensorsError(file, msg);
  };
  if (buf.byteLength < 8) fail(`truncated: ${buf.byteLength} bytes, a safetensors file has at least 8`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER)
    fail(`header length ${headerLen} exceeds the ${MAX_HEADER}-byte limit (not a safetensors file?)`);
  if (8 + headerLen > buf.byteLength) {
    fail(
      `truncated: header says ${headerLen} bytes of JSON but the file has ${buf.byteLength - 8} after the length`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    fail("header is not a JSON object");
  const dataStart = 8 + headerLen;
  const dataLen = buf.byteLength - dataStart;
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw))
        fail("__metadata__ is not an object");
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is ${typeof v}, expected a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== "object" || info === null) fail(`tensor "${name}": entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      fail(`tensor "${name}": dtype ${JSON.stringify(dtype)} is not supported (expected F32, F16 or BF16)`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(
        `tensor "${name}": data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`,
      );
    }
    const [begin, end] = offsets as [number, number];
    const need = numel(shape as number[]) * DTYPE_BYTES[dtype as string]!;
    if (end - begin !== need) {
      fail(
        `tensor "${name}": data_offsets span ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${need}`,
      );
    }
    if (end > dataLen)
      fail(
        `tensor "${name}": data_offsets end ${end} lies past the data block (${dataLen} bytes; file truncated?)`,
      );
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }
  // Offsets must tile the data block without overlaps (the format's own validity rule).
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) {
      fail(
        `tensor "${e.name}": data begins at ${e.begin}, expected ${cursor} (overlapping or gapped offsets)`,
      );
    }
    cursor = e.end;
  }
  if (cursor !== dataLen)
    fail(`data block has ${dataLen} bytes but the tensors cover ${cursor} (trailing bytes or truncation)`);
  const raw = (e: (typeof entries)[number]) => buf.subarray(dataStart + e.begin, dataStart + e.end);
  const stored = metadata[CHECKSUM_METADATA_KEY];
  if (stored !== undefined) {
    const actual = tensorChecksum(entries.map((e) => [e.name, raw(e)]));
    if (actual !== stored)
      fail(
        `checksum mismatch (metadata ${CHECKSUM_METADATA_KEY} says ${stored}, the tensors give ${actual}): the file was altered or corrupted after it was written`,
      );
    metadata = { ...metadata };
    delete metadata[CHECKSUM_METADATA_KEY];
  }
  const tensors = new Map<string, HostTensor>();
  for (const e of entries)
    tensors.set(e.name, { shape: e.shape, data: decode(e.dtype, raw(e), numel(e.shape)) });
  return { tensors, metadata };
}

/**
 * Serialise tensors (as F32) and string metadata to safetensors bytes; the metadata also gets
 * the checksum ({@link CHECKSUM_METADATA_KEY}).
 */
export function serializeSafetensors(
  tensors: Iterable<[string, HostTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const list = [...tensors];
  const data = list.map(([, t]) => new Uint8Array(Float32Array.from(t.data).buffer));
  if (!LITTLE_ENDIAN) throw new Error("writing safetensors on a big-endian host is not supported");
  const header: Record<string, unknown> = {
    __metadata__: {
      ...metadata,
      [CHECKSUM_METADATA_KEY]: tensorChecksum(list.map(([n], i) => [n, data[i]!])),
    },
  };
  let offset = 0;
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new Error(`tensor name "__metadata__" is reserved`);
    if (t.data.length !== numel(t.shape)) {
      throw new Error(
        `tensor "${name}": ${t.data.length} values do not fill shape ${JSON.stringify(t.shape)}`,
      );
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let headerBytes = enc.encode(json);
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) headerBytes = enc.encode((json += " ".repeat(pad)));
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const bytes of data) {
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}
