/** File-system helpers shared by every writer: nothing half-written is ever left behind. */
import { writeFile, rename, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";

/** Write a file atomically: a temporary file beside it, then a rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
