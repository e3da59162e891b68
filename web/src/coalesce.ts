/**
 * Runs an async task so that calls never overlap: a call while it runs asks for one more run after
 * the current one (however many calls came meanwhile), so the last request is always served and
 * stale ones are dropped. Used by the zoom and orbit views, whose requests come with every
 * pointer move.
 */
export class CoalescedTask {
  #running: Promise<void> | null = null;
  #rerun = false;

  /**
   * `task` does the work; `onError` reports a failure (the loop then stops until the next call);
   * `onIdle` runs when the loop ends, either way.
   */
  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
    private readonly onIdle: () => void = () => {},
  ) {}

  /** Starts the task, or asks the running loop for one more pass; resolves when the loop ends. */
  run(): Promise<void> {
    if (this.#running) {
      this.#rerun = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#rerun = false;
          await this.task();
        } while (this.#rerun);
      } catch (e) {
        this.onError(e);
      } finally {
        this.#running = null;
        this.onIdle();
      }
    })();
    return this.#running;
  }

  /** Resolves when no pass is running or pending. */
  settled(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }
}
