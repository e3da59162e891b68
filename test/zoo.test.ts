/**
 * The model zoo: models/zoo.json and its cards agree with the shipped files, a zoo name resolves
 * from any working directory and stands for the model file in encode, decode, eval and info (the
 * same tokens as the file path gives), an unknown name lists the zoo, and each shipped model
 * decodes its card's test figure within 0.05 dB.
 */
import { test, type TestContext } from "node:test";
import { existsSync } from "node:fs";
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend } from "../src/backend/index.js";
import { loadModel, readSafetensors } from "../src/io/files.js";
import { preparationOf } from "../src/data/preparation.js";
import { resolveRunConfig } from "../src/training/run-config.js";
import { runPreset } from "../src/training/run-presets.js";
import { modelTask } from "../src/cli/common.js";
import { resolveModel, zooModels, ZOO_DIR, type ZooModel } from "../src/io/zoo.js";
import { skipWithoutData } from "./fixtures.js";
import { parseMetrics } from "../src/training/report.js";
import { InputError } from "../src/util/errors.js";
import { runCli as run, tempDir, writePhoto } from "./cli-helpers.js";

const REPO = resolve(fileURLToPath(import.meta.url), "..", "..");

test("zoo: zoo.json lists files and cards that exist, in the package's own models/ folder", async () => {
  assert.equal(ZOO_DIR, join(REPO, "models"));
  const zoo = await zooModels();
  assert.ok(zoo.some((m) => m.name === "demo-photos-anr"));
  for (const m of zoo) {
    assert.ok((await stat(m.file)).isFile(), m.file);
    // The card states the test figure zoo.json lists (the one `anr models` prints).
    const card = await readFile(m.card, "utf8");
    assert.ok(card.includes(`${m.test.psnr.toFixed(2)} dB`), `${m.card} does not state ${m.test.psnr} dB`);
    // A shipped training curve is the shipped model's: its last test PSNR is the card's figure.
    if (m.metrics !== undefined) {
      const last = parseMetrics(await readFile(m.metrics, "utf8"))
        .filter((r) => r.test_psnr !== undefined)
        .at(-1);
      assert.equal(last?.test_psnr?.toFixed(2), m.test.psnr.toFixed(2), m.metrics);
    }
  }
  const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { files: string[] };
  const shipped = zoo.flatMap((m) => (m.metrics ? [relative(REPO, m.metrics)] : []));
  for (const entry of ["models/zoo.json", "models/*.safetensors", "models/*.md", ...shipped])
    assert.ok(pkg.files.includes(entry), `package.json files lacks ${entry}`);
});

test("zoo: each image or field model records the data preparation of the preset it was trained with", async () => {
  // Without the record, encode and eval --images would prepare inputs by default rules (e.g. the
  // shorter side to 32 and no crop for a model trained on 64-pixel resizes cropped to 32).
  for (const m of await zooModels()) {
    const model = await loadModel(m.file);
    const run = resolveRunConfig(runPreset(m.preset), m.preset);
    assert.deepEqual(
      JSON.stringify(model.config),
      JSON.stringify(run.model),
      `${m.name}: config of preset ${m.preset}`,
    );
    if (modelTask(model.config) === "nerf") continue;
    const recorded = model.metadata["anr.data"];
    assert.ok(recorded !== undefined, `${m.name} records no data preparation`);
    assert.equal(recorded, preparationOf(run)["anr.data"], `${m.name}: preparation of preset ${m.preset}`);
  }
});

test("zoo: a name resolves from any working directory; paths pass through; unknown names list the zoo", async (t) => {
  const dir = await tempDir(t, "zoo");
  const before = process.cwd();
  process.chdir(dir);
  try {
    assert.equal(await resolveModel("demo-photos-anr"), join(REPO, "models", "demo-photos-anr.safetensors"));
    // Something that exists under that name wins over the zoo; a path is never looked up.
    assert.equal(await resolveModel("."), ".");
    assert.equal(await resolveModel("runs/x/model.safetensors"), "runs/x/model.safetensors");
    // The message lists every zoo name, in zoo.json's order.
    const names = (await zooModels()).map((m) => m.name);
    assert.ok(names.length >= 2 && names.includes("demo-photos-anr"), names.join(", "));
    await assert.rejects(
      resolveModel("nonesuch-anr"),
      (e: unknown) =>
        e instanceof InputError &&
        e.message ===
          `nonesuch-anr: no such file, folder or zoo model; the zoo has ${names.join(", ")} (anr models lists them)`,
    );
  } finally {
    process.chdir(before);
  }
  const r = await run(["info", "nonesuch-anr"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /nonesuch-anr: no such file, folder or zoo model; the zoo has demo-photos-anr/);
});

test("zoo: anr models lists the zoo; --model NAME encodes the same tokens as the file, and decodes and informs", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "zoo-cli");
  let r = await run(["models"]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /demo-photos-anr\s+image\s+ANR\s+32×32\s+2,048 floats\s+19\.52 dB \(data\/photos\/test\)\s+1\.8 MB\s+/,
  );
  r = await run(["info", "demo-photos-anr"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /demo-photos-anr\.safetensors: anr model/);
  await writePhoto(join(dir, "a.png"), 40, 36, 1);
  const byName = join(dir, "by-name.safetensors");
  const byPath = join(dir, "by-path.safetensors");
  r = await run(["encode", join(dir, "a.png"), "--model", "demo-photos-anr", "--out", byName]);
  assert.equal(r.code, 0, r.err);
  r = await run([
    "encode",
    join(dir, "a.png"),
    "--model",
    join(REPO, "models/demo-photos-anr.safetensors"),
    "--out",
    byPath,
  ]);
  assert.equal(r.code, 0, r.err);
  const [a, b] = [await readSafetensors(byName), await readSafetensors(byPath)];
  assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()]);
  for (const [k, v] of a.tensors) assert.deepEqual(v.data, b.tensors.get(k)!.data, k);
  r = await run([
    "decode",
    byName,
    "--model",
    "demo-photos-anr",
    "--size",
    "48x48",
    "--out",
    join(dir, "dec"),
  ]);
  assert.equal(r.code, 0, r.err);
  assert.ok((await stat(join(dir, "dec", "a.48x48.png"))).isFile());
});

test("zoo: each shipped model decodes its card's test figure within 0.05 dB (anr eval --model NAME)", async (t) => {
  await initBackend();
  for (const m of await zooModels()) {
    // Data outside the package (Debian's Fashion-MNIST) may be absent here: that model's check skips.
    const data = resolveRunConfig(runPreset(m.preset), m.preset).data as { root?: string };
    const present = data.root === undefined || existsSync(data.root);
    await t.test(m.name, async (t) => {
      if (skipWithoutData(t, present, `${m.name}'s data (${data.root})`)) return;
      await evalMatchesCard(t, m);
    });
  }
});

async function evalMatchesCard(t: TestContext, m: ZooModel): Promise<void> {
  const out = await tempDir(t, `zoo-eval-${m.name}`);
  const t0 = performance.now();
  const r = await run(["eval", "--model", m.name, "--out", out]);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(await readFile(join(out, "eval-test-online.json"), "utf8")) as {
    psnr: number;
    ssim: number;
    images: number;
  };
  assert.ok(
    Math.abs(report.psnr - m.test.psnr) <= 0.05,
    `${m.name}: PSNR ${report.psnr} dB, the card says ${m.test.psnr} dB`,
  );
  assert.ok(
    Math.abs(report.ssim - m.test.ssim) <= 0.0005,
    `${m.name}: SSIM ${report.ssim}, card ${m.test.ssim}`,
  );
  t.diagnostic(
    `${m.name}: ${report.psnr.toFixed(3)} dB over ${report.images} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
