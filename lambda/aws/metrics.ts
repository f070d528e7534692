/**
 * The controller's and the probe's CloudWatch metrics, written as EMF through Powertools Metrics.
 *
 * Dimension sets are exactly the contract's: `{Migration}` for the controller and
 * `{Migration, Side}` for the probe. Powertools' default `service` dimension is removed, because a
 * dashboard metric must name every dimension of the series it reads.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { CUTOVER_NAMESPACE } from './metric-namespace';
import type { MigrationRecord } from '../core/controller';
import { MigrationStatus } from '../core/model';
import type { StoredProbeResult } from './dynamodb-store';

/** Namespace of the controller's and the probe's metrics. */
export { CUTOVER_NAMESPACE };

/**
 * `StatusCode` metric values: the index of the status in this list —
 * 0 pending, 1 gating, 2 shifting, 3 baking, 4 promoted, 5 soaking, 6 complete, 7 torn-down,
 * 8 rolled-back, 9 paused.
 */
export const STATUS_CODES: readonly MigrationStatus[] = Object.freeze([
  MigrationStatus.PENDING,
  MigrationStatus.GATING,
  MigrationStatus.SHIFTING,
  MigrationStatus.BAKING,
  MigrationStatus.PROMOTED,
  MigrationStatus.SOAKING,
  MigrationStatus.COMPLETE,
  MigrationStatus.TORN_DOWN,
  MigrationStatus.ROLLED_BACK,
  MigrationStatus.PAUSED,
]);

export function statusCode(status: MigrationStatus): number {
  const index = STATUS_CODES.indexOf(status);
  if (index < 0) throw new RangeError(`unknown migration status ${JSON.stringify(status)}`);
  return index;
}

/** A Powertools Metrics instance without the default `service` dimension. */
export function createMetrics(serviceName: string, namespace = process.env.POWERTOOLS_METRICS_NAMESPACE || CUTOVER_NAMESPACE): Metrics {
  const metrics = new Metrics({ namespace, serviceName });
  metrics.clearDefaultDimensions();
  return metrics;
}

/** What the controller did in one invocation, for the counters. */
export type ControllerAction = 'advance' | 'hold' | 'rollback' | 'pause' | undefined;

/**
 * Event types the judge records routinely while nothing changes (a judged window, a watched
 * complete migration): an invocation that recorded only these changed neither the step nor the pin.
 */
const ROUTINE_EVENTS: readonly string[] = ['held', 'watched'];

/**
 * Writes one EMF line with the controller's gauges and counters for a migration.
 *
 * CloudWatch bills a custom metric for every hour in which it receives a value, so what is sent
 * on every tick is what carries new information on every tick:
 * - `Weight` and `StatusCode`, and `OldCapacity` when the pin was measured: every invocation.
 * - `Step` and `PinnedCapacity`: only on invocations that recorded a change (anything but a routine
 *   `held`/`watched`). Between changes they are constant, and `Step` repeats what `Weight` shows.
 * - `Advances`, `Holds`, `Rollbacks`, `Pauses`: 1 when that happened, nothing otherwise (a
 *   dashboard or an alarm reads a quiet period as missing data: `FILL(m, 0)`, or
 *   `TreatMissingData.NOT_BREACHING` on an alarm). Sending 0 on every tick kept four metrics billed
 *   all day for the hours in which nothing happened.
 * - `ResidualRequests` while a rolled-back migration's new side is watched, `ResidualWatchMs` once.
 */
export function publishControllerMetrics(
  metrics: Metrics,
  migrationKey: string,
  record: MigrationRecord,
  action: ControllerAction,
  oldCapacity: number | undefined,
  eventTypes: readonly string[] = [],
): void {
  metrics.addDimension('Migration', migrationKey);
  metrics.addMetric('Weight', MetricUnit.Percent, record.weight);
  metrics.addMetric('StatusCode', MetricUnit.Count, statusCode(record.status));
  if (eventTypes.some((type) => !ROUTINE_EVENTS.includes(type))) {
    metrics.addMetric('Step', MetricUnit.Count, record.step);
    metrics.addMetric('PinnedCapacity', MetricUnit.Count, record.capacityReleased ? 0 : (record.pinnedCapacity ?? 0));
  }
  if (oldCapacity !== undefined) metrics.addMetric('OldCapacity', MetricUnit.Count, oldCapacity);
  if (action === 'advance') metrics.addMetric('Advances', MetricUnit.Count, 1);
  if (action === 'hold') metrics.addMetric('Holds', MetricUnit.Count, 1);
  if (action === 'rollback') metrics.addMetric('Rollbacks', MetricUnit.Count, 1);
  if (action === 'pause') metrics.addMetric('Pauses', MetricUnit.Count, 1);
  // While a rolled-back migration's new side is watched: what still reached it since the
  // rollback, and, once it drained, how long that took (the `rollback-residual` event has both).
  const residual = record.residual;
  if (residual && residual.endedAtMs === undefined) metrics.addMetric('ResidualRequests', MetricUnit.Count, residual.requests);
  if (residual?.endedAtMs !== undefined && eventTypes.length > 0) {
    metrics.addMetric('ResidualRequests', MetricUnit.Count, residual.requests);
    metrics.addMetric('ResidualWatchMs', MetricUnit.Milliseconds, Math.max(0, Math.min(residual.lastWindowEndMs, residual.endedAtMs) - residual.sinceMs));
  }
  metrics.publishStoredMetrics();
}

/**
 * Writes one EMF line for one probe result.
 *
 * `ProbeDesync` (0 or 1) on every run: the signal people alarm on, and its sample count is the
 * number of runs. Everything else only when it says something `ProbeDesync = 0` does not:
 * `ProbeInconclusive` (1) on an inconclusive run; the desync evidence (`UnsolicitedBytes`,
 * `ShiftedSteps`, `MismatchRate`) when it is not zero; `ProbeDurationMs` on runs that were not ok
 * (a slow or timed-out run is the one worth seeing; every run's duration is in the probe's log and
 * recorded result). `ProbeOk` is no longer sent: it is runs − desyncs − inconclusive
 * (`CanaryMigration.metricProbeOk` computes it). Each of these was a metric billed all day per side.
 */
export function publishProbeMetrics(metrics: Metrics, migrationKey: string, result: StoredProbeResult): void {
  metrics.addDimensions({ Migration: migrationKey, Side: result.side });
  metrics.addMetric('ProbeDesync', MetricUnit.Count, result.verdict === 'desync' ? 1 : 0);
  if (result.verdict === 'inconclusive') metrics.addMetric('ProbeInconclusive', MetricUnit.Count, 1);
  if (result.unsolicitedBytes) metrics.addMetric('UnsolicitedBytes', MetricUnit.Bytes, result.unsolicitedBytes);
  if (result.shiftedSteps) metrics.addMetric('ShiftedSteps', MetricUnit.Count, result.shiftedSteps);
  // The probe reports a share (0–1); the contract's unit is Percent.
  if (result.mismatchRate) metrics.addMetric('MismatchRate', MetricUnit.Percent, result.mismatchRate * 100);
  if (result.durationMs !== undefined && result.verdict !== 'ok') metrics.addMetric('ProbeDurationMs', MetricUnit.Milliseconds, result.durationMs);
  metrics.publishStoredMetrics();
}
