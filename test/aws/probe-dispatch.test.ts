/**
 * The shared probe function's dispatch (probe-dispatch.ts): every live migration with probe targets
 * probed with its own settings (real probe engine against loopback demo servers, one with the
 * incident's bug), results into dynalite under each one's current migration, events through
 * aws-sdk-client-mock; each migration isolated, a small concurrency cap, the invocation's time, and
 * fresh probes confined to the named migration.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProbeSettingsConfig } from '../../lambda/aws/config';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { createMetrics } from '../../lambda/aws/metrics';
import {
  ProbeMigrationsError,
  SCHEDULED_PROBE_MAX_MS,
  probeLiveMigrations,
  probeMigrationNow,
  probeRunnerCache,
  type SharedProbeDeps,
} from '../../lambda/aws/probe-dispatch';
import { PROBE_NOW_MAX_DURATION_MS } from '../../lambda/aws/probe-invoker';
import { MigrationRegistry, REGISTRY_PK } from '../../lambda/aws/registry';
import type { ProbeRunner, ProbeTarget } from '../../lambda/aws/table-probes';
import { startDemoServer, type DemoServer } from '../../local/demo-server';
import { captureOutput, startDynalite, type LocalDynamo } from './helpers';

const ebMock = mockClient(EventBridgeClient);
const eventBridge = new EventBridgeClient({ region: 'us-east-1' });
let dynamo: LocalDynamo;
let table = 0;
let tableName: string;
let store: DynamoDbStateStore;
let registry: MigrationRegistry;
let entries: PutEventsRequestEntry[];
let output: ReturnType<typeof captureOutput>;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  ebMock.restore();
  await dynamo.close();
});
beforeEach(async () => {
  // A table per test: a scheduled run reads the whole registry.
  tableName = `probe-dispatch-${++table}`;
  await dynamo.createTable(tableName);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName });
  registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName });
  entries = [];
  ebMock.reset();
  ebMock.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
    entries.push(...input.Entries);
    return { FailedEntryCount: 0, Entries: input.Entries.map((_, i) => ({ EventId: `e${i}` })) };
  });
  output = captureOutput();
});
afterEach(() => output.restore());

const PLAN = '{"steps":[{"weight":100,"bakeMs":60000}],"soakMs":60000,"healthWindowMs":60000}';

/** Registers `key` with these settings, records its current migration `<key>:2`, and marks it live. */
async function migration(key: string, settings: Record<string, string>, options: { live?: boolean; sinceMs?: number } = {}): Promise<string> {
  await registry.register(key, { CUTOVER_PLAN: PLAN, ...settings }, 1);
  await store.putPointer(key, { migrationId: `${key}:2`, oldVersion: '1', newVersion: '2', createdAtMs: 1 }, undefined);
  if (options.live !== false) await registry.markLive(key, `${key}:2`, options.sinceMs ?? 1);
  return `${key}:2`;
}
const targets = (...list: ProbeTarget[]) => JSON.stringify(list);

function deps(overrides: Partial<SharedProbeDeps> = {}): SharedProbeDeps {
  return {
    env: { CUTOVER_TABLE_NAME: tableName, CUTOVER_EVENT_BUS_NAME: 'cutover-bus' },
    registry,
    store,
    eventBridge,
    logger: new Logger({ serviceName: 'cutover-probe' }),
    metrics: createMetrics('cutover-probe', 'Cutover'),
    runnerFor: probeRunnerCache(),
    now: () => 1_750_000_000_000,
    ...overrides,
  };
}

describe('scheduled run over real servers', () => {
  const servers: DemoServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('should probe every live migration with targets, each with its own settings, and record under its current migration', async () => {
    const healthy = await startDemoServer({ version: 'v1' });
    const faulty = await startDemoServer({ version: 'v2', faults: { desyncAfter413: true } });
    servers.push(healthy, faulty);
    const api = await migration('api:live', { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: healthy.url }), CUTOVER_PROBE_PATH: '/health' }, { sinceMs: 10 });
    const shop = await migration('shop', { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: faulty.url }, { side: 'old', url: healthy.url }), CUTOVER_PROBE_PATH: '/health' }, { sinceMs: 20 });
    // Live but without targets, and targets but not live: neither is probed.
    await migration('quiet:live', {});
    const idle = await migration('idle:live', { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: healthy.url }) }, { live: false });

    const response = await probeLiveMigrations(deps());
    expect(response.left).toBeUndefined();
    expect(response.migrations.map((m) => [m.migrationKey, m.results.map((r) => `${r.side}:${r.verdict}`)]).sort()).toEqual([
      ['api:live', ['new:ok']],
      ['shop', ['new:desync', 'old:ok']],
    ]);
    expect((await store.probeResultsSince(api, 0)).map((r) => r.verdict)).toEqual(['ok']);
    expect((await store.probeResultsSince(shop, 0)).map((r) => `${r.side}:${r.verdict}`).sort()).toEqual(['new:desync', 'old:ok']);
    expect(await store.probeResultsSince(idle, 0)).toEqual([]);
    // Each event names its migration (the controller routes by it).
    expect(entries.map((e) => JSON.parse(e.Detail!).migrationKey).sort()).toEqual(['api:live', 'shop', 'shop']);
    // Every log line of a migration's run names it.
    expect(output.records().filter((r) => r.message === 'probe result').map((r) => r.migrationKey).sort()).toEqual(['api:live', 'shop', 'shop']);
  }, 30_000);

  it('should keep probing the others when a migration’s settings are bad, its results cannot be recorded, or an item is damaged, then fail naming them', async () => {
    const healthy = await startDemoServer({ version: 'v1' });
    servers.push(healthy);
    const one = targets({ side: 'new', url: healthy.url });
    const good = await migration('good:live', { CUTOVER_PROBE_TARGETS: one, CUTOVER_PROBE_PATH: '/health' });
    await migration('bad-runs:live', { CUTOVER_PROBE_TARGETS: one, CUTOVER_PROBE_RUNS: 'many' });
    const unrecorded = await migration('unrecorded:live', { CUTOVER_PROBE_TARGETS: one, CUTOVER_PROBE_PATH: '/health' });
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: tableName, Item: { pk: REGISTRY_PK, sk: 'damaged:live', settings: { CUTOVER_PROBE_TARGETS: 7 }, updatedAtMs: 1, live: { migrationId: 'damaged:live:2', sinceMs: 1 } } }),
    );
    const failingStore: SharedProbeDeps['store'] = {
      getPointer: (key) => store.getPointer(key),
      putUnattributedProbeResult: (key, result) => store.putUnattributedProbeResult(key, result),
      putProbeResult: async (id, result) => {
        if (id === unrecorded) throw Object.assign(new Error('Throughput exceeds the current capacity'), { name: 'ProvisionedThroughputExceededException' });
        return store.putProbeResult(id, result);
      },
    };

    const error = await probeLiveMigrations(deps({ store: failingStore })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeMigrationsError);
    const failures = (error as ProbeMigrationsError).failures;
    expect(failures.map((f) => f.migrationKey).sort()).toEqual(['bad-runs:live', 'damaged:live', 'unrecorded:live']);
    expect(failures.find((f) => f.migrationKey === 'bad-runs:live')!.error).toMatch(
      /the probe settings of migration bad-runs:live cannot be used: environment variable CUTOVER_PROBE_RUNS must be a whole number from 1 to 20, got "many"/,
    );
    expect(failures.find((f) => f.migrationKey === 'unrecorded:live')!.error).toMatch(/ProbeRecordError.*ProvisionedThroughputExceededException/);
    expect(failures.find((f) => f.migrationKey === 'damaged:live')!.error).toMatch(/registry item damaged: .*CUTOVER_PROBE_TARGETS must be a string/);
    // The good one was probed and recorded all the same; the damaged item's live mark is untouched.
    expect((await store.probeResultsSince(good, 0)).map((r) => r.verdict)).toEqual(['ok']);
    expect((await registry.list()).damaged).toEqual([expect.objectContaining({ migrationKey: 'damaged:live', liveMigrationId: 'damaged:live:2' })]);
    expect(output.records().some((r) => r.message === 'registry item damaged: its probes do not run until a deploy rewrites it')).toBe(true);
  }, 30_000);
});

/** A runner that holds every probe until released, counting how many run at once. */
function heldRunner() {
  const held: (() => void)[] = [];
  const state = { running: 0, most: 0, started: [] as string[] };
  const runner: ProbeRunner = async (target) => {
    state.running++;
    state.most = Math.max(state.most, state.running);
    state.started.push(target.url);
    await new Promise<void>((resolve) => held.push(resolve));
    state.running--;
    return { side: target.side, url: target.url, verdict: 'ok', atMs: 1, summary: 'ok', findings: 0 };
  };
  /** Releases held probes until `done` settles (each release lets the pool start the next). */
  const drain = async (done: Promise<unknown>) => {
    let finished = false;
    void done.finally(() => (finished = true)).catch(() => {});
    while (!finished) {
      const next = held.shift();
      if (next) next();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { runner, state, drain };
}

describe('scheduled run: concurrency and time', () => {
  it('should run at most `concurrency` migrations at once, and every one in the end', async () => {
    for (let i = 0; i < 7; i++) await migration(`m${i}`, { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: `https://m${i}.example.com` }) });
    const { runner, state, drain } = heldRunner();
    const run = probeLiveMigrations(deps({ runnerFor: () => runner, concurrency: 3 }));
    await drain(run);
    const response = await run;
    expect(state.most).toBe(3);
    expect(response.migrations).toHaveLength(7);
  });

  it('should start no migration it has no time to finish (after the first batch), naming those left, and turn the order every minute', async () => {
    for (let i = 0; i < 5; i++) await migration(`m${i}`, { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: `https://m${i}.example.com` }) }, { sinceMs: i });
    const { runner, state, drain } = heldRunner();
    const short = { getRemainingTimeInMillis: () => SCHEDULED_PROBE_MAX_MS };
    const run = probeLiveMigrations(deps({ runnerFor: () => runner, concurrency: 2, now: () => 0 }), short);
    await drain(run);
    const response = await run;
    expect(response.migrations.map((m) => m.migrationKey)).toEqual(['m0', 'm1']);
    expect(response.left).toEqual(['m2', 'm3', 'm4']);
    expect(output.records().find((r) => r.message?.toString().startsWith('no time left'))).toMatchObject({ left: ['m2', 'm3', 'm4'] });
    // A minute later the run starts elsewhere: the same migrations are not always the ones left.
    state.started.length = 0;
    const later = probeLiveMigrations(deps({ runnerFor: () => runner, concurrency: 2, now: () => 3 * 60_000 }), short);
    await drain(later);
    expect((await later).migrations.map((m) => m.migrationKey)).toEqual(['m3', 'm4']);
  });
});

describe('fresh probe for a controller', () => {
  it('should probe only the named migration’s target of that side, with the fresh-probe runner', async () => {
    await migration('a:live', { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: 'https://a.example.com' }) });
    await migration('b:live', { CUTOVER_PROBE_TARGETS: targets({ side: 'new', url: 'https://b.example.com' }) });
    const asked: { url: string; purpose: string }[] = [];
    const runnerFor: SharedProbeDeps['runnerFor'] = (_probe, purpose) => async (target) => {
      asked.push({ url: target.url, purpose });
      return { side: target.side, url: target.url, verdict: 'ok', atMs: 1, summary: 'ok', findings: 0 };
    };
    const { result } = await probeMigrationNow(deps({ runnerFor }), { side: 'new', migrationKey: 'b:live' });
    expect(result.url).toBe('https://b.example.com');
    expect(asked).toEqual([{ url: 'https://b.example.com', purpose: 'now' }]);
  });

  it('fails for a migration with no probe targets, naming it and the setting', async () => {
    await migration('plain:live', {});
    await expect(probeMigrationNow(deps(), { side: 'new', migrationKey: 'plain:live' })).rejects.toThrow(
      'the probe settings of migration plain:live cannot be used: environment variable CUTOVER_PROBE_TARGETS must be set, got null',
    );
  });
});

describe('probe runners', () => {
  it('should make one runner per probe settings and purpose, bounded as the purpose needs', () => {
    const made: { probe: ProbeSettingsConfig; maxDurationMs?: number }[] = [];
    const cache = probeRunnerCache((probe, options) => {
      made.push({ probe, ...(options?.maxDurationMs !== undefined ? { maxDurationMs: options.maxDurationMs } : {}) });
      return async () => {
        throw new Error('not run');
      };
    });
    const a = cache({ path: '/health', runs: 1 }, 'scheduled');
    expect(cache({ runs: 1, path: '/health' }, 'scheduled')).toBe(a);
    expect(cache({ path: '/health', runs: 2 }, 'scheduled')).not.toBe(a);
    expect(cache({ path: '/health', runs: 1 }, 'now')).not.toBe(a);
    expect(made.map((m) => m.maxDurationMs)).toEqual([SCHEDULED_PROBE_MAX_MS, SCHEDULED_PROBE_MAX_MS, PROBE_NOW_MAX_DURATION_MS]);
  });
});
