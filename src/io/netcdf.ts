/**
 * Gridded fields from NetCDF files as ERA5 is distributed by the Copernicus CDS: what both readers
 * share (the file model, CF unpacking, the checks) and the recognition of a file by its magic bytes.
 *
 *  - classic NetCDF-3 (CDF-1) and 64-bit-offset NetCDF-3 (CDF-2), the old CDS format: int16 packed
 *    with scale_factor/add_offset, _FillValue/missing_value, time as the unlimited record dimension;
 *    read by ./netcdf3-reader.ts, portable (it reads through a {@link ByteSource});
 *  - NetCDF-4 (HDF5), the CDS format since 2024: float32 zlib+shuffle, chunked, _FillValue NaN,
 *    dimension names carried by HDF5 dimension scales; read by ./hdf5-reader.ts (Node: h5wasm).
 *
 * Files are many GB, so nothing reads a whole file: a reader parses the header and then reads each
 * slice at its place. `openNetcdf` in ./array-files.ts (Node) opens a path with the right reader;
 * ./netcdf3-writer.ts writes small classic files.
 *
 * Values are unpacked the CF way: fills and the valid range are compared on the packed (stored)
 * value, `_Unsigned = "true"` reinterprets signed integers, then x·scale_factor + add_offset.
 */
import { InputError } from "../util/errors.js";

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

/** Raised for a file that is not a readable NetCDF file, or a variable or slice it does not have; the message starts with the file. */
export class NetcdfError extends InputError {
  constructor(file: string, detail: string) {
    super(file, detail);
    this.name = "NetcdfError";
  }
}

/**
 * Random access to the bytes of a file too large to hold in memory. `name` starts error messages.
 * `read` returns exactly `length` bytes in a fresh buffer the caller may modify, or throws a
 * {@link NetcdfError} (a short read means a truncated file).
 */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A {@link ByteSource} over bytes in memory (a fetched file, a test, a fuzzer). */
export function bytesSource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: bytes.length,
    async read(position, length) {
      if (position + length > bytes.length) throw truncated(name, position, length, bytes.length);
      // A copy (new Uint8Array always copies; Buffer#slice would not): the reader swaps bytes in place.
      return new Uint8Array(bytes.subarray(position, position + length));
    },
    async close() {},
  };
}

/** The error for a read of bytes `position..position+length` from a file that ends at `end`. */
export function truncated(name: string, position: number, length: number, end: number): NetcdfError {
  return new NetcdfError(
    name,
    `file is truncated (wanted bytes ${position}..${position + length}, it ends at ${end})`,
  );
}

// ------------------------------------------------------------------ recognising a file

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Which reader a file needs, by content (magic bytes "CDF\x01"/"CDF\x02" or the HDF5 signature),
 * not by extension; anything else is a {@link NetcdfError} saying what the file starts with.
 */
export async function netcdfKind(src: ByteSource): Promise<"netcdf3" | "hdf5"> {
  const head = await src.read(0, Math.min(8, src.size));
  if (head.length >= 4 && head[0] === 0x43 && head[1] === 0x44 && head[2] === 0x46) {
    const version = head[3];
    if (version === 1 || version === 2) return "netcdf3";
    if (version === 5)
      throw new NetcdfError(src.name, "NetCDF-3 CDF-5 (64-bit data) files are not supported");
    throw new NetcdfError(src.name, `unknown NetCDF-3 version byte ${version}`);
  }
  // HDF5 allows a user block: the signature sits at 0, 512, 1024, 2048, …
  for (let at = 0; at + 8 <= src.size; at = at === 0 ? 512 : at * 2) {
    const sig = await src.read(at, 8);
    if (HDF5_SIGNATURE.every((b, i) => sig[i] === b)) return "hdf5";
    if (at >= 1 << 20) break;
  }
  const shown = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new NetcdfError(
    src.name,
    `not a NetCDF file (expected "CDF\\x01", "CDF\\x02" or the HDF5 signature; it starts with ${src.size === 0 ? "nothing: the file is empty" : `bytes ${shown}`})`,
  );
}

// ------------------------------------------------------------------ shared by the readers

/** The most elements `readAll` returns: it is meant for coordinates, not for fields. */
const READ_ALL_LIMIT = 1 << 25;

/** Stored values of a numeric variable, in host byte order. */
export type RawArray =
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

/** Bytes per value of each numeric storage type; the types readSlice and readAll accept. */
export const NUMERIC_BYTES: Readonly<Record<string, number>> = {
  i1: 1,
  u1: 1,
  i2: 2,
  u2: 2,
  i4: 4,
  u4: 4,
  i8: 8,
  u8: 8,
  f4: 4,
  f8: 8,
};

/** Host-order bytes of `dtype` values as a typed array (copied when not aligned). */
export function typedView(bytes: Uint8Array, dtype: string): RawArray {
  const size = NUMERIC_BYTES[dtype]!;
  if (bytes.byteOffset % size !== 0) bytes = new Uint8Array(bytes);
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
export function unpackInto(raw: RawArray, v: NcVariable, out: Float32Array | Float64Array): void {
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
    if (stored.startsWith("u") && x < 0) return x + 2 ** (8 * NUMERIC_BYTES[stored]!);
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

/** The lookups and checks of both readers; a reader adds how it reads the values. */
export abstract class NetcdfFileBase implements NetcdfFile {
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
      throw new NetcdfError(this.path, `no variable "${name}"; the file has ${have || "no variables"}`);
    }
    return v;
  }

  /** The variable, checked to be open, numeric and sliceable with `lead`. */
  protected sliceTarget(name: string, lead: number[]): NcVariable {
    const v = this.numeric(name, "readSlice");
    const rank = v.dims.length;
    if (rank < 2)
      throw new NetcdfError(
        this.path,
        `variable "${name}" has rank ${rank} ${describeDims(v)}; readSlice needs rank ≥ 2`,
      );
    if (lead.length !== rank - 2)
      throw new NetcdfError(
        this.path,
        `variable "${name}" ${describeDims(v)} needs ${rank - 2} leading index(es) for a 2-D slice, got ${lead.length} ([${lead.join(", ")}])`,
      );
    lead.forEach((k, i) => {
      const d = v.dims[i]!;
      if (!Number.isInteger(k) || k < 0 || k >= d.size)
        throw new NetcdfError(
          this.path,
          `variable "${name}": index ${k} is out of range for dimension "${d.name}" (size ${d.size})`,
        );
    });
    return v;
  }

  protected numeric(name: string, what: string): NcVariable {
    // Using a closed file is a bug of the caller, not of the file.
    if (this.closed) throw new Error(`${this.path}: ${what}("${name}") after close()`);
    const v = this.variable(name);
    if (NUMERIC_BYTES[v.dtype] === undefined)
      throw new NetcdfError(
        this.path,
        `variable "${name}" has type ${v.dtype}; ${what} reads numeric variables only`,
      );
    return v;
  }

  protected allTarget(name: string): NcVariable {
    const v = this.numeric(name, "readAll");
    const n = v.dims.reduce((p, d) => p * d.size, 1);
    if (n > READ_ALL_LIMIT)
      throw new NetcdfError(
        this.path,
        `variable "${name}" ${describeDims(v)} has ${n} values; readAll is for small variables, use readSlice`,
      );
    return v;
  }

  abstract readSlice(name: string, lead: number[]): Promise<Float32Array>;
  abstract readAll(name: string): Promise<Float64Array>;
  abstract close(): void;
}
