/**
 * The layers of src/ only import downward (util → backend → model/rendering → io → data → eval →
 * training → golden → api → batch → cli), as eslint.config.js declares: checked here so that CI, which runs the
 * tests, fails on a new upward import. The rules that keep the layer rule whole are checked too:
 * a dynamic `import()` in src/ loads only a package (the layer rule sees only static imports), and
 * only the CLI and the Node entry files read `process.env`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ESLint } from "eslint";

const root = join(import.meta.dirname, "..");
/** The rules beside the layer rule: dynamic imports and environment reads. */
const GUARD_RULES = ["no-restricted-syntax", "no-restricted-properties"];

test("layers: no module of src/ imports from a layer above its own", async () => {
  const eslint = new ESLint({ cwd: root });
  const results = await eslint.lintFiles(["src/**/*.ts"]);
  const upward = results.flatMap((r) =>
    r.messages
      .filter((m) => m.ruleId === "no-restricted-imports" || GUARD_RULES.includes(m.ruleId ?? ""))
      .map((m) => `${r.filePath.slice(root.length + 1)}:${m.line}: ${m.message}`),
  );
  assert.deepEqual(upward, []);
  const unparsed = results.flatMap((r) =>
    r.messages.filter((m) => m.fatal).map((m) => `${r.filePath}: ${m.message}`),
  );
  assert.deepEqual(unparsed, []);
  assert.ok(results.length > 40, `linted ${results.length} files`);
});

test("layers: the rule is in force (an eval module importing the trainer is refused)", async () => {
  const eslint = new ESLint({ cwd: root });
  const [r] = await eslint.lintText(
    'import { train } from "../training/trainer.js";\nexport const t = train;\n',
    {
      filePath: join(root, "src", "eval", "probe.ts"),
    },
  );
  assert.deepEqual(
    r!.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.line),
    [1],
  );
});

test("layers: the facade (src/api) sits above data and below the CLI", async () => {
  const eslint = new ESLint({ cwd: root });
  const lint = async (code: string, file: string) =>
    (await eslint.lintText(code, { filePath: join(root, "src", ...file.split("/")) }))[0]!.messages
      .filter((m) => m.ruleId === "no-restricted-imports")
      .map((m) => m.line);
  // The facade may use the layers below it, and the CLI may use the facade, not the reverse.
  assert.deepEqual(
    await lint('import { loadImage } from "../data/image.js";\nexport { loadImage };\n', "api/probe.ts"),
    [],
  );
  assert.deepEqual(
    await lint('import { Anr } from "../api/node.js";\nexport { Anr };\n', "cli/probe.ts"),
    [],
  );
  assert.deepEqual(
    await lint('import { Anr } from "../api/model.js";\nexport { Anr };\n', "data/probe.ts"),
    [1],
  );
  assert.deepEqual(
    await lint('import { Anr } from "../api/model.js";\nexport { Anr };\n', "training/probe.ts"),
    [1],
  );
  // Batches (src/batch) stand on the facade and serve the CLI.
  assert.deepEqual(
    await lint('import { Anr } from "../api/node.js";\nexport { Anr };\n', "batch/probe.ts"),
    [],
  );
  assert.deepEqual(
    await lint('import { makeBatch } from "../batch/batch.js";\nexport { makeBatch };\n', "api/probe.ts"),
    [1],
  );
  assert.deepEqual(
    await lint('import { cmdTrain } from "../cli/train.js";\nexport { cmdTrain };\n', "batch/probe.ts"),
    [1],
  );
});

test("layers: dynamic imports load only packages, and only the CLI and Node entries read the environment", async () => {
  const eslint = new ESLint({ cwd: root });
  const lint = async (code: string, file: string) =>
    (await eslint.lintText(code, { filePath: join(root, "src", ...file.split("/")) }))[0]!.messages
      .filter((m) => GUARD_RULES.includes(m.ruleId ?? ""))
      .map((m) => m.line);
  // An upward import hidden in import() is refused, as is one the rule cannot read, and a type
  // import("…") of our own modules; a package loaded on first use is allowed.
  assert.deepEqual(
    await lint('export const t = () => import("../training/trainer.js");\n', "eval/probe.ts"),
    [1],
  );
  assert.deepEqual(await lint('const m = "x";\nexport const t = () => import(m);\n', "io/probe.ts"), [2]);
  assert.deepEqual(
    await lint('export type T = import("../training/loop.js").TrainResult;\n', "util/probe.ts"),
    [1],
  );
  assert.deepEqual(await lint('export const o = () => import("onnxruntime-node");\n', "eval/probe.ts"), []);
  // process.env (or node:process) below the CLI is refused; the CLI and the Node entry read it.
  const read = "export const n = process.env.ANR_THREADS;\n";
  assert.deepEqual(await lint(read, "backend/probe.ts"), [1]);
  assert.deepEqual(await lint(read, "model/probe.ts"), [1]);
  assert.deepEqual(
    await lint('import { env } from "node:process";\nexport const n = env.ANR_THREADS;\n', "data/probe.ts"),
    [1],
  );
  assert.deepEqual(await lint(read, "cli/probe.ts"), []);
  assert.deepEqual(await lint(read, "node-threads.ts"), []);
});
