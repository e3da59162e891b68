import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, readF32 } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig, ConfigError, type HyponetKind } from "../src/model/config.js";
import { initHostParams, paramSpecs, toDevice, countParams, disposeParams } from "../src/model/params.js";
import { encodingLayout, generatedParams, hyperNetwork, hyponet, type Params } from "../src/model/model.js";
import { imageObjective } from "../src/model/tasks.js";
import { WeightsMismatchError } from "../src/io/weights.js";
import { saveModel, loadModel, readWeights } from "../src/io/files.js";
import { serializeSafetensors, SafetensorsError } from "../src/io/safetensors.js";
import { tinyConfig, golden } from "./fixtures.js";

test("config: τ ≥ 1/T is refused at construction, naming the field", () => {
  const c = tinyConfig();
  (c.hyponet.args as { att_threshold: number }).att_threshold = 0.125; // = 1/8
  assert.throws(
    () => parseHyperNetworkConfig(c, "cfg.json"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match((e as Error).message, /cfg\.json/);
      assert.match(
        (e as Error).message,
        /hyponet\.args\.att_threshold: att_threshold 0\.125 must be < 1\/token_len/,
      );
      return true;
    },
  );
});

test("config: every problem is listed with its field path", () => {
  const c = tinyConfig() as unknown as Record<string, Record<string, Record<string, unknown>>>;
  c.tokenizer!.args!.patch_size = 0;
  c.tinr_enc!.args!.n_head = "two";
  c.hyponet!.args!.bogus = 1;
  assert.throws(
    () => parseHyperNetworkConfig(c, "x"),
    (e: unknown) => {
      const m = (e as Error).message;
      assert.match(m, /tokenizer\.args\.patch_size/);
      assert.match(m, /tinr_enc\.args\.n_head/);
      assert.match(m, /bogus/);
      return true;
    },
  );
});

test("config: TransINR's groups must divide every generated layer's outputs, named on n_groups", () => {
  const c = tinyConfig("HypoMlp");
  c.n_groups = 12; // 12 groups do not tile the 32 hidden outputs (the 3 outputs get 3 groups)
  assert.throws(
    () => parseHyperNetworkConfig(c, "m.yaml"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        (e as Error).message,
        /^m\.yaml: invalid model config:\n {2}n_groups: 12 groups do not divide the 32 outputs of layer wb0$/,
      );
      return true;
    },
  );
});

test("config: ANR with adaptive_idim pads the encoding even when hidden // in_dim is odd (a reference crash)", async () => {
  await initBackend();
  const c = tinyConfig();
  Object.assign(c.hyponet.args, { in_dim: 3, out_dim: 4, hidden_dim: 64, adaptive_idim: true });
  const cfg = parseHyperNetworkConfig(c);
  assert.deepEqual(encodingLayout(cfg), { nFreqs: 10, encDim: 60, padDim: 4 });
  const P = toDevice(initHostParams(cfg, 0));
  const dtoken = np.ones([1, 8, 64]);
  const out = hyponet(P, cfg, np.zeros([1, 5, 3]), { dtoken });
  assert.deepEqual(out.shape, [1, 5, 4]);
  assert.ok((await readF32(out)).every(Number.isFinite));
  disposeParams(P);
});

test("weights: the authors' checkpoint layout (hypernet.* + duplicated hypo_model.*) loads; mismatches are listed", async (t) => {
  const cfg = parseHyperNetworkConfig(
    JSON.parse(await readFile(join(golden, "anr", "config.json"), "utf8")).hn,
  );
  const plain = await readWeights(join(golden, "anr", "weights.safetensors"), cfg);
  const dir = await mkdtemp(join(tmpdir(), "anr-w-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ckpt: [string, { shape: number[]; data: Float32Array }][] = [];
  for (const [k, t] of plain) {
    ckpt.push([`hypernet.${k}`, t]);
    if (k.startsWith("hyponet.")) ckpt.push([`hypo_model.${k.slice(8)}`, t]);
  }
  await writeFile(join(dir, "ckpt.safetensors"), serializeSafetensors(ckpt));
  const loaded = await readWeights(join(dir, "ckpt.safetensors"), cfg);
  assert.deepEqual([...loaded.keys()].sort(), [...plain.keys()].sort());
  for (const [k, v] of plain) assert.deepEqual(loaded.get(k)!.data, v.data, k);

  // Missing, unexpected and wrongly shaped keys all appear in one error.
  const broken = ckpt
    .filter(([k]) => k !== "hypernet.wtokens")
    .map(([k, t]): [string, typeof t] =>
      k === "hypernet.tokenizer.posemb" ? [k, { shape: [4, 256], data: t.data }] : [k, t],
    );
  broken.push(["hypernet.extra.weight", { shape: [1], data: Float32Array.from([0]) }]);
  await writeFile(join(dir, "broken.safetensors"), serializeSafetensors(broken));
  await assert.rejects(readWeights(join(dir, "broken.safetensors"), cfg), (e: unknown) => {
    assert.ok(e instanceof WeightsMismatchError);
    assert.deepEqual(e.missing, ["wtokens"]);
    assert.deepEqual(e.unexpected, ["extra.weight"]);
    assert.equal(e.wrongShape.length, 1);
    assert.match(e.message, /broken\.safetensors/);
    assert.match(e.message, /tokenizer\.posemb is \[4,256\] but the config needs \[16,64\]/);
    return true;
  });
});

test("model file: config in the metadata rebuilds the same model; bad files fail by name, nothing half-written", async (t) => {
  await initBackend();
  const cfg = parseHyperNetworkConfig(tinyConfig("HypoMlpIPC"));
  const host = initHostParams(cfg, 3);
  const dir = await mkdtemp(join(tmpdir(), "anr-m-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "m.safetensors");
  await saveModel(path, cfg, host, { note: "hi" });
  const m = await loadModel(path);
  assert.deepEqual(m.config, cfg);
  assert.equal(m.metadata.note, "hi");
  assert.equal(
    [...m.weights.values()].reduce((s, t) => s + t.data.length, 0),
    countParams(cfg),
  );
  const imgs = () =>
    np.array(
      new Float32Array(2 * 3 * 16 * 16).map((_, i) => (i % 7) / 7),
      { shape: [2, 3, 16, 16] },
    );
  const a = imageObjective(toDevice(host), cfg, imgs());
  const b = imageObjective(toDevice(m.weights), cfg, imgs());
  assert.deepEqual(await readF32(a.pred), await readF32(b.pred));

  const bytes = await readFile(path);
  await writeFile(join(dir, "trunc.safetensors"), bytes.subarray(0, bytes.length - 10));
  await assert.rejects(
    loadModel(join(dir, "trunc.safetensors")),
    (e: unknown) => e instanceof SafetensorsError && /trunc\.safetensors/.test((e as Error).message),
  );
  // A config that does not validate names the file.
  const bad = serializeSafetensors([...host], { "anr.config": JSON.stringify({ ...cfg, n_groups: -1 }) });
  await writeFile(join(dir, "badcfg.safetensors"), bad);
  await assert.rejects(
    loadModel(join(dir, "badcfg.safetensors")),
    /badcfg\.safetensors: invalid model config:\n\s+n_groups/,
  );
  // Saving weights that do not match the config fails before anything is written.
  host.delete("wtokens");
  await assert.rejects(saveModel(join(dir, "never.safetensors"), cfg, host), WeightsMismatchError);
  assert.ok(!(await readdir(dir)).some((f) => f.startsWith("never") || f.endsWith(".tmp")));
});

test("init: parameter list, shapes and distributions follow the reference", () => {
  const cfg = parseHyperNetworkConfig(tinyConfig("HypoMlp"));
  const host = initHostParams(cfg, 0);
  const specs = paramSpecs(cfg);
  assert.deepEqual(
    [...host.keys()],
    specs.map((s) => s.key),
  );
  // TransINR "mlp": 2 layers with min(n_groups, out) tokens each: 8 + 3.
  assert.deepEqual(host.get("wtokens")!.shape, [11, 32]);
  const prefc = host.get("tokenizer.prefc.weight")!;
  const bound = 1 / Math.sqrt(48);
  assert.ok(prefc.data.every((x) => Math.abs(x) <= bound));
  assert.ok(Math.max(...prefc.data) > 0.9 * bound, "uniform init spans its bound");
  assert.ok(host.get("tinr_enc.layers.0.0.norm.weight")!.data.every((x) => x === 1));
  const wt = host.get("wtokens")!.data;
  const mean = wt.reduce((s, x) => s + x, 0) / wt.length;
  const sd = Math.sqrt(wt.reduce((s, x) => s + (x - mean) ** 2, 0) / wt.length);
  assert.ok(Math.abs(sd - 1) < 0.15, `wtokens ~ N(0,1), sd ${sd}`);
});

test("hyper-network: batch elements are independent (no cross-talk through the batch axis)", async () => {
  await initBackend();
  const cfg = parseHyperNetworkConfig(tinyConfig());
  const P = toDevice(initHostParams(cfg, 1));
  const x = new Float32Array(2 * 3 * 16 * 16).map((_, i) => Math.sin(i));
  const both = await readF32(hyperNetwork(P, cfg, np.array(x, { shape: [2, 3, 16, 16] })).dtoken!);
  const second = await readF32(
    hyperNetwork(P, cfg, np.array(x.slice(3 * 256), { shape: [1, 3, 16, 16] })).dtoken!,
  );
  const half = both.slice(both.length / 2);
  assert.ok(half.every((v, i) => Math.abs(v - second[i]!) < 1e-5));
  disposeParams(P);
});

// A Record over the union: a new hyponet kind does not compile here until it is listed.
const HYPONET_KINDS: Record<HyponetKind, true> = { ANR: true, HypoMlp: true, HypoMlpIPC: true };

test("hyponet kinds: each one's declared parameters are exactly those its forward reads, and the shapes follow", async () => {
  await initBackend();
  for (const kind of Object.keys(HYPONET_KINDS) as HyponetKind[]) {
    const cfg = parseHyperNetworkConfig(tinyConfig(kind), kind);
    const declared = paramSpecs(cfg).map((s) => s.key);
    assert.equal(new Set(declared).size, declared.length, `${kind}: a parameter is declared twice`);
    const read = new Set<string>();
    const P = new Proxy(toDevice(initHostParams(cfg, 0)), {
      get(target, key) {
        if (typeof key === "string") read.add(key);
        return target[key as string];
      },
    }) as Params;
    const imgs = np.array(
      new Float32Array(2 * 3 * 16 * 16).map((_, i) => Math.cos(i)),
      { shape: [2, 3, 16, 16] },
    );
    const generated = hyperNetwork(P, cfg, imgs);
    for (const g of generatedParams(cfg))
      assert.deepEqual(generated[g.name]!.shape, [2, ...g.shape], `${kind}: generated ${g.name}`);
    const out = hyponet(P, cfg, np.zeros([2, 5, cfg.hyponet.args.in_dim]), generated);
    assert.deepEqual(out.shape, [2, 5, cfg.hyponet.args.out_dim], kind);
    assert.ok((await readF32(out)).every(Number.isFinite), kind);
    assert.deepEqual([...read].sort(), [...declared].sort(), `${kind}: declared vs read parameters`);
    disposeParams(P);
  }
});
