/**
 * `CanaryMigration`: moves the traffic of a Lambda alias (or of a fleet behind a load balancer or
 * DNS) from what it points at to a new version in weighted steps, watched by a reconciler that
 * rolls back on its own.
 *
 * How a deploy starts a migration without CloudFormation ever fighting the controller:
 * - The alias is NOT an `AWS::Lambda::Alias` of the stack. A custom resource (the deploy trigger)
 *   receives `TargetVersion`; when the version changes, CloudFormation sends an Update, and the
 *   trigger records a new migration and invokes the controller. It creates the alias only when
 *   there is none (first deploy: nothing to migrate) and never sets the new version to 100 %.
 * - Later deploys therefore never reset the alias's weights; only the controller moves them.
 *
 * Every migration of a stack is served by the stack's `CutoverController` (cutover-controller.ts):
 * one table, topic, deploy trigger and probe, and one controller per target family. A migration
 * adds its custom resource, whose `Settings` carry its own configuration (the target, the pin, the
 * plan, the judge, the alarms, the probe's targets: canary-migration-settings.ts) to the registry
 * the shared functions read, its alarm rule, its dashboard, and the grants its target and pin
 * need, on the shared roles.
 *
 * The controller runs every minute while one of its migrations is live (an EventBridge schedule,
 * created disabled: the deploy trigger enables it when it marks a migration live, the controller
 * disables it when none needs ticks any more) and at once on events: a state change of one of the
 * configured alarms (recorded, so that routine ticks need no DescribeAlarms call; an alarm
 * entering ALARM rolls back), a probe finding a desync, or an operator command (direct invoke,
 * which works while the schedule is off). The probe runs every minute against per-version
 * endpoints, on a schedule switched with the controllers'. State and history live in DynamoDB,
 * progress goes to CloudWatch (EMF), events to EventBridge, rollbacks/pauses/promotions to SNS.
 *
 * This file is the construct itself: its public surface (resources, grants, `addAlarm`) and the
 * order in which it composes its parts, each in a file of its own: the props and their checks
 * (canary-migration-props.ts), its settings (canary-migration-settings.ts), the alarm watch
 * (canary-migration-events.ts), and its metrics, in the base class it extends
 * (canary-migration-metrics.ts).
 */
import { CustomResource, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct, IDependable } from 'constructs';
import { MigratedAlias } from './alias-handle';
import { MigratedRecord } from './migrated-record';
import { AlarmWatch } from './canary-migration-events';
import { migrationSettings, probeSettingsOf } from './canary-migration-settings';
import { CutoverController } from './cutover-controller';
import { MAX_ALARMS, checkProbeSettingsUsed, checkedPlanJson, validateProps, type CanaryMigrationProps } from './canary-migration-props';
import { MigrationDashboard } from './dashboard';
import { CutoverValidationError, show } from './errors';
import { OldCapacity } from './capacity/old-capacity';
import type { MigrationTargetBinding } from './targets/binding';
import { MigrationCompletionWait } from './completion-wait';
import { claimAlias, checkNoAliasResource, type LambdaAliasBinding } from './targets/lambda-alias';
import { MigrationTarget } from './targets/migration-target';
import { HealthCheck } from './health-check';
import { DEFAULT_APP_METRICS_NAMESPACE } from './metrics';
import { TrafficShiftPlan } from './plan';
import { CanaryMigrationMetrics } from './canary-migration-metrics';

export type { CanaryMigrationProps, ProbeTargets } from './canary-migration-props';

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
 * new apigateway.LambdaRestApi(this, 'Api', { handler: migration.alias }); // invoke permissions wait for the alias
 * ```
 */
export class CanaryMigration extends CanaryMigrationMetrics {
  /** Like CodeDeploy, at most 10 alarms per migration. */
  public static readonly MAX_ALARMS = MAX_ALARMS;

  /** The stack's shared controller, which serves this migration. */
  public readonly controller: CutoverController;
  /** Migration state and history (`pk`/`sk`, on-demand, point-in-time recovery, encrypted): the stack's shared table. */
  public readonly table: dynamodb.ITable;
  /** Rollbacks, pauses and promotions are published here (the stack's shared topic); subscribe to it. */
  public readonly topic: sns.ITopic;
  /** The bus Cutover's events go to. */
  public readonly eventBus: events.IEventBus;
  /**
   * The reconciler of this migration's target family, shared with the stack's other migrations of
   * that family. Invoke it with `{"command": "pause|resume|abort|promote|teardown", "reason": "…",
   * "migration": "<migrationKey>"}` (`migration` may be left out while it serves one migration only).
   */
  public readonly controllerFunction: lambda.IFunction;
  /** The stack's shared Keep-Alive probe; undefined when this migration has no probe targets. */
  public readonly probeFunction?: lambda.IFunction;
  /** The shared custom resource handler that starts a migration on deploy. */
  public readonly deployTriggerFunction: lambda.IFunction;
  /** The custom resource whose `TargetVersion` change starts a migration (depend on it to wait for the alias). */
  public readonly deployTrigger: CustomResource;
  /** The deploy's wait for the migration's verdict; undefined without `waitForCompletion`. */
  public readonly completionWait?: MigrationCompletionWait;
  /** The log group of this migration's controller (holds the decision log, shared with the family's other migrations). */
  public readonly controllerLogGroup: logs.ILogGroup;
  /** The migration's dashboard; undefined with `dashboard: false`. */
  public readonly dashboard?: cloudwatch.Dashboard;

  /** What moves traffic: `lambda-alias`, `load-balancer` or `dns`. */
  public readonly targetKind: MigrationTargetBinding['kind'];
  /** The migrated function's name (Lambda alias targets only). */
  public readonly functionName?: string;
  /** The alias traffic is shifted on (Lambda alias targets only). */
  public readonly aliasName?: string;
  /** The version (alias) or release label (fleets) this deployment migrates to. */
  public readonly targetVersion: string;
  /**
   * `<function>:<alias>` for an alias, the migration's name for fleets: the `Migration` dimension of
   * the metrics and the key of the current-migration pointer.
   */
  public readonly migrationKey: string;
  /** `<migrationKey>:<version or release>`: changes with every new version, which makes the trigger an Update. */
  public readonly migrationId: string;
  /** The plan in effect (with the `teardown` override applied). */
  public readonly plan: TrafficShiftPlan;
  /** The health rules in effect. */
  public readonly healthCheck: HealthCheck;
  /**
   * Units pinned on the old side: provisioned concurrency, instances or tasks (0 = capacity not
   * managed; undefined = the old fleet's size when the migration starts).
   */
  public readonly pinnedCapacity: number | undefined;
  /** Namespace of the application's per-version metrics. */
  public readonly appMetricsNamespace: string;

  private readonly alarmList: cloudwatch.IAlarm[] = [];
  /** `function:<name>:<alias>` (Lambda alias targets only). */
  private readonly aliasHandle?: MigratedAlias;
  /** The weighted records' name (DNS targets only). */
  private readonly recordHandle?: MigratedRecord;
  /** The rule and the read permission of the watched alarms, created with the first one. */
  private readonly alarmWatch: AlarmWatch;

  constructor(scope: Construct, id: string, props: CanaryMigrationProps) {
    super(scope, id);
    validateProps(this, props);

    const target = (props.target ?? MigrationTarget.lambdaAlias({ function: props.function!, aliasName: props.aliasName!, version: props.version! })).bind({ scope: this });
    const oldCapacity = typeof props.oldCapacity === 'number' || props.oldCapacity === undefined
      ? props.oldCapacity
        ? OldCapacity.provisionedConcurrency(props.oldCapacity)
        : OldCapacity.none()
      : props.oldCapacity;
    const capacity = oldCapacity.bind({ scope: this, target });
    this.targetKind = target.kind;
    if (props.target === undefined || target.kind === 'lambda-alias') {
      this.functionName = target.triggerProperties.FunctionName;
      this.aliasName = target.triggerProperties.AliasName;
    }
    this.targetVersion = target.identity;
    this.migrationKey = target.migrationKey;
    this.migrationId = `${this.migrationKey}:${this.targetVersion}`;
    const plan = props.plan ?? TrafficShiftPlan.CANARY_10PERCENT_5MINUTES;
    this.plan = props.teardown === undefined ? plan : plan.withTeardown(props.teardown);
    this.healthCheck = props.healthCheck ?? HealthCheck.DEFAULT;
    this.pinnedCapacity = capacity.units;
    this.appMetricsNamespace = props.appMetricsNamespace ?? DEFAULT_APP_METRICS_NAMESPACE;

    const planJson = checkedPlanJson(this, this.plan);
    const judgeJson = JSON.stringify(this.healthCheck.overrides);

    // --- The stack's shared controller, and this migration's place in it -------------------------
    const controller = sharedController(this, props);
    this.controller = controller;
    const family = target.kind === 'lambda-alias' ? 'lambda-alias' : 'fleet';
    const served = controller.addMigration(this, family, props);
    this.table = controller.table;
    this.topic = controller.topic;
    this.eventBus = controller.eventBus;
    this.controllerFunction = served.function;
    this.controllerLogGroup = served.logGroup;
    this.deployTriggerFunction = controller.deployTriggerFunction;

    const probeSettings = probeSettingsOf(this, props, target);
    const hasProbe = probeSettings.CUTOVER_PROBE_TARGETS !== undefined;
    checkProbeSettingsUsed(this, props, hasProbe);
    const probe = hasProbe ? controller.probeFor(props.probeTimeout) : undefined;
    this.probeFunction = probe?.function;

    // --- Its grants, on the shared roles (each scoped to this migration's resources) -----------
    target.grantController(served.role);
    capacity.grantController(served.role);
    target.grantTrigger(controller.deployTriggerRole);
    target.acknowledge?.({ controller: served.role, trigger: controller.deployTriggerRole });
    capacity.acknowledge?.(served.role);

    // --- Its deploy trigger: the target's properties and the migration's settings ---------------
    const settings = migrationSettings({
      scope: this,
      props,
      target,
      capacity,
      migrationKey: this.migrationKey,
      appMetricsNamespace: this.appMetricsNamespace,
      planJson,
      judgeJson,
      probeSettings,
      watchedAlarms: () => this.alarmList,
    });
    // Not the id it had when each migration brought its own Provider ('DeployTrigger'): CloudFormation
    // refuses to change a custom resource's ServiceToken ("Modifying service token is not allowed"),
    // so a stack upgraded from that layout would fail to update. A new logical id makes it create this
    // resource through the shared Provider and delete the old one through the old Provider (whose
    // Delete leaves the alias or the records alone).
    this.deployTrigger = new CustomResource(this, 'Trigger', {
      serviceToken: controller.serviceToken,
      resourceType: 'Custom::CutoverDeployTrigger',
      properties: { ...target.triggerProperties, Settings: settings },
    });
    // The trigger enables the schedules by name (no reference, see `scheduleNames`): they must exist
    // first, also when an update replaces them. It invokes the controller, which must already be
    // able to act on its first tick (its role with every grant above), and, with probe targets,
    // run a fresh probe at the gate.
    const dependencies: IDependable[] = [served.schedule, served.role];
    if (probe) dependencies.push(probe.schedule, probe.function);
    this.deployTrigger.node.addDependency(...dependencies);
    if (props.waitForCompletion !== undefined) {
      this.completionWait = new MigrationCompletionWait(this, 'CompletionWait', {
        deployTrigger: this.deployTrigger,
        migrationId: this.migrationId,
        table: this.table,
        timeout: props.waitForCompletion,
        plan: this.plan,
        logRetention: controller.logRetention,
        removalPolicy: controller.removalPolicy,
      });
    }
    const aliasTarget = isLambdaAliasBinding(target) ? target : undefined;
    if (aliasTarget) {
      this.aliasHandle = new MigratedAlias(this, 'Alias', {
        function: aliasTarget.lambdaFunction,
        aliasName: aliasTarget.aliasName,
        version: aliasTarget.lambdaVersion,
        createdBy: this.deployTrigger,
      });
    }
    if (target.weightedRecord) this.recordHandle = new MigratedRecord({ ...target.weightedRecord, createdBy: this.deployTrigger });
    this.alarmWatch = new AlarmWatch(this, {
      controllerFunction: served.function,
      alarmReadPolicy: served.alarmReadPolicy,
      deployTrigger: this.deployTrigger,
    });
    for (const alarm of props.alarms ?? []) this.addAlarm(alarm);

    if (props.dashboard !== false) {
      this.dashboard = new MigrationDashboard(this, 'Dashboard', {
        migration: this,
        dashboardName: props.dashboardName,
        ...(target.healthWidgets ? { healthWidgets: target.healthWidgets } : {}),
      }).dashboard;
    }

    if (aliasTarget) {
      // One migration per alias in the app, and no AWS::Lambda::Alias of the same name beside it
      // (checked at synth: the alias may be added to the function after this construct).
      claimAlias(this, aliasTarget.lambdaFunction, aliasTarget.aliasName);
      this.node.addValidation({
        validate: () => {
          checkNoAliasResource(this, aliasTarget.lambdaFunction, aliasTarget.aliasName);
          return [];
        },
      });
    }
  }

  /**
   * The migrated alias (`function:<name>:<aliasName>`), to use wherever an `IFunction` or `IAlias`
   * is taken: `LambdaRestApi`/`LambdaIntegration`, `HttpLambdaIntegration`, `addEventSource`,
   * `grantInvoke`, `configureAsyncInvoke`, `addFunctionUrl`. Every resource CloudFormation creates
   * against the alias qualifier through it (invoke permissions, event source mappings, function
   * URLs, async invoke configuration) depends on the deploy trigger, which creates the alias on the
   * first deploy. `alias.version` is the version this deploy migrates to.
   *
   * Lambda alias migrations only: a fleet migration (load-balancer or DNS target) has no alias,
   * and reading this throws.
   */
  public get alias(): lambda.IAlias {
    if (!this.aliasHandle) {
      throw new CutoverValidationError(
        this.targetKind === 'lambda-alias'
          ? 'alias is built from MigrationTarget.lambdaAlias (or function/aliasName/version); this migration has a custom lambda-alias target: use its own function and alias'
          : `alias is only for Lambda alias migrations; this migration's target is ${show(this.targetKind)}, whose clients reach the fleets through ` +
              (this.targetKind === 'dns' ? 'the DNS name: use migration.record' : 'your load balancer listener, which needs no handle'),
        this,
      );
    }
    return this.aliasHandle;
  }

  /**
   * The weighted DNS name this migration moves traffic on (DNS targets only), the counterpart of
   * `alias`: the deploy trigger creates the weighted records on the first deploy, so an alias record
   * bound to it (`route53.RecordTarget.fromAlias(migration.record)`) and anything that depends on it
   * (`node.addDependency(migration.record)`) is created after them. Reading it for another target
   * kind throws, naming the handle that fits.
   */
  public get record(): MigratedRecord {
    if (!this.recordHandle) {
      throw new CutoverValidationError(
        `record is only for DNS migrations; this migration's target is ${show(this.targetKind)}: ` +
          (this.targetKind === 'lambda-alias' ? 'use migration.alias' : 'clients reach it through your load balancer listener, which needs no handle'),
        this,
      );
    }
    return this.recordHandle;
  }

  /**
   * A function URL on the migrated alias (`Qualifier: <aliasName>`), created after the deploy
   * trigger has created the alias. The default `authType` is `AWS_IAM` (as for `fn.addFunctionUrl`;
   * allow callers with `url.grantInvokeUrl(grantee)`); with `FunctionUrlAuthType.NONE` it also adds
   * the public `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` (via the URL) permissions on
   * the alias, after the trigger too. Once per migration. Lambda alias migrations only.
   */
  public addFunctionUrl(options?: lambda.FunctionUrlOptions): lambda.FunctionUrl {
    return this.alias.addFunctionUrl(options);
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
    this.alarmWatch.watch(alarm);
  }

  /**
   * Lets `grantee` send operator commands (pause, resume, abort, promote, teardown) to this
   * migration's controller (shared with the stack's other migrations of its family: the grant is
   * the function's, not the migration's).
   */
  public grantOperate(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['lambda:InvokeFunction'],
      resourceArns: [this.controllerFunction.functionArn],
    });
  }

  /** Lets `grantee` read migration state, history and probe results from the table (the stack's, shared). */
  public grantReadState(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }

  /** Lets `grantee` subscribe to the notifications (the stack's topic: every migration of the stack publishes there). */
  public grantSubscribe(grantee: iam.IGrantable): iam.Grant {
    return this.topic.grantSubscribe(grantee);
  }
}

/**
 * The controller given in `controller`, or the stack's (created with this migration's shared props
 * when it is the first). A controller of another stack is refused: its functions would reach into
 * this stack's resources through exports, and a stack's migrations are its own.
 */
function sharedController(migration: CanaryMigration, props: CanaryMigrationProps): CutoverController {
  const shared = {
    ...(props.encryptionKey !== undefined ? { encryptionKey: props.encryptionKey } : {}),
    ...(props.eventBus !== undefined ? { eventBus: props.eventBus } : {}),
    ...(props.removalPolicy !== undefined ? { removalPolicy: props.removalPolicy } : {}),
    ...(props.logRetention !== undefined ? { logRetention: props.logRetention } : {}),
  };
  if (props.controller === undefined) return CutoverController.find(migration) ?? CutoverController.of(migration, shared);
  if (!(props.controller instanceof CutoverController)) {
    throw new CutoverValidationError(`controller must be a CutoverController (CutoverController.of(this)), got ${show(props.controller)}`, migration);
  }
  if (Stack.of(props.controller) !== Stack.of(migration)) {
    throw new CutoverValidationError(
      `controller ${props.controller.node.path} is in stack ${Stack.of(props.controller).node.path}, the migration in ${Stack.of(migration).node.path}: ` +
        "a stack's migrations are served by its own controller; leave controller out (CutoverController.of(this) is used) or create the migration in the controller's stack",
      migration,
    );
  }
  return props.controller;
}

function isLambdaAliasBinding(target: MigrationTargetBinding): target is LambdaAliasBinding {
  const binding = target as Partial<LambdaAliasBinding>;
  return target.kind === 'lambda-alias' && binding.lambdaFunction !== undefined && binding.lambdaVersion !== undefined && typeof binding.aliasName === 'string';
}
