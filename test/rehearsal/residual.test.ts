/**
 * The rollback's residual traffic arithmetic: peaks and drain moments per window, and the tally
 * that feeds them. Pure: no servers.
 */
import { describe, expect, it } from 'vitest';
import { LocalMetrics } from '../../local/metrics';
import {
  countsPerWindow,
  defaultMaxWatchMs,
  drainedAfter,
  peakPerWindow,
  residualBoundMs,
  residualByClients,
  residualReport,
  SideTally,
  watchResidual,
  type ResidualWatch,
} from '../../rehearsal/residual';

describe('residual traffic arithmetic', () => {
  it('peakPerWindow: the most events in any window [t, t + W)', () => {
    expect(peakPerWindow([], 1000)).toBe(0);
    expect(peakPerWindow([5], 1000)).toBe(1);
    // 0, 400, 999 fit in one window; 1000 starts the next (the end is exclusive).
    expect(peakPerWindow([0, 400, 999, 1000, 1500, 1600, 1700], 1000)).toBe(5);
    expect(peakPerWindow([1700, 0, 1000, 400, 1600, 999, 1500], 1000)).toBe(5);
    expect(peakPerWindow([0, 1000, 2000, 3000], 1000)).toBe(1);
  });

  it('drainedAfter: the start of the last window over the threshold, from the rollback', () => {
    const rollback = 10_000;
    // Nothing after the rollback, or only what a window may hold: drained at once.
    expect(drainedAfter([], rollback, 1000, 1)).toBe(0);
    expect(drainedAfter([9000, 9500, 10_100], rollback, 1000, 1)).toBe(0);
    // Threshold 1: two within a window is too many. The last such pair starts at 12_500.
    expect(drainedAfter([10_100, 10_200, 11_000, 12_500, 13_400, 15_000], rollback, 1000, 1)).toBe(2500);
    // Threshold 0 (no traffic allowed): drained after the last event.
    expect(drainedAfter([10_100, 13_000], rollback, 1000, 0)).toBe(3000);
    // A fractional threshold counts whole requests: 0.5 allows none.
    expect(drainedAfter([10_100, 13_000], rollback, 1000, 0.5)).toBe(3000);
    // Events before the rollback never count.
    expect(drainedAfter([9990, 9995, 9999], rollback, 1000, 0)).toBe(0);
  });

  it('countsPerWindow: consecutive windows from the rollback, the last one partial', () => {
    expect(countsPerWindow([10_000, 10_500, 11_000, 12_999, 13_100], 10_000, 13_200, 1000)).toEqual([2, 1, 1, 1]);
    expect(countsPerWindow([], 10_000, 10_000, 1000)).toEqual([0]);
    expect(countsPerWindow([9000, 20_000], 10_000, 12_000, 1000)).toEqual([0, 0]);
  });

  it('the bound: TTL + drain interval + one window with DNS, one window through the proxy', () => {
    expect(residualBoundMs('dns', 2000, 1000, 1000)).toBe(4000);
    expect(residualBoundMs('proxy', 2000, 1000, 1000)).toBe(1000);
  });

  it('the default cap of the watch: twice the bound + 5 s, with DNS at least the stale hold + two TTLs + a window', () => {
    // DNS defaults: stale clients keep an answer up to 10 TTLs (20 s) → 20 + 4 + 1 s.
    expect(defaultMaxWatchMs('dns', 2000, 1000, 1000, 20_000)).toBe(25_000);
    // A short stale hold leaves the drain's own cap: 2 × 4 s + 5 s.
    expect(defaultMaxWatchMs('dns', 2000, 1000, 1000, 2000)).toBe(13_000);
    expect(defaultMaxWatchMs('proxy', 0, 1000, 1000, 0)).toBe(7000);
  });

  it('residualByClients: what reached the new side after the rollback, by kind of client', () => {
    const atRollback = [{ new: 5 }, { new: 0 }, { new: 7 }];
    const final = [{ new: 9 }, { new: 2 }, { new: 7 }];
    expect(residualByClients((c) => c === 1, atRollback, final)).toEqual({ ttlHonouring: 4, ttlIgnoring: 2 });
  });

  it('SideTally: passes every response on and keeps counts per side and the new side’s times', () => {
    const metrics = new LocalMetrics({ bucketMs: 100 });
    const tally = new SideTally(metrics, () => 50_000);
    tally.record('old', 200, 3, 10_000);
    tally.record('new', 200, 4, 10_050);
    tally.record('new', 503, 4, 10_900);
    tally.record('new', 200, 4);
    expect(metrics.totals()).toEqual({ old: { requests: 1, errors4xx: 0, errors5xx: 0 }, new: { requests: 3, errors4xx: 0, errors5xx: 1 } });
    expect(tally.requestsBySide()).toEqual({ old: 1, new: 3 });
    expect(tally.responsesBySide()).toEqual({ old: { '200': 1 }, new: { '200': 2, '503': 1 } });
    expect(tally.newSideTimes()).toEqual([10_050, 10_900, 50_000]);
    expect(tally.newSideCount(10_000, 11_000)).toBe(2);
    expect(tally.newSideCount(10_900, 50_000)).toBe(1);
  });

  it('residualReport: the report from what the watch saw', () => {
    const tally = new SideTally(new LocalMetrics({ bucketMs: 100 }), () => 0);
    for (const t of [9000, 9100, 9200, 10_010, 10_020, 10_800, 12_100, 12_200]) tally.record('new', 200, 1, t);
    const watch: ResidualWatch = {
      peakRequestsPerWindow: 3,
      thresholdRequestsPerWindow: 0.03,
      activeDrain: true,
      maxWatchMs: 25_000,
      closeAt: 10_005,
      refuseAt: 13_000,
      endedAt: 14_000,
      drained: true,
      interrupted: false,
    };
    const report = residualReport({
      mode: 'dns',
      rollbackAt: 10_000,
      windowMs: 1000,
      ttlMs: 2000,
      drainIntervalMs: 1000,
      watch,
      tally,
      afterRollback: { total: { wrongAnswers: 2, total: 3 } },
      connectionsClosed: 5,
      connectionsRefused: 1,
      byClients: { ttlHonouring: 3, ttlIgnoring: 2 },
    });
    expect(report).toEqual({
      shift: 'dns',
      windowMs: 1000,
      peakRequestsPerWindow: 3,
      thresholdRequestsPerWindow: 0.03,
      requestsAfterRollback: 5,
      wrongAnswersAfterRollback: 2,
      harmedAfterRollback: 3,
      activeDrain: true,
      drained: true,
      drainedAfterMs: 2200,
      boundMs: 4000,
      withinBound: true,
      watchedMs: 4000,
      maxWatchMs: 25_000,
      requestsPerWindowAfterRollback: [3, 0, 2, 0],
      drain: { closeAfterMs: 5, refuseAfterMs: 3000, connectionsClosed: 5, connectionsRefused: 1 },
      byClients: { ttlHonouring: 3, ttlIgnoring: 2 },
    });
    // A watch that gave up reports no drain time, and so no bound kept.
    const undrained = residualReport({ mode: 'dns', rollbackAt: 10_000, windowMs: 1000, ttlMs: 2000, drainIntervalMs: 1000, watch: { ...watch, drained: false }, tally, afterRollback: undefined, connectionsClosed: 0, connectionsRefused: 0 });
    expect(undrained).toMatchObject({ drained: false, withinBound: false, wrongAnswersAfterRollback: 0 });
    expect(undrained.drainedAfterMs).toBeUndefined();
    // Without the active drain there are no drain steps to report, and the report says so.
    const { closeAt: _closeAt, refuseAt: _refuseAt, ...left } = watch;
    const leftAlone = residualReport({ mode: 'dns', rollbackAt: 10_000, windowMs: 1000, ttlMs: 2000, drainIntervalMs: 1000, watch: { ...left, activeDrain: false }, tally, afterRollback: undefined, connectionsClosed: 0, connectionsRefused: 0 });
    expect(leftAlone).toMatchObject({ activeDrain: false, drained: true, drainedAfterMs: 2200, maxWatchMs: 25_000 });
    expect(leftAlone.drain).toBeUndefined();
  });
});

describe('watchResidual: the drain on and off', () => {
  // A new side that keeps answering: one response every 10 ms from the rollback on, as long as
  // nothing drains it (`stopsWhen`: the drain mode that ends its traffic).
  async function watch(activeDrain: boolean, stopsWhen: 'close' | 'refuse' | 'never') {
    let now = 100_000;
    const tally = new SideTally(new LocalMetrics({ bucketMs: 10 }), () => now);
    for (let t = 99_000; t < 100_000; t += 10) tally.record('new', 200, 1, t); // the peak: 10 per 100 ms
    const modes: string[] = [];
    let serving = true;
    const result = await watchResidual({
      mode: 'dns',
      rollbackAt: 100_000,
      windowMs: 100,
      ttlMs: 100,
      drainIntervalMs: 50,
      tally,
      activeDrain,
      maxWatchMs: 600,
      newSide: {
        setDrain: async (mode) => {
          modes.push(mode);
          if (mode === stopsWhen) serving = false;
        },
      },
      cachedOnNewSide: () => 0,
      now: () => now,
      pollMs: 1,
      // Each look advances the fake clock by 10 ms, with a response of the new side if it still serves.
      onPoll: () => {
        now += 10;
        if (serving) tally.record('new', 200, 1, now);
      },
    });
    return { result, modes };
  }

  it('with the drain: Connection: close at once, refusal after the TTL and the drain interval, drained', async () => {
    const { result, modes } = await watch(true, 'refuse');
    expect(modes).toEqual(['close', 'refuse']);
    expect(result).toMatchObject({ activeDrain: true, maxWatchMs: 600, closeAt: 100_000, drained: true });
    expect(result.refuseAt).toBeGreaterThanOrEqual(100_150);
    expect(result.endedAt).toBeLessThan(100_600);
  });

  it('without it: the new side is left alone, and the watch gives up at its cap, not drained', async () => {
    const { result, modes } = await watch(false, 'never');
    expect(modes).toEqual([]);
    expect(result).toMatchObject({ activeDrain: false, maxWatchMs: 600, drained: false, interrupted: false });
    expect(result.closeAt).toBeUndefined();
    expect(result.refuseAt).toBeUndefined();
    expect(result.endedAt).toBeGreaterThanOrEqual(100_600);
  });
});
