/**
 * How strictly the controller's judge compares the new version against the old one. A thin,
 * `Duration`-typed front for the core's `JudgeConfig`: the overrides are validated by the core's
 * own `resolveJudgeConfig`, so what synthesises is exactly what the controller accepts.
 */
import { Duration } from 'aws-cdk-lib';
import { RETIRED_JUDGE_SETTINGS, resolveJudgeConfig, type JudgeConfig } from '../lambda/core/judge';
import { CutoverValidationError, show } from './errors';

/** Settings for `HealthCheck.custom`. Every field falls back to the judge's default. */
export interface HealthCheckOptions {
  /**
   * Requests the new version must serve in a step before the step may advance. Set it to what a
   * step at the first weight really gets in one bake time, or low-traffic steps only ever hold.
   * @default 100
   */
  readonly minRequests?: number;
  /**
   * The error-rate ratio (new ÷ old) that counts as "worse" for the sequential test.
   * @default 2
   */
  readonly degradationFactor?: number;
  /**
   * Average number of healthy windows between two false rollbacks (sets the test's threshold).
   * Larger means fewer false rollbacks and a slightly later detection.
   * @default 100000
   */
  readonly falseAlarmWindows?: number;
  /**
   * Absolute ceiling for the new version's 5XX rate, as a fraction (0.05 = 5 %).
   * @default 0.05
   */
  readonly maxErrorRate?: number;
  /**
   * The ratio (new ÷ old) of slow-request shares the latency test looks for. A request is slow
   * when it takes longer than the old version's p99 (measured in the first judged window) plus
   * `latencyMargin`; the test compares how many requests of each side are slow, window after
   * window, so it needs no point percentile of a small sample.
   * @default 2
   */
  readonly latencyFactor?: number;
  /**
   * Added to the old version's p99 to set the slow-request threshold.
   * @default Duration.millis(50)
   */
  readonly latencyMargin?: Duration;
  /**
   * Windows without complete signals, within the last `missingSpanWindows`, that cause a
   * rollback (missing data never looks healthy).
   * @default 3
   */
  readonly maxMissingWindows?: number;
  /**
   * How many recent windows `maxMissingWindows` is counted over (from `maxMissingWindows` to 50).
   * @default 10
   */
  readonly missingSpanWindows?: number;
  /**
   * How long a step may hold for lack of traffic before the migration pauses for a human.
   * @default Duration.minutes(30)
   */
  readonly maxHold?: Duration;
  /**
   * How long the controller may go on the alarm state changes EventBridge delivered before it
   * confirms them with `DescribeAlarms` again. Ticks that may raise the weight, promote or end the
   * soak always confirm first; `Duration.seconds(0)` confirms on every tick (one more read call
   * per tick).
   * @default Duration.minutes(10)
   */
  readonly alarmRecheck?: Duration;
}

/** Every option `HealthCheck.custom` takes (declared before the class: its static presets use it). */
const KNOWN_OPTIONS: readonly string[] = [
  'minRequests',
  'degradationFactor',
  'falseAlarmWindows',
  'maxErrorRate',
  'latencyFactor',
  'latencyMargin',
  'maxMissingWindows',
  'missingSpanWindows',
  'maxHold',
  'alarmRecheck',
] satisfies ReadonlyArray<keyof HealthCheckOptions>;

/**
 * The health rules the controller applies at every step.
 *
 * ```ts
 * HealthCheck.DEFAULT
 * HealthCheck.STRICT
 * HealthCheck.custom({ minRequests: 20, maxErrorRate: 0.01 })
 * ```
 */
export class HealthCheck {
  /** The judge's defaults: 2× error-rate degradation, 5 % 5XX ceiling, 2× slow-request share (slow: old p99 + 50 ms). */
  public static readonly DEFAULT = new HealthCheck({});

  /**
   * Tighter than the defaults, for services where a small regression already hurts: 1.5×
   * degradation, 1 % 5XX ceiling, 1.5× slow-request share.
   */
  public static readonly STRICT = HealthCheck.custom({
    degradationFactor: 1.5,
    maxErrorRate: 0.01,
    latencyFactor: 1.5,
  });

  /** Custom settings; anything left out keeps the judge's default. */
  public static custom(options: HealthCheckOptions): HealthCheck {
    if (options === null || typeof options !== 'object') {
      throw new CutoverValidationError(`HealthCheck.custom: options must be an object, got ${show(options)}`);
    }
    for (const key of Object.keys(options)) {
      const retired = RETIRED_JUDGE_SETTINGS[key];
      if (retired !== undefined) throw new CutoverValidationError(`HealthCheck.custom: ${key} was removed: ${retired}; remove it`);
      if (!KNOWN_OPTIONS.includes(key)) {
        throw new CutoverValidationError(`HealthCheck.custom: unknown option ${JSON.stringify(key)}; known: ${KNOWN_OPTIONS.join(', ')}`);
      }
    }
    const overrides: { -readonly [K in keyof JudgeConfig]?: JudgeConfig[K] } = {};
    const copy = (key: keyof JudgeConfig & keyof HealthCheckOptions) => {
      const value = options[key];
      if (value !== undefined) overrides[key] = value as number;
    };
    copy('minRequests');
    copy('degradationFactor');
    copy('falseAlarmWindows');
    copy('maxErrorRate');
    copy('latencyFactor');
    copy('maxMissingWindows');
    copy('missingSpanWindows');
    if (options.latencyMargin !== undefined) overrides.latencyMarginMs = durationMs(options.latencyMargin, 'latencyMargin');
    if (options.maxHold !== undefined) overrides.maxHoldMs = durationMs(options.maxHold, 'maxHold');
    if (options.alarmRecheck !== undefined) overrides.alarmRecheckMs = durationMs(options.alarmRecheck, 'alarmRecheck');
    return new HealthCheck(overrides);
  }

  /** Only the settings that differ from the defaults (what the controller receives as `CUTOVER_JUDGE`). */
  public readonly overrides: Partial<JudgeConfig>;
  /** The complete settings the judge will use. */
  public readonly config: JudgeConfig;

  private constructor(overrides: Partial<JudgeConfig>) {
    try {
      this.config = resolveJudgeConfig(overrides);
    } catch (error) {
      throw new CutoverValidationError(`HealthCheck: ${(error as Error).message}`);
    }
    this.overrides = Object.freeze({ ...overrides });
  }
}


function durationMs(value: unknown, what: string): number {
  if (!(value instanceof Duration)) {
    throw new CutoverValidationError(`HealthCheck.custom: ${what} must be a Duration, got ${show(value)}`);
  }
  if (value.isUnresolved()) {
    throw new CutoverValidationError(`HealthCheck.custom: ${what} must be known at synth, got a token: ${value.toString()}`);
  }
  return value.toMilliseconds();
}
