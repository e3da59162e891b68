import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NpyError, encodeNpy, parseNpy, type NdArray } from "../src/io/npy.js";
import { readNpy, writeNpy } from "../src/io/array-files.js";

// Files written by NumPy 1.24 through scripts/make_npy_fixtures.py; the formulas below repeat the
// script's, so the expected values are computed here rather than stored.
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "npy");
const fx = (name: string): string => join(FIXTURES, name);

/** v[i, j, k] = i*100 + j*10 + k + offset in C order (the script's `grid`), rank 1..3. */
function grid(shape: number[], offset: number): number[] {
  const weights = [100, 10, 1].slice(3 - shape.length);
  const out: number[] = [];
  const rec = (axis: number, acc: number): void => {
    if (axis === shape.length) {
      out.push(acc + offset);
      return;
    }
    for (let i = 0; i < shape[axis]!; i++) rec(axis + 1, acc + weights[axis]! * i);
  };
  rec(0, 0);
  return out;
}

/** Exact comparison after float32 rounding of the expectation (deepEqual tells -0 from 0, NaN equals NaN). */
function assertValues(actual: Float32Array, expected: number[]): void {
  assert.deepEqual(Array.from(actual), expected.map(Math.fround));
}

/** Assemble .npy bytes around an arbitrary header text, to exercise the header parser. */
function craft(header: string, data: Uint8Array = new Uint8Array(0), major = 1, minor = 0): Uint8Array {
  const text = new TextEncoder().encode(header + "\n");
  const prefix = major === 1 ? 10 : 12;
  const out = new Uint8Array(prefix + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, minor]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(text, prefix);
  out.set(data, prefix + text.length);
  return out;
}

const f4le = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);

/** Asserts an NpyError whose message starts with the source and matches `re`. */
function assertNpyError(e: unknown, source: string, re: RegExp): true {
  assert.ok(e instanceof NpyError, `expected an NpyError, got ${String(e)}`);
  assert.equal(e.source, source);
  assert.ok(e.message.startsWith(`${source}: `), e.message);
  assert.match(e.message, re);
  return true;
}
const throwsNpy = (fn: () => unknown, source: string, re: RegExp): void =>
  assert.throws(fn, (e) => assertNpyError(e, source, re));

// ---------------------------------------------------------------- NumPy-written files

test("npy: <f4 C-order 2-D", async () => {
  const a = await readNpy(fx("f4_c_2d.npy"));
  assert.deepEqual(a.shape, [3, 4]);
  assert.equal(a.dtype, "<f4");
  assert.equal(a.fortranOrder, false);
  assert.equal(a.version, "1.0");
  assertValues(a.data, grid([3, 4], 0.25));
});

test("npy: >f8 C-order 3-D, rounded once to float32", async () => {
  const a = await readNpy(fx("f8_be_c_3d.npy"));
  assert.deepEqual(a.shape, [2, 3, 4]);
  assert.equal(a.dtype, ">f8");
  // + 0.1 is inexact: the float64 value must come through the big-endian decode intact to round right.
  assertValues(a.data, grid([2, 3, 4], 0.1));
  assert.notEqual(a.data[1], 1.1);
});

test("npy: Fortran-order files are reordered to C order (rank 2 and 3, both byte orders)", async () => {
  const f3 = await readNpy(fx("f4_fortran_3d.npy"));
  assert.equal(f3.fortranOrder, true);
  assert.deepEqual(f3.shape, [2, 3, 4]);
  assertValues(f3.data, grid([2, 3, 4], 0.25));

  const expect2d = (off: number): number[] =>
    Array.from({ length: 15 }, (_, n) => Math.floor(n / 5) * 10 + (n % 5) + off);
  const be = await readNpy(fx("f4_be_fortran_2d.npy"));
  assert.equal(be.dtype, ">f4");
  assert.equal(be.fortranOrder, true);
  assert.deepEqual(be.shape, [3, 5]);
  assertValues(be.data, expect2d(-7.5));

  const f8 = await readNpy(fx("f8_fortran_2d.npy"));
  assert.equal(f8.fortranOrder, true);
  assertValues(f8.data, expect2d(0.5));
});

test("npy: Fortran reorder of rank 4 with a unit axis matches a direct index computation", () => {
  const shape = [2, 1, 3, 4];
  const n = 24;
  // Column-major data: element (a, b, c, d) at a + 2*(b + 1*(c + 3*d)), value = C index.
  const cIndex = (a: number, b: number, c: number, d: number): number => ((a * 1 + b) * 3 + c) * 4 + d;
  const fdata = new Float32Array(n);
  for (let a = 0; a < 2; a++)
    for (let c = 0; c < 3; c++)
      for (let d = 0; d < 4; d++) fdata[a + 2 * (0 + c + 3 * d)] = cIndex(a, 0, c, d);
  const bytes = craft(
    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1, 3, 4), }",
    new Uint8Array(fdata.buffer),
  );
  const r = parseNpy(bytes, "rank4.npy");
  assert.deepEqual(r.shape, shape);
  assertValues(
    r.data,
    Array.from({ length: n }, (_, i) => i),
  );
});

test("npy: float16, both byte orders: subnormals, extremes, ±0, ±inf, NaN", async () => {
  const expected = [
    0,
    -0,
    1,
    -2.5,
    65504,
    -65504,
    2 ** -24,
    1023 * 2 ** -24,
    2 ** -14,
    1638 / 16384,
    Infinity,
    -Infinity,
    NaN,
  ];
  for (const [name, dtype] of [
    ["f2.npy", "<f2"],
    ["f2_be.npy", ">f2"],
  ] as const) {
    const a = await readNpy(fx(name));
    assert.equal(a.dtype, dtype);
    assert.deepEqual(a.shape, [13]);
    assertValues(a.data, expected);
  }
});

test("npy: integers of every width and byte order", async () => {
  const cases: [string, string, number[], number[]][] = [
    ["i1.npy", "|i1", [8], Array.from({ length: 8 }, (_, n) => n * 36 - 128)],
    ["u1.npy", "|u1", [2, 3, 4], grid([2, 3, 4], 132)],
    ["i2.npy", "<i2", [4, 5], Array.from({ length: 20 }, (_, n) => (n - 10) * 3000)],
    ["u2_be.npy", ">u2", [6], Array.from({ length: 6 }, (_, n) => n * 13107)],
    ["i4_be.npy", ">i4", [6], Array.from({ length: 6 }, (_, n) => (n - 3) * 700000001)],
    // n * 1073741823 is not a float32: each value is rounded once.
    ["u4.npy", "<u4", [5], Array.from({ length: 5 }, (_, n) => n * 1073741823)],
  ];
  for (const [name, dtype, shape, values] of cases) {
    const a = await readNpy(fx(name));
    assert.equal(a.dtype, dtype, name);
    assert.deepEqual(a.shape, shape, name);
    assertValues(a.data, values);
  }
  assert.equal((await readNpy(fx("u2_be.npy"))).data[5], 65535);
  assert.equal((await readNpy(fx("i1.npy"))).data[0], -128);
});

test("npy: 64-bit integers round once to float32, as NumPy's astype does", async () => {
  const i8 = await readNpy(fx("i8.npy"));
  assert.equal(i8.dtype, "<i8");
  // 2^60 + 2^36 + 1 is just above a float32 tie: rounding via float64 first would give 2^60.
  assert.deepEqual(Array.from(i8.data), [
    0,
    -1,
    2 ** 53,
    2 ** 60 + 2 ** 37,
    -(2 ** 60 + 2 ** 37),
    2 ** 63,
    -(2 ** 63),
  ]);
  const u8 = await readNpy(fx("u8_be.npy"));
  assert.equal(u8.dtype, ">u8");
  assert.deepEqual(Array.from(u8.data), [0, 2 ** 64, 2 ** 60 + 2 ** 37, 2 ** 24]);
});

test("npy: bool", async () => {
  const a = await readNpy(fx("b1.npy"));
  assert.equal(a.dtype, "|b1");
  // Any non-zero byte is True, and True is 1.0 (np.frombuffer(b"\x02\x00\xff", "?").astype("f4")).
  const odd = parseNpy(
    craft(`{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }`, Uint8Array.from([2, 0, 255])),
    "b",
  );
  assert.deepEqual(Array.from(odd.data), [1, 0, 1]);
  assertValues(
    a.data,
    Array.from({ length: 7 }, (_, n) => (n % 3 === 0 ? 1 : 0)),
  );
});

test("npy: format versions 2.0 and 3.0", async () => {
  for (const [name, version] of [
    ["v2.npy", "2.0"],
    ["v3.npy", "3.0"],
  ]) {
    const a = await readNpy(fx(name!));
    assert.equal(a.version, version);
    assert.deepEqual(a.shape, [3, 4]);
    assertValues(a.data, grid([3, 4], 0.25));
  }
});

test("npy: 0-d scalar and empty (0, 4) arrays", async () => {
  const s = await readNpy(fx("scalar.npy"));
  assert.deepEqual(s.shape, []);
  assert.equal(s.dtype, "<f8");
  assertValues(s.data, [2.75]);
  const e = await readNpy(fx("empty.npy"));
  assert.deepEqual(e.shape, [0, 4]);
  assert.equal(e.data.length, 0);
  const wide = await readNpy(fx("bytes_wide_empty.npy"));
  assert.deepEqual(wide.shape, [123456, 0]);
  assert.equal(wide.data.length, 0);
});

test("npy: complex and structured dtypes are refused, naming file, dtype and what is supported", async () => {
  await assert.rejects(readNpy(fx("c8.npy")), (e) =>
    assertNpyError(
      e,
      fx("c8.npy"),
      /unsupported dtype '<c8' \(complex\); supported: float16.*f2 f4 f8.*i8.*u8.*b1/,
    ),
  );
  await assert.rejects(readNpy(fx("structured.npy")), (e) =>
    assertNpyError(
      e,
      fx("structured.npy"),
      /unsupported dtype \[\('a', '<f4'\), \('b', '<i4'\)\] \(structured.*supported:/,
    ),
  );
  for (const [descr, what] of [
    ["|O", "object"],
    ["<U3", "unicode string"],
    ["|S5", "bytes"],
    ["<M8[ns]", ""],
    ["<f16", ""],
    ["<i3", ""],
  ]) {
    throwsNpy(
      () => parseNpy(craft(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`), "x.npy"),
      "x.npy",
      new RegExp(
        `unsupported dtype '${descr!.replace(/[[\]|]/g, "\\$&")}'${what ? ` \\(${what}\\)` : ""}; supported`,
      ),
    );
  }
});

// ---------------------------------------------------------------- writer

/** The script's ramp: v[n] = (n - 17) / 8 over the flat index, exact in float32. */
const ramp = (shape: number[]): NdArray => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => (i - 17) / 8) };
};

test("npy: encodeNpy is byte-identical to np.save for float32 C-order arrays", async () => {
  const fullpad = [0, ...Array<number>(12).fill(1), 100];
  for (const [name, shape] of [
    ["bytes_2d.npy", [5, 7]],
    ["bytes_1d.npy", [10]],
    ["bytes_0d.npy", []],
    ["bytes_wide_empty.npy", [123456, 0]],
    // NumPy pads this header with a full 64 spaces (its header is already 64-aligned).
    ["bytes_fullpad.npy", fullpad],
  ] as [string, number[]][]) {
    const numpy = new Uint8Array(await readFile(fx(name)));
    assert.deepEqual(encodeNpy(ramp(shape)), numpy, name);
  }
  const f4 = await readNpy(fx("f4_c_2d.npy"));
  assert.deepEqual(encodeNpy(f4), new Uint8Array(await readFile(fx("f4_c_2d.npy"))));
});

test("npy: encodeNpy → parseNpy round-trips exactly, headers 64-byte aligned", () => {
  const special = [NaN, -0, 0, Infinity, -Infinity, 1e-45, -3.4028234663852886e38, 1 / 3];
  for (const shape of [[], [0], [1], [8], [2, 0, 5], [2, 4], [2, 3, 4, 5], [1, 1, 1, 1, 1, 1, 1, 8]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => special[i % special.length]! * (1 + i));
    const bytes = encodeNpy({ shape, data });
    assert.equal(bytes[6], 1);
    const headerLen = bytes[8]! | (bytes[9]! << 8);
    assert.equal((10 + headerLen) % 64, 0);
    assert.equal(bytes[10 + headerLen - 1], 0x0a);
    const r = parseNpy(bytes, "rt.npy");
    assert.deepEqual(r.shape, shape);
    assert.deepEqual(r.data, data);
    assert.equal(r.dtype, "<f4");
    assert.equal(r.fortranOrder, false);
    assert.equal(r.version, "1.0");
  }
});

test("npy: encodeNpy switches to version 2.0 only when the header exceeds 65535 bytes", () => {
  const shape = Array<number>(25000).fill(1); // "(1, 1, …)" is ~75000 characters
  const bytes = encodeNpy({ shape, data: new Float32Array([4.5]) });
  assert.equal(bytes[6], 2);
  const headerLen = new DataView(bytes.buffer).getUint32(8, true);
  assert.ok(headerLen > 65535, "headerLen > 65535");
  assert.equal((12 + headerLen) % 64, 0);
  const r = parseNpy(bytes, "big.npy");
  assert.equal(r.version, "2.0");
  assert.equal(r.shape.length, 25000);
  assert.deepEqual(Array.from(r.data), [4.5]);
  // Just under the limit stays 1.0.
  assert.equal(encodeNpy({ shape: Array<number>(21000).fill(1), data: new Float32Array([1]) })[6], 1);
});

test("npy: encodeNpy writes only the view of a subarray and refuses inconsistent input", () => {
  const backing = Float32Array.from([9, 1, 2, 3, 9]);
  const r = parseNpy(encodeNpy({ shape: [3], data: backing.subarray(1, 4) }), "sub.npy");
  assert.deepEqual(Array.from(r.data), [1, 2, 3]);
  assert.throws(() => encodeNpy({ shape: [2, 2], data: new Float32Array(3) }), /needs 4 values, data has 3/);
  assert.throws(() => encodeNpy({ shape: [-1], data: new Float32Array(0) }), /not a non-negative integer/);
  assert.throws(() => encodeNpy({ shape: [1.5], data: new Float32Array(1) }), /not a non-negative integer/);
});

test("npy: writeNpy writes atomically (no temp file left) and the file reads back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "anr-npy-"));
  try {
    const path = join(dir, "field.npy");
    const a = ramp([4, 6]);
    await writeNpy(path, a);
    await writeNpy(path, a); // overwrite in place
    assert.deepEqual(await readdir(dir), ["field.npy"]);
    const r = await readNpy(path);
    assert.deepEqual(r.shape, [4, 6]);
    assert.deepEqual(r.data, a.data);
    assert.deepEqual(new Uint8Array(await readFile(path)), encodeNpy(a));
    // A failed write (directory missing) leaves nothing behind either.
    await assert.rejects(writeNpy(join(dir, "missing", "x.npy"), a));
    assert.deepEqual(await readdir(dir), ["field.npy"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- header parsing

test("npy: header syntax variants NumPy's literal_eval accepts", () => {
  const data = f4le([1, 2, 3, 4, 5, 6]);
  for (const header of [
    `{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}`,
    `{ 'shape' : ( 2 , 3 , ) ,\n 'fortran_order':False,'descr':'<f4' , }`,
    `{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }`, // Python 2 longs
    `{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }`, // native = little here
    `{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3), }`,
    `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          `,
  ]) {
    const r = parseNpy(craft(header, data), "h.npy");
    assert.deepEqual(r.shape, [2, 3], header);
    assert.deepEqual(Array.from(r.data), [1, 2, 3, 4, 5, 6], header);
  }
  assert.equal(
    parseNpy(craft(`{'descr': '=f4', 'fortran_order': False, 'shape': (6,)}`, data), "h").dtype,
    "=f4",
  );
  const one = parseNpy(craft(`{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }`, data), "h.npy");
  assert.deepEqual(one.shape, [6]);
  const scalar = parseNpy(
    craft(`{'descr': '<f4', 'fortran_order': True, 'shape': (), }`, f4le([7])),
    "h.npy",
  );
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual(Array.from(scalar.data), [7]);
  const v3 = parseNpy(craft(`{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }`, data, 3), "h.npy");
  assert.equal(v3.version, "3.0");
  // Version 3.0 exists for UTF-8 field names; they are decoded (and quoted) intact.
  throwsNpy(
    () =>
      parseNpy(
        craft(`{'descr': [('température', '<f4')], 'fortran_order': False, 'shape': (1,), }`, data, 3),
        "u.npy",
      ),
    "u.npy",
    /unsupported dtype \[\('température', '<f4'\)\] \(structured/,
  );
});

test("npy: malformed headers are rejected with the file and the expectation", () => {
  const cases: [string, RegExp][] = [
    [`{'descr': '<f4', 'shape': (2,), }`, /missing 'fortran_order'/],
    [`{'fortran_order': False}`, /missing 'descr', 'shape'/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}`, /unexpected keys 'extra'/],
    [
      `{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }`,
      /'shape' must be a tuple of non-negative integers, found \(2, -3\)/,
    ],
    [
      `{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }`,
      /'shape' must be a tuple of non-negative integers, found \(2\.5,\)/,
    ],
    [
      `{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }`,
      /'shape' must be a tuple.*found \[2, 3\]/,
    ],
    // (5) is the int 5 in Python, not a tuple; NumPy refuses it too.
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (5), }`, /'shape' must be a tuple.*found \(5\)/],
    [
      `{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }`,
      /'fortran_order' must be True or False, found 0/,
    ],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (2,) `, /expected ',' or '}'/],
    [`{'descr': '<f4, 'fortran_order': False}`, /expected ':'|expected ',' or '}'/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } extra`, /unexpected text after the dict/],
    [`['descr', '<f4']`, /header is not a dict/],
    [`{'descr': __import__('os'), 'fortran_order': False, 'shape': (2,)}`, /expected a Python literal/],
    [`{'descr': 'unterminated`, /unterminated string/],
  ];
  for (const [header, re] of cases)
    throwsNpy(() => parseNpy(craft(header, f4le([1, 2])), "bad.npy"), "bad.npy", re);
});

// ---------------------------------------------------------------- corruption

test("npy: corrupt files name the path and what was expected", async () => {
  const path = fx("f4_c_2d.npy");
  const good = new Uint8Array(await readFile(path));

  // Truncated data.
  throwsNpy(
    () => parseNpy(good.subarray(0, good.length - 4), path),
    path,
    /expected 48 bytes of data \(shape \(3, 4\) × 4-byte '<f4'\), found 44/,
  );
  // Bad magic.
  const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
  throwsNpy(
    () => parseNpy(png, "img.png"),
    "img.png",
    /not a \.npy file: expected the magic \\x93NUMPY, found \\x89\\x50/,
  );
  throwsNpy(
    () => parseNpy(new Uint8Array(0), "empty.npy"),
    "empty.npy",
    /empty file, expected the \.npy magic/,
  );
  // Header cut short, and a prefix cut short.
  throwsNpy(
    () => parseNpy(good.subarray(0, 50), path),
    path,
    /header cut short: expected 118 header bytes, found 40/,
  );
  throwsNpy(
    () => parseNpy(good.subarray(0, 9), path),
    path,
    /truncated header: 9 bytes, expected at least 10/,
  );
  throwsNpy(
    () => parseNpy(good.subarray(0, 7), path),
    path,
    /truncated header: 7 bytes, expected at least 10/,
  );
  const v2 = new Uint8Array(await readFile(fx("v2.npy")));
  throwsNpy(
    () => parseNpy(v2.subarray(0, 11), "v2.npy"),
    "v2.npy",
    /expected at least 12 for a version 2\.0 prefix/,
  );
  // Unknown versions.
  for (const [major, minor] of [
    [4, 0],
    [1, 1],
    [0, 0],
  ]) {
    const b = good.slice();
    b[6] = major!;
    b[7] = minor!;
    throwsNpy(
      () => parseNpy(b, path),
      path,
      new RegExp(`unknown \\.npy format version ${major}\\.${minor}, expected 1\\.0, 2\\.0 or 3\\.0`),
    );
  }
  // Invalid UTF-8 in a 3.0 header.
  const bad3 = craft(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }`, f4le([1]), 3);
  bad3[14] = 0xff;
  throwsNpy(() => parseNpy(bad3, "v3.npy"), "v3.npy", /not valid UTF-8/);
  // readNpy: the path of a missing file.
  const missing = join(FIXTURES, "does-not-exist.npy");
  await assert.rejects(readNpy(missing), (e) => assertNpyError(e, missing, /cannot read/));
});

test("npy: bytes after the data are ignored, as np.load ignores them", async () => {
  const good = new Uint8Array(await readFile(fx("f8_be_c_3d.npy")));
  const padded = new Uint8Array(good.length + 5);
  padded.set(good);
  padded.set([1, 2, 3, 4, 5], good.length);
  assert.deepEqual(parseNpy(padded, "p.npy").data, parseNpy(good, "g.npy").data);
});

test("npy: unaligned input bytes decode the same, and the result never aliases the input", async () => {
  for (const name of [
    "f4_c_2d.npy",
    "f8_fortran_2d.npy",
    "i2.npy",
    "u4.npy",
    "i8.npy",
    "f2.npy",
    "f8_be_c_3d.npy",
  ]) {
    const good = new Uint8Array(await readFile(fx(name)));
    const expected = parseNpy(good, name).data;
    for (const shift of [1, 2, 3, 5]) {
      const backing = new Uint8Array(good.length + shift);
      backing.set(good, shift);
      const view = backing.subarray(shift);
      const r = parseNpy(view, name);
      assert.deepEqual(r.data, expected, `${name} at offset ${shift}`);
      backing.fill(0xff);
      assert.deepEqual(r.data, expected, `${name} aliases its input`);
    }
  }
  // Also the aligned fast path: mutating the source must not change the result.
  const bytes = encodeNpy(ramp([4]));
  const r = parseNpy(bytes, "a.npy");
  bytes.fill(0);
  assert.deepEqual(Array.from(r.data), [-2.125, -2, -1.875, -1.75]);
});
