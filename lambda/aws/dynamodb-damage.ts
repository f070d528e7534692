/**
 * A record item the controller cannot trust: how one is recognised (`checkState`, and an event
 * log whose outbox cannot be copied out, `damagedLogError`), and how `quarantine` replaces it
 * after keeping a whole copy for people to inspect. Separate from the record log
 * (dynamodb-record-log.ts) because it is the exception path: the ordinary save never needs it,
 * and what it may overwrite is decided here alone.
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { MigrationRecord } from '../core/controller';
import type { MigrationEvent } from '../core/model';
import { DamagedStateError, StaleStateError, type ReplacementBuilder, type StateDamage } from '../core/ports';
import { errorName } from './clients';
import type { EventLogConflictError, StateItem } from './dynamodb-record-log';
import { DAMAGED_SK_PREFIX, STATE_SK, migrationPk, padTime, plainJson, type TableAccess } from './dynamodb-table';

/** The record item, or `DamagedStateError` when it lacks a numeric version or a record map. */
export function checkState(migrationId: string, raw: Record<string, unknown>): StateItem {
  const item = raw as unknown as StateItem;
  const version = typeof item.version === 'number' ? item.version : undefined;
  const problem =
    version === undefined
      ? `version is ${JSON.stringify(item.version ?? null)}, not a number`
      : item.record === null || typeof item.record !== 'object' || Array.isArray(item.record)
        ? `record is ${JSON.stringify(item.record ?? null)?.slice(0, 80)}, not a map`
        : item.outbox !== undefined && !Array.isArray(item.outbox)
          ? 'outbox is not a list'
          : undefined;
  if (problem) {
    throw new DamagedStateError(migrationId, {
      what: `state item of migration ${migrationId} is malformed: ${problem}`,
      ...(version !== undefined ? { version } : {}),
      ...(item.record !== undefined ? { raw: item.record } : {}),
      fingerprint: versionFingerprint(version),
    });
  }
  return item;
}

/** What identifies a damaged state item for `quarantine`: its version, or that it has none. */
export function versionFingerprint(version: number | undefined): string {
  return version === undefined ? 'unversioned' : `version:${version}`;
}

/**
 * The error `load` reports when the outbox of record version `item.version` cannot be copied out
 * because an event item already holds a different event: retrying would fail the same way.
 */
export function damagedLogError(migrationId: string, item: StateItem, error: EventLogConflictError): DamagedStateError {
  return new DamagedStateError(migrationId, {
    what: `${error.message} (outbox of record version ${item.version})`,
    version: item.version,
    raw: item.record,
    fingerprint: versionFingerprint(item.version),
  });
}

/**
 * Replaces a damaged record item. The damaged item is first copied, whole, to
 * `sk=DAMAGED#<time>` in the same partition (kept for people to inspect); the replacement is a
 * conditional PutItem on the damaged item's version (or on its lack of one), so a replacement
 * that lost a race with another writer is refused. Its events follow the highest event item;
 * the caller copies them out of the outbox (`flushOutbox`).
 */
export async function replaceDamaged(
  table: TableAccess,
  migrationId: string,
  damage: StateDamage,
  build: ReplacementBuilder<MigrationRecord, MigrationEvent>,
): Promise<{ readonly version: number; readonly record: MigrationRecord; readonly outbox: MigrationEvent[] }> {
  const key = { pk: migrationPk(migrationId), sk: STATE_SK };
  const current = (await table.documents.send(new GetCommand({ TableName: table.tableName, Key: key, ConsistentRead: true }))).Item;
  const fingerprint = damage.fingerprint ?? (damage.version !== undefined ? versionFingerprint(damage.version) : undefined);
  const version = typeof current?.version === 'number' ? current.version : undefined;
  if (!current || fingerprint !== versionFingerprint(version)) throw new StaleStateError(migrationId, damage.version ?? 0);

  const keptSk = `${DAMAGED_SK_PREFIX}${padTime(Date.now())}`;
  await table.documents.send(
    new PutCommand({ TableName: table.tableName, Item: { ...current, sk: keptSk }, ConditionExpression: 'attribute_not_exists(sk)' }),
  );
  const outboxSeqs = (Array.isArray(current.outbox) ? current.outbox : []).map((e: unknown) => (e as { seq?: unknown } | null)?.seq);
  const lastEventSeq = Math.max(0, await highestEventSeq(table, migrationId), ...outboxSeqs.filter((n): n is number => typeof n === 'number' && Number.isFinite(n)));
  const { record, events } = build({ lastEventSeq, keptAs: `table ${table.tableName} item pk=${migrationPk(migrationId)}, sk=${keptSk}` });
  const next = (version ?? 0) + 1;
  const outbox = events.map((e) => plainJson(e));
  try {
    await table.documents.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { ...key, version: next, record: plainJson(record), ...(outbox.length > 0 ? { outbox } : {}), updatedAtMs: Date.now() },
        ...(version === undefined
          ? { ConditionExpression: 'attribute_exists(pk) AND NOT attribute_type(#version, :number)', ExpressionAttributeValues: { ':number': 'N' } }
          : { ConditionExpression: '#version = :expected', ExpressionAttributeValues: { ':expected': version } }),
        ExpressionAttributeNames: { '#version': 'version' },
      }),
    );
  } catch (error) {
    if (errorName(error) === 'ConditionalCheckFailedException') throw new StaleStateError(migrationId, damage.version ?? 0);
    throw error;
  }
  return { version: next, record, outbox };
}

/** The highest event sequence number stored as an event item (0 if none). */
async function highestEventSeq(table: TableAccess, migrationId: string): Promise<number> {
  const page = await table.documents.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': migrationPk(migrationId), ':prefix': 'EVENT#' },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    }),
  );
  const seq = page.Items?.[0]?.seq;
  return typeof seq === 'number' ? seq : 0;
}
