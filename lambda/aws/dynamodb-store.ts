/**
 * The migration table in DynamoDB: the versioned migration record with its append-only event log
 * and its probe results, and the current-migration pointer of an alias.
 *
 * This file is the store the handlers use (`DynamoDbStateStore`) and what one container remembers
 * between its calls (the signals its last `load` read, and where the next load's probe range
 * starts). What it reads and writes is split by idea, and everything that was public here is
 * still exported from here:
 * - dynamodb-table.ts: the item layout (every key), the clients, `plainJson`;
 * - dynamodb-record-log.ts: the versioned record, its outbox and the event log (why an outbox
 *   instead of TransactWriteItems);
 * - dynamodb-damage.ts: recognising a record item that cannot be trusted, and `quarantine`;
 * - dynamodb-signals.ts: probe results and alarm states;
 * - dynamodb-pointer.ts: the current-migration pointer of an alias.
 *
 * ## Why probe results and alarm states live in the migration's partition
 * Within `MIGRATION#<id>` the keys sort `EVENT#…` < `PROBE#…` < `SIGNAL#…` < `STATE`, so one
 * Query on `sk BETWEEN 'PROBE#<since>' AND 'STATE'` returns the record, the alarm states and the
 * probe results since a time together: `load` reads them in one call and keeps the signals for the
 * tick's `TableProbes.recentResults` and `RecordedAlarms.readAlarms` (see `load`). This is what
 * keeps a steady tick at three read calls (this Query, GetMetricData and the capacity check). A
 * migration sees only its own signals: those of an earlier migration of the same alias are in
 * another partition.
 */
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { MigrationRecord } from '../core/controller';
import type { MigrationEvent } from '../core/model';
import type { ReplacementBuilder, Side, StateDamage, StateStore } from '../core/ports';
import { describeError } from './clients';
import { checkState, damagedLogError, replaceDamaged } from './dynamodb-damage';
import { getPointer, putPointer, type MigrationPointer } from './dynamodb-pointer';
import { EventLogConflictError, flushOutbox, getStateItem, putRecord, readEvents, type StateItem } from './dynamodb-record-log';
import {
  latestProbeResult,
  probeResultsSince,
  probeTimeOf,
  putAlarmState,
  putProbeItem,
  toAlarmState,
  toProbeResult,
  type StoredAlarmState,
  type StoredProbeResult,
} from './dynamodb-signals';
import {
  ALARM_SK_PREFIX,
  PROBE_SK_PREFIX,
  STATE_SK,
  migrationPk,
  probeSk,
  probeSkFrom,
  unattributedProbePk,
  unattributedProbeSk,
  type TableAccess,
} from './dynamodb-table';

export {
  ALARM_SK_PREFIX,
  CURRENT_SK,
  DAMAGED_SK_PREFIX,
  PROBE_SK_PREFIX,
  STATE_SK,
  aliasKeyOf,
  aliasPk,
  alarmSk,
  createDocumentClients,
  eventSk,
  migrationPk,
  plainJson,
  probeSk,
  unattributedProbePk,
  unattributedProbeSk,
} from './dynamodb-table';
export { EventLogConflictError } from './dynamodb-record-log';
export { PointerConflictError, type MigrationPointer, type MigrationSpecInput } from './dynamodb-pointer';
export type { StoredAlarmState, StoredProbeResult } from './dynamodb-signals';

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
   * How many probe results `load` reads at most along with the record (newest first). Enough for
   * a steady tick, where only the results since the previous tick are new (two a minute); when
   * more are pending, `TableProbes.recentResults` reads them with its own query.
   * @default 60
   */
  readonly probeResultsPerLoad?: number;
  /**
   * How many alarm items `load` makes room for besides the record and the probe results: the
   * number of alarms the controller watches.
   * @default 10 (the most a CanaryMigration watches, like CodeDeploy)
   */
  readonly alarmStatesPerLoad?: number;
  /**
   * Receives problems that did not fail the operation (e.g. an outbox copy left for later).
   * @default - written to the console as a warning
   */
  readonly onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

/** The probe results one `load` read with the record: every result of the migration at or after `fromMs`. */
interface LoadedProbes {
  readonly migrationId: string;
  readonly fromMs: number;
  /** Oldest first. */
  readonly results: readonly StoredProbeResult[];
}

export class DynamoDbStateStore implements StateStore<MigrationRecord, MigrationEvent> {
  /** The table and its client, as every part of the store reads and writes it. */
  private readonly table: TableAccess;
  private readonly ttlSeconds: number;
  private readonly probeResultsPerLoad: number;
  private readonly alarmStatesPerLoad: number;
  private readonly warn: (message: string, detail?: Record<string, unknown>) => void;
  /** What the latest `load` read besides the record; served once (see `takeLoadedProbeResults`). */
  private loadedProbes: LoadedProbes | undefined;
  /** The alarm states the latest `load` read; served once (see `takeLoadedAlarmStates`). */
  private loadedAlarms: { readonly migrationId: string; readonly states: ReadonlyMap<string, StoredAlarmState> } | undefined;
  /** The `probesSeenUntilMs` of the newest record this instance loaded or saved. */
  private seenUntil: { readonly migrationId: string; readonly ms: number } | undefined;

  constructor(private readonly props: DynamoDbStateStoreProps) {
    if (!props.tableName) throw new TypeError('tableName must be a non-empty string');
    const maxPages = props.maxPages ?? 1000;
    this.ttlSeconds = props.probeResultTtlSeconds ?? 7 * 24 * 3600;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 60) {
      throw new RangeError(`probeResultTtlSeconds must be a whole number ≥ 60, got ${JSON.stringify(props.probeResultTtlSeconds)}`);
    }
    this.probeResultsPerLoad = props.probeResultsPerLoad ?? 60;
    if (!Number.isInteger(this.probeResultsPerLoad) || this.probeResultsPerLoad < 1) {
      throw new RangeError(`probeResultsPerLoad must be a whole number ≥ 1, got ${JSON.stringify(props.probeResultsPerLoad)}`);
    }
    this.alarmStatesPerLoad = props.alarmStatesPerLoad ?? 10;
    if (!Number.isInteger(this.alarmStatesPerLoad) || this.alarmStatesPerLoad < 0) {
      throw new RangeError(`alarmStatesPerLoad must be a whole number ≥ 0, got ${JSON.stringify(props.alarmStatesPerLoad)}`);
    }
    this.warn = props.onWarning ?? ((message, detail) => console.warn(message, detail ?? ''));
    this.table = { documents: props.documents, tableName: props.tableName, maxPages };
  }

  get tableName(): string {
    return this.props.tableName;
  }

  // ----- migration record and events ---------------------------------------------------------

  /**
   * The record and its version, in ONE Query that also reads the migration's recent probe results,
   * kept for `takeLoadedProbeResults` (the core asks for them right after loading, with the
   * record's `probesSeenUntilMs` as the start).
   *
   * The start must be chosen before the record is read. It is the `probesSeenUntilMs` of the
   * newest record of this migration this instance loaded or saved (the container ran the previous
   * tick): that value only grows from one version of a record to the next, so it is normally
   * exactly what the core asks for. Without one (a cold container) the Query starts at the
   * beginning of the probe range. Either way it reads newest first (`STATE` is the first item) and
   * at most `probeResultsPerLoad` results, so a long pause or a cold start cannot make it large;
   * when that limit cuts the range, the kept results are known complete only above the oldest one
   * read, and `takeLoadedProbeResults` refuses an earlier start (the caller then queries itself).
   * Correctness therefore never rests on the guess, only the number of reads does.
   */
  async load(migrationId: string): Promise<{ readonly record: MigrationRecord; readonly version: number } | undefined> {
    // Whatever happens below, nothing read before this load may be served after it.
    this.loadedProbes = undefined;
    this.loadedAlarms = undefined;
    const fromMs = this.seenUntil?.migrationId === migrationId ? this.seenUntil.ms : 0;
    const page = await this.table.documents.send(
      new QueryCommand({
        TableName: this.table.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': migrationPk(migrationId), ':from': probeSkFrom(fromMs), ':to': STATE_SK },
        ScanIndexForward: false,
        Limit: this.probeResultsPerLoad + 1 + this.alarmStatesPerLoad,
        ConsistentRead: true,
      }),
    );
    const items = page.Items ?? [];
    let item: StateItem | undefined;
    let probes: readonly StoredProbeResult[] | undefined;
    if (items.length === 0 && page.LastEvaluatedKey) {
      // A page that stops before its first item: DynamoDB does not do that without a filter, but
      // its contract allows it. Read the record alone and keep no probe results.
      item = await getStateItem(this.table, migrationId);
    } else {
      const first = items[0];
      // Newest first: if the record exists it is the first item (nothing sorts after STATE).
      item = first?.sk === STATE_SK ? checkState(migrationId, first) : undefined;
      const probeItems = items.filter((i) => typeof i.sk === 'string' && i.sk.startsWith(PROBE_SK_PREFIX));
      const alarmItems = items.filter((i) => typeof i.sk === 'string' && i.sk.startsWith(ALARM_SK_PREFIX));
      // The alarm items sort right below STATE, so newest first they come before any probe result:
      // they are all here unless the page stopped before reaching the probe range.
      if (item && (!page.LastEvaluatedKey || probeItems.length > 0)) {
        this.loadedAlarms = { migrationId, states: new Map(alarmItems.map((i) => [String(i.name), toAlarmState(i)])) };
      }
      const oldest = probeItems[probeItems.length - 1];
      if (!page.LastEvaluatedKey) {
        probes = probeItems.map(toProbeResult).reverse();
        this.loadedProbes = item ? { migrationId, fromMs, results: probes } : undefined;
      } else if (oldest) {
        // Cut by the limit: every result newer than the oldest one read was read (results at that
        // very millisecond may be missing: the other side sorts below it).
        const fromCut = probeTimeOf(String(oldest.sk)) + 1;
        probes = probeItems.map(toProbeResult).reverse().filter((r) => r.atMs >= fromCut);
        this.loadedProbes = item ? { migrationId, fromMs: fromCut, results: probes } : undefined;
      }
    }
    if (!item) return undefined;
    this.remember(migrationId, item.record);
    if (item.outbox && item.outbox.length > 0) {
      // A previous save stopped before copying its events: finish it now, before anyone can save
      // (and so replace the outbox) on top of this version.
      try {
        await flushOutbox(this.table, migrationId, item.version, item.outbox);
      } catch (error) {
        if (!(error instanceof EventLogConflictError)) throw error;
        // Retrying would fail the same way on every tick: the log itself is damaged.
        throw damagedLogError(migrationId, item, error);
      }
    }
    return { record: item.record, version: item.version };
  }

  /**
   * Replaces a damaged record item. The damaged item is first copied, whole, to
   * `sk=DAMAGED#<time>` in the same partition (kept for people to inspect); the replacement is a
   * conditional PutItem on the damaged item's version (or on its lack of one), so a replacement
   * that lost a race with another writer is refused. Its events follow the highest event item.
   */
  async quarantine(migrationId: string, damage: StateDamage, build: ReplacementBuilder<MigrationRecord, MigrationEvent>): Promise<number> {
    const { version, record, outbox } = await replaceDamaged(this.table, migrationId, damage, build);
    this.remember(migrationId, record);
    if (outbox.length > 0) await flushOutbox(this.table, migrationId, version, outbox);
    return version;
  }

  /**
   * The probe results of `migrationId` at or after `sinceMs` (oldest first) that the latest `load`
   * read, if that load was of this migration and its read covers `sinceMs`; undefined otherwise
   * (query with `probeResultsSince` then). Served once: a second call, or one after another
   * load, queries again rather than reuse an older read.
   */
  takeLoadedProbeResults(migrationId: string, sinceMs: number): StoredProbeResult[] | undefined {
    const loaded = this.loadedProbes;
    const since = Math.max(0, Math.floor(sinceMs));
    if (!loaded || loaded.migrationId !== migrationId || since < loaded.fromMs) return undefined;
    this.loadedProbes = undefined;
    return loaded.results.filter((r) => r.atMs >= since);
  }

  /**
   * The alarm states of `migrationId` that the latest `load` read (by alarm name; an alarm with no
   * item has no recorded state yet), or undefined when that load was of another migration or could
   * not read them all. Served once, like the probe results.
   */
  takeLoadedAlarmStates(migrationId: string): ReadonlyMap<string, StoredAlarmState> | undefined {
    const loaded = this.loadedAlarms;
    if (!loaded || loaded.migrationId !== migrationId) return undefined;
    this.loadedAlarms = undefined;
    return loaded.states;
  }

  /**
   * Records an alarm's state unless a newer one is already recorded (CloudWatch's timestamps
   * decide, so events arriving late or twice, and confirmations racing them, cannot roll a state
   * back). A `describe` state replaces an `event` state of the same time: it is the authoritative
   * read. Returns whether it was written.
   */
  async recordAlarmState(migrationId: string, state: StoredAlarmState): Promise<boolean> {
    if (!(await putAlarmState(this.table, migrationId, state))) return false;
    // A later read in this invocation must see it: drop the load's copy rather than patch it.
    if (this.loadedAlarms?.migrationId === migrationId) this.loadedAlarms = undefined;
    return true;
  }

  /** Keeps the start for the next load's probe range (see `load`). */
  private remember(migrationId: string, record: MigrationRecord): void {
    const ms = record.probesSeenUntilMs;
    if (Number.isInteger(ms) && ms >= 0) this.seenUntil = { migrationId, ms };
    else if (this.seenUntil?.migrationId === migrationId) this.seenUntil = undefined;
  }

  async save(migrationId: string, record: MigrationRecord, expectedVersion: number, events: readonly MigrationEvent[]): Promise<number> {
    const { version, outbox } = await putRecord(this.table, migrationId, record, expectedVersion, events);
    // Only a save that landed: a refused one says nothing about the stored record.
    this.remember(migrationId, record);
    if (outbox.length > 0) {
      try {
        await flushOutbox(this.table, migrationId, version, outbox);
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
    return readEvents(this.table, migrationId);
  }

  // ----- current-migration pointer -------------------------------------------------------------

  async getPointer(aliasKey: string): Promise<MigrationPointer | undefined> {
    return getPointer(this.table, aliasKey);
  }

  /**
   * Makes `pointer` the alias's current migration if the current one is still `replacing`
   * (undefined: there must be none). Throws `PointerConflictError` otherwise.
   */
  async putPointer(aliasKey: string, pointer: MigrationPointer, replacing: string | undefined): Promise<void> {
    return putPointer(this.table, aliasKey, pointer, replacing);
  }

  // ----- probe results --------------------------------------------------------------------------

  /** Records a probe result in its migration's partition. */
  async putProbeResult(migrationId: string, result: StoredProbeResult): Promise<void> {
    await putProbeItem(this.table, this.ttlSeconds, migrationPk(migrationId), probeSk(result.atMs, result.side), result);
    // A later read in this tick must see it: drop the load's copy rather than patch it.
    if (this.loadedProbes?.migrationId === migrationId) this.loadedProbes = undefined;
  }

  /**
   * Records a probe result taken while the alias has no migration at all (before its first
   * migration). Kept for people looking at the table; no migration ever reads it.
   */
  async putUnattributedProbeResult(aliasKey: string, result: StoredProbeResult): Promise<void> {
    await putProbeItem(this.table, this.ttlSeconds, unattributedProbePk(aliasKey), unattributedProbeSk(result.atMs, result.side), result);
  }

  /** Probe results of a migration at or after `sinceMs`, oldest first. */
  async probeResultsSince(migrationId: string, sinceMs: number): Promise<StoredProbeResult[]> {
    return probeResultsSince(this.table, migrationId, sinceMs);
  }

  /** The newest result of a migration for `side` at or after `sinceMs`, if any. */
  async latestProbeResult(migrationId: string, side: Side, sinceMs: number): Promise<StoredProbeResult | undefined> {
    return latestProbeResult(this.table, migrationId, side, sinceMs);
  }
}
