/**
 * Minimal line charts (training curves, metric sweeps) as SVG, rendered to PNG with sharp.
 * No plotting dependency: the charts are simple enough to build by hand, and sharp's librsvg
 * already renders SVG.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { writeFileAtomic } from "./fs.js";

/** One named curve; points are `[x, y]`, drawn in the given order. */
export interface LineSeries {
  name: string;
  points: [number, number][];
}

/** What to plot. Width and height are the PNG's pixel size (default 800×500). */
export interface LinePlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  width?: number;
  height?: number;
}

// Okabe–Ito colour-blind-safe palette, reordered so the first few are the most distinct on
// white; its yellow is last because it is hard to see on a white background.
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
// Past 8 series colours repeat, so each further cycle also gets a dash pattern.
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];
const MARKER_MAX_POINTS = 30;
const FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif";

/** Text made safe inside SVG/HTML markup and attribute values. */
export function escapeMarkup(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** Rounds to 1, 2 or 5 × 10^k (Heckbert's "nice numbers"). */
function niceNum(x: number, round: boolean): number {
  const e = Math.floor(Math.log10(x));
  const f = x / 10 ** e;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * 10 ** e;
}

interface Scale {
  min: number;
  max: number;
  ticks: number[];
  step: number;
}

/** A padded, tick-aligned axis range with about `n` ticks covering [lo, hi]. */
function niceScale(lo: number, hi: number, n = 5): Scale {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (hi === lo) {
    // A flat series or a single point: widen so it sits mid-chart rather than on an edge.
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const range = niceNum(hi - lo, false);
  const step = niceNum(range / (n - 1), true);
  const min = Math.floor(lo / step) * step;
  const max = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  const count = Math.round((max - min) / step);
  // Compute each tick from the index, not by accumulation, so labels don't drift (0.30000000000000004).
  for (let i = 0; i <= count; i++) ticks.push(min + i * step);
  return { min, max, ticks, step };
}

/** Labels for one axis, with a shared format so e.g. "9.0e-6" and "1.2e-5" line up in precision. */
function tickLabels(scale: Scale): string[] {
  const { ticks, step } = scale;
  const maxAbs = Math.max(...ticks.map(Math.abs));
  if (maxAbs >= 1e5 || step < 1e-4) {
    // Enough mantissa digits to tell neighbouring ticks apart at the largest magnitude.
    const digits = Math.max(0, Math.min(6, Math.floor(Math.log10(maxAbs)) - Math.floor(Math.log10(step))));
    return ticks.map((t) => (Math.abs(t) < step * 1e-9 ? "0" : t.toExponential(digits).replace("e+", "e")));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return ticks.map((t) => (Math.abs(t) < step * 1e-9 ? "0" : t.toFixed(decimals)));
}

function fmtCoord(v: number): string {
  return v.toFixed(2);
}

/** Builds the chart as SVG text (exported so it can be inspected without rendering). */
export function svgLinePlot(spec: LinePlotSpec): string {
  const width = spec.width ?? 800;
  const height = spec.height ?? 500;
  if (!(width > 0 && height > 0)) throw new RangeError(`plot size must be positive, got ${width}×${height}`);

  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of spec.series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xLo = Math.min(xLo, x);
      xHi = Math.max(xHi, x);
      yLo = Math.min(yLo, y);
      yHi = Math.max(yHi, y);
    }
  }
  const xs = niceScale(xLo, xHi);
  const ys = niceScale(yLo, yHi);
  const yLabels = tickLabels(ys);
  const xLabels = tickLabels(xs);

  // Text widths are estimated (≈0.6 em per character) since there's no font metrics here.
  const fontSize = 12;
  const charW = fontSize * 0.6;
  const maxYLabel = Math.max(...yLabels.map((l) => l.length));
  const legendW =
    spec.series.length > 0
      ? Math.min(width * 0.3, 34 + charW * Math.max(...spec.series.map((s) => s.name.length)))
      : 0;
  const left = 24 + maxYLabel * charW + 10;
  const right = 16 + (legendW > 0 ? legendW + 12 : 0);
  const top = 36;
  const bottom = 50;
  const pw = Math.max(1, width - left - right);
  const ph = Math.max(1, height - top - bottom);
  const px = (x: number) => left + ((x - xs.min) / (xs.max - xs.min)) * pw;
  const py = (y: number) => top + ph - ((y - ys.min) / (ys.max - ys.min)) * ph;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="${fontSize}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${fmtCoord(left + pw / 2)}" y="${top - 14}" text-anchor="middle" font-size="15" font-weight="bold">${escapeMarkup(spec.title)}</text>`,
  );

  // Grid and ticks.
  out.push(`<g stroke="#e0e0e0" stroke-width="1">`);
  for (const t of xs.ticks)
    out.push(`<line x1="${fmtCoord(px(t))}" y1="${top}" x2="${fmtCoord(px(t))}" y2="${top + ph}"/>`);
  for (const t of ys.ticks)
    out.push(
      `<line x1="${fmtCoord(left)}" y1="${fmtCoord(py(t))}" x2="${fmtCoord(left + pw)}" y2="${fmtCoord(py(t))}"/>`,
    );
  out.push(`</g>`);
  out.push(
    `<rect x="${fmtCoord(left)}" y="${top}" width="${fmtCoord(pw)}" height="${ph}" fill="none" stroke="#333333" stroke-width="1"/>`,
  );
  out.push(`<g fill="#333333">`);
  xs.ticks.forEach((t, i) => {
    out.push(
      `<line x1="${fmtCoord(px(t))}" y1="${top + ph}" x2="${fmtCoord(px(t))}" y2="${top + ph + 4}" stroke="#333333"/>`,
      `<text x="${fmtCoord(px(t))}" y="${top + ph + 17}" text-anchor="middle">${escapeMarkup(xLabels[i]!)}</text>`,
    );
  });
  ys.ticks.forEach((t, i) => {
    out.push(
      `<line x1="${fmtCoord(left - 4)}" y1="${fmtCoord(py(t))}" x2="${fmtCoord(left)}" y2="${fmtCoord(py(t))}" stroke="#333333"/>`,
      `<text x="${fmtCoord(left - 7)}" y="${fmtCoord(py(t) + 4)}" text-anchor="end">${escapeMarkup(yLabels[i]!)}</text>`,
    );
  });
  out.push(`</g>`);
  out.push(
    `<text x="${fmtCoord(left + pw / 2)}" y="${height - 12}" text-anchor="middle">${escapeMarkup(spec.xLabel)}</text>`,
    `<text transform="translate(14 ${fmtCoord(top + ph / 2)}) rotate(-90)" text-anchor="middle">${escapeMarkup(spec.yLabel)}</text>`,
  );

  // Series: non-finite points break the line (a gap shows where data is missing) and get no marker.
  // No clipping: the axis range covers every finite point, and a clip would halve edge markers.
  out.push(`<g fill="none" stroke-width="1.75" stroke-linejoin="round" stroke-linecap="round">`);
  spec.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : "";
    let d = "";
    let penDown = false;
    const finite: [number, number][] = [];
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        penDown = false;
        continue;
      }
      finite.push([x, y]);
      d += `${penDown ? "L" : "M"}${fmtCoord(px(x))} ${fmtCoord(py(y))}`;
      penDown = true;
    }
    out.push(
      `<path class="series" data-series="${escapeMarkup(s.name)}" d="${d}" stroke="${colour}"${dashAttr}/>`,
    );
    if (finite.length > 0 && finite.length <= MARKER_MAX_POINTS) {
      out.push(`<g fill="${colour}" stroke="none">`);
      for (const [x, y] of finite)
        out.push(`<circle cx="${fmtCoord(px(x))}" cy="${fmtCoord(py(y))}" r="3"/>`);
      out.push(`</g>`);
    }
  });
  out.push(`</g>`);

  // Legend, outside the plot area on the right so it never hides data.
  if (spec.series.length > 0) {
    const lx = left + pw + 12;
    const rowH = 18;
    out.push(
      `<rect x="${fmtCoord(lx)}" y="${top}" width="${fmtCoord(legendW)}" height="${spec.series.length * rowH + 8}" fill="#ffffff" stroke="#cccccc"/>`,
    );
    spec.series.forEach((s, i) => {
      const colour = PALETTE[i % PALETTE.length]!;
      const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
      const y = top + 4 + rowH * i + rowH / 2;
      out.push(
        `<line x1="${fmtCoord(lx + 6)}" y1="${fmtCoord(y)}" x2="${fmtCoord(lx + 26)}" y2="${fmtCoord(y)}" stroke="${colour}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`,
        `<text x="${fmtCoord(lx + 30)}" y="${fmtCoord(y + 4)}">${escapeMarkup(s.name)}</text>`,
      );
    });
  }
  out.push(`</svg>`);
  return out.join("\n");
}

/**
 * Renders the chart to a PNG of exactly `width`×`height` pixels at `path`, written atomically
 * (a viewer polling the file during training never sees a half-written image). Creates the
 * parent directory if needed.
 */
export async function writeLinePlot(path: string, spec: LinePlotSpec): Promise<void> {
  const svg = svgLinePlot(spec);
  // density 72 makes one SVG user unit one pixel, so the PNG has the requested size.
  const png = await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, png);
}
