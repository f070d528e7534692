/**
 * The deploy trigger of a fleet migration (fleet-deploy-trigger.ts): the table in dynalite, the
 * controller's Lambda behind FakeAccount, the routing as a fake port or as the real Route 53 port
 * on a small stateful zone (aws-sdk-client-mock on one client instance), and Route 53 over a
 * loopback socket where the SDK's own retries matter.
 */
import {
  DescribeListenersCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  ChangeResourceRecordSetsCommand,
  InvalidChangeBatch,
  ListResourceRecordSetsCommand,
  Route53Client,
  type Change,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type TestContext } from 'vitest';
import { clientConfig } from '../../lambda/aws/clients';
import { readDeployTriggerConfig, type DeployTriggerConfig } from '../../lambda/aws/config';
import { DeployBlockedError, commandClientConfig } from '../../lambda/aws/deploy-trigger';
import { DynamoDbStateStore, PointerConflictError, type MigrationPointer } from '../../lambda/aws/dynamodb-store';
import { ensureRecords, onFleetDeployEvent, type FleetDeployDeps, type WeightedRecords } from '../../lambda/aws/fleet-deploy-trigger';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { Route53WeightedTraffic } from '../../lambda/aws/traffic/route53';
import { MigrationStatus } from '../../lambda/core/model';
import type { TrafficPort, TrafficState } from '../../lambda/core/ports';
import { FakeAccount } from './fake-account';
import { startFakeAws, type Reply } from './fake-aws';
import { makeRecord } from './fixtures';
import { TEST_CREDENTIALS, captureOutput, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-fleet-deploy-test';
const NOW = 1_750_000_000_000;
const PLAN = { steps: [{ weight: 10, bakeMs: 300000 }, { weight: 100, bakeMs: 300000 }], soakMs: 600000, healthWindowMs: 60000, teardown: 'manual' };
const ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const LISTENER = `${ARN}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2`;
const OLD_TG = `${ARN}:targetgroup/shop-blue/73e2d6bc24d8a067`;
const NEW_TG = `${ARN}:targetgroup/shop-green/943f017f100becff`;
const ALB_TARGET = { kind: 'load-balancer', loadBalancer: 'app/shop/50dc6c495c0c9188', listenerArn: LISTENER, oldTargetGroupArn: OLD_TG, newTargetGroupArn: NEW_TG };
const ZONE = 'Z0123456789ABCDEFGHIJ';
const ELB_ZONE = 'Z35SXDOTRQ7X7K';

/** The migration's settings (its custom resource's `Settings`). */
const SETTINGS = {
  CUTOVER_PLAN: JSON.stringify(PLAN),
  CUTOVER_JUDGE: '{"minRequests": 50}',
  CUTOVER_PINNED_CAPACITY: 'auto',
  CUTOVER_TARGET: JSON.stringify(ALB_TARGET),
  CUTOVER_APP_METRICS_NAMESPACE: 'Shop',
};
const TRIGGER_ENV = { CUTOVER_TABLE_NAME: TABLE, CUTOVER_CONTROLLER_FUNCTION_NAME: 'cutover-controller', ...SETTINGS };
const config: DeployTriggerConfig = readDeployTriggerConfig(TRIGGER_ENV);

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let registry: MigrationRegistry;
let commandLambda: LambdaClient;
let key: string;
let n = 0;

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
  key = `shop-${++n}`;
});

// ---------------------------------------------------------------------------------------------
// The routing as the trigger reads it

/** The routing's weight as a fleet's traffic adapter would read it; the trigger never writes it. */
class FakeRouting implements TrafficPort {
  reads = 0;
  constructor(public weight = 0) {}
  async getWeight(): Promise<TrafficState> {
    this.reads++;
    return { weight: this.weight, revision: `rev-${this.weight}`, settled: true };
  }
  async setWeight(): Promise<TrafficState> {
    throw new Error('the deploy trigger must never route traffic');
  }
}

/** A small Route 53 hosted zone behind one mocked client: lists, and applies CREATE/DELETE batches all or nothing. */
const route53 = new Route53Client({ region: 'us-east-1' });
const r53Mock = mockClient(route53);
const zone: { records: ResourceRecordSet[]; beforeChange?: () => void } = { records: [] };

function normalized(name: string | undefined): string {
  return (name ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))).toLowerCase().replace(/\.?$/, '.');
}
const keyOf = (r: ResourceRecordSet) => `${normalized(r.Name)}|${r.Type}|${r.SetIdentifier ?? ''}`;
function invalidBatch(message: string): InvalidChangeBatch {
  return new InvalidChangeBatch({ message, $metadata: { httpStatusCode: 400 } });
}

function installZone(): void {
  r53Mock.reset();
  r53Mock.on(ListResourceRecordSetsCommand).callsFake((input: { StartRecordName: string; StartRecordType: string }) => {
    const set = zone.records
      .filter((r) => normalized(r.Name) === normalized(input.StartRecordName) && r.Type === input.StartRecordType)
      .sort((a, b) => (a.SetIdentifier ?? '').localeCompare(b.SetIdentifier ?? ''));
    // Whatever follows the set in the zone's order (the readers must stop at it).
    const rest = zone.records.filter((r) => !set.includes(r));
    return { ResourceRecordSets: structuredClone([...set, ...rest]), IsTruncated: false, MaxItems: 100 };
  });
  r53Mock.on(ChangeResourceRecordSetsCommand).callsFake((input: { ChangeBatch: { Changes: Change[] } }) => {
    zone.beforeChange?.();
    const next = [...zone.records];
    for (const change of input.ChangeBatch.Changes) {
      const record = change.ResourceRecordSet!;
      const at = next.findIndex((r) => keyOf(r) === keyOf(record));
      if (change.Action === 'CREATE') {
        if (at >= 0) {
          throw invalidBatch(`[Tried to create resource record set [name='${record.Name}', type='${record.Type}', set-identifier='${record.SetIdentifier}'] but it already exists]`);
        }
        next.push(structuredClone(record));
      } else if (change.Action === 'DELETE') {
        if (at < 0 || JSON.stringify(next[at]) !== JSON.stringify(record)) throw invalidBatch('values provided do not match the current values');
        next.splice(at, 1);
      } else {
        throw new Error(`unexpected ${change.Action}`);
      }
    }
    zone.records = next;
    return { ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date(NOW) } };
  });
}

beforeEach(() => {
  zone.records = [{ Name: 'www.example.com.', Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: 'elsewhere.example.net' }] }];
  delete zone.beforeChange;
  installZone();
});

const cnameRecords = (overrides: Partial<WeightedRecords> = {}): WeightedRecords => ({
  hostedZoneId: ZONE,
  recordName: 'api.example.com',
  recordType: 'CNAME',
  ttl: 30,
  old: { setIdentifier: 'blue', dnsName: 'blue-lb-1.us-east-1.elb.amazonaws.com' },
  new: { setIdentifier: 'green', dnsName: 'green-lb-2.us-east-1.elb.amazonaws.com' },
  ...overrides,
});
const aliasRecords = (): WeightedRecords => ({
  hostedZoneId: ZONE,
  recordName: 'example.com',
  recordType: 'A',
  old: { setIdentifier: 'blue', dnsName: 'blue-lb-1.us-east-1.elb.amazonaws.com', aliasHostedZoneId: ELB_ZONE },
  new: { setIdentifier: 'green', dnsName: 'green-lb-2.us-east-1.elb.amazonaws.com', aliasHostedZoneId: ELB_ZONE },
});
function weighted(id: string, weight: number, name = 'api.example.com.'): ResourceRecordSet {
  return { Name: name, Type: 'CNAME', SetIdentifier: id, Weight: weight, TTL: 30, ResourceRecords: [{ Value: `${id}-lb.us-east-1.elb.amazonaws.com` }] };
}
/** The real Route 53 port on the fake zone: what the handler gives the trigger for a DNS migration. */
const dnsRouting = (records: WeightedRecords) =>
  new Route53WeightedTraffic({
    route53,
    hostedZoneId: records.hostedZoneId,
    recordName: records.recordName,
    recordType: records.recordType,
    oldSetIdentifier: records.old.setIdentifier,
    newSetIdentifier: records.new.setIdentifier,
    sleep: async () => {},
  });

// ---------------------------------------------------------------------------------------------
// Events and deps

interface EventOptions {
  /** The release CloudFormation had before (Update). */
  readonly from?: string;
  readonly records?: WeightedRecords;
  /** Replaces ResourceProperties entirely. */
  readonly properties?: Record<string, unknown>;
}

function event(requestType: 'Create' | 'Update' | 'Delete', release: string, options: EventOptions = {}): CloudFormationCustomResourceEvent {
  const properties = options.properties ?? {
    ServiceToken: 'arn:provider',
    TargetKind: 'fleet',
    MigrationKey: key,
    Release: release,
    ...(options.records ? { Records: JSON.stringify(options.records) } : {}),
    Settings: SETTINGS,
  };
  return {
    RequestType: requestType,
    ServiceToken: 'arn:provider',
    ResponseURL: 'https://cfn-response.example.com/',
    StackId: 'arn:stack',
    RequestId: `req-${release}`,
    LogicalResourceId: 'DeployTrigger',
    ResourceType: 'Custom::CutoverDeploy',
    ResourceProperties: properties,
    ...(requestType === 'Create' ? {} : { PhysicalResourceId: key }),
    ...(requestType === 'Update'
      ? { OldResourceProperties: { ServiceToken: 'arn:provider', TargetKind: 'fleet', MigrationKey: key, ...(options.from !== undefined ? { Release: options.from } : {}) } }
      : {}),
  } as CloudFormationCustomResourceEvent;
}

function deps(traffic: TrafficPort, overrides: Partial<FleetDeployDeps> = {}): FleetDeployDeps {
  return { config, registry, settings: SETTINGS, lambda: dynamo.clients.lambda, commandLambda, store, traffic, now: () => NOW, log: () => {}, ...overrides };
}

const commandInvokes = () => account.invocations.filter((i) => i.InvocationType === 'RequestResponse');
const wakeUps = () => account.invocations.filter((i) => i.InvocationType === 'Event');
const changeCalls = () => r53Mock.commandCalls(ChangeResourceRecordSetsCommand).map((c) => c.args[0].input);

/** Records r1 → r2 as a deploy would, then stores its migration with `status`. */
async function recorded(status: MigrationStatus | undefined, routing = new FakeRouting(0)): Promise<MigrationPointer> {
  await onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(routing));
  if (status) await store.save(`${key}:r2`, makeRecord(`${key}:r2`, { status, weight: status === MigrationStatus.COMPLETE ? 100 : 10 }), 0, []);
  account.invocations.length = 0;
  return (await store.getPointer(key))!;
}

// ---------------------------------------------------------------------------------------------

describe('fleet deploy trigger: Create readies the routing', () => {
  it('should answer routing-ready and record no migration for a load balancer (the listener is the user’s)', async () => {
    const routing = new FakeRouting(0);
    const response = await onFleetDeployEvent(event('Create', 'r1'), deps(routing));
    expect(response).toEqual({ PhysicalResourceId: key, Data: { Action: 'routing-ready', MigrationId: '', OldRelease: '', NewRelease: 'r1' } });
    expect(await store.getPointer(key)).toBeUndefined();
    expect(account.invocations).toEqual([]);
    expect(routing.reads).toBe(0);
    expect(r53Mock.calls()).toHaveLength(0);
  });

  it('should create both CNAME records in ONE batch of CREATEs, old at 100 and new at 0, with the TTL', async () => {
    const records = cnameRecords();
    const routing = dnsRouting(records);
    const response = await onFleetDeployEvent(event('Create', 'r1', { records }), deps(routing, { route53 }));
    expect(response.Data).toEqual({ Action: 'routing-ready', MigrationId: '', OldRelease: '', NewRelease: 'r1' });
    const calls = changeCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.HostedZoneId).toBe(ZONE);
    expect(calls[0]!.ChangeBatch!.Changes).toEqual([
      {
        Action: 'CREATE',
        ResourceRecordSet: { Name: 'api.example.com.', Type: 'CNAME', SetIdentifier: 'blue', Weight: 100, TTL: 30, ResourceRecords: [{ Value: 'blue-lb-1.us-east-1.elb.amazonaws.com' }] },
      },
      {
        Action: 'CREATE',
        ResourceRecordSet: { Name: 'api.example.com.', Type: 'CNAME', SetIdentifier: 'green', Weight: 0, TTL: 30, ResourceRecords: [{ Value: 'green-lb-2.us-east-1.elb.amazonaws.com' }] },
      },
    ]);
    // The controller's port reads them: everything on the old side.
    expect(await routing.getWeight()).toMatchObject({ weight: 0, ttlSeconds: 30 });
    expect(await store.getPointer(key)).toBeUndefined();
    expect(account.invocations).toEqual([]);
  });

  it('should default the CNAME TTL to 60 s when the records give none', async () => {
    const { ttl: _ttl, ...records } = cnameRecords();
    expect(await ensureRecords(route53, records)).toBe(true);
    expect(changeCalls()[0]!.ChangeBatch!.Changes!.map((c) => c.ResourceRecordSet!.TTL)).toEqual([60, 60]);
  });

  it('should create A alias records pointing at each load balancer in its canonical zone, with no TTL', async () => {
    const records = aliasRecords();
    await onFleetDeployEvent(event('Create', 'r1', { records }), deps(dnsRouting(records), { route53 }));
    const [batch] = changeCalls();
    expect(batch!.ChangeBatch!.Changes!.map((c) => c.Action)).toEqual(['CREATE', 'CREATE']);
    expect(batch!.ChangeBatch!.Changes!.map((c) => c.ResourceRecordSet)).toEqual([
      { Name: 'example.com.', Type: 'A', SetIdentifier: 'blue', Weight: 100, AliasTarget: { DNSName: 'blue-lb-1.us-east-1.elb.amazonaws.com', HostedZoneId: ELB_ZONE, EvaluateTargetHealth: true } },
      { Name: 'example.com.', Type: 'A', SetIdentifier: 'green', Weight: 0, AliasTarget: { DNSName: 'green-lb-2.us-east-1.elb.amazonaws.com', HostedZoneId: ELB_ZONE, EvaluateTargetHealth: true } },
    ]);
    expect(await dnsRouting(records).getWeight()).toMatchObject({ weight: 0, ttlSeconds: undefined });
  });

  it('should leave the records alone when both exist (their weights are the controller’s)', async () => {
    zone.records.push(weighted('blue', 70), weighted('green', 30));
    const response = await onFleetDeployEvent(event('Create', 'r1', { records: cnameRecords() }), deps(new FakeRouting(30), { route53 }));
    expect(response.Data?.Action).toBe('routing-ready');
    expect(changeCalls()).toEqual([]);
    expect(zone.records.filter((r) => r.SetIdentifier).map((r) => r.Weight)).toEqual([70, 30]);
  });

  it('should find existing records whatever the case and Route 53’s escapes (a wildcard lists as \\052)', async () => {
    zone.records.push(weighted('blue', 100, '\\052.API.example.com.'), weighted('green', 0, '\\052.API.example.com.'));
    expect(await ensureRecords(route53, cnameRecords({ recordName: '*.api.example.com' }))).toBe(false);
    expect(changeCalls()).toEqual([]);
  });

  it('fails, naming the missing record and the fix, when one of the pair is gone', async () => {
    zone.records.push(weighted('blue', 100));
    const attempt = onFleetDeployEvent(event('Create', 'r1', { records: cnameRecords() }), deps(new FakeRouting(0), { route53 }));
    await expect(attempt).rejects.toBeInstanceOf(DeployBlockedError);
    await expect(attempt).rejects.toThrow(/weighted record api\.example\.com\. CNAME "green" is missing while its pair exists; recreate it with weight 0 \(new side\) or delete the other one/);
    expect(changeCalls()).toEqual([]);
  });

  it('fails when a record appeared between the read and the CREATE (InvalidChangeBatch), writing nothing', async () => {
    // Someone (another deploy) creates the new record meanwhile: the whole batch is refused.
    zone.beforeChange = () => zone.records.push(weighted('green', 0));
    const attempt = onFleetDeployEvent(event('Update', 'r2', { from: 'r1', records: cnameRecords() }), deps(new FakeRouting(0), { route53 }));
    await expect(attempt).rejects.toBeInstanceOf(InvalidChangeBatch);
    await expect(attempt).rejects.toThrow(/set-identifier='green'\] but it already exists/);
    expect(zone.records.filter((r) => r.SetIdentifier).map((r) => r.SetIdentifier)).toEqual(['green']);
    expect(await store.getPointer(key)).toBeUndefined();
    expect(account.invocations).toEqual([]);
  });

  it('fails when a DNS migration is given no Route 53 client', async () => {
    await expect(onFleetDeployEvent(event('Create', 'r1', { records: cnameRecords() }), deps(new FakeRouting(0)))).rejects.toThrow('a DNS migration needs a Route 53 client');
  });
});

describe('fleet deploy trigger: Update with a new release', () => {
  it('should record a migration from the previous release and wake the controller asynchronously, without routing traffic', async () => {
    const routing = new FakeRouting(0);
    const response = await onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(routing));
    expect(response).toEqual({ PhysicalResourceId: key, Data: { Action: 'migration-recorded', MigrationId: `${key}:r2`, OldRelease: 'r1', NewRelease: 'r2' } });
    // 'auto' has no number: the spec leaves pinnedCapacity out, so the controller sizes the pin at the gate.
    expect(await store.getPointer(key)).toEqual({
      migrationId: `${key}:r2`,
      oldVersion: 'r1',
      newVersion: 'r2',
      createdAtMs: NOW,
      // The target and the pin go with the migration (the sides swap for the next release).
      spec: { plan: config.plan, judge: { minRequests: 50 }, target: config.target, capacity: config.capacity },
    });
    expect(account.invocations).toEqual([{ FunctionName: 'cutover-controller', InvocationType: 'Event', payload: { trigger: 'deploy', migrationId: `${key}:r2`, migrationKey: key } }]);
    expect((await registry.get(key))?.live).toEqual({ migrationId: `${key}:r2`, sinceMs: NOW });
    expect(routing.reads).toBe(1);
  });

  it('should keep a numeric pin in the spec', async () => {
    const pinned = readDeployTriggerConfig({ ...TRIGGER_ENV, CUTOVER_PINNED_CAPACITY: '6' });
    await onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(new FakeRouting(0), { config: pinned }));
    expect((await store.getPointer(key))?.spec).toEqual({ plan: pinned.plan, judge: { minRequests: 50 }, pinnedCapacity: 6, target: pinned.target, capacity: pinned.capacity });
  });

  it('should name the old side "unknown" when CloudFormation’s old properties have no release', async () => {
    const response = await onFleetDeployEvent(event('Update', 'r2'), deps(new FakeRouting(0)));
    expect(response.Data).toMatchObject({ Action: 'migration-recorded', OldRelease: '', NewRelease: 'r2' });
    expect((await store.getPointer(key))?.oldVersion).toBe('unknown');
  });

  it('should record on a DNS migration once the records are there, writing none', async () => {
    zone.records.push(weighted('blue', 100), weighted('green', 0));
    const records = cnameRecords();
    const response = await onFleetDeployEvent(event('Update', 'r2', { from: 'r1', records }), deps(dnsRouting(records), { route53 }));
    expect(response.Data?.Action).toBe('migration-recorded');
    expect(changeCalls()).toEqual([]);
    expect(wakeUps()).toHaveLength(1);
  });

  it('should do nothing when the release did not change', async () => {
    const routing = new FakeRouting(0);
    const response = await onFleetDeployEvent(event('Update', 'r2', { from: 'r2' }), deps(routing));
    expect(response.Data).toEqual({ Action: 'none', MigrationId: '', OldRelease: 'r2', NewRelease: 'r2' });
    expect(await store.getPointer(key)).toBeUndefined();
    expect(account.invocations).toEqual([]);
    expect(routing.reads).toBe(0);
  });

  it('should treat the same migration sent again as already recorded', async () => {
    await onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(new FakeRouting(0)));
    const response = await onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(new FakeRouting(10)));
    expect(response.Data).toEqual({ Action: 'already-recorded', MigrationId: `${key}:r2`, OldRelease: 'r1', NewRelease: 'r2' });
    expect(wakeUps()).toHaveLength(1);
  });

  it('should abort, synchronously, a running migration when CloudFormation rolls back to the release it started from', async () => {
    const pointer = await recorded(MigrationStatus.BAKING);
    const response = await onFleetDeployEvent(event('Update', 'r1', { from: 'r2' }), deps(new FakeRouting(10)));
    expect(response.Data).toEqual({ Action: 'abort-requested', MigrationId: pointer.migrationId, OldRelease: 'r1', NewRelease: 'r2' });
    expect(account.invocations).toEqual([
      { FunctionName: 'cutover-controller', InvocationType: 'RequestResponse', payload: { command: 'abort', reason: 'CloudFormation rolled the stack back to release r1', migration: `${key}:r2` } },
    ]);
    // Through the client built for a controller run's wait.
    const calls = account.lambdaMock.commandCalls(InvokeCommand).filter((c) => c.args[0].input.InvocationType === 'RequestResponse');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.thisValue === commandLambda).toBe(true);
    expect((await store.getPointer(key))?.migrationId).toBe(pointer.migrationId);
  });

  it('should abort a migration the controller has not started yet (the pointer alone) on such a rollback', async () => {
    await recorded(undefined);
    expect((await onFleetDeployEvent(event('Update', 'r1', { from: 'r2' }), deps(new FakeRouting(0)))).Data?.Action).toBe('abort-requested');
    expect(commandInvokes().map((i) => (i.payload as { command: string }).command)).toEqual(['abort']);
  });

  it('should do nothing on a rollback to the old release once the migration has rolled back', async () => {
    await recorded(MigrationStatus.ROLLED_BACK);
    expect((await onFleetDeployEvent(event('Update', 'r1', { from: 'r2' }), deps(new FakeRouting(0)))).Data?.Action).toBe('none');
    expect(account.invocations).toEqual([]);
  });

  it('should start a new migration to the release a torn-down migration started from (the sides were swapped since)', async () => {
    await recorded(MigrationStatus.TORN_DOWN);
    const response = await onFleetDeployEvent(event('Update', 'r1', { from: 'r2' }), deps(new FakeRouting(0)));
    expect(response.Data).toEqual({ Action: 'migration-recorded', MigrationId: `${key}:r1`, OldRelease: 'r2', NewRelease: 'r1' });
    expect(commandInvokes()).toEqual([]);
    expect(wakeUps()).toHaveLength(1);
  });

  it('refuses a release label that was migrated before (its id names an existing migration), recording nothing', async () => {
    // r4 was migrated long ago (its record is still in the table); r5 is current and torn down.
    await store.save(`${key}:r4`, makeRecord(`${key}:r4`, { status: MigrationStatus.TORN_DOWN, weight: 100 }), 0, []);
    await recorded(MigrationStatus.TORN_DOWN);
    const attempt = onFleetDeployEvent(event('Update', 'r4', { from: 'r2' }), deps(new FakeRouting(0)));
    await expect(attempt).rejects.toBeInstanceOf(DeployBlockedError);
    await expect(attempt).rejects.toThrow(/release label "r4" was already migrated \(migration .*:r4 is torn-down\); .*give this release a label of its own/);
    expect(wakeUps()).toEqual([]);
    expect((await store.getPointer(key))?.migrationId).toBe(`${key}:r2`);
  });

  it('should start a new release after a rolled-back migration', async () => {
    await recorded(MigrationStatus.ROLLED_BACK);
    const response = await onFleetDeployEvent(event('Update', 'r3', { from: 'r2' }), deps(new FakeRouting(0)));
    expect(response.Data).toMatchObject({ Action: 'migration-recorded', OldRelease: 'r2', NewRelease: 'r3' });
    expect(commandInvokes()).toEqual([]);
  });

  it('fails while a migration is running, saying how to end it, and changes nothing', async () => {
    await recorded(MigrationStatus.BAKING);
    // The running migration carries traffic: its own message comes first, not the swap advice.
    const attempt = onFleetDeployEvent(event('Update', 'r3', { from: 'r2' }), deps(new FakeRouting(10)));
    await expect(attempt).rejects.toBeInstanceOf(DeployBlockedError);
    await expect(attempt).rejects.toThrow(
      new RegExp(`migration ${key}:r2 \\(release r1 → r2\\) is still baking; release r3 cannot start until it ends: .*\\{"command":"abort","migration":"${key}:r2"\\}`),
    );
    expect((await store.getPointer(key))?.newVersion).toBe('r2');
    expect(account.invocations).toEqual([]);
  });

  it('should tear down a completed migration (synchronously, first) once the sides are swapped, then record the next one', async () => {
    await recorded(MigrationStatus.COMPLETE);
    // Swapped: the fleet that serves is now the old side, so the new side reads 0 %.
    const response = await onFleetDeployEvent(event('Update', 'r3', { from: 'r2' }), deps(new FakeRouting(0)));
    expect(response.Data).toEqual({ Action: 'migration-recorded', MigrationId: `${key}:r3`, OldRelease: 'r2', NewRelease: 'r3' });
    expect(account.invocations.map((i) => [i.InvocationType, (i.payload as { command?: string; trigger?: string }).command ?? (i.payload as { trigger: string }).trigger])).toEqual([
      ['RequestResponse', 'teardown'],
      ['Event', 'deploy'],
    ]);
    expect(commandInvokes()[0]!.payload).toEqual({ command: 'teardown', reason: 'superseded by the deploy of release r3', migration: `${key}:r2` });
    expect(await store.getPointer(key)).toMatchObject({ migrationId: `${key}:r3`, oldVersion: 'r2', newVersion: 'r3' });
  });

  it('fails, telling to swap old and new, when the new side already carries traffic outside a migration', async () => {
    const routing = new FakeRouting(100);
    const attempt = onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(routing));
    await expect(attempt).rejects.toBeInstanceOf(DeployBlockedError);
    await expect(attempt).rejects.toThrow(/the new side already receives 100% of the traffic outside any running migration.*swap old and new in the migration's target, then deploy again/);
    expect(await store.getPointer(key)).toBeUndefined();
    expect(account.invocations).toEqual([]);
  });

  it('should refuse the next release after a completed migration whose sides were not swapped WITHOUT tearing it down', async () => {
    const pointer = await recorded(MigrationStatus.COMPLETE);
    // Not swapped: the new side still carries everything.
    await expect(onFleetDeployEvent(event('Update', 'r3', { from: 'r2' }), deps(new FakeRouting(100)))).rejects.toThrow(/swap old and new/);
    // The refused deploy changed nothing: the old fleet is still pinned, the pointer unchanged.
    expect(account.invocations).toEqual([]);
    expect(await store.getPointer(key)).toEqual(pointer);
  });

  it('should read the DNS weights through the real port and refuse when the new record has a weight', async () => {
    zone.records.push(weighted('blue', 0), weighted('green', 100));
    const records = cnameRecords();
    await expect(onFleetDeployEvent(event('Update', 'r2', { from: 'r1', records }), deps(dnsRouting(records), { route53 }))).rejects.toThrow(
      /already receives 100% of the traffic/,
    );
    expect(changeCalls()).toEqual([]);
  });

  it('fails with the pointer conflict, invoking nothing, when another deploy recorded first', async () => {
    const other: MigrationPointer = { migrationId: `${key}:r9`, oldVersion: 'r1', newVersion: 'r9', createdAtMs: NOW };
    // The other deploy's write lands between this one's read of the pointer and its write.
    const racing = {
      getPointer: async (k: string) => {
        const found = await store.getPointer(k);
        await store.putPointer(k, other, found?.migrationId);
        return found;
      },
      putPointer: store.putPointer.bind(store),
      load: store.load.bind(store),
    };
    const attempt = onFleetDeployEvent(event('Update', 'r2', { from: 'r1' }), deps(new FakeRouting(0), { store: racing }));
    await expect(attempt).rejects.toBeInstanceOf(PointerConflictError);
    await expect(attempt).rejects.toThrow(`the current migration of ${key} changed while recording a new one (expected none): another deploy is running`);
    expect(account.invocations).toEqual([]);
    expect(await store.getPointer(key)).toEqual(other);
  });
});

describe('fleet deploy trigger: Delete and bad properties', () => {
  it('should leave the routing, the pointer and the records alone on Delete', async () => {
    await recorded(MigrationStatus.BAKING);
    zone.records.push(weighted('blue', 90), weighted('green', 10));
    const routing = new FakeRouting(10);
    const response = await onFleetDeployEvent(event('Delete', 'r2', { records: cnameRecords() }), deps(routing, { route53 }));
    expect(response).toEqual({ PhysicalResourceId: key });
    expect(routing.reads).toBe(0);
    expect(r53Mock.calls()).toHaveLength(0);
    expect(account.invocations).toEqual([]);
    expect((await store.getPointer(key))?.migrationId).toBe(`${key}:r2`);
  });

  it('fails with a TypeError naming the property and showing the value', async () => {
    const base = { ServiceToken: 's', TargetKind: 'fleet', MigrationKey: 'shop', Release: 'r1' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, Release: undefined }, /resource property Release must be a non-empty string, got undefined/],
      [{ ...base, Release: '  ' }, /resource property Release must be a non-empty string, got " {2}"/],
      [{ ...base, MigrationKey: 42 }, /resource property MigrationKey must be a non-empty string, got 42/],
      [{ ...base, Records: { hostedZoneId: ZONE } }, /resource property Records must be a JSON string, got \{"hostedZoneId":"Z0123456789ABCDEFGHIJ"\}/],
      [{ ...base, Records: '{"hostedZoneId":' }, /resource property Records is not valid JSON/],
      [{ ...base, Records: JSON.stringify({ ...cnameRecords(), recordType: 'AAAA' }) }, /resource property Records must describe two weighted records, got .*"AAAA"/],
      // An A alias needs each side's load balancer zone.
      [{ ...base, Records: JSON.stringify({ ...aliasRecords(), new: { setIdentifier: 'green', dnsName: 'x' } }) }, /must describe two weighted records/],
    ];
    for (const [properties, message] of cases) {
      const attempt = onFleetDeployEvent(event('Update', 'r1', { properties }), deps(new FakeRouting(0), { route53 }));
      await expect(attempt).rejects.toBeInstanceOf(TypeError);
      await expect(attempt).rejects.toThrow(message);
    }
    expect(r53Mock.calls()).toHaveLength(0);
    expect(account.invocations).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Route 53 over a socket: the SDK's own retries

const XMLNS = 'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"';
const EMPTY_LIST = `<?xml version="1.0"?><ListResourceRecordSetsResponse ${XMLNS}><ResourceRecordSets></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>`;
const CHANGED = `<?xml version="1.0"?><ChangeResourceRecordSetsResponse ${XMLNS}><ChangeInfo><Id>/change/C2</Id><Status>PENDING</Status><SubmittedAt>2026-06-01T12:00:00.000Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`;
const EXISTS = `<?xml version="1.0"?><ErrorResponse ${XMLNS}><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>[Tried to create resource record set [name='api.example.com.', type='CNAME', set-identifier='green'] but it already exists]</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;

async function overSocket(context: TestContext, script: readonly Reply[]) {
  const server = await startFakeAws('query', script);
  const client = new Route53Client(clientConfig({ endpoint: server.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 3, requestTimeoutMs: 1_000 }));
  context.onTestFinished(async () => {
    client.destroy();
    await server.close();
  });
  return { server, client };
}

describe('fleet deploy trigger: Route 53 over a socket', () => {
  it('should create the records after a throttled attempt, retried by the SDK with the same batch', async (context) => {
    const { server, client } = await overSocket(context, [{ kind: 'ok', body: EMPTY_LIST }, { kind: 'throttle' }, { kind: 'ok', body: CHANGED }]);
    const response = await onFleetDeployEvent(event('Create', 'r1', { records: cnameRecords() }), deps(new FakeRouting(0), { route53: client }));
    expect(response.Data?.Action).toBe('routing-ready');
    expect(server.requests.map((r) => `${r.method} ${r.attempt}`)).toEqual(['GET attempt=1; max=3', 'POST attempt=1; max=3', 'POST attempt=2; max=3']);
    expect(server.requests[0]!.path).toBe(`/2013-04-01/hostedzone/${ZONE}/rrset?maxitems=100&name=api.example.com.&type=CNAME`);
    const [first, retry] = [server.requests[1]!.body, server.requests[2]!.body];
    expect(retry).toBe(first);
    expect(first.match(/<Action>CREATE<\/Action>/g)).toHaveLength(2);
    expect(first).not.toMatch(/UPSERT|DELETE/);
  });

  it('should surface an InvalidChangeBatch answer (a record created meanwhile) without retrying it', async (context) => {
    const { server, client } = await overSocket(context, [{ kind: 'ok', body: EMPTY_LIST }, { kind: 'ok', status: 400, body: EXISTS }]);
    const attempt = onFleetDeployEvent(event('Create', 'r1', { records: cnameRecords() }), deps(new FakeRouting(0), { route53: client }));
    await expect(attempt).rejects.toMatchObject({ name: 'InvalidChangeBatch' });
    expect(server.requests.map((r) => r.method)).toEqual(['GET', 'POST']);
  });
});

// ---------------------------------------------------------------------------------------------
// The handler entry file with a fleet target

describe('deploy-trigger handler with a load-balancer target', () => {
  const elbMock = mockClient(ElasticLoadBalancingV2Client);
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
    elbMock.reset();
  });
  afterAll(() => elbMock.restore());

  it('should read the listener through the target’s adapter and record the migration', async () => {
    process.env = {
      ...saved,
      // The stack's variables only: the migration's come with its resource's Settings.
      CUTOVER_TABLE_NAME: TABLE,
      CUTOVER_CONTROLLERS: JSON.stringify({ fleet: { functionName: 'cutover-controller' } }),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      POWERTOOLS_SERVICE_NAME: 'cutover-deploy-trigger',
    };
    vi.resetModules();
    elbMock.on(DescribeListenersCommand).resolves({
      Listeners: [{ ListenerArn: LISTENER, DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: OLD_TG, Weight: 1 }] } }] }],
    });
    const output = captureOutput();
    try {
      const { handler } = await import('../../lambda/handlers/deploy-trigger');
      // An ALB migration that pins nothing (the handler checks the settings as the controller reads them).
      const properties = { ServiceToken: 's', TargetKind: 'fleet', MigrationKey: key, Release: 'r2', Settings: { ...SETTINGS, CUTOVER_PINNED_CAPACITY: '0' } };
      const response = await handler(event('Update', 'r2', { from: 'r1', properties }));
      expect(response.Data).toEqual({ Action: 'migration-recorded', MigrationId: `${key}:r2`, OldRelease: 'r1', NewRelease: 'r2' });
      expect(elbMock.commandCalls(DescribeListenersCommand)[0]!.args[0].input).toEqual({ ListenerArns: [LISTENER] });
      expect(wakeUps()).toHaveLength(1);
      // The alias path was not taken.
      expect(account.count('GetAlias')).toBe(0);
      expect(output.records().some((r) => r.message === 'deploy trigger')).toBe(true);
    } finally {
      output.restore();
    }
  });
});
