import { describe, expect, it } from 'vitest';
import { MigrationPlan, PlanValidationError, formatDuration } from '../../lambda/core/plan';

describe('MigrationPlan', () => {
  it('should build the CodeDeploy-like presets', () => {
    expect(MigrationPlan.CANARY_10PERCENT_5MINUTES.steps).toEqual([
      { weight: 10, bakeMs: 300_000 },
      { weight: 100, bakeMs: 300_000 },
    ]);
    expect(MigrationPlan.LINEAR_10PERCENT_EVERY_1MINUTE.steps.map((s) => s.weight)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(MigrationPlan.ALL_AT_ONCE.steps).toEqual([{ weight: 100, bakeMs: 60_000 }]);
    expect(MigrationPlan.CANARY_10PERCENT_5MINUTES.teardown).toBe('manual');
  });

  it('should cap a linear plan at 100 and keep weights exact', () => {
    expect(MigrationPlan.linear({ percentPerStep: 30, intervalMs: 60_000 }).steps.map((s) => s.weight)).toEqual([30, 60, 90, 100]);
    expect(MigrationPlan.linear({ percentPerStep: 2.5, intervalMs: 60_000 }).steps.slice(0, 3).map((s) => s.weight)).toEqual([2.5, 5, 7.5]);
    expect(() => MigrationPlan.linear({ percentPerStep: 0.1, intervalMs: 60_000 })).toThrow(/at most 100 steps, got 1000/);
  });

  it('should round-trip through its spec', () => {
    const plan = MigrationPlan.canary({ percent: 5, bakeMs: 120_000, soakMs: 0, teardown: 'after-soak' });
    expect(MigrationPlan.fromSpec(plan.toSpec())).toEqual(plan);
    expect(plan.describe()).toBe('5% 2m → 100% 2m, soak 0s, teardown after-soak');
    expect(plan.minimumDurationMs).toBe(240_000);
  });

  it.each([
    [[{ weight: 50, bakeMs: 60_000 }, { weight: 40, bakeMs: 60_000 }, { weight: 100, bakeMs: 60_000 }], /step 2: weights must increase, got 40 after 50/],
    [[{ weight: 0, bakeMs: 60_000 }, { weight: 100, bakeMs: 60_000 }], /step 1: weight must be more than 0 and at most 100, got 0/],
    [[{ weight: 150, bakeMs: 60_000 }], /step 1: weight must be more than 0 and at most 100, got 150/],
    [[{ weight: 10, bakeMs: 60_000 }, { weight: 90, bakeMs: 60_000 }], /the last step must be 100%, got 90/],
    [[{ weight: 10, bakeMs: 30_000 }, { weight: 100, bakeMs: 60_000 }], /step 1: bake time must be at least one health window \(60000 ms\), got 30000 ms/],
    [[], /at least one step/],
  ])('fails on an invalid plan %#', (steps, message) => {
    expect(() => MigrationPlan.fromSteps(steps)).toThrow(PlanValidationError);
    expect(() => MigrationPlan.fromSteps(steps)).toThrow(message);
  });

  it('fails on bad factory input and bad specs, showing the value', () => {
    expect(() => MigrationPlan.canary({ percent: 100, bakeMs: 60_000 })).toThrow(/canary percent must be between 0 and 100 \(exclusive\), got 100/);
    expect(() => MigrationPlan.linear({ percentPerStep: -5, intervalMs: 60_000 })).toThrow(/got -5/);
    expect(() => MigrationPlan.fromSpec({ steps: [{ weight: 100, bakeMs: 60_000 }], soakMs: -1, healthWindowMs: 60_000, teardown: 'manual' })).toThrow(/soakMs .* got -1/);
    expect(() => MigrationPlan.fromSpec({ steps: [{ weight: 100, bakeMs: 60_000 }], soakMs: 0, healthWindowMs: 60_000, teardown: 'never' as never })).toThrow(/teardown must be 'manual' or 'after-soak', got "never"/);
    expect(() => MigrationPlan.fromSpec(null as never)).toThrow(/plan must be an object, got null/);
  });

  it('should format durations', () => {
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(3_600_000)).toBe('1h');
  });
});
