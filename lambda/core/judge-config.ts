/**
 * The judge's settings: what each one means, its default, its bounds, and what the judge
 * remembers between windows. Split from judge.ts, which holds the rules.
 */
import type { SideSignals } from './ports';

/** Tunables of the judge. All have defaults (`DEFAULT_JUDGE_CONFIG`). */
export interface JudgeConfig {
  /** Requests the new side must serve in a step before it may advance. */
  readonly minRequests: number;
  /**
   * The ratio (new ÷ old) of 5XX or 4XX rates that counts as "worse": the sequential tests'
   * alternative hypothesis. Smaller finds smaller regressions, later.
   */
  readonly degradationFactor: number;
  /**
   * Average number of healthy windows between false rollbacks, per test (each test's CUSUM
   * threshold is its natural log). Four tests can roll back: 5XX, 4XX, latency and the 5XX ceiling.
   */
  readonly falseAlarmWindows: number;
  /**
   * The 5XX rate the new side may have whatever the old side does (0–1): the ceiling test's null
   * hypothesis. Its alternative is `CEILING_FACTOR` times this rate.
   */
  readonly maxErrorRate: number;
  /**
   * The ratio (new ÷ old) of slow-request shares that counts as "slower": the latency test's
   * alternative hypothesis. A request is slow when it takes longer than the old side's latency
   * percentile (p99, the median over its last 9 windows) plus `latencyMarginMs`.
   */
  readonly latencyFactor: number;
  /** Added to the old side's p99 to set the slow-request threshold, in ms. */
  readonly latencyMarginMs: number;
  /** Windows without complete signals, within the last `missingSpanWindows`, that cause a rollback. */
  readonly maxMissingWindows: number;
  /** How many recent windows `maxMissingWindows` is counted over. */
  readonly missingSpanWindows: number;
  /** How long a step may hold (too little traffic, an alarm without data, a probe that cannot decide) before the migration pauses, in ms. */
  readonly maxHoldMs: number;
  /**
   * How old the last confirmed read of the user's alarms may get, in ms, before a routine tick
   * confirms them again. Only matters with a health adapter that is sent alarm state changes as
   * they happen (AWS: EventBridge): between confirmations it answers from those. The gate and
   * every tick that may move the migration on always confirm. 0 confirms on every tick.
   */
  readonly alarmRecheckMs: number;
}

export const DEFAULT_JUDGE_CONFIG: JudgeConfig = Object.freeze({
  minRequests: 100,
  degradationFactor: 2,
  falseAlarmWindows: 100_000,
  maxErrorRate: 0.05,
  latencyFactor: 2,
  latencyMarginMs: 50,
  maxMissingWindows: 3,
  missingSpanWindows: 10,
  maxHoldMs: 30 * 60_000,
  alarmRecheckMs: 10 * 60_000,
});

/**
 * The ceiling test's alternative: the new side fails at this many times `maxErrorRate` (capped at
 * 99 %). With the default 5 % ceiling that is 20 %: each failed request adds ln 4 ≈ 1.39 to the
 * evidence, so at least 9 failed requests are needed (the floor), and a window with ≥ 20 % 5XX over
 * ≥ 100 requests, or 10 failures in 10, rolls back at once.
 */
export const CEILING_FACTOR = 4;

/**
 * Settings earlier versions had, with what replaced them. A stored record that still carries one
 * was written by an earlier version and loads without it; a user who sets one is told why not.
 */
export const RETIRED_JUDGE_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  latencyWindows:
    'the latency test now accumulates evidence across windows like the error tests (its sensitivity is latencyFactor, its false-rollback rate falseAlarmWindows)',
});

/** A judge configuration that failed validation. */
export class JudgeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JudgeConfigError';
  }
}

/** Merges overrides onto the defaults and validates the result. */
export function resolveJudgeConfig(overrides: Partial<JudgeConfig> = {}): JudgeConfig {
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new JudgeConfigError(`judge config must be an object, got ${JSON.stringify(overrides)}`);
  }
  for (const key of Object.keys(overrides)) {
    // Own keys only: names inherited from Object.prototype (toString, constructor…) are unknown settings.
    if (Object.hasOwn(RETIRED_JUDGE_SETTINGS, key)) {
      throw new JudgeConfigError(`judge setting ${key} was removed: ${RETIRED_JUDGE_SETTINGS[key]}; remove it`);
    }
    if (!Object.hasOwn(DEFAULT_JUDGE_CONFIG, key)) {
      throw new JudgeConfigError(
        `unknown judge setting ${JSON.stringify(key)}; known: ${Object.keys(DEFAULT_JUDGE_CONFIG).join(', ')}`,
      );
    }
  }
  const config = { ...DEFAULT_JUDGE_CONFIG, ...overrides };
  const check = (key: keyof JudgeConfig, ok: (v: number) => boolean, rule: string): void => {
    const value = config[key];
    // Number.isFinite is false for anything but a finite number (no coercion of strings, null…).
    if (!Number.isFinite(value) || !ok(value)) {
      throw new JudgeConfigError(`judge setting ${key} must be ${rule}, got ${JSON.stringify(value)}`);
    }
  };
  const whole = (v: number) => Number.isInteger(v);
  check('minRequests', (v) => whole(v) && v >= 1, 'a whole number, at least 1');
  check('degradationFactor', (v) => v > 1, 'more than 1');
  // Below 100 the threshold (ln 100 ≈ 4.6) is crossed by a handful of errors on a quiet canary.
  check('falseAlarmWindows', (v) => v >= 100, 'at least 100 (the average number of healthy windows between false rollbacks)');
  check('maxErrorRate', (v) => v > 0 && v < 1, 'between 0 and 1 (exclusive)');
  check('latencyFactor', (v) => v > 1, 'more than 1');
  check('latencyMarginMs', (v) => v >= 0, 'zero or more');
  check('maxMissingWindows', (v) => whole(v) && v >= 1, 'a whole number, at least 1');
  check('missingSpanWindows', (v) => whole(v) && v >= config.maxMissingWindows && v <= 50, `a whole number from maxMissingWindows (${config.maxMissingWindows}) to 50`);
  check('maxHoldMs', (v) => v >= 0, 'zero or more');
  check('alarmRecheckMs', (v) => v >= 0, 'zero or more');
  return Object.freeze(config);
}

/** Slow-request counts behind the latency test's baseline (only windows that counted them). */
export interface SlowCounts {
  readonly requests: number;
  readonly slow: number;
}

/** The old side's counts in one recent window (for its shift test). */
export interface OldWindow {
  readonly requests: number;
  readonly errors5xx: number;
}

/** What the judge remembers between windows (stored in the migration record). */
export interface JudgeMemory {
  /** Evidence that the new side's 5XX rate is worse than the old side's (CUSUM). */
  readonly cusum5xx: number;
  /** The same for 4XX. */
  readonly cusum4xx: number;
  /** Evidence that the new side has a larger share of slow requests than the old side. */
  readonly cusumSlow: number;
  /** Evidence that the new side's 5XX rate is above the absolute ceiling. */
  readonly cusumCeiling: number;
  /**
   * The old side was failing in the last judged window (or a probe found it failing when it takes
   * no traffic): the judge holds instead of stepping forward.
   */
  readonly oldFailing: boolean;
  /** Windows without complete signals among the last `missingSpanWindows`. */
  readonly missingWindows: number;
  /** The last windows, newest last: '1' without complete signals, '0' with. */
  readonly missingHistory: string;
  /**
   * The old side's last few windows (at most `OLD_SHIFT_WINDOWS`): its shift test compares their
   * 5XX count with its baseline, to find a degradation both sides share.
   */
  readonly oldRecent: readonly OldWindow[];
  /** The old side's last few p99s (at most `LATENCY_HISTORY`): the slow-request threshold is their median plus the margin. */
  readonly oldLatencies: readonly number[];
  /** The old side's totals from windows it was not failing in: the baseline when it takes no traffic. */
  readonly baseline: SideSignals;
  /** The old side's slow-request counts, from the windows that counted them. */
  readonly baselineSlow: SlowCounts;
  /** The slow-request threshold in ms for the next window read (undefined until the old side's latency is known). */
  readonly slowThresholdMs?: number;
}

export const INITIAL_JUDGE_MEMORY: JudgeMemory = Object.freeze({
  cusum5xx: 0,
  cusum4xx: 0,
  cusumSlow: 0,
  cusumCeiling: 0,
  oldFailing: false,
  oldRecent: Object.freeze([]),
  oldLatencies: Object.freeze([]),
  missingWindows: 0,
  missingHistory: '',
  baseline: Object.freeze({ requests: 0, errors4xx: 0, errors5xx: 0 }),
  baselineSlow: Object.freeze({ requests: 0, slow: 0 }),
});
