/**
 * All compute-backend set-up lives here: which jax-js device runs the model and how many kernel
 * threads it uses. Call {@link initBackend} once at start-up.
 */
import { wasmMemories } from "./heap.js";
import { init, defaultDevice, numpy as np, type Device } from "./jax.js";

/** The jax-js devices anr runs on (jax-js also has "webgl", which anr does not support). */
export const DEVICES = ["wasm", "webgpu", "cpu"] as const;

/** Options of {@link initBackend}. */
export interface BackendArgs {
  /** jax-js device: "wasm" (default; CPU, multi-threaded), "webgpu" (browser; Node with Dawn, see node-webgpu.ts) or "cpu" (slow; for debugging). */
  device?: Device;
}

/** What {@link initBackend} set up. */
export interface BackendInfo {
  /** The device new arrays are placed on. */
  device: Device;
  /**
   * Kernel threads (wasm only): the platform's count, which the Node entry sets from ANR_THREADS
   * (default all cores); 1 without a Worker or shared memory.
   */
  threads: number;
}

let active: BackendInfo | null = null;

/**
 * Where the platform has no `navigator.gpu` of its own (Node), the Node entry registers what
 * provides one; {@link initBackend} calls it before it starts the "webgpu" device.
 */
let webGpuProvider: (() => Promise<unknown>) | null = null;
export function setWebGpuProvider(provide: () => Promise<unknown>): void {
  webGpuProvider = provide;
}

/**
 * Initialise jax-js for the process. Later calls must ask for the same device (or none): arrays
 * already made live on the first.
 */
export async function initBackend(args: BackendArgs = {}): Promise<BackendInfo> {
  const device = args.device ?? "wasm";
  if (active) {
    if (args.device && args.device !== active.device) {
      throw new Error(`backend already initialised on "${active.device}", cannot switch to "${device}"`);
    }
    return active;
  }
  if (device === "webgpu" && webGpuProvider) await webGpuProvider();
  const available = await init(device);
  if (!available.includes(device)) {
    throw new Error(
      `jax-js device "${device}" is not available here (available: ${available.join(", ") || "none"})`,
    );
  }
  defaultDevice(device);
  const shared =
    typeof SharedArrayBuffer !== "undefined" &&
    typeof (globalThis as Record<string, unknown>).Worker !== "undefined";
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  active = { device, threads: device === "wasm" && shared ? (cores ?? 1) : 1 };
  return active;
}

/** Consume an array and return its values as float32 on the host. */
export async function readF32(a: np.Array): Promise<Float32Array> {
  const d = await a.data();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** Consume a scalar (or one-element) array and return its value. */
export async function readScalar(a: np.Array): Promise<number> {
  return (await readF32(a))[0]!;
}

/**
 * Bytes of the largest wasm heap (jax-js's device memory on "wasm"). The heap only grows, so
 * this is the peak device memory so far; leaked arrays make it grow without bound.
 */
export function wasmHeapBytes(): number {
  return Math.max(0, ...wasmMemories.map((m) => m.buffer.byteLength));
}

/**
 * log10 to float32 accuracy. jax-js's `log` (0.1.25) errs by up to 1.3e-5 absolute for arguments
 * just below a power of two (its series stops early); one Newton step on exp(y) = x,
 * y ← y + x·exp(−y) − 1, brings the log within 1e-6 of the true value on [1e-4, 400]. Consumes `x`.
 */
export function preciseLog10(x: np.Array): np.Array {
  const y = np.log(x.ref);
  return y.ref
    .add(x.mul(np.exp(y.neg())))
    .sub(1)
    .mul(1 / Math.LN10);
}
