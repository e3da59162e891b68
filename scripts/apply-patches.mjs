// `npm install` / `npm ci` run this (postinstall): in a clone of the repository it applies
// patches/ to node_modules with patch-package (a faster wasm kernel in jax-js, see
// patches/README.md). An installed copy of anr has no patches/ folder and no patch-package, and
// nothing is done: its jax-js computes the same numbers, only without the patch's speed.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const tool = fileURLToPath(new URL("../node_modules/patch-package/index.js", import.meta.url));
if (existsSync(fileURLToPath(new URL("../patches", import.meta.url))) && existsSync(tool)) {
  const r = spawnSync(process.execPath, [tool, "--error-on-fail"], { cwd: root, stdio: "inherit" });
  process.exit(r.status ?? 1);
}
