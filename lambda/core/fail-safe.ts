/**
 * What the controller does with a record it cannot trust: route everything to the old side,
 * replace the record with a stopped one that says what was damaged (the damaged one is kept
 * aside), raise an alert, and stop.
 *
 * ## Why these steps, in this order
 * 1. **Traffic to the old side first.** A damaged record cannot say whether the new side is
 *    healthy, and a tick that cannot read its record cannot watch it. The old side is the one
 *    known to work and, until a teardown, is pinned at full scale. The routing port knows both
 *    sides from its own configuration, so it needs nothing from the record.
 * 2. **Then replace the record, never before.** If routing cannot be reached, the record stays as
 *    it is, the alert goes out, and the tick fails: the next tick tries again. A record saying
 *    "rolled back" while traffic still reaches the new side would be a lie nobody rechecks.
 * 3. **Stop.** The replacement is a terminal `rolled-back` record with `damage` set, so later
 *    ticks are no-ops instead of throwing forever; a teardown still releases the old side's pin.
 *    Everything that could be read of the damaged record is kept in the replacement; each field
 *    that could not is named in `damage.lost`.
 * 4. **Alert once, with one message.** The `state-damaged` event names what was damaged, what
 *    happened to the traffic, and where the damaged state was kept. It is saved in the log and
 *    published (EventBridge and SNS on AWS, the live view locally).
 */
import { DEFAULT_JUDGE_CONFIG } from './judge';
import { Action, MigrationStatus as S, type MigrationEvent } from './model';
import { MigrationPlan, type PlanSpec } from './plan';
import { RevisionConflictError, type Clock, type StateDamage, type TrafficPort } from './ports';
import { checkRecord, freshRecord, salvageRecord, type MigrationRecord } from './record';
import { ROLLBACK_ATTEMPTS, TrafficShiftError, errorMessage, sameWeight } from './routing';

/**
 * Stands in for a plan that could not be read back from a damaged record. The record it goes into
 * is terminal, so it is never run; `damage.lost` names `plan` so nobody mistakes it for the real one.
 */
export const UNREADABLE_PLAN: PlanSpec = MigrationPlan.fromSteps([{ weight: 100, bakeMs: 60_000 }], {
  soakMs: 0,
  healthWindowMs: 60_000,
}).toSpec();

/**
 * The routing step: weight 0, retrying conflicts like a rollback. Returns what it did. A source
 * that reports the write as not yet settled (a load balancer with no conditional write, whose
 * change a late writer could still overwrite) is read back before the record is replaced: the
 * replacement is terminal, so no later tick would look again.
 */
export async function routeAllToOld(traffic: TrafficPort): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const current = await traffic.getWeight();
    if (sameWeight(current.weight, 0)) return attempt === 1 ? 'all traffic was already on the old side' : 'all traffic is on the old side';
    try {
      const written = await traffic.setWeight(0, current.revision);
      if (written.settled === false) {
        const check = await traffic.getWeight();
        if (!sameWeight(check.weight, 0)) {
          if (attempt >= ROLLBACK_ATTEMPTS) {
            throw new Error(`the routing read back at ${check.weight}% after it was set to 0% ${attempt} times: another writer keeps changing it`);
          }
          continue;
        }
      }
      return `all traffic was routed to the old side (new side's weight ${current.weight}% → 0%)`;
    } catch (error) {
      if (!(error instanceof RevisionConflictError) || attempt >= ROLLBACK_ATTEMPTS) throw error;
    }
  }
}

/** The terminal record that replaces a damaged one, and its `state-damaged` event. */
export function replacementFor(
  migrationId: string,
  damage: StateDamage,
  routed: string,
  context: { readonly lastEventSeq: number; readonly keptAs: string; readonly now: number },
): { record: MigrationRecord; events: MigrationEvent[] } {
  const { fields, lost } = salvageRecord(damage.raw);
  const { now, keptAs } = context;
  const seq = Math.max(context.lastEventSeq, fields.eventSeq ?? 0) + 1;
  const reason = `stored state damaged (${damage.what}): ${routed}, and the migration stopped; the damaged state is kept as ${keptAs}`;
  const decision = { action: Action.ROLLBACK, code: 'state-damaged', reason, signals: {} };
  const base = freshRecord({ id: migrationId, status: S.ROLLED_BACK, plan: UNREADABLE_PLAN, judge: DEFAULT_JUDGE_CONFIG, metadata: {}, eventSeq: seq, now });
  // Keep what could be read; the fields that describe where the migration stood are replaced
  // because the migration no longer stands there.
  const {
    status: _status,
    weight: _weight,
    shift: _shift,
    pausedFrom: _pausedFrom,
    capacityReleasing,
    capacityRestoring: _restoring,
    lastDecision: _decision,
    damage: _damage,
    eventSeq: _seq,
    ...kept
  } = fields;
  let record: MigrationRecord = {
    ...base,
    ...kept,
    id: migrationId,
    updatedAtMs: now,
    // A teardown interrupted mid-release: whether the pin is still there is unknown; say released
    // only if it was confirmed, so that a teardown command can release it again.
    capacityReleased: kept.capacityReleased === true && capacityReleasing !== true,
    damage: { what: damage.what, detectedAtMs: now, keptAs, lost: lost.filter((key) => !OPTIONAL_FIELDS.has(key)) },
    lastDecision: decision,
  };
  if (!checkRecord(migrationId, record).ok) {
    // A field kept on its own may not fit another (a step beyond a salvaged plan): keep the minimum.
    record = { ...record, step: -1, plan: kept.plan ?? UNREADABLE_PLAN };
    if (!checkRecord(migrationId, record).ok) record = { ...base, damage: record.damage!, lastDecision: decision };
  }
  const event: MigrationEvent = {
    migrationId,
    seq,
    atMs: now,
    type: 'state-damaged',
    from: fields.status ?? S.ROLLED_BACK,
    to: S.ROLLED_BACK,
    weight: 0,
    step: record.step,
    reason,
    code: 'state-damaged',
  };
  return { record, events: [event] };
}

/** Optional fields whose loss is not worth naming (they are absent in a healthy record too). */
const OPTIONAL_FIELDS = new Set<string>([
  'pinnedCapacity',
  'phaseStartedAtMs',
  'lastWindowEndMs',
  'lastWindowReadMs',
  'alarmsConfirmedAtMs',
  'latestNewProbe',
  'trafficRevision',
  'shift',
  'pausedFrom',
  'capacityReleasing',
  'damage',
  'lastDecision',
]);

/** Thrown (after the alert) when the routing could not be moved to the old side. */
export class FailSafeRoutingError extends TrafficShiftError {
  constructor(migrationId: string, damage: StateDamage, cause: unknown) {
    super(
      `stored state of migration ${migrationId} is damaged (${damage.what}) and routing all traffic to the old side failed: ${errorMessage(cause)}; the record was left as it is and the next tick tries again`,
      cause,
    );
    this.name = 'FailSafeRoutingError';
  }
}

/**
 * The alert published when routing failed too. Nothing is saved (the record stays as it is, for
 * the next tick to try again), so the event has no place in the log: its `seq` is 0. Its weight and
 * status are the damaged record's, as far as they could be read: the routing is not known to be
 * anywhere else.
 */
export function unroutedAlert(migrationId: string, damage: StateDamage, error: FailSafeRoutingError, clock: Clock): MigrationEvent {
  const { fields } = salvageRecord(damage.raw);
  const status = fields.status ?? S.PAUSED;
  return {
    migrationId,
    seq: 0,
    atMs: clock.now(),
    type: 'state-damaged',
    from: status,
    to: status,
    weight: fields.weight ?? 0,
    step: fields.step ?? -1,
    reason: error.message,
    code: 'state-damaged-unrouted',
  };
}
