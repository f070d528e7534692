import {
  CloudWatchClient,
  DescribeAlarmsCommand,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  type MetricDataResult,
} from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProbeHealth, Side } from '../../lambda/core/ports';
import { LoadBalancerHealth, type LoadBalancerHealthProps } from '../../lambda/aws/load-balancer-health';

const cwMock = mockClient(CloudWatchClient);
const cloudWatch = new CloudWatchClient({ region: 'us-east-1' });
let warnings: string[] = [];

const ALB = 'app/shop/50dc6c495c0c9188';
const OLD_TG = 'targetgroup/shop-blue/73e2d6bc24d8a067';
const NEW_TG = 'targetgroup/shop-green/943f017f100becff';
const OLD_ALB = 'app/shop-2019/1a2b3c4d5e6f7a8b';
const NEW_ALB = 'app/shop-2026/8b7a6f5e4d3c2b1a';

/** Weighted target groups behind one ALB. */
function health(overrides: Partial<LoadBalancerHealthProps> = {}) {
  return new LoadBalancerHealth({
    cloudWatch,
    old: { loadBalancer: ALB, targetGroup: OLD_TG },
    new: { loadBalancer: ALB, targetGroup: NEW_TG },
    onWarning: (m) => warnings.push(m),
    ...overrides,
  });
}

/** One ALB per side (a DNS migration). */
function dnsHealth(overrides: Partial<LoadBalancerHealthProps> = {}) {
  return health({ old: { loadBalancer: OLD_ALB }, new: { loadBalancer: NEW_ALB }, ...overrides });
}

afterEach(() => {
  cwMock.reset();
  warnings = [];
});

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

const TG_SIGNALS = ['requests', 'target4xx', 'target5xx', 'connectionErrors', 'latencyP99'];
const ALB_SIGNALS = ['requests', 'target4xx', 'target5xx', 'elb5xx', 'latencyP99'];

/** Results for every query id, with the given values (Complete). */
function results(values: Record<string, number[]>, signals: readonly string[] = TG_SIGNALS): MetricDataResult[] {
  const ids = signals.flatMap((s) => [`old_${s}`, `new_${s}`]);
  return ids.map((Id) => ({ Id, StatusCode: 'Complete', Values: values[Id] ?? [], Timestamps: (values[Id] ?? []).map((_, i) => new Date(T0 + i * MIN)) }));
}

function lastInput(): GetMetricDataCommandInput {
  const calls = cwMock.commandCalls(GetMetricDataCommand);
  return calls[calls.length - 1]!.args[0].input as GetMetricDataCommandInput;
}

function probeCounts(old: ProbeHealth, neu: ProbeHealth): Record<Side, ProbeHealth> {
  return { old, new: neu };
}

describe('LoadBalancerHealth.queries', () => {
  it('should read both target groups of one ALB in ONE GetMetricData call with {TargetGroup, LoadBalancer}', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [100] }) });
    await health().readWindow(T0 + 2 * MIN + 5_000, T0 + 7 * MIN + 5_000);

    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    const input = lastInput();
    // Whole minutes, from the one holding fromMs to the last one that ended ≥ 2 minutes before toMs.
    expect(input.StartTime).toEqual(new Date(T0 + 2 * MIN));
    expect(input.EndTime).toEqual(new Date(T0 + 5 * MIN));
    expect(input.MetricDataQueries!.map((q) => q.Id)).toEqual([...TG_SIGNALS.map((s) => `old_${s}`), ...TG_SIGNALS.map((s) => `new_${s}`)]);
    const byId = new Map(input.MetricDataQueries!.map((q) => [q.Id, q]));
    const newGroup = [
      { Name: 'TargetGroup', Value: NEW_TG },
      { Name: 'LoadBalancer', Value: ALB },
    ];
    const expected: Record<string, [string, string]> = {
      requests: ['RequestCount', 'Sum'],
      target4xx: ['HTTPCode_Target_4XX_Count', 'Sum'],
      target5xx: ['HTTPCode_Target_5XX_Count', 'Sum'],
      connectionErrors: ['TargetConnectionErrorCount', 'Sum'],
      latencyP99: ['TargetResponseTime', 'p99'],
    };
    for (const [signal, [MetricName, Stat]] of Object.entries(expected)) {
      expect(byId.get(`new_${signal}`)).toMatchObject({
        MetricStat: { Metric: { Namespace: 'AWS/ApplicationELB', MetricName, Dimensions: newGroup }, Period: 60, Stat },
        ReturnData: true,
      });
    }
    expect(byId.get('old_requests')?.MetricStat?.Metric?.Dimensions).toEqual([
      { Name: 'TargetGroup', Value: OLD_TG },
      { Name: 'LoadBalancer', Value: ALB },
    ]);
    // HTTPCode_ELB_5XX_Count is not published per target group.
    expect(input.MetricDataQueries!.some((q) => q.MetricStat?.Metric?.MetricName === 'HTTPCode_ELB_5XX_Count')).toBe(false);
  });

  it('should read each side\'s own ALB with {LoadBalancer} and its ELB 5XX when the sides have no target group', () => {
    const queries = dnsHealth().queries();
    expect(queries).toHaveLength(10);
    expect(queries.find((q) => q.Id === 'old_elb5xx')?.MetricStat).toEqual({
      Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_ELB_5XX_Count', Dimensions: [{ Name: 'LoadBalancer', Value: OLD_ALB }] },
      Period: 60,
      Stat: 'Sum',
    });
    expect(queries.find((q) => q.Id === 'new_latencyP99')?.MetricStat).toEqual({
      Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'TargetResponseTime', Dimensions: [{ Name: 'LoadBalancer', Value: NEW_ALB }] },
      Period: 60,
      Stat: 'p99',
    });
    expect(queries.every((q) => q.MetricStat?.Metric?.Dimensions?.length === 1)).toBe(true);
    expect(queries.some((q) => q.MetricStat?.Metric?.MetricName === 'TargetConnectionErrorCount')).toBe(false);
  });

  it('should add TC(S:) on TargetResponseTime with the threshold written exactly in seconds, only when asked', () => {
    const stats = (slowerThanMs: number) =>
      health()
        .queries({ slowerThanMs })
        .filter((q) => q.Id?.endsWith('_slow'))
        .map((q) => q.MetricStat?.Stat);
    expect(stats(250)).toEqual(['TC(0.25:)', 'TC(0.25:)']);
    expect(stats(1500)).toEqual(['TC(1.5:)', 'TC(1.5:)']);
    expect(stats(89.2)).toEqual(['TC(0.09:)', 'TC(0.09:)']);
    expect(stats(7)).toEqual(['TC(0.007:)', 'TC(0.007:)']);
    expect(stats(2000)).toEqual(['TC(2:)', 'TC(2:)']);
    expect(stats(0)).toEqual(['TC(0:)', 'TC(0:)']);
    const slow = health().queries({ slowerThanMs: 250 }).find((q) => q.Id === 'new_slow');
    expect(slow?.MetricStat?.Metric).toEqual({
      Namespace: 'AWS/ApplicationELB',
      MetricName: 'TargetResponseTime',
      Dimensions: [
        { Name: 'TargetGroup', Value: NEW_TG },
        { Name: 'LoadBalancer', Value: ALB },
      ],
    });
    expect(health().queries()).toHaveLength(10);
    expect(health().queries({ slowerThanMs: 250 })).toHaveLength(12);
    expect(() => health().queries({ slowerThanMs: -1 })).toThrow(/slowerThanMs must be zero or more, got -1/);
    expect(() => health().queries({ slowerThanMs: Number.NaN })).toThrow(/slowerThanMs must be zero or more/);
  });
});

describe('LoadBalancerHealth.readWindow', () => {
  it('should add up the minutes, add connection errors to target 5XX and keep the worst p99 in ms', async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({
        old_requests: [500, 400],
        old_target4xx: [5, 5],
        old_target5xx: [1],
        old_latencyP99: [0.08, 0.123],
        new_requests: [50, 40],
        new_target4xx: [1],
        new_target5xx: [2, 1],
        new_connectionErrors: [3],
        new_latencyP99: [0.2, 0.15],
      }),
    });
    const window = await health().readWindow(T0, T0 + 4 * MIN);
    expect(window).toEqual({
      fromMs: T0,
      toMs: T0 + 2 * MIN,
      old: { requests: 900, errors4xx: 10, errors5xx: 1, latencyMs: 123 },
      new: { requests: 90, errors4xx: 1, errors5xx: 6, latencyMs: 200 },
    });
  });

  it("should add the ALB's own 5XX to target 5XX for whole-ALB sides", async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results(
        { old_requests: [300], old_elb5xx: [2], new_requests: [30], new_target5xx: [1], new_elb5xx: [4], new_latencyP99: [0.0456] },
        ALB_SIGNALS,
      ),
    });
    const window = await dnsHealth().readWindow(T0, T0 + 3 * MIN);
    expect(window?.old).toEqual({ requests: 300, errors4xx: 0, errors5xx: 2 });
    expect(window?.new).toEqual({ requests: 30, errors4xx: 0, errors5xx: 5, latencyMs: 45.6 });
  });

  it('should count a side the ALB failed entirely as requests with 5XX, not as a side without traffic', async () => {
    // A 503 the ALB answers with no target to choose is not in RequestCount.
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({ old_requests: [300], new_elb5xx: [40] }, ALB_SIGNALS),
    });
    const window = await dnsHealth().readWindow(T0, T0 + 3 * MIN);
    expect(window?.new).toEqual({ requests: 40, errors4xx: 0, errors5xx: 40 });
    // More connection errors than requests (retried connections): capped at the requests.
    cwMock.reset();
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [10], old_connectionErrors: [3], new_requests: [10], new_target5xx: [4], new_connectionErrors: [9] }) });
    const capped = await health().readWindow(T0, T0 + 3 * MIN);
    expect(capped?.old).toEqual({ requests: 10, errors4xx: 0, errors5xx: 3 });
    expect(capped?.new).toEqual({ requests: 13, errors4xx: 0, errors5xx: 13 });
  });

  it('should count slow requests with TC on TargetResponseTime in the same call, capped at the requests', async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({ old_requests: [500, 400], new_requests: [5], old_slow: [5, 4], new_slow: [7] }, [...TG_SIGNALS, 'slow']),
    });
    const window = await health().readWindow(T0, T0 + 4 * MIN, { slowerThanMs: 250 });
    expect(window?.old).toMatchObject({ requests: 900, slowRequests: 9 });
    expect(window?.new).toMatchObject({ requests: 5, slowRequests: 5 });
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    expect(lastInput().MetricDataQueries!.find((q) => q.Id === 'old_slow')?.MetricStat?.Stat).toBe('TC(0.25:)');
    // Not asked: no TC query, no slow counts.
    cwMock.reset();
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [500] }) });
    const plain = await health().readWindow(T0, T0 + 4 * MIN);
    expect(plain?.old.slowRequests).toBeUndefined();
    expect(lastInput().MetricDataQueries!.some((q) => q.Id?.endsWith('_slow'))).toBe(false);
  });

  it("should subtract the probe's own requests, 4XX (its deliberate 404 and 413) and 5XX from each side", async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results(
        {
          old_requests: [500, 420],
          old_target4xx: [10, 12],
          old_target5xx: [2],
          old_latencyP99: [0.1],
          new_requests: [60, 40],
          new_target4xx: [9],
          new_target5xx: [1],
          new_connectionErrors: [2],
          new_latencyP99: [0.3],
          new_slow: [6],
        },
        [...TG_SIGNALS, 'slow'],
      ),
    });
    const calls: [number, number][] = [];
    const h = health({
      probeTraffic: async (startMs, endMs) => {
        calls.push([startMs, endMs]);
        return probeCounts({ requests: 20, errors4xx: 8, errors5xx: 0 }, { requests: 24, errors4xx: 8, errors5xx: 1 });
      },
    });
    const window = await h.readWindow(T0 + 20_000, T0 + 4 * MIN + 10_000, { slowerThanMs: 250 });
    // Asked for exactly the minutes read.
    expect(calls).toEqual([[T0, T0 + 2 * MIN]]);
    expect(window?.old).toEqual({ requests: 900, errors4xx: 14, errors5xx: 2, latencyMs: 100, slowRequests: 0 });
    expect(window?.new).toEqual({ requests: 76, errors4xx: 1, errors5xx: 2, latencyMs: 300, slowRequests: 6 });
  });

  it('should clamp the subtraction at 0, and drop the latency of a side left with no request', async () => {
    // Only the probe reached the new side (weight 0): its requests and deliberate 4XX are all it has.
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({ old_requests: [300], old_target4xx: [1], new_requests: [20], new_target4xx: [6], new_latencyP99: [0.05] }),
    });
    const window = await health({
      // A run stamped in this minute whose first requests the ALB counted in the minute before.
      probeTraffic: async () => probeCounts({ requests: 0, errors5xx: 0 }, { requests: 24, errors4xx: 8, errors5xx: 2 }),
    }).readWindow(T0, T0 + 3 * MIN);
    expect(window?.old).toEqual({ requests: 300, errors4xx: 1, errors5xx: 0 });
    expect(window?.new).toEqual({ requests: 0, errors4xx: 0, errors5xx: 0 });
  });

  it('should subtract no 4XX for probe results recorded without a 4XX count', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [100], old_target4xx: [10], new_requests: [50], new_target4xx: [5] }) });
    const window = await health({
      probeTraffic: async () => probeCounts({ requests: 10, errors5xx: 0 }, { requests: 10, errors5xx: 0 }),
    }).readWindow(T0, T0 + 3 * MIN);
    expect(window?.old).toEqual({ requests: 90, errors4xx: 10, errors5xx: 0 });
    expect(window?.new).toEqual({ requests: 40, errors4xx: 5, errors5xx: 0 });
  });

  it("should treat the window as missing when the probe's traffic cannot be read", async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [100], new_requests: [10], new_target4xx: [8] }) });
    const failing = health({
      probeTraffic: async () => {
        throw new Error('probe results table unavailable');
      },
    });
    expect(await failing.readWindow(T0, T0 + 3 * MIN)).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/probe's own traffic could not be read; treating the window as missing/)]);
    // Counts that cannot be subtracted are a failure too.
    warnings = [];
    const broken = health({ probeTraffic: async () => ({ old: { requests: 1, errors5xx: 0 } }) as unknown as Record<Side, ProbeHealth> });
    expect(await broken.readWindow(T0, T0 + 3 * MIN)).toBeUndefined();
    const negative = health({ probeTraffic: async () => probeCounts({ requests: 1, errors5xx: 0 }, { requests: -1, errors5xx: 0 }) });
    expect(await negative.readWindow(T0, T0 + 3 * MIN)).toBeUndefined();
    expect(warnings).toHaveLength(2);
  });

  it('should not ask for the probe traffic when there is nothing to subtract from', async () => {
    let asked = 0;
    const probeTraffic = async () => {
      asked++;
      return probeCounts({ requests: 0, errors5xx: 0 }, { requests: 0, errors5xx: 0 });
    };
    // No whole ingested minute: no call at all.
    expect(await health({ probeTraffic }).readWindow(T0 + 10_000, T0 + 2 * MIN + 50_000)).toMatchObject({ fromMs: T0, toMs: T0 });
    // Not one datapoint: missing before the probe is asked.
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({}) });
    expect(await health({ probeTraffic }).readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(asked).toBe(0);
  });

  it('should return undefined (missing, never healthy) when no metric has a datapoint', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({}) });
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    cwMock.reset();
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({}, ALB_SIGNALS) });
    expect(await dnsHealth().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
  });

  it('should give zeros for a side without a datapoint when the other side has some', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [100] }) });
    expect((await health().readWindow(T0, T0 + 3 * MIN))?.new).toEqual({ requests: 0, errors4xx: 0, errors5xx: 0 });
  });

  it('should follow NextToken and merge the pages of partial data', async () => {
    const first = results({ old_requests: [100], new_requests: [10] }).map((r) => ({ ...r, StatusCode: 'PartialData' as const }));
    cwMock
      .on(GetMetricDataCommand)
      .resolvesOnce({ MetricDataResults: first, NextToken: 'page-2' })
      .resolvesOnce({ MetricDataResults: results({ old_requests: [200], new_requests: [20], new_target5xx: [1] }) });
    const window = await health().readWindow(T0, T0 + 5 * MIN);
    expect(window?.old.requests).toBe(300);
    expect(window?.new).toMatchObject({ requests: 30, errors5xx: 1 });
    const calls = cwMock.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.args[0].input.NextToken).toBe('page-2');
    expect(calls[1]!.args[0].input.MetricDataQueries).toEqual(calls[0]!.args[0].input.MetricDataQueries);
  });

  it('should treat data that stays partial after the page limit as missing', async () => {
    const partial = results({ old_requests: [1] }).map((r) => ({ ...r, StatusCode: 'PartialData' as const }));
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: partial, NextToken: 'again' });
    expect(await health({ maxPages: 3 }).readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(3);
    expect(warnings).toEqual([expect.stringMatching(/incomplete data; treating the window as missing/)]);
  });

  it('should treat a query CloudWatch could not answer as missing data', async () => {
    const broken = results({ old_requests: [100], new_requests: [10] }).map((r) =>
      r.Id === 'new_connectionErrors' ? { ...r, StatusCode: 'InternalError' as const, Messages: [{ Code: 'InternalError', Value: 'try later' }] } : r,
    );
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: broken });
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });

  it('should treat a query missing from the answer as missing data', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [100] }).filter((r) => r.Id !== 'old_latencyP99') });
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
  });

  it('should treat a failed call (throttled after the SDK retries) as missing data, not as healthy', async () => {
    cwMock.on(GetMetricDataCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/GetMetricData failed; treating the window as missing/)]);
  });

  it('should return an empty window, without a call, while no whole minute has been ingested', async () => {
    const zero = { requests: 0, errors4xx: 0, errors5xx: 0 };
    expect(await health().readWindow(T0 + 10_000, T0 + 2 * MIN + 50_000)).toEqual({ fromMs: T0, toMs: T0, old: zero, new: zero });
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
  });

  it('should read each minute once when the controller continues from the end of the last window', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [1], new_requests: [1] }) });
    const h = health();
    const a = await h.readWindow(T0 + 7_000, T0 + 3 * MIN + 9_000);
    const b = await h.readWindow(a!.toMs, T0 + 4 * MIN + 3_000);
    const c = await h.readWindow(b!.toMs, T0 + 4 * MIN + 50_000);
    expect([a, b, c].map((w) => [w!.fromMs - T0, w!.toMs - T0])).toEqual([
      [0, MIN],
      [MIN, 2 * MIN],
      [2 * MIN, 2 * MIN],
    ]);
  });

  it('should use the ingestion delay it is given', () => {
    expect(health().readRange(T0, T0 + 5 * MIN)).toEqual({ startMs: T0, endMs: T0 + 3 * MIN });
    expect(health({ ingestionDelayMs: 60_000 }).readRange(T0, T0 + 5 * MIN)).toEqual({ startMs: T0, endMs: T0 + 4 * MIN });
    expect(health({ ingestionDelayMs: 0 }).readRange(T0 + 30_000, T0 + 30_001)).toEqual({ startMs: T0, endMs: T0 });
  });

  it('fails when the window is inverted', async () => {
    await expect(health().readWindow(T0, T0)).rejects.toThrow(/fromMs < toMs/);
  });

  it('should wait for minReadMinutes whole ingested minutes, with no call before, then read them in one call', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [300, 300, 300], new_requests: [30, 30, 30] }) });
    const h = health({ minReadMinutes: 3 });
    const empty = await h.readWindow(T0, T0 + 4 * MIN);
    expect(empty).toMatchObject({ fromMs: T0, toMs: T0 });
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    expect(await h.readWindow(T0, T0 + 5 * MIN)).toMatchObject({ fromMs: T0, toMs: T0 + 3 * MIN, old: { requests: 900 }, new: { requests: 90 } });
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    expect(() => health({ minReadMinutes: 1.5 })).toThrow(/minReadMinutes must be a whole number of minutes from 1 to 60, got 1.5/);
  });
});

describe('LoadBalancerHealth props', () => {
  it('should refuse names CloudWatch would never match (ARNs, missing parts)', () => {
    expect(() => health({ new: { loadBalancer: `arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/${ALB}`, targetGroup: NEW_TG } })).toThrow(
      /new\.loadBalancer must be an Application Load Balancer's full name "app\/<name>\/<id>"/,
    );
    expect(() => health({ old: { loadBalancer: 'net/shop/50dc6c495c0c9188' }, new: { loadBalancer: NEW_ALB } })).toThrow(/old\.loadBalancer/);
    expect(() => health({ new: { loadBalancer: ALB, targetGroup: 'shop-green' } })).toThrow(/new\.targetGroup must be a target group's full name/);
  });

  it('should refuse sides that would count each other', () => {
    // A whole-ALB side on the ALB the other side's group is behind counts that group too.
    expect(() => health({ old: { loadBalancer: ALB } })).toThrow(/old and new share load balancer/);
    expect(() => health({ new: { loadBalancer: ALB, targetGroup: OLD_TG } })).toThrow(/old and new share load balancer/);
    expect(() => dnsHealth({ new: { loadBalancer: OLD_ALB } })).toThrow(/old and new share load balancer/);
    // Each side a group, on different ALBs, is fine.
    expect(() => health({ new: { loadBalancer: NEW_ALB, targetGroup: OLD_TG } })).not.toThrow();
  });

  it('should refuse a negative ingestion delay and a page limit below 1', () => {
    expect(() => health({ ingestionDelayMs: -1 })).toThrow(/ingestionDelayMs must be zero or more/);
    expect(() => health({ maxPages: 0 })).toThrow(/maxPages must be a whole number/);
  });
});

describe('LoadBalancerHealth.readAlarms', () => {
  it('should make no call when no alarm is configured', async () => {
    expect(await health().readAlarms()).toEqual([]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)).toHaveLength(0);
  });

  it('should read metric and composite alarms by name through the shared code, and report a missing one as unknown', async () => {
    cwMock.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [
        {
          AlarmName: 'alb-5xx',
          StateValue: 'ALARM',
          StateReason: 'Threshold Crossed',
          StateTransitionedTimestamp: new Date(1_800_000_000_000),
          StateUpdatedTimestamp: new Date(1_800_000_090_000),
        },
      ],
      CompositeAlarms: [{ AlarmName: 'slo', StateValue: 'OK', StateUpdatedTimestamp: new Date(1_700_000_000_000) }],
    });
    const alarms = await health({ alarmNames: ['alb-5xx', 'slo', 'gone', 'alb-5xx'] }).readAlarms();
    expect(alarms).toEqual([
      { name: 'alb-5xx', state: 'ALARM', reason: 'Threshold Crossed', changedAtMs: 1_800_000_000_000 },
      { name: 'slo', state: 'OK', changedAtMs: 1_700_000_000_000 },
      { name: 'gone', state: 'INSUFFICIENT_DATA', reason: 'alarm not found (deleted or misnamed)' },
    ]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)[0]!.args[0].input).toEqual({
      AlarmNames: ['alb-5xx', 'slo', 'gone'],
      AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
    });
  });

  it('should split more than 100 names over several calls and stop following NextToken at the page limit', async () => {
    const names = Array.from({ length: 150 }, (_, i) => `a${i}`);
    cwMock
      .on(DescribeAlarmsCommand)
      .resolvesOnce({ MetricAlarms: names.slice(0, 50).map((n) => ({ AlarmName: n, StateValue: 'OK' })), NextToken: 't' })
      .resolvesOnce({ MetricAlarms: names.slice(50, 100).map((n) => ({ AlarmName: n, StateValue: 'OK' })), NextToken: 'more' })
      .resolvesOnce({ MetricAlarms: names.slice(100).map((n) => ({ AlarmName: n, StateValue: 'OK' })) });
    const alarms = await health({ alarmNames: names, maxPages: 2 }).readAlarms();
    expect(alarms.every((a) => a.state === 'OK')).toBe(true);
    expect(cwMock.commandCalls(DescribeAlarmsCommand).map((c) => c.args[0].input.AlarmNames?.length)).toEqual([100, 100, 50]);
  });

  it('should let a failed DescribeAlarms fail the tick rather than pretend the alarms are quiet', async () => {
    cwMock.on(DescribeAlarmsCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    await expect(health({ alarmNames: ['alb-5xx'] }).readAlarms()).rejects.toThrow(/Rate exceeded/);
  });
});
