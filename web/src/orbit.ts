/**
 * The orbit viewer of view-synthesis (NeRF) models: an object of the shipped multi-view set
 * (data/multiview), its support views encoded by the worker, and new views rendered from a camera
 * that the user drags around the object, as `anr render` renders its orbit (the camera looks at the
 * origin, world up +z; 2 to 6 along each ray). While dragging, frames are rendered at half the
 * resolution (a quarter of the rays); when the pointer is released, at full resolution. One frame
 * renders at a time: moves during a render coalesce into the next one.
 */
import type { Camera, Views } from "./protocol.js";
import { pixelsToCanvas, viewToPixels } from "./pixels.js";
import { CoalescedTask } from "./coalesce.js";

interface Transforms {
  camera_angle_x: number;
  frames: { file_path: string; transform_matrix: number[][] }[];
}

const DATA = "../../data/multiview/";
const TRANSFORMS = import.meta.glob<Transforms>("../../data/multiview/objects/*/transforms.json", {
  eager: true,
  import: "default",
});
const IMAGES = import.meta.glob<string>("../../data/multiview/objects/*/*.png", {
  query: "?url",
  import: "default",
  eager: true,
});
const SPLITS = import.meta.glob<{ train: string[]; test: string[] }>(
  "../../data/multiview/objects_splits.json",
  { eager: true, import: "default" },
)[`${DATA}objects_splits.json`];

/** One object of the shipped multi-view set: its views' URLs and camera-to-world poses. */
export interface ShippedObject {
  id: string;
  /** In the test split: the shipped NeRF model never saw it. */
  heldOut: boolean;
  cameraAngleX: number;
  views: { url: string; pose: Float32Array }[];
}

/** The shipped objects, the held-out ones first. */
export const OBJECTS: ShippedObject[] = Object.entries(TRANSFORMS)
  .map(([path, t]) => {
    const dir = path.slice(0, path.lastIndexOf("/") + 1);
    const id = dir.slice(`${DATA}objects/`.length, -1);
    return {
      id,
      heldOut: SPLITS?.test.includes(id) ?? false,
      cameraAngleX: t.camera_angle_x,
      views: t.frames.map((f) => {
        // Blender's file_path is relative and usually has no extension.
        const file = f.file_path.replace(/^\.\//, "");
        const url = IMAGES[`${dir}${/\.png$/i.test(file) ? file : `${file}.png`}`];
        if (!url) throw new Error(`${id}: no image ${file} in the shipped multi-view set`);
        return { url, pose: Float32Array.from(f.transform_matrix.slice(0, 3).flat()) };
      }),
    };
  })
  .sort((a, b) => Number(b.heldOut) - Number(a.heldOut) || a.id.localeCompare(b.id));

/**
 * Support views `indices` of `object` at the model's size × size, as the data loader makes them
 * (composited on white, focal scaled with the resize).
 */
export async function supportViews(object: ShippedObject, indices: number[], size: number): Promise<Views> {
  const n = indices.length;
  const views: Views = {
    pixels: new Float32Array(n * 3 * size * size),
    poses: new Float32Array(n * 12),
    focals: new Float32Array(n * 2),
  };
  for (const [k, i] of indices.entries()) {
    const view = object.views[i];
    if (!view) throw new Error(`${object.id} has views 0 to ${object.views.length - 1}, not ${i}`);
    const res = await fetch(view.url);
    if (!res.ok) throw new Error(`${view.url}: HTTP ${res.status}`);
    const { pixels, width } = await viewToPixels(await res.blob(), size);
    views.pixels.set(pixels, k * 3 * size * size);
    views.poses.set(view.pose, k * 12);
    // The loader's arithmetic: the focal at the file's width, scaled to the model's.
    const f = (0.5 * width) / Math.tan(0.5 * object.cameraAngleX);
    views.focals.set([(f * size) / width, (f * size) / width], k * 2);
  }
  return views;
}

/** A rendered frame and the camera it was rendered from. */
export interface OrbitFrame {
  /** (3, size, size) in [0, 1]. */
  rgb: Float32Array;
  size: number;
  /** The camera's pose (3×4, camera-to-world) and the rest of its settings. */
  pose: Float32Array;
  camera: Camera;
  azimuth: number;
  elevation: number;
  /** Whether it is a full-resolution frame (else a preview while dragging). */
  full: boolean;
  ms: number;
}

/** Renders the encoded object from a camera (the worker). */
export type ViewRenderer = (camera: Camera) => Promise<{ rgb: Float32Array; pose: Float32Array; ms: number }>;

/** The side of the frames rendered while dragging, for full frames of `size`². */
export const previewSize = (size: number): number => Math.max(8, Math.round(size / 2));

/** Elevation limit: at ±90° the camera's up (+z) is undefined. */
const MAX_ELEVATION = (85 * Math.PI) / 180;

export class OrbitView {
  /** The camera, in radians and world units (it looks at the origin). */
  azimuth = 0;
  elevation = 0;
  radius = 4;
  /** Full-resolution frame size, samples per ray and depth interval (as `anr render`). */
  size = 32;
  samples = 64;
  near = 2;
  far = 6;
  /** The frame on screen, how many previews were rendered and the last one's size (the tests read them). */
  frame: OrbitFrame | null = null;
  previews = 0;
  lastPreviewSize = 0;
  private renderer: ViewRenderer | null = null;
  /** The support views' focal at the model's input size, and that size. */
  private focal: [number, number] = [1, 1];
  private inputSize = 1;
  private dragging = false;
  private readonly renderLoop = new CoalescedTask(
    () => this.renderOnce(),
    (e) => {
      this.stats.textContent = `Rendering stopped: ${e instanceof Error ? e.message : String(e)}`;
    },
  );

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly stats: HTMLElement,
  ) {
    let last: { x: number; y: number } | null = null;
    canvas.addEventListener("pointerdown", (ev) => {
      last = { x: ev.offsetX, y: ev.offsetY };
      this.dragging = true;
      canvas.setPointerCapture(ev.pointerId);
    });
    canvas.addEventListener("pointermove", (ev) => {
      if (!last) return;
      // Half a turn per canvas width; dragging down looks from higher up.
      this.azimuth -= ((ev.offsetX - last.x) / canvas.clientWidth) * Math.PI;
      this.elevation = Math.min(
        MAX_ELEVATION,
        Math.max(-MAX_ELEVATION, this.elevation + ((ev.offsetY - last.y) / canvas.clientHeight) * Math.PI),
      );
      last = { x: ev.offsetX, y: ev.offsetY };
      void this.render();
    });
    const release = () => {
      if (!last) return;
      last = null;
      this.dragging = false;
      void this.render();
    };
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
  }

  /**
   * A newly encoded object: the camera starts where support view 0 was, at the support cameras'
   * mean distance, and renders at full resolution.
   */
  show(renderer: ViewRenderer, support: Views, inputSize: number): Promise<void> {
    this.renderer = renderer;
    this.inputSize = inputSize;
    this.focal = [support.focals[0]!, support.focals[1]!];
    const n = support.poses.length / 12;
    let radius = 0;
    for (let k = 0; k < n; k++) {
      const p = support.poses.subarray(12 * k, 12 * k + 12);
      radius += Math.hypot(p[3]!, p[7]!, p[11]!) / n;
    }
    const p = support.poses;
    this.radius = radius;
    this.azimuth = Math.atan2(p[7]!, p[3]!);
    this.elevation = Math.asin(p[11]! / Math.hypot(p[3]!, p[7]!, p[11]!));
    this.frame = null;
    return this.render();
  }

  /** Change the full resolution or the samples per ray, and render again. */
  configure(size: number, samples: number): Promise<void> {
    this.size = size;
    this.samples = samples;
    return this.render();
  }

  /** Turn the camera to (azimuth, elevation) in radians, and render at full resolution. */
  turnTo(azimuth: number, elevation: number): Promise<void> {
    this.azimuth = azimuth;
    this.elevation = Math.min(MAX_ELEVATION, Math.max(-MAX_ELEVATION, elevation));
    return this.render();
  }

  /** The camera at the current angles, for a frame of `size`². */
  camera(size: number): Camera {
    const { azimuth: az, elevation: el, radius: r } = this;
    const scale = size / this.inputSize;
    return {
      eye: [r * Math.cos(el) * Math.cos(az), r * Math.cos(el) * Math.sin(az), r * Math.sin(el)],
      focal: [this.focal[0] * scale, this.focal[1] * scale],
      size,
      samples: this.samples,
      near: this.near,
      far: this.far,
    };
  }

  /** Resolves once the current camera's frame is on screen (full resolution unless dragging). */
  settled(): Promise<void> {
    return this.renderLoop.settled();
  }

  private render(): Promise<void> {
    return this.renderLoop.run();
  }

  private async renderOnce(): Promise<void> {
    if (!this.renderer) return;
    const full = !this.dragging;
    const size = full ? this.size : previewSize(this.size);
    const { azimuth, elevation } = this;
    const f = this.frame;
    // A click without a move: the frame on screen is this camera's already.
    const same = f?.azimuth === azimuth && f.elevation === elevation && f.camera.samples === this.samples;
    if (full && f?.full && same && f.size === size) return;
    const camera = this.camera(size);
    const { rgb, pose, ms } = await this.renderer(camera);
    this.frame = { rgb, size, pose, camera, azimuth, elevation, full, ms };
    if (!full) {
      this.previews++;
      this.lastPreviewSize = size;
    }
    this.draw(this.frame);
    const deg = (r: number) => `${Math.round((r * 180) / Math.PI)}°`;
    this.stats.textContent =
      `${full ? "" : "preview "}${size}² × ${camera.samples} samples per ray in ${ms.toFixed(0)} ms · ` +
      `azimuth ${deg(azimuth)}, elevation ${deg(elevation)} · drag to turn`;
    this.canvas.dataset.frameSize = String(size);
  }

  private draw(f: OrbitFrame): void {
    const ctx = this.canvas.getContext("2d")!;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(pixelsToCanvas(f.rgb, 3, f.size, f.size), 0, 0, this.canvas.width, this.canvas.height);
  }
}
