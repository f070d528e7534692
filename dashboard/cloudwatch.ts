/**
 * The dashboard's live CloudWatch read for an AWS migration: ONE `GetMetricData` request per
 * refresh of a watched migration page, per minute over the shown period, fetching
 * - the controller's own metrics (namespace `Cutover`, dimension `{Migration: <key>}`, as
 *   `lambda/aws/metrics.ts` publishes them): `Weight`, `OldCapacity`, `PinnedCapacity`,
 *   `ResidualRequests`;
 * - for a Lambda alias, the per-version health the judge reads: the very queries of the
 *   controller's `CloudWatchHealth` (application `Requests`/`Errors4xx`/`Errors5xx` per version,
 *   Lambda's `Invocations`/`Errors`/`Duration` p99 through the alias per executed version).
 *
 * - for a fleet (ALB or DNS target), each side's ALB metrics built by the controller's own
 *   `LoadBalancerHealth`, with the target groups (or per-side load balancers) the record names. A
 *   fleet migration recorded without them gets the controller's metrics only: the dashboard must
 *   not guess a dimension.
 *
 * Failures never break the page: the read's status says what happened (`stale` keeps the last
 * data, e.g. after throttling; `no-credentials` says how to give some), and the rest of the view
 * (DynamoDB history, the judge's evidence) is shown as usual.
 */
import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { clientConfig, describeError, errorName, type AwsClientOptions } from '../lambda/aws/clients';
import { CloudWatchHealth, PERIOD_SECONDS } from '../lambda/aws/cloudwatch-health';
import { LoadBalancerHealth } from '../lambda/aws/load-balancer-health';
import { aliasKeyOf } from '../lambda/aws/dynamodb-table';
import { CUTOVER_NAMESPACE } from '../lambda/aws/metric-namespace';
import { MigrationStatus } from '../lambda/core/model';
import type { MigrationState } from '../ops/types';

/** Where the page's CloudWatch data stands. */
export type CloudWatchStatus = 'live' | 'stale' | 'no-credentials' | 'unavailable' | 'not-applicable';

/** One metric's datapoints, oldest first: `[epoch ms, value]`. */
export interface CloudWatchSeriesData {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
}

/** What one refresh read (or, when it failed, the last data it keeps). JSON-serialisable. */
export interface CloudWatchRead {
  readonly status: CloudWatchStatus;
  /** One line for any status but `live` (what failed, and what to do). */
  readonly message?: string;
  /** The period read: whole minutes [fromMs, toMs). */
  readonly fromMs: number;
  readonly toMs: number;
  /** When the data shown was read; absent when none was read yet. */
  readonly readAtMs?: number;
  /** When the last request was made (successful or not). */
  readonly attemptedAtMs?: number;
  /** Metrics requested by one request (what CloudWatch bills: $0.01 per 1,000). */
  readonly metricsRequested: number;
  /** Calls the last read took (more than one only when CloudWatch paginated it). */
  readonly pages: number;
  /** True when CloudWatch left data out (PartialData after the page limit): the charts may have gaps. */
  readonly partial: boolean;
  /** Whose per-side health was read: the alias's per-version metrics, or none (fleets). */
  readonly health: 'lambda-alias' | 'load-balancer' | 'none';
  /** Why no per-side health was read. */
  readonly healthNote?: string;
  /** Datapoints by query id (`ctl_weight`, `new_errors5xx`, …). */
  readonly series: Readonly<Record<string, CloudWatchSeriesData>>;
}

/** What the server asks of a live metric reader. */
export interface LiveMetrics {
  /** A refresh: at most one `GetMetricData` request (plus its continuation pages). Never throws. */
  read(state: MigrationState, nowMs: number): Promise<CloudWatchRead | undefined>;
  /** The last read of a migration, without a call. */
  cached(migrationId: string): CloudWatchRead | undefined;
  close(): void;
}

export interface CloudWatchLiveMetricsOptions {
  /** @default - a client from `clientConfig(clientOptions)`: the SDK's standard credential chain and region */
  readonly cloudWatch?: CloudWatchClient;
  /** Region, endpoint, credentials of the default client. @default - the SDK's standard chain */
  readonly clientOptions?: AwsClientOptions;
  /**
   * The application's per-version metrics namespace (the controller's `CUTOVER_APP_METRICS_NAMESPACE`).
   * @default 'Cutover/App' (the construct's default)
   */
  readonly appMetricsNamespace?: string;
  /** How far back the charts reach (from the migration's start when it is more recent). @default 10800000 (3 hours) */
  readonly lookbackMs?: number;
  /**
   * The least time between two requests for one migration: datapoints are per minute, so reading
   * more often costs without showing more. A refresh sooner than this shows the last read.
   * @default 60000
   */
  readonly minIntervalMs?: number;
  /** Pages one read follows (each page is a call). @default 5 */
  readonly maxPages?: number;
}

/** The construct's default (lib/metrics.ts, which the CLI cannot import: it loads aws-cdk-lib). */
export const DEFAULT_APP_METRICS_NAMESPACE = 'Cutover/App';
/** How far back the charts reach by default: 3 hours. */
export const DEFAULT_LOOKBACK_MS = 3 * 3_600_000;
/** 24 hours of minutes × 16 metrics stays far below GetMetricData's 100,800 datapoints per call. */
const MAX_LOOKBACK_MS = 24 * 3_600_000;
const PERIOD_MS = PERIOD_SECONDS * 1000;
/** After a settled migration's last update, the minutes still worth showing (late datapoints). */
const SETTLED_TAIL_MS = 10 * PERIOD_MS;
/** Minutes land within about two minutes: a period that ended longer ago than this will not change. */
const INGESTED_AFTER_MS = 3 * PERIOD_MS;
const SETTLED = new Set<string>([MigrationStatus.ROLLED_BACK, MigrationStatus.TORN_DOWN, MigrationStatus.COMPLETE]);
const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'LimitExceededException']);
const NO_CREDENTIALS = new Set(['CredentialsProviderError', 'ExpiredTokenException', 'ExpiredToken', 'UnrecognizedClientException', 'InvalidClientTokenId']);

/** The controller metrics read, with the statistic that keeps a minute's meaning. */
const CONTROLLER_QUERIES: readonly { readonly id: string; readonly metric: string; readonly stat: string }[] = [
  // Several ticks a minute: the highest weight of the minute (a rollback shows from the next one).
  { id: 'ctl_weight', metric: 'Weight', stat: 'Maximum' },
  // The worst moment of the minute is what matters against the pin.
  { id: 'ctl_old_capacity', metric: 'OldCapacity', stat: 'Minimum' },
  { id: 'ctl_pinned_capacity', metric: 'PinnedCapacity', stat: 'Maximum' },
  { id: 'ctl_residual_requests', metric: 'ResidualRequests', stat: 'Maximum' },
];

export class CloudWatchLiveMetrics implements LiveMetrics {
  private client: CloudWatchClient | undefined;
  private readonly ownsClient: boolean;
  private readonly last = new Map<string, CloudWatchRead>();
  private readonly appMetricsNamespace: string;
  private readonly lookbackMs: number;
  private readonly minIntervalMs: number;
  private readonly maxPages: number;

  constructor(private readonly options: CloudWatchLiveMetricsOptions = {}) {
    this.client = options.cloudWatch;
    this.ownsClient = !options.cloudWatch;
    this.appMetricsNamespace = options.appMetricsNamespace ?? DEFAULT_APP_METRICS_NAMESPACE;
    if (this.appMetricsNamespace.trim() === '') throw new TypeError('appMetricsNamespace must name a namespace, got an empty string');
    this.lookbackMs = options.lookbackMs ?? DEFAULT_LOOKBACK_MS;
    if (!Number.isFinite(this.lookbackMs) || this.lookbackMs < PERIOD_MS || this.lookbackMs > MAX_LOOKBACK_MS) {
      throw new RangeError(`lookbackMs must be from ${PERIOD_MS} (a minute) to ${MAX_LOOKBACK_MS} (24 hours), got ${options.lookbackMs}`);
    }
    this.minIntervalMs = options.minIntervalMs ?? PERIOD_MS;
    if (!Number.isFinite(this.minIntervalMs) || this.minIntervalMs < 0) throw new RangeError(`minIntervalMs must be zero or more, got ${options.minIntervalMs}`);
    this.maxPages = options.maxPages ?? 5;
    if (!Number.isInteger(this.maxPages) || this.maxPages < 1) throw new RangeError(`maxPages must be a whole number ≥ 1, got ${options.maxPages}`);
  }

  cached(migrationId: string): CloudWatchRead | undefined {
    return this.last.get(migrationId);
  }

  /** The period, the queries and what the migration's record allows to read. */
  plan(state: MigrationState, nowMs: number): { fromMs: number; toMs: number; queries: MetricDataQuery[]; health: CloudWatchRead['health']; healthNote?: string } | undefined {
    const key = state.key ?? aliasKey(state.metadata);
    if (key === undefined) return undefined;
    const end = SETTLED.has(state.status) && state.updatedAtMs !== undefined ? Math.min(nowMs, state.updatedAtMs + SETTLED_TAIL_MS) : nowMs;
    const toMs = Math.ceil(end / PERIOD_MS) * PERIOD_MS;
    const start = Math.max(toMs - this.lookbackMs, state.createdAtMs ?? -Infinity);
    const fromMs = Math.min(toMs - PERIOD_MS, Math.floor(start / PERIOD_MS) * PERIOD_MS);
    const queries: MetricDataQuery[] = CONTROLLER_QUERIES.map((q) => ({
      Id: q.id,
      Label: `controller ${q.metric} ${q.stat}`,
      MetricStat: { Metric: { Namespace: CUTOVER_NAMESPACE, MetricName: q.metric, Dimensions: [{ Name: 'Migration', Value: key }] }, Period: PERIOD_SECONDS, Stat: q.stat },
      ReturnData: true,
    }));
    const m = state.metadata ?? {};
    if (m.functionName && m.aliasName && m.oldVersion && m.newVersion) {
      // The controller's own query builder: the dashboard reads exactly what the judge reads.
      const health = new CloudWatchHealth({
        cloudWatch: this.cloudWatch(),
        functionName: m.functionName,
        aliasName: m.aliasName,
        oldVersion: m.oldVersion,
        newVersion: m.newVersion,
        appMetricsNamespace: this.appMetricsNamespace,
      });
      return { fromMs, toMs, queries: [...queries, ...health.queries({}, true)], health: 'lambda-alias' };
    }
    const fleetSides =
      m.target === 'load-balancer' && m.loadBalancer && m.oldTargetGroup && m.newTargetGroup
        ? { old: { loadBalancer: m.loadBalancer, targetGroup: m.oldTargetGroup }, new: { loadBalancer: m.loadBalancer, targetGroup: m.newTargetGroup } }
        : m.target === 'dns' && m.oldLoadBalancer && m.newLoadBalancer
          ? { old: { loadBalancer: m.oldLoadBalancer }, new: { loadBalancer: m.newLoadBalancer } }
          : undefined;
    if (fleetSides) {
      // The controller's own ALB query builder (per target group, or per load balancer for DNS).
      const health = new LoadBalancerHealth({ cloudWatch: this.cloudWatch(), ...fleetSides });
      return { fromMs, toMs, queries: [...queries, ...health.queries({})], health: 'load-balancer' };
    }
    const healthNote =
      m.target === 'load-balancer' || m.target === 'dns'
        ? `per-side ALB metrics are not read: the migration's record names no ${m.target === 'dns' ? 'per-side load balancers' : 'target groups'} (recorded by releases deployed with this version on)`
        : 'per-side metrics are not read: the migration\'s record names no function, alias and versions';
    return { fromMs, toMs, queries, health: 'none', healthNote };
  }

  async read(state: MigrationState, nowMs: number): Promise<CloudWatchRead | undefined> {
    const plan = this.plan(state, nowMs);
    if (!plan) return undefined;
    const last = this.last.get(state.id);
    // Sooner than the interval, or a settled period that was read once it had all landed: the
    // last read stands, and no request is made.
    if (last?.attemptedAtMs !== undefined && nowMs - last.attemptedAtMs < this.minIntervalMs) return last;
    if (last?.status === 'live' && last.fromMs === plan.fromMs && last.toMs === plan.toMs && (last.readAtMs ?? 0) >= plan.toMs + INGESTED_AFTER_MS) return last;

    const base = { fromMs: plan.fromMs, toMs: plan.toMs, attemptedAtMs: nowMs, metricsRequested: plan.queries.length, health: plan.health, ...(plan.healthNote ? { healthNote: plan.healthNote } : {}) };
    let read: CloudWatchRead;
    try {
      const { series, pages, partial } = await this.fetch(plan.queries, plan.fromMs, plan.toMs);
      read = { ...base, status: 'live', readAtMs: nowMs, pages, partial, series };
    } catch (error) {
      read = failedRead(base, last, error);
    }
    this.last.set(state.id, read);
    return read;
  }

  close(): void {
    if (this.ownsClient) this.client?.destroy();
    this.client = undefined;
  }

  private cloudWatch(): CloudWatchClient {
    this.client ??= new CloudWatchClient(clientConfig(this.options.clientOptions));
    return this.client;
  }

  /**
   * One logical GetMetricData request. When CloudWatch cuts its answer short it returns a
   * NextToken, and the next call CONTINUES THE SAME REQUEST (same queries, same period; only the
   * token is added): it is one read of one refresh, not a new one, and is bounded by `maxPages`.
   */
  private async fetch(queries: MetricDataQuery[], fromMs: number, toMs: number): Promise<{ series: Record<string, CloudWatchSeriesData>; pages: number; partial: boolean }> {
    const points = new Map<string, [number, number][]>();
    const labels = new Map(queries.map((q) => [q.Id!, q.Label ?? q.Id!]));
    const status = new Map<string, string>();
    const client = this.cloudWatch();
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(
        new GetMetricDataCommand({
          MetricDataQueries: queries,
          StartTime: new Date(fromMs),
          EndTime: new Date(toMs),
          ScanBy: 'TimestampAscending',
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      pages++;
      for (const result of page.MetricDataResults ?? []) {
        if (!result.Id) continue;
        const list = points.get(result.Id) ?? [];
        const times = result.Timestamps ?? [];
        (result.Values ?? []).forEach((value, i) => {
          const at = times[i];
          if (at && Number.isFinite(value)) list.push([at.getTime(), value]);
        });
        points.set(result.Id, list);
        // Across pages the last status wins: PartialData on one page means "more on the next one".
        if (result.StatusCode) status.set(result.Id, result.StatusCode);
      }
      nextToken = page.NextToken;
    } while (nextToken && pages < this.maxPages);
    const series: Record<string, CloudWatchSeriesData> = {};
    for (const [id, label] of labels) {
      const list = (points.get(id) ?? []).sort((a, b) => a[0] - b[0]);
      series[id] = { label, points: list };
    }
    const partial = nextToken !== undefined || [...status.values()].some((s) => s !== 'Complete');
    return { series, pages, partial };
  }
}

/** A failed read: the last data is kept (marked stale) whatever failed; the status says why. */
function failedRead(base: Omit<CloudWatchRead, 'status' | 'pages' | 'partial' | 'series'>, last: CloudWatchRead | undefined, error: unknown): CloudWatchRead {
  const name = errorName(error) ?? '';
  const kept = last && last.readAtMs !== undefined ? { readAtMs: last.readAtMs, series: last.series, partial: last.partial, pages: last.pages } : { series: {}, partial: false, pages: 0 };
  const since = kept.readAtMs !== undefined ? `showing the data read at ${new Date(kept.readAtMs).toISOString().slice(11, 19)} UTC` : 'no CloudWatch data yet';
  if (NO_CREDENTIALS.has(name)) {
    return {
      ...base,
      ...kept,
      status: 'no-credentials',
      message: `no usable AWS credentials for CloudWatch (${describeError(error)}): give some through the standard chain (AWS_PROFILE, environment, SSO, an instance role); ${since}`,
    };
  }
  const why = THROTTLING.has(name) ? `CloudWatch throttled the read (${name})` : `the CloudWatch read failed: ${describeError(error)}`;
  return { ...base, ...kept, status: kept.readAtMs !== undefined ? 'stale' : 'unavailable', message: `${why}; ${since}` };
}

/** An alias migration's key from its record's metadata (a migration that is no longer current has no pointer key). */
function aliasKey(metadata: Readonly<Record<string, string>> | undefined): string | undefined {
  return metadata?.functionName && metadata.aliasName ? aliasKeyOf(metadata.functionName, metadata.aliasName) : undefined;
}
