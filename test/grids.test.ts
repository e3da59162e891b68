/**
 * Labelled grids: the images land pixel for pixel where the layout says, under a caption strip per
 * column (and beside a label per row), drawn at the picture's final size. The text itself depends
 * on the fonts installed: with DejaVu Sans (the font the widths are measured for) the ink of each
 * caption is checked to lie inside its own column; without it, only the strips are.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import sharp from "sharp";
import { pngBytes, type HostImage } from "../src/data/image.js";
import {
  CAPTION_STRIP,
  fieldGrid,
  gridLayout,
  gridPng,
  imageGrid,
  labelledGrid,
  superResolutionGrid,
} from "../src/eval/grids.js";
import { skipWithoutData } from "./fixtures.js";

const HAS_DEJAVU = /DejaVu Sans/.test(
  spawnSync("fc-list", [":", "family"], { encoding: "utf8" }).stdout ?? "",
);

/** A `c`×`h`×`w` image of one value per channel. */
function flat(h: number, w: number, rgb: [number, number, number]): HostImage {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) data.fill(rgb[c]!, c * h * w, (c + 1) * h * w);
  return { c: 3, h, w, data };
}

/** A PNG as RGB bytes (HWC) and its size. */
async function rgb(png: Buffer): Promise<{ w: number; h: number; px: Buffer }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { w: info.width, h: info.height, px: data };
}

/** Dark (text) pixels in rows [y0, y1) and columns [x0, x1). */
function ink(img: { w: number; px: Buffer }, y0: number, y1: number, x0: number, x1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (img.px[(y * img.w + x) * 3]! < 120) n++;
  return n;
}

const RED: [number, number, number] = [1, 0, 0];
const GREEN: [number, number, number] = [0, 1, 0];
const BLUE: [number, number, number] = [0, 0, 1];

test("grid: captions span their columns and rows; a wrong count of captions is refused", () => {
  const g = labelledGrid(
    [
      [flat(4, 6, RED), flat(4, 5, GREEN), flat(4, 6, BLUE)],
      [flat(3, 6, BLUE), flat(3, 5, RED), flat(3, 6, GREEN)],
    ],
    { columns: ["a", "b", "c"], rows: ["top", "bottom"] },
  );
  assert.deepEqual([g.h, g.w], [4 + 2 + 3, 6 + 2 + 5 + 2 + 6]);
  assert.deepEqual(g.captions!.columns, [
    { text: "a", start: 0, size: 6 },
    { text: "b", start: 8, size: 5 },
    { text: "c", start: 15, size: 6 },
  ]);
  assert.deepEqual(g.captions!.rows, [
    { text: "top", start: 0, size: 4 },
    { text: "bottom", start: 6, size: 3 },
  ]);
  assert.throws(
    () => labelledGrid([[flat(2, 2, RED)]], { columns: ["a", "b"] }),
    /2 column captions for 1 column/,
  );
  assert.equal(labelledGrid([[flat(2, 2, RED)]]).captions, undefined, "no captions asked, none kept");
});

test("grid: without captions, the bytes of the plain PNG", async () => {
  const img = labelledGrid([[flat(3, 4, RED), flat(3, 4, BLUE)]]);
  assert.ok((await gridPng(img, 3)).equals(await pngBytes(img, img.w * 3, img.h * 3)));
});

test("grid: images enlarged exactly under the caption strip, each caption inside its column", async (t) => {
  const cells = [[flat(8, 8, RED), flat(8, 8, GREEN), flat(8, 8, BLUE), flat(8, 8, [1, 1, 1])]];
  // The second caption is far too long for its 32-pixel column: it shrinks, then is cut.
  const captions = ["input 8²", "bicubic ×4 and a much longer tail", "ANR ×4", "truth"];
  const g = labelledGrid(cells, { columns: captions });
  const scale = 4;
  const png = await gridPng(g, scale);
  const img = await rgb(png);
  const { left, top, width, height } = gridLayout(g, scale);
  assert.deepEqual([left, top], [0, CAPTION_STRIP]);
  assert.deepEqual([img.w, img.h], [width, height]);
  assert.deepEqual([width, height], [(4 * 8 + 3 * 2) * scale, CAPTION_STRIP + 8 * scale]);
  // The images, pixel for pixel, as the plain enlargement has them.
  const plain = await rgb(await pngBytes(g, g.w * scale, g.h * scale));
  for (let y = 0; y < plain.h; y++)
    for (let x = 0; x < plain.w; x++)
      for (let c = 0; c < 3; c++)
        if (img.px[((y + top) * img.w + x) * 3 + c] !== plain.px[(y * plain.w + x) * 3 + c])
          assert.fail(`pixel (${x}, ${y}) moved or changed under the strip`);
  // A strip over each column, set off from the white background.
  for (const c of g.captions!.columns) {
    const mid = (c.start + c.size / 2) * scale;
    assert.ok(img.px[(4 * img.w + mid) * 3]! < 245, `a strip over "${c.text}"`);
  }
  if (skipWithoutData(t, HAS_DEJAVU, "the DejaVu Sans font (Debian fonts-dejavu-core), to check the text"))
    return;
  for (const c of g.captions!.columns) {
    const [x0, x1] = [c.start * scale, (c.start + c.size) * scale];
    assert.ok(ink(img, 0, top, x0, x1) > 10, `"${c.text}" is written`);
    // Nothing in the gaps between the columns: no caption runs into its neighbour.
    assert.equal(ink(img, 0, top, x1, Math.min(img.w, x1 + 2 * scale)), 0, `"${c.text}" stays in its column`);
  }
});

test("grid: the evaluation grids label their rows and columns", async (t) => {
  const kept = [0, 1, 2].map(() => ({ input: flat(8, 8, RED), pred: flat(8, 8, GREEN) }));
  assert.deepEqual(
    imageGrid(kept).captions!.rows.map((r) => r.text),
    ["input", "decoded"],
  );
  assert.deepEqual(
    fieldGrid(kept, 2, ["u", "v"]).captions!.rows.map((r) => r.text),
    ["truth u", "decoded u", "truth v", "decoded v"],
  );
  const field = (h: number, w: number): HostImage => ({
    c: 1,
    h,
    w,
    data: Float32Array.from({ length: h * w }, (_, i) => i / (h * w)),
  });
  const sr = superResolutionGrid([
    { input: field(8, 16), bilinear: field(32, 64), pred: field(32, 64), truth: field(32, 64) },
  ])!;
  assert.deepEqual(
    sr.captions!.columns.map((c) => c.text),
    ["input 8×16", "bilinear ×4", "decoded ×4", "truth 32×64"],
  );
  assert.equal(superResolutionGrid([]), null);
  // Row labels sit left of the images, which move right by the labels' width.
  const g = imageGrid(kept);
  const { left, top } = gridLayout(g, 4);
  assert.ok(left > 0 && top === 0);
  const img = await rgb(await gridPng(g, 4));
  assert.deepEqual(
    [img.px[(5 * img.w + left) * 3], img.px[(5 * img.w + left) * 3 + 1]],
    [255, 0],
    "red input",
  );
  if (skipWithoutData(t, HAS_DEJAVU, "the DejaVu Sans font (Debian fonts-dejavu-core), to check the text"))
    return;
  assert.ok(ink(img, 0, 32, 0, left) > 10 && ink(img, 34, 66, 0, left) > 10, "both rows labelled");
});
