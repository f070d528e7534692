/**
 * Fakes for the integration scenario: a clock that jumps instead of sleeping, a deployer that
 * records its calls (and can fail on cue), a migration reader that plays a scripted story through
 * ops/'s own `stateOf` (so states look exactly as `AwsMigrationSource` returns them), and a
 * traffic handle.
 */
import type { MigrationRecord } from '../../lambda/core/controller';
import { MigrationStatus as S, type MigrationEvent } from '../../lambda/core/model';
import type { ResidualReport } from '../../lambda/core/residual';
import { stateOf } from '../../ops/state';
import type { MigrationState, MigrationSummary } from '../../ops/types';
import type { CdkRunner } from '../../integ/cdk';
import { InterruptedError, Progress, type Clock } from '../../integ/poll';
import type { MigrationReader, TrafficHandle } from '../../integ/scenario';
import type { TrafficReport } from '../../integ/traffic';
import { makeEvent, makeRecord } from '../aws/fixtures';

export const MIGRATION_ID = 'demo-fn:live:2';

/** Sleeping moves time forward at once; an aborted signal interrupts as the real clock does. */
export class FakeClock implements Clock {
  constructor(public ms = 1_700_000_000_000) {}
  now(): number {
    return this.ms;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new InterruptedError();
    await new Promise((r) => setImmediate(r));
    this.ms += ms;
    if (signal?.aborted) throw new InterruptedError();
  }
}

export class FakeCdk implements CdkRunner {
  readonly stackName = 'CutoverInteg-test';
  readonly manualDestroy = 'npx cdk destroy CutoverInteg-test --force';
  readonly calls: string[] = [];
  /** Throws from the deploy of this release, or from the destroy. */
  failOn?: string;
  outputs: Record<string, string> = { ApiUrl: 'https://api.example.test/prod/', TableName: 'table', RecorderTableName: 'notes' };
  /** Called during each deploy (e.g. to press Ctrl-C while it runs). */
  duringDeploy?: (release: string) => void;

  async deploy(context: Readonly<Record<string, string>>): Promise<Readonly<Record<string, string>>> {
    const release = context['cutover:release'] ?? '?';
    this.calls.push(`deploy ${release}${context['cutover:faultRate'] ? ` fault ${context['cutover:faultRate']}` : ''}`);
    this.duringDeploy?.(release);
    if (this.failOn === `deploy ${release}`) throw new Error(`cdk deploy of release ${release} failed (injected)`);
    return this.outputs;
  }

  async destroy(): Promise<void> {
    this.calls.push('destroy');
    if (this.failOn === 'destroy') throw new Error('stack in DELETE_FAILED (injected)');
  }
}

export class FakeTraffic implements TrafficHandle {
  stopped = false;
  constructor(private readonly answers = 100) {}
  ok(): number {
    return this.answers;
  }
  report(): TrafficReport {
    return { sent: this.answers, byStatus: { 200: this.answers }, failed: 0, skipped: 0 };
  }
  async stop(): Promise<TrafficReport> {
    this.stopped = true;
    return this.report();
  }
}

/** One reading of the story: the record and the event log at that moment. */
export interface Frame {
  readonly record: Partial<MigrationRecord>;
  readonly events: readonly MigrationEvent[];
}

/** Plays `frames` one per `status` read (the last repeats); `history` returns the current frame's log. */
export class StorySource implements MigrationReader {
  statusReads = 0;
  closed = false;
  private frame = 0;
  constructor(
    private readonly frames: readonly Frame[],
    private readonly rows: MigrationSummary[] = [{ id: MIGRATION_ID, key: 'demo-fn:live', status: S.PENDING }],
    /** Events the log gains on later `history` reads (the drain report arrives after the rollback). */
    private readonly laterEvents: readonly MigrationEvent[] = [],
  ) {}
  private historyReads = 0;

  async list(): Promise<MigrationSummary[]> {
    return this.rows;
  }
  async status(migration: string): Promise<MigrationState> {
    this.statusReads++;
    const frame = this.frames[Math.min(this.frame, this.frames.length - 1)]!;
    this.frame++;
    return stateOf('aws', migration, { kind: 'record', raw: makeRecord(migration, frame.record) }, frame.events, { key: 'demo-fn:live' });
  }
  async history(): Promise<readonly MigrationEvent[]> {
    this.historyReads++;
    const frame = this.frames[Math.min(Math.max(this.frame - 1, 0), this.frames.length - 1)]!;
    // The first history read is the one right after the rollback; the drain events come later.
    return this.historyReads > 1 ? [...frame.events, ...this.laterEvents] : frame.events;
  }
  close(): void {
    this.closed = true;
  }
}

/** Events of the demo's bad release: created, gate, 10 % step, then the rollback (seq 1–4). */
export function badReleaseEvents(rollback: Partial<MigrationEvent> = {}): MigrationEvent[] {
  return [
    makeEvent(MIGRATION_ID, 1, { type: 'created', from: S.PENDING, to: S.PENDING, weight: 0, step: -1, code: 'created' }),
    makeEvent(MIGRATION_ID, 2, { type: 'gate-passed', from: S.GATING, to: S.SHIFTING, weight: 0, step: -1, code: 'gate-passed' }),
    makeEvent(MIGRATION_ID, 3, { type: 'advanced', from: S.SHIFTING, to: S.BAKING, weight: 10, step: 0, code: 'healthy' }),
    makeEvent(MIGRATION_ID, 4, {
      type: 'rolled-back',
      from: S.SHIFTING,
      to: S.ROLLED_BACK,
      weight: 0,
      step: 0,
      code: 'error-rate-5xx',
      reason: 'new 5XX rate 31.0% vs old 0.0% over 60 requests',
      ...rollback,
    }),
  ];
}

export const DRAINED: ResidualReport = {
  requestsAfterRollback: 3,
  wrongAnswersAfterRollback: 0,
  wrongAnswersBound: false,
  drainedAfterMs: 65_000,
  drained: true,
  peakRequestsPerMinute: 30,
  thresholdRequestsPerMinute: 0.3,
  activeDrain: false,
};

/** The drain events that follow the rollback (seq 5–6). */
export function drainEvents(report: ResidualReport = DRAINED): MigrationEvent[] {
  return [
    makeEvent(MIGRATION_ID, 5, { type: 'drain-requested', from: S.ROLLED_BACK, to: S.ROLLED_BACK, weight: 0, code: 'drain-requested' }),
    makeEvent(MIGRATION_ID, 6, {
      type: 'rollback-residual',
      from: S.ROLLED_BACK,
      to: S.ROLLED_BACK,
      weight: 0,
      code: report.drained ? 'residual-drained' : 'residual-not-drained',
      reason: 'new side drained 65 s after the rollback: 3 requests reached it meanwhile',
      signals: { residual: report },
    }),
  ];
}

/** Frames of a migration that gates, bakes at 10 %, then rolls back. */
export function rollbackStory(): Frame[] {
  const events = badReleaseEvents();
  return [
    { record: { status: S.GATING, weight: 0, step: -1 }, events: events.slice(0, 1) },
    { record: { status: S.BAKING, weight: 10, step: 0 }, events: events.slice(0, 3) },
    {
      record: {
        status: S.ROLLED_BACK,
        weight: 0,
        step: 0,
        lastDecision: { action: 'rollback', code: 'error-rate-5xx', reason: events[3]!.reason, signals: {} },
      },
      events,
    },
  ];
}

/** Progress lines, kept. */
export function captureProgress(clock: Clock): { progress: Progress; lines: string[] } {
  const lines: string[] = [];
  return { progress: new Progress((l) => lines.push(l), clock), lines };
}
