/**
 * `MigrationCompletionWait`: makes `cdk deploy` wait for the verdict of the migration it starts, as
 * CodeDeploy's alias update policy does. The deploy returns once the migration is complete, and
 * fails (CloudFormation rolls the stack back) when the migration rolls back, so a CI pipeline sees
 * the outcome in the deploy's exit status.
 *
 * It is a custom resource through the `custom-resources` Provider with `onEvent` and `isComplete`
 * (lambda/aws/completion-wait.ts says what each decides), ordered after the deploy trigger: it reads
 * the trigger's `MigrationId` attribute, so CloudFormation creates or updates it only once the
 * trigger has answered, and updates it whenever the trigger records a new migration. The handler
 * may only read the migration's record item (`dynamodb:GetItem` on the table).
 *
 * Why at most one hour: CloudFormation waits at most 3600 s for a custom resource's answer (its
 * `ServiceTimeout` cannot be set higher), and the Provider documents the same limit for its
 * `totalTimeout`. A migration whose plan takes longer cannot be awaited by a deploy; a pipeline can
 * poll `cutover status <migration>` instead, whose exit code says the same thing.
 */
import { CustomResource, Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { CutoverValidationError, show } from './errors';
import { cutoverFunction } from './function-defaults';
import { nagResourceFinding } from './nag';
import type { TrafficShiftPlan } from './plan';

/** How often the Provider asks `isComplete`: the controller ticks every minute, so twice per tick. */
export const COMPLETION_QUERY_INTERVAL = Duration.seconds(30);
/** The shortest wait: a migration takes a few ticks even with the shortest plan. */
export const MIN_COMPLETION_WAIT = Duration.minutes(5);
/** The longest wait: CloudFormation's limit for a custom resource's answer (see the file's comment). */
export const MAX_COMPLETION_WAIT = Duration.hours(1);

/** Props of `MigrationCompletionWait`. */
export interface MigrationCompletionWaitProps {
  /**
   * The migration's deploy trigger (`CanaryMigration.deployTrigger`). Its `MigrationId` attribute
   * names the migration it recorded ('' when it recorded none): the wait is ordered after it and
   * runs again whenever it records a new migration.
   */
  readonly deployTrigger: CustomResource;
  /**
   * The id of the migration of the version (or release) this template deploys
   * (`CanaryMigration.migrationId`). Waiting happens only when the trigger recorded this very id:
   * on CloudFormation's rollback of a failed deploy the two differ, and the wait returns at once.
   */
  readonly migrationId: string;
  /** The migration table; the wait may read its record items, nothing else. */
  readonly table: dynamodb.ITable;
  /**
   * How long a deploy waits for the verdict at most: a whole number of minutes from 5 to 60. The
   * deploy fails with Cutover's own message about a minute before it (the migration is then still
   * running or paused; the stack rollback that follows aborts it).
   */
  readonly timeout: Duration;
  /**
   * The migration's plan: when given, a timeout shorter than its minimum duration (which no deploy
   * could ever meet) is refused at synth.
   * @default - the timeout is not checked against a plan
   */
  readonly plan?: TrafficShiftPlan;
  /**
   * How long the wait's logs (its handler, the Provider's functions and state machine) are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to those log groups when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Holds `cdk deploy` until the migration the deploy recorded completes; fails it when the migration
 * rolls back. Used by `CanaryMigration` with `waitForCompletion`; usable on its own:
 *
 * ```ts
 * new MigrationCompletionWait(this, 'Wait', {
 *   deployTrigger: migration.deployTrigger,
 *   migrationId: migration.migrationId,
 *   table: migration.table,
 *   timeout: Duration.minutes(45),
 *   plan: migration.plan,
 * });
 * ```
 */
export class MigrationCompletionWait extends Construct {
  /** The custom resource CloudFormation waits on. Its `Outcome` attribute is the migration's final status (`complete`, `torn-down`) or `not-waited`. */
  public readonly resource: CustomResource;
  /** The `onEvent` and `isComplete` handler. */
  public readonly handler: lambda.IFunction;
  /** How long a deploy waits at most. */
  public readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: MigrationCompletionWaitProps) {
    super(scope, id);
    this.timeout = checkedTimeout(this, props.timeout, props.plan);
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logGroup = (logicalId: string) => new logs.LogGroup(this, logicalId, { retention, removalPolicy });

    // The handler: its own log group and an explicit role (no managed policy), reading one kind of item.
    const handlerLogs = logGroup('HandlerLogs');
    const handlerRole = new iam.Role(this, 'HandlerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Cutover completion wait: reads the migration record to tell CloudFormation its verdict',
    });
    handlerLogs.grantWrite(handlerRole);
    // GetItem only: the handler reads the record item with getStateItem, never a query or a scan.
    handlerRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadMigrationRecord', actions: ['dynamodb:GetItem'], resources: [props.table.tableArn] }));
    // A table encrypted with a customer managed key: reading it needs Decrypt on that key alone.
    props.table.encryptionKey?.grant(handlerRole, 'kms:Decrypt');
    const handler = cutoverFunction(this, 'Handler', 'completion-wait', {
      // One GetItem per call; the SDK's retries (4 attempts of at most 3 s) fit well within it.
      timeout: Duration.seconds(30),
      description: `Cutover completion wait for ${scope.node.path}`,
      role: handlerRole,
      logGroup: handlerLogs,
      environment: { CUTOVER_TABLE_NAME: props.table.tableName, POWERTOOLS_SERVICE_NAME: 'cutover-completion-wait' },
    });
    this.handler = handler;

    // The Provider's functions share one log group, with roles of their own (its default roles
    // carry the AWSLambdaBasicExecutionRole managed policy). Two roles, as the Provider has them:
    // onEvent starts the waiter, whose functions run as the other, and one role for both would
    // make a dependency cycle. The waiter state machine does not log: each of its steps invokes a
    // framework function whose log records the request and the answer, and Step Functions log
    // delivery would need logs permissions on `*`.
    const frameworkLogs = logGroup('ProviderLogs');
    const frameworkRole = (logicalId: string, description: string): iam.Role => {
      const role = new iam.Role(this, logicalId, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description });
      frameworkLogs.grantWrite(role);
      return role;
    };
    const onEventRole = frameworkRole('ProviderOnEventRole', 'Cutover completion wait: custom resource framework (onEvent)');
    const waiterRole = frameworkRole('ProviderWaiterRole', 'Cutover completion wait: custom resource framework (isComplete, onTimeout)');
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: handler,
      isCompleteHandler: handler,
      queryInterval: COMPLETION_QUERY_INTERVAL,
      totalTimeout: this.timeout,
      logGroup: frameworkLogs,
      frameworkOnEventRole: onEventRole,
      frameworkCompleteAndTimeoutRole: waiterRole,
    });

    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::CutoverCompletionWait',
      // How long CloudFormation itself waits for an answer: the timeout and two more query
      // intervals, capped at its 3600 s limit. Cutover's own timeout message comes a minute before
      // the timeout (lambda/aws/completion-wait.ts, DEADLINE_MARGIN_MS), so it always arrives first.
      serviceTimeout: Duration.seconds(Math.min(MAX_COMPLETION_WAIT.toSeconds(), this.timeout.toSeconds() + 2 * COMPLETION_QUERY_INTERVAL.toSeconds())),
      properties: {
        RecordedMigrationId: props.deployTrigger.getAttString('MigrationId'),
        ExpectedMigrationId: props.migrationId,
        TimeoutSeconds: String(this.timeout.toSeconds()),
      },
    });
    // The handler must be able to read the record before the first isComplete.
    this.resource.node.addDependency(handlerRole);

    acknowledgeFrameworkFindings(this, handler, [onEventRole, waiterRole], provider);
  }
}

/** A Duration from this app's or another copy of aws-cdk-lib (`instanceof` fails across copies). */
function isDuration(value: unknown): value is Duration {
  const d = value as Partial<Duration> | null | undefined;
  return typeof d?.toSeconds === 'function' && typeof d.toMinutes === 'function' && typeof d.toHumanString === 'function' && typeof d.isUnresolved === 'function';
}

function checkedTimeout(scope: Construct, timeout: unknown, plan: TrafficShiftPlan | undefined): Duration {
  const fix = `give waitForCompletion a whole number of minutes from ${MIN_COMPLETION_WAIT.toMinutes()} to ${MAX_COMPLETION_WAIT.toMinutes()}, e.g. Duration.minutes(30)`;
  if (!isDuration(timeout)) throw new CutoverValidationError(`waitForCompletion must be a Duration, got ${show(timeout)}: ${fix}`, scope);
  if (timeout.isUnresolved() || Token.isUnresolved(timeout.toHumanString())) {
    throw new CutoverValidationError(`waitForCompletion must be known at synth (it sets the Provider's retries), got a token: ${fix}`, scope);
  }
  const seconds = timeout.toSeconds({ integral: false });
  if (!(seconds % 60 === 0 && seconds >= MIN_COMPLETION_WAIT.toSeconds())) {
    throw new CutoverValidationError(`waitForCompletion is ${timeout.toHumanString()}: ${fix} (a migration takes several one-minute controller ticks even with the shortest plan)`, scope);
  }
  if (seconds > MAX_COMPLETION_WAIT.toSeconds()) {
    throw new CutoverValidationError(
      `waitForCompletion is ${timeout.toHumanString()}, longer than CloudFormation waits for a custom resource (1 hour, its ServiceTimeout limit): ${fix}, ` +
        'or leave it unset and have the pipeline poll `cutover status <migration>` after the deploy',
      scope,
    );
  }
  if (plan !== undefined && seconds * 1000 < plan.minimumDuration.toMilliseconds()) {
    const minimum = plan.minimumDuration.toHumanString();
    throw new CutoverValidationError(
      plan.minimumDuration.toSeconds() > MAX_COMPLETION_WAIT.toSeconds()
        ? `waitForCompletion cannot cover this plan: it takes at least ${minimum} (${plan.describe()}), and a deploy can wait at most 1 hour. Shorten the plan, or leave waitForCompletion unset and have the pipeline poll \`cutover status <migration>\``
        : `waitForCompletion is ${timeout.toHumanString()}, shorter than the plan's minimum duration of ${minimum} (${plan.describe()}): every deploy would time out. Raise it to at least ${Math.ceil(plan.minimumDuration.toSeconds() / 60)} minutes plus a margin for holds, or shorten the plan`,
      scope,
    );
  }
  return Duration.seconds(seconds);
}

/** cdk-nag (AwsSolutions) findings that are part of the Provider framework's design, each with its reason. */
function acknowledgeFrameworkFindings(scope: Construct, handler: lambda.Function, frameworkRoles: readonly iam.Role[], provider: cr.Provider): void {
  Validations.of(handler).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'The handler contract pins Node.js 22 (Runtime.NODEJS_22_X): the handlers, Powertools and the SDK client versions are tested on that line. Moving to a newer runtime is a deliberate upgrade, not a lint fix.',
  });
  for (const role of frameworkRoles) {
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[${nagResourceFinding(scope, `${handler.functionArn}:*`)}]`,
      reason: "The custom resource Provider framework grants itself invoke on the wait handler's qualifiers (aws-cdk's grantInvoke); it is that one function only.",
    });
  }
  // The waiter state machine is the Provider's own construct: its role and its settings are not
  // props of the Provider, so its findings are acknowledged on it directly. Looked up by the ids
  // aws-cdk gives them; an aws-cdk-lib that renamed them leaves the findings for cdk-nag to show,
  // rather than failing the user's synth.
  const waiter = provider.node.tryFindChild('waiter-state-machine');
  if (!waiter) return;
  const waiterRole = waiter.node.tryFindChild('Role');
  for (const name of ['isComplete', 'onTimeout']) {
    const fn = provider.node.tryFindChild(`framework-${name}`) as lambda.IFunction | undefined;
    if (!waiterRole || !fn) continue;
    Validations.of(waiterRole).acknowledge({
      id: `AwsSolutions-IAM5[${nagResourceFinding(scope, `${fn.functionArn}:*`)}]`,
      reason: `The Provider's waiter state machine grants itself invoke on its own framework-${name} function's qualifiers (aws-cdk's grantInvoke); it is that one function only.`,
    });
  }
  Validations.of(waiter).acknowledge({
    id: 'AwsSolutions-SF1',
    reason:
      "Each step of the Provider's waiter invokes a framework function whose log (ProviderLogs) records the request and the handler's answer; the state machine's own log would repeat it and need log-delivery permissions on `*`.",
  });
  Validations.of(waiter).acknowledge({
    id: 'AwsSolutions-SF2',
    reason:
      "The Provider's waiter state machine offers no tracing setting, and it only retries one function call every 30 seconds: X-Ray would show nothing its framework log does not.",
  });
}
