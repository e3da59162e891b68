/**
 * The zoomable, pannable view: it decodes only the visible region, at the canvas's resolution,
 * coarse first and then refined. While a decode runs, the last frame stays on screen, moved and
 * scaled to the current view. Left of the split, ANR's decode; right of it, bicubic upsampling of
 * the input.
 */
import type { Region } from "./protocol.js";
import { bicubicRegion, pixelsToCanvas } from "./pixels.js";
import { CoalescedTask } from "./coalesce.js";

/** Decodes a region at width × height: (C, height, width) in [0, 1], and the milliseconds it took. */
export type RegionDecoder = (
  region: Region,
  width: number,
  height: number,
) => Promise<{ rgb: Float32Array; ms: number }>;

/** The input at the model's size, for the bicubic side. */
export interface ZoomInput {
  pixels: Float32Array;
  channels: number;
  height: number;
  width: number;
}

interface Frame {
  image: HTMLCanvasElement;
  region: Region;
}

/** Coarse pass: this fraction of the canvas's resolution. */
const COARSE = 4;
/** Deepest zoom: the visible region spans 1/MAX_ZOOM of the image. */
const MAX_ZOOM = 256;

export class ZoomView {
  /** Centre of the view in the model's coordinates, and the zoom (1: the whole image). */
  private cy = 0;
  private cx = 0;
  private zoom = 1;
  /** Fraction of the width left of the split (ANR); the rest shows bicubic. */
  private split = 0.5;
  private frame: Frame | null = null;
  private baseline: Frame | null = null;
  private generation = 0;
  private readonly decodeLoop = new CoalescedTask(
    () => this.decodeView(),
    // The view reports its own failures (e.g. the worker replaced on a device switch).
    (e) => {
      this.stats.textContent = `Decoding stopped: ${e instanceof Error ? e.message : String(e)}`;
    },
    () => {
      this.canvas.dataset.state = "idle";
    },
  );
  private decoder: RegionDecoder | null = null;
  private input: ZoomInput | null = null;
  /** Called with the model coordinates (y, x) under the pointer when it moves without dragging. */
  onHover: ((y: number, x: number) => void) | null = null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly stats: HTMLElement,
  ) {
    canvas.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const [y, x] = this.toModel(ev.offsetX, ev.offsetY);
      this.zoomAbout(Math.exp(-ev.deltaY / 300), y, x);
    });
    let drag: { x: number; y: number } | null = null;
    canvas.addEventListener("pointerdown", (ev) => {
      drag = { x: ev.offsetX, y: ev.offsetY };
      canvas.setPointerCapture(ev.pointerId);
    });
    canvas.addEventListener("pointermove", (ev) => {
      if (!drag) {
        if (this.onHover && this.input) this.onHover(...this.toModel(ev.offsetX, ev.offsetY));
        return;
      }
      const r = this.region();
      this.cx -= ((ev.offsetX - drag.x) / canvas.clientWidth) * (r.x1 - r.x0);
      this.cy -= ((ev.offsetY - drag.y) / canvas.clientHeight) * (r.y1 - r.y0);
      this.clampCentre();
      drag = { x: ev.offsetX, y: ev.offsetY };
      this.render();
    });
    canvas.addEventListener("pointerup", () => (drag = null));
  }

  /** A new image (and its decoder): the view resets to the whole image. */
  show(decoder: RegionDecoder, input: ZoomInput): Promise<void> {
    this.decoder = decoder;
    this.input = input;
    this.frame = null;
    this.baseline = null;
    this.cy = this.cx = 0;
    this.zoom = 1;
    return this.render();
  }

  /** Zoom by `factor` keeping the model point (y, x) under the same screen position. */
  zoomAbout(factor: number, y = this.cy, x = this.cx): Promise<void> {
    const next = Math.min(MAX_ZOOM, Math.max(1, this.zoom * factor));
    const k = this.zoom / next;
    this.cy = y + (this.cy - y) * k;
    this.cx = x + (this.cx - x) * k;
    this.zoom = next;
    this.clampCentre();
    return this.render();
  }

  reset(): Promise<void> {
    this.cy = this.cx = 0;
    this.zoom = 1;
    return this.render();
  }

  setSplit(fraction: number): void {
    this.split = Math.min(1, Math.max(0, fraction));
    this.draw();
  }

  /** Resolves once the current view's refined frame is on screen. */
  settled(): Promise<void> {
    return this.decodeLoop.settled();
  }

  /** The visible region in the model's coordinates. */
  region(): Region {
    const half = 1 / this.zoom;
    return { y0: this.cy - half, x0: this.cx - half, y1: this.cy + half, x1: this.cx + half };
  }

  /** Model coordinates (y, x) of a point of the canvas, in CSS pixels. */
  toModel(px: number, py: number): [number, number] {
    const r = this.region();
    return [
      r.y0 + (py / this.canvas.clientHeight) * (r.y1 - r.y0),
      r.x0 + (px / this.canvas.clientWidth) * (r.x1 - r.x0),
    ];
  }

  private clampCentre(): void {
    const room = 1 - 1 / this.zoom;
    this.cy = Math.min(room, Math.max(-room, this.cy));
    this.cx = Math.min(room, Math.max(-room, this.cx));
  }

  /** Show the last frames moved to the current view now, and decode the view (coalesced). */
  private render(): Promise<void> {
    this.generation++;
    this.draw();
    return this.decodeLoop.run();
  }

  private async decodeView(): Promise<void> {
    if (!this.decoder || !this.input) return;
    const generation = this.generation;
    const region = this.region();
    const size = this.canvas.width;
    const { pixels, channels, height, width } = this.input;
    this.canvas.dataset.state = "decoding";
    this.baseline = {
      image: pixelsToCanvas(
        bicubicRegion(pixels, channels, height, width, region, size, size),
        channels,
        size,
        size,
      ),
      region,
    };
    const timings: string[] = [];
    for (const res of [Math.max(8, Math.round(size / COARSE)), size]) {
      if (generation !== this.generation) return;
      const { rgb, ms } = await this.decoder(region, res, res);
      if (generation !== this.generation) return;
      this.frame = { image: pixelsToCanvas(rgb, channels, res, res), region };
      this.draw();
      timings.push(`${res}² in ${ms.toFixed(0)} ms`);
      // What the tests read: the decoded resolution of the visible region.
      const modelPixels = ((region.x1 - region.x0) / 2) * width;
      this.canvas.dataset.frameSize = String(res);
      this.canvas.dataset.regionModelPixels = modelPixels.toFixed(4);
      this.canvas.dataset.samplesPerModelPixel = (res / modelPixels).toFixed(4);
      this.canvas.dataset.msPerFrame = ms.toFixed(1);
      this.stats.textContent =
        `${timings.join(" → ")} · zoom ${this.zoom.toFixed(1)}× · ` +
        `${(res / modelPixels).toFixed(1)} decoded pixels per model pixel`;
    }
  }

  private draw(): void {
    const ctx = this.canvas.getContext("2d")!;
    const size = this.canvas.width;
    ctx.fillStyle = "#222";
    ctx.fillRect(0, 0, size, size);
    const r = this.region();
    const place = (f: Frame) => {
      const sx = size / (r.x1 - r.x0);
      const sy = size / (r.y1 - r.y0);
      ctx.imageSmoothingEnabled = f.image.width < size;
      ctx.drawImage(
        f.image,
        (f.region.x0 - r.x0) * sx,
        (f.region.y0 - r.y0) * sy,
        (f.region.x1 - f.region.x0) * sx,
        (f.region.y1 - f.region.y0) * sy,
      );
    };
    const cut = Math.round(this.split * size);
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, cut, size);
    ctx.clip();
    if (this.frame) place(this.frame);
    ctx.restore();
    ctx.save();
    ctx.beginPath();
    ctx.rect(cut, 0, size - cut, size);
    ctx.clip();
    if (this.baseline) place(this.baseline);
    ctx.restore();
    ctx.fillStyle = "#fff";
    ctx.fillRect(cut - 1, 0, 2, size);
  }
}
