/**
 * The signals a migration is judged on, as the table keeps them: the probe results (with a TTL)
 * and the alarm states, both in the migration's own partition, and the probe results taken while
 * an alias has no migration (an audit trail nothing reads). Separate from the record log
 * (dynamodb-record-log.ts): signals are written by many writers without versions (the probe, the
 * alarm events, the confirmations) and only the newest alarm state wins, where the record has
 * exactly one writer per version.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AlarmSignal, ProbeOutcome, Side } from '../core/ports';
import { errorName } from './clients';
import { PROBE_SK_END, PROBE_SK_PREFIX, alarmSk, migrationPk, plainJson, probeSkFrom, type TableAccess } from './dynamodb-table';

/** A probe result as the probe handler records it: the core's outcome plus the report's figures. */
export interface StoredProbeResult extends ProbeOutcome {
  /** The probed URL. */
  readonly url?: string;
  readonly unsolicitedBytes?: number;
  readonly shiftedSteps?: number;
  /** Share of steps whose keep-alive answer differed from the control, 0–1. */
  readonly mismatchRate?: number;
  readonly durationMs?: number;
}

/** An alarm state as recorded in the table. */
export interface StoredAlarmState extends AlarmSignal {
  /** When the alarm entered the state (CloudWatch's own timestamp): newer always wins. */
  readonly changedAtMs: number;
  /** How the state arrived: a state change event, or a `DescribeAlarms` confirmation. */
  readonly source: 'event' | 'describe';
  /** When it was written, epoch ms. */
  readonly recordedAtMs: number;
}

/** Records a probe result under `pk`/`sk`, to expire `ttlSeconds` after it was taken. */
export async function putProbeItem(table: TableAccess, ttlSeconds: number, pk: string, sk: string, result: StoredProbeResult): Promise<void> {
  await table.documents.send(
    new PutCommand({
      TableName: table.tableName,
      Item: { pk, sk, ...plainJson(result), expiresAt: Math.floor(result.atMs / 1000) + ttlSeconds },
    }),
  );
}

/** Probe results of a migration at or after `sinceMs`, oldest first. */
export async function probeResultsSince(table: TableAccess, migrationId: string, sinceMs: number): Promise<StoredProbeResult[]> {
  const results: StoredProbeResult[] = [];
  await queryProbes(table, migrationId, sinceMs, true, (r) => {
    results.push(r);
    return true;
  });
  return results;
}

/** The newest result of a migration for `side` at or after `sinceMs`, if any. */
export async function latestProbeResult(table: TableAccess, migrationId: string, side: Side, sinceMs: number): Promise<StoredProbeResult | undefined> {
  let latest: StoredProbeResult | undefined;
  await queryProbes(table, migrationId, sinceMs, false, (r) => {
    if (r.side !== side) return true;
    latest = r;
    return false;
  });
  return latest;
}

/** Reads the probe range page by page, handing each result to `each` until it returns false. */
async function queryProbes(table: TableAccess, migrationId: string, sinceMs: number, oldestFirst: boolean, each: (r: StoredProbeResult) => boolean): Promise<void> {
  const since = Math.max(0, Math.floor(sinceMs));
  let startKey: Record<string, unknown> | undefined;
  let pages = 0;
  do {
    if (pages >= table.maxPages) {
      throw new Error(`probe results of migration ${migrationId} since ${since} span more than ${table.maxPages} pages; refusing to read on`);
    }
    const page = await table.documents.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': migrationPk(migrationId), ':from': probeSkFrom(since), ':to': PROBE_SK_END },
        ScanIndexForward: oldestFirst,
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    pages++;
    for (const item of page.Items ?? []) if (!each(toProbeResult(item))) return;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/**
 * Records an alarm's state unless a newer one is already recorded (CloudWatch's timestamps
 * decide, so events arriving late or twice, and confirmations racing them, cannot roll a state
 * back). A `describe` state replaces an `event` state of the same time: it is the authoritative
 * read. Returns whether it was written (the store then drops what its last load read).
 */
export async function putAlarmState(table: TableAccess, migrationId: string, state: StoredAlarmState): Promise<boolean> {
  if (!state.name) throw new TypeError('alarm state must have a name');
  if (!Number.isFinite(state.changedAtMs)) {
    throw new RangeError(`alarm ${state.name}: changedAtMs must be epoch ms, got ${JSON.stringify(state.changedAtMs)}`);
  }
  try {
    await table.documents.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { pk: migrationPk(migrationId), sk: alarmSk(state.name), ...plainJson(state) },
        ConditionExpression: `attribute_not_exists(sk) OR changedAtMs ${state.source === 'describe' ? '<=' : '<'} :changedAtMs`,
        ExpressionAttributeValues: { ':changedAtMs': state.changedAtMs },
      }),
    );
  } catch (error) {
    if (errorName(error) === 'ConditionalCheckFailedException') return false;
    throw error;
  }
  return true;
}

/** The time in a `PROBE#<atMs>#<side>` key. */
export function probeTimeOf(sk: string): number {
  return Number(sk.slice(PROBE_SK_PREFIX.length, PROBE_SK_PREFIX.length + 15));
}

export function toAlarmState(item: Record<string, unknown>): StoredAlarmState {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as unknown as StoredAlarmState;
}

export function toProbeResult(item: Record<string, unknown>): StoredProbeResult {
  const { pk: _pk, sk: _sk, expiresAt: _expiresAt, ...rest } = item;
  return rest as unknown as StoredProbeResult;
}
