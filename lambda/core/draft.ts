/**
 * A tick (or command) in progress: the record as it is being changed, the version it was loaded
 * at, and the events that explain each change. A tick may save more than once (the routing
 * protocol records a change before making it), so the draft also remembers what it already saved.
 */
import { transition } from './machine';
import type { Decision, MigrationEvent, MigrationStatus } from './model';
import type { Clock } from './ports';
import type { MigrationRecord } from './record';

export class Draft {
  /** Events not saved yet. */
  events: MigrationEvent[] = [];
  /** Events this call already saved (in an earlier checkpoint), oldest first. */
  readonly saved: MigrationEvent[] = [];
  decision?: Decision;
  /** The record as last loaded or saved: a commit with nothing new since is skipped. */
  original: MigrationRecord;
  /** Set when publishing saved events failed (they stay in the log). */
  publishError?: Error;

  /** When the tick started: the time the judge reasons with. */
  readonly now: number;

  constructor(
    public record: MigrationRecord,
    /** The stored version `record` was loaded at (0: not stored yet); advanced by every save. */
    public version: number,
    private readonly clock: Clock,
  ) {
    this.original = record;
    this.now = clock.now();
  }

  /**
   * The current time, for what happens after slow calls (a probe can take seconds): events and
   * the start of a step are stamped when they happen, not when the tick began.
   */
  current(): number {
    return this.clock.now();
  }

  /** True when nothing changed since the record was loaded or last saved. */
  get unchanged(): boolean {
    return this.events.length === 0 && JSON.stringify(this.record) === JSON.stringify(this.original);
  }

  /** Records a transition (or a decision that keeps the status) as an event and applies it. */
  move(
    to: MigrationStatus,
    type: string,
    decision: Pick<Decision, 'reason' | 'code'> & Partial<Pick<Decision, 'signals'>>,
    patch: Partial<MigrationRecord> = {},
  ): void {
    const atMs = this.current();
    const event = transition(this.record, to, {
      type,
      atMs,
      decision,
      ...(patch.weight !== undefined ? { weight: patch.weight } : {}),
      ...(patch.step !== undefined ? { step: patch.step } : {}),
    });
    this.events.push(event);
    this.record = { ...this.record, ...patch, status: to, eventSeq: event.seq, updatedAtMs: atMs };
  }

  patch(patch: Partial<MigrationRecord>): void {
    this.record = { ...this.record, ...patch };
  }

  /** Removes optional fields (a patch with `undefined` would keep the key). */
  omit(...keys: (keyof MigrationRecord)[]): void {
    const next: Record<string, unknown> = { ...this.record };
    for (const key of keys) delete next[key];
    this.record = next as unknown as MigrationRecord;
  }

  /** Marks the current record as saved at `version`. */
  savedAs(version: number): MigrationEvent[] {
    const events = this.events;
    this.version = version;
    this.original = this.record;
    this.saved.push(...events);
    this.events = [];
    return events;
  }
}

/** Another writer saved first in the middle of this call: stop, having changed nothing more. */
export class LostRaceError extends Error {
  constructor() {
    super('another writer saved first');
    this.name = 'LostRaceError';
  }
}
