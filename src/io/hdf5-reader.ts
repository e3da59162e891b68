/**
 * The NetCDF-4 reader: HDF5 files as the CDS has distributed ERA5 since 2024 (float32 zlib+shuffle,
 * chunked, _FillValue NaN, dimension names carried by HDF5 dimension scales).
 *
 * Node only: slices are HDF5 hyperslab reads through h5wasm, whose Node build reads the file on
 * disk lazily (HDF5 itself parses the bytes). Variables are those of the root group (ERA5 files
 * have no subgroups). When HDF5 fails (corrupt chunk, missing filter) it prints its "HDF5-DIAG"
 * error stack to stderr before the error thrown here.
 */
import { resolve } from "node:path";
import {
  NetcdfError,
  NetcdfFileBase,
  NUMERIC_BYTES,
  typedView,
  unpackInto,
  type NcAttrValue,
  type NcDimension,
  type NcVariable,
  type NetcdfFile,
  type RawArray,
} from "./netcdf.js";

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

/** Open a NetCDF-4 (HDF5) file on disk. */
export function openNetcdf4(path: string): Promise<NetcdfFile> {
  return Netcdf4File.open(path);
}

class Netcdf4File extends NetcdfFileBase {
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
    if (file.file_id < 0n)
      throw new NetcdfError(path, "HDF5 could not open the file (see the HDF5-DIAG lines above)");
    const f = new Netcdf4File(path, file, lib, M);
    try {
      f.init();
    } catch (e) {
      f.close();
      // h5wasm's own exceptions come from what the file holds (types it cannot convert, …).
      throw e instanceof NetcdfError ? e : new NetcdfError(path, (e as Error).message);
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
      const unlimitedAt = (i: number) =>
        maxshape[i] === null || (maxshape[i] as number) < 0 || maxshape[i]! > 2 ** 53;
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
    const nbytes = n * NUMERIC_BYTES[v.dtype]!;
    if (n === 0) return typedView(new Uint8Array(0), v.dtype);
    const ptr = M._malloc(nbytes);
    if (!ptr)
      throw new NetcdfError(this.path, `out of WebAssembly memory reading ${nbytes} bytes of "${v.name}"`);
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
        throw new NetcdfError(
          this.path,
          `HDF5 failed to read variable "${v.name}"${start ? ` at [${start.join(", ")}]` : ""}${f ? ` (filters ${f}: corrupt data or a filter this build lacks)` : ""}`,
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
