/**
 * The Lambda functions of a `CanaryMigration` and what each may do: the controller, the Keep-Alive
 * probe and the deploy trigger (with its custom resource), each with its own log group and role,
 * their environment, the IAM statements they are granted, and the cdk-nag findings that are part
 * of that design. Separate from the construct (canary-migration.ts), which composes these with the
 * table, topic, event wiring (canary-migration-events.ts) and dashboard: this file is where the
 * migration's permissions are decided, and read when reviewing them.
 *
 * The functions are created in the order the construct calls them (controller, probe, deploy
 * trigger, then the acknowledgements), which is the order of their resources in the template.
 */
import { CustomResource, Duration, Lazy, Stack, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import type { CanaryMigrationProps } from './canary-migration-props';
import { DEPLOYED_APP_REQUESTS_EVERY_MINUTES, DEPLOYED_MIN_READ_MINUTES } from '../lambda/aws/health-reads';
import { cutoverFunction, type CutoverHandlerName } from './function-defaults';
import { ProbeSide } from './metrics';
import { nagResourceFinding } from './nag';
import type { MigrationTargetBinding, OldCapacityBinding, ProbeTargetSpec } from './targets/binding';
import { scheduleRuleArn, type ScheduleNames } from './canary-migration-events';

/** Lambda's retries of a failed asynchronous controller invocation (see where it is set). */
const CONTROLLER_ASYNC_RETRY_ATTEMPTS = 2;
const CONTROLLER_MAX_EVENT_AGE = Duration.hours(1);

/** What the functions are built from: the migration's settings and the resources they use. */
export interface MigrationFunctionSettings {
  /** The migration: every resource is created as its child. */
  readonly scope: Construct;
  readonly props: CanaryMigrationProps;
  readonly table: dynamodb.ITable;
  readonly topic: sns.ITopic;
  readonly eventBus: events.IEventBus;
  /** What moves traffic, bound to the migration. */
  readonly target: MigrationTargetBinding;
  /** What the old side keeps, bound to the migration. */
  readonly capacity: OldCapacityBinding;
  readonly migrationKey: string;
  readonly appMetricsNamespace: string;
  /** The plan and the judge's overrides, as JSON for the environment. */
  readonly planJson: string;
  readonly judgeJson: string;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /** The probe's targets, path and runs, shared by the controller and the probe (see `probeEnvironmentOf`). */
  readonly probeEnvironment: Record<string, string>;
  /** The watched alarms, read when the template is written (`addAlarm` may be called after the constructor). */
  readonly watchedAlarms: () => readonly cloudwatch.IAlarm[];
  /** The schedules' rule names (created disabled; switched at run time, see canary-migration-events.ts). */
  readonly schedules: ScheduleNames;
}

/** The schedules' names for a function's environment. */
function scheduleEnvironment(s: MigrationFunctionSettings): Record<string, string> {
  return {
    CUTOVER_CONTROLLER_SCHEDULE: s.schedules.controller,
    ...(s.schedules.probe ? { CUTOVER_PROBE_SCHEDULE: s.schedules.probe } : {}),
  };
}

/** The schedules' rule ARNs, built from their names: exactly these rules, no wildcard. */
function scheduleArns(s: MigrationFunctionSettings): string[] {
  return [s.schedules.controller, ...(s.schedules.probe ? [s.schedules.probe] : [])].map((name) => scheduleRuleArn(s.scope, name));
}

/** The controller, with its role and log group. */
export interface ControllerParts {
  readonly controller: lambda.Function;
  readonly controllerRole: iam.Role;
  readonly controllerLogGroup: logs.LogGroup;
}

/** The deploy trigger's handler, its custom resource and the roles of both. */
export interface DeployTriggerParts {
  readonly trigger: lambda.Function;
  readonly triggerRole: iam.Role;
  readonly providerRole: iam.Role;
  readonly deployTrigger: CustomResource;
}

function makeLogGroup(s: MigrationFunctionSettings, logicalId: string): logs.LogGroup {
  return new logs.LogGroup(s.scope, logicalId, { retention: s.logRetention, removalPolicy: s.removalPolicy });
}

// Explicit roles without the AWSLambdaBasicExecutionRole managed policy: each function may write
// only to its own log group, and gets nothing else unless granted below.
function makeRole(s: MigrationFunctionSettings, logicalId: string, logGroup: logs.ILogGroup, description: string): iam.Role {
  const role = new iam.Role(s.scope, logicalId, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description,
  });
  logGroup.grantWrite(role);
  return role;
}

function makeFunction(s: MigrationFunctionSettings, logicalId: string, handler: CutoverHandlerName, options: {
  role: iam.IRole;
  logGroup: logs.ILogGroup;
  timeout: Duration;
  description: string;
  environment: Record<string, string>;
}): lambda.Function {
  // Bundled from source in a checkout, the package's prebuilt bundle once installed (function-defaults.ts).
  return cutoverFunction(s.scope, logicalId, handler, options);
}

/**
 * The probe's settings for the controller's and the probe's environment (empty without targets):
 * the target's own probe endpoints (fleets), or the `probeTargets` prop (Lambda alias).
 */
export function probeEnvironmentOf(scope: Construct, props: CanaryMigrationProps, target: MigrationTargetBinding): Record<string, string> {
  const stack = Stack.of(scope);
  const probeEnvironment: Record<string, string> = {};
  let probeTargets: ProbeTargetSpec[] | undefined = target.probeTargets ? [...target.probeTargets] : undefined;
  if (!probeTargets && props.probeTargets) {
    probeTargets = [{ side: ProbeSide.NEW, url: props.probeTargets.newUrl }];
    if (props.probeTargets.oldUrl !== undefined) probeTargets.push({ side: ProbeSide.OLD, url: props.probeTargets.oldUrl });
  }
  if (probeTargets) {
    probeEnvironment.CUTOVER_PROBE_TARGETS = stack.toJsonString(probeTargets);
    probeEnvironment.CUTOVER_PROBE_PATH = props.probePath ?? '/';
    probeEnvironment.CUTOVER_PROBE_RUNS = String(props.probeRuns ?? 1);
  }
  return probeEnvironment;
}

/** `CUTOVER_PINNED_CAPACITY`: units, 0 for none, `auto` for the old fleet's size at the start. */
function pinnedCapacityVariable(s: MigrationFunctionSettings): string {
  return s.capacity.units === undefined ? 'auto' : String(s.capacity.units);
}

/** The controller: shifts the alias weight, pins old capacity, reads health, reports. */
export function createController(s: MigrationFunctionSettings): ControllerParts {
  const { scope, table, topic, eventBus, probeEnvironment } = s;
  const stack = Stack.of(scope);
  const controllerLogGroup = makeLogGroup(s, 'ControllerLogs');
  const controllerRole = makeRole(s, 'ControllerRole', controllerLogGroup, 'Cutover controller: shifts the alias weight, pins old capacity, reads health');
  // The controller built with only its target family's adapters (a Lambda alias, or a fleet's
  // load balancer / DNS with their pins): a smaller bundle, faster cold start. A bundle refuses a
  // target of the other family at load, naming the fix.
  const controller = makeFunction(s, 'Controller', s.target.kind === 'lambda-alias' ? 'controller-lambda-alias' : 'controller-fleet', {
    role: controllerRole,
    logGroup: controllerLogGroup,
    // One tick per minute; overlapping ticks are safe (optimistic locking on state and alias revision).
    timeout: Duration.minutes(1),
    description: `Cutover controller for ${scope.node.path}`,
    environment: {
      CUTOVER_TABLE_NAME: table.tableName,
      ...s.target.environment,
      ...s.capacity.environment,
      CUTOVER_PLAN: s.planJson,
      CUTOVER_JUDGE: s.judgeJson,
      CUTOVER_ALARM_NAMES: Lazy.string({
        produce: () => stack.toJsonString(s.watchedAlarms().map((alarm) => alarm.alarmName)),
      }),
      CUTOVER_PINNED_CAPACITY: pinnedCapacityVariable(s),
      CUTOVER_TOPIC_ARN: topic.topicArn,
      CUTOVER_EVENT_BUS_NAME: eventBus.eventBusName,
      CUTOVER_APP_METRICS_NAMESPACE: s.appMetricsNamespace,
      // GetMetricData is billed per metric requested: the health is read three whole minutes at a
      // time, and (an alias's) application Requests, a cross-check and not the judged count, one
      // window in ten minutes. Alarms, probes and the pin are still checked on every tick.
      CUTOVER_HEALTH_READ_MINUTES: String(DEPLOYED_MIN_READ_MINUTES),
      ...(s.target.kind === 'lambda-alias' ? { CUTOVER_APP_REQUESTS_EVERY_MINUTES: String(DEPLOYED_APP_REQUESTS_EVERY_MINUTES) } : {}),
      // With targets, the controller asks the probe function for a fresh probe at each gate
      // (before the first shift and before every increase) instead of relying only on the
      // probe's last minute (CUTOVER_PROBE_FUNCTION_NAME is added with the probe function).
      ...probeEnvironment,
      // The schedules it switches off when its migration needs no more ticks (and on again when a
      // deploy recorded a new one meanwhile).
      ...scheduleEnvironment(s),
      POWERTOOLS_SERVICE_NAME: 'cutover-controller',
      POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
    },
  });
  // Lambda's own retries of asynchronous invocations (every EventBridge target and the deploy
  // trigger's wake-up are asynchronous; operator and deploy-trigger commands are synchronous and
  // never retried by Lambda). The rules' `retryAttempts` only cover EventBridge's delivery to
  // Lambda; once Lambda has accepted an event, a function error is retried by this setting.
  // Kept at 2 on purpose: a tick is idempotent, so repeating one is harmless, and an alarm state
  // change whose recording failed fails its invocation so that this retry records it (the
  // runtime's `recordError`). Bounded at 1 hour, like the alarm rule's own delivery: by then a
  // confirmation (before every step forward, and every `alarmRecheck`) has read the alarms anyway,
  // and a tick queued that long (throttling) is superseded by the schedule's.
  controller.configureAsyncInvoke({ retryAttempts: CONTROLLER_ASYNC_RETRY_ATTEMPTS, maxEventAge: CONTROLLER_MAX_EVENT_AGE });

  // The target's routing (alias weights, listener or rule, weighted records) and the old side's
  // pin, each scoped by its binding (lib/targets/, lib/capacity/).
  s.target.grantController(controllerRole);
  s.capacity.grantController(controllerRole);
  // GetMetricData has no resource-level permissions in IAM: `*` is the only possible resource.
  controllerRole.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ReadHealthMetrics',
    actions: ['cloudwatch:GetMetricData'],
    resources: ['*'],
  }));
  table.grantReadWriteData(controllerRole);
  controllerRole.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'SwitchSchedules',
    actions: ['events:EnableRule', 'events:DisableRule'],
    resources: scheduleArns(s),
  }));
  if (s.props.encryptionKey) {
    topic.grantPublish(controllerRole); // sns:Publish plus the key grant
  } else {
    // The AWS managed key's own policy lets principals of the account use it through SNS, so
    // publishing needs no KMS permission (topic.grantPublish would add one on `key/*`).
    controllerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'PublishNotifications',
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
    }));
  }
  eventBus.grantPutEventsTo(controllerRole);
  return { controller, controllerRole, controllerLogGroup };
}

/**
 * The Keep-Alive probe (only with `probeTargets`): records results and emits events, and runs the
 * controller's fresh probes, which the controller is allowed to invoke. Its schedule is event
 * wiring (`scheduleProbe`).
 */
export function createProbe(s: MigrationFunctionSettings, { controller, controllerRole }: ControllerParts): lambda.Function {
  const { scope, props, table, eventBus, probeEnvironment } = s;
  const probeLogGroup = makeLogGroup(s, 'ProbeLogs');
  const probeRole = makeRole(s, 'ProbeRole', probeLogGroup, 'Cutover Keep-Alive probe: records results, emits events');
  const probe = makeFunction(s, 'Probe', 'probe', {
    role: probeRole,
    logGroup: probeLogGroup,
    timeout: props.probeTimeout ?? Duration.minutes(1),
    description: `Cutover Keep-Alive probe for ${scope.node.path}`,
    environment: {
      CUTOVER_TABLE_NAME: table.tableName,
      ...probeEnvironment,
      CUTOVER_EVENT_BUS_NAME: eventBus.eventBusName,
      CUTOVER_MIGRATION_KEY: s.migrationKey,
      POWERTOOLS_SERVICE_NAME: 'cutover-probe',
      POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
    },
  });
  // No retry by Lambda after a function error (its default is 2, one and two minutes later):
  // a retried probe measures a moment that the next scheduled run measures anyway, and runs
  // would pile up. An event that waited a minute (throttling) is dropped for the same reason.
  probe.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
  // Writes results (with a TTL) and reads the current-migration pointer.
  table.grantReadWriteData(probeRole);
  eventBus.grantPutEventsTo(probeRole);
  // The controller's fresh probes (at the gate, before every increase) are run by this
  // function, invoked synchronously: the controller names a side, never a URL. Only the
  // unqualified function (no version or alias wildcard) may be invoked.
  controller.addEnvironment('CUTOVER_PROBE_FUNCTION_NAME', probe.functionName);
  controllerRole.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'RunFreshProbes', actions: ['lambda:InvokeFunction'], resources: [probe.functionArn] }),
  );
  return probe;
}

/**
 * The deploy trigger: a custom resource whose `TargetVersion` change starts a migration, and its
 * handler, which creates the alias once, records new migrations and starts the controller.
 */
export function createDeployTrigger(s: MigrationFunctionSettings, { controller, controllerRole }: ControllerParts): DeployTriggerParts {
  const { scope, table } = s;
  const triggerLogGroup = makeLogGroup(s, 'DeployTriggerLogs');
  const triggerRole = makeRole(s, 'DeployTriggerRole', triggerLogGroup, 'Cutover deploy trigger: creates the alias once, records new migrations');
  const trigger = makeFunction(s, 'DeployTriggerHandler', 'deploy-trigger', {
    role: triggerRole,
    logGroup: triggerLogGroup,
    // It may wait for a synchronous command to the controller (abort on a stack rollback, teardown
    // of a completed migration; the handler's command client allows two attempts of 20 s, and a
    // command that lost a race is sent again) besides its own calls, the schedules' EnableRule
    // with its retries among them: two minutes keep a slow EventBridge from failing a good deploy.
    timeout: Duration.minutes(2),
    description: `Cutover deploy trigger for ${scope.node.path}`,
    environment: {
      CUTOVER_TABLE_NAME: table.tableName,
      CUTOVER_CONTROLLER_FUNCTION_NAME: controller.functionName,
      CUTOVER_PLAN: s.planJson,
      CUTOVER_JUDGE: s.judgeJson,
      CUTOVER_PINNED_CAPACITY: pinnedCapacityVariable(s),
      ...(s.target.kind === 'lambda-alias' ? {} : { CUTOVER_TARGET: s.target.environment.CUTOVER_TARGET! }),
      ...scheduleEnvironment(s),
    },
  });
  // Enables the schedules once it recorded a migration (never disables them: the controller does).
  triggerRole.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'EnableSchedules',
    actions: ['events:EnableRule'],
    resources: scheduleArns(s),
  }));
  s.target.grantTrigger(triggerRole);
  table.grantReadWriteData(triggerRole);
  // The unqualified ARN only (grantInvoke would add `:*`): the trigger invokes `$LATEST`.
  triggerRole.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'StartController',
    actions: ['lambda:InvokeFunction'],
    resources: [controller.functionArn],
  }));

  const providerLogGroup = makeLogGroup(s, 'DeployTriggerProviderLogs');
  const providerRole = makeRole(s, 'DeployTriggerProviderRole', providerLogGroup, 'Cutover deploy trigger: CloudFormation custom resource framework');
  const provider = new cr.Provider(scope, 'DeployTriggerProvider', {
    onEventHandler: trigger,
    logGroup: providerLogGroup,
    frameworkOnEventRole: providerRole,
  });
  const deployTrigger = new CustomResource(scope, 'DeployTrigger', {
    serviceToken: provider.serviceToken,
    resourceType: 'Custom::CutoverDeployTrigger',
    properties: { ...s.target.triggerProperties },
  });
  // The trigger invokes the controller, which must already be able to act on its first tick.
  deployTrigger.node.addDependency(controllerRole);
  return { trigger, triggerRole, providerRole, deployTrigger };
}

/** cdk-nag (AwsSolutions) findings that are part of the design, each with its reason. */
export function acknowledgeDesignFindings(
  s: MigrationFunctionSettings,
  { controller, controllerRole }: ControllerParts,
  probe: lambda.IFunction | undefined,
  { trigger, triggerRole, providerRole }: DeployTriggerParts,
): void {
  const { scope, props } = s;
  for (const fn of [controller, trigger, ...(probe ? [probe] : [])]) {
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'The handler contract pins Node.js 22 (Runtime.NODEJS_22_X): the handlers, Powertools and the SDK client versions are tested on that line. Moving to a newer runtime is a deliberate upgrade, not a lint fix.',
    });
  }
  Validations.of(controllerRole).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      "cloudwatch:GetMetricData has no resource-level permissions in IAM; `*` is the only resource it accepts. Every other action of this role's own policy is scoped (DescribeAlarms on `*` has a policy of its own, ReadWatchedAlarms, acknowledged there).",
  });
  s.target.acknowledge?.({ controller: controllerRole, trigger: triggerRole });
  s.capacity.acknowledge?.(controllerRole);
  if (props.encryptionKey) {
    const roles = [controllerRole, triggerRole, ...(probe?.role ? [probe.role] : [])];
    for (const role of roles) {
      for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Action::${action}]`,
          reason: `${action} is part of the key grant aws-cdk adds for reading and writing a table (and publishing to a topic) encrypted with a customer managed key; the resource is that one key.`,
        });
      }
    }
  }
  Validations.of(providerRole).acknowledge({
    id: `AwsSolutions-IAM5[${nagResourceFinding(scope, `${trigger.functionArn}:*`)}]`,
    reason: "The custom resource Provider framework grants itself invoke on the deploy trigger's qualifiers (aws-cdk's grantInvoke); it is the trigger function only.",
  });
}
