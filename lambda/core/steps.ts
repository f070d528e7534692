/**
 * What a tick does at the gate and during a step, a promotion bake, a soak or after completion:
 * read the signals (capacity, alarms, probes, one health window), ask the judge, and act on its
 * decision (raise the weight after a fresh probe, roll back, pause, hold, move on). Every routing
 * change goes through `Routing` (recorded before it is made) and every capacity change through
 * `CapacityKeeper`. Split from controller.ts, which loads, saves, settles and applies commands.
 */
import type { CapacityKeeper } from './capacity';
import { LostRaceError, type Draft } from './draft';
import { DEFAULT_JUDGE_CONFIG, SHARED_OUTAGE, addSide, judge } from './judge';
import type { JudgeInput, JudgePhase, Judgement } from './judge';
import { Action, MigrationStatus as S } from './model';
import type { Decision, MigrationStatus } from './model';
import type { AlarmReadPurpose, AlarmSignal, CapacityStatus, Clock, HealthPort, HealthWindow, ProbeOutcome, ProbePort, TrafficPort } from './ports';
import { ZERO_SIDE, type MigrationRecord } from './record';
import { notePeak } from './residual';
import { TrafficShiftError, errorMessage, sameWeight, type Routing } from './routing';

/**
 * How long the controller may go without reading a health window before the evidence it gathered
 * no longer counts (the controller was not running, or its ticks kept failing): the judge's
 * missing-data limit plus one window.
 */
export function evidenceGapMs(record: Pick<MigrationRecord, 'plan' | 'judge'>): number {
  return (record.judge.maxMissingWindows + 1) * record.plan.healthWindowMs;
}

/** The ports a step reads. */
export interface StepPorts {
  readonly clock: Clock;
  readonly traffic: TrafficPort;
  readonly health: HealthPort;
  readonly probes: ProbePort;
}

export class Steps {
  constructor(
    private readonly deps: StepPorts,
    private readonly routing: Routing,
    private readonly capacity: CapacityKeeper,
  ) {}


  /** Pre-traffic gate: capacity pinned and ready, alarms quiet, fresh probes of both sides. */
  async gate(draft: Draft): Promise<void> {
    const unavailable: string[] = [];
    const capacity = await this.readOrNote('capacity', unavailable, () => this.capacity.ensure(draft));
    const alarms = await this.readAlarms(draft, unavailable, true);
    // Probe both sides: a desync on the old side too means the problem is not the new version.
    const probes = [await this.probeNow('new'), await this.probeNow('old')];
    const latestNewProbe = probes[0]!;
    draft.patch({ latestNewProbe, probesSeenUntilMs: Math.max(draft.record.probesSeenUntilMs, draft.now) });
    const notReady = await this.prepareTraffic(draft, unavailable);
    const elapsedMs = draft.now - (draft.record.phaseStartedAtMs ?? draft.now);
    let judgement = judge({
      config: draft.record.judge,
      phase: 'gate',
      elapsedMs,
      requiredMs: 0,
      window: null,
      stepTotals: draft.record.stepTotals,
      alarms,
      probes,
      latestNewProbe,
      unavailable,
      ...this.capacityInput(draft.record, capacity),
      memory: draft.record.judgeMemory,
    });
    if (judgement.decision.action === Action.ADVANCE && notReady) {
      // Everything else would let the first shift happen: only the routing is not ready yet.
      judgement = { ...judgement, decision: { ...judgement.decision, action: Action.HOLD, code: 'traffic-preparing', reason: notReady } };
    }
    if (judgement.decision.action === Action.HOLD && elapsedMs >= draft.record.judge.maxHoldMs) {
      // A gate that cannot pass (an alarm that never clears, capacity that never comes back)
      // should not wait silently forever: hand it to a human.
      judgement = {
        ...judgement,
        decision: {
          ...judgement.decision,
          action: Action.PAUSE,
          reason: `gate held for ${Math.round(elapsedMs / 1000)}s: ${judgement.decision.reason}`,
        },
      };
    }
    await this.act(draft, judgement, 'gate');
  }

  /**
   * Readies the routing for the first shift (`TrafficPort.prepare`, e.g. a DNS TTL lowered and the
   * old TTL waited out). Returns why the gate must wait, or undefined when the routing is ready.
   * The time it will be ready is kept in the record: a later tick that finds nothing left to
   * change (the TTL is already low) still waits until then. A failed call is noted as unavailable
   * (the judge holds on it) and also blocks the shift.
   */
  private async prepareTraffic(draft: Draft, unavailable: string[]): Promise<string | undefined> {
    const prepare = this.deps.traffic.prepare?.bind(this.deps.traffic);
    if (!prepare) return undefined;
    const preparation = await this.readOrNote('traffic preparation', unavailable, prepare);
    if (!preparation) return 'the routing could not be readied for the first shift';
    const readyAtMs = Math.max(draft.record.trafficReadyAtMs ?? 0, preparation.readyAtMs ?? 0);
    if (readyAtMs > 0 && readyAtMs !== draft.record.trafficReadyAtMs) draft.patch({ trafficReadyAtMs: readyAtMs });
    if (!preparation.ready) return preparation.reason;
    if (draft.now < readyAtMs) {
      return `${preparation.reason}; waiting ${Math.ceil((readyAtMs - draft.now) / 1000)} s more, until caches that hold the old answer have expired`;
    }
    return undefined;
  }

  /**
   * Reads the user's alarms. The read is a `confirm` (the adapter asks the alarms' source) when
   * this tick may move the migration on (the gate, a finished bake or soak) or the last
   * confirmation is older than `alarmRecheckMs`; otherwise it is a routine `watch`, which an
   * adapter that is sent state changes as they happen answers without a call. An alarm entering
   * ALARM reaches the judge either way: its state change event both records it and runs a tick.
   */
  private async readAlarms(draft: Draft, unavailable: string[], mayMoveOn: boolean): Promise<readonly AlarmSignal[]> {
    const { judge: config, alarmsConfirmedAtMs } = draft.record;
    const recheckMs = config.alarmRecheckMs ?? DEFAULT_JUDGE_CONFIG.alarmRecheckMs;
    const due = alarmsConfirmedAtMs === undefined || draft.now - alarmsConfirmedAtMs >= recheckMs;
    const purpose: AlarmReadPurpose = mayMoveOn || due ? 'confirm' : 'watch';
    const alarms = await this.readOrNote('alarms', unavailable, () => this.deps.health.readAlarms(purpose));
    if (alarms && purpose === 'confirm') draft.patch({ alarmsConfirmedAtMs: draft.now });
    return alarms ?? [];
  }

  /** A probe that failed to run is inconclusive, never ok. */
  private async probeNow(side: 'old' | 'new'): Promise<ProbeOutcome> {
    try {
      return await this.deps.probes.probeNow(side);
    } catch (error) {
      return { side, verdict: 'inconclusive', atMs: this.deps.clock.now(), summary: `probe could not run: ${errorMessage(error)}`, findings: 0 };
    }
  }

  /** Runs a read; on failure notes the source as unavailable (never healthy) and returns undefined. */
  private async readOrNote<T>(source: string, unavailable: string[], read: () => Promise<T>): Promise<T | undefined> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof TrafficShiftError || error instanceof LostRaceError) throw error;
      unavailable.push(`${source}: ${errorMessage(error)}`);
      return undefined;
    }
  }

  /**
   * After a gap in the controller's watch (it did not run, or its ticks kept failing, for longer
   * than `evidenceGapMs`), nothing seen before the gap counts: the routing is checked against the
   * record (a read only after a gap, never on a steady tick) and the step's evidence and bake
   * clock start again. Returns true when it did so.
   */
  private async restartAfterGap(draft: Draft): Promise<boolean> {
    const record = draft.record;
    const lastWatched = record.lastWindowReadMs ?? record.phaseStartedAtMs;
    if (lastWatched === undefined) return false;
    const gapMs = draft.now - lastWatched;
    if (gapMs <= evidenceGapMs(record)) return false;
    const current = await this.deps.traffic.getWeight().catch((error: unknown) => {
      throw new TrafficShiftError(`reading the routing after a gap of ${Math.round(gapMs / 1000)}s failed: ${errorMessage(error)}`, error);
    });
    if (!sameWeight(current.weight, record.weight)) {
      this.routing.outside(draft, current);
      return true;
    }
    const now = draft.current();
    draft.move(
      record.status,
      'evidence-reset',
      {
        code: 'evidence-gap',
        reason: `no health window was read for ${Math.round(gapMs / 1000)}s (limit ${Math.round(evidenceGapMs(record) / 1000)}s): evidence from before the gap no longer counts, so the ${record.status === S.BAKING ? 'bake' : 'watch'} starts again at ${record.weight}% (routing checked: ${current.weight}%)`,
      },
      {
        trafficRevision: current.revision,
        phaseStartedAtMs: now,
        lastWindowEndMs: now,
        lastWindowReadMs: now,
        stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
      },
    );
    return true;
  }

  /** Baking, promoted, soaking, complete: watch, judge, act. */
  async watch(draft: Draft): Promise<void> {
    if (await this.restartAfterGap(draft)) return;
    const record = draft.record;
    const unavailable: string[] = [];
    const phase: JudgePhase = record.status === S.SOAKING || record.status === S.COMPLETE ? 'soak' : 'bake';
    const requiredMs =
      record.status === S.SOAKING
        ? record.plan.soakMs
        : record.status === S.COMPLETE
          ? 0
          : (record.plan.steps[record.step]?.bakeMs ?? record.plan.healthWindowMs);
    const phaseStart = record.phaseStartedAtMs ?? draft.now;
    const capacity = await this.readOrNote('capacity', unavailable, () => this.capacity.ensure(draft));
    const recent = (await this.readOrNote('probe results', unavailable, () => this.deps.probes.recentResults(record.probesSeenUntilMs))) ?? [];
    const fresh = recent.filter((p) => p.atMs > record.probesSeenUntilMs);
    const latestNewProbe = [...fresh].reverse().find((p) => p.side === 'new') ?? record.latestNewProbe;
    const seenUntil = fresh.reduce((max, p) => Math.max(max, p.atMs), record.probesSeenUntilMs);
    draft.patch({ probesSeenUntilMs: seenUntil, ...(latestNewProbe ? { latestNewProbe } : {}) });

    // Judge a statistical window only once a whole health window has passed; in between, the
    // fast checks (probes, alarms, capacity) still run on every tick.
    const windowStart = record.lastWindowEndMs ?? phaseStart;
    const lastRead = record.lastWindowReadMs ?? phaseStart;
    let window: HealthWindow | undefined | null = null;
    if (draft.now - lastRead >= record.plan.healthWindowMs) {
      draft.patch({ lastWindowReadMs: draft.now });
      // Once the judge has set its slow-request threshold, the source counts requests above it.
      const slowerThanMs = record.judgeMemory.slowThresholdMs;
      try {
        window = await this.deps.health.readWindow(windowStart, draft.now, slowerThanMs !== undefined ? { slowerThanMs } : undefined);
      } catch (error) {
        unavailable.push(`health window: ${errorMessage(error)}`);
        window = undefined;
      }
      if (window && window.toMs <= windowStart) {
        // The source has no completed period yet (e.g. CloudWatch's ingestion delay at the start
        // of a step): nothing new to judge, and nothing missing either.
        window = null;
      } else if (window) {
        // Continue from where the data really ended (a source may return only completed
        // periods), so that every request is counted once and a period still filling up is
        // judged later, whole. On missing data the start stays put: late data is still counted.
        notePeak(draft, window);
        draft.patch({
          lastWindowEndMs: Math.min(window.toMs, draft.now),
          stepTotals: { old: addSide(record.stepTotals.old, window.old), new: addSide(record.stepTotals.new, window.new) },
        });
      }
    }

    // The bake clock runs on data, not on the wall clock: a step has baked as long as the health
    // data judged since it began covers, so time without data (a source that lags, a controller
    // that was not running) never counts towards it.
    const coveredMs = Math.max(0, (draft.record.lastWindowEndMs ?? phaseStart) - phaseStart);
    // Before the bake is covered the judge cannot advance, so this tick cannot move the migration on.
    const mayMoveOn = record.status !== S.COMPLETE && coveredMs >= requiredMs;
    const alarms = await this.readAlarms(draft, unavailable, mayMoveOn);
    const input: JudgeInput = {
      config: record.judge,
      phase,
      elapsedMs: coveredMs,
      requiredMs,
      window,
      stepTotals: draft.record.stepTotals,
      alarms,
      probes: fresh,
      ...(latestNewProbe ? { latestNewProbe } : {}),
      unavailable,
      ...this.capacityInput(record, capacity),
      memory: record.judgeMemory,
    };
    let judgement = judge(input);
    if (judgement.needsOldSideCheck) {
      // The old side takes no traffic, so only its synthetic health can tell a regression from
      // an outage both sides share: probe it now and judge the same window again.
      const oldSideCheck = await this.probeNow('old');
      judgement = judge({ ...input, oldSideCheck });
    }
    await this.act(draft, judgement, phase, window !== null);
  }

  /** Carries out a judgement. */
  private async act(draft: Draft, judgement: Judgement, phase: JudgePhase, judgedWindow = false): Promise<void> {
    const { decision } = judgement;
    const previousCode = draft.record.lastDecision?.code;
    draft.decision = decision;
    draft.patch({ judgeMemory: judgement.memory, lastDecision: decision });
    const status = draft.record.status;

    switch (decision.action) {
      case Action.ROLLBACK:
        await this.rollback(draft, decision, 'rolled-back');
        return;
      case Action.PAUSE:
        draft.move(S.PAUSED, 'paused', decision, { pausedFrom: status });
        return;
      case Action.HOLD:
        if (decision.code === SHARED_OUTAGE && previousCode !== SHARED_OUTAGE) {
          // Not the new version's fault, so no rollback; but people should know (it is notified).
          draft.move(status, SHARED_OUTAGE, decision);
          return;
        }
        // Every judged window is a decision worth keeping; so is a change of reason. Fast-check
        // ticks that only confirm "still baking" would flood the log and are not recorded.
        if (judgedWindow || previousCode !== decision.code) draft.move(status, 'held', decision);
        return;
      case Action.ADVANCE:
        break;
    }

    if (status === S.COMPLETE) {
      if (judgedWindow) draft.move(status, 'watched', decision);
      return;
    }
    if (status === S.SOAKING) {
      if (draft.record.plan.teardown === 'after-soak') {
        draft.move(S.COMPLETE, 'completed', decision);
        draft.move(S.TORN_DOWN, 'torn-down', { code: 'teardown-after-soak', reason: 'soak passed; plan releases the old side after the soak' });
        await this.capacity.release(draft);
      } else {
        draft.move(S.COMPLETE, 'completed', {
          ...decision,
          reason: `${decision.reason}; old side stays at full capacity until an explicit teardown`,
        });
      }
      return;
    }
    if (status === S.PROMOTED) {
      const now = draft.current();
      draft.move(S.SOAKING, 'soaking', decision, {
        phaseStartedAtMs: now,
        lastWindowEndMs: now,
        lastWindowReadMs: now,
        stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
      });
      return;
    }

    // Gate passed or a step baked: raise the weight, after a fresh probe of the new side.
    const nextStep = draft.record.step + 1;
    const target = draft.record.plan.steps[nextStep];
    if (!target) {
      // Cannot happen with a checked record (the last step is 100 % and leads to PROMOTED).
      throw new Error(`plan has no step ${nextStep + 1} (migration ${draft.record.id})`);
    }
    if (phase !== 'gate' && !(await this.probeBeforeRaising(draft, decision, status, previousCode))) return;
    await this.routing.change(draft, {
      kind: 'advance',
      weight: target.weight,
      step: nextStep,
      then: target.weight >= 100 ? S.PROMOTED : S.BAKING,
      type: target.weight >= 100 ? 'promoted' : 'advanced',
      decision: { ...decision, reason: `${decision.reason} → step ${nextStep + 1} of ${draft.record.plan.steps.length}: ${target.weight}%` },
    });
  }

  /**
   * A fresh probe of the new side right before its weight rises. Returns true when it is ok; on
   * a desync it rolls back, on an inconclusive result it holds (and pauses past `maxHoldMs`).
   */
  private async probeBeforeRaising(draft: Draft, decision: Decision, status: MigrationStatus, previousCode: string | undefined): Promise<boolean> {
    const probe = await this.probeNow('new');
    draft.patch({ latestNewProbe: probe, probesSeenUntilMs: Math.max(draft.record.probesSeenUntilMs, probe.atMs) });
    const signals = { ...decision.signals, probes: [probe] };
    if (probe.verdict === 'desync') {
      await this.rollback(
        draft,
        { action: Action.ROLLBACK, code: 'probe-desync', reason: `Keep-Alive probe before raising the weight found a desync on the new side: ${probe.summary}`, signals },
        'rolled-back',
      );
      return false;
    }
    if (probe.verdict === 'ok') return true;
    const heldFor = draft.now - (draft.record.phaseStartedAtMs ?? draft.now) - (draft.record.plan.steps[draft.record.step]?.bakeMs ?? 0);
    if (heldFor >= draft.record.judge.maxHoldMs) {
      draft.move(
        S.PAUSED,
        'paused',
        {
          code: 'probe-inconclusive',
          reason: `Keep-Alive probes before raising the weight stayed ${probe.verdict} for ${Math.round(heldFor / 1000)}s: ${probe.summary}`,
          signals,
        },
        { pausedFrom: status },
      );
      return false;
    }
    const hold: Decision = {
      action: Action.HOLD,
      code: 'probe-inconclusive',
      reason: `Keep-Alive probe before raising the weight was ${probe.verdict}: ${probe.summary}`,
      signals,
    };
    draft.decision = hold;
    if (previousCode !== hold.code) draft.move(status, 'held', hold);
    draft.patch({ lastDecision: hold });
    return false;
  }

  /** Weight 0 now. Never waits for capacity or anything else; replaces any change in flight. */
  async rollback(draft: Draft, decision: Decision, type: string): Promise<void> {
    draft.decision = decision;
    draft.patch({ lastDecision: decision });
    await this.routing.change(draft, {
      kind: 'rollback',
      weight: 0,
      step: draft.record.step,
      then: S.ROLLED_BACK,
      type,
      decision,
    });
  }

  private capacityInput(
    record: MigrationRecord,
    capacity: CapacityStatus | undefined,
  ): { capacity?: CapacityStatus; pinnedCapacity?: number } {
    if (!capacity || record.pinnedCapacity === undefined) return {};
    return { capacity, pinnedCapacity: record.pinnedCapacity };
  }
}
