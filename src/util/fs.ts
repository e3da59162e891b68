/** File-system helpers shared by every writer: nothing half-written is ever left behind. */
import { open, writeFile, rename, unlink, readdir } from "node:fs/promises";
import { dirname, basename, join } from "node:path";

/** The temporary name {@link writeFileAtomic} writes `path` under before renaming it. */
function temporaryName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
}
const TEMPORARY_NAME = /^\..+\.\d+\.\d+\.tmp$/;

/**
 * Write a file atomically: a temporary file beside it, then a rename. `durable`: the file's bytes
 * and then its folder's entry are flushed to the disk (fsync) before this returns, for a writer
 * that reports the file as done to others (a job queue) and must not lose it to a power cut.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
  opts: { durable?: boolean } = {},
): Promise<void> {
  const tmp = temporaryName(path);
  try {
    if (opts.durable) {
      const f = await open(tmp, "w");
      try {
        await f.writeFile(bytes);
        await f.sync();
      } finally {
        await f.close();
      }
    } else await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  if (opts.durable) {
    const dir = await open(dirname(path), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/**
 * Remove the temporary files that {@link writeFileAtomic} left in `folder` when a process was
 * killed mid-write, and return their names. Call it only while holding the folder's lock (see
 * ./lock.ts): then no other process can be writing one of them.
 */
export async function removeStaleTemporaries(folder: string): Promise<string[]> {
  const stale = (await readdir(folder)).filter((name) => TEMPORARY_NAME.test(name));
  await Promise.all(stale.map((name) => unlink(join(folder, name)).catch(() => undefined)));
  return stale;
}
