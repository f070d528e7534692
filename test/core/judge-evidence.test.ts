/**
 * evidence.ts: one window's update of every sequential test, with exact values. Boundaries: the
 * CUSUM cap at h, the old side's ceiling break-even share (110 vs 111 failures in 1,000), the
 * baseline's BASELINE_MIN_REQUESTS (99 vs 100), the old side's shift statistic just below and at
 * h over its last OLD_SHIFT_WINDOWS windows (sliding, and recovering once an outage has left
 * them), the idle old side's carried-over failure, the slow threshold as the median of the last
 * LATENCY_HISTORY old-side p99s, and the baseline rate (Wilson upper bound, z = 2.33).
 *
 * The baseline used for the shift tests: 100 5XX in 10,000, whose rate is taken as
 * P0 = (0.01 + z²/20,000 + z·√(0.0099/10,000 + z²/4·10⁸)) / (1 + z²/10,000) ≈ 0.0125988 (z = 2.33).
 * Over 5 windows of 1,000 requests, n·KL(k/n ‖ P0) is 11.305 < h at k = 104 and 11.820 ≥ h at 105.
 */
import { describe, expect, it } from 'vitest';
import {
  BASELINE_MIN_REQUESTS,
  BASELINE_Z,
  LATENCY_HISTORY,
  OLD_SHIFT_WINDOWS,
  addSide,
  baselineRate,
  errorLlr,
  rate,
  shiftStatistic,
  slowLlr,
  weighWindow,
} from '../../lambda/core/evidence';
import { DEFAULT_JUDGE_CONFIG, INITIAL_JUDGE_MEMORY, resolveJudgeConfig, type JudgeMemory, type OldWindow } from '../../lambda/core/judge-config';
import type { HealthWindow, SideSignals } from '../../lambda/core/ports';
import { oneSampleLlr, wilsonUpperBound } from '../../lambda/core/stats';

const P = 12;
const h = Math.log(100_000);
const config = DEFAULT_JUDGE_CONFIG;

function side(requests: number, errors5xx: number, errors4xx = 0, extra: Partial<SideSignals> = {}): SideSignals {
  return { requests, errors5xx, errors4xx, ...extra };
}
function win(old: SideSignals, newSide: SideSignals): HealthWindow {
  return { fromMs: 0, toMs: 60_000, old, new: newSide };
}
function mem(overrides: Partial<JudgeMemory> = {}): JudgeMemory {
  return { ...INITIAL_JUDGE_MEMORY, ...overrides };
}
const old = (requests: number, errors5xx: number): OldWindow => ({ requests, errors5xx });
const times = (n: number, w: OldWindow): OldWindow[] => Array.from({ length: n }, () => w);

// 1,000 requests on old, 100 on new: q0 = 1/11, q1 (factor 2) = 1/6. Each new-side event adds
// ln(11/6), each old-side event ln((5/6)/(10/11)) = ln(11/12).
const NEW_EVENT = Math.log(11 / 6);
const OLD_EVENT = Math.log(11 / 12);
const CEILING_FAIL = Math.log(4); // ln(0.2 / 0.05)
const CEILING_PASS = Math.log(0.8 / 0.95);

/** The Wilson bound of 100 in 10,000 at z = 2.33, worked out by hand. */
const Z2 = 2.33 * 2.33; // 5.4289
const P0 = (0.01 + Z2 / 20_000 + 2.33 * Math.sqrt(0.0099 / 10_000 + Z2 / 400_000_000)) / (1 + Z2 / 10_000);
const BASE = side(10_000, 100);
/** n·KL(k/n ‖ p). */
const kl = (k: number, n: number, p: number) => n * ((k / n) * Math.log(k / n / p) + (1 - k / n) * Math.log((1 - k / n) / (1 - p)));

describe('weighWindow: one concurrent window', () => {
  const window = win(
    side(1000, 2, 10, { slowRequests: 10, latencyMs: 40 }),
    side(100, 1, 3, { slowRequests: 2, latencyMs: 45 }),
  );

  it('updates each test by its exact log-likelihood ratio and reports the figures', () => {
    const before = mem({ cusum5xx: 1, cusum4xx: 0.5, cusumSlow: 0.25, cusumCeiling: 2 });
    const { memory, stats, concurrent } = weighWindow(window, before, config);
    const llr5 = NEW_EVENT + 2 * OLD_EVENT; // ≈ 0.4321
    const llr4 = 3 * NEW_EVENT + 10 * OLD_EVENT; // ≈ 0.9483
    const llrSlow = 2 * NEW_EVENT + 10 * OLD_EVENT; // ≈ 0.3422
    const llrCeiling = CEILING_FAIL + 99 * CEILING_PASS; // ≈ -15.63
    expect(concurrent).toBe(true);
    expect(memory.oldFailing).toBe(false);
    expect(memory.cusum5xx).toBeCloseTo(1 + llr5, P);
    expect(memory.cusum5xx).toBeCloseTo(1.432113, 6);
    expect(memory.cusum4xx).toBeCloseTo(0.5 + llr4, P);
    expect(memory.cusumSlow).toBeCloseTo(0.25 + llrSlow, P);
    expect(memory.cusumCeiling).toBe(0);
    // The old side's window is remembered for its shift test, its p99 for the slow threshold.
    expect(memory.oldRecent).toEqual([old(1000, 2)]);
    expect(memory.oldLatencies).toEqual([40]);
    expect(memory.slowThresholdMs).toBe(90);
    expect(Object.keys(stats).sort()).toEqual(
      ['llr4xx', 'llr5xx', 'llrCeiling', 'llrSlow', 'newRate4xx', 'newRate5xx', 'newSlowShare', 'oldRate4xx', 'oldRate5xx', 'oldShift', 'oldSlowShare'].sort(),
    );
    expect(stats.llr5xx).toBeCloseTo(llr5, P);
    expect(stats.llr4xx).toBeCloseTo(llr4, P);
    expect(stats.llrSlow).toBeCloseTo(llrSlow, P);
    expect(stats.llrCeiling).toBeCloseTo(llrCeiling, P);
    expect(stats).toMatchObject({
      newRate5xx: 0.01,
      oldRate5xx: 0.002,
      newRate4xx: 0.03,
      oldRate4xx: 0.01,
      newSlowShare: 0.02,
      oldSlowShare: 0.01,
      oldShift: 0, // no baseline yet
    });
  });

  it('learns the old side into the baseline, and its slow counts into the slow baseline', () => {
    const before = mem({ baseline: side(500, 5, 1, { slowRequests: 4 }), baselineSlow: { requests: 500, slow: 4 } });
    const { memory, stats } = weighWindow(window, before, config);
    expect(memory.baseline).toEqual(side(1500, 7, 11, { slowRequests: 14 }));
    expect(memory.baselineSlow).toEqual({ requests: 1500, slow: 14 });
    // The rate reported is the baseline's before this window.
    expect(stats.baselineRate5xx).toBe(0.01);
  });

  it('keeps the rest of the memory as it was, and judges the old side afresh', () => {
    const before = mem({ missingHistory: '0100', missingWindows: 1, oldFailing: true, slowThresholdMs: 77, oldLatencies: [40, 40] });
    const { memory, stats } = weighWindow(window, before, config);
    expect(memory).toMatchObject({ missingHistory: '0100', missingWindows: 1, oldFailing: false });
    // The window was read with the threshold before it (77 ms); the next one is the median's.
    expect(stats.slowThresholdMs).toBe(77);
    expect(memory.slowThresholdMs).toBe(90);
    expect(memory.oldLatencies).toEqual([40, 40, 40]);
    // The memory given is not changed in place.
    expect(before.oldLatencies).toEqual([40, 40]);
    expect(before.oldRecent).toEqual([]);
  });

  it('uses latencyFactor for the latency test and degradationFactor for the error tests', () => {
    const custom = resolveJudgeConfig({ latencyFactor: 3, degradationFactor: 1.5 });
    const { stats } = weighWindow(window, INITIAL_JUDGE_MEMORY, custom);
    // Latency, factor 3: q0 = 1/11, q1 = 300/1300 = 3/13.
    expect(stats.llrSlow).toBeCloseTo(2 * Math.log(33 / 13) + 10 * Math.log((10 / 13) / (10 / 11)), P);
    // 5XX, factor 1.5: q1 = 150/1150 = 3/23.
    expect(stats.llr5xx).toBeCloseTo(Math.log(33 / 23) + 2 * Math.log((20 / 23) / (10 / 11)), P);
  });

  it('uses maxErrorRate for the ceiling (its alternative CEILING_FACTOR times it)', () => {
    const custom = resolveJudgeConfig({ maxErrorRate: 0.1 });
    const { stats } = weighWindow(window, INITIAL_JUDGE_MEMORY, custom);
    expect(stats.llrCeiling).toBeCloseTo(Math.log(4) + 99 * Math.log(0.6 / 0.9), P);
  });

  it('takes h from falseAlarmWindows for the cap', () => {
    const custom = resolveJudgeConfig({ falseAlarmWindows: 100 });
    const { memory } = weighWindow(window, mem({ cusum4xx: 10 }), custom);
    expect(memory.cusum4xx).toBe(Math.log(100));
  });
});

describe('weighWindow: the CUSUM cap at h', () => {
  it('caps every test at h exactly, however strong the window', () => {
    const strong = win(side(10_000, 0, 0, { slowRequests: 0 }), side(1000, 500, 500, { slowRequests: 500 }));
    const { memory, stats } = weighWindow(strong, mem({ cusum5xx: 11, cusum4xx: 11, cusumSlow: 11, cusumCeiling: 11 }), config);
    expect(stats.llr5xx).toBeGreaterThan(h);
    expect(memory).toMatchObject({ cusum5xx: h, cusum4xx: h, cusumSlow: h, cusumCeiling: h });
  });

  it('adds up to just under h without capping', () => {
    const window = win(side(1000, 0), side(100, 1));
    const { memory } = weighWindow(window, mem({ cusum5xx: h - 1 }), config);
    expect(memory.cusum5xx).toBeCloseTo(h - 1 + NEW_EVENT, P);
    expect(memory.cusum5xx).toBeLessThan(h);
  });

  it('never goes below zero', () => {
    const window = win(side(1000, 0, 0, { slowRequests: 0 }), side(100, 0, 0, { slowRequests: 0 }));
    const { memory } = weighWindow(window, mem({ cusum5xx: 0.1, cusumCeiling: 0.1 }), config);
    expect(memory.cusum5xx).toBe(0.1); // no errors at all: no evidence either way
    expect(memory.cusumCeiling).toBe(0);
  });
});

describe('weighWindow: the old side above the ceiling break-even share', () => {
  // The old side's ceiling LLR is positive above the break-even share ln(0.95/0.8) / ln(0.2·0.95/(0.05·0.8)) ≈ 11.03 %.
  const newFailing = side(100, 19); // ceiling LLR 19 ln 4 + 81 ln(0.8/0.95) ≈ 12.42 ≥ h

  it('is not failing at 110 of 1,000 5XX: the ceiling counts the window', () => {
    const { memory, stats } = weighWindow(win(side(1000, 110), newFailing), mem({ cusumCeiling: 1 }), config);
    expect(memory.oldFailing).toBe(false);
    expect(stats.llrCeiling).toBeCloseTo(19 * CEILING_FAIL + 81 * CEILING_PASS, P);
    expect(memory.cusumCeiling).toBe(h);
    // …and the baseline learns it (the shift test has no baseline yet).
    expect(memory.baseline).toEqual(side(1000, 110));
  });

  it('is not failing at exactly the break-even share (its LLR exactly 0)', () => {
    // A ceiling at which 11 failures in 100 give, to the last bit, an LLR of 0.
    const maxErrorRate = 0.04987062157720936;
    expect(oneSampleLlr(11, 100, maxErrorRate, 4)).toBe(0);
    const { memory } = weighWindow(win(side(100, 11), side(10, 0)), INITIAL_JUDGE_MEMORY, resolveJudgeConfig({ maxErrorRate }));
    expect(memory.oldFailing).toBe(false);
    expect(memory.baseline).toEqual(side(100, 11));
    // One failure more is above it.
    expect(weighWindow(win(side(100, 12), side(10, 0)), INITIAL_JUDGE_MEMORY, resolveJudgeConfig({ maxErrorRate })).memory.oldFailing).toBe(true);
  });

  it('is failing at 111 of 1,000 5XX: the ceiling evidence is reset, not added to', () => {
    const { memory } = weighWindow(win(side(1000, 111), newFailing), mem({ cusumCeiling: 5 }), config);
    expect(memory.oldFailing).toBe(true);
    expect(memory.cusumCeiling).toBe(0);
    // …and the baseline does not learn a window the old side was failing in.
    expect(memory.baseline).toEqual(INITIAL_JUDGE_MEMORY.baseline);
    expect(memory.oldRecent).toEqual([old(1000, 111)]);
  });
});

describe('shiftStatistic', () => {
  it('is n·KL(k/n ‖ baselineRate) over the recent windows summed', () => {
    expect(P0).toBeCloseTo(0.012598763218677, P);
    expect(shiftStatistic([old(1000, 50), old(4000, 54)], BASE)).toBeCloseTo(kl(104, 5000, P0), P);
    expect(shiftStatistic([old(1000, 50), old(4000, 54)], BASE)).toBeCloseTo(11.305436602571, 10);
    expect(shiftStatistic(times(5, old(1000, 21)), BASE)).toBeCloseTo(kl(105, 5000, P0), P);
    expect(shiftStatistic(times(5, old(1000, 21)), BASE)).toBeCloseTo(11.820025991848, 10);
  });

  it('is 0 at or below the baseline rate (13 of 1,000 is above P0, 12 is not)', () => {
    expect(shiftStatistic([old(1000, 12)], BASE)).toBe(0);
    expect(shiftStatistic([old(1000, 13)], BASE)).toBeCloseTo(kl(13, 1000, P0), P);
    expect(shiftStatistic([old(1000, 13)], BASE)).toBeCloseTo(0.006403924688, 11);
  });

  it('is 0 without recent windows', () => {
    expect(shiftStatistic([], BASE)).toBe(0);
    expect(shiftStatistic([old(0, 0)], BASE)).toBe(0);
  });

  it(`needs a baseline of ${BASELINE_MIN_REQUESTS} requests: 0 at 99, the test at 100`, () => {
    expect(BASELINE_MIN_REQUESTS).toBe(100);
    expect(shiftStatistic([old(1000, 100)], side(99, 0))).toBe(0);
    // 0 of 100: rate z²/(100 + z²).
    expect(shiftStatistic([old(1000, 100)], side(100, 0))).toBeCloseTo(kl(100, 1000, Z2 / (100 + Z2)), P);
    expect(shiftStatistic([old(1000, 100)], side(100, 0))).toBeCloseTo(19.126997775216, 10);
  });
});

describe('weighWindow: the old side against its own baseline (shift statistic ≥ h)', () => {
  // Four earlier windows of 21 5XX in 1,000: this window decides between 104 and 105 in 5,000.
  // The new side's ceiling LLR (12 of 100) is positive and small: it shows whether the ceiling counted the window.
  const before = mem({ baseline: BASE, oldRecent: times(4, old(1000, 21)), cusumCeiling: 3 });
  const newSide = side(100, 12);
  const llrCeiling = 12 * CEILING_FAIL + 88 * CEILING_PASS; // ≈ 1.5127

  it('104 of 5,000 (11.305 < h): not failing; the window is learned and the ceiling counts it', () => {
    const { memory, stats } = weighWindow(win(side(1000, 20), newSide), before, config);
    expect(stats.oldShift).toBeCloseTo(kl(104, 5000, P0), P);
    expect(stats.oldShift).toBeLessThan(h);
    expect(memory.oldFailing).toBe(false);
    expect(memory.baseline).toEqual(side(11_000, 120));
    expect(memory.cusumCeiling).toBeCloseTo(3 + llrCeiling, P);
    expect(memory.oldRecent).toEqual([...times(4, old(1000, 21)), old(1000, 20)]);
  });

  it('105 of 5,000 (11.820 ≥ h): failing; nothing is learned and the ceiling evidence is reset', () => {
    const { memory, stats } = weighWindow(win(side(1000, 21), newSide), before, config);
    expect(stats.oldShift).toBeCloseTo(kl(105, 5000, P0), P);
    expect(memory.oldFailing).toBe(true);
    expect(memory.baseline).toEqual(BASE);
    expect(memory.baselineSlow).toEqual({ requests: 0, slow: 0 });
    expect(memory.cusumCeiling).toBe(0);
    expect(memory.oldRecent).toEqual(times(5, old(1000, 21)));
  });

  it('is failing at exactly h (h set to the statistic of 104 of 5,000)', () => {
    // ln(81,262.22923852623) is, to the last bit, the statistic of 104 in 5,000.
    const exact = resolveJudgeConfig({ falseAlarmWindows: 81_262.229_238_526_23 });
    const { memory, stats } = weighWindow(win(side(1000, 20), newSide), before, exact);
    expect(stats.oldShift).toBe(Math.log(81_262.229_238_526_23));
    expect(memory.oldFailing).toBe(true);
    expect(memory.baseline).toEqual(BASE);
  });

  it('does not run below a baseline of 100 requests: the window is learned', () => {
    const { memory, stats } = weighWindow(win(side(1000, 100), side(100, 0)), mem({ baseline: side(99, 0), oldRecent: times(4, old(1000, 100)) }), config);
    expect(stats.oldShift).toBe(0);
    expect(memory.oldFailing).toBe(false);
    expect(memory.baseline).toEqual(side(1099, 100));
  });

  it(`sums the last ${OLD_SHIFT_WINDOWS} windows: a 6th drops the first`, () => {
    expect(OLD_SHIFT_WINDOWS).toBe(5);
    // With the first (60 of 1,000) still counted, 164 of 6,000 would be far above h.
    const five = [old(1000, 60), ...times(4, old(1000, 21))];
    expect(shiftStatistic(five, BASE)).toBeGreaterThan(h);
    const { memory, stats } = weighWindow(win(side(1000, 20), side(100, 0)), mem({ baseline: BASE, oldRecent: five }), config);
    expect(memory.oldRecent).toEqual([...times(4, old(1000, 21)), old(1000, 20)]);
    expect(stats.oldShift).toBeCloseTo(kl(104, 5000, P0), P);
    expect(memory.oldFailing).toBe(false);
  });

  it(`recovers within ${OLD_SHIFT_WINDOWS} windows once an outage has ended, learning nothing from it`, () => {
    // Healthy (10 of 1,000), an outage of two windows at 10 % (below the ceiling's break-even
    // share: only the shift test sees it), then healthy again.
    let memory = mem({ baseline: BASE, oldRecent: times(5, old(1000, 10)) });
    const failing: boolean[] = [];
    const shifts: number[] = [];
    for (const errors of [100, 100, 10, 10, 10, 10, 10]) {
      const evidence = weighWindow(win(side(1000, errors), side(100, 0)), memory, config);
      memory = evidence.memory;
      failing.push(memory.oldFailing);
      shifts.push(evidence.stats.oldShift!);
    }
    // Failing while an outage window is among the last five; the fifth healthy window ends it.
    expect(failing).toEqual([true, true, true, true, true, true, false]);
    expect(shifts[0]).toBeCloseTo(kl(140, 5000, P0), P); // 4 × 10 + 100
    expect(shifts[1]).toBeCloseTo(kl(230, 5000, P0), P);
    expect(shifts[5]).toBeCloseTo(kl(140, 5000, P0), P); // the second outage window, last time counted
    expect(shifts[6]).toBe(0); // 50 of 5,000 is below P0
    // The baseline learned none of the windows it was failing in, and the first one after.
    expect(memory.baseline).toEqual(side(11_000, 110));
  });

  it('keeps the recent windows, and reports no shift, while the old side takes no traffic', () => {
    const recent = times(5, old(1000, 21));
    const { memory, stats } = weighWindow(win(side(0, 0), side(100, 0)), mem({ baseline: BASE, oldRecent: recent }), config);
    expect(memory.oldRecent).toBe(recent);
    expect('oldShift' in stats).toBe(false);
    expect(memory.oldFailing).toBe(false);
  });
});

describe('weighWindow: a failing old side carried over while it takes no traffic', () => {
  // Without a baseline the idle rule rests on the ceiling: 11 of 100 gives ≈ −0.045, 12 of 100 ≈ +1.513.
  // With BASE the 5XX test against it: 18 of 1,000 gives ≈ −0.134, 19 of 1,000 ≈ +0.572 (ceiling LLRs negative).
  const idle = (newSide: SideSignals, before: Partial<JudgeMemory>) => weighWindow(win(side(0, 0), newSide), mem(before), config);
  const llr5 = (k: number) => k * Math.log(2) + (1000 - k) * Math.log((1 - 2 * P0) / (1 - P0));

  it('lasts while the new side is above the ceiling break-even share (12 of 100), ends below it (11 of 100)', () => {
    const on = idle(side(100, 12), { oldFailing: true });
    expect(on.stats.llrCeiling).toBeCloseTo(12 * CEILING_FAIL + 88 * CEILING_PASS, P);
    expect(on.stats.llr5xx).toBe(0); // no baseline: only the ceiling
    expect(on.memory.oldFailing).toBe(true);
    const off = idle(side(100, 11), { oldFailing: true });
    expect(off.stats.llrCeiling).toBeCloseTo(11 * CEILING_FAIL + 89 * CEILING_PASS, P);
    expect(off.stats.llrCeiling).toBeCloseTo(-0.045434894154, 11);
    expect(off.memory.oldFailing).toBe(false);
  });

  it('lasts while the new side is worse than the baseline (19 of 1,000), ends when it is not (18 of 1,000)', () => {
    const on = idle(side(1000, 19), { oldFailing: true, baseline: BASE });
    expect(on.stats.llr5xx).toBeCloseTo(llr5(19), P);
    expect(on.stats.llr5xx).toBeCloseTo(0.572168062218, 10);
    expect(on.stats.llrCeiling).toBeLessThan(0);
    expect(on.memory.oldFailing).toBe(true);
    const off = idle(side(1000, 18), { oldFailing: true, baseline: BASE });
    expect(off.stats.llr5xx).toBeCloseTo(llr5(18), P);
    expect(off.stats.llr5xx).toBeCloseTo(-0.133820737474, 10);
    expect(off.memory.oldFailing).toBe(false);
  });

  it('ends with a new side without requests (both LLRs exactly 0)', () => {
    const { memory, stats } = idle(side(0, 0), { oldFailing: true, baseline: BASE });
    expect(stats.llr5xx).toBe(0);
    expect(stats.llrCeiling).toBe(0);
    expect(memory.oldFailing).toBe(false);
  });

  it('never starts while the old side is idle, however badly the new side fails', () => {
    expect(idle(side(100, 100), {}).memory.oldFailing).toBe(false);
    expect(idle(side(1000, 500), { baseline: BASE }).memory.oldFailing).toBe(false);
  });

  it('lets the ceiling keep counting, so that it trips again and a fresh probe decides', () => {
    const { memory } = idle(side(100, 12), { oldFailing: true, cusumCeiling: 3 });
    expect(memory.oldFailing).toBe(true);
    expect(memory.cusumCeiling).toBeCloseTo(3 + 12 * CEILING_FAIL + 88 * CEILING_PASS, P);
    expect(idle(side(100, 19), { oldFailing: true, cusumCeiling: 0 }).memory.cusumCeiling).toBe(h);
  });

  it('learns nothing from an idle old side, and leaves the slow threshold as it was', () => {
    const { memory, concurrent } = idle(side(100, 12), { oldFailing: true, baseline: side(50, 1), slowThresholdMs: 90, oldLatencies: [40] });
    expect(concurrent).toBe(false);
    expect(memory.baseline).toEqual(side(50, 1));
    expect(memory.slowThresholdMs).toBe(90);
    expect(memory.oldLatencies).toEqual([40]);
  });
});

describe('weighWindow: the slow-request threshold', () => {
  const at = (latencyMs: number | undefined, before: JudgeMemory = INITIAL_JUDGE_MEMORY, margin = 50, requests = 1000) =>
    weighWindow(
      win(side(requests, 0, 0, latencyMs !== undefined ? { latencyMs } : {}), side(100, 0)),
      before,
      resolveJudgeConfig({ latencyMarginMs: margin }),
    ).memory;
  const history = (...oldLatencies: number[]) => mem({ oldLatencies });

  it("is the old side's p99 plus the margin after its first window, rounded up to a whole millisecond", () => {
    expect(at(40).slowThresholdMs).toBe(90);
    expect(at(40.2).slowThresholdMs).toBe(91);
    expect(at(40.2, INITIAL_JUDGE_MEMORY, 0).slowThresholdMs).toBe(41);
    expect(at(40, INITIAL_JUDGE_MEMORY, 0).slowThresholdMs).toBe(40);
  });

  it('is the median of an odd count: the middle one, after sorting by value', () => {
    expect(at(70, history(100, 40)).slowThresholdMs).toBe(120); // 40, 70, 100
    // Sorted as numbers, not as text (as text, "10" < "200" < "9" would make the median 200).
    expect(at(10, history(200, 9)).slowThresholdMs).toBe(60);
  });

  it('is the median of an even count: the mean of the middle two', () => {
    expect(at(60, history(40)).slowThresholdMs).toBe(100); // (40 + 60) / 2
    expect(at(50, history(100, 40, 70)).slowThresholdMs).toBe(110); // 40, 50, 70, 100: (50 + 70) / 2
    expect(at(41, history(40)).slowThresholdMs).toBe(91); // 40.5 + 50, rounded up
    expect(at(9, history(10, 200, 300)).slowThresholdMs).toBe(155); // 9, 10, 200, 300: (10 + 200) / 2
  });

  it('is not moved much by one stalled window', () => {
    const steady = history(40, 41, 39, 40, 42, 40, 38, 40);
    // A 5-second stall among nine windows: the median moves from 40 to 40.
    expect(at(5000, steady).slowThresholdMs).toBe(90);
    expect(at(5000, steady).oldLatencies).toEqual([40, 41, 39, 40, 42, 40, 38, 40, 5000]);
    // After one window only, a stall would set it on its own: that is what the history is for.
    expect(at(5000).slowThresholdMs).toBe(5050);
  });

  it(`keeps the last ${LATENCY_HISTORY} p99s: a 10th drops the first`, () => {
    expect(LATENCY_HISTORY).toBe(9);
    // Five of 10 ms, four of 1,000 ms, then 1,000 again: the oldest 10 goes, and 1,000 becomes the median.
    const nine = history(10, 10, 10, 10, 10, 1000, 1000, 1000, 1000);
    const memory = at(1000, nine);
    expect(memory.oldLatencies).toEqual([10, 10, 10, 10, 1000, 1000, 1000, 1000, 1000]);
    expect(memory.slowThresholdMs).toBe(1050);
    // Eight kept, plus one: all nine stay.
    expect(at(1000, history(10, 10, 10, 10, 10, 1000, 1000, 1000)).oldLatencies).toHaveLength(9);
    expect(at(1000, history(10, 10, 10, 10, 10, 1000, 1000, 1000)).slowThresholdMs).toBe(60);
  });

  it("is the threshold the window was read with that the figures report, the next window's that the memory keeps", () => {
    const { stats, memory } = weighWindow(win(side(1000, 0, 0, { latencyMs: 400 }), side(100, 0)), history(40, 40), config);
    expect('slowThresholdMs' in stats).toBe(false); // none before: the window was read without one
    expect(memory.slowThresholdMs).toBe(90); // 40, 40, 400
    const next = weighWindow(win(side(1000, 0, 0, { latencyMs: 400 }), side(100, 0)), memory, config);
    expect(next.stats.slowThresholdMs).toBe(90);
    expect(next.memory.slowThresholdMs).toBe(270); // 40, 40, 400, 400: (40 + 400) / 2 + 50
  });

  it('is left as it was without the old side latency, or from an old side that took no traffic', () => {
    const set = mem({ slowThresholdMs: 90, oldLatencies: [40] });
    expect(at(undefined, set)).toMatchObject({ slowThresholdMs: 90, oldLatencies: [40] });
    expect(at(400, set, 50, 0)).toMatchObject({ slowThresholdMs: 90, oldLatencies: [40] });
    // …and not set at all before the old side's latency is known (no undefined entry either).
    expect('slowThresholdMs' in at(undefined)).toBe(false);
    expect('slowThresholdMs' in at(40, INITIAL_JUDGE_MEMORY, 50, 0)).toBe(false);
    expect(at(40, INITIAL_JUDGE_MEMORY, 50, 0).oldLatencies).toEqual([]);
  });
});

describe('weighWindow: figures reported', () => {
  it("reports each side's slow share when that side counted slow requests", () => {
    const oldOnly = weighWindow(win(side(1000, 0, 0, { slowRequests: 5 }), side(100, 0)), INITIAL_JUDGE_MEMORY, config).stats;
    expect(oldOnly.newSlowShare).toBeUndefined();
    expect(oldOnly.oldSlowShare).toBe(0.005);
    const newOnly = weighWindow(win(side(1000, 0), side(100, 0, 0, { slowRequests: 5 })), INITIAL_JUDGE_MEMORY, config).stats;
    expect(newOnly.newSlowShare).toBe(0.05);
    expect(newOnly.oldSlowShare).toBeUndefined();
    // At 100 %: the new side's share, and none (or zero) for the idle old side.
    const alone = weighWindow(win(side(0, 0), side(200, 0, 0, { slowRequests: 5 })), INITIAL_JUDGE_MEMORY, config).stats;
    expect(alone.newSlowShare).toBe(0.025);
    expect(alone.oldSlowShare).toBeUndefined();
    const idleCounted = weighWindow(win(side(0, 0, 0, { slowRequests: 0 }), side(200, 0, 0, { slowRequests: 5 })), INITIAL_JUDGE_MEMORY, config).stats;
    expect(idleCounted.oldSlowShare).toBe(0);
  });

  it('does not learn slow counts unless both sides counted them', () => {
    const oldOnly = weighWindow(win(side(1000, 0, 0, { slowRequests: 5 }), side(100, 0)), INITIAL_JUDGE_MEMORY, config).memory;
    expect(oldOnly.baselineSlow).toEqual({ requests: 0, slow: 0 });
    expect(oldOnly.baseline).toEqual(side(1000, 0));
    const newOnly = weighWindow(win(side(1000, 0), side(100, 0, 0, { slowRequests: 5 })), INITIAL_JUDGE_MEMORY, config).memory;
    expect(newOnly.baselineSlow).toEqual({ requests: 0, slow: 0 });
  });

  it('reports no slow threshold before one is set and no baseline rate before a baseline (not even as undefined entries)', () => {
    const { stats } = weighWindow(win(side(1000, 0), side(100, 0)), INITIAL_JUDGE_MEMORY, config);
    expect('slowThresholdMs' in stats).toBe(false);
    expect('baselineRate5xx' in stats).toBe(false);
    expect(stats.oldShift).toBe(0);
  });

  it('reports the baseline rate (as measured, not its bound) once the baseline has requests', () => {
    expect(weighWindow(win(side(1000, 0), side(100, 0)), mem({ baseline: side(4, 1) }), config).stats.baselineRate5xx).toBe(0.25);
    expect(weighWindow(win(side(0, 0), side(100, 0)), mem({ baseline: BASE }), config).stats.baselineRate5xx).toBe(0.01);
  });

  it('reports zero rates for a side without requests', () => {
    const { stats } = weighWindow(win(side(0, 0), side(0, 0)), INITIAL_JUDGE_MEMORY, config);
    expect(stats).toMatchObject({ newRate5xx: 0, oldRate5xx: 0, newRate4xx: 0, oldRate4xx: 0, llr5xx: 0, llr4xx: 0, llrSlow: 0, llrCeiling: 0 });
  });
});

describe('errorLlr', () => {
  const baseline = side(100, 0, 8);
  // Rates taken for 0 and 8 in 100 (Wilson upper bound, z = 2.33).
  const p5 = Z2 / (100 + Z2); // ≈ 0.051493
  const p4 = (0.08 + Z2 / 200 + 2.33 * Math.sqrt((0.08 * 0.92) / 100 + Z2 / 40_000)) / (1 + Z2 / 100); // ≈ 0.166878

  it('is the conditional test while the old side takes traffic', () => {
    expect(errorLlr(win(side(1000, 2), side(100, 1)), baseline, 'errors5xx', 2)).toBeCloseTo(NEW_EVENT + 2 * OLD_EVENT, P);
  });

  it('is 0 for a new side without requests', () => {
    expect(errorLlr(win(side(1000, 2), side(0, 0)), baseline, 'errors5xx', 2)).toBe(0);
    expect(errorLlr(win(side(0, 0), side(0, 0)), baseline, 'errors5xx', 2)).toBe(0);
  });

  it(`at 100 % tests the new side against the baseline's upper bound, from ${BASELINE_MIN_REQUESTS} baseline requests`, () => {
    const w = win(side(0, 0), side(200, 4, 10));
    expect(p5).toBeCloseTo(0.051493470955, 11);
    expect(p4).toBeCloseTo(0.166877987623, 11);
    expect(errorLlr(w, baseline, 'errors5xx', 2)).toBeCloseTo(4 * Math.log(2) + 196 * Math.log((1 - 2 * p5) / (1 - p5)), P);
    expect(errorLlr(w, baseline, 'errors4xx', 2)).toBeCloseTo(10 * Math.log(2) + 190 * Math.log((1 - 2 * p4) / (1 - p4)), P);
    expect(errorLlr(w, baseline, 'errors4xx', 3)).toBeCloseTo(10 * Math.log(3) + 190 * Math.log((1 - 3 * p4) / (1 - p4)), P);
  });

  it('is 0 at 100 % with a baseline of 99 requests: only the ceiling applies then', () => {
    expect(errorLlr(win(side(0, 0), side(200, 100, 100)), side(99, 0, 0), 'errors5xx', 2)).toBe(0);
    expect(errorLlr(win(side(0, 0), side(200, 100, 100)), side(99, 0, 0), 'errors4xx', 2)).toBe(0);
  });
});

describe('slowLlr', () => {
  const counted = (requests: number, slowRequests: number) => side(requests, 0, 0, { slowRequests });
  const p = Z2 / (100 + Z2); // 0 slow in 100

  it('is the conditional test on slow counts while the old side takes traffic', () => {
    expect(slowLlr(win(counted(1000, 10), counted(100, 2)), { requests: 0, slow: 0 }, 2)).toBeCloseTo(2 * NEW_EVENT + 10 * OLD_EVENT, P);
  });

  it('is 0 when either side did not count slow requests, or the new side had none', () => {
    expect(slowLlr(win(counted(1000, 10), side(100, 0)), { requests: 0, slow: 0 }, 2)).toBe(0);
    expect(slowLlr(win(side(1000, 0), counted(100, 50)), { requests: 0, slow: 0 }, 2)).toBe(0);
    expect(slowLlr(win(counted(1000, 0), counted(0, 0)), { requests: 1000, slow: 0 }, 2)).toBe(0);
  });

  it(`at 100 % tests against the slow baseline's upper bound, from ${BASELINE_MIN_REQUESTS} requests`, () => {
    const w = win(side(0, 0), counted(200, 4));
    expect(slowLlr(w, { requests: 100, slow: 0 }, 2)).toBeCloseTo(4 * Math.log(2) + 196 * Math.log((1 - 2 * p) / (1 - p)), P);
    expect(slowLlr(w, { requests: 99, slow: 0 }, 2)).toBe(0);
    // The old side may have idled with counts never taken: no baseline, no test.
    expect(slowLlr(win(side(0, 0), counted(200, 200)), { requests: 0, slow: 0 }, 2)).toBe(0);
  });
});

describe('baselineRate, rate, addSide', () => {
  it(`baselineRate is the Wilson upper bound at z = ${BASELINE_Z}`, () => {
    expect(BASELINE_Z).toBe(2.33);
    expect(baselineRate(0, 100)).toBeCloseTo(Z2 / (100 + Z2), P);
    expect(baselineRate(100, 10_000)).toBeCloseTo(P0, P);
    expect(baselineRate(100, 10_000)).toBe(wilsonUpperBound(100, 10_000, 2.33));
    // Above the measured rate, and closer to it with more requests.
    expect(baselineRate(1, 100)).toBeGreaterThan(0.01);
    expect(baselineRate(100, 10_000) - 0.01).toBeLessThan(baselineRate(1, 100) - 0.01);
  });

  it('baselineRate: 1 without requests (nothing known), about 1 when every request failed', () => {
    expect(baselineRate(0, 0)).toBe(1);
    expect(baselineRate(100, 100)).toBeCloseTo(1, 15);
  });

  it('rate is 0 without requests', () => {
    expect(rate(0, 0)).toBe(0);
    expect(rate(3, 0)).toBe(0);
    expect(rate(1, 4)).toBe(0.25);
  });

  it('adds counts; keeps the first latency; adds slow counts only when both sides have them', () => {
    expect(addSide(side(10, 1, 2, { latencyMs: 40, slowRequests: 1 }), side(5, 3, 4, { latencyMs: 90, slowRequests: 2 }))).toEqual(
      side(15, 4, 6, { latencyMs: 40, slowRequests: 3 }),
    );
    expect(addSide(side(10, 1, 2), side(5, 3, 4, { latencyMs: 90, slowRequests: 2 }))).toStrictEqual(side(15, 4, 6));
    expect(addSide(side(10, 1, 2, { slowRequests: 1 }), side(5, 3, 4))).toStrictEqual(side(15, 4, 6));
  });
});
