/**
 * The judge's statistical evidence from one health window: every sequential test updated with
 * the window's counts. Split from judge.ts, which turns the evidence into a decision.
 *
 * Each test is Page's CUSUM over per-window log-likelihood ratios, capped at its threshold h =
 * ln(falseAlarmWindows): the cap keeps evidence from piling up during a long incident, so that
 * the judge recovers within a few healthy windows once it ends.
 *
 * A baseline measured earlier (the old side's rates, used once it takes no traffic and for its own
 * shift test) is only an estimate: a few errors more or less in it would make healthy traffic look
 * worse, window after window. Tests against it therefore use its upper confidence bound
 * (`baselineRate`), never the point estimate.
 */
import { CEILING_FACTOR, type JudgeConfig, type JudgeMemory, type OldWindow, type SlowCounts } from './judge-config';
import type { HealthWindow, SideSignals } from './ports';
import { conditionalLlr, cusumStep, oneSampleLlr, tailStatistic, wilsonUpperBound } from './stats';

/**
 * Requests the old side must have served, over the migration, before its rates serve as a
 * baseline (for the tests against it at 100 %, and for the old side's own shift test).
 */
export const BASELINE_MIN_REQUESTS = 100;

/** z of the baseline's upper confidence bound (one-sided 99 %). */
export const BASELINE_Z = 2.33;

/** How many recent windows of the old side its shift test sums (a shared degradation shows within them; so does its end). */
export const OLD_SHIFT_WINDOWS = 5;

/** How many of the old side's recent p99s the slow-request threshold is the median of. */
export const LATENCY_HISTORY = 9;

export interface WindowEvidence {
  readonly memory: JudgeMemory;
  /** Figures for the decision's evidence (rates, LLRs). */
  readonly stats: Record<string, number>;
  /** False when the old side took no traffic in the window: the tests compared the new side with the baseline. */
  readonly concurrent: boolean;
}

/** Updates every test with one window. Pure. */
export function weighWindow(window: HealthWindow, before: JudgeMemory, config: JudgeConfig): WindowEvidence {
  const h = Math.log(config.falseAlarmWindows);
  const step = (previous: number, llr: number) => Math.min(h, cusumStep(previous, llr));
  const stats: Record<string, number> = {};
  const concurrent = window.old.requests > 0;
  const baseline = before.baseline;

  // New against old in the same window, or against the baseline when the old side is idle.
  const llr5 = errorLlr(window, baseline, 'errors5xx', config.degradationFactor);
  const llr4 = errorLlr(window, baseline, 'errors4xx', config.degradationFactor);
  const llrSlow = slowLlr(window, before.baselineSlow, config.latencyFactor);
  const llrCeiling = oneSampleLlr(window.new.errors5xx, window.new.requests, config.maxErrorRate, CEILING_FACTOR);

  // Is the old side failing too? Its share above the ceiling test's break-even point in this
  // window, or its 5XX count over the last few windows well above its own baseline (a shared
  // degradation below the ceiling). Summing a few windows, instead of a CUSUM, lets the judge
  // see the end of an outage as fast as its start.
  const oldRecent: readonly OldWindow[] = concurrent
    ? [...before.oldRecent, { requests: window.old.requests, errors5xx: window.old.errors5xx }].slice(-OLD_SHIFT_WINDOWS)
    : before.oldRecent;
  const oldShift = concurrent ? shiftStatistic(oldRecent, baseline) : 0;
  const ceilingLlrOld = concurrent ? oneSampleLlr(window.old.errors5xx, window.old.requests, config.maxErrorRate, CEILING_FACTOR) : 0;
  const oldFailing = concurrent
    ? ceilingLlrOld > 0 || oldShift >= h
    : // With no old traffic, a shared outage found by a probe lasts while the new side still fails.
      before.oldFailing && (llrCeiling > 0 || llr5 > 0);

  // The baseline learns from the old side's windows, except those it was failing in.
  const learn = concurrent && !oldFailing;
  const slowCounted = window.old.slowRequests !== undefined && window.new.slowRequests !== undefined;
  const memory: JudgeMemory = {
    ...before,
    cusum5xx: step(before.cusum5xx, llr5),
    cusum4xx: step(before.cusum4xx, llr4),
    cusumSlow: step(before.cusumSlow, llrSlow),
    // The ceiling counts only windows in which the old side is seen failing too. With no old
    // traffic its failure is only carried over from a probe: the ceiling keeps counting, so that it
    // trips again and a fresh probe decides (without a baseline it is the only test that can).
    cusumCeiling: concurrent && oldFailing ? 0 : step(before.cusumCeiling, llrCeiling),
    oldFailing,
    oldRecent,
    baseline: learn ? addSide(baseline, window.old) : baseline,
    baselineSlow:
      learn && slowCounted
        ? { requests: before.baselineSlow.requests + window.old.requests, slow: before.baselineSlow.slow + (window.old.slowRequests ?? 0) }
        : before.baselineSlow,
    ...latencyThreshold(before, window, config),
  };

  stats.llr5xx = llr5;
  stats.llr4xx = llr4;
  stats.llrSlow = llrSlow;
  stats.llrCeiling = llrCeiling;
  if (concurrent) stats.oldShift = oldShift;
  stats.newRate5xx = rate(window.new.errors5xx, window.new.requests);
  stats.oldRate5xx = rate(window.old.errors5xx, window.old.requests);
  stats.newRate4xx = rate(window.new.errors4xx, window.new.requests);
  stats.oldRate4xx = rate(window.old.errors4xx, window.old.requests);
  // Each side's share when it counted slow requests (at 100 % the old side takes none and may not count them).
  if (window.new.slowRequests !== undefined) stats.newSlowShare = rate(window.new.slowRequests, window.new.requests);
  if (window.old.slowRequests !== undefined) stats.oldSlowShare = rate(window.old.slowRequests, window.old.requests);
  if (before.slowThresholdMs !== undefined) stats.slowThresholdMs = before.slowThresholdMs;
  if (baseline.requests > 0) stats.baselineRate5xx = rate(baseline.errors5xx, baseline.requests);
  return { memory, stats, concurrent };
}

/** LLR for one error class: against the old side in the same window, or the baseline at 100 %. */
export function errorLlr(window: HealthWindow, baseline: SideSignals, key: 'errors4xx' | 'errors5xx', factor: number): number {
  // A new side without requests gets 0 from either test (both return 0 for no requests).
  if (window.old.requests > 0) {
    return conditionalLlr(window.new[key], window.new.requests, window.old[key], window.old.requests, factor);
  }
  if (baseline.requests < BASELINE_MIN_REQUESTS) return 0; // no baseline yet: only the ceiling applies
  return oneSampleLlr(window.new[key], window.new.requests, baselineRate(baseline[key], baseline.requests), factor);
}

/**
 * LLR of the slow-request shares: the same conditional test as for errors, with "slower than the
 * threshold" as the event. Under "same latency distribution" each slow request falls on the new
 * side in proportion to its traffic whatever the distribution is, so the test needs no model of
 * latency and compares whole tails rather than two noisy point percentiles.
 */
export function slowLlr(window: HealthWindow, baselineSlow: SlowCounts, factor: number): number {
  const slowNew = window.new.slowRequests;
  if (slowNew === undefined) return 0; // not counted (a new side without requests gets 0 from either test below)
  if (window.old.requests > 0) {
    if (window.old.slowRequests === undefined) return 0;
    return conditionalLlr(slowNew, window.new.requests, window.old.slowRequests, window.old.requests, factor);
  }
  if (baselineSlow.requests < BASELINE_MIN_REQUESTS) return 0;
  return oneSampleLlr(slowNew, window.new.requests, baselineRate(baselineSlow.slow, baselineSlow.requests), factor);
}

/**
 * How far the old side's recent 5XX count is above its baseline: n·KL(k/n ‖ p0), the exponent of
 * the Chernoff bound on the chance of so many errors at the baseline rate (0 when at or below it).
 * It reaches h only when that chance is below 1/falseAlarmWindows.
 */
export function shiftStatistic(recent: readonly OldWindow[], baseline: SideSignals): number {
  if (baseline.requests < BASELINE_MIN_REQUESTS) return 0;
  let requests = 0;
  let errors = 0;
  for (const w of recent) {
    requests += w.requests;
    errors += w.errors5xx;
  }
  return tailStatistic(errors, requests, baselineRate(baseline.errors5xx, baseline.requests));
}

/**
 * The slow-request threshold for the next window: the median of the old side's recent p99s plus
 * `latencyMarginMs`. A median of several windows is not thrown off by one window whose p99 a stall
 * inflated; any threshold fixed before a window is read keeps that window's test exact.
 */
function latencyThreshold(before: JudgeMemory, window: HealthWindow, config: JudgeConfig): Partial<Pick<JudgeMemory, 'oldLatencies' | 'slowThresholdMs'>> {
  // Nothing new: the memory keeps its history and threshold (copied from `before`).
  if (window.old.requests <= 0 || window.old.latencyMs === undefined) return {};
  const oldLatencies = [...before.oldLatencies, window.old.latencyMs].slice(-LATENCY_HISTORY);
  // Whole milliseconds: CloudWatch's TC(L:) statistic takes the bound as written.
  return { oldLatencies, slowThresholdMs: Math.ceil(median(oldLatencies) + config.latencyMarginMs) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The rate a baseline is taken to have: the upper bound of its Wilson interval (z = 2.33), so that
 * an estimate that happens to be low does not make healthy traffic look worse window after window.
 */
export function baselineRate(errors: number, requests: number): number {
  return wilsonUpperBound(errors, requests, BASELINE_Z);
}

/** Adds two sides' counts (latency is not additive and is left as in `a`; slow counts add up only when both have them). */
export function addSide(a: SideSignals, b: SideSignals): SideSignals {
  const slow = a.slowRequests !== undefined && b.slowRequests !== undefined ? { slowRequests: a.slowRequests + b.slowRequests } : {};
  return {
    requests: a.requests + b.requests,
    errors4xx: a.errors4xx + b.errors4xx,
    errors5xx: a.errors5xx + b.errors5xx,
    ...(a.latencyMs !== undefined ? { latencyMs: a.latencyMs } : {}),
    ...slow,
  };
}

export function rate(errors: number, requests: number): number {
  return requests > 0 ? errors / requests : 0;
}
