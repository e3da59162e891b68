/**
 * An exclusive lock on a folder, held by one process: `DIR/.anr.lock` holds who holds it. Two runs
 * writing one run folder would interleave their metrics and overwrite each other's checkpoints.
 *
 * The lock file is written complete under a temporary name and then hard-linked into place, which
 * fails atomically if the lock exists, so a lock file is never seen half-written. A lock left by a
 * process that no longer runs on this host (killed with -9, a crashed machine) is stale: it is
 * taken over at once, with no waiting period, because the holder's pid can be checked. A lock held
 * from another host cannot be checked and is never taken over.
 */
import { link, readFile, readdir, stat, unlink, writeFile } from "node:fs/promises";
import { unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { InputError } from "./errors.js";

/** The lock file's name inside the locked folder. */
export const LOCK_FILE = ".anr.lock";

/** Who holds a lock: stored as JSON in the lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** What the holder is doing, for the message another process prints. */
  purpose: string;
}

/** Raised when the folder is locked by a live process (or one on another host). */
export class FolderLockedError extends InputError {
  constructor(
    readonly folder: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder
      ? `${holder.purpose} (pid ${holder.pid} on ${holder.host}, since ${holder.since})`
      : "another process (its lock file cannot be read)";
    super(
      folder,
      `in use by ${who}; wait for it to finish, or, if no such process is running, delete ${join(folder, LOCK_FILE)}`,
    );
    this.name = "FolderLockedError";
  }
}

/** A held lock. */
export interface FolderLock {
  /** Give the lock up (idempotent). */
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, "utf8")) as Partial<LockHolder>;
    if (typeof h.pid === "number" && typeof h.host === "string") return h as LockHolder;
  } catch {
    // unreadable or gone: reported as unknown
  }
  return undefined;
}

/** A lock file written whole under this name, `.anr.lock.<pid>.<ms>.pending`, is then linked into place. */
const PENDING_NAME = /^\.anr\.lock\.(\d+)\.\d+\.pending$/;

/**
 * Remove the pending lock files of processes killed on this host between writing one and
 * removing it. A pending file names its writer's pid and host; one that cannot be read (killed
 * while writing it) is removed once its pid is gone and it is a minute old, since a process on
 * another host might be between writing it and linking it.
 */
async function removeStalePending(folder: string, host: string): Promise<void> {
  for (const name of await readdir(folder)) {
    const m = PENDING_NAME.exec(name);
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    const path = join(folder, name);
    const writer = await readHolder(path);
    const old = async () => Date.now() - (await stat(path)).mtimeMs > 60_000;
    if (writer ? writer.host === host : await old()) await unlink(path).catch(() => undefined);
  }
}

/**
 * Take the lock on `folder` (which must exist) for this process, or throw
 * {@link FolderLockedError}. The lock is also removed if the process exits without releasing it.
 */
export async function lockFolder(folder: string, purpose: string): Promise<FolderLock> {
  const path = join(folder, LOCK_FILE);
  const holder: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), purpose };
  const tmp = join(folder, `${LOCK_FILE}.${process.pid}.${Date.now()}.pending`);
  await writeFile(tmp, JSON.stringify(holder) + "\n");
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const current = await readHolder(path);
        const stale = current !== undefined && current.host === holder.host && !isAlive(current.pid);
        if (!stale || attempt > 0) throw new FolderLockedError(folder, current);
        await unlink(path).catch(() => undefined);
      }
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await removeStalePending(folder, holder.host).catch(() => undefined);
  let held = true;
  const onExit = () => {
    if (held) unlinkSync(path);
  };
  process.on("exit", onExit);
  return {
    async release() {
      if (!held) return;
      held = false;
      process.off("exit", onExit);
      await unlink(path).catch(() => undefined);
    },
  };
}
