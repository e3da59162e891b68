/**
 * `anr train`'s flags end to end: --preset, --data-root, --steps, --set and --out reach the run
 * (its config.json, metrics and evaluation), and --resume continues the run in --out only with
 * the config it was started with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { runCli, tempDir, writePhoto } from "./cli-helpers.js";

test("train --preset demo --data-root --steps --set --out, then --resume", async (t) => {
  const dir = await tempDir(t, "cli-flags");
  const data = join(dir, "photos");
  for (const [split, n] of [
    ["train", 3],
    ["test", 2],
  ] as const) {
    await mkdir(join(data, split), { recursive: true });
    for (let i = 0; i < n; i++) await writePhoto(join(data, split, `${split}${i}.png`), 40, 36, i);
  }
  const out = join(dir, "run");
  const flags = [
    ...["--preset", "demo", "--data-root", data, "--steps", "2"],
    ...["--set", "model.preset=tiny32-ipc", "--set", "train.lr=0.001", "--set", "train.eval_every=1"],
    ...["--set", "train.batch_size=2", "--out", out],
  ];
  let r = await runCli(["train", ...flags]);
  assert.equal(r.code, 0, r.err);
  const cfg = JSON.parse(await readFile(join(out, "config.json"), "utf8")) as {
    name: string;
    data: { root: string };
    model: { hyponet: { name: string } };
    train: { steps: number; lr: number; batch_size: number; eval_every: number };
  };
  assert.equal(cfg.name, "demo");
  assert.equal(cfg.data.root, data);
  assert.equal(cfg.model.hyponet.name, "HypoMlpIPC");
  assert.deepEqual(
    [cfg.train.steps, cfg.train.lr, cfg.train.batch_size, cfg.train.eval_every],
    [2, 0.001, 2, 1],
  );
  const metrics = async () =>
    (await readFile(join(out, "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number; test_psnr?: number });
  const before = await metrics();
  assert.deepEqual(
    before.filter((m) => m.test_psnr !== undefined).map((m) => m.step),
    [0, 1, 2],
    "evaluated at step 0 and after every step (eval_every 1)",
  );
  const evalJson = JSON.parse(await readFile(join(out, "eval.json"), "utf8")) as { images: number };
  assert.equal(evalJson.images, 2, "the test photos of --data-root");
  const model = await readFile(join(out, "model.safetensors"));

  // --resume of the finished run: continues at its last step, keeps its metrics and its model.
  r = await runCli(["train", ...flags, "--resume"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`resuming ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} at step 2`));
  assert.deepEqual(await metrics(), before);
  assert.ok((await readFile(join(out, "model.safetensors"))).equals(model));
  // … and refuses a changed config, naming the run's config.json.
  r = await runCli(["train", ...flags, "--set", "train.lr=0.002", "--resume"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /run\/config\.json: the run config differs from the one this run was started with/);

  r = await runCli(["train", join(dir, "x.json"), "--preset", "demo"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /give a config file or --preset, not both/);
  r = await runCli(["train", join(dir, "missing.yaml")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /missing\.yaml: cannot read/);
});
