/**
 * The controller's runtime on a fleet: weighted target groups behind one ALB (a listener's default
 * forward action) with the old side an ECS service. The real core and adapters, the table in
 * dynalite, ELBv2 / CloudWatch / ECS / Application Auto Scaling / EventBridge / SNS as small
 * stateful fakes behind aws-sdk-client-mock (a mocked call that fails is a call that failed after
 * the SDK's retries), a fake clock.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import { CloudWatchClient, DescribeAlarmsCommand, GetMetricDataCommand, type GetMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { DescribeServicesCommand, ECSClient, TagResourceCommand, UntagResourceCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import {
  DescribeListenersCommand,
  ElasticLoadBalancingV2Client,
  ModifyListenerCommand,
  type Action,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  ChangeResourceRecordSetsCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type Change,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ECS_TAGS } from '../../lambda/aws/capacity/ecs';
import { readControllerConfig, type ControllerConfig } from '../../lambda/aws/config';
import { ControllerRuntime } from '../../lambda/aws/controller-runtime';
import { DynamoDbStateStore, type MigrationPointer } from '../../lambda/aws/dynamodb-store';
import { createMetrics } from '../../lambda/aws/metrics';
import { MigrationStatus } from '../../lambda/core/model';
import type { PlanSpec } from '../../lambda/core/plan';
import type { ProbeHealth } from '../../lambda/core/ports';
import { throttled, timedOut } from './fake-account';
import { captureOutput, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-fleet-runtime-test';
const MIN = 60_000;
const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };
const PLAN: PlanSpec = { steps: [{ weight: 10, bakeMs: 10 * MIN }, { weight: 100, bakeMs: 2 * MIN }], soakMs: 2 * MIN, healthWindowMs: MIN, teardown: 'manual' };

const ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const LISTENER = `${ARN}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2`;
const OLD_TG = `${ARN}:targetgroup/shop-blue/73e2d6bc24d8a067`;
const NEW_TG = `${ARN}:targetgroup/shop-green/943f017f100becff`;
const ALB = 'app/shop/50dc6c495c0c9188';
const SERVICE_ARN = 'arn:aws:ecs:us-east-1:123456789012:service/prod/shop-blue';
const ALARM = 'shop-elb-5xx';

// ---------------------------------------------------------------------------------------------
// The account: stateful fakes behind class-level mocks (every client the runtime builds).

const elbMock = mockClient(ElasticLoadBalancingV2Client);
const cwMock = mockClient(CloudWatchClient);
const ecsMock = mockClient(ECSClient);
const aasMock = mockClient(ApplicationAutoScalingClient);
const ebMock = mockClient(EventBridgeClient);
const snsMock = mockClient(SNSClient);
const lambdaMock = mockClient(LambdaClient);
const r53Mock = mockClient(Route53Client);
const MOCKS = [elbMock, cwMock, ecsMock, aasMock, ebMock, snsMock, lambdaMock, r53Mock];

/** Write calls in the order they were made (failed ones too). */
let writes: string[];
let listener: { old: number; new: number };
/** One-shot fault of the next ModifyListener. */
let modifyFault: { kind: 'not-applied' | 'applied'; error: () => Error } | undefined;
let service: { desired: number; running: number; tags: Map<string, string> };
let scalable: { min: number; max: number };
/** Per query id (`old_requests`, `new_target4xx`, …): the value of every minute read. */
let metrics: Record<string, number>;
let metricInputs: GetMetricDataCommandInput[];
let detailTypes: string[];
/** The weighted CNAME records of a DNS migration, by SetIdentifier. */
let records: Map<string, ResourceRecordSet>;

function forwardAction(): Action {
  return { Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: OLD_TG, Weight: listener.old }, { TargetGroupArn: NEW_TG, Weight: listener.new }] } };
}

function install(): void {
  for (const mock of MOCKS) mock.reset();
  elbMock.on(DescribeListenersCommand).callsFake(() => ({ Listeners: [{ ListenerArn: LISTENER, Port: 443, Protocol: 'HTTPS', DefaultActions: [forwardAction()] }] }));
  elbMock.on(ModifyListenerCommand).callsFake((input: { ListenerArn: string; DefaultActions: Action[] }) => {
    writes.push('ModifyListener');
    const fault = modifyFault;
    modifyFault = undefined;
    if (fault?.kind === 'not-applied') throw fault.error();
    const groups = input.DefaultActions.find((a) => a.Type === 'forward')!.ForwardConfig!.TargetGroups!;
    listener = { old: groups.find((g) => g.TargetGroupArn === OLD_TG)!.Weight!, new: groups.find((g) => g.TargetGroupArn === NEW_TG)!.Weight! };
    if (fault) throw fault.error(); // applied, but the answer never came back
    return { Listeners: [{ ListenerArn: LISTENER, DefaultActions: input.DefaultActions }] };
  });
  ecsMock.on(DescribeServicesCommand).callsFake(() => ({
    services: [
      {
        serviceArn: SERVICE_ARN,
        serviceName: 'shop-blue',
        status: 'ACTIVE',
        schedulingStrategy: 'REPLICA',
        desiredCount: service.desired,
        runningCount: service.running,
        pendingCount: 0,
        deployments: [{ id: 'ecs-svc/1', status: 'PRIMARY', rolloutState: 'COMPLETED', desiredCount: service.desired, runningCount: service.running }],
        tags: [...service.tags].map(([key, value]) => ({ key, value })),
      },
    ],
    failures: [],
  }));
  ecsMock.on(TagResourceCommand).callsFake((input: { tags: { key: string; value: string }[] }) => {
    writes.push('TagResource');
    for (const tag of input.tags) service.tags.set(tag.key, tag.value);
    return {};
  });
  ecsMock.on(UntagResourceCommand).callsFake(() => {
    writes.push('UntagResource');
    return {};
  });
  ecsMock.on(UpdateServiceCommand).callsFake((input: { desiredCount: number }) => {
    writes.push('UpdateService');
    service.desired = input.desiredCount;
    return {};
  });
  aasMock.on(DescribeScalableTargetsCommand).callsFake(() => ({
    ScalableTargets: [{ ServiceNamespace: 'ecs', ResourceId: 'service/prod/shop-blue', ScalableDimension: 'ecs:service:DesiredCount', MinCapacity: scalable.min, MaxCapacity: scalable.max, RoleARN: 'arn:role', CreationTime: new Date(0) }],
  }));
  aasMock.on(RegisterScalableTargetCommand).callsFake((input: { MinCapacity?: number; MaxCapacity?: number }) => {
    writes.push('RegisterScalableTarget');
    scalable = { min: input.MinCapacity ?? scalable.min, max: input.MaxCapacity ?? scalable.max };
    service.desired = Math.min(Math.max(service.desired, scalable.min), scalable.max);
    return {};
  });
  cwMock.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => {
    metricInputs.push(input);
    return {
      MetricDataResults: input.MetricDataQueries!.map((q) => {
        const value = metrics[q.Id!];
        return { Id: q.Id, StatusCode: 'Complete', Values: value === undefined ? [] : [value], Timestamps: value === undefined ? [] : [input.StartTime] };
      }),
    };
  });
  cwMock.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [{ AlarmName: ALARM, StateValue: 'OK', StateReason: 'fine', StateTransitionedTimestamp: new Date(T0 - 3_600_000) }] });
  ebMock.on(PutEventsCommand).callsFake((input: { Entries: { DetailType?: string }[] }) => {
    detailTypes.push(...input.Entries.map((e) => e.DetailType ?? ''));
    return { FailedEntryCount: 0, Entries: input.Entries.map((_, i) => ({ EventId: `ev-${i}` })) };
  });
  snsMock.on(PublishCommand).resolves({ MessageId: 'msg-1' });
  r53Mock.on(ListResourceRecordSetsCommand).callsFake(() => ({ ResourceRecordSets: structuredClone([...records.values()]), IsTruncated: false, MaxItems: 300 }));
  r53Mock.on(ChangeResourceRecordSetsCommand).callsFake((input: { ChangeBatch: { Changes: Change[] } }) => {
    writes.push('ChangeResourceRecordSets');
    for (const change of input.ChangeBatch.Changes) {
      const record = change.ResourceRecordSet!;
      if (change.Action === 'DELETE') records.delete(record.SetIdentifier!);
      else records.set(record.SetIdentifier!, structuredClone(record));
    }
    return { ChangeInfo: { Id: '/change/C1', Status: 'INSYNC', SubmittedAt: new Date(T0) } };
  });
}

// ---------------------------------------------------------------------------------------------
// One migration world per test

const PROBE_OLD: ProbeHealth = { requests: 100, errors4xx: 10, errors5xx: 0 };
const PROBE_NEW: ProbeHealth = { requests: 100, errors4xx: 100, errors5xx: 0 };
/** Each minute the ALB counts, the probe's own requests (above) included. */
const ALB_MINUTE = {
  old_requests: 2000,
  old_target4xx: 40,
  old_target5xx: 0,
  old_connectionErrors: 0,
  old_latencyP99: 0.05,
  new_requests: 600,
  new_target4xx: 105,
  new_target5xx: 0,
  new_connectionErrors: 0,
  new_latencyP99: 0.06,
};

let dynamo: LocalDynamo;
let n = 0;
let config: ControllerConfig;
let store: DynamoDbStateStore;
let clock: { now: number };
let output: ReturnType<typeof captureOutput> | undefined;
let runtime: ControllerRuntime;
let pointer: MigrationPointer;
/** Whether the probe results carry the probe's own counts. */
let probeCounts: boolean;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
});
afterAll(async () => {
  for (const mock of MOCKS) mock.restore();
  await dynamo.close();
});

beforeEach(async () => {
  writes = [];
  listener = { old: 100, new: 0 };
  modifyFault = undefined;
  service = { desired: 5, running: 5, tags: new Map() };
  scalable = { min: 2, max: 10 };
  metrics = { ...ALB_MINUTE };
  metricInputs = [];
  detailTypes = [];
  probeCounts = true;
  const cname = (id: string, weight: number): ResourceRecordSet => ({ Name: 'api.example.com.', Type: 'CNAME', SetIdentifier: id, Weight: weight, TTL: 60, ResourceRecords: [{ Value: `${id}.elb.amazonaws.com` }] });
  records = new Map([
    ['blue', cname('blue', 100)],
    ['green', cname('green', 0)],
  ]);
  install();
  await makeWorld({});
});

async function makeWorld(env: Record<string, string>): Promise<void> {
  output?.restore();
  const key = `shop-${++n}`;
  config = readControllerConfig({
    CUTOVER_TABLE_NAME: TABLE,
    CUTOVER_TARGET: JSON.stringify({ kind: 'load-balancer', loadBalancer: ALB, listenerArn: LISTENER, oldTargetGroupArn: OLD_TG, newTargetGroupArn: NEW_TG }),
    CUTOVER_CAPACITY: JSON.stringify({ kind: 'ecs-service', cluster: 'prod', service: 'shop-blue' }),
    CUTOVER_MIGRATION_KEY: key,
    CUTOVER_PLAN: JSON.stringify(PLAN),
    CUTOVER_JUDGE: '{}',
    CUTOVER_ALARM_NAMES: JSON.stringify([ALARM]),
    CUTOVER_PINNED_CAPACITY: 'auto',
    CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
    CUTOVER_EVENT_BUS_NAME: 'cutover-bus',
    CUTOVER_APP_METRICS_NAMESPACE: 'Shop',
    ...env,
  });
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, onWarning: () => {} });
  clock = { now: T0 };
  output = captureOutput();
  // The adapters are the ones the runtime builds from CUTOVER_TARGET / CUTOVER_CAPACITY.
  runtime = new ControllerRuntime({
    config,
    clients: dynamo.clients,
    store,
    logger: new Logger({ serviceName: 'cutover-controller' }),
    metrics: createMetrics('cutover-controller', 'Cutover'),
    now: () => clock.now,
  });
  // What the fleet deploy trigger records: release r1 → r2, the pin left to the gate ('auto').
  pointer = { migrationId: `${key}:r2`, oldVersion: 'r1', newVersion: 'r2', createdAtMs: T0, spec: { plan: PLAN, judge: {} } };
  await store.putPointer(key, pointer, undefined);
}
afterEach(() => {
  output?.restore();
  output = undefined;
});

/** What the probe function records every minute for both sides. */
async function probesOk(): Promise<void> {
  for (const side of ['old', 'new'] as const) {
    await store.putProbeResult(pointer.migrationId, {
      side,
      verdict: 'ok',
      atMs: clock.now - 1_000,
      summary: 'responses aligned',
      findings: 0,
      ...(probeCounts ? { health: side === 'old' ? PROBE_OLD : PROBE_NEW } : {}),
    });
  }
}

async function deployTick() {
  await probesOk();
  return runtime.handle({ trigger: 'deploy', migrationId: pointer.migrationId });
}

async function minute() {
  clock.now += MIN;
  await probesOk();
  return runtime.handle(SCHEDULED);
}

const record = async () => (await store.load(pointer.migrationId))!.record;
const modifyInputs = () => elbMock.commandCalls(ModifyListenerCommand).map((c) => c.args[0].input);
const weightsWritten = () =>
  modifyInputs().map((input) => {
    const groups = input.DefaultActions!.find((a) => a.Type === 'forward')!.ForwardConfig!.TargetGroups!;
    return Object.fromEntries(groups.map((g) => [g.TargetGroupArn === OLD_TG ? 'old' : 'new', g.Weight]));
  });

/** Deploy tick (gate, first write) and the tick that confirms it: baking at 10 %. */
async function toFirstStep(): Promise<void> {
  expect(await deployTick()).toMatchObject({ migrationId: pointer.migrationId, status: MigrationStatus.SHIFTING, weight: 0, action: 'advance', code: 'gate-passed' });
  expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, step: 0 });
}

// ---------------------------------------------------------------------------------------------

describe('fleet runtime: weighted target groups, the old side an ECS service', () => {
  it('should pin the ECS service at its size at the gate, then write the first step’s weights to the listener', async () => {
    const gate = await deployTick();
    expect(gate).toMatchObject({ status: MigrationStatus.SHIFTING, weight: 0, action: 'advance', code: 'gate-passed' });
    // The pin: 'auto' sized it at the service's desired count, 5, held by the scalable target's
    // MinCapacity (the figures from before tagged first); the desired count needed no change.
    expect(aasMock.commandCalls(RegisterScalableTargetCommand).map((c) => c.args[0].input)).toEqual([
      { ServiceNamespace: 'ecs', ResourceId: 'service/prod/shop-blue', ScalableDimension: 'ecs:service:DesiredCount', MinCapacity: 5 },
    ]);
    expect(Object.fromEntries(service.tags)).toMatchObject({
      [ECS_TAGS.pin]: '5',
      [ECS_TAGS.desiredCount]: '5',
      [ECS_TAGS.minCapacity]: '2',
      [ECS_TAGS.maxCapacity]: '10',
    });
    // Pinned before any traffic moves; the listener written once, with old 90 and new 10.
    expect(writes).toEqual(['TagResource', 'RegisterScalableTarget', 'ModifyListener']);
    expect(modifyInputs()[0]!.ListenerArn).toBe(LISTENER);
    expect(weightsWritten()).toEqual([{ old: 90, new: 10 }]);
    expect(listener).toEqual({ old: 90, new: 10 });
    const gated = await record();
    expect(gated).toMatchObject({ pinnedCapacity: 5, metadata: { target: 'load-balancer', loadBalancer: ALB, oldRelease: 'r1', newRelease: 'r2' } });
    // A write to a listener counts once the next read still finds it.
    expect(gated.shift).toMatchObject({ kind: 'advance', weight: 10 });

    expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, step: 0 });
    expect(modifyInputs()).toHaveLength(1);
    expect(detailTypes).toEqual(expect.arrayContaining(['Migration Started', 'Migration Advanced']));
    expect(lambdaMock.calls()).toHaveLength(0);
  });

  it('should read both target groups of the ALB and subtract the probe’s own requests from each side', async () => {
    await toFirstStep();
    const bakeStart = clock.now;
    // Two ticks find no whole, ingested minute yet (no call); the third reads the step's first minute.
    await minute();
    await minute();
    expect(metricInputs).toHaveLength(0);
    expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10 });
    expect(metricInputs).toHaveLength(1);
    const input = metricInputs[0]!;
    expect([input.StartTime, input.EndTime]).toEqual([new Date(bakeStart), new Date(bakeStart + MIN)]);
    const dimensions = (id: string) => input.MetricDataQueries!.find((q) => q.Id === id)!.MetricStat!.Metric!.Dimensions;
    expect(dimensions('new_requests')).toEqual([
      { Name: 'TargetGroup', Value: 'targetgroup/shop-green/943f017f100becff' },
      { Name: 'LoadBalancer', Value: ALB },
    ]);
    expect(dimensions('old_requests')).toEqual([
      { Name: 'TargetGroup', Value: 'targetgroup/shop-blue/73e2d6bc24d8a067' },
      { Name: 'LoadBalancer', Value: ALB },
    ]);
    // One probe run per side was stamped in that minute: its requests and 4XX are not the users'.
    const { stepTotals } = await record();
    expect(stepTotals.new).toMatchObject({ requests: 600 - 100, errors4xx: 105 - 100, errors5xx: 0 });
    expect(stepTotals.old).toMatchObject({ requests: 2000 - 100, errors4xx: 40 - 10, errors5xx: 0 });
    expect(weightsWritten()).toEqual([{ old: 90, new: 10 }]);
  });

  it('should judge the probe’s deliberate 4XX as the new side’s own when the results carry no counts (the contrast)', async () => {
    probeCounts = false;
    await toFirstStep();
    await minute();
    await minute();
    // 105 4XX in 600 requests against 40 in 2000: the first judged window rolls back.
    expect(await minute()).toMatchObject({ action: 'rollback', code: 'error-rate-4xx', status: MigrationStatus.SHIFTING });
    expect((await record()).stepTotals.new).toMatchObject({ requests: 600, errors4xx: 105 });
    expect(listener).toEqual({ old: 100, new: 0 });
    // The next tick reads the rollback back.
    expect(await minute()).toMatchObject({ status: MigrationStatus.ROLLED_BACK, weight: 0 });
    expect(weightsWritten()).toEqual([
      { old: 90, new: 10 },
      { old: 100, new: 0 },
    ]);
    // The old fleet stays pinned after a rollback: it takes everything now.
    expect(scalable.min).toBe(5);
    expect(writes).not.toContain('UntagResource');
  });

  it('should settle a listener write that throttled on the next tick, writing it then, with one step only', async () => {
    modifyFault = { kind: 'not-applied', error: () => throttled() };
    await expect(deployTick()).rejects.toThrow(/setting the new side's weight to 10% \(gate-passed\) failed: ThrottlingException: Rate exceeded; the change stays recorded and the next tick settles it/);
    // Recorded before it was tried, and still recorded; the listener did not move.
    expect(await record()).toMatchObject({ status: MigrationStatus.SHIFTING, weight: 0, shift: { kind: 'advance', weight: 10, fromWeight: 0 } });
    expect(listener).toEqual({ old: 100, new: 0 });

    // The next tick finds the listener untouched (same revision) and makes the change.
    expect(await minute()).toMatchObject({ status: MigrationStatus.SHIFTING, weight: 0 });
    expect(listener).toEqual({ old: 90, new: 10 });
    // The one after reads it back and counts it.
    expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, step: 0 });
    expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, step: 0 });
    expect(weightsWritten()).toEqual([
      { old: 90, new: 10 },
      { old: 90, new: 10 },
    ]);
    const log = await store.events(pointer.migrationId);
    expect(log.filter((e) => e.type === 'advanced')).toHaveLength(1);
    expect(log.filter((e) => e.type === 'shift-failed')).toHaveLength(1);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
  });

  it('should settle a listener write that timed out after ELB applied it by reading it back, without writing again', async () => {
    modifyFault = { kind: 'applied', error: timedOut };
    await expect(deployTick()).rejects.toThrow(/setting the new side's weight to 10% \(gate-passed\) failed: TimeoutError/);
    expect(listener).toEqual({ old: 90, new: 10 });
    expect(await record()).toMatchObject({ status: MigrationStatus.SHIFTING, weight: 0, shift: { weight: 10 } });

    // The next tick reads the listener: the change is there, so it is in effect. No second write.
    expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, step: 0 });
    expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, step: 0 });
    expect(modifyInputs()).toHaveLength(1);
    const log = await store.events(pointer.migrationId);
    expect(log.filter((e) => e.type === 'advanced')).toHaveLength(1);
    // The pin was made once, at the gate.
    expect(writes.filter((w) => w === 'RegisterScalableTarget')).toHaveLength(1);
  });

  it('should read each side’s own load balancer for a DNS migration, with capacity not managed', async () => {
    await makeWorld({
      CUTOVER_TARGET: JSON.stringify({
        kind: 'dns',
        hostedZoneId: 'Z0123456789ABCDEFGHIJ',
        recordName: 'api.example.com',
        recordType: 'CNAME',
        oldSetIdentifier: 'blue',
        newSetIdentifier: 'green',
        oldLoadBalancer: 'app/shop-2019/1a2b3c4d5e6f7a8b',
        newLoadBalancer: 'app/shop-2026/8b7a6f5e4d3c2b1a',
      }),
      CUTOVER_CAPACITY: '{"kind":"none"}',
      CUTOVER_PINNED_CAPACITY: '0',
    });
    metrics = { old_requests: 2000, old_target4xx: 40, old_elb5xx: 0, new_requests: 600, new_target4xx: 105, new_elb5xx: 0 };
    // A Route 53 change INSYNC at once is in effect at once.
    expect(await deployTick()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, code: 'gate-passed' });
    expect(records.get('green')?.Weight).toBe(10);
    for (let i = 0; i < 3; i++) expect(await minute()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10 });
    const input = metricInputs[0]!;
    const query = (id: string) => input.MetricDataQueries!.find((q) => q.Id === id)?.MetricStat?.Metric;
    expect(query('new_requests')?.Dimensions).toEqual([{ Name: 'LoadBalancer', Value: 'app/shop-2026/8b7a6f5e4d3c2b1a' }]);
    expect(query('old_requests')?.Dimensions).toEqual([{ Name: 'LoadBalancer', Value: 'app/shop-2019/1a2b3c4d5e6f7a8b' }]);
    // A whole ALB per side: the ALB's own 5XX, not the target connection errors of a group.
    expect(query('new_elb5xx')?.MetricName).toBe('HTTPCode_ELB_5XX_Count');
    expect(query('new_connectionErrors')).toBeUndefined();
    expect((await record()).stepTotals.new).toMatchObject({ requests: 500, errors4xx: 5 });
    // Nothing pinned, nothing touched on any fleet.
    expect(writes).toEqual(['ChangeResourceRecordSets']);
    expect(ecsMock.calls()).toHaveLength(0);
  });

  it('should pin the fleet the deploy recorded, not the one the configuration names now (the sides were swapped since)', async () => {
    // The controller's configuration now names shop-green as the old fleet (the user swapped the
    // sides for the next release); this migration was deployed with shop-blue as its old side.
    await makeWorld({ CUTOVER_CAPACITY: JSON.stringify({ kind: 'ecs-service', cluster: 'prod', service: 'shop-green' }) });
    const recorded: MigrationPointer = { ...pointer, spec: { plan: PLAN, judge: {}, capacity: { kind: 'ecs-service', cluster: 'prod', service: 'shop-blue' } } };
    await store.putPointer(config.aliasKey, recorded, pointer.migrationId);
    pointer = recorded;
    await deployTick();
    const pinned = aasMock.commandCalls(RegisterScalableTargetCommand).map((c) => c.args[0].input.ResourceId);
    expect(pinned.length).toBeGreaterThan(0);
    expect(new Set(pinned)).toEqual(new Set(['service/prod/shop-blue']));
  });
});
