/**
 * What an operator (the `cutover` commands, later a web dashboard) sees of migrations, whatever
 * keeps them: the `MigrationSource` interface, the plain JSON shapes it returns, its errors and
 * the exit codes they map to. Two sources implement it: `AwsMigrationSource` (the state table and
 * the controller Lambda) and `LocalMigrationSource` (a rehearsal's state directory and its
 * command inbox).
 */
import type { JudgeConfig } from '../lambda/core/judge';
import { Command, MigrationStatus, type MigrationEvent } from '../lambda/core/model';

export type SourceKind = 'aws' | 'local';

/** A migration's status, or `damaged` when its stored state cannot be trusted (not acted on). */
export type StatusName = MigrationStatus | 'damaged';

/** One line of `list`. */
export interface MigrationSummary {
  readonly id: string;
  /** AWS: the key (`<function>:<alias>`, or a fleet's migration key) whose current migration this is. */
  readonly key?: string;
  readonly status: StatusName;
  /** Percent on the new side, as last seen in effect. */
  readonly weight?: number;
  /** Index of the plan step (-1 before the first shift), as in the event log. */
  readonly step?: number;
  /** Number of plan steps. */
  readonly steps?: number;
  readonly updatedAtMs?: number;
  /**
   * Local: true while a running rehearsal takes commands for it, false once that rehearsal
   * stopped; absent when no rehearsal ever took commands for it (see `inbox.ts`).
   */
  readonly live?: boolean;
  /** What is damaged, or what the controller found damaged and replaced. */
  readonly damage?: string;
  /** One line for a state that needs it (e.g. "recorded by the deploy; not started yet"). */
  readonly note?: string;
}

/** An event as `status` and `watch` show it (the full events, with signals, come from `history`). */
export interface EventLine {
  readonly seq: number;
  readonly atMs: number;
  readonly type: string;
  readonly from: MigrationStatus;
  readonly to: MigrationStatus;
  readonly weight: number;
  readonly step: number;
  readonly code: string;
  readonly reason: string;
}

/** What `status` returns: the record as an operator reads it. */
export interface MigrationState extends MigrationSummary {
  readonly source: SourceKind;
  /** The plan in one line (`5% 3s → 100% 3s, soak 3s, teardown manual`). */
  readonly plan?: string;
  /** Weights of the plan's steps, in order. */
  readonly stepWeights?: readonly number[];
  /** The judge's settings (thresholds a dashboard draws against the rates). */
  readonly judge?: JudgeConfig;
  readonly createdAtMs?: number;
  /** When the current step, promotion bake or soak began. */
  readonly phaseStartedAtMs?: number;
  /** The status a resume returns to. */
  readonly pausedFrom?: MigrationStatus;
  /** A weight change decided and recorded but not seen in effect yet. */
  readonly pendingChange?: {
    readonly kind: 'advance' | 'promote' | 'rollback';
    readonly weight: number;
    readonly fromWeight: number;
    readonly requestedAtMs: number;
  };
  /** The judge's latest decision. */
  readonly lastDecision?: { readonly action: string; readonly code: string; readonly reason: string };
  /** The old side's pin. */
  readonly oldCapacity?: { readonly pinned?: number; readonly released: boolean; readonly restoring: boolean };
  readonly metadata?: Readonly<Record<string, string>>;
  /** The newest events, oldest first (at most `RECENT_EVENTS`). */
  readonly recentEvents: readonly EventLine[];
}

/** What a control command did. */
export interface CommandOutcome {
  readonly source: SourceKind;
  /** The migration the command was applied to (or meant for). */
  readonly migrationId: string;
  readonly command: Command;
  readonly reason: string;
  /** True when the controller applied it (its events are in the log). */
  readonly applied: boolean;
  /** Why it was not applied, in one line (the controller's refusal). */
  readonly refusal?: string;
  /** The migration after the command. */
  readonly status?: string;
  readonly weight?: number;
  readonly step?: number;
  /** Events the command appended to the log. */
  readonly events?: number;
  /** Anything else worth a line (e.g. "applied by an earlier attempt whose answer was lost"). */
  readonly note?: string;
  /** AWS: the controller's answer as it came (its `ControllerResponse`, or its error payload). */
  readonly response?: unknown;
}

export interface CommandOptions {
  /**
   * Stops waiting for the outcome. Locally the command is withdrawn if no rehearsal took it yet;
   * on AWS an invoke in flight cannot be called back, so it is waited for.
   */
  readonly signal?: AbortSignal;
}

/** Read migrations and send them commands: what the CLI and a dashboard share. */
export interface MigrationSource {
  readonly kind: SourceKind;
  /** Migrations the source knows (AWS: every key's current migration; local: every one in the directory). */
  list(): Promise<MigrationSummary[]>;
  /** One migration, by id (AWS also by key: its current migration). Throws `UnknownMigrationError`. */
  status(migration: string): Promise<MigrationState>;
  /** The whole event log, oldest first. Throws `UnknownMigrationError`. */
  history(migration: string): Promise<readonly MigrationEvent[]>;
  /**
   * Sends an operator command and waits for its outcome. A refusal is an outcome
   * (`applied: false`); a command that could not be delivered, or whose outcome is unknown,
   * throws `SourceUnavailableError`.
   */
  command(migration: string, command: Command, reason: string, options?: CommandOptions): Promise<CommandOutcome>;
  /** Releases clients (sockets). Idempotent. */
  close(): void;
}

/** How many events `status` carries. */
export const RECENT_EVENTS = 5;

export const COMMANDS: readonly Command[] = Object.values(Command);

// ---------------------------------------------------------------------------------------------
// Exit codes (part of the CLI's interface; documented in --help and the README)
// ---------------------------------------------------------------------------------------------

export const EXIT = {
  /** status: complete, torn down · other commands: done. */
  ok: 0,
  /** status: rolled back · control commands: refused by the controller (or failed in it). */
  rolledBack: 1,
  refused: 1,
  usage: 2,
  /** status: still running (pending, gating, shifting, baking, promoted, soaking). */
  running: 3,
  paused: 4,
  /** status: damaged or unknown · any command: source unreadable, command not delivered or outcome unknown. */
  unknown: 5,
  /** Ctrl-C. */
  interrupted: 130,
} as const;

/** The exit code of `status` (and of `watch` when it ends) for a status. */
export function statusExitCode(status: StatusName | undefined): number {
  switch (status) {
    case MigrationStatus.COMPLETE:
    case MigrationStatus.TORN_DOWN:
      return EXIT.ok;
    case MigrationStatus.ROLLED_BACK:
      return EXIT.rolledBack;
    case MigrationStatus.PENDING:
    case MigrationStatus.GATING:
    case MigrationStatus.SHIFTING:
    case MigrationStatus.BAKING:
    // Promoted is at 100 % but not yet soaked: it can still roll back, so a CI must not pass yet.
    case MigrationStatus.PROMOTED:
    case MigrationStatus.SOAKING:
      return EXIT.running;
    case MigrationStatus.PAUSED:
      return EXIT.paused;
    default:
      return EXIT.unknown;
  }
}

/**
 * Where `watch` stops: the migration is over (torn down, rolled back) or done moving traffic and
 * waiting only for a teardown (complete).
 */
export function isSettled(status: StatusName | undefined): boolean {
  return status === MigrationStatus.TORN_DOWN || status === MigrationStatus.ROLLED_BACK || status === MigrationStatus.COMPLETE;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** An error with the exit code the CLI gives it. */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** Stable machine-readable code for `--json`. */
    readonly code: string,
  ) {
    super(message);
    this.name = 'OpsError';
  }
}

/** The source has no such migration. */
export class UnknownMigrationError extends OpsError {
  constructor(
    readonly migration: string,
    where: string,
  ) {
    super(`no migration ${JSON.stringify(migration)} in ${where}`, EXIT.unknown, 'unknown-migration');
    this.name = 'UnknownMigrationError';
  }
}

/** The source could not be read, or a command could not be delivered (or its outcome is unknown). */
export class SourceUnavailableError extends OpsError {
  constructor(message: string, code = 'source-unavailable') {
    super(message, EXIT.unknown, code);
    this.name = 'SourceUnavailableError';
  }
}

/** A call the source cannot serve as configured (e.g. a command without a controller). */
export class SourceUsageError extends OpsError {
  constructor(message: string) {
    super(message, EXIT.usage, 'usage');
    this.name = 'SourceUsageError';
  }
}
