/**
 * The layout of the migration table: the key of every item, how values are stored, and the
 * clients and access every part of the store shares. Separate from the store (dynamodb-store.ts)
 * and its parts because each of them reads or writes these keys: the layout is one decision,
 * made here.
 *
 * Items (partition key `pk`, sort key `sk`):
 * - record:  `pk=MIGRATION#<id>, sk=STATE` with `version` (number), `record` (map) and, until its
 *   events are written out, `outbox` (list of events);
 * - events:  `pk=MIGRATION#<id>, sk=EVENT#<seq zero-padded to 10>` with `event` (map);
 * - probes:  `pk=MIGRATION#<id>, sk=PROBE#<atMs zero-padded to 15>#<side>` with `expiresAt` (TTL);
 * - alarms:  `pk=MIGRATION#<id>, sk=SIGNAL#ALARM#<alarm name>` with the alarm's last known state
 *   and `changedAtMs` (when CloudWatch says it entered that state), written when its state change
 *   event arrives and corrected by every `DescribeAlarms` confirmation;
 * - damaged: `pk=MIGRATION#<id>, sk=DAMAGED#<time zero-padded to 15>`, a whole copy of a record
 *   item the controller could not trust, kept by `quarantine` when it replaced it;
 * - pointer: `pk=ALIAS#<fn>:<alias>, sk=CURRENT` with `migrationId`, `oldVersion`, `newVersion`;
 * - probes recorded while the alias has no migration at all: `pk=PROBE#<fn>:<alias>,
 *   sk=<atMs zero-padded to 15>#<side>` with `expiresAt` (TTL). Nothing reads them back: they are
 *   an audit trail only, so they can never count for a migration.
 *
 * Within `MIGRATION#<id>` the keys sort `DAMAGED#…` < `EVENT#…` < `PROBE#…` < `SIGNAL#…` < `STATE`
 * (dynamodb-store.ts says why that order lets one Query read the record with its signals).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Side } from '../core/ports';
import { clientConfig, type AwsClientOptions } from './clients';

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

/** What every part of the store reads and writes through. */
export interface TableAccess {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  /** Upper bound on pages read by one query (each page is up to 1 MB). */
  readonly maxPages: number;
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

export const STATE_SK = 'STATE';
export const CURRENT_SK = 'CURRENT';
export const migrationPk = (migrationId: string): string => `MIGRATION#${migrationId}`;
export const eventSk = (seq: number): string => `EVENT#${String(seq).padStart(10, '0')}`;
export const aliasPk = (aliasKey: string): string => `ALIAS#${aliasKey}`;
export const PROBE_SK_PREFIX = 'PROBE#';
/** Sorts after every `PROBE#…` key and before `STATE` (`$` follows `#`): the end of a probe range. */
export const PROBE_SK_END = 'PROBE$';
/** A probe result in its migration's partition. */
export const probeSk = (atMs: number, side: Side): string => `${probeSkFrom(atMs)}#${side}`;
export const ALARM_SK_PREFIX = 'SIGNAL#ALARM#';
/** Where `quarantine` keeps a damaged record item (sorts before `EVENT#`, outside every range read). */
export const DAMAGED_SK_PREFIX = 'DAMAGED#';
/** An alarm's recorded state in its migration's partition. */
export const alarmSk = (alarmName: string): string => `${ALARM_SK_PREFIX}${alarmName}`;
/** The smallest probe key at `atMs`: the start of a "since" range. */
export const probeSkFrom = (atMs: number): string => `${PROBE_SK_PREFIX}${padTime(atMs)}`;
/** Probe results recorded while the alias has no migration (an audit trail nothing reads). */
export const unattributedProbePk = (aliasKey: string): string => `PROBE#${aliasKey}`;
export const unattributedProbeSk = (atMs: number, side: Side): string => `${padTime(atMs)}#${side}`;
/** `${functionName}:${aliasName}`: the key of an alias's pointer and probe results. */
export const aliasKeyOf = (functionName: string, aliasName: string): string => `${functionName}:${aliasName}`;

export function padTime(atMs: number): string {
  if (!Number.isInteger(atMs) || atMs < 0) throw new RangeError(`time must be whole epoch milliseconds ≥ 0, got ${JSON.stringify(atMs)}`);
  return String(atMs).padStart(15, '0');
}

/**
 * The value as JSON would keep it: undefined fields dropped and non-finite numbers (which DynamoDB
 * cannot store) turned into null, so that the stored record equals what a JSON file would hold.
 */
export function plainJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
