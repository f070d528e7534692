/**
 * stats.ts: exact values for inputs worked out by hand, and the edge cases (no requests, no
 * errors, k = n, k/n at or below p, the clamps). Expected values are written as the closed form
 * the formula reduces to, with its decimal value alongside.
 */
import { describe, expect, it } from 'vitest';
import { conditionalLlr, cusumStep, oneSampleLlr, tailStatistic, wilsonUpperBound } from '../../lambda/core/stats';

const PRECISION = 12;

describe('conditionalLlr', () => {
  it('adds ln(q1/q0) per new-side error: 1 of 100 vs 0 of 100 at factor 2 is ln(4/3)', () => {
    // q0 = 100/200 = 1/2, q1 = 200/300 = 2/3.
    expect(conditionalLlr(1, 100, 0, 100, 2)).toBeCloseTo(Math.log(4 / 3), PRECISION);
    expect(conditionalLlr(1, 100, 0, 100, 2)).toBeCloseTo(0.287682072451781, PRECISION);
    expect(conditionalLlr(40, 10_000, 0, 10_000, 2)).toBeCloseTo(40 * Math.log(4 / 3), PRECISION);
  });

  it('subtracts ln((1-q0)/(1-q1)) per old-side error: 0 vs 1 of 100 at factor 2 is ln(2/3)', () => {
    expect(conditionalLlr(0, 100, 1, 100, 2)).toBeCloseTo(Math.log(2 / 3), PRECISION);
    expect(conditionalLlr(0, 100, 1, 100, 2)).toBeCloseTo(-0.405465108108164, PRECISION);
  });

  it('combines both sides with unequal traffic: 2 of 100 vs 3 of 300 at factor 3', () => {
    // q0 = 100/400 = 1/4, q1 = 300/600 = 1/2: 2·ln 2 + 3·ln((1/2)/(3/4)) = 2 ln 2 + 3 ln(2/3).
    const expected = 2 * Math.log(2) + 3 * Math.log(2 / 3);
    expect(conditionalLlr(2, 100, 3, 300, 3)).toBeCloseTo(expected, PRECISION);
    expect(conditionalLlr(2, 100, 3, 300, 3)).toBeCloseTo(0.169899036795397, PRECISION);
  });

  it('is zero when the rates are in proportion to the traffic at the break-even split', () => {
    // Equal traffic, one error each side: ln(4/3) + ln(2/3) = ln(8/9) < 0: equal rates are evidence FOR H0.
    expect(conditionalLlr(1, 100, 1, 100, 2)).toBeCloseTo(Math.log(8 / 9), PRECISION);
  });

  it('is exactly 0 with no errors on either side (m = 0), whatever the traffic', () => {
    expect(conditionalLlr(0, 100, 0, 100, 2)).toBe(0);
    expect(conditionalLlr(0, 1, 0, 1_000_000, 5)).toBe(0);
  });

  it('is exactly 0 when either side served no requests (no division by zero, no NaN)', () => {
    expect(conditionalLlr(3, 0, 2, 100, 2)).toBe(0);
    expect(conditionalLlr(3, 100, 2, 0, 2)).toBe(0);
    expect(conditionalLlr(0, 100, 2, 0, 2)).toBe(0);
    expect(conditionalLlr(3, 100, 0, 0, 2)).toBe(0);
    expect(conditionalLlr(3, -1, 2, 100, 2)).toBe(0);
    expect(conditionalLlr(3, 100, 2, -1, 2)).toBe(0);
  });

  it('grows with the factor for a new-side-only error (more room between q0 and q1)', () => {
    // q0 = 1/2, q1 = f/(f+1): ln(2f/(f+1)).
    expect(conditionalLlr(1, 100, 0, 100, 3)).toBeCloseTo(Math.log(6 / 4), PRECISION);
  });
});

describe('oneSampleLlr', () => {
  it('is e·ln(p1/p0) + (n−e)·ln((1−p1)/(1−p0)): 1 of 10 at p0 = 0.1, factor 2', () => {
    const expected = Math.log(2) + 9 * Math.log(0.8 / 0.9);
    expect(oneSampleLlr(1, 10, 0.1, 2)).toBeCloseTo(expected, PRECISION);
    expect(oneSampleLlr(1, 10, 0.1, 2)).toBeCloseTo(-0.3669001403475, PRECISION);
  });

  it('gives the ceiling test ln 4 per failure and ln(0.8/0.95) per success (5 %, factor 4)', () => {
    expect(oneSampleLlr(1, 1, 0.05, 4)).toBeCloseTo(Math.log(4), PRECISION);
    expect(oneSampleLlr(0, 1, 0.05, 4)).toBeCloseTo(Math.log(0.8 / 0.95), PRECISION);
    expect(oneSampleLlr(19, 100, 0.05, 4)).toBeCloseTo(19 * Math.log(4) + 81 * Math.log(0.8 / 0.95), PRECISION);
    expect(oneSampleLlr(19, 100, 0.05, 4)).toBeCloseTo(12.41972205021853, 10);
  });

  it('is exactly 0 with no requests, even with errors', () => {
    expect(oneSampleLlr(0, 0, 0.1, 2)).toBe(0);
    expect(oneSampleLlr(2, 0, 0.1, 2)).toBe(0);
    expect(oneSampleLlr(2, -1, 0.1, 2)).toBe(0);
  });

  it('clamps p0 from below at 1e-9: a zero baseline is not infinitely surprising', () => {
    expect(oneSampleLlr(1, 1, 0, 2)).toBeCloseTo(Math.log(2), PRECISION);
    expect(oneSampleLlr(0, 1, 0, 2)).toBeCloseTo(Math.log((1 - 2e-9) / (1 - 1e-9)), 15);
    expect(oneSampleLlr(1, 1, -0.5, 2)).toBeCloseTo(Math.log(2), PRECISION);
    expect(Number.isFinite(oneSampleLlr(3, 10, 0, 2))).toBe(true);
  });

  it('clamps p0 from above at 0.5, and the alternative at 0.99', () => {
    // p0 0.7 → 0.5; alternative 2 × 0.5 = 1 → 0.99.
    expect(oneSampleLlr(1, 1, 0.7, 2)).toBeCloseTo(Math.log(0.99 / 0.5), PRECISION);
    expect(oneSampleLlr(1, 2, 0.7, 2)).toBeCloseTo(Math.log(0.99 / 0.5) + Math.log(0.01 / 0.5), PRECISION);
    // p0 0.4 is kept; the alternative 4 × 0.4 = 1.6 → 0.99.
    expect(oneSampleLlr(1, 1, 0.4, 4)).toBeCloseTo(Math.log(0.99 / 0.4), PRECISION);
    // p0 0.5 exactly is kept: 2 × 0.5 = 1 → 0.99.
    expect(oneSampleLlr(0, 1, 0.5, 2)).toBeCloseTo(Math.log(0.01 / 0.5), PRECISION);
  });

  it('keeps an alternative below 0.99 as is: p0 0.3 × 3 = 0.9', () => {
    expect(oneSampleLlr(1, 2, 0.3, 3)).toBeCloseTo(Math.log(0.9 / 0.3) + Math.log(0.1 / 0.7), PRECISION);
  });

  it('never tests an alternative below p0 (a factor under 1 gives no evidence either way)', () => {
    expect(oneSampleLlr(1, 2, 0.1, 0.5)).toBe(0);
    expect(oneSampleLlr(5, 10, 0.2, 1)).toBe(0);
  });
});

describe('cusumStep', () => {
  it('adds the increment', () => {
    expect(cusumStep(3, 2)).toBe(5);
    expect(cusumStep(3, -1)).toBe(2);
    expect(cusumStep(0, 0.25)).toBe(0.25);
  });

  it('never goes below zero', () => {
    expect(cusumStep(3, -5)).toBe(0);
    expect(cusumStep(3, -3)).toBe(0);
    expect(cusumStep(0, -0.1)).toBe(0);
  });
});

describe('wilsonUpperBound', () => {
  it('is (p + z²/2n + z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n): 1 of 4 at z = 2 is (3 + √7)/8', () => {
    // p = 1/4, z² = 4: centre 1/4 + 1/2 = 3/4, margin 2·√(3/64 + 1/16) = 2·√(7/64) = √7/4, ÷ 2.
    expect(wilsonUpperBound(1, 4, 2)).toBeCloseTo((3 + Math.sqrt(7)) / 8, PRECISION);
    expect(wilsonUpperBound(1, 4, 2)).toBeCloseTo(0.705718913883074, PRECISION);
    // 50 of 100 at z = 2: centre 0.5 + 4/200 = 0.52; margin 2·√(0.0025 + 0.0001) = 2·√0.0026; over 1.04.
    expect(wilsonUpperBound(50, 100, 2)).toBeCloseTo((0.52 + 2 * Math.sqrt(0.0026)) / 1.04, 15);
    expect(wilsonUpperBound(50, 100, 2)).toBeCloseTo(0.598058067569092, PRECISION);
  });

  it('is z²/(n + z²) with no successes: 0 of 100 at z = 2.33 is 5.4289/105.4289', () => {
    // p = 0: centre z²/2n and margin z·√(z²/4n²) = z²/2n, so (z²/n) / (1 + z²/n).
    expect(wilsonUpperBound(0, 100, 2.33)).toBeCloseTo(5.4289 / 105.4289, PRECISION);
    expect(wilsonUpperBound(0, 100, 2.33)).toBeCloseTo(0.051493470955307, PRECISION);
    expect(wilsonUpperBound(0, 1, 1)).toBeCloseTo(0.5, PRECISION);
    expect(wilsonUpperBound(0, 100, 1)).toBeCloseTo(1 / 101, 15);
  });

  it('works with the general formula at a realistic baseline: 100 of 10,000 at z = 2.33', () => {
    const expected = (0.01 + 5.4289 / 20_000 + 2.33 * Math.sqrt(0.0099 / 10_000 + 5.4289 / 400_000_000)) / (1 + 5.4289 / 10_000);
    expect(wilsonUpperBound(100, 10_000, 2.33)).toBeCloseTo(expected, PRECISION);
    expect(wilsonUpperBound(100, 10_000, 2.33)).toBeCloseTo(0.012598763218677, PRECISION);
  });

  it('widens with z and narrows with n', () => {
    // 20 of 120 at z = 3.09 (the probe's bound) against z = 2.33 (the baseline's).
    const at = (z: number) => (1 / 6 + (z * z) / 240 + z * Math.sqrt(5 / 36 / 120 + (z * z) / 57_600)) / (1 + (z * z) / 120);
    expect(wilsonUpperBound(20, 120, 3.09)).toBeCloseTo(at(3.09), PRECISION);
    expect(wilsonUpperBound(20, 120, 3.09)).toBeCloseTo(0.295350261, 8);
    expect(wilsonUpperBound(20, 120, 2.33)).toBeCloseTo(at(2.33), PRECISION);
    expect(wilsonUpperBound(20, 120, 2.33)).toBeCloseTo(0.259958918, 8);
    expect(wilsonUpperBound(200, 1200, 2.33)).toBeLessThan(wilsonUpperBound(20, 120, 2.33));
  });

  it('is 1 (within rounding, never above) when every trial succeeded', () => {
    // p = 1: centre 1 + z²/2n, margin z²/2n: (1 + z²/n) / (1 + z²/n), which rounding makes
    // 1.0000000000000002 for 9 of 9 at z = 2: the bound is capped at 1.
    expect(wilsonUpperBound(9, 9, 2)).toBe(1);
    expect(wilsonUpperBound(3, 3, 1)).toBe(1);
    expect(wilsonUpperBound(3, 3, 3.09)).toBe(1);
    expect(wilsonUpperBound(100, 100, 2.33)).toBeCloseTo(1, 15);
    expect(wilsonUpperBound(100, 100, 2.33)).toBeLessThanOrEqual(1);
    expect(wilsonUpperBound(7, 7, 1)).toBe(1);
  });

  it('is 1 with no trials (nothing is known: any rate is possible), never NaN', () => {
    expect(wilsonUpperBound(0, 0, 2.33)).toBe(1);
    expect(wilsonUpperBound(5, 0, 2.33)).toBe(1);
    expect(wilsonUpperBound(0, -1, 2.33)).toBe(1);
    expect(wilsonUpperBound(3, -1, 2.33)).toBe(1);
  });
});

describe('tailStatistic', () => {
  it('is n·KL(k/n ‖ p): 3 of 10 at p = 0.1 is 10·(0.3 ln 3 + 0.7 ln(7/9))', () => {
    expect(tailStatistic(3, 10, 0.1)).toBeCloseTo(10 * (0.3 * Math.log(3) + 0.7 * Math.log(7 / 9)), PRECISION);
    expect(tailStatistic(3, 10, 0.1)).toBeCloseTo(1.536635868038, 11);
    // 5 of 10 against 0.2: 10·(0.5 ln 2.5 + 0.5 ln 0.625) = 5 ln 1.5625.
    expect(tailStatistic(5, 10, 0.2)).toBeCloseTo(5 * Math.log(1.5625), 14);
    expect(tailStatistic(5, 10, 0.2)).toBeCloseTo(2.2314355131421, PRECISION);
  });

  it('is 0 when k/n is not above p (no evidence of a higher rate), at equality and below', () => {
    expect(tailStatistic(1, 10, 0.1)).toBe(0);
    expect(tailStatistic(1, 100, 0.05)).toBe(0); // n·KL(0.01 ‖ 0.05) would be 3.2: the test is one-sided
    expect(tailStatistic(0, 10, 0.1)).toBe(0);
    expect(tailStatistic(0, 10, 0)).toBe(0); // 0 of 10 at p = 0 is no evidence (not 0·ln 0 = NaN)
    expect(tailStatistic(2, 10, 0.5)).toBe(0);
  });

  it('is n·ln(1/p) when every trial succeeded (k = n: the (1 − k/n) term is 0, not NaN)', () => {
    expect(tailStatistic(3, 3, 0.1)).toBeCloseTo(3 * Math.log(10), PRECISION);
    expect(tailStatistic(3, 3, 0.1)).toBeCloseTo(6.907755278982, PRECISION);
    expect(tailStatistic(1, 1, 0.5)).toBeCloseTo(Math.log(2), PRECISION);
    expect(tailStatistic(10, 10, 0.5)).toBeCloseTo(10 * Math.log(2), 14);
  });

  it('is 0 with no trials, even with successes', () => {
    expect(tailStatistic(0, 0, 0.1)).toBe(0);
    expect(tailStatistic(2, 0, 0.1)).toBe(0);
    expect(tailStatistic(2, -1, 0.1)).toBe(0);
  });

  it('clamps p from below at 1e-12: a zero rate is not infinitely surprising', () => {
    expect(tailStatistic(1, 1, 0)).toBeCloseTo(12 * Math.log(10), PRECISION);
    expect(tailStatistic(1, 2, 0)).toBeCloseTo(2 * (0.5 * Math.log(0.5 / 1e-12) + 0.5 * Math.log(0.5 / (1 - 1e-12))), PRECISION);
    expect(tailStatistic(1, 1, -0.5)).toBeCloseTo(12 * Math.log(10), PRECISION);
    // 1 of 10 against 1e-12: ln(1e11) + 9 ln 0.9 (the 9·ln(1/(1 − 1e-12)) term is ~1e-11).
    expect(tailStatistic(1, 10, 0)).toBeCloseTo(Math.log(1e11) + 9 * Math.log(0.9), 9);
    expect(tailStatistic(1, 10, -1)).toBe(tailStatistic(1, 10, 0));
  });

  it('clamps p from above at 1 − 1e-12, and is 0 for p of 1 or more', () => {
    expect(tailStatistic(1, 1, 1 - 1e-13)).toBe(Math.log(1 / (1 - 1e-12)));
    expect(tailStatistic(1, 1, 1 - 1e-13)).toBeGreaterThan(9e-13);
    expect(tailStatistic(1, 1, 1)).toBe(0);
    expect(tailStatistic(10, 10, 1)).toBe(0);
    expect(tailStatistic(1, 1, 1.5)).toBe(0);
  });

  it('grows with the count above p', () => {
    expect(tailStatistic(4, 10, 0.1)).toBeCloseTo(10 * (0.4 * Math.log(4) + 0.6 * Math.log(6 / 9)), PRECISION);
    expect(tailStatistic(4, 10, 0.1)).toBeGreaterThan(tailStatistic(3, 10, 0.1));
  });
});
