/**
 * The guard of a run folder. A run folder is claimed before a run uses it: it is locked (one run
 * at a time, see util/lock.ts), it is never overwritten unless the user asked for `--resume` or
 * `--overwrite`, and an overwritten run is only set aside (in `.overwritten-run/`) until the new
 * run has written its first checkpoint, so that a new run that fails early loses nothing.
 *
 * The claim is in two stages, so that data and config are validated completely before the folder
 * is changed: {@link claimRunFolder} inspects the folder (and locks it when it exists, so that a
 * second run fails at once); {@link RunFolderClaim.prepare}, called once the data has opened,
 * creates and changes it.
 */
import { mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError, UsageError } from "../util/errors.js";
import { removeStaleTemporaries } from "../util/fs.js";
import { lockFolder, type FolderLock } from "../util/lock.js";

/** The files and folders a run writes into its folder (anything else there is left alone). */
export const RUN_FILES = [
  "config.json",
  "metrics.jsonl",
  "checkpoint.safetensors",
  "model.safetensors",
  "model-ema.safetensors",
  "eval.json",
  "psnr.png",
  "samples",
] as const;

/** Where an overwritten run waits until the new run's first checkpoint. */
export const SET_ASIDE = ".overwritten-run";

/** How a run uses its folder: a new run, the continuation of the run there, or a run replacing it. */
export type FolderMode = "new" | "resume" | "overwrite";

/** A claimed run folder; see the module comment. */
export interface RunFolderClaim {
  readonly out: string;
  readonly mode: FolderMode;
  /** Create (or lock) the folder, remove stale temporaries, set an overwritten run aside. */
  prepare(): Promise<void>;
  /** The new run has written its first checkpoint: an overwritten run is deleted now. */
  committed(): Promise<void>;
  /** Release the lock; before {@link committed}, an overwritten run is put back. */
  release(): Promise<void>;
}

async function entries(dir: string): Promise<string[] | null> {
  const s = await stat(dir).catch(() => null);
  if (s === null) return null;
  if (!s.isDirectory()) throw new InputError(dir, "not a directory (expected a run folder for --out)");
  return readdir(dir);
}

const isRunFile = (name: string) => (RUN_FILES as readonly string[]).includes(name);

/**
 * The reports `anr eval` writes into a run folder (`eval-<split>-<weights>[-<model>].json|png`,
 * `…-sr.json`, `…-<H>x<W>.png`): measurements of the run's model, stale once it is replaced, so an
 * overwrite sets them aside with the run.
 */
const isEvalReport = (name: string) => /^eval-.+\.(json|png)$/.test(name);

/**
 * A run replaced with `--overwrite` was set aside, and the process died before the new run's
 * first checkpoint (kill -9, power loss): the old run is put back, each of its entries replacing
 * the new run's, its checkpoint last, so that an interrupted recovery is recovered again. After
 * that checkpoint (a checkpoint in the folder is then the new run's), the old run is deleted.
 */
async function recoverOverwrite(out: string): Promise<void> {
  const aside = join(out, SET_ASIDE);
  const names = await readdir(aside).catch(() => null);
  if (names === null) return;
  if (!(await readdir(out)).includes("checkpoint.safetensors")) {
    const last = (n: string) => (n === "checkpoint.safetensors" ? 1 : 0);
    for (const name of names.sort((a, b) => last(a) - last(b))) {
      await rm(join(out, name), { recursive: true, force: true });
      await rename(join(aside, name), join(out, name));
    }
  }
  await rm(aside, { recursive: true, force: true });
}

/**
 * Inspect `out` for a run in `mode`, refusing what would lose data or silently do something else
 * than asked: a run there without `--resume` or `--overwrite` (R3), `--resume` with no checkpoint
 * to resume (R5). An existing folder is locked now (`purpose` says by what, for another process's
 * message); nothing in it is changed until `prepare`, except that an interrupted overwrite is
 * undone.
 */
export async function claimRunFolder(
  out: string,
  mode: FolderMode,
  purpose: string,
): Promise<RunFolderClaim> {
  let lock: FolderLock | null = null;
  let created = false;
  let prepared = false;
  let aside = false;
  let committed = false;
  const inspect = async (): Promise<void> => {
    const names = await entries(out);
    if (names === null) {
      if (mode === "resume")
        throw new InputError(
          out,
          "no such run folder to resume (check --out, or start a run without --resume)",
        );
      return;
    }
    lock ??= await lockFolder(out, purpose);
    await recoverOverwrite(out);
    const present = (await readdir(out)).filter(isRunFile);
    if (mode === "resume" && !present.includes("checkpoint.safetensors"))
      throw new InputError(
        out,
        `holds no checkpoint.safetensors to resume from (${present.length ? `found ${present.join(", ")}` : "no run files"}); start afresh with --overwrite, or check --out`,
      );
    if (mode === "new" && present.length > 0)
      throw new UsageError(
        `${out}: already holds a run (${present.join(", ")}); continue it with --resume, or replace it with --overwrite (the old run is deleted only once the new one has written its first checkpoint)`,
      );
  };
  const unlock = async () => {
    const l = lock as FolderLock | null;
    lock = null;
    await l?.release();
  };
  try {
    await inspect();
  } catch (e) {
    await unlock();
    throw e;
  }
  return {
    out,
    mode,
    async prepare() {
      if (lock === null) {
        // A new folder, created only now that the data is known to be good; another process may
        // have made a run here in the meantime: inspect again under the lock.
        created = (await mkdir(out, { recursive: true })) !== undefined;
        await inspect();
      }
      prepared = true;
      await removeStaleTemporaries(out);
      await removeStaleTemporaries(join(out, "samples")).catch(() => []);
      if (mode === "overwrite") {
        const present = (await readdir(out)).filter((n) => isRunFile(n) || isEvalReport(n));
        if (present.length > 0) {
          await mkdir(join(out, SET_ASIDE));
          // The checkpoint first: while it is aside, a checkpoint in the folder is the new run's.
          const first = (n: string) => (n === "checkpoint.safetensors" ? 0 : 1);
          for (const name of present.sort((a, b) => first(a) - first(b)))
            await rename(join(out, name), join(out, SET_ASIDE, name));
          aside = true;
        }
      }
      await mkdir(join(out, "samples"), { recursive: true });
    },
    async committed() {
      if (committed) return;
      committed = true;
      if (aside) await rm(join(out, SET_ASIDE), { recursive: true, force: true });
    },
    async release() {
      if (prepared && !committed && mode !== "resume") {
        // Failed before its first checkpoint: the folder is left as it was found.
        if (aside) await recoverOverwrite(out).catch(() => undefined);
        else
          for (const name of RUN_FILES)
            await rm(join(out, name), { recursive: true, force: true }).catch(() => undefined);
      }
      await unlock();
      if (created && !committed) await rmdir(out).catch(() => undefined);
    },
  };
}
