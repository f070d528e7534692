/**
 * The migration view built from a state and its event log: one point per judged window and per
 * probe run even when several decisions carry them, the weight as steps, the limits as the judge
 * reported them.
 */
import { describe, expect, it } from 'vitest';
import { MigrationStatus } from '../../lambda/core/model';
import type { MigrationState } from '../../ops/types';
import { buildMigrationView, viewKey } from '../../dashboard/view';
import { makeEvent } from '../ops/helpers';
import { judged, T0 } from './helpers';

const state: MigrationState = { id: 'm', source: 'local', status: MigrationStatus.SHIFTING, weight: 10, step: 0, steps: 2, stepWeights: [10, 100], updatedAtMs: T0 + 9000, recentEvents: [] };

describe('buildMigrationView', () => {
  it('should keep one point per window and per probe when a shift repeats the hold that judged it', () => {
    const window = judged(T0 + 5000, 40, 1, 0.7);
    const events = [
      makeEvent('m', 1, { atMs: T0, weight: 0, step: -1, type: 'created' }),
      makeEvent('m', 2, { atMs: T0 + 5000, weight: 10, step: 0, signals: window }),
      // The decision to shift carries the same window and probe again.
      makeEvent('m', 3, { atMs: T0 + 5001, weight: 10, step: 0, type: 'shifting', to: MigrationStatus.SHIFTING, signals: window }),
    ];
    const view = buildMigrationView(state, events, T0 + 10_000);
    expect(view.windows).toEqual([
      { atMs: T0 + 5000, newRequests: 40, oldRequests: 200, newRate5xx: 1 / 40, oldRate5xx: 0, newRate4xx: 1 / 40, oldRate4xx: 4 / 200, newLatencyMs: 55, oldLatencyMs: 40, slowThresholdMs: 190 },
    ]);
    expect(view.probes).toHaveLength(1);
    // The evidence after each decision, both of them.
    expect(view.evidence.map((e) => e.cusum5xx)).toEqual([0.7, 0.7]);
    expect(view.weight).toEqual([
      { atMs: T0, weight: 0, step: -1 },
      { atMs: T0 + 5000, weight: 10, step: 0 },
      { atMs: T0 + 9000, weight: 10, step: 0 },
    ]);
    expect(view.stepWeights).toEqual([10, 100]);
    expect(view.maxErrorRate).toBeUndefined();
    expect(view.decisions.map((d) => d.seq)).toEqual([1, 2, 3]);
  });

  it('should draw the 5XX ceiling when the state carries the judge\'s settings, and change its key only with its content', () => {
    const withJudge = { ...state, judge: { maxErrorRate: 0.05 } } as MigrationState;
    const a = buildMigrationView(withJudge, [makeEvent('m', 1)], T0);
    const b = buildMigrationView(withJudge, [makeEvent('m', 1)], T0 + 1000);
    expect(a.maxErrorRate).toBe(0.05);
    expect(viewKey(a)).toBe(viewKey(b));
    expect(viewKey(a)).not.toBe(viewKey(buildMigrationView(withJudge, [makeEvent('m', 1), makeEvent('m', 2)], T0)));
  });

  it('should leave out windows with no requests as gaps, not zero rates', () => {
    const empty = judged(T0 + 2000, 0, 0, 0);
    const view = buildMigrationView(state, [makeEvent('m', 1, { signals: empty })], T0);
    expect(view.windows[0]).toMatchObject({ newRequests: 0, newRate5xx: null, newRate4xx: null });
  });
});
