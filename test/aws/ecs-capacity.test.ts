import {
  ApplicationAutoScalingClient,
  ConcurrentUpdateException,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
  ValidationException,
} from '@aws-sdk/client-application-auto-scaling';
import {
  ClusterNotFoundException,
  DescribeServicesCommand,
  ECSClient,
  InvalidParameterException,
  ServiceNotFoundException,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
  type Deployment,
} from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { ECS_PINNED_BY_TAG, ECS_TAGS, EcsServiceCapacity } from '../../lambda/aws/capacity/ecs';
import { CapacityPinError, CapacityTargetNotFoundError } from '../../lambda/aws/capacity/shared';
import { clientConfig, describeError } from '../../lambda/aws/clients';
import { startFakeAws, type Reply } from './fake-aws';
import { TEST_CREDENTIALS } from './helpers';

// ---------------------------------------------------------------------------------------------
// An in-memory ECS service and its scalable target behind mocked clients (these instances only).
// ---------------------------------------------------------------------------------------------

const RESOURCE_ID = 'service/prod/api-old';
const SERVICE_ARN = 'arn:aws:ecs:us-east-1:123456789012:service/prod/api-old';

interface FakeService {
  status: string;
  desired: number;
  running: number;
  pending: number;
  deployments: Deployment[];
  tags: Map<string, string>;
  arn: string;
  daemon?: boolean;
}
interface FakeTarget {
  min: number;
  max: number;
}

const ecs = new ECSClient({ region: 'us-east-1' });
const aas = new ApplicationAutoScalingClient({ region: 'us-east-1' });
const ecsMock = mockClient(ecs);
const aasMock = mockClient(aas);
let service: FakeService | undefined;
let target: FakeTarget | undefined;
const failures = new Map<string, Error[]>();

function fail(command: string, error: Error): void {
  failures.set(command, [...(failures.get(command) ?? []), error]);
}
function injected(command: string): void {
  if (!command.startsWith('Describe')) log.push(command);
  const error = failures.get(command)?.shift();
  if (error) throw error;
}
const steady = (count: number): Deployment[] => [{ id: 'ecs-svc/1', status: 'PRIMARY', rolloutState: 'COMPLETED', desiredCount: count, runningCount: count }];

function makeService(figures: Partial<FakeService> = {}): FakeService {
  return { status: 'ACTIVE', desired: 4, running: 4, pending: 0, deployments: steady(4), tags: new Map(), arn: SERVICE_ARN, ...figures };
}
/** Tasks start: running catches up with desired. */
function settle(): void {
  Object.assign(service!, { running: service!.desired, pending: 0, deployments: steady(service!.desired) });
}

/** Write calls to either service, in the order they were sent (failed ones too). */
const log: string[] = [];
function writes(): string[] {
  return [...log];
}
function resetHistory(): void {
  ecsMock.resetHistory();
  aasMock.resetHistory();
  log.length = 0;
}
const tags = () => Object.fromEntries(service!.tags);

beforeEach(() => {
  service = makeService();
  target = { min: 2, max: 10 };
  failures.clear();
  log.length = 0;
  ecsMock.on(DescribeServicesCommand).callsFake((input: { cluster: string; services: string[]; include?: string[] }) => {
    injected('DescribeServices');
    if (input.cluster !== 'prod') throw new ClusterNotFoundException({ message: 'Cluster not found.', $metadata: {} });
    if (!service || input.services[0] !== 'api-old') return { services: [], failures: [{ arn: SERVICE_ARN, reason: 'MISSING' }] };
    return {
      services: [
        {
          serviceArn: service.arn,
          serviceName: 'api-old',
          status: service.status,
          schedulingStrategy: service.daemon ? 'DAEMON' : 'REPLICA',
          desiredCount: service.desired,
          runningCount: service.running,
          pendingCount: service.pending,
          deployments: service.deployments,
          ...(input.include?.includes('TAGS') ? { tags: [...service.tags].map(([key, value]) => ({ key, value })) } : {}),
        },
      ],
      failures: [],
    };
  });
  ecsMock.on(TagResourceCommand).callsFake((input: { resourceArn: string; tags: { key: string; value: string }[] }) => {
    injected('TagResource');
    if (!service?.arn.includes('/prod/')) throw new InvalidParameterException({ message: 'Long arn format must be used for tagging operations', $metadata: {} });
    for (const tag of input.tags) service.tags.set(tag.key, tag.value);
    return {};
  });
  ecsMock.on(UntagResourceCommand).callsFake((input: { tagKeys: string[] }) => {
    injected('UntagResource');
    for (const key of input.tagKeys) service?.tags.delete(key);
    return {};
  });
  ecsMock.on(UpdateServiceCommand).callsFake((input: { desiredCount: number }) => {
    injected('UpdateService');
    if (!service) throw new ServiceNotFoundException({ message: 'Service not found.', $metadata: {} });
    service.desired = input.desiredCount;
    return { service: { serviceArn: service.arn } };
  });
  aasMock.on(DescribeScalableTargetsCommand).callsFake(() => {
    injected('DescribeScalableTargets');
    if (!target) return { ScalableTargets: [] };
    return {
      ScalableTargets: [
        { ServiceNamespace: 'ecs', ResourceId: RESOURCE_ID, ScalableDimension: 'ecs:service:DesiredCount', MinCapacity: target.min, MaxCapacity: target.max, RoleARN: 'arn:role', CreationTime: new Date(0) },
      ],
    };
  });
  aasMock.on(RegisterScalableTargetCommand).callsFake((input: { MinCapacity?: number; MaxCapacity?: number }) => {
    injected('RegisterScalableTarget');
    if (!target) throw new ValidationException({ message: 'MinCapacity and MaxCapacity are required to register a new target', $metadata: {} });
    const min = input.MinCapacity ?? target.min;
    const max = input.MaxCapacity ?? target.max;
    if (min > max) throw new ValidationException({ message: `Minimum capacity ${min} cannot be greater than maximum capacity ${max}`, $metadata: {} });
    target = { min, max };
    // Application Auto Scaling moves the current capacity into the new range.
    if (service) service.desired = Math.min(Math.max(service.desired, min), max);
    return { ScalableTargetARN: 'arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/abc' };
  });
});

afterEach(() => {
  ecsMock.reset();
  aasMock.reset();
});

const capacity = (extra: { allowRaisingMaxCapacity?: boolean; cluster?: string; service?: string } = {}) =>
  new EcsServiceCapacity({ ecs, applicationAutoScaling: aas, cluster: 'prod', service: 'api-old', ...extra });

describe('EcsServiceCapacity: read', () => {
  it('should report runningCount, and the service ready when it runs its desired count on a steady deployment', async () => {
    expect(await capacity().read()).toEqual({ current: 4, ready: true, desired: 4, detail: '4 running of 4 desired; scalable target min 2, max 10' });
    expect(ecsMock.commandCalls(DescribeServicesCommand)[0]!.args[0].input).toEqual({ cluster: 'prod', services: ['api-old'], include: ['TAGS'] });
    expect(aasMock.commandCalls(DescribeScalableTargetsCommand)[0]!.args[0].input).toEqual({
      ServiceNamespace: 'ecs',
      ResourceIds: [RESOURCE_ID],
      ScalableDimension: 'ecs:service:DesiredCount',
    });
  });

  it('should not count a service ready while a deployment is in progress, and say so', async () => {
    service!.deployments = [
      { id: 'ecs-svc/2', status: 'PRIMARY', rolloutState: 'IN_PROGRESS', rolloutStateReason: 'ECS deployment ecs-svc/2 in progress.' },
      { id: 'ecs-svc/1', status: 'ACTIVE', rolloutState: 'COMPLETED' },
    ];
    Object.assign(service!, { running: 3, pending: 1 });
    const status = await capacity().read();
    expect(status).toMatchObject({ current: 3, ready: false });
    expect(status.detail).toBe(
      '3 running of 4 desired (1 pending); scalable target min 2, max 10; primary deployment IN_PROGRESS: ECS deployment ecs-svc/2 in progress.; 1 older deployment still active (a deployment in progress)',
    );
    service!.deployments = [{ id: 'ecs-svc/2', status: 'PRIMARY', rolloutState: 'FAILED', rolloutStateReason: 'circuit breaker' }];
    expect((await capacity().read()).detail).toMatch(/primary deployment FAILED: circuit breaker/);
    Object.assign(service!, { running: 4, pending: 0 });
    service!.deployments = [{ id: 'ecs-svc/2', status: 'PRIMARY', rolloutState: 'COMPLETED' }, { id: 'ecs-svc/1', status: 'INACTIVE' }];
    expect(await capacity().read()).toMatchObject({ current: 4, ready: true });
  });

  it('fails when the service or its cluster does not exist, never reading zeros the core would pin at', async () => {
    service = undefined;
    await expect(capacity().read()).rejects.toThrow(CapacityTargetNotFoundError);
    await expect(capacity().read()).rejects.toThrow(/ECS service service\/prod\/api-old does not exist .*DescribeServices: MISSING/);
    await expect(capacity({ cluster: 'staging' }).read()).rejects.toThrow(/service\/staging\/api-old does not exist .*ClusterNotFoundException/);
    service = makeService({ status: 'INACTIVE' });
    await expect(capacity().read()).rejects.toThrow(/its status is INACTIVE/);
  });

  it('should take names or ARNs, and fail on bad props with the bad value', async () => {
    await capacity({ cluster: 'arn:aws:ecs:us-east-1:123456789012:cluster/prod', service: SERVICE_ARN }).read();
    expect(ecsMock.commandCalls(DescribeServicesCommand)[0]!.args[0].input).toMatchObject({ cluster: 'prod', services: ['api-old'] });
    expect(() => capacity({ cluster: 'prod cluster' })).toThrow(/cluster must be an ECS cluster name of 1–255 letters.*got "prod cluster"/);
    expect(() => capacity({ service: '' })).toThrow(/service must be an ECS service name.*got ""/);
    expect(() => capacity({ service: 'arn:aws:ecs:us-east-1:123456789012:service/staging/api-old' })).toThrow(/belongs to cluster "staging", not to cluster "prod"/);
    await expect(capacity().pin(-1)).rejects.toThrow(/whole number ≥ 1, got -1/);
    await expect(capacity().restore(Number.NaN)).rejects.toThrow(/got null/);
  });
});

describe('EcsServiceCapacity: pin', () => {
  it('should tag the originals on the service first, then raise the scalable target MinCapacity', async () => {
    const status = await capacity().pin(6);
    expect(writes()).toEqual(['TagResource', 'RegisterScalableTarget', 'UpdateService']);
    expect(ecsMock.commandCalls(TagResourceCommand)[0]!.args[0].input.resourceArn).toBe(SERVICE_ARN);
    expect(tags()).toEqual({
      [ECS_TAGS.pin]: '6',
      [ECS_TAGS.desiredCount]: '4',
      [ECS_TAGS.minCapacity]: '2',
      [ECS_TAGS.maxCapacity]: '10',
      [ECS_PINNED_BY_TAG]: 'scalable-target',
    });
    expect(aasMock.commandCalls(RegisterScalableTargetCommand)[0]!.args[0].input).toEqual({
      ServiceNamespace: 'ecs',
      ResourceId: RESOURCE_ID,
      ScalableDimension: 'ecs:service:DesiredCount',
      MinCapacity: 6,
    });
    expect(target).toEqual({ min: 6, max: 10 });
    expect(service!.desired).toBe(6);
    expect(status).toMatchObject({ current: 4, pinned: 6, ready: false });
    settle();
    expect(await capacity().read()).toEqual({ current: 6, pinned: 6, ready: true, desired: 6, detail: '6 running of 6 desired; scalable target min 6, max 10' });
  });

  it('should be idempotent: a second pin or a restore of a held pin writes nothing', async () => {
    await capacity().pin(4);
    resetHistory();
    expect(await capacity().pin(4)).toMatchObject({ current: 4, pinned: 4, ready: true });
    expect(await capacity().restore(4)).toMatchObject({ current: 4, pinned: 4, ready: true });
    expect(writes()).toEqual([]);
  });

  it('should pin by desiredCount when the service has no scalable target, and record that', async () => {
    target = undefined;
    service = makeService({ desired: 3, running: 3, deployments: steady(3) });
    const status = await capacity().pin(5);
    expect(writes()).toEqual(['TagResource', 'UpdateService']);
    expect(ecsMock.commandCalls(UpdateServiceCommand)[0]!.args[0].input).toEqual({ cluster: 'prod', service: 'api-old', desiredCount: 5 });
    expect(tags()).toEqual({ [ECS_TAGS.pin]: '5', [ECS_TAGS.desiredCount]: '3', [ECS_PINNED_BY_TAG]: 'desired-count' });
    expect(status).toEqual({ current: 3, pinned: 5, ready: false, desired: 5, detail: '3 running of 5 desired; no scalable target' });
  });

  it('should switch to the scalable target someone registered after a desired-count pin', async () => {
    target = undefined;
    await capacity().pin(4);
    target = { min: 1, max: 8 };
    const status = await capacity().read();
    expect(status).toMatchObject({ current: 4, pinned: 4, ready: false });
    expect(status.detail).toMatch(/MinCapacity 1 below the pin of 4/);
    resetHistory();
    await capacity().restore(4);
    expect(writes()).toEqual(['TagResource', 'RegisterScalableTarget']);
    expect(tags()).toMatchObject({ [ECS_TAGS.minCapacity]: '1', [ECS_TAGS.maxCapacity]: '8', [ECS_PINNED_BY_TAG]: 'scalable-target', [ECS_TAGS.desiredCount]: '4' });
    expect(target).toEqual({ min: 4, max: 8 });
  });

  it('fails when MaxCapacity is below the pin, saying how to fix it, and writes nothing', async () => {
    target = { min: 1, max: 3 };
    const error = await capacity().pin(4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CapacityPinError);
    expect(describeError(error)).toMatch(/MaxCapacity 3, below the pin of 4 tasks.*register-scalable-target .*--max-capacity 4.*allowRaisingMaxCapacity: true/);
    expect(writes()).toEqual([]);
  });

  it('should raise MaxCapacity when allowed, and put it back at release', async () => {
    target = { min: 1, max: 3 };
    service = makeService({ desired: 3, running: 3, deployments: steady(3) });
    await capacity({ allowRaisingMaxCapacity: true }).pin(4);
    expect(aasMock.commandCalls(RegisterScalableTargetCommand)[0]!.args[0].input).toMatchObject({ MinCapacity: 4, MaxCapacity: 4 });
    const released = await capacity().release();
    expect(target).toEqual({ min: 1, max: 3 });
    expect(released.detail).toMatch(/MinCapacity 4 → 1; MaxCapacity 4 → 3/);
  });

  it('fails on a short-ARN service that cannot be tagged, with the fix', async () => {
    service = makeService({ arn: 'arn:aws:ecs:us-east-1:123456789012:service/api-old' });
    await expect(capacity().pin(4)).rejects.toThrow(/has a short ARN and cannot be tagged.*serviceLongArnFormat/);
    expect(target).toEqual({ min: 2, max: 10 });
  });

  it('fails on a service being deleted, or one that vanishes between the read and the update', async () => {
    service = makeService({ status: 'DRAINING' });
    await expect(capacity().pin(4)).rejects.toThrow(/is DRAINING: it cannot hold the old fleet/);
    service = makeService({ daemon: true });
    await expect(capacity().pin(4)).rejects.toThrow(/DAEMON scheduling strategy .*pin the capacity of its cluster instead/);
    target = undefined;
    service = makeService({ desired: 1 });
    fail('UpdateService', new ServiceNotFoundException({ message: 'Service not found.', $metadata: {} }));
    await expect(capacity().pin(4)).rejects.toThrow(/does not exist .*ServiceNotFoundException/);
  });
});

describe('EcsServiceCapacity: partial failures and concurrent changes', () => {
  it('should complete a pin whose RegisterScalableTarget failed after the tags were written', async () => {
    service = makeService({ desired: 6, running: 6, deployments: steady(6) });
    fail('RegisterScalableTarget', new ConcurrentUpdateException({ message: 'Concurrent modification', $metadata: {} }));
    await expect(capacity().pin(6)).rejects.toThrow(/Concurrent modification/);
    expect(target).toEqual({ min: 2, max: 10 });
    // After a cold start: pinned but not held, and read says so.
    const status = await capacity().read();
    expect(status).toMatchObject({ current: 6, pinned: 6, ready: false });
    expect(status.detail).toMatch(/MinCapacity 2 below the pin of 6 \(an interrupted pin, or changed outside Cutover\): restore puts it back/);
    resetHistory();
    await capacity().restore(6);
    expect(writes()).toEqual(['RegisterScalableTarget']);
    expect(target).toEqual({ min: 6, max: 10 });
    expect(tags()[ECS_TAGS.minCapacity]).toBe('2');
  });

  it('should put back a MinCapacity and desiredCount someone else lowered while pinned', async () => {
    await capacity().pin(4);
    target!.min = 1;
    Object.assign(service!, { desired: 2, running: 2 });
    const status = await capacity().read();
    expect(status).toMatchObject({ current: 2, pinned: 4, ready: false });
    expect(status.detail).toMatch(/MinCapacity 1 below the pin of 4.*desiredCount 2 below the pin 4: restore raises it/);
    resetHistory();
    await capacity().restore(4);
    expect(writes()).toEqual(['RegisterScalableTarget', 'UpdateService']);
    expect(target!.min).toBe(4);
    expect(service!.desired).toBe(4);
    expect(tags()[ECS_TAGS.minCapacity]).toBe('2');
  });

  it('fails on tags it cannot read back, without guessing the originals', async () => {
    service!.tags = new Map([
      [ECS_TAGS.pin, '4'],
      [ECS_TAGS.desiredCount, '4'],
      [ECS_TAGS.minCapacity, '2'],
    ]);
    await expect(capacity().release()).rejects.toThrow(/has only one of cutover:original-min-capacity and cutover:original-max-capacity/);
    service!.tags.set(ECS_TAGS.maxCapacity, '-1');
    await expect(capacity().pin(4)).rejects.toThrow(/cutover:original-max-capacity = "-1", not a whole number/);
    expect(writes()).toEqual([]);
  });
});

describe('EcsServiceCapacity: release', () => {
  it('should put the original MinCapacity back, leave desiredCount to the policies, and remove the tags; twice is harmless', async () => {
    await capacity().pin(6);
    settle();
    resetHistory();
    const released = await capacity().release();
    expect(writes()).toEqual(['RegisterScalableTarget', 'UntagResource']);
    expect(aasMock.commandCalls(RegisterScalableTargetCommand)[0]!.args[0].input).toMatchObject({ MinCapacity: 2 });
    expect(ecsMock.commandCalls(UntagResourceCommand)[0]!.args[0].input.tagKeys).toEqual([...Object.values(ECS_TAGS), ECS_PINNED_BY_TAG]);
    expect(target).toEqual({ min: 2, max: 10 });
    expect(service!.tags.size).toBe(0);
    expect(released.pinned).toBeUndefined();
    expect(released.detail).toBe("released: MinCapacity 6 → 2; desiredCount 6 left to the scalable target's scaling policies (4 before the pin)");
    resetHistory();
    expect((await capacity().release()).detail).toBe('released: nothing pinned on ECS service service/prod/api-old');
    expect(writes()).toEqual([]);
  });

  it('should release a desired-count pin by removing the tags only', async () => {
    target = undefined;
    await capacity().pin(5);
    resetHistory();
    const released = await capacity().release();
    expect(writes()).toEqual(['UntagResource']);
    expect(service!.desired).toBe(5);
    expect(released.detail).toBe('released: desiredCount 5 left to the teardown (no scalable target) (4 before the pin)');
  });

  it('should finish a release that crashed after putting the target back', async () => {
    await capacity().pin(6);
    fail('UntagResource', new Error('socket hang up'));
    await expect(capacity().release()).rejects.toThrow(/socket hang up/);
    expect(target!.min).toBe(2);
    resetHistory();
    await capacity().release();
    expect(writes()).toEqual(['UntagResource']);
    expect(service!.tags.size).toBe(0);
  });

  it('should release after an interrupted pin without touching the target', async () => {
    fail('RegisterScalableTarget', new Error('timeout'));
    await expect(capacity().pin(6)).rejects.toThrow();
    resetHistory();
    await capacity().release();
    expect(writes()).toEqual(['UntagResource']);
    expect(target).toEqual({ min: 2, max: 10 });
  });

  it('should leave a MinCapacity someone else set while pinned', async () => {
    await capacity().pin(4);
    target!.min = 7;
    resetHistory();
    expect((await capacity().release()).detail).toMatch(/MinCapacity 7 left as is \(changed outside Cutover; 2 before the pin\)/);
    expect(writes()).toEqual(['UntagResource']);
  });

  it('should count a service that is gone or being deleted as released', async () => {
    service = undefined;
    expect(await capacity().release()).toEqual({ current: 0, ready: false, detail: 'released: ECS service service/prod/api-old no longer exists' });
    expect((await capacity({ cluster: 'gone' }).release()).detail).toMatch(/no longer exists/);
    service = makeService({ status: 'DRAINING' });
    expect((await capacity().release()).detail).toBe('released: ECS service service/prod/api-old is DRAINING');
    expect(writes()).toEqual([]);
  });

  it('should not mistake a failed RegisterScalableTarget for a release', async () => {
    await capacity().pin(6);
    fail('RegisterScalableTarget', new ValidationException({ message: 'bad request', $metadata: {} }));
    await expect(capacity().release()).rejects.toThrow(/bad request/);
    expect(tags()[ECS_TAGS.pin]).toBe('6');
  });
});

// ---------------------------------------------------------------------------------------------
// Throttling and timeouts over real sockets: the SDK's retry strategy, as the Lambdas configure it.
// ---------------------------------------------------------------------------------------------

const MAX_ATTEMPTS = 3;
async function loopback(context: TestContext, ecsScript: readonly Reply[], aasScript: readonly Reply[]) {
  const ecsServer = await startFakeAws('json', ecsScript);
  const aasServer = await startFakeAws('json', aasScript);
  const options = { region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: MAX_ATTEMPTS, requestTimeoutMs: 150, connectionTimeoutMs: 500 };
  const ecsClient = new ECSClient(clientConfig({ ...options, endpoint: ecsServer.endpoint }));
  const aasClient = new ApplicationAutoScalingClient(clientConfig({ ...options, endpoint: aasServer.endpoint }));
  context.onTestFinished(async () => {
    ecsClient.destroy();
    aasClient.destroy();
    await Promise.all([ecsServer.close(), aasServer.close()]);
  });
  const port = new EcsServiceCapacity({ ecs: ecsClient, applicationAutoScaling: aasClient, cluster: 'prod', service: 'api-old' });
  return { ecsServer, aasServer, port };
}

async function failureOf(call: Promise<unknown>): Promise<string> {
  return call.then(
    () => 'no error',
    (error: unknown) => describeError(error),
  );
}

const SERVICES = {
  services: [
    {
      serviceArn: SERVICE_ARN,
      serviceName: 'api-old',
      status: 'ACTIVE',
      desiredCount: 3,
      runningCount: 3,
      pendingCount: 0,
      deployments: [{ id: 'ecs-svc/1', status: 'PRIMARY', rolloutState: 'COMPLETED' }],
      tags: [
        { key: 'cutover:pinned-capacity', value: '3' },
        { key: 'cutover:original-desired-count', value: '2' },
        { key: 'cutover:pinned-by', value: 'desired-count' },
      ],
    },
  ],
  failures: [],
};
const TARGETS = { ScalableTargets: [] };

describe.concurrent('EcsServiceCapacity: throttling and timeouts (SDK retries)', () => {
  it('should read after ECS throttles and times out, and Application Auto Scaling throttles', async (context) => {
    const { expect } = context;
    const { ecsServer, aasServer, port } = await loopback(
      context,
      [{ kind: 'throttle' }, { kind: 'hang' }, { kind: 'ok', body: SERVICES }],
      [{ kind: 'throttle' }, { kind: 'ok', body: TARGETS }],
    );
    expect(await port.read()).toEqual({ current: 3, pinned: 3, ready: true, desired: 3, detail: '3 running of 3 desired; no scalable target' });
    expect(ecsServer.requests.map((r) => r.attempt)).toEqual(['attempt=1; max=3', 'attempt=2; max=3', 'attempt=3; max=3']);
    expect(ecsServer.requests[0]!.target).toBe('AmazonEC2ContainerServiceV20141113.DescribeServices');
    expect(aasServer.requests.map((r) => r.target)).toEqual(Array(2).fill('AnyScaleFrontendService.DescribeScalableTargets'));
  });

  for (const [kind, pattern] of [
    ['throttle', /ThrottlingException/],
    ['hang', /TimeoutError/],
    ['5xx', /InternalServerError/],
  ] as const) {
    it(`should fail pin and release after ${MAX_ATTEMPTS} attempts on ${kind === 'hang' ? 'a timeout' : kind} from ECS, writing nothing`, async (context) => {
      const { expect } = context;
      const { ecsServer, port } = await loopback(context, [{ kind }], [{ kind: 'ok', body: TARGETS }]);
      expect(await failureOf(port.pin(3))).toMatch(pattern);
      expect(await failureOf(port.release())).toMatch(pattern);
      expect(ecsServer.requests).toHaveLength(2 * MAX_ATTEMPTS);
      expect(ecsServer.requests.every((r) => r.target.endsWith('.DescribeServices'))).toBe(true);
    });
  }

  it('should fail a read when Application Auto Scaling throttles on every attempt', async (context) => {
    const { expect } = context;
    const { aasServer, port } = await loopback(context, [{ kind: 'ok', body: SERVICES }], [{ kind: 'throttle' }]);
    expect(await failureOf(port.read())).toMatch(/ThrottlingException/);
    expect(aasServer.requests).toHaveLength(MAX_ATTEMPTS);
  });

  it('should retry a throttled UpdateService, then hold the pin', async (context) => {
    const { expect } = context;
    const unpinned = { services: [{ ...SERVICES.services[0]!, desiredCount: 2, runningCount: 2 }], failures: [] };
    const { ecsServer, port } = await loopback(
      context,
      [{ kind: 'ok', body: unpinned }, { kind: 'throttle' }, { kind: 'ok', body: { service: {} } }],
      [{ kind: 'ok', body: TARGETS }],
    );
    expect(await port.restore(3)).toMatchObject({ current: 2, pinned: 3, ready: false });
    expect(ecsServer.requests.map((r) => r.target.split('.')[1])).toEqual(['DescribeServices', 'UpdateService', 'UpdateService']);
    expect(JSON.parse(ecsServer.requests[2]!.body)).toEqual({ cluster: 'prod', service: 'api-old', desiredCount: 3 });
  });
});
