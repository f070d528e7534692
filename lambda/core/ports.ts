/**
 * Ports: the small interfaces through which the pure core reaches time and the outside world.
 *
 * The core (plan, state machine, judge, capacity rules, controller) imports only this file and its
 * own modules. Adapters implement these interfaces: `lambda/aws/*` against AWS services,
 * `local/*` against loopback servers and files. Every value that crosses a port is plain JSON so
 * that it can be stored, logged and replayed.
 *
 * Conventions: times are epoch milliseconds (`...AtMs`), durations are milliseconds (`...Ms`),
 * weights are percent of traffic on the NEW side (0–100, fractions allowed).
 */

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/** Where the core gets the time. Unit tests drive the engine with a fake clock. */
export interface Clock {
  /** Current time, epoch milliseconds. */
  now(): number;
}

// ---------------------------------------------------------------------------------------------
// Traffic
// ---------------------------------------------------------------------------------------------

/** The weight currently routed to the new side, with a revision for optimistic concurrency. */
export interface TrafficState {
  /** Percent of requests routed to the new side, 0–100. */
  readonly weight: number;
  /**
   * Opaque revision of the routing configuration (a Lambda alias RevisionId, a file version, …).
   * `setWeight` applies only if the revision still matches.
   */
  readonly revision: string;
  /**
   * False while a change is still propagating (e.g. Route 53 PENDING). The controller does not
   * judge a step whose weight has not settled.
   * @default true
   */
  readonly settled?: boolean;
}

/** Thrown by `TrafficPort.setWeight` when the revision no longer matches (someone else wrote). */
export class RevisionConflictError extends Error {
  constructor(
    readonly expectedRevision: string,
    readonly actualRevision: string | undefined,
  ) {
    super(`routing revision changed: expected ${expectedRevision}, found ${actualRevision ?? 'unknown'}`);
    this.name = 'RevisionConflictError';
  }
}

/** Reads and sets the share of traffic that goes to the new side. */
export interface TrafficPort {
  getWeight(): Promise<TrafficState>;
  /**
   * Sets the new side's weight if `expectedRevision` still matches, else throws
   * `RevisionConflictError`. Weight 100 means "promote": the new side becomes the main one with no
   * extra routing. Weight 0 means "all traffic on the old side".
   */
  setWeight(weight: number, expectedRevision: string): Promise<TrafficState>;
  /**
   * Readies the routing before the first shift, e.g. lowers a DNS record's TTL to the plan's limit.
   * Called by the gate on every tick until it answers `ready: true` (so it must be idempotent);
   * the gate holds meanwhile with the answer's reason in the timeline.
   * @default - always ready
   */
  prepare?(): Promise<TrafficPreparation>;
  /**
   * After a rollback: makes clients that still reach the new side leave it sooner (e.g. the new
   * fleet's load balancer shortens its client Keep-Alive, so connections end and clients resolve
   * the name again). Idempotent; returns one line for the timeline.
   * @default - the routing drains by itself (each request is routed anew)
   */
  drain?(): Promise<string>;
  /** Undoes `drain` at teardown (idempotent; nothing to undo is not an error). Returns one line. */
  undrain?(): Promise<string>;
}

/** What `TrafficPort.prepare` found or did. */
export interface TrafficPreparation {
  /** False while the routing is not ready for the first shift. */
  readonly ready: boolean;
  /** One line for the timeline, e.g. "TTL of api.example.com lowered from 300 s to 60 s". */
  readonly reason: string;
  /**
   * When the routing will be ready, epoch ms (e.g. once the old, longer TTL has expired from every
   * cache). The gate keeps it in the record, so a later tick that finds nothing left to change
   * still waits until then.
   */
  readonly readyAtMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Health signals
// ---------------------------------------------------------------------------------------------

/** Counts for one side (old or new) over one window. */
export interface SideSignals {
  /** Requests served in the window. */
  readonly requests: number;
  /** Responses with a 4XX status. */
  readonly errors4xx: number;
  /** Responses with a 5XX status (and failed invocations/connections). */
  readonly errors5xx: number;
  /**
   * A latency percentile in milliseconds (p99 unless the adapter says otherwise); undefined when
   * there were no requests or the source has no data.
   */
  readonly latencyMs?: number;
  /**
   * Requests slower than the `slowerThanMs` the window was read with: the judge's latency test
   * compares these counts between the sides (a two-sample test on the distributions' tails, not
   * on two point percentiles). Undefined when the read did not ask for them or the source cannot
   * count them; the source must classify both sides by the same rule, so that identical
   * distributions give identical shares.
   */
  readonly slowRequests?: number;
}

/** One window of health signals, old against new. */
export interface HealthWindow {
  /** Start of the window, epoch ms (inclusive). */
  readonly fromMs: number;
  /** End of the window, epoch ms (exclusive). */
  readonly toMs: number;
  /** Baseline: the old side. */
  readonly old: SideSignals;
  /** Canary: the new side. */
  readonly new: SideSignals;
}

/** State of one of the user's alarms. */
export interface AlarmSignal {
  readonly name: string;
  readonly state: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';
  /** Why the alarm is in that state (CloudWatch's StateReason). */
  readonly reason?: string;
  /**
   * When the alarm entered this state, epoch ms, as its source stamps it (CloudWatch's
   * StateTransitionedTimestamp, or the state change event's timestamp). Orders states that arrive
   * by different paths. @default - unknown
   */
  readonly changedAtMs?: number;
}

/**
 * Why the controller reads the alarms.
 * - `confirm`: the answer may let the migration move on (more traffic, promotion, the end of the
 *   soak), or the last confirmation is getting old: the adapter must ask the alarms' source now.
 * - `watch`: a routine check in the middle of a bake. An adapter that is sent every state change
 *   as it happens (EventBridge "CloudWatch Alarm State Change") may answer from those; one that
 *   is not asks the source, as for `confirm`.
 */
export type AlarmReadPurpose = 'confirm' | 'watch';

/** What a window read should count besides requests and errors. */
export interface WindowReadOptions {
  /**
   * Count the requests slower than this many milliseconds on each side (`SideSignals.slowRequests`).
   * @default - no slow-request counts
   */
  readonly slowerThanMs?: number;
}

/**
 * Reads health signals. Returns `undefined` (not zeros) when no data exists for the window, so
 * that missing data can never look healthy.
 */
export interface HealthPort {
  /**
   * Signals for the window [fromMs, toMs). A source whose latest period is still filling up may
   * return a shorter window (only completed periods); the returned `fromMs`/`toMs` say what it
   * covers and the controller continues from its `toMs`.
   */
  readWindow(fromMs: number, toMs: number, options?: WindowReadOptions): Promise<HealthWindow | undefined>;
  /**
   * Current state of the alarms the user attached to the migration (empty if none).
   * @param purpose see `AlarmReadPurpose`; @default 'confirm'
   */
  readAlarms(purpose?: AlarmReadPurpose): Promise<readonly AlarmSignal[]>;
}

// ---------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------

/** Outcome of one Keep-Alive probe. */
export type ProbeVerdict = 'ok' | 'desync' | 'inconclusive';

/** Which side a probe checked. */
export type Side = 'old' | 'new';

/** The summary of a probe that the core needs to decide (the full report stays with the probe). */
export interface ProbeOutcome {
  readonly side: Side;
  readonly verdict: ProbeVerdict;
  /** When the probe finished, epoch ms. */
  readonly atMs: number;
  /** One line a human can read: what was found. */
  readonly summary: string;
  /** Number of findings (0 for ok). */
  readonly findings: number;
  /**
   * The side's synthetic health as the probe saw it: how many of its requests were answered and
   * how many of those answers were 5XX (the probe never asks for a 5XX, so each is a server
   * failure). The judge uses the old side's figure to tell a shared outage from a regression
   * when the old side takes no user traffic. @default - not reported
   */
  readonly health?: ProbeHealth;
}

/** Answers a probe received, and how many were 5XX. */
export interface ProbeHealth {
  readonly requests: number;
  readonly errors5xx: number;
  /**
   * Answers with a 4XX status, the probe's deliberate ones (a 404, the oversized body's 413)
   * included: a health source that cannot tell probe requests from users' (ALB metrics per target
   * group) subtracts these counts from the side's.
   * @default - not counted (results recorded before this field existed)
   */
  readonly errors4xx?: number;
}

/** Runs or reads Keep-Alive probes. */
export interface ProbePort {
  /**
   * Runs a fresh probe of one side now and returns its outcome. Used by the gate before the first
   * shift and before every weight increase.
   */
  probeNow(side: Side): Promise<ProbeOutcome>;
  /**
   * Probe outcomes recorded since `sinceMs` (from periodic probes that run on their own schedule),
   * oldest first.
   */
  recentResults(sinceMs: number): Promise<readonly ProbeOutcome[]>;
}

// ---------------------------------------------------------------------------------------------
// Capacity (the old side)
// ---------------------------------------------------------------------------------------------

/** The old side's capacity as the capacity port sees it. */
export interface CapacityStatus {
  /** Capacity units currently serving (instances, workers, provisioned environments). */
  readonly current: number;
  /** The figure the old side is pinned to; undefined when no pin is in place. */
  readonly pinned?: number;
  /** True when `current` is allocated and ready to serve (e.g. provisioned concurrency READY). */
  readonly ready: boolean;
  /**
   * The scale the platform is asked to hold (an Auto Scaling group's DesiredCapacity, an ECS
   * service's desiredCount). When the migration starts without a figure to pin, the old side is
   * pinned at the larger of this and `current`: a fleet replacing an instance at that moment is
   * still pinned at its full size.
   * @default - same as `current`
   */
  readonly desired?: number;
  /** Free text from the platform (e.g. "IN_PROGRESS", "FAILED: …"). */
  readonly detail?: string;
}

/** Keeps the old side at full scale until teardown. */
export interface CapacityPort {
  read(): Promise<CapacityStatus>;
  /** Pins the old side's minimum at `units` so that no autoscaler can shrink it. Idempotent. */
  pin(units: number): Promise<CapacityStatus>;
  /** Asks the platform to bring the old side back to `units` now. Idempotent. */
  restore(units: number): Promise<CapacityStatus>;
  /** Removes the pin (teardown only). Idempotent. */
  release(): Promise<CapacityStatus>;
}

// ---------------------------------------------------------------------------------------------
// State store
// ---------------------------------------------------------------------------------------------

/** Thrown by `StateStore.save` when another writer saved first. */
export class StaleStateError extends Error {
  constructor(
    readonly migrationId: string,
    readonly expectedVersion: number,
  ) {
    super(`migration ${migrationId} was changed by another writer (expected version ${expectedVersion})`);
    this.name = 'StaleStateError';
  }
}

/** What a store (or the controller's schema check) found wrong with a migration's stored state. */
export interface StateDamage {
  /** One line naming what is damaged and where (a file, a table item, a field). */
  readonly what: string;
  /** The stored version, when it could be read. */
  readonly version?: number;
  /** The record as far as it could be parsed, for salvage; undefined when nothing could be. */
  readonly raw?: unknown;
  /**
   * Identifies the damaged state as the store saw it (e.g. a hash of the file), so that
   * `quarantine` refuses to replace it if it changed meanwhile. Without one, `version` does.
   */
  readonly fingerprint?: string;
}

/**
 * Thrown by `StateStore.load` when the stored state exists but cannot be read back as what was
 * written (not JSON, truncated, an unknown format, an event log that lost committed entries).
 */
export class DamagedStateError extends Error {
  constructor(
    readonly migrationId: string,
    readonly damage: StateDamage,
  ) {
    super(`stored state of migration ${migrationId} is damaged: ${damage.what}`);
    this.name = 'DamagedStateError';
  }
}

/** What `StateStore.quarantine` asks for the record that replaces a damaged one. */
export type ReplacementBuilder<S, E> = (context: {
  /** The highest event sequence number the store still holds (0 if none): new events follow it. */
  readonly lastEventSeq: number;
  /** Where the damaged state was kept, for people to inspect (file names, table keys). */
  readonly keptAs: string;
}) => { readonly record: S; readonly events: readonly E[] };

/**
 * Versioned storage for one record per migration, plus an append-only event log.
 * `S` is the record type (the core's MigrationRecord); `E` the event type (MigrationEvent).
 */
export interface StateStore<S = unknown, E = unknown> {
  /** The record and its version, or undefined if there is none. */
  load(migrationId: string): Promise<{ readonly record: S; readonly version: number } | undefined>;
  /**
   * Saves the record if its stored version is still `expectedVersion` (0 = must not exist yet),
   * and appends `events` in the same step where the backend allows it. Returns the new version.
   * Throws `StaleStateError` on a conflict; nothing is written then.
   */
  save(migrationId: string, record: S, expectedVersion: number, events: readonly E[]): Promise<number>;
  /** The event log of one migration, oldest first. */
  events(migrationId: string): Promise<readonly E[]>;
  /**
   * Replaces a damaged record (one `load` threw `DamagedStateError` for, or whose record failed the
   * controller's schema) with the record `build` returns, and appends its events. The damaged
   * state is kept aside, never deleted. Refused with `StaleStateError` when the stored state no
   * longer matches `damage` (another writer replaced it first). Returns the new version.
   */
  quarantine(migrationId: string, damage: StateDamage, build: ReplacementBuilder<S, E>): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// Events out
// ---------------------------------------------------------------------------------------------

/** Publishes what happened (EventBridge + SNS on AWS, the terminal and a JSON report locally). */
export interface EventSink<E = unknown> {
  publish(events: readonly E[]): Promise<void>;
}
