/**
 * HealthPort on an Application Load Balancer's CloudWatch metrics, for fleet migrations (EC2 Auto
 * Scaling groups, ECS services) where the ALB sees every user request and the application need not
 * publish anything.
 *
 * One `GetMetricData` call per window fetches every signal for both sides (more calls only when
 * CloudWatch paginates), all from namespace `AWS/ApplicationELB`, period 60 s. A side is either
 * - a target group behind the ALB both sides share (weighted target groups): dimensions
 *   `{TargetGroup, LoadBalancer}`, or
 * - a whole ALB of its own (DNS migrations, one ALB per side): dimension `{LoadBalancer}`.
 *
 * ## Signals
 * - `requests` ← `RequestCount` (Sum).
 * - `errors4xx` ← `HTTPCode_Target_4XX_Count` (Sum). The ALB's own 4XX (requests it rejected as
 *   malformed, before any target) are not the side's doing and are not read.
 * - `errors5xx` ← `HTTPCode_Target_5XX_Count` (Sum) plus the 5XX the ALB generated for that side:
 *   - whole-ALB side: `HTTPCode_ELB_5XX_Count` (Sum);
 *   - target-group side: `TargetConnectionErrorCount` (Sum), the connections to the group's
 *     targets that could not be made (the ALB answers those requests with a 502 or 504 of its
 *     own), the part of the ALB's 5XX that is published per group. ELB 5XX cannot be used there:
 *     the ELB user guide's metric table (and the ApplicationELB metric list aws-cdk-lib generates
 *     from it) publishes `HTTPCode_ELB_5XX_Count` with `{LoadBalancer}` and
 *     `{AvailabilityZone, LoadBalancer}` only, while `TargetConnectionErrorCount` is also published
 *     with `{TargetGroup, LoadBalancer}`. What a target-group side cannot see: the other 5XX the
 *     ALB generates for a group (a 502 for a malformed or reset answer, a 503 when the group has no
 *     registered target, a 504 when a target does not answer in time). Alarms on the ALB's
 *     `HTTPCode_ELB_5XX_Count` (`alarmNames`) cover those.
 *   The sum is capped at `requests`, and `requests` is raised to it when it is smaller: a 5XX the
 *   ALB answered before it chose a target (a 503 with no target to send to) is not in
 *   `RequestCount`, and a side that fails every request must not read as a side with no traffic.
 * - `latencyMs` ← `TargetResponseTime` p99, which ALB publishes in SECONDS (converted to ms); a
 *   percentile cannot be combined across minutes, so the worst minute is kept.
 * - `slowRequests` (when the read asks for them) ← `TargetResponseTime` with the trimmed count
 *   `TC(S:)`, S being `slowerThanMs` rounded up to a whole millisecond and written in seconds
 *   (250 ms → `TC(0.25:)`), so both sides are classified by the same exact bound.
 *
 * ## Missing data
 * As in `CloudWatchHealth` (the same minutes, `readRange`, ingestion delay and warnings): a window
 * with no datapoint at all, a query CloudWatch could not answer (PartialData after the page limit,
 * InternalError), or a call that failed after the SDK's retries gives `undefined`, never zeros.
 * ALB publishes only while requests flow, so a side without a datapoint in a window that has some
 * took no request: zeros for that side.
 *
 * ## The probe's own requests
 * ALB metrics cannot tell the Keep-Alive probe's requests from users', and the probe asks for 4XX
 * on purpose (a 404, the oversized body's 413, …). With `probeTraffic`, the counts the probe
 * reported for each side over the read minutes are subtracted from that side's requests, 4XX and
 * 5XX (each clamped at 0; results without a 4XX count subtract no 4XX). If `probeTraffic` fails,
 * the window is missing (`undefined`, with a warning): subtracting nothing would judge the probe's
 * deliberate 4XX as the side's. Limits:
 * - Probe results are stamped at a time (when the run finished). A run that straddles a minute
 *   boundary is subtracted whole from the minute it is stamped in: the minute before counts some
 *   probe requests as users', the stamped one may lose a few users' requests (or clamp at 0).
 * - Only answered requests are counted by the probe; a request the ALB counted but whose answer
 *   never reached the probe (a closed connection) stays in the side's counts.
 * - A deliberate 4XX the ALB answers itself (a 400 for a request it rejects) is in the probe's
 *   4XX count but not in `HTTPCode_Target_4XX_Count`: the subtraction then takes users' 4XX.
 * - `latencyMs` and `slowRequests` include the probe's requests (no count of its slow requests
 *   exists, and a percentile cannot be corrected); they weigh only when a side takes little user
 *   traffic. `slowRequests` is capped at the corrected `requests`.
 */
import type { CloudWatchClient, Dimension, MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import type { AlarmSignal, HealthPort, HealthWindow, ProbeHealth, Side, SideSignals, WindowReadOptions } from '../core/ports';
import { describeError } from './clients';
import { PERIOD_SECONDS } from './cloudwatch-health';
import { readAlarmStates, readMetricWindow } from './cloudwatch-shared';

/** One side as CloudWatch names it. */
export interface LoadBalancerSide {
  /**
   * The ALB's full name `app/<name>/<id>` (the end of its ARN), CloudWatch's `LoadBalancer`
   * dimension.
   */
  readonly loadBalancer: string;
  /**
   * The side's target group, `targetgroup/<name>/<id>` (the end of its ARN), CloudWatch's
   * `TargetGroup` dimension. Given for weighted target groups behind ONE ALB; omitted when each
   * side has its own ALB (DNS migrations).
   * @default - the whole load balancer is the side
   */
  readonly targetGroup?: string;
}

/** The probe's own answers per side over [startMs, endMs). */
export type ProbeTrafficReader = (startMs: number, endMs: number) => Promise<Record<Side, ProbeHealth>>;

export interface LoadBalancerHealthProps {
  /** Created once by the caller. */
  readonly cloudWatch: CloudWatchClient;
  /** The side migrated away from (the baseline). */
  readonly old: LoadBalancerSide;
  /** The side migrated to (the canary). */
  readonly new: LoadBalancerSide;
  /**
   * The user's alarms; any in ALARM rolls the migration back.
   * @default - none (readAlarms makes no call)
   */
  readonly alarmNames?: readonly string[];
  /**
   * How long after a minute ends its datapoints are trusted to be complete (ALB publishes every
   * 60 s; they land within about a minute). A window only reads minutes that ended at least this
   * long ago, so that no minute is judged half-ingested; the controller continues from the
   * window's end, so each minute is read exactly once.
   * @default 120000 (2 minutes)
   */
  readonly ingestionDelayMs?: number;
  /**
   * Whole ingested minutes a window waits for before it is read, as in `CloudWatchHealth`
   * (GetMetricData is billed per metric requested, not per minute returned).
   * @default 1
   */
  readonly minReadMinutes?: number;
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
  /**
   * The Keep-Alive probe's own requests per side in [startMs, endMs) (the read minutes), which are
   * subtracted from the side's counts (see the file's header). A throw makes the window missing.
   * @default - nothing subtracted (only right when the probe does not go through these ALBs)
   */
  readonly probeTraffic?: ProbeTrafficReader;
}

const PERIOD_MS = PERIOD_SECONDS * 1000;
const NAMESPACE = 'AWS/ApplicationELB';
const LOAD_BALANCER_NAME = /^app\/[^/\s]+\/[^/\s]+$/;
const TARGET_GROUP_NAME = /^targetgroup\/[^/\s]+\/[^/\s]+$/;

type Signal = 'requests' | 'target4xx' | 'target5xx' | 'elb5xx' | 'connectionErrors' | 'latencyP99' | 'slow';
const SIDES: readonly Side[] = ['old', 'new'];
const EMPTY: SideSignals = Object.freeze({ requests: 0, errors4xx: 0, errors5xx: 0 });
const NO_PROBE: ProbeHealth = Object.freeze({ requests: 0, errors5xx: 0, errors4xx: 0 });

export class LoadBalancerHealth implements HealthPort {
  private readonly ingestionDelayMs: number;
  private readonly maxPages: number;
  private readonly minReadMinutes: number;
  private readonly warn: (message: string, detail?: Record<string, unknown>) => void;

  constructor(private readonly props: LoadBalancerHealthProps) {
    this.ingestionDelayMs = props.ingestionDelayMs ?? 2 * PERIOD_MS;
    if (!Number.isFinite(this.ingestionDelayMs) || this.ingestionDelayMs < 0) {
      throw new RangeError(`ingestionDelayMs must be zero or more, got ${JSON.stringify(props.ingestionDelayMs)}`);
    }
    this.minReadMinutes = props.minReadMinutes ?? 1;
    if (!Number.isInteger(this.minReadMinutes) || this.minReadMinutes < 1 || this.minReadMinutes > 60) {
      throw new RangeError(`minReadMinutes must be a whole number of minutes from 1 to 60, got ${JSON.stringify(props.minReadMinutes)}`);
    }
    this.maxPages = props.maxPages ?? 5;
    if (!Number.isInteger(this.maxPages) || this.maxPages < 1) {
      throw new RangeError(`maxPages must be a whole number ≥ 1, got ${JSON.stringify(props.maxPages)}`);
    }
    for (const side of SIDES) checkSide(side, props[side]);
    const { old: o, new: n } = props;
    if (o.loadBalancer === n.loadBalancer && (!o.targetGroup || !n.targetGroup || o.targetGroup === n.targetGroup)) {
      // A whole-ALB side would count the other side's requests too; the same group twice compares
      // a side with itself.
      throw new TypeError(
        `old and new share load balancer ${o.loadBalancer}: give each side its own targetGroup, or give each side its own load balancer`,
      );
    }
    this.warn = props.onWarning ?? ((message, detail) => console.warn(message, detail ?? ''));
  }

  /**
   * The metric queries of one window: five per side, six with slow-request counts. Exposed so
   * that dashboards and tests can check the exact dimensions.
   */
  queries(options: WindowReadOptions = {}): MetricDataQuery[] {
    const slowerThanMs = options.slowerThanMs;
    if (slowerThanMs !== undefined && (!Number.isFinite(slowerThanMs) || slowerThanMs < 0)) {
      throw new RangeError(`slowerThanMs must be zero or more, got ${JSON.stringify(slowerThanMs)}`);
    }
    const queries: MetricDataQuery[] = [];
    for (const side of SIDES) {
      const { loadBalancer, targetGroup } = this.props[side];
      const dimensions: Dimension[] = targetGroup
        ? [
            { Name: 'TargetGroup', Value: targetGroup },
            { Name: 'LoadBalancer', Value: loadBalancer },
          ]
        : [{ Name: 'LoadBalancer', Value: loadBalancer }];
      const stat = (signal: Signal, metricName: string, statistic: string): MetricDataQuery => ({
        Id: queryId(side, signal),
        Label: `${side} ${targetGroup ?? loadBalancer} ${metricName} ${statistic}`,
        MetricStat: {
          Metric: { Namespace: NAMESPACE, MetricName: metricName, Dimensions: dimensions },
          Period: PERIOD_SECONDS,
          Stat: statistic,
        },
        ReturnData: true,
      });
      queries.push(
        stat('requests', 'RequestCount', 'Sum'),
        stat('target4xx', 'HTTPCode_Target_4XX_Count', 'Sum'),
        stat('target5xx', 'HTTPCode_Target_5XX_Count', 'Sum'),
        // HTTPCode_ELB_5XX_Count has no TargetGroup dimension; failed connections to the group's
        // targets do (see the file's header).
        targetGroup ? stat('connectionErrors', 'TargetConnectionErrorCount', 'Sum') : stat('elb5xx', 'HTTPCode_ELB_5XX_Count', 'Sum'),
        stat('latencyP99', 'TargetResponseTime', 'p99'),
      );
      // Trimmed count above S seconds: counts add up across minutes, unlike a percentile. Whole
      // milliseconds keep the bound's text exact in seconds.
      if (slowerThanMs !== undefined) queries.push(stat('slow', 'TargetResponseTime', `TC(${secondsText(slowerThanMs)}:)`));
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
   * Signals for the whole, ingested minutes of [fromMs, toMs), the probe's own requests taken out;
   * the window's `fromMs`/`toMs` say which minutes (the controller continues from its `toMs`).
   *
   * - No whole ingested minute yet: an empty window (`toMs === fromMs`, all counts 0), and no call.
   * - Minutes to read but not one datapoint in them, a query CloudWatch could not answer, a call
   *   that failed after the SDK's retries, or `probeTraffic` failing: `undefined` (missing data,
   *   never healthy).
   */
  async readWindow(fromMs: number, toMs: number, options: WindowReadOptions = {}): Promise<HealthWindow | undefined> {
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || toMs <= fromMs) {
      throw new RangeError(`window must have fromMs < toMs, got [${fromMs}, ${toMs})`);
    }
    const { startMs, endMs } = this.readRange(fromMs, toMs);
    if (endMs - startMs < this.minReadMinutes * PERIOD_MS) {
      return { fromMs: startMs, toMs: startMs, old: EMPTY, new: EMPTY };
    }
    const queries = this.queries(options);
    const values = await readMetricWindow(this.props.cloudWatch, queries, startMs, endMs, this.maxPages, this.warn);
    if (!values) return undefined;

    let probes: Record<Side, ProbeHealth> | undefined;
    if (this.props.probeTraffic) {
      try {
        probes = checkProbeTraffic(await this.props.probeTraffic(startMs, endMs));
      } catch (error) {
        // Subtracting nothing would judge the probe's deliberate 4XX as the side's own.
        this.warn("the probe's own traffic could not be read; treating the window as missing", { error: describeError(error), startMs, endMs });
        return undefined;
      }
    }

    const side = (s: Side): SideSignals => {
      const list = (signal: Signal) => values.get(queryId(s, signal)) ?? [];
      const sum = (signal: Signal) => list(signal).reduce((a, b) => a + b, 0);
      const probe = probes?.[s] ?? NO_PROBE;
      // The 5XX the ALB generated for this side: its own 5XX for a whole ALB, the failed target
      // connections for a target group (only one of the two is queried).
      const errors5xxSeen = sum('target5xx') + sum('elb5xx') + sum('connectionErrors');
      const errors5xx = Math.max(0, errors5xxSeen - probe.errors5xx);
      // RequestCount leaves out what the ALB answered before choosing a target (a 503 with none).
      const requests = Math.max(Math.max(0, sum('requests') - probe.requests), errors5xx);
      const errors4xx = Math.min(requests, Math.max(0, sum('target4xx') - (probe.errors4xx ?? 0)));
      const latencies = list('latencyP99');
      return {
        requests,
        errors4xx,
        errors5xx,
        // Seconds to milliseconds, to the microsecond (no binary noise such as 123.00000000000001).
        ...(latencies.length > 0 && requests > 0 ? { latencyMs: Math.round(Math.max(...latencies) * 1e6) / 1e3 } : {}),
        // A minute without a slow request may have no TC datapoint: absent counts as 0 slow.
        ...(options.slowerThanMs !== undefined ? { slowRequests: Math.min(requests, sum('slow')) } : {}),
      };
    };
    return { fromMs: startMs, toMs: endMs, old: side('old'), new: side('new') };
  }

  /** The alarms' states from CloudWatch, whatever the purpose (this class is not sent state changes). */
  readAlarms(): Promise<readonly AlarmSignal[]> {
    return readAlarmStates(this.props.cloudWatch, this.props.alarmNames, this.maxPages);
  }
}

function queryId(side: Side, signal: Signal): string {
  // Ids must start with a lower-case letter and use [a-zA-Z0-9_].
  return `${side}_${signal}`;
}

/** `ms` rounded up to a whole millisecond, in seconds, written exactly: 250 → "0.25", 1500 → "1.5". */
function secondsText(ms: number): string {
  const whole = BigInt(Math.ceil(ms));
  const fraction = String(whole % 1000n).padStart(3, '0').replace(/0+$/, '');
  return fraction ? `${whole / 1000n}.${fraction}` : String(whole / 1000n);
}

function checkSide(side: Side, value: LoadBalancerSide | undefined): void {
  if (!value || typeof value.loadBalancer !== 'string' || !LOAD_BALANCER_NAME.test(value.loadBalancer)) {
    throw new TypeError(
      `${side}.loadBalancer must be an Application Load Balancer's full name "app/<name>/<id>" (the end of its ARN), got ${JSON.stringify(value?.loadBalancer)}`,
    );
  }
  if (value.targetGroup !== undefined && !TARGET_GROUP_NAME.test(value.targetGroup)) {
    throw new TypeError(
      `${side}.targetGroup must be a target group's full name "targetgroup/<name>/<id>" (the end of its ARN), got ${JSON.stringify(value.targetGroup)}`,
    );
  }
}

/** The probe's counts as given, or a throw when they cannot be subtracted. */
function checkProbeTraffic(traffic: Record<Side, ProbeHealth> | undefined): Record<Side, ProbeHealth> {
  for (const side of SIDES) {
    const health = traffic?.[side];
    const counts = health ? [health.requests, health.errors5xx, health.errors4xx ?? 0] : [];
    if (counts.length === 0 || !counts.every((n) => Number.isFinite(n) && n >= 0)) {
      throw new TypeError(`probeTraffic gave no usable counts for the ${side} side: ${JSON.stringify(health)}`);
    }
  }
  return traffic!;
}
