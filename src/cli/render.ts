/**
 * `anr render`: novel views of an object from its support views — R-tokens from the posed
 * support views, then the ANR radiance field volume-rendered from new cameras (an orbit, or the
 * object's own other views) — as PNG frames and an animated GIF.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { initBackend } from "../backend/index.js";
import { openLearnitObject, stackViews } from "../data/learnit.js";
import { hconcat, saveGif, savePng, type HostImage } from "../data/image.js";
import { loadModel } from "../io/files.js";
import { sizeHW } from "../model/config.js";
import { hyperNetwork } from "../model/model.js";
import { disposeParams, toDevice } from "../model/params.js";
import { createViewRenderer, viewsToDevice } from "../model/tasks.js";
import { orbitPoses } from "../rendering/rays.js";
import { InputError, UsageError } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import { checkWritable, defaultOut, done, resolveModelFile, sizeFrom, type Outcome } from "./common.js";

/** `anr render`'s options. */
export interface RenderOptions {
  model: string;
  views: string;
  support?: number[];
  poses: "orbit" | "views";
  frames: number;
  size?: [number, number];
  scale?: number;
  samples: number;
  near: number;
  far: number;
  out?: string;
}

/**
 * Novel views of the object in `views`: R-tokens from its support views, then the radiance field
 * rendered from an orbit or from the object's other views (beside their truth), as frame-NNN.png,
 * orbit.gif and support.png in `--out` (default out/render-<object>).
 */
export async function cmdRender(o: RenderOptions): Promise<Outcome> {
  if (o.far <= o.near)
    throw new UsageError(`--near ${o.near} --far ${o.far}: the far depth must lie beyond the near one`);
  const out = o.out ?? defaultOut("render", o.views);
  await checkWritable(out, { flag: "--out" });
  await initBackend();
  const path = (await resolveModelFile(o.model, "online")).path;
  const { config, weights } = await loadModel(path);
  if (config.tokenizer.name !== "nvs_tokenizer")
    throw new InputError(path, `not a view-synthesis model (tokenizer ${config.tokenizer.name})`);
  const [h, w] = sizeHW(config.tokenizer.args.input_size);
  const [H, W] = sizeFrom(o, [h, w]) ?? [h, w];
  const obj = await openLearnitObject(o.views, h === w ? h : undefined);
  const supportIdx = o.support ?? [0, 1, 2].filter((i) => i < obj.nViews);
  const outside = supportIdx.filter((i) => i >= obj.nViews);
  if (outside.length)
    throw new UsageError(`--support ${supportIdx.join(",")}: ${o.views} has views 0 to ${obj.nViews - 1}`);
  const support = await Promise.all(supportIdx.map((i) => obj.view(i)));
  const sv = stackViews([support]);
  const P = toDevice(weights);
  const gen = hyperNetwork(P, config, viewsToDevice(sv));
  // The focal length in pixels grows with the image: the same field of view at another size.
  const zoom = (f: [number, number]): [number, number] => [(f[0] * W) / w, (f[1] * H) / h];
  const render = createViewRenderer(config, { chunk: 1024, nSamples: o.samples, near: o.near, far: o.far });
  let cameras: { pose: Float32Array; focal: [number, number]; truth?: HostImage }[];
  if (o.poses === "orbit") {
    cameras = orbitPoses(
      support.map((v) => v.pose),
      o.frames,
    ).map((pose) => ({ pose, focal: zoom(support[0]!.focal) }));
  } else {
    const others = [...Array(obj.nViews).keys()].filter((i) => !supportIdx.includes(i));
    cameras = await Promise.all(
      others.map(async (i) => {
        const v = await obj.view(i);
        return { pose: v.pose, focal: zoom(v.focal), truth: v.img };
      }),
    );
  }
  await mkdir(out, { recursive: true });
  const frames: HostImage[] = [];
  const files: string[] = [];
  const t0 = performance.now();
  const progress = new Progress({ total: cameras.length, label: "render", rate: { unit: "views", per: 1 } });
  for (const [i, cam] of cameras.entries()) {
    const rgb = await render(P, gen, cam.pose, cam.focal, H, W);
    const frame: HostImage = { c: 3, h: H, w: W, data: rgb };
    const file = join(out, `frame-${String(i).padStart(3, "0")}.png`);
    await savePng(
      file,
      cam.truth && cam.truth.h === H && cam.truth.w === W ? hconcat([frame, cam.truth]) : frame,
    );
    frames.push(frame);
    files.push(file);
    progress.update(i + 1);
  }
  progress.done();
  render.dispose();
  disposeParams(gen);
  disposeParams(P);
  await savePng(join(out, "support.png"), hconcat(support.map((v) => v.img)));
  await saveGif(join(out, "orbit.gif"), frames);
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `rendered ${cameras.length} view(s) at ${H}×${W} in ${seconds.toFixed(1)} s → ${out}/ (frame-*.png, orbit.gif, support.png)`,
  );
  return done({
    out,
    size: [H, W],
    views: cameras.length,
    support: supportIdx,
    files: [...files, join(out, "orbit.gif"), join(out, "support.png")],
    seconds,
  });
}
