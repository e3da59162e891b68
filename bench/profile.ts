/**
 * `node --import tsx bench/profile.ts`: where the training step's time goes, ours and PyTorch's,
 * stage by stage (tokenizer, encoder, decoder, weight head, PE, localized attention, MLP, loss,
 * backward, clip + Adam), with achieved GFLOP/s. Each measurement is a fresh child process:
 *   - bench/profile-ours.ts: each stage as its own jitted function, forward and forward + backward;
 *   - bench/profile-ours.ts --trace with ANR_THREADS=1: the kernels of the real fused step;
 *   - bench/torch_step.py --profile: the same stages in PyTorch, and torch.profiler over whole steps.
 * Prints markdown tables (for docs/performance.md) and writes a JSON record.
 *
 * Flags: --configs small,large, --reps N (per figure; default 5, large 3), --torch-threads N (1),
 *        --out FILE (default reports/profile-<time>.json).
 */
import { parseArgs } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { writeFileAtomic } from "../src/util/fs.js";
import { BENCH_CONFIGS, isBenchConfigName } from "./configs.js";
import { findTorchPython, machine, ROOT, runChild, torchEnv, type ChildRun } from "./harness.js";
import { STAGES } from "./configs.js";

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: "small,large" },
    reps: { type: "string" },
    "torch-threads": { type: "string", default: "1" },
    out: { type: "string" },
  },
});
const startedAt = new Date();
const OUT =
  values.out ?? join(ROOT, "reports", `profile-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
const TORCH_THREADS = Number(values["torch-threads"]);

interface Timing {
  wall: number;
  cpu: number;
}
interface StageTiming {
  forward: Timing;
  forward_backward: Timing | null;
}
interface Flops {
  forward: number;
  backward: number;
}
interface OursProfile {
  threads: number;
  attention: string;
  measured: Record<string, StageTiming>;
  flops: Record<string, Flops>;
  whole: Record<string, Timing>;
}
interface KernelGroup {
  kind: string;
  calls: number;
  ms: number;
  reduce: number;
  size: number;
  shapes: string;
  gflops_per_s: number | null;
}
interface KernelTrace {
  step_wall_ms: number;
  kernels: number;
  kernel_ms: number;
  by_kind: Record<string, { kernels: number; ms: number; gflops_per_s: number | null }>;
  top: KernelGroup[];
}
interface OursTrace {
  whole: { fused_step: Timing };
  trace: { step: KernelTrace; decode_chunk: KernelTrace };
}
interface TorchProfile {
  threads: number;
  attention: string;
  measured: Record<string, StageTiming>;
  whole: Record<string, Timing>;
  profiler: {
    ranges_ms_per_step: Record<string, number>;
    top_ops: { op: string; calls: number; self_ms: number; gflops_per_s: number | null }[];
  };
}

/** Ours: the stage's timings. */
function oursStage(p: OursProfile, stage: string): StageTiming | null {
  return p.measured[stage] ?? null;
}

const backward = (s: StageTiming | null): Timing | null =>
  s?.forward_backward
    ? { wall: s.forward_backward.wall - s.forward.wall, cpu: s.forward_backward.cpu - s.forward.cpu }
    : null;

const ms = (t: Timing | null | undefined) => (t ? `${fmt(t.wall)} (${fmt(t.cpu)})` : "–");
function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function stageTable(config: string, ours: OursProfile | null, torch: TorchProfile | null): string[] {
  const out: string[] = [];
  out.push(
    `| stage (${config}) | GFLOP fwd + bwd | ours fwd ms | ours bwd ms | ours GFLOP/s | PyTorch fwd ms | PyTorch bwd ms | PyTorch GFLOP/s | PyTorch in the step (profiler) ms | ours / PyTorch |`,
  );
  out.push("|---|---|---|---|---|---|---|---|---|---|");
  const gfs = (f: Flops | undefined, s: StageTiming | null) => {
    if (!f || !s || f.forward === 0) return "–";
    const t = s.forward_backward ?? s.forward;
    return ((s.forward_backward ? f.forward + f.backward : f.forward) / 1e6 / t.wall).toFixed(1);
  };
  for (const stage of STAGES) {
    const o = ours ? oursStage(ours, stage) : null;
    const t = torch?.measured[stage] ?? null;
    const f = ours?.flops[stage];
    const total = (s: StageTiming | null) => (s ? (s.forward_backward ?? s.forward).wall : NaN);
    const ratio = total(o) / total(t);
    out.push(
      `| ${stage} | ${f ? ((f.forward + f.backward) / 1e9).toFixed(2) : "–"} | ${ms(o?.forward)} | ${ms(backward(o))} | ${gfs(f, o)} | ${ms(t?.forward)} | ${ms(backward(t))} | ${gfs(f, t)} | ${torch ? fmt(torch.profiler.ranges_ms_per_step[stage] ?? NaN) : "–"} | ${Number.isFinite(ratio) ? ratio.toFixed(1) + "×" : "–"} |`,
    );
  }
  const sumStages = (
    p: { measured: Record<string, StageTiming> } | null,
    get: (s: string) => StageTiming | null,
  ) =>
    p
      ? STAGES.map(get).reduce(
          (acc, s) => ({
            wall: acc.wall + (s ? (s.forward_backward ?? s.forward).wall : 0),
            cpu: acc.cpu + (s ? (s.forward_backward ?? s.forward).cpu : 0),
          }),
          { wall: 0, cpu: 0 },
        )
      : null;
  const so = sumStages(ours, (s) => (ours ? oursStage(ours, s) : null));
  const st = sumStages(torch, (s) => torch?.measured[s] ?? null);
  const allFlops = ours ? Object.values(ours.flops).reduce((a, f) => a + f.forward + f.backward, 0) : NaN;
  const row = (
    label: string,
    a: Timing | null | undefined,
    b: Timing | null | undefined,
    prof = "",
    gf = false,
  ) =>
    out.push(
      `| ${label} | ${gf ? (allFlops / 1e9).toFixed(2) : ""} | ${ms(a)} | | ${gf && a ? (allFlops / 1e6 / a.wall).toFixed(1) : ""} | ${ms(b)} | | ${gf && b ? (allFlops / 1e6 / b.wall).toFixed(1) : ""} | ${prof} | ${a && b ? (a.wall / b.wall).toFixed(1) + "×" : "–"} |`,
    );
  const back = (w: Record<string, Timing> | undefined) =>
    w?.forward_backward && w.forward
      ? { wall: w.forward_backward.wall - w.forward.wall, cpu: w.forward_backward.cpu - w.forward.cpu }
      : null;
  const r = torch?.profiler.ranges_ms_per_step ?? {};
  row("**sum of the stages (fwd + bwd)**", so, st, "", true);
  row("whole forward", ours?.whole.forward, torch?.whole.forward, fmt(r.forward ?? NaN));
  row("whole backward (fwd+bwd − fwd)", back(ours?.whole), back(torch?.whole), fmt(r.backward ?? NaN));
  row(
    "clip + Adam",
    ours?.whole.clip_adam,
    torch?.whole.clip_adam,
    `${fmt(r.clip ?? NaN)} + ${fmt(r.adam ?? NaN)}`,
  );
  row("**training step (the real one)**", ours?.whole.fused_step, torch?.whole.fused_step, "", true);
  return out;
}

function traceTable(config: string, t: OursTrace | null): string[] {
  if (!t) return [];
  const share = fmt((100 * t.whole.fused_step.cpu) / t.whole.fused_step.wall);
  return [
    ...kernelTable(
      `Our fused training step's kernels (${config}, ANR_THREADS=1: each kernel runs synchronously and is timed; the process had the CPU ${share}% of the step's wall time)`,
      t.trace.step,
      10,
    ),
    "",
    ...kernelTable(
      `One decode chunk's kernels (${config}, one image, 4096 points, ANR_THREADS=1)`,
      t.trace.decode_chunk,
      5,
    ),
  ];
}

function kernelTable(title: string, tr: KernelTrace, top: number): string[] {
  const out = [
    `${title}: ${tr.kernels} kernels, ${fmt(tr.kernel_ms)} ms of ${fmt(tr.step_wall_ms)} ms wall.`,
    "",
    "| kind | kernels | ms | share | GFLOP/s |",
    "|---|---|---|---|---|",
  ];
  for (const [kind, g] of Object.entries(tr.by_kind))
    if (g.kernels)
      out.push(
        `| ${kind} | ${g.kernels} | ${fmt(g.ms)} | ${((100 * g.ms) / tr.kernel_ms).toFixed(0)}% | ${g.gflops_per_s === null ? "–" : g.gflops_per_s.toFixed(1)} |`,
      );
  out.push(
    "",
    "| largest kernels | calls | output size × reduced length | inputs: index shape (strides) | ms | GFLOP/s |",
    "|---|---|---|---|---|---|",
  );
  for (const k of tr.top.slice(0, top))
    out.push(
      `| ${k.kind} | ${k.calls} | ${k.size} × ${k.reduce} | ${k.shapes} | ${fmt(k.ms)} | ${k.gflops_per_s === null ? "–" : k.gflops_per_s.toFixed(1)} |`,
    );
  return out;
}

function torchOpsTable(config: string, t: TorchProfile | null): string[] {
  if (!t) return [];
  const out = [
    `PyTorch's operators in the step (${config}, torch.profiler, ${t.threads} thread(s), self CPU time per step):`,
    "",
    "| operator | calls | ms | GFLOP/s |",
    "|---|---|---|---|",
  ];
  for (const o of t.profiler.top_ops.slice(0, 10))
    out.push(
      `| ${o.op} | ${o.calls} | ${fmt(o.self_ms)} | ${o.gflops_per_s === null ? "–" : o.gflops_per_s.toFixed(1)} |`,
    );
  return out;
}

async function main() {
  const info = machine();
  const py = findTorchPython();
  const work = mkdtempSync(join(tmpdir(), "anr-profile-"));
  const record: Record<string, unknown> = { started: startedAt.toISOString(), machine: info, configs: {} };
  const lines: string[] = [];
  const note = (label: string, r: ChildRun) =>
    console.error(
      `  ${label}: ${r.error ?? "ok"}, ${r.wall_s} s, load ${r.load_before[0]} → ${r.load_after[0]}`,
    );
  try {
    for (const config of values.configs!.split(",")) {
      if (!isBenchConfigName(config)) throw new Error(`--configs: unknown "${config}"`);
      const reps = values.reps ?? (config === "large" ? "3" : "5");
      const dir = join(work, config);
      const tsx = [process.execPath, "--import", "tsx"] as const;
      const dump = runChild(
        tsx[0],
        [...tsx.slice(1), "bench/ours.ts", "--config", config, "--dump", dir, "--dump-only"],
        process.env,
        false,
      );
      if (dump.error) throw new Error(`dump failed: ${dump.error}`);
      const ours = runChild(tsx[0], [
        ...tsx.slice(1),
        "bench/profile-ours.ts",
        "--config",
        config,
        "--reps",
        reps,
      ]);
      note(`${config} ours stages`, ours);
      const trace = runChild(
        tsx[0],
        [...tsx.slice(1), "bench/profile-ours.ts", "--config", config, "--reps", "1", "--trace"],
        { ...process.env, ANR_THREADS: "1" },
      );
      note(`${config} ours kernel trace`, trace);
      const torch = py
        ? runChild(
            py,
            [
              "bench/torch_step.py",
              "--profile",
              "--json",
              "--init",
              dir,
              "--threads",
              String(TORCH_THREADS),
              "--steps",
              reps,
            ],
            torchEnv(TORCH_THREADS),
          )
        : null;
      if (torch) note(`${config} PyTorch`, torch);
      (record.configs as Record<string, unknown>)[config] = { ours, trace, torch };
      const o = ours.result as unknown as OursProfile | null;
      const t = (torch?.result ?? null) as unknown as TorchProfile | null;
      const loads = [ours, trace, torch]
        .filter((r): r is ChildRun => r !== null)
        .map((r) => `${r.load_before[0]}→${r.load_after[0]}`);
      lines.push(
        `### ${config}: ${BENCH_CONFIGS[config].description}`,
        "",
        `ours: jax-js wasm, ${o?.threads ?? "?"} threads, ${o?.attention ?? "?"} attention; PyTorch ${TORCH_THREADS} thread(s), ${t?.attention ?? "?"} attention; ${reps} timed calls per figure; load average (1 min) before→after each child: ${loads.join(", ")}.`,
        "",
        ...stageTable(config, o, t),
        "",
        "Times are the least over the timed calls, wall ms (CPU ms of all the process's threads in parentheses); backward = (forward + backward) − forward.",
        "",
        ...traceTable(config, trace.result as unknown as OursTrace | null),
        "",
        ...torchOpsTable(config, t),
        "",
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  record.finished = new Date().toISOString();
  record.markdown = lines.join("\n");
  console.log(`${info.cpu_model}, ${info.cores} cores, Node ${info.node}, commit ${info.commit}\n`);
  console.log(lines.join("\n"));
  await writeFileAtomic(OUT, JSON.stringify(record, null, 1) + "\n");
  console.log(`JSON record: ${relative(process.cwd(), OUT)}`);
}

await main();
