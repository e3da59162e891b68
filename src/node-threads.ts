/**
 * Node entry, side-effect module: the kernel thread count from `ANR_THREADS` (a positive number;
 * default all cores, `1` keeps everything on the main thread), and the worker pool for it. It
 * must be evaluated before "@jax-js/jax", which sizes its pool at import: src/node-startup.ts (the
 * Node entry, the CLI, the benchmark) and the test set-up import it first.
 */
import { installWorkerPool } from "./backend/install-worker.js";

const threads = Number(process.env.ANR_THREADS ?? "");
installWorkerPool(threads > 0 ? threads : undefined);
