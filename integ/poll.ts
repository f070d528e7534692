/**
 * Bounded waiting: every wait of the integration test has a deadline, and says at the deadline what
 * it waited for and what it saw last. Time comes from a `Clock` so that tests run the same polls on
 * a fake clock in milliseconds.
 */

/** Time and sleeping, injectable. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with `InterruptedError` as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new InterruptedError());
      const onAbort = () => {
        clearTimeout(timer);
        reject(new InterruptedError());
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** A check of the test failed: what was expected, and what was found instead. */
export class IntegAssertionError extends Error {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${what}: expected ${expected}; found ${found}`);
    this.name = 'IntegAssertionError';
  }
}

/** A wait reached its deadline. */
export class IntegTimeoutError extends IntegAssertionError {
  constructor(what: string, expected: string, found: string, timeoutMs: number) {
    super(`${what} (gave up after ${formatDuration(timeoutMs)})`, expected, found);
    this.name = 'IntegTimeoutError';
  }
}

/** The operator pressed Ctrl-C (or the run was told to stop). */
export class InterruptedError extends Error {
  constructor() {
    super('interrupted');
    this.name = 'InterruptedError';
  }
}

export interface PollOptions<T> {
  /** What is awaited, for messages ("migration rolled back"). */
  readonly what: string;
  /** What the deadline message says was expected. */
  readonly expected: string;
  /** One reading. A thrown error counts as "not yet" (AWS reads right after a deploy can fail); the last one is reported. */
  readonly read: () => Promise<T>;
  /**
   * True when the reading is what was awaited. It may throw (an `IntegAssertionError` for a state
   * the wait can never leave, e.g. a bad release promoted): that ends the wait at once.
   */
  readonly done: (value: T) => boolean;
  /** How a reading is shown in the deadline message. @default JSON */
  readonly show?: (value: T) => string;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Called with every reading (progress lines). */
  readonly onRead?: (value: T) => void;
}

/** Reads until `done`, at most until `timeoutMs` after the start; throws `IntegTimeoutError` then. */
export async function pollUntil<T>(options: PollOptions<T>): Promise<T> {
  const clock = options.clock ?? realClock;
  const show = options.show ?? ((value: T) => JSON.stringify(value));
  if (!(options.timeoutMs > 0) || !(options.intervalMs > 0)) {
    throw new RangeError(`pollUntil needs a positive timeoutMs and intervalMs, got ${options.timeoutMs} and ${options.intervalMs}`);
  }
  const deadline = clock.now() + options.timeoutMs;
  let last = 'nothing (no reading yet)';
  for (;;) {
    if (options.signal?.aborted) throw new InterruptedError();
    let value: T | undefined;
    let ok = false;
    try {
      value = await options.read();
      ok = true;
    } catch (error) {
      if (error instanceof InterruptedError) throw error;
      last = `an error: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (ok) {
      options.onRead?.(value as T);
      if (options.done(value as T)) return value as T;
      last = show(value as T);
    }
    const left = deadline - clock.now();
    if (left <= 0) throw new IntegTimeoutError(options.what, options.expected, last, options.timeoutMs);
    await clock.sleep(Math.min(options.intervalMs, left), options.signal);
  }
}

/** `1h02m`, `3m05s`, `12s`, `850ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

/** Progress lines with the time elapsed since the run began: `[integ  3m05s] deploying release 2`. */
export class Progress {
  private readonly startedAt: number;
  constructor(
    private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
    private readonly clock: Clock = realClock,
  ) {
    this.startedAt = clock.now();
  }

  elapsedMs(): number {
    return this.clock.now() - this.startedAt;
  }

  line(message: string): void {
    this.write(`[integ ${formatDuration(this.elapsedMs()).padStart(6)}] ${message}`);
  }
}
