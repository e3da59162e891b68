import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import { parseSafetensors, serializeSafetensors, SafetensorsError } from "../src/io/safetensors.js";
import { writeSafetensors, readSafetensors } from "../src/io/files.js";
import { withSafetensorsHeader } from "./fixtures.js";

/** A temporary folder removed when the test ends. */
async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "anr-st-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const sample = (): [string, { shape: number[]; data: Float32Array }][] => [
  ["a", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
  ["s", { shape: [], data: Float32Array.from([0.25]) }],
];

test("round-trips tensors and metadata", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "x.safetensors");
  await writeSafetensors(path, sample(), { hello: "world" });
  const f = await readSafetensors(path);
  assert.deepEqual([...f.tensors.keys()], ["a", "s"]);
  assert.deepEqual(f.tensors.get("a")!.shape, [2, 3]);
  assert.deepEqual([...f.tensors.get("a")!.data], [1, 2, 3, 4, 5, -6.5]);
  assert.deepEqual(f.tensors.get("s")!.shape, []);
  assert.equal(f.metadata.hello, "world");
  assert.deepEqual(await readdir(dir), ["x.safetensors"], "no temporary file left behind");
});

test("reads F16 and BF16", () => {
  const header = JSON.stringify({
    h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    b: { dtype: "BF16", shape: [1], data_offsets: [4, 6] },
  });
  const hb = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + hb.length + 6);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  buf.set(hb, 8);
  dv.setUint16(8 + hb.length, 0x3c00, true); // 1.0
  dv.setUint16(8 + hb.length + 2, 0xc000, true); // -2.0
  dv.setUint16(8 + hb.length + 4, 0x4049, true); // bf16 3.140625
  const f = parseSafetensors(buf, "mem");
  assert.deepEqual([...f.tensors.get("h")!.data], [1, -2]);
  assert.equal(f.tensors.get("b")!.data[0], 3.140625);
});

/** A file we wrote, with its JSON header changed by `mutate` (the data block kept as is). */
function corrupt(
  mutate: (header: Record<string, unknown>) => void,
  tensors: [string, { shape: number[]; data: Float32Array }][] = sample(),
): Uint8Array {
  return withSafetensorsHeader(serializeSafetensors(tensors), mutate);
}

test("rejects malformed files with the file name and the problem", async (t) => {
  const good = serializeSafetensors(sample());
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 5), /truncated/],
    [good.subarray(0, good.length - 4), /past the data block|truncat/],
    [corrupt((h) => ((h.a as { dtype: string }).dtype = "I64")), /dtype "I64" is not supported/],
    [
      corrupt((h) => ((h.a as { data_offsets: number[] }).data_offsets = [0, 20])),
      /data_offsets span 20 bytes/,
    ],
    [
      corrupt((h) => ((h.s as { data_offsets: number[] }).data_offsets = [20, 24])),
      /begins at 20, expected 24|past the data block/,
    ],
    [corrupt((h) => ((h.a as { shape: unknown }).shape = [2, -3])), /shape/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(
      () => parseSafetensors(bytes, "bad.safetensors"),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError);
        assert.match((e as Error).message, /^bad\.safetensors: /);
        assert.match((e as Error).message, re);
        return true;
      },
    );
  }
  const dir = await tempDir(t);
  await writeFile(join(dir, "t.safetensors"), good.subarray(0, 30));
  await assert.rejects(readSafetensors(join(dir, "t.safetensors")), /t\.safetensors: truncated/);
  assert.ok((await readFile(join(dir, "t.safetensors"))).length === 30);
});

test("writes the format byte for byte: u64 header length, 8-byte aligned JSON header, little-endian F32 in order", () => {
  const bytes = serializeSafetensors(sample(), { k: "v" });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  assert.equal(n % 8, 0, "the data block starts 8-byte aligned");
  assert.equal(bytes.length, 8 + n + 4 * 7);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  // The checksum, recomputed with zlib's CRC-32 (an implementation independent of ours): each
  // tensor's name, a NUL, then its little-endian F32 bytes, in name order.
  const data = bytes.subarray(8 + n);
  const crc = crc32(data.subarray(24, 28), crc32("s\0", crc32(data.subarray(0, 24), crc32("a\0"))));
  assert.deepEqual(header, {
    __metadata__: { k: "v", "anr.checksum": `crc32:${crc.toString(16).padStart(8, "0")}` },
    a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
    s: { dtype: "F32", shape: [], data_offsets: [24, 28] },
  });
  const values = [1, 2, 3, 4, 5, -6.5, 0.25].map((_, i) => view.getFloat32(8 + n + 4 * i, true));
  assert.deepEqual(values, [1, 2, 3, 4, 5, -6.5, 0.25]);
  // Headers of every length mod 8 (metadata values of 1–8 characters) are padded to a multiple of 8.
  for (let k = 1; k <= 8; k++) {
    const b = serializeSafetensors(sample(), { k: "v".repeat(k) });
    const len = Number(new DataView(b.buffer).getBigUint64(0, true));
    assert.equal(len % 8, 0, `header of metadata value length ${k}: ${len} bytes`);
    assert.equal(parseSafetensors(b).metadata.k, "v".repeat(k));
  }
  // The checksum is not handed back as user metadata.
  assert.deepEqual(parseSafetensors(bytes).metadata, { k: "v" });
});

test("the checksum catches swapped same-shape tensors and flipped bits; files without one still load", () => {
  const tensors: [string, { shape: number[]; data: Float32Array }][] = [
    ["a", { shape: [2], data: Float32Array.from([1, 2]) }],
    ["s", { shape: [2], data: Float32Array.from([3, 4]) }],
  ];
  const swapped = corrupt((h) => {
    const a = h.a as { data_offsets: number[] };
    const s = h.s as { data_offsets: number[] };
    [a.data_offsets, s.data_offsets] = [s.data_offsets, a.data_offsets];
  }, tensors);
  assert.throws(
    () => parseSafetensors(swapped, "swapped.safetensors"),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.match((e as Error).message, /^swapped\.safetensors: checksum mismatch/);
      return true;
    },
  );
  const flipped = serializeSafetensors(tensors);
  flipped[flipped.length - 1]! ^= 0x01;
  assert.throws(() => parseSafetensors(flipped, "f.safetensors"), /f\.safetensors: checksum mismatch/);
  // A file written elsewhere (no checksum in its metadata) is not refused for lacking one.
  const foreign = corrupt((h) => delete (h.__metadata__ as Record<string, string>)["anr.checksum"]);
  assert.deepEqual([...parseSafetensors(foreign).tensors.keys()], ["a", "s"]);
});

test("F16 and BF16 special values: subnormals, signed zero, infinities, NaN", () => {
  const f16 = [0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0xc400];
  const bf16 = [0x3f80, 0xff80, 0x0001, 0xc0a0];
  const header = JSON.stringify({
    h: { dtype: "F16", shape: [f16.length], data_offsets: [0, 2 * f16.length] },
    b: { dtype: "BF16", shape: [2, 2], data_offsets: [2 * f16.length, 2 * (f16.length + bf16.length)] },
  });
  const hb = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + hb.length + 2 * (f16.length + bf16.length));
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  buf.set(hb, 8);
  [...f16, ...bf16].forEach((bits, i) => dv.setUint16(8 + hb.length + 2 * i, bits, true));
  const f = parseSafetensors(buf, "mem");
  // By hand: 2^-24; (1023/1024)·2^-14; −0; ±∞; NaN; (1 + 341/1024)/4; −4.
  const h = [...f.tensors.get("h")!.data];
  assert.equal(h[0], 2 ** -24);
  assert.equal(h[1], (1023 / 1024) * 2 ** -14);
  assert.ok(Object.is(h[2], -0));
  assert.deepEqual(h.slice(3, 5), [Infinity, -Infinity]);
  assert.ok(Number.isNaN(h[5]));
  assert.equal(h[6], Math.fround((1 + 341 / 1024) / 4));
  assert.equal(h[7], -4);
  // BF16 is the top half of an F32: 1, −∞, 2^-133 (the smallest subnormal above 0 in bf16), −5.
  assert.deepEqual([...f.tensors.get("b")!.data], [1, -Infinity, 2 ** -133, -5]);
  assert.deepEqual(f.tensors.get("b")!.shape, [2, 2]);
});

test("more malformations: metadata types, header kind and size, gaps; writer refuses bad input", () => {
  const cases: [Uint8Array, RegExp][] = [
    [corrupt((h) => (h.__metadata__ = { n: 3 })), /__metadata__\.n is number, expected a string/],
    [corrupt((h) => (h.__metadata__ = ["x"])), /__metadata__ is not an object/],
    [
      corrupt((h) => ((h.a as { data_offsets: number[] }).data_offsets = [4, 28])),
      /data_offsets span 24 bytes but F32\[2,3\] needs 24|begins at 4, expected 0/,
    ],
    [
      corrupt((h) => ((h.a as { data_offsets: number[] }).data_offsets = [24, 0])),
      /not \[begin, end\] with 0 ≤ begin ≤ end/,
    ],
    [corrupt((h) => (h.a = 5)), /tensor "a": (entry is not an object|dtype)/],
  ];
  const notObject = new TextEncoder().encode("[1, 2]  ");
  const arr = new Uint8Array(8 + notObject.length);
  new DataView(arr.buffer).setBigUint64(0, BigInt(notObject.length), true);
  arr.set(notObject, 8);
  cases.push([arr, /header is not a JSON object/]);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
  cases.push([huge, /header length 1099511627776 exceeds the 104857600-byte limit/]);
  const gapped = serializeSafetensors(sample());
  const longer = new Uint8Array(gapped.length + 4);
  longer.set(gapped);
  cases.push([longer, /data block has 32 bytes but the tensors cover 28/]);
  for (const [bytes, re] of cases)
    assert.throws(
      () => parseSafetensors(bytes, "bad.safetensors"),
      (e: unknown) =>
        e instanceof SafetensorsError &&
        /^bad\.safetensors: /.test((e as Error).message) &&
        re.test((e as Error).message),
      String(re),
    );
  assert.throws(
    () => serializeSafetensors([["__metadata__", sample()[0]![1]]]),
    /"__metadata__" is reserved/,
  );
  assert.throws(
    () => serializeSafetensors([["x", { shape: [2, 2], data: new Float32Array(3) }]]),
    /tensor "x": 3 values do not fill shape \[2,2\]/,
  );
});
