/**
 * The judge: turns one window of health signals (plus probe verdicts, alarms and capacity) into
 * advance / hold / rollback / pause, with the reason and the evidence.
 *
 * ## How it decides (first rule that applies wins; rollbacks come first and never wait)
 * 1. A probe found a desync on the new side → rollback. A correctness failure needs no statistics.
 * 2. A probe found a desync on the old side too → pause (rolling back would not help; a human decides).
 * 3. One of the user's alarms is in ALARM → rollback (before the first shift: hold, since the new
 *    side cannot be the cause yet).
 * 4. The window has no data, or a signal source did not answer → hold; when `maxMissingWindows`
 *    of the last `missingSpanWindows` windows lacked complete signals → rollback. Missing data is
 *    never healthy, and counting over a sliding span catches a source that fails every other time.
 * 5. Four sequential tests, each a CUSUM of per-window log-likelihood ratios with threshold
 *    h = ln(falseAlarmWindows) (evidence.ts, stats.ts). A test reaching h rolls back:
 *    - 5XX and 4XX rates, new against old in the same window (a conditional binomial test: a
 *      traffic pattern or an outage that hits both sides alike cancels out; exact at low traffic);
 *    - latency: the share of requests slower than the old side's p99 (the median of its last 9
 *      windows, + `latencyMarginMs`), new against old, by the same conditional test on tail
 *      counts, never on two point percentiles;
 *    - the 5XX ceiling: the new side's rate is `maxErrorRate` (null) or `CEILING_FACTOR` times it
 *      (alternative); each failure adds ln 4, so it needs ≥ 9 failures, and a window with ≥ 20 %
 *      5XX over ≥ 100 requests (or 10 of 10) rolls back at once. Windows in which the old side
 *      fails as well do not count towards it.
 *    When the old side takes no traffic (100 %), the new side is compared with the old side's
 *    baseline from earlier windows (its upper confidence bound: an estimate that happens to be
 *    low must not make healthy traffic look worse), which cannot tell a regression from an
 *    outage both would share. So before a 5XX rollback at 100 % the old side's synthetic health
 *    is checked with a fresh probe: if the old side answers 5XX far above its usual rate and
 *    about as often as the new side, it is a shared outage → hold and reset that evidence; if it
 *    is healthy, or the probe cannot tell, → rollback (the safe default). 4XX and latency at
 *    100 % roll back on the baseline alone (a probe cannot judge those).
 * 6. The old side is failing too (its 5XX share in the window is above the ceiling test's
 *    break-even point, or its 5XX count over its last 5 windows is far above its own baseline) →
 *    hold and alert: a shared outage or degradation is not the new version's fault, and no step
 *    is taken while it lasts; the judge resumes by itself within a few windows of the old side
 *    recovering.
 * 7. The old side is below its pinned capacity or not ready → hold (the controller restores it).
 * 8. The latest probe of the new side was inconclusive → hold (pause after `maxHoldMs` past the bake).
 * 9. The last window had no signals → hold: no step forward on older evidence.
 * 10. Gate: an alarm with INSUFFICIENT_DATA → hold; otherwise → advance (the first shift).
 * 11. Bake time not over → hold.
 * 12. An alarm in INSUFFICIENT_DATA → hold (pause after `maxHoldMs` past the bake): an alarm that
 *     never had data proves nothing.
 * 13. Fewer than `minRequests` requests on the new side in this step → hold (it does not guess);
 *     after `maxHoldMs` of holding for that reason → pause.
 * 14. Evidence is building (any test above h/2) → hold.
 * 15. Otherwise → advance.
 *
 * ## False-rollback rate
 * Page's CUSUM with likelihood-ratio increments has an average run length under H0 of at least
 * e^h windows (Lorden 1971). With h = ln(falseAlarmWindows) and the default of 100,000, each of
 * the four tests triggers a statistical rollback on healthy traffic at most once per 100,000
 * judged windows on average; a 100-window migration has at most about a 0.4 % chance of one from
 * any test. `npm run bench:judge` measures the real rates through the controller. The bound holds
 * when requests fail independently; correlated bursts that hit only the new side are, correctly,
 * evidence against it.
 *
 * ## Sample floors
 * A test needs several events before it can roll back: at a 1 % weight each new-side 5XX adds at
 * most ln(degradationFactor) ≈ 0.69, so ≥ 17 failures; the ceiling needs ≥ 9. Holding for too few
 * requests (`minRequests`) is what stops an idle step from advancing.
 */
import { BASELINE_MIN_REQUESTS, baselineRate, rate, weighWindow } from './evidence';
import { tailStatistic, wilsonUpperBound } from './stats';
import {
  CEILING_FACTOR,
  DEFAULT_JUDGE_CONFIG,
  INITIAL_JUDGE_MEMORY,
  JudgeConfigError,
  RETIRED_JUDGE_SETTINGS,
  resolveJudgeConfig,
  type JudgeConfig,
  type JudgeMemory,
} from './judge-config';
import { Action, type Decision, type Signals } from './model';
import type { AlarmSignal, CapacityStatus, HealthWindow, ProbeHealth, ProbeOutcome, SideSignals } from './ports';

export { DEFAULT_JUDGE_CONFIG, INITIAL_JUDGE_MEMORY, JudgeConfigError, RETIRED_JUDGE_SETTINGS, resolveJudgeConfig };
export type { JudgeConfig, JudgeMemory };
export { addSide } from './evidence';

/** The code of a hold for a failure both sides share; the controller also notifies it, as an event of this type. */
export const SHARED_OUTAGE = 'shared-outage';

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
   * A fresh probe of the old side, run because the judge asked for one (`needsOldSideCheck`):
   * its synthetic health tells a shared outage from a regression when the old side takes no traffic.
   */
  readonly oldSideCheck?: ProbeOutcome;
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
  /**
   * The decision is a hold until the old side's synthetic health is known: run a fresh probe of
   * the old side and judge the same input again with it as `oldSideCheck`.
   */
  readonly needsOldSideCheck?: boolean;
}

/** Judges one window. Pure: same input, same output. */
export function judge(input: JudgeInput): Judgement {
  const { config } = input;
  const h = Math.log(config.falseAlarmWindows);
  let memory: JudgeMemory = input.memory;
  let stats: Record<string, number> = {};
  const signals = (): Signals => ({
    ...(input.window ? { window: input.window } : {}),
    stepTotals: { fromMs: 0, toMs: 0, old: input.stepTotals.old, new: input.stepTotals.new },
    alarms: input.alarms,
    probes: input.oldSideCheck ? [...input.probes, input.oldSideCheck] : input.probes,
    ...(input.capacity ? { capacity: input.capacity } : {}),
    stats: {
      ...stats,
      cusum5xx: memory.cusum5xx,
      cusum4xx: memory.cusum4xx,
      cusumSlow: memory.cusumSlow,
      cusumCeiling: memory.cusumCeiling,
      threshold: h,
    },
  });
  const decide = (action: Action, code: string, reason: string): Judgement => ({
    decision: { action, code, reason, signals: signals() },
    memory,
  });
  const heldPastBake = input.elapsedMs - input.requiredMs;
  const afterHolding = (code: string, reason: string, pauseReason: string): Judgement =>
    heldPastBake >= config.maxHoldMs ? decide(Action.PAUSE, code, pauseReason) : decide(Action.HOLD, code, reason);

  /**
   * A 5XX test tripped while the old side takes no traffic: only the old side's synthetic health
   * can tell a regression from an outage both sides share.
   */
  const sharedOrRollback = (code: string, reason: string): Judgement => {
    const check = input.oldSideCheck;
    if (!check) {
      return {
        ...decide(Action.HOLD, 'old-side-check', `${reason}; checking the old side's synthetic health before rolling back`),
        needsOldSideCheck: true,
      };
    }
    const health = check.health;
    if (health && oldSideFailing(health, stats.newRate5xx ?? 0, memory, config)) {
      // Shared: the evidence from this outage must not count against the new side later.
      memory = { ...memory, cusum5xx: 0, cusumCeiling: 0, oldFailing: true };
      return decide(
        Action.HOLD,
        SHARED_OUTAGE,
        `${reason}; but a probe of the old side got ${health.errors5xx} 5XX in ${health.requests} answers: a shared outage, not the new version's fault; holding until both recover`,
      );
    }
    const seen = health
      ? `a probe of the old side got ${health.errors5xx} 5XX in ${health.requests} answers`
      : `the old side's health is unknown (${check.verdict}: ${check.summary}), so rolling back is the safe choice`;
    return decide(Action.ROLLBACK, code, `${reason}; ${seen}`);
  };

  // 1–2. Probes: correctness failures.
  const newDesync = input.probes.find((p) => p.side === 'new' && p.verdict === 'desync');
  if (newDesync) {
    return decide(Action.ROLLBACK, 'probe-desync', `Keep-Alive probe found a desync on the new side: ${newDesync.summary}`);
  }
  const oldDesync = [...input.probes, ...(input.oldSideCheck ? [input.oldSideCheck] : [])].find((p) => p.side === 'old' && p.verdict === 'desync');
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

  // 4. Missing signals, counted over a sliding span of windows.
  const unavailable = input.unavailable ?? [];
  const judgesWindow = input.phase !== 'gate' && input.window !== null;
  if (judgesWindow) {
    const missing = input.window === undefined || unavailable.length > 0;
    const history = (memory.missingHistory + (missing ? '1' : '0')).slice(-config.missingSpanWindows);
    memory = { ...memory, missingHistory: history, missingWindows: countMissing(history) };
    if (missing) {
      stats.missingWindows = memory.missingWindows;
      const what = input.window === undefined ? 'no health signals for this window' : `signals unavailable: ${unavailable.join('; ')}`;
      const span = `${memory.missingWindows} of the last ${history.length} windows without complete signals`;
      if (memory.missingWindows >= config.maxMissingWindows) {
        return decide(
          Action.ROLLBACK,
          'signals-missing',
          `${what}; ${span} (limit ${config.maxMissingWindows} in ${config.missingSpanWindows}): missing data is never healthy`,
        );
      }
      return decide(Action.HOLD, 'signals-missing', `${what}; ${span} (rollback at ${config.maxMissingWindows})`);
    }
  } else if (unavailable.length > 0) {
    return decide(Action.HOLD, 'signals-missing', `signals unavailable: ${unavailable.join('; ')}`);
  }

  // 5. The sequential tests.
  if (judgesWindow && input.window) {
    const window = input.window;
    const evidence = weighWindow(window, memory, config);
    memory = evidence.memory;
    stats = { ...stats, ...evidence.stats };
    const rates = `${pct(stats.newRate5xx ?? 0)} vs ${evidence.concurrent ? pct(stats.oldRate5xx ?? 0) : `the old side's baseline ${pct(stats.baselineRate5xx ?? 0)}`}`;
    const against = (cusum: number) => `evidence ${cusum.toFixed(1)} ≥ ${h.toFixed(1)}`;

    if (memory.cusum5xx >= h) {
      const reason = `new side's 5XX rate is worse than old's: ${rates} this window; ${against(memory.cusum5xx)}`;
      return evidence.concurrent ? decide(Action.ROLLBACK, 'error-rate-5xx', reason) : sharedOrRollback('error-rate-5xx', reason);
    }
    if (memory.cusum4xx >= h) {
      const old4xx = evidence.concurrent ? pct(stats.oldRate4xx ?? 0) : `the old side's baseline ${pct(rate(memory.baseline.errors4xx, memory.baseline.requests))}`;
      return decide(
        Action.ROLLBACK,
        'error-rate-4xx',
        `new side's 4XX rate is worse than old's: ${pct(stats.newRate4xx ?? 0)} vs ${old4xx} this window; ${against(memory.cusum4xx)}`,
      );
    }
    if (memory.cusumSlow >= h) {
      const oldShare = evidence.concurrent ? (stats.oldSlowShare ?? 0) : rate(memory.baselineSlow.slow, memory.baselineSlow.requests);
      const p99 =
        window.new.latencyMs !== undefined
          ? ` (p99 ${Math.round(window.new.latencyMs)} ms vs ${window.old.latencyMs !== undefined ? `${Math.round(window.old.latencyMs)} ms` : 'none on the old side'})`
          : '';
      return decide(
        Action.ROLLBACK,
        'latency',
        `new side is slower: ${pct(stats.newSlowShare ?? 0)} of its requests took over ${stats.slowThresholdMs ?? '?'} ms vs ${pct(oldShare)} on the old side${p99}; ${against(memory.cusumSlow)}`,
      );
    }
    if (memory.cusumCeiling >= h) {
      const reason =
        `new side's 5XX rate ${pct(stats.newRate5xx ?? 0)} is above the ${pct(config.maxErrorRate)} ceiling ` +
        `(tested against ${pct(Math.min(0.99, config.maxErrorRate * CEILING_FACTOR))}); ${against(memory.cusumCeiling)}`;
      return evidence.concurrent
        ? decide(Action.ROLLBACK, 'error-ceiling-5xx', `${reason}; the old side is not failing (${pct(stats.oldRate5xx ?? 0)})`)
        : sharedOrRollback('error-ceiling-5xx', reason);
    }
  }

  // 6. A failure both sides share: no step forward while it lasts, and no blame.
  if (input.phase !== 'gate' && memory.oldFailing) {
    const recent = memory.oldRecent.reduce((sum, w) => ({ requests: sum.requests + w.requests, errors5xx: sum.errors5xx + w.errors5xx }), { requests: 0, errors5xx: 0 });
    // This window's rate when the old side took traffic in it; else its recent windows' (it may be idle at 100 %).
    const oldNow = input.window && input.window.old.requests > 0 ? (stats.oldRate5xx ?? 0) : rate(recent.errors5xx, recent.requests);
    return decide(
      Action.HOLD,
      SHARED_OUTAGE,
      `the old side is failing too (5XX ${pct(oldNow)}, its baseline ${pct(rate(memory.baseline.errors5xx, memory.baseline.requests))}): ` +
        `a shared outage is not the new version's fault; holding until the old side recovers`,
    );
  }

  // 7. Capacity.
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

  // 8. Inconclusive probe.
  if (input.latestNewProbe?.verdict === 'inconclusive') {
    return afterHolding(
      'probe-inconclusive',
      `latest Keep-Alive probe of the new side was inconclusive: ${input.latestNewProbe.summary}`,
      `Keep-Alive probes of the new side stayed inconclusive for ${Math.round(heldPastBake / 1000)}s: ${input.latestNewProbe.summary}`,
    );
  }

  // 9. The last window had no signals: do not step forward on older evidence.
  if (input.phase !== 'gate' && memory.missingHistory.endsWith('1')) {
    return decide(
      Action.HOLD,
      'signals-missing',
      `the last window had no complete signals (${memory.missingWindows} of the last ${memory.missingHistory.length}; rollback at ${config.maxMissingWindows})`,
    );
  }

  // 10. Gate.
  const noData = input.alarms.filter((a) => a.state === 'INSUFFICIENT_DATA').map((a) => a.name);
  if (input.phase === 'gate') {
    if (noData.length > 0) {
      return decide(Action.HOLD, 'alarm-no-data', `alarm without data (INSUFFICIENT_DATA) before any traffic moved: ${noData.join(', ')}; it proves nothing yet`);
    }
    return decide(Action.ADVANCE, 'gate-passed', 'pre-traffic gate passed: probe ok, no alarm, old side at full capacity');
  }

  // 11. Bake time.
  if (input.elapsedMs < input.requiredMs) {
    return decide(
      Action.HOLD,
      'baking',
      `${input.phase === 'soak' ? 'soaking' : 'baking'}: ${Math.round(input.elapsedMs / 1000)}s of ${Math.round(input.requiredMs / 1000)}s, healthy so far`,
    );
  }

  // 12. Alarms without data.
  if (noData.length > 0) {
    return afterHolding(
      'alarm-no-data',
      `alarm without data (INSUFFICIENT_DATA): ${noData.join(', ')}; not stepping forward on an alarm that proves nothing`,
      `alarm stayed without data (INSUFFICIENT_DATA) for ${Math.round(heldPastBake / 1000)}s past the bake: ${noData.join(', ')}`,
    );
  }

  // 13. Enough traffic to judge.
  const served = input.stepTotals.new.requests;
  if (served < config.minRequests) {
    return afterHolding(
      'too-few-requests',
      `only ${served} of ${config.minRequests} requests on the new side this step: holding rather than guessing`,
      `only ${served} of ${config.minRequests} requests reached the new side after holding ${Math.round(heldPastBake / 1000)}s: not enough evidence to advance`,
    );
  }

  // 14. Evidence building up.
  const tests: ReadonlyArray<readonly [string, number]> = [
    ['5XX', memory.cusum5xx],
    ['4XX', memory.cusum4xx],
    ['latency', memory.cusumSlow],
    ['5XX ceiling', memory.cusumCeiling],
  ];
  const building = tests.filter(([, value]) => value >= h / 2);
  if (building.length > 0) {
    return decide(
      Action.HOLD,
      'evidence-pending',
      `evidence against the new side is building (${building.map(([name, value]) => `${name} ${value.toFixed(1)}`).join(', ')} of ${h.toFixed(1)}): waiting for more windows`,
    );
  }

  // 15. Healthy.
  return decide(
    Action.ADVANCE,
    'healthy',
    `${input.phase === 'soak' ? 'soak' : 'step'} passed: ${served} requests on new, ` +
      `5XX ${pct(rate(input.stepTotals.new.errors5xx, served))} vs old ${pct(rate(input.stepTotals.old.errors5xx, input.stepTotals.old.requests))}`,
  );
}

/**
 * The old side's synthetic health shows it failing like the new side: at least 2 of the probe's
 * answers were 5XX, so many that its usual rate would give them with a chance below 1/1,000, and
 * the new side's rate is within `degradationFactor` of what the old side may have (the upper bound
 * of its probe rate). A regression that only the new side has leaves the old side's probe near its
 * usual rate. The usual rate is its baseline (upper bound), never above the ceiling `maxErrorRate`;
 * the ceiling itself when the old side never served enough traffic for a baseline.
 */
export function oldSideFailing(health: ProbeHealth, newRate: number, memory: JudgeMemory, config: JudgeConfig): boolean {
  // (No answers give a tail statistic of 0: not failing.)
  if (health.errors5xx < 2) return false;
  const usual =
    memory.baseline.requests >= BASELINE_MIN_REQUESTS
      ? Math.min(baselineRate(memory.baseline.errors5xx, memory.baseline.requests), config.maxErrorRate)
      : config.maxErrorRate;
  if (tailStatistic(health.errors5xx, health.requests, usual) < Math.log(1000)) return false;
  return wilsonUpperBound(health.errors5xx, health.requests, PROBE_Z) >= newRate / config.degradationFactor;
}

/** z of the probe rate's upper bound (one-sided 99.9 %): the probe's ~130 answers are a small sample. */
const PROBE_Z = 3.09;

function countMissing(history: string): number {
  let count = 0;
  for (const c of history) if (c === '1') count++;
  return count;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(value < 0.01 ? 2 : 1)}%`;
}
