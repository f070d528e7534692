/**
 * One controller function serving every migration of a stack (of its target family): it reads the
 * registry (registry.ts), picks the migrations an invocation is about, runs each through its own
 * `ControllerRunner` (built from that migration's settings, kept while they do not change), and
 * keeps the schedules (controller-schedules.ts).
 *
 * Routing (the contract's payloads, controller-requests.ts):
 * - a command: the migration it names by key or id (`migration`); none named is allowed only while
 *   exactly one migration is registered; otherwise it is refused with the keys;
 * - a deploy's wake-up: its `migrationKey` (an older trigger's, without one: the key its id starts with);
 * - a probe result: its `migrationKey`; an alarm state change: every migration watching the alarm;
 * - a scheduled tick (and any other EventBridge event): every LIVE migration, at most
 *   `MAX_MIGRATIONS_PER_TICK`, and no new one once less than `MIN_REMAINING_MS` is left of the
 *   invocation (the rest wait for a later tick, named in a warning). The order is the registry's
 *   (oldest mark first) turned by the tick's minute: with more live migrations than one tick serves,
 *   a fixed order would starve the newest for as long as older ones stay live (a complete migration
 *   with a manual teardown stays live for days). The turn comes from the event's time, not from
 *   this container's memory, so that every container (and Lambda's retry of the same event, which
 *   serves the same ones again) agrees; each migration is first once every N minutes.
 *
 * Each migration is isolated: one whose settings are bad, whose adapters throw, or whose registry
 * item is damaged is logged and counted, the others are served, and the invocation fails at the
 * end, so that Lambda's retry and error metrics see it. A damaged item is never acted on: its live
 * mark stays (keeping the schedules on and every tick failing until a deploy rewrites it).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { describeError } from './clients';
import type { ControllerFamily } from './config';
import { parseControllerEvent, type ControllerRequest, type ControllerResponse, type ServedMigration } from './controller-requests';
import type { MigrationRun, ServeOptions } from './controller-runner';
import { RegistrySchedules, type RegistrySchedulesDeps, type ServedRun } from './controller-schedules';
import { DamagedRegistrationError, MAX_MIGRATIONS_PER_TICK, type DamagedRegistration, type MigrationRegistry, type RegisteredMigration } from './registry';
import type { Woken } from './schedules';

/**
 * Time a migration's run may need (a fresh probe at a gate alone may take 20 s, plus the table and
 * CloudWatch calls): no new run starts with less left, so that none is cut off by the timeout.
 */
export const MIN_REMAINING_MS = 20_000;

/** What the dispatcher needs of a migration's runner (`ControllerRunner.serve`). */
export interface MigrationServer {
  serve(request: ControllerRequest, options?: ServeOptions): Promise<MigrationRun>;
}

export interface ControllerDispatcherDeps {
  readonly registry: Pick<MigrationRegistry, 'list' | 'markLive' | 'clearLive'>;
  /** The rules to switch; undefined: schedules always on (nothing switched, the live marks still kept). */
  readonly schedules?: Pick<RegistrySchedulesDeps, 'switch' | 'rules'>;
  readonly logger: Logger;
  /** The migrations it serves: its own family's (`any`: all). */
  readonly family: ControllerFamily;
  /**
   * Builds the runner of one migration from its registration (throws, naming the variable, when a
   * setting is bad). Called again only when the migration's settings changed.
   */
  readonly makeRunner: (migration: RegisteredMigration) => MigrationServer;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default MAX_MIGRATIONS_PER_TICK */
  readonly maxPerTick?: number;
}

/** The invocation's context, as far as the dispatcher needs it (Lambda's `Context`). */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** A command or a deploy that names no migration this controller can serve; the message says what to send instead. */
export class MigrationRoutingError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationRoutingError';
  }
}

/** Some migrations of the invocation failed (each is in the log); the others were served. */
export class MigrationRunsFailedError extends Error {
  constructor(readonly failures: readonly { readonly migrationKey: string; readonly error: Error }[]) {
    super(
      `${failures.length} migration run(s) failed: ` +
        failures.map((f) => `${f.migrationKey}: ${f.error.name}: ${f.error.message}`.slice(0, 400)).join('; '),
    );
    this.name = 'MigrationRunsFailedError';
  }
}

/** Whom a request goes to. */
interface Route {
  readonly targets: readonly { readonly migration: RegisteredMigration; readonly options: ServeOptions }[];
  /** Several migrations may be served (their answers summed); false: the one's answer is returned. */
  readonly many: boolean;
  /** Damaged items fail the invocation (it had to consider every migration). */
  readonly failOnDamaged: boolean;
}

export class ControllerDispatcher {
  private readonly runners = new Map<string, { readonly fingerprint: string; readonly server: MigrationServer }>();
  private readonly schedules: RegistrySchedules;
  private readonly now: () => number;

  constructor(private readonly deps: ControllerDispatcherDeps) {
    this.now = deps.now ?? Date.now;
    this.schedules = new RegistrySchedules({ ...deps.schedules, registry: deps.registry, family: deps.family, logger: deps.logger, now: this.now });
  }

  async handle(event: unknown, context?: InvocationContext): Promise<ControllerResponse> {
    const { logger } = this.deps;
    const request = parseControllerEvent(event);
    const listing = await this.deps.registry.list();
    for (const damaged of listing.damaged) {
      logger.error('registry item damaged: this migration is not served until a deploy rewrites it', { ...damaged });
    }
    const route = this.route(request, listing.migrations, listing.damaged);
    const failures: { migrationKey: string; error: Error }[] = [];
    if (route.failOnDamaged) {
      for (const d of listing.damaged) failures.push({ migrationKey: d.migrationKey, error: new DamagedRegistrationError(d.migrationKey, d.problem) });
    }

    const served: ServedRun[] = [];
    const answers: ServedMigration[] = [];
    const maxPerTick = this.deps.maxPerTick ?? MAX_MIGRATIONS_PER_TICK;
    const targets = route.many ? turned(route.targets, turnOf(request, this.now())) : route.targets;
    let left: string[] = [];
    for (const [index, target] of targets.entries()) {
      const key = target.migration.migrationKey;
      if (route.many && (index >= maxPerTick || (context !== undefined && context.getRemainingTimeInMillis() < MIN_REMAINING_MS))) {
        left = targets.slice(index).map((t) => t.migration.migrationKey);
        break;
      }
      logger.appendKeys({ migrationKey: key });
      try {
        const run = await this.runnerFor(target.migration).serve(request, target.options);
        served.push({ migration: target.migration, run });
        answers.push({ migrationKey: key, ...summary(run.response) });
      } catch (error) {
        const failed = error instanceof Error ? error : new Error(String(error));
        // A single migration's refusal (a command that does not apply) is its caller's answer, not an outage.
        if (route.many) logger.error('migration run failed; the others are served', { error: describeError(failed) });
        else logger.warn('migration run failed or refused', { error: describeError(failed) });
        failures.push({ migrationKey: key, error: failed });
        answers.push({ migrationKey: key, migrationId: null, events: 0, error: `${failed.name}: ${failed.message}` });
      } finally {
        logger.removeKeys(['migrationKey']);
      }
    }
    if (left.length > 0) {
      logger.warn('more live migrations than one tick serves: the rest wait for a later tick (the starting point turns every minute)', { left, served: served.length, maxPerTick });
    }

    const quiesce = request.kind === 'tick' && request.trigger === 'schedule' && route.targets.length === 0;
    for (const error of await this.schedules.afterRuns(wokenBy(request), served, quiesce)) failures.push({ migrationKey: '(schedules)', error });

    if (failures.length > 0) {
      // One migration's own error (a refused command) is thrown as it is, so that its caller sees
      // its type; several are summed up.
      throw failures.length === 1 ? failures[0]!.error : new MigrationRunsFailedError(failures);
    }
    // One migration served: its own answer (a stack with one migration answers as it always did).
    if (!route.many || answers.length === 1) {
      const only = served[0];
      return only ? { ...only.run.response, migrationKey: only.migration.migrationKey } : { migrationId: null, events: 0 };
    }
    if (answers.length === 0) return { migrationId: null, events: 0 };
    // Listed in the registry's order (oldest mark first), whichever the turn served first: the
    // answer reads the same every minute.
    const order = new Map(route.targets.map((t, i) => [t.migration.migrationKey, i]));
    answers.sort((a, b) => (order.get(a.migrationKey) ?? 0) - (order.get(b.migrationKey) ?? 0));
    return { migrationId: null, events: answers.reduce((n, a) => n + a.events, 0), migrations: answers };
  }

  /** The runner of a migration, built again only when its settings changed. */
  private runnerFor(migration: RegisteredMigration): MigrationServer {
    const fingerprint = JSON.stringify(Object.entries(migration.settings).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const cached = this.runners.get(migration.migrationKey);
    if (cached && cached.fingerprint === fingerprint) return cached.server;
    // Built before it is cached: a bad setting fails this migration's every run, with the variable's name.
    const server = this.deps.makeRunner(migration);
    this.runners.set(migration.migrationKey, { fingerprint, server });
    return server;
  }

  private serves(migration: RegisteredMigration): boolean {
    return this.deps.family === 'any' || migration.family === this.deps.family;
  }

  private route(request: ControllerRequest, migrations: readonly RegisteredMigration[], damaged: readonly DamagedRegistration[]): Route {
    const { logger } = this.deps;
    const mine = migrations.filter((m) => this.serves(m));
    const live = (): Route => ({ targets: mine.filter((m) => m.live).map((m) => ({ migration: m, options: { migrationId: m.live!.migrationId } })), many: true, failOnDamaged: true });
    const one = (migration: RegisteredMigration, options: ServeOptions): Route => {
      this.mustServe(migration);
      return { targets: [{ migration, options }], many: false, failOnDamaged: false };
    };

    if (request.kind === 'command') {
      const found = this.commandTarget(request.migration, migrations, damaged);
      return one(found.migration, found.options);
    }
    if (request.trigger === 'deploy') {
      const key = request.migrationKey ?? (request.migrationId ? keyOfId(request.migrationId, migrations) : undefined);
      const migration = key === undefined ? undefined : migrations.find((m) => m.migrationKey === key);
      if (!migration) {
        const bad = damaged.find((d) => d.migrationKey === key);
        if (bad) throw new DamagedRegistrationError(bad.migrationKey, bad.problem);
        throw new MigrationRoutingError(
          `the deploy of ${request.migrationId ?? '(no id)'} names ${key === undefined ? 'no registered migration' : `migration ${key}, which is not registered`}; ` +
            `registered: ${keysOf(migrations, damaged)}. The deploy trigger registers a migration before it wakes the controller: deploy with the construct of this version`,
        );
      }
      return one(migration, request.migrationId ? { migrationId: request.migrationId } : {});
    }
    if (request.trigger === 'probe' && request.migrationKey !== undefined) {
      const migration = migrations.find((m) => m.migrationKey === request.migrationKey);
      if (!migration || !this.serves(migration)) {
        // Another family's (its controller gets the same event) or no longer registered: nothing to do here.
        logger.info('probe result of a migration this controller does not serve', { migrationKey: request.migrationKey, registered: migration !== undefined });
        return { targets: [], many: false, failOnDamaged: false };
      }
      return { targets: [{ migration, options: migration.live ? { migrationId: migration.live.migrationId } : {} }], many: false, failOnDamaged: false };
    }
    if (request.trigger === 'alarm') {
      const name = request.alarm?.name ?? (typeof request.detail?.alarmName === 'string' ? request.detail.alarmName : undefined);
      // An event without an alarm's name: every live migration checks its alarms in this tick.
      if (name === undefined) return live();
      const watching = mine.filter((m) => alarmNamesOf(m).includes(name));
      if (watching.length === 0) logger.info('state change of an alarm no migration of this controller watches', { alarm: name });
      return { targets: watching.map((m) => ({ migration: m, options: m.live ? { migrationId: m.live.migrationId } : {} })), many: true, failOnDamaged: true };
    }
    return live();
  }

  /** The migration a command names (see the module comment), or a refusal that lists the keys. */
  private commandTarget(
    named: string | undefined,
    migrations: readonly RegisteredMigration[],
    damaged: readonly DamagedRegistration[],
  ): { migration: RegisteredMigration; options: ServeOptions } {
    const total = migrations.length + damaged.length;
    if (named === undefined) {
      if (total === 0) throw new MigrationRoutingError('no migration is registered in this stack yet: deploy one first');
      if (total > 1) {
        throw new MigrationRoutingError(`${total} migrations are registered: name one with "migration" (a key or a migration id); keys: ${keysOf(migrations, damaged)}`);
      }
      const only = migrations[0];
      if (!only) throw new DamagedRegistrationError(damaged[0]!.migrationKey, damaged[0]!.problem);
      return { migration: only, options: {} };
    }
    const byKey = migrations.find((m) => m.migrationKey === named);
    if (byKey) return { migration: byKey, options: {} };
    const key = migrations.find((m) => m.live?.migrationId === named)?.migrationKey ?? keyOfId(named, migrations);
    const byId = key === undefined ? undefined : migrations.find((m) => m.migrationKey === key);
    if (byId) return { migration: byId, options: { migrationId: named, exact: true } };
    const bad = damaged.find((d) => d.migrationKey === named || named.startsWith(`${d.migrationKey}:`));
    if (bad) throw new DamagedRegistrationError(bad.migrationKey, bad.problem);
    throw new MigrationRoutingError(`no registered migration has the key or id ${JSON.stringify(named)}; keys: ${keysOf(migrations, damaged) || 'none'}`);
  }

  /** Refuses a migration of the other family, naming the controller that serves it. */
  private mustServe(migration: RegisteredMigration): void {
    if (this.serves(migration)) return;
    throw new MigrationRoutingError(
      `migration ${migration.migrationKey} is a ${migration.family} migration, served by the ${migration.family} controller, not by this ${this.deps.family} one: ` +
        `send it to the controller-${migration.family} function of the stack (the construct of this version creates one per target family)`,
    );
  }
}

/**
 * Where a tick starts in the registry's order: the minute it fired (its event's time; an event
 * without one, the clock's), so that consecutive ticks start one migration further on.
 */
function turnOf(request: ControllerRequest, nowMs: number): number {
  const at = request.kind === 'tick' && request.firedAtMs !== undefined ? request.firedAtMs : nowMs;
  return Math.floor(at / 60_000);
}

/** `items` started at `turn` (modulo their number) and wrapped around. */
export function turned<T>(items: readonly T[], turn: number): T[] {
  if (items.length === 0) return [];
  const start = ((turn % items.length) + items.length) % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

/** The key a migration id belongs to: ids are `<key>:<version or release>`; the longest registered key wins. */
export function keyOfId(migrationId: string, migrations: readonly Pick<RegisteredMigration, 'migrationKey'>[]): string | undefined {
  let best: string | undefined;
  for (const { migrationKey } of migrations) {
    if (migrationId.startsWith(`${migrationKey}:`) && migrationKey.length > (best?.length ?? -1)) best = migrationKey;
  }
  return best;
}

/**
 * The alarms a migration watches, from its settings. Lenient: a value that does not parse watches
 * nothing here, and its runner's configuration refuses it with the variable's name at its next run.
 */
export function alarmNamesOf(migration: Pick<RegisteredMigration, 'settings'>): string[] {
  const text = migration.settings.CUTOVER_ALARM_NAMES?.trim();
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

function keysOf(migrations: readonly RegisteredMigration[], damaged: readonly DamagedRegistration[]): string {
  return [...migrations.map((m) => m.migrationKey), ...damaged.map((d) => `${d.migrationKey} (damaged)`)].join(', ');
}

function wokenBy(request: ControllerRequest): Woken {
  if (request.kind === 'command') return { by: 'command' };
  return { by: request.trigger, ...(request.firedAtMs !== undefined ? { firedAtMs: request.firedAtMs } : {}) };
}

function summary(response: ControllerResponse): Omit<ServedMigration, 'migrationKey'> {
  return {
    migrationId: response.migrationId,
    ...(response.status !== undefined ? { status: response.status } : {}),
    ...(response.weight !== undefined ? { weight: response.weight } : {}),
    events: response.events,
  };
}
