/**
 * resolveJudgeConfig: every setting at its bound (accepted) and just beyond it (refused, with the
 * setting, the rule and the bad value in the message); retired and unknown settings; non-objects.
 */
import { describe, expect, it } from 'vitest';
import {
  CEILING_FACTOR,
  DEFAULT_JUDGE_CONFIG,
  INITIAL_JUDGE_MEMORY,
  JudgeConfigError,
  RETIRED_JUDGE_SETTINGS,
  resolveJudgeConfig,
  type JudgeConfig,
} from '../../lambda/core/judge-config';

const accepts = (overrides: Partial<JudgeConfig>) => expect(resolveJudgeConfig(overrides)).toEqual({ ...DEFAULT_JUDGE_CONFIG, ...overrides });

function refusal(overrides: unknown): JudgeConfigError {
  try {
    resolveJudgeConfig(overrides as Partial<JudgeConfig>);
  } catch (err) {
    expect(err).toBeInstanceOf(JudgeConfigError);
    return err as JudgeConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(overrides)}`);
}

describe('resolveJudgeConfig: defaults', () => {
  it('returns the defaults, frozen, when nothing is overridden', () => {
    const config = resolveJudgeConfig();
    expect(config).toEqual(DEFAULT_JUDGE_CONFIG);
    expect(Object.isFrozen(config)).toBe(true);
    expect(resolveJudgeConfig({})).toEqual(DEFAULT_JUDGE_CONFIG);
    expect(Object.isFrozen(resolveJudgeConfig({ minRequests: 7 }))).toBe(true);
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_JUDGE_CONFIG).toEqual({
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
    expect(CEILING_FACTOR).toBe(4);
  });

  it('starts with empty memory, frozen', () => {
    expect(INITIAL_JUDGE_MEMORY).toStrictEqual({
      cusum5xx: 0,
      cusum4xx: 0,
      cusumSlow: 0,
      cusumCeiling: 0,
      oldFailing: false,
      oldRecent: [],
      oldLatencies: [],
      missingWindows: 0,
      missingHistory: '',
      baseline: { requests: 0, errors4xx: 0, errors5xx: 0 },
      baselineSlow: { requests: 0, slow: 0 },
    });
    // No threshold until the old side's latency is known (the key is absent, not undefined).
    expect('slowThresholdMs' in INITIAL_JUDGE_MEMORY).toBe(false);
    // Shared by every migration: nothing may change it in place.
    for (const part of [INITIAL_JUDGE_MEMORY, INITIAL_JUDGE_MEMORY.oldRecent, INITIAL_JUDGE_MEMORY.oldLatencies, INITIAL_JUDGE_MEMORY.baseline, INITIAL_JUDGE_MEMORY.baselineSlow]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
  });
});

describe('resolveJudgeConfig: bounds', () => {
  it('falseAlarmWindows: 100 is the least accepted, 99 is refused', () => {
    accepts({ falseAlarmWindows: 100 });
    expect(refusal({ falseAlarmWindows: 99 }).message).toBe(
      'judge setting falseAlarmWindows must be at least 100 (the average number of healthy windows between false rollbacks), got 99',
    );
    expect(refusal({ falseAlarmWindows: 99.999 }).message).toMatch(/falseAlarmWindows must be at least 100.*got 99.999/);
  });

  it('maxErrorRate: strictly between 0 and 1', () => {
    accepts({ maxErrorRate: 0.5 });
    accepts({ maxErrorRate: 1e-6 });
    accepts({ maxErrorRate: 0.999 });
    expect(refusal({ maxErrorRate: 0 }).message).toBe('judge setting maxErrorRate must be between 0 and 1 (exclusive), got 0');
    expect(refusal({ maxErrorRate: 1 }).message).toBe('judge setting maxErrorRate must be between 0 and 1 (exclusive), got 1');
    expect(refusal({ maxErrorRate: -0.1 }).message).toMatch(/got -0.1$/);
    expect(refusal({ maxErrorRate: 1.5 }).message).toMatch(/got 1.5$/);
  });

  it('minRequests: a whole number of at least 1', () => {
    accepts({ minRequests: 1 });
    accepts({ minRequests: 2 });
    expect(refusal({ minRequests: 0 }).message).toBe('judge setting minRequests must be a whole number, at least 1, got 0');
    expect(refusal({ minRequests: 1.5 }).message).toBe('judge setting minRequests must be a whole number, at least 1, got 1.5');
    expect(refusal({ minRequests: -1 }).message).toMatch(/minRequests.*got -1$/);
  });

  it('degradationFactor and latencyFactor: more than 1', () => {
    accepts({ degradationFactor: 1.01 });
    accepts({ latencyFactor: 1.01 });
    expect(refusal({ degradationFactor: 1 }).message).toBe('judge setting degradationFactor must be more than 1, got 1');
    expect(refusal({ latencyFactor: 1 }).message).toBe('judge setting latencyFactor must be more than 1, got 1');
    expect(refusal({ latencyFactor: 0.5 }).message).toMatch(/latencyFactor must be more than 1, got 0.5/);
  });

  it('latencyMarginMs, maxHoldMs and alarmRecheckMs: zero or more', () => {
    accepts({ latencyMarginMs: 0, maxHoldMs: 0, alarmRecheckMs: 0 });
    accepts({ latencyMarginMs: 0.5, maxHoldMs: 1.5, alarmRecheckMs: 2.5 });
    expect(refusal({ latencyMarginMs: -1 }).message).toBe('judge setting latencyMarginMs must be zero or more, got -1');
    expect(refusal({ maxHoldMs: -1 }).message).toBe('judge setting maxHoldMs must be zero or more, got -1');
    expect(refusal({ alarmRecheckMs: -0.5 }).message).toBe('judge setting alarmRecheckMs must be zero or more, got -0.5');
  });

  it('maxMissingWindows: a whole number of at least 1', () => {
    accepts({ maxMissingWindows: 1 });
    expect(refusal({ maxMissingWindows: 0 }).message).toBe('judge setting maxMissingWindows must be a whole number, at least 1, got 0');
    expect(refusal({ maxMissingWindows: 1.5 }).message).toBe('judge setting maxMissingWindows must be a whole number, at least 1, got 1.5');
  });

  it('missingSpanWindows: a whole number from maxMissingWindows to 50', () => {
    accepts({ missingSpanWindows: 3 }); // = the default maxMissingWindows
    accepts({ missingSpanWindows: 50 });
    accepts({ maxMissingWindows: 5, missingSpanWindows: 5 });
    accepts({ maxMissingWindows: 1, missingSpanWindows: 1 });
    expect(refusal({ missingSpanWindows: 2 }).message).toBe(
      'judge setting missingSpanWindows must be a whole number from maxMissingWindows (3) to 50, got 2',
    );
    expect(refusal({ maxMissingWindows: 5, missingSpanWindows: 4 }).message).toBe(
      'judge setting missingSpanWindows must be a whole number from maxMissingWindows (5) to 50, got 4',
    );
    // The default span of 10 with a larger maxMissingWindows is refused too.
    expect(refusal({ maxMissingWindows: 11 }).message).toMatch(/missingSpanWindows .*\(11\) to 50, got 10$/);
    expect(refusal({ missingSpanWindows: 51 }).message).toMatch(/missingSpanWindows .* to 50, got 51$/);
    expect(refusal({ missingSpanWindows: 5.5 }).message).toMatch(/missingSpanWindows .* to 50, got 5.5$/);
  });

  it('refuses values that are not finite numbers, for every setting', () => {
    for (const key of Object.keys(DEFAULT_JUDGE_CONFIG) as (keyof JudgeConfig)[]) {
      expect(refusal({ [key]: '5' }).message, key).toMatch(new RegExp(`^judge setting ${key} must be .*, got "5"$`));
      expect(refusal({ [key]: Number.NaN }).message, key).toMatch(new RegExp(`^judge setting ${key} must be .*, got null$`));
      expect(refusal({ [key]: Number.POSITIVE_INFINITY }).message, key).toMatch(new RegExp(`^judge setting ${key} `));
      expect(refusal({ [key]: null }).message, key).toMatch(new RegExp(`^judge setting ${key} must be .*, got null$`));
    }
  });

  it('refuses an explicit undefined (it replaces the default rather than falling back to it)', () => {
    expect(refusal({ minRequests: undefined }).message).toBe('judge setting minRequests must be a whole number, at least 1, got undefined');
  });
});

describe('resolveJudgeConfig: keys and shape', () => {
  it('refuses the retired latencyWindows, saying what replaced it', () => {
    expect(RETIRED_JUDGE_SETTINGS.latencyWindows).toMatch(/latencyFactor/);
    expect(refusal({ latencyWindows: 3 }).message).toBe(
      `judge setting latencyWindows was removed: ${RETIRED_JUDGE_SETTINGS.latencyWindows}; remove it`,
    );
    // Even alongside valid settings, and whatever its value.
    expect(refusal({ minRequests: 5, latencyWindows: undefined }).message).toMatch(/^judge setting latencyWindows was removed/);
  });

  it('refuses an unknown key, listing the known ones', () => {
    expect(refusal({ minRequets: 5 }).message).toBe(
      `unknown judge setting "minRequets"; known: ${Object.keys(DEFAULT_JUDGE_CONFIG).join(', ')}`,
    );
    expect(refusal({ minRequets: 5 }).message).toMatch(/known: minRequests, degradationFactor, falseAlarmWindows, /);
    // Names inherited from Object.prototype are neither settings nor retired ones.
    expect(refusal({ toString: 5 }).message).toMatch(/^unknown judge setting "toString"/);
    expect(refusal({ constructor: 5 }).message).toMatch(/^unknown judge setting "constructor"/);
    expect(refusal(JSON.parse('{"__proto__": 5}')).message).toMatch(/^unknown judge setting "__proto__"/);
  });

  it('refuses a value that is not a plain object', () => {
    expect(refusal(null).message).toBe('judge config must be an object, got null');
    expect(refusal([]).message).toBe('judge config must be an object, got []');
    expect(refusal(5).message).toBe('judge config must be an object, got 5');
    expect(refusal('x').message).toBe('judge config must be an object, got "x"');
  });

  it('names its errors', () => {
    const err = refusal(null);
    expect(err.name).toBe('JudgeConfigError');
    expect(err).toBeInstanceOf(Error);
  });
});
