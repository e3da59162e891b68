/**
 * Side-effect module, imported first by the worker: jax-js sizes its wasm thread pool from
 * `navigator.hardwareConcurrency` when it is first evaluated, so a requested thread count (the
 * page's `?threads=N`, passed as the worker's name "anr-threads=N") must be set before that.
 */
const asked = /^anr-threads=(\d+)$/.exec(self.name)?.[1];
if (asked !== undefined && Number(asked) > 0) {
  try {
    Object.defineProperty(self.navigator, "hardwareConcurrency", {
      value: Number(asked),
      configurable: true,
    });
  } catch {
    // A read-only navigator keeps the platform's count; the card shows the count in use.
  }
}
export {};
