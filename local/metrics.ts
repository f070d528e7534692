/**
 * In-memory request metrics for the local rehearsal: the router records every response per side
 * (old/new), and `LocalHealth` reads windows of them through the core's `HealthPort`, like the
 * AWS adapter reads CloudWatch.
 *
 * Memory is bounded by time, not by traffic: samples are aggregated into fixed buckets
 * (`bucketMs`, 1 s by default, like CloudWatch high-resolution metrics) kept in a ring that
 * covers `retentionMs`. Each bucket keeps counts and a log-spaced latency histogram, so a
 * percentile over any window of buckets is an estimate within 5% (never below the true value by
 * more than one bin). No histogram package is among the pinned dependencies, hence the small
 * hand-written one here.
 */
import type { AlarmSignal, Clock, HealthPort, HealthWindow, Side, SideSignals, WindowReadOptions } from '../lambda/core/ports';
import { checkInteger, checkRange, systemClock } from './net';

/** Where the router (or anything else) writes one finished request. */
export interface MetricsRecorder {
  /**
   * Records one response.
   * @param side which side served it
   * @param status HTTP status (502/504 for upstream failures)
   * @param latencyMs time from request received to response finished
   * @param atMs when the response finished, epoch ms; defaults to the recorder's clock
   */
  record(side: Side, status: number, latencyMs: number, atMs?: number): void;
}

/** Options of `LocalMetrics`. */
export interface LocalMetricsOptions {
  /**
   * Time source for samples recorded without a timestamp.
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
  /**
   * Width of one aggregation bucket. A sample belongs to the window that contains its bucket's
   * start, so windows are read with this resolution.
   * @default 1000
   */
  readonly bucketMs?: number;
  /**
   * How far back buckets are kept; older samples are dropped (and counted in `droppedSamples`).
   * @default 3_600_000 (one hour)
   */
  readonly retentionMs?: number;
  /**
   * The latency percentile reported as `SideSignals.latencyMs`, 0–100.
   * @default 99
   */
  readonly latencyPercentile?: number;
}

/** Lifetime counts of one side (not windowed; for reports). */
export interface SideTotals {
  readonly requests: number;
  readonly errors4xx: number;
  readonly errors5xx: number;
}

/** One bucket of a timeline: counts of both sides. */
export interface TimelinePoint {
  /** Start of the bucket, epoch ms. */
  readonly startMs: number;
  readonly old: SideSignals;
  readonly new: SideSignals;
}

// Histogram geometry: bin 0 holds everything up to 0.1 ms, bin b > 0 holds (0.1·G^(b-1), 0.1·G^b].
const HISTOGRAM_MIN_MS = 0.1;
const HISTOGRAM_GROWTH = 1.05;
const LOG_GROWTH = Math.log(HISTOGRAM_GROWTH);

function binOf(latencyMs: number): number {
  if (latencyMs <= HISTOGRAM_MIN_MS) return 0;
  return Math.max(1, Math.ceil(Math.log(latencyMs / HISTOGRAM_MIN_MS) / LOG_GROWTH - 1e-9));
}

function binUpperMs(bin: number): number {
  return HISTOGRAM_MIN_MS * HISTOGRAM_GROWTH ** bin;
}

/** Aggregate of one side in one bucket (or merged over several). */
class SideAggregate {
  requests = 0;
  errors4xx = 0;
  errors5xx = 0;
  maxLatencyMs = 0;
  readonly bins = new Map<number, number>();

  add(status: number, latencyMs: number): void {
    this.requests += 1;
    if (status >= 400 && status < 500) this.errors4xx += 1;
    else if (status >= 500) this.errors5xx += 1;
    if (latencyMs > this.maxLatencyMs) this.maxLatencyMs = latencyMs;
    const bin = binOf(latencyMs);
    this.bins.set(bin, (this.bins.get(bin) ?? 0) + 1);
  }

  merge(other: SideAggregate): void {
    this.requests += other.requests;
    this.errors4xx += other.errors4xx;
    this.errors5xx += other.errors5xx;
    if (other.maxLatencyMs > this.maxLatencyMs) this.maxLatencyMs = other.maxLatencyMs;
    for (const [bin, count] of other.bins) this.bins.set(bin, (this.bins.get(bin) ?? 0) + count);
  }

  /** Nearest-rank percentile from the histogram: the upper edge of the bin, capped at the max seen. */
  percentile(p: number): number | undefined {
    if (this.requests === 0) return undefined;
    const rank = Math.max(1, Math.ceil((p / 100) * this.requests));
    const bins = [...this.bins.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const bin of bins) {
      seen += this.bins.get(bin) ?? 0;
      if (seen >= rank) return Math.min(binUpperMs(bin), this.maxLatencyMs);
    }
    return this.maxLatencyMs;
  }

  /**
   * Requests in the bins above the one that holds `thresholdMs`. Classifying by bin (not by the
   * exact latency) is the same rule for both sides, which is all the judge's latency test needs:
   * identical distributions still give identical slow shares.
   */
  slowerThan(thresholdMs: number): number {
    const limit = binOf(thresholdMs);
    let slow = 0;
    for (const [bin, count] of this.bins) if (bin > limit) slow += count;
    return slow;
  }

  signals(percentile: number, slowerThanMs?: number): SideSignals {
    const latencyMs = this.percentile(percentile);
    const base = {
      requests: this.requests,
      errors4xx: this.errors4xx,
      errors5xx: this.errors5xx,
      ...(slowerThanMs !== undefined ? { slowRequests: this.slowerThan(slowerThanMs) } : {}),
    };
    return latencyMs === undefined ? base : { ...base, latencyMs: round3(latencyMs) };
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

interface Bucket {
  readonly index: number;
  readonly old: SideAggregate;
  readonly new: SideAggregate;
}


/**
 * Bounded in-memory store of request outcomes per side. Implements `MetricsRecorder`; read it
 * through `LocalHealth` (the `HealthPort`) or directly with `window`, `timeline` and `totals`.
 */
export class LocalMetrics implements MetricsRecorder {
  private readonly clock: Clock;
  private readonly bucketMs: number;
  private readonly slots: (Bucket | undefined)[];
  private readonly percentile: number;
  private newestIndex = Number.NEGATIVE_INFINITY;
  private dropped = 0;
  private readonly lifetime = { old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } };

  constructor(options: LocalMetricsOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.bucketMs = checkInteger(options.bucketMs ?? 1000, 1, 3_600_000, 'bucketMs');
    const retentionMs = checkInteger(options.retentionMs ?? 3_600_000, this.bucketMs, 7 * 24 * 3_600_000, 'retentionMs');
    this.percentile = checkRange(options.latencyPercentile ?? 99, 0, 100, 'latencyPercentile');
    this.slots = new Array<Bucket | undefined>(Math.ceil(retentionMs / this.bucketMs));
  }

  /** Samples that arrived too late for the retention window and were not stored. */
  get droppedSamples(): number {
    return this.dropped;
  }

  record(side: Side, status: number, latencyMs: number, atMs: number = this.clock.now()): void {
    if (side !== 'old' && side !== 'new') throw new TypeError(`side must be "old" or "new", got ${JSON.stringify(side)}`);
    checkInteger(status, 100, 599, 'status');
    checkRange(latencyMs, 0, Number.MAX_VALUE, 'latencyMs');
    checkRange(atMs, 0, Number.MAX_VALUE, 'atMs');
    const totals = this.lifetime[side];
    totals.requests += 1;
    if (status >= 400 && status < 500) totals.errors4xx += 1;
    else if (status >= 500) totals.errors5xx += 1;

    const index = Math.floor(atMs / this.bucketMs);
    if (index > this.newestIndex) this.newestIndex = index;
    if (index <= this.newestIndex - this.slots.length) {
      this.dropped += 1;
      return;
    }
    const slot = index % this.slots.length;
    let bucket = this.slots[slot];
    if (bucket === undefined || bucket.index !== index) {
      // The slot holds a bucket one full ring older (or nothing): reuse it for this one.
      bucket = { index, old: new SideAggregate(), new: new SideAggregate() };
      this.slots[slot] = bucket;
    }
    bucket[side].add(status, latencyMs);
  }

  /**
   * Signals of both sides for the buckets whose start lies in [fromMs, toMs), or `undefined` when
   * neither side has a single request there (so that no data never reads as healthy).
   */
  window(fromMs: number, toMs: number, options: WindowReadOptions = {}): HealthWindow | undefined {
    const slowerThanMs = options.slowerThanMs === undefined ? undefined : checkRange(options.slowerThanMs, 0, Number.MAX_VALUE, 'slowerThanMs');
    const merged = { old: new SideAggregate(), new: new SideAggregate() };
    for (const bucket of this.buckets(fromMs, toMs)) {
      merged.old.merge(bucket.old);
      merged.new.merge(bucket.new);
    }
    if (merged.old.requests === 0 && merged.new.requests === 0) return undefined;
    return { fromMs, toMs, old: merged.old.signals(this.percentile, slowerThanMs), new: merged.new.signals(this.percentile, slowerThanMs) };
  }

  /**
   * Signals of the *completed* buckets that overlap [fromMs, toMs): from the bucket holding
   * `fromMs` up to the last bucket that ended by `toMs`. The returned window says which span it
   * really covers (bucket-aligned), so a caller that continues from its `toMs` counts every
   * sample exactly once and never judges a bucket that is still filling up. `undefined` when no
   * bucket completed yet or neither side had a request.
   */
  completedWindow(fromMs: number, toMs: number, options: WindowReadOptions = {}): HealthWindow | undefined {
    const start = Math.floor(fromMs / this.bucketMs) * this.bucketMs;
    const end = Math.floor(toMs / this.bucketMs) * this.bucketMs;
    if (end <= start) return undefined;
    return this.window(start, end, options);
  }

  /** Per-bucket signals over [fromMs, toMs), empty buckets included as zeros (for charts). */
  timeline(fromMs: number, toMs: number): TimelinePoint[] {
    const byIndex = new Map<number, Bucket>();
    for (const bucket of this.buckets(fromMs, toMs)) byIndex.set(bucket.index, bucket);
    const points: TimelinePoint[] = [];
    const [first, last] = this.indexRange(fromMs, toMs);
    for (let index = first; index <= last; index += 1) {
      const bucket = byIndex.get(index);
      const old = bucket?.old ?? new SideAggregate();
      const neu = bucket?.new ?? new SideAggregate();
      points.push({ startMs: index * this.bucketMs, old: old.signals(this.percentile), new: neu.signals(this.percentile) });
    }
    return points;
  }

  /** Counts since this recorder was created, per side (not limited by retention). */
  totals(): { readonly old: SideTotals; readonly new: SideTotals } {
    return { old: { ...this.lifetime.old }, new: { ...this.lifetime.new } };
  }

  /** Bucket indexes to visit for a window, limited to what the ring can still hold. */
  private indexRange(fromMs: number, toMs: number): [number, number] {
    checkRange(fromMs, 0, Number.MAX_VALUE, 'fromMs');
    checkRange(toMs, 0, Number.MAX_VALUE, 'toMs');
    if (toMs < fromMs) throw new RangeError(`window end ${toMs} is before its start ${fromMs}`);
    const first = Math.ceil(fromMs / this.bucketMs);
    const last = Math.ceil(toMs / this.bucketMs) - 1;
    // The ring holds at most `slots.length` buckets: never loop over more than that.
    return [Math.max(first, last - this.slots.length + 1), last];
    return [first, last];
  }

  private *buckets(fromMs: number, toMs: number): Generator<Bucket> {
    const [first, last] = this.indexRange(fromMs, toMs);
    for (let index = first; index <= last; index += 1) {
      const bucket = this.slots[index % this.slots.length];
      // A slot may still hold a bucket older than the retention that nothing has overwritten yet.
      if (bucket !== undefined && bucket.index === index && index > this.newestIndex - this.slots.length) yield bucket;
    }
  }
}

/** A metric a local threshold alarm can watch. */
export type AlarmMetric = 'requests' | 'errors5xx' | 'errorRate5xx' | 'errors4xx' | 'errorRate4xx' | 'latencyMs';

/** A simple threshold alarm on one side's signals over a trailing period. */
export interface ThresholdAlarm {
  /** Name shown to the judge and in reports; unique within one `LocalHealth`. */
  readonly name: string;
  /** Which side's signals the alarm watches. */
  readonly side: Side;
  /** The value compared with the threshold (`latencyMs` is the recorder's percentile). */
  readonly metric: AlarmMetric;
  readonly threshold: number;
  /**
   * `greater`: ALARM when value > threshold; `less`: ALARM when value < threshold.
   * @default 'greater'
   */
  readonly comparison?: 'greater' | 'less';
  /**
   * Trailing period evaluated at each read.
   * @default 60_000
   */
  readonly periodMs?: number;
  /**
   * Fewer requests than this in the period gives INSUFFICIENT_DATA.
   * @default 1
   */
  readonly minRequests?: number;
}

/** Options of `LocalHealth`. */
export interface LocalHealthOptions {
  /** The store the router records into. */
  readonly metrics: LocalMetrics;
  /**
   * Time source for alarm periods.
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
  /**
   * Threshold alarms evaluated on every `readAlarms()`.
   * @default - no alarms
   */
  readonly alarms?: readonly ThresholdAlarm[];
}

interface ForcedState {
  readonly state: AlarmSignal['state'];
  readonly reason: string;
}

/**
 * `HealthPort` over `LocalMetrics`: windows of request counts and latency per side, plus local
 * alarms (threshold alarms and alarm states forced by a scenario, like CloudWatch's
 * SetAlarmState).
 */
export class LocalHealth implements HealthPort {
  private readonly metrics: LocalMetrics;
  private readonly clock: Clock;
  private readonly alarms = new Map<string, ThresholdAlarm>();
  private readonly forced = new Map<string, ForcedState>();

  constructor(options: LocalHealthOptions) {
    this.metrics = options.metrics;
    this.clock = options.clock ?? systemClock;
    for (const alarm of options.alarms ?? []) this.addAlarm(alarm);
  }

  /** Completed buckets only: see `LocalMetrics.completedWindow`. The window says what it covers. */
  async readWindow(fromMs: number, toMs: number, options?: WindowReadOptions): Promise<HealthWindow | undefined> {
    return this.metrics.completedWindow(fromMs, toMs, options);
  }

  async readAlarms(): Promise<readonly AlarmSignal[]> {
    const now = this.clock.now();
    const names = new Set([...this.alarms.keys(), ...this.forced.keys()]);
    const signals: AlarmSignal[] = [];
    for (const name of [...names].sort()) {
      const forced = this.forced.get(name);
      const alarm = this.alarms.get(name);
      if (forced !== undefined) signals.push({ name, state: forced.state, reason: forced.reason });
      else if (alarm !== undefined) signals.push(this.evaluate(alarm, now));
    }
    return signals;
  }

  /** Adds a threshold alarm; throws if one with that name exists or a field is invalid. */
  addAlarm(alarm: ThresholdAlarm): void {
    if (typeof alarm.name !== 'string' || alarm.name.trim() === '') {
      throw new TypeError(`alarm name must be a non-empty string, got ${JSON.stringify(alarm.name)}`);
    }
    if (this.alarms.has(alarm.name)) throw new Error(`alarm ${JSON.stringify(alarm.name)} already exists`);
    if (alarm.side !== 'old' && alarm.side !== 'new') {
      throw new TypeError(`alarm ${alarm.name}: side must be "old" or "new", got ${JSON.stringify(alarm.side)}`);
    }
    const metrics: readonly AlarmMetric[] = ['requests', 'errors5xx', 'errorRate5xx', 'errors4xx', 'errorRate4xx', 'latencyMs'];
    if (!metrics.includes(alarm.metric)) {
      throw new TypeError(`alarm ${alarm.name}: metric must be one of ${metrics.join(', ')}, got ${JSON.stringify(alarm.metric)}`);
    }
    checkRange(alarm.threshold, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, `alarm ${alarm.name} threshold`);
    if (alarm.comparison !== undefined && alarm.comparison !== 'greater' && alarm.comparison !== 'less') {
      throw new TypeError(`alarm ${alarm.name}: comparison must be "greater" or "less", got ${JSON.stringify(alarm.comparison)}`);
    }
    checkInteger(alarm.periodMs ?? 60_000, 1, Number.MAX_SAFE_INTEGER, `alarm ${alarm.name} periodMs`);
    checkInteger(alarm.minRequests ?? 1, 1, Number.MAX_SAFE_INTEGER, `alarm ${alarm.name} minRequests`);
    this.alarms.set(alarm.name, alarm);
  }

  /** Removes a threshold alarm (and any forced state of that name). Returns whether it existed. */
  removeAlarm(name: string): boolean {
    const forced = this.forced.delete(name);
    return this.alarms.delete(name) || forced;
  }

  /**
   * Forces an alarm's state until `clearForcedState(name)`, e.g. to rehearse "an alarm is already
   * firing". A name with no threshold alarm appears as a manual alarm.
   */
  forceState(name: string, state: AlarmSignal['state'], reason: string): void {
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError(`alarm name must be a non-empty string, got ${JSON.stringify(name)}`);
    if (state !== 'OK' && state !== 'ALARM' && state !== 'INSUFFICIENT_DATA') {
      throw new TypeError(`alarm state must be OK, ALARM or INSUFFICIENT_DATA, got ${JSON.stringify(state)}`);
    }
    this.forced.set(name, { state, reason });
  }

  /** Ends a forced state; a threshold alarm of that name is evaluated again. */
  clearForcedState(name: string): void {
    this.forced.delete(name);
  }

  private evaluate(alarm: ThresholdAlarm, now: number): AlarmSignal {
    const periodMs = alarm.periodMs ?? 60_000;
    const minRequests = alarm.minRequests ?? 1;
    const period = `over the last ${periodMs / 1000} s`;
    const signals = this.metrics.window(Math.max(0, now - periodMs), now)?.[alarm.side];
    const requests = signals?.requests ?? 0;
    if (signals === undefined || requests < minRequests) {
      return {
        name: alarm.name,
        state: 'INSUFFICIENT_DATA',
        reason: `${requests} ${alarm.side} requests ${period}, fewer than the ${minRequests} needed`,
      };
    }
    const value = metricValue(alarm.metric, signals);
    if (value === undefined) {
      return { name: alarm.name, state: 'INSUFFICIENT_DATA', reason: `no ${alarm.metric} for ${alarm.side} ${period}` };
    }
    const comparison = alarm.comparison ?? 'greater';
    const breached = comparison === 'greater' ? value > alarm.threshold : value < alarm.threshold;
    const sign = comparison === 'greater' ? (breached ? '>' : '<=') : breached ? '<' : '>=';
    return {
      name: alarm.name,
      state: breached ? 'ALARM' : 'OK',
      reason: `${alarm.metric} of ${alarm.side} = ${round3(value)} ${sign} ${alarm.threshold} ${period} (${requests} requests)`,
    };
  }
}

function metricValue(metric: AlarmMetric, s: SideSignals): number | undefined {
  switch (metric) {
    case 'requests':
      return s.requests;
    case 'errors5xx':
      return s.errors5xx;
    case 'errors4xx':
      return s.errors4xx;
    case 'errorRate5xx':
      return s.requests === 0 ? undefined : s.errors5xx / s.requests;
    case 'errorRate4xx':
      return s.requests === 0 ? undefined : s.errors4xx / s.requests;
    case 'latencyMs':
      return s.latencyMs;
  }
}
