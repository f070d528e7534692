/**
 * The versioned migration record and its append-only event log: the conditional save of the
 * record item with its new events in an outbox, the copy of those events to their own items, and
 * the reading of the log. Separate from the store (dynamodb-store.ts), which keeps what one
 * container remembers between calls: this is what is written to the table, and the atomicity
 * argument that goes with it.
 *
 * ## Why an outbox instead of TransactWriteItems
 * A save must write the record and its events together or not at all. The record item itself
 * carries the new events (`outbox`) in the same conditional PutItem that checks the version, so
 * both land atomically in one single-item write — the strongest guarantee DynamoDB gives, and one
 * that every DynamoDB emulator implements (dynalite, which the tests run against, has no
 * transactions). The events are then copied to their own items with `attribute_not_exists(sk)`
 * and the outbox is cleared. If that copy is interrupted, the next `load` finishes it, and
 * `events()` reads the outbox too, so an event is never lost, and the per-event condition means
 * one is never written twice or overwritten.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { MigrationRecord } from '../core/controller';
import type { MigrationEvent } from '../core/model';
import { StaleStateError } from '../core/ports';
import { errorName } from './clients';
import { checkState } from './dynamodb-damage';
import { STATE_SK, eventSk, migrationPk, plainJson, type TableAccess } from './dynamodb-table';

/** The record item as stored. */
export interface StateItem {
  readonly pk: string;
  readonly sk: string;
  readonly version: number;
  readonly record: MigrationRecord;
  readonly outbox?: MigrationEvent[];
  readonly updatedAtMs?: number;
}

/** An event sequence number already holds a different event: a bug, never papered over. */
export class EventLogConflictError extends Error {
  constructor(
    readonly migrationId: string,
    readonly seq: number,
  ) {
    super(`event ${seq} of migration ${migrationId} already holds a different event; refusing to overwrite the log`);
    this.name = 'EventLogConflictError';
  }
}

/**
 * Writes `record` as version `expectedVersion + 1` with `events` in its outbox, if the stored
 * version is still `expectedVersion` (0: there must be none); `StaleStateError` otherwise. The
 * events are not copied out of the outbox here (see `flushOutbox`).
 */
export async function putRecord(
  table: TableAccess,
  migrationId: string,
  record: MigrationRecord,
  expectedVersion: number,
  events: readonly MigrationEvent[],
): Promise<{ readonly version: number; readonly outbox: MigrationEvent[] }> {
  if (!Number.isInteger(expectedVersion) || expectedVersion < 0) {
    throw new RangeError(`expectedVersion must be a whole number ≥ 0, got ${JSON.stringify(expectedVersion)}`);
  }
  if (record.id !== migrationId) {
    throw new TypeError(`record id ${JSON.stringify(record.id)} does not match migration ${JSON.stringify(migrationId)}`);
  }
  const seqs = new Set<number>();
  for (const event of events) {
    if (event.migrationId !== migrationId) {
      throw new TypeError(`event ${event.seq} belongs to migration ${JSON.stringify(event.migrationId)}, not ${JSON.stringify(migrationId)}`);
    }
    if (!Number.isInteger(event.seq) || event.seq < 1 || seqs.has(event.seq)) {
      throw new TypeError(`event seq must be unique whole numbers ≥ 1, got ${JSON.stringify(event.seq)}`);
    }
    seqs.add(event.seq);
  }
  const version = expectedVersion + 1;
  const outbox = events.map((e) => plainJson(e));
  try {
    await table.documents.send(
      new PutCommand({
        TableName: table.tableName,
        Item: {
          pk: migrationPk(migrationId),
          sk: STATE_SK,
          version,
          record: plainJson(record),
          ...(outbox.length > 0 ? { outbox } : {}),
          updatedAtMs: Date.now(),
        },
        ...(expectedVersion === 0
          ? { ConditionExpression: 'attribute_not_exists(pk)' }
          : {
              ConditionExpression: '#version = :expected',
              ExpressionAttributeNames: { '#version': 'version' },
              ExpressionAttributeValues: { ':expected': expectedVersion },
            }),
      }),
    );
  } catch (error) {
    if (errorName(error) === 'ConditionalCheckFailedException') throw new StaleStateError(migrationId, expectedVersion);
    throw error;
  }
  return { version, outbox };
}

/** The events of a migration, oldest first: the event items and those still in the outbox. */
export async function readEvents(table: TableAccess, migrationId: string): Promise<readonly MigrationEvent[]> {
  const bySeq = new Map<number, MigrationEvent>();
  let startKey: Record<string, unknown> | undefined;
  let pages = 0;
  do {
    if (pages >= table.maxPages) {
      throw new Error(`event log of migration ${migrationId} is longer than ${table.maxPages} pages; refusing to read on`);
    }
    const page = await table.documents.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': migrationPk(migrationId), ':prefix': 'EVENT#' },
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    pages++;
    for (const item of page.Items ?? []) {
      const event = item.event as MigrationEvent | undefined;
      if (event) bySeq.set(event.seq, event);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  // Events saved but not copied yet (read after the query, so none can slip between the two).
  const state = await getStateItem(table, migrationId);
  for (const event of state?.outbox ?? []) if (!bySeq.has(event.seq)) bySeq.set(event.seq, event);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** Copies outbox events to their own items, then clears the outbox of that version. */
export async function flushOutbox(table: TableAccess, migrationId: string, version: number, events: readonly MigrationEvent[]): Promise<void> {
  await Promise.all(events.map((event) => putEvent(table, migrationId, event)));
  try {
    await table.documents.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { pk: migrationPk(migrationId), sk: STATE_SK },
        UpdateExpression: 'REMOVE outbox',
        ConditionExpression: '#version = :version',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':version': version },
      }),
    );
  } catch (error) {
    // A newer save already replaced the outbox (after its own load flushed this one): fine.
    if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
  }
}

async function putEvent(table: TableAccess, migrationId: string, event: MigrationEvent): Promise<void> {
  const key = { pk: migrationPk(migrationId), sk: eventSk(event.seq) };
  try {
    await table.documents.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { ...key, seq: event.seq, event },
        ConditionExpression: 'attribute_not_exists(sk)',
      }),
    );
  } catch (error) {
    if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
    // Already there: fine if it is this very event (an interrupted copy being finished).
    const existing = await table.documents.send(
      new GetCommand({ TableName: table.tableName, Key: key, ConsistentRead: true }),
    );
    const stored = existing.Item?.event as MigrationEvent | undefined;
    if (!stored || !sameEvent(stored, event)) throw new EventLogConflictError(migrationId, event.seq);
  }
}

/** The record item, checked (see `checkState`), or undefined when there is none. */
export async function getStateItem(table: TableAccess, migrationId: string): Promise<StateItem | undefined> {
  const result = await table.documents.send(
    new GetCommand({
      TableName: table.tableName,
      Key: { pk: migrationPk(migrationId), sk: STATE_SK },
      ConsistentRead: true,
    }),
  );
  return result.Item ? checkState(migrationId, result.Item) : undefined;
}

/**
 * The same event: compared field by field on what identifies it, since DynamoDB does not keep the
 * key order of maps (so the stored JSON text can differ for equal events).
 */
function sameEvent(a: MigrationEvent, b: MigrationEvent): boolean {
  return (
    a.seq === b.seq &&
    a.type === b.type &&
    a.atMs === b.atMs &&
    a.from === b.from &&
    a.to === b.to &&
    a.weight === b.weight &&
    a.step === b.step &&
    a.code === b.code &&
    a.reason === b.reason
  );
}
