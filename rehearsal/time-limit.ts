/**
 * The rehearsal's time limit (`RehearsalOptions.timeLimitMs`), which leaves out the time an
 * operator holds the migration paused (`cutover pause … --state-dir`): a human decides how long
 * that lasts, and `resume` or `abort` ends it. A rehearsal that ran out of time while someone was
 * looking at it would end as `halted` under their eyes.
 */
export class TimeLimit {
  private heldMs = 0;
  private heldSince: number | undefined;

  constructor(
    /** The running time allowed, ms. */
    private readonly limitMs: number,
    /** When the run started, epoch ms. */
    private readonly startedAtMs: number,
  ) {
    if (!Number.isFinite(limitMs) || limitMs <= 0) throw new RangeError(`timeLimitMs must be a positive number of milliseconds, got ${limitMs}`);
  }

  /** Says whether an operator holds the migration now; call it whenever that may have changed. */
  held(holding: boolean, nowMs: number): void {
    if (holding && this.heldSince === undefined) this.heldSince = nowMs;
    if (!holding && this.heldSince !== undefined) {
      this.heldMs += nowMs - this.heldSince;
      this.heldSince = undefined;
    }
  }

  /** The running time that counts against the limit: all of it but the operator's holds, ms. */
  counted(nowMs: number): number {
    const holding = this.heldSince !== undefined ? nowMs - this.heldSince : 0;
    return nowMs - this.startedAtMs - this.heldMs - holding;
  }

  /** True once the counted time is past the limit (never while an operator holds the migration). */
  exceeded(nowMs: number): boolean {
    return this.counted(nowMs) > this.limitMs;
  }
}
