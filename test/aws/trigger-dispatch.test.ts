/**
 * The shared deploy trigger (deploy-trigger-dispatch.ts): one function for every migration of a
 * stack. Settings from the resource's properties, each family's controller from CUTOVER_CONTROLLERS,
 * and the contract's order: register → record → mark live → enable → wake. The table and the
 * registry in dynalite; Lambda and EventBridge behind FakeAccount; a fleet's routing as a fake port.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { onSharedDeployEvent, type SharedDeployTriggerDeps } from '../../lambda/aws/deploy-trigger-dispatch';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { MigrationStatus } from '../../lambda/core/model';
import type { TrafficPort, TrafficState } from '../../lambda/core/ports';
import { FakeAccount } from './fake-account';
import { makeRecord } from './fixtures';
import { startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-trigger-dispatch-test';
const NOW = 1_750_000_000_000;
const PLAN = JSON.stringify({ steps: [{ weight: 10, bakeMs: 300000 }, { weight: 100, bakeMs: 300000 }], soakMs: 600000, healthWindowMs: 60000, teardown: 'manual' });
const ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const ALB_TARGET = {
  kind: 'load-balancer',
  loadBalancer: 'app/shop/50dc6c495c0c9188',
  listenerArn: `${ARN}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2`,
  oldTargetGroupArn: `${ARN}:targetgroup/shop-blue/73e2d6bc24d8a067`,
  newTargetGroupArn: `${ARN}:targetgroup/shop-green/943f017f100becff`,
};
const ENV = {
  CUTOVER_TABLE_NAME: TABLE,
  CUTOVER_CONTROLLERS: JSON.stringify({
    'lambda-alias': { functionName: 'controller-alias', schedule: 'alias-tick' },
    fleet: { functionName: 'controller-fleet', schedule: 'fleet-tick' },
  }),
  CUTOVER_PROBE_SCHEDULE: 'probe-tick',
};

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let registry: MigrationRegistry;
let n = 0;
let fn: string;
/** What happened, in order, across the table, the registry, the rules and the invokes. */
let trace: string[];

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
  fn = `api${++n}`;
  trace = [];
  account.beforeRuleSwitch = (action, name) => void trace.push(`${action} ${name}`);
});

class FakeRouting implements TrafficPort {
  constructor(public weight = 0) {}
  async getWeight(): Promise<TrafficState> {
    return { weight: this.weight, revision: `rev-${this.weight}`, settled: true };
  }
  async setWeight(): Promise<TrafficState> {
    throw new Error('the deploy trigger must never route traffic');
  }
}

const aliasSettings = (name = fn, extra: Record<string, string> = {}) => ({
  CUTOVER_FUNCTION_NAME: name,
  CUTOVER_ALIAS_NAME: 'live',
  CUTOVER_PLAN: PLAN,
  CUTOVER_PINNED_CAPACITY: '0',
  CUTOVER_CAPACITY: '{"kind":"none"}',
  CUTOVER_APP_METRICS_NAMESPACE: 'Api',
  ...extra,
});
const fleetSettings = (extra: Record<string, string> = {}) => ({
  CUTOVER_TARGET: JSON.stringify(ALB_TARGET),
  CUTOVER_PLAN: PLAN,
  CUTOVER_PINNED_CAPACITY: '0',
  CUTOVER_APP_METRICS_NAMESPACE: 'Shop',
  ...extra,
});

function cfn(requestType: 'Create' | 'Update' | 'Delete', properties: Record<string, unknown>, physicalResourceId?: string, old: Record<string, unknown> = {}): CloudFormationCustomResourceEvent {
  return {
    RequestType: requestType,
    ServiceToken: 'arn:provider',
    ResponseURL: 'https://cfn-response.example.com/',
    StackId: 'arn:stack',
    RequestId: 'req',
    LogicalResourceId: 'Deploy',
    ResourceType: 'Custom::CutoverDeployTrigger',
    ResourceProperties: { ServiceToken: 'arn:provider', ...properties },
    ...(physicalResourceId ? { PhysicalResourceId: physicalResourceId } : {}),
    ...(requestType === 'Update' ? { OldResourceProperties: { ServiceToken: 'arn:provider', ...old } } : {}),
  } as CloudFormationCustomResourceEvent;
}
const aliasDeploy = (version: string, settings: unknown = aliasSettings(), requestType: 'Create' | 'Update' = 'Update') =>
  cfn(requestType, { FunctionName: fn, AliasName: 'live', TargetVersion: version, MigrationId: `${fn}:live:${version}`, Settings: settings }, requestType === 'Update' ? `${fn}:live` : undefined);
const fleetDeploy = (key: string, release: string, from: string, settings: unknown = fleetSettings()) =>
  cfn('Update', { TargetKind: 'fleet', MigrationKey: key, Release: release, Settings: settings }, key, { TargetKind: 'fleet', MigrationKey: key, Release: from });

/** The registry and the store, traced (the order is the contract). */
function deps(overrides: Partial<SharedDeployTriggerDeps> = {}): SharedDeployTriggerDeps {
  const traced: SharedDeployTriggerDeps['registry'] = {
    register: async (key, settings, nowMs, owner) => {
      trace.push(`register ${key}`);
      await registry.register(key, settings, nowMs, owner);
    },
    markLive: async (key, id, nowMs) => {
      trace.push(`markLive ${id}`);
      await registry.markLive(key, id, nowMs);
    },
    deregister: (key, owner, options) => registry.deregister(key, owner, options),
    get: (key) => registry.get(key),
    removeOwner: (key, owner) => registry.removeOwner(key, owner),
  };
  const tracedStore: SharedDeployTriggerDeps['store'] = {
    getPointer: (key) => store.getPointer(key),
    load: (id) => store.load(id),
    putPointer: async (key, pointer, replacing) => {
      trace.push(`record ${pointer.migrationId}`);
      await store.putPointer(key, pointer, replacing);
    },
  };
  const eventBridge = new EventBridgeClient({ region: 'us-east-1' });
  return {
    env: ENV,
    registry: traced,
    store: tracedStore,
    clients: {
      lambda: () => dynamo.clients.lambda,
      commandLambda: () => dynamo.clients.lambda,
      eventBridge: () => eventBridge,
      elb: () => {
        throw new Error('the fleet routing is faked in these tests');
      },
      route53: () => {
        throw new Error('no DNS migration in these tests');
      },
    },
    fleetRouting: () => new FakeRouting(0),
    now: () => NOW,
    log: () => {},
    ...overrides,
  };
}

const wakes = () => account.invocations.filter((i) => i.InvocationType === 'Event');

describe('shared deploy trigger: order', () => {
  it('should register, record, mark live, enable its family’s rule (and the probe’s), then wake, naming the migration', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const settings = aliasSettings(fn, { CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://new.example.com"}]' });
    const response = await onSharedDeployEvent(aliasDeploy('2', settings), deps());
    expect(response.Data).toMatchObject({ Action: 'migration-recorded', MigrationId: `${fn}:live:2` });
    trace.push(...wakes().map((w) => `wake ${w.FunctionName}`));
    expect(trace).toEqual([`register ${fn}:live`, `record ${fn}:live:2`, `markLive ${fn}:live:2`, 'enable alias-tick', 'enable probe-tick', 'wake controller-alias']);
    expect(wakes()[0]!.payload).toEqual({ trigger: 'deploy', migrationId: `${fn}:live:2`, migrationKey: `${fn}:live` });
    expect(await registry.get(`${fn}:live`)).toMatchObject({ family: 'lambda-alias', settings, live: { migrationId: `${fn}:live:2` } });
  });

  it('should register even when nothing is recorded (the alias already serves the version: alarms or plan may have changed)', async () => {
    account.alias = { main: '3', weights: {}, revision: 1 };
    const response = await onSharedDeployEvent(aliasDeploy('3', aliasSettings(fn, { CUTOVER_ALARM_NAMES: '["api-5xx"]' })), deps());
    expect(response.Data?.Action).toBe('none');
    expect(trace).toEqual([`register ${fn}:live`]);
    expect((await registry.get(`${fn}:live`))?.settings.CUTOVER_ALARM_NAMES).toBe('["api-5xx"]');
    expect((await registry.get(`${fn}:live`))?.live).toBeUndefined();
  });

  it('should have registered before a record that fails, so that what is recorded can always be served', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const failing = deps();
    const attempt = onSharedDeployEvent(aliasDeploy('2'), {
      ...failing,
      store: { ...failing.store, putPointer: async () => Promise.reject(new Error('ProvisionedThroughputExceededException')) },
    });
    await expect(attempt).rejects.toThrow('ProvisionedThroughputExceededException');
    expect(await registry.get(`${fn}:live`)).toMatchObject({ settings: aliasSettings() });
    expect(account.ruleSwitches).toEqual([]);
    expect(wakes()).toEqual([]);
  });

  it('fails the deploy before enabling anything when the live mark cannot be written, saying what to do', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const base = deps();
    const attempt = onSharedDeployEvent(aliasDeploy('2'), {
      ...base,
      registry: { ...base.registry, markLive: async () => Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' })) },
    });
    await expect(attempt).rejects.toThrow(
      new RegExp(`migration ${fn}:live:2 was recorded but could not be marked live in the registry, so no schedule would tick it \\(Rate exceeded\\); the deploy fails so that CloudFormation rolls back, which aborts the migration: deploy a new version`),
    );
    expect(account.ruleSwitches).toEqual([]);
    expect(wakes()).toEqual([]);
  });

  it('should mark an unfinished migration live again when the same deploy is sent again (an attempt may have died before its mark)', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await store.putPointer(`${fn}:live`, { migrationId: `${fn}:live:2`, oldVersion: '1', newVersion: '2', createdAtMs: NOW }, undefined);
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    account.alias = { main: '1', weights: { '2': 0.1 }, revision: 2 };
    expect((await onSharedDeployEvent(aliasDeploy('2'), deps())).Data?.Action).toBe('already-recorded');
    expect(trace).toEqual([`register ${fn}:live`, `markLive ${fn}:live:2`, 'enable alias-tick']);
    expect((await registry.get(`${fn}:live`))?.live?.migrationId).toBe(`${fn}:live:2`);
    // A finished one is left alone.
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK }), 1, []);
    trace = [];
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    expect(trace).toEqual([`register ${fn}:live`]);
  });
});

describe('shared deploy trigger: several migrations', () => {
  it('should start two migrations of different families through one trigger, each with its own controller and rule', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    const shop = `shop-${n}`;
    const response = await onSharedDeployEvent(fleetDeploy(shop, 'r2', 'r1', fleetSettings({ CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://green.example.com"}]' })), deps());
    expect(response.Data).toMatchObject({ Action: 'migration-recorded', MigrationId: `${shop}:r2` });
    // The alias has no probe targets: its deploy never switches the probe on.
    expect(account.ruleSwitches).toEqual(['enable alias-tick', 'enable fleet-tick', 'enable probe-tick']);
    expect(wakes()).toEqual([
      { FunctionName: 'controller-alias', InvocationType: 'Event', payload: { trigger: 'deploy', migrationId: `${fn}:live:2`, migrationKey: `${fn}:live` } },
      { FunctionName: 'controller-fleet', InvocationType: 'Event', payload: { trigger: 'deploy', migrationId: `${shop}:r2`, migrationKey: shop } },
    ]);
    const { migrations } = await registry.list();
    const mine = migrations.filter((m) => m.migrationKey === `${fn}:live` || m.migrationKey === shop);
    expect(mine.map((m) => [m.migrationKey, m.family, m.live?.migrationId])).toEqual([
      [`${fn}:live`, 'lambda-alias', `${fn}:live:2`],
      [shop, 'fleet', `${shop}:r2`],
    ]);
    // Each pointer carries its own spec (the fleet's target and pin go with it).
    expect((await store.getPointer(shop))?.spec).toMatchObject({ target: { kind: 'load-balancer' }, pinnedCapacity: 0 });
  });

  it('should send its commands (abort on a stack rollback) to the family’s controller, naming the migration', async () => {
    const shop = `shop-${n}`;
    await onSharedDeployEvent(fleetDeploy(shop, 'r2', 'r1'), deps());
    account.invokeReply = async () => {
      await store.save(`${shop}:r2`, makeRecord(`${shop}:r2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 0, []);
      return { Payload: { migrationId: `${shop}:r2`, events: 1, status: 'rolled-back' } };
    };
    expect((await onSharedDeployEvent(fleetDeploy(shop, 'r1', 'r2'), deps())).Data?.Action).toBe('abort-requested');
    expect(account.invocations.at(-1)).toEqual({
      FunctionName: 'controller-fleet',
      InvocationType: 'RequestResponse',
      payload: { command: 'abort', reason: 'CloudFormation rolled the stack back to release r1', migration: `${shop}:r2` },
    });
  });
});

describe('shared deploy trigger: Delete', () => {
  const del = () => cfn('Delete', { FunctionName: fn, AliasName: 'live', Settings: 'damaged' }, `${fn}:live`);

  it('should remove the registration, needing no settings, also on a retried Delete', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    await registry.clearLive(`${fn}:live`, `${fn}:live:2`);
    // Delete needs no settings: a resource whose settings went bad must still be deletable.
    expect(await onSharedDeployEvent(del(), deps())).toEqual({ PhysicalResourceId: `${fn}:live` });
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
    expect(account.invocations.filter((i) => i.InvocationType === 'RequestResponse')).toEqual([]);
    // Again (CloudFormation retried the Delete): nothing left, no error.
    await onSharedDeployEvent(del(), deps());
  });

  it('should abort a live migration in flight before removing it (its grants are about to go), naming it to its controller', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    account.invokeReply = async () => {
      await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 1, []);
      return { Payload: { migrationId: `${fn}:live:2`, events: 1, status: 'rolled-back' } };
    };
    await onSharedDeployEvent(del(), deps());
    expect(account.invocations.at(-1)).toMatchObject({
      InvocationType: 'RequestResponse',
      payload: { command: 'abort', migration: `${fn}:live:2`, reason: expect.stringMatching(/deploy trigger resource was deleted/) },
    });
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
  });

  it('should send the abort once (a Delete must not pass the 2-minute timeout), and say when the aborted migration still needs ticks', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    const logged: { message: string; detail: Record<string, unknown> }[] = [];
    const log = (message: string, detail: Record<string, unknown>) => logged.push({ message, detail });
    // A concurrent tick saved first: the command changed nothing, and is not sent again.
    account.invokeReply = () => ({ Payload: { migrationId: `${fn}:live:2`, events: 0, conflict: true } });
    await onSharedDeployEvent(del(), deps({ log }));
    expect(account.invocations.filter((i) => i.InvocationType === 'RequestResponse')).toHaveLength(1);
    expect(logged.some((l) => /could not settle the live migration/.test(l.message))).toBe(true);
    expect(await registry.get(`${fn}:live`)).toBeUndefined();

    // Aborted, but the new side's drain is still watched: deregistered, with what to check by hand.
    await registry.register(`${fn}:live`, aliasSettings(), 1, 'arn:stack/Deploy');
    await registry.markLive(`${fn}:live`, `${fn}:live:2`, 1);
    const residual = { sinceMs: 1, peakPerMinute: 100, causeCode: 'error-rate', requests: 5, lastWindowEndMs: 1, lastReadMs: 1, drainRequested: true };
    account.invokeReply = async () => {
      await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0, residual } as never), 1, []);
      return { Payload: { migrationId: `${fn}:live:2`, events: 1, status: 'rolled-back' } };
    };
    logged.length = 0;
    await onSharedDeployEvent(del(), deps({ log }));
    expect(logged.find((l) => /still needed ticks; finish it by hand/.test(l.message))?.detail).toMatchObject({ status: 'rolled-back', fix: expect.stringMatching(/drained/) });
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
  });

  it('should tear a complete live migration down (the new side keeps its traffic), not abort it', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.COMPLETE, weight: 100 }), 0, []);
    account.invokeReply = async () => {
      await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.TORN_DOWN, weight: 100 }), 1, []);
      return { Payload: { migrationId: `${fn}:live:2`, events: 1, status: 'torn-down' } };
    };
    await onSharedDeployEvent(del(), deps());
    expect(account.invocations.at(-1)).toMatchObject({ payload: { command: 'teardown', migration: `${fn}:live:2` } });
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
  });

  it('should remove a live migration its controller cannot settle any more (grants gone), logging what to do, and not fail the Delete', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await onSharedDeployEvent(aliasDeploy('2'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.SHIFTING }), 0, []);
    account.invokeReply = () => ({ FunctionError: 'Unhandled', Payload: { errorType: 'AccessDeniedException', errorMessage: 'not authorized to perform: lambda:UpdateAlias' } });
    const logged: { message: string; detail: Record<string, unknown> }[] = [];
    await expect(onSharedDeployEvent(del(), deps({ log: (message, detail) => logged.push({ message, detail }) }))).resolves.toEqual({ PhysicalResourceId: `${fn}:live` });
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
    expect(logged.find((l) => /could not settle the live migration/.test(l.message))?.detail).toMatchObject({
      migrationId: `${fn}:live:2`,
      error: expect.stringMatching(/AccessDenied/),
      fix: expect.stringMatching(/remove a migration from a stack only once it is not live/),
    });
  });

  it("should keep the registration when a moved construct's old resource is deleted after the new one registered", async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const moved = (event: CloudFormationCustomResourceEvent, logicalId: string) => ({ ...event, LogicalResourceId: logicalId }) as CloudFormationCustomResourceEvent;
    await onSharedDeployEvent(moved(aliasDeploy('1', aliasSettings(), 'Create'), 'OldPlace'), deps());
    // The construct moves: CloudFormation creates the new resource (same key), then deletes the old one.
    await onSharedDeployEvent(moved(aliasDeploy('1', aliasSettings(), 'Create'), 'NewPlace'), deps());
    await onSharedDeployEvent(moved(cfn('Delete', {}, `${fn}:live`), 'OldPlace'), deps());
    expect(await registry.get(`${fn}:live`)).toBeDefined();
    // The new resource's own Delete (the stack goes away) removes it.
    await onSharedDeployEvent(moved(cfn('Delete', {}, `${fn}:live`), 'NewPlace'), deps());
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
  });

  it('should neither settle nor remove the migration of the resource that stays when a move is rolled back', async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const at = (event: CloudFormationCustomResourceEvent, logicalId: string) => ({ ...event, LogicalResourceId: logicalId }) as CloudFormationCustomResourceEvent;
    await onSharedDeployEvent(at(aliasDeploy('2'), 'OldPlace'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    // The move: the new resource is created (same key, same version), then the update fails elsewhere
    // and CloudFormation's rollback deletes the new resource.
    await onSharedDeployEvent(at(aliasDeploy('2', aliasSettings(), 'Create'), 'NewPlace'), deps());
    await onSharedDeployEvent(at(cfn('Delete', {}, `${fn}:live`), 'NewPlace'), deps());
    expect(account.invocations.filter((i) => i.InvocationType === 'RequestResponse')).toEqual([]);
    expect(await registry.get(`${fn}:live`)).toMatchObject({ live: { migrationId: `${fn}:live:2` }, owners: ['arn:stack/OldPlace'] });
  });

  it("should take a failed Create out of the owners (CloudFormation sends it no Delete), so the remaining resource's Delete still settles", async () => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    const at = (event: CloudFormationCustomResourceEvent, logicalId: string) => ({ ...event, LogicalResourceId: logicalId }) as CloudFormationCustomResourceEvent;
    await onSharedDeployEvent(at(aliasDeploy('2'), 'OldPlace'), deps());
    await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.BAKING }), 0, []);
    // A Create of a new resource for the same key with another version is refused (a migration runs).
    await expect(onSharedDeployEvent(at(aliasDeploy('3', aliasSettings(), 'Create'), 'NewPlace'), deps())).rejects.toThrow(/still baking/);
    expect((await registry.get(`${fn}:live`))?.owners).toEqual(['arn:stack/OldPlace']);
    account.invokeReply = async () => {
      await store.save(`${fn}:live:2`, makeRecord(`${fn}:live:2`, { status: MigrationStatus.ROLLED_BACK, weight: 0 }), 1, []);
      return { Payload: { migrationId: `${fn}:live:2`, events: 1, status: 'rolled-back' } };
    };
    await onSharedDeployEvent(at(cfn('Delete', {}, `${fn}:live`), 'OldPlace'), deps());
    expect(account.invocations.at(-1)).toMatchObject({ payload: { command: 'abort', migration: `${fn}:live:2` } });
    expect(await registry.get(`${fn}:live`)).toBeUndefined();
  });
});

describe('shared deploy trigger: settings and controllers', () => {
  const refused = async (event: CloudFormationCustomResourceEvent, message: RegExp | string, overrides: Partial<SharedDeployTriggerDeps> = {}) => {
    account.alias = { main: '1', weights: {}, revision: 1 };
    await expect(onSharedDeployEvent(event, deps(overrides))).rejects.toThrow(message);
    // Refused before anything is written or called.
    expect(trace).toEqual([]);
    expect(account.invocations).toEqual([]);
    expect(account.count('GetAlias')).toBe(0);
  };

  it('fails on missing Settings, naming the property and the fix', async () => {
    const older = aliasDeploy('2');
    delete (older.ResourceProperties as Record<string, unknown>).Settings;
    await refused(
      older,
      new RegExp(`resource property Settings of migration ${fn}:live: migration settings must be a map of variable names to strings, got undefined \\(a resource of an older construct: deploy with the construct of this version\\)`),
    );
  });

  it('fails on damaged Settings: not a map, an unknown name, a value that is not a string', async () => {
    await refused(aliasDeploy('2', '{"CUTOVER_PLAN":"x"}'), /resource property Settings of migration .*: migration settings must be a map/);
    await refused(aliasDeploy('2', { ...aliasSettings(), CUTOVER_TABLE_NAME: 'other' }), /name "CUTOVER_TABLE_NAME" is not a per-migration setting/);
    await refused(aliasDeploy('2', { ...aliasSettings(), CUTOVER_PINNED_CAPACITY: 3 }), /CUTOVER_PINNED_CAPACITY must be a string, got 3/);
  });

  it('fails on a setting the trigger or the controller could not read, naming it', async () => {
    await refused(aliasDeploy('2', aliasSettings(fn, { CUTOVER_PLAN: '{"steps":[]}' })), /resource property Settings of migration .*: setting CUTOVER_PLAN is not a valid plan/);
    // The controller's own checks (the trigger does not read the alarms): no migration it could not serve is registered.
    await refused(aliasDeploy('2', aliasSettings(fn, { CUTOVER_ALARM_NAMES: '"one"' })), /setting CUTOVER_ALARM_NAMES must be a JSON array of alarm names/);
    await refused(aliasDeploy('2', { ...aliasSettings(), CUTOVER_APP_METRICS_NAMESPACE: '' }), /setting CUTOVER_APP_METRICS_NAMESPACE must be set/);
  });

  it('fails when the settings name another alias, or a target of the other family', async () => {
    await refused(aliasDeploy('2', aliasSettings('other')), new RegExp(`CUTOVER_FUNCTION_NAME and CUTOVER_ALIAS_NAME name "other:live", not the alias the resource deploys`));
    await refused(aliasDeploy('2', fleetSettings()), /CUTOVER_TARGET is a fleet target, but the resource is a Lambda alias migration's/);
  });

  it('fails when the stack has no controller of the migration’s family, naming the fix', async () => {
    const env = { ...ENV, CUTOVER_CONTROLLERS: JSON.stringify({ 'lambda-alias': { functionName: 'controller-alias' } }) };
    await refused(
      fleetDeploy(`shop-${n}`, 'r2', 'r1'),
      `environment variable CUTOVER_CONTROLLERS has no fleet controller for migration shop-${n} (it names lambda-alias); deploy with the construct of this version, which creates one controller per target family the stack has`,
      { env },
    );
    await refused(aliasDeploy('2'), /environment variable CUTOVER_CONTROLLERS must be set/, { env: { CUTOVER_TABLE_NAME: TABLE } });
    await refused(aliasDeploy('2'), /CUTOVER_CONTROLLERS entry fleet must be \{"functionName": "…", "schedule"\?: "…"\}, got \{\}/, {
      env: { ...ENV, CUTOVER_CONTROLLERS: '{"lambda-alias":{"functionName":"c"},"fleet":{}}' },
    });
  });
});
