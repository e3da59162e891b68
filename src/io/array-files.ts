/**
 * Node only: array files on disk (NetCDF, `.npy`, IDX), over the portable byte formats of
 * ./netcdf3-reader.ts, ./netcdf3-writer.ts, ./npy.ts and ./idx.ts (NetCDF-4 is read by
 * ./hdf5-reader.ts, which needs Node itself). Every write is atomic (a temporary file, then a rename).
 */
import { open, readFile, type FileHandle } from "node:fs/promises";
import { gunzip, gzip } from "node:zlib";
import { promisify } from "node:util";
import { InputError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { openNetcdf4 } from "./hdf5-reader.js";
import { encodeIdx, parseIdx, type IdxExpectation, type IdxFile } from "./idx.js";
import { netcdfKind, NetcdfError, truncated, type ByteSource, type NetcdfFile } from "./netcdf.js";
import { openNetcdf3 } from "./netcdf3-reader.js";
import { encodeNetcdf3, type Nc3WriteSpec } from "./netcdf3-writer.js";
import { encodeNpy, NpyError, parseNpy, type NdArray, type NpyInfo } from "./npy.js";

// ------------------------------------------------------------------ NetCDF

/** The file at `path` as a {@link ByteSource}: positioned reads through one file handle. */
async function fileSource(path: string): Promise<ByteSource> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new NetcdfError(path, `cannot open NetCDF file (${(e as Error).message})`);
  }
  // Node's errors for an open handle (EISDIR, EIO) do not carry the path.
  const failed = (e: unknown) => new NetcdfError(path, (e as Error).message);
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw failed(e);
  }
  return {
    name: path,
    size,
    async read(position, length) {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await fh.read(buf, done, length - done, position + done));
        } catch (e) {
          throw failed(e);
        }
        if (bytesRead === 0) throw truncated(path, position, length, position + done);
        done += bytesRead;
      }
      return buf;
    },
    close: () => fh.close(),
  };
}

/**
 * Open a NetCDF file by content (magic bytes "CDF\x01"/"CDF\x02" or the HDF5 signature), not by
 * extension. Errors name the file.
 */
export async function openNetcdf(path: string): Promise<NetcdfFile> {
  const src = await fileSource(path);
  try {
    if ((await netcdfKind(src)) === "netcdf3") return await openNetcdf3(src);
  } catch (e) {
    await src.close().catch(() => undefined);
    throw e;
  }
  // h5wasm reads the file itself, by path.
  await src.close().catch(() => undefined);
  return openNetcdf4(path);
}

/**
 * Write a classic NetCDF-3 file atomically (a temporary file, then a rename): CDF-1, or CDF-2 (64-bit
 * offsets) when a variable would start beyond 2 GiB. The whole file is built in memory, so this is
 * for files of modest size.
 */
export async function writeNetcdf3(path: string, spec: Nc3WriteSpec): Promise<void> {
  await writeFileAtomic(path, encodeNetcdf3(spec, path));
}

// ------------------------------------------------------------------ .npy

/** Read a `.npy` file; errors name the file. */
export async function readNpy(path: string): Promise<NdArray & NpyInfo> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new NpyError(path, `cannot read: ${(e as Error).message}`);
  }
  return parseNpy(bytes, path);
}

/** Write a `.npy` file atomically (temporary file beside it, then a rename). */
export async function writeNpy(path: string, a: NdArray): Promise<void> {
  await writeFileAtomic(path, encodeNpy(a));
}

// ------------------------------------------------------------------ IDX

/**
 * Read and validate an IDX ubyte file, gzipped or not (gzip is detected by its magic bytes, not by
 * the file name); every error names the file and the field.
 */
export async function readIdx(path: string, expect?: IdxExpectation): Promise<IdxFile> {
  let bytes: Uint8Array = await readFile(path);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await promisify(gunzip)(bytes);
    } catch (e) {
      throw new InputError(path, `corrupt gzip stream (${(e as Error).message})`);
    }
  }
  return parseIdx(bytes, path, expect);
}

/** Write an IDX ubyte file (atomically), optionally gzipped; used to make test fixtures. */
export async function writeIdx(
  path: string,
  dims: number[],
  data: Uint8Array,
  opts: { gzip?: boolean } = {},
): Promise<void> {
  const bytes = encodeIdx(dims, data);
  await writeFileAtomic(path, opts.gzip ? await promisify(gzip)(bytes) : bytes);
}
