import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  InvalidChangeBatch,
  ListResourceRecordSetsCommand,
  NoSuchHostedZone,
  Route53Client,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { clientConfig, describeError } from '../../lambda/aws/clients';
import { UnexpectedRoutingError } from '../../lambda/aws/traffic/alias';
import { PROPAGATION_ALLOWANCE_MS, Route53WeightedTraffic, type Route53WeightedTrafficProps } from '../../lambda/aws/traffic/route53';
import { MigrationController } from '../../lambda/core/controller';
import { Command } from '../../lambda/core/model';
import { RevisionConflictError } from '../../lambda/core/ports';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from '../core/fakes';
import { SPEC } from '../core/mutation-world';
import { startFakeAws, type Reply } from './fake-aws';
import { TEST_CREDENTIALS } from './helpers';

const route53 = new Route53Client({ region: 'us-east-1' });
// The instance only: the clients of the socket tests below keep their real `send`.
const r53Mock = mockClient(route53);
const ZONE = 'Z0123456789ABCDEFGHIJ';
const NAME = 'api.example.com.';

/** A fake clock that the injected sleep moves forward. */
let now = 0;
let sleeps: number[] = [];
const clock = { now: () => now };
const sleep = async (ms: number) => {
  sleeps.push(ms);
  now += ms;
};

function traffic(overrides: Partial<Route53WeightedTrafficProps> = {}) {
  return new Route53WeightedTraffic({
    route53,
    hostedZoneId: `/hostedzone/${ZONE}`,
    recordName: 'API.example.com',
    recordType: 'A',
    oldSetIdentifier: 'blue',
    newSetIdentifier: 'green',
    clock,
    sleep,
    ...overrides,
  });
}

afterEach(() => {
  r53Mock.reset();
  now = 0;
  sleeps = [];
});

/** An A alias record to a load balancer, as ListResourceRecordSets returns it. */
function alias(id: string, weight: number, dns = `${id}-lb-1.us-east-1.elb.amazonaws.com.`): ResourceRecordSet {
  return { Name: NAME, Type: 'A', SetIdentifier: id, Weight: weight, AliasTarget: { HostedZoneId: 'Z35SXDOTRQ7X7K', DNSName: dns, EvaluateTargetHealth: true } };
}
function cname(id: string, weight: number, ttl: number): ResourceRecordSet {
  return { Name: NAME, Type: 'CNAME', SetIdentifier: id, Weight: weight, TTL: ttl, ResourceRecords: [{ Value: `${id}.example.net` }] };
}
function page(records: ResourceRecordSet[], next?: { name: string; type: 'A' | 'CNAME' | 'TXT'; id?: string }) {
  return {
    ResourceRecordSets: records,
    IsTruncated: next !== undefined,
    MaxItems: 300,
    ...(next ? { NextRecordName: next.name, NextRecordType: next.type, ...(next.id ? { NextRecordIdentifier: next.id } : {}) } : {}),
  };
}
function awsError(name: string, message: string) {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}
/** The revision the port gives these records (read through a client of its own). */
const probeClient = new Route53Client({ region: 'us-east-1' });
const probeMock = mockClient(probeClient);
async function revisionFor(records: ResourceRecordSet[]): Promise<string> {
  probeMock.reset();
  probeMock.on(ListResourceRecordSetsCommand).resolves(page(records));
  return (await traffic({ route53: probeClient, recordType: records[0]!.Type as 'A' | 'CNAME' }).getWeight()).revision;
}

describe('Route53WeightedTraffic.getWeight', () => {
  it('should read both records with one ListResourceRecordSets from the set name and type, and give the new share', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 90), alias('green', 10), { ...alias('x', 1), Name: 'b.example.com.' }]));
    const state = await traffic().getWeight();
    expect(state).toMatchObject({ weight: 10, settled: true, ttlSeconds: undefined });
    expect(state.revision).toMatch(/^r53-[0-9a-f]{32}$/);
    const calls = r53Mock.commandCalls(ListResourceRecordSetsCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toEqual({ HostedZoneId: ZONE, StartRecordName: NAME, StartRecordType: 'A' });
  });

  it('should give a revision that identifies the exact contents of both records', async () => {
    const base = await revisionFor([alias('blue', 90), alias('green', 10)]);
    // Same contents, keys in another order: same revision.
    const reordered = { SetIdentifier: 'green', Weight: 10, Type: 'A', Name: NAME, AliasTarget: alias('green', 10).AliasTarget } as ResourceRecordSet;
    expect(await revisionFor([alias('blue', 90), reordered])).toBe(base);
    // Another weight, another target, another health check: another revision.
    expect(await revisionFor([alias('blue', 80), alias('green', 10)])).not.toBe(base);
    expect(await revisionFor([alias('blue', 90), alias('green', 10, 'other.elb.amazonaws.com.')])).not.toBe(base);
    expect(await revisionFor([alias('blue', 90), { ...alias('green', 10), HealthCheckId: 'hc-1' }])).not.toBe(base);
  });

  it('should follow the pages while the next one still starts in the set', async () => {
    r53Mock
      .on(ListResourceRecordSetsCommand)
      .resolvesOnce(page([alias('blue', 75)], { name: NAME, type: 'A', id: 'green' }))
      .resolvesOnce(page([alias('green', 25), { ...alias('z', 5), Type: 'AAAA' }], { name: 'c.example.com.', type: 'A' }));
    expect((await traffic().getWeight()).weight).toBe(25);
    const inputs = r53Mock.commandCalls(ListResourceRecordSetsCommand).map((c) => c.args[0].input);
    expect(inputs).toHaveLength(2);
    expect(inputs[1]).toEqual({ HostedZoneId: ZONE, StartRecordName: NAME, StartRecordType: 'A', StartRecordIdentifier: 'green' });
  });

  it('should not read a next page that starts past the set', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 50), alias('green', 50)], { name: 'zz.example.com.', type: 'A' }));
    expect((await traffic().getWeight()).weight).toBe(50);
    expect(r53Mock.commandCalls(ListResourceRecordSetsCommand)).toHaveLength(1);
  });

  it('should match names whatever their case and Route 53 escapes (a wildcard lists as \\052)', async () => {
    const star = (id: string, w: number) => ({ ...alias(id, w), Name: '\\052.example.com.' });
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([star('blue', 3), star('green', 1)]));
    expect((await traffic({ recordName: '*.Example.com.' }).getWeight()).weight).toBe(25);
  });

  it('should read an even split when both weights are 0, as Route 53 answers then', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 0), alias('green', 0)]));
    expect((await traffic().getWeight()).weight).toBe(50);
  });

  it('should fail with the fix when a record of the pair is missing or not weighted', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page([alias('blue', 100)])).resolvesOnce(page([]));
    await expect(traffic().getWeight()).rejects.toThrow(/has no record with SetIdentifier "green": create both weighted records/);
    await expect(traffic().getWeight()).rejects.toBeInstanceOf(UnexpectedRoutingError);
    r53Mock.reset();
    const simple = { Name: NAME, Type: 'A', SetIdentifier: 'green', ResourceRecords: [{ Value: '10.0.0.1' }], TTL: 60 } as ResourceRecordSet;
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 100), simple]));
    await expect(traffic().getWeight()).rejects.toThrow(/"green" is not a weighted record/);
  });

  it('should refuse a set where another record takes traffic, and ignore one at weight 0', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page([alias('blue', 90), alias('canary-x', 5), alias('green', 5)]));
    await expect(traffic().getWeight()).rejects.toThrow(/other records that take traffic: "canary-x" \(weight 5\)/);
    r53Mock.reset();
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 90), alias('canary-x', 0), alias('green', 10)]));
    expect((await traffic().getWeight()).weight).toBe(10);
  });

  it('should pass a failure through after the SDK gave up retrying (throttling, a timeout, no such zone)', async () => {
    r53Mock
      .on(ListResourceRecordSetsCommand)
      .rejectsOnce(awsError('Throttling', 'Rate exceeded'))
      .rejectsOnce(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }))
      .rejectsOnce(new NoSuchHostedZone({ message: 'No hosted zone found', $metadata: {} }));
    await expect(traffic().getWeight()).rejects.toThrow(/Rate exceeded/);
    await expect(traffic().getWeight()).rejects.toThrow(/socket timed out/);
    await expect(traffic().getWeight()).rejects.toBeInstanceOf(NoSuchHostedZone);
  });
});

describe('Route53WeightedTraffic.setWeight', () => {
  it('should DELETE both records as read and CREATE them with the new weights in ONE batch, then wait for INSYNC', async () => {
    const before = [alias('blue', 100), alias('green', 0)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } });
    r53Mock
      .on(GetChangeCommand)
      .resolvesOnce({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolvesOnce({ ChangeInfo: { Id: '/change/C1', Status: 'INSYNC', SubmittedAt: new Date() } });

    const state = await traffic().setWeight(25, expected);

    expect(state).toMatchObject({ weight: 25, settled: true });
    const batch = r53Mock.commandCalls(ChangeResourceRecordSetsCommand);
    expect(batch).toHaveLength(1);
    expect(batch[0]!.args[0].input.HostedZoneId).toBe(ZONE);
    expect(batch[0]!.args[0].input.ChangeBatch!.Changes).toEqual([
      { Action: 'DELETE', ResourceRecordSet: before[0] },
      { Action: 'DELETE', ResourceRecordSet: before[1] },
      { Action: 'CREATE', ResourceRecordSet: { ...before[0], Weight: 75 } },
      { Action: 'CREATE', ResourceRecordSet: { ...before[1], Weight: 25 } },
    ]);
    expect(r53Mock.commandCalls(GetChangeCommand).map((c) => c.args[0].input)).toEqual([{ Id: '/change/C1' }, { Id: '/change/C1' }]);
    expect(sleeps).toEqual([2_000, 2_000]);
    // The revision returned is the one a read of the written records gives.
    expect(state.revision).toBe(await revisionFor([{ ...before[0]!, Weight: 75 }, { ...before[1]!, Weight: 25 }]));
  });

  it('should map percentages to Route 53 weights exactly: whole ones sum to 100, fractions use the smallest exact sum', async () => {
    const cases: [number, number, number][] = [
      [0, 100, 0],
      [5, 95, 5],
      [100, 0, 100],
      [12.5, 7, 1],
      [0.5, 199, 1],
    ];
    for (const [percent, oldWeight, newWeight] of cases) {
      r53Mock.reset();
      const before = [alias('blue', 1), alias('green', 1)];
      r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
      r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'C', Status: 'INSYNC', SubmittedAt: new Date() } });
      const state = await traffic().setWeight(percent, await revisionFor(before));
      const changes = r53Mock.commandCalls(ChangeResourceRecordSetsCommand)[0]!.args[0].input.ChangeBatch!.Changes!;
      expect(changes.slice(2).map((c) => c.ResourceRecordSet!.Weight), `${percent}%`).toEqual([oldWeight, newWeight]);
      expect(state.weight).toBe(percent);
    }
    // And reading those weights back gives the percentage again.
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 7), alias('green', 1)]));
    expect((await traffic().getWeight()).weight).toBe(12.5);
  });

  it('fails before any call when the weight is not a percentage Route 53 can express exactly', async () => {
    await expect(traffic().setWeight(101, 'r')).rejects.toThrow(/from 0 to 100, got 101/);
    await expect(traffic().setWeight(Number.NaN, 'r')).rejects.toThrow(RangeError);
    await expect(traffic().setWeight(33.333, 'r')).rejects.toThrow(/33.333% cannot be expressed exactly with Route 53 weights \(integers 0–255\)/);
    await expect(traffic().setWeight(0.1, 'r')).rejects.toThrow(/cannot be expressed exactly/);
    expect(r53Mock.calls()).toHaveLength(0);
    expect(Route53WeightedTraffic.canExpress(12.5)).toBe(true);
    expect(Route53WeightedTraffic.canExpress(0.1)).toBe(false);
  });

  it('should refuse with RevisionConflictError, writing nothing, when the records changed since the revision was read', async () => {
    const stale = await revisionFor([alias('blue', 90), alias('green', 10)]);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 50), alias('green', 50)]));
    const attempt = traffic().setWeight(25, stale);
    await expect(attempt).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(attempt).rejects.toThrow(new RegExp(`expected ${stale}, found r53-`));
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });

  it('should report a lost race (Route 53 refused the DELETE of a record changed after our read) as RevisionConflictError', async () => {
    const before = [alias('blue', 90), alias('green', 10)];
    const theirs = [alias('blue', 0), alias('green', 100)];
    const expected = await revisionFor(before);
    const theirRevision = await revisionFor(theirs);
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page(before)).resolves(page(theirs));
    r53Mock.on(ChangeResourceRecordSetsCommand).rejects(
      new InvalidChangeBatch({
        message: "Tried to delete resource record set [name='api.example.com.', type='A', set-identifier='green'] but the values provided do not match the current values",
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const attempt = traffic().setWeight(50, expected);
    await expect(attempt).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(attempt).rejects.toMatchObject({ expectedRevision: expected, actualRevision: theirRevision });
    // One batch, refused as a whole by Route 53: nothing of theirs was overwritten, nothing retried.
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(1);
    expect(r53Mock.commandCalls(GetChangeCommand)).toHaveLength(0);
  });

  it('should report a conflict when a record of the pair was deleted meanwhile', async () => {
    const before = [alias('blue', 90), alias('green', 10)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page(before)).resolves(page([alias('blue', 90)]));
    r53Mock.on(ChangeResourceRecordSetsCommand).rejects(awsError('InvalidChangeBatch', 'Tried to delete resource record set but it was not found'));
    await expect(traffic().setWeight(50, expected)).rejects.toMatchObject({ name: 'RevisionConflictError', actualRevision: undefined });
  });

  it('should throw InvalidChangeBatch as it is when the records did not change (refused for another reason)', async () => {
    const before = [alias('blue', 90), alias('green', 10)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    r53Mock.on(ChangeResourceRecordSetsCommand).rejects(awsError('InvalidChangeBatch', 'the record set has a resource record set protection'));
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/resource record set protection/);
    // … and when the re-read itself fails, the original error too (the next tick settles it).
    r53Mock.reset();
    r53Mock.on(ChangeResourceRecordSetsCommand).rejects(awsError('InvalidChangeBatch', 'the record set has a resource record set protection'));
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page(before)).rejects(awsError('Throttling', 'Rate exceeded'));
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/resource record set protection/);
  });

  it('should pass a throttled or timed-out batch through (after the SDK retries), with no wait', async () => {
    const before = [alias('blue', 90), alias('green', 10)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    r53Mock
      .on(ChangeResourceRecordSetsCommand)
      .rejectsOnce(awsError('PriorRequestNotComplete', 'The request was rejected because Route 53 was still processing a prior request'))
      .rejectsOnce(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }));
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/still processing a prior request/);
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/socket timed out/);
    expect(r53Mock.commandCalls(GetChangeCommand)).toHaveLength(0);
  });

  it('should write nothing when the records already hold the target weights (a twin made the change)', async () => {
    const before = [alias('blue', 50), alias('green', 50)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    expect(await traffic().setWeight(50, expected)).toMatchObject({ weight: 50, revision: expected, settled: true });
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });

  it('should report a change still PENDING after the bound as settled: false, and the same instance asks GetChange on its next read', async () => {
    const before = [alias('blue', 100), alias('green', 0)];
    const after = [alias('blue', 90), alias('green', 10)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page(before)).resolves(page(after));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C9', Status: 'PENDING', SubmittedAt: new Date() } });
    r53Mock
      .on(GetChangeCommand)
      .resolvesOnce({ ChangeInfo: { Id: '/change/C9', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolvesOnce({ ChangeInfo: { Id: '/change/C9', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolvesOnce({ ChangeInfo: { Id: '/change/C9', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolvesOnce({ ChangeInfo: { Id: '/change/C9', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolves({ ChangeInfo: { Id: '/change/C9', Status: 'INSYNC', SubmittedAt: new Date() } });
    const port = traffic({ propagationTimeoutMs: 5_000, propagationPollMs: 2_000 });

    const state = await port.setWeight(10, expected);

    expect(state).toMatchObject({ weight: 10, settled: false, changeId: '/change/C9' });
    expect(sleeps).toEqual([2_000, 2_000, 1_000]); // bounded by the clock, not by a count
    expect(await port.getWeight()).toMatchObject({ weight: 10, revision: state.revision, settled: false }); // 4th GetChange
    expect(await port.getWeight()).toMatchObject({ weight: 10, revision: state.revision, settled: true });
    const getChanges = r53Mock.commandCalls(GetChangeCommand).length;
    expect(await port.getWeight()).toMatchObject({ settled: true });
    expect(r53Mock.commandCalls(GetChangeCommand)).toHaveLength(getChanges); // INSYNC once is enough
    // Another instance cannot know the change id: it reads the records as settled.
    expect(await traffic().getWeight()).toMatchObject({ weight: 10, settled: true });
  });

  it('should report settled: false, not throw, when GetChange fails after the write', async () => {
    const before = [alias('blue', 100), alias('green', 0)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'C2', Status: 'PENDING', SubmittedAt: new Date() } });
    r53Mock.on(GetChangeCommand).rejects(awsError('Throttling', 'Rate exceeded'));
    expect(await traffic().setWeight(10, expected)).toMatchObject({ weight: 10, settled: false, changeId: 'C2' });
  });

  it('should not wait at all with propagationTimeoutMs 0 unless the change is already INSYNC', async () => {
    const before = [alias('blue', 100), alias('green', 0)];
    const expected = await revisionFor(before);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'C3', Status: 'PENDING', SubmittedAt: new Date() } });
    expect(await traffic({ propagationTimeoutMs: 0 }).setWeight(10, expected)).toMatchObject({ settled: false });
    expect(sleeps).toEqual([]);
    expect(r53Mock.commandCalls(GetChangeCommand)).toHaveLength(0);
  });
});

describe('Route53WeightedTraffic.ensureTtl', () => {
  const cnames = (ttl: number) => [cname('blue', 90, ttl), cname('green', 10, ttl)];

  it('should lower the TTL of both records in one delete-and-create batch and say how long to wait out the old one', async () => {
    const before = cnames(300);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(before));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'T1', Status: 'INSYNC', SubmittedAt: new Date() } });
    const port = traffic({ recordType: 'CNAME' });
    const result = await port.ensureTtl(60);
    expect(result).toMatchObject({ changed: true, previousTtlSeconds: 300, ttlSeconds: 60, waitMs: 300_000, state: { weight: 10, ttlSeconds: 60, settled: true } });
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)[0]!.args[0].input.ChangeBatch!.Changes).toEqual([
      { Action: 'DELETE', ResourceRecordSet: before[0] },
      { Action: 'DELETE', ResourceRecordSet: before[1] },
      { Action: 'CREATE', ResourceRecordSet: { ...before[0], TTL: 60 } },
      { Action: 'CREATE', ResourceRecordSet: { ...before[1], TTL: 60 } },
    ]);
    expect(result.state.revision).toBe(await revisionFor(cnames(60)));
  });

  it('should give both records the lowest TTL and add the propagation allowance when the change is still PENDING', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([cname('blue', 90, 600), cname('green', 10, 30)]));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'T2', Status: 'PENDING', SubmittedAt: new Date() } });
    r53Mock.on(GetChangeCommand).resolves({ ChangeInfo: { Id: 'T2', Status: 'PENDING', SubmittedAt: new Date() } });
    const result = await traffic({ recordType: 'CNAME', propagationTimeoutMs: 0 }).ensureTtl(60);
    expect(result).toMatchObject({ changed: true, previousTtlSeconds: 600, ttlSeconds: 30, waitMs: 600_000 + PROPAGATION_ALLOWANCE_MS });
    const created = r53Mock.commandCalls(ChangeResourceRecordSetsCommand)[0]!.args[0].input.ChangeBatch!.Changes!.slice(2);
    expect(created.map((c) => c.ResourceRecordSet!.TTL)).toEqual([30, 30]);
  });

  it('should leave a TTL already within the limit alone', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(cnames(60)));
    expect(await traffic({ recordType: 'CNAME' }).ensureTtl(60)).toMatchObject({ changed: false, previousTtlSeconds: 60, ttlSeconds: 60, waitMs: 0 });
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });

  it('should leave alias records alone: they have no TTL of their own', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 90), alias('green', 10)]));
    expect(await traffic().ensureTtl(30)).toMatchObject({ changed: false, previousTtlSeconds: undefined, ttlSeconds: undefined, waitMs: 0, state: { weight: 10 } });
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });

  it('should refuse when the records changed since the expected revision, and reject a bad limit', async () => {
    const stale = await revisionFor(cnames(300));
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(cnames(120)));
    await expect(traffic({ recordType: 'CNAME' }).ensureTtl(60, stale)).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(traffic().ensureTtl(-1)).rejects.toThrow(/maxTtlSeconds must be a whole number of seconds ≥ 0, got -1/);
    await expect(traffic().ensureTtl(1.5)).rejects.toThrow(RangeError);
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });
});

describe('Route53WeightedTraffic.prepare (the gate before the first shift)', () => {
  const cnames = (ttl: number) => [cname('blue', 100, ttl), cname('green', 0, ttl)];

  it('lowers a long TTL once and asks the gate to wait it out; then answers ready', async () => {
    now = 1_000_000;
    r53Mock.on(ListResourceRecordSetsCommand).resolvesOnce(page(cnames(300))).resolves(page(cnames(60)));
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'T9', Status: 'INSYNC', SubmittedAt: new Date() } });
    const port = traffic({ recordType: 'CNAME', maxTtlSeconds: 60 });
    expect(await port.prepare()).toEqual({
      ready: false,
      reason: 'TTL of API.example.com lowered from 300 s to 60 s before the first shift; waiting 300 s for answers cached with the old TTL to expire',
      readyAtMs: 1_300_000,
    });
    expect(await port.prepare()).toEqual({ ready: true, reason: 'TTL of API.example.com is 60 s, within the limit of 60 s' });
    expect(r53Mock.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(1);
  });

  it('is ready at once without a limit, and for alias records (their TTL is the target\'s)', async () => {
    expect(await traffic().prepare()).toMatchObject({ ready: true });
    expect(r53Mock.commandCalls(ListResourceRecordSetsCommand)).toHaveLength(0);
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page([alias('blue', 100), alias('green', 0)]));
    expect(await traffic({ maxTtlSeconds: 30 }).prepare()).toMatchObject({ ready: true, reason: expect.stringContaining('alias record') });
  });

  it('lets a throttled or refused change fail the call (the gate holds and asks again)', async () => {
    r53Mock.on(ListResourceRecordSetsCommand).resolves(page(cnames(300)));
    r53Mock.on(ChangeResourceRecordSetsCommand).rejects(awsError('Throttling', 'Rate exceeded'));
    await expect(traffic({ recordType: 'CNAME', maxTtlSeconds: 60 }).prepare()).rejects.toThrow(/Rate exceeded/);
  });

  it('rejects a bad limit when built', () => {
    expect(() => traffic({ maxTtlSeconds: -5 })).toThrow(/maxTtlSeconds must be a whole number of seconds ≥ 0, got -5/);
  });
});

describe('Route53WeightedTraffic props', () => {
  it('fails when built with values that cannot name a weighted pair, showing the bad value', () => {
    expect(() => traffic({ hostedZoneId: 'example.com' })).toThrow(/hostedZoneId must be a hosted zone id such as "Z0123456789ABCDEFGHIJ", got "example.com"/);
    expect(() => traffic({ recordName: 'api example.com' })).toThrow(/recordName must be a domain name/);
    expect(() => traffic({ recordType: 'NS' as never })).toThrow(/recordType must be one of A, AAAA, .* got "NS"/);
    expect(() => traffic({ oldSetIdentifier: '' })).toThrow(/oldSetIdentifier must be the record's SetIdentifier \(1–128 characters\), got ""/);
    expect(() => traffic({ newSetIdentifier: 'blue' })).toThrow(/must differ, both are "blue"/);
    expect(() => traffic({ propagationTimeoutMs: -5 })).toThrow(/propagationTimeoutMs must be a whole number of milliseconds ≥ 0, got -5/);
    expect(() => traffic({ propagationPollMs: 0 })).toThrow(/propagationPollMs must be a whole number of milliseconds ≥ 1, got 0/);
  });
});

// ---------------------------------------------------------------------------------------------
// Over a socket: the real client's retry strategy (the mocks above replace `send`, and with it the
// SDK's retries, so these check that throttling, 5XX and timeouts are retried, then surface).
// ---------------------------------------------------------------------------------------------

const XMLNS = 'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"';
function recordXml(id: string, weight: number): string {
  return `<ResourceRecordSet><Name>${NAME}</Name><Type>CNAME</Type><SetIdentifier>${id}</SetIdentifier><Weight>${weight}</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>${id}.example.net</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>`;
}
function listXml(oldWeight: number, newWeight: number): string {
  return `<?xml version="1.0"?><ListResourceRecordSetsResponse ${XMLNS}><ResourceRecordSets>${recordXml('blue', oldWeight)}${recordXml('green', newWeight)}</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>300</MaxItems></ListResourceRecordSetsResponse>`;
}

async function overSocket(context: TestContext, script: readonly Reply[]) {
  const server = await startFakeAws('query', script); // Route 53 writes its errors in the same XML envelope
  const client = new Route53Client(clientConfig({ endpoint: server.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 3, requestTimeoutMs: 150, connectionTimeoutMs: 500 }));
  context.onTestFinished(async () => {
    client.destroy();
    await server.close();
  });
  return { server, port: traffic({ route53: client, recordType: 'CNAME' }) };
}

describe('Route53WeightedTraffic over a socket', () => {
  it('should read the records after a throttle and a 5XX, retried by the SDK', async (context) => {
    const { server, port } = await overSocket(context, [{ kind: 'throttle' }, { kind: '5xx' }, { kind: 'ok', body: listXml(80, 20) }]);
    expect(await port.getWeight()).toMatchObject({ weight: 20, settled: true, ttlSeconds: 60 });
    expect(server.requests.map((r) => r.attempt)).toEqual(['attempt=1; max=3', 'attempt=2; max=3', 'attempt=3; max=3']);
    expect(server.requests[0]!.path).toBe(`/2013-04-01/hostedzone/${ZONE}/rrset?name=${encodeURIComponent(NAME)}&type=CNAME`);
  });

  it('should fail with the timeout after every attempt timed out', async (context) => {
    const { server, port } = await overSocket(context, [{ kind: 'hang' }]);
    const error = await port.getWeight().then(() => undefined, (e: unknown) => e);
    expect(describeError(error)).toMatch(/TimeoutError/);
    expect(server.requests).toHaveLength(3);
  });

  it('should turn a real InvalidChangeBatch answer into a RevisionConflictError when the records changed', async (context) => {
    const invalid = `<?xml version="1.0"?><ErrorResponse ${XMLNS}><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>[Tried to delete resource record set [name='api.example.com.', type='CNAME', set-identifier='green'] but the values provided do not match the current values]</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;
    const { server, port } = await overSocket(context, [
      { kind: 'ok', body: listXml(90, 10) },
      { kind: 'ok', body: listXml(90, 10) },
      { kind: 'ok', status: 400, body: invalid },
      { kind: 'ok', body: listXml(0, 100) },
    ]);
    const expected = (await port.getWeight()).revision;
    await expect(port.setWeight(50, expected)).rejects.toBeInstanceOf(RevisionConflictError);
    expect(server.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'POST', 'GET']); // the batch was not retried
    expect(server.requests[2]!.body).toContain('<Action>DELETE</Action>');
    expect(server.requests[2]!.body).not.toContain('UPSERT');
  });
});

// ---------------------------------------------------------------------------------------------
// The same race as the ALB port's, through the real controller: an advance's change batch is held
// in flight while an abort rolls back completely, then lands. Route 53 checks the DELETEs when the
// batch arrives, so the late batch is refused and nothing is overwritten.
// ---------------------------------------------------------------------------------------------

describe('Route53WeightedTraffic under the tick protocol', () => {
  it('should refuse an advance that lands after a rollback: the routing stays at 0 %', async () => {
    const mirror = new FakeTraffic();
    let records: ResourceRecordSet[] = [alias('blue', 100), alias('green', 0)];
    let hold: { weight: number; parked: () => void; gate: Promise<void> } | undefined;
    let release = () => {};
    const parkAt = (weight: number) =>
      new Promise<void>((parked) => {
        hold = { weight, parked, gate: new Promise<void>((r) => (release = r)) };
      });
    let refused = 0;
    r53Mock.on(ListResourceRecordSetsCommand).callsFake(async () => page(structuredClone(records)));
    r53Mock.on(ChangeResourceRecordSetsCommand).callsFake(async (input: { ChangeBatch: { Changes: { Action: string; ResourceRecordSet: ResourceRecordSet }[] } }) => {
      const changes = input.ChangeBatch.Changes;
      const written = changes.find((c) => c.Action === 'CREATE' && c.ResourceRecordSet.SetIdentifier === 'green')!.ResourceRecordSet.Weight!;
      if (hold && hold.weight === written) {
        const parked = hold;
        hold = undefined;
        parked.parked();
        await parked.gate;
      }
      // Route 53: a DELETE must match the current record exactly, and the batch is all or nothing.
      const deletes = changes.filter((c) => c.Action === 'DELETE').map((c) => JSON.stringify(c.ResourceRecordSet));
      if (!deletes.every((d) => records.some((r) => JSON.stringify(r) === d))) {
        refused++;
        throw new InvalidChangeBatch({ message: 'the values provided do not match the current values', $metadata: { httpStatusCode: 400 } });
      }
      records = changes.filter((c) => c.Action === 'CREATE').map((c) => structuredClone(c.ResourceRecordSet));
      mirror.weight = written;
      return { ChangeInfo: { Id: 'C', Status: 'INSYNC', SubmittedAt: new Date() } };
    });
    const fakeClock = new FakeClock();
    const health = new SimulatedHealth(mirror, 42);
    health.requestsPerWindow = 5000;
    health.clock = fakeClock;
    const store = new MemoryStore();
    const controller = new MigrationController({
      clock: fakeClock,
      store,
      traffic: traffic(),
      health,
      probes: new FakeProbes(fakeClock),
      capacity: new FakeCapacity(),
      events: new CollectingSink(),
    });
    await controller.start(SPEC);
    let status = '';
    for (let i = 0; i < 300 && status !== 'baking'; i++, fakeClock.advance(1000)) status = (await controller.tick(SPEC.id)).record.status;
    expect(status).toBe('baking');
    const parked = parkAt(50);
    let tickA: Promise<unknown> | undefined;
    for (let i = 0; i < 300 && !tickA; i++) {
      fakeClock.advance(1000);
      const tick = controller.tick(SPEC.id);
      if ((await Promise.race([tick.then(() => 'done'), parked.then(() => 'parked')])) === 'parked') tickA = tick;
    }
    expect(tickA, 'tick A should have sent the 50 % batch').toBeDefined();
    await controller.command(SPEC.id, Command.ABORT, 'operator abort');
    release();
    await tickA!.catch(() => undefined);
    expect(refused).toBe(1);
    expect(records.map((r) => r.Weight)).toEqual([100, 0]);
    for (let i = 0; i < 3; i++, fakeClock.advance(1000)) await controller.tick(SPEC.id);
    expect((await store.load(SPEC.id))!.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(records.map((r) => r.Weight)).toEqual([100, 0]);
  });
});
