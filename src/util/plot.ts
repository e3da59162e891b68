/**
 * Minimal line charts (training curves, metric sweeps, scatters of one-point series with error
 * bars) as SVG, rendered to PNG with sharp.
 * No plotting dependency: the charts are simple enough to build by hand, and sharp's librsvg
 * already renders SVG. A chart has one or more panels stacked over a shared x axis (e.g. loss
 * over PSNR), each with its own y axis (linear or logarithmic) and legend.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { writeFileAtomic } from "./fs.js";

/** One named curve; points are `[x, y]`, drawn in the given order. */
export interface LineSeries {
  name: string;
  points: [number, number][];
  /** Draw it dashed: a curve drawn over another that it may coincide with stays visible. */
  dashed?: boolean;
  /**
   * The palette index of its look (colour, and dash past the palette) instead of its position,
   * so that a group of series (e.g. one model's seeds) shares a colour.
   */
  colour?: number;
  /** List it in the legend (default true); one entry can then stand for its group. */
  legend?: boolean;
  /**
   * Per point, a vertical error bar from `low` to `high` (e.g. mean ± standard deviation), which
   * the y axis covers; a point whose bar has a non-finite end gets none.
   */
  yErrors?: [low: number, high: number][];
}

/** One panel of a chart: its y axis and its curves. */
export interface LinePanel {
  yLabel: string;
  series: LineSeries[];
  /** A logarithmic y axis (points with y ≤ 0 are then left out, as non-finite ones are). */
  logY?: boolean;
  /** Draw the legend (default true); a single curve named by the y label needs none. */
  legend?: boolean;
}

/** What to plot: one panel. Width and height are the PNG's pixel size (default 800×500). */
export interface LinePlotSpec extends LinePanel {
  title: string;
  xLabel: string;
  width?: number;
  height?: number;
}

/** What to plot: panels stacked over one x axis. Width and height as {@link LinePlotSpec}'s. */
export interface PanelPlotSpec {
  title: string;
  xLabel: string;
  panels: LinePanel[];
  width?: number;
  height?: number;
}

// Okabe–Ito colour-blind-safe palette, reordered so the first few are the most distinct on
// white; its yellow is last because it is hard to see on a white background.
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
// Past 8 series colours repeat, so each further cycle also gets a dash pattern.
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];
const MARKER_MAX_POINTS = 30;
// Long gaps, so that a dashed curve over a solid one of another colour shows both.
const OVERLAY_DASH = "7 7";

/**
 * The font of every picture anr draws text in (charts, grid captions). DejaVu Sans comes first
 * because the text widths below are its own, and it is the widest of the usual fallbacks, so text
 * measured for it fits in any of them.
 */
export const FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, sans-serif";

// Advance widths of DejaVu Sans, in thousandths of an em, for the printable ASCII characters
// (U+0020 to U+007E), read from DejaVuSans.ttf's hmtx table.
const ASCII_WIDTHS = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636,
  636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295,
  295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838,
  500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521,
  392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
// The same for the non-ASCII characters anr writes in captions and titles.
const OTHER_WIDTHS: Record<string, number> = {
  "²": 401,
  "³": 401,
  "×": 838,
  "…": 1000,
  "–": 500,
  "—": 1000,
  "·": 318,
  µ: 636,
  "°": 500,
  "±": 838,
  "≈": 838,
  "−": 838,
};
// DejaVu Sans Bold is at most this much wider than the regular face, character for character.
const BOLD_FACTOR = 1.12;

/**
 * The width in pixels of `text` set in {@link FONT_FAMILY} at `fontSize` pixels: DejaVu Sans's own
 * advance widths, and a full em for characters not in the table (wider than most), so the text
 * drawn is never wider than measured.
 */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    em += (code >= 32 && code < 127 ? ASCII_WIDTHS[code - 32]! : (OTHER_WIDTHS[ch] ?? 1000)) / 1000;
  }
  return em * fontSize * (bold ? BOLD_FACTOR : 1);
}

/** `text`, cut and ended with "…" where needed so that it is at most `maxWidth` pixels wide. */
export function fitText(text: string, maxWidth: number, fontSize: number, bold = false): string {
  if (textWidth(text, fontSize, bold) <= maxWidth) return text;
  const chars = [...text];
  let n = chars.length;
  while (n > 0 && textWidth(chars.slice(0, n).join("") + "…", fontSize, bold) > maxWidth) n--;
  return n > 0 ? chars.slice(0, n).join("") + "…" : "";
}

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

/** An axis: its range, where its ticks are, their labels, and the map from data to [0, 1]. */
interface Axis {
  ticks: number[];
  labels: string[];
  /** A data value's position along the axis, 0 at its start and 1 at its end. */
  at(v: number): number;
  /** Whether a data value can be drawn on this axis. */
  shows(v: number): boolean;
  /** Per tick, its claim to a label where labels crowd (0 first). */
  rank: number[];
}

/** A padded, tick-aligned linear axis with about `n` ticks covering [lo, hi]. */
function linearAxis(lo: number, hi: number, n = 5): Axis {
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
  return {
    ticks,
    labels: linearLabels(ticks, step),
    at: (v) => (v - min) / (max - min),
    shows: Number.isFinite,
    rank: ticks.map(() => 0),
  };
}

/** Labels for a linear axis, with a shared format so e.g. "9.0e-6" and "1.2e-5" line up in precision. */
function linearLabels(ticks: number[], step: number): string[] {
  const maxAbs = Math.max(...ticks.map(Math.abs));
  if (maxAbs >= 1e5 || step < 1e-4) {
    // Enough mantissa digits to tell neighbouring ticks apart at the largest magnitude.
    const digits = Math.max(0, Math.min(6, Math.floor(Math.log10(maxAbs)) - Math.floor(Math.log10(step))));
    return ticks.map((t) => (Math.abs(t) < step * 1e-9 ? "0" : t.toExponential(digits).replace("e+", "e")));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return ticks.map((t) => (Math.abs(t) < step * 1e-9 ? "0" : t.toFixed(decimals)));
}

/**
 * A logarithmic axis covering [lo, hi] (both positive), from and to a tick: ticks at each decade
 * over three decades or more, at 1, 2 and 5 × 10^k over one or more, and at every digit below.
 */
function logAxis(lo: number, hi: number): Axis {
  if (!(lo > 0 && Number.isFinite(lo) && Number.isFinite(hi))) {
    lo = 1;
    hi = 10;
  }
  if (hi === lo) {
    lo /= 2;
    hi *= 2;
  }
  const decades = Math.log10(hi / lo);
  const mantissas = decades >= 3 ? [1] : decades >= 1 ? [1, 2, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const all: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of mantissas) all.push(Number((m * 10 ** e).toPrecision(12)));
  const min = Math.max(...all.filter((t) => t <= lo * (1 + 1e-12)));
  const max = Math.min(...all.filter((t) => t >= hi * (1 - 1e-12)));
  let ticks = all.filter((t) => t >= min && t <= max);
  // Past 12 decades, every other one, keeping both ends.
  while (ticks.length > 12) ticks = ticks.filter((_, i) => i % 2 === 0 || i === ticks.length - 1);
  const [a, b] = [Math.log10(min), Math.log10(max)];
  return {
    ticks,
    labels: ticks.map((t) =>
      t >= 1e-3 && t < 1e5 ? String(Number(t.toPrecision(3))) : t.toExponential(0).replace("e+", "e"),
    ),
    at: (v) => (Math.log10(v) - a) / (b - a),
    shows: (v) => Number.isFinite(v) && v > 0,
    // Decades first, then 5, then 2, then the other digits.
    rank: ticks.map((t) => {
      const m = Math.round(t / 10 ** Math.floor(Math.log10(t) + 1e-9));
      return m === 1 ? 0 : m === 5 ? 1 : m === 2 ? 2 : 3;
    }),
  };
}

/**
 * The ticks of a vertical axis `length` pixels long that get a label: by rank, each at least a
 * line of text away from those already labelled, so that labels never overlap.
 */
function spacedLabels(axis: Axis, length: number): Set<number> {
  const order = axis.ticks.map((_, i) => i).sort((i, j) => axis.rank[i]! - axis.rank[j]! || i - j);
  const kept: number[] = [];
  for (const i of order) {
    const at = axis.at(axis.ticks[i]!) * length;
    if (kept.every((k) => Math.abs(axis.at(axis.ticks[k]!) * length - at) >= FONT_SIZE + 2)) kept.push(i);
  }
  return new Set(kept);
}

function fmtCoord(v: number): string {
  return v.toFixed(2);
}

const FONT_SIZE = 12;
const TITLE_SIZE = 15;
const MARGIN = 16;
/** Legend geometry: a swatch of line, a gap, the name; rows of this height. */
const SWATCH = 20;
const LEGEND_PAD = 6;
const LEGEND_ROW = 18;

/** Width of a legend box holding names of these widths. */
function legendWidth(names: string[]): number {
  return LEGEND_PAD + SWATCH + 4 + Math.max(0, ...names.map((n) => textWidth(n, FONT_SIZE))) + LEGEND_PAD;
}

/** A one-panel chart as SVG text (exported so it can be inspected without rendering). */
export function svgLinePlot(spec: LinePlotSpec): string {
  const { title, xLabel, width, height, ...panel } = spec;
  return svgPanelPlot({ title, xLabel, width, height, panels: [panel] });
}

/**
 * Builds the chart as SVG text: the panels stacked top to bottom over one x axis, each with its
 * legend on the right where it fits in 30% of the width, else under the panel (names too long
 * for the width cut with "…"), so that no text runs off the picture.
 */
export function svgPanelPlot(spec: PanelPlotSpec): string {
  const width = spec.width ?? 800;
  const height = spec.height ?? 500;
  if (!(width > 0 && height > 0)) throw new RangeError(`plot size must be positive, got ${width}×${height}`);
  const panels = spec.panels.length ? spec.panels : [{ yLabel: "", series: [] }];

  let xLo = Infinity;
  let xHi = -Infinity;
  const yAxes = panels.map((p) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of p.series)
      for (const [j, [x, y]] of s.points.entries()) {
        if (!Number.isFinite(x) || !Number.isFinite(y) || (p.logY && y <= 0)) continue;
        xLo = Math.min(xLo, x);
        xHi = Math.max(xHi, x);
        lo = Math.min(lo, y);
        hi = Math.max(hi, y);
        for (const e of errorBar(s, j, p.logY === true) ?? []) {
          lo = Math.min(lo, e);
          hi = Math.max(hi, e);
        }
      }
    return p.logY ? logAxis(lo, hi) : linearAxis(lo, hi);
  });
  const xAxis = linearAxis(xLo, xHi);

  // Legends go on the right when the widest fits in 30% of the picture, else under each panel,
  // from the plot's left edge, with names cut to the width left.
  const names = panels.map((p) => (p.legend === false ? [] : inLegend(p).map(([s]) => s.name)));
  const rightW = Math.max(0, ...names.filter((n) => n.length).map(legendWidth));
  const onRight = rightW <= width * 0.3;
  const yLabelsW = Math.max(...yAxes.flatMap((a) => a.labels.map((l) => textWidth(l, FONT_SIZE))));
  const left = MARGIN + FONT_SIZE + 8 + yLabelsW + 8;
  const right = MARGIN + (onRight && rightW > 0 ? rightW + 12 : 0);
  const maxName = width - MARGIN - left - legendWidth([]);
  const shown = names.map((ns) => ns.map((n) => (onRight ? n : fitText(n, maxName, FONT_SIZE))));
  const pw = Math.max(1, width - left - right);
  const top = 36;
  const tickSpace = 22;
  const xLabelSpace = 20;
  const below = panels.map(
    (_, i) =>
      tickSpace +
      (i === panels.length - 1 ? xLabelSpace : 8) +
      (!onRight && names[i]!.length ? names[i]!.length * LEGEND_ROW + 2 * LEGEND_PAD + 8 : 0),
  );
  const ph = Math.max(1, (height - top - 8 - below.reduce((a, b) => a + b, 0)) / panels.length);
  const px = (x: number) => left + xAxis.at(x) * pw;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}" font-size="${FONT_SIZE}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${fmtCoord(width / 2)}" y="${top - 14}" text-anchor="middle" font-size="${TITLE_SIZE}" font-weight="bold">${escapeMarkup(fitText(spec.title, width - 2 * MARGIN, TITLE_SIZE, true))}</text>`,
  );

  let y0 = top;
  panels.forEach((panel, pi) => {
    const ys = yAxes[pi]!;
    const py = (y: number) => y0 + ph - ys.at(y) * ph;
    // Grid and ticks.
    out.push(`<g stroke="#e0e0e0" stroke-width="1">`);
    for (const t of xAxis.ticks)
      out.push(
        `<line x1="${fmtCoord(px(t))}" y1="${fmtCoord(y0)}" x2="${fmtCoord(px(t))}" y2="${fmtCoord(y0 + ph)}"/>`,
      );
    for (const t of ys.ticks)
      out.push(
        `<line x1="${fmtCoord(left)}" y1="${fmtCoord(py(t))}" x2="${fmtCoord(left + pw)}" y2="${fmtCoord(py(t))}"/>`,
      );
    out.push(`</g>`);
    out.push(
      `<rect x="${fmtCoord(left)}" y="${fmtCoord(y0)}" width="${fmtCoord(pw)}" height="${fmtCoord(ph)}" fill="none" stroke="#333333" stroke-width="1"/>`,
    );
    out.push(`<g fill="#333333">`);
    xAxis.ticks.forEach((t, i) => {
      out.push(
        `<line x1="${fmtCoord(px(t))}" y1="${fmtCoord(y0 + ph)}" x2="${fmtCoord(px(t))}" y2="${fmtCoord(y0 + ph + 4)}" stroke="#333333"/>`,
        `<text x="${fmtCoord(px(t))}" y="${fmtCoord(y0 + ph + 17)}" text-anchor="middle">${escapeMarkup(xAxis.labels[i]!)}</text>`,
      );
    });
    const labelled = spacedLabels(ys, ph);
    ys.ticks.forEach((t, i) => {
      out.push(
        `<line x1="${fmtCoord(left - 4)}" y1="${fmtCoord(py(t))}" x2="${fmtCoord(left)}" y2="${fmtCoord(py(t))}" stroke="#333333"/>`,
      );
      if (labelled.has(i))
        out.push(
          `<text x="${fmtCoord(left - 7)}" y="${fmtCoord(py(t) + 4)}" text-anchor="end">${escapeMarkup(ys.labels[i]!)}</text>`,
        );
    });
    out.push(`</g>`);
    out.push(
      `<text transform="translate(${MARGIN + FONT_SIZE - 2} ${fmtCoord(y0 + ph / 2)}) rotate(-90)" text-anchor="middle">${escapeMarkup(fitText(panel.yLabel, ph, FONT_SIZE))}</text>`,
    );
    let yb = y0 + ph + tickSpace;
    if (pi === panels.length - 1) {
      out.push(
        `<text x="${fmtCoord(left + pw / 2)}" y="${fmtCoord(yb + 12)}" text-anchor="middle">${escapeMarkup(fitText(spec.xLabel, width - 2 * MARGIN, FONT_SIZE))}</text>`,
      );
      yb += xLabelSpace;
    }

    // Series: non-finite points (and non-positive ones on a log axis) break the line, a gap
    // showing where data is missing, and get no marker. No clipping: the axis range covers every
    // drawn point, and a clip would halve edge markers.
    out.push(`<g fill="none" stroke-width="1.75" stroke-linejoin="round" stroke-linecap="round">`);
    panel.series.forEach((s, i) => {
      const { colour, dash } = look(i, s);
      let d = "";
      let penDown = false;
      const drawn: [number, number][] = [];
      for (const [x, y] of s.points) {
        if (!Number.isFinite(x) || !ys.shows(y)) {
          penDown = false;
          continue;
        }
        drawn.push([x, y]);
        d += `${penDown ? "L" : "M"}${fmtCoord(px(x))} ${fmtCoord(py(y))}`;
        penDown = true;
      }
      out.push(
        `<path class="series" data-series="${escapeMarkup(s.name)}" d="${d}" stroke="${colour}"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`,
      );
      if (drawn.length > 0 && drawn.length <= MARKER_MAX_POINTS) {
        out.push(`<g fill="${colour}" stroke="none">`);
        for (const [x, y] of drawn)
          out.push(`<circle cx="${fmtCoord(px(x))}" cy="${fmtCoord(py(y))}" r="3"/>`);
        out.push(`</g>`);
      }
      if (s.yErrors) {
        out.push(`<g class="error-bars" stroke="${colour}" stroke-width="1.5">`);
        for (const [j, [x, y]] of s.points.entries()) {
          const bar = errorBar(s, j, panel.logY === true);
          if (!bar || !Number.isFinite(x) || !ys.shows(y)) continue;
          const [cx, lo, hi] = [px(x), py(bar[0]), py(bar[1])];
          out.push(
            `<line x1="${fmtCoord(cx)}" y1="${fmtCoord(lo)}" x2="${fmtCoord(cx)}" y2="${fmtCoord(hi)}"/>`,
            ...[lo, hi].map(
              (yy) =>
                `<line x1="${fmtCoord(cx - ERROR_CAP)}" y1="${fmtCoord(yy)}" x2="${fmtCoord(cx + ERROR_CAP)}" y2="${fmtCoord(yy)}"/>`,
            ),
          );
        }
        out.push(`</g>`);
      }
    });
    out.push(`</g>`);

    // The legend, outside the plot area so it never hides data.
    const listed = inLegend(panel);
    if (listed.length > 0 && panel.legend !== false) {
      const lx = onRight ? left + pw + 12 : left;
      const ly = onRight ? y0 : yb;
      const lw = onRight ? rightW : Math.min(width - MARGIN - left, legendWidth(shown[pi]!));
      out.push(
        `<rect class="legend" x="${fmtCoord(lx)}" y="${fmtCoord(ly)}" width="${fmtCoord(lw)}" height="${listed.length * LEGEND_ROW + 2 * LEGEND_PAD - 4}" fill="#ffffff" stroke="#cccccc"/>`,
      );
      listed.forEach(([s, at], i) => {
        const { colour, dash } = look(at, s);
        const y = ly + LEGEND_PAD - 2 + LEGEND_ROW * i + LEGEND_ROW / 2;
        out.push(
          `<line x1="${fmtCoord(lx + LEGEND_PAD)}" y1="${fmtCoord(y)}" x2="${fmtCoord(lx + LEGEND_PAD + SWATCH)}" y2="${fmtCoord(y)}" stroke="${colour}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`,
          `<text x="${fmtCoord(lx + LEGEND_PAD + SWATCH + 4)}" y="${fmtCoord(y + 4)}">${escapeMarkup(shown[pi]![i]!)}</text>`,
        );
      });
    }
    y0 += ph + below[pi]!;
  });
  out.push(`</svg>`);
  return out.join("\n");
}

/**
 * Series `i`'s colour (that of its `colour` index when it has one), and a dash pattern when asked
 * or past the palette's length.
 */
function look(i: number, s: LineSeries): { colour: string; dash: string } {
  const k = s.colour ?? i;
  return {
    colour: PALETTE[k % PALETTE.length]!,
    dash: s.dashed ? OVERLAY_DASH : DASHES[Math.floor(k / PALETTE.length) % DASHES.length]!,
  };
}

/** Half the width of an error bar's caps, in pixels. */
const ERROR_CAP = 5;

/** The series of a panel that its legend lists, each with its position in the panel. */
function inLegend(panel: LinePanel): [LineSeries, number][] {
  return panel.series.flatMap((s, i): [LineSeries, number][] => (s.legend === false ? [] : [[s, i]]));
}

/** Point `j`'s error bar `[low, high]` when it has one that the y axis can show, else null. */
function errorBar(s: LineSeries, j: number, logY: boolean): [number, number] | null {
  const e = s.yErrors?.[j];
  if (!e || !e.every((v) => Number.isFinite(v) && (!logY || v > 0))) return null;
  return [Math.min(e[0], e[1]), Math.max(e[0], e[1])];
}

/**
 * Renders the chart to a PNG of exactly `width`×`height` pixels at `path`, written atomically
 * (a viewer polling the file during training never sees a half-written image). Creates the
 * parent directory if needed.
 */
export async function writeLinePlot(path: string, spec: LinePlotSpec | PanelPlotSpec): Promise<void> {
  const svg = "panels" in spec ? svgPanelPlot(spec) : svgLinePlot(spec);
  // density 72 makes one SVG user unit one pixel, so the PNG has the requested size.
  const png = await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, png);
}
