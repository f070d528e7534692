import { Duration, Token } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JUDGE_CONFIG } from '../../lambda/core/judge';
import { CutoverValidationError } from '../../lib/errors';
import { HealthCheck } from '../../lib/health-check';
import { TeardownPolicy, TrafficShiftPlan } from '../../lib/plan';

const MIN = 60_000;

describe('TrafficShiftPlan presets', () => {
  it('should mirror the CodeDeploy canary presets', () => {
    for (const [plan, minutes] of [
      [TrafficShiftPlan.CANARY_10PERCENT_5MINUTES, 5],
      [TrafficShiftPlan.CANARY_10PERCENT_10MINUTES, 10],
      [TrafficShiftPlan.CANARY_10PERCENT_15MINUTES, 15],
      [TrafficShiftPlan.CANARY_10PERCENT_30MINUTES, 30],
    ] as const) {
      expect(plan.spec.steps).toEqual([
        { weight: 10, bakeMs: minutes * MIN },
        { weight: 100, bakeMs: minutes * MIN },
      ]);
      expect(plan.spec.teardown).toBe('manual');
    }
    expect(TrafficShiftPlan.CANARY_10PERCENT_5MINUTES.presetName).toBe('CANARY_10PERCENT_5MINUTES');
  });

  it('should mirror the CodeDeploy linear presets', () => {
    for (const [plan, minutes] of [
      [TrafficShiftPlan.LINEAR_10PERCENT_EVERY_1MINUTE, 1],
      [TrafficShiftPlan.LINEAR_10PERCENT_EVERY_2MINUTES, 2],
      [TrafficShiftPlan.LINEAR_10PERCENT_EVERY_3MINUTES, 3],
      [TrafficShiftPlan.LINEAR_10PERCENT_EVERY_10MINUTES, 10],
    ] as const) {
      expect(plan.spec.steps.map((s) => s.weight)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
      expect(new Set(plan.spec.steps.map((s) => s.bakeMs))).toEqual(new Set([minutes * MIN]));
    }
  });

  it('should move everything in one step with ALL_AT_ONCE, still soaking afterwards', () => {
    expect(TrafficShiftPlan.ALL_AT_ONCE.spec.steps).toEqual([{ weight: 100, bakeMs: MIN }]);
    expect(TrafficShiftPlan.ALL_AT_ONCE.spec.soakMs).toBeGreaterThan(0);
  });
});

describe('TrafficShiftPlan factories', () => {
  it('should build a canary from Durations', () => {
    const plan = TrafficShiftPlan.canary({
      percent: 5,
      bake: Duration.minutes(7),
      soak: Duration.minutes(20),
      healthWindow: Duration.minutes(1),
      teardown: TeardownPolicy.AFTER_SOAK,
    });
    expect(plan.spec).toEqual({
      steps: [
        { weight: 5, bakeMs: 7 * MIN },
        { weight: 100, bakeMs: 7 * MIN },
      ],
      soakMs: 20 * MIN,
      healthWindowMs: MIN,
      teardown: 'after-soak',
    });
    expect(plan.minimumDuration.toMinutes()).toBe(34);
    expect(plan.describe()).toContain('5% 7m');
  });

  it('should build a linear plan capped at 100', () => {
    const plan = TrafficShiftPlan.linear({ percentPerStep: 30, interval: Duration.minutes(2) });
    expect(plan.spec.steps).toEqual([
      { weight: 30, bakeMs: 2 * MIN },
      { weight: 60, bakeMs: 2 * MIN },
      { weight: 90, bakeMs: 2 * MIN },
      { weight: 100, bakeMs: 2 * MIN },
    ]);
  });

  it('should build explicit steps and keep the default soak, window and teardown', () => {
    const plan = TrafficShiftPlan.steps([
      { weight: 1, bake: Duration.minutes(10) },
      { weight: 25, bake: Duration.minutes(5) },
      { weight: 100, bake: Duration.minutes(5) },
    ]);
    expect(plan.spec).toEqual({
      steps: [
        { weight: 1, bakeMs: 10 * MIN },
        { weight: 25, bakeMs: 5 * MIN },
        { weight: 100, bakeMs: 5 * MIN },
      ],
      soakMs: 10 * MIN,
      healthWindowMs: MIN,
      teardown: 'manual',
    });
    expect(plan.presetName).toBeUndefined();
  });

  it('should round-trip a spec and change only the teardown with withTeardown', () => {
    const original = TrafficShiftPlan.CANARY_10PERCENT_10MINUTES;
    expect(TrafficShiftPlan.fromSpec(original.spec).spec).toEqual(original.spec);
    const released = original.withTeardown(TeardownPolicy.AFTER_SOAK);
    expect(released.spec).toEqual({ ...original.spec, teardown: 'after-soak' });
    expect(original.spec.teardown).toBe('manual');
  });

  it('fails when the canary percent is 0 or 100, showing the value', () => {
    expect(() => TrafficShiftPlan.canary({ percent: 0, bake: Duration.minutes(5) })).toThrow(/TrafficShiftPlan\.canary.*got 0/);
    expect(() => TrafficShiftPlan.canary({ percent: 100, bake: Duration.minutes(5) })).toThrow(/got 100/);
  });

  it('fails when a bake is shorter than the health window', () => {
    expect(() => TrafficShiftPlan.canary({ percent: 10, bake: Duration.seconds(30) })).toThrow(/bake time must be at least one health window \(60000 ms\), got 30000 ms/);
  });

  it('fails when the health window is not a whole number of minutes', () => {
    expect(() =>
      TrafficShiftPlan.linear({ percentPerStep: 10, interval: Duration.minutes(5), healthWindow: Duration.seconds(90) }),
    ).toThrow(/healthWindow must be a whole number of minutes .* got 90000 ms/);
  });

  it('fails when weights do not increase or do not end at 100', () => {
    expect(() =>
      TrafficShiftPlan.steps([
        { weight: 50, bake: Duration.minutes(1) },
        { weight: 20, bake: Duration.minutes(1) },
        { weight: 100, bake: Duration.minutes(1) },
      ]),
    ).toThrow(/step 2: weights must increase, got 20 after 50/);
    expect(() => TrafficShiftPlan.steps([{ weight: 50, bake: Duration.minutes(1) }])).toThrow(/the last step must be 100%, got 50/);
    expect(() => TrafficShiftPlan.steps([])).toThrow(/at least one step/);
  });

  it('fails when a Duration is missing, is a number, or is a token', () => {
    expect(() => TrafficShiftPlan.steps([{ weight: 100, bake: 60_000 as never }])).toThrow(/step 1 bake must be a Duration .* got 60000/);
    expect(() => TrafficShiftPlan.canary({ percent: 10, bake: Duration.minutes(Token.asNumber({ Ref: 'Bake' })) })).toThrow(
      /bake must be known at synth/,
    );
    expect(() => TrafficShiftPlan.canary({ percent: Token.asNumber({ Ref: 'Pct' }), bake: Duration.minutes(5) })).toThrow(
      /percent must be a number known at synth/,
    );
  });

  it('fails with a CutoverValidationError for a malformed spec', () => {
    expect(() => TrafficShiftPlan.fromSpec({ steps: 'all' } as never)).toThrow(CutoverValidationError);
    expect(() => TrafficShiftPlan.fromSpec({ steps: 'all' } as never)).toThrow(/plan\.steps must be an array, got "all"/);
  });

  it('fails when the teardown policy is unknown', () => {
    expect(() => TrafficShiftPlan.ALL_AT_ONCE.withTeardown('never' as TeardownPolicy)).toThrow(/teardown must be .* got "never"/);
  });
});

describe('HealthCheck', () => {
  it('should pass no overrides by default and resolve to the judge defaults', () => {
    expect(HealthCheck.DEFAULT.overrides).toEqual({});
    expect(HealthCheck.DEFAULT.config).toEqual(DEFAULT_JUDGE_CONFIG);
  });

  it('should map Durations to the judge milliseconds and keep other defaults', () => {
    const check = HealthCheck.custom({ minRequests: 20, latencyMargin: Duration.millis(80), maxHold: Duration.minutes(15), alarmRecheck: Duration.minutes(5) });
    expect(check.overrides).toEqual({ minRequests: 20, latencyMarginMs: 80, maxHoldMs: 15 * MIN, alarmRecheckMs: 5 * MIN });
    expect(check.config.maxErrorRate).toBe(DEFAULT_JUDGE_CONFIG.maxErrorRate);
  });

  it('should be stricter than the defaults with STRICT', () => {
    expect(HealthCheck.STRICT.config.maxErrorRate).toBeLessThan(DEFAULT_JUDGE_CONFIG.maxErrorRate);
    expect(HealthCheck.STRICT.config.degradationFactor).toBeLessThan(DEFAULT_JUDGE_CONFIG.degradationFactor);
  });

  it('fails when a setting is out of range, showing the value', () => {
    expect(() => HealthCheck.custom({ maxErrorRate: 1.5 })).toThrow(/maxErrorRate must be between 0 and 1 \(exclusive\), got 1\.5/);
    expect(() => HealthCheck.custom({ maxMissingWindows: 2.5 })).toThrow(/maxMissingWindows must be a whole number, at least 1, got 2\.5/);
    expect(() => HealthCheck.custom({ latencyWindows: 2 } as never)).toThrow(/latencyWindows was removed: the latency test now accumulates evidence/);
    expect(() => HealthCheck.custom({ maxErrorRatio: 0.1 } as never)).toThrow(/unknown option "maxErrorRatio"; known: minRequests/);
    expect(() => HealthCheck.custom({ minRequests: 0 })).toThrow(CutoverValidationError);
  });

  it('fails when a duration setting is not a Duration', () => {
    expect(() => HealthCheck.custom({ maxHold: 1000 as never })).toThrow(/maxHold must be a Duration, got 1000/);
  });
});
