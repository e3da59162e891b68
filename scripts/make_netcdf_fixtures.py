#!/usr/bin/env python3
"""Write the small NetCDF fixtures used by test/netcdf.test.ts with the real netCDF-C library.

The files mimic how ERA5 is distributed by the Copernicus CDS, so the TypeScript reader is tested
against bytes produced by the reference implementation rather than by our own writer:

  era5_old_cds.nc        NETCDF3_64BIT_OFFSET, time unlimited, int16 t2m packed (scale/offset,
                         _FillValue = missing_value = -32767 at known cells), latitude 90 -> -90.
                         W = 45 so a record of t2m is 2250 bytes: netCDF-C pads it to 2252.
  nc3_classic_4d.nc      NETCDF3_CLASSIC, 4-D float32 record variable (time, level, lat, lon),
                         a fixed 3-D float64 variable, an int32 2-D variable and a char variable.
  nc3_single_record.nc   NETCDF3_CLASSIC with exactly one record variable of type short and an odd
                         record size: the format's special case where records are NOT padded.
  era5_new_cds.nc        NETCDF4, dims (valid_time, latitude, longitude), float32 t2m zlib+shuffle,
                         chunks (1, H, W), _FillValue NaN with NaN cells, int64 scalar `number`,
                         string `expver(valid_time)`.
  era5_new_cds_pl.nc     NETCDF4 pressure levels: 4-D float32 t (valid_time, pressure_level, lat, lon).
  nc4_packed.nc          NETCDF4, int16 packed `sp` with valid_range (packed units), int8 `mask` with
                         _Unsigned = "true" and _FillValue -1 (= 255 unsigned), native uint16 `count`,
                         dims y/x without coordinate variables (netCDF-C writes phony dimension scales).

All values come from the formulas below so the test can recompute them without other files:

  T(t, lat, lon) = 280 + 20 cos(lat) + 5 tanh((lon - 180) / 5) + t         (era5_*: t2m)
  TA(t, k, lat, lon) = 250 + 10 k + 20 cos(lat) + 5 tanh((lon - 180) / 5) + t   (nc3_classic_4d: ta,
                         era5_new_cds_pl: t)
  ZS(k, lat, lon) = 1000 k + lat + 0.01 lon                                 (nc3_classic_4d: zs)
  SP(i, j) = 100000 + 50 i - 30 j                                          (nc4_packed: sp)

Run:  /tmp/ncvenv/bin/python scripts/make_netcdf_fixtures.py   (netCDF4 1.7.x, numpy 1.26)
"""

import os
import sys

import netCDF4
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "netcdf")


def t2m(t, lat, lon):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return 280.0 + 20.0 * np.cos(np.deg2rad(la)) + 5.0 * np.tanh((lo - 180.0) / 5.0) + t


def ta(t, k, lat, lon):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return 250.0 + 10.0 * k + 20.0 * np.cos(np.deg2rad(la)) + 5.0 * np.tanh((lo - 180.0) / 5.0) + t


def pack_params(lo, hi):
    # Like the CDS packer (offset at the centre of the range), but keeping the packed values within
    # +-32766 so that -32767 is free for _FillValue.
    scale = (hi - lo) / 65532.0
    return scale, (hi + lo) / 2.0


def old_cds():
    path = os.path.join(OUT, "era5_old_cds.nc")
    nt, lat, lon = 3, np.linspace(90.0, -90.0, 25), np.arange(45) * 8.0
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.Conventions = "CF-1.6"
        ds.history = "2023-05-01 12:00:00 GMT by grib_to_netcdf-2.25.1: fixture"
        ds.createDimension("longitude", len(lon))
        ds.createDimension("latitude", len(lat))
        ds.createDimension("time", None)
        v = ds.createVariable("longitude", "f4", ("longitude",))
        v.units, v.long_name = "degrees_east", "longitude"
        v[:] = lon
        v = ds.createVariable("latitude", "f4", ("latitude",))
        v.units, v.long_name = "degrees_north", "latitude"
        v[:] = lat
        v = ds.createVariable("time", "i4", ("time",))
        v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:00.0", "time", "gregorian"
        v[:] = 1078800 + 6 * np.arange(nt)
        data = np.stack([t2m(t, lat, lon) for t in range(nt)])
        scale, offset = pack_params(data.min(), data.max())
        v = ds.createVariable("t2m", "i2", ("time", "latitude", "longitude"), fill_value=-32767)
        v.set_auto_maskandscale(False)
        v.scale_factor, v.add_offset = np.float64(scale), np.float64(offset)
        v.missing_value = np.int16(-32767)
        v.units, v.long_name = "K", "2 metre temperature"
        packed = np.round((data - offset) / scale).astype(np.int16)
        for t, i, j in [(0, 0, 0), (1, 3, 7), (2, 24, 44)]:
            packed[t, i, j] = -32767
        v[:] = packed


def classic_4d():
    path = os.path.join(OUT, "nc3_classic_4d.nc")
    nt, lev = 2, np.array([1000.0, 850.0, 500.0])
    lat, lon = np.array([60.0, 30.0, 0.0, -30.0]), np.arange(6) * 60.0
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.title = "classic 4-D fixture"
        ds.createDimension("time", None)
        ds.createDimension("level", len(lev))
        ds.createDimension("lat", len(lat))
        ds.createDimension("lon", len(lon))
        ds.createDimension("nchar", 8)
        ds.createVariable("level", "f8", ("level",))[:] = lev
        ds.createVariable("lat", "f4", ("lat",))[:] = lat
        ds.createVariable("lon", "f4", ("lon",))[:] = lon
        ds.createVariable("time", "f8", ("time",))[:] = np.arange(nt) * 24.0
        v = ds.createVariable("ta", "f4", ("time", "level", "lat", "lon"), fill_value=np.float32(-9999.0))
        v.units = "K"
        data = np.stack([np.stack([ta(t, k, lat, lon) for k in range(len(lev))]) for t in range(nt)])
        data[1, 2, 3, 5] = -9999.0
        v[:] = data
        v = ds.createVariable("zs", "f8", ("level", "lat", "lon"))
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        v[:] = np.stack([1000.0 * k + la + 0.01 * lo for k in range(len(lev))])
        v = ds.createVariable("land", "i4", ("lat", "lon"))
        v[:] = np.arange(len(lat) * len(lon)).reshape(len(lat), len(lon))
        v = ds.createVariable("station", "S1", ("lon", "nchar"))
        v[:] = np.array([list(f"st{j}".ljust(8, "\0")) for j in range(len(lon))], dtype="S1")


def single_record():
    path = os.path.join(OUT, "nc3_single_record.nc")
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("time", None)
        ds.createDimension("y", 3)
        ds.createDimension("x", 5)
        v = ds.createVariable("v", "i2", ("time", "y", "x"))
        v[:] = (np.arange(4 * 15).reshape(4, 3, 5) * 7 - 100).astype(np.int16)


def new_cds():
    path = os.path.join(OUT, "era5_new_cds.nc")
    nt, lat, lon = 3, np.linspace(90.0, -90.0, 25), np.arange(45) * 8.0
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.GRIB_centre = "ecmf"
        ds.Conventions = "CF-1.7"
        ds.institution = "European Centre for Medium-Range Weather Forecasts"
        ds.createDimension("valid_time", nt)
        ds.createDimension("latitude", len(lat))
        ds.createDimension("longitude", len(lon))
        v = ds.createVariable("number", "i8", ())
        v.long_name, v.units, v.standard_name = "ensemble member numerical id", "1", "realization"
        v[...] = 0
        v = ds.createVariable("valid_time", "i8", ("valid_time",))
        v.long_name, v.units, v.calendar = "time", "seconds since 1970-01-01", "proleptic_gregorian"
        v[:] = 1704067200 + 3600 * np.arange(nt)
        v = ds.createVariable("latitude", "f8", ("latitude",))
        v.units, v.standard_name = "degrees_north", "latitude"
        v[:] = lat
        v = ds.createVariable("longitude", "f8", ("longitude",))
        v.units, v.standard_name = "degrees_east", "longitude"
        v[:] = lon
        v = ds.createVariable("expver", str, ("valid_time",))
        v.long_name = "Experiment version"
        for t in range(nt):
            v[t] = "0001"
        v = ds.createVariable(
            "t2m",
            "f4",
            ("valid_time", "latitude", "longitude"),
            zlib=True,
            shuffle=True,
            complevel=1,
            chunksizes=(1, len(lat), len(lon)),
            fill_value=np.float32(np.nan),
        )
        v.GRIB_paramId = np.int64(167)
        v.units, v.long_name, v.standard_name = "K", "2 metre temperature", "unknown"
        v.coordinates = "number valid_time latitude longitude expver"
        data = np.stack([t2m(t, lat, lon) for t in range(nt)]).astype(np.float32)
        for t, i, j in [(0, 12, 22), (2, 0, 1)]:
            data[t, i, j] = np.nan
        v[:] = data


def new_cds_pl():
    path = os.path.join(OUT, "era5_new_cds_pl.nc")
    nt, lev = 2, np.array([1000.0, 850.0, 500.0])
    lat, lon = np.linspace(90.0, -90.0, 7), np.arange(12) * 30.0
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("valid_time", nt)
        ds.createDimension("pressure_level", len(lev))
        ds.createDimension("latitude", len(lat))
        ds.createDimension("longitude", len(lon))
        ds.createVariable("valid_time", "i8", ("valid_time",))[:] = 1704067200 + 3600 * np.arange(nt)
        v = ds.createVariable("pressure_level", "f8", ("pressure_level",))
        v.units = "hPa"
        v[:] = lev
        ds.createVariable("latitude", "f8", ("latitude",))[:] = lat
        ds.createVariable("longitude", "f8", ("longitude",))[:] = lon
        v = ds.createVariable(
            "t",
            "f4",
            ("valid_time", "pressure_level", "latitude", "longitude"),
            zlib=True,
            shuffle=True,
            chunksizes=(1, 1, len(lat), len(lon)),
            fill_value=np.float32(np.nan),
        )
        v[:] = np.stack([np.stack([ta(t, k, lat, lon) for k in range(len(lev))]) for t in range(nt)])


def packed_nc4():
    path = os.path.join(OUT, "nc4_packed.nc")
    ny, nx = 4, 6
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        ii, jj = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        sp = 100000.0 + 50.0 * ii - 30.0 * jj
        v = ds.createVariable("sp", "i2", ("time", "y", "x"), fill_value=np.int16(-32767), zlib=True)
        v.set_auto_maskandscale(False)
        v.scale_factor, v.add_offset = np.float64(0.5), np.float64(100000.0)
        # Packed units; (1, 0) is packed 3000 > 2000 and (3, 5) is the fill.
        v.valid_range = np.array([-2000, 2000], dtype=np.int16)
        packed = np.round((sp - 100000.0) / 0.5).astype(np.int16)
        packed[1, 0] = 3000
        packed[3, 5] = -32767
        v[0] = packed
        v[1] = packed + 2
        v = ds.createVariable("mask", "i1", ("y", "x"), fill_value=np.int8(-1))
        v.set_auto_maskandscale(False)
        v._Unsigned = "true"
        # 0..254 as unsigned bytes, stored as signed int8; cell (2, 3) holds the fill (-1 = 255).
        m = ((ii * nx + jj) * 10 + 5).astype(np.uint8)
        m[2, 3] = 255
        v[:] = m.view(np.int8)
        v = ds.createVariable("count", "u2", ("y", "x"))
        v[:] = (60000 + ii * nx + jj).astype(np.uint16)


def main():
    os.makedirs(OUT, exist_ok=True)
    old_cds()
    classic_4d()
    single_record()
    new_cds()
    new_cds_pl()
    packed_nc4()
    print(f"netCDF4 {netCDF4.__version__}, netCDF-C {netCDF4.__netcdf4libversion__}, "
          f"HDF5 {netCDF4.__hdf5libversion__}, numpy {np.__version__}", file=sys.stderr)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
