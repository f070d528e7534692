/**
 * The judge: turns one window of health signals (plus probe verdicts, alarms and capacity) into
 * advance / hold / rollback / pause, with the reason and the evidence.
 *
 * ## How it decides (first rule that applies wins; rollbacks come first and never wait)
 * 1. A probe found a desync on the new side → rollback. A correctness failure needs no statistics.
 * 2. A probe found a desync on the old side too → pause (rolling back would not help; a human decides).
 * 3. One of the user's alarms is in ALARM → rollback (before the first shift: hold, since the new
 *    side cannot be the cause yet).
 * 4. No signals for the window → hold; after `maxMissingWindows` such windows in a row → rollback.
 *    Missing data never counts as healthy.
 * 5. Error rates, new against old (the baseline), separately for 5XX and 4XX: a CUSUM of the
 *    log-likelihood ratio of a conditional binomial test (see stats.ts). It compares the new side
 *    with the old side in the same window, so traffic patterns that hit both sides cancel out, and
 *    it accumulates evidence over windows, so a low-traffic canary is judged on all its requests
 *    rather than on a noisy single window. Rollback when the CUSUM reaches ln(falseAlarmWindows).
 * 6. Absolute ceiling: the new side's 5XX rate is above `maxErrorRate` with 99.9 % confidence
 *    (Wilson bound) → rollback if new is worse than old, pause if both sides fail alike.
 * 7. Latency: the new side's percentile exceeds max(old × latencyFactor, old + latencyMarginMs)
 *    for `latencyWindows` judged windows in a row → rollback.
 * 8. The old side is below its pinned capacity or not ready → hold (the controller restores it).
 * 9. The latest probe of the new side was inconclusive → hold.
 * 10. Bake time not over → hold.
 * 11. Fewer than `minRequests` requests on the new side in this step → hold (it does not guess);
 *     after `maxHoldMs` of holding for that reason → pause.
 * 12. Evidence is building (a CUSUM above half its threshold) → hold.
 * 13. Otherwise → advance.
 *
 * ## False-rollback rate
 * Page's CUSUM with likelihood-ratio increments has an average run length under H0 of at least
 * e^h windows (Lorden 1971). With h = ln(falseAlarmWindows) and the default of 100,000, healthy
 * traffic triggers a statistical rollback on average at most once per 100,000 judged windows per
 * error class (5XX and 4XX: at most about 2 per 100,000 together); a 1,000-window migration has at
 * most about a 2 % chance of one. In simulation (test/core/judge.test.ts) 1,000 windows of healthy
 * binomial noise at a 1 % weight cause none, and a 5× error increase at a 1 % weight is caught in
 * a handful of windows. The bound holds when errors are independent between requests; correlated
 * bursts that hit only the new side are, correctly, evidence against it.
 */
import { Action, type Decision, type Signals } from './model';
import type { AlarmSignal, CapacityStatus, HealthWindow, ProbeOutcome, SideSignals } from './ports';
import { conditionalLlr, cusumStep, oneSampleLlr, wilsonLowerBound } from './stats';

/** Tunables of the judge. All have defaults (`DEFAULT_JUDGE_CONFIG`). */
export interface JudgeConfig {
  /** Requests the new side must serve in a step before it may advance. */
  readonly minRequests: number;
  /** The error-rate ratio (new ÷ old) that counts as "worse": the CUSUM's alternative hypothesis. */
  readonly degradationFactor: number;
  /** Average number of healthy windows between false rollbacks (the CUSUM threshold is its ln). */
  readonly falseAlarmWindows: number;
  /** Absolute ceiling for the new side's 5XX rate (0–1). */
  readonly maxErrorRate: number;
  /** The new side's latency may be at most this many times the old side's … */
  readonly latencyFactor: number;
  /** … and at least this many ms slower before it counts as a breach. */
  readonly latencyMarginMs: number;
  /** Breaching windows in a row that cause a rollback. */
  readonly latencyWindows: number;
  /** Windows in a row without signals that cause a rollback. */
  readonly maxMissingWindows: number;
  /** How long a step may hold for lack of traffic before the migration pauses, in ms. */
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
  latencyFactor: 1.5,
  latencyMarginMs: 50,
  latencyWindows: 3,
  maxMissingWindows: 3,
  maxHoldMs: 30 * 60_000,
  alarmRecheckMs: 10 * 60_000,
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
  if (overrides === null || typeof overrides !== 'object') {
    throw new JudgeConfigError(`judge config must be an object, got ${JSON.stringify(overrides)}`);
  }
  for (const key of Object.keys(overrides)) {
    if (!(key in DEFAULT_JUDGE_CONFIG)) {
      throw new JudgeConfigError(
        `unknown judge setting ${JSON.stringify(key)}; known: ${Object.keys(DEFAULT_JUDGE_CONFIG).join(', ')}`,
      );
    }
  }
  const config = { ...DEFAULT_JUDGE_CONFIG, ...overrides };
  const check = (key: keyof JudgeConfig, ok: (v: number) => boolean, rule: string): void => {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
      throw new JudgeConfigError(`judge setting ${key} must be ${rule}, got ${JSON.stringify(value)}`);
    }
  };
  check('minRequests', (v) => v >= 1, 'at least 1');
  check('degradationFactor', (v) => v > 1, 'more than 1');
  check('falseAlarmWindows', (v) => v >= 10, 'at least 10');
  check('maxErrorRate', (v) => v > 0 && v < 1, 'between 0 and 1 (exclusive)');
  check('latencyFactor', (v) => v >= 1, 'at least 1');
  check('latencyMarginMs', (v) => v >= 0, 'zero or more');
  check('latencyWindows', (v) => Number.isInteger(v) && v >= 1, 'a whole number, at least 1');
  check('maxMissingWindows', (v) => Number.isInteger(v) && v >= 1, 'a whole number, at least 1');
  check('maxHoldMs', (v) => v >= 0, 'zero or more');
  check('alarmRecheckMs', (v) => v >= 0, 'zero or more');
  return Object.freeze(config);
}

/** What the judge remembers between windows (stored in the migration record). */
export interface JudgeMemory {
  readonly cusum5xx: number;
  readonly cusum4xx: number;
  readonly latencyBreaches: number;
  readonly missingWindows: number;
  /** The old side's totals over the whole migration: the baseline once it takes no traffic. */
  readonly baseline: SideSignals;
}

export const INITIAL_JUDGE_MEMORY: JudgeMemory = Object.freeze({
  cusum5xx: 0,
  cusum4xx: 0,
  latencyBreaches: 0,
  missingWindows: 0,
  baseline: Object.freeze({ requests: 0, errors4xx: 0, errors5xx: 0 }),
});

/** Which part of the migration is being judged. */
export type JudgePhase = 'gate' | 'bake' | 'soak';

export interface JudgeInput {
  readonly config: JudgeConfig;
  readonly phase: JudgePhase;
  /** Time since the current step (or soak) started, and how long it must last. */
  readonly elapsedMs: number;
  readonly requiredMs: number;
  /**
   * The window to judge, or undefined when the health source had no data for it.
   * Ignored in the gate phase. `null` means "no new window this time" (fast checks only).
   */
  readonly window: HealthWindow | undefined | null;
  /** Counts accumulated since the step began (including `window`). */
  readonly stepTotals: { readonly old: SideSignals; readonly new: SideSignals };
  readonly alarms: readonly AlarmSignal[];
  /** Probe outcomes not seen before (oldest first), including any fresh gate probe. */
  readonly probes: readonly ProbeOutcome[];
  /** The latest probe of the new side, whenever it ran (for "inconclusive → hold"). */
  readonly latestNewProbe?: ProbeOutcome;
  /**
   * Signal sources that failed to answer this time (e.g. "alarms: ThrottlingException"). They
   * count like missing data: never healthy.
   */
  readonly unavailable?: readonly string[];
  /** Undefined when capacity is not managed. */
  readonly capacity?: CapacityStatus;
  readonly pinnedCapacity?: number;
  readonly memory: JudgeMemory;
}

export interface Judgement {
  readonly decision: Decision;
  readonly memory: JudgeMemory;
}

/** Judges one window. Pure: same input, same output. */
export function judge(input: JudgeInput): Judgement {
  const { config, memory: before } = input;
  const threshold = Math.log(config.falseAlarmWindows);
  let memory: JudgeMemory = before;
  const stats: Record<string, number> = {};
  const signals = (): Signals => ({
    ...(input.window ? { window: input.window } : {}),
    stepTotals: { fromMs: 0, toMs: 0, old: input.stepTotals.old, new: input.stepTotals.new },
    alarms: input.alarms,
    probes: input.probes,
    ...(input.capacity ? { capacity: input.capacity } : {}),
    stats: { ...stats, cusum5xx: memory.cusum5xx, cusum4xx: memory.cusum4xx, threshold },
  });
  const decide = (action: Action, code: string, reason: string): Judgement => ({
    decision: { action, code, reason, signals: signals() },
    memory,
  });

  // 1–2. Probes: correctness failures.
  const newDesync = input.probes.find((p) => p.side === 'new' && p.verdict === 'desync');
  if (newDesync) {
    return decide(Action.ROLLBACK, 'probe-desync', `Keep-Alive probe found a desync on the new side: ${newDesync.summary}`);
  }
  const oldDesync = input.probes.find((p) => p.side === 'old' && p.verdict === 'desync');
  if (oldDesync) {
    return decide(
      Action.PAUSE,
      'old-side-desync',
      `Keep-Alive probe found a desync on the OLD side too, so rolling back would not help: ${oldDesync.summary}`,
    );
  }

  // 3. Alarms.
  const firing = input.alarms.filter((a) => a.state === 'ALARM');
  if (firing.length > 0) {
    const names = firing.map((a) => a.name).join(', ');
    if (input.phase === 'gate') {
      return decide(Action.HOLD, 'alarm-before-start', `alarm already in ALARM before any traffic moved: ${names}`);
    }
    return decide(Action.ROLLBACK, 'alarm', `alarm in ALARM: ${names}`);
  }

  // 4. Missing signals: no data for the window, or a signal source that did not answer.
  const unavailable = input.unavailable ?? [];
  if (input.phase !== 'gate' && (input.window === undefined || (input.window !== null && unavailable.length > 0))) {
    memory = { ...memory, missingWindows: memory.missingWindows + 1 };
    stats.missingWindows = memory.missingWindows;
    const what = input.window === undefined ? 'no health signals for this window' : `signals unavailable: ${unavailable.join('; ')}`;
    if (memory.missingWindows >= config.maxMissingWindows) {
      return decide(
        Action.ROLLBACK,
        'signals-missing',
        `${what}; ${memory.missingWindows} windows in a row without complete signals (limit ${config.maxMissingWindows}): missing data is never healthy`,
      );
    }
    return decide(Action.HOLD, 'signals-missing', `${what} (${memory.missingWindows} of ${config.maxMissingWindows} before rollback)`);
  }
  if (unavailable.length > 0) {
    return decide(Action.HOLD, 'signals-missing', `signals unavailable: ${unavailable.join('; ')}`);
  }

  if (input.phase !== 'gate' && input.window) {
    const window = input.window;
    memory = { ...memory, missingWindows: 0, baseline: addSide(memory.baseline, window.old) };

    // 5. Error rates against the baseline.
    const llr5 = errorLlr(window, memory.baseline, 'errors5xx', config.degradationFactor);
    const llr4 = errorLlr(window, memory.baseline, 'errors4xx', config.degradationFactor);
    memory = { ...memory, cusum5xx: cusumStep(memory.cusum5xx, llr5), cusum4xx: cusumStep(memory.cusum4xx, llr4) };
    stats.llr5xx = llr5;
    stats.llr4xx = llr4;
    stats.newRate5xx = rate(window.new.errors5xx, window.new.requests);
    stats.oldRate5xx = rate(window.old.errors5xx, window.old.requests);
    stats.newRate4xx = rate(window.new.errors4xx, window.new.requests);
    stats.oldRate4xx = rate(window.old.errors4xx, window.old.requests);
    if (memory.cusum5xx >= threshold) {
      return decide(
        Action.ROLLBACK,
        'error-rate-5xx',
        `new side's 5XX rate is worse than old's: ${pct(stats.newRate5xx)} vs ${pct(stats.oldRate5xx)} this window; ` +
          `evidence ${memory.cusum5xx.toFixed(1)} ≥ ${threshold.toFixed(1)}`,
      );
    }
    if (memory.cusum4xx >= threshold) {
      return decide(
        Action.ROLLBACK,
        'error-rate-4xx',
        `new side's 4XX rate is worse than old's: ${pct(stats.newRate4xx)} vs ${pct(stats.oldRate4xx)} this window; ` +
          `evidence ${memory.cusum4xx.toFixed(1)} ≥ ${threshold.toFixed(1)}`,
      );
    }

    // 6. Absolute ceiling on the step's totals.
    const totals = input.stepTotals;
    const lower = wilsonLowerBound(totals.new.errors5xx, totals.new.requests);
    stats.newRate5xxLowerBound = lower;
    if (lower > config.maxErrorRate) {
      const newRate = rate(totals.new.errors5xx, totals.new.requests);
      const oldRate = rate(totals.old.errors5xx, totals.old.requests);
      if (totals.old.requests > 0 && wilsonLowerBound(totals.old.errors5xx, totals.old.requests) > config.maxErrorRate && oldRate >= newRate) {
        return decide(
          Action.PAUSE,
          'both-sides-failing',
          `both sides exceed the ${pct(config.maxErrorRate)} 5XX ceiling (new ${pct(newRate)}, old ${pct(oldRate)}): not the new side's fault`,
        );
      }
      return decide(
        Action.ROLLBACK,
        'error-ceiling-5xx',
        `new side's 5XX rate ${pct(newRate)} is above the ${pct(config.maxErrorRate)} ceiling with 99.9% confidence`,
      );
    }

    // 7. Latency.
    const reference = window.old.latencyMs ?? memory.baseline.latencyMs;
    if (window.new.latencyMs !== undefined && reference !== undefined && window.new.requests > 0) {
      const limit = Math.max(reference * config.latencyFactor, reference + config.latencyMarginMs);
      stats.newLatencyMs = window.new.latencyMs;
      stats.oldLatencyMs = reference;
      stats.latencyLimitMs = limit;
      const breached = window.new.latencyMs > limit;
      memory = { ...memory, latencyBreaches: breached ? memory.latencyBreaches + 1 : 0 };
      if (memory.latencyBreaches >= config.latencyWindows) {
        return decide(
          Action.ROLLBACK,
          'latency',
          `new side's latency ${Math.round(window.new.latencyMs)} ms exceeds the limit ${Math.round(limit)} ms ` +
            `(old ${Math.round(reference)} ms) for ${memory.latencyBreaches} windows in a row`,
        );
      }
    }
    if (window.old.latencyMs !== undefined && window.old.requests > 0) {
      memory = { ...memory, baseline: { ...memory.baseline, latencyMs: window.old.latencyMs } };
    }
  }

  // 8. Capacity.
  if (input.capacity && input.pinnedCapacity !== undefined && input.pinnedCapacity > 0) {
    const c = input.capacity;
    if (c.current < input.pinnedCapacity || !c.ready) {
      return decide(
        Action.HOLD,
        'capacity-below-pin',
        `old side at ${c.current} of ${input.pinnedCapacity} pinned units${c.ready ? '' : ' (not ready)'}: restoring before any weight increase`,
      );
    }
  }

  // 9. Inconclusive probe: hold, and pause once it has held for maxHoldMs past the bake.
  if (input.latestNewProbe?.verdict === 'inconclusive') {
    const heldFor = input.elapsedMs - input.requiredMs;
    if (heldFor >= config.maxHoldMs) {
      return decide(
        Action.PAUSE,
        'probe-inconclusive',
        `Keep-Alive probes of the new side stayed inconclusive for ${Math.round(heldFor / 1000)}s: ${input.latestNewProbe.summary}`,
      );
    }
    return decide(Action.HOLD, 'probe-inconclusive', `latest Keep-Alive probe of the new side was inconclusive: ${input.latestNewProbe.summary}`);
  }

  // A recent window had no signals: do not advance on older evidence.
  if (input.phase !== 'gate' && memory.missingWindows > 0) {
    return decide(Action.HOLD, 'signals-missing', `the last window had no signals (${memory.missingWindows} of ${config.maxMissingWindows} before rollback)`);
  }

  if (input.phase === 'gate') {
    return decide(Action.ADVANCE, 'gate-passed', 'pre-traffic gate passed: probe ok, no alarm, old side at full capacity');
  }

  // 10. Bake time.
  if (input.elapsedMs < input.requiredMs) {
    return decide(
      Action.HOLD,
      'baking',
      `${input.phase === 'soak' ? 'soaking' : 'baking'}: ${Math.round(input.elapsedMs / 1000)}s of ${Math.round(input.requiredMs / 1000)}s, healthy so far`,
    );
  }

  // 11. Enough traffic to judge.
  const served = input.stepTotals.new.requests;
  if (served < config.minRequests) {
    const heldFor = input.elapsedMs - input.requiredMs;
    if (heldFor >= config.maxHoldMs) {
      return decide(
        Action.PAUSE,
        'too-few-requests',
        `only ${served} of ${config.minRequests} requests reached the new side after holding ${Math.round(heldFor / 1000)}s: not enough evidence to advance`,
      );
    }
    return decide(Action.HOLD, 'too-few-requests', `only ${served} of ${config.minRequests} requests on the new side this step: holding rather than guessing`);
  }

  // 12. Evidence building up.
  if (Math.max(memory.cusum5xx, memory.cusum4xx) >= threshold / 2) {
    return decide(
      Action.HOLD,
      'evidence-pending',
      `error evidence against the new side is building (${Math.max(memory.cusum5xx, memory.cusum4xx).toFixed(1)} of ${threshold.toFixed(1)}): waiting for more windows`,
    );
  }

  return decide(
    Action.ADVANCE,
    'healthy',
    `${input.phase === 'soak' ? 'soak' : 'step'} passed: ${served} requests on new, ` +
      `5XX ${pct(rate(input.stepTotals.new.errors5xx, served))} vs old ${pct(rate(input.stepTotals.old.errors5xx, input.stepTotals.old.requests))}`,
  );
}

/** LLR for one error class: against the old side in the same window, or the baseline at 100 %. */
function errorLlr(window: HealthWindow, baseline: SideSignals, key: 'errors4xx' | 'errors5xx', factor: number): number {
  if (window.new.requests <= 0) return 0;
  if (window.old.requests > 0) {
    return conditionalLlr(window.new[key], window.new.requests, window.old[key], window.old.requests, factor);
  }
  if (baseline.requests < 100) return 0; // no baseline to compare with: only the absolute ceiling applies
  // Laplace smoothing keeps a baseline of zero errors from making every error infinitely surprising.
  const p0 = (baseline[key] + 1) / (baseline.requests + 2);
  return oneSampleLlr(window.new[key], window.new.requests, p0, factor);
}

/** Adds two sides' counts (latency is not additive and is left as in `a`). */
export function addSide(a: SideSignals, b: SideSignals): SideSignals {
  return {
    requests: a.requests + b.requests,
    errors4xx: a.errors4xx + b.errors4xx,
    errors5xx: a.errors5xx + b.errors5xx,
    ...(a.latencyMs !== undefined ? { latencyMs: a.latencyMs } : {}),
  };
}

function rate(errors: number, requests: number): number {
  return requests > 0 ? errors / requests : 0;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(value < 0.01 ? 2 : 1)}%`;
}
