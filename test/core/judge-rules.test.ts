/**
 * The judge's rules (see the header of lambda/core/judge.ts), each on both sides of its
 * threshold, with the action asserted as well as the code. Thresholds are worked out from the
 * formulas with the default settings: h = ln(100,000) ≈ 11.513, h/2 ≈ 5.756;
 * - 5XX / 4XX / latency, 10,000 requests on each side and no old-side event: each new-side event
 *   adds ln(4/3) ≈ 0.2877, so 40 events give 11.507 < h and 41 give 11.795 ≥ h; 20 give
 *   5.754 < h/2 and 21 give 6.041 ≥ h/2;
 * - the ceiling (5 %, alternative 20 %): ln 4 per failure and ln(0.8/0.95) per success: 8 of 8 is
 *   11.09, 9 of 9 is 12.48; 18 of 100 is 10.86, 19 of 100 is 12.42;
 * - the old side's ceiling break-even share ≈ 11.03 %: 110 of 1,000 is not failing, 111 is;
 * - the old side's shift statistic n·KL(k/n ‖ P0) over its last 5 windows of 1,000, against a
 *   baseline of 100 5XX in 10,000 (taken as its Wilson bound P0 ≈ 1.2599 %): 104 is 11.31 < h,
 *   105 is 11.82 ≥ h;
 * - at 100 %, against that baseline: 34 of 1,000 is 11.16 < h, 35 of 1,000 is 11.87 ≥ h;
 * - the old side's probe at 100 % (n·KL ≥ ln 1000 ≈ 6.908 against its usual rate): 7 of 120 is
 *   5.37 and 8 of 120 is 7.02 against P0; 16 of 120 is 6.15 and 17 of 120 is 7.25 against 5 %.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_JUDGE_CONFIG,
  INITIAL_JUDGE_MEMORY,
  SHARED_OUTAGE,
  judge,
  oldSideFailing,
  resolveJudgeConfig,
  type JudgeConfig,
  type JudgeInput,
  type JudgeMemory,
  type Judgement,
} from '../../lambda/core/judge';
import { BASELINE_MIN_REQUESTS } from '../../lambda/core/evidence';
import type { AlarmSignal, HealthWindow, ProbeOutcome, SideSignals } from '../../lambda/core/ports';
import { tailStatistic, wilsonUpperBound } from '../../lambda/core/stats';

const h = Math.log(100_000);
/** The rate taken for a baseline of 100 in 10,000: its Wilson upper bound at z = 2.33 (z² = 5.4289). */
const P0 = (0.01 + 5.4289 / 20_000 + 2.33 * Math.sqrt(0.0099 / 10_000 + 5.4289 / 400_000_000)) / (1 + 5.4289 / 10_000);
const MAX_HOLD = DEFAULT_JUDGE_CONFIG.maxHoldMs;
const REQUIRED = 60_000;

function side(requests: number, errors5xx: number, errors4xx = 0, extra: Partial<SideSignals> = {}): SideSignals {
  return { requests, errors5xx, errors4xx, ...extra };
}
function win(old: SideSignals, newSide: SideSignals): HealthWindow {
  return { fromMs: 0, toMs: 60_000, old, new: newSide };
}
function mem(overrides: Partial<JudgeMemory> = {}): JudgeMemory {
  return { ...INITIAL_JUDGE_MEMORY, ...overrides };
}
const ENOUGH = { old: side(900, 1), new: side(100, 0) };
const HEALTHY = win(side(900, 1, 9, { latencyMs: 40 }), side(100, 0, 1, { latencyMs: 42 }));

/** A step that has baked and served enough: everything else equal, it advances. */
function input(overrides: Partial<JudgeInput> = {}): JudgeInput {
  return {
    config: DEFAULT_JUDGE_CONFIG,
    phase: 'bake',
    elapsedMs: REQUIRED,
    requiredMs: REQUIRED,
    window: null,
    stepTotals: ENOUGH,
    alarms: [],
    probes: [],
    memory: INITIAL_JUDGE_MEMORY,
    ...overrides,
  };
}
const run = (overrides: Partial<JudgeInput> = {}) => judge(input(overrides));
/** A window judged as the step's only one (its counts are the step's totals). */
const judgeWindow = (window: HealthWindow, overrides: Partial<JudgeInput> = {}) =>
  run({ window, stepTotals: { old: window.old, new: window.new }, ...overrides });
const outcome = (j: Judgement) => `${j.decision.action}:${j.decision.code}`;

function probe(side: 'old' | 'new', verdict: ProbeOutcome['verdict'], summary = 'summary', extra: Partial<ProbeOutcome> = {}): ProbeOutcome {
  return { side, verdict, atMs: 1, summary, findings: verdict === 'ok' ? 0 : 1, ...extra };
}
const alarm = (name: string, state: AlarmSignal['state']): AlarmSignal => ({ name, state });

describe('rule 1: a desync on the new side rolls back', () => {
  it('rolls back on a new-side desync, naming it', () => {
    const j = run({ probes: [probe('new', 'desync', 'step 4 got step 3 answer')] });
    expect(j.decision).toMatchObject({
      action: 'rollback',
      code: 'probe-desync',
      reason: 'Keep-Alive probe found a desync on the new side: step 4 got step 3 answer',
    });
    expect(j.needsOldSideCheck).toBeUndefined();
  });

  it('does not roll back on a new-side probe that is ok or inconclusive, or on an ok old side', () => {
    expect(outcome(run({ probes: [probe('new', 'ok'), probe('old', 'ok')] }))).toBe('advance:healthy');
    expect(run({ probes: [probe('new', 'inconclusive')] }).decision.action).toBe('advance'); // only latestNewProbe holds
  });

  it('finds the desync among other probes, and wins over everything else, in every phase', () => {
    for (const phase of ['gate', 'bake', 'soak'] as const) {
      const j = run({
        phase,
        elapsedMs: 0,
        probes: [probe('new', 'ok', 'fine'), probe('old', 'desync', 'old too'), probe('new', 'desync', 'the one')],
        alarms: [alarm('a', 'ALARM')],
        window: undefined,
        unavailable: ['alarms: timeout'],
        capacity: { current: 0, ready: false },
        pinnedCapacity: 10,
        stepTotals: { old: side(0, 0), new: side(0, 0) },
      });
      expect(j.decision, phase).toMatchObject({ action: 'rollback', code: 'probe-desync', reason: expect.stringMatching(/the one$/) });
    }
  });
});

describe('rule 2: a desync on the old side too pauses', () => {
  it('pauses on an old-side desync', () => {
    expect(run({ probes: [probe('old', 'desync', 'x')] }).decision).toMatchObject({
      action: 'pause',
      code: 'old-side-desync',
      reason: 'Keep-Alive probe found a desync on the OLD side too, so rolling back would not help: x',
    });
  });

  it('pauses when the fresh old-side check finds the desync', () => {
    const j = run({ oldSideCheck: probe('old', 'desync', 'fresh') });
    expect(j.decision).toMatchObject({ action: 'pause', code: 'old-side-desync', reason: expect.stringMatching(/: fresh$/) });
  });

  it('does not pause on an inconclusive old side', () => {
    expect(run({ probes: [probe('old', 'inconclusive')], oldSideCheck: probe('old', 'inconclusive') }).decision.action).toBe('advance');
  });

  it('comes before the alarms', () => {
    expect(outcome(run({ probes: [probe('old', 'desync')], alarms: [alarm('a', 'ALARM')] }))).toBe('pause:old-side-desync');
  });
});

describe('rule 3: an alarm in ALARM rolls back (holds at the gate)', () => {
  it('rolls back in the bake and the soak, naming every firing alarm', () => {
    const alarms = [alarm('p99', 'ALARM'), alarm('quiet', 'OK'), alarm('nodata', 'INSUFFICIENT_DATA'), alarm('5xx', 'ALARM')];
    for (const phase of ['bake', 'soak'] as const) {
      expect(run({ phase, alarms, elapsedMs: 0 }).decision, phase).toMatchObject({ action: 'rollback', code: 'alarm', reason: 'alarm in ALARM: p99, 5xx' });
    }
  });

  it('holds at the gate: the new side cannot be the cause yet', () => {
    expect(run({ phase: 'gate', alarms: [alarm('p99', 'ALARM')] }).decision).toMatchObject({
      action: 'hold',
      code: 'alarm-before-start',
      reason: 'alarm already in ALARM before any traffic moved: p99',
    });
  });

  it('does not fire on OK alarms', () => {
    expect(outcome(run({ alarms: [alarm('a', 'OK')] }))).toBe('advance:healthy');
  });

  it('rolls back before counting missing data, and leaves the memory as it was', () => {
    const memory = mem({ missingHistory: '01' });
    const j = run({ alarms: [alarm('a', 'ALARM')], window: undefined, memory });
    expect(outcome(j)).toBe('rollback:alarm');
    expect(j.memory).toEqual(memory);
  });
});

describe('rule 4: missing signals hold, and roll back at maxMissingWindows in missingSpanWindows', () => {
  it('holds on the first missing window and remembers it', () => {
    const j = run({ window: undefined });
    expect(j.decision).toMatchObject({
      action: 'hold',
      code: 'signals-missing',
      reason: 'no health signals for this window; 1 of the last 1 windows without complete signals (rollback at 3)',
    });
    expect(j.memory).toMatchObject({ missingHistory: '1', missingWindows: 1 });
    expect(j.decision.signals.stats?.missingWindows).toBe(1);
  });

  it('holds at maxMissingWindows − 1 (2 of 3) and rolls back at maxMissingWindows (3)', () => {
    const two = run({ window: undefined, memory: mem({ missingHistory: '01' }) });
    expect(outcome(two)).toBe('hold:signals-missing');
    expect(two.memory).toMatchObject({ missingHistory: '011', missingWindows: 2 });
    const three = run({ window: undefined, memory: mem({ missingHistory: '0101' }) });
    expect(three.decision).toMatchObject({
      action: 'rollback',
      code: 'signals-missing',
      reason: 'no health signals for this window; 3 of the last 5 windows without complete signals (limit 3 in 10): missing data is never healthy',
    });
    expect(three.memory).toMatchObject({ missingHistory: '01011', missingWindows: 3 });
  });

  it('counts over a sliding span: a missing window 10 windows back no longer counts', () => {
    // '1100000000' + missing → '1000000001': 2 of 10 → hold.
    const slid = run({ window: undefined, memory: mem({ missingHistory: '1100000000', missingWindows: 2 }) });
    expect(slid.decision).toMatchObject({ action: 'hold', reason: expect.stringContaining('2 of the last 10 windows') });
    expect(slid.memory).toMatchObject({ missingHistory: '1000000001', missingWindows: 2 });
    // '0110000000' + missing → '1100000001': 3 of 10 → rollback.
    const inSpan = run({ window: undefined, memory: mem({ missingHistory: '0110000000', missingWindows: 2 }) });
    expect(outcome(inSpan)).toBe('rollback:signals-missing');
  });

  it('catches a source that fails every other window (which a count of consecutive misses would not)', () => {
    let memory = INITIAL_JUDGE_MEMORY;
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const j = i % 2 === 0 ? run({ window: undefined, memory }) : judgeWindow(HEALTHY, { memory });
      memory = j.memory;
      outcomes.push(outcome(j));
    }
    expect(outcomes).toEqual(['hold:signals-missing', 'advance:healthy', 'hold:signals-missing', 'advance:healthy', 'rollback:signals-missing']);
    expect(memory.missingHistory).toBe('10101');
  });

  it('records a complete window as 0, sliding the span, and recounts from the history', () => {
    const j = judgeWindow(HEALTHY, { memory: mem({ missingHistory: '0110000000', missingWindows: 99 }) });
    expect(j.memory).toMatchObject({ missingHistory: '1100000000', missingWindows: 2 });
    expect(outcome(j)).toBe('advance:healthy');
    expect(j.decision.signals.stats?.missingWindows).toBeUndefined();
  });

  it('counts a window whose sources did not all answer as missing, naming them', () => {
    const j = judgeWindow(HEALTHY, { unavailable: ['alarms: ThrottlingException', 'probes: timeout'], memory: mem({ missingHistory: '0' }) });
    expect(j.decision).toMatchObject({
      action: 'hold',
      code: 'signals-missing',
      reason: 'signals unavailable: alarms: ThrottlingException; probes: timeout; 1 of the last 2 windows without complete signals (rollback at 3)',
    });
    expect(j.memory.missingHistory).toBe('01');
    // The window's counts are not weighed.
    expect(j.memory.baseline).toEqual(INITIAL_JUDGE_MEMORY.baseline);
  });

  it('follows the configured limit and span', () => {
    const config = resolveJudgeConfig({ maxMissingWindows: 2, missingSpanWindows: 3 });
    expect(outcome(run({ config, window: undefined, memory: mem({ missingHistory: '10' }) }))).toBe('rollback:signals-missing');
    expect(outcome(run({ config, window: undefined, memory: mem({ missingHistory: '100' }) }))).toBe('hold:signals-missing');
    const once = resolveJudgeConfig({ maxMissingWindows: 1, missingSpanWindows: 1 });
    expect(outcome(run({ config: once, window: undefined }))).toBe('rollback:signals-missing');
  });

  it('holds on unavailable sources without a window to judge (fast checks, the gate), without counting them', () => {
    for (const phase of ['gate', 'bake'] as const) {
      const j = run({ phase, window: phase === 'gate' ? HEALTHY : null, unavailable: ['capacity: denied', 'alarms: timeout'], memory: mem({ missingHistory: '011' }) });
      expect(j.decision, phase).toMatchObject({ action: 'hold', code: 'signals-missing', reason: 'signals unavailable: capacity: denied; alarms: timeout' });
      expect(j.memory.missingHistory).toBe('011');
    }
  });

  it('ignores the window at the gate, even a missing one', () => {
    const memory = mem({ missingHistory: '011' });
    const j = run({ phase: 'gate', window: undefined, memory });
    expect(outcome(j)).toBe('advance:gate-passed');
    expect(j.memory).toEqual(memory);
  });
});

describe('rule 5: the sequential tests roll back at h', () => {
  const quiet = side(10_000, 0, 0, { slowRequests: 0, latencyMs: 40 });

  it('5XX: 40 new-side errors (11.51 < h) hold; 41 (11.79 ≥ h) roll back, capped at h', () => {
    const below = judgeWindow(win(quiet, side(10_000, 40)));
    expect(outcome(below)).toBe('hold:evidence-pending');
    expect(below.memory.cusum5xx).toBeCloseTo(40 * Math.log(4 / 3), 12);
    const at = judgeWindow(win(quiet, side(10_000, 41)));
    expect(at.decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-5xx',
      reason: "new side's 5XX rate is worse than old's: 0.41% vs 0.00% this window; evidence 11.5 ≥ 11.5",
    });
    expect(at.memory.cusum5xx).toBe(h);
    expect(at.needsOldSideCheck).toBeUndefined();
  });

  it("names the old side's rate in the same window (one old-side error costs ln(3/2): 42 are needed)", () => {
    const old = side(10_000, 1, 1, { slowRequests: 1, latencyMs: 40 });
    expect(outcome(judgeWindow(win(old, side(10_000, 41))))).toBe('hold:evidence-pending');
    expect(judgeWindow(win(old, side(10_000, 42))).decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-5xx',
      reason: "new side's 5XX rate is worse than old's: 0.42% vs 0.01% this window; evidence 11.5 ≥ 11.5",
    });
    expect(judgeWindow(win(old, side(10_000, 0, 42))).decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-4xx',
      reason: "new side's 4XX rate is worse than old's: 0.42% vs 0.01% this window; evidence 11.5 ≥ 11.5",
    });
    expect(judgeWindow(win(old, side(10_000, 0, 0, { slowRequests: 42 })), { memory: mem({ oldLatencies: [40], slowThresholdMs: 90 }) }).decision).toMatchObject({
      action: 'rollback',
      code: 'latency',
      reason: 'new side is slower: 0.42% of its requests took over 90 ms vs 0.01% on the old side; evidence 11.5 ≥ 11.5',
    });
  });

  it('5XX: accumulates across windows', () => {
    const first = judgeWindow(win(quiet, side(10_000, 40)));
    const second = judgeWindow(win(quiet, side(10_000, 1)), { memory: first.memory });
    expect(outcome(second)).toBe('rollback:error-rate-5xx');
  });

  it('4XX: 40 hold, 41 roll back', () => {
    expect(outcome(judgeWindow(win(quiet, side(10_000, 0, 40))))).toBe('hold:evidence-pending');
    const at = judgeWindow(win(side(10_000, 0, 0), side(10_000, 0, 41)));
    expect(at.decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-4xx',
      reason: "new side's 4XX rate is worse than old's: 0.41% vs 0.00% this window; evidence 11.5 ≥ 11.5",
    });
    expect(at.memory.cusum4xx).toBe(h);
  });

  it('latency: 40 slow requests hold, 41 roll back, naming the threshold the window was read with', () => {
    const slow = (n: number, latencyMs?: number) => side(10_000, 0, 0, { slowRequests: n, ...(latencyMs !== undefined ? { latencyMs } : {}) });
    const memory = mem({ oldLatencies: [40], slowThresholdMs: 90 });
    expect(outcome(judgeWindow(win(quiet, slow(40, 300)), { memory }))).toBe('hold:evidence-pending');
    const at = judgeWindow(win(quiet, slow(41, 300.4)), { memory });
    expect(at.decision).toMatchObject({
      action: 'rollback',
      code: 'latency',
      reason: 'new side is slower: 0.41% of its requests took over 90 ms vs 0.00% on the old side (p99 300 ms vs 40 ms); evidence 11.5 ≥ 11.5',
    });
    expect(at.memory).toMatchObject({ cusumSlow: h, slowThresholdMs: 90, oldLatencies: [40, 40] });
    // Without the new side's p99; and before any threshold was set (and without the old side's p99).
    const noNewP99 = judgeWindow(win(quiet, slow(41)), { memory });
    expect(noNewP99.decision.reason).toBe('new side is slower: 0.41% of its requests took over 90 ms vs 0.00% on the old side; evidence 11.5 ≥ 11.5');
    const noOldP99 = judgeWindow(win(side(10_000, 0, 0, { slowRequests: 0 }), slow(41, 299.6)));
    expect(noOldP99.decision.reason).toBe(
      'new side is slower: 0.41% of its requests took over ? ms vs 0.00% on the old side (p99 300 ms vs none on the old side); evidence 11.5 ≥ 11.5',
    );
  });

  it('ceiling: 8 failures of 8 (11.09) hold, 9 of 9 (12.48) roll back while the old side is fine', () => {
    expect(judgeWindow(win(quiet, side(8, 8))).decision.action).toBe('hold');
    expect(judgeWindow(win(quiet, side(8, 8))).memory.cusumCeiling).toBeCloseTo(8 * Math.log(4), 12);
    const at = judgeWindow(win(quiet, side(9, 9)));
    expect(at.decision).toMatchObject({
      action: 'rollback',
      code: 'error-ceiling-5xx',
      reason: "new side's 5XX rate 100.0% is above the 5.0% ceiling (tested against 20.0%); evidence 11.5 ≥ 11.5; the old side is not failing (0.00%)",
    });
    expect(at.memory.cusumCeiling).toBe(h);
  });

  it('ceiling: 18 of 100 (10.86) holds as evidence, 19 of 100 (12.42) rolls back', () => {
    // The old side at 10 % 5XX: below the ceiling's break-even share, and it keeps the conditional 5XX test low.
    const old = side(1000, 100);
    expect(outcome(judgeWindow(win(old, side(100, 18))))).toBe('hold:evidence-pending');
    const at = judgeWindow(win(old, side(100, 19)));
    expect(at.decision).toMatchObject({ action: 'rollback', code: 'error-ceiling-5xx', reason: expect.stringMatching(/the old side is not failing \(10\.0%\)$/) });
  });

  it("ceiling: tests against CEILING_FACTOR × maxErrorRate, capped at 99 % in the reason", () => {
    const config = resolveJudgeConfig({ maxErrorRate: 0.3 });
    // 10 of 10 at a 30 % ceiling: the alternative 4 × 30 % is capped at 99 %; 10 · ln(0.99/0.3) ≈ 11.94 ≥ h.
    const j = judgeWindow(win(quiet, side(10, 10)), { config });
    expect(j.decision).toMatchObject({ action: 'rollback', code: 'error-ceiling-5xx', reason: expect.stringContaining('above the 30.0% ceiling (tested against 99.0%)') });
  });

  it("ceiling: the old side's break-even share decides between a rollback and a shared-outage hold", () => {
    // The old side at 110 of 1,000 is not failing: the ceiling counts the window and rolls back.
    expect(outcome(judgeWindow(win(side(1000, 110), side(100, 19))))).toBe('rollback:error-ceiling-5xx');
    // At 111 of 1,000 it is failing: the ceiling evidence is reset and the judge holds.
    const shared = judgeWindow(win(side(1000, 111), side(100, 19)), { memory: mem({ cusumCeiling: 11 }) });
    expect(shared.decision).toMatchObject({ action: 'hold', code: SHARED_OUTAGE });
    expect(shared.memory).toMatchObject({ cusumCeiling: 0, oldFailing: true });
  });

  it('tests in order: 5XX, 4XX, latency, ceiling', () => {
    const all = side(10_000, 100, 100, { slowRequests: 100 });
    expect(outcome(judgeWindow(win(quiet, all)))).toBe('rollback:error-rate-5xx');
    expect(outcome(judgeWindow(win(quiet, { ...all, errors5xx: 0 })))).toBe('rollback:error-rate-4xx');
    // Latency (30 slow of 100 vs none of 1,000) and the ceiling (19 of 100) both at h; 5XX is not.
    expect(outcome(judgeWindow(win(side(1000, 100, 0, { slowRequests: 0 }), side(100, 19, 0, { slowRequests: 30 }))))).toBe('rollback:latency');
  });

  it('rolls back without waiting: during the bake, below the pin, with an inconclusive probe and few requests', () => {
    const j = run({
      window: win(quiet, side(10_000, 41)),
      stepTotals: { old: side(0, 0), new: side(5, 0) },
      elapsedMs: 0,
      capacity: { current: 1, ready: false },
      pinnedCapacity: 10,
      latestNewProbe: probe('new', 'inconclusive'),
      alarms: [alarm('nodata', 'INSUFFICIENT_DATA')],
    });
    expect(outcome(j)).toBe('rollback:error-rate-5xx');
  });

  it('does not judge a window at the gate', () => {
    const j = run({ phase: 'gate', window: win(quiet, side(10_000, 1000)) });
    expect(outcome(j)).toBe('advance:gate-passed');
    expect(j.memory).toEqual(INITIAL_JUDGE_MEMORY);
  });

  it('reports the evidence in the decision', () => {
    const window = win(quiet, side(10_000, 40));
    const j = judgeWindow(window);
    expect(j.decision.signals.window).toEqual(window);
    expect(j.decision.signals.stats).toMatchObject({
      cusum5xx: j.memory.cusum5xx,
      cusum4xx: 0,
      cusumSlow: 0,
      cusumCeiling: 0,
      threshold: h,
      newRate5xx: 0.004,
      oldRate5xx: 0,
      oldShift: 0,
    });
    expect('cusumOldShift' in j.decision.signals.stats!).toBe(false);
    expect(j.decision.signals.stats?.llr5xx).toBeCloseTo(40 * Math.log(4 / 3), 12);
  });
});

describe('rule 5 at 100 %: 5XX asks for the old side check; 4XX and latency roll back on the baseline', () => {
  // A baseline of 100 5XX (and 100 4XX, 100 slow) in 10,000, taken as its Wilson bound P0 ≈ 1.26 %.
  const memory = mem({ baseline: side(10_000, 100, 100), baselineSlow: { requests: 10_000, slow: 100 }, slowThresholdMs: 90 });
  const alone = (newSide: SideSignals, extra: Partial<JudgeInput> = {}) =>
    judgeWindow(win(side(0, 0), newSide), { phase: 'soak', memory, ...extra });
  const health = (requests: number, errors5xx: number) => probe('old', 'ok', 'ok', { health: { requests, errors5xx } });
  /** k of 1,000 against P0 (degradationFactor 2). */
  const llr = (k: number) => k * Math.log(2) + (1000 - k) * Math.log((1 - 2 * P0) / (1 - P0));

  it('5XX: 34 of 1,000 (11.16) hold as evidence; 35 of 1,000 (11.87) ask for the old side check', () => {
    expect(llr(34)).toBeCloseTo(11.162000057596, 10);
    expect(llr(35)).toBeCloseTo(11.867988857288, 10);
    const below = alone(side(1000, 34));
    expect(outcome(below)).toBe('hold:evidence-pending');
    expect(below.memory.cusum5xx).toBeCloseTo(llr(34), 12);
    expect(below.needsOldSideCheck).toBeUndefined();
    const at = alone(side(1000, 35));
    expect(at.decision).toMatchObject({
      action: 'hold',
      code: 'old-side-check',
      reason:
        "new side's 5XX rate is worse than old's: 3.5% vs the old side's baseline 1.0% this window; evidence 11.5 ≥ 11.5; checking the old side's synthetic health before rolling back",
    });
    expect(at.needsOldSideCheck).toBe(true);
    expect(at.memory.cusum5xx).toBe(h);
  });

  it('5XX: 26 of 1,000 (5.51 < h/2) advance, 27 (6.22 ≥ h/2) hold as evidence', () => {
    expect(llr(26)).toBeCloseTo(5.514, 3);
    expect(llr(27)).toBeCloseTo(6.220, 3);
    expect(outcome(alone(side(1000, 26)))).toBe('advance:healthy');
    expect(outcome(alone(side(1000, 27)))).toBe('hold:evidence-pending');
  });

  it('5XX: a healthy old side → rollback', () => {
    const j = alone(side(1000, 40), { oldSideCheck: health(120, 0) });
    expect(j.decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-5xx',
      reason: "new side's 5XX rate is worse than old's: 4.0% vs the old side's baseline 1.0% this window; evidence 11.5 ≥ 11.5; a probe of the old side got 0 5XX in 120 answers",
    });
    expect(j.needsOldSideCheck).toBeUndefined();
    expect(j.decision.signals.probes).toContainEqual(health(120, 0));
  });

  it('5XX: 8 of 120 on the old side (n·KL 7.02 ≥ ln 1000 against P0) → shared-outage hold, evidence reset', () => {
    const j = alone(side(1000, 40), { oldSideCheck: health(120, 8) });
    expect(j.decision).toMatchObject({
      action: 'hold',
      code: 'shared-outage',
      reason:
        "new side's 5XX rate is worse than old's: 4.0% vs the old side's baseline 1.0% this window; evidence 11.5 ≥ 11.5; but a probe of the old side got 8 5XX in 120 answers: a shared outage, not the new version's fault; holding until both recover",
    });
    expect(j.memory).toMatchObject({ cusum5xx: 0, cusumCeiling: 0, oldFailing: true });
    expect(j.needsOldSideCheck).toBeUndefined();
  });

  it('5XX: 7 of 120 (n·KL 5.37 < ln 1000: within its usual noise) → rollback', () => {
    const j = alone(side(1000, 40), { oldSideCheck: health(120, 7) });
    expect(j.decision).toMatchObject({ action: 'rollback', code: 'error-rate-5xx', reason: expect.stringMatching(/; a probe of the old side got 7 5XX in 120 answers$/) });
    expect(j.memory).toMatchObject({ cusum5xx: h, oldFailing: false });
  });

  it("5XX: the old side's bound (8 of 120: 17.35 %) at or above the new side's rate ÷ 2 is shared, below it is not", () => {
    // 346 of 1,000: 17.3 % ≤ 17.35 % → shared; 347: 17.35 % > 17.348 % → the new side fails far more → rollback.
    expect(outcome(alone(side(1000, 346), { oldSideCheck: health(120, 8) }))).toBe('hold:shared-outage');
    expect(outcome(alone(side(1000, 347), { oldSideCheck: health(120, 8) }))).toBe('rollback:error-rate-5xx');
  });

  it('5XX: a single old-side failure is never a shared outage, even against a spotless baseline (2 of 2 is)', () => {
    // 0 of 100,000 is taken as z²/(100,000 + z²) ≈ 5.4e-5: one failure in one answer is already ln(1/p) ≈ 9.8 ≥ ln 1000.
    const spotless = mem({ baseline: side(100_000, 0) });
    expect(outcome(alone(side(1000, 20), { memory: spotless, oldSideCheck: health(1, 1) }))).toBe('rollback:error-rate-5xx');
    expect(outcome(alone(side(1000, 20), { memory: spotless, oldSideCheck: health(2, 2) }))).toBe('hold:shared-outage');
  });

  it('5XX: a probe with no answers, or no health at all, cannot tell → rollback', () => {
    expect(outcome(alone(side(1000, 40), { oldSideCheck: health(0, 2) }))).toBe('rollback:error-rate-5xx');
    const unknown = alone(side(1000, 40), { oldSideCheck: probe('old', 'inconclusive', 'no answer') });
    expect(unknown.decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-5xx',
      reason: expect.stringMatching(/; the old side's health is unknown \(inconclusive: no answer\), so rolling back is the safe choice$/),
    });
  });

  it('5XX: degradationFactor divides the new side rate (factor 4: 8 of 120 covers up to 69.4 %)', () => {
    const config = resolveJudgeConfig({ degradationFactor: 4 });
    expect(outcome(alone(side(1000, 693), { config, oldSideCheck: health(120, 8) }))).toBe('hold:shared-outage');
    expect(outcome(alone(side(1000, 694), { config, oldSideCheck: health(120, 8) }))).toBe('rollback:error-rate-5xx');
  });

  it('ceiling without a baseline: asks for the old side check; judges its probe against maxErrorRate', () => {
    // No baseline (99 requests): the 5XX test cannot run, the ceiling can. Against 5 %: 16 of 120 is
    // n·KL 6.15 < ln 1000 (rollback), 17 of 120 is 7.25 (shared).
    const early = mem({ baseline: side(99, 0) });
    const ask = alone(side(100, 19), { memory: early });
    expect(ask.decision).toMatchObject({
      action: 'hold',
      code: 'old-side-check',
      reason:
        "new side's 5XX rate 19.0% is above the 5.0% ceiling (tested against 20.0%); evidence 11.5 ≥ 11.5; checking the old side's synthetic health before rolling back",
    });
    expect(ask.needsOldSideCheck).toBe(true);
    expect(ask.decision.signals.stats?.llr5xx).toBe(0);
    expect(outcome(alone(side(100, 18), { memory: early }))).toBe('hold:evidence-pending');
    const healthy = alone(side(100, 19), { memory: early, oldSideCheck: health(120, 16) });
    expect(healthy.decision).toMatchObject({ action: 'rollback', code: 'error-ceiling-5xx', reason: expect.stringMatching(/; a probe of the old side got 16 5XX in 120 answers$/) });
    const shared = alone(side(100, 19), { memory: early, oldSideCheck: health(120, 17) });
    expect(shared.decision).toMatchObject({ action: 'hold', code: SHARED_OUTAGE, reason: expect.stringMatching(/^new side's 5XX rate 19\.0% is above .*; but a probe of the old side got 17 5XX in 120 answers: a shared outage/) });
    expect(shared.memory).toMatchObject({ cusumCeiling: 0, oldFailing: true });
  });

  it('after a shared outage: holds while the new side still fails, and checks the old side again once the ceiling trips', () => {
    // 12 of 100 adds 12 ln 4 + 88 ln(0.8/0.95) ≈ 1.513 a window: 7 windows make 10.59 < h, 8 make 12.10 ≥ h.
    let memory = alone(side(100, 19), { memory: mem({ baseline: side(99, 0) }), oldSideCheck: health(120, 17) }).memory;
    const outcomes: string[] = [];
    let before = memory;
    let last: Judgement | undefined;
    for (let i = 0; i < 8; i++) {
      before = memory;
      last = alone(side(100, 12), { memory });
      memory = last.memory;
      outcomes.push(outcome(last));
    }
    expect(outcomes).toEqual([...Array(7).fill('hold:shared-outage'), 'hold:old-side-check']);
    expect(last!.needsOldSideCheck).toBe(true);
    expect(before.cusumCeiling).toBeCloseTo(7 * (12 * Math.log(4) + 88 * Math.log(0.8 / 0.95)), 12);
    // The same window judged again with the probe: the old side has recovered, so the new side is at fault…
    const recovered = alone(side(100, 12), { memory: before, oldSideCheck: health(120, 0) });
    expect(recovered.decision).toMatchObject({ action: 'rollback', code: 'error-ceiling-5xx', reason: expect.stringMatching(/got 0 5XX in 120 answers$/) });
    // …or it still fails: hold again, the evidence reset.
    const still = alone(side(100, 12), { memory: before, oldSideCheck: health(120, 17) });
    expect(outcome(still)).toBe('hold:shared-outage');
    expect(still.memory).toMatchObject({ cusumCeiling: 0, oldFailing: true });
  });

  it('after a shared outage: the hold ends as soon as the new side no longer fails (11 of 100)', () => {
    const memory = alone(side(100, 19), { memory: mem({ baseline: side(99, 0) }), oldSideCheck: health(120, 17) }).memory;
    const held = alone(side(100, 12), { memory });
    expect(held.decision).toMatchObject({ action: 'hold', code: SHARED_OUTAGE, reason: expect.stringMatching(/^the old side is failing too \(5XX .*\): a shared outage is not the new version's fault; holding until the old side recovers$/) });
    const over = alone(side(100, 11), { memory });
    expect(over.memory.oldFailing).toBe(false);
    expect(outcome(over)).toBe('advance:healthy');
  });

  it('4XX: 34 of 1,000 hold, 35 roll back on the baseline alone (no probe can judge 4XX)', () => {
    expect(outcome(alone(side(1000, 0, 34)))).toBe('hold:evidence-pending');
    const at = alone(side(1000, 0, 35));
    expect(at.decision).toMatchObject({
      action: 'rollback',
      code: 'error-rate-4xx',
      reason: "new side's 4XX rate is worse than old's: 3.5% vs the old side's baseline 1.0% this window; evidence 11.5 ≥ 11.5",
    });
    expect(at.needsOldSideCheck).toBeUndefined();
  });

  it('latency: 34 slow of 1,000 hold, 35 roll back on the baseline alone', () => {
    expect(outcome(alone(side(1000, 0, 0, { slowRequests: 34 })))).toBe('hold:evidence-pending');
    const at = alone(side(1000, 0, 0, { slowRequests: 35, latencyMs: 250 }));
    expect(at.decision).toMatchObject({
      action: 'rollback',
      code: 'latency',
      reason: 'new side is slower: 3.5% of its requests took over 90 ms vs 1.0% on the old side (p99 250 ms vs none on the old side); evidence 11.5 ≥ 11.5',
    });
  });

  it('does not test against a baseline of fewer than 100 requests', () => {
    const thin = mem({ baseline: side(99, 0, 0), baselineSlow: { requests: 99, slow: 0 } });
    expect(outcome(alone(side(1000, 40, 40, { slowRequests: 40 }), { memory: thin }))).toBe('advance:healthy');
  });

  it('a concurrent 5XX trip never asks for the probe', () => {
    const j = judgeWindow(win(side(10_000, 0), side(10_000, 41)), { memory });
    expect(outcome(j)).toBe('rollback:error-rate-5xx');
    expect(j.needsOldSideCheck).toBeUndefined();
  });
});

describe("oldSideFailing: the old side's probe shows it failing like the new side", () => {
  const probeHealth = (requests: number, errors5xx: number) => ({ requests, errors5xx });
  const failing = (requests: number, errors5xx: number, newRate: number, memory: JudgeMemory = INITIAL_JUDGE_MEMORY, config: JudgeConfig = DEFAULT_JUDGE_CONFIG) =>
    oldSideFailing(probeHealth(requests, errors5xx), newRate, memory, config);
  // A baseline so large that its rate is tiny (z²/(10⁶ + z²) ≈ 5.4e-6): 1 failure of 1 is already 12.1 ≥ ln 1000.
  const huge = mem({ baseline: side(1_000_000, 0) });

  it('needs at least 2 failed answers: 1 of 1 is not enough, 2 of 2 is', () => {
    expect(failing(1, 1, 0, huge)).toBe(false);
    expect(failing(2, 2, 0, huge)).toBe(true);
    expect(failing(0, 0, 0, huge)).toBe(false);
    expect(failing(0, 2, 0, huge)).toBe(false); // no answers: nothing to judge
  });

  it('without a baseline, against maxErrorRate: 16 of 120 (6.15) is not, 17 of 120 (7.25 ≥ ln 1000) is', () => {
    const kl05 = (k: number) => 120 * ((k / 120) * Math.log(k / 120 / 0.05) + (1 - k / 120) * Math.log((1 - k / 120) / 0.95));
    expect(kl05(16)).toBeCloseTo(6.145282925863, 10);
    expect(kl05(17)).toBeCloseTo(7.253361475098, 10);
    expect(failing(120, 16, 0)).toBe(false);
    expect(failing(120, 17, 0)).toBe(true);
    expect(failing(120, 17, 0, mem({ baseline: side(99, 0) }))).toBe(true);
  });

  it('with a baseline, against its upper bound: 7 of 120 (5.37) is not, 8 of 120 (7.02) is', () => {
    const withBase = mem({ baseline: side(10_000, 100) });
    expect(failing(120, 7, 0, withBase)).toBe(false);
    expect(failing(120, 8, 0, withBase)).toBe(true);
  });

  it('never takes a usual rate above maxErrorRate (a baseline of 100 in 1,000, bound 12.4 %, counts as 5 %)', () => {
    // Against 12.4 %, 17 of 120 would be n·KL 0.16; against 5 % it is 7.25.
    expect(failing(120, 17, 0, mem({ baseline: side(1000, 100) }))).toBe(true);
    expect(failing(120, 16, 0, mem({ baseline: side(1000, 100) }))).toBe(false);
    // A higher ceiling: 17 of 120 is no longer unusual.
    expect(failing(120, 17, 0, mem({ baseline: side(99, 0) }), resolveJudgeConfig({ maxErrorRate: 0.1 }))).toBe(false);
  });

  it(`uses the baseline from ${BASELINE_MIN_REQUESTS} requests (maxErrorRate 20 %: 0 of 100 is 5.15 %, 0 of 99 is no baseline)`, () => {
    const config = resolveJudgeConfig({ maxErrorRate: 0.2 });
    // 17 of 120 against 5.149 %: 6.915 ≥ ln 1000 (6.908); against 20 %: below it, 0.
    expect(failing(120, 17, 0, mem({ baseline: side(100, 0) }), config)).toBe(true);
    expect(failing(120, 16, 0, mem({ baseline: side(100, 0) }), config)).toBe(false);
    expect(failing(120, 17, 0, mem({ baseline: side(99, 0) }), config)).toBe(false);
    // 20 of 120 (16.7 %) is far above 0 of 99 (bound 5.2 %), but 99 requests are no baseline: against 20 % it is nothing.
    expect(failing(120, 20, 0, mem({ baseline: side(99, 0) }), config)).toBe(false);
    expect(failing(120, 20, 0, mem({ baseline: side(100, 0) }), config)).toBe(true);
  });

  it('is failing at exactly ln 1000 (maxErrorRate set so that 12 of 120 reaches it to the last bit)', () => {
    const config = resolveJudgeConfig({ maxErrorRate: 0.028177287406056708 });
    expect(tailStatistic(12, 120, 0.028177287406056708)).toBe(Math.log(1000));
    expect(failing(120, 12, 0, INITIAL_JUDGE_MEMORY, config)).toBe(true);
    expect(failing(120, 11, 0, INITIAL_JUDGE_MEMORY, config)).toBe(false);
  });

  it("needs the old side's upper bound (z = 3.09) at newRate / degradationFactor or more", () => {
    // 20 of 120: bound ≈ 29.54 % (at z = 2.33 it would be 26.0 %).
    const bound = wilsonUpperBound(20, 120, 3.09);
    expect(bound).toBeCloseTo(0.295350261228, 11);
    expect(failing(120, 20, 2 * bound)).toBe(true);
    expect(failing(120, 20, 2 * bound + 1e-9)).toBe(false);
    expect(failing(120, 20, 0.55)).toBe(true); // 27.5 %: under the 3.09 bound, over the 2.33 one
    const four = resolveJudgeConfig({ degradationFactor: 4 });
    expect(failing(120, 20, 4 * bound, INITIAL_JUDGE_MEMORY, four)).toBe(true);
    expect(failing(120, 20, 4 * bound + 1e-9, INITIAL_JUDGE_MEMORY, four)).toBe(false);
    expect(failing(120, 20, 4 * bound)).toBe(false);
  });
});

describe('rule 6: the old side failing too holds (shared outage)', () => {
  const fine = side(100, 0);

  it('advances with the old side at 110 of 1,000 5XX (under the break-even share), holds at 111', () => {
    expect(outcome(judgeWindow(win(side(1000, 110), fine)))).toBe('advance:healthy');
    const j = judgeWindow(win(side(1000, 111), fine));
    expect(j.decision).toMatchObject({
      action: 'hold',
      code: 'shared-outage',
      reason: "the old side is failing too (5XX 11.1%, its baseline 0.00%): a shared outage is not the new version's fault; holding until the old side recovers",
    });
    expect(j.memory.oldFailing).toBe(true);
  });

  it('recovers by itself once the old side is fine again', () => {
    const failing = judgeWindow(win(side(1000, 111), fine));
    const next = judgeWindow(win(side(1000, 1), fine), { memory: failing.memory });
    expect(next.memory.oldFailing).toBe(false);
    expect(outcome(next)).toBe('advance:healthy');
  });

  it('holds when its last windows are far above its own baseline: one window of 33 in 1,000 (11.59 ≥ h), not 32 (10.62)', () => {
    const memory = mem({ baseline: side(10_000, 100) });
    expect(outcome(judgeWindow(win(side(1000, 32), fine), { memory }))).toBe('advance:healthy');
    expect(judgeWindow(win(side(1000, 33), fine), { memory }).decision).toMatchObject({
      action: 'hold',
      code: 'shared-outage',
      reason: "the old side is failing too (5XX 3.3%, its baseline 1.0%): a shared outage is not the new version's fault; holding until the old side recovers",
    });
  });

  it("advances at a shift statistic just below h (104 of 5,000 against P0), holds at it (105)", () => {
    const memory = mem({ baseline: side(10_000, 100), oldRecent: Array.from({ length: 4 }, () => ({ requests: 1000, errors5xx: 21 })) });
    const below = judgeWindow(win(side(1000, 20), fine), { memory });
    expect(outcome(below)).toBe('advance:healthy');
    expect(below.decision.signals.stats?.oldShift).toBeCloseTo(11.305436602571, 10);
    const at = judgeWindow(win(side(1000, 21), fine), { memory });
    expect(at.decision).toMatchObject({
      action: 'hold',
      code: SHARED_OUTAGE,
      reason: "the old side is failing too (5XX 2.1%, its baseline 1.0%): a shared outage is not the new version's fault; holding until the old side recovers",
    });
    expect(at.decision.signals.stats?.oldShift).toBeCloseTo(11.820025991848, 10);
  });

  it('moves on at the fifth healthy window after an outage', () => {
    let memory = mem({ baseline: side(10_000, 100), oldRecent: Array.from({ length: 5 }, () => ({ requests: 1000, errors5xx: 10 })) });
    const outcomes: string[] = [];
    for (const errors of [100, 100, 10, 10, 10, 10, 10]) {
      const j = judgeWindow(win(side(1000, errors), fine), { memory });
      memory = j.memory;
      outcomes.push(outcome(j));
    }
    expect(outcomes).toEqual([...Array(6).fill('hold:shared-outage'), 'advance:healthy']);
  });

  it("holds on the remembered state between windows, reporting the old side's recent rate", () => {
    const j = run({ memory: mem({ oldFailing: true, baseline: side(200, 1), oldRecent: [{ requests: 1000, errors5xx: 50 }, { requests: 1000, errors5xx: 150 }] }) });
    expect(j.decision).toMatchObject({
      action: 'hold',
      code: 'shared-outage',
      reason: "the old side is failing too (5XX 10.0%, its baseline 0.50%): a shared outage is not the new version's fault; holding until the old side recovers",
    });
    expect(run({ memory: mem({ oldFailing: true }) }).decision.reason).toBe(
      "the old side is failing too (5XX 0.00%, its baseline 0.00%): a shared outage is not the new version's fault; holding until the old side recovers",
    );
  });

  it('advances once the remembered state is over', () => {
    expect(outcome(run({ memory: mem({ oldFailing: false, oldRecent: [{ requests: 1000, errors5xx: 500 }] }) }))).toBe('advance:healthy');
  });

  it('does not apply at the gate', () => {
    expect(outcome(run({ phase: 'gate', memory: mem({ oldFailing: true }) }))).toBe('advance:gate-passed');
  });

  it('holds, and does not pause, however long it lasts', () => {
    expect(outcome(run({ memory: mem({ oldFailing: true }), elapsedMs: REQUIRED + 10 * MAX_HOLD }))).toBe('hold:shared-outage');
  });

  it('a new side much worse than a failing old side still rolls back', () => {
    expect(outcome(judgeWindow(win(side(1000, 111), side(100, 100))))).toBe('rollback:error-rate-5xx');
  });
});

describe('rule 7: the old side below its pinned capacity, or not ready, holds', () => {
  /** `pinnedCapacity` null: not given. */
  const at = (current: number, ready: boolean, pinnedCapacity: number | null = 10, extra: Partial<JudgeInput> = {}) =>
    run({ capacity: { current, pinned: 10, ready }, ...(pinnedCapacity !== null ? { pinnedCapacity } : {}), ...extra });

  it('holds at pin − 1, advances at the pin and above', () => {
    expect(at(9, true).decision).toMatchObject({
      action: 'hold',
      code: 'capacity-below-pin',
      reason: 'old side at 9 of 10 pinned units: restoring before any weight increase',
    });
    expect(outcome(at(10, true))).toBe('advance:healthy');
    expect(outcome(at(11, true))).toBe('advance:healthy');
  });

  it('holds at the pin when not ready', () => {
    expect(at(10, false).decision).toMatchObject({
      action: 'hold',
      code: 'capacity-below-pin',
      reason: 'old side at 10 of 10 pinned units (not ready): restoring before any weight increase',
    });
  });

  it('does not apply when capacity is not managed (no pin, a pin of 0, or no status)', () => {
    expect(outcome(at(0, false, 0))).toBe('advance:healthy');
    expect(outcome(at(0, false, null))).toBe('advance:healthy');
    expect(outcome(run({ pinnedCapacity: 10 }))).toBe('advance:healthy');
    expect(outcome(at(0, false, 1))).toBe('hold:capacity-below-pin');
  });

  it('holds at the gate too, and never pauses', () => {
    expect(outcome(at(9, true, 10, { phase: 'gate' }))).toBe('hold:capacity-below-pin');
    expect(outcome(at(9, true, 10, { elapsedMs: REQUIRED + 2 * MAX_HOLD }))).toBe('hold:capacity-below-pin');
  });

  it('reports the capacity in the decision', () => {
    expect(at(9, true).decision.signals.capacity).toEqual({ current: 9, pinned: 10, ready: true });
    expect('capacity' in run().decision.signals).toBe(false);
  });
});

describe('rule 8: an inconclusive probe of the new side holds, then pauses after maxHoldMs past the bake', () => {
  const inconclusive = probe('new', 'inconclusive', 'control unstable');

  it('holds at maxHoldMs − 1 past the bake, pauses at maxHoldMs', () => {
    expect(run({ latestNewProbe: inconclusive, elapsedMs: REQUIRED + MAX_HOLD - 1 }).decision).toMatchObject({
      action: 'hold',
      code: 'probe-inconclusive',
      reason: 'latest Keep-Alive probe of the new side was inconclusive: control unstable',
    });
    expect(run({ latestNewProbe: inconclusive, elapsedMs: REQUIRED + MAX_HOLD }).decision).toMatchObject({
      action: 'pause',
      code: 'probe-inconclusive',
      reason: 'Keep-Alive probes of the new side stayed inconclusive for 1800s: control unstable',
    });
  });

  it('holds during the bake', () => {
    expect(outcome(run({ latestNewProbe: inconclusive, elapsedMs: 0 }))).toBe('hold:probe-inconclusive');
  });

  it('follows maxHoldMs (0: pause as soon as the bake is over)', () => {
    const config = resolveJudgeConfig({ maxHoldMs: 0 });
    expect(outcome(run({ config, latestNewProbe: inconclusive }))).toBe('pause:probe-inconclusive');
    expect(outcome(run({ config, latestNewProbe: inconclusive, elapsedMs: REQUIRED - 1 }))).toBe('hold:probe-inconclusive');
  });

  it('does not hold on an ok probe', () => {
    expect(outcome(run({ latestNewProbe: probe('new', 'ok') }))).toBe('advance:healthy');
  });
});

describe('rule 9: the last window had no signals → hold', () => {
  it('holds while the last judged window was missing, advances once it was complete', () => {
    expect(run({ memory: mem({ missingHistory: '0001', missingWindows: 1 }) }).decision).toMatchObject({
      action: 'hold',
      code: 'signals-missing',
      reason: 'the last window had no complete signals (1 of the last 4; rollback at 3)',
    });
    expect(outcome(run({ memory: mem({ missingHistory: '0010', missingWindows: 1 }) }))).toBe('advance:healthy');
  });

  it('does not apply at the gate', () => {
    expect(outcome(run({ phase: 'gate', memory: mem({ missingHistory: '1', missingWindows: 1 }) }))).toBe('advance:gate-passed');
  });
});

describe('rule 10: the gate', () => {
  it('advances with no alarm in INSUFFICIENT_DATA, whatever the bake and the traffic', () => {
    const j = run({ phase: 'gate', elapsedMs: 0, stepTotals: { old: side(0, 0), new: side(0, 0) }, alarms: [alarm('a', 'OK')] });
    expect(j.decision).toMatchObject({
      action: 'advance',
      code: 'gate-passed',
      reason: 'pre-traffic gate passed: probe ok, no alarm, old side at full capacity',
    });
  });

  it('holds on an alarm in INSUFFICIENT_DATA, naming it', () => {
    expect(run({ phase: 'gate', alarms: [alarm('a', 'OK'), alarm('b', 'INSUFFICIENT_DATA'), alarm('c', 'INSUFFICIENT_DATA')] }).decision).toMatchObject({
      action: 'hold',
      code: 'alarm-no-data',
      reason: 'alarm without data (INSUFFICIENT_DATA) before any traffic moved: b, c; it proves nothing yet',
    });
  });

  it('holds on INSUFFICIENT_DATA at the gate even long after (no pause: the gate has no bake)', () => {
    expect(outcome(run({ phase: 'gate', alarms: [alarm('b', 'INSUFFICIENT_DATA')], elapsedMs: REQUIRED + MAX_HOLD }))).toBe('hold:alarm-no-data');
  });
});

describe('rule 11: the bake', () => {
  it('holds at requiredMs − 1, advances at requiredMs', () => {
    expect(run({ elapsedMs: REQUIRED - 1 }).decision).toMatchObject({ action: 'hold', code: 'baking', reason: 'baking: 60s of 60s, healthy so far' });
    expect(outcome(run({ elapsedMs: REQUIRED }))).toBe('advance:healthy');
  });

  it('says soaking in the soak', () => {
    expect(run({ phase: 'soak', elapsedMs: 30_000 }).decision).toMatchObject({ action: 'hold', code: 'baking', reason: 'soaking: 30s of 60s, healthy so far' });
    expect(run({ phase: 'bake', elapsedMs: 30_400 }).decision.reason).toBe('baking: 30s of 60s, healthy so far');
  });

  it('bakes before looking at alarms without data or the traffic', () => {
    expect(outcome(run({ elapsedMs: 0, alarms: [alarm('x', 'INSUFFICIENT_DATA')], stepTotals: { old: side(0, 0), new: side(0, 0) } }))).toBe('hold:baking');
  });
});

describe('rule 12: an alarm in INSUFFICIENT_DATA holds before advancing, then pauses', () => {
  const alarms = [alarm('p99', 'INSUFFICIENT_DATA'), alarm('ok', 'OK'), alarm('5xx', 'INSUFFICIENT_DATA')];

  it('holds at maxHoldMs − 1 past the bake, pauses at maxHoldMs', () => {
    expect(run({ alarms, elapsedMs: REQUIRED + MAX_HOLD - 1 }).decision).toMatchObject({
      action: 'hold',
      code: 'alarm-no-data',
      reason: 'alarm without data (INSUFFICIENT_DATA): p99, 5xx; not stepping forward on an alarm that proves nothing',
    });
    expect(run({ alarms, elapsedMs: REQUIRED + MAX_HOLD }).decision).toMatchObject({
      action: 'pause',
      code: 'alarm-no-data',
      reason: 'alarm stayed without data (INSUFFICIENT_DATA) for 1800s past the bake: p99, 5xx',
    });
  });

  it('does not hold on OK alarms', () => {
    expect(outcome(run({ alarms: [alarm('ok', 'OK')] }))).toBe('advance:healthy');
  });

  it('comes before too few requests', () => {
    expect(outcome(run({ alarms, stepTotals: { old: side(0, 0), new: side(0, 0) } }))).toBe('hold:alarm-no-data');
  });
});

describe('rule 13: fewer than minRequests on the new side holds, then pauses', () => {
  const totals = (requests: number) => ({ old: side(900, 1), new: side(requests, 0) });

  it('holds at minRequests − 1, advances at minRequests', () => {
    expect(run({ stepTotals: totals(99) }).decision).toMatchObject({
      action: 'hold',
      code: 'too-few-requests',
      reason: 'only 99 of 100 requests on the new side this step: holding rather than guessing',
    });
    expect(outcome(run({ stepTotals: totals(100) }))).toBe('advance:healthy');
  });

  it('holds at maxHoldMs − 1 past the bake, pauses at maxHoldMs', () => {
    expect(outcome(run({ stepTotals: totals(12), elapsedMs: REQUIRED + MAX_HOLD - 1 }))).toBe('hold:too-few-requests');
    expect(run({ stepTotals: totals(12), elapsedMs: REQUIRED + MAX_HOLD }).decision).toMatchObject({
      action: 'pause',
      code: 'too-few-requests',
      reason: 'only 12 of 100 requests reached the new side after holding 1800s: not enough evidence to advance',
    });
  });

  it('follows minRequests', () => {
    const config = resolveJudgeConfig({ minRequests: 1 });
    expect(outcome(run({ config, stepTotals: totals(0) }))).toBe('hold:too-few-requests');
    expect(outcome(run({ config, stepTotals: totals(1) }))).toBe('advance:healthy');
  });
});

describe('rule 14: evidence building (any test at h/2 or more) holds', () => {
  it.each(['cusum5xx', 'cusum4xx', 'cusumSlow', 'cusumCeiling'] as const)('%s: holds at h/2, advances just below', (key) => {
    expect(outcome(run({ memory: mem({ [key]: h / 2 }) }))).toBe('hold:evidence-pending');
    expect(outcome(run({ memory: mem({ [key]: h / 2 - 1e-9 }) }))).toBe('advance:healthy');
  });

  it('names the tests that are building, and never pauses', () => {
    const j = run({ memory: mem({ cusum5xx: 6, cusum4xx: 1, cusumSlow: 7.25, cusumCeiling: 5.75 }), elapsedMs: REQUIRED + 2 * MAX_HOLD });
    expect(j.decision).toMatchObject({
      action: 'hold',
      code: 'evidence-pending',
      reason: 'evidence against the new side is building (5XX 6.0, latency 7.3 of 11.5): waiting for more windows',
    });
    expect(run({ memory: mem({ cusum4xx: 6, cusumCeiling: 11 }) }).decision.reason).toBe(
      'evidence against the new side is building (4XX 6.0, 5XX ceiling 11.0 of 11.5): waiting for more windows',
    );
  });

  it('21 new-side errors in one window (6.04 ≥ h/2) hold; 20 (5.75 < h/2) advance', () => {
    const quiet = side(10_000, 0);
    expect(outcome(judgeWindow(win(quiet, side(10_000, 21))))).toBe('hold:evidence-pending');
    expect(outcome(judgeWindow(win(quiet, side(10_000, 20))))).toBe('advance:healthy');
  });

  it('follows falseAlarmWindows (h = ln 100 ≈ 4.6)', () => {
    const config = resolveJudgeConfig({ falseAlarmWindows: 100 });
    expect(outcome(run({ config, memory: mem({ cusum5xx: Math.log(100) / 2 }) }))).toBe('hold:evidence-pending');
    expect(outcome(run({ config, memory: mem({ cusum5xx: Math.log(100) / 2 - 1e-9 }) }))).toBe('advance:healthy');
    // …and rolls back at h: 17 new-side errors (4.89 ≥ 4.61), not 16 (4.60).
    expect(outcome(judgeWindow(win(side(10_000, 0), side(10_000, 17)), { config }))).toBe('rollback:error-rate-5xx');
    expect(outcome(judgeWindow(win(side(10_000, 0), side(10_000, 16)), { config }))).toBe('hold:evidence-pending');
  });
});

describe('rule 15: healthy → advance', () => {
  it('advances with the step totals in the reason', () => {
    const j = run({ stepTotals: { old: side(1000, 10), new: side(200, 1) } });
    expect(j.decision).toMatchObject({ action: 'advance', code: 'healthy', reason: 'step passed: 200 requests on new, 5XX 0.50% vs old 1.0%' });
    expect(j.needsOldSideCheck).toBeUndefined();
  });

  it('says soak in the soak, and copes with an old side without requests', () => {
    expect(run({ phase: 'soak', stepTotals: { old: side(0, 0), new: side(100, 1) } }).decision.reason).toBe('soak passed: 100 requests on new, 5XX 1.0% vs old 0.00%');
  });

  it('carries the signals it judged', () => {
    const alarms = [alarm('ok', 'OK')];
    const probes = [probe('new', 'ok')];
    const j = run({ alarms, probes, stepTotals: { old: side(900, 1), new: side(100, 0) } });
    expect(j.decision.signals).toEqual({
      stepTotals: { fromMs: 0, toMs: 0, old: side(900, 1), new: side(100, 0) },
      alarms,
      probes,
      stats: { cusum5xx: 0, cusum4xx: 0, cusumSlow: 0, cusumCeiling: 0, threshold: h },
    });
    expect(j.memory).toBe(INITIAL_JUDGE_MEMORY);
  });
});
