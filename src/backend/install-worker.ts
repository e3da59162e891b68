/**
 * Node only. Side-effect module: must run before "@jax-js/jax" is first evaluated, because jax-js
 * builds its wasm backend (shared memory + worker pool, or neither) at import time. It installs a
 * Web `Worker` for Node and sets the worker count from `ANR_THREADS` (default: all cores).
 * `ANR_THREADS=1` keeps everything on the main thread. src/node-startup.ts (the Node entry, the
 * CLI, the benchmark) and the test set-up import it first; without it, jax-js runs its kernels
 * on the main thread.
 */
import { availableParallelism } from "node:os";
import { NodeWebWorker } from "./node-worker.js";

const g = globalThis as Record<string, unknown>;
const isNode = typeof process !== "undefined" && !!process.versions?.node;

/** Kernel threads requested for this process. */
const requestedThreads: number = (() => {
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
