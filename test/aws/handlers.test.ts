/**
 * The controller handler entry files as Lambda loads them: the shared environment read at module
 * load (clear errors), each migration's settings from the registry at its run (a bad one fails that
 * migration only, naming the variable), clients built at module scope with the SDK's own endpoint
 * resolution (DynamoDB reaches dynalite through AWS_ENDPOINT_URL_DYNAMODB).
 */
import { GetAliasCommand, PreconditionFailedException, ResourceNotFoundException, UpdateAliasCommand } from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { FakeAccount } from './fake-account';
import { TEST_CREDENTIALS, captureOutput, emfLines, startDynalite, type LocalDynamo } from './helpers';

const PLAN = { steps: [{ weight: 10, bakeMs: 120000 }, { weight: 100, bakeMs: 120000 }], soakMs: 120000, healthWindowMs: 60000, teardown: 'manual' };
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };
const account = new FakeAccount('api');
const saved = { ...process.env };
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let registry: MigrationRegistry;
let output: ReturnType<typeof captureOutput>;
/** A table per test: the registry is one partition, and a test's migrations must not tick in another's. */
let table = '';
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  account.restore();
  await dynamo.close();
});
beforeEach(async () => {
  account.resetState();
  table = `cutover-handlers-${++tables}`;
  await dynamo.createTable(table);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: table });
  registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName: table });
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

/** The shared controller's own environment (the stack's). */
const shared = () => ({
  CUTOVER_TABLE_NAME: table,
  CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
  CUTOVER_EVENT_BUS_NAME: 'cutover-bus',
  POWERTOOLS_SERVICE_NAME: 'cutover-controller',
  POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
});

/** A migration's settings, as its custom resource carries them. */
const settingsOf = (functionName: string): Record<string, string> => ({
  CUTOVER_FUNCTION_NAME: functionName,
  CUTOVER_ALIAS_NAME: 'live',
  CUTOVER_PLAN: JSON.stringify(PLAN),
  CUTOVER_JUDGE: '{}',
  CUTOVER_ALARM_NAMES: '[]',
  CUTOVER_PINNED_CAPACITY: '0',
  CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp',
});

const FLEET_TARGET = JSON.stringify({
  kind: 'load-balancer',
  loadBalancer: 'app/shop/0123456789abcdef',
  listenerArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/0123456789abcdef/fedcba9876543210',
  oldTargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/0123456789abcdef',
  newTargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/0123456789abcdef',
});

/** What the deploy trigger does for version 2 over 1 (pointer, live mark), and the probe's results. */
async function deployed(functionName: string): Promise<{ key: string; id: string }> {
  const key = `${functionName}:live`;
  const id = `${key}:2`;
  await store.putPointer(key, { migrationId: id, oldVersion: '1', newVersion: '2', createdAtMs: Date.now() }, undefined);
  await registry.markLive(key, id, Date.now());
  for (const side of ['new', 'old'] as const) {
    await store.putProbeResult(id, { side, verdict: 'ok', atMs: Date.now() - 1000, summary: 'aligned', findings: 0 });
  }
  return { key, id };
}

/** One alias per function (FakeAccount has one alias for all): several alias migrations side by side. */
function aliasPerFunction(): Map<string, { main: string; weights: Record<string, number>; revision: number }> {
  const aliases = new Map<string, { main: string; weights: Record<string, number>; revision: number }>();
  const config = (fn: string) => {
    const alias = aliases.get(fn);
    if (!alias) throw new ResourceNotFoundException({ message: `Alias not found: ${fn}:live`, $metadata: { httpStatusCode: 404 } });
    return { Name: 'live', FunctionVersion: alias.main, RevisionId: `rev-${alias.revision}`, RoutingConfig: { AdditionalVersionWeights: { ...alias.weights } } };
  };
  account.lambdaMock.on(GetAliasCommand).callsFake((input: { FunctionName: string }) => config(input.FunctionName));
  account.lambdaMock.on(UpdateAliasCommand).callsFake((input: { FunctionName: string; FunctionVersion: string; RevisionId?: string; RoutingConfig?: { AdditionalVersionWeights?: Record<string, number> } }) => {
    const alias = aliases.get(input.FunctionName)!;
    if (input.RevisionId && input.RevisionId !== `rev-${alias.revision}`) throw new PreconditionFailedException({ message: 'revision', $metadata: { httpStatusCode: 412 } });
    aliases.set(input.FunctionName, { main: input.FunctionVersion, weights: { ...(input.RoutingConfig?.AdditionalVersionWeights ?? {}) }, revision: alias.revision + 1 });
    return config(input.FunctionName);
  });
  return aliases;
}

describe('controller handler', () => {
  it('should start the migration the deploy recorded, built from its registry settings', async () => {
    setEnv(shared());
    await registry.register('apiH1:live', settingsOf('apiH1'), Date.now());
    const { handler } = await import('../../lambda/handlers/controller');
    // Registered, nothing deployed (nothing live): a tick serves nothing.
    expect(await handler(SCHEDULED)).toEqual({ migrationId: null, events: 0 });

    account.alias = { main: '1', weights: {}, revision: 1 };
    const { id } = await deployed('apiH1');
    const result = await handler({ trigger: 'deploy', migrationId: id, migrationKey: 'apiH1:live' });
    expect(result).toMatchObject({ migrationId: id, migrationKey: 'apiH1:live', status: 'baking', weight: 10, step: 0 });
    expect(account.alias).toMatchObject({ main: '1', weights: { '2': 0.1 } });
    // Capacity is not managed with CUTOVER_PINNED_CAPACITY=0.
    expect(account.count('GetProvisionedConcurrencyConfig')).toBe(0);
    const records = output.records();
    expect(records.find((r) => r.message === 'decision')).toMatchObject({ service: 'cutover-controller', migrationKey: 'apiH1:live', action: 'advance', weight: 10 });
    expect(emfLines(records, 'Cutover').at(-1)).toMatchObject({ Migration: 'apiH1:live', Weight: 10, PinnedCapacity: 0 });
  });

  it('should serve several migrations of the table in one scheduled tick', async () => {
    setEnv(shared());
    const aliases = aliasPerFunction();
    const { handler } = await import('../../lambda/handlers/controller');
    const ids: string[] = [];
    for (const fn of ['apiM1', 'apiM2', 'apiM3']) {
      await registry.register(`${fn}:live`, settingsOf(fn), Date.now());
      aliases.set(fn, { main: '1', weights: {}, revision: 1 });
      ids.push((await deployed(fn)).id);
    }
    const answer = await handler(SCHEDULED);
    expect(answer.migrations?.map((m) => [m.migrationKey, m.migrationId, m.status, m.weight])).toEqual([
      ['apiM1:live', ids[0], 'baking', 10],
      ['apiM2:live', ids[1], 'baking', 10],
      ['apiM3:live', ids[2], 'baking', 10],
    ]);
    for (const fn of ['apiM1', 'apiM2', 'apiM3']) expect(aliases.get(fn)).toMatchObject({ main: '1', weights: { '2': 0.1 } });
    // The metrics keep one series per migration.
    expect(new Set(emfLines(output.records(), 'Cutover').map((l) => l.Migration))).toEqual(new Set(['apiM1:live', 'apiM2:live', 'apiM3:live']));
  });

  it('fails to load with an error naming a bad shared variable', async () => {
    setEnv({ ...shared(), CUTOVER_EVENT_BUS_NAME: '' });
    await expect(import('../../lambda/handlers/controller')).rejects.toThrow('environment variable CUTOVER_EVENT_BUS_NAME must be set, got ""');
    setEnv({ ...shared(), CUTOVER_CONTROLLER_FAMILY: 'both' });
    await expect(import('../../lambda/handlers/controller')).rejects.toThrow('environment variable CUTOVER_CONTROLLER_FAMILY must be one of lambda-alias, fleet, any, got "both"');
    setEnv({ ...shared(), CUTOVER_HEALTH_READ_MINUTES: '0' });
    await expect(import('../../lambda/handlers/controller')).rejects.toThrow(/CUTOVER_HEALTH_READ_MINUTES must be a whole number from 1 to 60/);
  });

  it("should fail only the migration whose setting is bad, naming the variable, and serve the others", async () => {
    setEnv(shared());
    const aliases = aliasPerFunction();
    await registry.register('apiB1:live', { ...settingsOf('apiB1'), CUTOVER_PLAN: '{"steps":[{"weight":50,"bakeMs":60000}],"soakMs":0,"healthWindowMs":60000,"teardown":"manual"}' }, Date.now());
    await registry.register('apiB2:live', { ...settingsOf('apiB2'), CUTOVER_PINNED_CAPACITY: 'ten' }, Date.now());
    await registry.register('apiB3:live', settingsOf('apiB3'), Date.now());
    for (const fn of ['apiB1', 'apiB2', 'apiB3']) {
      aliases.set(fn, { main: '1', weights: {}, revision: 1 });
      await deployed(fn);
    }
    const { handler } = await import('../../lambda/handlers/controller');
    const error = await handler(SCHEDULED).catch((e: unknown) => e);
    expect(String(error)).toMatch(/apiB1:live: ConfigError: environment variable CUTOVER_PLAN is not a valid plan: the last step must be 100%, got 50/);
    expect(String(error)).toMatch(/apiB2:live: ConfigError: environment variable CUTOVER_PINNED_CAPACITY must be a whole number ≥ 0 .*got "ten"/);
    expect(aliases.get('apiB3')).toMatchObject({ weights: { '2': 0.1 } });
    expect(aliases.get('apiB1')).toMatchObject({ weights: {} });
  });
});

describe('per-family controller handlers', () => {
  it('should run an alias migration with the alias kit alone, as the generic handler does', async () => {
    setEnv(shared());
    await registry.register('apiH3:live', settingsOf('apiH3'), Date.now());
    const { handler } = await import('../../lambda/handlers/controller-lambda-alias');
    account.alias = { main: '1', weights: {}, revision: 1 };
    const { id } = await deployed('apiH3');
    expect(await handler({ trigger: 'deploy', migrationId: id, migrationKey: 'apiH3:live' })).toMatchObject({ migrationId: id, status: 'baking', weight: 10 });
    expect(account.alias).toMatchObject({ main: '1', weights: { '2': 0.1 } });
  });

  it("should refuse the other family's migrations per migration, naming the fix, and load all the same", async () => {
    setEnv(shared());
    await registry.register('apiH4:live', settingsOf('apiH4'), Date.now());
    await registry.register('shopH4', { CUTOVER_TARGET: FLEET_TARGET, CUTOVER_PLAN: JSON.stringify(PLAN), CUTOVER_PINNED_CAPACITY: '0', CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp' }, Date.now());
    const fleet = await import('../../lambda/handlers/controller-fleet');
    // Its own family by default: the alias migration's deploy is refused with the controller to send it to.
    await expect(fleet.handler({ trigger: 'deploy', migrationId: 'apiH4:live:2', migrationKey: 'apiH4:live' })).rejects.toThrow(
      /migration apiH4:live is a lambda-alias migration, served by the lambda-alias controller, not by this fleet one: send it to the controller-lambda-alias function/,
    );
    // Told to serve every family, the fleet bundle fails the alias migration with the kit's fix.
    setEnv({ ...shared(), CUTOVER_CONTROLLER_FAMILY: 'any' });
    const any = await import('../../lambda/handlers/controller-fleet');
    await expect(any.handler({ trigger: 'deploy', migrationId: 'apiH4:live:2', migrationKey: 'apiH4:live' })).rejects.toThrow(
      /cannot build the target kind "lambda-alias" \(it builds "load-balancer", "dns"\): deploy it with the construct of this Cutover version/,
    );
    setEnv(shared());
    const alias = await import('../../lambda/handlers/controller-lambda-alias');
    await expect(alias.handler({ command: 'abort', migration: 'shopH4' })).rejects.toThrow(/migration shopH4 is a fleet migration, served by the fleet controller/);
  });
});
