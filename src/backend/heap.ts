/**
 * Side-effect module, imported by jax.ts before jax-js: records every WebAssembly.Memory created
 * from here on (jax-js creates one for its wasm backend at import), so that the device heap can
 * be reported, the one exact measure of device memory. Portable: browsers have WebAssembly too.
 */
export const wasmMemories: WebAssembly.Memory[] = [];

if (typeof WebAssembly !== "undefined") {
  const Original = WebAssembly.Memory;
  const Tracked = function (this: unknown, desc: WebAssembly.MemoryDescriptor) {
    const mem = new Original(desc);
    wasmMemories.push(mem);
    return mem;
  } as unknown as typeof WebAssembly.Memory;
  Tracked.prototype = Original.prototype;
  (WebAssembly as { Memory: typeof WebAssembly.Memory }).Memory = Tracked;
}
