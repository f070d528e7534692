import {
  CloudWatchClient,
  DescribeAlarmsCommand,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  type MetricDataResult,
} from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { CloudWatchHealth } from '../../lambda/aws/cloudwatch-health';

const cwMock = mockClient(CloudWatchClient);
const cloudWatch = new CloudWatchClient({ region: 'us-east-1' });
let warnings: string[] = [];

function health(overrides: Partial<ConstructorParameters<typeof CloudWatchHealth>[0]> = {}) {
  return new CloudWatchHealth({
    cloudWatch,
    functionName: 'api',
    aliasName: 'live',
    oldVersion: '4',
    newVersion: '5',
    appMetricsNamespace: 'DemoApp',
    onWarning: (m) => warnings.push(m),
    ...overrides,
  });
}

afterEach(() => {
  cwMock.reset();
  warnings = [];
});

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

const SIGNALS = ['requests', 'errors4xx', 'errors5xx', 'invocations', 'lambdaErrors', 'durationP99'];

/** Results for every query id, with the given values (Complete). */
function results(values: Record<string, number[]>, signals: readonly string[] = SIGNALS): MetricDataResult[] {
  const ids = signals.flatMap((s) => [`old_${s}`, `new_${s}`]);
  return ids.map((Id) => ({ Id, StatusCode: 'Complete', Values: values[Id] ?? [], Timestamps: (values[Id] ?? []).map((_, i) => new Date(T0 + i * MIN)) }));
}

describe('CloudWatchHealth: fewer metrics requested (GetMetricData is billed per metric requested)', () => {
  it('should wait for minReadMinutes whole ingested minutes, with no call before, then read them in one call', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_invocations: [300, 300, 300], new_invocations: [30, 30, 30] }) });
    const h = health({ minReadMinutes: 3 });
    // Two whole ingested minutes since T0 (the ingestion delay is 2 minutes): an empty window, no call.
    for (const toMs of [T0 + 3 * MIN, T0 + 4 * MIN + 59_000]) {
      expect(await h.readWindow(T0, toMs)).toEqual({ fromMs: T0, toMs: T0, old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } });
    }
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    // The third: all three minutes, once.
    const window = await h.readWindow(T0, T0 + 5 * MIN);
    expect(window).toMatchObject({ fromMs: T0, toMs: T0 + 3 * MIN, old: { requests: 900 }, new: { requests: 90 } });
    const calls = cwMock.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input.StartTime).toEqual(new Date(T0));
    expect(calls[0]!.args[0].input.EndTime).toEqual(new Date(T0 + 3 * MIN));
    expect(() => health({ minReadMinutes: 0 })).toThrow(/minReadMinutes must be a whole number of minutes from 1 to 60, got 0/);
  });

  it("should read the application's Requests only with windows holding a minute whose index is a multiple of appRequestsEveryMinutes", async () => {
    // T0 is 12:00, a multiple of 10 minutes.
    const h = health({ appRequestsEveryMinutes: 10 });
    const idsOf = () => (cwMock.commandCalls(GetMetricDataCommand).at(-1)!.args[0].input.MetricDataQueries ?? []).map((q) => q.Id);
    cwMock.on(GetMetricDataCommand).resolves({
      // The application counts far more than reached the alias: its Requests are polluted.
      MetricDataResults: results({ old_invocations: [100], new_invocations: [10], old_requests: [100], new_requests: [60] }),
    });
    await h.readWindow(T0 + 1 * MIN, T0 + 4 * MIN);
    expect(idsOf()).toHaveLength(10);
    expect(idsOf()).not.toContain('new_requests');
    expect(warnings).toEqual([]);
    // Minutes 12:09 and 12:10 (the range ends 2 minutes, the ingestion delay, before toMs).
    await h.readWindow(T0 + 9 * MIN, T0 + 13 * MIN);
    expect(idsOf()).toHaveLength(12);
    expect(idsOf()).toContain('new_requests');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/X-Cutover-Probe marker/);
  });
});

describe('CloudWatchHealth.readWindow', () => {
  it('should fetch every signal of both versions in ONE GetMetricData call with the ExecutedVersion dimension', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [100] }) });
    await health().readWindow(T0 + 2 * MIN + 5_000, T0 + 7 * MIN + 5_000);

    const calls = cwMock.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input as GetMetricDataCommandInput;
    expect(input.MetricDataQueries).toHaveLength(12);
    // Whole minutes, from the one holding fromMs to the last one that ended ≥ 2 minutes (the
    // ingestion delay) before toMs.
    expect(input.StartTime).toEqual(new Date(T0 + 2 * MIN));
    expect(input.EndTime).toEqual(new Date(T0 + 5 * MIN));
    const byId = new Map(input.MetricDataQueries!.map((q) => [q.Id, q]));
    expect(byId.get('new_lambdaErrors')?.MetricStat).toEqual({
      Metric: {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [
          { Name: 'FunctionName', Value: 'api' },
          { Name: 'Resource', Value: 'api:live' },
          { Name: 'ExecutedVersion', Value: '5' },
        ],
      },
      Period: 60,
      Stat: 'Sum',
    });
    expect(byId.get('old_durationP99')?.MetricStat).toMatchObject({
      Metric: { MetricName: 'Duration', Dimensions: expect.arrayContaining([{ Name: 'ExecutedVersion', Value: '4' }]) },
      Stat: 'p99',
    });
    expect(byId.get('new_errors5xx')?.MetricStat).toEqual({
      Metric: {
        Namespace: 'DemoApp',
        MetricName: 'Errors5xx',
        Dimensions: [
          { Name: 'FunctionName', Value: 'api' },
          { Name: 'Version', Value: '5' },
        ],
      },
      Period: 60,
      Stat: 'Sum',
    });
  });

  it('should add up the minutes, count failed invocations as 5XX and keep the worst p99', async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({
        old_requests: [500, 400],
        old_errors4xx: [5, 5],
        old_errors5xx: [1],
        old_invocations: [500, 400],
        old_durationP99: [80, 120],
        new_requests: [50, 40],
        new_errors4xx: [1],
        new_errors5xx: [2, 1],
        new_invocations: [52, 41],
        new_lambdaErrors: [2, 1],
        new_durationP99: [200, 150],
      }),
    });
    const window = await health().readWindow(T0, T0 + 4 * MIN);
    expect(window).toEqual({
      fromMs: T0,
      toMs: T0 + 2 * MIN,
      old: { requests: 900, errors4xx: 10, errors5xx: 1, latencyMs: 120 },
      new: { requests: 93, errors4xx: 1, errors5xx: 6, latencyMs: 200 },
    });
  });

  it('should count slow invocations with TC(L:) on Duration in the same call, only when asked', async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({ old_requests: [500, 400], new_requests: [50, 40], old_slow: [5, 4], new_slow: [7] }, [...SIGNALS, 'slow']),
    });
    const window = await health().readWindow(T0, T0 + 4 * MIN, { slowerThanMs: 89.2 });
    expect(window?.old).toMatchObject({ requests: 900, slowRequests: 9 });
    expect(window?.new).toMatchObject({ requests: 90, slowRequests: 7 });
    const input = cwMock.commandCalls(GetMetricDataCommand)[0]!.args[0].input as GetMetricDataCommandInput;
    expect(input.MetricDataQueries).toHaveLength(14);
    expect(input.MetricDataQueries!.find((q) => q.Id === 'new_slow')?.MetricStat).toMatchObject({
      Metric: { Namespace: 'AWS/Lambda', MetricName: 'Duration', Dimensions: expect.arrayContaining([{ Name: 'ExecutedVersion', Value: '5' }]) },
      Stat: 'TC(90:)',
    });
    // Not asked: no TC query, no slow counts.
    cwMock.reset();
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [500] }) });
    expect((await health().readWindow(T0, T0 + 4 * MIN))?.old.slowRequests).toBeUndefined();
    expect(() => health().queries({ slowerThanMs: -1 })).toThrow(/slowerThanMs must be zero or more, got -1/);
  });

  it("should count the alias's invocations, and warn when the application counts more (probe traffic it did not skip)", async () => {
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: results({ old_requests: [130], old_invocations: [100], new_requests: [12], new_invocations: [10] }),
    });
    const window = await health().readWindow(T0, T0 + 3 * MIN);
    expect(window?.old.requests).toBe(100);
    expect(window?.new.requests).toBe(10);
    expect(warnings).toEqual([expect.stringMatching(/skip requests with the X-Cutover-Probe marker/)]);
    // Within 5 % (+5) of each other: the usual EMF and ingestion noise, no warning.
    warnings = [];
    cwMock.reset();
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [104], old_invocations: [100], new_requests: [3], new_invocations: [0] }) });
    expect((await health().readWindow(T0, T0 + 3 * MIN))?.old.requests).toBe(100);
    expect(warnings).toEqual([]);
  });

  it('should use the application count when Lambda has no datapoint', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_requests: [40], new_requests: [4] }) });
    const window = await health().readWindow(T0, T0 + 3 * MIN);
    expect(window?.old.requests).toBe(40);
    expect(window?.new.requests).toBe(4);
  });

  it('should use Lambda invocations when the application publishes no metrics', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({ old_invocations: [30], new_invocations: [3], new_lambdaErrors: [1] }) });
    const window = await health().readWindow(T0, T0 + 3 * MIN);
    expect(window?.old).toEqual({ requests: 30, errors4xx: 0, errors5xx: 0 });
    expect(window?.new).toEqual({ requests: 3, errors4xx: 0, errors5xx: 1 });
  });

  it('should return undefined (missing, never healthy) when no metric has a datapoint', async () => {
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results({}) });
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
  });

  it('should follow NextToken and merge the pages of partial data', async () => {
    const first = results({ old_requests: [100], new_requests: [10] }).map((r) => ({ ...r, StatusCode: 'PartialData' as const }));
    cwMock
      .on(GetMetricDataCommand)
      .resolvesOnce({ MetricDataResults: first, NextToken: 'page-2' })
      .resolvesOnce({ MetricDataResults: results({ old_requests: [200], new_requests: [20], new_errors5xx: [1] }) });
    const window = await health().readWindow(T0, T0 + 5 * MIN);
    expect(window?.old.requests).toBe(300);
    expect(window?.new).toMatchObject({ requests: 30, errors5xx: 1 });
    const calls = cwMock.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.args[0].input.NextToken).toBe('page-2');
  });

  it('should treat data that stays partial after the page limit as missing', async () => {
    const partial = results({ old_requests: [1] }).map((r) => ({ ...r, StatusCode: 'PartialData' as const }));
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: partial, NextToken: 'again' });
    expect(await health({ maxPages: 3 }).readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(3);
    expect(warnings[0]).toMatch(/incomplete/);
  });

  it('should treat a query CloudWatch could not answer as missing data', async () => {
    const broken = results({ old_requests: [100], new_requests: [10] }).map((r) =>
      r.Id === 'new_errors5xx' ? { ...r, StatusCode: 'InternalError' as const, Messages: [{ Code: 'InternalError', Value: 'try later' }] } : r,
    );
    cwMock.on(GetMetricDataCommand).resolves({ MetricDataResults: broken });
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });

  it('should treat a failed call (after the SDK retries) as missing data, not as healthy', async () => {
    cwMock.on(GetMetricDataCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    expect(await health().readWindow(T0, T0 + 5 * MIN)).toBeUndefined();
    expect(warnings[0]).toMatch(/GetMetricData failed/);
  });

  it('should return an empty window, without a call, while no whole minute has been ingested', async () => {
    const zero = { requests: 0, errors4xx: 0, errors5xx: 0 };
    // 2 min 50 s after the step began, the minute holding its start has not been ingested for 2 minutes yet.
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

  it('fails when the window is inverted', async () => {
    await expect(health().readWindow(T0, T0)).rejects.toThrow(/fromMs < toMs/);
  });
});

describe('CloudWatchHealth.readAlarms', () => {
  it('should make no call when no alarm is configured', async () => {
    expect(await health().readAlarms()).toEqual([]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)).toHaveLength(0);
  });

  it('should read metric and composite alarms by name, and report a missing one as unknown', async () => {
    cwMock.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [
        {
          AlarmName: 'errors',
          StateValue: 'ALARM',
          StateReason: 'Threshold Crossed',
          // When the state was entered, not the latest evaluation-state update.
          StateTransitionedTimestamp: new Date(1_800_000_000_000),
          StateUpdatedTimestamp: new Date(1_800_000_090_000),
        },
      ],
      CompositeAlarms: [{ AlarmName: 'slo', StateValue: 'OK', StateUpdatedTimestamp: new Date(1_700_000_000_000) }],
    });
    const alarms = await health({ alarmNames: ['errors', 'slo', 'gone'] }).readAlarms();
    expect(alarms).toEqual([
      { name: 'errors', state: 'ALARM', reason: 'Threshold Crossed', changedAtMs: 1_800_000_000_000 },
      { name: 'slo', state: 'OK', changedAtMs: 1_700_000_000_000 },
      { name: 'gone', state: 'INSUFFICIENT_DATA', reason: 'alarm not found (deleted or misnamed)' },
    ]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)[0]!.args[0].input).toEqual({
      AlarmNames: ['errors', 'slo', 'gone'],
      AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
    });
  });

  it('should report a watched composite alarm in ALARM from CompositeAlarms, with when it entered that state', async () => {
    // CloudWatch lists composite alarms only when asked for them (AlarmTypes) and only to a caller
    // allowed DescribeAlarms on `*`, which the construct grants.
    cwMock.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [],
      CompositeAlarms: [
        {
          AlarmName: 'api-slo',
          AlarmRule: 'ALARM("errors") OR ALARM("latency")',
          StateValue: 'ALARM',
          StateReason: 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:errors transitioned to ALARM',
          StateTransitionedTimestamp: new Date(1_800_000_000_000),
          StateUpdatedTimestamp: new Date(1_800_000_060_000),
        },
      ],
    });
    expect(await health({ alarmNames: ['api-slo'] }).readAlarms()).toEqual([
      { name: 'api-slo', state: 'ALARM', reason: 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:errors transitioned to ALARM', changedAtMs: 1_800_000_000_000 },
    ]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)[0]!.args[0].input.AlarmTypes).toEqual(expect.arrayContaining(['CompositeAlarm']));
  });

  it('should split more than 100 names over several calls and follow NextToken', async () => {
    const names = Array.from({ length: 150 }, (_, i) => `a${i}`);
    cwMock
      .on(DescribeAlarmsCommand)
      .resolvesOnce({ MetricAlarms: names.slice(0, 50).map((n) => ({ AlarmName: n, StateValue: 'OK' })), NextToken: 't' })
      .resolvesOnce({ MetricAlarms: names.slice(50, 100).map((n) => ({ AlarmName: n, StateValue: 'OK' })) })
      .resolvesOnce({ MetricAlarms: names.slice(100).map((n) => ({ AlarmName: n, StateValue: 'OK' })) });
    const alarms = await health({ alarmNames: names }).readAlarms();
    expect(alarms.every((a) => a.state === 'OK')).toBe(true);
    const calls = cwMock.commandCalls(DescribeAlarmsCommand);
    expect(calls.map((c) => c.args[0].input.AlarmNames?.length)).toEqual([100, 100, 50]);
  });

  it('should let a failed DescribeAlarms fail the tick rather than pretend the alarms are quiet', async () => {
    cwMock.on(DescribeAlarmsCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    await expect(health({ alarmNames: ['errors'] }).readAlarms()).rejects.toThrow(/Rate exceeded/);
  });
});
