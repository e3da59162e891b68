/**
 * `anr export --format onnx` and `anr decode --engine ort`: a zoo model exported as the two ONNX
 * graphs (their roles and config in the metadata), and its tokens decoded by ONNX Runtime to the
 * pixels our engine decodes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { decodeModelSummary } from "../src/io/onnx.js";
import { loadModel } from "../src/io/files.js";
import { resolveModelFile } from "../src/api/node.js";
import { readPng, runCli as run, spawnAnr, tempDir, writePhoto } from "./cli-helpers.js";

const ZOO = "demo-photos-anr";

test("export: a zoo model as encoder.onnx and decoder.onnx, by default in out/export-<model>", async (t) => {
  const dir = await tempDir(t, "export");
  // The real executable in an empty folder: the zoo name resolves wherever it runs, and the
  // default folder is out/export-<model> there.
  const r = await spawnAnr(["export", ZOO, "--format", "onnx", "--json"], { cwd: dir });
  assert.equal(r.code, 0, r.err);
  const result = JSON.parse(r.out) as { out: string; encoder: string; decoder: string; bytes: number };
  assert.equal(result.out, join("out", `export-${ZOO}`));
  const encoder = join(dir, result.encoder);
  const decoder = join(dir, result.decoder);
  assert.equal(encoder, join(dir, "out", `export-${ZOO}`, "encoder.onnx"));
  assert.equal(decoder, join(dir, "out", `export-${ZOO}`, "decoder.onnx"));
  assert.equal(result.bytes, (await stat(encoder)).size + (await stat(decoder)).size);

  const { config } = await loadModel((await resolveModelFile(ZOO, "online")).path);
  for (const [role, file] of [
    ["encoder", encoder],
    ["decoder", decoder],
  ] as const) {
    const s = decodeModelSummary(await readFile(file));
    assert.equal(s.metadata["anr.role"], role, file);
    assert.equal(s.opset, 17);
    assert.deepEqual(JSON.parse(s.metadata["anr.config"]!), config, `${file} records the model's config`);
    assert.ok(s.nodes > 0 && s.initializers > 0, `${file} holds a graph and its weights`);
  }
  const enc = decodeModelSummary(await readFile(encoder));
  assert.deepEqual(
    enc.inputs.map((i) => i.name),
    ["images"],
  );
  assert.deepEqual(
    decodeModelSummary(await readFile(decoder)).outputs.map((o) => o.name),
    ["signal"],
  );

  // --weights ema on a model file that holds no EMA weights is refused, and nothing is written.
  const refused = await run(["export", ZOO, "--weights", "ema", "--out", join(dir, "ema")]);
  assert.equal(refused.code, 2, refused.err);
  assert.ok(!existsSync(join(dir, "ema", "encoder.onnx")));
});

test("decode --engine ort: the pixels of --engine wasm, within one level of 255", async (t) => {
  const dir = await tempDir(t, "ort");
  await writePhoto(join(dir, "a.png"), 40, 32, 1);
  await writePhoto(join(dir, "b.png"), 32, 32, 2);
  const tokens = join(dir, "t.safetensors");
  let r = await run(["encode", join(dir, "a.png"), join(dir, "b.png"), "--model", ZOO, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  const decoded: Record<string, string[]> = {};
  for (const engine of ["wasm", "ort"]) {
    r = await run([
      "decode",
      tokens,
      "--model",
      ZOO,
      "--scale",
      "3",
      "--engine",
      engine,
      "--out",
      join(dir, engine),
      "--json",
    ]);
    assert.equal(r.code, 0, r.err);
    const result = JSON.parse(r.out) as { files: string[]; engine: string };
    assert.equal(result.engine, engine);
    decoded[engine] = result.files;
  }
  assert.deepEqual(
    decoded.ort!.map((f) => f.replace(join(dir, "ort"), "")),
    decoded.wasm!.map((f) => f.replace(join(dir, "wasm"), "")),
  );
  assert.equal(decoded.ort!.length, 2);
  let worst = 0;
  let differing = 0;
  for (const [i, f] of decoded.ort!.entries()) {
    const a = await readPng(f);
    const b = await readPng(decoded.wasm![i]!);
    assert.deepEqual([a.h, a.w], [96, 96]);
    assert.deepEqual([b.h, b.w], [96, 96]);
    for (let k = 0; k < a.data.length; k++) {
      const d = Math.abs(a.data[k]! - b.data[k]!);
      worst = Math.max(worst, d);
      if (d > 0) differing++;
    }
  }
  assert.ok(worst <= 1, `ONNX Runtime and our engine differ by ${worst} levels`);
  t.diagnostic(`largest difference ${worst} level(s); ${differing} channel values differ`);
});
