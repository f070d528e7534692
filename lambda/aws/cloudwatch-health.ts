/**
 * HealthPort on CloudWatch.
 *
 * One `GetMetricData` call per window fetches every signal for both versions (more calls only when
 * CloudWatch paginates): the application's per-version metrics (`Requests`, `Errors4xx`,
 * `Errors5xx` with dimensions `{FunctionName, Version}`) and Lambda's own per-version metrics
 * (`Invocations`, `Errors`, `Duration` p99 with `{FunctionName, Resource: "fn:alias",
 * ExecutedVersion}` — the dimension Lambda uses for invocations through an alias). When the judge
 * asks for slow-request counts, `Duration` with the trimmed-count statistic `TC(L:)` (the
 * invocations that took longer than L ms) is read in the same call.
 * `DescribeAlarms` reads the user's alarms (metric and composite); `RecordedAlarms` decides when
 * that call is needed.
 *
 * Missing data is never healthy: a window with no datapoint at all, a query CloudWatch could not
 * answer, or a call that failed after the SDK's retries gives `undefined`, which the judge counts
 * as a missing window.
 */
import type { CloudWatchClient, MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import type { AlarmSignal, HealthPort, HealthWindow, Side, SideSignals, WindowReadOptions } from '../core/ports';
import { readAlarmStates, readMetricWindow } from './cloudwatch-shared';

export interface CloudWatchHealthProps {
  readonly cloudWatch: CloudWatchClient;
  readonly functionName: string;
  readonly aliasName: string;
  readonly oldVersion: string;
  readonly newVersion: string;
  /** Namespace where the application publishes `Requests`/`Errors4xx`/`Errors5xx` per version. */
  readonly appMetricsNamespace: string;
  /**
   * The user's alarms; any in ALARM rolls the migration back.
   * @default - none (readAlarms makes no call)
   */
  readonly alarmNames?: readonly string[];
  /**
   * How long after a minute ends its datapoints are trusted to be complete (Lambda and EMF metrics
   * land about a minute late). A window only reads minutes that ended at least this long ago, so
   * that no minute is judged half-ingested; the controller continues from the window's end, so
   * each minute is read exactly once.
   * @default 120000 (2 minutes)
   */
  readonly ingestionDelayMs?: number;
  /**
   * Whole ingested minutes a window waits for before it is read: until that many are available
   * since its start, `readWindow` returns an empty window and makes no call, and the same minutes
   * are read, together, by a later tick. CloudWatch bills GetMetricData per metric requested, not
   * per datapoint, so reading three minutes at once costs a third of reading them one by one; the
   * price is that a regression only the statistics see is judged up to `minReadMinutes - 1`
   * minutes later (alarms, probe desyncs and the pin are checked on every tick regardless).
   * @default 1
   */
  readonly minReadMinutes?: number;
  /**
   * The application's `Requests` is read only with windows that contain a minute whose index
   * (epoch minutes) is a multiple of this. It is not the judged count (Lambda's `Invocations`
   * through the alias is); it serves to notice an application that counts the probe's requests
   * (a configuration mistake that lasts, so a sample finds it) and stands in when Lambda has no
   * datapoint (then no request reached the alias, and 0 is the count).
   * @default 1 (every window)
   */
  readonly appRequestsEveryMinutes?: number;
  /**
   * Page limit for one window (each page is one GetMetricData call).
   * @default 5
   */
  readonly maxPages?: number;
  /**
   * Receives problems that made a window `undefined` (the judge only sees "missing").
   * @default - written to the console as a warning
   */
  readonly onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

/** Metric period in seconds: CloudWatch's standard resolution. */
export const PERIOD_SECONDS = 60;

const PERIOD_MS = PERIOD_SECONDS * 1000;

type Signal = 'requests' | 'errors4xx' | 'errors5xx' | 'invocations' | 'lambdaErrors' | 'durationP99' | 'slow';
const SIDES: readonly Side[] = ['old', 'new'];
const EMPTY: SideSignals = Object.freeze({ requests: 0, errors4xx: 0, errors5xx: 0 });

export class CloudWatchHealth implements HealthPort {
  private readonly ingestionDelayMs: number;
  private readonly maxPages: number;
  private readonly minReadMinutes: number;
  private readonly appRequestsEveryMinutes: number;
  private readonly warn: (message: string, detail?: Record<string, unknown>) => void;

  constructor(private readonly props: CloudWatchHealthProps) {
    this.ingestionDelayMs = props.ingestionDelayMs ?? 2 * PERIOD_MS;
    if (!Number.isFinite(this.ingestionDelayMs) || this.ingestionDelayMs < 0) {
      throw new RangeError(`ingestionDelayMs must be zero or more, got ${JSON.stringify(props.ingestionDelayMs)}`);
    }
    this.maxPages = props.maxPages ?? 5;
    if (!Number.isInteger(this.maxPages) || this.maxPages < 1) {
      throw new RangeError(`maxPages must be a whole number ≥ 1, got ${JSON.stringify(props.maxPages)}`);
    }
    this.minReadMinutes = wholeMinutes('minReadMinutes', props.minReadMinutes);
    this.appRequestsEveryMinutes = wholeMinutes('appRequestsEveryMinutes', props.appRequestsEveryMinutes);
    if (!props.appMetricsNamespace) {
      throw new TypeError('appMetricsNamespace must be a non-empty string');
    }
    this.warn = props.onWarning ?? ((message, detail) => console.warn(message, detail ?? ''));
  }

  /**
   * The metric queries of one window: six per side (five without the application's `Requests`),
   * one more with slow-request counts. Exposed so that dashboards and tests can check the exact
   * dimensions.
   */
  queries(options: WindowReadOptions = {}, withAppRequests = true): MetricDataQuery[] {
    const slowerThanMs = options.slowerThanMs;
    if (slowerThanMs !== undefined && (!Number.isFinite(slowerThanMs) || slowerThanMs < 0)) {
      throw new RangeError(`slowerThanMs must be zero or more, got ${JSON.stringify(slowerThanMs)}`);
    }
    const { functionName, aliasName, appMetricsNamespace } = this.props;
    const queries: MetricDataQuery[] = [];
    for (const side of SIDES) {
      const version = this.version(side);
      const app = [
        { Name: 'FunctionName', Value: functionName },
        { Name: 'Version', Value: version },
      ];
      const lambda = [
        { Name: 'FunctionName', Value: functionName },
        { Name: 'Resource', Value: `${functionName}:${aliasName}` },
        { Name: 'ExecutedVersion', Value: version },
      ];
      const stat = (signal: Signal, namespace: string, metricName: string, dimensions: typeof app, statistic: string): MetricDataQuery => ({
        Id: queryId(side, signal),
        Label: `${side} v${version} ${metricName} ${statistic}`,
        MetricStat: {
          Metric: { Namespace: namespace, MetricName: metricName, Dimensions: dimensions },
          Period: PERIOD_SECONDS,
          Stat: statistic,
        },
        ReturnData: true,
      });
      if (withAppRequests) queries.push(stat('requests', appMetricsNamespace, 'Requests', app, 'Sum'));
      queries.push(
        stat('errors4xx', appMetricsNamespace, 'Errors4xx', app, 'Sum'),
        stat('errors5xx', appMetricsNamespace, 'Errors5xx', app, 'Sum'),
        stat('invocations', 'AWS/Lambda', 'Invocations', lambda, 'Sum'),
        stat('lambdaErrors', 'AWS/Lambda', 'Errors', lambda, 'Sum'),
        stat('durationP99', 'AWS/Lambda', 'Duration', lambda, 'p99'),
      );
      // Trimmed count above L: counts add up across minutes, unlike a percentile. Whole
      // milliseconds keep the statistic's text exact.
      if (slowerThanMs !== undefined) queries.push(stat('slow', 'AWS/Lambda', 'Duration', lambda, `TC(${Math.ceil(slowerThanMs)}:)`));
    }
    return queries;
  }

  /**
   * The minutes read for a request [fromMs, toMs): from the minute that contains `fromMs` (the
   * controller continues from the previous window's end, which is a minute boundary) to the last
   * minute that ended at least `ingestionDelayMs` before `toMs`.
   */
  readRange(fromMs: number, toMs: number): { startMs: number; endMs: number } {
    const startMs = Math.floor(fromMs / PERIOD_MS) * PERIOD_MS;
    const endMs = Math.floor((toMs - this.ingestionDelayMs) / PERIOD_MS) * PERIOD_MS;
    return { startMs, endMs: Math.max(startMs, endMs) };
  }

  /**
   * Signals for the whole, ingested minutes of [fromMs, toMs); the window's `fromMs`/`toMs` say
   * which minutes (the controller continues from its `toMs`).
   *
   * - No whole ingested minute yet (the first ticks after a step starts): an empty window
   *   (`toMs === fromMs`, all counts 0) and no call — nothing is lost, the same minutes are read on
   *   a later tick.
   * - Minutes to read but not one datapoint in them, a query CloudWatch could not answer, or a call
   *   that failed after the SDK's retries: `undefined` (missing data, never healthy).
   */
  async readWindow(fromMs: number, toMs: number, options: WindowReadOptions = {}): Promise<HealthWindow | undefined> {
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || toMs <= fromMs) {
      throw new RangeError(`window must have fromMs < toMs, got [${fromMs}, ${toMs})`);
    }
    const { startMs, endMs } = this.readRange(fromMs, toMs);
    if (endMs - startMs < this.minReadMinutes * PERIOD_MS) {
      return { fromMs: startMs, toMs: startMs, old: EMPTY, new: EMPTY };
    }
    // A minute of the range whose index is a multiple of appRequestsEveryMinutes.
    const firstSampled = Math.ceil(startMs / PERIOD_MS / this.appRequestsEveryMinutes) * this.appRequestsEveryMinutes * PERIOD_MS;
    const withAppRequests = firstSampled < endMs;
    const queries = this.queries(options, withAppRequests);
    const values = await readMetricWindow(this.props.cloudWatch, queries, startMs, endMs, this.maxPages, this.warn);
    if (!values) return undefined;

    const side = (s: Side): SideSignals => {
      const sum = (signal: Signal) => (values.get(queryId(s, signal)) ?? []).reduce((a, b) => a + b, 0);
      const seen = (signal: Signal) => (values.get(queryId(s, signal)) ?? []).length > 0;
      // Lambda's Invocations through the alias are the judged traffic: they include failed
      // invocations the application never counted, and exclude the probe's requests, which reach
      // each version through its own qualified endpoint. The application's count is used only
      // when Lambda has no datapoint. An application count well above the alias's means the app
      // also counts traffic that did not come through the alias (the probe's, when it ignores the
      // X-Cutover-Probe marker): its error counts would be polluted, so people are told.
      const invocations = sum('invocations');
      const appRequests = sum('requests');
      const requests = seen('invocations') ? invocations : appRequests;
      if (withAppRequests && seen('invocations') && appRequests > invocations * 1.05 + 5) {
        pollution.push(`${s}: application counted ${appRequests} requests, the alias ${invocations}`);
      }
      // Lambda Errors are failed invocations (API Gateway answers them with 5XX); the application
      // could not count those itself, so the two are added.
      const errors5xx = Math.min(requests, sum('errors5xx') + sum('lambdaErrors'));
      const errors4xx = Math.min(requests, sum('errors4xx'));
      // A percentile cannot be combined across minutes; the worst minute is the safe summary.
      const durations = values.get(queryId(s, 'durationP99')) ?? [];
      return {
        requests,
        errors4xx,
        errors5xx,
        ...(seen('durationP99') && requests > 0 ? { latencyMs: Math.max(...durations) } : {}),
        // A minute without a slow invocation may have no TC datapoint: absent counts as 0 slow.
        ...(options.slowerThanMs !== undefined ? { slowRequests: Math.min(requests, sum('slow')) } : {}),
      };
    };
    const pollution: string[] = [];
    const window = { fromMs: startMs, toMs: endMs, old: side('old'), new: side('new') };
    if (pollution.length > 0) {
      this.warn('the application counts more requests than reached it through the alias: does its metric code skip requests with the X-Cutover-Probe marker? (docs/aws.md)', {
        sides: pollution,
        startMs,
        endMs,
      });
    }
    return window;
  }

  /** The alarms' states from CloudWatch, whatever the purpose (this class is not sent state changes). */
  readAlarms(): Promise<readonly AlarmSignal[]> {
    return readAlarmStates(this.props.cloudWatch, this.props.alarmNames, this.maxPages);
  }

  private version(side: Side): string {
    return side === 'old' ? this.props.oldVersion : this.props.newVersion;
  }
}

function wholeMinutes(name: string, value: number | undefined): number {
  const minutes = value ?? 1;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 60) {
    throw new RangeError(`${name} must be a whole number of minutes from 1 to 60, got ${JSON.stringify(value)}`);
  }
  return minutes;
}

function queryId(side: Side, signal: Signal): string {
  // Ids must start with a lower-case letter and use [a-zA-Z0-9_].
  return `${side}_${signal}`;
}
