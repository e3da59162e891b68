/**
 * Side-effect module: must run before "@jax-js/jax" is first evaluated, because jax-js builds
 * its wasm backend (shared memory + worker pool, or neither) at import time. It installs a Web
 * `Worker` for Node and sets the worker count from `ANR_THREADS` (default: all cores).
 * `ANR_THREADS=1` keeps everything on the main thread.
 */
import { availableParallelism } from "node:os";
import { NodeWebWorker } from "./node-worker.js";

const g = globalThis as Record<string, unknown>;
const isNode = typeof process !== "undefined" && !!process.versions?.node;

/**
 * Every WebAssembly.Memory created from here on (jax-js creates one for its wasm backend at
 * import), so that its heap size can be reported: the one exact measure of device memory.
 */
export const wasmMemories: WebAssembly.Memory[] = [];
{
  const Original = WebAssembly.Memory;
  const Tracked = function (this: unknown, desc: WebAssembly.MemoryDescriptor) {
    const mem = new Original(desc);
    wasmMemories.push(mem);
    return mem;
  } as unknown as typeof WebAssembly.Memory;
  Tracked.prototype = Original.prototype;
  (WebAssembly as { Memory: typeof WebAssembly.Memory }).Memory = Tracked;
}

/** Kernel threads requested for this process. */
export const requestedThreads: number = (() => {
  if (!isNode) return 1;
  const env = Number(process.env.ANR_THREADS ?? "");
  return Math.max(1, Math.floor(env > 0 ? env : availableParallelism()));
})();

if (isNode && requestedThreads > 1 && typeof g.Worker === "undefined") {
  g.Worker = NodeWebWorker;
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  if (g.navigator === undefined) g.navigator = nav;
  try {
    Object.defineProperty(nav, "hardwareConcurrency", { value: requestedThreads, configurable: true });
  } catch {
    /* a read-only navigator keeps the platform's count */
  }
}
