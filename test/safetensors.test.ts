import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  parseSafetensors,
  serializeSafetensors,
  writeSafetensors,
  readSafetensors,
  SafetensorsError,
} from "../src/io/safetensors.js";

const sample = (): [string, { shape: number[]; data: Float32Array }][] => [
  ["a", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
  ["s", { shape: [], data: Float32Array.from([0.25]) }],
];

test("round-trips tensors and metadata", async () => {
  const dir = await mkdtemp(join(tmpdir(), "anr-st-"));
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

function corrupt(mutate: (header: Record<string, unknown>) => void): Uint8Array {
  const good = serializeSafetensors(sample());
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + n)));
  mutate(header);
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + good.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(good.subarray(8 + n), 8 + hb.length);
  return out;
}

test("rejects malformed files with the file name and the problem", async () => {
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
  const dir = await mkdtemp(join(tmpdir(), "anr-st-"));
  await writeFile(join(dir, "t.safetensors"), good.subarray(0, 30));
  await assert.rejects(readSafetensors(join(dir, "t.safetensors")), /t\.safetensors: truncated/);
  assert.ok((await readFile(join(dir, "t.safetensors"))).length === 30);
});
