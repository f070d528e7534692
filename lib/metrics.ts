/**
 * The metrics a migration produces and reads, in one place: names and dimensions follow the
 * contract between the construct and the handlers (EMF via Powertools Metrics).
 *
 * - Controller and probe metrics: namespace `Cutover`, dimension `Migration` = `<function>:<alias>`
 *   (the probe adds `Side` = old | new).
 * - Application metrics: the user's namespace, dimensions `{ FunctionName, Version }`. Requests
 *   that carry the probe marker (`X-Cutover-Probe: 1`, `PROBE_MARKER_HEADER`) are the Keep-Alive
 *   probe's and must not be counted in them (see `AppMetric`).
 * - Lambda's own metrics through an alias: `{ FunctionName, Resource: "<fn>:<alias>", ExecutedVersion }`.
 *   aws-cdk's `Version.metric()` uses `Resource = fn:N`, which stays empty when traffic goes through an
 *   alias, so these are built by hand.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { MigrationStatus } from '../lambda/core/model';
import { PROBE_MARKER_HEADER, PROBE_MARKER_VALUE } from '../lambda/probe/marker';

/**
 * The header every Keep-Alive probe request carries (`x-cutover-probe`, value `1`). An application
 * publishing the `AppMetric`s answers such requests as usual but leaves them out of its counts.
 * In the application's own code, import `isProbeRequest` from `lambda/probe/marker` (it has no
 * dependencies) rather than from here, which loads aws-cdk-lib.
 */
export { PROBE_MARKER_HEADER, PROBE_MARKER_VALUE };

/** Namespace of the controller's and the probe's metrics. */
export const CUTOVER_METRICS_NAMESPACE = 'Cutover';

/** Default namespace for the application's per-version request metrics. */
export const DEFAULT_APP_METRICS_NAMESPACE = 'Cutover/App';

/**
 * The controller publishes `StatusCode` as the index of the status in this list (the order of
 * `MigrationStatus` in the core's model): 0 pending, 1 gating, 2 shifting, 3 baking, 4 promoted,
 * 5 soaking, 6 complete, 7 torn-down, 8 rolled-back, 9 paused.
 */
export const MIGRATION_STATUS_CODES: readonly MigrationStatus[] = Object.freeze(Object.values(MigrationStatus));

/** Which side of the migration a probe metric describes. */
export enum ProbeSide {
  /** The version traffic is moving away from. */
  OLD = 'old',
  /** The version traffic is moving to. */
  NEW = 'new',
}

/** Controller metric names (namespace `Cutover`, dimension `Migration`). */
export const ControllerMetric = {
  WEIGHT: 'Weight',
  STEP: 'Step',
  STATUS_CODE: 'StatusCode',
  OLD_CAPACITY: 'OldCapacity',
  PINNED_CAPACITY: 'PinnedCapacity',
  ADVANCES: 'Advances',
  HOLDS: 'Holds',
  ROLLBACKS: 'Rollbacks',
  PAUSES: 'Pauses',
  /** After a rollback: requests that still reached the new side (while it is watched). */
  RESIDUAL_REQUESTS: 'ResidualRequests',
  /** After a rollback: from the rollback to the end of the window in which the new side was empty, ms. */
  RESIDUAL_WATCH_MS: 'ResidualWatchMs',
} as const;

/** Probe metric names (namespace `Cutover`, dimensions `Migration` and `Side`). */
export const ProbeMetric = {
  OK: 'ProbeOk',
  DESYNC: 'ProbeDesync',
  INCONCLUSIVE: 'ProbeInconclusive',
  UNSOLICITED_BYTES: 'UnsolicitedBytes',
  SHIFTED_STEPS: 'ShiftedSteps',
  MISMATCH_RATE: 'MismatchRate',
  DURATION_MS: 'ProbeDurationMs',
} as const;

/**
 * Application metric names (user namespace, dimensions `FunctionName` and `Version`), one set per
 * request the application answers, EXCEPT the Keep-Alive probe's: a request with the header
 * `X-Cutover-Probe: 1` (`PROBE_MARKER_HEADER` / `PROBE_MARKER_VALUE`; names are case-insensitive)
 * is answered normally and not counted. The probe sends 404s, 413s, 405s, 400s and 401s on
 * purpose, and the judge compares these counts between the versions. For example:
 *
 * ```ts
 * import { isProbeRequest } from '<cutover>/lambda/probe/marker';
 * if (!isProbeRequest(event.headers)) {
 *   metrics.addMetric(AppMetric.REQUESTS, MetricUnit.Count, 1);
 *   // … Errors4xx, Errors5xx, LatencyMs
 * }
 * ```
 */
export const AppMetric = {
  REQUESTS: 'Requests',
  ERRORS_4XX: 'Errors4xx',
  ERRORS_5XX: 'Errors5xx',
  LATENCY_MS: 'LatencyMs',
} as const;

/** What metric builders need to know about one migration. */
export interface MigrationMetricScope {
  /** `<function name>:<alias name>` (may contain tokens). */
  readonly migrationKey: string;
  /** The migrated function's name (may be a token); undefined for fleet migrations. */
  readonly functionName?: string;
  /** Undefined for fleet migrations. */
  readonly aliasName?: string;
  /** Namespace of the application's per-version metrics. */
  readonly appMetricsNamespace: string;
}

const ONE_MINUTE = Duration.minutes(1);

/** A controller or probe metric of one migration. */
export function cutoverMetric(
  scope: MigrationMetricScope,
  metricName: string,
  defaults: { statistic: string; period: Duration },
  props: cloudwatch.MetricOptions = {},
  extraDimensions: Record<string, string> = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: CUTOVER_METRICS_NAMESPACE,
    metricName,
    statistic: defaults.statistic,
    period: defaults.period,
    ...props,
    dimensionsMap: { Migration: scope.migrationKey, ...extraDimensions, ...props.dimensionsMap },
  });
}

/** The function and alias of a Lambda alias migration; a clear error for a fleet migration. */
function aliasOf(scope: MigrationMetricScope, what: string): { functionName: string; aliasName: string } {
  if (scope.functionName === undefined || scope.aliasName === undefined) {
    throw new Error(`${what} describes a Lambda function's versions; migration ${scope.migrationKey} moves a fleet: use its load balancer's metrics (AWS/ApplicationELB) instead`);
  }
  return { functionName: scope.functionName, aliasName: scope.aliasName };
}

/** An application metric of one version (dimensions `FunctionName`, `Version`). */
export function appMetric(
  scope: MigrationMetricScope,
  metricName: string,
  version: string,
  props: cloudwatch.MetricOptions = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: scope.appMetricsNamespace,
    metricName,
    statistic: metricName === AppMetric.LATENCY_MS ? 'p99' : 'Sum',
    period: ONE_MINUTE,
    ...props,
    dimensionsMap: { FunctionName: aliasOf(scope, 'metricApp').functionName, Version: version, ...props.dimensionsMap },
  });
}

/**
 * One of Lambda's own metrics for the invocations of `version` made through the alias
 * (dimensions `FunctionName`, `Resource = fn:alias`, `ExecutedVersion`).
 */
export function executedVersionMetric(
  scope: MigrationMetricScope,
  metricName: string,
  version: string,
  props: cloudwatch.MetricOptions = {},
): cloudwatch.Metric {
  const { functionName, aliasName } = aliasOf(scope, 'metricExecutedVersion');
  return new cloudwatch.Metric({
    namespace: 'AWS/Lambda',
    metricName,
    statistic: metricName === 'Duration' ? 'p99' : 'Sum',
    period: ONE_MINUTE,
    ...props,
    dimensionsMap: {
      FunctionName: functionName,
      Resource: `${functionName}:${aliasName}`,
      ExecutedVersion: version,
      ...props.dimensionsMap,
    },
  });
}
