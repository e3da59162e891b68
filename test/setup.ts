/**
 * Loaded before every test process (package.json: node --import ./test/setup.ts): each process
 * gets its own temporary root as TMPDIR, removed when it exits, so a test that fails half-way, or
 * a CLI run that writes scratch files, leaves nothing behind in the system's temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = mkdtempSync(join(tmpdir(), "anr-test-"));
process.env.TMPDIR = root;
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
