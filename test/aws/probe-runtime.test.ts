/**
 * The probe function's runtime: the real probe engine against loopback demo servers (one with the
 * incident's bug), results into dynalite, events through aws-sdk-client-mock, EMF to stdout.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProbeHandlerConfig } from '../../lambda/aws/config';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbStateStore, unattributedProbePk } from '../../lambda/aws/dynamodb-store';
import { createMetrics } from '../../lambda/aws/metrics';
import { createProbeRunner } from '../../lambda/aws/probe-runner';
import { NoProbeTargetError, ProbeRecordError, runFreshProbe, runProbes } from '../../lambda/aws/probe-runtime';
import { TableProbes, type ProbeRunner, type ProbeTarget } from '../../lambda/aws/table-probes';
import { startDemoServer, type DemoServer } from '../../local/demo-server';
import { captureOutput, emfLines, startDynalite, type LocalDynamo } from './helpers';
import { appResponse } from '../probe/servers';

const TABLE = 'cutover-probe-test';
const ebMock = mockClient(EventBridgeClient);
const eventBridge = new EventBridgeClient({ region: 'us-east-1' });
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let output: ReturnType<typeof captureOutput>;
let entries: PutEventsRequestEntry[];
let n = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
});
afterAll(async () => {
  ebMock.restore();
  await dynamo.close();
});
beforeEach(() => {
  entries = [];
  ebMock.reset();
  ebMock.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
    entries.push(...input.Entries);
    return { FailedEntryCount: 0, Entries: input.Entries.map((_, i) => ({ EventId: `e${i}` })) };
  });
  output = captureOutput();
});
afterEach(() => {
  output.restore();
});

function config(targets: ProbeHandlerConfig['targets']): ProbeHandlerConfig {
  return { tableName: TABLE, targets, probe: { path: '/health', runs: 1, largeBodyBytes: 20_000 }, eventBusName: 'cutover-bus', migrationKey: `api${++n}:live` };
}

/** What the deploy trigger records: the alias's current migration `<key>:2`. */
async function deploy(cfg: ProbeHandlerConfig): Promise<string> {
  const migrationId = `${cfg.migrationKey}:2`;
  await store.putPointer(cfg.migrationKey, { migrationId, oldVersion: '1', newVersion: '2', createdAtMs: 1 }, undefined);
  return migrationId;
}

function deps(cfg: ProbeHandlerConfig, runner: ProbeRunner, overrides: Partial<Parameters<typeof runProbes>[0]> = {}) {
  return { config: cfg, runner, store, eventBridge, logger: new Logger({ serviceName: 'cutover-probe' }), metrics: createMetrics('cutover-probe', 'Cutover'), ...overrides };
}

describe('probe runtime against real servers', () => {
  const servers: DemoServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('should find the desync on the new side, publish metrics, record both results and announce them', async () => {
    const healthy = await startDemoServer({ version: 'v1' });
    const faulty = await startDemoServer({ version: 'v2', faults: { desyncAfter413: true } });
    servers.push(healthy, faulty);
    const cfg = config([
      { side: 'new', url: faulty.url },
      { side: 'old', url: healthy.url },
    ]);
    await deploy(cfg);
    const response = await runProbes(deps(cfg, createProbeRunner(cfg.probe, { maxDurationMs: 20_000 })));
    expect(response.results.map((r) => [r.side, r.verdict])).toEqual([
      ['new', 'desync'],
      ['old', 'ok'],
    ]);

    // Metrics: one EMF line per side, dimensions {Migration, Side}.
    const emf = emfLines(output.records(), 'Cutover');
    expect(emf).toHaveLength(2);
    const unitsOf = (line: Record<string, unknown>) => {
      const directive = (line._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }).CloudWatchMetrics[0]!;
      expect(directive.Dimensions).toEqual([['Migration', 'Side']]);
      return Object.fromEntries(directive.Metrics.map((m) => [m.Name, m.Unit]));
    };
    // The desync: the verdict, its evidence and the run's duration.
    const newLine = emf.find((e) => e.Side === 'new')!;
    expect(unitsOf(newLine)).toEqual({ ProbeDesync: 'Count', ShiftedSteps: 'Count', MismatchRate: 'Percent', ProbeDurationMs: 'Milliseconds' });
    expect(newLine).toMatchObject({ Migration: cfg.migrationKey, ProbeDesync: 1 });
    expect(newLine.ShiftedSteps as number).toBeGreaterThan(0);
    expect(newLine.MismatchRate as number).toBeGreaterThan(0);
    // An ok run: the verdict alone (its zeros and its duration say nothing ProbeDesync = 0 does not).
    const oldLine = emf.find((e) => e.Side === 'old')!;
    expect(unitsOf(oldLine)).toEqual({ ProbeDesync: 'Count' });
    expect(oldLine).toMatchObject({ ProbeDesync: 0 });

    // Results are in the table for the controller, in the current migration's partition.
    const stored = await store.probeResultsSince(`${cfg.migrationKey}:2`, 0);
    expect(stored.map((r) => [r.side, r.verdict, r.url])).toEqual(
      expect.arrayContaining([
        ['new', 'desync', faulty.url],
        ['old', 'ok', healthy.url],
      ]),
    );

    // Each with the side's synthetic health, read back from the table as written.
    for (const r of stored) {
      expect(r.health!.requests).toBeGreaterThan(20);
      expect(r.health!.errors5xx).toBe(0);
      expect(response.results.find((x) => x.side === r.side)).toBeDefined();
    }

    // One event per result; the desync one matches the rule that wakes the controller.
    expect(entries).toHaveLength(2);
    const detail = JSON.parse(entries.find((e) => JSON.parse(e.Detail!).side === 'new')!.Detail!);
    expect(entries[0]).toMatchObject({ Source: 'cutover.probe', DetailType: 'Cutover Probe Result', EventBusName: 'cutover-bus' });
    expect(detail).toMatchObject({ migrationKey: cfg.migrationKey, side: 'new', verdict: 'desync' });
    expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(1);
  }, 30_000);
});

describe('probe runtime: one side of a fleet migration through connectTo and headers', () => {
  /** The probe test app on 127.0.0.1, recording the Host and side header of every request. */
  async function sideServer(): Promise<{ port: number; hosts: Set<string | undefined>; sides: Set<string | undefined>; close(): Promise<void> }> {
    const hosts = new Set<string | undefined>();
    const sides = new Set<string | undefined>();
    const server = http.createServer((req, res) => {
      hosts.add(req.headers.host);
      sides.add(req.headers['x-cutover-probe-side'] as string | undefined);
      const answer = appResponse({ method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0]!, contentLength: Number(req.headers['content-length'] ?? '0'), headers: req.headers });
      res.writeHead(answer.status, answer.reason, Object.fromEntries(answer.headers));
      res.end(req.method === 'HEAD' ? undefined : answer.body);
      req.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return {
      port: (server.address() as AddressInfo).port,
      hosts,
      sides,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  it("should probe each side at its own address as the URL's host, with its header, and store the 4XX count", async () => {
    const oldSide = await sideServer();
    const newSide = await sideServer();
    try {
      const cfg = config([
        { side: 'new', url: 'http://api.cutover.test/', connectTo: `127.0.0.1:${newSide.port}`, headers: { 'X-Cutover-Probe-Side': 'new' } },
        { side: 'old', url: 'http://api.cutover.test/', connectTo: `127.0.0.1:${oldSide.port}`, headers: { 'X-Cutover-Probe-Side': 'old' } },
      ]);
      const migrationId = await deploy(cfg);
      const response = await runProbes(deps(cfg, createProbeRunner({ ...cfg.probe, timeoutMs: 3000 }, { maxDurationMs: 20_000 })));
      expect(response.results).toEqual([
        { side: 'new', url: 'http://api.cutover.test/', connectTo: `127.0.0.1:${newSide.port}`, verdict: 'ok', summary: expect.any(String) },
        { side: 'old', url: 'http://api.cutover.test/', connectTo: `127.0.0.1:${oldSide.port}`, verdict: 'ok', summary: expect.any(String) },
      ]);
      for (const [server, side] of [[newSide, 'new'], [oldSide, 'old']] as const) {
        expect(server.hosts).toEqual(new Set(['api.cutover.test']));
        expect(server.sides).toEqual(new Set([side]));
      }
      // Stored with the 4XX answers (the probe's 404, 413, 405, 400 and 401), read back as written.
      for (const r of await store.probeResultsSince(migrationId, 0)) {
        expect(r.health!.errors4xx).toBeGreaterThanOrEqual(10);
        expect(r.health!.errors4xx! + r.health!.errors5xx).toBeLessThanOrEqual(r.health!.requests);
      }
    } finally {
      await Promise.all([oldSide.close(), newSide.close()]);
    }
  }, 30_000);

  it('should record a target with a bad connectTo or header as inconclusive, saying why', async () => {
    const cfg = config([
      { side: 'new', url: 'https://api.example.invalid/', connectTo: 'https://alb-new.example.invalid' },
      { side: 'old', url: 'https://api.example.invalid/', headers: { Host: 'elsewhere.example.invalid' } },
    ]);
    await deploy(cfg);
    const response = await runProbes(deps(cfg, createProbeRunner(cfg.probe, { maxDurationMs: 5_000 })));
    expect(response.results.map((r) => [r.side, r.verdict])).toEqual([
      ['new', 'inconclusive'],
      ['old', 'inconclusive'],
    ]);
    expect(response.results[0]!.summary).toBe(
      'probe of https://api.example.invalid/ (connecting to https://alb-new.example.invalid) failed to run: ProbeUsageError: connectTo must be a host name or IP address with an optional :port (IPv6 in brackets); give no scheme (the URL says http or https), got "https://alb-new.example.invalid"',
    );
    expect(response.results[1]!.summary).toMatch(/failed to run: ProbeUsageError: headers: header "Host" is set by the probe and cannot be given$/);
  });
});

describe('probe runtime: both sides probed equally often', () => {
  /** A runner that answers at once and remembers what it probed, in order. */
  function recordingRunner(): { runner: ProbeRunner; probed: ProbeTarget[] } {
    const probed: ProbeTarget[] = [];
    let clock = 1_000_000;
    const runner: ProbeRunner = async (t) => {
      probed.push(t);
      return {
        side: t.side,
        verdict: 'ok',
        atMs: ++clock,
        summary: `aligned (${t.side})`,
        findings: 0,
        url: t.url,
        health: { requests: 130, errors5xx: t.side === 'new' ? 2 : 0 },
      };
    };
    return { runner, probed };
  }
  const both = (): ProbeHandlerConfig =>
    config([
      { side: 'new', url: 'https://new.example.invalid/' },
      { side: 'old', url: 'https://old.example.invalid/' },
    ]);
  const count = (probed: readonly ProbeTarget[]) => ({ new: probed.filter((t) => t.side === 'new').length, old: probed.filter((t) => t.side === 'old').length });

  it('should probe every side once per scheduled run, with the one runner', async () => {
    const cfg = both();
    await deploy(cfg);
    const { runner, probed } = recordingRunner();
    await runProbes(deps(cfg, runner));
    expect(probed.map((t) => t.side)).toEqual(['new', 'old']);
  });

  it("should probe the old side with every fresh probe the controller asks of the new side, and record that one for it", async () => {
    const cfg = both();
    const migrationId = await deploy(cfg);
    const { runner, probed } = recordingRunner();
    // The old side's probe finishes first: its result is still stamped after the fresh one.
    const slowNew: ProbeRunner = async (t) => {
      const r = await runner(t);
      return t.side === 'new' ? { ...r, atMs: r.atMs + 10 } : r;
    };
    const { result } = await runFreshProbe(deps(cfg, slowNew), 'new');
    expect(count(probed)).toEqual({ new: 1, old: 1 });
    expect(result).toMatchObject({ side: 'new', verdict: 'ok', health: { requests: 130, errors5xx: 2 } });
    // The controller records the asked side; the probe function records and announces the other.
    const stored = await store.probeResultsSince(migrationId, 0);
    expect(stored.map((r) => r.side)).toEqual(['old']);
    expect(stored[0]!.atMs).toBe(result.atMs + 1);
    expect(entries.map((e) => JSON.parse(e.Detail!).side)).toEqual(['old']);
    // Both runs are in the probe metrics, one line per side.
    expect(emfLines(output.records(), 'Cutover').map((e) => e.Side)).toEqual(['new', 'old']);
    // The controller, which has seen results up to the fresh one, reads the old side's next tick.
    const probes = new TableProbes({ store, migrationId, now: () => result.atMs + 60_000 });
    expect((await probes.recentResults(result.atMs)).filter((o) => o.atMs > result.atMs)).toEqual([
      { side: 'old', verdict: 'ok', atMs: result.atMs + 1, summary: 'aligned (old)', findings: 0, health: { requests: 130, errors5xx: 0 } },
    ]);
  });

  it('should keep the sides level over a migration of scheduled runs and fresh probes', async () => {
    const cfg = both();
    await deploy(cfg);
    const { runner, probed } = recordingRunner();
    // Ten minutes of schedule, a gate and four increases (each a fresh probe of the new side).
    for (let minute = 0; minute < 10; minute++) await runProbes(deps(cfg, runner));
    for (let fresh = 0; fresh < 5; fresh++) await runFreshProbe(deps(cfg, runner), 'new');
    expect(count(probed)).toEqual({ new: 15, old: 15 });
    // The same sequence and settings for both: one runner, every URL as configured.
    expect(new Set(probed.map((t) => t.url))).toEqual(new Set(cfg.targets.map((t) => t.url)));
  });

  it('should return the fresh probe even when the other side cannot be recorded, and probe nothing else without another side', async () => {
    const cfg = both();
    const { runner, probed } = recordingRunner();
    const throttled = async () => Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const broken = { getPointer: throttled, putProbeResult: throttled, putUnattributedProbeResult: throttled };
    const { result } = await runFreshProbe(deps(cfg, runner, { store: broken }), 'new');
    expect(result.side).toBe('new');
    expect(output.records().some((r) => String(r.message).includes('not fully recorded'))).toBe(true);
    // The event still went out (a desync there would still wake the controller).
    expect(entries.map((e) => JSON.parse(e.Detail!).side)).toEqual(['old']);

    entries.length = 0;
    const single = config([{ side: 'new', url: 'https://new.example.invalid/' }]);
    probed.length = 0;
    await runFreshProbe(deps(single, runner), 'new');
    expect(probed.map((t) => t.side)).toEqual(['new']);
    expect(entries).toEqual([]);
    await expect(runFreshProbe(deps(single, runner), 'old')).rejects.toThrow(NoProbeTargetError);
    await expect(runFreshProbe(deps(single, runner), 'old')).rejects.toThrow('no old target is configured (CUTOVER_PROBE_TARGETS)');
  });
});

describe('probe runtime: failures', () => {
  const okRunner: ProbeRunner = async (t) => ({ side: t.side, verdict: 'ok', atMs: Date.now(), summary: 'aligned', findings: 0, url: t.url, durationMs: 5 });

  it('should record an inconclusive result when a probe cannot run at all', async () => {
    const cfg = config([{ side: 'new', url: 'https://new.example.invalid/' }]);
    const runner: ProbeRunner = async () => {
      throw new TypeError('bad sequence file');
    };
    const migrationId = await deploy(cfg);
    const response = await runProbes(deps(cfg, runner));
    expect(response.results[0]).toMatchObject({ side: 'new', verdict: 'inconclusive', summary: expect.stringContaining('TypeError: bad sequence file') });
    expect((await store.probeResultsSince(migrationId, 0))[0]?.verdict).toBe('inconclusive');
    expect(emfLines(output.records(), 'Cutover')[0]).toMatchObject({ ProbeInconclusive: 1 });
  });

  it('should fail the invocation, after publishing the metrics, when results cannot be recorded', async () => {
    const cfg = config([{ side: 'new', url: 'https://new.example.invalid/' }]);
    ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }] });
    const throttledWrite = async () => Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const broken = { getPointer: async () => undefined, putProbeResult: throttledWrite, putUnattributedProbeResult: throttledWrite };
    const error = await runProbes(deps(cfg, okRunner, { store: broken })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeRecordError);
    expect((error as ProbeRecordError).failures).toEqual([
      'table write of the new result: ThrottlingException: Rate exceeded',
      'event for the new result: InternalFailure try again',
    ]);
    expect(emfLines(output.records(), 'Cutover')).toHaveLength(1);
  });

  it("should file results under the alias, where no migration reads them, while it has no migration", async () => {
    const cfg = config([{ side: 'new', url: 'https://new.example.invalid/' }]);
    await runProbes(deps(cfg, okRunner));
    const { Items } = await dynamo.clients.documents.send(
      new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': unattributedProbePk(cfg.migrationKey) } }),
    );
    expect(Items?.map((i) => i.verdict)).toEqual(['ok']);
    expect(entries).toHaveLength(1);
    // The migration deployed next starts with none of them.
    const migrationId = await deploy(cfg);
    expect(await store.probeResultsSince(migrationId, 0)).toEqual([]);
  });

  it('should write nothing to the table, announce the results and fail, when the current migration cannot be read', async () => {
    const cfg = config([{ side: 'new', url: 'https://new.example.invalid/' }]);
    const writes: string[] = [];
    const blind = {
      getPointer: async () => Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' })),
      putProbeResult: async (id: string) => void writes.push(id),
      putUnattributedProbeResult: async (key: string) => void writes.push(key),
    };
    const error = await runProbes(deps(cfg, okRunner, { store: blind })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeRecordError);
    expect((error as ProbeRecordError).failures).toEqual([`current migration of ${cfg.migrationKey} for the table writes: ThrottlingException: Rate exceeded`]);
    expect(writes).toEqual([]);
    expect(entries).toHaveLength(1);
  });

  it('should do nothing, loudly, without targets', async () => {
    const response = await runProbes(deps(config([]), okRunner));
    expect(response).toEqual({ results: [] });
    expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(0);
    expect(output.records().some((r) => String(r.message).includes('no probe targets'))).toBe(true);
  });
});
