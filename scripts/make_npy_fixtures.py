#!/usr/bin/env python3
"""Write the NumPy-made .npy fixtures that test/npy.test.ts reads.

Run from the repository root with a Python that has NumPy (the files are committed,
so CI needs no NumPy):

    /usr/bin/python3 scripts/make_npy_fixtures.py

Every array is built from a formula (or a short literal list) that the TypeScript test
repeats, so the expected values live in the test, not in another file. Values are chosen
to be exact in the stored dtype unless a file exists to test rounding (f8 -> f4, i8 -> f4).
"""
import os

import numpy as np
from numpy.lib import format as npformat

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "npy")


def grid(shape):
    """v[i, j, k] = i*100 + j*10 + k (int64), for rank 1..3."""
    idx = np.indices(shape)
    weights = [100, 10, 1][3 - len(shape) :]
    return sum(w * ix for w, ix in zip(weights, idx))


def save(name, arr, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, arr)  # np.save picks the version, as real files do
    else:
        with open(path, "wb") as f:
            npformat.write_array(f, arr, version=version)


def main():
    os.makedirs(OUT, exist_ok=True)

    # Float32 / float64, C and Fortran order, both byte orders.
    save("f4_c_2d.npy", (grid((3, 4)) + 0.25).astype("<f4"))
    # + 0.1 is not exact in float32: the reader must round float64 -> float32 correctly.
    save("f8_be_c_3d.npy", (grid((2, 3, 4)) + 0.1).astype(">f8"))
    save("f4_fortran_3d.npy", np.asfortranarray((grid((2, 3, 4)) + 0.25).astype("<f4")))
    i, j = np.indices((3, 5))
    save("f4_be_fortran_2d.npy", np.asfortranarray((i * 10 + j - 7.5).astype(">f4")))
    save("f8_fortran_2d.npy", np.asfortranarray((i * 10 + j + 0.5).astype("<f8")))

    # float16: every value exactly representable (subnormals, extremes, specials).
    f2 = [0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 2.0**-24, 1023 * 2.0**-24, 2.0**-14,
          1638 / 16384, np.inf, -np.inf, np.nan]
    save("f2.npy", np.array(f2, dtype="<f2"))
    save("f2_be.npy", np.array(f2, dtype=">f2"))

    # Integers of every width and both byte orders.
    i, j = np.indices((4, 5))
    save("i2.npy", ((i * 5 + j - 10) * 3000).astype("<i2"))
    save("u2_be.npy", (np.arange(6) * 13107).astype(">u2"))
    save("u1.npy", (grid((2, 3, 4)) + 132).astype("|u1"))
    save("i1.npy", (np.arange(8) * 36 - 128).astype("|i1"))
    save("i4_be.npy", ((np.arange(6) - 3) * 700000001).astype(">i4"))
    save("u4.npy", (np.arange(5) * 1073741823).astype("<u4"))
    i8 = [0, -1, 2**53 + 1, 2**60 + 2**36 + 1, -(2**60 + 2**36 + 1), 2**63 - 1, -(2**63)]
    a = np.array(i8, dtype="<i8")
    # The expected float32 values in the test are NumPy's own casts; guard against drift.
    assert a.astype(np.float32)[3] == np.float32(2**60 + 2**37)
    assert a.astype(np.float32)[2] == np.float32(2**53)
    save("i8.npy", a)
    u8 = np.array([0, 2**64 - 1, 2**60 + 2**36 + 1, 2**24 + 1], dtype=">u8")
    assert u8.astype(np.float32)[2] == np.float32(2**60 + 2**37)
    save("u8_be.npy", u8)
    save("b1.npy", (np.arange(7) % 3 == 0).astype("|b1"))

    # Format versions 2.0 and 3.0 (np.save only uses them when it must).
    save("v2.npy", (grid((3, 4)) + 0.25).astype("<f4"), version=(2, 0))
    save("v3.npy", (grid((3, 4)) + 0.25).astype("<f4"), version=(3, 0))

    # 0-d and empty arrays.
    save("scalar.npy", np.array(2.75, dtype="<f8"))
    save("empty.npy", np.zeros((0, 4), dtype="<f4"))

    # Unsupported dtypes: the reader must name them.
    save("c8.npy", np.array([1 + 2j, 3 - 4j], dtype="<c8"))
    save("structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))

    # Byte-for-byte references for encodeNpy: float32, C order, v[n] = (n - 17) / 8
    # over the flat index, written by np.save.
    def ramp(shape):
        return ((np.arange(int(np.prod(shape))) - 17) / 8).reshape(shape).astype("<f4")

    save("bytes_2d.npy", ramp((5, 7)))
    save("bytes_1d.npy", ramp((10,)))
    save("bytes_0d.npy", ramp(()))
    save("bytes_wide_empty.npy", ramp((123456, 0)))
    # A shape whose header lands exactly on a 64-byte boundary before padding, so NumPy
    # pads with a full 64 spaces; the encoder must do the same.
    # NumPy's header text (numpy.lib.format._write_array_header): sorted keys, a trailing
    # ", ", then spare spaces so the leading axis can grow in place.
    def header_len(shape):
        text = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
        return len(text) + npformat.GROWTH_AXIS_MAX_DIGITS - len(repr(shape[0])) + 1

    fullpad = next(
        (0,) + (1,) * ones + (last,)
        for ones in range(0, 30)
        for last in (1, 10, 100, 1000, 10000)
        if (10 + header_len((0,) + (1,) * ones + (last,))) % npformat.ARRAY_ALIGN == 0
    )
    save("bytes_fullpad.npy", np.zeros(fullpad, dtype="<f4"))
    raw = open(os.path.join(OUT, "bytes_fullpad.npy"), "rb").read()
    assert raw.endswith(b" " * 64 + b"\n"), "expected NumPy to pad with a full 64 spaces"
    print("full-pad shape", fullpad)

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
