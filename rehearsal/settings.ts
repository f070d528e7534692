/**
 * What a rehearsal can be told (`RehearsalOptions`), the settings that suit a plan measured in
 * seconds on loopback, its state directory, and the error of a run that failed once its migration
 * had started. Apart from the run loop (`run.ts`, which re-exports all of it) because they are what
 * callers need to know, not how the run goes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JudgeConfig } from '../lambda/core/judge';
import type { MigrationEvent } from '../lambda/core/model';
import type { PlanSpec } from '../lambda/core/plan';
import type { ProbeOptions } from '../lambda/probe';
import type { RehearsalFrame } from './report';
import type { Scenario } from './scenarios';
import type { DnsSettings, ShiftMode } from './shift';

export interface RehearsalOptions {
  readonly scenario: Scenario;
  /** The (compressed) plan to run. */
  readonly plan: PlanSpec;
  /**
   * Port of the traffic router on 127.0.0.1; 0 picks a free one. Proxy mode only: with DNS there
   * is no router (the demo servers always take free ports).
   * @default 0
   */
  readonly port?: number;
  /**
   * How traffic is shifted: `proxy`, a router that decides per request, or `dns`, weighted answers
   * of a local resolver that clients cache (see `rehearsal/shift.ts`).
   * @default 'proxy'
   */
  readonly shift?: ShiftMode;
  /** DNS settings (TTL, share of clients that ignore it, …) for `shift: 'dns'`. */
  readonly dns?: DnsSettings;
  /**
   * After a rollback with DNS: how long the new side, once the TTL has passed, keeps accepting
   * connections (each answered with `Connection: close`) before it refuses them, which sends the
   * clients that ignore the TTL to a new lookup. See `watchResidual`.
   * @default 1000
   */
  readonly drainIntervalMs?: number;
  /**
   * Whether to drain the new side after a rollback (`Connection: close` at once, with DNS refusing
   * connections after the TTL and the drain interval). False (`--no-drain`) leaves it answering
   * normally, Keep-Alive kept and connections accepted, as in the incident before engineers closed
   * the connections by hand; the residual watch then only measures.
   * @default true
   */
  readonly activeDrain?: boolean;
  /**
   * The longest the residual watch lasts after a rollback, ms; past it the residual reports
   * `drained: false`.
   * @default - see `defaultMaxWatchMs` (25 s with DNS's defaults, 7 s through the proxy)
   */
  readonly maxWatchMs?: number;
  /**
   * Seed of every random choice (routing, client mix, injected 5XX).
   * @default 1
   */
  readonly seed?: number;
  /**
   * Where the migration record and event log are kept (created if missing). While the rehearsal
   * runs with its state kept (`keepState`), it takes the operator commands sent to this directory
   * (`cutover pause|resume|abort|promote --full|teardown <id> --state-dir <dir>`, see
   * `ops/inbox.ts`) before each tick.
   * @default - a new temporary directory (see `temporaryStateDir`)
   */
  readonly stateDir?: string;
  /**
   * Whether to leave the state directory in place after the run, for other commands to read.
   * When false the directory is removed at the end (interrupted or not), unless the run failed:
   * then it is kept and the error, a `RehearsalFailedError`, says where.
   * @default - true when `stateDir` is given, false for the temporary directory
   */
  readonly keepState?: boolean;
  /**
   * Time between controller ticks, ms.
   * @default 200
   */
  readonly tickMs?: number;
  /**
   * Pause between periodic probes of the new side, ms.
   * @default 500
   */
  readonly probeIntervalMs?: number;
  /**
   * Synthetic Keep-Alive clients and their total request rate.
   * @default 8 clients (40 with DNS), 200 requests/s, 2 % oversized event posts
   */
  readonly clients?: { readonly concurrency?: number; readonly ratePerSecond?: number; readonly oversizeShare?: number };
  /**
   * Workers of the old side (its full scale).
   * @default 8
   */
  readonly oldWorkers?: number;
  /**
   * Judge settings for the compressed plan.
   * @default REHEARSAL_JUDGE
   */
  readonly judge?: Partial<JudgeConfig>;
  /**
   * Give up (outcome `halted`) after this long. Time the migration spends paused by an operator's
   * `cutover pause` does not count: a human holds it, and `resume` or `abort` ends the hold.
   * @default - three times the plan's minimum duration plus 30 s
   */
  readonly timeLimitMs?: number;
  /** Aborting stops the rehearsal (Ctrl-C); the report covers what happened so far. */
  readonly signal?: AbortSignal;
  /**
   * Called once the migration is started, with its id: what the operator commands name
   * (`cutover pause <id> --state-dir <dir>`).
   */
  readonly onStarted?: (migrationId: string) => void;
  /** Called for every event of the migration, as it happens. */
  readonly onEvent?: (event: MigrationEvent, elapsedMs: number) => void;
  /** Called after every tick with a snapshot for a live view. */
  readonly onFrame?: (frame: RehearsalFrame) => void;
  /**
   * Probe settings.
   * @default REHEARSAL_PROBE
   */
  readonly probe?: Omit<ProbeOptions, 'baseUrl'>;
}


/**
 * Judge settings that suit a plan measured in seconds at a few hundred requests per second.
 *
 * `latencyMarginMs` is 150 (default 50): a request counts as slow above the old side's p99 plus
 * 150 ms. On loopback a busy machine stalls the event loop for tens of milliseconds at a time;
 * such stalls hit both sides alike, which the latency test's new-against-old comparison cancels,
 * but a margin well above them keeps the slow counts about the application. The `latency`
 * scenario's 250 ms fault stays far above it.
 */
export const REHEARSAL_JUDGE: Partial<JudgeConfig> = {
  minRequests: 30,
  latencyMarginMs: 150,
  maxMissingWindows: 3,
  maxHoldMs: 15_000,
};

/**
 * Probe settings for loopback: the demo servers answer in milliseconds, so a 100 ms idle watch
 * (instead of the probe's 250 ms default, sized for real networks) still sees any stray bytes and
 * brings a probe from about 2.8 s down to about 1.3 s.
 */
export const REHEARSAL_PROBE: Omit<ProbeOptions, 'baseUrl'> = { healthPath: '/health', idleMs: 100 };

/** Default of `RehearsalOptions.drainIntervalMs`. */
export const DEFAULT_DRAIN_INTERVAL_MS = 1000;

/** A new temporary directory for a rehearsal's state (the default `stateDir`). */
export function temporaryStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'cutover-rehearsal-'));
}

/**
 * A rehearsal that failed (not a usage error, not an interrupt) after its migration had started:
 * its state directory, temporary or not, is kept for a look at the record and event log.
 */
export class RehearsalFailedError extends Error {
  constructor(
    override readonly cause: unknown,
    /** Where the record and event log were left. */
    readonly stateDir: string,
  ) {
    super(`${cause instanceof Error ? cause.message : String(cause)} (rehearsal state kept in ${stateDir})`, { cause });
    this.name = 'RehearsalFailedError';
  }
}
