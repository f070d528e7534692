import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { makeRecord } from './fixtures';
import { createProbeRunner } from '../../lambda/aws/probe-runner';
import { TableProbes, outcomeOf, probeHealthOf, type ProbeRunner } from '../../lambda/aws/table-probes';
import { startDemoServer, type DemoServer } from '../../local/demo-server';
import { startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-table-probes';
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let n = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
});
afterAll(async () => {
  await dynamo.close();
});

/** A fresh migration id per test: tests share one table. */
const key = () => `fn${++n}:live:2`;

describe('TableProbes', () => {
  it('should return the probe function results recorded since a time, oldest first, as core outcomes', async () => {
    const k = key();
    await store.putProbeResult(k, { side: 'new', verdict: 'ok', atMs: NOW - 120_000, summary: 'old news', findings: 0 });
    await store.putProbeResult(k, { side: 'old', verdict: 'ok', atMs: NOW - 30_000, summary: 'aligned', findings: 0, shiftedSteps: 0 });
    await store.putProbeResult(k, { side: 'new', verdict: 'desync', atMs: NOW - 10_000, summary: 'shifted', findings: 3, unsolicitedBytes: 0 });
    const probes = new TableProbes({ store, migrationId: k, now: () => NOW });
    expect(await probes.recentResults(NOW - 60_000)).toEqual([
      { side: 'old', verdict: 'ok', atMs: NOW - 30_000, summary: 'aligned', findings: 0 },
      { side: 'new', verdict: 'desync', atMs: NOW - 10_000, summary: 'shifted', findings: 3 },
    ]);
  });

  it('should serve the results the store read with the record, querying only when that read does not cover the start', async () => {
    const k = key();
    await store.save(k, makeRecord(k, { probesSeenUntilMs: NOW - 60_000 }), 0, []);
    await store.putProbeResult(k, { side: 'new', verdict: 'ok', atMs: NOW - 120_000, summary: 'old news', findings: 0 });
    await store.putProbeResult(k, { side: 'new', verdict: 'desync', atMs: NOW - 10_000, summary: 'shifted', findings: 3 });
    const probes = new TableProbes({ store, migrationId: k, now: () => NOW });
    await store.load(k);
    const queries = dynamo.calls.get('Query') ?? 0;
    expect(await probes.recentResults(NOW - 60_000)).toEqual([{ side: 'new', verdict: 'desync', atMs: NOW - 10_000, summary: 'shifted', findings: 3 }]);
    expect(dynamo.calls.get('Query') ?? 0).toBe(queries);
    // The load's read was served; asking again queries (and finds the same).
    expect((await probes.recentResults(NOW - 60_000)).map((p) => p.verdict)).toEqual(['desync']);
    expect(dynamo.calls.get('Query') ?? 0).toBe(queries + 1);
  });

  it('should stand in for a fresh probe with the newest recorded result of that side when it is fresh', async () => {
    const k = key();
    await store.putProbeResult(k, { side: 'new', verdict: 'ok', atMs: NOW - 100_000, summary: 'aligned', findings: 0 });
    await store.putProbeResult(k, { side: 'old', verdict: 'ok', atMs: NOW - 5_000, summary: 'old aligned', findings: 0 });
    const probes = new TableProbes({ store, migrationId: k, now: () => NOW });
    expect(await probes.probeNow('new')).toMatchObject({ side: 'new', verdict: 'ok', atMs: NOW - 100_000 });
  });

  it("should take the stand-in from the tick's own read of recent results when it has one, and query otherwise", async () => {
    const k = key();
    await store.putProbeResult(k, { side: 'new', verdict: 'ok', atMs: NOW - 70_000, summary: 'aligned earlier', findings: 0 });
    await store.putProbeResult(k, { side: 'new', verdict: 'ok', atMs: NOW - 20_000, summary: 'aligned', findings: 0 });
    const probes = new TableProbes({ store, migrationId: k, now: () => NOW });
    await probes.recentResults(NOW - 60_000);
    const queries = dynamo.calls.get('Query') ?? 0;
    expect(await probes.probeNow('new')).toMatchObject({ verdict: 'ok', atMs: NOW - 20_000 });
    expect(dynamo.calls.get('Query') ?? 0).toBe(queries);
    // Nothing of the old side in that read: it asks the table.
    await store.putProbeResult(k, { side: 'old', verdict: 'desync', atMs: NOW - 90_000, summary: 'shifted', findings: 1 });
    expect(await probes.probeNow('old')).toMatchObject({ verdict: 'desync', atMs: NOW - 90_000 });
    expect(dynamo.calls.get('Query') ?? 0).toBe(queries + 1);
  });

  it('should answer inconclusive, saying why, when there is neither a target nor a fresh result', async () => {
    const k = key();
    await store.putProbeResult(k, { side: 'new', verdict: 'ok', atMs: NOW - 400_000, summary: 'stale', findings: 0 });
    const probes = new TableProbes({ store, migrationId: k, now: () => NOW });
    expect(await probes.probeNow('new')).toEqual({
      side: 'new',
      verdict: 'inconclusive',
      atMs: NOW,
      summary: 'no probe target for the new side in the controller and no probe result recorded in the last 180 s (is the probe function scheduled with a new target?)',
      findings: 0,
    });
  });

  it('should run a fresh probe when the controller has a target, and record it', async () => {
    const k = key();
    const seen: string[] = [];
    const runner: ProbeRunner = async (t) => {
      seen.push(t.url);
      return { side: t.side, verdict: 'ok', atMs: NOW, summary: 'aligned', findings: 0, url: t.url, shiftedSteps: 0 };
    };
    const probes = new TableProbes({ store, migrationId: k, targets: [{ side: 'new', url: 'https://new.example.com/' }], runner, now: () => NOW });
    expect(await probes.probeNow('new')).toEqual({ side: 'new', verdict: 'ok', atMs: NOW, summary: 'aligned', findings: 0 });
    expect(seen).toEqual(['https://new.example.com/']);
    expect(await store.latestProbeResult(k, 'new', NOW)).toMatchObject({ url: 'https://new.example.com/', shiftedSteps: 0 });
  });

  it('should turn a probe that cannot run into an inconclusive outcome', async () => {
    const runner: ProbeRunner = async () => {
      throw new Error('sequence file not found');
    };
    const probes = new TableProbes({ store, migrationId: key(), targets: [{ side: 'new', url: 'https://x.example.com/' }], runner, now: () => NOW });
    expect(await probes.probeNow('new')).toMatchObject({ verdict: 'inconclusive', summary: 'probe of https://x.example.com/ failed to run: Error: sequence file not found' });
  });

  it('should probe a real unreachable server as inconclusive rather than hang', async () => {
    const server: DemoServer = await startDemoServer({ version: 'gone' });
    const url = server.url;
    await server.close();
    const probes = new TableProbes({
      store,
      migrationId: key(),
      targets: [{ side: 'new', url }],
      runner: createProbeRunner({ path: '/health', runs: 1, timeoutMs: 1_000 }, { maxDurationMs: 5_000 }),
    });
    const outcome = await probes.probeNow('new');
    expect(outcome.verdict).toBe('inconclusive');
  });

  it("should carry the probe's synthetic health through the table, fresh and recorded", async () => {
    const k = key();
    const runner: ProbeRunner = async (t) => ({ side: t.side, verdict: 'inconclusive', atMs: NOW, summary: '5XX', findings: 1, url: t.url, health: { requests: 140, errors5xx: 41 } });
    const probes = new TableProbes({ store, migrationId: k, targets: [{ side: 'new', url: 'https://new.example.com/' }], runner, now: () => NOW });
    expect((await probes.probeNow('new')).health).toEqual({ requests: 140, errors5xx: 41 });
    await store.putProbeResult(k, { side: 'old', verdict: 'ok', atMs: NOW + 1, summary: 'aligned', findings: 0, health: { requests: 139, errors5xx: 0 } });
    // Read back from DynamoDB as written (a nested map of numbers).
    expect((await probes.recentResults(NOW - 1)).map((o) => [o.side, o.health])).toEqual([
      ['new', { requests: 140, errors5xx: 41 }],
      ['old', { requests: 139, errors5xx: 0 }],
    ]);
  });

  it("should carry the probe's 4XX count through the table with the rest of its health", async () => {
    const k = key();
    const runner: ProbeRunner = async (t) => ({ side: t.side, verdict: 'ok', atMs: NOW, summary: 'aligned', findings: 0, url: t.url, health: { requests: 140, errors4xx: 52, errors5xx: 1 } });
    const probes = new TableProbes({ store, migrationId: k, targets: [{ side: 'new', url: 'https://api.example.com/', connectTo: 'alb-new.example.com' }], runner, now: () => NOW });
    expect((await probes.probeNow('new')).health).toEqual({ requests: 140, errors4xx: 52, errors5xx: 1 });
    await store.putProbeResult(k, { side: 'old', verdict: 'ok', atMs: NOW + 1, summary: 'aligned', findings: 0, health: { requests: 139, errors4xx: 50, errors5xx: 0 } });
    expect((await probes.recentResults(NOW - 1)).map((o) => [o.side, o.health])).toEqual([
      ['new', { requests: 140, errors4xx: 52, errors5xx: 1 }],
      ['old', { requests: 139, errors4xx: 50, errors5xx: 0 }],
    ]);
    // As stored, for a health source that subtracts the probe's own requests.
    expect((await store.latestProbeResult(k, 'old', NOW))?.health).toEqual({ requests: 139, errors4xx: 50, errors5xx: 0 });
  });

  it('should keep the rest of the health when the 4XX count is missing or damaged', () => {
    expect(probeHealthOf({ requests: 10, errors4xx: 4, errors5xx: 6 })).toEqual({ requests: 10, errors4xx: 4, errors5xx: 6 });
    expect(probeHealthOf({ requests: 10, errors4xx: 0, errors5xx: 0 })).toEqual({ requests: 10, errors4xx: 0, errors5xx: 0 });
    for (const errors4xx of [5, -1, 1.5, '4', null, undefined]) {
      expect(probeHealthOf({ requests: 10, errors4xx, errors5xx: 6 })).toEqual({ requests: 10, errors5xx: 6 });
    }
  });

  it('should name the connectTo address of a target whose probe cannot run', async () => {
    const runner: ProbeRunner = async () => {
      throw new Error('boom');
    };
    const target = { side: 'new' as const, url: 'https://api.example.com/', connectTo: 'alb-new.example.com:443', headers: { 'X-Cutover-Probe-Side': 'new' } };
    const probes = new TableProbes({ store, migrationId: key(), targets: [target], runner, now: () => NOW });
    expect((await probes.probeNow('new')).summary).toBe('probe of https://api.example.com/ (connecting to alb-new.example.com:443) failed to run: Error: boom');
  });

  it('should leave out a synthetic health that is not well-formed, never guess one', () => {
    const base = { side: 'new' as const, verdict: 'ok' as const, atMs: NOW, summary: 's', findings: 0 };
    expect(outcomeOf(base)).toEqual(base);
    for (const health of [{ requests: 3, errors5xx: 4 }, { requests: -1, errors5xx: 0 }, { requests: 1.5, errors5xx: 0 }, { requests: '3', errors5xx: 0 }, null, 7]) {
      expect(outcomeOf({ ...base, health } as never)).toEqual(base);
      expect(probeHealthOf(health)).toBeUndefined();
    }
    expect(probeHealthOf({ requests: 0, errors5xx: 0, extra: 1 })).toEqual({ requests: 0, errors5xx: 0 });
  });

  it('fails when targets are given without a runner', () => {
    expect(() => new TableProbes({ store, migrationId: 'k', targets: [{ side: 'new', url: 'https://a/' }] })).toThrow(/runner is required/);
  });
});
