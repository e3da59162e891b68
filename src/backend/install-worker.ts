/**
 * Node only. jax-js builds its wasm backend (shared memory + worker pool, or neither) when
 * "@jax-js/jax" is first evaluated, so {@link installWorkerPool} must run before that: it installs
 * a Web `Worker` for Node and sets the worker count. The count comes from the caller; the Node
 * entry (src/node-threads.ts, imported first by src/node-startup.ts and the test set-up) reads it
 * from `ANR_THREADS`. Without it, jax-js runs its kernels on the main thread.
 */
import { availableParallelism } from "node:os";
import { NodeWebWorker } from "./node-worker.js";

/**
 * Install the Node worker pool for `threads` kernel threads (undefined: all cores; 1 keeps
 * everything on the main thread). Returns the count in effect. Call it before jax-js is evaluated.
 */
export function installWorkerPool(threads?: number): number {
  const g = globalThis as Record<string, unknown>;
  const isNode = typeof process !== "undefined" && !!process.versions?.node;
  if (!isNode) return 1;
  const n = Math.max(1, Math.floor(threads !== undefined && threads > 0 ? threads : availableParallelism()));
  if (n > 1 && typeof g.Worker === "undefined") {
    g.Worker = NodeWebWorker;
    const nav = (g.navigator ?? {}) as Record<string, unknown>;
    if (g.navigator === undefined) g.navigator = nav;
    try {
      Object.defineProperty(nav, "hardwareConcurrency", { value: n, configurable: true });
    } catch {
      /* a read-only navigator keeps the platform's count */
    }
  }
  return n;
}
