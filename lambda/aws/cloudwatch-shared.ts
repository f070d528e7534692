/**
 * What the CloudWatch health sources share: reading the user's alarms (`DescribeAlarms`) and
 * merging the pages of a `GetMetricData` answer. `CloudWatchHealth` (Lambda alias) and
 * `LoadBalancerHealth` (ALB) use these, so that both read alarms and judge a page's completeness
 * the same way.
 */
import { DescribeAlarmsCommand, GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery, type MetricDataResult } from '@aws-sdk/client-cloudwatch';
import { describeError } from './clients';
import type { AlarmSignal } from '../core/ports';

/** DescribeAlarms accepts at most 100 names per call. */
const ALARM_NAMES_PER_CALL = 100;

/**
 * The states of `alarmNames` (duplicates read once), in the order given. Metric and composite
 * alarms; a configured alarm that does not exist is `INSUFFICIENT_DATA` (unknown, not OK). A
 * failed call throws (the tick fails rather than pretend the alarms are quiet).
 * @param maxPages pages followed per call of at most 100 names
 */
export async function readAlarmStates(
  cloudWatch: CloudWatchClient,
  alarmNames: readonly string[] | undefined,
  maxPages: number,
): Promise<readonly AlarmSignal[]> {
  const names = [...new Set(alarmNames ?? [])];
  if (names.length === 0) return [];
  const found = new Map<string, AlarmSignal>();
  for (let i = 0; i < names.length; i += ALARM_NAMES_PER_CALL) {
    const chunk = names.slice(i, i + ALARM_NAMES_PER_CALL);
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await cloudWatch.send(
        new DescribeAlarmsCommand({
          AlarmNames: chunk,
          // Without AlarmTypes, DescribeAlarms returns metric alarms only. Composite alarms come
          // back only to a caller allowed DescribeAlarms on `*`, which the construct grants.
          AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
        if (!alarm.AlarmName) continue;
        // StateTransitionedTimestamp is when StateValue last changed; StateUpdatedTimestamp also
        // moves on evaluation-state updates, so it is only the fallback.
        const changedAt = alarm.StateTransitionedTimestamp ?? alarm.StateUpdatedTimestamp;
        found.set(alarm.AlarmName, {
          name: alarm.AlarmName,
          state: alarmState(alarm.StateValue),
          ...(alarm.StateReason ? { reason: alarm.StateReason } : {}),
          ...(changedAt ? { changedAtMs: changedAt.getTime() } : {}),
        });
      }
      nextToken = page.NextToken;
      pages++;
    } while (nextToken && pages < maxPages);
  }
  // A configured alarm that does not exist is unknown, not OK.
  return names.map(
    (name) => found.get(name) ?? { name, state: 'INSUFFICIENT_DATA', reason: 'alarm not found (deleted or misnamed)' },
  );
}

/**
 * Merges one query's result of one `GetMetricData` page into `values` (finite values only) and
 * `status`, and its messages into `messages`.
 */
export function collect(result: MetricDataResult, values: Map<string, number[]>, status: Map<string, string>, messages: string[]): void {
  if (!result.Id) return;
  const list = values.get(result.Id) ?? [];
  for (const v of result.Values ?? []) if (Number.isFinite(v)) list.push(v);
  values.set(result.Id, list);
  // Across pages, the last status wins: PartialData on one page means "more on the next one".
  if (result.StatusCode) status.set(result.Id, result.StatusCode);
  for (const m of result.Messages ?? []) messages.push(`${result.Id}: ${m.Code ?? ''} ${m.Value ?? ''}`.trim());
}

/** CloudWatch's StateValue as the port's state: anything but OK or ALARM is unknown. */
export function alarmState(value: string | undefined): AlarmSignal['state'] {
  return value === 'OK' || value === 'ALARM' ? value : 'INSUFFICIENT_DATA';
}

/**
 * The datapoints of every query over [startMs, endMs), by query id, in one `GetMetricData` call
 * (more only when CloudWatch paginates, at most `maxPages`). Undefined, with a warning, when the
 * window must count as missing: the call failed after the SDK's retries, a query is not
 * `Complete`, pages are left, or not one query has a datapoint. Missing is never healthy.
 */
export async function readMetricWindow(
  cloudWatch: CloudWatchClient,
  queries: MetricDataQuery[],
  startMs: number,
  endMs: number,
  maxPages: number,
  warn: (message: string, detail?: Record<string, unknown>) => void,
): Promise<Map<string, number[]> | undefined> {
  const values = new Map<string, number[]>();
  const status = new Map<string, string>();
  const messages: string[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  try {
    do {
      const page = await cloudWatch.send(
        new GetMetricDataCommand({
          MetricDataQueries: queries,
          StartTime: new Date(startMs),
          EndTime: new Date(endMs),
          ScanBy: 'TimestampAscending',
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      pages++;
      for (const result of page.MetricDataResults ?? []) collect(result, values, status, messages);
      for (const m of page.Messages ?? []) messages.push(`${m.Code ?? ''} ${m.Value ?? ''}`.trim());
      nextToken = page.NextToken;
    } while (nextToken && pages < maxPages);
  } catch (error) {
    // After the SDK's own retries. Missing, not healthy: the judge holds, and rolls back if
    // signals stay missing; a probe desync in the same tick can still roll back.
    warn('GetMetricData failed; treating the window as missing', { error: describeError(error), startMs, endMs });
    return undefined;
  }
  const incomplete = queries.map((q) => q.Id!).filter((id) => status.get(id) !== 'Complete');
  if (nextToken || incomplete.length > 0) {
    warn('CloudWatch returned incomplete data; treating the window as missing', {
      incomplete: incomplete.map((id) => `${id}=${status.get(id) ?? 'absent'}`),
      morePages: Boolean(nextToken),
      messages,
    });
    return undefined;
  }
  if ([...values.values()].every((v) => v.length === 0)) return undefined;
  return values;
}
