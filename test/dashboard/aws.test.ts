/**
 * The dashboard over AWS: the migration table in dynalite (records written as the controller
 * writes them), the controller's invoke and CloudWatch mocked. A key (`<function>:<alias>`) names
 * its current migration, as in `cutover status`; an action is the control command's invoke; each
 * refresh of a watched page makes one GetMetricData request, a rehearsal's page none.
 */
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationStatus } from '../../lambda/core/model';
import type { MigrationState } from '../../ops';
import { AwsMigrationSource } from '../../ops';
import { CloudWatchLiveMetrics, type CloudWatchRead, type LiveMetrics } from '../../dashboard/cloudwatch';
import { DashboardServer } from '../../dashboard/server';
import type { ListView, MigrationView } from '../../dashboard/view';
import { makeEvent, makeRecord } from '../aws/fixtures';
import { startDynalite, type LocalDynamo } from '../aws/helpers';
import { tempDir } from '../ops/helpers';
import { judged, readEvents, startDashboard, T0, writeJudgedMigration } from './helpers';

const TABLE = 'cutover-dashboard';
const CONTROLLER = 'cutover-controller';
let dynamo: LocalDynamo;
let server: DashboardServer;
let base: string;
const lambda = new LambdaClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const lambdaMock = mockClient(lambda);
const cloudWatch = new CloudWatchClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const cwMock = mockClient(cloudWatch);

/** The CloudWatch reader, counting the refreshes it was asked for (the stream's reads). */
class CountingReader implements LiveMetrics {
  refreshes = 0;
  readonly inner = new CloudWatchLiveMetrics({ cloudWatch, minIntervalMs: 0 });
  async read(state: MigrationState, nowMs: number): Promise<CloudWatchRead | undefined> {
    const read = await this.inner.read(state, nowMs);
    this.refreshes++;
    return read;
  }
  cached(id: string): CloudWatchRead | undefined {
    return this.inner.cached(id);
  }
  close(): void {}
}
const reader = new CountingReader();

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
  const id = 'api:live:2';
  const events = [
    makeEvent(id, 1, { atMs: T0, weight: 0, step: -1, type: 'created' }),
    makeEvent(id, 2, { atMs: T0 + 60_000, weight: 10, step: 0, type: 'advanced' }),
    makeEvent(id, 3, { atMs: T0 + 120_000, weight: 10, step: 0, signals: judged(T0 + 120_000, 500, 1, 0.2) }),
  ];
  await store.save(id, makeRecord(id, { status: MigrationStatus.BAKING, eventSeq: events.length, updatedAtMs: T0 + 120_000 }), 0, events);
  await store.putPointer('api:live', { migrationId: id, oldVersion: '1', newVersion: '2', createdAtMs: T0 }, undefined);
  const source = new AwsMigrationSource({ tableName: TABLE, controllerFunctionName: CONTROLLER, documents: dynamo.clients.documents, lambda });
  server = new DashboardServer({ source, sourceLabel: `table ${TABLE}`, pollMs: 100, liveMetrics: reader });
  base = (await server.start()).url.replace(/\/$/, '');
});

afterAll(async () => {
  await server?.close();
  await dynamo?.close();
});
afterEach(() => {
  lambdaMock.reset();
  cwMock.reset();
});

/** Waits until no stream poll is in flight (the streams were closed). */
async function settle(): Promise<void> {
  let before;
  do {
    before = reader.refreshes;
    await new Promise((resolve) => setTimeout(resolve, 250));
  } while (reader.refreshes !== before);
}

describe('dashboard over AWS', () => {
  it("should list every key's current migration and show one by its key, live", async () => {
    const list = (await (await fetch(`${base}/api/migrations`)).json()) as ListView;
    expect(list).toMatchObject({ source: `table ${TABLE}`, migrations: [{ id: 'api:live:2', key: 'api:live', status: 'baking', weight: 10 }] });
    const view = (await (await fetch(`${base}/api/migrations/${encodeURIComponent('api:live')}`)).json()) as MigrationView;
    expect(view.state).toMatchObject({ id: 'api:live:2', key: 'api:live', source: 'aws' });
    expect(view.windows).toHaveLength(1);
    const streamed = await readEvents(`${base}/api/migrations/api%3Alive%3A2/stream`, (e) => e.event === 'view');
    expect((streamed[0]!.data as MigrationView).state.id).toBe('api:live:2');
    await settle();
  });

  it('should make exactly one GetMetricData request per refresh of a watched page, with its series in the view', async () => {
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
    cwMock.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: { Id: string }[] }) => ({
      MetricDataResults: input.MetricDataQueries.map((q) => ({
        Id: q.Id,
        StatusCode: 'Complete',
        Timestamps: [new Date(minute)],
        Values: [q.Id === 'ctl_weight' ? 10 : q.Id === 'new_invocations' ? 400 : q.Id === 'new_errors5xx' ? 8 : 1],
      })),
    }));
    // A plain GET shows the last read, and makes none.
    await fetch(`${base}/api/migrations/api%3Alive`);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    const before = reader.refreshes;
    const streamed = await readEvents(`${base}/api/migrations/api%3Alive/stream`, (_e, all) => all.filter((e) => e.event === 'view').length >= 3);
    await settle();
    const refreshes = reader.refreshes - before;
    expect(refreshes).toBeGreaterThanOrEqual(3);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(refreshes);
    const queries = cwMock.commandCalls(GetMetricDataCommand)[0]!.args[0].input.MetricDataQueries!;
    expect(queries.find((q) => q.Id === 'ctl_weight')!.MetricStat!.Metric!.Dimensions).toEqual([{ Name: 'Migration', Value: 'api:live' }]);
    expect(queries.find((q) => q.Id === 'new_invocations')!.MetricStat!.Metric!.Dimensions).toContainEqual({ Name: 'ExecutedVersion', Value: '2' });
    const view = streamed.at(-1)!.data as MigrationView;
    expect(view.cloudWatch).toMatchObject({ label: 'CloudWatch', status: 'live', health: 'lambda-alias', weight: [{ atMs: minute, weight: 10 }] });
    expect(view.cloudWatch!.minutes[0]).toMatchObject({ atMs: minute, newRequests: 400, newRate5xx: (8 + 1) / 400 });
    // The judge's evidence is still there, beside it.
    expect(view.windows).toHaveLength(1);
    // Now a plain GET carries the last read, still without a call.
    const calls = cwMock.commandCalls(GetMetricDataCommand).length;
    const got = (await (await fetch(`${base}/api/migrations/api%3Alive`)).json()) as MigrationView;
    expect(got.cloudWatch?.status).toBe('live');
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(calls);
  });

  it('should keep streaming the view, marked stale, when CloudWatch throttles', async () => {
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
    cwMock
      .on(GetMetricDataCommand)
      .resolvesOnce({ MetricDataResults: [{ Id: 'ctl_weight', StatusCode: 'Complete', Timestamps: [new Date(minute)], Values: [50] }] })
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const streamed = await readEvents(`${base}/api/migrations/api%3Alive/stream`, (e) => e.event === 'view' && (e.data as MigrationView).cloudWatch?.status === 'stale');
    await settle();
    expect(streamed.some((e) => e.event === 'problem')).toBe(false);
    const view = streamed.at(-1)!.data as MigrationView;
    expect(view.cloudWatch!.message).toMatch(/throttled/);
    // The data read before the throttling is kept.
    expect(view.cloudWatch!.weight).toEqual([{ atMs: minute, weight: 50 }]);
    expect(view.state.id).toBe('api:live:2');
  });

  it("should send an action as the control command's synchronous invoke of the controller", async () => {
    lambdaMock.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: new TextEncoder().encode(JSON.stringify({ migrationId: 'api:live:2', events: 1, status: 'rolled-back', weight: 0, step: 0, action: 'rollback', code: 'operator-abort', reason: 'bad' })) as never,
    });
    const answer = await fetch(`${base}/api/migrations/api%3Alive/abort`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Cutover-Token': server.token },
      body: JSON.stringify({ reason: 'customers see errors' }),
    });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ source: 'aws', migrationId: 'api:live:2', command: 'abort', applied: true, status: 'rolled-back' });
    const sent = lambdaMock.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(sent).toMatchObject({ FunctionName: CONTROLLER, InvocationType: 'RequestResponse' });
    expect(JSON.parse(new TextDecoder().decode(sent.Payload as Uint8Array))).toEqual({ command: 'abort', reason: 'customers see errors', migration: 'api:live:2' });
  });
});

describe('dashboard over a rehearsal', () => {
  it('should make no CloudWatch request, whatever reader it was given', async () => {
    const { dir, remove } = tempDir('cutover-dashboard-cw-');
    await writeJudgedMigration(dir, 'rehearsal-1');
    const local = new CloudWatchLiveMetrics({ cloudWatch, minIntervalMs: 0 });
    const running = await startDashboard(dir, { liveMetrics: local });
    try {
      cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
      const streamed = await readEvents(`${running.base}/api/migrations/rehearsal-1/stream`, (e) => e.event === 'view');
      expect((streamed[0]!.data as MigrationView).cloudWatch).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    } finally {
      await running.close();
      remove();
    }
  });
});
