/**
 * `CutoverController`: what every `CanaryMigration` of a stack shares, as a CodeDeploy application
 * holds many deployment groups: the state table, the notification topic, the event bus, the
 * deploy trigger (its function and custom resource Provider), one controller per target family
 * present (a Lambda alias, or a fleet behind a load balancer or DNS) with its schedule, and the
 * Keep-Alive probe with its schedule (created with the first migration that has probe targets).
 *
 * Why shared: a per-migration set (table, topic, three functions, schedules, provider) was 33
 * resources per migration, and most of them idle. Now each migration adds its custom resource
 * (whose `Settings` carry what used to be its functions' environment: the deploy trigger stores
 * them in a registry item per migration, lambda/aws/registry.ts), its alarm rule and its
 * dashboard, and grants on the shared roles.
 *
 * One per stack, at the stack's root (id `Cutover`, or `CutoverController` when the app already
 * uses `Cutover` there, e.g. for a migration): `CutoverController.of(scope)` returns it and
 * creates it on first use. `CanaryMigration` calls it unless given `controller`.
 */
import { Duration, Lazy, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct, type IConstruct } from 'constructs';
import { alarmReadPolicy, scheduleController, scheduleNames, scheduleProbe, type ControllerFamily, type ScheduleNames } from './canary-migration-events';
import {
  connectController,
  connectProbe,
  connectTriggerToProbe,
  createController,
  createDeployTrigger,
  createProbe,
  type DeployTriggerParts,
  type FunctionParts,
  type SharedSettings,
} from './cutover-controller-functions';
import { checkSharedProps, probeTimeoutSeconds } from './cutover-controller-checks';
import { CutoverValidationError } from './errors';
import type { SharedRole } from './shared-role';

export type { ControllerFamily } from './canary-migration-events';

/** Props of `CutoverController`: what every migration of the stack shares. */
export interface CutoverControllerProps {
  /**
   * Customer managed key for the state table and the topic. A migration that names a key must name
   * this one.
   * @default - AWS managed keys (`aws/dynamodb` for the table, `alias/aws/sns` for the topic)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Bus for Cutover's own events (`cutover`, `cutover.probe`). Alarm state changes are always read
   * from the default bus, where CloudWatch puts them.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * What happens to the state table (every migration's history) and the log groups when the stack
   * is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retention of the controllers', the probe's and the deploy trigger's logs (the decision log included).
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/** One family's controller: its function, role, log group and schedule, and the migrations it serves. */
export interface FamilyController {
  readonly family: ControllerFamily;
  readonly function: lambda.Function;
  readonly role: SharedRole;
  readonly logGroup: logs.LogGroup;
  readonly schedule: events.Rule;
  readonly scheduleName: string;
  /** The controller's ReadWatchedAlarms policy, created with the first watched alarm of its migrations. */
  readonly alarmReadPolicy: () => iam.Policy;
}

/** The shared probe: its function, role, log group and schedule. */
export interface SharedProbe {
  readonly function: lambda.Function;
  readonly role: SharedRole;
  readonly logGroup: logs.LogGroup;
  readonly schedule: events.Rule;
  readonly scheduleName: string;
}

/** The controller of each stack, found by stack (not by id: the id may be taken, see `of`). */
const CONTROLLERS = new WeakMap<Stack, CutoverController>();

/**
 * The resources every migration of a stack shares. Usually created by the first `CanaryMigration`;
 * create it first (or with `CutoverController.of(this, props)`) to set the shared props once:
 *
 * ```ts
 * const cutover = CutoverController.of(this, { encryptionKey: key, logRetention: logs.RetentionDays.THREE_MONTHS });
 * new CanaryMigration(this, 'Payments', { function: payments, aliasName: 'live', version: payments.currentVersion });
 * new CanaryMigration(this, 'Orders', { target: MigrationTarget.loadBalancer({ … }) });
 * cutover.grantOperate(opsRole);
 * ```
 */
export class CutoverController extends Construct {
  /** The id `of` creates the controller with, at the stack's root. */
  public static readonly DEFAULT_ID = 'CutoverController';

  /** The stack's controller, or undefined when none was created yet. */
  public static find(scope: IConstruct): CutoverController | undefined {
    return CONTROLLERS.get(Stack.of(scope));
  }

  /**
   * The stack's controller, created at the stack's root on first use. `props` apply when it is
   * created; given again later they must agree with the ones it was created with.
   */
  public static of(scope: IConstruct, props?: CutoverControllerProps): CutoverController {
    const stack = Stack.of(scope);
    const existing = CONTROLLERS.get(stack);
    if (existing) {
      if (props) checkSharedProps(existing, props, 'CutoverController.of', scope);
      return existing;
    }
    // Always this id, never one a migration is commonly given (`Cutover`, the README's example), so
    // that a migration created after the controller cannot clash with it.
    return new CutoverController(stack, CutoverController.DEFAULT_ID, props);
  }

  /** Migration state, history and the registry (`pk`/`sk`, on-demand, point-in-time recovery, encrypted). */
  public readonly table: dynamodb.Table;
  /** Rollbacks, pauses and promotions of every migration are published here; subscribe to it. */
  public readonly topic: sns.Topic;
  /** The bus Cutover's events go to. */
  public readonly eventBus: events.IEventBus;
  /** The handler of every migration's deploy trigger custom resource. */
  public readonly deployTriggerFunction: lambda.Function;
  /** The service token of the deploy trigger's Provider (every migration's custom resource uses it). */
  public readonly serviceToken: string;
  /** The key of the table and the topic; undefined with AWS managed keys. */
  public readonly encryptionKey?: kms.IKey;
  /** What happens to the table and the log groups when the stack is deleted. */
  public readonly removalPolicy: RemovalPolicy;
  /** Retention of the shared functions' logs. */
  public readonly logRetention: logs.RetentionDays;
  /** The eventBus prop as given (undefined: the default bus), to compare with a migration's. */
  public readonly eventBusProp?: events.IEventBus;
  /** The fixed names of the shared schedules. */
  public readonly scheduleNames: ScheduleNames;

  private readonly shared: SharedSettings;
  private readonly trigger: DeployTriggerParts;
  private readonly families = new Map<ControllerFamily, FamilyController>();
  private probeParts?: SharedProbe;
  private readonly probeTimeouts: Duration[] = [];
  private readonly operators: iam.IGrantable[] = [];

  constructor(scope: Construct, id: string, props: CutoverControllerProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const other = CONTROLLERS.get(stack);
    if (other) {
      throw new CutoverValidationError(
        `stack ${stack.node.path} already has a CutoverController (${other.node.path}): a stack has one, shared by all its migrations. Use CutoverController.of(scope) to get it`,
        this,
      );
    }
    CONTROLLERS.set(stack, this);
    checkSharedProps(undefined, props, 'CutoverController', this);
    this.encryptionKey = props.encryptionKey;
    this.eventBusProp = props.eventBus;
    this.removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.scheduleNames = scheduleNames(this);

    // --- State, notifications, events -----------------------------------------------------------
    this.table = new dynamodb.Table(this, 'State', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: props.encryptionKey ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: this.removalPolicy,
    });
    this.topic = new sns.Topic(this, 'Notifications', {
      displayName: 'Cutover migration notifications',
      // The AWS managed key is enough for Lambda publishers and email/SMS subscribers; a customer key
      // is only needed when other services (EventBridge, CloudWatch) must publish to the topic.
      masterKey: props.encryptionKey ?? kms.Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    this.shared = {
      table: this.table,
      topic: this.topic,
      eventBus: this.eventBus,
      ...(props.encryptionKey ? { encryptionKey: props.encryptionKey } : {}),
      removalPolicy: this.removalPolicy,
      logRetention: this.logRetention,
    };

    // --- The deploy trigger, told each family's controller once the app is complete ------------
    this.trigger = createDeployTrigger(
      this,
      this.shared,
      Lazy.string({
        produce: () =>
          stack.toJsonString(
            Object.fromEntries([...this.families.values()].map((c) => [c.family, { functionName: c.function.functionName, schedule: c.scheduleName }])),
          ),
      }),
    );
    this.deployTriggerFunction = this.trigger.fn;
    this.serviceToken = this.trigger.provider.serviceToken;
  }

  /** The deploy trigger's role: a migration's target grants what its trigger side needs here. */
  public get deployTriggerRole(): iam.IRole {
    return this.trigger.role;
  }

  /** The families whose controller exists so far. */
  public get controllerFamilies(): ControllerFamily[] {
    return [...this.families.keys()];
  }

  /** The probe; undefined until a migration with probe targets is added. */
  public get probe(): SharedProbe | undefined {
    return this.probeParts;
  }

  /**
   * The controller of a target family, created on first use: its function (the family's entry),
   * role, log group, schedule (DISABLED at deploy) and the rule that runs it on its migrations'
   * probe desyncs.
   */
  public controllerFor(family: ControllerFamily): FamilyController {
    const existing = this.families.get(family);
    if (existing) return existing;
    const scope = new Construct(this, family === 'lambda-alias' ? 'LambdaAliasController' : 'FleetController');
    const scheduleName = this.scheduleNames.controller[family];
    const parts: FunctionParts = createController(scope, family, this.shared, scheduleName);
    const schedule = scheduleController(scope, parts.fn, this.eventBus, scheduleName);
    let readPolicy: iam.Policy | undefined;
    const controller: FamilyController = {
      family,
      function: parts.fn,
      role: parts.role,
      logGroup: parts.logGroup,
      schedule,
      scheduleName,
      alarmReadPolicy: () => (readPolicy ??= alarmReadPolicy(scope, parts.role)),
    };
    this.families.set(family, controller);
    connectController(this.trigger, family, parts.fn, scheduleName);
    if (this.probeParts) connectProbe(parts, this.probeParts.function, this.probeParts.scheduleName);
    for (const grantee of this.operators) {
      iam.Grant.addToPrincipal({ grantee, actions: ['lambda:InvokeFunction'], resourceArns: [parts.fn.functionArn] });
    }
    return controller;
  }

  /**
   * The probe, created on first use, with its schedule (DISABLED at deploy); every controller may
   * invoke it and switch its schedule. `timeout` (a migration's `probeTimeout`) joins the others:
   * the function's timeout is the largest (every run of every target of any migration must fit);
   * without one, a migration counts for 1 minute.
   */
  public probeFor(timeout: Duration | undefined): SharedProbe {
    this.probeTimeouts.push(timeout ?? Duration.minutes(1));
    if (this.probeParts) return this.probeParts;
    const scope = new Construct(this, 'Probe');
    const parts = createProbe(scope, this.shared);
    const scheduleName = this.scheduleNames.probe;
    const cfn = parts.fn.node.defaultChild as lambda.CfnFunction;
    cfn.timeout = Lazy.number({ produce: () => probeTimeoutSeconds(this, this.probeTimeouts) });
    this.probeParts = { function: parts.fn, role: parts.role, logGroup: parts.logGroup, schedule: scheduleProbe(scope, parts.fn, scheduleName), scheduleName };
    for (const controller of this.families.values()) {
      connectProbe({ fn: controller.function, role: controller.role, logGroup: controller.logGroup }, parts.fn, scheduleName);
    }
    connectTriggerToProbe(this.trigger, scheduleName);
    return this.probeParts;
  }

  /**
   * Records that a migration is served by `family`'s controller (created on first use).
   * Called by `CanaryMigration`; checks the migration's shared props against this controller's.
   */
  public addMigration(migration: IConstruct, family: ControllerFamily, props: CutoverControllerProps): FamilyController {
    checkSharedProps(this, props, 'CanaryMigration', migration);
    return this.controllerFor(family);
  }

  /**
   * Lets `grantee` send operator commands (pause, resume, abort, promote, teardown) to every
   * controller of the stack, also one a later migration brings (granted when it is created).
   */
  public grantOperate(grantee: iam.IGrantable): iam.Grant {
    this.operators.push(grantee);
    if (this.families.size === 0) return iam.Grant.drop(grantee, 'invoke the Cutover controllers (granted as each is created)');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['lambda:InvokeFunction'],
      resourceArns: [...this.families.values()].map((c) => c.function.functionArn),
    });
  }

  /** Lets `grantee` read every migration's state, history and probe results from the table. */
  public grantReadState(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }

  /** Lets `grantee` subscribe to the notifications of every migration of the stack. */
  public grantSubscribe(grantee: iam.IGrantable): iam.Grant {
    return this.topic.grantSubscribe(grantee);
  }
}
