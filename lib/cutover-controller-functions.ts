/**
 * The Lambda functions a `CutoverController` shares among the migrations of a stack: one controller
 * per target family, the Keep-Alive probe and the deploy trigger (with its custom resource
 * Provider), each with its own log group and role, their shared environment, the IAM statements
 * they need whatever the migrations, and the cdk-nag findings that are part of that design.
 *
 * What differs per migration is not here: its settings travel in its custom resource's `Settings`
 * (canary-migration-settings.ts) and its grants are added to these roles by its target and pin
 * bindings (`SharedRole` keeps their union valid). Separate from the construct
 * (cutover-controller.ts), which decides when each part is created: this file is where the shared
 * permissions are decided, and read when reviewing them.
 */
import { Duration, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { DEPLOYED_MIN_READ_MINUTES } from '../lambda/aws/health-reads';
import { scheduleRuleArn, type ControllerFamily } from './canary-migration-events';
import { cutoverFunction, type CutoverHandlerName } from './function-defaults';
import { nagResourceFinding } from './nag';
import { SharedRole } from './shared-role';

/** Lambda's retries of a failed asynchronous controller invocation (see where it is set). */
const CONTROLLER_ASYNC_RETRY_ATTEMPTS = 2;
const CONTROLLER_MAX_EVENT_AGE = Duration.hours(1);

/** The handler entry of each family's controller: the one bundled with that family's adapters only. */
const CONTROLLER_ENTRY: Record<ControllerFamily, CutoverHandlerName> = {
  'lambda-alias': 'controller-lambda-alias',
  fleet: 'controller-fleet',
};

/** What every shared function is built from: the stack's shared resources and settings. */
export interface SharedSettings {
  readonly table: dynamodb.ITable;
  readonly topic: sns.ITopic;
  readonly eventBus: events.IEventBus;
  readonly encryptionKey?: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
}

/** A function with its role and log group. */
export interface FunctionParts {
  readonly fn: lambda.Function;
  readonly role: SharedRole;
  readonly logGroup: logs.LogGroup;
}

function makeLogGroup(scope: Construct, id: string, s: SharedSettings): logs.LogGroup {
  return new logs.LogGroup(scope, id, { retention: s.logRetention, removalPolicy: s.removalPolicy });
}

// Explicit roles without the AWSLambdaBasicExecutionRole managed policy: each function may write
// only to its own log group, and gets nothing else unless granted (here, or by a migration's
// target and pin bindings).
function makeRole(scope: Construct, id: string, logGroup: logs.ILogGroup, description: string): SharedRole {
  const role = new SharedRole(scope, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description });
  logGroup.grantWrite(role);
  return role;
}

/** Publishing to the topic, with or without a customer managed key. */
function grantPublish(role: iam.Role, s: SharedSettings): void {
  if (s.encryptionKey) {
    s.topic.grantPublish(role); // sns:Publish plus the key grant
    return;
  }
  // The AWS managed key's own policy lets principals of the account use it through SNS, so
  // publishing needs no KMS permission (topic.grantPublish would add one on `key/*`).
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'PublishNotifications', actions: ['sns:Publish'], resources: [s.topic.topicArn] }));
}

/**
 * One family's controller (in `scope`, its own construct): shifts the weights, pins old capacity,
 * reads health and reports, for every registered migration of the family.
 */
export function createController(scope: Construct, family: ControllerFamily, s: SharedSettings, scheduleName: string): FunctionParts {
  const logGroup = makeLogGroup(scope, 'Logs', s);
  const role = makeRole(scope, 'Role', logGroup, `Cutover ${family} controller: shifts the weights, pins old capacity, reads health, for every ${family} migration of the stack`);
  // The controller built with only its target family's adapters (a Lambda alias, or a fleet's
  // load balancer / DNS with their pins): a smaller bundle, faster cold start. It serves only the
  // registered migrations of its family (CUTOVER_CONTROLLER_FAMILY).
  const fn = cutoverFunction(scope, 'Function', CONTROLLER_ENTRY[family], {
    role,
    logGroup,
    // One tick per minute for up to MAX_MIGRATIONS_PER_TICK migrations (it starts no new one in
    // its last ~20 s); overlapping ticks are safe (optimistic locking on state and routing revision).
    timeout: Duration.minutes(1),
    description: `Cutover ${family} controller for the migrations of ${scope.node.path}`,
    environment: {
      CUTOVER_TABLE_NAME: s.table.tableName,
      CUTOVER_TOPIC_ARN: s.topic.topicArn,
      CUTOVER_EVENT_BUS_NAME: s.eventBus.eventBusName,
      CUTOVER_CONTROLLER_FAMILY: family,
      // GetMetricData is billed per metric requested: the health is read three whole minutes at a
      // time. Alarms, probes and the pin are still checked on every tick.
      CUTOVER_HEALTH_READ_MINUTES: String(DEPLOYED_MIN_READ_MINUTES),
      // The schedule it switches off when none of its migrations needs ticks any more (and on
      // again when a deploy marked one live meanwhile). The probe's schedule and function are
      // added with the probe (`connectProbe`).
      CUTOVER_CONTROLLER_SCHEDULE: scheduleName,
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
  fn.configureAsyncInvoke({ retryAttempts: CONTROLLER_ASYNC_RETRY_ATTEMPTS, maxEventAge: CONTROLLER_MAX_EVENT_AGE });

  // GetMetricData has no resource-level permissions in IAM: `*` is the only possible resource.
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadHealthMetrics', actions: ['cloudwatch:GetMetricData'], resources: ['*'] }));
  s.table.grantReadWriteData(role);
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'SwitchControllerSchedule', actions: ['events:EnableRule', 'events:DisableRule'], resources: [scheduleRuleArn(scope, scheduleName)] }),
  );
  grantPublish(role, s);
  s.eventBus.grantPutEventsTo(role);
  acknowledgeRuntime(fn);
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      "cloudwatch:GetMetricData has no resource-level permissions in IAM; `*` is the only resource it accepts. Every other action of this role's own policy is scoped (DescribeAlarms on `*` has a policy of its own, ReadWatchedAlarms, acknowledged there).",
  });
  acknowledgeKeyGrant(role, s);
  return { fn, role, logGroup };
}

/**
 * The Keep-Alive probe (in `scope`, its own construct): probes every live migration with probe
 * targets (their targets are in the registry), records results and emits events. Its schedule is
 * event wiring (`scheduleProbe`); its timeout is set by the construct (the largest of its
 * migrations').
 */
export function createProbe(scope: Construct, s: SharedSettings): FunctionParts {
  const logGroup = makeLogGroup(scope, 'Logs', s);
  const role = makeRole(scope, 'Role', logGroup, 'Cutover Keep-Alive probe: records results, emits events, for every migration of the stack with probe targets');
  const fn = cutoverFunction(scope, 'Function', 'probe', {
    role,
    logGroup,
    timeout: Duration.minutes(1),
    description: `Cutover Keep-Alive probe for the migrations of ${scope.node.path}`,
    environment: {
      CUTOVER_TABLE_NAME: s.table.tableName,
      CUTOVER_EVENT_BUS_NAME: s.eventBus.eventBusName,
      POWERTOOLS_SERVICE_NAME: 'cutover-probe',
      POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
    },
  });
  // No retry by Lambda after a function error (its default is 2, one and two minutes later):
  // a retried probe measures a moment that the next scheduled run measures anyway, and runs
  // would pile up. An event that waited a minute (throttling) is dropped for the same reason.
  fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
  // Reads the registry and the current-migration pointers, writes results (with a TTL).
  s.table.grantReadWriteData(role);
  s.eventBus.grantPutEventsTo(role);
  acknowledgeRuntime(fn);
  acknowledgeKeyGrant(role, s);
  return { fn, role, logGroup };
}

/**
 * Lets a controller use the probe: its schedule (switched off with the last live migration, on the
 * controller's side) and its fresh probes (at the gate, before every increase), run by the probe
 * function invoked synchronously: the controller names a side and a migration, never a URL. Only
 * the unqualified function (no version or alias wildcard) may be invoked.
 */
export function connectProbe(controller: FunctionParts, probe: lambda.IFunction, probeScheduleName: string): void {
  controller.fn.addEnvironment('CUTOVER_PROBE_SCHEDULE', probeScheduleName);
  controller.fn.addEnvironment('CUTOVER_PROBE_FUNCTION_NAME', probe.functionName);
  controller.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'RunFreshProbes', actions: ['lambda:InvokeFunction'], resources: [probe.functionArn] }));
  controller.role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'SwitchProbeSchedule',
      actions: ['events:EnableRule', 'events:DisableRule'],
      resources: [scheduleRuleArn(controller.fn, probeScheduleName)],
    }),
  );
}

/** The deploy trigger's handler, its Provider and the Provider's role. */
export interface DeployTriggerParts extends FunctionParts {
  readonly provider: cr.Provider;
  readonly providerRole: iam.Role;
}

/**
 * The deploy trigger (in `scope`, the controller construct): the handler of every migration's
 * custom resource, which registers its settings, creates the alias or records once, records new
 * migrations, marks them live, enables their schedules and starts their controller.
 */
export function createDeployTrigger(scope: Construct, s: SharedSettings, controllers: string): DeployTriggerParts {
  const logGroup = makeLogGroup(scope, 'DeployTriggerLogs', s);
  const role = makeRole(scope, 'DeployTriggerRole', logGroup, 'Cutover deploy trigger: registers migrations, creates the alias or records once, records new migrations');
  const fn = cutoverFunction(scope, 'DeployTriggerHandler', 'deploy-trigger', {
    role,
    logGroup,
    // It may wait for a synchronous command to the controller (abort on a stack rollback, teardown
    // of a completed migration; the handler's command client allows two attempts of 20 s, and a
    // command that lost a race is sent again) besides its own calls, the schedules' EnableRule
    // with its retries among them: two minutes keep a slow EventBridge from failing a good deploy.
    timeout: Duration.minutes(2),
    description: `Cutover deploy trigger for the migrations of ${scope.node.path}`,
    environment: {
      CUTOVER_TABLE_NAME: s.table.tableName,
      // Each family's controller and schedule, as JSON (`{"lambda-alias":{"functionName","schedule"}}`),
      // written once the app is complete: a later migration may bring the other family.
      // CUTOVER_PROBE_SCHEDULE is added with the probe.
      CUTOVER_CONTROLLERS: controllers,
    },
  });
  s.table.grantReadWriteData(role);
  acknowledgeRuntime(fn);
  acknowledgeKeyGrant(role, s);

  const providerLogGroup = makeLogGroup(scope, 'DeployTriggerProviderLogs', s);
  const providerRole = new iam.Role(scope, 'DeployTriggerProviderRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Cutover deploy trigger: CloudFormation custom resource framework',
  });
  providerLogGroup.grantWrite(providerRole);
  const provider = new cr.Provider(scope, 'DeployTriggerProvider', { onEventHandler: fn, logGroup: providerLogGroup, frameworkOnEventRole: providerRole });
  Validations.of(providerRole).acknowledge({
    id: `AwsSolutions-IAM5[${nagResourceFinding(scope, `${fn.functionArn}:*`)}]`,
    reason: "The custom resource Provider framework grants itself invoke on the deploy trigger's qualifiers (aws-cdk's grantInvoke); it is the trigger function only.",
  });
  return { fn, role, logGroup, provider, providerRole };
}

/**
 * Lets the deploy trigger start a family's controller and enable its schedule (never disable it:
 * the controller does). The unqualified ARN only (grantInvoke would add `:*`): it invokes `$LATEST`.
 */
export function connectController(trigger: FunctionParts, family: ControllerFamily, controller: lambda.IFunction, scheduleName: string): void {
  const name = family === 'lambda-alias' ? 'LambdaAlias' : 'Fleet';
  trigger.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: `Start${name}Controller`, actions: ['lambda:InvokeFunction'], resources: [controller.functionArn] }));
  trigger.role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: `Enable${name}Schedule`, actions: ['events:EnableRule'], resources: [scheduleRuleArn(controller, scheduleName)] }),
  );
}

/** Lets the deploy trigger enable the probe's schedule once it marked a migration with probe targets live. */
export function connectTriggerToProbe(trigger: FunctionParts, probeScheduleName: string): void {
  trigger.fn.addEnvironment('CUTOVER_PROBE_SCHEDULE', probeScheduleName);
  trigger.role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'EnableProbeSchedule', actions: ['events:EnableRule'], resources: [scheduleRuleArn(trigger.fn, probeScheduleName)] }),
  );
}

function acknowledgeRuntime(fn: lambda.IFunction): void {
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'The handler contract pins Node.js 22 (Runtime.NODEJS_22_X): the handlers, Powertools and the SDK client versions are tested on that line. Moving to a newer runtime is a deliberate upgrade, not a lint fix.',
  });
}

function acknowledgeKeyGrant(role: iam.IRole, s: SharedSettings): void {
  if (!s.encryptionKey) return;
  for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Action::${action}]`,
      reason: `${action} is part of the key grant aws-cdk adds for reading and writing a table (and publishing to a topic) encrypted with a customer managed key; the resource is that one key.`,
    });
  }
}
