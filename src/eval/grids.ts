/**
 * Sample grids: pictures of evaluations, shared by the trainer (samples/step-N.png), `anr eval`,
 * its super-resolution pictures and the demo. Images are shown as they are; fields in false colour.
 * A grid carries its captions (a strip over each column, a label beside each row), drawn when it
 * is written ({@link gridPng}, {@link saveGrid}) at the picture's final size, so that the text
 * stays sharp however much the images are enlarged.
 */
import sharp from "sharp";
import { hconcat, pngBytes, vconcat, type HostImage } from "../data/image.js";
import { falseColour, finiteRange } from "../util/colormap.js";
import { writeFileAtomic } from "../util/fs.js";
import { escapeMarkup, fitText, FONT_FAMILY, textWidth } from "../util/plot.js";

/** A caption of a column (or a row): its text, and the span it names in image pixels. */
export interface Caption {
  text: string;
  /** First pixel of the span (x for a column, y for a row). */
  start: number;
  /** Length of the span in pixels. */
  size: number;
}

/**
 * An image with captions: a grid built by {@link labelledGrid}. Any HostImage is one (with no
 * captions), so a grid passes wherever an image does, and keeps its captions until it is written.
 */
export interface LabelledImage extends HostImage {
  captions?: {
    /** Over the columns, left to right. */
    columns: Caption[];
    /** Beside the rows, top to bottom. */
    rows: Caption[];
    /** A line of small print under the picture (e.g. an attribution). */
    note?: string;
  };
}

/** Cells in rows and columns, and the text of their captions. */
export interface GridCaptions {
  /** One per column (of the longest row). */
  columns?: string[];
  /** One per row. */
  rows?: string[];
  /** A line under the picture. */
  note?: string;
}

/**
 * Cells in rows (each row side by side, the rows stacked, with `gap` pixels between), with a
 * caption per column and per row where given: "" leaves one out, and a list of another length
 * than the columns (or rows) is an error.
 */
export function labelledGrid(cells: HostImage[][], captions: GridCaptions = {}, gap = 2): LabelledImage {
  if (!cells.length || cells.some((r) => !r.length))
    throw new RangeError("a grid needs at least one cell per row");
  const widest = cells.reduce((a, r) => (r.length > a.length ? r : a));
  const heights = cells.map((r) => Math.max(...r.map((c) => c.h)));
  const along = (sizes: number[], texts: string[] | undefined, what: string): Caption[] => {
    if (!texts) return [];
    if (texts.length !== sizes.length)
      throw new RangeError(`${texts.length} ${what} captions for ${sizes.length} ${what}s`);
    let start = 0;
    return sizes.map((size, i) => {
      const c = { text: texts[i]!, start, size };
      start += size + gap;
      return c;
    });
  };
  const image = vconcat(
    cells.map((r) => hconcat(r, gap)),
    gap,
  );
  const columns = along(
    widest.map((c) => c.w),
    captions.columns,
    "column",
  );
  const rows = along(heights, captions.rows, "row");
  return columns.length || rows.length || captions.note
    ? { ...image, captions: { columns, rows, ...(captions.note ? { note: captions.note } : {}) } }
    : image;
}

/** Caption text size in pixels, and the smallest it shrinks to in a narrow column before it is cut. */
const CAPTION_FONT = 12;
const CAPTION_FONT_MIN = 9;
/** The height of the strip over the columns, and of the line of small print under the picture. */
export const CAPTION_STRIP = 20;
const NOTE_LINE = 16;
const STRIP_FILL = "#ececec";

/**
 * Where the images lie in the picture of `img` enlarged `scale` times: the caption strip above
 * them, the row labels left of them and the note under them take the rest.
 */
export function gridLayout(
  img: LabelledImage,
  scale = 1,
): { left: number; top: number; width: number; height: number } {
  const cap = img.captions;
  const rowText = cap?.rows.filter((r) => r.text) ?? [];
  const left = rowText.length
    ? Math.ceil(Math.max(...rowText.map((r) => textWidth(r.text, CAPTION_FONT)))) + 14
    : 0;
  const top = cap?.columns.some((c) => c.text) ? CAPTION_STRIP : 0;
  const foot = cap?.note ? NOTE_LINE : 0;
  return { left, top, width: left + img.w * scale, height: top + img.h * scale + foot };
}

/** `text` in a box `room` pixels wide: smaller type where it is narrow, then cut with "…". */
function fitted(text: string, room: number): { text: string; size: number } {
  for (let size = CAPTION_FONT; size >= CAPTION_FONT_MIN; size--)
    if (textWidth(text, size) <= room) return { text, size };
  return { text: fitText(text, room, CAPTION_FONT_MIN), size: CAPTION_FONT_MIN };
}

/**
 * A grid (or any image) as PNG bytes, enlarged `scale` times without smoothing, under its caption
 * strip and beside its row labels; values clamped to [0, 1]. An image without captions gives the
 * bytes {@link pngBytes} gives.
 */
export async function gridPng(img: LabelledImage, scale = 1): Promise<Buffer> {
  const image = await pngBytes(img, img.w * scale, img.h * scale);
  const cap = img.captions;
  if (!cap) return image;
  const { left, top, width, height } = gridLayout(img, scale);
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}" fill="#222222">`,
  ];
  for (const c of cap.columns) {
    if (!c.text) continue;
    const [x, w] = [left + c.start * scale, c.size * scale];
    const t = fitted(c.text, w - 4);
    svg.push(
      `<rect x="${x}" y="0" width="${w}" height="${CAPTION_STRIP - 2}" fill="${STRIP_FILL}"/>`,
      `<text x="${x + w / 2}" y="${CAPTION_STRIP - 6}" font-size="${t.size}" text-anchor="middle">${escapeMarkup(t.text)}</text>`,
    );
  }
  for (const r of cap.rows) {
    if (!r.text) continue;
    const [y, h] = [top + r.start * scale, r.size * scale];
    svg.push(
      `<rect x="0" y="${y}" width="${left - 2}" height="${h}" fill="${STRIP_FILL}"/>`,
      `<text x="${left - 8}" y="${y + h / 2 + CAPTION_FONT * 0.35}" font-size="${CAPTION_FONT}" text-anchor="end">${escapeMarkup(r.text)}</text>`,
    );
  }
  if (cap.note)
    svg.push(
      `<text x="2" y="${height - 4}" font-size="10" fill="#555555">${escapeMarkup(fitText(cap.note, width - 4, 10))}</text>`,
    );
  svg.push(`</svg>`);
  return sharp({ create: { width, height, channels: 3, background: "#ffffff" } })
    .composite([
      { input: Buffer.from(svg.join("\n")), left: 0, top: 0 },
      { input: image, left, top },
    ])
    .png()
    .toBuffer();
}

/** Write a grid as {@link gridPng} draws it, atomically. */
export async function saveGrid(path: string, img: LabelledImage, scale = 1): Promise<void> {
  await writeFileAtomic(path, await gridPng(img, scale));
}

/** A pair kept by an evaluation: the input and its reconstruction. */
export interface KeptPair {
  input: HostImage;
  pred: HostImage;
}

/** Inputs (top row) over reconstructions (bottom row), labelled `rows` (default "input", "decoded"). */
export function imageGrid(kept: KeptPair[], rows: [string, string] = ["input", "decoded"]): LabelledImage {
  return labelledGrid([kept.map((k) => k.input), kept.map((k) => k.pred)], { rows });
}

/**
 * Per channel, a row of true fields over a row of decoded ones, in false colour on the truth's
 * range; the rows are labelled with the channels' `names` (default "channel 0", "channel 1", …).
 */
export function fieldGrid(kept: KeptPair[], c: number, names?: string[]): LabelledImage {
  const rows: HostImage[][] = [];
  const labels: string[] = [];
  for (let k = 0; k < c; k++) {
    const ranges = kept.map((x) =>
      finiteRange(x.input.data.subarray(k * x.input.h * x.input.w, (k + 1) * x.input.h * x.input.w)),
    );
    const range: [number, number] = [
      Math.min(...ranges.map((r) => r[0])),
      Math.max(...ranges.map((r) => r[1])),
    ];
    rows.push(kept.map((x) => falseColour(x.input, k, range)));
    rows.push(kept.map((x) => falseColour(x.pred, k, range)));
    const name = names?.[k] ?? (c === 1 ? "" : `channel ${k}`);
    labels.push(`truth ${name}`.trim(), `decoded ${name}`.trim());
  }
  return labelledGrid(rows, { rows: labels });
}

/** A size as a caption says it: "32²" for a square, else "48×64" (height × width). */
export function sizeText(h: number, w: number): string {
  return h === w ? `${h}²` : `${h}×${w}`;
}

/** The enlargement from `from` to `to` pixels as a caption says it: "×4", or "×2.5". */
function factorText(from: number, to: number): string {
  return `×${Number((to / from).toFixed(2))}`;
}

/**
 * One row per field of a super-resolution evaluation, channel 0 in false colour on the truth's
 * range: input (enlarged without smoothing) | bilinear | decoded | truth, under `columns` (default
 * e.g. "input 16×32 | bilinear ×4 | decoded ×4 | truth 64×128", from the sizes). Null when nothing
 * was kept.
 */
export function superResolutionGrid(
  kept: { input: HostImage; bilinear: HostImage; pred: HostImage; truth: HostImage }[],
  columns?: [string, string, string, string],
): LabelledImage | null {
  if (!kept.length) return null;
  const rows = kept.map((k) => {
    const { h, w } = k.truth;
    const range = finiteRange(k.truth.data.subarray(0, h * w));
    return [
      falseColour(resizeNearest(k.input, h, w), 0, range),
      falseColour(k.bilinear, 0, range),
      falseColour(k.pred, 0, range),
      falseColour(k.truth, 0, range),
    ];
  });
  const { input, truth } = kept[0]!;
  const f = factorText(input.h, truth.h);
  return labelledGrid(rows, {
    columns: columns ?? [
      `input ${sizeText(input.h, input.w)}`,
      `bilinear ${f}`,
      `decoded ${f}`,
      `truth ${sizeText(truth.h, truth.w)}`,
    ],
  });
}

/** Nearest-neighbour enlargement, to show an input at a larger size without smoothing it. */
export function resizeNearest(img: HostImage, h: number, w: number): HostImage {
  if (img.h === h && img.w === w) return img;
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        data[(c * h + y) * w + x] =
          img.data[(c * img.h + Math.floor((y * img.h) / h)) * img.w + Math.floor((x * img.w) / w)]!;
  return { c: img.c, h, w, data };
}
