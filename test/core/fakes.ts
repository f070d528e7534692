/**
 * In-memory fakes of the core's ports for unit tests: a fake clock, a store with real version
 * checks, a traffic port with real revision checks, and scripted health, probes and capacity.
 */
import type { MigrationRecord } from '../../lambda/core/controller';
import { seededRandom } from '../../local/random';
import type { MigrationEvent } from '../../lambda/core/model';
import {
  RevisionConflictError,
  StaleStateError,
  type AlarmReadPurpose,
  type AlarmSignal,
  type CapacityPort,
  type CapacityStatus,
  type Clock,
  type EventSink,
  type HealthPort,
  type HealthWindow,
  type ReplacementBuilder,
  type StateDamage,
  type ProbeHealth,
  type ProbeOutcome,
  type ProbePort,
  type Side,
  type SideSignals,
  type StateStore,
  type TrafficPort,
  type TrafficState,
  type WindowReadOptions,
} from '../../lambda/core/ports';

export class FakeClock implements Clock {
  constructor(public ms = 1_700_000_000_000) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * An atomic in-memory store with real version checks. `latencyMs` (with a clock that advances, or
 * real timers) and `beforeSave` let tests interleave writers; `damage` replaces a stored record
 * with anything, as a disk or a person could.
 */
export class MemoryStore implements StateStore<MigrationRecord, MigrationEvent> {
  readonly records = new Map<string, { record: MigrationRecord; version: number }>();
  readonly log = new Map<string, MigrationEvent[]>();
  /** Damaged records set aside by `quarantine`, by the name they were kept as. */
  readonly quarantined = new Map<string, unknown>();
  /** Awaited before every save reads the version (to let other writers run in between). */
  beforeSave?: () => Promise<void>;
  async load(id: string) {
    const found = this.records.get(id);
    return found ? { record: structuredClone(found.record), version: found.version } : undefined;
  }
  async save(id: string, record: MigrationRecord, expectedVersion: number, events: readonly MigrationEvent[]) {
    await this.beforeSave?.();
    const current = this.records.get(id)?.version ?? 0;
    if (current !== expectedVersion) throw new StaleStateError(id, expectedVersion);
    this.records.set(id, { record: structuredClone(record), version: current + 1 });
    this.log.set(id, [...(this.log.get(id) ?? []), ...structuredClone(events)]);
    return current + 1;
  }
  async events(id: string) {
    return this.log.get(id) ?? [];
  }
  async quarantine(id: string, damage: StateDamage, build: ReplacementBuilder<MigrationRecord, MigrationEvent>) {
    const current = this.records.get(id);
    if ((current?.version ?? 0) !== (damage.version ?? 0)) throw new StaleStateError(id, damage.version ?? 0);
    const keptAs = `memory:${id}@${current?.version ?? 0}`;
    this.quarantined.set(keptAs, structuredClone(current?.record));
    const lastEventSeq = Math.max(0, ...(this.log.get(id) ?? []).map((e) => e.seq));
    const { record, events } = build({ lastEventSeq, keptAs });
    const version = (current?.version ?? 0) + 1;
    this.records.set(id, { record: structuredClone(record), version });
    this.log.set(id, [...(this.log.get(id) ?? []), ...structuredClone(events)]);
    return version;
  }
  /** Replaces the stored record with anything (the version is kept, as a damaged file would be). */
  damage(id: string, raw: unknown): void {
    const current = this.records.get(id);
    this.records.set(id, { record: raw as MigrationRecord, version: current?.version ?? 1 });
  }
}

export class FakeTraffic implements TrafficPort {
  weight = 0;
  revision = 1;
  settleAfterCalls = 0;
  failNext?: Error;
  readonly history: number[] = [];
  private pendingReads = 0;
  /** Calls of getWeight so far. */
  reads = 0;
  async getWeight(): Promise<TrafficState> {
    this.reads++;
    const settled = this.pendingReads <= 0;
    this.pendingReads--;
    return { weight: this.weight, revision: String(this.revision), settled };
  }
  async setWeight(weight: number, expectedRevision: string): Promise<TrafficState> {
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    if (expectedRevision !== String(this.revision)) throw new RevisionConflictError(expectedRevision, String(this.revision));
    this.weight = weight;
    this.revision++;
    this.history.push(weight);
    this.pendingReads = this.settleAfterCalls;
    return { weight, revision: String(this.revision), settled: this.settleAfterCalls === 0 };
  }
  /** Someone else changes the routing. */
  externalWrite(weight: number): void {
    this.weight = weight;
    this.revision++;
  }
}

/** Health that generates binomial traffic from the current weight with a seeded RNG. */
export class SimulatedHealth implements HealthPort {
  rng: () => number;
  requestsPerWindow = 10_000;
  oldErrorRate = 0.01;
  newErrorRate = 0.01;
  old4xxRate = 0.02;
  new4xxRate = 0.02;
  oldLatencyMs = 40;
  newLatencyMs = 40;
  /** Share of each side's requests slower than any `slowerThanMs` asked for. */
  oldSlowShare = 0.01;
  newSlowShare = 0.01;
  /** The `slowerThanMs` of every read that asked for slow counts. */
  readonly slowReads: number[] = [];
  missing = false;
  alarms: AlarmSignal[] = [];
  readonly windows: HealthWindow[] = [];
  constructor(
    private readonly traffic: FakeTraffic,
    seed = 1,
  ) {
    this.rng = mulberry32(seed);
  }
  async readWindow(fromMs: number, toMs: number, options: WindowReadOptions = {}): Promise<HealthWindow | undefined> {
    if (this.missing) return undefined;
    if (options.slowerThanMs !== undefined) this.slowReads.push(options.slowerThanMs);
    const total = this.requestsPerWindow;
    const nNew = binomial(total, this.traffic.weight / 100, this.rng);
    const nOld = total - nNew;
    const side = (n: number, e5: number, e4: number, latency: number, slow: number): SideSignals => ({
      requests: n,
      errors5xx: binomial(n, e5, this.rng),
      errors4xx: binomial(n, e4, this.rng),
      ...(n > 0 ? { latencyMs: latency } : {}),
      ...(options.slowerThanMs !== undefined ? { slowRequests: binomial(n, slow, this.rng) } : {}),
    });
    const window = {
      fromMs,
      toMs,
      old: side(nOld, this.oldErrorRate, this.old4xxRate, this.oldLatencyMs, this.oldSlowShare),
      new: side(nNew, this.newErrorRate, this.new4xxRate, this.newLatencyMs, this.newSlowShare),
    };
    this.windows.push(window);
    return window;
  }
  /**
   * What a routine `watch` read answers when set (states pushed by change events, which may lag
   * behind `alarms` when an event was lost); `confirm` reads always answer `alarms`.
   */
  pushedAlarms: AlarmSignal[] | undefined;
  readonly alarmReads: { readonly atMs: number; readonly purpose: AlarmReadPurpose }[] = [];
  async readAlarms(purpose: AlarmReadPurpose = 'confirm'): Promise<readonly AlarmSignal[]> {
    this.alarmReads.push({ atMs: this.clock?.now() ?? 0, purpose });
    return purpose === 'watch' && this.pushedAlarms ? this.pushedAlarms : this.alarms;
  }
  /** Set to stamp `alarmReads` with the fake time. */
  clock: Clock | undefined;
}

export class FakeProbes implements ProbePort {
  verdict: Record<Side, ProbeOutcome['verdict']> = { new: 'ok', old: 'ok' };
  /** The synthetic health fresh probes report, per side (none when unset). */
  health: Partial<Record<Side, ProbeHealth>> = {};
  readonly periodic: ProbeOutcome[] = [];
  readonly calls: Side[] = [];
  constructor(private readonly clock: Clock) {}
  async probeNow(side: Side): Promise<ProbeOutcome> {
    this.calls.push(side);
    const verdict = this.verdict[side];
    const health = this.health[side];
    return { side, verdict, atMs: this.clock.now(), summary: `${side} probe ${verdict}`, findings: verdict === 'ok' ? 0 : 1, ...(health ? { health } : {}) };
  }
  async recentResults(sinceMs: number): Promise<readonly ProbeOutcome[]> {
    return this.periodic.filter((p) => p.atMs >= sinceMs);
  }
  record(side: Side, verdict: ProbeOutcome['verdict'], atMs: number): void {
    this.periodic.push({ side, verdict, atMs, summary: `periodic ${side} probe ${verdict}`, findings: verdict === 'ok' ? 0 : 1 });
  }
}

export class FakeCapacity implements CapacityPort {
  current = 10;
  pinned: number | undefined;
  ready = true;
  readonly calls: string[] = [];
  async read(): Promise<CapacityStatus> {
    return this.status();
  }
  async pin(units: number): Promise<CapacityStatus> {
    this.calls.push(`pin ${units}`);
    this.pinned = units;
    return this.status();
  }
  async restore(units: number): Promise<CapacityStatus> {
    this.calls.push(`restore ${units}`);
    this.current = units;
    this.ready = false; // comes up on a later read, like a real warm-up
    return this.status();
  }
  async release(): Promise<CapacityStatus> {
    this.calls.push('release');
    this.pinned = undefined;
    return this.status();
  }
  private status(): CapacityStatus {
    return { current: this.current, ready: this.ready, ...(this.pinned !== undefined ? { pinned: this.pinned } : {}) };
  }
}

export class CollectingSink implements EventSink<MigrationEvent> {
  readonly published: MigrationEvent[] = [];
  fail = false;
  async publish(events: readonly MigrationEvent[]): Promise<void> {
    if (this.fail) throw new Error('sink down');
    this.published.push(...events);
  }
}

/** Deterministic PRNG (mulberry32) so simulations repeat exactly: the one the local adapters use. */
export const mulberry32 = seededRandom;

/** Binomial sample: exact for small n·p (inversion), normal approximation for large. */
export function binomial(n: number, p: number, rng: () => number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  const mean = n * p;
  if (mean < 30) {
    // Inversion of the CDF: exact.
    let k = 0;
    let prob = Math.pow(1 - p, n);
    let cdf = prob;
    const u = rng();
    while (u > cdf && k < n) {
      prob *= ((n - k) / (k + 1)) * (p / (1 - p));
      k++;
      cdf += prob;
    }
    return k;
  }
  const sd = Math.sqrt(mean * (1 - p));
  const u1 = Math.max(rng(), 1e-12);
  const u2 = rng();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return Math.min(n, Math.max(0, Math.round(mean + sd * z)));
}
