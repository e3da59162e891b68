/**
 * A run's metrics.jsonl: the records the loop appends (one JSON object a line, per logged step or
 * evaluation), and reading them back when a run resumes, so that its curves and clocks continue
 * where the checkpoint left them.
 */
import { readFile, appendFile } from "node:fs/promises";
import type { PhysicalError } from "../eval/evaluate.js";
import { InputError } from "../util/errors.js";
import type { StepMetrics } from "./step.js";

/** What `TrainOptions.onStep` receives after each step. */
export interface StepRecord extends StepMetrics {
  /** The step just done (1-based: the number of steps done). */
  step: number;
  /** The run's last step (`train.steps`). */
  steps: number;
  /** Training items per second since this process started training. */
  imagesPerS: number;
  /** Seconds since this process started training. */
  seconds: number;
}

/**
 * What `TrainOptions.onEval` receives: a metrics.jsonl record holding an evaluation (test
 * PSNR and SSIM on the run's evaluation split; for fields also `test_rmse_<channel>` in physical
 * units), with the training metrics logged at that step.
 */
export interface EvalRecord {
  step: number;
  test_psnr: number;
  test_ssim: number;
  [metric: string]: number;
}

/** A metrics record: the step, and what was measured at it. */
export type MetricsRecord = { step: number; test_psnr?: number; line: string };

/**
 * The records of a run's metrics.jsonl up to step `upTo` (those after the checkpoint are redone
 * by the resumed run). A torn last line (the process was killed while appending it) is dropped
 * with a warning; any other line that is not a record is an error naming the file and line.
 */
export async function metricsUpTo(
  path: string,
  upTo: number,
  warn: (s: string) => void,
): Promise<MetricsRecord[]> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "";
    throw e;
  });
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === "") last--;
  const records: MetricsRecord[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    let r: unknown;
    let problem: string | null = null;
    try {
      r = JSON.parse(line);
      if (typeof r !== "object" || r === null || !Number.isInteger((r as { step?: unknown }).step))
        problem = "not a metrics record (an object with an integer step)";
    } catch (e) {
      problem = `not JSON (${(e as Error).message})`;
    }
    if (problem !== null && i === last) {
      warn(`${path}:${i + 1}: torn last line dropped (the run was stopped while writing it)`);
      continue;
    }
    if (problem !== null) throw new InputError(`${path}:${i + 1}`, problem);
    const { step, test_psnr } = r as { step: number; test_psnr?: number };
    if (step <= upTo) records.push({ step, test_psnr, line });
  }
  return records;
}

/** What the records kept on resume say of the run so far; for a new run, nothing. */
export interface LoggedSoFar {
  /** Seconds of training logged last, so that `seconds` continues across resumes. */
  seconds: number;
  /**
   * Training time of the steps alone logged last (`train_seconds`): logged by every run since 3 Dec 2026 (before, by budgeted runs only),
   * so null where the metrics do not carry it.
   */
  trainSeconds: number | null;
  /** Test PSNR by step. */
  curve: [number, number][];
  /** Test PSNR by training time, at the evaluations whose training time was logged. */
  timeCurve: [number, number][];
}

export function loggedSoFar(records: readonly MetricsRecord[]): LoggedSoFar {
  const fields = records.map((r) => JSON.parse(r.line) as { seconds?: number; train_seconds?: number });
  return {
    seconds: fields.reduce((s, f) => f.seconds ?? s, 0),
    trainSeconds: fields.reduce<number | null>((s, f) => f.train_seconds ?? s, null),
    curve: records.filter((r) => r.test_psnr !== undefined).map((r) => [r.step, r.test_psnr!]),
    timeCurve: records.flatMap((r, i) => {
      const s = fields[i]!.train_seconds;
      return r.test_psnr !== undefined && s !== undefined ? [[s, r.test_psnr] as [number, number]] : [];
    }),
  };
}

/** `test_rmse_<channel>` (physical units) of a field evaluation report, for metrics.jsonl. */
export function physicalMetrics(report: Record<string, unknown>): Record<string, number> {
  const phys = report.physical as PhysicalError[] | undefined;
  return Object.fromEntries((phys ?? []).map((p) => [`test_rmse_${p.name}`, p.rmse]));
}

/** Append one record as a line of metrics.jsonl. */
export async function appendRecord(path: string, record: Record<string, number>): Promise<void> {
  await appendFile(path, JSON.stringify(record) + "\n");
}
