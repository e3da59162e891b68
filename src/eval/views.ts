/**
 * Evaluation of view synthesis (the TransINR protocol, or the ANR reference's): per test object,
 * random support/query draws; the query view is rendered with deterministic depths and compared
 * with its image (PSNR in [0, 1], SSIM).
 */
import { psnrUnit, type HostImage } from "../data/image.js";
import { labelledGrid } from "./grids.js";
import { sampleViews, stackViews, type MultiViewDataset, type MultiViewObject } from "../data/learnit.js";
import type { HyperNetworkConfig } from "../model/config.js";
import { hyperNetwork, type Params } from "../model/model.js";
import { disposeParams } from "../model/params.js";
import { createViewRenderer, viewsToDevice } from "../model/tasks.js";
import { Rng, mixSeed } from "../util/rng.js";
import type { EvalOutcome } from "./evaluate.js";
import { ssim } from "./ssim.js";

/** Options of {@link evaluateViews} (a run's nerf and eval settings, as plain values). */
export interface ViewEvalArgs {
  /** Evaluate the first n objects of the split. */
  objects: number;
  /** Support views per draw. */
  nSupport: number;
  /** Support/query draws per object. */
  pairs: number;
  /**
   * "transinr": draws over all views, the whole query view rendered. "anr": draws from
   * `viewRange` as in training, the query rendered at stride `downsample` from a random phase.
   */
  protocol: "transinr" | "anr";
  viewRange: [number, number];
  downsample: number;
  /** Samples per ray. */
  nSamples: number;
  /** Rays rendered at once. */
  chunk: number;
  /** Clamp renders to [0, 1] before the metrics. */
  clamp: boolean;
  /** Keep up to 4 rows (first support view | render | truth) for a picture. */
  grid: boolean;
}

/** Evaluate (borrowed) parameters on the first `args.objects` objects of `ds`. */
export async function evaluateViews(
  P: Params,
  cfg: HyperNetworkConfig,
  ds: MultiViewDataset,
  args: ViewEvalArgs,
): Promise<EvalOutcome> {
  const [h, w] = ds.size;
  const anr = args.protocol === "anr";
  const views = async (obj: MultiViewObject, idx: number[]) => Promise.all(idx.map((i) => obj.view(i)));
  const render = createViewRenderer(cfg, {
    chunk: args.chunk,
    nSamples: args.nSamples,
    near: ds.near,
    far: ds.far,
  });
  const per: { id: string; psnr: number; ssim: number }[] = [];
  const rows: HostImage[][] = [];
  try {
    for (let i = 0; i < args.objects; i++) {
      const obj = ds.object(i);
      for (let pair = 0; pair < args.pairs; pair++) {
        const rng = new Rng(mixSeed(0x5eed, i, pair));
        const range: [number, number] | undefined = anr
          ? [args.viewRange[0], Math.min(args.viewRange[1], obj.nViews)]
          : undefined;
        const pick = sampleViews(obj.nViews, rng, { nSupport: args.nSupport, nQuery: 1, range });
        const sv = stackViews([await views(obj, pick.support)]);
        const qv = (await views(obj, pick.query))[0]!;
        const gen = hyperNetwork(P, cfg, viewsToDevice(sv));
        const sub = anr ? stridedPixels(h, w, args.downsample, rng) : null;
        const rgb = await render(P, gen, qv.pose, qv.focal, h, w, sub?.pixels);
        disposeParams(gen);
        const pred = args.clamp ? rgb.map((x) => Math.min(1, Math.max(0, x))) : rgb;
        const truth = sub ? gatherPixels(qv.img.data, h * w, sub.pixels) : qv.img.data;
        per.push({
          id: `${obj.id}#${pick.query[0]}`,
          psnr: psnrUnit(pred, truth),
          ssim: sub ? ssim(pred, truth, 3, sub.rows, sub.cols) : ssim(pred, truth, 3, h, w),
        });
        if (args.grid && rows.length < 4 && pair === 0) {
          const first = (await views(obj, [pick.support[0]!]))[0]!.img;
          const [ph, pw] = sub ? [sub.rows, sub.cols] : [h, w];
          rows.push([first, { c: 3, h: ph, w: pw, data: pred }, { c: 3, h: ph, w: pw, data: truth }]);
        }
      }
    }
  } finally {
    render.dispose();
  }
  const mean = (f: (x: (typeof per)[number]) => number) =>
    per.reduce((a, x) => a + f(x), 0) / Math.max(1, per.length);
  return {
    psnr: mean((x) => x.psnr),
    ssim: mean((x) => x.ssim),
    images: per.length,
    report: {
      split: ds.name,
      protocol: anr
        ? `anr: support/query drawn from views [${args.viewRange}) as in training, query rendered at stride ${args.downsample} from a random phase (the reference's infer_nerf), ${args.pairs} draw(s) per object`
        : `transinr: ${args.pairs} random support/query draw(s) per object over all views, full-image PSNR`,
      images: per.length,
      psnr: mean((x) => x.psnr),
      ssim: mean((x) => x.ssim),
      perImage: per,
    },
    grid: rows.length ? labelledGrid(rows, { columns: ["support view", "rendered", "truth"] }) : null,
  };
}

/** Row-major indices of every `stride`-th pixel in both directions, from a random phase: a rows × cols grid. */
function stridedPixels(
  h: number,
  w: number,
  stride: number,
  rng: Rng,
): { pixels: Int32Array; rows: number; cols: number } {
  const [y0, x0] = [rng.int(stride), rng.int(stride)];
  const out: number[] = [];
  for (let y = y0; y < h; y += stride) for (let x = x0; x < w; x += stride) out.push(y * w + x);
  return {
    pixels: Int32Array.from(out),
    rows: Math.ceil((h - y0) / stride),
    cols: Math.ceil((w - x0) / stride),
  };
}

/** (3, n) values of `pixels` from a (3, H·W) image. */
function gatherPixels(img: Float32Array, hw: number, pixels: Int32Array): Float32Array {
  const out = new Float32Array(3 * pixels.length);
  for (let c = 0; c < 3; c++)
    for (let k = 0; k < pixels.length; k++) out[c * pixels.length + k] = img[c * hw + pixels[k]!]!;
  return out;
}
