/**
 * Node only: WebGPU for jax-js from Dawn, Chrome's WebGPU engine, through the optional `webgpu`
 * package (its native module ships in the package; nothing is downloaded). Dawn drives the GPU
 * through Vulkan, so it needs a Vulkan loader (libvulkan.so.1) and a driver. Where there is no
 * GPU, Debian's chromium package carries both, with SwiftShader as the driver:
 *
 *   LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
 *     anr decode … --device webgpu
 *
 * (the loader is found when the process starts, so these must be set before Node runs).
 */
import { UsageError } from "../util/errors.js";

/** What anr uses of WebGPU's `GPU` (the global types are not part of a Node build). */
interface GpuLike {
  requestAdapter(o?: { powerPreference?: string }): Promise<{
    info: { vendor: string; architecture: string; description: string };
  } | null>;
}

/** How to give Dawn a Vulkan driver, for the error that says none was found. */
export const VULKAN_HINT =
  "Dawn (WebGPU in Node) needs a Vulkan driver: a GPU's, or on a machine without one Chromium's SwiftShader, with LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json set before node starts (Debian: apt-get install chromium)";

/**
 * Give this process `navigator.gpu` from Dawn, checked to have an adapter; returns the adapter's
 * description. A missing package or adapter is a usage error that says what to install or set.
 */
export async function installNodeWebGpu(): Promise<string> {
  const g = globalThis as Record<string, unknown>;
  const existing = (g.navigator as { gpu?: GpuLike } | undefined)?.gpu;
  let gpu: GpuLike;
  if (existing) gpu = existing;
  else {
    let mod: { create(options: string[]): GpuLike; globals: object };
    try {
      mod = (await import("webgpu")) as unknown as typeof mod;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND")
        throw new UsageError(
          "--device webgpu in Node needs the optional package webgpu, which is not installed (npm install webgpu)",
        );
      throw e;
    }
    Object.assign(globalThis, mod.globals);
    gpu = mod.create([]);
    const nav = (g.navigator ?? {}) as Record<string, unknown>;
    if (g.navigator === undefined) g.navigator = nav;
    Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
    // jax-js's WebGPU backend reads the user agent (to work around a Firefox behaviour).
    if (typeof nav.userAgent !== "string")
      Object.defineProperty(nav, "userAgent", { value: `Node.js/${process.version}`, configurable: true });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new UsageError(`--device webgpu: no WebGPU adapter found. ${VULKAN_HINT}`);
  const info = adapter.info;
  return `${info.vendor} ${info.architecture} ${info.description}`.trim();
}
