import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readDeployTriggerConfig } from '../../lambda/aws/config';
import { DEFAULT_CONNECTION_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from '../../lambda/aws/clients';
import { COMMAND_CONFLICT_ATTEMPTS, COMMAND_MAX_ATTEMPTS, COMMAND_TIMEOUT_MS, DeployBlockedError, commandClientConfig, onDeployEvent } from '../../lambda/aws/deploy-trigger';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { MigrationStatus } from '../../lambda/core/model';
import { FakeAccount } from './fake-account';
import { makeRecord } from './fixtures';
import { TEST_CREDENTIALS, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-deploy-test';
const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let registry: MigrationRegistry;
/** A client of its own for synchronous commands, as the handler builds it (mocked like every LambdaClient). */
let commandLambda: LambdaClient;
let fn: string;
let n = 0;
/** The migration's settings (its custom resource's `Settings`). */
const SETTINGS = {
  CUTOVER_PLAN: JSON.stringify({ steps: [{ weight: 10, bakeMs: 300000 }, { weight: 100, bakeMs: 300000 }], soakMs: 600000, healthWindowMs: 60000, teardown: 'manual' }),
  CUTOVER_JUDGE: '{"minRequests": 50}',
  CUTOVER_PINNED_CAPACITY: '10',
};
const config = readDeployTriggerConfig({ CUTOVER_TABLE_NAME: TABLE, CUTOVER_CONTROLLER_FUNCTION_NAME: 'cutover-controller', ...SETTINGS });

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
  registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName: TABLE });
  commandLambda = new LambdaClient(commandClientConfig({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: TEST_CREDENTIALS }));
});
afterAll(async () => {
  commandLambda.destroy();
  account.restore();
  await dynamo.close();
});
beforeEach(() => {
  account.resetState();
  fn = `api${++n}`;
});

function event(requestType: 'Create' | 'Update' | 'Delete', version: string, extra: Record<string, unknown> = {}): CloudFormationCustomResourceEvent {
  return {
    RequestType: requestType,
    ServiceToken: 'arn:provider',
    ResponseURL: 'https://cfn-response.example.com/',
    StackId: 'arn:stack',
    RequestId: `req-${version}`,
    LogicalResourceId: 'DeployTrigger',
    ResourceType: 'Custom::CutoverDeploy',
    ResourceProperties: { ServiceToken: 'arn:provider', FunctionName: fn, AliasName: 'live', TargetVersion: version, MigrationId: `${fn}:live:${version}` },
    ...(requestType === 'Create' ? {} : { PhysicalResourceId: `${fn}:live` }),
    ...extra,
  } as CloudFormationCustomResourceEvent;
}

const deps = () => ({ config, registry, settings: SETTINGS, lambda: dynamo.clients.lambda, commandLambda, store, now: () => 1_750_000_000_000, log: () => {} });

/** The synchronous invokes of the controller: the client that sent each and its per-call options. */
const commandInvokes = () =>
  account.lambdaMock
    .commandCalls(InvokeCommand)
    .filter((call) => call.args[0].input.InvocationType === 'RequestResponse')
    .map((call) => ({ client: call.thisValue as LambdaClient, options: (call.args as unknown[])[1] }));

describe('deploy trigger', () => {
  it('should create the alias on the first deploy, pointing at the version, with nothing to migrate', async () => {
    const response = await onDeployEvent(event('Create', '1'), deps());
    expect(response).toEqual({ PhysicalResourceId: `${fn}:live`, Data: { Action: 'alias-created', MigrationId: '', OldVersion: '', NewVersion: '1' } });
    expect(account.alias).toMatchObject({ main: '1', weights: {} });
    expect(await store.getPointer(`${fn}:live`)).toBeUndefined();
    expect(account.invocations).toHaveLength(0);
  });

  it('should do nothing when the alias already serves the version alone', async () => {
    account.alias = { main: '3', weights: {}, revision: 4 };
    expect((await onDeployEvent(event('Update', '3'), deps())).Data?.Action).toBe('none');
    expect(account.invocations).toHaveLength(0);
  });

  it('should record a migration from the alias version to the new one and wake the controller, without routing traffic itself', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const response = await onDeployEvent(event('Update', '2'), deps());
    expect(response.Data).toEqual({ Action: 'migration-recorded', MigrationId: `${fn}:live:2`, OldVersion: '1', NewVersion: '2' });
    expect(await store.getPointer(`${fn}:live`)).toEqual({
      migrationId: `${fn}:live:2`,
      oldVersion: '1',
      newVersion: '2',
      createdAtMs: 1_750_000_000_000,
      spec: { plan: config.plan, judge: { minRequests: 50 }, pinnedCapacity: 10 },
    });
    expect(account.invocations).toEqual([
      { FunctionName: 'cutover-controller', InvocationType: 'Event', payload: { trigger: 'deploy', migrationId: `${fn}:live:2`, migrationKey: `${fn}:live` } },
    ]);
    // Registered with its settings and marked live before the wake-up.
    expect(await registry.get(`${fn}:live`)).toEqual({
      migrationKey: `${fn}:live`,
      family: 'lambda-alias',
      settings: SETTINGS,
      updatedAtMs: 1_750_000_000_000,
      live: { migrationId: `${fn}:live:2`, sinceMs: 1_750_000_000_000 },
      // The resource that registered it (its stack and logical id): only its Delete removes it.
      owners: ['arn:stack/DeployTrigger'],
    });
    expect(account.count('UpdateAlias')).toBe(0);
    expect(account.alias).toMatchObject({ main: '1', weights: {} });
  });

  it('should treat the same request sent again as already recorded', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    expect((await onDeployEvent(event('Update', '2'), deps())).Data?.Action).toBe('already-recorded');
    expect(account.invocations).toHaveLength(1);
  });

  it('fails when a migration is still running, saying how to end it', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    const attempt = onDeployEvent(event('Update', '3'), deps());
    await expect(attempt).rejects.toBeInstanceOf(DeployBlockedError);
    await expect(attempt).rejects.toThrow(/migration .*:live:2 \(version 1 → 2\) is still baking; version 3 cannot start until it ends/);
    expect((await store.getPointer(`${fn}:live`))?.newVersion).toBe('2');
  });

  it('should abort the running migration when CloudFormation rolls back to the old version', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    const response = await onDeployEvent(event('Update', '1'), deps());
    expect(response.Data?.Action).toBe('abort-requested');
    // Named by id: the shared controller serves many migrations, and only this one while it is current.
    expect(account.invocations.at(-1)).toEqual({
      FunctionName: 'cutover-controller',
      InvocationType: 'RequestResponse',
      payload: { command: 'abort', reason: 'CloudFormation rolled the stack back to version 1', migration: `${fn}:live:2` },
    });
  });

  it('should abort a migration still at the gate (alias on the old version alone) when CloudFormation rolls back to that version', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    // Gating: weight 0, so the alias already serves the rollback's target alone.
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.GATING, weight: 0, step: -1 }), 0, []);
    const response = await onDeployEvent(event('Update', '1'), deps());
    expect(response.Data).toEqual({ Action: 'abort-requested', MigrationId: `${fn}:live:2`, OldVersion: '1', NewVersion: '2' });
    expect(account.invocations.at(-1)).toMatchObject({ InvocationType: 'RequestResponse', payload: { command: 'abort', reason: 'CloudFormation rolled the stack back to version 1' } });
  });

  it('should abort a migration the controller has not started yet when CloudFormation rolls back to its old version', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    // No record yet: the pointer alone says the migration is pending.
    expect((await onDeployEvent(event('Update', '1'), deps())).Data?.Action).toBe('abort-requested');
    expect(account.invocations.at(-1)).toMatchObject({ InvocationType: 'RequestResponse', payload: { command: 'abort' } });
  });

  it('should do nothing on a rollback to the old version once the migration has rolled back', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 0, []);
    expect((await onDeployEvent(event('Update', '1'), deps())).Data?.Action).toBe('none');
    expect(commandInvokes()).toEqual([]);
  });

  it('should send synchronous commands through the command client, with no per-call option', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    await onDeployEvent(event('Update', '1'), deps());
    // A per-call requestTimeout may be ignored by the runtime's SDK: the client carries the wait.
    const [command, ...others] = commandInvokes();
    expect(others).toEqual([]);
    expect(command?.client).toBe(commandLambda);
    expect(command?.options).toBeUndefined();
    // The asynchronous wake-up and the alias calls keep the ordinary client.
    const wakeUp = account.lambdaMock.commandCalls(InvokeCommand).find((call) => call.args[0].input.InvocationType === 'Event');
    expect(wakeUp?.thisValue).toBe(dynamo.clients.lambda);
  });

  it('should tear down a completed migration when the next version is deployed, then record the new one', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.COMPLETE }), 0, []);
    account.alias = { main: '2', weights: {}, revision: 3 };
    const response = await onDeployEvent(event('Update', '3'), deps());
    expect(account.invocations.at(-2)).toMatchObject({ InvocationType: 'RequestResponse', payload: { command: 'teardown', migration: `${fn}:live:2` } });
    expect(response.Data).toMatchObject({ Action: 'migration-recorded', OldVersion: '2', NewVersion: '3' });
  });

  it('fails when the controller refuses the teardown', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.COMPLETE }), 0, []);
    account.alias = { main: '2', weights: {}, revision: 3 };
    account.invokeReply = () => ({ FunctionError: 'Unhandled', Payload: { errorMessage: 'cannot teardown' } });
    await expect(onDeployEvent(event('Update', '3'), deps())).rejects.toThrow(/controller refused teardown of migration .*:live:2 \(now complete\): Unhandled .*cannot teardown/);
    expect((await store.getPointer(`${fn}:live`))?.newVersion).toBe('2');
  });

  it('should accept a refusal of a command that already took effect (an invoke retried by the SDK)', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    // The first abort went through but its answer was lost; the retried one is refused.
    account.invokeReply = async () => {
      await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 1, []);
      return { FunctionError: 'Unhandled', Payload: { errorType: 'InvalidCommandError', errorMessage: 'cannot abort a migration that is rolled-back' } };
    };
    expect((await onDeployEvent(event('Update', '1'), deps())).Data?.Action).toBe('abort-requested');
  });

  it('should send the abort again when a concurrent controller run saved first (the answer says conflict)', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    let sent = 0;
    account.invokeReply = async (payload) => {
      if ((payload as { command?: string }).command !== 'abort') return {};
      sent++;
      // The first abort loses to the minute's tick: no error, nothing changed.
      if (sent === 1) return { Payload: { migrationId: `${fn}:live:2`, events: 0, conflict: true } };
      await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 1, []);
      return { Payload: { migrationId: `${fn}:live:2`, events: 1, status: 'rolled-back' } };
    };
    expect((await onDeployEvent(event('Update', '1'), deps())).Data?.Action).toBe('abort-requested');
    expect(sent).toBe(2);
  });

  it('should fail the rollback when every abort loses a race, instead of reporting it done', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    let sent = 0;
    account.invokeReply = (payload) => {
      if ((payload as { command?: string }).command === 'abort') sent++;
      return { Payload: { migrationId: `${fn}:live:2`, events: 0, conflict: true } };
    };
    await expect(onDeployEvent(event('Update', '1'), deps())).rejects.toThrow(/abort of migration .*:live:2 changed nothing 3 times: another controller run saved first each time \(now baking\)/);
    expect(sent).toBe(COMMAND_CONFLICT_ATTEMPTS);
  });

  it('should start a new migration after a rolled-back one', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onDeployEvent(event('Update', '2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 0, []);
    const response = await onDeployEvent(event('Update', '3'), deps());
    expect(response.Data).toMatchObject({ Action: 'migration-recorded', OldVersion: '1', NewVersion: '3' });
  });

  it('fails when the alias splits traffic outside any migration', async () => {
    account.alias = { main: '1', weights: { '7': 0.5 }, revision: 1 };
    await expect(onDeployEvent(event('Update', '2'), deps())).rejects.toThrow(/routes \{"7":0.5\} besides version 1 outside any running migration/);
  });

  it('should leave the alias alone on Delete, and deregister the migration', async () => {
    await onDeployEvent(event('Create', '1'), deps());
    expect(await registry.get(`${fn}:live`)).toMatchObject({ settings: SETTINGS });
    account.resetState();
    account.alias = { main: '2', weights: {}, revision: 1 };
    expect(await onDeployEvent(event('Delete', '2'), deps())).toEqual({ PhysicalResourceId: `${fn}:live` });
    expect(account.calls.size).toBe(0);
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
  });

  it('fails on properties that are missing or not a version', async () => {
    await expect(onDeployEvent(event('Update', '$LATEST'), deps())).rejects.toThrow(/TargetVersion must be a published version number, got "\$LATEST"/);
    const noAlias = event('Create', '1');
    delete (noAlias.ResourceProperties as Record<string, unknown>).AliasName;
    await expect(onDeployEvent(noAlias, deps())).rejects.toThrow(/resource property AliasName must be a non-empty string, got undefined/);
  });
});

describe('commandClientConfig', () => {
  it('should let each attempt of a synchronous command wait COMMAND_TIMEOUT_MS, on the request handler', () => {
    const config = commandClientConfig();
    expect(config.requestHandler).toEqual({
      requestTimeout: COMMAND_TIMEOUT_MS,
      // Connecting is not the wait: it keeps the ordinary bound.
      connectionTimeout: DEFAULT_CONNECTION_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    });
    expect(COMMAND_TIMEOUT_MS).toBeGreaterThan(DEFAULT_REQUEST_TIMEOUT_MS);
    expect(config.maxAttempts).toBe(COMMAND_MAX_ATTEMPTS);
    expect(config.retryMode).toBe('standard');
  });

  it('should keep the endpoint, region and credentials it is given', () => {
    expect(commandClientConfig({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:1', credentials: TEST_CREDENTIALS })).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: TEST_CREDENTIALS,
    });
  });
});
