/**
 * What a `CanaryMigration` is given: its props (`CanaryMigrationProps`, `ProbeTargets`) and every
 * check of them that can run at synth (`validateProps`, `checkedPlanJson`). Separate from the
 * construct (canary-migration.ts), which only turns valid props into resources: this is the
 * contract, read by whoever configures a migration, and its limits.
 */
import { Token, type Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { CutoverValidationError, show } from './errors';
import { HealthCheck } from './health-check';
import { TeardownPolicy, TrafficShiftPlan } from './plan';
import type { CutoverController } from './cutover-controller';
import type { IMigrationTarget, IOldCapacity } from './targets/binding';
import { validateLambdaAliasTarget } from './targets/lambda-alias';

/** Where the probe can reach each version on its own (not through the weighted alias). */
export interface ProbeTargets {
  /**
   * Base URL that reaches only the new version, e.g. an API stage integrated with the
   * version-qualified function ARN. Probed every minute; a desync rolls the migration back at once.
   */
  readonly newUrl: string;
  /**
   * Base URL that reaches only the old version. The judge uses it as the baseline: a desync on both
   * sides is not the new version's fault, so the migration pauses for a human instead.
   * @default - the old side is not probed
   */
  readonly oldUrl?: string;
}

/** Props of `CanaryMigration`. */
export interface CanaryMigrationProps {
  /**
   * What moves traffic: `MigrationTarget.lambdaAlias`, `MigrationTarget.loadBalancer` or
   * `MigrationTarget.dns`. Give this, or the Lambda alias shorthand `function`/`aliasName`/`version`.
   * @default - the Lambda alias given by `function`, `aliasName` and `version`
   */
  readonly target?: IMigrationTarget;
  /**
   * Shorthand for `target: MigrationTarget.lambdaAlias(...)`: the function whose alias is migrated.
   * @default - none: `target` is used
   */
  readonly function?: lambda.IFunction;
  /**
   * Shorthand for `MigrationTarget.lambdaAlias`: name of the alias clients call (API Gateway
   * integrates with `function:<name>:<aliasName>`). The construct creates it on the first deploy if
   * it does not exist; it must not be an `AWS::Lambda::Alias` resource of any stack, or
   * CloudFormation would reset the controller's weights.
   * @default - none: `target` is used
   */
  readonly aliasName?: string;
  /**
   * Shorthand for `MigrationTarget.lambdaAlias`: the version to migrate to, usually
   * `fn.currentVersion`. Publishing a new version and deploying starts a migration from whatever
   * version the alias points at.
   * `lambda.Version` is named beside `IVersion` so that a strict app (`exactOptionalPropertyTypes`)
   * needs no cast: there aws-cdk-lib's own class does not satisfy its interface.
   * @default - none: `target` is used
   */
  readonly version?: lambda.IVersion | lambda.Version;
  /**
   * How traffic moves.
   * @default TrafficShiftPlan.CANARY_10PERCENT_5MINUTES
   */
  readonly plan?: TrafficShiftPlan;
  /**
   * How strictly new is compared with old.
   * @default HealthCheck.DEFAULT
   */
  readonly healthCheck?: HealthCheck;
  /**
   * CloudWatch alarms that roll the migration back as soon as one enters ALARM (at most 10, like
   * CodeDeploy). More can be added with `addAlarm()`.
   * @default - no alarms
   */
  readonly alarms?: cloudwatch.IAlarm[];
  /**
   * Per-version endpoints for the Keep-Alive desync probe, which runs every minute against both
   * (with the same settings and sequence; the controller's fresh probes of the new side probe the
   * old side with them, so both are probed equally often).
   * @default - no probe function is created; the judge relies on metrics and alarms only
   */
  readonly probeTargets?: ProbeTargets;
  /**
   * Path of a cheap endpoint that answers 2XX, appended to each probe target.
   * @default '/'
   */
  readonly probePath?: string;
  /**
   * Probe runs per target and minute (more runs reach more execution environments).
   * @default 1
   */
  readonly probeRuns?: number;
  /**
   * Timeout of the probe function (every run of every target must fit). The probe is shared by
   * the stack's migrations: its timeout is the largest of theirs.
   * @default Duration.minutes(1)
   */
  readonly probeTimeout?: Duration;
  /**
   * What the old side keeps until an explicit teardown: `OldCapacity.provisionedConcurrency(n)`
   * (Lambda alias), `OldCapacity.autoScalingGroup(asg)` or `OldCapacity.ecsService(service)`
   * (fleets), or `OldCapacity.none()`. A number n is `OldCapacity.provisionedConcurrency(n)`, and `0`
   * leaves capacity alone. Provisioned concurrency costs money while pinned and needs unreserved
   * account concurrency for two full pools.
   * @default - nothing pinned
   */
  readonly oldCapacity?: number | IOldCapacity;
  /**
   * When the old version's pin is released. Overrides the plan's own policy.
   * @default - the plan's policy (TeardownPolicy.MANUAL for every preset)
   */
  readonly teardown?: TeardownPolicy;
  /**
   * Makes `cdk deploy` wait for the verdict of the migration it starts, as CodeDeploy's alias
   * update policy does: the deploy returns once the migration is complete and fails (so
   * CloudFormation rolls the stack back) when it rolls back. Whole minutes from 5 to 60 (the
   * custom-resource provider's limit), at least the plan's minimum duration; a migration still
   * running or paused at the end fails the deploy. See docs/wait-for-completion.md.
   * @default - no wait: the deploy returns once the migration is recorded
   */
  readonly waitForCompletion?: Duration;
  /**
   * CloudWatch namespace where the application publishes per-version request metrics
   * (`Requests`, `Errors4xx`, `Errors5xx`, `LatencyMs`; dimensions `FunctionName`, `Version`).
   * Lambda's own `Errors` count only function failures, not 4XX/5XX answers. Requests of the
   * Keep-Alive probe carry `X-Cutover-Probe: 1` (`PROBE_MARKER_HEADER`): answer them, but leave
   * them out of these counts (see `AppMetric`).
   * @default 'Cutover/App'
   */
  readonly appMetricsNamespace?: string;
  /**
   * The stack's shared controller (table, topic, functions, schedules), which serves this
   * migration with the others of the stack. The four props below are its own: a migration may
   * name them only with the controller's values (a synth error otherwise, naming both).
   * @default CutoverController.of(this): the stack's, created by its first migration with that
   * migration's encryptionKey, eventBus, removalPolicy and logRetention
   */
  readonly controller?: CutoverController;
  /**
   * Retention of the shared controller's, probe's and deploy trigger's logs (the decision log
   * included). Shared: must be the controller's (see `controller`).
   * @default - the controller's (logs.RetentionDays.ONE_MONTH unless it was created with another)
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Bus for Cutover's own events (`cutover`, `cutover.probe`). Alarm state changes are always read
   * from the default bus, where CloudWatch puts them. Shared: must be the controller's.
   * @default - the controller's (the account's default event bus unless it was created with another)
   */
  readonly eventBus?: events.IEventBus;
  /**
   * Customer managed key for the state table and the topic. Shared: must be the controller's.
   * @default - the controller's (AWS managed keys unless it was created with one)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the state table (every migration's history) and the log groups when the stack
   * is deleted. Shared: must be the controller's.
   * @default - the controller's (RemovalPolicy.RETAIN unless it was created with another)
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Whether to create the migration's CloudWatch dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
  /**
   * Name of the dashboard.
   * @default - a name generated by CloudFormation
   */
  readonly dashboardName?: string;
}

/** Like CodeDeploy, at most 10 alarms per migration (`CanaryMigration.MAX_ALARMS`). */
export const MAX_ALARMS = 10;
/** Lambda's limit for all environment variables of a function together is 4 KB. */
const MAX_PLAN_JSON_CHARS = 2_500;
const NAMESPACE = /^[0-9A-Za-z.\-_/#:]{1,255}$/;
const DASHBOARD_NAME = /^[A-Za-z0-9_-]{1,255}$/;

/**
 * The plan as the functions' `CUTOVER_PLAN` variable, or `CutoverValidationError` when it would not
 * fit in a Lambda environment (4 KB for all variables together).
 */
export function checkedPlanJson(scope: Construct, plan: TrafficShiftPlan): string {
  const planJson = JSON.stringify(plan.spec);
  if (planJson.length > MAX_PLAN_JSON_CHARS) {
    throw new CutoverValidationError(
      `plan is too large for a Lambda environment variable (4 KB for all variables): ${planJson.length} characters of JSON for ${plan.spec.steps.length} steps, at most ${MAX_PLAN_JSON_CHARS}; use fewer steps`,
      scope,
    );
  }
  return planJson;
}

/** Probe settings given to a migration that has no probe (neither `probeTargets` nor a target's `probe`). */
export function checkProbeSettingsUsed(scope: Construct, props: CanaryMigrationProps, hasProbe: boolean): void {
  if (hasProbe) return;
  for (const key of ['probePath', 'probeRuns', 'probeTimeout'] as const) {
    if (props[key] !== undefined) {
      throw new CutoverValidationError(`${key} has no effect without a probe (probeTargets, or the target's probe), got ${show(props[key]?.toString())}`, scope);
    }
  }
}

/** Checks every prop that can be checked at synth; unresolved tokens are skipped. */
export function validateProps(scope: Construct, props: CanaryMigrationProps): void {
  const fail = (message: string): never => {
    throw new CutoverValidationError(message, scope);
  };
  if (!props || typeof props !== 'object') fail(`props are required, got ${show(props)}`);
  const shorthand = (['function', 'aliasName', 'version'] as const).filter((key) => props[key] !== undefined);
  if (props.target !== undefined) {
    if (typeof props.target !== 'object' || typeof props.target.bind !== 'function') {
      fail(`target must be a MigrationTarget (MigrationTarget.lambdaAlias, .loadBalancer or .dns), got ${show(props.target)}`);
    }
    if (shorthand.length > 0) fail(`give target or the Lambda alias shorthand (function, aliasName, version), not both; got target and ${shorthand.join(', ')}`);
  } else {
    validateLambdaAliasTarget(scope, props);
  }
  if (props.plan !== undefined && !(props.plan instanceof TrafficShiftPlan)) {
    fail(`plan must be a TrafficShiftPlan (a preset or TrafficShiftPlan.canary/linear/steps/fromSpec), got ${show(props.plan)}`);
  }
  if (props.healthCheck !== undefined && !(props.healthCheck instanceof HealthCheck)) {
    fail(`healthCheck must be a HealthCheck (HealthCheck.DEFAULT, HealthCheck.STRICT or HealthCheck.custom), got ${show(props.healthCheck)}`);
  }
  if (props.alarms !== undefined && !Array.isArray(props.alarms)) fail(`alarms must be an array, got ${show(props.alarms)}`);
  if ((props.alarms?.length ?? 0) > MAX_ALARMS) {
    fail(`a migration watches at most ${MAX_ALARMS} alarms (like CodeDeploy), got ${props.alarms!.length}; combine alarms with a CompositeAlarm`);
  }

  const oldCapacity = props.oldCapacity;
  if (typeof oldCapacity === 'number' && !Token.isUnresolved(oldCapacity) && !(Number.isInteger(oldCapacity) && oldCapacity >= 0)) {
    fail(`oldCapacity must be a whole number of provisioned concurrent executions, 0 or more, got ${show(oldCapacity)}`);
  }
  if (typeof oldCapacity === 'number' && Token.isUnresolved(oldCapacity)) {
    fail('oldCapacity must be known at synth (the controller also grants itself capacity permissions from it), got a token');
  }
  if (oldCapacity !== undefined && typeof oldCapacity !== 'number' && (typeof oldCapacity !== 'object' || typeof oldCapacity.bind !== 'function')) {
    fail(`oldCapacity must be a number or an OldCapacity (OldCapacity.provisionedConcurrency, .autoScalingGroup, .ecsService or .none), got ${show(oldCapacity)}`);
  }
  if (props.probeTargets && props.target && props.target.kind !== 'lambda-alias') {
    fail(`probeTargets are for Lambda alias migrations; a ${props.target.kind} target takes its probe in its own props (probe: { url })`);
  }
  if (props.probeTargets) {
    const { newUrl, oldUrl } = props.probeTargets;
    for (const [what, url] of [['probeTargets.newUrl', newUrl], ['probeTargets.oldUrl', oldUrl]] as const) {
      if (what === 'probeTargets.oldUrl' && url === undefined) continue;
      if (typeof url !== 'string' || (!Token.isUnresolved(url) && !/^https?:\/\/[^\s/?#]+[^\s]*$/.test(url))) {
        fail(`${what} must be an http(s) URL, got ${show(url)}`);
      }
    }
    if (oldUrl !== undefined && !Token.isUnresolved(newUrl) && !Token.isUnresolved(oldUrl) && oldUrl === newUrl) {
      fail(`probeTargets.newUrl and probeTargets.oldUrl must reach different versions, both are ${show(newUrl)}`);
    }
  }
  const probePath = props.probePath;
  if (probePath !== undefined && !Token.isUnresolved(probePath) && !/^\/[^\s]{0,1023}$/.test(probePath)) {
    fail(`probePath must start with '/' and contain no spaces, got ${show(probePath)}`);
  }
  const probeRuns = props.probeRuns;
  if (probeRuns !== undefined && !(Number.isInteger(probeRuns) && probeRuns >= 1 && probeRuns <= 10)) {
    fail(`probeRuns must be a whole number from 1 to 10, got ${show(probeRuns)}`);
  }
  const probeTimeout = props.probeTimeout;
  if (probeTimeout !== undefined && !probeTimeout.isUnresolved()) {
    const seconds = probeTimeout.toSeconds();
    if (seconds < 10 || seconds > 900) fail(`probeTimeout must be between 10 seconds and 15 minutes, got ${probeTimeout.toHumanString()}`);
  }

  const namespace = props.appMetricsNamespace;
  if (namespace !== undefined && !Token.isUnresolved(namespace) && (!NAMESPACE.test(namespace) || namespace.startsWith('AWS/'))) {
    fail(`appMetricsNamespace must be 1–255 of [0-9A-Za-z.-_/#:] and must not start with 'AWS/', got ${show(namespace)}`);
  }
  const dashboardName = props.dashboardName;
  if (dashboardName !== undefined && !Token.isUnresolved(dashboardName) && !DASHBOARD_NAME.test(dashboardName)) {
    fail(`dashboardName must be 1–255 of [A-Za-z0-9_-], got ${show(dashboardName)}`);
  }
  if (dashboardName !== undefined && props.dashboard === false) {
    fail(`dashboardName ${show(dashboardName)} has no effect with dashboard: false`);
  }
  if (props.teardown !== undefined && props.teardown !== TeardownPolicy.MANUAL && props.teardown !== TeardownPolicy.AFTER_SOAK) {
    fail(`teardown must be TeardownPolicy.MANUAL or TeardownPolicy.AFTER_SOAK, got ${show(props.teardown)}`);
  }
}
