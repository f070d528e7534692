/**
 * Ctrl-C (SIGINT) and SIGTERM during `cutover rehearse`: the first stops the run cleanly (clients,
 * servers and probes stop, the summary or the JSON report is printed, marked interrupted), a second
 * one exits at once.
 *
 * The listeners stay registered for the whole run. With `process.once` the first signal removed
 * ours before the other listeners ran: `signal-exit` (registered by log-update's cursor handling,
 * in a terminal only) then saw itself alone and re-raised the signal, which killed the process
 * before any summary.
 *
 * One Ctrl-C in a terminal can reach the process more than once: the terminal signals the whole
 * foreground process group (npm, tsx's parent process, this one), and npm and tsx forward it to
 * their child as well, a few milliseconds apart. A repeat within `repeatGraceMs` of the first is
 * taken as the same Ctrl-C; only a later one is the user's second.
 */

/** The signals that interrupt a rehearsal. */
export type InterruptSignal = 'SIGINT' | 'SIGTERM';

export const INTERRUPT_SIGNALS: readonly InterruptSignal[] = ['SIGINT', 'SIGTERM'];

/** Exit code after a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM), as shells report it. */
export const SIGNAL_EXIT_CODES: Readonly<Record<InterruptSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

/** Repeats of the first signal within this long are the same interrupt (see the module comment). */
export const DEFAULT_REPEAT_GRACE_MS = 500;

/** The parts of `process` the guard uses (a fake in tests). */
export interface SignalSource {
  on(signal: InterruptSignal, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: InterruptSignal, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface InterruptGuardOptions {
  /** @default process */
  readonly source?: SignalSource;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default DEFAULT_REPEAT_GRACE_MS */
  readonly repeatGraceMs?: number;
  /** The first signal: the run is being stopped (the guard has already aborted `signal`). */
  readonly onFirst?: (signal: InterruptSignal) => void;
  /** A second signal: exit now with `code` (the default calls `process.exit`). */
  readonly onSecond?: (signal: InterruptSignal, code: number) => void;
}

/** Turns SIGINT/SIGTERM into an abort of the run, and a second one into an immediate exit. */
export class InterruptGuard {
  private readonly controller = new AbortController();
  private readonly source: SignalSource;
  private readonly now: () => number;
  private readonly repeatGraceMs: number;
  private first: { readonly signal: InterruptSignal; readonly atMs: number } | undefined;
  private readonly listener = (signal: NodeJS.Signals): void => this.receive(signal as InterruptSignal);
  private installed = false;

  constructor(private readonly options: InterruptGuardOptions = {}) {
    this.source = options.source ?? process;
    this.now = options.now ?? Date.now;
    this.repeatGraceMs = options.repeatGraceMs ?? DEFAULT_REPEAT_GRACE_MS;
  }

  /** Aborted by the first signal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first signal received, if any. */
  get received(): InterruptSignal | undefined {
    return this.first?.signal;
  }

  /** The exit code the run ends with: 0 when no signal came, else the first signal's. */
  exitCode(): number {
    return this.first ? SIGNAL_EXIT_CODES[this.first.signal] : 0;
  }

  install(): this {
    if (!this.installed) {
      for (const signal of INTERRUPT_SIGNALS) this.source.on(signal, this.listener);
      this.installed = true;
    }
    return this;
  }

  uninstall(): void {
    if (!this.installed) return;
    for (const signal of INTERRUPT_SIGNALS) this.source.off(signal, this.listener);
    this.installed = false;
  }

  private receive(signal: InterruptSignal): void {
    const now = this.now();
    if (!this.first) {
      this.first = { signal, atMs: now };
      this.controller.abort(signal);
      this.options.onFirst?.(signal);
      return;
    }
    // The same Ctrl-C forwarded by npm or tsx, not the user's second one.
    if (signal === this.first.signal && now - this.first.atMs < this.repeatGraceMs) return;
    const code = SIGNAL_EXIT_CODES[signal];
    if (this.options.onSecond) this.options.onSecond(signal, code);
    else process.exit(code);
  }
}
