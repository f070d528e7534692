/**
 * A migration's `Settings`: the per-migration variables its custom resource carries to the shared
 * deploy trigger, which stores them in the migration's registry item (lambda/aws/registry.ts), and
 * from which the shared controller and probe build the same configuration a per-migration
 * function once read from its environment. The names are exactly those of `PER_MIGRATION_SETTINGS`
 * (test/infra checks it): the target and the pin, the plan and the judge, the watched alarms, the
 * pinned units, the application's metrics and the probe's targets.
 */
import { Lazy, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { DEPLOYED_APP_REQUESTS_EVERY_MINUTES } from '../lambda/aws/health-reads';
import type { CanaryMigrationProps } from './canary-migration-props';
import { ProbeSide } from './metrics';
import type { MigrationTargetBinding, OldCapacityBinding, ProbeTargetSpec } from './targets/binding';

/** What a migration's settings are made of. */
export interface MigrationSettingsSource {
  readonly scope: Construct;
  readonly props: CanaryMigrationProps;
  readonly target: MigrationTargetBinding;
  readonly capacity: OldCapacityBinding;
  readonly migrationKey: string;
  readonly appMetricsNamespace: string;
  /** The plan and the judge's overrides, as JSON. */
  readonly planJson: string;
  readonly judgeJson: string;
  /** The probe's settings (`probeSettingsOf`; empty without a probe). */
  readonly probeSettings: Readonly<Record<string, string>>;
  /** The watched alarms, read when the template is written (`addAlarm` may be called after the constructor). */
  readonly watchedAlarms: () => readonly cloudwatch.IAlarm[];
}

/**
 * The probe's settings (empty without targets): the target's own probe endpoints (fleets), or the
 * `probeTargets` prop (Lambda alias), with the path and the runs.
 */
export function probeSettingsOf(scope: Construct, props: CanaryMigrationProps, target: MigrationTargetBinding): Record<string, string> {
  let probeTargets: ProbeTargetSpec[] | undefined = target.probeTargets ? [...target.probeTargets] : undefined;
  if (!probeTargets && props.probeTargets) {
    probeTargets = [{ side: ProbeSide.NEW, url: props.probeTargets.newUrl }];
    if (props.probeTargets.oldUrl !== undefined) probeTargets.push({ side: ProbeSide.OLD, url: props.probeTargets.oldUrl });
  }
  if (!probeTargets) return {};
  return {
    CUTOVER_PROBE_TARGETS: Stack.of(scope).toJsonString(probeTargets),
    CUTOVER_PROBE_PATH: props.probePath ?? '/',
    CUTOVER_PROBE_RUNS: String(props.probeRuns ?? 1),
  };
}

/** The migration's `Settings` (values may be tokens: resolved by CloudFormation, or at synth for the alarms). */
export function migrationSettings(s: MigrationSettingsSource): Record<string, string> {
  const stack = Stack.of(s.scope);
  return {
    ...s.target.environment,
    ...s.capacity.environment,
    // The registry key; the shared handlers set it from the key anyway (`migrationEnvironment`).
    CUTOVER_MIGRATION_KEY: s.migrationKey,
    CUTOVER_PLAN: s.planJson,
    CUTOVER_JUDGE: s.judgeJson,
    CUTOVER_ALARM_NAMES: Lazy.string({ produce: () => stack.toJsonString(s.watchedAlarms().map((alarm) => alarm.alarmName)) }),
    // Units, 0 for none, `auto` for the old fleet's size at the start.
    CUTOVER_PINNED_CAPACITY: s.capacity.units === undefined ? 'auto' : String(s.capacity.units),
    CUTOVER_APP_METRICS_NAMESPACE: s.appMetricsNamespace,
    // An alias's application Requests, a cross-check and not the judged count, are read one
    // window in ten minutes (GetMetricData is billed per metric requested).
    ...(s.target.kind === 'lambda-alias' ? { CUTOVER_APP_REQUESTS_EVERY_MINUTES: String(DEPLOYED_APP_REQUESTS_EVERY_MINUTES) } : {}),
    ...s.probeSettings,
  };
}
