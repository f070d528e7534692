/**
 * The migration's data: states, decisions, the stored record and the event log.
 * Plain JSON-serialisable types so the same record lives in DynamoDB, a local JSON file or a test.
 */
import type { ResidualReport } from './residual';
import type { AlarmSignal, CapacityStatus, HealthWindow, ProbeOutcome } from './ports';

/** Where a migration stands. */
export const MigrationStatus = {
  /** Created; nothing has happened yet. */
  PENDING: 'pending',
  /** Pre-traffic gate: old capacity pinned and ready, new side probed, alarms quiet. */
  GATING: 'gating',
  /** A weight change was requested and has not settled yet. */
  SHIFTING: 'shifting',
  /** Holding a step's weight for its bake time while the judge watches. */
  BAKING: 'baking',
  /** The new side takes 100%; the old side still runs at full scale. */
  PROMOTED: 'promoted',
  /** After promotion: watched for the soak time; a rollback is still instant. */
  SOAKING: 'soaking',
  /** Soak passed; waiting for teardown (the old side is still pinned). */
  COMPLETE: 'complete',
  /** The old side's pin was released. Terminal. */
  TORN_DOWN: 'torn-down',
  /** All traffic is back on the old side. Terminal. */
  ROLLED_BACK: 'rolled-back',
  /** Stopped by an operator or the judge; weight held until resume, abort or promote. */
  PAUSED: 'paused',
} as const;
export type MigrationStatus = (typeof MigrationStatus)[keyof typeof MigrationStatus];

/** Statuses a migration never leaves. */
export const TERMINAL_STATUSES: readonly MigrationStatus[] = [MigrationStatus.TORN_DOWN, MigrationStatus.ROLLED_BACK];

/** What the judge tells the controller to do with one window of signals. */
export const Action = {
  /** Healthy and baked long enough: go to the next step. */
  ADVANCE: 'advance',
  /** Not enough evidence either way (or capacity being restored): keep the weight, look again. */
  HOLD: 'hold',
  /** Evidence that new is worse (or a desync, or a firing alarm): weight 0 now. */
  ROLLBACK: 'rollback',
  /** Something a human must decide (e.g. the old side fails its probe too): freeze. */
  PAUSE: 'pause',
} as const;
export type Action = (typeof Action)[keyof typeof Action];

/** Everything the judge looked at for one decision; stored with the decision. */
export interface Signals {
  readonly window?: HealthWindow;
  /** Requests/errors accumulated on both sides since the current step began. */
  readonly stepTotals?: HealthWindow;
  readonly alarms?: readonly AlarmSignal[];
  readonly probes?: readonly ProbeOutcome[];
  readonly capacity?: CapacityStatus;
  /** Statistics the judge computed (log-likelihood ratios, rates, p-values …). */
  readonly stats?: Readonly<Record<string, number>>;
  /** After a rollback: what still reached the new side, and how long it took to drain. */
  readonly residual?: ResidualReport;
}

/** A decision with its reason and the evidence it was based on. */
export interface Decision {
  readonly action: Action;
  /** One sentence a human can read: why. */
  readonly reason: string;
  /** Stable machine-readable code for the reason (e.g. "error-rate-5xx", "stale-signals"). */
  readonly code: string;
  readonly signals: Signals;
}

/** Commands an operator (or a test) can send. */
export const Command = {
  PAUSE: 'pause',
  RESUME: 'resume',
  /** Roll back now. */
  ABORT: 'abort',
  /** Skip the remaining steps: go to 100% now (still soaks). */
  PROMOTE: 'promote',
  /** Release the old side's pin. Only after completion or rollback. */
  TEARDOWN: 'teardown',
} as const;
export type Command = (typeof Command)[keyof typeof Command];

/** One entry of the append-only event log. */
export interface MigrationEvent {
  readonly migrationId: string;
  /** Position in the log, from 1. */
  readonly seq: number;
  readonly atMs: number;
  /** e.g. "started", "gate-passed", "advanced", "held", "rolled-back", "promoted", "paused", … */
  readonly type: string;
  readonly from: MigrationStatus;
  readonly to: MigrationStatus;
  /** Weight on the new side after the event. */
  readonly weight: number;
  /** Index of the plan step after the event (-1 before the first shift). */
  readonly step: number;
  readonly reason: string;
  readonly code: string;
  readonly signals?: Signals;
}
