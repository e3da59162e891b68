/**
 * A run's report: one self-contained HTML file (`report.html`) that opens offline in any browser,
 * with the training curves, the latest sample grids, the final evaluation and the full config.
 * Everything is inlined (SVG charts, PNGs as data URIs), so the file can be mailed or archived
 * alone. It is built from the run folder's own files, so it can be rebuilt at any time.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { encodeTfEvents, type ScalarRecord } from "../io/tfevents.js";
import { writeFileAtomic } from "../util/fs.js";
import { escapeMarkup, svgLinePlot, type LineSeries } from "../util/plot.js";

/** The report's file name inside a run folder. */
export const REPORT_FILE = "report.html";

/**
 * The TensorBoard event file's name inside a run folder. It is rewritten whole from metrics.jsonl
 * (atomically), and records are deterministic, so a reader following the file sees only appended
 * records, and a resumed run's file never repeats or misses a step.
 */
export const EVENTS_FILE = "events.out.tfevents.anr";

/** How many sample grids (the latest) the report shows. */
const SAMPLE_GRIDS = 3;

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** metrics.jsonl as records; unparsable lines (a torn last line) are left out. */
function parseMetrics(text: string): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Record<string, unknown>;
      if (typeof r.step === "number")
        out.push(
          Object.fromEntries(
            Object.entries(r).filter((e): e is [string, number] => typeof e[1] === "number"),
          ),
        );
    } catch {
      // a torn line: the report shows what is readable
    }
  }
  return out;
}

/** One series per key, over the records that have it. */
function series(records: Record<string, number>[], keys: string[]): LineSeries[] {
  return keys
    .map((name) => ({
      name,
      points: records
        .filter((r) => r[name] !== undefined)
        .map((r) => [r.step!, r[name]!] as [number, number]),
    }))
    .filter((s) => s.points.length > 0);
}

/** The charts: loss, PSNR (train and test), then any other test metric, one chart each. */
function charts(records: Record<string, number>[]): string[] {
  const keys = new Set(records.flatMap((r) => Object.keys(r)));
  const specs: { title: string; yLabel: string; keys: string[] }[] = [
    { title: "Training loss", yLabel: "loss (MSE)", keys: ["loss"] },
    { title: "PSNR", yLabel: "dB", keys: ["train_psnr", "test_psnr"] },
    ...[...keys]
      .filter((k) => k.startsWith("test_") && k !== "test_psnr")
      .sort()
      .map((k) => ({ title: k.replace(/^test_/, "test "), yLabel: k.replace(/^test_/, ""), keys: [k] })),
  ];
  return specs
    .map((s) => ({ ...s, series: series(records, s.keys) }))
    .filter((s) => s.series.length > 0)
    .map((s) =>
      svgLinePlot({
        title: s.title,
        xLabel: "step",
        yLabel: s.yLabel,
        series: s.series,
        width: 640,
        height: 360,
      }),
    );
}

/** Sample grids by step, newest last: samples/step-N.png, then samples/final.png. */
async function sampleGrids(out: string): Promise<{ name: string; dataUri: string }[]> {
  let names: string[];
  try {
    names = await readdir(join(out, "samples"));
  } catch {
    return [];
  }
  const order = (n: string) =>
    n === "final.png" ? Infinity : Number(/step-(\d+)\.png$/.exec(n)?.[1] ?? NaN);
  const pngs = names.filter((n) => !Number.isNaN(order(n))).sort((a, b) => order(a) - order(b));
  return Promise.all(
    pngs.slice(-SAMPLE_GRIDS).map(async (name) => ({
      name,
      dataUri: `data:image/png;base64,${(await readFile(join(out, "samples", name))).toString("base64")}`,
    })),
  );
}

/** The final evaluation as table rows: every number at the top level of eval.json, and per channel. */
function evalRows(evalJson: string | undefined): [string, string][] {
  if (!evalJson) return [];
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(evalJson) as Record<string, unknown>;
  } catch {
    return [["eval.json", "unreadable"]];
  }
  const rows: [string, string][] = Object.entries(report)
    .filter((e): e is [string, number | string] => typeof e[1] === "number" || typeof e[1] === "string")
    .map(([k, v]) => [k, typeof v === "number" ? String(Number(v.toPrecision(6))) : v]);
  const physical = Array.isArray(report.physical) ? (report.physical as Record<string, unknown>[]) : [];
  for (const p of physical)
    rows.push([
      `RMSE ${String(p.name)}`,
      `${Number(Number(p.rmse).toPrecision(4))} ${typeof p.units === "string" ? p.units : ""}`.trim(),
    ]);
  return rows;
}

/**
 * metrics.jsonl records as TensorBoard scalars: `train_x` → `train/x`, `test_x` → `test/x`, other
 * numbers as they are; `step`, `seconds` and `time` are the event's own fields. Wall time is the
 * record's `time` (seconds since the epoch) when it has one, else `start` + `seconds`.
 */
export function scalarRecords(records: Record<string, number>[], start: number): ScalarRecord[] {
  return records.map((r) => ({
    step: r.step!,
    wallTime: r.time ?? start + (r.seconds ?? 0),
    values: Object.fromEntries(
      Object.entries(r)
        .filter(([k]) => k !== "step" && k !== "seconds" && k !== "time")
        .map(([k, v]) => [k.replace(/^(train|test|val)_/, "$1/"), v]),
    ),
  }));
}

/**
 * The run's logs for other tools, rebuilt from its files: `report.html` and the TensorBoard event
 * file. The run's start is read from its first record with a wall time (`time` − `seconds`), so
 * the same files always give the same bytes; `fallback` (seconds since the epoch) dates runs
 * whose records carry no wall time (those logged before anr recorded it).
 */
export async function writeRunLogs(out: string, fallback: number): Promise<void> {
  const records = parseMetrics((await readOptional(join(out, "metrics.jsonl"))) ?? "");
  const timed = records.find((r) => r.time !== undefined);
  const start = timed ? timed.time! - (timed.seconds ?? 0) : fallback;
  await writeFileAtomic(join(out, EVENTS_FILE), encodeTfEvents(scalarRecords(records, start), start));
  await writeRunReport(out);
}

/** Build `report.html` in run folder `out` from its files, atomically; returns its path. */
export async function writeRunReport(out: string): Promise<string> {
  const [config, metrics, evalJson] = await Promise.all([
    readOptional(join(out, "config.json")),
    readOptional(join(out, "metrics.jsonl")),
    readOptional(join(out, "eval.json")),
  ]);
  const records = parseMetrics(metrics ?? "");
  let name = out;
  try {
    name = (JSON.parse(config ?? "{}") as { name?: string }).name ?? out;
  } catch {
    // the folder's path names it
  }
  const last = records.at(-1);
  const rows = evalRows(evalJson);
  const grids = await sampleGrids(out);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>anr run: ${escapeMarkup(name)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1340px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
table { border-collapse: collapse; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td:last-child { font-variant-numeric: tabular-nums; }
img { image-rendering: pixelated; max-width: 100%; border: 1px solid #ccc; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; font-size: 0.85em; }
</style>
</head>
<body>
<h1>anr run: ${escapeMarkup(name)}</h1>
<p>${escapeMarkup(out)} · ${records.length ? `step ${last!.step}` : "no steps logged yet"}${
    last?.seconds !== undefined ? ` · ${Math.round(last.seconds)} s of training` : ""
  }</p>
<h2>Curves</h2>
<div class="charts">${charts(records).join("\n") || "<p>No metrics yet.</p>"}</div>
<h2>Final evaluation</h2>
${
  rows.length
    ? `<table>${rows.map(([k, v]) => `<tr><th>${escapeMarkup(k)}</th><td>${escapeMarkup(v)}</td></tr>`).join("")}</table>`
    : "<p>Not evaluated yet (eval.json is written when training ends).</p>"
}
<h2>Samples</h2>
${
  grids.length
    ? grids
        .map(
          (g) =>
            `<figure><img src="${g.dataUri}" alt="${escapeMarkup(g.name)}"><figcaption>${escapeMarkup(g.name)}</figcaption></figure>`,
        )
        .join("\n")
    : "<p>No sample grids yet.</p>"
}
<h2>Config</h2>
<pre>${escapeMarkup(config ?? "(no config.json)")}</pre>
</body>
</html>
`;
  const path = join(out, REPORT_FILE);
  await writeFileAtomic(path, html);
  return path;
}
