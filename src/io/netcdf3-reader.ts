/**
 * The NetCDF-3 reader: classic (CDF-1) and 64-bit-offset (CDF-2) files, the old CDS format of ERA5.
 *
 * Portable: it reads through a {@link ByteSource}, a file on disk (./array-files.ts) or bytes in
 * memory. The header is parsed by netcdfjs from a prefix of the file, and each slice is then read
 * at its byte offset, so a many-GB file is never read whole.
 */
import { NetCDFReader } from "netcdfjs";
import { HOST_LITTLE_ENDIAN } from "../util/host.js";
import {
  NetcdfError,
  NetcdfFileBase,
  NUMERIC_BYTES,
  typedView,
  unpackInto,
  type ByteSource,
  type NcAttrValue,
  type NcVariable,
  type NetcdfFile,
  type RawArray,
} from "./netcdf.js";

const NC3_DTYPE: Record<string, string> = {
  byte: "i1",
  char: "char",
  short: "i2",
  int: "i4",
  float: "f4",
  double: "f8",
};
const NC3_SIZE: Record<string, number> = { i1: 1, char: 1, i2: 2, i4: 4, f4: 4, f8: 8 };
/** The largest header we try to parse; a header that does not parse within it is corrupt. */
const NC3_HEADER_LIMIT = 64 << 20;
/** numrecs of a file still being written ("streaming"): count the records from the file size. */
const NC3_STREAMING = 0xffffffff;

/** Open a NetCDF-3 file (its first bytes are "CDF\x01" or "CDF\x02"); `close()` closes `src`. */
export async function openNetcdf3(src: ByteSource): Promise<NetcdfFile> {
  // netcdfjs parses the header from a buffer and touches no data in its constructor, so a prefix
  // of the file is enough: start with 64 KiB and double while the parse runs off the end.
  const { name: path, size } = src;
  let n = Math.min(64 << 10, size);
  let reader: NetCDFReader;
  for (;;) {
    const buf = await src.read(0, n);
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
      if (ranOff && n >= size)
        throw new NetcdfError(path, `truncated NetCDF-3 file: the header runs past the end (${size} bytes)`);
      if (/offsets larger than 4GB/.test(msg))
        throw new NetcdfError(path, "a non-record variable starts beyond 4 GiB, which netcdfjs cannot parse");
      throw new NetcdfError(path, `invalid NetCDF-3 header (${msg})`);
    }
  }
  try {
    return new Netcdf3File(src, reader);
  } catch (e) {
    // The constructor only interprets the header netcdfjs parsed: whatever fails there is the file's.
    if (e instanceof NetcdfError) throw e;
    throw new NetcdfError(path, `invalid NetCDF-3 header (${(e as Error).message})`);
  }
}

/** netcdfjs reads names and text one signed byte per UTF-16 unit; recover the UTF-8 bytes. */
function fixText(s: string): string {
  if (!/[\u0080-\uffff]/.test(s)) return s;
  const bytes = Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  return new TextDecoder().decode(bytes);
}

function nc3Attrs(
  list: readonly { name: string; type: string; value: unknown }[] | undefined,
): Record<string, NcAttrValue> {
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

/** Big-endian bytes (owned, modified in place) as a typed array in host order. */
function fromBigEndian(buf: Uint8Array, dtype: string): RawArray {
  const size = NUMERIC_BYTES[dtype]!;
  if (HOST_LITTLE_ENDIAN && size > 1) {
    for (let at = 0; at < buf.length; at += size) {
      for (let i = at, j = at + size - 1; i < j; i++, j--) {
        const t = buf[i]!;
        buf[i] = buf[j]!;
        buf[j] = t;
      }
    }
  }
  return typedView(buf, dtype);
}

class Netcdf3File extends NetcdfFileBase {
  format = "";
  private readonly layout = new Map<string, Nc3Layout>();
  private recStep = 0;

  constructor(
    private readonly src: ByteSource,
    r: NetCDFReader,
  ) {
    super(src.name);
    const size = src.size;
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
      recVars.length === 1
        ? perRecord(recVars[0]!)
        : recVars.reduce((s, v) => s + Math.ceil(perRecord(v) / 4) * 4, 0);
    let numrecs = h.recordDimension.length;
    if (numrecs === NC3_STREAMING)
      numrecs = recVars.length && this.recStep ? Math.floor((size - recVars[0]!.offset) / this.recStep) : 0;
    this.dimensions = (h.dimensions ?? []).map((d, i) =>
      i === recId
        ? { name: fixText(d.name), size: numrecs, unlimited: true }
        : { name: fixText(d.name), size: d.size },
    );
    this.attrs = nc3Attrs(h.globalAttributes);
    let end = 0;
    for (const v of vars) {
      const dtype = NC3_DTYPE[v.type];
      if (dtype === undefined)
        throw new NetcdfError(this.path, `variable "${v.name}" has unknown NetCDF-3 type ${v.type}`);
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
      throw new NetcdfError(
        this.path,
        `truncated NetCDF-3 file: the header describes ${end} bytes but the file has ${size}`,
      );
  }

  async readSlice(name: string, lead: number[]): Promise<Float32Array> {
    const v = this.sliceTarget(name, lead);
    const L = this.layout.get(v.name)!;
    const rank = v.dims.length;
    const [H, W] = [v.dims[rank - 2]!.size, v.dims[rank - 1]!.size];
    let buf: Uint8Array;
    if (L.record && rank === 2) {
      // (record, x): each row is in a different record.
      const row = W * L.elt;
      buf = new Uint8Array(H * row);
      for (let r = 0; r < H; r++) buf.set(await this.src.read(L.begin + r * this.recStep, row), r * row);
    } else {
      // Index of the slice among the slices of the (per-record) block, C order over the lead dims.
      const bytes = H * W * L.elt;
      const from = L.record ? 1 : 0;
      let k = 0;
      for (let i = from; i < rank - 2; i++) k = k * v.dims[i]!.size + lead[i]!;
      const pos = L.begin + (L.record ? lead[0]! * this.recStep : 0) + k * bytes;
      buf = await this.src.read(pos, bytes);
    }
    const out = new Float32Array(H * W);
    unpackInto(fromBigEndian(buf, v.dtype), v, out);
    return out;
  }

  async readAll(name: string): Promise<Float64Array> {
    const v = this.allTarget(name);
    const L = this.layout.get(v.name)!;
    const n = v.dims.reduce((p, d) => p * d.size, 1);
    let buf: Uint8Array;
    if (!L.record || n === 0) buf = await this.src.read(L.begin, n * L.elt);
    else {
      const records = v.dims[0]!.size;
      const per = (n * L.elt) / records;
      buf = new Uint8Array(n * L.elt);
      for (let r = 0; r < records; r++)
        buf.set(await this.src.read(L.begin + r * this.recStep, per), r * per);
    }
    const out = new Float64Array(n);
    unpackInto(fromBigEndian(buf, v.dtype), v, out);
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.src.close().catch(() => undefined);
  }
}
