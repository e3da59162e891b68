/** A command-line mistake: printed without a stack trace; exit code 2 (or the given code, e.g. 0 for --help). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = "UsageError";
  }
}
