/**
 * Node start-up, imported first by the Node entry, the CLI and the benchmark: the worker pool
 * for jax-js (./node-threads.ts, before jax-js is evaluated), then the process-wide switches that
 * only the Node shell reads from the environment. ANR_ATTENTION=direct|folded forces a form of
 * the attention. Below the CLI and these entry files, nothing reads `process.env` (ESLint).
 */
import "./node-threads.js";
import { setAttentionForm } from "./model/model.js";

const form = process.env.ANR_ATTENTION;
if (form === "direct" || form === "folded") setAttentionForm(form);
