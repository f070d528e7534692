/**
 * The controller's and the probe's CloudWatch metrics, written as EMF through Powertools Metrics.
 *
 * Dimension sets are exactly the contract's: `{Migration}` for the controller and
 * `{Migration, Side}` for the probe. Powertools' default `service` dimension is removed, because a
 * dashboard metric must name every dimension of the series it reads.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MigrationRecord } from '../core/controller';
import { MigrationStatus } from '../core/model';
import type { StoredProbeResult } from './dynamodb-store';

/** Namespace of the controller's and the probe's metrics. */
export const CUTOVER_NAMESPACE = 'Cutover';

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

/** Writes one EMF line with the controller's gauges and counters for a migration. */
export function publishControllerMetrics(
  metrics: Metrics,
  migrationKey: string,
  record: MigrationRecord,
  action: ControllerAction,
  oldCapacity: number | undefined,
): void {
  metrics.addDimension('Migration', migrationKey);
  metrics.addMetric('Weight', MetricUnit.Percent, record.weight);
  metrics.addMetric('Step', MetricUnit.Count, record.step);
  metrics.addMetric('StatusCode', MetricUnit.Count, statusCode(record.status));
  metrics.addMetric('PinnedCapacity', MetricUnit.Count, record.capacityReleased ? 0 : (record.pinnedCapacity ?? 0));
  if (oldCapacity !== undefined) metrics.addMetric('OldCapacity', MetricUnit.Count, oldCapacity);
  // 0 or 1 on every invocation, so that Sum counts decisions and a quiet period reads 0, not "no data".
  metrics.addMetric('Advances', MetricUnit.Count, action === 'advance' ? 1 : 0);
  metrics.addMetric('Holds', MetricUnit.Count, action === 'hold' ? 1 : 0);
  metrics.addMetric('Rollbacks', MetricUnit.Count, action === 'rollback' ? 1 : 0);
  metrics.addMetric('Pauses', MetricUnit.Count, action === 'pause' ? 1 : 0);
  // While a rolled-back migration's new side is watched: what still reached it since the
  // rollback, and, once it drained, how long that took (the `rollback-residual` event has both).
  const residual = record.residual;
  if (residual) metrics.addMetric('ResidualRequests', MetricUnit.Count, residual.requests);
  if (residual?.endedAtMs !== undefined) {
    metrics.addMetric('ResidualWatchMs', MetricUnit.Milliseconds, Math.max(0, Math.min(residual.lastWindowEndMs, residual.endedAtMs) - residual.sinceMs));
  }
  metrics.publishStoredMetrics();
}

/** Writes one EMF line for one probe result. */
export function publishProbeMetrics(metrics: Metrics, migrationKey: string, result: StoredProbeResult): void {
  metrics.addDimensions({ Migration: migrationKey, Side: result.side });
  metrics.addMetric('ProbeOk', MetricUnit.Count, result.verdict === 'ok' ? 1 : 0);
  metrics.addMetric('ProbeDesync', MetricUnit.Count, result.verdict === 'desync' ? 1 : 0);
  metrics.addMetric('ProbeInconclusive', MetricUnit.Count, result.verdict === 'inconclusive' ? 1 : 0);
  if (result.unsolicitedBytes !== undefined) metrics.addMetric('UnsolicitedBytes', MetricUnit.Bytes, result.unsolicitedBytes);
  if (result.shiftedSteps !== undefined) metrics.addMetric('ShiftedSteps', MetricUnit.Count, result.shiftedSteps);
  // The probe reports a share (0–1); the contract's unit is Percent.
  if (result.mismatchRate !== undefined) metrics.addMetric('MismatchRate', MetricUnit.Percent, result.mismatchRate * 100);
  if (result.durationMs !== undefined) metrics.addMetric('ProbeDurationMs', MetricUnit.Milliseconds, result.durationMs);
  metrics.publishStoredMetrics();
}
