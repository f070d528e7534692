import {
  AutoScalingClient,
  AutoScalingServiceException,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  ResourceContentionFault,
  ScalingActivityInProgressFault,
  UpdateAutoScalingGroupCommand,
  type Instance,
} from '@aws-sdk/client-auto-scaling';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { AUTO_SCALING_TAGS, AutoScalingGroupCapacity } from '../../lambda/aws/capacity/auto-scaling';
import { CapacityKeeper } from '../../lambda/core/capacity';
import { Draft } from '../../lambda/core/draft';
import { makeRecord } from './fixtures';
import { CapacityPinError, CapacityTargetNotFoundError } from '../../lambda/aws/capacity/shared';
import { clientConfig, describeError } from '../../lambda/aws/clients';
import { startFakeAws, type Reply } from './fake-aws';
import { TEST_CREDENTIALS } from './helpers';

// ---------------------------------------------------------------------------------------------
// An in-memory Auto Scaling group behind a mocked client (this instance only).
// ---------------------------------------------------------------------------------------------

interface FakeGroup {
  name: string;
  min: number;
  max: number;
  desired: number;
  instances: Instance[];
  tags: Map<string, string>;
  status?: string;
}

const autoScaling = new AutoScalingClient({ region: 'us-east-1' });
const asMock = mockClient(autoScaling);
let group: FakeGroup | undefined;
/** Errors the next calls of a command throw, in order (injected failures). */
const failures = new Map<string, Error[]>();

function fail(command: string, error: Error): void {
  failures.set(command, [...(failures.get(command) ?? []), error]);
}
function injected(command: string): void {
  const error = failures.get(command)?.shift();
  if (error) throw error;
}
const validation = (message: string) =>
  new AutoScalingServiceException({ name: 'ValidationError', $fault: 'client', message, $metadata: { httpStatusCode: 400 } });

function instances(n: number, state = 'InService', health = 'Healthy', weight?: string): Instance[] {
  return Array.from({ length: n }, (_, i) => ({
    InstanceId: `i-${state}-${health}-${i}`,
    AvailabilityZone: 'us-east-1a',
    LifecycleState: state as Instance['LifecycleState'],
    HealthStatus: health,
    ProtectedFromScaleIn: false,
    ...(weight ? { WeightedCapacity: weight } : {}),
  }));
}

function makeGroup(figures: Partial<FakeGroup> = {}): FakeGroup {
  return { name: 'web-old', min: 2, max: 10, desired: 4, instances: instances(4), tags: new Map(), ...figures };
}

/** Commands sent, by name, in order. */
function sent(): string[] {
  return asMock.calls().map((c) => c.args[0].constructor.name.replace(/Command$/, ''));
}
function writes(): string[] {
  return sent().filter((name) => name !== 'DescribeAutoScalingGroups');
}

beforeEach(() => {
  group = makeGroup();
  failures.clear();
  asMock.on(DescribeAutoScalingGroupsCommand).callsFake((input: { AutoScalingGroupNames: string[] }) => {
    injected('DescribeAutoScalingGroups');
    if (!group || !input.AutoScalingGroupNames.includes(group.name)) return { AutoScalingGroups: [] };
    return {
      AutoScalingGroups: [
        {
          AutoScalingGroupName: group.name,
          MinSize: group.min,
          MaxSize: group.max,
          DesiredCapacity: group.desired,
          Instances: group.instances,
          ...(group.status ? { Status: group.status } : {}),
          Tags: [...group.tags].map(([Key, Value]) => ({ ResourceId: group!.name, ResourceType: 'auto-scaling-group', Key, Value, PropagateAtLaunch: false })),
        },
      ],
    };
  });
  asMock.on(CreateOrUpdateTagsCommand).callsFake((input: { Tags: { ResourceId: string; Key: string; Value: string }[] }) => {
    injected('CreateOrUpdateTags');
    if (!group) throw validation('AutoScalingGroup name not found');
    for (const tag of input.Tags) group.tags.set(tag.Key, tag.Value);
    return {};
  });
  asMock.on(DeleteTagsCommand).callsFake((input: { Tags: { Key: string }[] }) => {
    injected('DeleteTags');
    for (const tag of input.Tags) group?.tags.delete(tag.Key);
    return {};
  });
  asMock.on(UpdateAutoScalingGroupCommand).callsFake((input: { MinSize?: number; MaxSize?: number; DesiredCapacity?: number }) => {
    injected('UpdateAutoScalingGroup');
    if (!group) throw validation('AutoScalingGroup name not found');
    const min = input.MinSize ?? group.min;
    const max = input.MaxSize ?? group.max;
    // Like EC2 Auto Scaling: a MinSize above the desired capacity raises it.
    const desired = input.DesiredCapacity ?? Math.max(group.desired, min);
    if (min > max || desired < min || desired > max) throw validation(`invalid sizes min ${min} desired ${desired} max ${max}`);
    Object.assign(group, { min, max, desired });
    return {};
  });
});

afterEach(() => {
  asMock.reset();
});

const capacity = (extra: { allowRaisingMaxSize?: boolean } = {}) => new AutoScalingGroupCapacity({ autoScaling, autoScalingGroupName: 'web-old', ...extra });
const tags = () => Object.fromEntries(group!.tags);

describe('AutoScalingGroupCapacity: read', () => {
  it('should count only InService and healthy instances, by their weight', async () => {
    group!.instances = [
      ...instances(3),
      ...instances(1, 'InService', 'Unhealthy'),
      ...instances(1, 'Standby'),
      ...instances(1, 'Pending'),
      ...instances(1, 'Terminating:Wait'),
    ];
    expect(await capacity().read()).toEqual({
      current: 3,
      ready: false,
      desired: 4, detail: '3 InService and healthy (desired 4, min 2, max 10); 1 pending, 1 in Standby, 1 unhealthy, 1 terminating or detaching',
    });
    group!.instances = instances(2, 'InService', 'Healthy', '2');
    expect(await capacity().read()).toMatchObject({ current: 4, ready: true });
    expect(asMock.commandCalls(DescribeAutoScalingGroupsCommand)[0]!.args[0].input).toEqual({ AutoScalingGroupNames: ['web-old'] });
  });

  it('fails when the group does not exist, never reading zeros the core would pin at', async () => {
    group = undefined;
    await expect(capacity().read()).rejects.toThrow(CapacityTargetNotFoundError);
    await expect(capacity().read()).rejects.toThrow(/Auto Scaling group "web-old" does not exist .*check autoScalingGroupName/);
  });

  it('should accept the group ARN and use its name', async () => {
    const arn = 'arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0a1b2c3d-0000-4000-8000-1234567890ab:autoScalingGroupName/web-old';
    await new AutoScalingGroupCapacity({ autoScaling, autoScalingGroupName: arn }).read();
    expect(asMock.commandCalls(DescribeAutoScalingGroupsCommand)[0]!.args[0].input.AutoScalingGroupNames).toEqual(['web-old']);
  });

  it('fails on bad props and bad units with the bad value', async () => {
    expect(() => new AutoScalingGroupCapacity({ autoScaling, autoScalingGroupName: '' })).toThrow(/autoScalingGroupName must be .*got ""/);
    expect(() => new AutoScalingGroupCapacity({ autoScaling, autoScalingGroupName: ' web' })).toThrow(/got " web"/);
    expect(() => new AutoScalingGroupCapacity({ autoScaling, autoScalingGroupName: 'arn:aws:ec2:us-east-1:1:x' })).toThrow(/group name or an Auto Scaling group ARN/);
    expect(() => new AutoScalingGroupCapacity({ autoScaling, autoScalingGroupName: 'x'.repeat(256) })).toThrow(/1–255 characters/);
    await expect(capacity().pin(0)).rejects.toThrow(/whole number ≥ 1, got 0/);
    await expect(capacity().restore(2.5)).rejects.toThrow(/got 2.5/);
    expect(sent()).toEqual([]);
  });
});

describe('AutoScalingGroupCapacity: pin', () => {
  it('should tag the originals first, then hold MinSize and raise DesiredCapacity to the pin', async () => {
    const status = await capacity().pin(6);
    expect(writes()).toEqual(['CreateOrUpdateTags', 'UpdateAutoScalingGroup']);
    expect(asMock.commandCalls(CreateOrUpdateTagsCommand)[0]!.args[0].input.Tags).toContainEqual({
      ResourceId: 'web-old',
      ResourceType: 'auto-scaling-group',
      Key: 'cutover:original-min-size',
      Value: '2',
      PropagateAtLaunch: false,
    });
    expect(tags()).toEqual({
      [AUTO_SCALING_TAGS.pin]: '6',
      [AUTO_SCALING_TAGS.minSize]: '2',
      [AUTO_SCALING_TAGS.maxSize]: '10',
      [AUTO_SCALING_TAGS.desired]: '4',
    });
    expect(asMock.commandCalls(UpdateAutoScalingGroupCommand)[0]!.args[0].input).toEqual({ AutoScalingGroupName: 'web-old', MinSize: 6, DesiredCapacity: 6 });
    // Two instances are still to launch: pinned, not ready.
    expect(status).toMatchObject({ current: 4, pinned: 6, ready: false });
    group!.instances = instances(6);
    expect(await capacity().read()).toEqual({ current: 6, pinned: 6, ready: true, desired: 6, detail: '6 InService and healthy (desired 6, min 6, max 10)' });
  });

  it('should be idempotent: a second pin writes nothing', async () => {
    await capacity().pin(4);
    asMock.resetHistory();
    expect(await capacity().pin(4)).toMatchObject({ current: 4, pinned: 4, ready: true });
    expect(await capacity().restore(4)).toMatchObject({ current: 4, pinned: 4, ready: true });
    expect(writes()).toEqual([]);
  });

  it('should never lower a MinSize that is already above the pin, nor rewrite the originals on a new pin figure', async () => {
    group = makeGroup({ min: 5, desired: 5, instances: instances(5) });
    await capacity().pin(4);
    expect(writes()).toEqual(['CreateOrUpdateTags']);
    expect(group.min).toBe(5);
    await capacity().pin(5);
    expect(tags()).toMatchObject({ [AUTO_SCALING_TAGS.pin]: '5', [AUTO_SCALING_TAGS.minSize]: '5' });
    expect(asMock.commandCalls(CreateOrUpdateTagsCommand)[1]!.args[0].input.Tags!.map((t) => t.Key)).toEqual([AUTO_SCALING_TAGS.pin]);
  });

  it('fails when MaxSize is below the pin, saying how to fix it, and writes nothing', async () => {
    group = makeGroup({ max: 4 });
    const error = await capacity().pin(6).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CapacityPinError);
    expect(describeError(error)).toMatch(/MaxSize 4, below the pin of 6 units.*--max-size 6.*allowRaisingMaxSize: true/);
    expect(writes()).toEqual([]);
  });

  it('should raise MaxSize when allowed, and put it back (with DesiredCapacity under it) at release', async () => {
    group = makeGroup({ max: 4 });
    await capacity({ allowRaisingMaxSize: true }).pin(6);
    expect(asMock.commandCalls(UpdateAutoScalingGroupCommand)[0]!.args[0].input).toEqual({ AutoScalingGroupName: 'web-old', MinSize: 6, DesiredCapacity: 6, MaxSize: 6 });
    expect(tags()[AUTO_SCALING_TAGS.maxSize]).toBe('4');
    const released = await capacity().release();
    expect(group).toMatchObject({ min: 2, max: 4, desired: 4 });
    expect(released.detail).toMatch(/MinSize 6 → 2; MaxSize 6 → 4; DesiredCapacity 6 → 4 \(down to the original MaxSize\)/);
  });

  it('fails on a group that does not exist or is being deleted', async () => {
    group = undefined;
    await expect(capacity().pin(3)).rejects.toThrow(/does not exist/);
    group = makeGroup({ status: 'Delete in progress' });
    await expect(capacity().pin(3)).rejects.toThrow(/is being deleted \(Delete in progress\)/);
    expect(writes()).toEqual([]);
  });
});

describe('AutoScalingGroupCapacity: partial failures and concurrent changes', () => {
  it('should complete a pin whose update failed after the tags were written', async () => {
    fail('UpdateAutoScalingGroup', new ResourceContentionFault({ message: 'You already have a pending update to an Auto Scaling resource', $metadata: {} }));
    await expect(capacity().pin(6)).rejects.toThrow(/pending update/);
    expect(group).toMatchObject({ min: 2, desired: 4 });
    // After a cold start: the pin is recorded but not held, and read says so.
    const status = await capacity().read();
    expect(status).toMatchObject({ current: 4, pinned: 6, ready: false });
    expect(status.detail).toMatch(/MinSize 2 below the pin of 6 \(an interrupted pin, or changed outside Cutover\)/);
    asMock.resetHistory();
    await capacity().pin(6);
    expect(writes()).toEqual(['UpdateAutoScalingGroup']);
    expect(group).toMatchObject({ min: 6, desired: 6 });
    expect(tags()[AUTO_SCALING_TAGS.minSize]).toBe('2');
  });

  it('should let restore complete an interrupted pin too (what the core calls when read says not ready)', async () => {
    fail('UpdateAutoScalingGroup', new ScalingActivityInProgressFault({ message: 'Scaling activity is in progress', $metadata: {} }));
    await expect(capacity().pin(5)).rejects.toThrow(ScalingActivityInProgressFault);
    await capacity().restore(5);
    expect(group).toMatchObject({ min: 5, desired: 5 });
    expect(tags()).toMatchObject({ [AUTO_SCALING_TAGS.minSize]: '2', [AUTO_SCALING_TAGS.desired]: '4' });
  });

  it('should put back a MinSize and DesiredCapacity someone else lowered while pinned', async () => {
    await capacity().pin(4);
    Object.assign(group!, { min: 1, desired: 2 });
    group!.instances = [...instances(2), ...instances(2, 'Terminating')];
    const status = await capacity().read();
    expect(status).toMatchObject({ current: 2, pinned: 4, ready: false });
    expect(status.detail).toMatch(/MinSize 1 below the pin of 4.*DesiredCapacity 2 below the pin 4: the group may scale in/);
    asMock.resetHistory();
    await capacity().restore(4);
    expect(writes()).toEqual(['UpdateAutoScalingGroup']);
    expect(group).toMatchObject({ min: 4, desired: 4 });
    expect(tags()[AUTO_SCALING_TAGS.minSize]).toBe('2');
  });

  it('should not count the fleet ready while DesiredCapacity is below the pin, even with every instance still running', async () => {
    await capacity().pin(4);
    Object.assign(group!, { min: 1, desired: 1 });
    expect(await capacity().read()).toMatchObject({ current: 4, pinned: 4, ready: false });
  });

  it('fails on tags it cannot read back, without guessing the originals', async () => {
    group!.tags.set(AUTO_SCALING_TAGS.pin, '4');
    group!.tags.set(AUTO_SCALING_TAGS.minSize, 'two');
    group!.tags.set(AUTO_SCALING_TAGS.maxSize, '10');
    await expect(capacity().pin(4)).rejects.toThrow(/tag cutover:original-min-size = "two", not a whole number: .*delete every cutover:\* tag/);
    group!.tags.delete(AUTO_SCALING_TAGS.minSize);
    await expect(capacity().release()).rejects.toThrow(/has some cutover:\* tags but not cutover:original-min-size/);
    expect(writes()).toEqual([]);
  });
});

describe('AutoScalingGroupCapacity: release', () => {
  it('should put the original MinSize back, leave DesiredCapacity to the policies, and remove the tags; twice is harmless', async () => {
    await capacity().pin(6);
    asMock.resetHistory();
    const released = await capacity().release();
    expect(writes()).toEqual(['UpdateAutoScalingGroup', 'DeleteTags']);
    expect(asMock.commandCalls(UpdateAutoScalingGroupCommand)[0]!.args[0].input).toEqual({ AutoScalingGroupName: 'web-old', MinSize: 2 });
    expect(group).toMatchObject({ min: 2, max: 10, desired: 6 });
    expect(group!.tags.size).toBe(0);
    expect(released.pinned).toBeUndefined();
    expect(released.detail).toBe("released: MinSize 6 → 2; DesiredCapacity 6 left to the group's scaling policies (4 before the pin)");
    asMock.resetHistory();
    expect((await capacity().release()).detail).toBe('released: nothing pinned on Auto Scaling group "web-old"');
    expect(writes()).toEqual([]);
  });

  it('should finish a release that crashed after the update, before the tags were removed', async () => {
    await capacity().pin(6);
    fail('DeleteTags', new Error('socket hang up'));
    await expect(capacity().release()).rejects.toThrow(/socket hang up/);
    expect(group!.min).toBe(2);
    asMock.resetHistory();
    await capacity().release();
    expect(writes()).toEqual(['DeleteTags']);
    expect(group!.tags.size).toBe(0);
  });

  it('should release after an interrupted pin without touching the group', async () => {
    fail('UpdateAutoScalingGroup', new Error('timeout'));
    await expect(capacity().pin(6)).rejects.toThrow();
    asMock.resetHistory();
    await capacity().release();
    expect(writes()).toEqual(['DeleteTags']);
    expect(group).toMatchObject({ min: 2, desired: 4 });
  });

  it('should leave a MinSize someone else set while pinned', async () => {
    await capacity().pin(4);
    group!.min = 8;
    const released = await capacity().release();
    expect(writes()).toEqual(['CreateOrUpdateTags', 'UpdateAutoScalingGroup', 'DeleteTags']);
    expect(group!.min).toBe(8);
    expect(released.detail).toMatch(/MinSize 8 left as is \(changed outside Cutover; 2 before the pin\)/);
  });

  it('should count a group that is gone or being deleted as released', async () => {
    group = undefined;
    expect(await capacity().release()).toEqual({ current: 0, ready: false, detail: 'released: Auto Scaling group "web-old" no longer exists' });
    group = makeGroup({ status: 'Delete in progress' });
    expect((await capacity().release()).detail).toMatch(/is being deleted/);
    expect(writes()).toEqual([]);
  });

  it('should not mistake a failed update for a release', async () => {
    await capacity().pin(6);
    fail('UpdateAutoScalingGroup', validation('internal validation failure'));
    await expect(capacity().release()).rejects.toThrow(/internal validation failure/);
    expect(tags()[AUTO_SCALING_TAGS.pin]).toBe('6');
  });
});

describe('AutoScalingGroupCapacity under the core (CapacityKeeper)', () => {
  it('should pin at the starting size, restore a MinSize lowered by someone else, and release at teardown', async () => {
    const keeper = new CapacityKeeper(capacity(), async () => {});
    const draft = new Draft(makeRecord('m1', { pinnedCapacity: undefined }), 1, { now: () => 1_700_000_000_000 });
    expect(await keeper.ensure(draft)).toMatchObject({ current: 4, pinned: 4, ready: true });
    expect(draft.record.pinnedCapacity).toBe(4);
    expect(draft.events.map((e) => e.type)).toEqual(['capacity-pinned']);
    // Someone lowers MinSize and the group scales in: the next tick restores, and holds until back.
    Object.assign(group!, { min: 1, desired: 2, instances: instances(2) });
    expect(await keeper.ensure(draft)).toMatchObject({ current: 2, pinned: 4, ready: false });
    expect(draft.events.map((e) => e.type)).toEqual(['capacity-pinned', 'capacity-restoring']);
    expect(group).toMatchObject({ min: 4, desired: 4 });
    group!.instances = instances(4);
    await keeper.ensure(draft);
    expect(draft.events.map((e) => e.type)).toEqual(['capacity-pinned', 'capacity-restoring', 'capacity-restored']);
    await keeper.release(draft);
    expect(draft.record.capacityReleased).toBe(true);
    expect(group).toMatchObject({ min: 2, desired: 4 });
    expect(group!.tags.size).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Throttling and timeouts over a real socket: the SDK's retry strategy, as the Lambdas configure it.
// ---------------------------------------------------------------------------------------------

const MAX_ATTEMPTS = 3;
async function loopback(context: TestContext, script: readonly Reply[]) {
  const server = await startFakeAws('query', script);
  const client = new AutoScalingClient(
    clientConfig({ endpoint: server.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: MAX_ATTEMPTS, requestTimeoutMs: 150, connectionTimeoutMs: 500 }),
  );
  context.onTestFinished(async () => {
    client.destroy();
    await server.close();
  });
  return { server, port: new AutoScalingGroupCapacity({ autoScaling: client, autoScalingGroupName: 'web-old' }) };
}

/** "Name: message" of the error a call fails with. */
async function failureOf(call: Promise<unknown>): Promise<string> {
  return call.then(
    () => 'no error',
    (error: unknown) => describeError(error),
  );
}

const DESCRIBED = `<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
<AutoScalingGroupName>web-old</AutoScalingGroupName><MinSize>3</MinSize><MaxSize>9</MaxSize><DesiredCapacity>3</DesiredCapacity>
<Instances>${[1, 2, 3].map((i) => `<member><InstanceId>i-${i}</InstanceId><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>`).join('')}</Instances>
<Tags><member><ResourceId>web-old</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>cutover:pinned-min-size</Key><Value>3</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>
<member><ResourceId>web-old</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>cutover:original-min-size</Key><Value>1</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>
<member><ResourceId>web-old</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>cutover:original-max-size</Key><Value>9</Value><PropagateAtLaunch>false</PropagateAtLaunch></member></Tags>
</member></AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`;

describe.concurrent('AutoScalingGroupCapacity: throttling and timeouts (SDK retries)', () => {
  it('should read after a throttle and a timeout', async (context) => {
    const { expect } = context;
    const { server, port } = await loopback(context, [{ kind: 'throttle' }, { kind: 'hang' }, { kind: 'ok', body: DESCRIBED }]);
    expect(await port.read()).toEqual({ current: 3, pinned: 3, ready: true, desired: 3, detail: '3 InService and healthy (desired 3, min 3, max 9)' });
    expect(server.requests.map((r) => r.attempt)).toEqual(['attempt=1; max=3', 'attempt=2; max=3', 'attempt=3; max=3']);
    expect(server.requests[0]!.body).toContain('Action=DescribeAutoScalingGroups');
  });

  for (const [kind, pattern] of [
    ['throttle', /Throttling/],
    ['hang', /TimeoutError/],
    ['5xx', /InternalError/],
  ] as const) {
    it(`should fail pin and release after ${MAX_ATTEMPTS} attempts on ${kind === 'hang' ? 'a timeout' : kind}, writing nothing`, async (context) => {
      const { expect } = context;
      const { server, port } = await loopback(context, [{ kind }]);
      expect(await failureOf(port.pin(3))).toMatch(pattern);
      expect(await failureOf(port.release())).toMatch(pattern);
      expect(server.requests).toHaveLength(2 * MAX_ATTEMPTS);
      expect(server.requests.every((r) => r.body.includes('Action=DescribeAutoScalingGroups'))).toBe(true);
    });
  }

  it('should retry a throttled update, then hold the pin', async (context) => {
    const { expect } = context;
    const unpinned = DESCRIBED.replace('<MinSize>3</MinSize>', '<MinSize>1</MinSize>');
    const ok = '<UpdateAutoScalingGroupResponse><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></UpdateAutoScalingGroupResponse>';
    const { server, port } = await loopback(context, [{ kind: 'ok', body: unpinned }, { kind: 'throttle' }, { kind: 'ok', body: ok }]);
    expect(await port.restore(3)).toMatchObject({ current: 3, pinned: 3, ready: true });
    expect(server.requests.map((r) => /Action=(\w+)/.exec(r.body)![1])).toEqual(['DescribeAutoScalingGroups', 'UpdateAutoScalingGroup', 'UpdateAutoScalingGroup']);
    expect(server.requests[2]!.body).toContain('MinSize=3');
  });
});
