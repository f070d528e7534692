/**
 * Whether a migration still needs the schedule's ticks: one rule, used by the controller's schedule
 * keeping (schedules.ts, controller-schedules.ts) and by the deploy trigger's Delete. A module of its
 * own, without SDK imports, so that the deploy trigger's module (which the operator CLI imports for
 * its command client) does not pull the EventBridge client into the CLI.
 */
import { MigrationStatus } from '../core/model';
import type { MigrationRecord } from '../core/record';

/**
 * Whether a migration still needs the schedule's ticks (and the probe's runs).
 *
 * - Pending (or recorded with no record yet), gating, shifting, baking, promoted, soaking: moving.
 * - Paused: a human decides, but ticks still settle a change in flight and keep the old side's
 *   pin checked; the probe keeps the evidence fresh for the decision.
 * - Complete (manual teardown, waiting for it): live. The core still watches a complete migration
 *   (an alarm, a probe desync or the judge still roll it back onto the pinned old side, and every
 *   tick checks the pin holds). Stopping the ticks would make "complete" a state in which a
 *   regression goes unnoticed while the old side is still paid for; the pin costs far more than
 *   the ticks anyway. The schedule stops at the teardown.
 * - Torn down: not live, unless the pin's release was interrupted (`capacityReleasing`: a tick
 *   finishes it).
 * - Rolled back: live while the residual watch runs (the new side is watched until it drained),
 *   or a release is interrupted; then not live. Its pin stays until an operator's teardown, which
 *   invokes the controller directly and needs no schedule.
 *
 * A record that cannot be read (damaged) counts as live: the ticks fail safe on it.
 */
export function needsTicks(record: Pick<MigrationRecord, 'status' | 'residual' | 'capacityReleasing'> | undefined): boolean {
  if (!record) return true;
  if (record.capacityReleasing) return true;
  switch (record.status) {
    case MigrationStatus.TORN_DOWN:
      return false;
    case MigrationStatus.ROLLED_BACK:
      return record.residual !== undefined && record.residual.endedAtMs === undefined;
    default:
      return true;
  }
}
