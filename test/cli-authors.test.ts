/**
 * The authors' files: their checkpoint key layout (state-dict prefixes, `hypernet.`, the duplicated
 * `hypo_model.*` hyponet) built here from the golden weights, and `anr init` from a model config in
 * the layout of their YAML files (test/fixtures/authors, written by us).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { serializeSafetensors, type HostTensor } from "../src/io/safetensors.js";
import { readSafetensors, readWeights } from "../src/io/files.js";
import { WeightsMismatchError, CONFIG_METADATA_KEY } from "../src/io/weights.js";
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../src/model/config.js";
import { countParams, paramSpecs } from "../src/model/params.js";
import { modelPreset } from "../src/model/presets.js";
import { golden } from "./fixtures.js";
import { runCli, tempDir, writePhoto } from "./cli-helpers.js";

const authorsYaml = join(import.meta.dirname, "fixtures", "authors", "Celeba128_anr_d5.yaml");

async function goldenAnr(): Promise<{ cfg: HyperNetworkConfig; plain: Map<string, HostTensor> }> {
  const cfg = parseHyperNetworkConfig(
    (JSON.parse(await readFile(join(golden, "anr", "config.json"), "utf8")) as { hn: unknown }).hn,
  );
  return { cfg, plain: await readWeights(join(golden, "anr", "weights.safetensors"), cfg) };
}

/** An authors' checkpoint state dict: `prefix` + hypernet.KEY, plus hypo_model.* copies of the hyponet. */
function authorsLayout(
  plain: Map<string, HostTensor>,
  prefix: string,
  copy: (key: string, t: HostTensor) => HostTensor | null = (_k, t) => ({
    shape: t.shape,
    data: t.data.slice(),
  }),
  keepOriginal: (key: string) => boolean = () => true,
): [string, HostTensor][] {
  const out: [string, HostTensor][] = [];
  for (const [k, t] of plain) {
    if (keepOriginal(k)) out.push([`${prefix}hypernet.${k}`, t]);
    const dup = k.startsWith("hyponet.") ? copy(k, t) : null;
    if (dup) out.push([`${prefix}hypo_model.${k.slice("hyponet.".length)}`, dup]);
  }
  return out;
}

function assertSameWeights(got: Map<string, HostTensor>, want: Map<string, HostTensor>): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, t] of want) {
    assert.deepEqual(got.get(k)!.shape, t.shape, k);
    assert.deepEqual(got.get(k)!.data, t.data, k);
  }
}

test("authors' checkpoints: model./ema_model./online_model. and hypernet. prefixes, hypo_model copies", async (t) => {
  const dir = await tempDir(t, "authors");
  const { cfg, plain } = await goldenAnr();
  assert.ok([...plain.keys()].some((k) => k.startsWith("hyponet.")));
  for (const prefix of ["", "model.", "ema_model.", "online_model."]) {
    const path = join(dir, `ck-${prefix || "bare"}safetensors`);
    await writeFile(path, serializeSafetensors(authorsLayout(plain, prefix)));
    assertSameWeights(await readWeights(path, cfg), plain);
  }
  // A hyponet present only as its hypo_model copy is taken from the copy.
  const onlyCopies = join(dir, "copies.safetensors");
  await writeFile(
    onlyCopies,
    serializeSafetensors(authorsLayout(plain, "", undefined, (k) => !k.startsWith("hyponet."))),
  );
  assertSameWeights(await readWeights(onlyCopies, cfg), plain);

  // A copy that differs from its original (one value, by 1e-6) is an error naming both keys.
  const victim = [...plain.keys()].filter((k) => k.startsWith("hyponet."))[1]!;
  const differs = join(dir, "differs.safetensors");
  await writeFile(
    differs,
    serializeSafetensors(
      authorsLayout(plain, "model.", (k, t) => {
        const data = t.data.slice();
        if (k === victim) data[data.length - 1]! += 1e-6;
        return { shape: t.shape, data };
      }),
    ),
  );
  await assert.rejects(readWeights(differs, cfg), (e: unknown) => {
    assert.ok(e instanceof WeightsMismatchError);
    assert.match(e.message, /differs\.safetensors/);
    assert.deepEqual(e.wrongShape, [`hypo_model copy of ${victim} differs from hypernet.${victim}`]);
    return true;
  });
  // Two state dicts in one file collide after prefix removal.
  const both = join(dir, "both.safetensors");
  await writeFile(
    both,
    serializeSafetensors([...authorsLayout(plain, "model."), ...authorsLayout(plain, "ema_model.")]),
  );
  await assert.rejects(
    readWeights(both, cfg),
    /both\.safetensors: weights do not match[\s\S]*ema_model\.hypernet\.\S+ appears twice after prefix removal/,
  );
});

test("authors' checkpoint with our config metadata: the CLI encodes as with the plain model; a differing copy exits 2", async (t) => {
  await initBackend();
  const dir = await tempDir(t, "authors-cli");
  const { cfg, plain } = await goldenAnr();
  const meta = { [CONFIG_METADATA_KEY]: JSON.stringify(cfg) };
  await writeFile(join(dir, "plain.safetensors"), serializeSafetensors([...plain], meta));
  await writeFile(
    join(dir, "authors.safetensors"),
    serializeSafetensors(authorsLayout(plain, "model."), meta),
  );
  await writePhoto(join(dir, "a.png"), 32, 32, 3);
  for (const m of ["plain", "authors"]) {
    const r = await runCli([
      "encode",
      join(dir, "a.png"),
      "--model",
      join(dir, `${m}.safetensors`),
      "--out",
      join(dir, `${m}-t.safetensors`),
    ]);
    assert.equal(r.code, 0, r.err);
  }
  const tokens = async (m: string) =>
    (await readSafetensors(join(dir, `${m}-t.safetensors`))).tensors.get("dtoken")!.data;
  assert.deepEqual(await tokens("authors"), await tokens("plain"));

  await writeFile(
    join(dir, "bad.safetensors"),
    serializeSafetensors(
      authorsLayout(plain, "model.", (k, t) => ({
        shape: t.shape,
        data: t.data.map((v) => (k === "hyponet.wtokens" ? v : v + 1)),
      })),
      meta,
    ),
  );
  const r = await runCli(["info", join(dir, "bad.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /bad\.safetensors: weights do not match the model config:\n\s+wrong shape 1: hypo_model copy of hyponet\.\S+ differs/,
  );
});

/** The JSON header of a safetensors file, read without its data. */
async function header(path: string): Promise<Record<string, { shape?: number[] } | Record<string, string>>> {
  const f = await open(path);
  try {
    const len = Buffer.alloc(8);
    await f.read(len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const json = Buffer.alloc(n);
    await f.read(json, 0, n, 8);
    return JSON.parse(json.toString("utf8")) as Record<string, { shape?: number[] } | Record<string, string>>;
  } finally {
    await f.close();
  }
}

test("init from an authors'-layout YAML (CelebA 128 ANR): the paper's model, every parameter", async (t) => {
  const dir = await tempDir(t, "authors-init");
  const out = join(dir, "celeba.safetensors");
  let r = await runCli(["init", authorsYaml, "--out", out, "--seed", "2"]);
  assert.equal(r.code, 0, r.err);
  const want = parseHyperNetworkConfig(modelPreset("celeba128-anr-d5"));
  assert.match(r.out, new RegExp(`ANR model, ${countParams(want).toLocaleString("en")} parameters`));
  // The model is 219 MB: its header alone says what was built.
  const h = await header(out);
  const meta = h.__metadata__ as Record<string, string>;
  assert.deepEqual(JSON.parse(meta[CONFIG_METADATA_KEY]!), want);
  const specs = paramSpecs(want);
  assert.deepEqual(
    Object.keys(h).filter((k) => k !== "__metadata__"),
    specs.map((s) => s.key),
  );
  for (const s of specs) assert.deepEqual((h[s.key] as { shape: number[] }).shape, s.shape, s.key);

  // A wrong value in the YAML is reported with the file and the field.
  const text = await readFile(authorsYaml, "utf8");
  await writeFile(join(dir, "bad.yaml"), text.replace("att_threshold: 0.0015", "att_threshold: 0.01"));
  r = await runCli(["init", join(dir, "bad.yaml"), "--out", join(dir, "bad.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /bad\.yaml[\s\S]*hyponet\.args\.att_threshold: att_threshold 0\.01 must be < 1\/token_len/,
  );
});

test("init from a run config (model block) and a golden config (hn block) builds the same model", async (t) => {
  const dir = await tempDir(t, "init-forms");
  const hn = (JSON.parse(await readFile(join(golden, "anr", "config.json"), "utf8")) as { hn: unknown }).hn;
  await writeFile(
    join(dir, "run.json"),
    JSON.stringify({ name: "x", data: { kind: "folder", root: "." }, model: hn }),
  );
  await writeFile(join(dir, "model.json"), JSON.stringify(hn));
  const paths: string[] = [];
  for (const src of [join(golden, "anr", "config.json"), join(dir, "run.json"), join(dir, "model.json")]) {
    const out = join(dir, `${paths.length}.safetensors`);
    const r = await runCli(["init", src, "--out", out, "--seed", "5"]);
    assert.equal(r.code, 0, r.err);
    paths.push(out);
  }
  const files = await Promise.all(paths.map((p) => readFile(p)));
  assert.ok(files[1]!.equals(files[0]!) && files[2]!.equals(files[0]!), "identical model files");
  const other = join(dir, "seed6.safetensors");
  assert.equal((await runCli(["init", join(dir, "model.json"), "--out", other, "--seed", "6"])).code, 0);
  assert.ok(!(await readFile(other)).equals(files[0]!), "--seed changes the weights");
});
