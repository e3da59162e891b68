import { test } from "node:test";
import assert from "node:assert/strict";
import { skipWithoutData } from "./fixtures.js";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import h5wasm from "h5wasm/node";
import { openNetcdf, writeNetcdf3 } from "../src/io/array-files.js";
import { bytesSource, NetcdfError, type NetcdfFile } from "../src/io/netcdf.js";
import { openNetcdf3 } from "../src/io/netcdf3-reader.js";
import type { Nc3WriteSpec } from "../src/io/netcdf3-writer.js";

// Fixtures written by netCDF-C through netCDF4-python: scripts/make_netcdf_fixtures.py.
const FIX = join(import.meta.dirname, "fixtures", "netcdf");
const fixture = (name: string) => join(FIX, name);
const tmp = (tag: string) => mkdtemp(join(tmpdir(), `anr-nc-${tag}-`));

const rad = (deg: number) => (deg * Math.PI) / 180;
/** t2m of the ERA5-like fixtures (the same formula as the fixture script). */
const T2M = (t: number, lat: number, lon: number) =>
  280 + 20 * Math.cos(rad(lat)) + 5 * Math.tanh((lon - 180) / 5) + t;
/** ta / t of the 4-D fixtures. */
const TA = (t: number, k: number, lat: number, lon: number) =>
  250 + 10 * k + 20 * Math.cos(rad(lat)) + 5 * Math.tanh((lon - 180) / 5) + t;

/** Compare a slice with expected values (NaN where expected is NaN), reporting the first mismatch. */
function assertField(
  got: Float32Array,
  want: (i: number, j: number) => number,
  W: number,
  tol: number,
  what: string,
) {
  assert.equal(got.length % W, 0);
  for (let p = 0; p < got.length; p++) {
    const [i, j] = [Math.floor(p / W), p % W];
    const e = want(i, j);
    if (Number.isNaN(e)) assert.ok(Number.isNaN(got[p]), `${what} [${i},${j}]: expected NaN, got ${got[p]}`);
    else assert.ok(Math.abs(got[p]! - e) <= tol, `${what} [${i},${j}]: expected ${e}, got ${got[p]}`);
  }
}

async function withFile<T>(path: string, fn: (nc: NetcdfFile) => Promise<T>): Promise<T> {
  const nc = await openNetcdf(path);
  try {
    return await fn(nc);
  } finally {
    nc.close();
  }
}

const dimsOf = (nc: NetcdfFile, v: string) =>
  nc.variable(v).dims.map((d) => `${d.name}=${d.size}${d.unlimited ? "*" : ""}`);
const linspace = (a: number, b: number, n: number) =>
  Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));

// ---------------------------------------------------------------- NetCDF-3 fixtures (netCDF-C)

test("netcdf3: old-CDS 64-bit-offset file, int16 t2m packed with scale/offset and fills", async () => {
  await withFile(fixture("era5_old_cds.nc"), async (nc) => {
    assert.equal(nc.format, "netcdf3-64bit-offset");
    assert.deepEqual(
      nc.variables.map((v) => v.name),
      ["longitude", "latitude", "time", "t2m"],
    );
    assert.deepEqual(dimsOf(nc, "t2m"), ["time=3*", "latitude=25", "longitude=45"]);
    const v = nc.variable("t2m");
    assert.equal(v.dtype, "i2");
    assert.equal(v.attrs._FillValue, -32767);
    assert.equal(v.attrs.missing_value, -32767);
    assert.equal(v.attrs.units, "K");
    assert.equal(typeof v.attrs.scale_factor, "number");
    assert.equal(nc.attrs.Conventions, "CF-1.6");
    const lat = await nc.readAll("latitude");
    const lon = await nc.readAll("longitude");
    assert.deepEqual(Array.from(lat), linspace(90, -90, 25).map(Math.fround));
    assert.deepEqual(
      Array.from(lon),
      Array.from({ length: 45 }, (_, j) => 8 * j),
    );
    assert.deepEqual(Array.from(await nc.readAll("time")), [1078800, 1078806, 1078812]);
    // int16 over a ~64 K range: one packing step is ~0.001 K.
    const tol = (v.attrs.scale_factor as number) * 0.51 + 1e-4;
    assert.ok(tol < 2e-3, "tol < 2e-3");
    const fills = new Set(["0,0,0", "1,3,7", "2,24,44"]);
    for (let t = 0; t < 3; t++) {
      const s = await nc.readSlice("t2m", [t]);
      assert.equal(s.length, 25 * 45);
      assertField(
        s,
        (i, j) => (fills.has(`${t},${i},${j}`) ? NaN : T2M(t, lat[i]!, lon[j]!)),
        45,
        tol,
        `t2m[${t}]`,
      );
      assert.equal(s.filter(Number.isNaN).length, 1);
    }
  });
});

test("netcdf3: classic 4-D record variable, fixed 3-D and 2-D variables, char variable", async () => {
  await withFile(fixture("nc3_classic_4d.nc"), async (nc) => {
    assert.equal(nc.format, "netcdf3-classic");
    assert.deepEqual(dimsOf(nc, "ta"), ["time=2*", "level=3", "lat=4", "lon=6"]);
    assert.deepEqual(dimsOf(nc, "zs"), ["level=3", "lat=4", "lon=6"]);
    assert.equal(nc.variable("station").dtype, "char");
    const lat = await nc.readAll("lat");
    const lon = await nc.readAll("lon");
    assert.deepEqual(Array.from(lat), [60, 30, 0, -30]);
    assert.deepEqual(Array.from(await nc.readAll("level")), [1000, 850, 500]);
    for (let t = 0; t < 2; t++)
      for (let k = 0; k < 3; k++) {
        const s = await nc.readSlice("ta", [t, k]);
        const fill = t === 1 && k === 2;
        assertField(
          s,
          (i, j) => (fill && i === 3 && j === 5 ? NaN : TA(t, k, lat[i]!, lon[j]!)),
          6,
          1e-4,
          `ta[${t},${k}]`,
        );
      }
    // Fixed (non-record) 3-D float64: exact, and readAll agrees with the slices.
    const all = await nc.readAll("zs");
    for (let k = 0; k < 3; k++) {
      const s = await nc.readSlice("zs", [k]);
      for (let p = 0; p < 24; p++) {
        const e = 1000 * k + lat[Math.floor(p / 6)]! + 0.01 * lon[p % 6]!;
        assert.equal(all[k * 24 + p], e);
        assert.equal(s[p], Math.fround(e));
      }
    }
    assert.deepEqual(
      Array.from(await nc.readSlice("land", [])),
      Array.from({ length: 24 }, (_, i) => i),
    );
    await assert.rejects(nc.readSlice("station", []), /station.*type char/);
  });
});

test("netcdf3: the single-record-variable case (short, odd record size) has unpadded records", async () => {
  const path = fixture("nc3_single_record.nc");
  // 4 records of 15 shorts = 30 bytes each, not 32: the file is the 112-byte header + 120 bytes.
  assert.equal((await stat(path)).size, 112 + 4 * 30);
  await withFile(path, async (nc) => {
    assert.deepEqual(dimsOf(nc, "v"), ["time=4*", "y=3", "x=5"]);
    for (let t = 0; t < 4; t++)
      assert.deepEqual(
        Array.from(await nc.readSlice("v", [t])),
        Array.from({ length: 15 }, (_, p) => (t * 15 + p) * 7 - 100),
      );
    assert.equal((await nc.readAll("v")).length, 60);
    assert.deepEqual(Array.from(await nc.readAll("v")).slice(40, 43), [180, 187, 194]);
  });
});

// ---------------------------------------------------------------- NetCDF-4 fixtures (netCDF-C)

test("netcdf3: the portable reader reads bytes in memory as the file reader reads the file", async () => {
  for (const name of ["era5_old_cds.nc", "nc3_classic_4d.nc", "nc3_single_record.nc"]) {
    const bytes = await readFile(fixture(name));
    const mem = await openNetcdf3(bytesSource(bytes, name));
    await withFile(fixture(name), async (disk) => {
      assert.equal(mem.format, disk.format);
      assert.deepEqual(mem.dimensions, disk.dimensions);
      assert.deepEqual(mem.variables, disk.variables);
      for (const v of disk.variables) {
        if (v.dtype === "char") continue;
        assert.deepEqual(await mem.readAll(v.name), await disk.readAll(v.name), `${name}: ${v.name}`);
        if (v.dims.length >= 2) {
          const lead = v.dims.slice(0, -2).map((d) => d.size - 1);
          assert.deepEqual(await mem.readSlice(v.name, lead), await disk.readSlice(v.name, lead), v.name);
        }
      }
    });
    mem.close();
    // A prefix of the file is a truncated file, named as the source.
    await assert.rejects(
      openNetcdf3(bytesSource(bytes.subarray(0, bytes.length - 100), name)),
      (e: Error) => e instanceof NetcdfError && e.message.startsWith(`${name}: truncated NetCDF-3 file`),
    );
  }
});

test("netcdf4: new-CDS file, float32 t2m zlib+shuffle chunked, NaN fill, int64 and string variables", async () => {
  await withFile(fixture("era5_new_cds.nc"), async (nc) => {
    assert.equal(nc.format, "netcdf4");
    assert.deepEqual(
      nc.variables.map((v) => `${v.name}:${v.dtype}`),
      ["number:i8", "valid_time:i8", "latitude:f8", "longitude:f8", "expver:string", "t2m:f4"],
    );
    assert.deepEqual(dimsOf(nc, "t2m"), ["valid_time=3", "latitude=25", "longitude=45"]);
    assert.deepEqual(dimsOf(nc, "number"), []);
    assert.deepEqual(dimsOf(nc, "expver"), ["valid_time=3"]);
    const v = nc.variable("t2m");
    assert.ok(Number.isNaN(v.attrs._FillValue), "Number.isNaN(v.attrs._FillValue)");
    assert.equal(v.attrs.GRIB_paramId, 167);
    assert.equal(v.attrs.coordinates, "number valid_time latitude longitude expver");
    // netCDF-C's bookkeeping attributes are hidden, as ncdump hides them.
    assert.ok(
      !("DIMENSION_LIST" in v.attrs) && !("_Netcdf4Coordinates" in v.attrs),
      '!("DIMENSION_LIST" in v.attrs) && !("_Netcdf4Coordinates" in v.attrs)',
    );
    assert.ok(!("_NCProperties" in nc.attrs), '!("_NCProperties" in nc.attrs)');
    assert.equal(nc.attrs.institution, "European Centre for Medium-Range Weather Forecasts");
    assert.deepEqual(Array.from(await nc.readAll("number")), [0]);
    assert.deepEqual(Array.from(await nc.readAll("valid_time")), [1704067200, 1704070800, 1704074400]);
    const lat = await nc.readAll("latitude");
    const lon = await nc.readAll("longitude");
    assert.deepEqual(Array.from(lat), linspace(90, -90, 25));
    const nan = new Set(["0,12,22", "2,0,1"]);
    for (let t = 0; t < 3; t++) {
      const s = await nc.readSlice("t2m", [t]);
      assertField(
        s,
        (i, j) => (nan.has(`${t},${i},${j}`) ? NaN : T2M(t, lat[i]!, lon[j]!)),
        45,
        1e-4,
        `t2m[${t}]`,
      );
    }
    await assert.rejects(nc.readAll("expver"), /expver.*type string/);
  });
});

test("netcdf4: pressure levels, 4-D variable sliced by [time, level]", async () => {
  await withFile(fixture("era5_new_cds_pl.nc"), async (nc) => {
    assert.deepEqual(dimsOf(nc, "t"), ["valid_time=2", "pressure_level=3", "latitude=7", "longitude=12"]);
    const lat = await nc.readAll("latitude");
    const lon = await nc.readAll("longitude");
    for (let t = 0; t < 2; t++)
      for (let k = 0; k < 3; k++)
        assertField(
          await nc.readSlice("t", [t, k]),
          (i, j) => TA(t, k, lat[i]!, lon[j]!),
          12,
          1e-4,
          `t[${t},${k}]`,
        );
  });
});

test("netcdf4: int16 packing with valid_range, _Unsigned byte, native uint16, phony dimensions", async () => {
  await withFile(fixture("nc4_packed.nc"), async (nc) => {
    // y, x (and time) have no coordinate variables: their phony dimension scales are not variables.
    assert.deepEqual(
      nc.variables.map((v) => v.name),
      ["sp", "mask", "count"],
    );
    assert.deepEqual(dimsOf(nc, "sp"), ["time=2*", "y=4", "x=6"]);
    assert.deepEqual(
      nc.dimensions.map((d) => `${d.name}=${d.size}`),
      ["time=2", "y=4", "x=6"],
    );
    for (let t = 0; t < 2; t++) {
      const s = await nc.readSlice("sp", [t]);
      // (1, 0) is packed 3000, outside valid_range [-2000, 2000]; (3, 5) is the fill.
      const want = (i: number, j: number) =>
        (i === 1 && j === 0) || (i === 3 && j === 5) ? NaN : 100000 + 50 * i - 30 * j + t;
      assertField(s, want, 6, 0, `sp[${t}]`);
    }
    const mask = await nc.readSlice("mask", []);
    assertField(mask, (i, j) => (i === 2 && j === 3 ? NaN : (i * 6 + j) * 10 + 5), 6, 0, "mask");
    assert.ok(mask[23]! > 127, "_Unsigned bytes above 127 stay positive");
    assertField(await nc.readSlice("count", []), (i, j) => 60000 + i * 6 + j, 6, 0, "count");
  });
});

test("netcdf4: a corrupt compressed chunk is an error naming the file, not garbage", async (t) => {
  const dir = await tmp("corrupt");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bytes = await readFile(fixture("era5_new_cds.nc"));
  // Find t2m's three deflate streams (each inflates to one 25×45 float32 chunk) without HDF5 tools.
  const chunks: number[] = [];
  for (let i = 0; i + 1 < bytes.length; i++)
    if (bytes[i] === 0x78 && bytes[i + 1] === 0x01)
      try {
        if (inflateSync(bytes.subarray(i)).length === 25 * 45 * 4) chunks.push(i);
      } catch {
        // not a zlib stream
      }
  assert.equal(chunks.length, 3);
  for (let k = 100; k < 140; k++) bytes[chunks[1]! + k]! ^= 0x5a;
  const path = join(dir, "corrupt.nc");
  await writeFile(path, bytes);
  await withFile(path, async (nc) => {
    assert.equal((await nc.readSlice("t2m", [0])).length, 25 * 45);
    await assert.rejects(nc.readSlice("t2m", [1]), (e: Error) => {
      assert.ok(e.message.includes(path), e.message);
      assert.match(e.message, /HDF5 failed to read variable "t2m".*shuffle\+deflate/);
      return true;
    });
  });
});

// ---------------------------------------------------------------- files written by the tests

/** A spec exercising every writer feature: unlimited dimension, two record variables, packing. */
function writerSpec(): Nc3WriteSpec {
  const H = 3;
  const W = 5;
  const temp = Float32Array.from({ length: 2 * H * W }, (_, p) => 270 + p * 0.25);
  temp[7] = NaN;
  const packed = Int16Array.from({ length: 2 * H * W }, (_, p) => p * 100 - 1500);
  packed[11] = -32767;
  return {
    dims: [
      { name: "time", size: 2, unlimited: true },
      { name: "lat", size: H },
      { name: "lon", size: W },
    ],
    attrs: { title: "writer test °C ✓", version: 3, levels: [1, 2.5] },
    variables: [
      { name: "lat", dims: ["lat"], dtype: "f8", data: [10, 0, -10], attrs: { units: "degrees_north" } },
      { name: "lon", dims: ["lon"], dtype: "f4", data: [0, 90, 180, 270, 355.5] },
      { name: "time", dims: ["time"], dtype: "i4", data: [0, 6], attrs: { units: "hours since 2000-01-01" } },
      { name: "temp", dims: ["time", "lat", "lon"], dtype: "f4", data: temp, attrs: { _FillValue: NaN } },
      {
        name: "packed",
        dims: ["time", "lat", "lon"],
        dtype: "i2",
        data: packed,
        attrs: {
          scale_factor: 0.01,
          add_offset: 20,
          _FillValue: -32767,
          flag: { dtype: "i4", value: [1, 2, 3] },
        },
      },
      {
        name: "orog",
        dims: ["lat", "lon"],
        dtype: "i4",
        data: Array.from({ length: H * W }, (_, p) => p * 1000 - 5000),
      },
      { name: "scalar", dims: [], dtype: "f8", data: [Math.PI] },
      // Rank 2 with the record dimension first: each row of the slice lives in another record.
      { name: "series", dims: ["time", "lon"], dtype: "f8", data: [1, 2, 3, 4, 5, -1, -2, -3, -4, -5] },
    ],
  };
}

test("writeNetcdf3 → openNetcdf round trip (record and fixed variables, packing, attributes)", async (t) => {
  const dir = await tmp("write");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "out.nc");
  const spec = writerSpec();
  await writeNetcdf3(path, spec);
  assert.deepEqual(await readdir(dir), ["out.nc"], "no temporary file left behind");
  await withFile(path, async (nc) => {
    assert.equal(nc.format, "netcdf3-classic");
    assert.deepEqual(nc.attrs, { title: "writer test °C ✓", version: 3, levels: [1, 2.5] });
    assert.deepEqual(dimsOf(nc, "packed"), ["time=2*", "lat=3", "lon=5"]);
    assert.equal(nc.variable("packed").dtype, "i2");
    assert.deepEqual(nc.variable("packed").attrs.flag, [1, 2, 3]);
    assert.deepEqual(Array.from(await nc.readAll("lon")), [0, 90, 180, 270, 355.5]);
    assert.deepEqual(Array.from(await nc.readAll("scalar")), [Math.PI]);
    const temp = spec.variables[3]!.data;
    const packed = spec.variables[4]!.data;
    for (let r = 0; r < 2; r++) {
      assert.deepEqual(
        Array.from(await nc.readSlice("temp", [r])),
        Array.from(temp).slice(r * 15, r * 15 + 15),
      );
      const s = await nc.readSlice("packed", [r]);
      for (let p = 0; p < 15; p++) {
        const x = packed[r * 15 + p]!;
        assert.deepEqual(s[p], x === -32767 ? NaN : Math.fround(x * 0.01 + 20));
      }
    }
    assert.deepEqual(Array.from(await nc.readSlice("series", [])), [1, 2, 3, 4, 5, -1, -2, -3, -4, -5]);
    assert.deepEqual(
      Array.from(await nc.readSlice("orog", [])),
      Array.from({ length: 15 }, (_, p) => p * 1000 - 5000),
    );
  });
});

/** Exactly one record variable, int16 with 15 values per record: the unpadded-records case. */
function singleRecordSpec(): Nc3WriteSpec {
  return {
    dims: [
      { name: "t", size: 3, unlimited: true },
      { name: "y", size: 3 },
      { name: "x", size: 5 },
    ],
    variables: [
      {
        name: "v",
        dims: ["t", "y", "x"],
        dtype: "i2",
        data: Int16Array.from({ length: 45 }, (_, p) => p - 20),
      },
    ],
  };
}

test("writeNetcdf3: a single odd-sized int16 record variable, and a file with only fixed variables", async (t) => {
  const dir = await tmp("write1");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "one.nc");
  const spec = singleRecordSpec();
  const data = spec.variables[0]!.data as Int16Array;
  await writeNetcdf3(path, spec);
  // Header (112 bytes, as netCDF-C writes it for this layout) + 3 records of 30 bytes, unpadded.
  assert.equal((await stat(path)).size, 112 + 3 * 30);
  await withFile(path, async (nc) => {
    for (let r = 0; r < 3; r++)
      assert.deepEqual(
        Array.from(await nc.readSlice("v", [r])),
        Array.from(data.subarray(r * 15, r * 15 + 15)),
      );
  });
  const fixed = join(dir, "fixed.nc");
  await writeNetcdf3(fixed, {
    dims: [{ name: "n", size: 2 }],
    variables: [{ name: "a", dims: ["n"], dtype: "f8", data: [1.5, -2] }],
  });
  await withFile(fixed, async (nc) => assert.deepEqual(Array.from(await nc.readAll("a")), [1.5, -2]));
});

test("writeNetcdf3: invalid specs are refused, naming the file and the variable", async (t) => {
  const dir = await tmp("writebad");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "bad.nc");
  const dims = [
    { name: "t", size: 2, unlimited: true },
    { name: "x", size: 3 },
  ];
  const cases: [Nc3WriteSpec, RegExp][] = [
    [
      { dims, variables: [{ name: "v", dims: ["t", "x"], dtype: "f4", data: [1, 2, 3] }] },
      /"v": 3 values for shape \[2, 3\]/,
    ],
    [
      { dims, variables: [{ name: "v", dims: ["x"], dtype: "i2", data: [1, 40000, 3] }] },
      /"v": value 40000 .* not an int16/,
    ],
    [{ dims, variables: [{ name: "v", dims: ["x"], dtype: "i4", data: [1, 2.5, 3] }] }, /value 2.5/],
    [
      { dims, variables: [{ name: "v", dims: ["x", "t"], dtype: "f4", data: [1, 2, 3, 4, 5, 6] }] },
      /unlimited.*first/,
    ],
    [{ dims, variables: [{ name: "v", dims: ["y"], dtype: "f4", data: [1] }] }, /unknown dimension "y"/],
    [
      { dims, variables: [{ name: "a/b", dims: [], dtype: "f4", data: [1] }] },
      /"a\/b" is not a valid NetCDF name/,
    ],
    [{ dims: [...dims, { name: "u", size: 1, unlimited: true }], variables: [] }, /only one unlimited/],
  ];
  for (const [spec, re] of cases)
    await assert.rejects(writeNetcdf3(path, spec), (e: Error) => {
      assert.match(e.message, re);
      assert.ok(e.message.includes(path), e.message);
      return true;
    });
  assert.deepEqual(await readdir(dir), []);
});

// netCDF4-python (netCDF-C) reading what we wrote: Debian's python3-netcdf4, installed by CI's apt
// step for the system Python (not whatever `python3` comes first on PATH); $ANR_NETCDF_PYTHON
// names another interpreter.
const NC_PYTHON = process.env.ANR_NETCDF_PYTHON ?? "/usr/bin/python3";
const hasNetcdf4Python = () =>
  existsSync(NC_PYTHON) && spawnSync(NC_PYTHON, ["-c", "import netCDF4"]).status === 0;
const PY_DUMP = `
import json, math, sys, netCDF4, numpy as np
def clean(a): return [None if math.isnan(x) else x for x in a]
def val(x):
    if isinstance(x, str): return x
    a = clean(np.asarray(x).ravel().astype(np.float64).tolist())
    return a[0] if len(a) == 1 else a
d = netCDF4.Dataset(sys.argv[1])
out = {"model": d.data_model, "attrs": {k: val(d.getncattr(k)) for k in d.ncattrs()},
       "dims": {k: [len(v), v.isunlimited()] for k, v in d.dimensions.items()}, "vars": {}}
for k, v in d.variables.items():
    x = v[...]
    u = np.ma.filled(np.ma.asarray(x, dtype=np.float64), np.nan).ravel().tolist()
    out["vars"][k] = {"dtype": v.dtype.str, "dims": list(v.dimensions),
                      "attrs": {a: val(v.getncattr(a)) for a in v.ncattrs()}, "unpacked": clean(u)}
print(json.dumps(out))
`;

test("writeNetcdf3: netCDF4-python (netCDF-C) reads our files identically", async (t) => {
  if (skipWithoutData(t, hasNetcdf4Python(), `netCDF4 for ${NC_PYTHON} (apt install python3-netcdf4)`))
    return;
  const dir = await tmp("py");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "out.nc");
  await writeNetcdf3(path, writerSpec());
  const one = join(dir, "one.nc");
  await writeNetcdf3(one, singleRecordSpec());
  const r1 = spawnSync(NC_PYTHON, ["-c", PY_DUMP, one], { encoding: "utf8" });
  assert.equal(r1.status, 0, r1.stderr);
  const single = JSON.parse(r1.stdout) as { vars: { v: { unpacked: number[] } } };
  assert.deepEqual(single.vars.v.unpacked, Array.from(singleRecordSpec().variables[0]!.data));
  const r = spawnSync(NC_PYTHON, ["-c", PY_DUMP, path], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const py = JSON.parse(r.stdout) as {
    model: string;
    attrs: Record<string, unknown>;
    dims: Record<string, [number, boolean]>;
    vars: Record<
      string,
      { dims: string[]; dtype: string; attrs: Record<string, unknown>; unpacked: (number | null)[] }
    >;
  };
  assert.equal(py.model, "NETCDF3_CLASSIC");
  assert.deepEqual(py.dims, { time: [2, true], lat: [3, false], lon: [5, false] });
  assert.deepEqual(py.attrs, { title: "writer test °C ✓", version: 3, levels: [1, 2.5] });
  await withFile(path, async (nc) => {
    assert.deepEqual(
      Object.keys(py.vars),
      nc.variables.map((v) => v.name),
    );
    for (const v of nc.variables) {
      const p = py.vars[v.name]!;
      assert.deepEqual(
        p.dims,
        v.dims.map((d) => d.name),
        v.name,
      );
      // numpy reports the in-memory (native) byte order; the file is big-endian either way.
      assert.equal(p.dtype.slice(1), v.dtype, v.name);
      const ourAttrs = Object.entries(v.attrs).map(([k, a]) => [k, Number.isNaN(a) ? null : a]);
      assert.deepEqual(p.attrs, Object.fromEntries(ourAttrs), v.name);
      const ours = Array.from(await nc.readAll(v.name));
      const want = p.unpacked.map((x) => (x === null ? NaN : x));
      // netCDF4-python unpacks in float64 (as readAll does); readSlice rounds the same values to float32.
      assert.deepEqual(ours, want, v.name);
      if (v.dims.length === 3)
        assert.deepEqual(
          Array.from(await nc.readSlice(v.name, [1])),
          want.slice(15).map(Math.fround),
          v.name,
        );
    }
  });
});

test("netcdf4: an HDF5 file written with h5wasm (dimension scales, gzip chunks, plain datasets)", async (t) => {
  const dir = await tmp("h5");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "made.h5");
  await h5wasm.ready;
  const H = 4;
  const W = 7;
  const field = Float32Array.from({ length: 2 * H * W }, (_, p) => Math.sin(p) * 10 + 273);
  field[9] = NaN;
  const f = new h5wasm.File(path, "w");
  try {
    // What netCDF-C does for a dimension without a coordinate variable: a phony dimension scale.
    f.create_dataset({ name: "time", data: new Float32Array(2) }).make_scale(
      "This is a netCDF dimension but not a netCDF variable.         2",
    );
    f.create_dataset({
      name: "lat",
      data: Float64Array.from({ length: H }, (_, i) => 45 - 30 * i),
    }).make_scale("lat");
    f.create_dataset({ name: "lon", data: Float64Array.from({ length: W }, (_, j) => 50 * j) }).make_scale(
      "lon",
    );
    const ds = f.create_dataset({
      name: "air",
      data: field,
      shape: [2, H, W],
      chunks: [1, H, W],
      compression: "gzip",
    });
    ds.attach_scale(0, "/time");
    ds.attach_scale(1, "/lat");
    ds.attach_scale(2, "/lon");
    ds.create_attribute("_FillValue", Float32Array.of(NaN), [1], "<f");
    ds.create_attribute("units", "K");
    // No scales at all: netCDF-C would call these axes phony_dim_N.
    f.create_dataset({ name: "plain", data: Int32Array.from({ length: 6 }, (_, p) => p), shape: [2, 3] });
    f.create_attribute("title", "made by h5wasm");
  } finally {
    f.close();
  }
  await withFile(path, async (nc) => {
    assert.equal(nc.format, "netcdf4");
    // HDF5 lists links by name unless the file tracks creation order (netCDF-C's files do).
    assert.deepEqual(
      nc.variables.map((v) => v.name),
      ["air", "lat", "lon", "plain"],
    );
    assert.deepEqual(dimsOf(nc, "air"), ["time=2", "lat=4", "lon=7"]);
    assert.deepEqual(dimsOf(nc, "plain"), ["phony_dim_0=2", "phony_dim_1=3"]);
    assert.equal(nc.attrs.title, "made by h5wasm");
    assert.equal(nc.variable("air").attrs.units, "K");
    assert.deepEqual(Array.from(await nc.readAll("lat")), [45, 15, -15, -45]);
    for (let r = 0; r < 2; r++)
      assert.deepEqual(
        Array.from(await nc.readSlice("air", [r])),
        Array.from(field.subarray(r * H * W, (r + 1) * H * W)),
      );
    assert.deepEqual(Array.from(await nc.readSlice("plain", [])), [0, 1, 2, 3, 4, 5]);
  });
});

// ---------------------------------------------------------------- errors

test("errors name the file: unknown variable, index out of range, rank < 2, wrong lead length", async () => {
  const path = fixture("era5_old_cds.nc");
  await withFile(path, async (nc) => {
    assert.throws(
      () => nc.variable("tp"),
      (e: Error) =>
        e.message.includes(path) &&
        /no variable "tp"/.test(e.message) &&
        e.message.includes("t2m(time=3, latitude=25, longitude=45)") &&
        e.message.includes("latitude(latitude=25)"),
    );
    await assert.rejects(nc.readSlice("tp", [0]), /no variable "tp"/);
    await assert.rejects(nc.readSlice("t2m", [3]), (e: Error) => {
      assert.ok(e.message.includes(path), "e.message.includes(path)");
      assert.match(e.message, /index 3 is out of range for dimension "time" \(size 3\)/);
      return true;
    });
    await assert.rejects(nc.readSlice("t2m", [-1]), /index -1 is out of range/);
    await assert.rejects(nc.readSlice("t2m", [0.5]), /index 0.5/);
    await assert.rejects(nc.readSlice("t2m", []), /needs 1 leading index/);
    await assert.rejects(nc.readSlice("latitude", []), /"latitude" has rank 1 .*needs rank ≥ 2/);
  });
  const pl = fixture("era5_new_cds_pl.nc");
  await withFile(pl, async (nc) => {
    await assert.rejects(nc.readSlice("t", [0, 3]), /dimension "pressure_level" \(size 3\)/);
    await assert.rejects(nc.readSlice("t", [0]), /needs 2 leading index/);
  });
  const nc = await openNetcdf(pl);
  nc.close();
  nc.close(); // twice is harmless
  await assert.rejects(nc.readSlice("t", [0, 0]), /after close/);
});

test("errors name the file: truncated NetCDF-3, not NetCDF at all, missing file", async (t) => {
  const dir = await tmp("bad");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const src = fixture("era5_old_cds.nc");
  const size = (await stat(src)).size;
  const cut = join(dir, "cut.nc");
  await copyFile(src, cut);
  await truncate(cut, size - 100); // a partial download: the last record is short
  await assert.rejects(openNetcdf(cut), (e: Error) => {
    assert.ok(e.message.includes(cut), e.message);
    // The header describes the file up to its last value; netCDF-C then pads the file to 4 bytes.
    assert.match(
      e.message,
      new RegExp(
        `truncated NetCDF-3 file: the header describes ${size - 2} bytes but the file has ${size - 100}`,
      ),
    );
    return true;
  });
  const head = join(dir, "head.nc");
  await copyFile(src, head);
  await truncate(head, 300); // cut inside the header
  await assert.rejects(
    openNetcdf(head),
    (e: Error) => e.message.includes(head) && /truncated.*header/.test(e.message),
  );
  const text = join(dir, "notes.nc");
  await writeFile(text, "hello, this is not NetCDF\n");
  await assert.rejects(
    openNetcdf(text),
    (e: Error) => e.message.includes(text) && /not a NetCDF file.*68 65 6c 6c/.test(e.message),
  );
  const empty = join(dir, "empty.nc");
  await writeFile(empty, "");
  await assert.rejects(openNetcdf(empty), (e: Error) => e.message.includes(empty) && /empty/.test(e.message));
  const cdf5 = join(dir, "cdf5.nc");
  await writeFile(cdf5, Buffer.from("CDF\x05\0\0\0\0", "latin1"));
  await assert.rejects(openNetcdf(cdf5), /CDF-5 .* not supported/);
  const missing = join(dir, "missing.nc");
  await assert.rejects(
    openNetcdf(missing),
    (e: Error) => e.message.includes(missing) && /ENOENT/.test(e.message),
  );
});

// ---------------------------------------------------------------- real data (Debian ferret-datasets)

const FERRET_DIR = [process.env.ANR_FERRET_DATA, "/usr/share/ferret-vis/data"].find(
  (d) => d !== undefined && existsSync(join(d, "coads_climatology.cdf")),
);

/** The ferret-datasets folder, or undefined when the test skipped for its absence. */
function ferretOrSkip(t: { skip(reason: string): void }): string | undefined {
  const present = FERRET_DIR !== undefined;
  const what = "ferret-datasets (apt install ferret-datasets, or set ANR_FERRET_DATA)";
  return skipWithoutData(t, present, what) ? undefined : FERRET_DIR;
}

test("real data: COADS climatology (ferret-datasets), NaN over land", async (t) => {
  const ferret = ferretOrSkip(t);
  if (ferret === undefined) return;
  await withFile(join(ferret, "coads_climatology.cdf"), async (nc) => {
    assert.equal(nc.format, "netcdf3-classic");
    assert.deepEqual(dimsOf(nc, "AIRT"), ["TIME=12*", "COADSY=90", "COADSX=180"]);
    assert.equal(nc.variable("AIRT").attrs.units, "DEG C");
    const y = await nc.readAll("COADSY");
    assert.deepEqual([y[0], y[89]], [-89, 89]);
    // Expected values from scipy 1.10.1, independently of this reader:
    //   scipy.io.netcdf_file("coads_climatology.cdf").variables["AIRT"][...]
    //   AIRT[0,45,90] = 26.11423110961914, AIRT[6,60,100] = 20.83863639831543,
    //   cells equal to missing_value (-1e34): 6486 in month 0, 7742 in month 6 (of 16200).
    const jan = await nc.readSlice("AIRT", [0]);
    const jul = await nc.readSlice("AIRT", [6]);
    assert.equal(jan[45 * 180 + 90], 26.11423110961914);
    assert.equal(jul[60 * 180 + 100], 20.83863639831543);
    assert.equal(jan.filter(Number.isNaN).length, 6486);
    assert.equal(jul.filter(Number.isNaN).length, 7742);
    // Every cell of both months as netCDF-C reads them (missing → NaN), where netCDF4-python is.
    if (!skipWithoutData(t, hasNetcdf4Python(), `netCDF4 for ${NC_PYTHON} (apt install python3-netcdf4)`)) {
      const script = `
import json, sys, netCDF4, numpy as np
v = netCDF4.Dataset(sys.argv[1]).variables["AIRT"]
rows = [np.ma.filled(v[m].astype(np.float64), np.nan).ravel().tolist() for m in (0, 6)]
print(json.dumps([[None if x != x else x for x in r] for r in rows]))
`;
      const r = spawnSync(NC_PYTHON, ["-c", script, join(ferret, "coads_climatology.cdf")], {
        encoding: "utf8",
        maxBuffer: 1 << 26,
      });
      assert.equal(r.status, 0, r.stderr);
      const [pyJan, pyJul] = (JSON.parse(r.stdout) as (number | null)[][]).map((m) =>
        m.map((x) => (x === null ? NaN : x)),
      );
      assert.deepEqual([...jan], pyJan);
      assert.deepEqual([...jul], pyJul);
    }
    // SST of the last record: 21.232500076293945 (scipy, SST[11,30,120]).
    assert.equal((await nc.readSlice("SST", [11]))[30 * 180 + 120], 21.232500076293945);
  });
});

test("real data: monthly Navy winds (ferret-datasets), two record variables", async (t) => {
  const ferret = ferretOrSkip(t);
  if (ferret === undefined) return;
  await withFile(join(ferret, "monthly_navy_winds.cdf"), async (nc) => {
    assert.deepEqual(dimsOf(nc, "UWND"), ["TIME=132*", "FNOCY=73", "FNOCX=144"]);
    assert.deepEqual(dimsOf(nc, "VWND"), ["TIME=132*", "FNOCY=73", "FNOCX=144"]);
    const y = await nc.readAll("FNOCY");
    assert.deepEqual([y[0], y[1], y[72]], [-90, -87.5, 90]);
    // From scipy 1.10.1 (scipy.io.netcdf_file): UWND[0,36,72] = -4.328893661499023,
    // UWND[131,10,20] = -3.379483461380005, VWND[131,72,143] = -2.847665309906006 (the file's last value).
    const u0 = await nc.readSlice("UWND", [0]);
    assert.equal(u0[36 * 144 + 72], -4.328893661499023);
    assert.equal(u0.filter(Number.isNaN).length, 0);
    assert.equal((await nc.readSlice("UWND", [131]))[10 * 144 + 20], -3.379483461380005);
    assert.equal((await nc.readSlice("VWND", [131]))[72 * 144 + 143], -2.847665309906006);
  });
});
