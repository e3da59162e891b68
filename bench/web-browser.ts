/**
 * The web app in headless Chromium, shared by its test (test/web.test.ts) and its benchmark
 * (bench/web.ts): Debian's chromium and its flags, the app built with Vite's API, and a static
 * server with the cross-origin isolation headers that `npm run web` sends.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { build } from "vite";

/** Debian's `chromium` package (installed by .ci/run with apt; no browser download). */
export const CHROMIUM = "/usr/bin/chromium";

/** The flags the brief of the CI image asks for, and WebGPU on SwiftShader (software Vulkan). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--enable-unsafe-webgpu",
  "--use-webgpu-adapter=swiftshader",
  // A synthetic camera, allowed without asking, for the webcam snapshot.
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".png": "image/png",
};

/** Build the app (web/) into `outDir`, as `npm run web:build` does. */
export async function buildApp(outDir: string): Promise<void> {
  await build({
    configFile: join(import.meta.dirname, "..", "web", "vite.config.ts"),
    logLevel: "silent",
    build: { outDir, emptyOutDir: true },
  });
}

/** A static server for `dir` with COOP/COEP (as `npm run web` serves it), on a free port. */
export async function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname))
      .replace(/^[/\\]+/, "")
      .replace(/^(\.\.[/\\])+/, "");
    try {
      const body = await readFile(join(dir, path || "index.html"));
      res.writeHead(200, {
        "Content-Type": TYPES[extname(path || "index.html")] ?? "application/octet-stream",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
      });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}
