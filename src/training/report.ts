/**
 * A run's report: one self-contained HTML file (`report.html`) that opens offline in any browser,
 * with the latest numbers, the training curves, the final evaluation, the latest sample grids and
 * the full config; beside it the curves of loss and PSNR as a picture (`psnr.png`).
 * Everything is inlined (SVG charts, PNGs as data URIs), so the file can be mailed or archived
 * alone. It is built from the run folder's own files, so it can be rebuilt at any time.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { encodeTfEvents, type ScalarRecord } from "../io/tfevents.js";
import { writeFileAtomic } from "../util/fs.js";
import {
  escapeMarkup,
  svgLinePlot,
  svgPanelPlot,
  writeLinePlot,
  type LineSeries,
  type PanelPlotSpec,
} from "../util/plot.js";

/** The report's file name inside a run folder. */
export const REPORT_FILE = "report.html";

/**
 * The TensorBoard event file's name inside a run folder. It is rewritten whole from metrics.jsonl
 * (atomically), and records are deterministic, so a reader following the file sees only appended
 * records, and a resumed run's file never repeats or misses a step.
 */
export const EVENTS_FILE = "events.out.tfevents.anr";

/** The picture of the loss and PSNR curves inside a run folder. */
export const PLOT_FILE = "psnr.png";

/** How many sample grids (the latest) the report shows. */
const SAMPLE_GRIDS = 3;

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** metrics.jsonl as records of numbers; unparsable lines (a torn last line) are left out. */
export function parseMetrics(text: string): Record<string, number>[] {
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

/**
 * The main chart: the training loss (log scale) over the PSNR, train and test, by step; without
 * panels for what is not logged yet. `split` names the test split in the legend.
 */
export function curvesSpec(records: Record<string, number>[], name: string, split?: string): PanelPlotSpec {
  const loss = series(records, ["loss"]);
  const psnr = series(records, ["train_psnr", "test_psnr"]).map((s) => ({
    ...s,
    name: s.name === "train_psnr" ? "train" : `test${split ? ` (${split})` : ""}`,
  }));
  return {
    title: `${name}: loss and PSNR by step`,
    xLabel: "step",
    panels: [
      ...(loss.length ? [{ yLabel: "train loss", series: loss, logY: true, legend: false }] : []),
      ...(psnr.length ? [{ yLabel: "PSNR (dB)", series: psnr }] : []),
    ],
  };
}

/** The charts of the other numbers: each other test metric, then the speed. */
function otherCharts(records: Record<string, number>[]): string[] {
  const keys = new Set(records.flatMap((r) => Object.keys(r)));
  const specs: { title: string; yLabel: string; keys: string[] }[] = [
    ...[...keys]
      .filter((k) => k.startsWith("test_") && k !== "test_psnr")
      .sort()
      .map((k) => ({ title: k.replace(/^test_/, "test "), yLabel: k.replace(/^test_/, ""), keys: [k] })),
    { title: "Speed (mean since the start)", yLabel: "images/s", keys: ["images_per_s"] },
    { title: "Step time", yLabel: "s", keys: ["step_s"] },
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
        legend: false,
        width: 480,
        height: 300,
      }),
    );
}

/** The latest value of each number worth a glance, with its step where it is not the last one. */
function latestRows(records: Record<string, number>[]): [string, string][] {
  const shown: [string, string, (v: number) => string][] = [
    ["loss", "loss", (v) => v.toPrecision(4)],
    ["train_psnr", "train PSNR", (v) => `${v.toFixed(2)} dB`],
    ["test_psnr", "test PSNR", (v) => `${v.toFixed(2)} dB`],
    ["test_ssim", "test SSIM", (v) => v.toFixed(4)],
    ["lr", "learning rate", (v) => String(v)],
    ["images_per_s", "speed", (v) => `${v.toPrecision(3)} images/s`],
    ["step_s", "step time", (v) => `${(v * 1000).toPrecision(3)} ms`],
    ["grad_norm", "gradient norm", (v) => v.toPrecision(3)],
  ];
  const rows: [string, string][] = [];
  const lastStep = records.at(-1)?.step;
  for (const [key, label, format] of shown) {
    const r = [...records].reverse().find((x) => x[key] !== undefined);
    if (r) rows.push([label, `${format(r[key]!)}${r.step !== lastStep ? ` (at step ${r.step})` : ""}`]);
  }
  return rows;
}

/** "2 h 5 min", "3 min 20 s", "12 s". */
function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A table of label and value rows, escaped. */
function table(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${escapeMarkup(k)}</th><td>${escapeMarkup(v)}</td></tr>`).join("")}</table>`;
}

/** The latest sample grids, newest first: samples/final.png, then samples/step-N.png by step. */
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
    pngs
      .slice(-SAMPLE_GRIDS)
      .reverse()
      .map(async (name) => ({
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

/** The run's name (config.json's, else the folder's path) and the test split's (eval.json's). */
function names(
  out: string,
  config: string | undefined,
  evalJson: string | undefined,
): { name: string; split?: string } {
  let name = out;
  let split: string | undefined;
  try {
    name = (JSON.parse(config ?? "{}") as { name?: string }).name ?? out;
  } catch {
    // the folder's path names it
  }
  try {
    const s = (JSON.parse(evalJson ?? "{}") as { split?: unknown }).split;
    if (typeof s === "string") split = s;
  } catch {
    // no split in the legend
  }
  return { name, ...(split !== undefined ? { split } : {}) };
}

/**
 * The run's logs for other tools, rebuilt from its files: `report.html`, `psnr.png` and the
 * TensorBoard event file. The run's start is read from its first record with a wall time (`time` −
 * `seconds`), so the same files always give the same bytes; `fallback` (seconds since the epoch)
 * dates runs whose records carry no wall time (those logged before anr recorded it).
 */
export async function writeRunLogs(out: string, fallback: number): Promise<void> {
  const [config, metrics, evalJson] = await Promise.all([
    readOptional(join(out, "config.json")),
    readOptional(join(out, "metrics.jsonl")),
    readOptional(join(out, "eval.json")),
  ]);
  const records = parseMetrics(metrics ?? "");
  const timed = records.find((r) => r.time !== undefined);
  const start = timed ? timed.time! - (timed.seconds ?? 0) : fallback;
  await writeFileAtomic(join(out, EVENTS_FILE), encodeTfEvents(scalarRecords(records, start), start));
  const { name, split } = names(out, config, evalJson);
  await writeLinePlot(join(out, PLOT_FILE), { ...curvesSpec(records, name, split), width: 800, height: 560 });
  await writeRunReport(out);
}

/** What the run is, from config.json: task, data, model and the main training settings. */
function setupRows(config: string | undefined): [string, string][] {
  let c: {
    task?: unknown;
    data?: { kind?: unknown; root?: unknown };
    model?: { hyponet?: { name?: unknown } };
    train?: { steps?: unknown; batch_size?: unknown; lr?: unknown };
  };
  try {
    c = JSON.parse(config ?? "{}") as typeof c;
  } catch {
    return [];
  }
  const rows: [string, unknown][] = [
    ["task", c.task],
    ["data", [c.data?.kind, c.data?.root].filter((x) => x !== undefined).join(" · ") || undefined],
    ["model", c.model?.hyponet?.name],
    ["steps", c.train?.steps],
    ["batch size", c.train?.batch_size],
    ["learning rate", c.train?.lr],
  ];
  return rows
    .filter((r): r is [string, string | number] => typeof r[1] === "string" || typeof r[1] === "number")
    .map(([k, v]) => [k, String(v)]);
}

/** A sample grid's caption: "step-000200.png" → "step 200", "final.png" → "final, after the last step". */
function gridCaption(file: string): string {
  if (file === "final.png") return "final, after the last step";
  const step = /step-(\d+)\.png$/.exec(file)?.[1];
  return step !== undefined ? `step ${Number(step)}` : file;
}

/** Build `report.html` in run folder `out` from its files, atomically; returns its path. */
export async function writeRunReport(out: string): Promise<string> {
  const [config, metrics, evalJson] = await Promise.all([
    readOptional(join(out, "config.json")),
    readOptional(join(out, "metrics.jsonl")),
    readOptional(join(out, "eval.json")),
  ]);
  const records = parseMetrics(metrics ?? "");
  const { name, split } = names(out, config, evalJson);
  let steps: number | undefined;
  try {
    steps = (JSON.parse(config ?? "{}") as { train?: { steps?: number } }).train?.steps;
  } catch {
    // the header leaves out the planned length
  }
  const last = records.at(-1);
  const seconds = [...records].reverse().find((r) => r.seconds !== undefined)?.seconds;
  const rows = evalRows(evalJson);
  const setup = setupRows(config);
  const grids = await sampleGrids(out);
  const curves = curvesSpec(records, name, split);
  const status = records.length
    ? `step ${last!.step}${steps !== undefined ? ` of ${steps}` : ""}${seconds !== undefined ? ` · ${duration(seconds)} of training` : ""}`
    : "no steps logged yet";
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>anr run: ${escapeMarkup(name)}</title>
<style>
body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1.5em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #555; margin-top: 0; }
.tables { display: flex; flex-wrap: wrap; gap: 0 3em; align-items: flex-start; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; margin-bottom: 1em; }
.charts svg { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
table { border-collapse: collapse; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { font-weight: 600; color: #444; }
td { font-variant-numeric: tabular-nums; }
figure { margin: 0 0 1.5em; } figcaption { color: #444; font-weight: 600; margin-bottom: 0.3em; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; font-size: 0.85em; }
summary { cursor: pointer; color: #444; }
</style>
</head>
<body>
<h1>anr run: ${escapeMarkup(name)}</h1>
<p class="sub">${escapeMarkup(out)} · ${escapeMarkup(status)}</p>
<div class="tables">
${setup.length ? `<section><h2>Run</h2>\n${table(setup)}</section>` : ""}
${records.length ? `<section><h2>Latest${last ? ` (step ${last.step})` : ""}</h2>\n${table(latestRows(records))}</section>` : ""}
<section><h2>Final evaluation</h2>
${rows.length ? table(rows) : "<p>Not evaluated yet (eval.json is written when training ends).</p>"}</section>
</div>
<h2>Curves</h2>
${
  records.length
    ? `<div class="charts">${svgPanelPlot({ ...curves, width: 760, height: 520 })}</div>
<div class="charts">${otherCharts(records).join("\n")}</div>`
    : "<p>No metrics yet.</p>"
}
<h2>Samples</h2>
${
  grids.length
    ? grids
        .map(
          (g) =>
            `<figure><figcaption>${escapeMarkup(gridCaption(g.name))}</figcaption><img src="${g.dataUri}" alt="${escapeMarkup(g.name)}"></figure>`,
        )
        .join("\n")
    : "<p>No sample grids yet.</p>"
}
<h2>Config</h2>
<details><summary>config.json${config ? ` (${config.trimEnd().split("\n").length} lines)` : ""}</summary>
<pre>${escapeMarkup(config ?? "(no config.json)")}</pre>
</details>
</body>
</html>
`;
  const path = join(out, REPORT_FILE);
  await writeFileAtomic(path, html);
  return path;
}
