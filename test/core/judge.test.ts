import { describe, expect, it } from 'vitest';
import {
  DEFAULT_JUDGE_CONFIG,
  INITIAL_JUDGE_MEMORY,
  addSide,
  judge,
  resolveJudgeConfig,
  type JudgeInput,
  type JudgeMemory,
} from '../../lambda/core/judge';
import type { HealthWindow, SideSignals } from '../../lambda/core/ports';
import { binomial, mulberry32 } from './fakes';

const ZERO: SideSignals = { requests: 0, errors4xx: 0, errors5xx: 0 };

interface Traffic {
  requests: number;
  weight: number;
  oldRate5xx: number;
  newRate5xx: number;
  oldRate4xx?: number;
  newRate4xx?: number;
}

function drawWindow(rng: () => number, t: Traffic, i: number): HealthWindow {
  const nNew = binomial(t.requests, t.weight / 100, rng);
  const nOld = t.requests - nNew;
  return {
    fromMs: i * 60_000,
    toMs: (i + 1) * 60_000,
    old: { requests: nOld, errors5xx: binomial(nOld, t.oldRate5xx, rng), errors4xx: binomial(nOld, t.oldRate4xx ?? 0.02, rng), latencyMs: 40 },
    new: { requests: nNew, errors5xx: binomial(nNew, t.newRate5xx, rng), errors4xx: binomial(nNew, t.newRate4xx ?? 0.02, rng), latencyMs: 40 },
  };
}

/** Feeds windows to the judge as a step that never ends; returns the window index of the first rollback. */
function simulate(seed: number, windows: number, t: Traffic): { rollbackAt?: number; code?: string } {
  const rng = mulberry32(seed);
  let memory: JudgeMemory = INITIAL_JUDGE_MEMORY;
  let totals = { old: ZERO, new: ZERO };
  for (let i = 0; i < windows; i++) {
    const window = drawWindow(rng, t, i);
    totals = { old: addSide(totals.old, window.old), new: addSide(totals.new, window.new) };
    const result = judge(input({ window, stepTotals: totals, memory, elapsedMs: 0, requiredMs: Number.MAX_SAFE_INTEGER }));
    memory = result.memory;
    if (result.decision.action === 'rollback') return { rollbackAt: i + 1, code: result.decision.code };
  }
  return {};
}

function input(overrides: Partial<JudgeInput>): JudgeInput {
  return {
    config: DEFAULT_JUDGE_CONFIG,
    phase: 'bake',
    elapsedMs: 60_000,
    requiredMs: 60_000,
    window: null,
    stepTotals: { old: ZERO, new: ZERO },
    alarms: [],
    probes: [],
    memory: INITIAL_JUDGE_MEMORY,
    ...overrides,
  };
}

describe('judge: statistics on simulated traffic', () => {
  it('should not roll back on 1,000 windows of healthy binomial noise at a 1% weight (10 seeds)', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const result = simulate(seed, 1000, { requests: 10_000, weight: 1, oldRate5xx: 0.01, newRate5xx: 0.01 });
      expect(result, `seed ${seed}`).toEqual({});
    }
  });

  it('should not roll back on healthy noise at low traffic either (20 requests a window on new)', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const result = simulate(seed, 1000, { requests: 2000, weight: 1, oldRate5xx: 0.05, newRate5xx: 0.05, oldRate4xx: 0.1, newRate4xx: 0.1 });
      expect(result, `seed ${seed}`).toEqual({});
    }
  });

  it('should roll back within a few windows on a real 5x increase of 5XX at a 1% weight', () => {
    const detections: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const result = simulate(seed, 100, { requests: 10_000, weight: 1, oldRate5xx: 0.01, newRate5xx: 0.05 });
      expect(result.code, `seed ${seed}`).toBe('error-rate-5xx');
      detections.push(result.rollbackAt!);
    }
    expect(Math.max(...detections)).toBeLessThanOrEqual(10);
  });

  it('should roll back at once when a 10% canary returns 5XX on a fifth of its requests', () => {
    const result = simulate(7, 10, { requests: 2000, weight: 10, oldRate5xx: 0.001, newRate5xx: 0.2 });
    expect(result).toEqual({ rollbackAt: 1, code: 'error-rate-5xx' });
  });

  it('should catch a 4XX regression separately from 5XX', () => {
    const result = simulate(3, 50, { requests: 10_000, weight: 5, oldRate5xx: 0.01, newRate5xx: 0.01, oldRate4xx: 0.02, newRate4xx: 0.1 });
    expect(result.code).toBe('error-rate-4xx');
  });

  it('should judge against the recorded baseline once the old side takes no traffic (100%)', () => {
    // Build a baseline from 20 windows at 50 %.
    const rng = mulberry32(5);
    let memory = INITIAL_JUDGE_MEMORY;
    for (let i = 0; i < 20; i++) {
      const w = drawWindow(rng, { requests: 2000, weight: 50, oldRate5xx: 0.01, newRate5xx: 0.01 }, i);
      memory = judge(input({ window: w, stepTotals: { old: w.old, new: w.new }, memory, elapsedMs: 0 })).memory;
    }
    let result;
    const w: HealthWindow = { fromMs: 0, toMs: 1, old: ZERO, new: { requests: 2000, errors5xx: 100, errors4xx: 40, latencyMs: 40 } };
    const soak = (extra: Partial<JudgeInput> = {}) => judge(input({ phase: 'soak', window: w, stepTotals: { old: ZERO, new: w.new }, memory, elapsedMs: 0, ...extra }));
    for (let i = 0; i < 10 && !result?.needsOldSideCheck; i++) {
      result = soak();
      memory = result.memory;
    }
    // Tripped against the baseline: a hold that asks for the old side's synthetic health first.
    expect(result?.decision).toMatchObject({ action: 'hold', code: 'old-side-check' });
    const probe = (errors5xx: number) => ({ side: 'old' as const, verdict: 'ok' as const, atMs: 1, summary: 'ok', findings: 0, health: { requests: 120, errors5xx } });
    // The old side healthy (0 of 120 5XX): the new version's regression → rollback.
    const healthyOld = judge(input({ phase: 'soak', window: w, stepTotals: { old: ZERO, new: w.new }, memory: result!.memory, elapsedMs: 0, oldSideCheck: probe(0) }));
    expect(healthyOld.decision).toMatchObject({ action: 'rollback', code: 'error-rate-5xx' });
    expect(healthyOld.decision.reason).toMatch(/a probe of the old side got 0 5XX in 120 answers/);
    // 6 of 120 (5 %) against a 1 % baseline: too few answers to show the old side failing → rollback.
    const unclear = judge(input({ phase: 'soak', window: w, stepTotals: { old: ZERO, new: w.new }, memory: result!.memory, elapsedMs: 0, oldSideCheck: probe(6) }));
    expect(unclear.decision.action).toBe('rollback');
    // 12 of 120 (10 %): far above its baseline and as bad as the new side → a shared outage: hold, evidence reset.
    const sharedOld = judge(input({ phase: 'soak', window: w, stepTotals: { old: ZERO, new: w.new }, memory: result!.memory, elapsedMs: 0, oldSideCheck: probe(12) }));
    expect(sharedOld.decision).toMatchObject({ action: 'hold', code: 'shared-outage' });
    expect(sharedOld.memory).toMatchObject({ cusum5xx: 0, cusumCeiling: 0, oldFailing: true });
  });
});

describe('judge: rules', () => {
  const healthyWindow: HealthWindow = {
    fromMs: 0,
    toMs: 60_000,
    old: { requests: 900, errors4xx: 9, errors5xx: 1, latencyMs: 40 },
    new: { requests: 100, errors4xx: 1, errors5xx: 0, latencyMs: 42 },
  };
  const totals = { old: healthyWindow.old, new: healthyWindow.new };

  it('should advance a healthy step once it has baked and served enough requests', () => {
    const { decision } = judge(input({ window: healthyWindow, stepTotals: totals }));
    expect(decision.action).toBe('advance');
    expect(decision.code).toBe('healthy');
    expect(decision.reason).toMatch(/100 requests on new/);
  });

  it('should hold while baking', () => {
    const { decision } = judge(input({ window: healthyWindow, stepTotals: totals, elapsedMs: 30_000 }));
    expect(decision).toMatchObject({ action: 'hold', code: 'baking' });
  });

  it('should hold with too few requests on the new side rather than guess, then pause after maxHoldMs', () => {
    const few = { old: totals.old, new: { requests: 12, errors4xx: 0, errors5xx: 0 } };
    expect(judge(input({ stepTotals: few })).decision).toMatchObject({ action: 'hold', code: 'too-few-requests' });
    const late = judge(input({ stepTotals: few, elapsedMs: 60_000 + DEFAULT_JUDGE_CONFIG.maxHoldMs }));
    expect(late.decision).toMatchObject({ action: 'pause', code: 'too-few-requests' });
  });

  it('should roll back at once on a desync found by a probe of the new side, without statistics', () => {
    const { decision } = judge(
      input({ probes: [{ side: 'new', verdict: 'desync', atMs: 1, summary: 'step 4 got step 3 answer', findings: 2 }], elapsedMs: 0 }),
    );
    expect(decision).toMatchObject({ action: 'rollback', code: 'probe-desync' });
    expect(decision.reason).toMatch(/step 4 got step 3 answer/);
  });

  it('should pause when the old side desyncs too', () => {
    const { decision } = judge(input({ probes: [{ side: 'old', verdict: 'desync', atMs: 1, summary: 'x', findings: 1 }] }));
    expect(decision).toMatchObject({ action: 'pause', code: 'old-side-desync' });
  });

  it('should roll back on a firing alarm, but only hold at the gate', () => {
    const alarms = [{ name: 'p99-latency', state: 'ALARM' as const }];
    expect(judge(input({ alarms })).decision).toMatchObject({ action: 'rollback', code: 'alarm' });
    expect(judge(input({ alarms, phase: 'gate' })).decision).toMatchObject({ action: 'hold', code: 'alarm-before-start' });
  });

  it('should never count missing signals as healthy: hold, then roll back at the limit', () => {
    let memory = INITIAL_JUDGE_MEMORY;
    const actions: string[] = [];
    for (let i = 0; i < DEFAULT_JUDGE_CONFIG.maxMissingWindows; i++) {
      const r = judge(input({ window: undefined, stepTotals: totals, memory }));
      memory = r.memory;
      actions.push(`${r.decision.action}:${r.decision.code}`);
    }
    expect(actions).toEqual(['hold:signals-missing', 'hold:signals-missing', 'rollback:signals-missing']);
  });

  it('should set the slow threshold from the old p99, then roll back when the new side has more slow requests', () => {
    // The first window sets the threshold: old p99 40 ms + 50 ms margin.
    let memory = judge(input({ window: healthyWindow, stepTotals: totals, elapsedMs: 0 })).memory;
    expect(memory.slowThresholdMs).toBe(90);
    const slow: HealthWindow = {
      ...healthyWindow,
      old: { ...healthyWindow.old, slowRequests: 9 },
      new: { ...healthyWindow.new, latencyMs: 400, slowRequests: 15 },
    };
    const codes: string[] = [];
    for (let i = 0; i < 10 && codes.at(-1) !== 'latency'; i++) {
      const r = judge(input({ window: slow, stepTotals: totals, memory, elapsedMs: 0 }));
      memory = r.memory;
      codes.push(r.decision.code);
    }
    expect(codes.at(-1)).toBe('latency');
    expect(codes.length).toBeGreaterThan(1); // one window of 15 slow in 100 (vs 9 in 900) is evidence, not yet proof
  });

  it('should hold (not advance) while the old side is below its pinned capacity', () => {
    const { decision } = judge(
      input({ window: healthyWindow, stepTotals: totals, capacity: { current: 4, pinned: 10, ready: true }, pinnedCapacity: 10 }),
    );
    expect(decision).toMatchObject({ action: 'hold', code: 'capacity-below-pin' });
  });

  it('should still roll back while capacity is below the pin (a rollback never waits)', () => {
    const { decision } = judge(
      input({
        probes: [{ side: 'new', verdict: 'desync', atMs: 1, summary: 'x', findings: 1 }],
        capacity: { current: 4, pinned: 10, ready: false },
        pinnedCapacity: 10,
      }),
    );
    expect(decision.action).toBe('rollback');
  });

  it('should hold (not roll back) when both sides exceed the 5XX ceiling alike', () => {
    const bad: HealthWindow = {
      fromMs: 0,
      toMs: 1,
      old: { requests: 1000, errors4xx: 0, errors5xx: 300 },
      new: { requests: 1000, errors4xx: 0, errors5xx: 290 },
    };
    const { decision } = judge(input({ window: bad, stepTotals: { old: bad.old, new: bad.new } }));
    expect(decision).toMatchObject({ action: 'hold', code: 'shared-outage' });
  });

  it('should hold on an inconclusive probe of the new side', () => {
    const { decision } = judge(
      input({ window: healthyWindow, stepTotals: totals, latestNewProbe: { side: 'new', verdict: 'inconclusive', atMs: 1, summary: 'control unstable', findings: 1 } }),
    );
    expect(decision).toMatchObject({ action: 'hold', code: 'probe-inconclusive' });
  });

  it('should carry the evidence it used in every decision', () => {
    const { decision } = judge(input({ window: healthyWindow, stepTotals: totals }));
    expect(decision.signals.window).toEqual(healthyWindow);
    expect(decision.signals.stats).toMatchObject({ cusum5xx: expect.any(Number), threshold: Math.log(100_000) });
  });
});

describe('judge config', () => {
  it('fails when a setting is out of range, showing the bad value', () => {
    expect(() => resolveJudgeConfig({ maxErrorRate: 1.5 })).toThrow(/maxErrorRate must be between 0 and 1.*got 1.5/);
    expect(() => resolveJudgeConfig({ degradationFactor: 1 })).toThrow(/degradationFactor must be more than 1, got 1/);
  });
  it('fails on an unknown setting', () => {
    expect(() => resolveJudgeConfig({ minRequets: 5 } as never)).toThrow(/unknown judge setting "minRequets"/);
  });
  it('should merge overrides onto the defaults', () => {
    expect(resolveJudgeConfig({ minRequests: 5 })).toEqual({ ...DEFAULT_JUDGE_CONFIG, minRequests: 5 });
  });
});
