/**
 * The rollback's residual traffic arithmetic: peaks and drain moments per window, and the tally
 * that feeds them. Pure: no servers.
 */
import { describe, expect, it } from 'vitest';
import { LocalMetrics } from '../../local/metrics';
import {
  countsPerWindow,
  drainedAfter,
  peakPerWindow,
  residualBoundMs,
  residualByClients,
  residualReport,
  SideTally,
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
      drained: true,
      drainedAfterMs: 2200,
      boundMs: 4000,
      withinBound: true,
      watchedMs: 4000,
      requestsPerWindowAfterRollback: [3, 0, 2, 0],
      drain: { closeAfterMs: 5, refuseAfterMs: 3000, connectionsClosed: 5, connectionsRefused: 1 },
      byClients: { ttlHonouring: 3, ttlIgnoring: 2 },
    });
    // A watch that gave up reports no drain time, and so no bound kept.
    const undrained = residualReport({ mode: 'dns', rollbackAt: 10_000, windowMs: 1000, ttlMs: 2000, drainIntervalMs: 1000, watch: { ...watch, drained: false }, tally, afterRollback: undefined, connectionsClosed: 0, connectionsRefused: 0 });
    expect(undrained).toMatchObject({ drained: false, withinBound: false, wrongAnswersAfterRollback: 0 });
    expect(undrained.drainedAfterMs).toBeUndefined();
  });
});
