/**
 * Sample grids: pictures of evaluations, shared by the trainer (samples/step-N.png), `anr eval`
 * and its super-resolution report. Images are shown as they are; fields in false colour.
 */
import { hconcat, vconcat, type HostImage } from "../data/image.js";
import { falseColour, finiteRange } from "../util/colormap.js";

/** A pair kept by an evaluation: the input and its reconstruction. */
export interface KeptPair {
  input: HostImage;
  pred: HostImage;
}

/** Inputs (top row) over reconstructions (bottom row). */
export function imageGrid(kept: KeptPair[]): HostImage {
  return vconcat([hconcat(kept.map((k) => k.input)), hconcat(kept.map((k) => k.pred))]);
}

/** Per channel, a row of true fields over a row of decoded ones, in false colour on the truth's range. */
export function fieldGrid(kept: KeptPair[], c: number): HostImage {
  const rows: HostImage[] = [];
  for (let k = 0; k < c; k++) {
    const ranges = kept.map((x) =>
      finiteRange(x.input.data.subarray(k * x.input.h * x.input.w, (k + 1) * x.input.h * x.input.w)),
    );
    const range: [number, number] = [
      Math.min(...ranges.map((r) => r[0])),
      Math.max(...ranges.map((r) => r[1])),
    ];
    rows.push(hconcat(kept.map((x) => falseColour(x.input, k, range))));
    rows.push(hconcat(kept.map((x) => falseColour(x.pred, k, range))));
  }
  return vconcat(rows);
}

/**
 * One row per field of a super-resolution evaluation, channel 0 in false colour on the truth's
 * range: input (enlarged without smoothing) | bilinear | decoded | truth. Null when nothing was kept.
 */
export function superResolutionGrid(
  kept: { input: HostImage; bilinear: HostImage; pred: HostImage; truth: HostImage }[],
): HostImage | null {
  const rows = kept.map((k) => {
    const { h, w } = k.truth;
    const range = finiteRange(k.truth.data.subarray(0, h * w));
    return hconcat([
      falseColour(resizeNearest(k.input, h, w), 0, range),
      falseColour(k.bilinear, 0, range),
      falseColour(k.pred, 0, range),
      falseColour(k.truth, 0, range),
    ]);
  });
  return rows.length ? vconcat(rows) : null;
}

/** Nearest-neighbour enlargement, to show an input at the decoded size without smoothing it. */
function resizeNearest(img: HostImage, h: number, w: number): HostImage {
  const data = new Float32Array(img.c * h * w);
  for (let c = 0; c < img.c; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        data[(c * h + y) * w + x] =
          img.data[(c * img.h + Math.floor((y * img.h) / h)) * img.w + Math.floor((x * img.w) / w)]!;
  return { c: img.c, h, w, data };
}
