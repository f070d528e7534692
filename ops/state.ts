/**
 * A stored record as an operator reads it (`MigrationState`), the same from DynamoDB and from a
 * rehearsal's files. The record is checked with the controller's own schema first: a record the
 * controller would refuse to act on is shown as `damaged`, never as whatever its fields say.
 */
import type { MigrationRecord } from '../lambda/core/controller';
import type { MigrationEvent } from '../lambda/core/model';
import { MigrationPlan } from '../lambda/core/plan';
import { DamagedStateError } from '../lambda/core/ports';
import { checkRecord } from '../lambda/core/record';
import { RECENT_EVENTS, type EventLine, type MigrationState, type MigrationSummary, type SourceKind } from './types';

/** What a source read for one migration: the raw record (unchecked), or the damage its store reported. */
export type ReadRecord = { readonly kind: 'record'; readonly raw: unknown } | { readonly kind: 'damaged'; readonly what: string };

/** A store's load result (or its `DamagedStateError`) as a `ReadRecord`. */
export async function readRecord(load: () => Promise<{ readonly record: unknown } | undefined>): Promise<ReadRecord | undefined> {
  try {
    const loaded = await load();
    return loaded ? { kind: 'record', raw: loaded.record } : undefined;
  } catch (error) {
    if (error instanceof DamagedStateError) return { kind: 'damaged', what: error.damage.what };
    throw error;
  }
}

/** The summary of one migration (for `list`). */
export function summaryOf(id: string, read: ReadRecord, extra: Partial<MigrationSummary> = {}): MigrationSummary {
  const checked = check(id, read);
  if (!checked.ok) return { id, ...extra, status: 'damaged', damage: checked.what };
  const r = checked.record;
  return {
    id,
    ...extra,
    status: r.status,
    weight: r.weight,
    step: r.step,
    steps: r.plan.steps.length,
    updatedAtMs: r.updatedAtMs,
    ...(r.damage ? { damage: `${r.damage.what} (kept as ${r.damage.keptAs})` } : {}),
  };
}

/** The full state of one migration (for `status` and `watch`). */
export function stateOf(
  source: SourceKind,
  id: string,
  read: ReadRecord,
  events: readonly MigrationEvent[],
  extra: Partial<MigrationSummary> = {},
): MigrationState {
  const summary = summaryOf(id, read, extra);
  const recentEvents = events.slice(-RECENT_EVENTS).map(eventLine);
  const checked = check(id, read);
  if (!checked.ok) return { ...summary, source, recentEvents };
  const r = checked.record;
  const plan = describePlan(r);
  return {
    ...summary,
    source,
    ...(plan !== undefined ? { plan } : {}),
    stepWeights: r.plan.steps.map((s) => s.weight),
    judge: r.judge,
    createdAtMs: r.createdAtMs,
    ...(r.phaseStartedAtMs !== undefined ? { phaseStartedAtMs: r.phaseStartedAtMs } : {}),
    ...(r.pausedFrom !== undefined ? { pausedFrom: r.pausedFrom } : {}),
    ...(r.shift
      ? { pendingChange: { kind: r.shift.kind, weight: r.shift.weight, fromWeight: r.shift.fromWeight, requestedAtMs: r.shift.requestedAtMs } }
      : {}),
    ...(r.lastDecision ? { lastDecision: { action: r.lastDecision.action, code: r.lastDecision.code, reason: r.lastDecision.reason } } : {}),
    oldCapacity: {
      ...(r.pinnedCapacity !== undefined ? { pinned: r.pinnedCapacity } : {}),
      released: r.capacityReleased,
      restoring: r.capacityRestoring,
    },
    metadata: r.metadata,
    recentEvents,
  };
}

export function eventLine(e: MigrationEvent): EventLine {
  return { seq: e.seq, atMs: e.atMs, type: e.type, from: e.from, to: e.to, weight: e.weight, step: e.step, code: e.code, reason: e.reason };
}

function check(id: string, read: ReadRecord): { ok: true; record: MigrationRecord } | { ok: false; what: string } {
  if (read.kind === 'damaged') return { ok: false, what: read.what };
  const result = checkRecord(id, read.raw);
  if (result.ok) return { ok: true, record: result.record };
  const more = result.problems.length > 3 ? ` (and ${result.problems.length - 3} more)` : '';
  return { ok: false, what: `the record fails its schema: ${result.problems.slice(0, 3).join('; ')}${more}` };
}

function describePlan(r: MigrationRecord): string | undefined {
  try {
    return MigrationPlan.fromSpec(r.plan).describe();
  } catch {
    return undefined;
  }
}
