/**
 * All compute-backend set-up lives here: which jax-js device runs the model and how many kernel
 * threads it uses. Call {@link initBackend} once at start-up.
 */
import { requestedThreads } from "./install-worker.js";
import { init, defaultDevice, type Device } from "./jax.js";

/** Options of {@link initBackend}. */
export interface BackendArgs {
  /** jax-js device: "wasm" (default; CPU, multi-threaded), "webgpu" (browser or Deno) or "cpu" (slow; for debugging). */
  device?: Device;
}

/** What {@link initBackend} set up. */
export interface BackendInfo {
  /** The device new arrays are placed on. */
  device: Device;
  /** Kernel threads (wasm only; set by the ANR_THREADS environment variable, default all cores). */
  threads: number;
}

let active: BackendInfo | null = null;

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
  const available = await init(device);
  if (!available.includes(device)) {
    throw new Error(`jax-js device "${device}" is not available here (available: ${available.join(", ") || "none"})`);
  }
  defaultDevice(device);
  const shared = typeof SharedArrayBuffer !== "undefined" && typeof (globalThis as Record<string, unknown>).Worker !== "undefined";
  active = { device, threads: device === "wasm" && shared ? requestedThreads : 1 };
  return active;
}
