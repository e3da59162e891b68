/**
 * Config errors name the file and what it should hold: a run config's `train.steps` problem says
 * "run config", a broken file says which syntax it is not valid in, and the CLI exits 2 with that
 * message (one reader, src/io/config-file.ts, for every command).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readRunConfig } from "../src/training/run-config.js";
import { ConfigError } from "../src/model/config.js";
import { zooModels } from "../src/io/zoo.js";
import { runCli, tempDir } from "./cli-helpers.js";

test("config files: unreadable, unparsable and invalid files are named, with the kind of config", async (t) => {
  const dir = await tempDir(t, "cfg");
  const bad = async (path: string, pattern: RegExp) => {
    const e = await readRunConfig(path).then(
      () => assert.fail(`${path} was accepted`),
      (err: unknown) => err,
    );
    assert.ok(e instanceof ConfigError, String(e));
    assert.match((e as Error).message, pattern);
  };
  await bad(join(dir, "missing.yaml"), /missing\.yaml: cannot read \(ENOENT.*\); expected a run config$/);
  await writeFile(join(dir, "broken.yaml"), "train: [steps: 3\n");
  await bad(join(dir, "broken.yaml"), /broken\.yaml: invalid run config:\n {2}not valid YAML/);
  // C10: an empty file (YAML parses it to null) and blank JSON are named as empty.
  await writeFile(join(dir, "empty.yaml"), "");
  await bad(join(dir, "empty.yaml"), /empty\.yaml: empty; expected a run config$/);
  await writeFile(join(dir, "blank.json"), "null\n");
  await bad(join(dir, "blank.json"), /blank\.json: empty; expected a run config$/);
  await writeFile(join(dir, "broken.json"), '{"train": ');
  await bad(join(dir, "broken.json"), /broken\.json: invalid run config:\n {2}not valid JSON/);
  await writeFile(
    join(dir, "steps.json"),
    JSON.stringify({
      data: { kind: "folder", root: dir },
      model: { preset: "tiny32-anr" },
      train: { steps: -1 },
    }),
  );
  await bad(join(dir, "steps.json"), /steps\.json: invalid run config:\n {2}train\.steps: /);

  // The CLI: the same messages, exit 2 (a JSON syntax error used to escape without the file name).
  let r = await runCli(["train", join(dir, "broken.json")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /broken\.json: invalid run config:\n {2}not valid JSON/);
  r = await runCli(["init", join(dir, "broken.yaml"), "--out", join(dir, "m.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /broken\.yaml: invalid model config:\n {2}not valid YAML/);
});

test("the zoo list's errors use the shared form: file, what it is, each field path", async (t) => {
  const dir = await tempDir(t, "zoo");
  const bad = async (content: unknown, pattern: RegExp) => {
    await writeFile(join(dir, "zoo.json"), JSON.stringify(content));
    const e = await zooModels(dir).then(
      () => assert.fail("the zoo list was accepted"),
      (err: unknown) => err,
    );
    assert.ok(e instanceof ConfigError, String(e));
    assert.match((e as Error).message, pattern);
  };
  await bad([], /zoo\.json: invalid zoo list:\n {2}\(root\): /);
  await bad(
    { models: [{ name: "x" }] },
    /zoo\.json: invalid zoo list:\n {2}models\.0\.\w+: [^\n]+\n {2}models\.0\.\w+: /,
  );
});
