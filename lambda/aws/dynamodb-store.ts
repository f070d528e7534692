/**
 * The migration table in DynamoDB: the versioned migration record with its append-only event log,
 * the current-migration pointer of an alias, and probe results.
 *
 * Items (partition key `pk`, sort key `sk`):
 * - record:  `pk=MIGRATION#<id>, sk=STATE` with `version` (number), `record` (map) and, until its
 *   events are written out, `outbox` (list of events);
 * - events:  `pk=MIGRATION#<id>, sk=EVENT#<seq zero-padded to 10>` with `event` (map);
 * - pointer: `pk=ALIAS#<fn>:<alias>, sk=CURRENT` with `migrationId`, `oldVersion`, `newVersion`;
 * - probes:  `pk=PROBE#<fn>:<alias>, sk=<atMs zero-padded to 15>#<side>` with `expiresAt` (TTL).
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
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { MigrationRecord } from '../core/controller';
import type { JudgeConfig } from '../core/judge';
import type { MigrationEvent } from '../core/model';
import type { PlanSpec } from '../core/plan';
import { StaleStateError, type ProbeOutcome, type Side, type StateStore } from '../core/ports';
import { clientConfig, describeError, errorName, type AwsClientOptions } from './clients';

/** A DynamoDB client and the document client over it, with the shared retry and timeout settings. */
export function createDocumentClients(options: AwsClientOptions = {}): { dynamoDb: DynamoDBClient; documents: DynamoDBDocumentClient } {
  const dynamoDb = new DynamoDBClient(clientConfig(options));
  return {
    dynamoDb,
    documents: DynamoDBDocumentClient.from(dynamoDb, {
      // Records carry optional fields; undefined means "absent", as in JSON.
      marshallOptions: { removeUndefinedValues: true },
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

export const STATE_SK = 'STATE';
export const CURRENT_SK = 'CURRENT';
export const migrationPk = (migrationId: string): string => `MIGRATION#${migrationId}`;
export const eventSk = (seq: number): string => `EVENT#${String(seq).padStart(10, '0')}`;
export const aliasPk = (aliasKey: string): string => `ALIAS#${aliasKey}`;
export const probePk = (aliasKey: string): string => `PROBE#${aliasKey}`;
export const probeSk = (atMs: number, side: Side): string => `${padTime(atMs)}#${side}`;
/** `${functionName}:${aliasName}`: the key of an alias's pointer and probe results. */
export const aliasKeyOf = (functionName: string, aliasName: string): string => `${functionName}:${aliasName}`;

function padTime(atMs: number): string {
  if (!Number.isInteger(atMs) || atMs < 0) throw new RangeError(`time must be whole epoch milliseconds ≥ 0, got ${JSON.stringify(atMs)}`);
  return String(atMs).padStart(15, '0');
}

// ---------------------------------------------------------------------------------------------
// Items other than the record
// ---------------------------------------------------------------------------------------------

/** What a deploy recorded for the controller to start. */
export interface MigrationSpecInput {
  readonly plan: PlanSpec;
  readonly judge?: Partial<JudgeConfig>;
  readonly pinnedCapacity?: number;
}

/** The alias's current migration (written by the deploy trigger, read by the controller). */
export interface MigrationPointer {
  readonly migrationId: string;
  readonly oldVersion: string;
  readonly newVersion: string;
  /** When the deploy recorded it, epoch ms. */
  readonly createdAtMs: number;
  /**
   * The plan and settings in force at deploy time, so that a migration runs with the settings of
   * the deploy that started it.
   * @default - the controller's own CUTOVER_PLAN / CUTOVER_JUDGE / CUTOVER_PINNED_CAPACITY
   */
  readonly spec?: MigrationSpecInput;
}

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

/** The pointer was changed by someone else since it was read. */
export class PointerConflictError extends Error {
  constructor(
    readonly aliasKey: string,
    readonly expectedMigrationId: string | undefined,
  ) {
    super(
      `the current migration of ${aliasKey} changed while recording a new one (expected ${expectedMigrationId ?? 'none'}): another deploy is running`,
    );
    this.name = 'PointerConflictError';
  }
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

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

export interface DynamoDbStateStoreProps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  /**
   * How long probe results are kept (TTL), in seconds.
   * @default 604800 (7 days)
   */
  readonly probeResultTtlSeconds?: number;
  /**
   * Upper bound on pages read by one query (each page is up to 1 MB).
   * @default 1000
   */
  readonly maxPages?: number;
  /**
   * Receives problems that did not fail the operation (e.g. an outbox copy left for later).
   * @default - written to the console as a warning
   */
  readonly onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

interface StateItem {
  readonly pk: string;
  readonly sk: string;
  readonly version: number;
  readonly record: MigrationRecord;
  readonly outbox?: MigrationEvent[];
  readonly updatedAtMs?: number;
}

export class DynamoDbStateStore implements StateStore<MigrationRecord, MigrationEvent> {
  private readonly maxPages: number;
  private readonly ttlSeconds: number;
  private readonly warn: (message: string, detail?: Record<string, unknown>) => void;

  constructor(private readonly props: DynamoDbStateStoreProps) {
    if (!props.tableName) throw new TypeError('tableName must be a non-empty string');
    this.maxPages = props.maxPages ?? 1000;
    this.ttlSeconds = props.probeResultTtlSeconds ?? 7 * 24 * 3600;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 60) {
      throw new RangeError(`probeResultTtlSeconds must be a whole number ≥ 60, got ${JSON.stringify(props.probeResultTtlSeconds)}`);
    }
    this.warn = props.onWarning ?? ((message, detail) => console.warn(message, detail ?? ''));
  }

  get tableName(): string {
    return this.props.tableName;
  }

  // ----- migration record and events ---------------------------------------------------------

  async load(migrationId: string): Promise<{ readonly record: MigrationRecord; readonly version: number } | undefined> {
    const item = await this.getState(migrationId);
    if (!item) return undefined;
    if (item.outbox && item.outbox.length > 0) {
      // A previous save stopped before copying its events: finish it now, before anyone can save
      // (and so replace the outbox) on top of this version.
      await this.flush(migrationId, item.version, item.outbox);
    }
    return { record: item.record, version: item.version };
  }

  async save(migrationId: string, record: MigrationRecord, expectedVersion: number, events: readonly MigrationEvent[]): Promise<number> {
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
      await this.props.documents.send(
        new PutCommand({
          TableName: this.props.tableName,
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
    if (outbox.length > 0) {
      try {
        await this.flush(migrationId, version, outbox);
      } catch (error) {
        if (error instanceof EventLogConflictError) throw error;
        // The save itself succeeded: the events are durable in the outbox, `events()` returns
        // them, and the next load copies them. Failing here would make the caller think the
        // decision was not recorded.
        this.warn('event copy out of the outbox deferred to the next load', { migrationId, version, error: describeError(error) });
      }
    }
    return version;
  }

  async events(migrationId: string): Promise<readonly MigrationEvent[]> {
    const bySeq = new Map<number, MigrationEvent>();
    let startKey: Record<string, unknown> | undefined;
    let pages = 0;
    do {
      if (pages >= this.maxPages) {
        throw new Error(`event log of migration ${migrationId} is longer than ${this.maxPages} pages; refusing to read on`);
      }
      const page = await this.props.documents.send(
        new QueryCommand({
          TableName: this.props.tableName,
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
    const state = await this.getState(migrationId);
    for (const event of state?.outbox ?? []) if (!bySeq.has(event.seq)) bySeq.set(event.seq, event);
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Copies outbox events to their own items, then clears the outbox of that version. */
  private async flush(migrationId: string, version: number, events: readonly MigrationEvent[]): Promise<void> {
    await Promise.all(events.map((event) => this.putEvent(migrationId, event)));
    try {
      await this.props.documents.send(
        new UpdateCommand({
          TableName: this.props.tableName,
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

  private async putEvent(migrationId: string, event: MigrationEvent): Promise<void> {
    const key = { pk: migrationPk(migrationId), sk: eventSk(event.seq) };
    try {
      await this.props.documents.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: { ...key, seq: event.seq, event },
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      );
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
      // Already there: fine if it is this very event (an interrupted copy being finished).
      const existing = await this.props.documents.send(
        new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }),
      );
      const stored = existing.Item?.event as MigrationEvent | undefined;
      if (!stored || !sameEvent(stored, event)) throw new EventLogConflictError(migrationId, event.seq);
    }
  }

  private async getState(migrationId: string): Promise<StateItem | undefined> {
    const result = await this.props.documents.send(
      new GetCommand({
        TableName: this.props.tableName,
        Key: { pk: migrationPk(migrationId), sk: STATE_SK },
        ConsistentRead: true,
      }),
    );
    const item = result.Item as StateItem | undefined;
    if (!item) return undefined;
    if (typeof item.version !== 'number' || !item.record) {
      throw new Error(`state item of migration ${migrationId} is malformed (version ${JSON.stringify(item.version)})`);
    }
    return item;
  }

  // ----- current-migration pointer -------------------------------------------------------------

  async getPointer(aliasKey: string): Promise<MigrationPointer | undefined> {
    const result = await this.props.documents.send(
      new GetCommand({
        TableName: this.props.tableName,
        Key: { pk: aliasPk(aliasKey), sk: CURRENT_SK },
        ConsistentRead: true,
      }),
    );
    const item = result.Item;
    if (!item) return undefined;
    for (const key of ['migrationId', 'oldVersion', 'newVersion'] as const) {
      if (typeof item[key] !== 'string' || item[key] === '') {
        throw new Error(`pointer of ${aliasKey} is malformed: ${key} is ${JSON.stringify(item[key])}`);
      }
    }
    return {
      migrationId: item.migrationId,
      oldVersion: item.oldVersion,
      newVersion: item.newVersion,
      createdAtMs: typeof item.createdAtMs === 'number' ? item.createdAtMs : 0,
      ...(item.spec ? { spec: item.spec as MigrationSpecInput } : {}),
    };
  }

  /**
   * Makes `pointer` the alias's current migration if the current one is still `replacing`
   * (undefined: there must be none). Throws `PointerConflictError` otherwise.
   */
  async putPointer(aliasKey: string, pointer: MigrationPointer, replacing: string | undefined): Promise<void> {
    try {
      await this.props.documents.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: { pk: aliasPk(aliasKey), sk: CURRENT_SK, ...plainJson(pointer) },
          ...(replacing === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'migrationId = :replacing',
                ExpressionAttributeValues: { ':replacing': replacing },
              }),
        }),
      );
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') throw new PointerConflictError(aliasKey, replacing);
      throw error;
    }
  }

  // ----- probe results --------------------------------------------------------------------------

  async putProbeResult(aliasKey: string, result: StoredProbeResult): Promise<void> {
    await this.props.documents.send(
      new PutCommand({
        TableName: this.props.tableName,
        Item: {
          pk: probePk(aliasKey),
          sk: probeSk(result.atMs, result.side),
          ...plainJson(result),
          expiresAt: Math.floor(result.atMs / 1000) + this.ttlSeconds,
        },
      }),
    );
  }

  /** Probe results at or after `sinceMs`, oldest first. */
  async probeResultsSince(aliasKey: string, sinceMs: number): Promise<StoredProbeResult[]> {
    return this.queryProbes(aliasKey, Math.max(0, Math.floor(sinceMs)), true);
  }

  /** The newest result for `side` at or after `sinceMs`, if any. */
  async latestProbeResult(aliasKey: string, side: Side, sinceMs: number): Promise<StoredProbeResult | undefined> {
    const newestFirst = await this.queryProbes(aliasKey, Math.max(0, Math.floor(sinceMs)), false);
    return newestFirst.find((r) => r.side === side);
  }

  private async queryProbes(aliasKey: string, sinceMs: number, oldestFirst: boolean): Promise<StoredProbeResult[]> {
    const results: StoredProbeResult[] = [];
    let startKey: Record<string, unknown> | undefined;
    let pages = 0;
    do {
      if (pages >= this.maxPages) {
        throw new Error(`probe results of ${aliasKey} since ${sinceMs} span more than ${this.maxPages} pages; refusing to read on`);
      }
      const page = await this.props.documents.send(
        new QueryCommand({
          TableName: this.props.tableName,
          KeyConditionExpression: 'pk = :pk AND sk >= :since',
          ExpressionAttributeValues: { ':pk': probePk(aliasKey), ':since': padTime(sinceMs) },
          ScanIndexForward: oldestFirst,
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      pages++;
      for (const item of page.Items ?? []) results.push(toProbeResult(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return results;
  }
}

function toProbeResult(item: Record<string, unknown>): StoredProbeResult {
  const { pk: _pk, sk: _sk, expiresAt: _expiresAt, ...rest } = item;
  return rest as unknown as StoredProbeResult;
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

/**
 * The value as JSON would keep it: undefined fields dropped and non-finite numbers (which DynamoDB
 * cannot store) turned into null, so that the stored record equals what a JSON file would hold.
 */
export function plainJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
