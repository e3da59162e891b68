/**
 * The NetCDF-3 writer: small classic files (CDF-1, or CDF-2 when offsets need it) for tests and
 * exports. Portable: a spec in, the file's bytes out; `writeNetcdf3` in ./array-files.ts writes
 * them to disk.
 */
import { NetcdfError, type NcAttrValue } from "./netcdf.js";

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

/** Throws a {@link NetcdfError} naming the file being written. */
type Fail = (detail: string) => never;

function checkValues(values: ArrayLike<number>, dtype: Nc3WriteDtype, what: string, fail: Fail): void {
  if (dtype === "f4" || dtype === "f8") return;
  const [lo, hi] = dtype === "i2" ? [-32768, 32767] : [-(2 ** 31), 2 ** 31 - 1];
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (!Number.isInteger(x) || x < lo || x > hi)
      fail(`${what}: value ${x} at index ${i} is not an ${dtype === "i2" ? "int16" : "int32"}`);
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

function checkName(name: string, what: string, fail: Fail): void {
  // The classic format's name rules, minus the Unicode normalisation details.
  const control = [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (control || !/^[\p{L}\p{N}_][^/]*$/u.test(name) || /\s$/.test(name))
    fail(`${what}: "${name}" is not a valid NetCDF name`);
}

/**
 * Encode a classic NetCDF-3 file: CDF-1, or CDF-2 (64-bit offsets) when a variable would start
 * beyond 2 GiB. The whole file is built in memory, so this is for files of modest size. `path`
 * names the file in the errors of an invalid spec.
 */
export function encodeNetcdf3(spec: Nc3WriteSpec, path: string): Uint8Array {
  const fail: Fail = (detail) => {
    throw new NetcdfError(path, detail);
  };
  const dimIndex = new Map<string, number>();
  const unlimited = spec.dims.filter((d) => d.unlimited);
  if (unlimited.length > 1)
    fail(`only one unlimited dimension is allowed, got ${unlimited.map((d) => d.name).join(", ")}`);
  spec.dims.forEach((d, i) => {
    checkName(d.name, "dimension", fail);
    if (dimIndex.has(d.name)) fail(`dimension "${d.name}" is defined twice`);
    if (!Number.isInteger(d.size) || d.size < (d.unlimited ? 0 : 1) || d.size > 2 ** 32 - 1)
      fail(`dimension "${d.name}" has invalid size ${d.size}`);
    dimIndex.set(d.name, i);
  });
  const numrecs = unlimited[0]?.size ?? 0;
  const seen = new Set<string>();
  const vars = spec.variables.map((v) => {
    const what = `variable "${v.name}"`;
    checkName(v.name, "variable", fail);
    if (seen.has(v.name)) fail(`${what} is defined twice`);
    seen.add(v.name);
    if (NC_TYPE[v.dtype] === undefined)
      fail(`${what}: unsupported dtype ${String(v.dtype)} (i2, i4, f4, f8)`);
    const ids = v.dims.map((n) => {
      const i = dimIndex.get(n);
      if (i === undefined) return fail(`${what}: unknown dimension "${n}"`);
      return i;
    });
    const record = ids.length > 0 && spec.dims[ids[0]!]!.unlimited === true;
    if (ids.slice(1).some((i) => spec.dims[i]!.unlimited))
      fail(`${what}: the unlimited dimension may only be the first`);
    const shape = ids.map((i) => spec.dims[i]!.size);
    const n = shape.reduce((p, s) => p * s, 1);
    if (v.data.length !== n)
      fail(`${what}: ${v.data.length} values for shape [${shape.join(", ")}] (${n} expected)`);
    checkValues(v.data, v.dtype, what, fail);
    // Bytes of one record of a record variable (unpadded).
    const perRecord = shape.slice(1).reduce((p, s) => p * s, WRITE_SIZE[v.dtype]);
    return { v, ids, record, n, perRecord };
  });

  const encodeAttrs = (
    w: BeWriter,
    attrs: Record<string, Nc3WriteAttr> | undefined,
    varType: Nc3WriteDtype | null,
    what: string,
  ) => {
    const entries = Object.entries(attrs ?? {});
    if (entries.length === 0) {
      w.u32(0);
      w.u32(0);
      return;
    }
    w.u32(12); // NC_ATTRIBUTE
    w.u32(entries.length);
    for (const [name, a] of entries) {
      checkName(name, `${what}: attribute`, fail);
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
      if (NC_TYPE[dtype] === undefined)
        fail(`${what}: attribute "${name}" has unsupported dtype ${String(dtype)}`);
      checkValues(values, dtype, `${what}: attribute "${name}"`, fail);
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
    encodeAttrs(w, spec.attrs, null, "global");
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
        encodeAttrs(w, v.attrs, v.dtype, `variable "${v.name}"`);
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
  const recStep =
    recVars.length === 1 ? recVars[0]!.perRecord : recVars.reduce((s, x) => s + pad4(x.perRecord), 0);
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
    for (let r = 0; r < numrecs; r++)
      encodeValues(x.v.data, r * per, per, x.v.dtype, view, begins[k]! + r * recStep);
  });
  return out;
}
