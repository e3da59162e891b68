/**
 * The error model. Everything anr raises on purpose is an `AnrError`, which carries the exit code
 * the CLI returns; anything else that escapes a command is a bug and is reported as one.
 *
 * - `UsageError`: the command line is wrong (exit 2).
 * - `InputError`: a file or setting the user gave is wrong; the message starts with the file (or
 *   preset, or flag) and names the field (exit 2).
 * - `CheckFailed`: the command ran and a check it performs failed, e.g. a golden comparison
 *   (exit 1).
 */
export abstract class AnrError extends Error {
  /** The process exit code the CLI returns for this error. */
  abstract readonly exitCode: number;
}

/** A command-line mistake: printed without a stack trace; exit code 2 (or the given code, e.g. 0 for --help). */
export class UsageError extends AnrError {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A file, preset or setting the user gave is not what was expected. `source` is what the user
 * would look at (a path, `preset "demo"`, `--set train.lr`); the message starts with it.
 */
export class InputError extends AnrError {
  readonly exitCode: number = 2;
  constructor(
    readonly source: string,
    detail: string,
  ) {
    super(`${source}: ${detail}`);
    this.name = "InputError";
  }
}

/** The part of a zod error that {@link zodIssueLines} reads (structural, so util needs no zod). */
export interface ZodIssues {
  readonly issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[];
}

/**
 * zod's issues as lines "field.path: message" ("(root)" for the value itself): the one form in
 * which every config, spec and list error names its fields. The caller names the file and the
 * section (e.g. `ConfigError(file, lines, "run config")`).
 */
export function zodIssueLines(e: ZodIssues): string[] {
  return e.issues.map((i) => `${i.path.length ? i.path.map(String).join(".") : "(root)"}: ${i.message}`);
}

/** The command ran, and a check it performs failed (exit 1). */
export class CheckFailed extends AnrError {
  readonly exitCode: number = 1;
  constructor(message: string) {
    super(message);
    this.name = "CheckFailed";
  }
}

const FILE_SYSTEM_CODES = new Set([
  "ENOENT",
  "EACCES",
  "EPERM",
  "EISDIR",
  "ENOTDIR",
  "EEXIST",
  "ENOSPC",
  "EROFS",
  "ENOTEMPTY",
  "EMFILE",
]);

/**
 * Whether `e` is an operating-system error about a path (a missing file, a read-only folder):
 * the user's environment, not a bug. Node puts the path in the message.
 */
export function isFileSystemError(e: unknown): e is Error & { code: string; path?: string } {
  if (!(e instanceof Error)) return false;
  const code: unknown = (e as { code?: unknown }).code;
  return typeof code === "string" && FILE_SYSTEM_CODES.has(code);
}
