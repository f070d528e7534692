/**
 * The dashboard over AWS: the migration table in dynalite (records written as the controller
 * writes them) and the controller's invoke mocked. A key (`<function>:<alias>`) names its current
 * migration, as in `cutover status`; an action is the control command's invoke.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationStatus } from '../../lambda/core/model';
import { AwsMigrationSource } from '../../ops';
import { DashboardServer } from '../../dashboard/server';
import type { ListView, MigrationView } from '../../dashboard/view';
import { makeEvent, makeRecord } from '../aws/fixtures';
import { startDynalite, type LocalDynamo } from '../aws/helpers';
import { judged, readEvents, T0 } from './helpers';

const TABLE = 'cutover-dashboard';
const CONTROLLER = 'cutover-controller';
let dynamo: LocalDynamo;
let server: DashboardServer;
let base: string;
const lambda = new LambdaClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const lambdaMock = mockClient(lambda);

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
  server = new DashboardServer({ source, sourceLabel: `table ${TABLE}`, pollMs: 100 });
  base = (await server.start()).url.replace(/\/$/, '');
});

afterAll(async () => {
  await server?.close();
  await dynamo?.close();
});
afterEach(() => lambdaMock.reset());

describe('dashboard over AWS', () => {
  it("should list every key's current migration and show one by its key, live", async () => {
    const list = (await (await fetch(`${base}/api/migrations`)).json()) as ListView;
    expect(list).toMatchObject({ source: `table ${TABLE}`, migrations: [{ id: 'api:live:2', key: 'api:live', status: 'baking', weight: 10 }] });
    const view = (await (await fetch(`${base}/api/migrations/${encodeURIComponent('api:live')}`)).json()) as MigrationView;
    expect(view.state).toMatchObject({ id: 'api:live:2', key: 'api:live', source: 'aws' });
    expect(view.windows).toHaveLength(1);
    const streamed = await readEvents(`${base}/api/migrations/api%3Alive%3A2/stream`, (e) => e.event === 'view');
    expect((streamed[0]!.data as MigrationView).state.id).toBe('api:live:2');
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
    expect(JSON.parse(new TextDecoder().decode(sent.Payload as Uint8Array))).toEqual({ command: 'abort', reason: 'customers see errors' });
  });
});
