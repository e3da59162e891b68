/**
 * `npm run bench`: our training step and decode against PyTorch's on the same model, interleaved.
 *
 * Each measurement is a fresh child process: ours (bench/ours.ts, jax-js wasm with its worker
 * pool) and PyTorch (bench/torch_step.py) at each thread count, so nothing of one side is alive
 * while the other runs. A round runs, per configuration, ours then PyTorch at each thread count
 * (their order alternates between rounds); rounds repeat --rounds times. Per round the ratio is
 * ours over PyTorch's best thread count in that round; the summary gives the median ratio and its
 * range over rounds. The machine's load average is recorded before and after every child, since
 * other work on a shared machine moves every figure.
 *
 * Before timing, both sides run the same first two steps (our initial weights, images and
 * coordinate noise, which ours writes for PyTorch): their losses and gradient norms must agree, so
 * the timing compares equal work.
 *
 * Flags: --rounds N (3), --configs small,large, --torch-threads 1,2, --decode-size S (128),
 *        --decode-reps N (2), --steps N / --warmup N (override each config's), --no-torch,
 *        --torch-attention direct|folded (default: the form ours uses), --out FILE
 *        (default reports/bench-<time>.json).
 *
 * This process imports no compute code (bench/configs.ts loads no jax-js).
 */
import { parseArgs } from "node:util";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { writeFileAtomic } from "../src/util/fs.js";
import {
  BENCH_CONFIGS,
  GRAD_NORM_TOLERANCE,
  ORT_TOLERANCE,
  isBenchConfigName,
  LOSS_TOLERANCE,
  type BenchConfigName,
} from "./configs.js";
import { median, range } from "./stats.js";
import {
  findTorchPython,
  loadNow,
  machine,
  ROOT,
  runChild,
  torchEnv,
  type ChildRun,
  type Json,
  type Machine,
} from "./harness.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    configs: { type: "string", default: "small,large" },
    "torch-threads": { type: "string", default: "1,2" },
    "decode-size": { type: "string", default: "128" },
    "decode-reps": { type: "string", default: "2" },
    steps: { type: "string" },
    warmup: { type: "string" },
    "no-torch": { type: "boolean", default: false },
    "torch-attention": { type: "string" },
    out: { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const CONFIGS = values.configs!.split(",").map((c) => {
  if (!isBenchConfigName(c))
    throw new Error(`--configs: unknown "${c}" (${Object.keys(BENCH_CONFIGS).join(", ")})`);
  return c;
});
const TORCH_THREADS = values["torch-threads"]!.split(",").map(Number);
const startedAt = new Date();
const OUT =
  values.out ?? join(ROOT, "reports", `bench-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);

/** One measurement: which side, configuration, round and thread count, and its child process. */
interface Run extends ChildRun {
  side: "ours" | "torch";
  config: BenchConfigName;
  round: number;
  threads: number | null;
}

function measure(
  side: Run["side"],
  config: BenchConfigName,
  round: number,
  threads: number | null,
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Run {
  const run: Run = { side, config, round, threads, ...runChild(cmd, args, env) };
  const what = side === "ours" ? "ours" : `PyTorch ${threads} thr`;
  const step = run.result ? `${Number(run.result.step_ms_median).toFixed(0)} ms/step` : `FAILED ${run.error}`;
  console.error(
    `  round ${round} ${config} ${what}: ${step}, ${run.wall_s} s, load ${run.load_before[0]} → ${run.load_after[0]}`,
  );
  return run;
}

const num = (r: Run | undefined, k: string) => (r?.result ? Number(r.result[k]) : NaN);

async function main() {
  const info = machine();
  const py = values["no-torch"] ? null : findTorchPython();
  const work = mkdtempSync(join(tmpdir(), "anr-bench-"));
  console.error(
    `bench: ${ROUNDS} rounds × [${CONFIGS.join(", ")}]; ours, then PyTorch at ${TORCH_THREADS.join(" and ")} thread(s)` +
      `${py ? "" : " (PyTorch: not found — apt-get install python3-torch libopenblas0-pthread)"}; ${info.cpu_model}, ${info.cores} cores`,
  );
  const runs: Run[] = [];
  const rounds: { round: number; load_before: number[]; load_after: number[] }[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const loadBefore = loadNow();
      for (const config of CONFIGS) {
        const dir = join(work, config);
        const common = ["--decode-size", values["decode-size"]!, "--decode-reps", values["decode-reps"]!];
        if (values.steps) common.push("--steps", values.steps);
        if (values.warmup) common.push("--warmup", values.warmup);
        const oursArgs = ["--import", "tsx", "bench/ours.ts", "--config", config, ...common];
        if (!existsSync(dir)) oursArgs.push("--dump", dir);
        runs.push(measure("ours", config, round, null, process.execPath, oursArgs));
        if (!py || !existsSync(join(dir, "cfg.json"))) continue;
        const order = round % 2 === 1 ? TORCH_THREADS : [...TORCH_THREADS].reverse();
        for (const n of order) {
          const bc = BENCH_CONFIGS[config];
          const args = ["bench/torch_step.py", "--json", "--init", dir, "--threads", String(n), ...common];
          if (!values.steps) args.push("--steps", String(bc.steps));
          if (!values.warmup) args.push("--warmup", String(bc.warmup));
          if (values["torch-attention"]) args.push("--attention", values["torch-attention"]);
          runs.push(measure("torch", config, round, n, py, args, torchEnv(n)));
        }
      }
      rounds.push({ round, load_before: loadBefore, load_after: loadNow() });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const summaries = CONFIGS.map((config) => summarise(config, runs));
  const record = {
    started: startedAt.toISOString(),
    finished: new Date().toISOString(),
    machine: info,
    torch_env: {
      OMP_WAIT_POLICY: "PASSIVE",
      OMP_NUM_THREADS: "= threads",
      OPENBLAS_NUM_THREADS: "= threads",
    },
    blas: runs.find((r) => r.side === "torch" && r.result)?.result?.blas ?? null,
    settings: {
      rounds: ROUNDS,
      torch_threads: TORCH_THREADS,
      decode_size: Number(values["decode-size"]),
      configs: Object.fromEntries(CONFIGS.map((c) => [c, BENCH_CONFIGS[c]])),
    },
    rounds,
    summaries,
    runs: runs.map((r) => ({ ...r, result: r.result && { ...r.result, blas: undefined } })),
  };
  printTables(record.machine, record.blas as Json | null, runs, summaries);
  await writeFileAtomic(OUT, JSON.stringify(record, null, 1) + "\n");
  console.log(`\nJSON record: ${relative(process.cwd(), OUT)}`);
  for (const s of summaries)
    if (s.check.agree === false)
      console.log(
        `\n${s.config}: PyTorch and ours DISAGREE on the first two steps (|Δloss| ${s.check.max_abs_loss_delta}, grad norm ${s.check.max_rel_grad_norm_delta}): the timings do not compare equal work`,
      );
  for (const s of summaries)
    if (s.ort_agree === false)
      console.log(
        `\n${s.config}: ONNX Runtime's decode and ours DISAGREE (max |Δ| ${s.ort_max_abs_diff}): its timing does not decode the same model`,
      );
  if (runs.some((r) => r.error) || summaries.some((s) => s.check.agree === false || s.ort_agree === false))
    process.exitCode = 1;
}

/** Per-round ratios and agreement of one configuration. */
function summarise(config: BenchConfigName, runs: Run[]) {
  const mine = runs.filter((r) => r.config === config);
  const roundNos = [...new Set(mine.map((r) => r.round))];
  const perRound = roundNos.map((round) => {
    const ours = mine.find((r) => r.round === round && r.side === "ours");
    const torch = mine.filter((r) => r.round === round && r.side === "torch" && r.result);
    const bestStep = torch.length ? Math.min(...torch.map((r) => num(r, "step_ms_median"))) : NaN;
    const bestDecode = torch.length ? Math.max(...torch.map((r) => num(r, "decode_pixels_per_s"))) : NaN;
    return {
      round,
      ours_step_ms: num(ours, "step_ms_median"),
      torch_step_ms: Object.fromEntries(torch.map((r) => [r.threads, num(r, "step_ms_median")])),
      step_ratio: num(ours, "step_ms_median") / bestStep,
      ours_decode_px_s: num(ours, "decode_pixels_per_s"),
      torch_decode_px_s: Object.fromEntries(torch.map((r) => [r.threads, num(r, "decode_pixels_per_s")])),
      decode_ratio: num(ours, "decode_pixels_per_s") / bestDecode,
      ort_decode_px_s: num(ours, "ort_decode_pixels_per_s"),
      ort_decode_ratio: num(ours, "ort_decode_pixels_per_s") / bestDecode,
      ort_max_abs_diff: num(ours, "ort_max_abs_diff"),
    };
  });
  const finite = (xs: number[]) => xs.filter(Number.isFinite);
  const stepRatios = finite(perRound.map((p) => p.step_ratio));
  const decodeRatios = finite(perRound.map((p) => p.decode_ratio));
  const ortRatios = finite(perRound.map((p) => p.ort_decode_ratio));
  const ortDiffs = finite(perRound.map((p) => p.ort_max_abs_diff));
  // PyTorch's best thread count: the lowest median step time over rounds (decode likewise).
  const byThreads = (k: string, better: (a: number, b: number) => boolean) => {
    let best: number | null = null;
    let bestV = NaN;
    for (const n of TORCH_THREADS) {
      const v = median(
        finite(mine.filter((r) => r.side === "torch" && r.threads === n).map((r) => num(r, k))),
      );
      if (Number.isFinite(v) && (best === null || better(v, bestV))) [best, bestV] = [n, v];
    }
    return best;
  };
  // Agreement of the first two steps (our noise on both sides): every PyTorch run against ours.
  const ours0 = mine.find((r) => r.side === "ours" && r.result)?.result;
  let lossDelta = 0;
  let normRel = 0;
  const compared = ours0 !== undefined && mine.some((r) => r.side === "torch" && r.result);
  for (const t of compared ? mine.filter((r) => r.side === "torch" && r.result) : []) {
    const [lo, lt] = [ours0!.losses as number[], t.result!.losses as number[]];
    const [no, nt] = [ours0!.grad_norms as number[], t.result!.grad_norms as number[]];
    for (let i = 0; i < Math.min(lo.length, lt.length); i++)
      lossDelta = Math.max(lossDelta, Math.abs(lo[i]! - lt[i]!));
    for (let i = 0; i < Math.min(no.length, nt.length); i++)
      normRel = Math.max(normRel, Math.abs(no[i]! - nt[i]!) / Math.abs(nt[i]!));
  }
  const peak = (side: Run["side"]) =>
    Math.max(...finite(mine.filter((r) => r.side === side).map((r) => num(r, "peak_rss_mib"))));
  const trainPeak = (side: Run["side"]) =>
    Math.max(...finite(mine.filter((r) => r.side === side).map((r) => num(r, "train_peak_rss_mib"))));
  return {
    config,
    description: BENCH_CONFIGS[config].description,
    attention: {
      ours: ours0?.attention,
      torch: mine.find((r) => r.side === "torch" && r.result)?.result?.attention,
    },
    per_round: perRound,
    step_ratio_median: median(stepRatios),
    step_ratio_range: stepRatios.length ? range(stepRatios) : null,
    decode_ratio_median: median(decodeRatios),
    decode_ratio_range: decodeRatios.length ? range(decodeRatios) : null,
    ort_decode_ratio_median: median(ortRatios),
    ort_decode_ratio_range: ortRatios.length ? range(ortRatios) : null,
    // ONNX Runtime's decode against ours (max abs, [-1, 1] space): the exported graphs agree
    // within ORT_TOLERANCE (test/onnx.test.ts checks 1e-5 on small models), else DISAGREE.
    ort_max_abs_diff: ortDiffs.length ? Math.max(...ortDiffs) : null,
    ort_agree: ortDiffs.length ? Math.max(...ortDiffs) <= ORT_TOLERANCE : null,
    torch_best_threads_step: byThreads("step_ms_median", (a, b) => a < b),
    torch_best_threads_decode: byThreads("decode_pixels_per_s", (a, b) => a > b),
    check: {
      max_abs_loss_delta: lossDelta,
      max_rel_grad_norm_delta: normRel,
      steps_compared: 2,
      // null without a PyTorch run to compare with.
      agree: !compared
        ? null
        : lossDelta <= LOSS_TOLERANCE * Math.abs((ours0?.losses as number[] | undefined)?.[0] ?? NaN) &&
          normRel <= GRAD_NORM_TOLERANCE,
    },
    peak_rss_mib: { ours: peak("ours"), torch: peak("torch") },
    train_peak_rss_mib: { ours: trainPeak("ours"), torch: trainPeak("torch") },
  };
}

function printTables(
  info: Machine,
  blas: Json | null,
  runs: Run[],
  summaries: ReturnType<typeof summarise>[],
) {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const fk = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(1)}k` : "-");
  const load = (r: Run | undefined) => (r ? `${r.load_before[0]}→${r.load_after[0]}` : "-");
  console.log(`\n${info.cpu_model}, ${info.cores} cores, Node ${info.node}, commit ${info.commit}`);
  if (blas) console.log(`PyTorch BLAS: ${String(blas.config)}; loaded: ${String(blas.loaded)}`);
  console.log(
    `environment: ${JSON.stringify(info.env)}; PyTorch children: OMP_WAIT_POLICY=PASSIVE, OMP/OPENBLAS_NUM_THREADS = threads`,
  );
  const th = TORCH_THREADS.join("/");
  console.log(
    `\n| config | round | ours step ms | PyTorch step ms (${th} thr) | ratio | ours decode px/s | ORT decode px/s | PyTorch decode px/s (${th} thr) | decode ratio ours; ORT | load avg (1 min) ours; PyTorch |`,
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const s of summaries) {
    for (const p of s.per_round) {
      const rs = runs.filter((r) => r.config === s.config && r.round === p.round);
      const ours = rs.find((r) => r.side === "ours");
      const torchLoads = TORCH_THREADS.map((n) =>
        load(rs.find((r) => r.side === "torch" && r.threads === n)),
      ).join(", ");
      console.log(
        `| ${s.config} | ${p.round} | ${f(p.ours_step_ms)} | ${TORCH_THREADS.map((n) => f(p.torch_step_ms[n] ?? NaN)).join(" / ")} | ${f(p.step_ratio, 2)}× | ${fk(p.ours_decode_px_s)} | ${fk(p.ort_decode_px_s)} | ${TORCH_THREADS.map((n) => fk(p.torch_decode_px_s[n] ?? NaN)).join(" / ")} | ${f(p.decode_ratio, 2)}×; ${f(p.ort_decode_ratio, 2)}× | ${load(ours)}; ${torchLoads} |`,
      );
    }
  }
  console.log(
    "\n| config | train step ours/PyTorch-best: median [range] | decode ours/PyTorch-best: median [range] | decode ORT/PyTorch-best: median [range] (max abs Δ vs ours) | PyTorch best threads (step, decode) | attention form | first 2 steps: max |Δloss|, max rel. Δ grad norm | peak RSS MiB ours / PyTorch (training only) |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const s of summaries) {
    const rr = (r: [number, number] | null) => (r ? `[${f(r[0], 2)}–${f(r[1], 2)}]` : "");
    console.log(
      `| ${s.config} | ${f(s.step_ratio_median, 2)}× ${rr(s.step_ratio_range)} | ${f(s.decode_ratio_median, 2)}× ${rr(s.decode_ratio_range)} | ${f(s.ort_decode_ratio_median, 2)}× ${rr(s.ort_decode_ratio_range)} (${s.ort_max_abs_diff === null ? "-" : s.ort_max_abs_diff.toExponential(1)}) | ${s.torch_best_threads_step ?? "-"}, ${s.torch_best_threads_decode ?? "-"} | ${s.attention.ours ?? "-"} / ${s.attention.torch ?? "-"} | ${s.check.max_abs_loss_delta.toExponential(1)}, ${s.check.max_rel_grad_norm_delta.toExponential(1)} | ${f(s.peak_rss_mib.ours)} / ${f(s.peak_rss_mib.torch)} (${f(s.train_peak_rss_mib.ours)} / ${f(s.train_peak_rss_mib.torch)}) |`,
    );
  }
  console.log(
    "\nratio > 1: ours slower (step) or faster (decode). Each figure is a median within one process; the range is over rounds.",
  );
}

await main();
