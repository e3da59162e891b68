/**
 * The web app (web/): `npm run web` builds it and serves it with the cross-origin isolation
 * headers that wasm threads (SharedArrayBuffer) need; `npm run web:build` writes web/dist/.
 * "anr" and "anr/lowlevel" resolve to the portable core's sources.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const web = fileURLToPath(new URL(".", import.meta.url));
const repo = fileURLToPath(new URL("..", import.meta.url));

/** COOP/COEP: without them the page is not cross-origin isolated and wasm runs on one thread. */
export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  root: web,
  base: "./",
  resolve: {
    alias: [
      { find: /^anr\/lowlevel$/, replacement: `${repo}src/lowlevel.ts` },
      { find: /^anr$/, replacement: `${repo}src/index.ts` },
    ],
  },
  assetsInclude: ["**/*.safetensors"],
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 4096 },
  worker: { format: "es" },
  server: { headers: ISOLATION_HEADERS, fs: { allow: [repo] } },
  preview: { headers: ISOLATION_HEADERS },
});
