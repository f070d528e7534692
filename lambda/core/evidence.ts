/**
 * The judge's statistical evidence from one health window: every sequential test updated with
 * the window's counts. Split from judge.ts, which turns the evidence into a decision.
 *
 * Each test is Page's CUSUM over per-window log-likelihood ratios, capped at its threshold h =
 * ln(falseAlarmWindows): the cap keeps evidence from piling up during a long incident, so that
 * the judge recovers within a few healthy windows once it ends.
 */
import { CEILING_FACTOR, type JudgeConfig, type JudgeMemory, type SlowCounts } from './judge-config';
import type { HealthWindow, SideSignals } from './ports';
import { conditionalLlr, cusumStep, oneSampleLlr } from './stats';

/**
 * Requests the old side must have served, over the migration, before its rates serve as a
 * baseline (for the tests against it at 100 %, and for the old side's own shift test).
 */
export const BASELINE_MIN_REQUESTS = 100;

export interface WindowEvidence {
  readonly memory: JudgeMemory;
  /** Figures for the decision's evidence (rates, LLRs). */
  readonly stats: Record<string, number>;
  /** False when the old side took no traffic in the window: the tests compared the new side with the baseline. */
  readonly concurrent: boolean;
  /**
   * The old side is failing in this window as well: its 5XX share is above the ceiling test's
   * break-even point, or its 5XX rate has risen above its own baseline. Evidence against the new
   * side from such a window is a shared failure, not the new version's fault.
   */
  readonly oldFailing: boolean;
}

/** Updates every test with one window. Pure. */
export function weighWindow(window: HealthWindow, before: JudgeMemory, config: JudgeConfig): WindowEvidence {
  const h = Math.log(config.falseAlarmWindows);
  const step = (previous: number, llr: number) => Math.min(h, cusumStep(previous, llr));
  const stats: Record<string, number> = {};
  const concurrent = window.old.requests > 0;

  // The old side against its own baseline (a shared degradation shows here first).
  const baseline = before.baseline;
  let cusumOldShift = before.cusumOldShift;
  if (concurrent && baseline.requests >= BASELINE_MIN_REQUESTS) {
    const llr = oneSampleLlr(window.old.errors5xx, window.old.requests, smoothedRate(baseline.errors5xx, baseline.requests), config.degradationFactor);
    cusumOldShift = step(cusumOldShift, llr);
    stats.llrOldShift = llr;
  }
  const ceilingLlrOld = concurrent ? oneSampleLlr(window.old.errors5xx, window.old.requests, config.maxErrorRate, CEILING_FACTOR) : 0;
  const oldFailing = concurrent && (ceilingLlrOld > 0 || cusumOldShift >= h / 2);

  // New against old in the same window, or against the baseline when the old side is idle.
  const llr5 = errorLlr(window, baseline, 'errors5xx', config.degradationFactor);
  const llr4 = errorLlr(window, baseline, 'errors4xx', config.degradationFactor);
  const llrSlow = slowLlr(window, before.baselineSlow, config.latencyFactor);
  // The ceiling counts only windows in which the old side is not failing too.
  const llrCeiling = window.new.requests > 0 ? oneSampleLlr(window.new.errors5xx, window.new.requests, config.maxErrorRate, CEILING_FACTOR) : 0;

  // The baseline learns from the old side's windows, except those it was degraded in.
  const learn = concurrent && cusumOldShift < h / 2;
  const slowCounted = window.old.slowRequests !== undefined && window.new.slowRequests !== undefined;
  const memory: JudgeMemory = {
    ...before,
    cusum5xx: step(before.cusum5xx, llr5),
    cusum4xx: step(before.cusum4xx, llr4),
    cusumSlow: step(before.cusumSlow, llrSlow),
    cusumCeiling: oldFailing ? 0 : step(before.cusumCeiling, llrCeiling),
    cusumOldShift,
    baseline: learn ? addSide(baseline, window.old) : baseline,
    baselineSlow:
      learn && slowCounted
        ? { requests: before.baselineSlow.requests + window.old.requests, slow: before.baselineSlow.slow + (window.old.slowRequests ?? 0) }
        : before.baselineSlow,
    ...slowThreshold(before, window, config),
  };

  stats.llr5xx = llr5;
  stats.llr4xx = llr4;
  stats.llrSlow = llrSlow;
  stats.llrCeiling = llrCeiling;
  stats.newRate5xx = rate(window.new.errors5xx, window.new.requests);
  stats.oldRate5xx = rate(window.old.errors5xx, window.old.requests);
  stats.newRate4xx = rate(window.new.errors4xx, window.new.requests);
  stats.oldRate4xx = rate(window.old.errors4xx, window.old.requests);
  if (slowCounted) {
    stats.newSlowShare = rate(window.new.slowRequests ?? 0, window.new.requests);
    stats.oldSlowShare = rate(window.old.slowRequests ?? 0, window.old.requests);
  }
  if (memory.slowThresholdMs !== undefined) stats.slowThresholdMs = memory.slowThresholdMs;
  if (baseline.requests > 0) stats.baselineRate5xx = rate(baseline.errors5xx, baseline.requests);
  return { memory, stats, concurrent, oldFailing };
}

/** LLR for one error class: against the old side in the same window, or the baseline at 100 %. */
export function errorLlr(window: HealthWindow, baseline: SideSignals, key: 'errors4xx' | 'errors5xx', factor: number): number {
  if (window.new.requests <= 0) return 0;
  if (window.old.requests > 0) {
    return conditionalLlr(window.new[key], window.new.requests, window.old[key], window.old.requests, factor);
  }
  if (baseline.requests < BASELINE_MIN_REQUESTS) return 0; // no baseline yet: only the ceiling applies
  return oneSampleLlr(window.new[key], window.new.requests, smoothedRate(baseline[key], baseline.requests), factor);
}

/**
 * LLR of the slow-request shares: the same conditional test as for errors, with "slower than the
 * threshold" as the event. Under "same latency distribution" each slow request falls on the new
 * side in proportion to its traffic whatever the distribution is, so the test needs no model of
 * latency and compares whole tails rather than two noisy point percentiles.
 */
export function slowLlr(window: HealthWindow, baselineSlow: SlowCounts, factor: number): number {
  const slowNew = window.new.slowRequests;
  if (slowNew === undefined || window.new.requests <= 0) return 0;
  if (window.old.requests > 0) {
    if (window.old.slowRequests === undefined) return 0;
    return conditionalLlr(slowNew, window.new.requests, window.old.slowRequests, window.old.requests, factor);
  }
  if (baselineSlow.requests < BASELINE_MIN_REQUESTS) return 0;
  return oneSampleLlr(slowNew, window.new.requests, smoothedRate(baselineSlow.slow, baselineSlow.requests), factor);
}

/** Sets the slow-request threshold once, from the first window with the old side's latency. */
function slowThreshold(before: JudgeMemory, window: HealthWindow, config: JudgeConfig): { slowThresholdMs?: number } {
  if (before.slowThresholdMs !== undefined) return { slowThresholdMs: before.slowThresholdMs };
  if (window.old.requests <= 0 || window.old.latencyMs === undefined) return {};
  // Whole milliseconds: CloudWatch's TC(L:) statistic takes the bound as written.
  return { slowThresholdMs: Math.ceil(window.old.latencyMs + config.latencyMarginMs) };
}

/**
 * Laplace smoothing: a baseline of zero errors must not make every error infinitely surprising.
 */
export function smoothedRate(errors: number, requests: number): number {
  return (errors + 1) / (requests + 2);
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
