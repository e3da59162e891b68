/**
 * Gridded fields from NetCDF files as ERA5 is distributed by the Copernicus CDS:
 *
 *  - classic NetCDF-3 (CDF-1) and 64-bit-offset NetCDF-3 (CDF-2), the old CDS format: int16 packed
 *    with scale_factor/add_offset, _FillValue/missing_value, time as the unlimited record dimension;
 *  - NetCDF-4 (HDF5), the CDS format since 2024: float32 zlib+shuffle, chunked, _FillValue NaN,
 *    dimension names carried by HDF5 dimension scales.
 *
 * Files are many GB, so nothing reads a whole file: NetCDF-3 headers are parsed by netcdfjs from a
 * prefix of the file and slices are then read at their byte offsets through a FileHandle; NetCDF-4
 * slices are HDF5 hyperslab reads through h5wasm, whose Node build reads the file on disk lazily.
 * NetCDF-4 variables are those of the root group (ERA5 files have no subgroups). When HDF5 itself
 * fails (corrupt chunk, missing filter) it prints its "HDF5-DIAG" error stack to stderr before the
 * error thrown here.
 *
 * Values are unpacked the CF way: fills and the valid range are compared on the packed (stored)
 * value, `_Unsigned = "true"` reinterprets signed integers, then x·scale_factor + add_offset.
 *
 * `writeNetcdf3` writes small classic files (CDF-1, or CDF-2 when offsets need it) for tests and
 * exports.
 */
import { open, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { resolve } from "node:path";
import { NetCDFReader } from "netcdfjs";
import { writeFileAtomic } from "../util/fs.js";

/** One dimension of a variable or file. */
export interface NcDimension {
  name: string;
  size: number;
  /** True for the record (NetCDF-3) or unlimited (NetCDF-4) dimension; absent otherwise. */
  unlimited?: boolean;
}

/** An attribute value: a number, an array of numbers, or a string. */
export type NcAttrValue = string | number | number[];

/** A variable as declared in the file. */
export interface NcVariable {
  name: string;
  dims: NcDimension[];
  /**
   * Storage type as the file declares it: "i1"|"u1"|"i2"|"u2"|"i4"|"u4"|"i8"|"u8"|"f4"|"f8"|"char"|
   * "string", or "other" for HDF5 types with no NetCDF equivalent here (compound, enum, …).
   */
  dtype: string;
  /** Attributes (numbers, number arrays, strings); length-1 arrays are given as numbers. */
  attrs: Record<string, NcAttrValue>;
}

/** An open NetCDF file. Call `close()` when done. */
export interface NetcdfFile {
  readonly path: string;
  /** "netcdf3-classic" | "netcdf3-64bit-offset" | "netcdf4" */
  readonly format: string;
  readonly variables: readonly NcVariable[];
  /** Every dimension of the file (for NetCDF-4: of the root group), with its current size. */
  readonly dimensions: readonly NcDimension[];
  /** Global attributes. */
  readonly attrs: Readonly<Record<string, NcAttrValue>>;
  /** The variable or an error naming the file and listing the variables it has. */
  variable(name: string): NcVariable;
  /**
   * One 2-D slice of a variable of rank ≥ 2: `lead` fixes every dimension but the last two (e.g. [t]
   * or [t, level]); returns the (H, W) values in C order as float32, unpacked (x·scale_factor +
   * add_offset when present) with _FillValue / missing_value / values outside
   * valid_min/valid_max/valid_range → NaN (fills compared on the packed value, as the CF conventions
   * say). Reads only that slice from disk.
   */
  readSlice(name: string, lead: number[]): Promise<Float32Array>;
  /** A whole (small, e.g. coordinate) numeric variable, unpacked, as float64. */
  readAll(name: string): Promise<Float64Array>;
  close(): void;
}

/** The most elements `readAll` returns: it is meant for coordinates, not for fields. */
const READ_ALL_LIMIT = 1 << 25;

// ------------------------------------------------------------------ opening

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Open by content (magic bytes "CDF\x01"/"CDF\x02" or the HDF5 signature), not by extension. Errors name the file. */
export async function openNetcdf(path: string): Promise<NetcdfFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new Error(`${path}: cannot open NetCDF file (${(e as Error).message})`);
  }
  let handOff = false;
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(8, size));
    await fh.read(head, 0, head.length, 0);
    if (head.length >= 4 && head[0] === 0x43 && head[1] === 0x44 && head[2] === 0x46) {
      const version = head[3];
      if (version === 1 || version === 2) {
        const file = await Netcdf3File.open(path, fh, size);
        handOff = true;
        return file;
      }
      if (version === 5) throw new Error(`${path}: NetCDF-3 CDF-5 (64-bit data) files are not supported`);
      throw new Error(`${path}: unknown NetCDF-3 version byte ${version}`);
    }
    // HDF5 allows a user block: the signature sits at 0, 512, 1024, 2048, …
    for (let at = 0; at + 8 <= size; at = at === 0 ? 512 : at * 2) {
      const sig = Buffer.alloc(8);
      await fh.read(sig, 0, 8, at);
      if (HDF5_SIGNATURE.every((b, i) => sig[i] === b)) return await Netcdf4File.open(path);
      if (at >= 1 << 20) break;
    }
    const shown = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(
      `${path}: not a NetCDF file (expected "CDF\\x01", "CDF\\x02" or the HDF5 signature; it starts with ${size === 0 ? "nothing: the file is empty" : `bytes ${shown}`})`,
    );
  } catch (e) {
    // Node's read errors (EISDIR, EIO) do not carry the path.
    const msg = (e as Error).message;
    throw msg.startsWith(path) ? e : new Error(`${path}: ${msg}`);
  } finally {
    if (!handOff) await fh.close().catch(() => undefined);
  }
}

// ------------------------------------------------------------------ shared helpers

type RawArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const BYTES: Record<string, number> = { i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8, f4: 4, f8: 8 };

/** Host-order bytes of `dtype` values as a typed array (copied when not aligned). */
function typedView(bytes: Uint8Array, dtype: string): RawArray {
  const size = BYTES[dtype]!;
  if (bytes.byteOffset % size !== 0) bytes = bytes.slice();
  const n = bytes.length / size;
  const { buffer, byteOffset } = bytes;
  switch (dtype) {
    case "i1":
      return new Int8Array(buffer, byteOffset, n);
    case "u1":
      return new Uint8Array(buffer, byteOffset, n);
    case "i2":
      return new Int16Array(buffer, byteOffset, n);
    case "u2":
      return new Uint16Array(buffer, byteOffset, n);
    case "i4":
      return new Int32Array(buffer, byteOffset, n);
    case "u4":
      return new Uint32Array(buffer, byteOffset, n);
    case "i8":
      return new BigInt64Array(buffer, byteOffset, n);
    case "u8":
      return new BigUint64Array(buffer, byteOffset, n);
    case "f4":
      return new Float32Array(buffer, byteOffset, n);
    default:
      return new Float64Array(buffer, byteOffset, n);
  }
}

function numAttr(attrs: Record<string, NcAttrValue>, name: string): number[] | undefined {
  const a = attrs[name];
  if (a === undefined || typeof a === "string") return undefined;
  return typeof a === "number" ? [a] : a;
}

/**
 * Unpack raw stored values into `out`, CF style. Fills and the valid range are compared on the
 * stored value (after the `_Unsigned` reinterpretation, with the attribute cast to the storage type,
 * as netCDF4-python does), then scale_factor/add_offset are applied in float64.
 */
function unpackInto(raw: RawArray, v: NcVariable, out: Float32Array | Float64Array): void {
  const dt = v.dtype;
  const unsigned = dt.startsWith("i") && String(v.attrs._Unsigned ?? "").toLowerCase() === "true";
  let src: ArrayLike<number | bigint> = raw;
  let stored = dt;
  if (unsigned) {
    stored = "u" + dt.slice(1);
    src = typedView(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), stored);
  }
  // An attribute value as the stored type would hold it (e.g. _FillValue -1 on an _Unsigned byte is 255).
  const asStored = (x: number): number => {
    if (stored === "f4") return Math.fround(x);
    if (stored.startsWith("u") && x < 0) return x + 2 ** (8 * BYTES[stored]!);
    return x;
  };
  const fills = new Set<number>();
  const fill = numAttr(v.attrs, "_FillValue");
  if (fill?.length) fills.add(asStored(fill[0]!));
  for (const m of numAttr(v.attrs, "missing_value") ?? []) fills.add(asStored(m));
  let lo = -Infinity;
  let hi = Infinity;
  const range = numAttr(v.attrs, "valid_range");
  if (range && range.length >= 2) {
    lo = asStored(range[0]!);
    hi = asStored(range[1]!);
  } else {
    const vmin = numAttr(v.attrs, "valid_min");
    const vmax = numAttr(v.attrs, "valid_max");
    if (vmin?.length) lo = asStored(vmin[0]!);
    if (vmax?.length) hi = asStored(vmax[0]!);
  }
  const scale = numAttr(v.attrs, "scale_factor")?.[0] ?? 1;
  const offset = numAttr(v.attrs, "add_offset")?.[0] ?? 0;
  const checkFills = fills.size > 0;
  for (let i = 0; i < out.length; i++) {
    const x = Number(src[i]!);
    out[i] = x !== x || x < lo || x > hi || (checkFills && fills.has(x)) ? NaN : x * scale + offset;
  }
}

function describeDims(v: NcVariable): string {
  return `(${v.dims.map((d) => `${d.name}=${d.size}`).join(", ")})`;
}

/** Common checks and lookups of both formats. */
abstract class BaseFile implements NetcdfFile {
  abstract readonly format: string;
  readonly variables: NcVariable[] = [];
  dimensions: NcDimension[] = [];
  attrs: Record<string, NcAttrValue> = {};
  protected closed = false;
  protected readonly byName = new Map<string, NcVariable>();

  constructor(readonly path: string) {}

  protected add(v: NcVariable): void {
    this.variables.push(v);
    this.byName.set(v.name, v);
  }

  variable(name: string): NcVariable {
    const v = this.byName.get(name);
    if (v === undefined) {
      const have = this.variables.map((x) => `${x.name}${describeDims(x)}`).join(", ");
      throw new Error(`${this.path}: no variable "${name}"; the file has ${have || "no variables"}`);
    }
    return v;
  }

  /** The variable, checked to be open, numeric and sliceable with `lead`. */
  protected sliceTarget(name: string, lead: number[]): NcVariable {
    const v = this.numeric(name, "readSlice");
    const rank = v.dims.length;
    if (rank < 2)
      throw new Error(`${this.path}: variable "${name}" has rank ${rank} ${describeDims(v)}; readSlice needs rank ≥ 2`);
    if (lead.length !== rank - 2)
      throw new Error(
        `${this.path}: variable "${name}" ${describeDims(v)} needs ${rank - 2} leading index(es) for a 2-D slice, got ${lead.length} ([${lead.join(", ")}])`,
      );
    lead.forEach((k, i) => {
      const d = v.dims[i]!;
      if (!Number.isInteger(k) || k < 0 || k >= d.size)
        throw new Error(
          `${this.path}: variable "${name}": index ${k} is out of range for dimension "${d.name}" (size ${d.size})`,
        );
    });
    return v;
  }

  protected numeric(name: string, what: string): NcVariable {
    if (this.closed) throw new Error(`${this.path}: ${what}("${name}") after close()`);
    const v = this.variable(name);
    if (BYTES[v.dtype] === undefined)
      throw new Error(`${this.path}: variable "${name}" has type ${v.dtype}; ${what} reads numeric variables only`);
    return v;
  }

  protected allTarget(name: string): NcVariable {
    const v = this.numeric(name, "readAll");
    const n = v.dims.reduce((p, d) => p * d.size, 1);
    if (n > READ_ALL_LIMIT)
      throw new Error(
        `${this.path}: variable "${name}" ${describeDims(v)} has ${n} values; readAll is for small variables, use readSlice`,
      );
    return v;
  }

  abstract readSlice(name: string, lead: number[]): Promise<Float32Array>;
  abstract readAll(name: string): Promise<Float64Array>;
  abstract close(): void;
}

// ------------------------------------------------------------------ NetCDF-3

const NC3_DTYPE: Record<string, string> = { byte: "i1", char: "char", short: "i2", int: "i4", float: "f4", double: "f8" };
const NC3_SIZE: Record<string, number> = { i1: 1, char: 1, i2: 2, i4: 4, f4: 4, f8: 8 };
/** The largest header we try to parse; a header that does not parse within it is corrupt. */
const NC3_HEADER_LIMIT = 64 << 20;
/** numrecs of a file still being written ("streaming"): count the records from the file size. */
const NC3_STREAMING = 0xffffffff;

/** netcdfjs reads names and text one signed byte per UTF-16 unit; recover the UTF-8 bytes. */
function fixText(s: string): string {
  if (!/[\u0080-\uffff]/.test(s)) return s;
  const bytes = Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  return new TextDecoder().decode(bytes);
}

function nc3Attrs(list: readonly { name: string; type: string; value: unknown }[] | undefined): Record<string, NcAttrValue> {
  const attrs: Record<string, NcAttrValue> = {};
  for (const a of list ?? []) {
    const v = a.value;
    let out: NcAttrValue;
    if (typeof v === "string") out = fixText(v);
    else if (typeof v === "number") out = v;
    // Byte attributes come back as arrays even with one element.
    else if (Array.isArray(v)) out = v.length === 1 ? Number(v[0]) : v.map(Number);
    else continue;
    attrs[fixText(a.name)] = out;
  }
  return attrs;
}

interface Nc3Layout {
  begin: number;
  record: boolean;
  /** Bytes per element. */
  elt: number;
}

/** Read exactly `length` bytes at `position`, or fail naming the file: a short read means truncation. */
async function readExact(fh: FileHandle, path: string, buf: Uint8Array, at: number, length: number, position: number) {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, at + done, length - done, position + done);
    if (bytesRead === 0)
      throw new Error(`${path}: file is truncated (wanted bytes ${position}..${position + length}, it ends at ${position + done})`);
    done += bytesRead;
  }
}

/** Big-endian bytes (owned, modified in place) as a typed array in host order. */
function fromBigEndian(buf: Buffer, dtype: string): RawArray {
  if (endianness() === "LE") {
    if (BYTES[dtype] === 2) buf.swap16();
    else if (BYTES[dtype] === 4) buf.swap32();
    else if (BYTES[dtype] === 8) buf.swap64();
  }
  return typedView(buf, dtype);
}

class Netcdf3File extends BaseFile {
  format = "";
  private readonly layout = new Map<string, Nc3Layout>();
  private recStep = 0;

  private constructor(
    path: string,
    private readonly fh: FileHandle,
  ) {
    super(path);
  }

  static async open(path: string, fh: FileHandle, size: number): Promise<Netcdf3File> {
    // netcdfjs parses the header from a buffer and touches no data in its constructor, so a prefix
    // of the file is enough: start with 64 KiB and double while the parse runs off the end.
    let n = Math.min(64 << 10, size);
    let reader: NetCDFReader;
    for (;;) {
      const buf = Buffer.alloc(n);
      await readExact(fh, path, buf, 0, n, 0);
      try {
        reader = new NetCDFReader(buf);
        break;
      } catch (e) {
        const msg = (e as Error).message;
        const ranOff = e instanceof RangeError && /bounds/i.test(msg);
        if (ranOff && n < size && n < NC3_HEADER_LIMIT) {
          n = Math.min(2 * n, size);
          continue;
        }
        if (ranOff && n >= size) throw new Error(`${path}: truncated NetCDF-3 file: the header runs past the end (${size} bytes)`);
        if (/offsets larger than 4GB/.test(msg))
          throw new Error(`${path}: a non-record variable starts beyond 4 GiB, which netcdfjs cannot parse`);
        throw new Error(`${path}: invalid NetCDF-3 header (${msg})`);
      }
    }
    const f = new Netcdf3File(path, fh);
    f.init(reader, size);
    return f;
  }

  private init(r: NetCDFReader, size: number): void {
    const h = r.header;
    this.format = h.version === 1 ? "netcdf3-classic" : "netcdf3-64bit-offset";
    const recId = h.recordDimension.id;
    const vars = (h.variables ?? []) as unknown as {
      name: string;
      dimensions: number[];
      attributes: { name: string; type: string; value: unknown }[];
      type: string;
      offset: number;
      record: boolean;
    }[];
    const elt = (t: string) => NC3_SIZE[NC3_DTYPE[t] ?? ""] ?? 0;
    const perRecord = (v: (typeof vars)[number]) =>
      v.dimensions.slice(1).reduce((p, d) => p * h.dimensions[d]!.size, elt(v.type));
    // Records hold each record variable padded to 4 bytes, except when there is exactly one record
    // variable: then records are packed (netCDF-C; netcdfjs's recordStep gets this case wrong).
    const recVars = vars.filter((v) => v.record);
    this.recStep =
      recVars.length === 1 ? perRecord(recVars[0]!) : recVars.reduce((s, v) => s + Math.ceil(perRecord(v) / 4) * 4, 0);
    let numrecs = h.recordDimension.length;
    if (numrecs === NC3_STREAMING)
      numrecs = recVars.length && this.recStep ? Math.floor((size - recVars[0]!.offset) / this.recStep) : 0;
    this.dimensions = (h.dimensions ?? []).map((d, i) =>
      i === recId ? { name: fixText(d.name), size: numrecs, unlimited: true } : { name: fixText(d.name), size: d.size },
    );
    this.attrs = nc3Attrs(h.globalAttributes);
    let end = 0;
    for (const v of vars) {
      const dtype = NC3_DTYPE[v.type];
      if (dtype === undefined) throw new Error(`${this.path}: variable "${v.name}" has unknown NetCDF-3 type ${v.type}`);
      const dims = v.dimensions.map((d) => this.dimensions[d]!);
      const nv: NcVariable = { name: fixText(v.name), dims, dtype, attrs: nc3Attrs(v.attributes) };
      this.add(nv);
      this.layout.set(nv.name, { begin: v.offset, record: v.record, elt: elt(v.type) });
      const last = v.record
        ? numrecs > 0
          ? v.offset + (numrecs - 1) * this.recStep + perRecord(v)
          : 0
        : dims.reduce((p, d) => p * d.size, elt(v.type)) + v.offset;
      end = Math.max(end, last);
    }
    // A partial download is the usual way to get a broken NetCDF-3 file: say so at open.
    if (size < end)
      throw new Error(`${this.path}: truncated NetCDF-3 file: the header describes ${end} bytes but the file has ${size}`);
  }

  async readSlice(name: string, lead: number[]): Promise<Float32Array> {
    const v = this.sliceTarget(name, lead);
    const L = this.layout.get(v.name)!;
    const rank = v.dims.length;
    const [H, W] = [v.dims[rank - 2]!.size, v.dims[rank - 1]!.size];
    const bytes = H * W * L.elt;
    const buf = Buffer.alloc(bytes);
    if (L.record && rank === 2) {
      // (record, x): each row is in a different record.
      for (let r = 0; r < H; r++) await readExact(this.fh, this.path, buf, r * W * L.elt, W * L.elt, L.begin + r * this.recStep);
    } else {
      // Index of the slice among the slices of the (per-record) block, C order over the lead dims.
      const from = L.record ? 1 : 0;
      let k = 0;
      for (let i = from; i < rank - 2; i++) k = k * v.dims[i]!.size + lead[i]!;
      const pos = L.begin + (L.record ? lead[0]! * this.recStep : 0) + k * bytes;
      await readExact(this.fh, this.path, buf, 0, bytes, pos);
    }
    const out = new Float32Array(H * W);
    unpackInto(fromBigEndian(buf, v.dtype), v, out);
    return out;
  }

  async readAll(name: string): Promise<Float64Array> {
    const v = this.allTarget(name);
    const L = this.layout.get(v.name)!;
    const n = v.dims.reduce((p, d) => p * d.size, 1);
    const buf = Buffer.alloc(n * L.elt);
    if (!L.record || n === 0) await readExact(this.fh, this.path, buf, 0, buf.length, L.begin);
    else {
      const per = buf.length / v.dims[0]!.size;
      for (let r = 0; r < v.dims[0]!.size; r++) await readExact(this.fh, this.path, buf, r * per, per, L.begin + r * this.recStep);
    }
    const out = new Float64Array(n);
    unpackInto(fromBigEndian(buf, v.dtype), v, out);
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.fh.close().catch(() => undefined);
  }
}

// ------------------------------------------------------------------ NetCDF-4 (HDF5)

type H5Lib = typeof import("h5wasm/node").default;
type H5Module = Awaited<H5Lib["ready"]>;
type H5Dataset = InstanceType<H5Lib["Dataset"]>;

/** Attributes netCDF-C uses for its own bookkeeping (and hides from ncdump). */
const NC4_HIDDEN_ATTRS = new Set([
  "CLASS",
  "NAME",
  "REFERENCE_LIST",
  "DIMENSION_LIST",
  "_Netcdf4Dimid",
  "_Netcdf4Coordinates",
  "_NCProperties",
  "_nc3_strict",
  "_IsNetcdf4",
  "_SuperblockVersion",
]);
/** The NAME netCDF-C gives the dataset it creates for a dimension that has no coordinate variable. */
const NC4_PHONY_DIM = "This is a netCDF dimension but not a netCDF variable";
/** Prefix netCDF-C puts on a variable named like a dimension it is not the coordinate of. */
const NC4_NON_COORD = "_nc4_non_coord_";

function h5Dtype(m: H5Dataset["metadata"]): string {
  switch (m.type) {
    case 0: // H5T_INTEGER
      return `${m.signed ? "i" : "u"}${m.size}`;
    case 1: // H5T_FLOAT
      return m.size === 4 ? "f4" : m.size === 8 ? "f8" : "other";
    case 3: // H5T_STRING: netCDF-4 stores NC_CHAR as 1-byte fixed strings and NC_STRING as vlen
      return m.vlen || m.size !== 1 ? "string" : "char";
    default:
      return "other";
  }
}

function h5AttrValue(v: unknown): NcAttrValue | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const arr = Array.from(v as unknown as ArrayLike<number | bigint>, Number);
    return arr.length === 1 ? arr[0]! : arr;
  }
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === "string")) return v.join("\n");
    if (v.every((x) => typeof x === "number" || typeof x === "bigint")) {
      const arr = v.map(Number);
      return arr.length === 1 ? arr[0]! : arr;
    }
  }
  return undefined;
}

function readH5Attrs(obj: { attrs: Record<string, { value: unknown }> }): Record<string, NcAttrValue> {
  const out: Record<string, NcAttrValue> = {};
  const attrs = obj.attrs;
  for (const name of Object.keys(attrs)) {
    if (NC4_HIDDEN_ATTRS.has(name)) continue;
    let v: NcAttrValue | undefined;
    try {
      v = h5AttrValue(attrs[name]!.value);
    } catch {
      v = undefined; // a type h5wasm cannot convert (references, compounds): not a NetCDF attribute
    }
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/**
 * h5wasm, loaded on the first NetCDF-4 file: instantiating its WebAssembly costs ~200 ms and ~40 MB,
 * which users of NetCDF-3 only (or of other modules importing this one) should not pay.
 */
let h5: Promise<{ lib: H5Lib; M: H5Module }> | undefined;
function loadH5(): Promise<{ lib: H5Lib; M: H5Module }> {
  h5 ??= import("h5wasm/node").then(async ({ default: lib }) => ({ lib, M: await lib.ready }));
  return h5;
}

class Netcdf4File extends BaseFile {
  format = "netcdf4";
  private readonly h5paths = new Map<string, string>();
  private readonly filters = new Map<string, string>();

  private constructor(
    path: string,
    private readonly file: InstanceType<H5Lib["File"]>,
    private readonly lib: H5Lib,
    private readonly M: H5Module,
  ) {
    super(path);
  }

  static async open(path: string): Promise<Netcdf4File> {
    const { lib, M } = await loadH5();
    // The Node build of h5wasm uses NODERAWFS: HDF5 reads the real file lazily through node:fs, so
    // there is nothing to copy into an in-memory file system; an absolute path avoids any doubt
    // about the working directory. h5wasm does not throw on failure: it returns file_id < 0.
    const file = new lib.File(resolve(path), "r");
    if (file.file_id < 0n) throw new Error(`${path}: HDF5 could not open the file (see the HDF5-DIAG lines above)`);
    const f = new Netcdf4File(path, file, lib, M);
    try {
      f.init();
    } catch (e) {
      f.close();
      throw e instanceof Error && e.message.startsWith(path) ? e : new Error(`${path}: ${(e as Error).message}`);
    }
    return f;
  }

  private init(): void {
    const file = this.file;
    this.attrs = readH5Attrs(file as unknown as { attrs: Record<string, { value: unknown }> });
    const dims = new Map<string, NcDimension>();
    const phonySizes = new Map<number, string>();
    const note = (d: NcDimension) => {
      const had = dims.get(d.name);
      // An unlimited dimension's length is the largest extent of the variables that use it.
      if (had === undefined) dims.set(d.name, { ...d });
      else {
        had.size = Math.max(had.size, d.size);
        if (d.unlimited) had.unlimited = true;
      }
    };
    for (const key of file.keys()) {
      const obj = file.get(key);
      if (!(obj instanceof this.lib.Dataset)) continue;
      const m = obj.metadata;
      const shape = m.shape;
      if (shape === null) continue;
      const names = Object.keys(obj.attrs);
      const nameAttr = names.includes("NAME") ? obj.attrs.NAME!.value : null;
      const isScale = names.includes("CLASS") && obj.attrs.CLASS!.value === "DIMENSION_SCALE";
      const maxshape = m.maxshape ?? shape;
      const unlimitedAt = (i: number) => maxshape[i] === null || (maxshape[i] as number) < 0 || maxshape[i]! > 2 ** 53;
      if (isScale && typeof nameAttr === "string" && nameAttr.startsWith(NC4_PHONY_DIM)) {
        note({ name: key, size: shape[0] ?? 0, ...(unlimitedAt(0) ? { unlimited: true } : {}) });
        continue;
      }
      const name = key.startsWith(NC4_NON_COORD) ? key.slice(NC4_NON_COORD.length) : key;
      const labels = shape.length ? obj.get_dimension_labels() : [];
      const vdims: NcDimension[] = shape.map((size, i) => {
        const scales = obj.get_attached_scales(i);
        let dn: string;
        if (scales.length > 0) dn = scales[0]!.slice(scales[0]!.lastIndexOf("/") + 1);
        else if (isScale && shape.length === 1) dn = key;
        else if (labels[i]) dn = labels[i]!;
        else {
          // A plain HDF5 dataset: name the axis after its size, as netCDF-C's phony_dim_N does.
          if (!phonySizes.has(size)) phonySizes.set(size, `phony_dim_${phonySizes.size}`);
          dn = phonySizes.get(size)!;
        }
        const d: NcDimension = { name: dn, size, ...(unlimitedAt(i) ? { unlimited: true } : {}) };
        note(d);
        return d;
      });
      const v: NcVariable = { name, dims: vdims, dtype: h5Dtype(m), attrs: readH5Attrs(obj) };
      this.add(v);
      this.h5paths.set(name, "/" + key);
      const filters = obj.filters;
      if (filters.length) this.filters.set(name, filters.map((x) => x.name).join("+"));
    }
    this.dimensions = [...dims.values()];
  }

  /**
   * One hyperslab as a typed array. Calls h5wasm's module directly rather than `Dataset.slice`,
   * because `slice` ignores HDF5's status: a failed read (corrupt chunk, missing filter) would
   * otherwise come back as uninitialised memory.
   */
  private read(v: NcVariable, start: number[] | null, count: number[] | null): RawArray {
    const M = this.M;
    const n = (count ?? v.dims.map((d) => d.size)).reduce((p, c) => p * c, 1);
    const nbytes = n * BYTES[v.dtype]!;
    if (n === 0) return typedView(new Uint8Array(0), v.dtype);
    const ptr = M._malloc(nbytes);
    if (!ptr) throw new Error(`${this.path}: out of WebAssembly memory reading ${nbytes} bytes of "${v.name}"`);
    try {
      const big = (a: number[] | null) => (a === null ? null : a.map(BigInt));
      const status = M.get_dataset_data(
        this.file.file_id,
        this.h5paths.get(v.name)!,
        big(count),
        big(start),
        count === null ? null : count.map(() => 1n),
        BigInt(ptr),
      );
      if (status < 0) {
        const f = this.filters.get(v.name);
        throw new Error(
          `${this.path}: HDF5 failed to read variable "${v.name}"${start ? ` at [${start.join(", ")}]` : ""}${f ? ` (filters ${f}: corrupt data or a filter this build lacks)` : ""}`,
        );
      }
      // The C side reads into a little-endian memory type whatever the file's byte order.
      return typedView(M.HEAPU8.slice(ptr, ptr + nbytes), v.dtype);
    } finally {
      M._free(ptr);
    }
  }

  async readSlice(name: string, lead: number[]): Promise<Float32Array> {
    const v = this.sliceTarget(name, lead);
    const rank = v.dims.length;
    const [H, W] = [v.dims[rank - 2]!.size, v.dims[rank - 1]!.size];
    const raw = this.read(v, [...lead, 0, 0], [...lead.map(() => 1), H, W]);
    const out = new Float32Array(H * W);
    unpackInto(raw, v, out);
    return out;
  }

  async readAll(name: string): Promise<Float64Array> {
    const v = this.allTarget(name);
    const raw = this.read(v, null, null);
    const out = new Float64Array(raw.length);
    unpackInto(raw, v, out);
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Closing twice makes HDF5 print an error stack, hence the flag.
    this.file.close();
  }
}

// ------------------------------------------------------------------ NetCDF-3 writer

/** Storage types `writeNetcdf3` writes. */
export type Nc3WriteDtype = "i2" | "i4" | "f4" | "f8";

/** An attribute with an explicit storage type (plain numbers are written as f8, see `Nc3WriteVariable`). */
export interface Nc3TypedAttr {
  dtype: Nc3WriteDtype;
  value: number | number[];
}

/** An attribute for `writeNetcdf3`: text, numbers (f8), or numbers with a type. */
export type Nc3WriteAttr = NcAttrValue | Nc3TypedAttr;

/** A dimension for `writeNetcdf3`. At most one is unlimited, and its size is the number of records. */
export interface Nc3WriteDimension {
  name: string;
  size: number;
  unlimited?: boolean;
}

/** A variable for `writeNetcdf3`. */
export interface Nc3WriteVariable {
  name: string;
  /** Dimension names, outermost first; an unlimited dimension may only come first. [] is a scalar. */
  dims: string[];
  dtype: Nc3WriteDtype;
  /** All values in C order (integers for i2/i4, in range: nothing is wrapped or rounded). */
  data: ArrayLike<number>;
  /**
   * Attributes. Plain numbers are written as f8, except _FillValue, missing_value, valid_min,
   * valid_max and valid_range, which are written in the variable's type as CF (and netCDF-C for
   * _FillValue) require.
   */
  attrs?: Record<string, Nc3WriteAttr>;
}

/** Everything `writeNetcdf3` writes. */
export interface Nc3WriteSpec {
  dims: Nc3WriteDimension[];
  variables: Nc3WriteVariable[];
  /** Global attributes. */
  attrs?: Record<string, Nc3WriteAttr>;
}

const NC_TYPE: Record<Nc3WriteDtype | "char", number> = { char: 2, i2: 3, i4: 4, f4: 5, f8: 6 };
const TYPED_LIKE_VAR = new Set(["_FillValue", "missing_value", "valid_min", "valid_max", "valid_range"]);
const NC3_MAX_CDF1 = 2 ** 31 - 1;

/** A growable big-endian byte writer. */
class BeWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u32(x: number): void {
    this.room(4);
    this.view.setUint32(this.length, x);
    this.length += 4;
  }
  u64(x: number): void {
    this.u32(Math.floor(x / 2 ** 32));
    this.u32(x % 2 ** 32);
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  pad(): void {
    const n = (4 - (this.length % 4)) % 4;
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function checkValues(values: ArrayLike<number>, dtype: Nc3WriteDtype, what: string): void {
  if (dtype === "f4" || dtype === "f8") return;
  const [lo, hi] = dtype === "i2" ? [-32768, 32767] : [-(2 ** 31), 2 ** 31 - 1];
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (!Number.isInteger(x) || x < lo || x > hi)
      throw new Error(`${what}: value ${x} at index ${i} is not an ${dtype === "i2" ? "int16" : "int32"}`);
  }
}

/** Encode `count` values from `from` big-endian into `out` at byte `at`. */
function encodeValues(
  values: ArrayLike<number>,
  from: number,
  count: number,
  dtype: Nc3WriteDtype,
  out: DataView,
  at: number,
): void {
  const v = (i: number) => values[from + i]!;
  if (dtype === "i2") for (let i = 0; i < count; i++) out.setInt16(at + 2 * i, v(i));
  else if (dtype === "i4") for (let i = 0; i < count; i++) out.setInt32(at + 4 * i, v(i));
  else if (dtype === "f4") for (let i = 0; i < count; i++) out.setFloat32(at + 4 * i, v(i));
  else for (let i = 0; i < count; i++) out.setFloat64(at + 8 * i, v(i));
}

const WRITE_SIZE: Record<Nc3WriteDtype, number> = { i2: 2, i4: 4, f4: 4, f8: 8 };

function checkName(name: string, what: string): void {
  // The classic format's name rules, minus the Unicode normalisation details.
  const control = [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (control || !/^[\p{L}\p{N}_][^/]*$/u.test(name) || /\s$/.test(name))
    throw new Error(`${what}: "${name}" is not a valid NetCDF name`);
}

/**
 * Write a classic NetCDF-3 file atomically (temporary file + rename): CDF-1, or CDF-2 (64-bit
 * offsets) when a variable would start beyond 2 GiB. The whole file is built in memory, so this is
 * for files of modest size.
 */
export async function writeNetcdf3(path: string, spec: Nc3WriteSpec): Promise<void> {
  const where = `${path}`;
  const dimIndex = new Map<string, number>();
  const unlimited = spec.dims.filter((d) => d.unlimited);
  if (unlimited.length > 1)
    throw new Error(`${where}: only one unlimited dimension is allowed, got ${unlimited.map((d) => d.name).join(", ")}`);
  spec.dims.forEach((d, i) => {
    checkName(d.name, `${where}: dimension`);
    if (dimIndex.has(d.name)) throw new Error(`${where}: dimension "${d.name}" is defined twice`);
    if (!Number.isInteger(d.size) || d.size < (d.unlimited ? 0 : 1) || d.size > 2 ** 32 - 1)
      throw new Error(`${where}: dimension "${d.name}" has invalid size ${d.size}`);
    dimIndex.set(d.name, i);
  });
  const numrecs = unlimited[0]?.size ?? 0;
  const seen = new Set<string>();
  const vars = spec.variables.map((v) => {
    const what = `${where}: variable "${v.name}"`;
    checkName(v.name, `${where}: variable`);
    if (seen.has(v.name)) throw new Error(`${where}: variable "${v.name}" is defined twice`);
    seen.add(v.name);
    if (NC_TYPE[v.dtype] === undefined) throw new Error(`${what}: unsupported dtype ${String(v.dtype)} (i2, i4, f4, f8)`);
    const ids = v.dims.map((n) => {
      const i = dimIndex.get(n);
      if (i === undefined) throw new Error(`${what}: unknown dimension "${n}"`);
      return i;
    });
    const record = ids.length > 0 && spec.dims[ids[0]!]!.unlimited === true;
    if (ids.slice(1).some((i) => spec.dims[i]!.unlimited))
      throw new Error(`${what}: the unlimited dimension may only be the first`);
    const shape = ids.map((i) => spec.dims[i]!.size);
    const n = shape.reduce((p, s) => p * s, 1);
    if (v.data.length !== n)
      throw new Error(`${what}: ${v.data.length} values for shape [${shape.join(", ")}] (${n} expected)`);
    checkValues(v.data, v.dtype, what);
    // Bytes of one record of a record variable (unpadded).
    const perRecord = shape.slice(1).reduce((p, s) => p * s, WRITE_SIZE[v.dtype]);
    return { v, ids, record, n, perRecord };
  });

  const encodeAttrs = (w: BeWriter, attrs: Record<string, Nc3WriteAttr> | undefined, varType: Nc3WriteDtype | null, what: string) => {
    const entries = Object.entries(attrs ?? {});
    if (entries.length === 0) {
      w.u32(0);
      w.u32(0);
      return;
    }
    w.u32(12); // NC_ATTRIBUTE
    w.u32(entries.length);
    for (const [name, a] of entries) {
      checkName(name, `${what}: attribute`);
      const nameBytes = new TextEncoder().encode(name);
      w.u32(nameBytes.length);
      w.bytes(nameBytes);
      w.pad();
      if (typeof a === "string") {
        const b = new TextEncoder().encode(a);
        w.u32(NC_TYPE.char);
        w.u32(b.length);
        w.bytes(b);
        w.pad();
        continue;
      }
      let dtype: Nc3WriteDtype;
      let values: number[];
      if (typeof a === "number" || Array.isArray(a)) {
        dtype = varType !== null && TYPED_LIKE_VAR.has(name) ? varType : "f8";
        values = typeof a === "number" ? [a] : a;
      } else {
        dtype = a.dtype;
        values = typeof a.value === "number" ? [a.value] : a.value;
      }
      if (NC_TYPE[dtype] === undefined) throw new Error(`${what}: attribute "${name}" has unsupported dtype ${String(dtype)}`);
      checkValues(values, dtype, `${what}: attribute "${name}"`);
      w.u32(NC_TYPE[dtype]);
      w.u32(values.length);
      const b = new Uint8Array(values.length * WRITE_SIZE[dtype]);
      encodeValues(values, 0, values.length, dtype, new DataView(b.buffer), 0);
      w.bytes(b);
      w.pad();
    }
  };

  const pad4 = (x: number) => Math.ceil(x / 4) * 4;
  const header = (version: 1 | 2, begins: number[]): Uint8Array => {
    const w = new BeWriter();
    w.bytes(Uint8Array.of(0x43, 0x44, 0x46, version));
    w.u32(numrecs);
    if (spec.dims.length === 0) {
      w.u32(0);
      w.u32(0);
    } else {
      w.u32(10); // NC_DIMENSION
      w.u32(spec.dims.length);
      for (const d of spec.dims) {
        const b = new TextEncoder().encode(d.name);
        w.u32(b.length);
        w.bytes(b);
        w.pad();
        w.u32(d.unlimited ? 0 : d.size);
      }
    }
    encodeAttrs(w, spec.attrs, null, `${where}: global`);
    if (vars.length === 0) {
      w.u32(0);
      w.u32(0);
    } else {
      w.u32(11); // NC_VARIABLE
      w.u32(vars.length);
      vars.forEach(({ v, ids, record, n, perRecord }, k) => {
        const b = new TextEncoder().encode(v.name);
        w.u32(b.length);
        w.bytes(b);
        w.pad();
        w.u32(ids.length);
        for (const i of ids) w.u32(i);
        encodeAttrs(w, v.attrs, v.dtype, `${where}: variable "${v.name}"`);
        w.u32(NC_TYPE[v.dtype]);
        // vsize: padded bytes of the variable (of one record for record variables), 2^32-1 if larger.
        const vsize = pad4(record ? perRecord : n * WRITE_SIZE[v.dtype]);
        w.u32(vsize > 2 ** 32 - 4 ? 2 ** 32 - 1 : vsize);
        if (version === 1) w.u32(begins[k]!);
        else w.u64(begins[k]!);
      });
    }
    return w.result();
  };

  // Layout: header, fixed variables (each padded to 4), then the records. With exactly one record
  // variable its records are not padded (the format's special case, which readers assume).
  const recVars = vars.filter((x) => x.record);
  const recStep = recVars.length === 1 ? recVars[0]!.perRecord : recVars.reduce((s, x) => s + pad4(x.perRecord), 0);
  const layout = (headerLength: number) => {
    const begins: number[] = new Array(vars.length).fill(0);
    let at = headerLength;
    vars.forEach((x, k) => {
      if (x.record) return;
      begins[k] = at;
      at += pad4(x.n * WRITE_SIZE[x.v.dtype]);
    });
    let recAt = at;
    vars.forEach((x, k) => {
      if (!x.record) return;
      begins[k] = recAt;
      recAt += recVars.length === 1 ? x.perRecord : pad4(x.perRecord);
    });
    return { begins, fixedEnd: at };
  };
  let version: 1 | 2 = 1;
  let h = header(1, new Array(vars.length).fill(0));
  let { begins, fixedEnd } = layout(h.length);
  if (begins.some((b) => b > NC3_MAX_CDF1)) {
    version = 2;
    h = header(2, new Array(vars.length).fill(0));
    ({ begins, fixedEnd } = layout(h.length));
  }
  h = header(version, begins);
  const total = fixedEnd + numrecs * recStep;
  const out = new Uint8Array(total);
  out.set(h, 0);
  const view = new DataView(out.buffer);
  vars.forEach((x, k) => {
    if (!x.record) {
      encodeValues(x.v.data, 0, x.n, x.v.dtype, view, begins[k]!);
      return;
    }
    const per = x.perRecord / WRITE_SIZE[x.v.dtype];
    for (let r = 0; r < numrecs; r++) encodeValues(x.v.data, r * per, per, x.v.dtype, view, begins[k]! + r * recStep);
  });
  await writeFileAtomic(path, out);
}
