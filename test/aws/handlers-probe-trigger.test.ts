/**
 * The probe and deploy-trigger handler entry files as Lambda loads them: environment read at
 * module load (clear errors), clients built at module scope with the SDK's own endpoint resolution
 * (DynamoDB reaches dynalite through AWS_ENDPOINT_URL_DYNAMODB), one invocation each.
 */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../lambda/aws/clients';
import { COMMAND_MAX_ATTEMPTS, COMMAND_TIMEOUT_MS } from '../../lambda/aws/deploy-trigger';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import type { ProbeNowResponse } from '../../lambda/aws/probe-invoker';
import type { SharedProbeResponse } from '../../lambda/aws/probe-dispatch';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { MigrationStatus } from '../../lambda/core/model';
import { startDemoServer, type DemoServer } from '../../local/demo-server';
import { FakeAccount } from './fake-account';
import { makeRecord } from './fixtures';
import { TEST_CREDENTIALS, captureOutput, emfLines, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-handlers-probe-trigger-test';
const PLAN = { steps: [{ weight: 10, bakeMs: 120000 }, { weight: 100, bakeMs: 120000 }], soakMs: 120000, healthWindowMs: 60000, teardown: 'manual' };
const account = new FakeAccount('api');
const saved = { ...process.env };
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let registry: MigrationRegistry;
let output: ReturnType<typeof captureOutput>;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
  registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName: TABLE });
});
afterAll(async () => {
  account.restore();
  await dynamo.close();
});
beforeEach(() => {
  account.resetState();
  output = captureOutput();
});
afterEach(() => {
  output.restore();
  process.env = { ...saved };
});

function setEnv(env: Record<string, string>): void {
  process.env = {
    ...saved,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    ...env,
  };
  vi.resetModules();
}


describe('probe handler', () => {
  let server: DemoServer;
  afterAll(async () => {
    await server?.close();
  });
  /** The stack's variables only: each migration's targets come from its registry settings. */
  const PROBE_ENV = { CUTOVER_TABLE_NAME: TABLE, CUTOVER_EVENT_BUS_NAME: 'cutover-bus', POWERTOOLS_SERVICE_NAME: 'cutover-probe', POWERTOOLS_METRICS_NAMESPACE: 'Cutover' };
  /** Registers a migration with these probe settings and records its current migration `<key>:2`. */
  async function migration(key: string, settings: Record<string, string>, live = true): Promise<string> {
    await registry.register(key, { CUTOVER_PLAN: JSON.stringify(PLAN), ...settings }, 1);
    await store.putPointer(key, { migrationId: `${key}:2`, oldVersion: '1', newVersion: '2', createdAtMs: Date.now() }, undefined);
    if (live) await registry.markLive(key, `${key}:2`, 1);
    return `${key}:2`;
  }

  it('should probe the targets of each live migration and record the results under its current migration', async () => {
    server = await startDemoServer({ version: 'v1' });
    setEnv(PROBE_ENV);
    const targets = JSON.stringify([{ side: 'new', url: server.url }]);
    const probed = await migration('apiP:live', { CUTOVER_PROBE_TARGETS: targets, CUTOVER_PROBE_PATH: '/health', CUTOVER_PROBE_RUNS: '1', CUTOVER_PROBE_LARGE_BODY_BYTES: '20000' });
    // Not live: not probed.
    const idle = await migration('apiI:live', { CUTOVER_PROBE_TARGETS: targets, CUTOVER_PROBE_PATH: '/health' }, false);
    const { handler } = await import('../../lambda/handlers/probe');
    const response = (await handler()) as SharedProbeResponse;
    expect(response.migrations).toEqual([{ migrationKey: 'apiP:live', results: [{ side: 'new', url: server.url, verdict: 'ok', summary: expect.stringMatching(/^ok/) }] }]);
    // Recorded for the key's current migration, where the controller reads it.
    expect((await store.probeResultsSince(probed, 0)).map((r) => r.verdict)).toEqual(['ok']);
    expect(await store.probeResultsSince(idle, 0)).toEqual([]);
    expect(account.events.map((e) => [e.DetailType, JSON.parse(e.Detail!).migrationKey])).toEqual([['Cutover Probe Result', 'apiP:live']]);
    expect(emfLines(output.records(), 'Cutover')[0]).toMatchObject({ Migration: 'apiP:live', Side: 'new', ProbeDesync: 0 });
  }, 30_000);

  it('should run one fresh probe of a side of the named migration and return it, recording nothing', async () => {
    server ??= await startDemoServer({ version: 'v1' });
    setEnv(PROBE_ENV);
    const id = await migration('apiQ:live', { CUTOVER_PROBE_TARGETS: JSON.stringify([{ side: 'new', url: server.url }]), CUTOVER_PROBE_PATH: '/health' });
    const { handler } = await import('../../lambda/handlers/probe');
    const { result } = (await handler({ probeNow: { side: 'new', migrationKey: 'apiQ:live' } })) as ProbeNowResponse;
    expect(result).toMatchObject({ side: 'new', url: server.url, verdict: 'ok', findings: 0 });
    // The controller records it and decides on it: the probe function neither records nor announces it.
    expect(await store.probeResultsSince(id, 0)).toEqual([]);
    expect(account.events).toEqual([]);
    // A side it has no target for is an error the controller sees (and calls inconclusive).
    await expect(handler({ probeNow: { side: 'old', migrationKey: 'apiQ:live' } })).rejects.toThrow('no old target is configured (CUTOVER_PROBE_TARGETS)');
    // So is a migration that is not registered, or a request of an older controller that names none.
    await expect(handler({ probeNow: { side: 'new', migrationKey: 'nobody:live' } })).rejects.toThrow('no migration "nobody:live" is registered in this stack');
    await expect(handler({ probeNow: { side: 'new' } })).rejects.toThrow(/names no migration \(probeNow.migrationKey\).*deploy the stack with this version/);
  }, 30_000);

  it('should probe the old side with a fresh probe of the new one, and record only the old result', async () => {
    server ??= await startDemoServer({ version: 'v1' });
    setEnv(PROBE_ENV);
    const id = await migration('apiR:live', {
      CUTOVER_PROBE_TARGETS: JSON.stringify([
        { side: 'new', url: server.url },
        { side: 'old', url: `${server.url}/` },
      ]),
      CUTOVER_PROBE_PATH: '/health',
    });
    const { handler } = await import('../../lambda/handlers/probe');
    const { result } = (await handler({ probeNow: { side: 'new', migrationKey: 'apiR:live' } })) as ProbeNowResponse;
    expect(result).toMatchObject({ side: 'new', verdict: 'ok', health: { requests: expect.any(Number), errors5xx: 0 } });
    const stored = await store.probeResultsSince(id, 0);
    expect(stored.map((r) => [r.side, r.verdict])).toEqual([['old', 'ok']]);
    expect(stored[0]!.atMs).toBeGreaterThan(result.atMs);
    expect(account.events.map((e) => JSON.parse(e.Detail!).side)).toEqual(['old']);
  }, 30_000);

  it('fails to load without the stack’s variables, naming them', async () => {
    setEnv({ CUTOVER_TABLE_NAME: TABLE });
    await expect(import('../../lambda/handlers/probe')).rejects.toThrow('environment variable CUTOVER_EVENT_BUS_NAME must be set, got null');
  });

  it('fails a fresh probe of a migration whose target is not a URL, naming the migration and the setting', async () => {
    setEnv(PROBE_ENV);
    await migration('apiU:live', { CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"api.example.com"}]' });
    const { handler } = await import('../../lambda/handlers/probe');
    await expect(handler({ probeNow: { side: 'new', migrationKey: 'apiU:live' } })).rejects.toThrow(
      'the probe settings of migration apiU:live cannot be used: environment variable CUTOVER_PROBE_TARGETS entry 0: url is not a valid URL, got "api.example.com"',
    );
  });
});

/**
 * The options a client's request handler was built with. The SDK resolves them lazily (they become
 * `httpHandlerConfigs()` only after the first request, which the mock never sends).
 */
async function requestHandlerOptions(client: LambdaClient): Promise<{ requestTimeout?: number; connectionTimeout?: number; throwOnRequestTimeout?: boolean }> {
  return (client.config.requestHandler as unknown as { configProvider: Promise<Record<string, unknown>> }).configProvider;
}

describe('deploy-trigger handler', () => {
  const triggerEnv = {
    CUTOVER_TABLE_NAME: TABLE,
    CUTOVER_CONTROLLERS: JSON.stringify({ 'lambda-alias': { functionName: 'cutover-controller' } }),
  };
  /** The migration's own variables travel in its resource's Settings. */
  const settings = (functionName: string) => ({
    CUTOVER_FUNCTION_NAME: functionName,
    CUTOVER_ALIAS_NAME: 'live',
    CUTOVER_PLAN: JSON.stringify(PLAN),
    CUTOVER_JUDGE: '{}',
    CUTOVER_PINNED_CAPACITY: '2',
    CUTOVER_APP_METRICS_NAMESPACE: 'Api',
  });
  const cfnEvent = (functionName: string, version: string) => ({
    RequestType: 'Update' as const,
    ServiceToken: 's',
    ResponseURL: 'https://cfn-response.example.com/',
    StackId: 'stack',
    RequestId: 'r',
    LogicalResourceId: 'Deploy',
    ResourceType: 'Custom::CutoverDeploy',
    PhysicalResourceId: `${functionName}:live`,
    ResourceProperties: { ServiceToken: 's', FunctionName: functionName, AliasName: 'live', TargetVersion: version, MigrationId: `${functionName}:live:${version}`, Settings: settings(functionName) },
    OldResourceProperties: { ServiceToken: 's' },
  });

  it('should create the alias on the first deploy', async () => {
    setEnv(triggerEnv);
    const { handler } = await import('../../lambda/handlers/deploy-trigger');
    const response = await handler({
      RequestType: 'Create',
      ServiceToken: 's',
      ResponseURL: 'https://cfn-response.example.com/',
      StackId: 'stack',
      RequestId: 'r',
      LogicalResourceId: 'Deploy',
      ResourceType: 'Custom::CutoverDeploy',
      ResourceProperties: { ServiceToken: 's', FunctionName: 'apiD', AliasName: 'live', TargetVersion: '1', MigrationId: 'apiD:live:1', Settings: settings('apiD') },
    });
    expect(response).toMatchObject({ PhysicalResourceId: 'apiD:live', Data: { Action: 'alias-created' } });
    expect(account.alias).toMatchObject({ main: '1' });
  });

  it('should wait for a synchronous command with a client built for that wait, created once per container', async () => {
    setEnv(triggerEnv);
    const { handler } = await import('../../lambda/handlers/deploy-trigger');
    // A completed migration 1 → 2; deploying 3 tears it down (a synchronous command), then records 3.
    await store.putPointer('apiT:live', { migrationId: 'apiT:live:2', oldVersion: '1', newVersion: '2', createdAtMs: Date.now() }, undefined);
    await store.save('apiT:live:2', makeRecord('apiT:live:2', { status: MigrationStatus.COMPLETE, weight: 100 }), 0, []);
    account.alias = { main: '2', weights: {}, revision: 3 };
    expect((await handler(cfnEvent('apiT', '3'))).Data).toMatchObject({ Action: 'migration-recorded', OldVersion: '2', NewVersion: '3' });

    const invokes = account.lambdaMock.commandCalls(InvokeCommand);
    const command = invokes.find((call) => call.args[0].input.InvocationType === 'RequestResponse')!;
    const wakeUp = invokes.find((call) => call.args[0].input.InvocationType === 'Event')!;
    // No per-call option: the runtime's SDK might ignore it. The client's request handler carries the wait.
    expect((command.args as unknown[])[1]).toBeUndefined();
    const commandClient = command.thisValue as LambdaClient;
    expect(await requestHandlerOptions(commandClient)).toMatchObject({ requestTimeout: COMMAND_TIMEOUT_MS, throwOnRequestTimeout: true });
    expect(await commandClient.config.maxAttempts()).toBe(COMMAND_MAX_ATTEMPTS);
    // Every other call keeps the ordinary, short bound.
    const ordinary = wakeUp.thisValue as LambdaClient;
    expect(ordinary).not.toBe(commandClient);
    expect(await requestHandlerOptions(ordinary)).toMatchObject({ requestTimeout: DEFAULT_REQUEST_TIMEOUT_MS });

    // A second invocation in the same container reuses the same command client.
    await store.save('apiT:live:3', makeRecord('apiT:live:3', { status: MigrationStatus.COMPLETE, weight: 100 }), 0, []);
    account.alias = { main: '3', weights: {}, revision: 4 };
    await handler(cfnEvent('apiT', '4'));
    const commands = account.lambdaMock.commandCalls(InvokeCommand).filter((call) => call.args[0].input.InvocationType === 'RequestResponse');
    expect(commands).toHaveLength(2);
    expect(commands[1]!.thisValue).toBe(commandClient);
  });
});
