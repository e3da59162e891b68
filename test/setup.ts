/**
 * Loaded before every test process (package.json: node --import ./test/setup.ts). It installs the
 * Node worker pool for jax-js, as the Node entry does, and gives each process its own temporary
 * root as TMPDIR, removed when it exits, so that a test that fails half-way, or a CLI run that
 * writes scratch files, leaves nothing behind in the system's temporary folder.
 */
// First: the Node worker pool must exist before jax-js is evaluated (see src/node-threads.ts).
import "../src/node-threads.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = mkdtempSync(join(tmpdir(), "anr-test-"));
process.env.TMPDIR = root;
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
