/** The command line end to end, through `main` (exit codes, files written, messages). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, writeFile, readFile, copyFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { main } from "../src/cli/main.js";
import { readSafetensors, serializeSafetensors } from "../src/io/safetensors.js";
import { golden, tinyConfig } from "./fixtures.js";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const [log, error, write] = [console.log, console.error, process.stderr.write.bind(process.stderr)];
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

async function photo(path: string, w: number, h: number): Promise<void> {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set([(i * 7) % 256, (i * 3) % 256, 128], i * 3);
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

test("cli: init → info → encode → decode at another resolution", async () => {
  const dir = await mkdtemp(join(tmpdir(), "anr-cli-"));
  const model = join(dir, "m.safetensors");
  let r = await run(["init", join(golden, "anr", "config.json"), "--out", model, "--seed", "1"]);
  assert.equal(r.code, 0, r.err);
  r = await run(["info", model]);
  assert.equal(r.code, 0);
  assert.match(r.out, /ANR/);
  assert.match(r.out, /representation 1,024 floats per instance/);
  await photo(join(dir, "a.png"), 40, 40);
  await photo(join(dir, "b.png"), 30, 24);
  const tokens = join(dir, "t.safetensors");
  r = await run(["encode", join(dir, "a.png"), join(dir, "b.png"), "--model", model, "--out", tokens]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readSafetensors(tokens)).tensors.get("dtoken")!.shape, [2, 16, 64]);
  r = await run(["decode", tokens, "--model", model, "--size", "48x40", "--out", join(dir, "sr")]);
  assert.equal(r.code, 0, r.err);
  const meta = await sharp(join(dir, "sr", "a.48x40.png")).metadata();
  assert.deepEqual([meta.height, meta.width], [48, 40]);
  assert.ok((await readdir(join(dir, "sr"))).includes("b.48x40.png"));
  // A token file decoded with a model of another config is refused.
  const other = join(dir, "ipc.safetensors");
  assert.equal((await run(["init", join(golden, "ipc", "config.json"), "--out", other])).code, 0);
  r = await run(["decode", tokens, "--model", other, "--size", "8"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /different config/);
});

test("cli: golden exits 1 when a weight is off, naming what failed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "anr-cli-golden-"));
  for (const f of ["config.json", "io.safetensors", "README.md"])
    await copyFile(join(golden, "anr_clip", f), join(dir, f));
  const w = await readSafetensors(join(golden, "anr_clip", "weights.safetensors"));
  const t = w.tensors.get("hyponet.mlp.2.bias")!;
  t.data[0]! += 0.01;
  await writeFile(join(dir, "weights.safetensors"), serializeSafetensors([...w.tensors]));
  const r = await run(["golden", dir]);
  assert.equal(r.code, 1);
  assert.match(r.out, /pred32_raw .* FAIL/);
  assert.match(r.out, /GOLDEN CHECKS FAILED/);
});

test("cli: train a tiny run from a config file, then eval it; usage errors exit 2", async () => {
  const dir = await mkdtemp(join(tmpdir(), "anr-cli-train-"));
  await mkdir(join(dir, "imgs", "train"), { recursive: true });
  await mkdir(join(dir, "imgs", "test"), { recursive: true });
  for (let i = 0; i < 6; i++)
    await photo(join(dir, "imgs", i < 4 ? "train" : "test", `p${i}.png`), 20 + i, 18);
  const cfg = {
    name: "cli",
    data: {
      kind: "folder",
      root: join(dir, "imgs"),
      split: "folders",
      preprocess: { mode: "resize-crop", size: 16 },
    },
    model: tinyConfig("HypoMlpIPC"),
    train: { steps: 2, batch_size: 2, eval_every: 0, checkpoint_every: 0, sample_every: 0, ema: null },
  };
  await writeFile(join(dir, "run.json"), JSON.stringify(cfg));
  let r = await run(["train", join(dir, "run.json"), "--out", join(dir, "run")]);
  assert.equal(r.code, 0, r.err);
  r = await run(["eval", join(dir, "run")]);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(await readFile(join(dir, "run", "eval-test-online.json"), "utf8")) as {
    images: number;
    psnr: number;
    representation_floats_per_instance: number;
  };
  assert.equal(report.images, 2);
  assert.ok(Number.isFinite(report.psnr));
  assert.equal(
    report.representation_floats_per_instance,
    33 * 3,
    "IPC generates only layer 1 (here the output layer)",
  );

  assert.equal((await run(["bogus"])).code, 2);
  for (const c of [
    "train",
    "eval",
    "encode",
    "decode",
    "compare",
    "demo",
    "golden",
    "init",
    "info",
    "presets",
  ]) {
    r = await run([c, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`anr ${c}`));
  }
  r = await run(["train", "--preset", "nope"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown run preset "nope"/);
  await writeFile(join(dir, "bad.json"), JSON.stringify({ ...cfg, train: { steps: 0 } }));
  r = await run(["train", join(dir, "bad.json")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /bad\.json[\s\S]*train\.steps/);
  r = await run(["eval", join(dir, "run"), "--weights", "ema"]);
  assert.equal(r.code, 2, "no EMA weights in a run trained without EMA");
});
