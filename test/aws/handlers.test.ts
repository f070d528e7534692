/**
 * The handler entry files as Lambda loads them: environment read at module load (clear errors),
 * clients built at module scope with the SDK's own endpoint resolution (DynamoDB reaches dynalite
 * through AWS_ENDPOINT_URL_DYNAMODB), one invocation each.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { FakeAccount } from './fake-account';
import { TEST_CREDENTIALS, captureOutput, emfLines, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-handlers-test';
const PLAN = { steps: [{ weight: 10, bakeMs: 120000 }, { weight: 100, bakeMs: 120000 }], soakMs: 120000, healthWindowMs: 60000, teardown: 'manual' };
const account = new FakeAccount('api');
const saved = { ...process.env };
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let output: ReturnType<typeof captureOutput>;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
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

const controllerEnv = (functionName: string) => ({
  CUTOVER_TABLE_NAME: TABLE,
  CUTOVER_FUNCTION_NAME: functionName,
  CUTOVER_ALIAS_NAME: 'live',
  CUTOVER_PLAN: JSON.stringify(PLAN),
  CUTOVER_JUDGE: '{}',
  CUTOVER_ALARM_NAMES: '[]',
  CUTOVER_PINNED_CAPACITY: '0',
  CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
  CUTOVER_EVENT_BUS_NAME: 'cutover-bus',
  CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp',
  POWERTOOLS_SERVICE_NAME: 'cutover-controller',
  POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
});

describe('controller handler', () => {
  it('should start the migration the deploy recorded', async () => {
    setEnv(controllerEnv('apiH1'));
    const { handler } = await import('../../lambda/handlers/controller');
    expect(await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })).toEqual({ migrationId: null, events: 0 });

    account.alias = { main: '1', weights: {}, revision: 1 };
    await store.putPointer('apiH1:live', { migrationId: 'apiH1:live:2', oldVersion: '1', newVersion: '2', createdAtMs: Date.now() }, undefined);
    for (const side of ['new', 'old'] as const) {
      await store.putProbeResult('apiH1:live:2', { side, verdict: 'ok', atMs: Date.now() - 1000, summary: 'aligned', findings: 0 });
    }
    const result = await handler({ trigger: 'deploy', migrationId: 'apiH1:live:2' });
    expect(result).toMatchObject({ migrationId: 'apiH1:live:2', status: 'baking', weight: 10, step: 0 });
    expect(account.alias).toMatchObject({ main: '1', weights: { '2': 0.1 } });
    // Capacity is not managed with CUTOVER_PINNED_CAPACITY=0.
    expect(account.count('GetProvisionedConcurrencyConfig')).toBe(0);
    const records = output.records();
    expect(records.find((r) => r.message === 'decision')).toMatchObject({ service: 'cutover-controller', action: 'advance', weight: 10 });
    expect(emfLines(records, 'Cutover').at(-1)).toMatchObject({ Migration: 'apiH1:live', Weight: 10, PinnedCapacity: 0 });
  });

  it('fails to load with an error naming the bad variable', async () => {
    setEnv({ ...controllerEnv('apiH2'), CUTOVER_PLAN: '{"steps":[{"weight":50,"bakeMs":60000}],"soakMs":0,"healthWindowMs":60000,"teardown":"manual"}' });
    await expect(import('../../lambda/handlers/controller')).rejects.toThrow('environment variable CUTOVER_PLAN is not a valid plan: the last step must be 100%, got 50');
    setEnv({ ...controllerEnv('apiH2'), CUTOVER_PINNED_CAPACITY: 'ten' });
    await expect(import('../../lambda/handlers/controller')).rejects.toThrow(/CUTOVER_PINNED_CAPACITY must be a whole number ≥ 0 .*got "ten"/);
    setEnv({ ...controllerEnv('apiH2'), CUTOVER_EVENT_BUS_NAME: '' });
    await expect(import('../../lambda/handlers/controller')).rejects.toThrow('environment variable CUTOVER_EVENT_BUS_NAME must be set, got ""');
  });
});

describe('per-family controller handlers', () => {
  it('should run an alias migration with the alias kit alone, as the generic handler does', async () => {
    setEnv(controllerEnv('apiH3'));
    const { handler } = await import('../../lambda/handlers/controller-lambda-alias');
    account.alias = { main: '1', weights: {}, revision: 1 };
    await store.putPointer('apiH3:live', { migrationId: 'apiH3:live:2', oldVersion: '1', newVersion: '2', createdAtMs: Date.now() }, undefined);
    for (const side of ['new', 'old'] as const) {
      await store.putProbeResult('apiH3:live:2', { side, verdict: 'ok', atMs: Date.now() - 1000, summary: 'aligned', findings: 0 });
    }
    expect(await handler({ trigger: 'deploy', migrationId: 'apiH3:live:2' })).toMatchObject({ migrationId: 'apiH3:live:2', status: 'baking', weight: 10 });
    expect(account.alias).toMatchObject({ main: '1', weights: { '2': 0.1 } });
  });

  it('should refuse at load a target kind of the other family, naming the fix', async () => {
    setEnv(controllerEnv('apiH4'));
    await expect(import('../../lambda/handlers/controller-fleet')).rejects.toThrow(
      /cannot build the target kind "lambda-alias" \(it builds "load-balancer", "dns"\): deploy it with the construct of this Cutover version/,
    );
    setEnv({
      ...controllerEnv('apiH4'),
      CUTOVER_TARGET: JSON.stringify({
        kind: 'load-balancer',
        loadBalancer: 'app/shop/0123456789abcdef',
        listenerArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/0123456789abcdef/fedcba9876543210',
        oldTargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/0123456789abcdef',
        newTargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/0123456789abcdef',
      }),
      CUTOVER_MIGRATION_KEY: 'shop',
    });
    await expect(import('../../lambda/handlers/controller-lambda-alias')).rejects.toThrow(/cannot build the target kind "load-balancer" \(it builds "lambda-alias"\)/);
    const { handler } = await import('../../lambda/handlers/controller-fleet');
    expect(typeof handler).toBe('function');
  });
});
