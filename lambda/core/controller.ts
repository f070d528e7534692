/**
 * The controller: one reconcile step ("tick") of a migration at a time. It loads the record,
 * reads what it needs through the ports, asks the judge, acts (weight, capacity), and saves the
 * record together with the events that explain what it did.
 *
 * Safe to run twice at once: the record is saved with a version check (a second writer gets
 * `StaleStateError` and its tick becomes a no-op), and weights are set with the routing revision
 * (a stale revision fails instead of overwriting). Idempotent: a tick that finds nothing new to
 * judge changes nothing.
 */
import { DEFAULT_JUDGE_CONFIG, INITIAL_JUDGE_MEMORY, addSide, judge, resolveJudgeConfig } from './judge';
import type { JudgeConfig, JudgeMemory, JudgePhase, Judgement } from './judge';
import { transition } from './machine';
import { Action, Command, MigrationStatus as S, TERMINAL_STATUSES } from './model';
import type { Decision, MigrationEvent, MigrationStatus } from './model';
import { MigrationPlan, type PlanSpec } from './plan';
import { RevisionConflictError, StaleStateError } from './ports';
import type {
  AlarmReadPurpose,
  AlarmSignal,
  CapacityPort,
  CapacityStatus,
  Clock,
  EventSink,
  HealthPort,
  HealthWindow,
  ProbeOutcome,
  ProbePort,
  SideSignals,
  StateStore,
  TrafficPort,
} from './ports';

/** What a caller gives to start a migration. */
export interface MigrationSpec {
  /** Unique id of the migration (e.g. `fn:alias:version`). */
  readonly id: string;
  readonly plan: PlanSpec;
  /**
   * Overrides of the judge's settings.
   * @default DEFAULT_JUDGE_CONFIG
   */
  readonly judge?: Partial<JudgeConfig>;
  /**
   * Capacity units the old side is held at until teardown. `0` means capacity is not managed.
   * @default - the old side's capacity when the migration starts
   */
  readonly pinnedCapacity?: number;
  /** Free-form data for adapters (function name, versions, …). @default {} */
  readonly metadata?: Readonly<Record<string, string>>;
}

const ZERO_SIDE: SideSignals = Object.freeze({ requests: 0, errors4xx: 0, errors5xx: 0 });

/** The stored record of one migration. */
export interface MigrationRecord {
  readonly id: string;
  readonly status: MigrationStatus;
  /** Weight on the new side as last set by the controller. */
  readonly weight: number;
  /** Index of the current plan step; -1 before the first shift. */
  readonly step: number;
  readonly plan: PlanSpec;
  readonly judge: JudgeConfig;
  /** Undefined until the gate reads it; 0 when capacity is not managed. */
  readonly pinnedCapacity?: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** When the current step, promotion bake or soak began. */
  readonly phaseStartedAtMs?: number;
  /** End of the data the judge has counted so far (the next window starts here). */
  readonly lastWindowEndMs?: number;
  /** When the controller last read a window (one read per health window). */
  readonly lastWindowReadMs?: number;
  /** Counts since the current phase began. */
  readonly stepTotals: { readonly old: SideSignals; readonly new: SideSignals };
  readonly judgeMemory: JudgeMemory;
  /** When the alarms were last read with `confirm` (from their source, not from pushed changes). */
  readonly alarmsConfirmedAtMs?: number;
  /** Probe results up to this time have been taken into account. */
  readonly probesSeenUntilMs: number;
  readonly latestNewProbe?: ProbeOutcome;
  /** The routing revision the controller last wrote or read. */
  readonly trafficRevision?: string;
  /** The status to go back to on resume. */
  readonly pausedFrom?: MigrationStatus;
  /** True while the controller is waiting for the old side to come back to its pin. */
  readonly capacityRestoring: boolean;
  /** True once teardown released the pin. */
  readonly capacityReleased: boolean;
  readonly lastDecision?: Decision;
  readonly eventSeq: number;
}

export interface TickResult {
  readonly record: MigrationRecord;
  /** Events this call appended (empty when nothing changed or another writer won). */
  readonly events: readonly MigrationEvent[];
  readonly decision?: Decision;
  /** True when another writer saved first and this call's changes were dropped. */
  readonly conflict?: boolean;
  /** Set when the events were saved but publishing them failed (they stay in the log). */
  readonly publishError?: Error;
}

export interface ControllerDeps {
  readonly clock: Clock;
  readonly traffic: TrafficPort;
  readonly health: HealthPort;
  readonly probes: ProbePort;
  readonly capacity: CapacityPort;
  readonly store: StateStore<MigrationRecord, MigrationEvent>;
  readonly events: EventSink<MigrationEvent>;
}

/** No migration with that id. */
export class MigrationNotFoundError extends Error {
  constructor(readonly migrationId: string) {
    super(`no migration with id ${JSON.stringify(migrationId)}`);
    this.name = 'MigrationNotFoundError';
  }
}

/** A command that does not apply to the migration's current status. */
export class InvalidCommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: MigrationStatus,
    detail: string,
  ) {
    super(`cannot ${command} a migration that is ${status}: ${detail}`);
    this.name = 'InvalidCommandError';
  }
}

/** A weight change that could not be made; the controller records it and rethrows. */
export class TrafficShiftError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = 'TrafficShiftError';
  }
}

const COMMANDS: readonly string[] = Object.values(Command);

/** A tick in progress: the record being changed and the events that explain the changes. */
class Draft {
  readonly events: MigrationEvent[] = [];
  decision?: Decision;
  readonly original: MigrationRecord;

  /** When the tick started: the time the judge reasons with. */
  readonly now: number;

  constructor(
    public record: MigrationRecord,
    private readonly clock: Clock,
  ) {
    this.original = record;
    this.now = clock.now();
  }

  /**
   * The current time, for what happens after slow calls (a probe can take seconds): events and
   * the start of a step are stamped when they happen, not when the tick began.
   */
  current(): number {
    return this.clock.now();
  }

  /** True when the tick changed nothing worth a write. */
  get unchanged(): boolean {
    return this.events.length === 0 && JSON.stringify(this.record) === JSON.stringify(this.original);
  }

  /** Records a transition (or a decision that keeps the status) as an event and applies it. */
  move(
    to: MigrationStatus,
    type: string,
    decision: Pick<Decision, 'reason' | 'code'> & Partial<Pick<Decision, 'signals'>>,
    patch: Partial<MigrationRecord> = {},
  ): void {
    const atMs = this.current();
    const event = transition(this.record, to, {
      type,
      atMs,
      decision,
      ...(patch.weight !== undefined ? { weight: patch.weight } : {}),
      ...(patch.step !== undefined ? { step: patch.step } : {}),
    });
    this.events.push(event);
    this.record = { ...this.record, ...patch, status: to, eventSeq: event.seq, updatedAtMs: atMs };
  }

  patch(patch: Partial<MigrationRecord>): void {
    this.record = { ...this.record, ...patch };
  }
}

export class MigrationController {
  constructor(private readonly deps: ControllerDeps) {}

  /**
   * Creates a migration (status pending). Idempotent: starting an id that exists returns the
   * existing record unchanged. Throws `PlanValidationError` / `JudgeConfigError` on bad input.
   */
  async start(spec: MigrationSpec): Promise<TickResult> {
    if (typeof spec.id !== 'string' || spec.id.trim() === '') {
      throw new TypeError(`migration id must be a non-empty string, got ${JSON.stringify(spec.id)}`);
    }
    const plan = MigrationPlan.fromSpec(spec.plan).toSpec();
    const judgeConfig = resolveJudgeConfig(spec.judge ?? {});
    if (spec.pinnedCapacity !== undefined && !(Number.isInteger(spec.pinnedCapacity) && spec.pinnedCapacity >= 0)) {
      throw new TypeError(`pinnedCapacity must be a whole number ≥ 0, got ${JSON.stringify(spec.pinnedCapacity)}`);
    }
    const existing = await this.deps.store.load(spec.id);
    if (existing) return { record: existing.record, events: [] };

    const now = this.deps.clock.now();
    const record: MigrationRecord = {
      id: spec.id,
      status: S.PENDING,
      weight: 0,
      step: -1,
      plan,
      judge: judgeConfig,
      ...(spec.pinnedCapacity !== undefined ? { pinnedCapacity: spec.pinnedCapacity } : {}),
      metadata: { ...(spec.metadata ?? {}) },
      createdAtMs: now,
      updatedAtMs: now,
      stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
      judgeMemory: INITIAL_JUDGE_MEMORY,
      probesSeenUntilMs: now,
      capacityRestoring: false,
      capacityReleased: false,
      eventSeq: 0,
    };
    const draft = new Draft(record, this.deps.clock);
    draft.move(S.PENDING, 'created', {
      code: 'created',
      reason: `migration created: ${MigrationPlan.fromSpec(plan).describe()}`,
    });
    return this.commit(draft, 0);
  }

  /** One reconcile step. */
  async tick(migrationId: string): Promise<TickResult> {
    const { record, version } = await this.load(migrationId);
    if (TERMINAL_STATUSES.includes(record.status) || record.status === S.PAUSED) {
      return { record, events: [] };
    }
    const draft = new Draft(record, this.deps.clock);
    try {
      switch (record.status) {
        case S.PENDING:
          draft.move(
            S.GATING,
            'gating',
            { code: 'gating', reason: 'pre-traffic gate: pinning old capacity and probing the new side' },
            { phaseStartedAtMs: draft.current() },
          );
          await this.gate(draft);
          break;
        case S.GATING:
          await this.gate(draft);
          break;
        case S.SHIFTING:
          await this.checkSettled(draft);
          break;
        case S.BAKING:
        case S.PROMOTED:
        case S.SOAKING:
        case S.COMPLETE:
          await this.watch(draft);
          break;
      }
    } catch (error) {
      if (error instanceof TrafficShiftError) {
        // Save what was decided (and that acting on it failed) before reporting the failure.
        await this.commit(draft, version);
      }
      throw error;
    }
    return this.commit(draft, version);
  }

  /** Applies an operator command. Throws `InvalidCommandError` when it does not apply. */
  async command(migrationId: string, command: Command, reason = 'operator command'): Promise<TickResult> {
    if (!COMMANDS.includes(command)) {
      throw new TypeError(`unknown command ${JSON.stringify(command)}; known: ${COMMANDS.join(', ')}`);
    }
    const { record, version } = await this.load(migrationId);
    const draft = new Draft(record, this.deps.clock);
    try {
      await this.applyCommand(draft, command, reason);
    } catch (error) {
      if (error instanceof TrafficShiftError) await this.commit(draft, version);
      throw error;
    }
    return this.commit(draft, version);
  }

  private async applyCommand(draft: Draft, command: Command, reason: string): Promise<void> {
    const record = draft.record;
    const decision = { code: `operator-${command}`, reason };
    const status = record.status;
    const terminal = TERMINAL_STATUSES.includes(status);
    switch (command) {
      case Command.PAUSE:
        if (terminal || status === S.PAUSED) throw new InvalidCommandError(command, status, 'nothing to pause');
        draft.move(S.PAUSED, 'paused', decision, { pausedFrom: status });
        break;
      case Command.RESUME: {
        if (status !== S.PAUSED) throw new InvalidCommandError(command, status, 'only a paused migration can resume');
        const back = record.pausedFrom ?? S.GATING;
        // The bake of the current step starts again: the time spent paused proves nothing.
        draft.move(back, 'resumed', decision, {
          phaseStartedAtMs: draft.current(),
          lastWindowEndMs: draft.current(),
          stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
        });
        break;
      }
      case Command.ABORT:
        if (terminal) throw new InvalidCommandError(command, status, 'the migration is over');
        await this.rollback(draft, { action: Action.ROLLBACK, ...decision, signals: {} }, 'aborted');
        break;
      case Command.PROMOTE: {
        const from = status === S.PAUSED ? record.pausedFrom : status;
        if (terminal || from === S.PROMOTED || from === S.SOAKING || from === S.COMPLETE) {
          throw new InvalidCommandError(command, status, 'the new side already takes all the traffic, or the migration is over');
        }
        const lastStep = record.plan.steps.length - 1;
        if ((await this.setWeight(draft, 100, decision)) === 'paused') break;
        draft.move(S.PROMOTED, 'promoted', decision, {
          weight: 100,
          step: lastStep,
          phaseStartedAtMs: draft.current(),
          lastWindowEndMs: draft.current(),
          stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
        });
        break;
      }
      case Command.TEARDOWN:
        if (status === S.COMPLETE || status === S.SOAKING) {
          await this.releaseCapacity(draft);
          draft.move(S.TORN_DOWN, 'torn-down', decision, { capacityReleased: true });
        } else if (status === S.ROLLED_BACK && !record.capacityReleased) {
          await this.releaseCapacity(draft);
          draft.move(S.ROLLED_BACK, 'capacity-released', decision, { capacityReleased: true });
        } else {
          throw new InvalidCommandError(
            command,
            status,
            'teardown releases the old side only after the migration is complete (or soaking, or rolled back), so a rollback always has somewhere to land',
          );
        }
        break;
    }
  }

  // -------------------------------------------------------------------------------------------

  private async load(migrationId: string): Promise<{ record: MigrationRecord; version: number }> {
    const loaded = await this.deps.store.load(migrationId);
    if (!loaded) throw new MigrationNotFoundError(migrationId);
    return { record: loaded.record, version: loaded.version };
  }

  /** Pre-traffic gate: capacity pinned and ready, alarms quiet, fresh probes of both sides. */
  private async gate(draft: Draft): Promise<void> {
    const unavailable: string[] = [];
    const capacity = await this.readOrNote('capacity', unavailable, () => this.ensureCapacity(draft));
    const alarms = await this.readAlarms(draft, unavailable, true);
    // Probe both sides: a desync on the old side too means the problem is not the new version.
    const probes = [await this.probeNow('new'), await this.probeNow('old')];
    const latestNewProbe = probes[0]!;
    draft.patch({ latestNewProbe, probesSeenUntilMs: Math.max(draft.record.probesSeenUntilMs, draft.now) });
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
   * Reads the user's alarms. The read is a `confirm` (the adapter asks the alarms' source) when
   * this tick may move the migration on (the gate, a finished bake or soak) or the last
   * confirmation is older than `alarmRecheckMs`; otherwise it is a routine `watch`, which an
   * adapter that is sent state changes as they happen answers without a call. An alarm entering
   * ALARM reaches the judge either way: its state change event both records it and runs a tick.
   */
  private async readAlarms(draft: Draft, unavailable: string[], mayMoveOn: boolean): Promise<readonly AlarmSignal[]> {
    const { judge: config, alarmsConfirmedAtMs } = draft.record;
    // Records written before the setting existed fall back to its default.
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
      if (error instanceof TrafficShiftError) throw error;
      unavailable.push(`${source}: ${errorMessage(error)}`);
      return undefined;
    }
  }

  private async checkSettled(draft: Draft): Promise<void> {
    const traffic = await this.deps.traffic.getWeight();
    if (traffic.settled === false) return;
    const to = draft.record.weight >= 100 ? S.PROMOTED : S.BAKING;
    draft.move(to, 'settled', { code: 'settled', reason: `weight ${traffic.weight}% is in effect` }, {
      trafficRevision: traffic.revision,
      phaseStartedAtMs: draft.current(),
      lastWindowEndMs: draft.current(),
      stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
    });
  }

  /** Baking, promoted, soaking, complete: watch, judge, act. */
  private async watch(draft: Draft): Promise<void> {
    const record = draft.record;
    const unavailable: string[] = [];
    const phase: JudgePhase = record.status === S.SOAKING || record.status === S.COMPLETE ? 'soak' : 'bake';
    const requiredMs =
      record.status === S.SOAKING
        ? record.plan.soakMs
        : record.status === S.COMPLETE
          ? 0
          : (record.plan.steps[record.step]?.bakeMs ?? record.plan.healthWindowMs);
    const elapsedMs = draft.now - (record.phaseStartedAtMs ?? draft.now);
    // Before the bake is over the judge cannot advance, so this tick cannot move the migration on.
    const mayMoveOn = record.status !== S.COMPLETE && elapsedMs >= requiredMs;
    const capacity = await this.readOrNote('capacity', unavailable, () => this.ensureCapacity(draft));
    const alarms = await this.readAlarms(draft, unavailable, mayMoveOn);
    const recent = (await this.readOrNote('probe results', unavailable, () => this.deps.probes.recentResults(record.probesSeenUntilMs))) ?? [];
    const fresh = recent.filter((p) => p.atMs > record.probesSeenUntilMs);
    const latestNewProbe = [...fresh].reverse().find((p) => p.side === 'new') ?? record.latestNewProbe;
    const seenUntil = fresh.reduce((max, p) => Math.max(max, p.atMs), record.probesSeenUntilMs);
    draft.patch({ probesSeenUntilMs: seenUntil, ...(latestNewProbe ? { latestNewProbe } : {}) });

    // Judge a statistical window only once a whole health window has passed; in between, the
    // fast checks (probes, alarms, capacity) still run on every tick.
    const windowStart = record.lastWindowEndMs ?? record.phaseStartedAtMs ?? draft.now;
    const lastRead = record.lastWindowReadMs ?? record.phaseStartedAtMs ?? draft.now;
    let window: HealthWindow | undefined | null = null;
    if (draft.now - lastRead >= record.plan.healthWindowMs) {
      draft.patch({ lastWindowReadMs: draft.now });
      try {
        window = await this.deps.health.readWindow(windowStart, draft.now);
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
        draft.patch({
          lastWindowEndMs: Math.min(window.toMs, draft.now),
          stepTotals: { old: addSide(record.stepTotals.old, window.old), new: addSide(record.stepTotals.new, window.new) },
        });
      }
    }

    const judgement = judge({
      config: record.judge,
      phase,
      elapsedMs,
      requiredMs,
      window,
      stepTotals: draft.record.stepTotals,
      alarms,
      probes: fresh,
      ...(latestNewProbe ? { latestNewProbe } : {}),
      unavailable,
      ...this.capacityInput(record, capacity),
      memory: record.judgeMemory,
    });
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
        await this.releaseCapacity(draft);
        draft.move(S.TORN_DOWN, 'torn-down', { code: 'teardown-after-soak', reason: 'soak passed; plan releases the old side after the soak' }, { capacityReleased: true });
      } else {
        draft.move(S.COMPLETE, 'completed', {
          ...decision,
          reason: `${decision.reason}; old side stays at full capacity until an explicit teardown`,
        });
      }
      return;
    }
    if (status === S.PROMOTED) {
      draft.move(S.SOAKING, 'soaking', decision, {
        phaseStartedAtMs: draft.current(),
        lastWindowEndMs: draft.current(),
        stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
      });
      return;
    }

    // Gate passed or a step baked: raise the weight, after a fresh probe of the new side.
    const nextStep = draft.record.step + 1;
    const target = draft.record.plan.steps[nextStep];
    if (!target) {
      // Cannot happen with a validated plan (the last step is 100 % and leads to PROMOTED).
      throw new Error(`plan has no step ${nextStep + 1} (migration ${draft.record.id})`);
    }
    if (phase !== 'gate') {
      const probe = await this.probeNow('new');
      draft.patch({ latestNewProbe: probe, probesSeenUntilMs: Math.max(draft.record.probesSeenUntilMs, probe.atMs) });
      if (probe.verdict === 'desync') {
        await this.rollback(
          draft,
          { action: Action.ROLLBACK, code: 'probe-desync', reason: `Keep-Alive probe before raising the weight found a desync on the new side: ${probe.summary}`, signals: { ...decision.signals, probes: [probe] } },
          'rolled-back',
        );
        return;
      }
      if (probe.verdict !== 'ok') {
        const heldFor = draft.now - (draft.record.phaseStartedAtMs ?? draft.now) - (draft.record.plan.steps[draft.record.step]?.bakeMs ?? 0);
        if (heldFor >= draft.record.judge.maxHoldMs) {
          draft.move(S.PAUSED, 'paused', {
            code: 'probe-inconclusive',
            reason: `Keep-Alive probes before raising the weight stayed ${probe.verdict} for ${Math.round(heldFor / 1000)}s: ${probe.summary}`,
            signals: { ...decision.signals, probes: [probe] },
          }, { pausedFrom: status });
          return;
        }
        const hold: Decision = {
          action: Action.HOLD,
          code: 'probe-inconclusive',
          reason: `Keep-Alive probe before raising the weight was ${probe.verdict}: ${probe.summary}`,
          signals: { ...decision.signals, probes: [probe] },
        };
        draft.decision = hold;
        if (previousCode !== hold.code) draft.move(status, 'held', hold);
        draft.patch({ lastDecision: hold });
        return;
      }
    }
    const shift = await this.setWeight(draft, target.weight, decision);
    if (shift === 'paused') return;
    const to = shift === 'pending' ? S.SHIFTING : target.weight >= 100 ? S.PROMOTED : S.BAKING;
    draft.move(to, target.weight >= 100 ? 'promoted' : 'advanced', {
      ...decision,
      reason: `${decision.reason} → step ${nextStep + 1} of ${draft.record.plan.steps.length}: ${target.weight}%`,
    }, {
      weight: target.weight,
      step: nextStep,
      phaseStartedAtMs: draft.current(),
      lastWindowEndMs: draft.current(),
      stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
    });
  }

  /** Weight 0 now. Never waits for capacity or anything else. */
  private async rollback(draft: Draft, decision: Decision, type: string): Promise<void> {
    draft.decision = decision;
    await this.setWeight(draft, 0, decision, 3);
    draft.move(S.ROLLED_BACK, type, decision, { weight: 0 });
  }

  /**
   * Sets the weight with the stored revision; on a conflict re-reads and, if `retries` allows,
   * tries again (rollbacks must happen; advances give up and let the next tick re-judge).
   * Returns whether the change is in effect (`settled`), still propagating (`pending`), or was
   * not made because someone else changed the routing and the migration is now paused (`paused`).
   */
  private async setWeight(
    draft: Draft,
    weight: number,
    decision: Pick<Decision, 'code' | 'reason'>,
    retries = 0,
  ): Promise<'settled' | 'pending' | 'paused'> {
    let revision = draft.record.trafficRevision ?? (await this.deps.traffic.getWeight()).revision;
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.deps.traffic.setWeight(weight, revision);
        draft.patch({ trafficRevision: result.revision });
        return result.settled === false ? 'pending' : 'settled';
      } catch (error) {
        if (error instanceof RevisionConflictError && attempt < Math.max(retries, 1)) {
          const current = await this.deps.traffic.getWeight();
          revision = current.revision;
          if (retries === 0 && current.weight !== draft.record.weight) {
            // Someone else moved the weight: stop and let a human look rather than fight them.
            draft.move(S.PAUSED, 'paused', {
              code: 'weight-changed-outside',
              reason: `routing was changed outside the controller (weight ${current.weight}%, expected ${draft.record.weight}%)`,
            }, { pausedFrom: draft.record.status, trafficRevision: current.revision });
            return 'paused';
          }
          continue;
        }
        const message = `setting the new side's weight to ${weight}% failed (${decision.code}): ${errorMessage(error)}`;
        draft.move(draft.record.status, 'shift-failed', { code: 'shift-failed', reason: message });
        throw new TrafficShiftError(message, error);
      }
    }
  }

  /**
   * Reads the old side's capacity, pins it on first use, and asks for a restore when it fell
   * below the pin. Returns undefined when capacity is not managed.
   */
  private async ensureCapacity(draft: Draft): Promise<CapacityStatus | undefined> {
    let pinned = draft.record.pinnedCapacity;
    if (pinned === 0 || draft.record.capacityReleased) return undefined;
    let status = await this.deps.capacity.read();
    if (pinned === undefined) {
      pinned = status.current;
      draft.patch({ pinnedCapacity: pinned });
      if (pinned === 0) return undefined;
    }
    if (status.pinned !== pinned) {
      status = await this.deps.capacity.pin(pinned);
      draft.move(draft.record.status, 'capacity-pinned', {
        code: 'capacity-pinned',
        reason: `old side pinned at ${pinned} units until teardown`,
      });
    }
    const short = status.current < pinned || !status.ready;
    if (short && !draft.record.capacityRestoring) {
      status = await this.deps.capacity.restore(pinned);
      draft.move(draft.record.status, 'capacity-restoring', {
        code: 'capacity-below-pin',
        reason: `old side fell to ${status.current} of ${pinned} units${status.detail ? ` (${status.detail})` : ''}: restoring, no weight increase until it is back`,
        signals: { capacity: status },
      }, { capacityRestoring: true });
    } else if (short) {
      // Ask again on every tick: restore is idempotent and the platform may have dropped the request.
      status = await this.deps.capacity.restore(pinned);
    } else if (draft.record.capacityRestoring) {
      draft.move(draft.record.status, 'capacity-restored', {
        code: 'capacity-restored',
        reason: `old side back at ${status.current} of ${pinned} units`,
        signals: { capacity: status },
      }, { capacityRestoring: false });
    }
    return status;
  }

  private capacityInput(
    record: MigrationRecord,
    capacity: CapacityStatus | undefined,
  ): { capacity?: CapacityStatus; pinnedCapacity?: number } {
    if (!capacity || record.pinnedCapacity === undefined) return {};
    return { capacity, pinnedCapacity: record.pinnedCapacity };
  }

  private async releaseCapacity(draft: Draft): Promise<void> {
    if (draft.record.pinnedCapacity === 0 || draft.record.capacityReleased) return;
    await this.deps.capacity.release();
  }

  private async commit(draft: Draft, version: number): Promise<TickResult> {
    if (draft.unchanged && version > 0) {
      return { record: draft.record, events: [], ...(draft.decision ? { decision: draft.decision } : {}) };
    }
    const record: MigrationRecord = { ...draft.record, updatedAtMs: draft.now };
    try {
      await this.deps.store.save(record.id, record, version, draft.events);
    } catch (error) {
      if (error instanceof StaleStateError) {
        const fresh = await this.deps.store.load(record.id);
        return { record: fresh?.record ?? record, events: [], conflict: true };
      }
      throw error;
    }
    let publishError: Error | undefined;
    if (draft.events.length > 0) {
      try {
        await this.deps.events.publish(draft.events);
      } catch (error) {
        publishError = error instanceof Error ? error : new Error(String(error));
      }
    }
    return {
      record,
      events: draft.events,
      ...(draft.decision ? { decision: draft.decision } : {}),
      ...(publishError ? { publishError } : {}),
    };
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
