/**
 * The one import point for jax-js in this package. Importing through here guarantees that the
 * Node worker set-up runs before jax-js creates its wasm backend.
 */
import "./install-worker.js";
export * from "@jax-js/jax";
