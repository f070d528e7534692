/**
 * The schedules of a shared controller: its own rule (one per controller function, so one per
 * target family present in the stack) and the stack's probe rule, switched from the registry's live
 * marks after the migrations of an invocation were served (controller-dispatch.ts).
 *
 * The race with a deploy is closed by the same order as for one migration (schedules.ts), with the
 * live marks in place of the pointer: the deploy trigger writes the pointer, THEN marks the migration
 * live, THEN enables; the controller clears a finished migration's mark, THEN disables (when no live
 * migration of its family remains), THEN lists the registry again (consistently) and re-enables what
 * is live. Whatever the interleaving, a mark written before the re-read is seen by it, and an enable
 * after it comes after the disable: one of the two enables last. A controller that dies between any
 * two of these steps leaves the schedule ON (the next tick finds nothing live and tries again) or,
 * dying between its disable and its re-read, fails the invocation: Lambda's retry of the same
 * scheduled event is a redelivery, which enables for every live migration it serves, and its own
 * quiesce enables whatever its re-read finds live (the probe rule too, whatever its first read saw:
 * the retry's first read may find another family's migration live and disable nothing, while the
 * dead invocation had switched the shared probe rule off). A re-read that fails enables both rules
 * before the invocation fails: on for nothing costs a tick, off for something live loses it.
 *
 * Only an asynchronous invocation disables (a scheduled tick, a deploy's wake-up, an alarm, a probe
 * result: Lambda retries them). A command is synchronous (the operator's, the deploy trigger's abort
 * and teardown): nobody retries it, so if it died between its disable and its re-read, a rule could
 * stay off while a deploy had marked another migration live. A command clears the mark of what it
 * finished and leaves the rules on; the next on-time tick finds nothing live and quiesces.
 *
 * Why clear only the mark that names what the run found (or an older migration of the key): a newer
 * deploy's mark is never cleared, whatever this run saw. Why mark a migration live here: a run that
 * finds a record still needing ticks without a mark (a teardown whose pin release was interrupted, a
 * command to a migration the schedule had let go) would otherwise be switched off by the next
 * quiesce; marked first, then enabled, it is in every later re-read. It is marked only over the
 * mark the run read (none, or an older migration's): a deploy that marked a newer migration of the
 * key meanwhile keeps its mark (`LiveMarkChangedError`), and its own enable keeps the rules on.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { describeError } from './clients';
import type { ControllerFamily } from './config';
import type { MigrationRun } from './controller-runner';
import { LiveMarkChangedError, type DamagedRegistration, type MigrationRegistry, type RegisteredMigration } from './registry';
import { isRedelivery, needsTicks, type ScheduleRules, type ScheduleSwitch, type Woken } from './schedules';

export interface RegistrySchedulesDeps {
  /**
   * Undefined: the rules are not switched (always on), but the live marks are still kept: they
   * are what a scheduled tick serves.
   */
  readonly switch?: Pick<ScheduleSwitch, 'enableSome' | 'disableSome'>;
  /** For the log lines. */
  readonly rules?: ScheduleRules;
  readonly registry: Pick<MigrationRegistry, 'list' | 'markLive' | 'clearLive'>;
  /** The migrations this controller's rule ticks. */
  readonly family: ControllerFamily;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly now: () => number;
}

/** One migration served by this invocation, as the registry listed it before the run. */
export interface ServedRun {
  readonly migration: RegisteredMigration;
  readonly run: MigrationRun;
}

/** Which rules to enable. */
interface Wanted {
  controller: boolean;
  probe: boolean;
}

/** Whether a migration's probe is run by the probe rule (the trigger enables that rule only for these). */
export function hasProbeTargets(migration: Pick<RegisteredMigration, 'settings'>): boolean {
  return Boolean(migration.settings.CUTOVER_PROBE_TARGETS?.trim());
}

/** What is live in a registry listing, for this controller's family and for the shared probe rule. */
export function livenessOf(
  listing: { readonly migrations: readonly RegisteredMigration[]; readonly damaged: readonly DamagedRegistration[] },
  family: ControllerFamily,
): { mine: boolean; any: boolean; probe: boolean } {
  const live = listing.migrations.filter((m) => m.live);
  // A damaged item of a live migration cannot be served, but it must not be silenced either: its
  // family and probe targets are unknown, so it keeps every rule on and every tick fails, loudly.
  const damagedLive = listing.damaged.some((d) => d.liveMigrationId !== undefined);
  return {
    mine: damagedLive || live.some((m) => family === 'any' || m.family === family),
    any: damagedLive || live.length > 0,
    probe: damagedLive || live.some(hasProbeTargets),
  };
}

/** Whether what woke the controller enables the schedules of a live migration (as `ScheduleKeeper.afterRun`). */
function enablesWhenLive(woken: Woken, nowMs: number): boolean {
  return woken.by === 'deploy' || woken.by === 'command' || woken.by === 'alarm' || woken.by === 'probe' || isRedelivery(woken, nowMs);
}

export class RegistrySchedules {
  constructor(private readonly deps: RegistrySchedulesDeps) {}

  /**
   * After the runs of one invocation: marks, clears, disables and enables (see the module comment).
   * `quiesce`: the schedule woke the controller and nothing of its family was live, so its rule is
   * on for nothing. Returns the errors (the caller fails the invocation with them at the end, so that
   * Lambda retries it); a disable that fails is only logged (the schedule stays on and its next tick
   * tries again).
   */
  async afterRuns(woken: Woken, served: readonly ServedRun[], quiesce: boolean): Promise<Error[]> {
    const { registry, logger, now } = this.deps;
    const errors: Error[] = [];
    const wanted: Wanted = { controller: false, probe: false };
    const want = (migration: RegisteredMigration) => {
      wanted.controller = true;
      wanted.probe ||= hasProbeTargets(migration);
    };
    let cleared = false;
    for (const { migration, run } of served) {
      // Another run saved first: it decided, and it switches what its outcome needs.
      if (run.conflict) continue;
      const key = migration.migrationKey;
      const mark = migration.live;
      try {
        if (run.migrationId !== null && needsTicks(run.record)) {
          if (mark?.migrationId !== run.migrationId) {
            try {
              await registry.markLive(key, run.migrationId, now(), { expected: mark?.migrationId ?? null });
              logger.info('a migration that needs ticks had no live mark: marked live', { migrationKey: key, migrationId: run.migrationId, previousMark: mark?.migrationId });
            } catch (error) {
              if (!(error instanceof LiveMarkChangedError)) throw error;
              // A deploy marked a newer migration of the key since the listing: its mark stays.
              logger.info('the live mark changed since it was read (a new deploy): kept', { migrationKey: key, migrationId: run.migrationId, mark: error.current });
            }
            want(migration);
          } else if (enablesWhenLive(woken, now())) {
            want(migration);
          }
        } else if (mark) {
          // Finished, or no longer the key's current migration, or the key has none: its mark goes,
          // unless a deploy marked a newer one meanwhile (the condition keeps that one).
          if (await registry.clearLive(key, mark.migrationId)) {
            cleared = true;
            logger.info('migration needs no more ticks: live mark cleared', { migrationKey: key, migrationId: mark.migrationId });
          } else {
            logger.info('the live mark changed since it was read (a new deploy): kept', { migrationKey: key, migrationId: mark.migrationId });
          }
        }
      } catch (error) {
        logger.error('could not update the live mark; failing at the end so that Lambda retries', { migrationKey: key, error: describeError(error) });
        errors.push(asError(error));
      }
    }
    const switcher = this.deps.switch;
    if (!switcher) return errors;
    if (!quiesce && isRedelivery(woken, now())) {
      // Lambda's retry of a tick that may have died between its disable and its re-read: a deploy
      // of another family in that window marked a probe migration live, which none of the
      // migrations served here would ask the shared probe rule on for (found in review).
      try {
        const live = livenessOf(await registry.list(), this.deps.family);
        wanted.controller ||= live.mine;
        wanted.probe ||= live.probe;
      } catch (error) {
        wanted.controller = true;
        wanted.probe = true;
        logger.error('could not read the registry on a retried tick: enabling the schedules, failing so that Lambda retries', { error: describeError(error) });
        errors.push(asError(error));
      }
    }
    // A command never disables (see the module comment): the next on-time tick quiesces.
    if ((cleared && woken.by !== 'command') || quiesce) {
      try {
        const again = await this.quiesce();
        wanted.controller ||= again.controller;
        wanted.probe ||= again.probe;
      } catch (error) {
        // A read failed, maybe after a disable: what is live is unknown, so both rules go back on
        // (an idle tick quiesces them again), and failing makes Lambda retry the event.
        wanted.controller = true;
        wanted.probe = true;
        logger.error('could not read the registry around switching the schedules: enabling them, failing so that Lambda retries', { error: describeError(error) });
        errors.push(asError(error));
      }
    }
    if (wanted.controller || wanted.probe) {
      try {
        await switcher.enableSome(wanted);
        logger.info('schedules enabled', { rules: this.deps.rules, controller: wanted.controller, probe: wanted.probe, by: woken.by });
      } catch (error) {
        logger.error('could not enable the schedules; failing so that Lambda retries this invocation', { error: describeError(error) });
        errors.push(asError(error));
      }
    }
    return errors;
  }

  /**
   * Disables this controller's rule when no live migration of its family is left (and the probe's
   * when none at all is), then lists again and returns what must be on after all.
   */
  private async quiesce(): Promise<Wanted> {
    const { registry, logger, family, rules } = this.deps;
    const switcher = this.deps.switch!;
    const before = livenessOf(await registry.list(), family);
    if (before.mine) return { controller: false, probe: false };
    try {
      await switcher.disableSome({ probe: !before.any });
      logger.info('no migration of this controller needs ticks: schedules disabled', { rules, family, probe: !before.any });
    } catch (error) {
      // Some rule may have switched off all the same: the registry is read again either way.
      logger.warn('could not disable the schedules; the next scheduled tick tries again', { error: describeError(error) });
    }
    const after = livenessOf(await registry.list(), family);
    if (after.mine || (!before.any && after.probe)) {
      logger.info('a migration was marked live while the schedules were being disabled', { family });
    }
    // The probe rule whenever something live has probe targets, not only when this quiesce disabled
    // it: an earlier invocation (this one's first try, dead after its disable) may have, and
    // EnableRule on an enabled rule changes nothing.
    return { controller: after.mine, probe: after.probe };
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
