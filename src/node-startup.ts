/**
 * Node start-up, imported first by the Node entry, the CLI and the benchmark: the worker pool
 * for jax-js (./node-threads.ts, before jax-js is evaluated), then the process-wide switches that
 * only the Node shell reads from the environment, and WebGPU for Node (Dawn) on demand.
 * ANR_ATTENTION=direct|folded forces a form of
 * the attention. Below the CLI and these entry files, nothing reads `process.env` (ESLint).
 */
import "./node-threads.js";
import { setWebGpuProvider } from "./backend/index.js";
import { installNodeWebGpu } from "./backend/node-webgpu.js";
import { setAttentionForm } from "./model/model.js";

// --device webgpu: Dawn's WebGPU, from the optional package, when the device is first asked for.
setWebGpuProvider(installNodeWebGpu);

const form = process.env.ANR_ATTENTION;
if (form === "direct" || form === "folded") setAttentionForm(form);
