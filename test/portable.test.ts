/**
 * The portable entries ("anr", src/index.ts, and "anr/lowlevel", src/lowlevel.ts) bundle for the browser: esbuild with platform
 * "browser" resolves no Node built-in, and the graph holds only the packages the core is allowed
 * (jax-js and zod), none of the Node shell's modules (files, datasets, trainer, CLI).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { build, type Message } from "esbuild";
import { bundledPackages } from "./fixtures.js";

const root = join(import.meta.dirname, "..");
const CORE_PACKAGES = ["@jax-js/jax", "zod"];

for (const entry of ["index.ts", "lowlevel.ts"])
  test(`src/${entry} bundles for the browser with no Node built-in and no native package`, async () => {
    let inputs: string[];
    try {
      const result = await build({
        entryPoints: [join(root, "src", entry)],
        absWorkingDir: root,
        bundle: true,
        platform: "browser",
        format: "esm",
        write: false,
        logLevel: "silent",
        metafile: true,
      });
      inputs = Object.keys(result.metafile.inputs);
    } catch (e) {
      const errors = (e as { errors?: Message[] }).errors ?? [];
      const lines = errors.map((m) => `${m.location?.file ?? "?"}:${m.location?.line ?? "?"}: ${m.text}`);
      assert.fail(`the core does not bundle for the browser:\n${lines.join("\n") || (e as Error).message}`);
    }
    assert.deepEqual(bundledPackages(inputs), CORE_PACKAGES, "packages in the core's graph");
    const ours = inputs.filter((f) => f.startsWith("src/"));
    const shell = ours.filter((f) =>
      /^src\/(cli|data|golden)\/|^src\/io\/(files|array-files|hdf5-reader|config-file)|^src\/util\/(fs|lock)|^src\/backend\/(install-worker|node-worker)|^src\/training\/(trainer|loop|drivers|checkpoint|run-)/.test(
        f,
      ),
    );
    assert.deepEqual(shell, [], "Node-shell modules in the core's graph");
    assert.ok(ours.includes("src/model/model.ts"), ours.join(", "));
  });
