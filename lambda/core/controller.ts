/**
 * The controller: one reconcile step ("tick") of a migration at a time. It loads and checks the
 * record, settles any change a previous tick left in flight, hands the gate or the current step to
 * `steps.ts` (read the signals, ask the judge, act), applies operator commands, and saves the
 * record together with the events that explain what it did.
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
import { Draft, LostRaceError } from './draft';
import { FailSafeRoutingError, replacementFor, routeAllToOld, unroutedAlert } from './fail-safe';
import { resolveJudgeConfig, type JudgeConfig } from './judge';
import { Action, Command, MigrationStatus as S, TERMINAL_STATUSES } from './model';
import type { Decision, MigrationEvent, MigrationStatus } from './model';
import { MigrationPlan, type PlanSpec } from './plan';
import { DamagedStateError, StaleStateError } from './ports';
import type { CapacityPort, Clock, EventSink, HealthPort, ProbePort, StateDamage, StateStore, TrafficPort } from './ports';
import { checkRecord, freshRecord, ZERO_SIDE, type MigrationRecord } from './record';
import { Routing, TrafficShiftError, sameWeight } from './routing';
import { ResidualWatcher } from './residual';
import { Steps } from './steps';

export type { DamageReport, MigrationRecord, PendingShift } from './record';
export { TrafficShiftError } from './routing';
export { evidenceGapMs } from './steps';

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

const COMMANDS: readonly string[] = Object.values(Command);

export class MigrationController {
  private readonly routing: Routing;
  private readonly capacity: CapacityKeeper;
  private readonly steps: Steps;
  private readonly residual: ResidualWatcher;

  constructor(private readonly deps: ControllerDeps) {
    const checkpoint = (draft: Draft): Promise<void> => this.checkpoint(draft);
    this.routing = new Routing(deps.traffic, checkpoint);
    this.capacity = new CapacityKeeper(deps.capacity, checkpoint);
    this.steps = new Steps(deps, this.routing, this.capacity);
    this.residual = new ResidualWatcher(deps);
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
    if (TERMINAL_STATUSES.includes(draft.record.status)) {
      // A rollback is not done until the new side is empty (residual.ts).
      await this.residual.watch(draft);
      return;
    }
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
        await this.steps.gate(draft);
        return;
      case S.GATING:
        await this.steps.gate(draft);
        return;
      case S.BAKING:
      case S.PROMOTED:
      case S.SOAKING:
      case S.COMPLETE:
        await this.steps.watch(draft);
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
        await this.steps.rollback(draft, { action: Action.ROLLBACK, ...decision, signals: {} }, 'aborted');
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
          await this.residual.undrain(draft);
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

}

type Loaded =
  | { readonly kind: 'record'; readonly record: MigrationRecord; readonly version: number }
  | { readonly kind: 'damaged'; readonly damage: StateDamage };
