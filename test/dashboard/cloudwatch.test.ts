/**
 * The dashboard's CloudWatch read (dashboard/cloudwatch.ts) against a mocked CloudWatch: one
 * GetMetricData request per refresh, the migration's dimensions in its queries, continuation
 * pages within the same read, the last data kept (stale) when a read is throttled, a clear status
 * without credentials, and the series as the page draws them (view.ts).
 */
import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery, type MetricDataResult } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { CloudWatchHealth } from '../../lambda/aws/cloudwatch-health';
import { MigrationStatus } from '../../lambda/core/model';
import type { MigrationState } from '../../ops/types';
import { ControllerMetric, CUTOVER_METRICS_NAMESPACE, DEFAULT_APP_METRICS_NAMESPACE as CONSTRUCT_APP_NAMESPACE } from '../../lib/metrics';
import { CloudWatchLiveMetrics, DEFAULT_APP_METRICS_NAMESPACE } from '../../dashboard/cloudwatch';
import { cloudWatchView } from '../../dashboard/view';

const MINUTE = 60_000;
/** Half a minute past a minute boundary: the period is rounded to whole minutes. */
const NOW = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE) + 30_000;
const cloudWatch = new CloudWatchClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const cwMock = mockClient(cloudWatch);
afterEach(() => cwMock.reset());

function aliasState(overrides: Partial<MigrationState> = {}): MigrationState {
  return {
    id: 'api:live:2',
    key: 'api:live',
    source: 'aws',
    status: MigrationStatus.BAKING,
    weight: 10,
    createdAtMs: NOW - 30 * MINUTE,
    updatedAtMs: NOW - MINUTE,
    metadata: { functionName: 'api', aliasName: 'live', oldVersion: '1', newVersion: '2' },
    recentEvents: [],
    ...overrides,
  };
}

/** One result per query: `values(id)` datapoints at the minutes given, oldest first. */
function answer(queries: readonly MetricDataQuery[], values: (id: string) => readonly (readonly [number, number])[]): MetricDataResult[] {
  return queries.map((q) => {
    const points = values(q.Id!);
    return { Id: q.Id, Label: q.Label, StatusCode: 'Complete', Timestamps: points.map(([at]) => new Date(at)), Values: points.map(([, v]) => v) };
  });
}

function sentQueries(call = 0): MetricDataQuery[] {
  return cwMock.commandCalls(GetMetricDataCommand)[call]!.args[0].input.MetricDataQueries ?? [];
}

const M1 = NOW - 3 * MINUTE - (NOW % MINUTE);
const M2 = M1 + MINUTE;
/** A healthy minute and a minute where the new side fails 10 % of 200 invocations. */
const DATA: Record<string, readonly (readonly [number, number])[]> = {
  ctl_weight: [
    [M1, 10],
    [M2, 10],
  ],
  ctl_old_capacity: [[M1, 5]],
  ctl_pinned_capacity: [[M1, 5]],
  new_invocations: [
    [M1, 100],
    [M2, 200],
  ],
  new_errors5xx: [[M2, 15]],
  new_lambdaErrors: [[M2, 5]],
  new_errors4xx: [[M2, 2]],
  new_durationP99: [
    [M1, 80],
    [M2, 300],
  ],
  old_invocations: [
    [M1, 900],
    [M2, 1800],
  ],
  old_errors4xx: [[M2, 18]],
  old_durationP99: [[M2, 70]],
};

describe('CloudWatchLiveMetrics', () => {
  it('should make exactly one GetMetricData request per refresh, and none sooner than the interval', async () => {
    cwMock.on(GetMetricDataCommand).callsFake((input) => ({ MetricDataResults: answer(input.MetricDataQueries, (id) => DATA[id] ?? []) }));
    const reader = new CloudWatchLiveMetrics({ cloudWatch, minIntervalMs: 60_000 });
    const state = aliasState();
    const first = await reader.read(state, NOW);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    expect(first).toMatchObject({ status: 'live', readAtMs: NOW, pages: 1, partial: false, health: 'lambda-alias' });
    // A refresh 10 s later (the page's stream reads DynamoDB more often): the last read stands.
    expect(await reader.read(state, NOW + 10_000)).toBe(first);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    for (let i = 1; i <= 3; i++) await reader.read(state, NOW + i * 60_000);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(4);
    // Every request is the same set of metrics, per minute, over the last period.
    const input = cwMock.commandCalls(GetMetricDataCommand)[3]!.args[0].input;
    expect(input.MetricDataQueries).toHaveLength(first!.metricsRequested);
    expect(input.MetricDataQueries!.every((q) => q.MetricStat?.Period === 60)).toBe(true);
    expect(input.StartTime!.getTime()).toBe(state.createdAtMs! - (state.createdAtMs! % MINUTE));
    expect(input.EndTime!.getTime() % MINUTE).toBe(0);
    expect(input.EndTime!.getTime()).toBeGreaterThanOrEqual(NOW + 3 * 60_000);
  });

  it("should query the controller's metrics by the migration's key and each version's health as the judge reads it", async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    await new CloudWatchLiveMetrics({ cloudWatch, appMetricsNamespace: 'Shop/App' }).read(aliasState(), NOW);
    const queries = sentQueries();
    const controller = queries.filter((q) => q.MetricStat?.Metric?.Namespace === CUTOVER_METRICS_NAMESPACE);
    // The names the construct's dashboards and alarms use (lib/ cannot be imported at run time: it loads aws-cdk-lib).
    for (const q of controller) expect(Object.values(ControllerMetric)).toContain(q.MetricStat!.Metric!.MetricName);
    expect(DEFAULT_APP_METRICS_NAMESPACE).toBe(CONSTRUCT_APP_NAMESPACE);
    expect(controller.map((q) => q.MetricStat!.Metric!.MetricName).sort()).toEqual(['OldCapacity', 'PinnedCapacity', 'ResidualRequests', 'Weight']);
    for (const q of controller) expect(q.MetricStat!.Metric!.Dimensions).toEqual([{ Name: 'Migration', Value: 'api:live' }]);
    // The health queries are the controller's own, built by CloudWatchHealth for the same versions.
    const judge = new CloudWatchHealth({ cloudWatch, functionName: 'api', aliasName: 'live', oldVersion: '1', newVersion: '2', appMetricsNamespace: 'Shop/App' }).queries({}, true);
    expect(queries.filter((q) => q.MetricStat?.Metric?.Namespace !== 'Cutover')).toEqual(judge);
    const newInvocations = queries.find((q) => q.Id === 'new_invocations')!;
    expect(newInvocations.MetricStat!.Metric).toEqual({
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [
        { Name: 'FunctionName', Value: 'api' },
        { Name: 'Resource', Value: 'api:live' },
        { Name: 'ExecutedVersion', Value: '2' },
      ],
    });
    expect(queries.find((q) => q.Id === 'old_errors5xx')!.MetricStat!.Metric).toEqual({
      Namespace: 'Shop/App',
      MetricName: 'Errors5xx',
      Dimensions: [
        { Name: 'FunctionName', Value: 'api' },
        { Name: 'Version', Value: '1' },
      ],
    });
  });

  it('should read a fleet migration recorded without its sides by its key, with the controller metrics only, and say why', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const fleet = aliasState({ id: 'shop:7', key: 'shop', metadata: { target: 'load-balancer', loadBalancer: 'app/shop/1', oldRelease: 'a', newRelease: 'b' } });
    const read = await new CloudWatchLiveMetrics({ cloudWatch }).read(fleet, NOW);
    expect(read).toMatchObject({ status: 'live', health: 'none', metricsRequested: 4 });
    expect(read!.healthNote).toMatch(/target groups/);
    expect(sentQueries().every((q) => q.MetricStat!.Metric!.Dimensions![0]!.Value === 'shop')).toBe(true);
  });

  it("should read a load-balancer migration's target groups with the controller's own ALB queries", async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const metadata = { target: 'load-balancer', loadBalancer: 'app/shop/1', oldTargetGroup: 'targetgroup/blue/1', newTargetGroup: 'targetgroup/green/2', oldRelease: 'a', newRelease: 'b' };
    const read = await new CloudWatchLiveMetrics({ cloudWatch }).read(aliasState({ id: 'shop:b', key: 'shop', metadata }), NOW);
    expect(read).toMatchObject({ status: 'live', health: 'load-balancer', metricsRequested: 14 });
    expect(read!.healthNote).toBeUndefined();
    const alb = sentQueries().filter((q) => q.MetricStat!.Metric!.Namespace === 'AWS/ApplicationELB');
    expect(alb).toHaveLength(10);
    expect(alb.find((q) => q.Id === 'new_requests')!.MetricStat!.Metric!.Dimensions).toEqual([
      { Name: 'TargetGroup', Value: 'targetgroup/green/2' },
      { Name: 'LoadBalancer', Value: 'app/shop/1' },
    ]);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
  });

  it("should read a DNS migration's two load balancers", async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const metadata = { target: 'dns', recordName: 'api.example.com', oldLoadBalancer: 'app/old/1', newLoadBalancer: 'app/new/2', oldRelease: 'a', newRelease: 'b' };
    const read = await new CloudWatchLiveMetrics({ cloudWatch }).read(aliasState({ id: 'api:b', key: 'api', metadata }), NOW);
    expect(read).toMatchObject({ health: 'load-balancer' });
    const ids = sentQueries().map((q) => q.Id);
    expect(ids).toEqual(expect.arrayContaining(['old_elb5xx', 'new_elb5xx']));
    expect(sentQueries().find((q) => q.Id === 'old_requests')!.MetricStat!.Metric!.Dimensions).toEqual([{ Name: 'LoadBalancer', Value: 'app/old/1' }]);
  });

  it('should follow NextToken within the same read: the same queries and period, and merge the pages', async () => {
    const pageOne = (queries: MetricDataQuery[]) =>
      answer(queries, (id) => (DATA[id] ?? []).slice(0, 1)).map((r) => ({ ...r, StatusCode: r.Values!.length > 0 ? 'PartialData' : 'Complete' }));
    cwMock
      .on(GetMetricDataCommand)
      .callsFakeOnce((input) => ({ MetricDataResults: pageOne(input.MetricDataQueries), NextToken: 'page-2' }))
      .callsFakeOnce((input) => ({ MetricDataResults: answer(input.MetricDataQueries, (id) => (DATA[id] ?? []).slice(1)) }));
    const read = await new CloudWatchLiveMetrics({ cloudWatch }).read(aliasState(), NOW);
    const calls = cwMock.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.NextToken).toBeUndefined();
    expect(calls[1]!.NextToken).toBe('page-2');
    const { NextToken: _token, ...rest } = calls[1]!;
    const { NextToken: _none, ...first } = calls[0]!;
    expect(rest).toEqual(first);
    expect(read).toMatchObject({ status: 'live', pages: 2, partial: false });
    expect(read!.series.new_invocations!.points).toEqual([
      [M1, 100],
      [M2, 200],
    ]);
  });

  it('should mark a read partial when pages are left at the page limit', async () => {
    cwMock.on(GetMetricDataCommand).callsFake((input) => ({ MetricDataResults: answer(input.MetricDataQueries, (id) => DATA[id] ?? []), NextToken: 'more' }));
    const read = await new CloudWatchLiveMetrics({ cloudWatch, maxPages: 2 }).read(aliasState(), NOW);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(2);
    expect(read).toMatchObject({ status: 'live', pages: 2, partial: true });
  });

  it('should keep the last data and mark it stale when a read is throttled', async () => {
    cwMock
      .on(GetMetricDataCommand)
      .callsFakeOnce((input) => ({ MetricDataResults: answer(input.MetricDataQueries, (id) => DATA[id] ?? []) }))
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const reader = new CloudWatchLiveMetrics({ cloudWatch, minIntervalMs: 0 });
    const good = await reader.read(aliasState(), NOW);
    const throttled = await reader.read(aliasState(), NOW + 5000);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(2);
    expect(throttled).toMatchObject({ status: 'stale', readAtMs: NOW, attemptedAtMs: NOW + 5000 });
    expect(throttled!.message).toMatch(/throttled.*showing the data read at/);
    expect(throttled!.series).toEqual(good!.series);
    expect(reader.cached('api:live:2')).toBe(throttled);
  });

  it('should say how to give credentials when the chain has none, without failing', async () => {
    cwMock.on(GetMetricDataCommand).rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    const read = await new CloudWatchLiveMetrics({ cloudWatch }).read(aliasState(), NOW);
    expect(read).toMatchObject({ status: 'no-credentials', pages: 0, series: {} });
    expect(read!.readAtMs).toBeUndefined();
    expect(read!.message).toMatch(/no usable AWS credentials.*AWS_PROFILE/);
  });

  it('should not read a settled period again once its minutes have landed', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const done = aliasState({ status: MigrationStatus.ROLLED_BACK, updatedAtMs: NOW - 60 * MINUTE });
    const reader = new CloudWatchLiveMetrics({ cloudWatch, minIntervalMs: 0 });
    await reader.read(done, NOW);
    await reader.read(done, NOW + MINUTE);
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    expect(cwMock.commandCalls(GetMetricDataCommand)[0]!.args[0].input.EndTime!.getTime()).toBeLessThanOrEqual(NOW - 49 * MINUTE);
  });

  it('should refuse settings that would read nothing or too much', () => {
    expect(() => new CloudWatchLiveMetrics({ lookbackMs: 1000 })).toThrow(/lookbackMs must be from 60000/);
    expect(() => new CloudWatchLiveMetrics({ lookbackMs: 48 * 3_600_000 })).toThrow(/got 172800000/);
    expect(() => new CloudWatchLiveMetrics({ maxPages: 0 })).toThrow(/maxPages/);
  });
});

describe('cloudWatchView', () => {
  it('should combine each minute as the judge does: invocations, app 5XX plus Lambda errors, p99', async () => {
    cwMock.on(GetMetricDataCommand).callsFake((input) => ({ MetricDataResults: answer(input.MetricDataQueries, (id) => DATA[id] ?? []) }));
    const view = cloudWatchView((await new CloudWatchLiveMetrics({ cloudWatch }).read(aliasState(), NOW))!);
    expect(view.label).toBe('CloudWatch');
    expect(view.minutes).toEqual([
      { atMs: M1, newRequests: 100, oldRequests: 900, newRate5xx: 0, oldRate5xx: 0, newRate4xx: 0, oldRate4xx: 0, newLatencyMs: 80, oldLatencyMs: null },
      { atMs: M2, newRequests: 200, oldRequests: 1800, newRate5xx: 0.1, oldRate5xx: 0, newRate4xx: 0.01, oldRate4xx: 0.01, newLatencyMs: 300, oldLatencyMs: 70 },
    ]);
    expect(view.weight).toEqual([
      { atMs: M1, weight: 10 },
      { atMs: M2, weight: 10 },
    ]);
    expect(view.capacity).toEqual([{ atMs: M1, current: 5, pinned: 5 }]);
    expect(view.missing).toContain('old_requests');
    expect(view.missing).not.toContain('new_invocations');
  });

  it("should combine an ALB side's minute as the controller does: target 5XX plus failed connections, p99 seconds to ms", async () => {
    const alb: Record<string, readonly (readonly [number, number])[]> = {
      new_requests: [[M1, 200]],
      new_target5xx: [[M1, 10]],
      new_connectionErrors: [[M1, 10]],
      new_target4xx: [[M1, 4]],
      new_latencyP99: [[M1, 0.25]],
      old_requests: [[M1, 800]],
      old_latencyP99: [[M1, 0.1]],
    };
    cwMock.on(GetMetricDataCommand).callsFake((input) => ({ MetricDataResults: answer(input.MetricDataQueries, (id) => alb[id] ?? []) }));
    const metadata = { target: 'load-balancer', loadBalancer: 'app/shop/1', oldTargetGroup: 'targetgroup/blue/1', newTargetGroup: 'targetgroup/green/2' };
    const view = cloudWatchView((await new CloudWatchLiveMetrics({ cloudWatch }).read(aliasState({ id: 'shop:b', key: 'shop', metadata }), NOW))!);
    expect(view.minutes).toEqual([
      { atMs: M1, newRequests: 200, oldRequests: 800, newRate5xx: 0.1, oldRate5xx: 0, newRate4xx: 0.02, oldRate4xx: 0, newLatencyMs: 250, oldLatencyMs: 100 },
    ]);
  });
});
