/**
 * The controller's and the probe's EventBridge schedules are created disabled: nothing is invoked
 * while nothing migrates. The deploy trigger enables them when it records a migration; the
 * controller disables them once the migration it serves needs no more ticks.
 *
 * The race between the two (a deploy recording a migration while the controller decides that
 * none is live) is closed by their order: the deploy trigger writes the pointer BEFORE it enables,
 * and the controller disables BEFORE it reads the pointer again (consistently) and re-enables when
 * a new migration appeared. Whatever the interleaving, one of them enables last (see
 * `ScheduleKeeper.quiesce`, and the tests that interleave them).
 *
 * One shared controller serving many migrations (controller-dispatch.ts) keeps the same order with
 * the registry's live marks in place of the pointer: the trigger marks a migration live before it
 * enables; the controller clears a finished migration's mark, disables, and only then lists the
 * registry again to re-enable what is live (see `RegistrySchedules` in controller-schedules.ts).
 * `ScheduleKeeper` below is the same logic for a function that serves one migration.
 */
import { DisableRuleCommand, EnableRuleCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Logger } from '@aws-lambda-powertools/logger';
import { describeError } from './clients';
// In a module without SDK imports (the deploy trigger and, through it, the operator CLI use it too).
import { needsTicks } from './needs-ticks';

export { needsTicks };

/** The names of the schedules (rules on the default bus). */
export interface ScheduleRules {
  /** The controller's every-minute rule. */
  readonly controller: string;
  /** The probe's every-minute rule (only with probe targets). */
  readonly probe?: string;
}

/** Switching failed for some rules (after the SDK's retries); `switched` lists those that did switch. */
export class ScheduleSwitchError extends Error {
  constructor(
    readonly action: 'enable' | 'disable',
    readonly failed: readonly { rule: string; error: string }[],
    readonly switched: readonly string[],
  ) {
    super(
      `could not ${action} the schedule rule(s) ${failed.map((f) => `${f.rule} (${f.error})`).join(', ')}` +
        (switched.length > 0 ? `; ${switched.join(', ')} did ${action}` : ''),
    );
    this.name = 'ScheduleSwitchError';
  }
}

/** Enables and disables the schedules. Both calls are idempotent on EventBridge's side. */
export class ScheduleSwitch {
  constructor(
    private readonly eventBridge: EventBridgeClient,
    private readonly rules: ScheduleRules,
  ) {}

  /**
   * The controller's rule first (it is the one that matters: it drives the migration), then the
   * probe's. Every rule is tried; a failure is thrown after the others were tried.
   */
  async enable(): Promise<void> {
    await this.apply('enable', [this.rules.controller, ...(this.rules.probe ? [this.rules.probe] : [])]);
  }

  /**
   * The probe's rule first, then the controller's, and the controller's only when the probe's did
   * switch off: a failure leaves the controller's schedule on, so that its next tick (which finds
   * nothing live again) tries both again. Never a probe running alone with no controller to stop it.
   */
  async disable(): Promise<void> {
    if (this.rules.probe) await this.apply('disable', [this.rules.probe]);
    await this.apply('disable', [this.rules.controller]);
  }

  /**
   * Enables some of the rules (a shared controller: its own rule, and the probe's, which serves
   * every family's migrations): the controller's first, as in `enable`.
   */
  async enableSome(which: { readonly controller: boolean; readonly probe: boolean }): Promise<void> {
    const names = [...(which.controller ? [this.rules.controller] : []), ...(which.probe && this.rules.probe ? [this.rules.probe] : [])];
    if (names.length > 0) await this.apply('enable', names);
  }

  /**
   * Disables the controller's rule, and the probe's too when `probe` (no live migration of any
   * family is left): the probe's first, as in `disable`.
   */
  async disableSome(which: { readonly probe: boolean }): Promise<void> {
    if (which.probe && this.rules.probe) await this.apply('disable', [this.rules.probe]);
    await this.apply('disable', [this.rules.controller]);
  }

  private async apply(action: 'enable' | 'disable', names: readonly string[]): Promise<void> {
    const failed: { rule: string; error: string }[] = [];
    const switched: string[] = [];
    for (const name of names) {
      try {
        await this.eventBridge.send(action === 'enable' ? new EnableRuleCommand({ Name: name }) : new DisableRuleCommand({ Name: name }));
        switched.push(name);
      } catch (error) {
        failed.push({ rule: name, error: describeError(error) });
      }
    }
    if (failed.length > 0) throw new ScheduleSwitchError(action, failed, switched);
  }
}

/** Lambda retries a failed asynchronous invocation after one minute at the earliest. */
const REDELIVERY_AFTER_MS = 55_000;

/**
 * A scheduled event delivered a minute or more after it fired: Lambda's retry of a failed
 * asynchronous invocation (one and two minutes later, the same event), or a late delivery. The
 * failure may have been a re-enable after a disable, after which nothing else would switch the
 * schedules on again for a migration a deploy recorded meanwhile; EnableRule is idempotent, so
 * enabling on every such tick is harmless. A schedule tick on time needs nothing: the schedule
 * that sent it is on.
 */
export function isRedelivery(woken: Woken, nowMs: number): boolean {
  if (woken.by !== 'schedule' || !('firedAtMs' in woken) || woken.firedAtMs === undefined) return false;
  return nowMs - woken.firedAtMs >= REDELIVERY_AFTER_MS;
}

export interface ScheduleKeeperDeps {
  readonly switch: Pick<ScheduleSwitch, 'enable' | 'disable'>;
  /** For the log lines. */
  readonly rules: ScheduleRules;
  /** The current migration's id, read consistently (the pointer). */
  readonly currentMigrationId: () => Promise<string | undefined>;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly now: () => number;
}

/** What woke the controller, as far as the schedules are concerned. */
export type Woken = { readonly by: 'command' } | { readonly by: string; readonly firedAtMs?: number };

/** The controller's side of the switch: on for a new migration, off once none needs ticks. */
export class ScheduleKeeper {
  constructor(private readonly deps: ScheduleKeeperDeps) {}

  /**
   * After a run that saw `record` (the migration's record after it; undefined when it could not
   * be read). Live: on for a migration a deploy just recorded (the deploy trigger enabled them
   * already; this covers an enable of its that failed), after an operator's command (rare, and a
   * synchronous command that re-enabled in vain is not retried by Lambda: the next one enables;
   * it also repairs a rule disabled by hand), on an alarm or probe event (rare; it repairs a rule
   * a stack update reset), and on a redelivered scheduled tick (see `isRedelivery`). Not live: off, but only when this invocation can have changed that (the
   * migration was live when it was loaded) or the schedule itself woke it (so it is on): a state
   * change of an alarm while nothing migrates disables nothing that is not already off.
   * Returns true when it read the pointer again (the caller drops its cached copy).
   */
  async afterRun(woken: Woken, record: Parameters<typeof needsTicks>[0], liveAtStart: boolean, migrationId: string): Promise<boolean> {
    if (needsTicks(record)) {
      if (woken.by === 'deploy') await this.enable('a deploy recorded this migration');
      else if (woken.by === 'command') await this.enable("an operator's command: its migration is live");
      else if (this.isRedelivery(woken)) await this.enable('a failed scheduled tick is retried: its failure may have been a re-enable');
      // Rare events (an alarm's state change, a probe's desync) of a live migration: a stack
      // update that touched a rule reset it to DISABLED, and nothing else would turn it on again.
      else if (woken.by === 'alarm' || woken.by === 'probe') await this.enable(`a ${woken.by} event for a live migration: its schedules must be on`);
      return false;
    }
    if (!liveAtStart && woken.by !== 'schedule') return false;
    await this.quiesce(migrationId);
    return true;
  }

  /**
   * Switches the schedules off, then reads the pointer again and switches them back on when a
   * deploy recorded a new migration meanwhile (a migration other than `checkedMigrationId`, the
   * one found not live; undefined: none was recorded). The deploy trigger writes the pointer
   * before it enables; this disables before it reads: either this read sees the new pointer, or
   * the deploy's enable comes after this disable. A disable that fails is only logged: the
   * schedule stays on and its next tick, finding nothing live again, tries again. A re-enable that
   * fails fails the invocation, so that Lambda retries it (a tick is idempotent) rather than leave
   * a new migration without ticks.
   */
  async quiesce(checkedMigrationId: string | undefined): Promise<void> {
    const { logger, rules } = this.deps;
    try {
      await this.deps.switch.disable();
      logger.info('no migration needs ticks: schedules disabled', { rules });
    } catch (error) {
      // Some rule may have switched off all the same (the probe's, or one whose answer was lost):
      // the pointer is read again below either way, or a deploy in between would be left without it.
      logger.warn('could not disable the schedules; the next scheduled tick tries again', { error: describeError(error) });
    }
    const current = await this.deps.currentMigrationId();
    if (current !== undefined && current !== checkedMigrationId) {
      await this.enable(`migration ${current} was recorded while the schedules were being disabled`);
    }
  }

  private isRedelivery(woken: Woken): boolean {
    return isRedelivery(woken, this.deps.now());
  }

  private async enable(why: string): Promise<void> {
    try {
      await this.deps.switch.enable();
      this.deps.logger.info('schedules enabled', { why, rules: this.deps.rules });
    } catch (error) {
      this.deps.logger.error('could not enable the schedules; failing so that Lambda retries this invocation', { why, error: describeError(error) });
      throw error;
    }
  }
}
