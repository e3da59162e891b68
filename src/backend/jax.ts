/**
 * The one import point for jax-js in this package. Importing through here guarantees that the
 * device-heap tracking is in place before jax-js creates its wasm backend. (In Node, the worker
 * pool is installed before this module is evaluated: see src/node-threads.ts.)
 */
import "./heap.js";
export * from "@jax-js/jax";
