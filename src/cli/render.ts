/**
 * `anr render`: novel views of an object from its support views — R-tokens from the posed
 * support views, then the ANR radiance field volume-rendered from new cameras (an orbit, or the
 * object's own other views) — as PNG frames and an animated GIF.
 */
import { parseArgs } from "node:util";
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
import { lookAtPose } from "../rendering/rays.js";
import { UsageError } from "../util/errors.js";

export const RENDER_USAGE = `anr render --model MODEL --views OBJECT_DIR [options]

OBJECT_DIR holds transforms.json and r_*.png (the learnit layout). Writes frame-NNN.png, orbit.gif
and support.png to --out.

Options:
  --support 0,1,2      support view indices (default: the first n the model was trained with, 3)
  --poses orbit|views  an orbit around the object (default), or the object's other views
  --frames N           orbit frames (default 24)
  --size S             rendered size (default: the model's input size)
  --samples N          samples per ray (default 64)
  --near N --far N     depth range (default 2, 6)
  --out DIR            output folder (default render/)

Example:
  anr render --model runs/cars --views data/cars/1a0bc9ab92c915167ae33d942430658c --poses orbit --size 128`;

/** Orbit cameras at the support cameras' mean distance and elevation. */
export function orbitPoses(support: Float32Array[], frames: number): Float32Array[] {
  const eyes = support.map((p) => [p[3]!, p[7]!, p[11]!]);
  const r = eyes.reduce((s, e) => s + Math.hypot(...e), 0) / eyes.length;
  const el = eyes.reduce((s, e) => s + Math.asin(e[2]! / Math.hypot(...e)), 0) / eyes.length;
  return [...Array(frames).keys()].map((i) => {
    const az = (2 * Math.PI * i) / frames;
    return lookAtPose([r * Math.cos(el) * Math.cos(az), r * Math.cos(el) * Math.sin(az), r * Math.sin(el)]);
  });
}

export async function cmdRender(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      views: { type: "string" },
      support: { type: "string" },
      poses: { type: "string", default: "orbit" },
      frames: { type: "string", default: "24" },
      size: { type: "string" },
      samples: { type: "string", default: "64" },
      near: { type: "string", default: "2" },
      far: { type: "string", default: "6" },
      out: { type: "string", default: "render" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError(RENDER_USAGE, 0);
  if (!values.model || !values.views) throw new UsageError(RENDER_USAGE);
  await initBackend();
  const path = values.model.endsWith(".safetensors") ? values.model : join(values.model, "model.safetensors");
  const { config, weights } = await loadModel(path);
  if (config.tokenizer.name !== "nvs_tokenizer")
    throw new UsageError(`${path}: not a view-synthesis model (tokenizer ${config.tokenizer.name})`);
  const [h, w] = sizeHW(config.tokenizer.args.input_size);
  const obj = await openLearnitObject(values.views, h === w ? h : undefined);
  const supportIdx = values.support
    ? values.support.split(",").map(Number)
    : [0, 1, 2].filter((i) => i < obj.nViews);
  const support = await Promise.all(supportIdx.map((i) => obj.view(i)));
  const sv = stackViews([support]);
  const P = toDevice(weights);
  const gen = hyperNetwork(P, config, viewsToDevice(sv));
  const size = values.size ? Number(values.size) : h;
  const scale = size / w;
  const render = createViewRenderer(config, {
    chunk: 1024,
    nSamples: Number(values.samples),
    near: Number(values.near),
    far: Number(values.far),
  });
  let cameras: { pose: Float32Array; focal: [number, number]; truth?: HostImage }[];
  if (values.poses === "orbit") {
    cameras = orbitPoses(
      support.map((v) => v.pose),
      Number(values.frames),
    ).map((pose) => ({ pose, focal: [support[0]!.focal[0] * scale, support[0]!.focal[1] * scale] }));
  } else if (values.poses === "views") {
    const others = [...Array(obj.nViews).keys()].filter((i) => !supportIdx.includes(i));
    cameras = await Promise.all(
      others.map(async (i) => {
        const v = await obj.view(i);
        return {
          pose: v.pose,
          focal: [v.focal[0] * scale, v.focal[1] * scale] as [number, number],
          truth: v.img,
        };
      }),
    );
  } else throw new UsageError(`--poses must be orbit or views, not ${values.poses}`);
  await mkdir(values.out, { recursive: true });
  const frames: HostImage[] = [];
  const t0 = performance.now();
  for (const [i, cam] of cameras.entries()) {
    const rgb = await render(P, gen, cam.pose, cam.focal, size, size);
    const frame: HostImage = { c: 3, h: size, w: size, data: rgb };
    const file = join(values.out, `frame-${String(i).padStart(3, "0")}.png`);
    await savePng(file, cam.truth && cam.truth.h === size ? hconcat([frame, cam.truth]) : frame);
    frames.push(frame);
    process.stderr.write(`\rrendered ${i + 1}/${cameras.length}`);
  }
  process.stderr.write("\n");
  render.dispose();
  disposeParams(gen);
  disposeParams(P);
  await savePng(join(values.out, "support.png"), hconcat(support.map((v) => v.img)));
  await saveGif(join(values.out, "orbit.gif"), frames);
  console.log(
    `rendered ${cameras.length} view(s) at ${size}×${size} in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${values.out}/ (frame-*.png, orbit.gif, support.png)`,
  );
  return 0;
}
