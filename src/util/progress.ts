/**
 * A progress reporter for long loops (training steps, evaluation sweeps).
 *
 * On a terminal it redraws a single line in place with `\r`; elsewhere (CI logs, pipes, files)
 * redrawing would leave a wall of carriage returns, so it prints an ordinary line at most every
 * 10 s and once at the end.
 */

/** What `Progress` writes to. `process.stderr`/`process.stdout` satisfy it. */
export interface ProgressStream {
  write(chunk: string): boolean;
  /** True when the stream is a terminal, which enables in-place redraws. */
  isTTY?: boolean;
  /** Terminal width, used to keep the redrawn line from wrapping (a wrapped line can't be redrawn). */
  columns?: number;
}

/** Options for {@link Progress}. */
export interface ProgressOptions {
  /** Number of iterations the loop will run. */
  total: number;
  /** Printed before the bar, e.g. "train". */
  label?: string;
  /** Where to write; defaults to `process.stderr` so progress doesn't mix into piped stdout. */
  stream?: ProgressStream | NodeJS.WriteStream;
  /** Minimum milliseconds between redraws on a TTY (default 200). */
  intervalMs?: number;
  /** Clock in milliseconds; injectable so tests needn't sleep. Defaults to `performance.now`. */
  now?: () => number;
  /**
   * The rate shown: `per` items of `unit` per iteration, e.g. `{ unit: "images", per: 16 }` for
   * training steps of 16 images shows "images/s". Default: iterations, "it/s".
   */
  rate?: { unit: string; per: number };
}

/** Where reporters write when not told: `undefined` is `process.stderr`, `null` nowhere. */
let defaultStream: ProgressStream | null | undefined;

/**
 * Send every {@link Progress} made without a `stream` to `stream` (`null`: silence them, as the
 * command line's `--quiet` does); `undefined` restores the default, `process.stderr`.
 */
export function setDefaultProgressStream(stream: ProgressStream | null | undefined): void {
  defaultStream = stream;
}

const SILENT: ProgressStream = { write: () => true };

/** Fields shown after the counter; numbers are printed to 4 significant digits. */
export type ProgressFields = Record<string, number | string>;

const PLAIN_INTERVAL_MS = 10_000;
// Rate is measured over roughly this much recent history so it tracks speed changes
// (e.g. JIT warm-up ending) instead of averaging over the whole run.
const RATE_WINDOW_MS = 10_000;
const BAR_WIDTH = 20;

/**
 * Formats seconds as `h:mm:ss` (hours unbounded, e.g. `27:00:00`); `-:--:--` when unknown.
 * `formatDuration(3725) === "1:02:05"`.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "-:--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}

/**
 * A bar `[####......]` with `width` cells between the brackets. The fraction is clamped to
 * [0, 1] (NaN counts as 0) and rounded down, so the bar is only full when the loop is.
 */
export function formatBar(fraction: number, width: number): string {
  const w = Math.max(0, Math.floor(width));
  const f = Number.isNaN(fraction) ? 0 : Math.min(1, Math.max(0, fraction));
  const filled = Math.min(w, Math.floor(f * w));
  return `[${"#".repeat(filled)}${".".repeat(w - filled)}]`;
}

/**
 * Formats a field value: integers up to 1e6 as-is (step counts stay exact), other numbers to
 * 4 significant digits, switching to exponent form outside [1e-3, 1e6).
 */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const ax = Math.abs(x);
  if (ax >= 1e-3 && ax < 1e6) return String(Number(x.toPrecision(4)));
  return x.toExponential(3);
}

function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "number" ? formatNumber(v) : v}`)
    .join(" ");
}

/**
 * Reports progress of a loop of known length.
 *
 * ```ts
 * const p = new Progress({ total: steps, label: "train" });
 * for (let i = 0; i < steps; i++) { ...; p.update(i + 1, { loss }); }
 * p.done();
 * ```
 */
export class Progress {
  readonly #total: number;
  readonly #label: string;
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #start: number;
  readonly #rateUnit: string;
  readonly #ratePer: number;
  // (time ms, done) samples within the rate window; the oldest is kept as the window's anchor.
  #samples: [number, number][];
  #lastDraw = -Infinity;
  #lastLen = 0;
  #lastDone = 0;
  #lastFields: ProgressFields = {};
  #finished = false;

  constructor(opts: ProgressOptions) {
    this.#total = Math.max(0, opts.total);
    this.#label = opts.label ?? "";
    this.#stream = opts.stream ?? (defaultStream === null ? SILENT : (defaultStream ?? process.stderr));
    this.#rateUnit = opts.rate?.unit ?? "it";
    this.#ratePer = opts.rate?.per ?? 1;
    this.#tty = this.#stream.isTTY === true;
    this.#intervalMs = opts.intervalMs ?? 200;
    this.#now = opts.now ?? (() => performance.now());
    this.#start = this.#now();
    this.#samples = [[this.#start, 0]];
  }

  /**
   * Records that `done` of `total` iterations are complete, with fields to show (e.g. loss).
   * Cheap to call every iteration: output is throttled to `intervalMs` on a TTY and to one line
   * per 10 s otherwise (the first call always prints, so logs show the loop started).
   */
  update(done: number, fields: ProgressFields = {}): void {
    if (this.#finished) return;
    this.#lastDone = done;
    this.#lastFields = fields;
    const t = this.#now();
    const gap = this.#tty ? this.#intervalMs : Math.max(this.#intervalMs, PLAIN_INTERVAL_MS);
    if (t - this.#lastDraw < gap) return;
    this.#lastDraw = t;
    this.#sample(t, done);
    this.#emit(false);
  }

  /** Prints the final state (with `fields`, or the last ones given) and ends the line. Idempotent. */
  done(fields?: ProgressFields): void {
    if (this.#finished) return;
    this.#finished = true;
    if (fields) this.#lastFields = fields;
    this.#sample(this.#now(), this.#lastDone);
    this.#emit(true);
  }

  #sample(t: number, done: number): void {
    const s = this.#samples;
    s.push([t, done]);
    // Drop samples once the next one is still a full window old, keeping at least two points.
    while (s.length > 2 && t - s[1]![0] >= RATE_WINDOW_MS) s.shift();
  }

  /** Iterations per second over the recent window; NaN until time has passed. */
  #rate(): number {
    const s = this.#samples;
    const [t0, d0] = s[0]!;
    const [t1, d1] = s[s.length - 1]!;
    return t1 > t0 ? ((d1 - d0) * 1000) / (t1 - t0) : NaN;
  }

  #emit(final: boolean): void {
    const done = this.#lastDone;
    const total = this.#total;
    const rate = this.#rate();
    const shown = rate * this.#ratePer;
    const elapsed = (this.#now() - this.#start) / 1000;
    const remaining = Math.max(0, total - done);
    const eta = remaining === 0 ? 0 : rate > 0 ? remaining / rate : NaN;
    const rateStr = `${Number.isFinite(shown) ? formatNumber(shown) : "?"} ${this.#rateUnit}/s`;
    const timeStr = final ? `elapsed ${formatDuration(elapsed)}` : `ETA ${formatDuration(eta)}`;
    const fieldStr = formatFields(this.#lastFields);
    const label = this.#label ? `${this.#label} ` : "";

    if (this.#tty) {
      const parts = [`${label}${formatBar(total > 0 ? done / total : 1, BAR_WIDTH)} ${done}/${total}`];
      if (fieldStr) parts.push(fieldStr);
      parts.push(rateStr, timeStr);
      let line = parts.join(" | ");
      const cols = this.#stream.columns;
      // Leave the last column free: writing into it makes some terminals wrap immediately.
      if (cols !== undefined && cols > 1 && line.length > cols - 1) line = line.slice(0, cols - 1);
      // Pad over the previous line's tail instead of using an ANSI erase, so dumb terminals work too.
      const pad = " ".repeat(Math.max(0, this.#lastLen - line.length));
      this.#lastLen = line.length;
      this.#stream.write(`\r${line}${pad}${final ? "\n" : ""}`);
    } else {
      const pct = total > 0 ? ` (${((100 * done) / total).toFixed(1)}%)` : "";
      const parts = [`${label}${done}/${total}${pct}`];
      if (fieldStr) parts.push(fieldStr);
      parts.push(rateStr, timeStr);
      this.#stream.write(`${parts.join(" | ")}\n`);
    }
  }
}
