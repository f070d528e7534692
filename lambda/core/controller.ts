/**
 * The controller: one reconcile step ("tick") of a migration at a time. It loads and checks the
 * record, settles any change a previous tick left in flight, reads what it needs through the
 * ports, asks the judge, acts (weight, capacity), and saves the record together with the events
 * that explain what it did.
 *
 * Safe under any interleaving of ticks and commands, and after a crash anywhere
 * (docs/tick-protocol.md):
 * - every save is versioned: a tick that loses a save has changed nothing and stops;
 * - a routing change is recorded before it is made and made at most once (`routing.ts`), and a
 *   teardown is recorded before the pin is released (`capacity.ts`);
 * - a record that fails its schema is never acted on: the controller fails safe (`fail-safe.ts`);
 * - evidence from before a gap in the controller's watch never counts: the bake starts again.
 */
import { CapacityKeeper } from './capacity';
import { Draft } from './draft';
import { FailSafeRoutingError, replacementFor, routeAllToOld, unroutedAlert } from './fail-safe';
import { DEFAULT_JUDGE_CONFIG, addSide, judge, resolveJudgeConfig } from './judge';
import type { JudgePhase, Judgement } from './judge';
import { Action, Command, MigrationStatus as S, TERMINAL_STATUSES } from './model';
import type { Decision, MigrationEvent, MigrationStatus } from './model';
import { MigrationPlan, type PlanSpec } from './plan';
import { DamagedStateError, StaleStateError } from './ports';
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
  StateDamage,
  StateStore,
  TrafficPort,
} from './ports';
import { checkRecord, freshRecord, ZERO_SIDE, type MigrationRecord } from './record';
import { Routing, TrafficShiftError, errorMessage, sameWeight } from './routing';
import type { JudgeConfig } from './judge';

export type { DamageReport, MigrationRecord, PendingShift } from './record';
export { TrafficShiftError } from './routing';

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

export interface TickResult {
  readonly record: MigrationRecord;
  /** Events this call saved (empty when nothing changed or another writer won first). */
  readonly events: readonly MigrationEvent[];
  readonly decision?: Decision;
  /** True when another writer saved first and this call's remaining changes were dropped. */
  readonly conflict?: boolean;
  /** Set when the events were saved but publishing them failed (they stay in the log). */
  readonly publishError?: Error;
  /** Set when the stored record was damaged and this call failed safe (see `fail-safe.ts`). */
  readonly damaged?: StateDamage;
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

/** Another writer saved first in the middle of this call: stop, having changed nothing more. */
class LostRaceError extends Error {
  constructor() {
    super('another writer saved first');
    this.name = 'LostRaceError';
  }
}

const COMMANDS: readonly string[] = Object.values(Command);

/**
 * How long the controller may go without reading a health window before the evidence it gathered
 * no longer counts (the controller was not running, or its ticks kept failing): the judge's
 * missing-data limit plus one window.
 */
export function evidenceGapMs(record: Pick<MigrationRecord, 'plan' | 'judge'>): number {
  return (record.judge.maxMissingWindows + 1) * record.plan.healthWindowMs;
}

export class MigrationController {
  private readonly routing: Routing;
  private readonly capacity: CapacityKeeper;

  constructor(private readonly deps: ControllerDeps) {
    const checkpoint = (draft: Draft): Promise<void> => this.checkpoint(draft);
    this.routing = new Routing(deps.traffic, checkpoint);
    this.capacity = new CapacityKeeper(deps.capacity, checkpoint);
  }

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
    const existing = await this.load(spec.id, false);
    if (existing) return existing.kind === 'record' ? { record: existing.record, events: [] } : this.failSafe(spec.id, existing.damage);

    const now = this.deps.clock.now();
    const record: MigrationRecord = {
      ...freshRecord({ id: spec.id, status: S.PENDING, plan, judge: judgeConfig, metadata: { ...(spec.metadata ?? {}) }, eventSeq: 0, now }),
      ...(spec.pinnedCapacity !== undefined ? { pinnedCapacity: spec.pinnedCapacity } : {}),
    };
    const draft = new Draft(record, 0, this.deps.clock);
    draft.move(S.PENDING, 'created', {
      code: 'created',
      reason: `migration created: ${MigrationPlan.fromSpec(plan).describe()}`,
    });
    return this.run(draft, async () => undefined);
  }

  /** One reconcile step. */
  async tick(migrationId: string): Promise<TickResult> {
    const loaded = await this.load(migrationId, true);
    if (loaded.kind === 'damaged') return this.failSafe(migrationId, loaded.damage);
    const draft = new Draft(loaded.record, loaded.version, this.deps.clock);
    return this.run(draft, () => this.reconcile(draft));
  }

  /** Applies an operator command. Throws `InvalidCommandError` when it does not apply. */
  async command(migrationId: string, command: Command, reason = 'operator command'): Promise<TickResult> {
    if (!COMMANDS.includes(command)) {
      throw new TypeError(`unknown command ${JSON.stringify(command)}; known: ${COMMANDS.join(', ')}`);
    }
    const loaded = await this.load(migrationId, true);
    if (loaded.kind === 'damaged') return this.failSafe(migrationId, loaded.damage);
    const draft = new Draft(loaded.record, loaded.version, this.deps.clock);
    return this.run(draft, () => this.applyCommand(draft, command, reason));
  }

  // -------------------------------------------------------------------------------------------
  // The tick

  private async reconcile(draft: Draft): Promise<void> {
    // An interrupted teardown finishes first: the pin's release was recorded, so it must happen.
    if (draft.record.capacityReleasing) await this.capacity.finishRelease(draft);
    if (TERMINAL_STATUSES.includes(draft.record.status)) return;
    // A change in flight is settled before anything is judged (routing.ts, rule 3).
    if (draft.record.shift) {
      await this.routing.settle(draft);
      return;
    }
    switch (draft.record.status) {
      case S.PENDING:
        draft.move(
          S.GATING,
          'gating',
          { code: 'gating', reason: 'pre-traffic gate: pinning old capacity and probing the new side' },
          { phaseStartedAtMs: draft.current() },
        );
        await this.gate(draft);
        return;
      case S.GATING:
        await this.gate(draft);
        return;
      case S.BAKING:
      case S.PROMOTED:
      case S.SOAKING:
      case S.COMPLETE:
        await this.watch(draft);
        return;
      default:
        // paused (a human decides), or shifting, which always carries a shift (the schema checks).
        return;
    }
  }

  private async applyCommand(draft: Draft, command: Command, reason: string): Promise<void> {
    const record = draft.record;
    const decision = { code: `operator-${command}`, reason };
    const status = record.status;
    const terminal = TERMINAL_STATUSES.includes(status);
    switch (command) {
      case Command.PAUSE:
        if (terminal || status === S.PAUSED) throw new InvalidCommandError(command, status, 'nothing to pause');
        if (status === S.COMPLETE) throw new InvalidCommandError(command, status, 'a complete migration moves no traffic; teardown or abort it');
        if (record.shift?.kind === 'rollback') throw new InvalidCommandError(command, status, 'a rollback is being made, and a rollback is never paused');
        // A change in flight stays recorded: paused ticks still settle it.
        draft.move(S.PAUSED, 'paused', decision, { pausedFrom: status });
        return;
      case Command.RESUME: {
        if (status !== S.PAUSED) throw new InvalidCommandError(command, status, 'only a paused migration can resume');
        const back = record.pausedFrom ?? S.GATING;
        if (back === S.SHIFTING) {
          draft.move(back, 'resumed', decision);
          return;
        }
        const planned = back === S.BAKING ? record.plan.steps[record.step]?.weight : back === S.PROMOTED || back === S.SOAKING ? 100 : undefined;
        if (planned !== undefined && !sameWeight(planned, record.weight)) {
          // Paused because the routing was changed outside the controller: resuming puts the
          // step's weight back (through the protocol), and its bake starts again once in effect.
          await this.routing.change(draft, { kind: 'advance', weight: planned, step: record.step, then: back, type: 'resumed', decision });
          return;
        }
        // The bake of the current step starts again: the time spent paused proves nothing.
        const now = draft.current();
        draft.move(back, 'resumed', decision, {
          phaseStartedAtMs: now,
          lastWindowEndMs: now,
          lastWindowReadMs: now,
          stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
        });
        return;
      }
      case Command.ABORT:
        if (terminal) throw new InvalidCommandError(command, status, 'the migration is over');
        // An abort replaces any change in flight: it never waits for one to settle.
        await this.rollback(draft, { action: Action.ROLLBACK, ...decision, signals: {} }, 'aborted');
        return;
      case Command.PROMOTE: {
        const from = status === S.PAUSED ? record.pausedFrom : status;
        if (terminal || from === S.PROMOTED || from === S.SOAKING || from === S.COMPLETE) {
          throw new InvalidCommandError(command, status, 'the new side already takes all the traffic, or the migration is over');
        }
        if (record.shift) {
          throw new InvalidCommandError(command, status, `a change to ${record.shift.weight}% is still being made; promote once it has settled (the next tick settles it)`);
        }
        await this.routing.change(draft, {
          kind: 'promote',
          weight: 100,
          step: record.plan.steps.length - 1,
          then: S.PROMOTED,
          type: 'promoted',
          decision,
        });
        return;
      }
      case Command.TEARDOWN:
        if (status === S.COMPLETE || status === S.SOAKING) {
          draft.move(S.TORN_DOWN, 'torn-down', decision);
          await this.capacity.release(draft);
        } else if (status === S.ROLLED_BACK && !record.capacityReleased && !record.capacityReleasing) {
          draft.move(S.ROLLED_BACK, 'capacity-released', decision);
          await this.capacity.release(draft);
        } else {
          throw new InvalidCommandError(
            command,
            status,
            'teardown releases the old side only after the migration is complete (or soaking, or rolled back), so a rollback always has somewhere to land',
          );
        }
        return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Loading, saving, failing safe

  /** Loads and checks the record; a record that fails the check is reported as damaged. */
  private async load(migrationId: string, required: true): Promise<Loaded>;
  private async load(migrationId: string, required: false): Promise<Loaded | undefined>;
  private async load(migrationId: string, required: boolean): Promise<Loaded | undefined> {
    let loaded: { readonly record: unknown; readonly version: number } | undefined;
    try {
      loaded = await this.deps.store.load(migrationId);
    } catch (error) {
      if (error instanceof DamagedStateError) return { kind: 'damaged', damage: error.damage };
      throw error;
    }
    if (!loaded) {
      if (required) throw new MigrationNotFoundError(migrationId);
      return undefined;
    }
    const check = checkRecord(migrationId, loaded.record);
    if (!check.ok) {
      const shown = check.problems.slice(0, 3).join('; ');
      const more = check.problems.length > 3 ? ` (and ${check.problems.length - 3} more)` : '';
      return { kind: 'damaged', damage: { what: `record version ${loaded.version} fails its schema: ${shown}${more}`, version: loaded.version, raw: loaded.record } };
    }
    return { kind: 'record', record: check.record, version: loaded.version };
  }

  /** Damaged state: old side first, then a stopped record and one alert (fail-safe.ts). */
  private async failSafe(migrationId: string, damage: StateDamage): Promise<TickResult> {
    let routed: string;
    try {
      routed = await routeAllToOld(this.deps.traffic);
    } catch (cause) {
      const error = new FailSafeRoutingError(migrationId, damage, cause);
      await this.deps.events.publish([unroutedAlert(migrationId, damage, error, this.deps.clock)]).catch(() => undefined);
      throw error;
    }
    let replacement: { record: MigrationRecord; events: MigrationEvent[] } | undefined;
    try {
      await this.deps.store.quarantine(migrationId, damage, (context) => {
        replacement = replacementFor(migrationId, damage, routed, { ...context, now: this.deps.clock.now() });
        return replacement;
      });
    } catch (error) {
      if (!(error instanceof StaleStateError)) throw error;
      // Another tick replaced it first (and alerted): report what is stored now.
      const fresh = await this.load(migrationId, true);
      if (fresh.kind === 'damaged') throw error;
      return { record: fresh.record, events: [], conflict: true };
    }
    const { record, events } = replacement!;
    let publishError: Error | undefined;
    try {
      await this.deps.events.publish(events);
    } catch (error) {
      publishError = error instanceof Error ? error : new Error(String(error));
    }
    return { record, events, decision: record.lastDecision!, damaged: damage, ...(publishError ? { publishError } : {}) };
  }

  /** Runs a tick or command body and saves what it left in the draft. */
  private async run(draft: Draft, body: () => Promise<void>): Promise<TickResult> {
    try {
      await body();
    } catch (error) {
      if (error instanceof LostRaceError) return this.lost(draft);
      if (error instanceof TrafficShiftError) {
        // Save what was decided, and that acting on it failed, before reporting the failure.
        try {
          await this.checkpoint(draft);
        } catch (saveError) {
          if (!(saveError instanceof LostRaceError)) throw saveError;
        }
      }
      throw error;
    }
    try {
      await this.checkpoint(draft);
    } catch (error) {
      if (error instanceof LostRaceError) return this.lost(draft);
      throw error;
    }
    return this.result(draft);
  }

  /**
   * Saves the draft now if it changed, with the version it was loaded or last saved at, then
   * publishes its new events. Throws `LostRaceError` when another writer saved first.
   */
  private async checkpoint(draft: Draft): Promise<void> {
    if (draft.unchanged && draft.version > 0) return;
    const record: MigrationRecord = { ...draft.record, updatedAtMs: draft.current() };
    let version: number;
    try {
      version = await this.deps.store.save(record.id, record, draft.version, draft.events);
    } catch (error) {
      if (error instanceof StaleStateError) throw new LostRaceError();
      throw error;
    }
    draft.record = record;
    const events = draft.savedAs(version);
    if (events.length === 0) return;
    try {
      await this.deps.events.publish(events);
    } catch (error) {
      draft.publishError = error instanceof Error ? error : new Error(String(error));
    }
  }

  private result(draft: Draft): TickResult {
    return {
      record: draft.record,
      events: draft.saved,
      ...(draft.decision ? { decision: draft.decision } : {}),
      ...(draft.publishError ? { publishError: draft.publishError } : {}),
    };
  }

  /** Another writer saved first: what this call saved before stays; the rest is dropped. */
  private async lost(draft: Draft): Promise<TickResult> {
    const fresh = await this.deps.store.load(draft.record.id).catch(() => undefined);
    const check = fresh ? checkRecord(draft.record.id, fresh.record) : undefined;
    return {
      record: check?.ok ? check.record : draft.original,
      events: draft.saved,
      conflict: true,
      ...(draft.publishError ? { publishError: draft.publishError } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Gate, watch, act

  /** Pre-traffic gate: capacity pinned and ready, alarms quiet, fresh probes of both sides. */
  private async gate(draft: Draft): Promise<void> {
    const unavailable: string[] = [];
    const capacity = await this.readOrNote('capacity', unavailable, () => this.capacity.ensure(draft));
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
  private async watch(draft: Draft): Promise<void> {
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

    // The bake clock runs on data, not on the wall clock: a step has baked as long as the health
    // data judged since it began covers, so time without data (a source that lags, a controller
    // that was not running) never counts towards it.
    const coveredMs = Math.max(0, (draft.record.lastWindowEndMs ?? phaseStart) - phaseStart);
    // Before the bake is covered the judge cannot advance, so this tick cannot move the migration on.
    const mayMoveOn = record.status !== S.COMPLETE && coveredMs >= requiredMs;
    const alarms = await this.readAlarms(draft, unavailable, mayMoveOn);
    const judgement = judge({
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
  private async rollback(draft: Draft, decision: Decision, type: string): Promise<void> {
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

type Loaded =
  | { readonly kind: 'record'; readonly record: MigrationRecord; readonly version: number }
  | { readonly kind: 'damaged'; readonly damage: StateDamage };
