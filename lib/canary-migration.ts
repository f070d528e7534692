/**
 * `CanaryMigration`: moves the traffic of a Lambda alias from the version it points at to a new
 * version in weighted steps, watched by a reconciler that rolls back on its own.
 *
 * How a deploy starts a migration without CloudFormation ever fighting the controller:
 * - The alias is NOT an `AWS::Lambda::Alias` of the stack. A custom resource (the deploy trigger)
 *   receives `TargetVersion`; when the version changes, CloudFormation sends an Update, and the
 *   trigger records a new migration and invokes the controller. It creates the alias only when
 *   there is none (first deploy: nothing to migrate) and never sets the new version to 100 %.
 * - Later deploys therefore never reset the alias's weights; only the controller moves them.
 *
 * The controller runs every minute (EventBridge schedule) and at once on events: a state change
 * of one of the configured alarms (recorded, so that routine ticks need no DescribeAlarms call; an
 * alarm entering ALARM rolls back), a probe finding a desync, or an operator command (direct
 * invoke). The probe runs every minute against per-version endpoints. State and history live in
 * DynamoDB, progress goes to CloudWatch (EMF), events to EventBridge, rollbacks/pauses/promotions
 * to SNS.
 */
import { CustomResource, Duration, Lazy, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { MigrationDashboard } from './dashboard';
import { CutoverValidationError, show } from './errors';
import { HealthCheck } from './health-check';
import { nagResourceFinding } from './nag';
import {
  AppMetric,
  ControllerMetric,
  DEFAULT_APP_METRICS_NAMESPACE,
  ProbeMetric,
  ProbeSide,
  appMetric,
  cutoverMetric,
  executedVersionMetric,
  type MigrationMetricScope,
} from './metrics';
import { TeardownPolicy, TrafficShiftPlan } from './plan';
import { SOURCE_MAP_ENVIRONMENT, cutoverFunctionProps } from './function-defaults';

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
  /** The function whose alias is migrated. */
  readonly function: lambda.IFunction;
  /**
   * Name of the alias clients call (API Gateway integrates with `function:<name>:<aliasName>`).
   * The construct creates it on the first deploy if it does not exist; it must not be an
   * `AWS::Lambda::Alias` resource of any stack, or CloudFormation would reset the controller's weights.
   */
  readonly aliasName: string;
  /**
   * The version to migrate to, usually `fn.currentVersion`. Publishing a new version and deploying
   * starts a migration from whatever version the alias points at.
   */
  readonly version: lambda.IVersion;
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
   * Timeout of the probe function (every run of every target must fit).
   * @default Duration.minutes(1)
   */
  readonly probeTimeout?: Duration;
  /**
   * Provisioned concurrency pinned on the OLD version itself (not on the alias: AWS does not let
   * provisioned concurrency on an alias be managed while routing is in place) from the start of the
   * migration until teardown, so that a rollback lands on a warm old side at full scale. Costs money
   * while pinned, and needs unreserved account concurrency for two full pools. `0` leaves capacity
   * alone (on-demand concurrency).
   * @default 0
   */
  readonly oldCapacity?: number;
  /**
   * When the old version's pin is released. Overrides the plan's own policy.
   * @default - the plan's policy (TeardownPolicy.MANUAL for every preset)
   */
  readonly teardown?: TeardownPolicy;
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
   * Retention of the controller's, probe's and deploy trigger's logs (the decision log included).
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Bus for Cutover's own events (`cutover`, `cutover.probe`). Alarm state changes are always read
   * from the default bus, where CloudWatch puts them.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * Customer managed key for the state table and the topic.
   * @default - AWS managed keys (`aws/dynamodb` for the table, `alias/aws/sns` for the topic)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the state table (migration history) and the log groups when the stack is deleted.
   * @default RemovalPolicy.RETAIN
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

/** Root of the repository: the handlers are bundled from their TypeScript sources. */
/** Lambda's limit for all environment variables of a function together is 4 KB. */
const MAX_PLAN_JSON_CHARS = 2_500;
const ALIAS_NAME = /^(?!\d+$)[A-Za-z0-9_-]{1,128}$/;
const NAMESPACE = /^[0-9A-Za-z.\-_/#:]{1,255}$/;
const DASHBOARD_NAME = /^[A-Za-z0-9_-]{1,255}$/;
/** Lambda's retries of a failed asynchronous controller invocation (see where it is set). */
const CONTROLLER_ASYNC_RETRY_ATTEMPTS = 2;
const CONTROLLER_MAX_EVENT_AGE = Duration.hours(1);

/**
 * A canary migration of a Lambda alias, started by `cdk deploy` and driven by a reconciler.
 *
 * ```ts
 * const fn = new NodejsFunction(this, 'Api', { entry: 'src/api.ts' });
 * const migration = new CanaryMigration(this, 'Cutover', {
 *   function: fn,
 *   aliasName: 'live',
 *   version: fn.currentVersion,
 *   plan: TrafficShiftPlan.LINEAR_10PERCENT_EVERY_3MINUTES,
 *   alarms: [errorsAlarm],
 * });
 * migration.grantOperate(opsRole);
 * ```
 */
export class CanaryMigration extends Construct implements MigrationMetricScope {
  /** Like CodeDeploy, at most 10 alarms per migration. */
  public static readonly MAX_ALARMS = 10;

  /** Migration state and history (`pk`/`sk`, on-demand, point-in-time recovery, encrypted). */
  public readonly table: dynamodb.ITable;
  /** Rollbacks, pauses and promotions are published here; subscribe to it. */
  public readonly topic: sns.ITopic;
  /** The bus Cutover's events go to. */
  public readonly eventBus: events.IEventBus;
  /** The reconciler. Invoke it with `{"command": "pause|resume|abort|promote|teardown", "reason": "…"}`. */
  public readonly controllerFunction: lambda.IFunction;
  /** The Keep-Alive probe; undefined without `probeTargets`. */
  public readonly probeFunction?: lambda.IFunction;
  /** The custom resource handler that starts a migration on deploy. */
  public readonly deployTriggerFunction: lambda.IFunction;
  /** The custom resource whose `TargetVersion` change starts a migration (depend on it to wait for the alias). */
  public readonly deployTrigger: CustomResource;
  /** The controller's log group (holds the decision log). */
  public readonly controllerLogGroup: logs.ILogGroup;
  /** The migration's dashboard; undefined with `dashboard: false`. */
  public readonly dashboard?: cloudwatch.Dashboard;

  /** The migrated function's name. */
  public readonly functionName: string;
  /** The alias traffic is shifted on. */
  public readonly aliasName: string;
  /** The version this deployment migrates to. */
  public readonly targetVersion: string;
  /** `<function>:<alias>`: the `Migration` dimension of the metrics and the key of the current-migration pointer. */
  public readonly migrationKey: string;
  /** `<function>:<alias>:<version>`: changes with every new version, which makes the trigger an Update. */
  public readonly migrationId: string;
  /** The plan in effect (with the `teardown` override applied). */
  public readonly plan: TrafficShiftPlan;
  /** The health rules in effect. */
  public readonly healthCheck: HealthCheck;
  /** Provisioned concurrency pinned on the old version (0 = capacity not managed). */
  public readonly pinnedCapacity: number;
  /** Namespace of the application's per-version metrics. */
  public readonly appMetricsNamespace: string;

  private readonly controllerRole: iam.IRole;
  private readonly alarmList: cloudwatch.IAlarm[] = [];
  private alarmRule?: events.Rule;
  private alarmReadPolicy?: iam.Policy;

  constructor(scope: Construct, id: string, props: CanaryMigrationProps) {
    super(scope, id);
    validateProps(this, props);

    const stack = Stack.of(this);
    this.functionName = props.function.functionName;
    this.aliasName = props.aliasName;
    this.targetVersion = props.version.version;
    this.migrationKey = `${this.functionName}:${this.aliasName}`;
    this.migrationId = `${this.migrationKey}:${this.targetVersion}`;
    const plan = props.plan ?? TrafficShiftPlan.CANARY_10PERCENT_5MINUTES;
    this.plan = props.teardown === undefined ? plan : plan.withTeardown(props.teardown);
    this.healthCheck = props.healthCheck ?? HealthCheck.DEFAULT;
    this.pinnedCapacity = props.oldCapacity ?? 0;
    this.appMetricsNamespace = props.appMetricsNamespace ?? DEFAULT_APP_METRICS_NAMESPACE;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    const planJson = JSON.stringify(this.plan.spec);
    if (planJson.length > MAX_PLAN_JSON_CHARS) {
      throw new CutoverValidationError(
        `plan is too large for a Lambda environment variable (4 KB for all variables): ${planJson.length} characters of JSON for ${this.plan.spec.steps.length} steps, at most ${MAX_PLAN_JSON_CHARS}; use fewer steps`,
        this,
      );
    }
    const judgeJson = JSON.stringify(this.healthCheck.overrides);

    // --- State, notifications, events -----------------------------------------------------------
    const table = new dynamodb.Table(this, 'State', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: props.encryptionKey ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy,
    });
    this.table = table;

    const topic = new sns.Topic(this, 'Notifications', {
      displayName: 'Cutover migration notifications',
      // The AWS managed key is enough for Lambda publishers and email/SMS subscribers; a customer key
      // is only needed when other services (EventBridge, CloudWatch) must publish to the topic.
      masterKey: props.encryptionKey ?? kms.Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    this.topic = topic;

    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    // --- Functions ------------------------------------------------------------------------------
    const makeLogGroup = (logicalId: string) =>
      new logs.LogGroup(this, logicalId, { retention: logRetention, removalPolicy });
    // Explicit roles without the AWSLambdaBasicExecutionRole managed policy: each function may write
    // only to its own log group, and gets nothing else unless granted below.
    const makeRole = (logicalId: string, logGroup: logs.ILogGroup, description: string) => {
      const role = new iam.Role(this, logicalId, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description,
      });
      logGroup.grantWrite(role);
      return role;
    };
    const makeFunction = (logicalId: string, entryName: string, options: {
      role: iam.IRole;
      logGroup: logs.ILogGroup;
      timeout: Duration;
      description: string;
      environment: Record<string, string>;
    }) =>
      new nodejs.NodejsFunction(this, logicalId, {
        ...cutoverFunctionProps(`handlers/${entryName}.ts`),
        timeout: options.timeout,
        description: options.description,
        role: options.role,
        logGroup: options.logGroup,
        environment: { ...options.environment, ...SOURCE_MAP_ENVIRONMENT },
      });

    const fnArn = props.function.functionArn;
    const aliasArn = `${fnArn}:${this.aliasName}`;
    // Every qualifier (version or alias) of the migrated function, and nothing else.
    const qualifiedArns = `${fnArn}:*`;

    const probeEnvironment: Record<string, string> = {};
    if (props.probeTargets) {
      const probeTargets = [{ side: ProbeSide.NEW, url: props.probeTargets.newUrl }];
      if (props.probeTargets.oldUrl !== undefined) probeTargets.push({ side: ProbeSide.OLD, url: props.probeTargets.oldUrl });
      probeEnvironment.CUTOVER_PROBE_TARGETS = stack.toJsonString(probeTargets);
      probeEnvironment.CUTOVER_PROBE_PATH = props.probePath ?? '/';
      probeEnvironment.CUTOVER_PROBE_RUNS = String(props.probeRuns ?? 1);
    }

    // Controller.
    const controllerLogGroup = makeLogGroup('ControllerLogs');
    this.controllerLogGroup = controllerLogGroup;
    const controllerRole = makeRole('ControllerRole', controllerLogGroup, 'Cutover controller: shifts the alias weight, pins old capacity, reads health');
    this.controllerRole = controllerRole;
    const controller = makeFunction('Controller', 'controller', {
      role: controllerRole,
      logGroup: controllerLogGroup,
      // One tick per minute; overlapping ticks are safe (optimistic locking on state and alias revision).
      timeout: Duration.minutes(1),
      description: `Cutover controller for ${this.node.path}`,
      environment: {
        CUTOVER_TABLE_NAME: table.tableName,
        CUTOVER_FUNCTION_NAME: this.functionName,
        CUTOVER_ALIAS_NAME: this.aliasName,
        CUTOVER_PLAN: planJson,
        CUTOVER_JUDGE: judgeJson,
        CUTOVER_ALARM_NAMES: Lazy.string({
          produce: () => stack.toJsonString(this.alarmList.map((alarm) => alarm.alarmName)),
        }),
        CUTOVER_PINNED_CAPACITY: String(this.pinnedCapacity),
        CUTOVER_TOPIC_ARN: topic.topicArn,
        CUTOVER_EVENT_BUS_NAME: this.eventBus.eventBusName,
        CUTOVER_APP_METRICS_NAMESPACE: this.appMetricsNamespace,
        // With targets, the controller asks the probe function for a fresh probe at each gate
        // (before the first shift and before every increase) instead of relying only on the
        // probe's last minute (CUTOVER_PROBE_FUNCTION_NAME is added with the probe function).
        ...probeEnvironment,
        POWERTOOLS_SERVICE_NAME: 'cutover-controller',
        POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
      },
    });
    this.controllerFunction = controller;
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

    // Alias: read it and move its weights. The Service Authorization Reference lists the `function`
    // resource type (the unqualified ARN) for alias actions, so the function ARN is the narrowest
    // scope IAM evaluates; the alias ARN is listed too in case a request is evaluated against it.
    controllerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ShiftAliasWeights',
      actions: ['lambda:GetAlias', 'lambda:UpdateAlias'],
      resources: [fnArn, aliasArn],
    }));
    // Provisioned concurrency lives on the old VERSION, which is only known at run time (whatever
    // the alias pointed at when the deploy started): scoped to this function's qualifiers. Granted only
    // when the construct manages capacity; with `oldCapacity: 0` the controller never touches it.
    if (this.pinnedCapacity > 0) {
      controllerRole.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'PinOldCapacity',
        actions: [
          'lambda:GetProvisionedConcurrencyConfig',
          'lambda:PutProvisionedConcurrencyConfig',
          'lambda:DeleteProvisionedConcurrencyConfig',
        ],
        resources: [qualifiedArns],
      }));
    }
    // GetMetricData has no resource-level permissions in IAM: `*` is the only possible resource.
    controllerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ReadHealthMetrics',
      actions: ['cloudwatch:GetMetricData'],
      resources: ['*'],
    }));
    table.grantReadWriteData(controllerRole);
    if (props.encryptionKey) {
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
    this.eventBus.grantPutEventsTo(controllerRole);

    // Probe.
    if (props.probeTargets) {
      const probeLogGroup = makeLogGroup('ProbeLogs');
      const probeRole = makeRole('ProbeRole', probeLogGroup, 'Cutover Keep-Alive probe: records results, emits events');
      const probe = makeFunction('Probe', 'probe', {
        role: probeRole,
        logGroup: probeLogGroup,
        timeout: props.probeTimeout ?? Duration.minutes(1),
        description: `Cutover Keep-Alive probe for ${this.node.path}`,
        environment: {
          CUTOVER_TABLE_NAME: table.tableName,
          ...probeEnvironment,
          CUTOVER_EVENT_BUS_NAME: this.eventBus.eventBusName,
          CUTOVER_MIGRATION_KEY: this.migrationKey,
          POWERTOOLS_SERVICE_NAME: 'cutover-probe',
          POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
        },
      });
      this.probeFunction = probe;
      // No retry by Lambda after a function error (its default is 2, one and two minutes later):
      // a retried probe measures a moment that the next scheduled run measures anyway, and runs
      // would pile up. An event that waited a minute (throttling) is dropped for the same reason.
      probe.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
      // Writes results (with a TTL) and reads the current-migration pointer.
      table.grantReadWriteData(probeRole);
      this.eventBus.grantPutEventsTo(probeRole);
      // The controller's fresh probes (at the gate, before every increase) are run by this
      // function, invoked synchronously: the controller names a side, never a URL. Only the
      // unqualified function (no version or alias wildcard) may be invoked.
      controller.addEnvironment('CUTOVER_PROBE_FUNCTION_NAME', probe.functionName);
      controllerRole.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'RunFreshProbes', actions: ['lambda:InvokeFunction'], resources: [probe.functionArn] }),
      );
      new events.Rule(this, 'ProbeSchedule', {
        description: `Runs the Cutover Keep-Alive probe every minute (${this.node.path})`,
        schedule: events.Schedule.rate(Duration.minutes(1)),
        // EventBridge's delivery to Lambda is not retried: a missed minute is covered by the next
        // one, and retrying would only pile up probes (Lambda's own retries are off, see above).
        targets: [new targets.LambdaFunction(probe, { retryAttempts: 0 })],
      });
    }

    // Reconcile every minute, and at once when a probe finds a desync.
    new events.Rule(this, 'ControllerSchedule', {
      description: `Runs the Cutover controller every minute (${this.node.path})`,
      schedule: events.Schedule.rate(Duration.minutes(1)),
      // Delivery is not retried: a missed minute is covered by the next one. (A tick that fails in
      // the function is retried by Lambda, see the controller's async invoke configuration.)
      targets: [new targets.LambdaFunction(controller, { retryAttempts: 0 })],
    });
    new events.Rule(this, 'ProbeDesyncRule', {
      description: `Runs the Cutover controller at once when a probe finds a desync (${this.node.path})`,
      eventBus: this.eventBus,
      eventPattern: {
        source: ['cutover.probe'],
        detailType: ['Cutover Probe Result'],
        detail: { verdict: ['desync'] },
      },
      // Delivery retries only (Lambda throttling or unavailable); a desync older than 5 minutes is
      // read from the table by the ticks in between anyway.
      targets: [new targets.LambdaFunction(controller, { retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });

    // Deploy trigger.
    const triggerLogGroup = makeLogGroup('DeployTriggerLogs');
    const triggerRole = makeRole('DeployTriggerRole', triggerLogGroup, 'Cutover deploy trigger: creates the alias once, records new migrations');
    const trigger = makeFunction('DeployTriggerHandler', 'deploy-trigger', {
      role: triggerRole,
      logGroup: triggerLogGroup,
      // It may wait for a synchronous command to the controller (abort on a stack rollback, teardown
      // of a completed migration; the handler's command client allows two attempts of 20 s) besides
      // its own calls.
      timeout: Duration.minutes(1),
      description: `Cutover deploy trigger for ${this.node.path}`,
      environment: {
        CUTOVER_TABLE_NAME: table.tableName,
        CUTOVER_CONTROLLER_FUNCTION_NAME: controller.functionName,
        CUTOVER_PLAN: planJson,
        CUTOVER_JUDGE: judgeJson,
        CUTOVER_PINNED_CAPACITY: String(this.pinnedCapacity),
      },
    });
    this.deployTriggerFunction = trigger;
    triggerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'CreateAliasOnce',
      actions: ['lambda:GetAlias', 'lambda:CreateAlias'],
      resources: [fnArn, aliasArn],
    }));
    table.grantReadWriteData(triggerRole);
    // The unqualified ARN only (grantInvoke would add `:*`): the trigger invokes `$LATEST`.
    triggerRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'StartController',
      actions: ['lambda:InvokeFunction'],
      resources: [controller.functionArn],
    }));

    const providerLogGroup = makeLogGroup('DeployTriggerProviderLogs');
    const providerRole = makeRole('DeployTriggerProviderRole', providerLogGroup, 'Cutover deploy trigger: CloudFormation custom resource framework');
    const provider = new cr.Provider(this, 'DeployTriggerProvider', {
      onEventHandler: trigger,
      logGroup: providerLogGroup,
      frameworkOnEventRole: providerRole,
    });
    this.deployTrigger = new CustomResource(this, 'DeployTrigger', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::CutoverDeployTrigger',
      properties: {
        FunctionName: this.functionName,
        AliasName: this.aliasName,
        TargetVersion: this.targetVersion,
        MigrationId: this.migrationId,
      },
    });
    // The trigger invokes the controller, which must already be able to act on its first tick.
    this.deployTrigger.node.addDependency(controllerRole);

    // cdk-nag (AwsSolutions) findings that are part of the design, each with its reason.
    for (const fn of [controller, trigger, ...(this.probeFunction ? [this.probeFunction] : [])]) {
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
    if (this.pinnedCapacity > 0) {
      Validations.of(controllerRole).acknowledge({
        id: `AwsSolutions-IAM5[${nagResourceFinding(this, qualifiedArns)}]`,
        reason:
          "Provisioned concurrency is pinned on the OLD version, which is only known at run time (whatever the alias pointed at when the deploy started): scoped to the migrated function's qualifiers, no other function.",
      });
    }
    if (props.encryptionKey) {
      const roles = [controllerRole, triggerRole, ...(this.probeFunction?.role ? [this.probeFunction.role] : [])];
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
      id: `AwsSolutions-IAM5[${nagResourceFinding(this, `${trigger.functionArn}:*`)}]`,
      reason: "The custom resource Provider framework grants itself invoke on the deploy trigger's qualifiers (aws-cdk's grantInvoke); it is the trigger function only.",
    });

    for (const alarm of props.alarms ?? []) this.addAlarm(alarm);

    if (props.dashboard !== false) {
      this.dashboard = new MigrationDashboard(this, 'Dashboard', {
        migration: this,
        dashboardName: props.dashboardName,
      }).dashboard;
    }
  }

  /** The alarms attached so far. */
  public get alarms(): readonly cloudwatch.IAlarm[] {
    return [...this.alarmList];
  }

  /**
   * Attaches an alarm: when it enters ALARM, EventBridge invokes the controller at once and the
   * migration rolls back. Its other state changes are recorded the same way, so that routine ticks
   * need no DescribeAlarms call. At most `CanaryMigration.MAX_ALARMS` (10). Metric and composite
   * alarms alike (`cloudwatch.CompositeAlarm` to watch more than 10).
   */
  public addAlarm(alarm: cloudwatch.IAlarm): void {
    if (this.alarmList.includes(alarm)) {
      throw new CutoverValidationError(`alarm ${alarm.node.path} was added twice`, this);
    }
    if (this.alarmList.length >= CanaryMigration.MAX_ALARMS) {
      throw new CutoverValidationError(
        `a migration watches at most ${CanaryMigration.MAX_ALARMS} alarms (like CodeDeploy); adding ${alarm.node.path} would make ${this.alarmList.length + 1}. Combine alarms with a CompositeAlarm`,
        this,
      );
    }
    this.alarmList.push(alarm);
    if (!this.alarmReadPolicy) {
      // DescribeAlarms on `*`, granted once an alarm is watched. CloudWatch returns composite
      // alarms only to a caller allowed DescribeAlarms on `*` (resource-level permissions do not
      // apply to them), and the docs recommend a composite alarm to watch more than 10; with a
      // narrower scope the controller would take a watched composite alarm for a missing one. It is
      // read-only, and the controller asks only for the watched names. A policy of its own, so that
      // the acknowledgement below covers this one statement and nothing else of the role.
      this.alarmReadPolicy = new iam.Policy(this, 'ReadWatchedAlarms', {
        roles: [this.controllerRole],
        statements: [new iam.PolicyStatement({ sid: 'ReadWatchedAlarms', actions: ['cloudwatch:DescribeAlarms'], resources: ['*'] })],
      });
      Validations.of(this.alarmReadPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'cloudwatch:DescribeAlarms returns composite alarms only when it is allowed on `*` (resource-level permissions do not apply to them). Read-only; the controller asks for the watched alarm names only.',
      });
      // The controller confirms the alarms on its first tick, which the deploy trigger starts.
      this.deployTrigger.node.addDependency(this.alarmReadPolicy);
    }
    if (!this.alarmRule) {
      // Alarm state changes are delivered on the default bus only, whatever `eventBus` says.
      // Every change, not only entering ALARM: the controller records each one and answers its
      // routine ticks from them, confirming with DescribeAlarms before any step forward.
      this.alarmRule = new events.Rule(this, 'AlarmRule', {
        description: `Runs the Cutover controller at once on every state change of a watched alarm (${this.node.path})`,
        eventPattern: {
          source: ['aws.cloudwatch'],
          detailType: ['CloudWatch Alarm State Change'],
        },
        // Delivery retries (EventBridge to Lambda): a late change is still worth delivering, the
        // recorded states are ordered by CloudWatch's own timestamps, so an old event never
        // overwrites a newer state. A change whose recording fails in the controller is retried by
        // Lambda itself (the controller's async invoke configuration), not by these.
        targets: [new targets.LambdaFunction(this.controllerFunction, { retryAttempts: 8, maxEventAge: Duration.hours(1) })],
      });
    }
    this.alarmRule.addEventPattern({ resources: [alarm.alarmArn] });
  }

  /** Lets `grantee` send operator commands (pause, resume, abort, promote, teardown) to the controller. */
  public grantOperate(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['lambda:InvokeFunction'],
      resourceArns: [this.controllerFunction.functionArn],
    });
  }

  /** Lets `grantee` read migration state, history and probe results from the table. */
  public grantReadState(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }

  /** Lets `grantee` subscribe to the migration's notifications. */
  public grantSubscribe(grantee: iam.IGrantable): iam.Grant {
    return this.topic.grantSubscribe(grantee);
  }

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
   * Index of the current plan step (-1 before the first shift).
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
   * The figure the old version is pinned to.
   * @default - Maximum over 1 minute
   */
  public metricPinnedCapacity(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ControllerMetric.PINNED_CAPACITY, props);
  }

  /**
   * Steps advanced.
   * @default - Sum over 5 minutes
   */
  public metricAdvances(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.ADVANCES, props);
  }

  /**
   * Decisions to hold a step (not enough evidence yet).
   * @default - Sum over 5 minutes
   */
  public metricHolds(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.HOLDS, props);
  }

  /**
   * Rollbacks (alarm an operator on this one).
   * @default - Sum over 5 minutes
   */
  public metricRollbacks(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.ROLLBACKS, props);
  }

  /**
   * Pauses (by the judge or an operator).
   * @default - Sum over 5 minutes
   */
  public metricPauses(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.countMetric(ControllerMetric.PAUSES, props);
  }

  /**
   * Probe runs that found a desync on `side` (0/1 per run).
   * @default - Sum over 5 minutes
   */
  public metricProbeDesync(side: ProbeSide, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.probeMetric(ProbeMetric.DESYNC, side, 'Sum', props);
  }

  /**
   * Probe runs that passed on `side` (0/1 per run).
   * @default - Sum over 5 minutes
   */
  public metricProbeOk(side: ProbeSide, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.probeMetric(ProbeMetric.OK, side, 'Sum', props);
  }

  /**
   * Probe runs that could not decide on `side` (0/1 per run).
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
   * How long one probe run took on `side`, in milliseconds.
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

/** Checks every prop that can be checked at synth; unresolved tokens are skipped. */
function validateProps(scope: Construct, props: CanaryMigrationProps): void {
  const fail = (message: string): never => {
    throw new CutoverValidationError(message, scope);
  };
  if (!props || typeof props !== 'object') fail(`props are required, got ${show(props)}`);
  if (!props.function) fail('function is required (the Lambda function whose alias is migrated)');
  if (!props.version) fail('version is required (the version to migrate to, e.g. fn.currentVersion)');

  const aliasName = props.aliasName;
  if (typeof aliasName !== 'string' || (!Token.isUnresolved(aliasName) && !ALIAS_NAME.test(aliasName))) {
    fail(`aliasName must be 1–128 letters, digits, '-' or '_' and not only digits, got ${show(aliasName)}`);
  }

  const version = props.version.version;
  if (!Token.isUnresolved(version) && (version === '$LATEST' || !/^\d+$/.test(version))) {
    fail(`version must be a published version number (alias routing cannot use $LATEST), got ${show(version)}`);
  }
  if (props.version.lambda !== props.function) {
    const stack = Stack.of(scope);
    const versionFunction = stack.resolve(props.version.lambda.functionArn);
    const migratedFunction = stack.resolve(props.function.functionArn);
    if (typeof versionFunction === 'string' && typeof migratedFunction === 'string' && versionFunction !== migratedFunction) {
      fail(`version belongs to ${versionFunction}, not to the migrated function ${migratedFunction}`);
    }
  }

  if (props.plan !== undefined && !(props.plan instanceof TrafficShiftPlan)) {
    fail(`plan must be a TrafficShiftPlan (a preset or TrafficShiftPlan.canary/linear/steps/fromSpec), got ${show(props.plan)}`);
  }
  if (props.healthCheck !== undefined && !(props.healthCheck instanceof HealthCheck)) {
    fail(`healthCheck must be a HealthCheck (HealthCheck.DEFAULT, HealthCheck.STRICT or HealthCheck.custom), got ${show(props.healthCheck)}`);
  }
  if (props.alarms !== undefined && !Array.isArray(props.alarms)) fail(`alarms must be an array, got ${show(props.alarms)}`);
  if ((props.alarms?.length ?? 0) > CanaryMigration.MAX_ALARMS) {
    fail(`a migration watches at most ${CanaryMigration.MAX_ALARMS} alarms (like CodeDeploy), got ${props.alarms!.length}; combine alarms with a CompositeAlarm`);
  }

  const oldCapacity = props.oldCapacity;
  if (oldCapacity !== undefined && !Token.isUnresolved(oldCapacity) && !(Number.isInteger(oldCapacity) && oldCapacity >= 0)) {
    fail(`oldCapacity must be a whole number of provisioned concurrent executions, 0 or more, got ${show(oldCapacity)}`);
  }
  if (oldCapacity !== undefined && Token.isUnresolved(oldCapacity)) {
    fail('oldCapacity must be known at synth (the controller also grants itself capacity permissions from it), got a token');
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
  } else {
    for (const key of ['probePath', 'probeRuns', 'probeTimeout'] as const) {
      if (props[key] !== undefined) fail(`${key} has no effect without probeTargets, got ${show(props[key]?.toString())}`);
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
