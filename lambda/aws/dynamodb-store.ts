/**
 * The migration table in DynamoDB: the versioned migration record with its append-only event log
 * and its probe results, and the current-migration pointer of an alias.
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
 * ## Why probe results and alarm states live in the migration's partition
 * Within `MIGRATION#<id>` the keys sort `EVENT#…` < `PROBE#…` < `SIGNAL#…` < `STATE`, so one
 * Query on `sk BETWEEN 'PROBE#<since>' AND 'STATE'` returns the record, the alarm states and the
 * probe results since a time together: `load` reads them in one call and keeps the signals for the
 * tick's `TableProbes.recentResults` and `RecordedAlarms.readAlarms` (see `load`). This is what
 * keeps a steady tick at three read calls (this Query, GetMetricData and the capacity check). A
 * migration sees only its own signals: those of an earlier migration of the same alias are in
 * another partition.
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
import {
  DamagedStateError,
  StaleStateError,
  type AlarmSignal,
  type ProbeOutcome,
  type ReplacementBuilder,
  type Side,
  type StateDamage,
  type StateStore,
} from '../core/ports';
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
export const PROBE_SK_PREFIX = 'PROBE#';
/** Sorts after every `PROBE#…` key and before `STATE` (`$` follows `#`): the end of a probe range. */
const PROBE_SK_END = 'PROBE$';
/** A probe result in its migration's partition. */
export const probeSk = (atMs: number, side: Side): string => `${probeSkFrom(atMs)}#${side}`;
export const ALARM_SK_PREFIX = 'SIGNAL#ALARM#';
/** Where `quarantine` keeps a damaged record item (sorts before `EVENT#`, outside every range read). */
export const DAMAGED_SK_PREFIX = 'DAMAGED#';
/** An alarm's recorded state in its migration's partition. */
export const alarmSk = (alarmName: string): string => `${ALARM_SK_PREFIX}${alarmName}`;
/** The smallest probe key at `atMs`: the start of a "since" range. */
const probeSkFrom = (atMs: number): string => `${PROBE_SK_PREFIX}${padTime(atMs)}`;
/** Probe results recorded while the alias has no migration (an audit trail nothing reads). */
export const unattributedProbePk = (aliasKey: string): string => `PROBE#${aliasKey}`;
export const unattributedProbeSk = (atMs: number, side: Side): string => `${padTime(atMs)}#${side}`;
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

/** An alarm state as recorded in the table. */
export interface StoredAlarmState extends AlarmSignal {
  /** When the alarm entered the state (CloudWatch's own timestamp): newer always wins. */
  readonly changedAtMs: number;
  /** How the state arrived: a state change event, or a `DescribeAlarms` confirmation. */
  readonly source: 'event' | 'describe';
  /** When it was written, epoch ms. */
  readonly recordedAtMs: number;
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

interface StateItem {
  readonly pk: string;
  readonly sk: string;
  readonly version: number;
  readonly record: MigrationRecord;
  readonly outbox?: MigrationEvent[];
  readonly updatedAtMs?: number;
}

/** The probe results one `load` read with the record: every result of the migration at or after `fromMs`. */
interface LoadedProbes {
  readonly migrationId: string;
  readonly fromMs: number;
  /** Oldest first. */
  readonly results: readonly StoredProbeResult[];
}

export class DynamoDbStateStore implements StateStore<MigrationRecord, MigrationEvent> {
  private readonly maxPages: number;
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
    this.maxPages = props.maxPages ?? 1000;
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
    const page = await this.props.documents.send(
      new QueryCommand({
        TableName: this.props.tableName,
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
      item = await this.getState(migrationId);
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
        await this.flush(migrationId, item.version, item.outbox);
      } catch (error) {
        if (!(error instanceof EventLogConflictError)) throw error;
        // Retrying would fail the same way on every tick: the log itself is damaged.
        throw new DamagedStateError(migrationId, {
          what: `${error.message} (outbox of record version ${item.version})`,
          version: item.version,
          raw: item.record,
          fingerprint: versionFingerprint(item.version),
        });
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
    const key = { pk: migrationPk(migrationId), sk: STATE_SK };
    const current = (await this.props.documents.send(new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }))).Item;
    const fingerprint = damage.fingerprint ?? (damage.version !== undefined ? versionFingerprint(damage.version) : undefined);
    const version = typeof current?.version === 'number' ? current.version : undefined;
    if (!current || fingerprint !== versionFingerprint(version)) throw new StaleStateError(migrationId, damage.version ?? 0);

    const keptSk = `${DAMAGED_SK_PREFIX}${padTime(Date.now())}`;
    await this.props.documents.send(
      new PutCommand({ TableName: this.props.tableName, Item: { ...current, sk: keptSk }, ConditionExpression: 'attribute_not_exists(sk)' }),
    );
    const outboxSeqs = (Array.isArray(current.outbox) ? current.outbox : []).map((e: unknown) => (e as { seq?: unknown } | null)?.seq);
    const lastEventSeq = Math.max(0, await this.lastEventSeq(migrationId), ...outboxSeqs.filter((n): n is number => typeof n === 'number' && Number.isFinite(n)));
    const { record, events } = build({ lastEventSeq, keptAs: `table ${this.props.tableName} item pk=${migrationPk(migrationId)}, sk=${keptSk}` });
    const next = (version ?? 0) + 1;
    const outbox = events.map((e) => plainJson(e));
    try {
      await this.props.documents.send(
        new PutCommand({
          TableName: this.props.tableName,
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
    this.remember(migrationId, record);
    if (outbox.length > 0) await this.flush(migrationId, next, outbox);
    return next;
  }

  /** The highest event sequence number stored as an event item (0 if none). */
  private async lastEventSeq(migrationId: string): Promise<number> {
    const page = await this.props.documents.send(
      new QueryCommand({
        TableName: this.props.tableName,
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
    if (!state.name) throw new TypeError('alarm state must have a name');
    if (!Number.isFinite(state.changedAtMs)) {
      throw new RangeError(`alarm ${state.name}: changedAtMs must be epoch ms, got ${JSON.stringify(state.changedAtMs)}`);
    }
    try {
      await this.props.documents.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: { pk: migrationPk(migrationId), sk: alarmSk(state.name), ...plainJson(state) },
          ConditionExpression: `attribute_not_exists(sk) OR changedAtMs ${state.source === 'describe' ? '<=' : '<'} :changedAtMs`,
          ExpressionAttributeValues: { ':changedAtMs': state.changedAtMs },
        }),
      );
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
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
    // Only a save that landed: a refused one says nothing about the stored record.
    this.remember(migrationId, record);
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
    return result.Item ? checkState(migrationId, result.Item) : undefined;
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

  /** Records a probe result in its migration's partition. */
  async putProbeResult(migrationId: string, result: StoredProbeResult): Promise<void> {
    await this.putProbeItem(migrationPk(migrationId), probeSk(result.atMs, result.side), result);
    // A later read in this tick must see it: drop the load's copy rather than patch it.
    if (this.loadedProbes?.migrationId === migrationId) this.loadedProbes = undefined;
  }

  /**
   * Records a probe result taken while the alias has no migration at all (before its first
   * migration). Kept for people looking at the table; no migration ever reads it.
   */
  async putUnattributedProbeResult(aliasKey: string, result: StoredProbeResult): Promise<void> {
    await this.putProbeItem(unattributedProbePk(aliasKey), unattributedProbeSk(result.atMs, result.side), result);
  }

  private async putProbeItem(pk: string, sk: string, result: StoredProbeResult): Promise<void> {
    await this.props.documents.send(
      new PutCommand({
        TableName: this.props.tableName,
        Item: { pk, sk, ...plainJson(result), expiresAt: Math.floor(result.atMs / 1000) + this.ttlSeconds },
      }),
    );
  }

  /** Probe results of a migration at or after `sinceMs`, oldest first. */
  async probeResultsSince(migrationId: string, sinceMs: number): Promise<StoredProbeResult[]> {
    const results: StoredProbeResult[] = [];
    await this.queryProbes(migrationId, sinceMs, true, (r) => {
      results.push(r);
      return true;
    });
    return results;
  }

  /** The newest result of a migration for `side` at or after `sinceMs`, if any. */
  async latestProbeResult(migrationId: string, side: Side, sinceMs: number): Promise<StoredProbeResult | undefined> {
    let latest: StoredProbeResult | undefined;
    await this.queryProbes(migrationId, sinceMs, false, (r) => {
      if (r.side !== side) return true;
      latest = r;
      return false;
    });
    return latest;
  }

  /** Reads the probe range page by page, handing each result to `each` until it returns false. */
  private async queryProbes(migrationId: string, sinceMs: number, oldestFirst: boolean, each: (r: StoredProbeResult) => boolean): Promise<void> {
    const since = Math.max(0, Math.floor(sinceMs));
    let startKey: Record<string, unknown> | undefined;
    let pages = 0;
    do {
      if (pages >= this.maxPages) {
        throw new Error(`probe results of migration ${migrationId} since ${since} span more than ${this.maxPages} pages; refusing to read on`);
      }
      const page = await this.props.documents.send(
        new QueryCommand({
          TableName: this.props.tableName,
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
}

/** The record item, or `DamagedStateError` when it lacks a numeric version or a record map. */
function checkState(migrationId: string, raw: Record<string, unknown>): StateItem {
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
function versionFingerprint(version: number | undefined): string {
  return version === undefined ? 'unversioned' : `version:${version}`;
}

/** The time in a `PROBE#<atMs>#<side>` key. */
function probeTimeOf(sk: string): number {
  return Number(sk.slice(PROBE_SK_PREFIX.length, PROBE_SK_PREFIX.length + 15));
}

function toAlarmState(item: Record<string, unknown>): StoredAlarmState {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as unknown as StoredAlarmState;
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
