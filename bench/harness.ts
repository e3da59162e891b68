/**
 * What the benchmark parents (bench/bench.ts, bench/profile.ts) share: the machine's description,
 * finding Debian's PyTorch, and running one measurement in a fresh child process with the
 * machine's load recorded around it. Imports no compute code, so a parent never loads jax-js.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg, totalmem } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..");

/** /proc/stat's aggregate CPU counters, for the share of time the machine was busy or stolen. */
function cpuTicks(): { total: number; idle: number; steal: number } | null {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { total: f.reduce((a, b) => a + b, 0), idle: f[3]! + (f[4] ?? 0), steal: f[7] ?? 0 };
  } catch {
    return null;
  }
}

/** The machine: CPU model, cores, memory, Node, the commit, and the BLAS/OpenMP environment. */
export function machine() {
  let cpuModel = "unknown";
  try {
    cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpuModel;
  } catch {
    /* not Linux */
  }
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => /^(OPENBLAS|OMP|GOTO|MKL|ANR)_/.test(k)),
  );
  const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  return {
    cpu_model: cpuModel,
    cores: availableParallelism(),
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    commit: git.status === 0 ? git.stdout.trim() : null,
    env,
  };
}
export type Machine = ReturnType<typeof machine>;

/** The Python that imports torch (Debian's python3-torch lives in /usr/bin/python3), or null. */
export function findTorchPython(): string | null {
  for (const py of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(py, ["-c", "import torch"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  return null;
}

/** PyTorch's environment for n threads: OpenMP and OpenBLAS both at n, OpenMP threads sleep when idle. */
export function torchEnv(n: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    OMP_NUM_THREADS: String(n),
    OPENBLAS_NUM_THREADS: String(n),
    OMP_WAIT_POLICY: "PASSIVE",
  };
}

export type Json = Record<string, unknown>;

/** One child process: the JSON line it printed last, its wall time, and the machine around it. */
export interface ChildRun {
  load_before: number[];
  load_after: number[];
  /** Share of all the machine's CPU time that was busy (any process) while it ran. */
  machine_busy: number | null;
  steal: number | null;
  wall_s: number;
  result: Json | null;
  error?: string;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export function loadNow(): number[] {
  return loadavg().map(round2);
}

/**
 * Run `cmd args` from the repository root and parse the last line of its stdout as JSON (with
 * `json` false, a zero exit status is success and `result` is {}).
 */
export function runChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  json = true,
): ChildRun {
  const loadBefore = loadNow();
  const t0 = cpuTicks();
  const start = performance.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
  const wall = (performance.now() - start) / 1000;
  const t1 = cpuTicks();
  const d =
    t0 && t1 ? { total: t1.total - t0.total, idle: t1.idle - t0.idle, steal: t1.steal - t0.steal } : null;
  const run: ChildRun = {
    load_before: loadBefore,
    load_after: loadNow(),
    machine_busy: d && d.total > 0 ? round2(1 - d.idle / d.total) : null,
    steal: d && d.total > 0 ? round2(d.steal / d.total) : null,
    wall_s: Math.round(wall * 10) / 10,
    result: null,
  };
  const line = r.stdout?.trim().split("\n").at(-1);
  if (r.status === 0 && !json) run.result = {};
  else if (r.status === 0 && line) run.result = JSON.parse(line) as Json;
  else run.error = `exit ${r.status ?? r.signal}: ${(r.stderr ?? "").slice(-800)}`;
  return run;
}
