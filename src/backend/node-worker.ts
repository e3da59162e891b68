/**
 * A Web `Worker` for Node, over `worker_threads`.
 *
 * jax-js's wasm backend runs kernels on a pool of Web Workers created from a `blob:` URL of
 * module source. Node has no global `Worker`, and the `web-worker` package cannot load `blob:`
 * URLs, so this adapter resolves the blob, evaluates its source in a worker thread with the
 * browser globals it expects (`self`, `postMessage`, `onmessage`), and queues messages posted
 * before the thread has started.
 */
import { Worker as ThreadWorker } from "node:worker_threads";
import { resolveObjectURL } from "node:buffer";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** Glue that gives the evaluated worker source the Web Worker globals it uses. */
const PRELUDE = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
globalThis.postMessage = (data) => parentPort.postMessage(data);
parentPort.on("message", (data) => {
  if (typeof globalThis.onmessage === "function") globalThis.onmessage({ data });
});
`;

interface MessageEventLike {
  data: unknown;
}

async function loadSource(url: string): Promise<string> {
  if (url.startsWith("blob:")) {
    const blob = resolveObjectURL(url);
    if (!blob) throw new Error(`Worker: blob URL ${url} was revoked before it could be read`);
    return blob.text();
  }
  if (url.startsWith("data:")) {
    const comma = url.indexOf(",");
    const meta = url.slice(5, comma);
    const body = url.slice(comma + 1);
    return meta.endsWith(";base64") ? Buffer.from(body, "base64").toString("utf8") : decodeURIComponent(body);
  }
  return readFile(url.startsWith("file:") ? fileURLToPath(url) : url, "utf8");
}

/**
 * The subset of the Web Worker interface that jax-js uses. A thread holds the process open only
 * while it owes a reply, so a finished program exits without an explicit shutdown.
 */
export class NodeWebWorker {
  onmessage: ((event: MessageEventLike) => void) | null = null;
  onerror: ((event: { message: string }) => void) | null = null;
  #thread: ThreadWorker | null = null;
  #queued: unknown[] = [];
  #owed = 0;
  #terminated = false;

  constructor(url: string | URL, _options?: { type?: string }) {
    const href = String(url);
    loadSource(href).then(
      (source) => {
        if (this.#terminated) return;
        const thread = new ThreadWorker(PRELUDE + source, { eval: true });
        thread.on("message", (data: unknown) => {
          this.#owed -= 1;
          if (this.#owed <= 0) {
            this.#owed = 0;
            thread.unref();
          }
          this.onmessage?.({ data });
        });
        thread.on("error", (err: Error) => this.onerror?.({ message: err.message }));
        thread.unref();
        this.#thread = thread;
        for (const msg of this.#queued) this.#send(msg);
        this.#queued = [];
      },
      (err: Error) => this.onerror?.({ message: err.message }),
    );
  }

  #send(msg: unknown): void {
    const thread = this.#thread!;
    this.#owed += 1;
    thread.ref();
    thread.postMessage(msg);
  }

  postMessage(msg: unknown): void {
    if (this.#thread) this.#send(msg);
    else this.#queued.push(msg);
  }

  terminate(): void {
    this.#terminated = true;
    void this.#thread?.terminate();
  }
}
