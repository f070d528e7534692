/**
 * What the controller does with one invocation for ONE migration, with its dependencies passed in,
 * among them the adapters of its target and capacity kinds (`ControllerRuntime` in
 * controller-runtime.ts builds them from every kit; the per-family handler entries from one, see
 * adapter-kit.ts). The shared controller runs one of these per registered migration
 * (controller-dispatch.ts), each built from that migration's settings.
 *
 * 1. Work out what was asked (controller-requests.ts): a tick (schedule, alarm state change, probe
 *    result, deploy) or an operator command. An alarm state change is first recorded in the
 *    migration's partition (see `RecordedAlarms`).
 * 2. Find the key's current migration (the pointer item, cached while its migration runs).
 * 3. Start the migration if the deploy recorded it but no run has created it yet, then tick or
 *    apply the command through the core's MigrationController.
 * 4. Log every decision and event, and publish the progress metrics.
 * 5. Report what the schedules depend on (`MigrationRun`: the record after the run, whether it was
 *    live when loaded). With `config.schedules` (one migration per function, as the tests and the
 *    benchmark run it) it switches them itself (`ScheduleKeeper` in schedules.ts); under the
 *    dispatcher `config.schedules` is unset and the dispatcher switches them for all migrations.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import {
  InvalidCommandError,
  MigrationController,
  type MigrationSpec,
  type TickResult,
} from '../core/controller';
import { Command, TERMINAL_STATUSES } from '../core/model';
import { DamagedStateError, RevisionConflictError, StaleStateError, type HealthPort } from '../core/ports';
import type { TargetAdapters } from './adapter-kit';
import { describeError, type AwsClients } from './clients';
import type { ControllerConfig } from './config';
import { parseControllerEvent, type ControllerRequest, type ControllerResponse } from './controller-requests';
import type { MigrationRecord } from '../core/record';
import type { DynamoDbStateStore, MigrationPointer, StoredAlarmState } from './dynamodb-store';
import { AwsEventSink } from './eventbridge-sink';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { publishControllerMetrics, type ControllerAction } from './metrics';
import { RecordedAlarms } from './recorded-alarms';
import { ScheduleKeeper, ScheduleSwitch, needsTicks } from './schedules';
import { TableProbes, type ProbeRunner } from './table-probes';
import { parseCapacityConfig, parseTargetConfig, sumProbeHealth, type CapacityConfig, type MigrationSides, type TargetConfig } from './targets';

export interface ControllerRunnerDeps {
  readonly config: ControllerConfig;
  readonly clients: AwsClients;
  readonly store: DynamoDbStateStore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Runs fresh probes when `config.probeTargets` is not empty. @default - none */
  readonly runner?: ProbeRunner;
  /** The traffic, health and capacity adapters of the configured target and capacity kinds. */
  readonly adapters: TargetAdapters;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What one run of one migration leaves for the schedules (see controller-dispatch.ts). */
export interface MigrationRun {
  readonly response: ControllerResponse;
  /** The migration run; null when the key has no migration recorded. */
  readonly migrationId: string | null;
  /** Its record after the run; undefined when it could not be read (damaged: counts as live). */
  readonly record: MigrationRecord | undefined;
  /** Whether it needed ticks when this run loaded it (a migration not started yet does). */
  readonly liveAtStart: boolean;
  /** Another run saved first: this one changed nothing and decides nothing about the schedules. */
  readonly conflict: boolean;
}

/** Which migration a caller expects to be the key's current one. */
export interface ServeOptions {
  /** The id the caller knows (a live mark, a deploy's payload): a cached pointer naming another is read again. */
  readonly migrationId?: string;
  /** Refuse (`MigrationNotCurrentError`) when the current migration is not `migrationId` (a command naming an id). */
  readonly exact?: boolean;
}

/** A command named a migration that is no longer (or not yet) its key's current one. */
export class MigrationNotCurrentError extends TypeError {
  constructor(migrationKey: string, asked: string, current: string | undefined) {
    super(
      `${asked} is not the current migration of ${migrationKey} (${current ? `that is ${current}` : 'it has none'}); ` +
        'the controller acts on the current migration only, and nothing was done: name the key or the current id',
    );
    this.name = 'MigrationNotCurrentError';
  }
}

export class ControllerRunner {
  /** The current migration, kept while it is not terminal (see `currentPointer`). */
  private cachedPointer: MigrationPointer | undefined;
  /** The migration's record after the last run (undefined when it could not be read). */
  private lastRecord: TickResult['record'] | undefined;
  /** The load `ensureStarted` just did, handed to the core's first load so it is not read twice. */
  private primed: { id: string; value: Awaited<ReturnType<DynamoDbStateStore['load']>> } | undefined;

  private readonly adapters: TargetAdapters;
  private readonly schedules: ScheduleKeeper | undefined;
  /** Whether the migration loaded at the start of this invocation needed ticks (see `switchSchedules`). */
  private liveAtStart = false;

  constructor(private readonly deps: ControllerRunnerDeps) {
    const { config, clients } = deps;
    this.adapters = deps.adapters;
    this.schedules = config.schedules
      ? new ScheduleKeeper({
          switch: new ScheduleSwitch(clients.eventBridge, config.schedules),
          rules: config.schedules,
          currentMigrationId: async () => (await deps.store.getPointer(config.aliasKey))?.migrationId,
          logger: deps.logger,
          now: deps.now ?? Date.now,
        })
      : undefined;
  }

  /** Parses and serves one invocation, switching the schedules itself when `config.schedules` is set. */
  async handle(event: unknown): Promise<ControllerResponse> {
    const request = parseControllerEvent(event);
    const run = await this.serve(request);
    if (this.schedules) {
      if (run.migrationId === null) {
        // Woken by the schedule with nothing to migrate (e.g. a deploy enabled it and failed before
        // recording): the schedule is on for nothing.
        if (request.kind === 'tick' && request.trigger === 'schedule') await this.schedules.quiesce(undefined);
      } else {
        await this.switchSchedules(request, run);
      }
    }
    return run.response;
  }

  /** Serves one request for this migration's key; what the schedules need comes back with the answer. */
  async serve(request: ControllerRequest, options: ServeOptions = {}): Promise<MigrationRun> {
    const { logger } = this.deps;
    // Only the schedule's ticks use the cached pointer, and only while it names the migration the
    // caller expects: a command or an alarm/probe event must reach the migration that is current
    // now (see `currentPointer`).
    const stale = options.migrationId !== undefined && this.cachedPointer?.migrationId !== options.migrationId;
    const pointer = await this.currentPointer(stale || !(request.kind === 'tick' && request.trigger === 'schedule'));
    if (options.exact && options.migrationId !== undefined && pointer?.migrationId !== options.migrationId) {
      throw new MigrationNotCurrentError(this.deps.config.aliasKey, options.migrationId, pointer?.migrationId);
    }
    if (!pointer) {
      logger.info('no migration recorded yet', { migrationKey: this.deps.config.aliasKey, request });
      return { response: { migrationId: null, events: 0 }, migrationId: null, record: undefined, liveAtStart: false, conflict: false };
    }
    logger.appendKeys({ migrationId: pointer.migrationId });
    try {
      // Live unless the load says otherwise (a migration not started yet, or a damaged record, is).
      this.liveAtStart = true;
      this.lastRecord = undefined;
      const response = await this.run(pointer, request);
      const record = this.lastRecord;
      this.lastRecord = undefined;
      return { response, migrationId: pointer.migrationId, record, liveAtStart: this.liveAtStart, conflict: response.conflict === true };
    } finally {
      logger.removeKeys(['migrationId']);
    }
  }

  /** After a run: the schedules on or off (see `ScheduleKeeper.afterRun`). */
  private async switchSchedules(request: ControllerRequest, run: MigrationRun): Promise<void> {
    if (!this.schedules || run.conflict || run.migrationId === null) return;
    const woken = request.kind === 'command' ? { by: 'command' as const } : { by: request.trigger, ...(request.firedAtMs !== undefined ? { firedAtMs: request.firedAtMs } : {}) };
    if (await this.schedules.afterRun(woken, run.record, run.liveAtStart, run.migrationId)) this.cachedPointer = undefined;
  }

  private async run(pointer: MigrationPointer, request: ControllerRequest): Promise<ControllerResponse> {
    const { logger } = this.deps;
    const id = pointer.migrationId;
    const delivered = request.kind === 'tick' ? request.alarm : undefined;
    // Recorded before the load, so that the tick's Query reads it and later ticks answer from it.
    const recordError = delivered ? await this.recordDeliveredAlarm(id, delivered) : undefined;
    const watched = delivered && this.deps.config.alarmNames.includes(delivered.name) ? delivered : undefined;
    // An alarm event whose state could not be read from it: ask CloudWatch in this tick.
    const confirmAlarms = request.kind === 'tick' && request.trigger === 'alarm' && (!watched || recordError !== undefined);
    const controller = this.controllerFor(pointer, watched, confirmAlarms);
    const results: TickResult[] = [];
    try {
      const started = await this.ensureStarted(controller, pointer);
      if (started) results.push(started);
      if (request.kind === 'command') {
        logger.info('operator command', { command: request.command, reason: request.reason });
        results.push(await controller.command(id, request.command, request.reason));
      } else {
        logger.info('tick', { trigger: request.trigger, ...(request.detail ? { detail: request.detail } : {}) });
        results.push(await controller.tick(id));
      }
    } catch (error) {
      for (const result of results) this.report(result, undefined);
      if (error instanceof StaleStateError || error instanceof RevisionConflictError) {
        // Another run changed the migration or the alias at the same time; it made the decision.
        logger.info('another run changed the migration first; this run changed nothing', { error: describeError(error) });
        return { migrationId: id, events: results.reduce((n, r) => n + r.events.length, 0), conflict: true };
      }
      if (error instanceof InvalidCommandError) {
        logger.warn('command refused', { error: error.message });
      } else {
        logger.error('controller run failed; nothing beyond the saved events changed', { error: describeError(error) });
      }
      throw error;
    } finally {
      // Never hand a load from this invocation to a later one.
      this.primed = undefined;
    }
    const last = results[results.length - 1]!;
    this.lastRecord = last.record;
    for (const result of results) this.report(result, request.kind === 'command' ? request.command : undefined);
    if (recordError) {
      // The tick acted on the delivered state, but later ticks would not see it: fail the
      // invocation so that Lambda's retry of the event records it (the tick it repeats is
      // idempotent).
      throw recordError;
    }
    if (TERMINAL_STATUSES.includes(last.record.status)) {
      // A finished migration can be followed by a new deploy: look the pointer up again next time.
      this.cachedPointer = undefined;
    }
    const decision = last.decision;
    const publishErrors = results.map((r) => r.publishError?.message).filter((m): m is string => Boolean(m));
    return {
      migrationId: id,
      status: last.record.status,
      weight: last.record.weight,
      step: last.record.step,
      ...(decision ? { action: decision.action, code: decision.code, reason: decision.reason } : {}),
      ...(request.kind === 'command' && !decision ? { action: request.command, code: `operator-${request.command}`, reason: request.reason } : {}),
      events: results.reduce((n, r) => n + r.events.length, 0),
      ...(last.conflict ? { conflict: true } : {}),
      ...(publishErrors.length > 0 ? { publishError: publishErrors.join('; ') } : {}),
    };
  }

  /** Records a watched alarm's delivered state; returns the error when that failed. */
  private async recordDeliveredAlarm(migrationId: string, alarm: StoredAlarmState): Promise<Error | undefined> {
    const { logger, config, store } = this.deps;
    if (!config.alarmNames.includes(alarm.name)) {
      logger.info('state change of an alarm this migration does not watch; not recorded', { alarm: alarm.name });
      return undefined;
    }
    try {
      const written = await store.recordAlarmState(migrationId, { ...alarm, recordedAtMs: (this.deps.now ?? Date.now)() });
      logger.info(written ? 'alarm state recorded' : 'alarm state already recorded or older than the recorded one', {
        alarm: alarm.name,
        state: alarm.state,
        changedAtMs: alarm.changedAtMs,
      });
      return undefined;
    } catch (error) {
      logger.error('could not record the alarm state; this tick still acts on it', { alarm: alarm.name, error: describeError(error) });
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  /**
   * The alias's current migration, cached across scheduled ticks while that migration is not
   * terminal. The cache can be stale: a deploy tears down a complete migration through another
   * container and then replaces the pointer. A scheduled tick of the old one heals itself (it finds
   * it torn down, and the next read is fresh), but a command or an alarm/probe event must not land
   * on it, so every invocation but a scheduled tick reads the pointer again (one GetItem).
   */
  private async currentPointer(refresh: boolean): Promise<MigrationPointer | undefined> {
    if (!refresh && this.cachedPointer) return this.cachedPointer;
    this.cachedPointer = await this.deps.store.getPointer(this.deps.config.aliasKey);
    return this.cachedPointer;
  }

  /** Creates the migration the deploy recorded, once; undefined when it already exists. */
  private async ensureStarted(controller: MigrationController, pointer: MigrationPointer): Promise<TickResult | undefined> {
    let existing: Awaited<ReturnType<DynamoDbStateStore['load']>>;
    try {
      existing = await this.deps.store.load(pointer.migrationId);
    } catch (error) {
      // The migration exists but its state is damaged: the core's tick fails safe on it.
      if (error instanceof DamagedStateError) return undefined;
      throw error;
    }
    if (existing) {
      this.primed = { id: pointer.migrationId, value: existing };
      this.liveAtStart = needsTicks(existing.record);
      return undefined;
    }
    const { config } = this.deps;
    const spec: MigrationSpec = {
      id: pointer.migrationId,
      plan: pointer.spec?.plan ?? config.plan,
      judge: pointer.spec?.judge ?? config.judge,
      pinnedCapacity: pointer.spec?.pinnedCapacity ?? config.pinnedCapacity,
      metadata: this.adapters.metadata({ oldVersion: pointer.oldVersion, newVersion: pointer.newVersion }, this.targetOf(pointer)),
    };
    const result = await controller.start(spec);
    return result.events.length > 0 ? result : undefined;
  }

  private controllerFor(pointer: MigrationPointer, delivered: StoredAlarmState | undefined, confirmAlarms: boolean): MigrationController {
    const { config, clients, store, logger, runner } = this.deps;
    const now = this.deps.now ?? Date.now;
    const warn = (message: string, detail?: Record<string, unknown>) => logger.warn(message, detail ?? {});
    const versions = { oldVersion: pointer.oldVersion, newVersion: pointer.newVersion };
    const primedStore = {
      load: async (id: string) => {
        const primed = this.primed;
        this.primed = undefined;
        if (primed && primed.id === id) return primed.value;
        return store.load(id);
      },
      save: store.save.bind(store),
      events: store.events.bind(store),
      quarantine: store.quarantine.bind(store),
    };
    const target = this.targetOf(pointer);
    const cloudWatch = this.healthSource(pointer.migrationId, versions, target);
    const alarms = new RecordedAlarms({
      source: cloudWatch,
      store,
      migrationId: pointer.migrationId,
      alarmNames: config.alarmNames,
      ...(delivered ? { delivered } : {}),
      confirmEveryRead: confirmAlarms,
      now,
      onWarning: warn,
    });
    return new MigrationController({
      clock: { now },
      traffic: this.adapters.traffic(versions, target),
      health: {
        readWindow: (fromMs, toMs, options) => cloudWatch.readWindow(fromMs, toMs, options),
        readAlarms: (purpose) => alarms.readAlarms(purpose),
      },
      probes: new TableProbes({
        store,
        migrationId: pointer.migrationId,
        targets: config.probeTargets,
        ...(runner ? { runner } : {}),
        now,
        onWarning: warn,
      }),
      capacity: this.adapters.capacity(versions, this.capacityOf(pointer, target)),
      store: primedStore,
      events: new AwsEventSink({
        eventBridge: clients.eventBridge,
        sns: clients.sns,
        eventBusName: config.eventBusName,
        ...(config.topicArn ? { topicArn: config.topicArn } : {}),
        migrationKey: config.aliasKey,
        context: this.adapters.metadata(versions, target),
      }),
    });
  }

  /**
   * Where the two sides' health comes from (the target's kit, see adapter-kit.ts): Lambda's
   * per-version metrics through the alias, or the load balancers' metrics of a fleet migration,
   * from which the probe results of the window, recorded in the table, are subtracted.
   */
  private healthSource(migrationId: string, versions: MigrationSides, target: TargetConfig): HealthPort {
    const { config, clients, store, logger } = this.deps;
    return this.adapters.health(
      {
        cloudWatch: clients.cloudWatch,
        config,
        versions,
        onWarning: (message, detail) => logger.warn(message, detail ?? {}),
        probeTraffic: async (startMs, endMs) => sumProbeHealth(await store.probeResultsSince(migrationId, startMs), startMs, endMs),
      },
      target,
    );
  }

  /**
   * What the migration moves: as its deploy recorded it (a fleet's sides swap between releases,
   * and a finished migration's teardown must act on its own sides), else the configured target.
   * A recorded value that does not parse is reported and the configured one used: during a running
   * migration the two are the same (a deploy cannot change them while it runs).
   */
  private targetOf(pointer: MigrationPointer): TargetConfig {
    const recorded = pointer.spec?.target;
    if (recorded === undefined) return this.deps.config.target;
    try {
      return parseTargetConfig(JSON.stringify(recorded));
    } catch (error) {
      this.deps.logger.warn("the migration's recorded target is damaged; using the configured one", { error: describeError(error) });
      return this.deps.config.target;
    }
  }

  /** What the migration pins: as its deploy recorded it, else the configured kind (see `targetOf`). */
  private capacityOf(pointer: MigrationPointer, target: TargetConfig): CapacityConfig {
    const recorded = pointer.spec?.capacity;
    if (recorded === undefined) return this.deps.config.capacity;
    try {
      return parseCapacityConfig(JSON.stringify(recorded), target);
    } catch (error) {
      this.deps.logger.warn("the migration's recorded capacity is damaged; using the configured one", { error: describeError(error) });
      return this.deps.config.capacity;
    }
  }

  /** Logs the decision and events of one core call and publishes the metrics. */
  private report(result: TickResult, command: Command | undefined): void {
    const { logger, metrics, config } = this.deps;
    const { record, decision } = result;
    for (const event of result.events) {
      logger.info('event', {
        seq: event.seq,
        type: event.type,
        from: event.from,
        to: event.to,
        weight: event.weight,
        step: event.step,
        code: event.code,
        reason: event.reason,
      });
    }
    let action: string | undefined = decision?.action;
    if (!decision && command && result.events.length > 0) action = command;
    if (action) {
      logger.info('decision', {
        migrationId: record.id,
        action,
        code: decision?.code ?? `operator-${command}`,
        reason: decision?.reason ?? result.events[result.events.length - 1]?.reason ?? '',
        status: record.status,
        weight: record.weight,
        step: record.step,
      });
    }
    if (result.publishError) {
      logger.error('events saved in the log but not published', {
        error: result.publishError.message,
        seqs: result.events.map((e) => e.seq),
      });
    }
    if (result.conflict) logger.info('another run saved first; this run changed nothing');
    const eventTypes = result.events.map((e) => e.type);
    // A complete migration's healthy watch is an `advance` judgement that moves nothing (`watched`):
    // not a step advanced.
    const counted = action === 'advance' && eventTypes.every((type) => type === 'watched') ? undefined : action;
    publishControllerMetrics(metrics, config.aliasKey, record, counterOf(counted), decision?.signals.capacity?.current, eventTypes);
  }
}

function counterOf(action: string | undefined): ControllerAction {
  switch (action) {
    case 'advance':
    case 'promote':
      return 'advance';
    case 'hold':
      return 'hold';
    case 'rollback':
    case 'abort':
      return 'rollback';
    case 'pause':
      return 'pause';
    default:
      return undefined;
  }
}
