/**
 * Targeted mutation check: applies each mutation of test/mutations/*.yaml to a scratch copy of the
 * repository, runs only the test files (and test names) that should notice it, and reports whether
 * the suite caught it. A survivor means a test does not guard what it claims to.
 *
 *   npm run test:mutants                       # every mutation
 *   npm run test:mutants -- --only ema,golden  # ids (or id prefixes), comma-separated
 *   npm run test:mutants -- --list             # print the list and exit
 *   npm run test:mutants -- --baseline         # first check that every selected test passes unmutated
 *   npm run test:mutants -- --json report.json # also write the report as JSON
 *   npm run test:mutants -- --jobs 2           # mutations run side by side, each in its own copy
 *
 * Each entry: id, why (one line), file, find (exact text, must occur exactly once unless
 * `occurrence` picks one), replace, tests (test files), and optionally pattern (a
 * --test-name-pattern) and timeout_s. Exit status 1 if any mutation survived or could not be applied.
 */
import { spawn, execFileSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import YAML from "yaml";
import { transformSync } from "esbuild";
import { z } from "zod";
import { zodIssueLines } from "../src/util/errors.js";

const Mutation = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/, "lower-case words joined by hyphens"),
  why: z.string(),
  file: z.string(),
  find: z.string().min(1),
  replace: z.string(),
  /** 1-based occurrence of `find` to replace when it occurs more than once. */
  occurrence: z.number().int().positive().optional(),
  tests: z.array(z.string()).min(1),
  pattern: z.string().optional(),
  timeout_s: z.number().positive().default(300),
});
type Mutation = z.infer<typeof Mutation>;

interface Outcome {
  id: string;
  file: string;
  result: "caught" | "survived" | "timeout" | "not-applied";
  seconds: number;
  /** The first failing test, or why the mutation could not be applied. */
  detail: string;
}

const root = resolve(import.meta.dirname, "..");
const listDir = join(root, "test", "mutations");

function loadMutations(): Mutation[] {
  const all: Mutation[] = [];
  for (const name of readdirSync(listDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    const path = join(listDir, name);
    const doc: unknown = YAML.parse(readFileSync(path, "utf8"));
    const parsed = z.array(Mutation).safeParse(doc);
    if (!parsed.success)
      throw new Error(`${path}: invalid mutation list: ${zodIssueLines(parsed.error).join("; ")}`);
    all.push(...parsed.data);
  }
  const seen = new Set<string>();
  for (const m of all) {
    if (seen.has(m.id)) throw new Error(`test/mutations: mutation id "${m.id}" is used twice`);
    seen.add(m.id);
  }
  return all;
}

/** A copy of the tracked and untracked-but-not-ignored files, sharing node_modules. */
function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "anr-mutants-"));
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: root })
    .toString("utf8")
    .split("\0")
    .filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    try {
      cpSync(join(root, f), join(dir, f));
    } catch {
      /* listed by git but deleted in the work tree */
    }
  }
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

function applyMutation(text: string, m: Mutation): string {
  const hits: number[] = [];
  for (let i = text.indexOf(m.find); i >= 0; i = text.indexOf(m.find, i + 1)) hits.push(i);
  if (hits.length === 0) throw new Error(`"find" text not found in ${m.file}`);
  if (m.occurrence === undefined && hits.length > 1)
    throw new Error(`"find" text occurs ${hits.length} times in ${m.file}; set occurrence`);
  const at = hits[(m.occurrence ?? 1) - 1];
  if (at === undefined)
    throw new Error(`occurrence ${m.occurrence} asked, ${hits.length} found in ${m.file}`);
  return text.slice(0, at) + m.replace + text.slice(at + m.find.length);
}

function runTests(
  dir: string,
  tests: string[],
  pattern: string | undefined,
  timeoutS: number,
): Promise<{ code: number | null; timedOut: boolean; output: string }> {
  const args = ["--import", "tsx", "--import", "./test/setup.ts", "--test", "--test-reporter=spec"];
  if (pattern) args.push(`--test-name-pattern=${pattern}`);
  args.push(...tests);
  return new Promise((done) => {
    const child = spawn(process.execPath, args, {
      cwd: dir,
      env: { ...process.env, ANR_GOLDEN: join(dir, "test", "golden") },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* already gone */
      }
    }, timeoutS * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, timedOut, output });
    });
  });
}

function firstFailure(output: string): string {
  const line = output.split("\n").find((l) => /^\s*✖ /.test(l) && !/^\s*✖ failing tests/.test(l));
  return line ? line.trim().replace(/ \([0-9.]+m?s\)$/, "") : "(exit status only)";
}

/** Apply one mutation in `dir`, run its tests, restore the file. */
async function runMutation(dir: string, m: Mutation): Promise<Outcome> {
  const path = join(dir, m.file);
  let original: string;
  try {
    original = readFileSync(path, "utf8");
    const mutated = applyMutation(original, m);
    // A mutant that does not parse would be "caught" by any test: refuse it instead.
    if (/\.[cm]?ts$/.test(m.file)) {
      try {
        transformSync(mutated, { loader: "ts", format: "esm" });
      } catch (e) {
        throw new Error(`the mutated ${m.file} does not parse: ${(e as Error).message.split("\n")[1] ?? ""}`);
      }
    }
    writeFileSync(path, mutated);
  } catch (e) {
    return { id: m.id, file: m.file, result: "not-applied", seconds: 0, detail: (e as Error).message };
  }
  const t0 = Date.now();
  try {
    const r = await runTests(dir, m.tests, m.pattern, m.timeout_s);
    const result = r.timedOut ? "timeout" : r.code === 0 ? "survived" : "caught";
    const detail =
      result === "caught" ? firstFailure(r.output) : result === "timeout" ? `> ${m.timeout_s} s` : "";
    return { id: m.id, file: m.file, result, seconds: (Date.now() - t0) / 1000, detail };
  } finally {
    writeFileSync(path, original);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: "string" },
      list: { type: "boolean", default: false },
      baseline: { type: "boolean", default: false },
      json: { type: "string" },
      jobs: { type: "string", default: "1" },
    },
  });
  let mutations = loadMutations();
  if (values.only) {
    const wanted = values.only.split(",").map((s) => s.trim());
    mutations = mutations.filter((m) => wanted.some((w) => m.id.startsWith(w)));
    if (mutations.length === 0) throw new Error(`--only ${values.only}: no mutation id starts with that`);
  }
  if (values.list) {
    for (const m of mutations) console.log(`${m.id.padEnd(34)} ${m.file.padEnd(32)} ${m.why}`);
    return;
  }

  const jobs = Math.max(1, Number(values.jobs));
  if (!Number.isInteger(jobs)) throw new Error(`--jobs ${values.jobs}: expected a whole number`);
  const dirs = Array.from({ length: Math.min(jobs, mutations.length) }, () => scratchCopy());
  const outcomes = new Map<string, Outcome>();
  const started = Date.now();
  try {
    if (values.baseline) {
      const groups = new Map<string, Mutation>();
      for (const m of mutations) groups.set(`${m.tests.join(" ")}|${m.pattern ?? ""}`, m);
      for (const m of groups.values()) {
        const r = await runTests(dirs[0]!, m.tests, m.pattern, m.timeout_s);
        if (r.code !== 0)
          throw new Error(
            `baseline: ${m.tests.join(" ")} ${m.pattern ? `(pattern ${m.pattern}) ` : ""}fails unmutated: ${firstFailure(r.output)}`,
          );
        console.log(`baseline ok  ${m.tests.join(" ")}${m.pattern ? `  /${m.pattern}/` : ""}`);
      }
    }
    // Each worker owns a scratch copy, so that mutations never meet.
    const queue = [...mutations];
    await Promise.all(
      dirs.map(async (dir) => {
        for (let m = queue.shift(); m; m = queue.shift()) {
          const o = await runMutation(dir, m);
          outcomes.set(m.id, o);
          console.log(
            `${o.result.toUpperCase().padEnd(11)}  ${m.id} (${o.seconds.toFixed(0)} s)  ${o.detail}`,
          );
        }
      }),
    );
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
  const ordered = mutations.map((m) => outcomes.get(m.id)!);

  const count = (r: Outcome["result"]) => ordered.filter((o) => o.result === r).length;
  const total = (Date.now() - started) / 1000;
  console.log(
    `\n${ordered.length} mutations (${jobs} at a time): ${count("caught")} caught, ${count("timeout")} timed out, ` +
      `${count("survived")} survived, ${count("not-applied")} not applied (${total.toFixed(0)} s)`,
  );
  console.log("\n| mutation | file | result | caught by |\n|---|---|---|---|");
  for (const o of ordered)
    console.log(`| ${o.id} | ${o.file} | ${o.result} | ${o.detail.replaceAll("|", "\\|")} |`);
  if (values.json)
    writeFileSync(values.json, JSON.stringify({ seconds: total, outcomes: ordered }, null, 2) + "\n");
  if (count("survived") + count("not-applied") > 0) process.exitCode = 1;
}

await main();
