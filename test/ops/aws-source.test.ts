/**
 * AwsMigrationSource: reads against dynalite (records written with DynamoDbStateStore, as the
 * controller writes them), commands through a mocked LambdaClient.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ControllerResponse } from '../../lambda/aws/controller-runtime';
import { DynamoDbStateStore, STATE_SK, migrationPk } from '../../lambda/aws/dynamodb-store';
import { MigrationStatus } from '../../lambda/core/model';
import { AwsMigrationSource, SourceUnavailableError, SourceUsageError, UnknownMigrationError, statusExitCode } from '../../ops';
import { throttled } from '../aws/fake-account';
import { makeEvent, makeRecord } from '../aws/fixtures';
import { startDynalite, type LocalDynamo } from '../aws/helpers';

const TABLE = 'cutover-ops';
const CONTROLLER = 'cutover-controller';
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;

const lambda = new LambdaClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const lambdaMock = mockClient(lambda);
afterEach(() => lambdaMock.reset());

const payload = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as never;

function source(options: { table?: boolean; controller?: boolean } = {}): AwsMigrationSource {
  return new AwsMigrationSource({
    ...(options.table !== false ? { tableName: TABLE } : {}),
    ...(options.controller !== false ? { controllerFunctionName: CONTROLLER } : {}),
    documents: dynamo.clients.documents,
    lambda,
  });
}

async function migration(id: string, status: MigrationStatus, events = 3, overrides = {}): Promise<void> {
  const log = Array.from({ length: events }, (_, i) => makeEvent(id, i + 1, i === events - 1 ? { to: status, reason: `last of ${id}` } : {}));
  await store.save(id, makeRecord(id, { status, eventSeq: events, ...overrides }), 0, log);
}

async function pointer(key: string, migrationId: string, replacing?: string): Promise<void> {
  await store.putPointer(key, { migrationId, oldVersion: '1', newVersion: '2', createdAtMs: 1_700_000_000_000 }, replacing);
}

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
  // api:live ran api:live:1 (rolled back), then api:live:2 (baking, 7 events).
  await migration('api:live:1', MigrationStatus.ROLLED_BACK, 2, { weight: 0 });
  await pointer('api:live', 'api:live:1');
  await migration('api:live:2', MigrationStatus.BAKING, 7, { weight: 25, step: 1, plan: { steps: [{ weight: 10, bakeMs: 60_000 }, { weight: 25, bakeMs: 60_000 }, { weight: 100, bakeMs: 60_000 }], soakMs: 60_000, healthWindowMs: 60_000, teardown: 'manual' } });
  await pointer('api:live', 'api:live:2', 'api:live:1');
  // shop:web is complete; orders:live was recorded by a deploy but not started yet.
  await migration('shop:web:7', MigrationStatus.COMPLETE, 4, { weight: 100, step: 1 });
  await pointer('shop:web', 'shop:web:7');
  await pointer('orders:live', 'orders:live:3');
  // A record item the controller cannot trust.
  await dynamo.clients.documents.send(
    new PutCommand({ TableName: TABLE, Item: { pk: migrationPk('bad:live:1'), sk: STATE_SK, version: 1, record: { ...makeRecord('bad:live:1'), status: 'bogus' } } }),
  );
  await pointer('bad:live', 'bad:live:1');
});

afterAll(async () => {
  await dynamo.close();
});

describe('AwsMigrationSource: reading the table', () => {
  it("should list every key's current migration, started or not, and only those", async () => {
    const rows = await source().list();
    expect(rows).toEqual([
      { id: 'api:live:2', key: 'api:live', status: 'baking', weight: 25, step: 1, steps: 3, updatedAtMs: 1_700_000_000_000 },
      { id: 'bad:live:1', key: 'bad:live', status: 'damaged', damage: expect.stringMatching(/fails its schema: status: unknown status "bogus"/) },
      { id: 'orders:live:3', key: 'orders:live', status: 'pending', note: 'recorded by the deploy; the controller has not started it yet' },
      { id: 'shop:web:7', key: 'shop:web', status: 'complete', weight: 100, step: 1, steps: 2, updatedAtMs: 1_700_000_000_000 },
    ]);
  });

  it('should show a migration by id or by key, with its newest five events', async () => {
    const byKey = await source().status('api:live');
    expect(byKey).toMatchObject({ source: 'aws', id: 'api:live:2', key: 'api:live', status: 'baking', weight: 25, step: 1, stepWeights: [10, 25, 100] });
    expect(byKey.recentEvents.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7]);
    expect(byKey.recentEvents[4]).toMatchObject({ reason: 'last of api:live:2' });
    const byId = await source().status('api:live:1');
    expect(byId).toMatchObject({ id: 'api:live:1', status: 'rolled-back' });
    expect(byId).not.toHaveProperty('key');
    expect(statusExitCode(byId.status)).toBe(1);
    expect(await source().status('orders:live')).toMatchObject({ id: 'orders:live:3', status: 'pending', recentEvents: [] });
    expect((await source().status('bad:live')).status).toBe('damaged');
  });

  it('should read the whole event log, and say when there is no such migration', async () => {
    expect((await source().history('api:live')).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await expect(source().status('nobody:here')).rejects.toBeInstanceOf(UnknownMigrationError);
    await expect(source().history('nobody:here')).rejects.toThrow(/no migration "nobody:here" in table cutover-ops/);
  });

  it('should need a table to read, and report an unreachable one as unavailable', async () => {
    await expect(source({ table: false }).list()).rejects.toBeInstanceOf(SourceUsageError);
    const missing = new AwsMigrationSource({ tableName: 'no-such-table', documents: dynamo.clients.documents });
    await expect(missing.status('api:live')).rejects.toThrow(SourceUnavailableError);
    await expect(missing.status('api:live')).rejects.toThrow(/could not read migration api:live: ResourceNotFoundException/);
  });
});

describe('AwsMigrationSource: commands through the controller', () => {
  const answer = (response: Partial<ControllerResponse>) => ({ StatusCode: 200, Payload: payload({ migrationId: 'api:live:2', events: 1, ...response }) });

  it('should invoke the controller synchronously with {command, reason, migration} and return its answer', async () => {
    lambdaMock.on(InvokeCommand).resolves(answer({ status: 'paused', weight: 25, step: 1, action: 'pause', code: 'operator-pause', reason: 'report' }));
    const outcome = await source().command('api:live', 'pause', 'report');
    expect(outcome).toMatchObject({ source: 'aws', migrationId: 'api:live:2', command: 'pause', applied: true, status: 'paused', weight: 25, step: 1, events: 1 });
    expect(outcome).not.toHaveProperty('refusal');
    const sent = lambdaMock.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(sent).toMatchObject({ FunctionName: CONTROLLER, InvocationType: 'RequestResponse' });
    // Named by the id the key resolved to: a shared controller acts on it only while it is current.
    expect(JSON.parse(new TextDecoder().decode(sent.Payload as Uint8Array))).toEqual({ command: 'pause', reason: 'report', migration: 'api:live:2' });
  });

  it('should name the migration as given when there is no table, and take an answer about that key’s current migration', async () => {
    lambdaMock.on(InvokeCommand).resolves(answer({ migrationKey: 'api:live', status: 'paused', weight: 25 }));
    const outcome = await source({ table: false }).command('api:live', 'pause', 'x');
    expect(JSON.parse(new TextDecoder().decode(lambdaMock.commandCalls(InvokeCommand)[0]!.args[0].input.Payload as Uint8Array))).toEqual({
      command: 'pause',
      reason: 'x',
      migration: 'api:live',
    });
    expect(outcome).toMatchObject({ applied: true, migrationId: 'api:live:2', status: 'paused', weight: 25 });
    expect(outcome).not.toHaveProperty('refusal');
  });

  it('should report the shared controller’s refusals: another migration is current, or several are registered and none named', async () => {
    lambdaMock.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: payload({ errorType: 'MigrationNotCurrentError', errorMessage: 'api:live:2 is not the current migration of api:live (api:live:3 is)' }),
    });
    expect(await source({ table: false }).command('api:live:2', 'abort', 'x')).toMatchObject({
      applied: false,
      refusal: 'the controller refused or failed it (Unhandled): MigrationNotCurrentError: api:live:2 is not the current migration of api:live (api:live:3 is)',
    });
  });

  it("should report the controller's refusal (a FunctionError) as not applied, with its message", async () => {
    lambdaMock.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: payload({ errorType: 'InvalidCommandError', errorMessage: 'cannot resume a migration that is baking: only a paused migration can resume', trace: [] }),
    });
    const outcome = await source().command('api:live:2', 'resume', 'go');
    expect(outcome).toMatchObject({
      applied: false,
      refusal: 'the controller refused or failed it (Unhandled): InvalidCommandError: cannot resume a migration that is baking: only a paused migration can resume',
    });
  });

  it('should count a refusal after a retried invoke as applied when the table shows it was', async () => {
    lambdaMock.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: payload({ errorType: 'InvalidCommandError', errorMessage: 'cannot abort a migration that is rolled-back: the migration is over' }),
      $metadata: { attempts: 2 },
    });
    // api:live:1 is no longer current: that is refused before any invoke. Make a current rolled-back one.
    await migration('cart:live:4', MigrationStatus.ROLLED_BACK, 2, { weight: 0 });
    await pointer('cart:live', 'cart:live:4');
    expect(await source().command('cart:live', 'abort', 'x')).toMatchObject({ applied: true, status: 'rolled-back', note: 'applied by an earlier attempt whose answer was lost' });
  });

  it('should report a throttled or failed invoke as not delivered', async () => {
    lambdaMock.on(InvokeCommand).rejects(throttled('TooManyRequestsException'));
    const error = await source().command('api:live', 'abort', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect((error as Error).message).toBe(`could not invoke the controller ${CONTROLLER}: TooManyRequestsException: Rate exceeded; nothing is known to be applied`);
  });

  it('should refuse, without invoking, a migration that is no longer current', async () => {
    const outcome = await source().command('api:live:1', 'abort', 'x');
    expect(outcome).toMatchObject({ applied: false, refusal: expect.stringMatching(/api:live:1 is no longer the current migration of any key in cutover-ops/) });
    expect(lambdaMock.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('should flag an answer about another migration, a conflict, and a controller with no migration', async () => {
    lambdaMock.on(InvokeCommand).resolves(answer({ migrationId: 'api:live:3', status: 'paused' }));
    // Without a table nothing can be checked first; the answer is checked.
    expect(await source({ table: false }).command('api:live:2', 'pause', 'x')).toMatchObject({
      applied: true,
      migrationId: 'api:live:3',
      refusal: `the controller ${CONTROLLER} runs api:live:3, not api:live:2: the command went to its current migration`,
    });
    lambdaMock.on(InvokeCommand).resolves(answer({ events: 0, conflict: true }));
    await expect(source().command('api:live', 'pause', 'x')).rejects.toThrow(/another controller run changed api:live:2 at the same time/);
    lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ migrationId: null, events: 0 }) });
    expect(await source({ table: false }).command('api:live', 'pause', 'x')).toMatchObject({ applied: false, refusal: `the controller ${CONTROLLER} has no migration yet` });
  });

  it('should need a controller function for commands', async () => {
    await expect(source({ controller: false }).command('api:live', 'pause', 'x')).rejects.toBeInstanceOf(SourceUsageError);
  });
});
