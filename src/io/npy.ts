/**
 * NumPy `.npy` files: read any numeric array NumPy writes, write float32 arrays NumPy reads.
 *
 * Format (numpy.lib.format): the magic `\x93NUMPY`, a major and a minor version byte, the header
 * length (uint16 little-endian in 1.0, uint32 in 2.0 and 3.0), then the header: a Python dict
 * literal `{'descr': '<f4', 'fortran_order': False, 'shape': (721, 1440), }` (latin-1 in 1.0 and
 * 2.0, UTF-8 in 3.0) padded with spaces and a newline, then the raw data.
 *
 * The reader parses the header with a small Python-literal parser (never eval), accepts float16/32/64,
 * signed and unsigned integers of 1 to 8 bytes and bool in any byte order, converts to float32 with
 * one correct rounding, and reorders Fortran-order data to C order. Every error starts with the
 * source path. Bytes after the data are ignored, as `np.load` ignores them (it reads exactly
 * shape × itemsize bytes), so files with appended data still load here as they do in NumPy.
 *
 * The writer produces exactly what `np.save` produces for a float32 C-order array (same header text,
 * the same spare space for growing the leading axis, the same 64-byte alignment), so files written
 * here are byte-identical to NumPy's.
 *
 * Portable: bytes in, bytes out. `readNpy` and `writeNpy` in ./array-files.ts (Node) read and write
 * files.
 */
import { f16ToF32 } from "../util/float16.js";
import { InputError } from "../util/errors.js";
import { HOST_LITTLE_ENDIAN } from "../util/host.js";

/** A dense float32 array in C (row-major) order. */
export interface NdArray {
  /** Dimensions; `[]` for a 0-d (scalar) array. */
  shape: number[];
  /** Values in C order; length = product of `shape` (1 for a scalar). */
  data: Float32Array;
}

/** What the file declared, besides the data. */
export interface NpyInfo {
  /** The `descr` as written in the header, e.g. `"<f8"`. */
  dtype: string;
  /** Whether the file stored the data in Fortran (column-major) order; `data` is C order regardless. */
  fortranOrder: boolean;
  /** The format version: `"1.0"`, `"2.0"` or `"3.0"`. */
  version: string;
}

/** Raised for anything that is not a readable `.npy` file; the message starts with the source. */
export class NpyError extends InputError {
  constructor(source: string, detail: string) {
    super(source, detail);
    this.name = "NpyError";
  }
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ARRAY_ALIGN = 64;
// numpy.lib.format.GROWTH_AXIS_MAX_DIGITS: np.save leaves room for the leading axis to grow to
// this many digits, so the header can be rewritten in place when appending.
const GROWTH_AXIS_MAX_DIGITS = 21;
const SUPPORTED =
  "supported: float16/32/64 (f2 f4 f8), int8/16/32/64 (i1 i2 i4 i8), uint8/16/32/64 (u1 u2 u4 u8), " +
  "bool (b1), byte order < > | or =";

// ---------------------------------------------------------------- Python literals

/** A parsed Python literal; `text` is the source slice, used to quote values in errors. */
type PyValue = { text: string } & (
  | { kind: "str"; value: string }
  | { kind: "int"; value: bigint }
  | { kind: "float"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "none" }
  | { kind: "tuple" | "list"; items: PyValue[] }
  | { kind: "dict"; entries: [PyValue, PyValue][] }
);

/**
 * Parse the subset of Python literal syntax that `repr` produces for npy headers: strings, ints
 * (with Python 2's `L` suffix), floats, True/False/None, tuples, lists and dicts. `(5)` is the int 5,
 * as in Python; only `(5,)` is a tuple.
 */
function parsePyLiteral(src: string, fail: (msg: string) => never): PyValue {
  let pos = 0;
  const ws = (): void => {
    while (pos < src.length && /\s/.test(src[pos]!)) pos++;
  };
  const where = (): string =>
    pos < src.length ? `at offset ${pos} ('${src.slice(pos, pos + 12)}')` : "at end";

  const value = (): PyValue => {
    ws();
    const start = pos;
    const c = src[pos];
    if (c === undefined) fail(`header ends early: expected a value ${where()}`);
    if (c === "'" || c === '"') {
      pos++;
      let s = "";
      for (;;) {
        const d = src[pos++];
        if (d === undefined) fail(`header has an unterminated string starting at offset ${start}`);
        if (d === c) break;
        if (d === "\\") {
          const e = src[pos++];
          const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0" };
          if (e === undefined) fail(`header has an unterminated string starting at offset ${start}`);
          if (e === "x" || e === "u") {
            const len = e === "x" ? 2 : 4;
            const hex = src.slice(pos, pos + len);
            if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail(`header has a bad escape ${where()}`);
            s += String.fromCharCode(parseInt(hex, 16));
            pos += len;
          } else s += simple[e] ?? e;
        } else s += d;
      }
      return { kind: "str", value: s, text: src.slice(start, pos) };
    }
    if (c === "(" || c === "[") {
      pos++;
      const close = c === "(" ? ")" : "]";
      const items: PyValue[] = [];
      let sawComma = false;
      for (;;) {
        ws();
        if (src[pos] === close) break;
        items.push(value());
        ws();
        if (src[pos] === ",") {
          pos++;
          sawComma = true;
        } else if (src[pos] !== close) fail(`header: expected ',' or '${close}' ${where()}`);
      }
      pos++;
      const text = src.slice(start, pos);
      // A parenthesised expression without a comma is the expression itself, not a tuple.
      if (c === "(" && items.length === 1 && !sawComma) return { ...items[0]!, text };
      return { kind: c === "(" ? "tuple" : "list", items, text };
    }
    if (c === "{") {
      pos++;
      const entries: [PyValue, PyValue][] = [];
      for (;;) {
        ws();
        if (src[pos] === "}") break;
        const k = value();
        ws();
        if (src[pos] !== ":") fail(`header: expected ':' ${where()}`);
        pos++;
        entries.push([k, value()]);
        ws();
        if (src[pos] === ",") pos++;
        else if (src[pos] !== "}") fail(`header: expected ',' or '}' ${where()}`);
      }
      pos++;
      return { kind: "dict", entries, text: src.slice(start, pos) };
    }
    const m =
      /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|nan)[lL]?|True|False|None)/.exec(
        src.slice(pos),
      );
    if (!m) fail(`header: expected a Python literal ${where()}`);
    const tok = m[0];
    pos += tok.length;
    if (tok === "True" || tok === "False") return { kind: "bool", value: tok === "True", text: tok };
    if (tok === "None") return { kind: "none", text: tok };
    const num = tok.replace(/[lL]$/, "");
    if (/^[+-]?\d+$/.test(num)) return { kind: "int", value: BigInt(num), text: tok };
    return { kind: "float", value: Number(num.replace("inf", "Infinity").replace("nan", "NaN")), text: tok };
  };

  const v = value();
  ws();
  if (pos !== src.length) fail(`header has unexpected text after the dict ${where()}`);
  return v;
}

// ---------------------------------------------------------------- dtypes

type Kind = "f" | "i" | "u" | "b";

interface DType {
  kind: Kind;
  size: number;
  littleEndian: boolean;
}

function parseDescr(descr: PyValue, fail: (msg: string) => never): DType {
  if (descr.kind !== "str") {
    const what = descr.kind === "list" ? "structured dtype" : `a ${descr.kind}, not a dtype string`;
    fail(`unsupported dtype ${descr.text} (${what}); ${SUPPORTED}`);
  }
  const d = descr.value;
  // NumPy always writes a byte-order character; a bare 'f4' is still a valid np.dtype, so take it.
  const m = /^([<>|=]?)([a-zA-Z?])(\d*)$/.exec(d);
  const ok: Record<string, number[]> = { f: [2, 4, 8], i: [1, 2, 4, 8], u: [1, 2, 4, 8], b: [1] };
  const kindChar = m?.[2] === "?" ? "b" : m?.[2];
  const size = m?.[2] === "?" && m[3] === "" ? 1 : Number(m?.[3]);
  if (!m || kindChar === undefined || !ok[kindChar]?.includes(size)) {
    const names: Record<string, string> = {
      c: "complex",
      O: "object",
      S: "bytes",
      a: "bytes",
      U: "unicode string",
      V: "void/raw",
      M: "datetime",
      m: "timedelta",
    };
    const name = m?.[2] !== undefined ? names[m[2]] : undefined;
    fail(`unsupported dtype '${d}'${name ? ` (${name})` : ""}; ${SUPPORTED}`);
  }
  const order = m[1];
  // '|' ("not applicable", written for single bytes) and '=' both mean native to NumPy.
  const littleEndian = order === ">" ? false : order === "<" ? true : HOST_LITTLE_ENDIAN;
  return { kind: kindChar as Kind, size, littleEndian };
}

// float16 → float32 for all 65536 bit patterns, built on first use: a lookup per element is
// several times faster than decoding the bits each time on large fields.
let f16Table: Float32Array | undefined;
function getF16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) f16Table[b] = f16ToF32(b);
  }
  return f16Table;
}

/**
 * A 64-bit integer rounded once to float32. `Math.fround(Number(v))` rounds twice (to 53 bits, then
 * to 24) and can land on the wrong side of a tie, e.g. 2^60 + 2^36 + 1 → 2^60 instead of NumPy's
 * 2^60 + 2^37. Rounding to odd at 53 bits first (a sticky low bit) makes the second rounding exact.
 */
function bigToF32(v: bigint): number {
  const neg = v < 0n;
  let a = neg ? -v : v;
  if (a < 1n << 53n) return Math.fround(Number(v));
  const shift = a.toString(2).length - 53;
  const dropped = a & ((1n << BigInt(shift)) - 1n);
  a >>= BigInt(shift);
  if (dropped !== 0n) a |= 1n;
  const r = Math.fround(Number(a) * 2 ** shift);
  return neg ? -r : r;
}

/** Decode `n` elements from `bytes` (exactly n × size long) to float32, in file order. */
function decode(dt: DType, bytes: Uint8Array, n: number): Float32Array {
  const { kind, size, littleEndian } = dt;
  if (kind === "b") {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
    return out;
  }
  // TypedArray.set converts element by element with one correct rounding to float32 (the source
  // values, at most 32-bit integers or float64, are exact as JS numbers).
  const convert = (src: ArrayLike<number>): Float32Array => {
    const out = new Float32Array(n);
    out.set(src);
    return out;
  };
  if (kind === "u" && size === 1) return convert(bytes);
  if (kind === "i" && size === 1) return convert(new Int8Array(bytes.buffer, bytes.byteOffset, n));

  // Same byte order as the host: typed-array views, which need an aligned offset; an unaligned
  // slice is copied once into a fresh (aligned) buffer, still far faster than DataView per element.
  if (littleEndian === HOST_LITTLE_ENDIAN && !(kind === "f" && size === 2)) {
    // new Uint8Array(x) always copies (Buffer#slice would not).
    const aligned = bytes.byteOffset % size === 0;
    const { buffer, byteOffset } = aligned ? bytes : new Uint8Array(bytes);
    if (kind === "f" && size === 4) {
      const v = new Float32Array(buffer, byteOffset, n);
      // Never alias the caller's bytes.
      return aligned ? v.slice() : v;
    }
    if (kind === "f" && size === 8) return convert(new Float64Array(buffer, byteOffset, n));
    if (kind === "i" && size === 2) return convert(new Int16Array(buffer, byteOffset, n));
    if (kind === "u" && size === 2) return convert(new Uint16Array(buffer, byteOffset, n));
    if (kind === "i" && size === 4) return convert(new Int32Array(buffer, byteOffset, n));
    if (kind === "u" && size === 4) return convert(new Uint32Array(buffer, byteOffset, n));
    const wide =
      kind === "i" ? new BigInt64Array(buffer, byteOffset, n) : new BigUint64Array(buffer, byteOffset, n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bigToF32(wide[i]!);
    return out;
  }

  // Other byte order (or float16, which has no typed array in Node 20): DataView per element.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = littleEndian;
  const out = new Float32Array(n);
  const key = `${kind}${size}`;
  switch (key) {
    case "f2":
      {
        const table = getF16Table();
        for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, le)]!;
      }
      break;
    case "f4":
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, le);
      break;
    case "f8":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, le);
      break;
    case "i2":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, le);
      break;
    case "u2":
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, le);
      break;
    case "i4":
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, le);
      break;
    case "u4":
      for (let i = 0; i < n; i++) out[i] = view.getUint32(4 * i, le);
      break;
    case "i8":
      for (let i = 0; i < n; i++) out[i] = bigToF32(view.getBigInt64(8 * i, le));
      break;
    case "u8":
      for (let i = 0; i < n; i++) out[i] = bigToF32(view.getBigUint64(8 * i, le));
      break;
  }
  return out;
}

/** Reorder column-major data of `shape` to row-major, for any rank. */
function fortranToC(src: Float32Array, shape: number[]): Float32Array {
  const rank = shape.length;
  if (rank < 2 || src.length === 0) return src;
  // Walk the output in C order with an odometer over the index, moving the Fortran offset by
  // its stride per axis: no division per element.
  const fStride = new Array<number>(rank);
  let s = 1;
  for (let k = 0; k < rank; k++) {
    fStride[k] = s;
    s *= shape[k]!;
  }
  const out = new Float32Array(src.length);
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const lastStride = fStride[last]!;
  const lastLen = shape[last]!;
  let off = 0;
  for (let o = 0; o < out.length;) {
    for (let j = 0; j < lastLen; j++) out[o++] = src[off + j * lastStride]!;
    // Carry into the outer axes.
    let k = last - 1;
    for (; k >= 0; k--) {
      idx[k]!++;
      off += fStride[k]!;
      if (idx[k]! < shape[k]!) break;
      off -= idx[k]! * fStride[k]!;
      idx[k] = 0;
    }
    if (k < 0) break;
  }
  return out;
}

// ---------------------------------------------------------------- reading

function shapeText(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/**
 * Parse `.npy` bytes. `source` (usually the path) starts every error message. The data is converted
 * to float32 and reordered to C order; `dtype`, `fortranOrder` and `version` say what the file held.
 */
export function parseNpy(bytes: Uint8Array, source: string): NdArray & NpyInfo {
  // Annotated so that TypeScript narrows after each call.
  const fail: (msg: string) => never = (msg) => {
    throw new NpyError(source, msg);
  };
  if (bytes.length === 0) fail("empty file, expected the .npy magic \\x93NUMPY");
  const head = Array.from(bytes.subarray(0, 6));
  if (head.some((b, i) => b !== MAGIC[i])) {
    const seen = head.map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
    fail(`not a .npy file: expected the magic \\x93NUMPY, found ${seen}`);
  }
  if (bytes.length < 8)
    fail(`truncated header: ${bytes.length} bytes, expected at least 10 (magic, version, header length)`);
  const major = bytes[6]!;
  const minor = bytes[7]!;
  const version = `${major}.${minor}`;
  if (!["1.0", "2.0", "3.0"].includes(version))
    fail(`unknown .npy format version ${version}, expected 1.0, 2.0 or 3.0`);
  const lenBytes = major === 1 ? 2 : 4;
  const prefix = 8 + lenBytes;
  if (bytes.length < prefix)
    fail(
      `truncated header: ${bytes.length} bytes, expected at least ${prefix} for a version ${version} prefix`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = prefix + headerLen;
  if (bytes.length < dataStart)
    fail(`header cut short: expected ${headerLen} header bytes, found ${bytes.length - prefix}`);
  const raw = bytes.subarray(prefix, dataStart);
  let header: string;
  if (major === 3) {
    try {
      header = new TextDecoder("utf-8", { fatal: true }).decode(raw);
    } catch {
      return fail("header is not valid UTF-8, as version 3.0 requires");
    }
  } else {
    // True latin-1 (TextDecoder's "latin1" is windows-1252, which differs in 0x80–0x9F); in
    // chunks, since a spread of a 2.0 header's bytes could overflow the argument limit.
    header = "";
    for (let i = 0; i < raw.length; i += 8192) header += String.fromCharCode(...raw.subarray(i, i + 8192));
  }

  const dict = parsePyLiteral(header, fail);
  if (dict.kind !== "dict") return fail(`header is not a dict: ${dict.text.slice(0, 80)}`);
  const fields = new Map<string, PyValue>();
  for (const [k, v] of dict.entries) {
    if (k.kind !== "str") return fail(`header key ${k.text} is not a string`);
    fields.set(k.value, v);
  }
  const missing = ["descr", "fortran_order", "shape"].filter((k) => !fields.has(k));
  if (missing.length)
    fail(`header is missing ${missing.map((k) => `'${k}'`).join(", ")}: ${dict.text.slice(0, 200)}`);
  // np.load rejects extra keys too; a file with them was not written by numpy.lib.format.
  const extra = [...fields.keys()].filter((k) => !["descr", "fortran_order", "shape"].includes(k));
  if (extra.length) fail(`header has unexpected keys ${extra.map((k) => `'${k}'`).join(", ")}`);

  const descr = fields.get("descr")!;
  const fo = fields.get("fortran_order")!;
  if (fo.kind !== "bool") return fail(`'fortran_order' must be True or False, found ${fo.text}`);
  const fortranOrder = fo.value;
  const sh = fields.get("shape")!;
  const badShape = `'shape' must be a tuple of non-negative integers, found ${sh.text}`;
  if (sh.kind !== "tuple") return fail(badShape);
  const shape = sh.items.map((d) => {
    if (d.kind !== "int" || d.value < 0n || d.value > BigInt(Number.MAX_SAFE_INTEGER)) return fail(badShape);
    return Number(d.value);
  });
  const dt = parseDescr(descr, fail);
  const dtype = descr.kind === "str" ? descr.value : descr.text; // always a str once parseDescr accepts it

  const n = shape.reduce((a, b) => a * b, 1);
  const need = n * dt.size;
  if (!Number.isSafeInteger(need)) fail(`shape ${shapeText(shape)} is too large`);
  const have = bytes.length - dataStart;
  if (have < need)
    fail(
      `expected ${need} bytes of data (shape ${shapeText(shape)} × ${dt.size}-byte '${dtype}'), found ${have}`,
    );
  const flat = decode(dt, bytes.subarray(dataStart, dataStart + need), n);
  const data = fortranOrder ? fortranToC(flat, shape) : flat;
  return { shape, data, dtype, fortranOrder, version };
}

// ---------------------------------------------------------------- writing

/**
 * Encode as `.npy` version 1.0 (`'<f4'`, C order), byte-identical to `np.save` of the same float32
 * array; version 2.0 only if the header needs more than 65535 bytes (thousands of dimensions).
 */
export function encodeNpy(a: NdArray): Uint8Array {
  const { shape, data } = a;
  for (const d of shape)
    if (!Number.isSafeInteger(d) || d < 0)
      throw new RangeError(
        `encodeNpy: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`,
      );
  const n = shape.reduce((x, y) => x * y, 1);
  if (data.length !== n)
    throw new RangeError(`encodeNpy: shape ${shapeText(shape)} needs ${n} values, data has ${data.length}`);

  // The same text as numpy.lib.format._write_array_header: sorted keys, repr values, ", " after
  // each, then the spare spaces for the leading axis.
  let text = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText(shape)}, }`;
  if (shape.length > 0) text += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const hlen = text.length + 1; // + the final newline
  const padFor = (prefix: number): number => ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
  let major = 1;
  let prefix = 10;
  if (hlen + padFor(prefix) > 0xffff) {
    major = 2;
    prefix = 12;
  }
  const pad = padFor(prefix);
  const headerLen = hlen + pad;

  const out = new Uint8Array(prefix + headerLen + 4 * n);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  // The header is pure ASCII (digits, punctuation), so one byte per char.
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  out.fill(0x20, prefix + text.length, prefix + headerLen - 1);
  out[prefix + headerLen - 1] = 0x0a;
  const dataStart = prefix + headerLen;
  if (HOST_LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataStart);
  else for (let i = 0; i < n; i++) view.setFloat32(dataStart + 4 * i, data[i]!, true);
  return out;
}
