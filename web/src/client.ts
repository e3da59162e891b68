/** The page's side of the model worker: requests as promises (web/src/protocol.ts). */
import type { Reply, ReplyTo, Request } from "./protocol.js";

/** An error raised in the worker, with the core's error name (e.g. "SafetensorsError"). */
export class WorkerError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

type Pending = { resolve: (r: Reply) => void; reject: (e: Error) => void };
/** A request without its id, by type. */
type Bodies = { [R in Request as R["type"]]: Omit<R, "id"> };

/** One model worker; `terminate` ends it (a device switch starts a new one). */
export class ModelWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** `threads`: wasm kernel threads (default: the browser's hardwareConcurrency). */
  constructor(threads?: number) {
    // The name carries the thread count to the worker before it imports jax-js (threads.ts).
    // Vite reads `type` statically: the spread must come before it.
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), {
      ...(threads ? { name: `anr-threads=${threads}` } : {}),
      type: "module",
    });
    this.worker.onmessage = (ev: MessageEvent<Reply>) => {
      const p = this.pending.get(ev.data.id);
      if (!p) return;
      this.pending.delete(ev.data.id);
      if (ev.data.type === "error") p.reject(new WorkerError(ev.data.name, ev.data.message));
      else p.resolve(ev.data);
    };
    // A worker that fails to start or dies fails every request in flight instead of hanging them.
    this.worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      const error = new WorkerError("WorkerError", ev.message || "the model worker stopped");
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
  }

  request<T extends Request["type"]>(
    body: Bodies[T] & { type: T },
    transfer: Transferable[] = [],
  ): Promise<ReplyTo<T>> {
    const id = this.nextId++;
    return new Promise<ReplyTo<T>>((resolve, reject) => {
      this.pending.set(id, { resolve: (r) => resolve(r as ReplyTo<T>), reject });
      this.worker.postMessage({ ...body, id }, transfer);
    });
  }

  terminate(): void {
    this.worker.terminate();
    const error = new WorkerError("WorkerError", "the model worker was replaced");
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
