import { describe, expect, it } from 'vitest';
import { LocalHealth, LocalMetrics } from '../../local/metrics';
import { FakeClock } from './helpers';

const T0 = 1_700_000_000_000;

describe('LocalMetrics windows', () => {
  it('should count requests and errors per side in a window', () => {
    const metrics = new LocalMetrics({ clock: new FakeClock(T0) });
    metrics.record('old', 200, 10, T0 + 100);
    metrics.record('old', 404, 12, T0 + 200);
    metrics.record('new', 503, 30, T0 + 300);
    metrics.record('new', 200, 20, T0 + 400);
    metrics.record('new', 200, 25, T0 + 1500); // next bucket
    const window = metrics.window(T0, T0 + 1000);
    expect(window).toEqual({
      fromMs: T0,
      toMs: T0 + 1000,
      old: { requests: 2, errors4xx: 1, errors5xx: 0, latencyMs: 12 },
      new: { requests: 2, errors4xx: 0, errors5xx: 1, latencyMs: 30 },
    });
    expect(metrics.window(T0, T0 + 2000)!.new.requests).toBe(3);
  });

  it('should return undefined when there is no data, and no latency for an idle side', () => {
    const metrics = new LocalMetrics();
    expect(metrics.window(T0, T0 + 60_000)).toBeUndefined();
    metrics.record('old', 200, 5, T0 + 10);
    const window = metrics.window(T0, T0 + 1000)!;
    expect(window.new).toEqual({ requests: 0, errors4xx: 0, errors5xx: 0 });
    expect(window.new.latencyMs).toBeUndefined();
    expect(metrics.window(T0 + 1000, T0 + 5000)).toBeUndefined();
  });

  it('should put each bucket in exactly one of two adjacent windows', () => {
    const metrics = new LocalMetrics({ bucketMs: 1000 });
    for (let i = 0; i < 10; i += 1) metrics.record('new', 200, 1, T0 + i * 500);
    const a = metrics.window(T0, T0 + 2500)!;
    const b = metrics.window(T0 + 2500, T0 + 5000)!;
    expect(a.new.requests + b.new.requests).toBe(10);
    // The bucket starting at T0+2000 belongs to the first window (its start is inside it).
    expect(a.new.requests).toBe(6);
  });

  it('should estimate p99 latency within 5%', () => {
    const metrics = new LocalMetrics();
    for (let i = 1; i <= 1000; i += 1) metrics.record('old', 200, i, T0 + (i % 900));
    const p99 = metrics.window(T0, T0 + 1000)!.old.latencyMs!;
    expect(p99).toBeGreaterThanOrEqual(990);
    expect(p99).toBeLessThanOrEqual(990 * 1.05);
    const p50 = new LocalMetrics({ latencyPercentile: 50 });
    for (let i = 1; i <= 1000; i += 1) p50.record('old', 200, i, T0);
    expect(p50.window(T0, T0 + 1)!.old.latencyMs).toBeGreaterThanOrEqual(500);
    expect(p50.window(T0, T0 + 1)!.old.latencyMs).toBeLessThanOrEqual(525);
  });

  it('should count slow requests per side by one rule for both sides, only when asked', async () => {
    const metrics = new LocalMetrics({ clock: new FakeClock(T0) });
    for (const ms of [10, 50, 99, 101, 150, 400]) metrics.record('old', 200, ms, T0 + 10);
    for (const ms of [10, 50, 99, 101, 150, 400]) metrics.record('new', 200, ms, T0 + 20);
    metrics.record('new', 200, 1000, T0 + 30);
    const window = metrics.window(T0, T0 + 1000, { slowerThanMs: 100 })!;
    // 101 ms falls in the same 5 % bin as 100 ms and is not counted; 150, 400 (and 1000) are.
    expect(window.old.slowRequests).toBe(2);
    expect(window.new.slowRequests).toBe(3);
    expect(metrics.window(T0, T0 + 1000)!.old.slowRequests).toBeUndefined();
    const health = new LocalHealth({ metrics, clock: new FakeClock(T0 + 5000) });
    expect((await health.readWindow(T0, T0 + 1000, { slowerThanMs: 100 }))!.new.slowRequests).toBe(3);
    expect(() => metrics.window(T0, T0 + 1000, { slowerThanMs: -1 })).toThrow(/slowerThanMs must be a number from 0/);
  });

  it('should keep memory bounded by the retention and drop late samples', () => {
    const metrics = new LocalMetrics({ bucketMs: 1000, retentionMs: 10_000 });
    metrics.record('old', 200, 1, T0);
    metrics.record('old', 200, 1, T0 + 20_000);
    // The first bucket is older than the retention: gone from windows, still in lifetime totals.
    expect(metrics.window(T0, T0 + 1000)).toBeUndefined();
    metrics.record('old', 200, 1, T0 + 500);
    expect(metrics.droppedSamples).toBe(1);
    expect(metrics.totals().old.requests).toBe(3);
    expect(metrics.timeline(T0, T0 + 30_000)).toHaveLength(10);
  });

  it('should give a timeline with empty buckets as zeros', () => {
    const metrics = new LocalMetrics({ bucketMs: 1000 });
    metrics.record('new', 500, 3, T0 + 1200);
    const points = metrics.timeline(T0, T0 + 3000);
    expect(points.map((p) => [p.startMs - T0, p.new.requests, p.new.errors5xx])).toEqual([
      [0, 0, 0],
      [1000, 1, 1],
      [2000, 0, 0],
    ]);
  });

  it('fails on bad samples or windows, showing the value', () => {
    const metrics = new LocalMetrics();
    expect(() => metrics.record('old', 99, 1)).toThrow(/status must be an integer from 100 to 599, got 99/);
    expect(() => metrics.record('old', 200, Number.NaN)).toThrow(/latencyMs .* got NaN/);
    expect(() => metrics.record('both' as 'old', 200, 1)).toThrow(/side must be "old" or "new", got "both"/);
    expect(() => metrics.window(T0 + 10, T0)).toThrow(/window end .* is before its start/);
  });
});

describe('LocalHealth', () => {
  it('should read windows through the HealthPort', async () => {
    const metrics = new LocalMetrics();
    const health = new LocalHealth({ metrics });
    expect(await health.readWindow(T0, T0 + 1000)).toBeUndefined();
    metrics.record('new', 200, 4, T0);
    expect((await health.readWindow(T0, T0 + 1000))!.new.requests).toBe(1);
    expect(await health.readAlarms()).toEqual([]);
  });

  it('should evaluate threshold alarms over their period', async () => {
    const clock = new FakeClock(T0 + 60_000);
    const metrics = new LocalMetrics({ clock });
    const health = new LocalHealth({
      metrics,
      clock,
      alarms: [
        { name: 'new-5xx', side: 'new', metric: 'errorRate5xx', threshold: 0.1, periodMs: 10_000, minRequests: 5 },
        { name: 'old-traffic', side: 'old', metric: 'requests', threshold: 1, comparison: 'less', periodMs: 10_000 },
      ],
    });
    let alarms = await health.readAlarms();
    expect(alarms.map((a) => [a.name, a.state])).toEqual([
      ['new-5xx', 'INSUFFICIENT_DATA'],
      ['old-traffic', 'INSUFFICIENT_DATA'],
    ]);
    for (let i = 0; i < 10; i += 1) metrics.record('new', i < 3 ? 503 : 200, 5, T0 + 55_000 + i);
    metrics.record('old', 200, 5, T0 + 55_000);
    alarms = await health.readAlarms();
    expect(alarms[0]).toMatchObject({ name: 'new-5xx', state: 'ALARM' });
    expect(alarms[0]!.reason).toMatch(/errorRate5xx of new = 0.3 > 0.1 over the last 10 s \(10 requests\)/);
    expect(alarms[1]).toMatchObject({ name: 'old-traffic', state: 'OK' });
    // Ten seconds later the errors are out of the period.
    clock.advance(10_000);
    expect((await health.readAlarms())[0]!.state).toBe('INSUFFICIENT_DATA');
  });

  it('should report forced alarm states until cleared', async () => {
    const health = new LocalHealth({ metrics: new LocalMetrics() });
    health.forceState('checkout-errors', 'ALARM', 'rehearsal: alarm already firing');
    expect(await health.readAlarms()).toEqual([{ name: 'checkout-errors', state: 'ALARM', reason: 'rehearsal: alarm already firing' }]);
    health.clearForcedState('checkout-errors');
    expect(await health.readAlarms()).toEqual([]);
  });

  it('fails on an invalid or duplicate alarm', () => {
    const health = new LocalHealth({ metrics: new LocalMetrics() });
    health.addAlarm({ name: 'a', side: 'new', metric: 'errors5xx', threshold: 0 });
    expect(() => health.addAlarm({ name: 'a', side: 'new', metric: 'errors5xx', threshold: 0 })).toThrow(/alarm "a" already exists/);
    expect(() => health.addAlarm({ name: 'b', side: 'new', metric: 'p50' as 'requests', threshold: 0 })).toThrow(/metric must be one of .* got "p50"/);
    expect(() => health.addAlarm({ name: 'c', side: 'new', metric: 'requests', threshold: 0, periodMs: 0 })).toThrow(/periodMs must be an integer .* got 0/);
  });
});

describe('LocalMetrics completed windows (what LocalHealth hands the judge)', () => {
  it('should count every sample exactly once when windows continue from the returned toMs', () => {
    const metrics = new LocalMetrics({ bucketMs: 100 });
    // 3 requests every 10 ms for 5 s, starting mid-bucket.
    for (let t = 1_050; t < 6_050; t += 10) for (let k = 0; k < 3; k++) metrics.record('new', 200, 5, t);
    let from = 1_050;
    let counted = 0;
    // Reads at awkward times, each covering only completed buckets.
    for (const now of [2_333, 3_001, 3_999, 5_450, 6_200]) {
      const window = metrics.completedWindow(from, now);
      if (!window) continue;
      expect(window.toMs).toBeLessThanOrEqual(now);
      expect(window.toMs % 100).toBe(0);
      counted += window.new.requests;
      from = window.toMs;
    }
    expect(counted).toBe(1_500);
  });

  it('should return nothing until a whole bucket has completed', () => {
    const metrics = new LocalMetrics({ bucketMs: 1000 });
    metrics.record('old', 200, 1, 1_200);
    expect(metrics.completedWindow(1_100, 1_900)).toBeUndefined();
    expect(metrics.completedWindow(1_100, 2_000)?.old.requests).toBe(1);
  });
});
