/**
 * DynamoDbStateStore over the wire against dynalite (in memory, 127.0.0.1, ephemeral port).
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoDbStateStore,
  EventLogConflictError,
  PointerConflictError,
  eventSk,
  migrationPk,
  probeSk,
  unattributedProbePk,
  unattributedProbeSk,
} from '../../lambda/aws/dynamodb-store';
import { MigrationStatus } from '../../lambda/core/model';
import { DamagedStateError, StaleStateError } from '../../lambda/core/ports';
import { makeEvent, makeRecord } from './fixtures';
import { startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-test';
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let warnings: string[];
let n = 0;
/** A fresh migration id per test: tests share one table. */
const newId = () => `api:live:${++n}`;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
});

afterAll(async () => {
  await dynamo.close();
});

beforeEach(() => {
  warnings = [];
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, onWarning: (m) => warnings.push(m) });
});

async function rawItem(pk: string, sk: string) {
  const { Item } = await dynamo.clients.documents.send(new GetCommand({ TableName: TABLE, Key: { pk, sk }, ConsistentRead: true }));
  return Item;
}

async function eventItems(id: string) {
  const { Items } = await dynamo.clients.documents.send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': migrationPk(id), ':p': 'EVENT#' },
    }),
  );
  return Items ?? [];
}

describe('DynamoDbStateStore: record and events', () => {
  it('should return undefined for a migration that does not exist', async () => {
    expect(await store.load(newId())).toBeUndefined();
    expect(await store.events(newId())).toEqual([]);
  });

  it('should save a record with its events and read both back', async () => {
    const id = newId();
    const record = makeRecord(id, { eventSeq: 2 });
    const events = [makeEvent(id, 1, { type: 'created' }), makeEvent(id, 2)];
    expect(await store.save(id, record, 0, events)).toBe(1);

    const loaded = await store.load(id);
    expect(loaded?.version).toBe(1);
    expect(loaded?.record).toEqual(record);
    expect(await store.events(id)).toEqual(events);
    // Each event has its own item with the contract's key, and the outbox was emptied.
    expect((await eventItems(id)).map((i) => i.sk)).toEqual(['EVENT#0000000001', 'EVENT#0000000002']);
    expect(await rawItem(migrationPk(id), 'STATE')).not.toHaveProperty('outbox');
    expect(warnings).toEqual([]);
  });

  it('should reject a save on a stale version and write nothing', async () => {
    const id = newId();
    await store.save(id, makeRecord(id, { eventSeq: 1 }), 0, [makeEvent(id, 1)]);
    await store.save(id, makeRecord(id, { eventSeq: 2, weight: 50 }), 1, [makeEvent(id, 2)]);

    const stale = store.save(id, makeRecord(id, { eventSeq: 3, weight: 100 }), 1, [makeEvent(id, 3)]);
    await expect(stale).rejects.toBeInstanceOf(StaleStateError);
    await expect(stale).rejects.toThrow(/expected version 1/);
    const loaded = await store.load(id);
    expect(loaded?.version).toBe(2);
    expect(loaded?.record.weight).toBe(50);
    expect((await store.events(id)).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('should refuse to create a record that already exists', async () => {
    const id = newId();
    await store.save(id, makeRecord(id), 0, []);
    await expect(store.save(id, makeRecord(id), 0, [])).rejects.toBeInstanceOf(StaleStateError);
  });

  it('should let exactly one of two concurrent writers win, losing no event and duplicating none', async () => {
    const id = newId();
    await store.save(id, makeRecord(id, { eventSeq: 1 }), 0, [makeEvent(id, 1, { type: 'created' })]);
    let seq = 1;
    for (let round = 0; round < 15; round++) {
      const { version, record } = (await store.load(id))!;
      // Two runs read the same version and each decides something different.
      const a = [makeEvent(id, seq + 1, { type: 'advanced', reason: `A round ${round}` })];
      const b = [makeEvent(id, seq + 1, { type: 'rolled-back', reason: `B round ${round}` }), makeEvent(id, seq + 2, { reason: `B2 round ${round}` })];
      const results = await Promise.allSettled([
        store.save(id, { ...record, eventSeq: seq + 1, weight: 50 }, version, a),
        store.save(id, { ...record, eventSeq: seq + 2, weight: 0 }, version, b),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(StaleStateError);
      const winner = results[0]!.status === 'fulfilled' ? a : b;
      const after = (await store.load(id))!;
      expect(after.version).toBe(version + 1);
      expect(after.record.eventSeq).toBe(winner[winner.length - 1]!.seq);
      seq = after.record.eventSeq;
      const log = await store.events(id);
      // The winner's events are in the log, exactly once each, and nothing of the loser's.
      expect(log.slice(-winner.length)).toEqual(winner);
      expect(log.map((e) => e.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    }
    expect(await eventItems(id)).toHaveLength(seq);
  });

  it('should let exactly one of five concurrent writers win', async () => {
    const id = newId();
    await store.save(id, makeRecord(id), 0, []);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => store.save(id, makeRecord(id, { eventSeq: 1, weight: i }), 1, [makeEvent(id, 1, { reason: `writer ${i}` })])),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = results.findIndex((r) => r.status === 'fulfilled');
    expect((await store.load(id))?.record.weight).toBe(winner);
    expect((await store.events(id)).map((e) => e.reason)).toEqual([`writer ${winner}`]);
  });

  it('should finish an interrupted event copy on the next load, and list outbox events meanwhile', async () => {
    const id = newId();
    const events = [makeEvent(id, 1), makeEvent(id, 2)];
    // What a save leaves behind when the function stops right after the conditional put.
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: 'STATE', version: 1, record: makeRecord(id, { eventSeq: 2 }), outbox: events } }),
    );
    expect(await eventItems(id)).toHaveLength(0);
    expect(await store.events(id)).toEqual(events);

    const loaded = await store.load(id);
    expect(loaded?.version).toBe(1);
    expect((await eventItems(id)).map((i) => i.event)).toEqual(events);
    expect(await rawItem(migrationPk(id), 'STATE')).not.toHaveProperty('outbox');
    // Loading again (the copy already done) changes nothing.
    await store.load(id);
    expect(await store.events(id)).toEqual(events);
  });

  it('should finish a copy that stopped half way without duplicating the events already copied', async () => {
    const id = newId();
    const events = [makeEvent(id, 1), makeEvent(id, 2), makeEvent(id, 3)];
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: 'STATE', version: 1, record: makeRecord(id, { eventSeq: 3 }), outbox: events } }),
    );
    await dynamo.clients.documents.send(new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: eventSk(1), seq: 1, event: events[0] } }));
    await store.load(id);
    expect((await eventItems(id)).map((i) => i.event)).toEqual(events);
  });

  it('should refuse to overwrite a different event stored under the same sequence number', async () => {
    const id = newId();
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: eventSk(1), seq: 1, event: makeEvent(id, 1, { type: 'created' }) } }),
    );
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: 'STATE', version: 1, record: makeRecord(id), outbox: [makeEvent(id, 1, { type: 'advanced' })] } }),
    );
    // Retrying would fail the same way on every load: the log is damaged, and the load says so.
    const error = await store.load(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DamagedStateError);
    expect((error as DamagedStateError).message).toMatch(/event 1 of migration .* already holds a different event; refusing to overwrite the log \(outbox of record version 1\)/);
    expect((error as DamagedStateError).damage).toMatchObject({ version: 1, fingerprint: 'version:1' });
    expect((await eventItems(id))[0]?.event.type).toBe('created');
    // A save never writes over it; a direct copy of the outbox still refuses, as before.
    await expect(store.save(id, makeRecord(id), 0, [])).rejects.toBeInstanceOf(StaleStateError);
    expect(EventLogConflictError.name).toBe('EventLogConflictError');
  });

  describe('damaged record items', () => {
    it.each([
      ['no numeric version', { version: 'one', record: {} }, /version is "one", not a number/, 'unversioned'],
      ['a record that is not a map', { version: 3, record: 'garbage' }, /record is "garbage", not a map/, 'version:3'],
      ['an outbox that is not a list', { version: 3, record: {}, outbox: 'x' }, /outbox is not a list/, 'version:3'],
    ])('should refuse a state item with %s with DamagedStateError', async (_name, item, message, fingerprint) => {
      const id = newId();
      await dynamo.clients.documents.send(new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: 'STATE', ...item } }));
      const error = (await store.load(id).catch((e: unknown) => e)) as DamagedStateError;
      expect(error).toBeInstanceOf(DamagedStateError);
      expect(error.message).toMatch(message);
      expect(error.damage.fingerprint).toBe(fingerprint);
    });

    it('should keep a damaged item aside and replace it, with events after the last stored one', async () => {
      const id = newId();
      await store.save(id, makeRecord(id, { eventSeq: 2 }), 0, [makeEvent(id, 1), makeEvent(id, 2)]);
      await dynamo.clients.documents.send(new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: 'STATE', version: 'x', record: { status: 'bogus' } } }));
      const { damage } = (await store.load(id).catch((e: unknown) => e)) as DamagedStateError;
      const contexts: unknown[] = [];
      const version = await store.quarantine(id, damage, (context) => {
        contexts.push(context);
        return { record: makeRecord(id, { status: MigrationStatus.ROLLED_BACK, weight: 0, eventSeq: 3 }), events: [makeEvent(id, context.lastEventSeq + 1, { type: 'state-damaged' })] };
      });
      expect(version).toBe(1);
      expect(contexts).toEqual([{ lastEventSeq: 2, keptAs: expect.stringMatching(new RegExp(`pk=MIGRATION#${id}, sk=DAMAGED#\\d{15}$`)) }]);
      expect((await store.load(id))?.record.status).toBe(MigrationStatus.ROLLED_BACK);
      expect((await store.events(id)).map((e) => e.type)).toEqual(['held', 'held', 'state-damaged']);
      const keptSk = (contexts[0] as { keptAs: string }).keptAs.split('sk=')[1]!;
      expect(await rawItem(migrationPk(id), keptSk)).toMatchObject({ version: 'x', record: { status: 'bogus' } });
      // The same damage cannot be replaced twice: the second writer of a race is refused.
      await expect(store.quarantine(id, damage, () => ({ record: makeRecord(id), events: [] }))).rejects.toBeInstanceOf(StaleStateError);
    });

    it('should replace a record that fails the schema only while its version is unchanged', async () => {
      const id = newId();
      await store.save(id, makeRecord(id), 0, []);
      const damage = { what: 'record version 1 fails its schema: status: unknown status "bogus"', version: 1 };
      await store.save(id, makeRecord(id), 1, []);
      await expect(store.quarantine(id, damage, () => ({ record: makeRecord(id), events: [] }))).rejects.toBeInstanceOf(StaleStateError);
      expect(await store.quarantine(id, { ...damage, version: 2 }, () => ({ record: makeRecord(id, { weight: 0 }), events: [] }))).toBe(3);
      expect((await store.load(id))?.record.weight).toBe(0);
    });
  });

  it('should read an event log longer than one 1 MB query page', async () => {
    const id = newId();
    const filler = 'x'.repeat(4000);
    let version = 0;
    const all = [];
    for (let batch = 0; batch < 6; batch++) {
      const events = Array.from({ length: 50 }, (_, i) => makeEvent(id, batch * 50 + i + 1, { reason: `${filler} ${batch * 50 + i + 1}` }));
      all.push(...events);
      version = await store.save(id, makeRecord(id, { eventSeq: all.length }), version, events);
    }
    const pages = dynamo.calls.get('Query') ?? 0;
    const log = await store.events(id);
    expect(log).toHaveLength(300);
    expect(log.map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    // More than one Query call was needed (300 × 4 KB > 1 MB).
    expect((dynamo.calls.get('Query') ?? 0) - pages).toBeGreaterThan(1);
  });

  it('should store non-finite numbers as null, as JSON would', async () => {
    const id = newId();
    const record = makeRecord(id, {
      lastDecision: { action: 'hold', code: 'baking', reason: 'r', signals: { stats: { llr5xx: Number.NEGATIVE_INFINITY, ok: 1 } } },
    });
    await store.save(id, record, 0, []);
    const stats = (await store.load(id))?.record.lastDecision?.signals.stats as Record<string, unknown>;
    expect(stats).toEqual({ llr5xx: null, ok: 1 });
  });

  it('should reject events of another migration or with repeated sequence numbers', async () => {
    const id = newId();
    await expect(store.save(id, makeRecord(id), 0, [makeEvent('other', 1)])).rejects.toThrow(/belongs to migration "other"/);
    await expect(store.save(id, makeRecord(id), 0, [makeEvent(id, 1), makeEvent(id, 1)])).rejects.toThrow(/unique/);
    expect(await store.load(id)).toBeUndefined();
  });
});

describe('DynamoDbStateStore: current-migration pointer', () => {
  it('should create, read and replace the pointer only from the expected migration', async () => {
    const key = `fn${++n}:live`;
    expect(await store.getPointer(key)).toBeUndefined();
    const first = { migrationId: `${key}:2`, oldVersion: '1', newVersion: '2', createdAtMs: 1, spec: { plan: { steps: [{ weight: 100, bakeMs: 60000 }], soakMs: 0, healthWindowMs: 60000, teardown: 'manual' as const }, pinnedCapacity: 3 } };
    await store.putPointer(key, first, undefined);
    expect(await store.getPointer(key)).toEqual(first);
    const raw = await rawItem(`ALIAS#${key}`, 'CURRENT');
    expect(raw).toMatchObject({ migrationId: first.migrationId, oldVersion: '1', newVersion: '2' });

    const second = { migrationId: `${key}:3`, oldVersion: '2', newVersion: '3', createdAtMs: 2 };
    await expect(store.putPointer(key, second, undefined)).rejects.toBeInstanceOf(PointerConflictError);
    await expect(store.putPointer(key, second, 'someone-else')).rejects.toBeInstanceOf(PointerConflictError);
    await store.putPointer(key, second, first.migrationId);
    expect(await store.getPointer(key)).toEqual(second);
  });
});

describe('DynamoDbStateStore: probe results', () => {
  const base = 1_800_000_000_000;
  const results = [
    { side: 'old' as const, verdict: 'ok' as const, atMs: base, summary: 'ok', findings: 0 },
    { side: 'new' as const, verdict: 'ok' as const, atMs: base + 60_000, summary: 'ok', findings: 0, unsolicitedBytes: 0 },
    { side: 'new' as const, verdict: 'desync' as const, atMs: base + 120_000, summary: 'shifted', findings: 2, shiftedSteps: 3, mismatchRate: 0.5 },
    { side: 'old' as const, verdict: 'inconclusive' as const, atMs: base + 130_000, summary: 'timeout', findings: 1 },
  ];

  it("should store probe results in the migration's partition with a TTL and read them by time, oldest first", async () => {
    const id = newId();
    for (const r of results) await store.putProbeResult(id, r);

    expect(await store.probeResultsSince(id, base + 60_000)).toEqual(results.slice(1));
    expect(await store.probeResultsSince(id, base + 200_000)).toEqual([]);
    expect(await store.latestProbeResult(id, 'new', base)).toEqual(results[2]);
    expect(await store.latestProbeResult(id, 'old', base + 125_000)).toEqual(results[3]);
    expect(await store.latestProbeResult(id, 'old', base + 131_000)).toBeUndefined();
    const raw = await rawItem(migrationPk(id), `PROBE#${String(base).padStart(15, '0')}#old`);
    expect(raw?.sk).toBe(probeSk(base, 'old'));
    expect(raw?.expiresAt).toBe(base / 1000 + 7 * 24 * 3600);
    // Probe items are neither events nor the record.
    expect(await store.events(id)).toEqual([]);
    expect(await store.load(id)).toBeUndefined();
  });

  it('should keep results of one migration out of every other one', async () => {
    const a = newId();
    const b = newId();
    await store.putProbeResult(a, results[2]!);
    await store.save(b, makeRecord(b, { probesSeenUntilMs: 0 }), 0, []);
    await store.load(b);
    expect(store.takeLoadedProbeResults(b, 0)).toEqual([]);
    expect(await store.probeResultsSince(b, 0)).toEqual([]);
    expect(await store.latestProbeResult(b, 'new', 0)).toBeUndefined();
  });

  it('should file results taken with no migration under the alias, where no migration reads them', async () => {
    const key = `fn${++n}:live`;
    await store.putUnattributedProbeResult(key, results[0]!);
    const raw = await rawItem(unattributedProbePk(key), unattributedProbeSk(base, 'old'));
    expect(raw).toMatchObject({ verdict: 'ok', expiresAt: base / 1000 + 7 * 24 * 3600 });
    expect(await store.probeResultsSince(`${key}:2`, 0)).toEqual([]);
  });

  it('should load the record and the probe results since the last seen one in ONE query, served once', async () => {
    const id = newId();
    await store.save(id, makeRecord(id, { probesSeenUntilMs: base + 60_000 }), 0, []);
    for (const r of results) await store.putProbeResult(id, r);
    // A fresh store (a new container) remembers nothing; the next load starts from what it read.
    const fresh = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
    const queries = dynamo.calls.get('Query') ?? 0;
    const gets = dynamo.calls.get('GetItem') ?? 0;
    expect((await fresh.load(id))?.record.probesSeenUntilMs).toBe(base + 60_000);
    expect(fresh.takeLoadedProbeResults(id, base + 60_000)).toEqual(results.slice(1));
    expect((dynamo.calls.get('Query') ?? 0) - queries).toBe(1);
    expect((dynamo.calls.get('GetItem') ?? 0) - gets).toBe(0);
    // Served once, and never for another migration.
    expect(fresh.takeLoadedProbeResults(id, base + 60_000)).toBeUndefined();
    await fresh.load(id);
    expect(fresh.takeLoadedProbeResults(newId(), base + 60_000)).toBeUndefined();
    // The second load started at the remembered probesSeenUntilMs: an earlier start is not covered.
    expect(fresh.takeLoadedProbeResults(id, base)).toBeUndefined();
    await fresh.load(id);
    expect(fresh.takeLoadedProbeResults(id, base + 125_000)).toEqual(results.slice(3));
  });

  it('should say which results a load cut by its limit covers, and query the rest', async () => {
    const id = newId();
    await store.save(id, makeRecord(id, { probesSeenUntilMs: 0 }), 0, []);
    for (const r of results) await store.putProbeResult(id, r);
    const limited = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, probeResultsPerLoad: 2, alarmStatesPerLoad: 0 });
    await limited.load(id);
    // The two newest were read: every result after the older of them is covered, not before.
    expect(limited.takeLoadedProbeResults(id, 0)).toBeUndefined();
    expect(limited.takeLoadedProbeResults(id, base + 120_001)).toEqual(results.slice(3));
    await limited.load(id);
    expect(limited.takeLoadedProbeResults(id, base + 120_000)).toBeUndefined();
    expect(await limited.probeResultsSince(id, 0)).toEqual(results);
  });

  it('should drop what a load read once a result is recorded for that migration', async () => {
    const id = newId();
    await store.save(id, makeRecord(id, { probesSeenUntilMs: base }), 0, []);
    await store.load(id);
    await store.putProbeResult(id, results[1]!);
    expect(store.takeLoadedProbeResults(id, base)).toBeUndefined();
  });

  it('should still finish an interrupted event copy when the load also reads probe results', async () => {
    const id = newId();
    const events = [makeEvent(id, 1), makeEvent(id, 2)];
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(id), sk: 'STATE', version: 1, record: makeRecord(id, { eventSeq: 2, probesSeenUntilMs: 0 }), outbox: events } }),
    );
    await store.putProbeResult(id, results[0]!);
    expect((await store.load(id))?.version).toBe(1);
    expect(store.takeLoadedProbeResults(id, 0)).toEqual([results[0]]);
    expect((await eventItems(id)).map((i) => i.event)).toEqual(events);
    expect(await rawItem(migrationPk(id), 'STATE')).not.toHaveProperty('outbox');
  });

  it('rejects a probe limit that is not a whole number ≥ 1', () => {
    expect(() => new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, probeResultsPerLoad: 0 })).toThrow(/probeResultsPerLoad/);
  });
});

describe('DynamoDbStateStore: alarm states', () => {
  const base = 1_800_000_000_000;
  const state = (value: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA', changedAtMs: number, source: 'event' | 'describe' = 'event') => ({
    name: 'api-errors',
    state: value,
    reason: `test: ${value}`,
    changedAtMs,
    source,
    recordedAtMs: base + 99_000,
  });

  it("should record alarm states in the migration's partition and read them in the load's one Query, served once", async () => {
    const id = newId();
    await store.save(id, makeRecord(id, { probesSeenUntilMs: base }), 0, []);
    await store.putProbeResult(id, { side: 'new', verdict: 'ok', atMs: base + 1_000, summary: 'aligned', findings: 0 });
    expect(await store.recordAlarmState(id, state('ALARM', base + 2_000))).toBe(true);
    expect(await store.recordAlarmState(id, { ...state('OK', base + 500), name: 'api-latency' })).toBe(true);
    const queries = dynamo.calls.get('Query') ?? 0;
    await store.load(id);
    expect((dynamo.calls.get('Query') ?? 0) - queries).toBe(1);
    const alarms = store.takeLoadedAlarmStates(id);
    expect(alarms && Object.fromEntries([...alarms].map(([name, a]) => [name, a.state]))).toEqual({ 'api-errors': 'ALARM', 'api-latency': 'OK' });
    expect(alarms?.get('api-errors')).toEqual(state('ALARM', base + 2_000));
    // The probe results came with them.
    expect(store.takeLoadedProbeResults(id, base)).toHaveLength(1);
    // Served once, and never for another migration.
    expect(store.takeLoadedAlarmStates(id)).toBeUndefined();
    await store.load(id);
    expect(store.takeLoadedAlarmStates(newId())).toBeUndefined();
  });

  it('should never let an older state overwrite a newer one, and let a confirmation of the same time replace an event', async () => {
    const id = newId();
    expect(await store.recordAlarmState(id, state('OK', base + 2_000))).toBe(true);
    // Late, and delivered twice.
    expect(await store.recordAlarmState(id, state('ALARM', base + 1_000))).toBe(false);
    expect(await store.recordAlarmState(id, state('OK', base + 2_000))).toBe(false);
    // A DescribeAlarms read of the same transition is authoritative.
    expect(await store.recordAlarmState(id, state('OK', base + 2_000, 'describe'))).toBe(true);
    expect(await store.recordAlarmState(id, state('ALARM', base + 3_000))).toBe(true);
    await store.save(id, makeRecord(id), 0, []);
    await store.load(id);
    expect(store.takeLoadedAlarmStates(id)?.get('api-errors')).toMatchObject({ state: 'ALARM', changedAtMs: base + 3_000, source: 'event' });
  });

  it('should keep the newest of two concurrent writers whatever order they land in', async () => {
    for (let round = 0; round < 5; round++) {
      const id = newId();
      const writes = [state('ALARM', base + 5_000), state('OK', base + 4_000, 'describe'), state('INSUFFICIENT_DATA', base + 3_000)];
      if (round % 2) writes.reverse();
      await Promise.all(writes.map((w) => store.recordAlarmState(id, w)));
      await store.save(id, makeRecord(id), 0, []);
      await store.load(id);
      expect(store.takeLoadedAlarmStates(id)?.get('api-errors')).toMatchObject({ state: 'ALARM', changedAtMs: base + 5_000 });
    }
  });

  it('should not claim to have read every alarm state when the Query stopped before the probe range', async () => {
    const id = newId();
    await store.save(id, makeRecord(id), 0, []);
    for (const name of ['a1', 'a2', 'a3']) await store.recordAlarmState(id, { ...state('OK', base), name });
    const tight = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, probeResultsPerLoad: 1, alarmStatesPerLoad: 1 });
    await tight.load(id);
    expect(tight.takeLoadedAlarmStates(id)).toBeUndefined();
    const roomy = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, alarmStatesPerLoad: 3 });
    await roomy.load(id);
    expect(roomy.takeLoadedAlarmStates(id)?.size).toBe(3);
  });

  it('rejects a state without a name or time, and a bad alarm room', async () => {
    await expect(store.recordAlarmState(newId(), { ...state('OK', base), name: '' })).rejects.toThrow(/must have a name/);
    await expect(store.recordAlarmState(newId(), state('OK', Number.NaN))).rejects.toThrow(/changedAtMs must be epoch ms, got null/);
    expect(() => new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, alarmStatesPerLoad: -1 })).toThrow(
      /alarmStatesPerLoad must be a whole number ≥ 0, got -1/,
    );
  });
});

describe('DynamoDbStateStore: status of stored records', () => {
  it('should keep the status and plan of the record exactly', async () => {
    const id = newId();
    const record = makeRecord(id, { status: MigrationStatus.PAUSED, pausedFrom: MigrationStatus.BAKING });
    await store.save(id, record, 0, []);
    expect((await store.load(id))?.record).toEqual(record);
  });
});
