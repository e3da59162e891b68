/**
 * The layers of src/ only import downward (util → backend → model/rendering → io → data → eval →
 * training → golden → api → cli), as eslint.config.js declares: checked here so that CI, which runs the
 * tests, fails on a new upward import.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ESLint } from "eslint";

const root = join(import.meta.dirname, "..");

test("layers: no module of src/ imports from a layer above its own", async () => {
  const eslint = new ESLint({ cwd: root });
  const results = await eslint.lintFiles(["src/**/*.ts"]);
  const upward = results.flatMap((r) =>
    r.messages
      .filter((m) => m.ruleId === "no-restricted-imports")
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
});
