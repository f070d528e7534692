/**
 * The metrics of a `CanaryMigration` (`metricWeight()`, `metricRollbacks()`, the probe's and the
 * application's per-version metrics): the base class of the construct, apart from it because they
 * are its read-only CloudWatch surface and need nothing of it but its names (see
 * `MigrationMetricScope`), while canary-migration.ts composes resources.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { CutoverValidationError, show } from './errors';
import {
  AppMetric,
  ControllerMetric,
  ProbeMetric,
  ProbeSide,
  appMetric,
  cutoverMetric,
  executedVersionMetric,
  type MigrationMetricScope,
} from './metrics';

/** What a migration's metrics are named by; `CanaryMigration` sets these in its constructor. */
export abstract class CanaryMigrationMetrics extends Construct implements MigrationMetricScope {
  public abstract readonly migrationKey: string;
  public abstract readonly functionName?: string;
  public abstract readonly aliasName?: string;
  public abstract readonly appMetricsNamespace: string;

  /**
   * A controller metric of this migration by name (namespace `Cutover`, dimension `Migration`).
   * @default - Maximum over 1 minute
   */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return cutoverMetric(this, metricName, { statistic: 'Maximum', period: Duration.minutes(1) }, props);
  }

  /**
   * Percent of traffic on the new version.
   * @default - Maximum over 1 minute
   */
  public metricWeight(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ControllerMetric.WEIGHT, { unit: cloudwatch.Unit.PERCENT, ...props });
  }

  /**
   * Index of the current plan step (-1 before the first shift). Sent when the migration changes
   * (a step, a status, the pin), not on every tick: between changes it is constant, and `Weight`
   * (every tick) shows the step's effect.
   * @default - Maximum over 1 minute
   */
  public metricStep(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ControllerMetric.STEP, props);
  }

  /**
   * The status as an index into `MIGRATION_STATUS_CODES`.
   * @default - Maximum over 1 minute
   */
  public metricStatusCode(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ControllerMetric.STATUS_CODE, props);
  }

  /**
   * Provisioned concurrency currently allocated on the old version.
   * @default - Minimum over 1 minute (the weakest moment counts)
   */
  public metricOldCapacity(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return cutoverMetric(this, ControllerMetric.OLD_CAPACITY, { statistic: 'Minimum', period: Duration.minutes(1) }, props);
  }

  /**
   * The figure the old version is pinned to. Sent when the migration changes (like `metricStep`):
   * it is constant in between; `metricOldCapacity` is measured on every tick.
   * @default - Maximum over 1 minute
   */
  public metricPinnedCapacity(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ControllerMetric.PINNED_CAPACITY, props);
  }

  /**
   * Steps advanced. Sent as 1 when it happens and not at all otherwise: a quiet period is
   * missing data (`FILL(m, 0)` in math; `TreatMissingData.NOT_BREACHING` on an alarm).
   * @default - Sum over 5 minutes
   */
  public metricAdvances(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.ADVANCES, props);
  }

  /**
   * Decisions to hold a step (not enough evidence yet). Sent as 1 when it happens and not at all otherwise: a quiet period is
   * missing data (`FILL(m, 0)` in math; `TreatMissingData.NOT_BREACHING` on an alarm).
   * @default - Sum over 5 minutes
   */
  public metricHolds(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.HOLDS, props);
  }

  /**
   * Rollbacks (alarm an operator on this one). Sent as 1 when it happens and not at all otherwise: a quiet period is
   * missing data (`FILL(m, 0)` in math; `TreatMissingData.NOT_BREACHING` on an alarm).
   * @default - Sum over 5 minutes
   */
  public metricRollbacks(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.ROLLBACKS, props);
  }

  /**
   * Pauses (by the judge or an operator). Sent as 1 when it happens and not at all otherwise: a quiet period is
   * missing data (`FILL(m, 0)` in math; `TreatMissingData.NOT_BREACHING` on an alarm).
   * @default - Sum over 5 minutes
   */
  public metricPauses(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.PAUSES, props);
  }

  /**
   * After a rollback: requests that still reached the new side since it (published while the new
   * side is watched, until it drained; the `rollback-residual` event has the final figures).
   * @default - Maximum over 1 minute
   */
  public metricResidualRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ControllerMetric.RESIDUAL_REQUESTS, props);
  }

  /**
   * Probe runs that found a desync on `side` (0/1 per run).
   * @default - Sum over 5 minutes
   */
  public metricProbeDesync(side: ProbeSide, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.probeMetric(ProbeMetric.DESYNC, side, 'Sum', props);
  }

  /**
   * Probe runs that passed on `side`: runs − desyncs − inconclusive runs, as metric math (the probe
   * sends `ProbeDesync` on every run, so its sample count is the number of runs; a separate
   * `ProbeOk` metric would only repeat that, billed all day). A statistic or unit does not apply
   * to an expression, so only `label`, `color` and `period` are taken.
   * @default - over 5 minutes
   */
  public metricProbeOk(side: ProbeSide, props?: Pick<cloudwatch.MathExpressionOptions, 'label' | 'color' | 'period'>): cloudwatch.MathExpression {
    const period = props?.period ?? Duration.minutes(5);
    // Ids unique per side, so that both sides' expressions can share one graph.
    const id = (name: string) => `${name}${side === ProbeSide.OLD ? 'Old' : 'New'}`;
    return new cloudwatch.MathExpression({
      expression: `${id('runs')} - ${id('desync')} - FILL(${id('inconclusive')}, 0)`,
      usingMetrics: {
        [id('runs')]: this.probeMetric(ProbeMetric.DESYNC, side, 'SampleCount', { period }),
        [id('desync')]: this.probeMetric(ProbeMetric.DESYNC, side, 'Sum', { period }),
        [id('inconclusive')]: this.probeMetric(ProbeMetric.INCONCLUSIVE, side, 'Sum', { period }),
      },
      period,
      label: props?.label ?? `probe ok (${side})`,
      ...(props?.color ? { color: props.color } : {}),
    });
  }

  /**
   * Probe runs that could not decide on `side` (1 per inconclusive run, nothing otherwise: read
   * a quiet period with `FILL(m, 0)`).
   * @default - Sum over 5 minutes
   */
  public metricProbeInconclusive(side: ProbeSide, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.probeMetric(ProbeMetric.INCONCLUSIVE, side, 'Sum', props);
  }

  /**
   * Bytes the server sent on `side` while no request was pending (hard evidence of a desync).
   * @default - Sum over 5 minutes
   */
  public metricProbeUnsolicitedBytes(side: ProbeSide, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.probeMetric(ProbeMetric.UNSOLICITED_BYTES, side, 'Sum', props);
  }

  /**
   * How long one probe run that was not ok (desync or inconclusive) took on `side`, in
   * milliseconds. Every run's duration is in the probe's log and recorded result.
   * @default - Average over 5 minutes
   */
  public metricProbeDuration(side: ProbeSide, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.probeMetric(ProbeMetric.DURATION_MS, side, 'Average', props);
  }

  /**
   * An application metric (`Requests`, `Errors4xx`, `Errors5xx`, `LatencyMs`) of one version, in
   * the namespace given by `appMetricsNamespace`.
   * @default - Sum over 1 minute (p99 for `LatencyMs`)
   */
  public metricApp(metricName: string, version: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (!Object.values(AppMetric).includes(metricName as (typeof AppMetric)[keyof typeof AppMetric])) {
      throw new CutoverValidationError(`metricApp: unknown application metric ${show(metricName)}; known: ${Object.values(AppMetric).join(', ')}`, this);
    }
    return appMetric(this, metricName, version, props);
  }

  /**
   * One of Lambda's own metrics (`Invocations`, `Errors`, `Duration`, `Throttles` …) for the
   * invocations of `version` made through the alias (dimension `ExecutedVersion`).
   * @default - Sum over 1 minute (p99 for `Duration`)
   */
  public metricExecutedVersion(metricName: string, version: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return executedVersionMetric(this, metricName, version, props);
  }

  private countMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return cutoverMetric(this, metricName, { statistic: 'Sum', period: Duration.minutes(5) }, props);
  }

  private probeMetric(metricName: string, side: ProbeSide, statistic: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (side !== ProbeSide.OLD && side !== ProbeSide.NEW) {
      throw new CutoverValidationError(`probe side must be ProbeSide.OLD or ProbeSide.NEW, got ${show(side)}`, this);
    }
    return cutoverMetric(this, metricName, { statistic, period: Duration.minutes(5) }, props, { Side: side });
  }
}
