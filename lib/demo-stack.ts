/**
 * `CutoverDemoStack`: a whole migration in an empty account with `cdk deploy`.
 *
 * - A demo REST function (`lambda/demo/api.ts`) with a published version per deploy.
 * - A public REST API (API Gateway → the function's `live` alias): the traffic being migrated.
 * - Two probe APIs that reach one version each, so the Keep-Alive probe compares old and new:
 *   `ProbeNewApi` → `function:<name>:<this deploy's version>`, `ProbeOldApi` → `function:<name>:<the
 *   version the alias pointed at when the deploy started>` (read with `GetAlias` right after the
 *   deploy trigger ran, so it is the real old side, or the only version on the first deploy).
 * - A `CanaryMigration` wired to all of it, plus an alarm on the new version's 5XX count.
 * - Access logs on every stage. The region-wide API Gateway logging role (`AWS::ApiGateway::Account`)
 *   and execution logging only with `cutover:apiGatewayAccountLogging=true`.
 *
 * Deploy once (creates the alias on version 1), then deploy again with `-c cutover:release=2` (any
 * new value publishes a new version) and watch the migration on the dashboard.
 */
import { CfnOutput, Duration, Lazy, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { CanaryMigration } from './canary-migration';
import { CutoverValidationError, show } from './errors';
import { HealthCheck } from './health-check';
import { AppMetric } from './metrics';
import { TeardownPolicy, TrafficShiftPlan } from './plan';
import { cutoverFunction } from './function-defaults';

/** Props of `CutoverDemoStack`. */
export interface CutoverDemoStackProps extends StackProps {
  /**
   * Label of the demo function's release. It is part of the function's configuration, so a new
   * value publishes a new version and the next deploy migrates to it.
   * @default '1'
   */
  readonly release?: string;
  /**
   * Share of demo API requests (0–1) the new release answers with 503, to watch a rollback.
   * @default 0
   */
  readonly faultRate?: number;
  /**
   * Provisioned concurrency pinned on the old version during a migration. Needs unreserved account
   * concurrency (new accounts often have too little), and costs money while pinned.
   * @default 0
   */
  readonly oldCapacity?: number;
  /**
   * Email address subscribed to the migration's notifications (rollbacks, pauses, promotions).
   * @default - no subscription
   */
  readonly notificationEmail?: string;
  /**
   * Set the region's API Gateway CloudWatch Logs role (`AWS::ApiGateway::Account`, retained on
   * deletion) and turn on execution logging (level ERROR) on the three stages. It is a region-wide
   * singleton: it replaces whatever role another stack or a person set there. Without it, the
   * stages keep their access logs and log no executions.
   * @default - the context key `cutover:apiGatewayAccountLogging` (`true` or `false`), else false
   */
  readonly apiGatewayAccountLogging?: boolean;
}

/** Name of the alias the public API calls. */
export const DEMO_ALIAS_NAME = 'live';
/** Stage of the three demo APIs. */
export const DEMO_STAGE_NAME = 'prod';
/** The demo function publishes its request metrics here. */
export const DEMO_APP_METRICS_NAMESPACE = 'CutoverDemo';
/** Context key that turns on the account-level API Gateway logging role (`-c cutover:apiGatewayAccountLogging=true`). */
export const API_GATEWAY_ACCOUNT_LOGGING_CONTEXT = 'cutover:apiGatewayAccountLogging';

/** The demo: a REST API on a Lambda alias, migrated by `CanaryMigration` on every new release. */
export class CutoverDemoStack extends Stack {
  /** The migration (its dashboard, topic and controller). */
  public readonly migration: CanaryMigration;
  /** The public API (through the weighted alias). */
  public readonly api: apigateway.RestApi;
  /** API that reaches only this deploy's version. */
  public readonly probeNewApi: apigateway.RestApi;
  /** API that reaches only the version the alias pointed at when the deploy started. */
  public readonly probeOldApi: apigateway.RestApi;

  constructor(scope: Construct, id: string, props: CutoverDemoStackProps = {}) {
    super(scope, id, props);
    const release = props.release ?? '1';
    const faultRate = props.faultRate ?? 0;
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(release)) {
      throw new CutoverValidationError(`release must be 1–64 of [A-Za-z0-9._-], got ${show(release)}`, this);
    }
    if (!(typeof faultRate === 'number' && faultRate >= 0 && faultRate <= 1)) {
      throw new CutoverValidationError(`faultRate must be a number from 0 to 1, got ${show(faultRate)}`, this);
    }
    const accountLogging = props.apiGatewayAccountLogging ?? booleanContext(this, API_GATEWAY_ACCOUNT_LOGGING_CONTEXT);

    // --- The demo function and its version ------------------------------------------------------
    const logGroup = new logs.LogGroup(this, 'DemoApiLogs', {
      retention: logs.RetentionDays.ONE_WEEK,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'DemoApiRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Cutover demo API function: writes its own logs (and EMF metrics through them)',
    });
    logGroup.grantWrite(role);
    const fn = cutoverFunction(this, 'DemoApi', 'demo-api', {
      timeout: Duration.seconds(10),
      description: `Cutover demo API, release ${release}`,
      role,
      logGroup,
      environment: {
        CUTOVER_APP_METRICS_NAMESPACE: DEMO_APP_METRICS_NAMESPACE,
        CUTOVER_DEMO_RELEASE: release,
        DEMO_FAULT_5XX_RATE: String(faultRate),
      },
      // Old versions must outlive the template that created them: the alias may still point at
      // one, and a rollback needs it. CloudFormation keeps a retained version when a new one replaces it.
      currentVersionOptions: { removalPolicy: RemovalPolicy.RETAIN, description: `release ${release}` },
    });
    const version = fn.currentVersion;
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'The demo handler is written and tested for Node.js 22, like the Cutover handlers (see CanaryMigration).',
    });

    // --- Account-wide API Gateway logging role (opt-in) --------------------------------------------
    // API Gateway writes a REST stage's CloudWatch logs through one role per account and region,
    // set by `AWS::ApiGateway::Account`. That is a region-wide singleton: it replaces the role any
    // other stack or person set, and its first creation may fail while IAM propagates the new role.
    // So the demo sets it only when asked (`cutover:apiGatewayAccountLogging=true`), and only then
    // turns on execution logging; the role and the setting are retained when the stack is deleted.
    let apiGatewayAccount: apigateway.CfnAccount | undefined;
    if (accountLogging) {
      const apiGatewayLogsRole = new iam.Role(this, 'ApiGatewayLogsRole', {
        assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
        description: 'Lets API Gateway write access and execution logs to CloudWatch Logs',
        managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
      });
      apiGatewayLogsRole.applyRemovalPolicy(RemovalPolicy.RETAIN);
      apiGatewayAccount = new apigateway.CfnAccount(this, 'ApiGatewayAccount', {
        cloudWatchRoleArn: apiGatewayLogsRole.roleArn,
      });
      apiGatewayAccount.applyRemovalPolicy(RemovalPolicy.RETAIN);
      Validations.of(apiGatewayLogsRole).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          'AmazonAPIGatewayPushToCloudWatchLogs is the AWS managed policy documented for the account-level API Gateway logging role; ' +
          'API Gateway creates the execution log groups itself (named after API ids unknown here), so an inline policy could not be narrower.',
      });
    }

    const makeApi = (logicalId: string, handler: lambda.IFunction, description: string) => {
      const accessLogs = new logs.LogGroup(this, `${logicalId}AccessLogs`, {
        retention: logs.RetentionDays.ONE_WEEK,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const api = new apigateway.RestApi(this, logicalId, {
        description,
        endpointTypes: [apigateway.EndpointType.REGIONAL],
        cloudWatchRole: false,
        deployOptions: {
          stageName: DEMO_STAGE_NAME,
          accessLogDestination: new apigateway.LogGroupLogDestination(accessLogs),
          accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
          loggingLevel: accountLogging ? apigateway.MethodLoggingLevel.ERROR : apigateway.MethodLoggingLevel.OFF,
          dataTraceEnabled: false,
          metricsEnabled: true,
          // A public demo: cap what a stranger can make it cost.
          throttlingRateLimit: 50,
          throttlingBurstLimit: 100,
        },
      });
      if (apiGatewayAccount) api.deploymentStage.node.addDependency(apiGatewayAccount);
      // One permission for the whole API (root and proxy), scoped to this API's execute-api ARN.
      const integration = new apigateway.LambdaIntegration(handler, { scopePermissionToMethod: false });
      api.root.addMethod('ANY', integration);
      api.root.addProxy({ defaultIntegration: integration, anyMethod: true });
      acknowledgePublicDemoApi(api, accountLogging);
      return api;
    };

    // The probe reaches the new version through its own API (integrated with `fn:<version>`).
    this.probeNewApi = makeApi('ProbeNewApi', version, 'Cutover demo: reaches only the version this deploy migrates to');

    // --- The migration --------------------------------------------------------------------------
    // The old-side probe API is built after the migration (it reads the alias once the deploy trigger
    // ran), so its URL is resolved at synth. It is made from the RestApi id alone, not the stage:
    // the migration's settings (in the deploy trigger's properties) carry it, and the stage depends
    // on the trigger.
    const probeOldUrl = Lazy.string({ produce: () => stageUrl(this, this.probeOldApi) });
    this.migration = new CanaryMigration(this, 'Cutover', {
      function: fn,
      aliasName: DEMO_ALIAS_NAME,
      version,
      // Short steps so that one demo run takes about 20 minutes.
      plan: TrafficShiftPlan.steps(
        [
          { weight: 10, bake: Duration.minutes(3) },
          { weight: 50, bake: Duration.minutes(3) },
          { weight: 100, bake: Duration.minutes(3) },
        ],
        { soak: Duration.minutes(5), teardown: TeardownPolicy.AFTER_SOAK },
      ),
      // Demo traffic comes from a shell loop, not from real users: 20 requests per step are enough
      // to judge, and a step without traffic pauses after 15 minutes instead of 30.
      healthCheck: HealthCheck.custom({ minRequests: 20, maxHold: Duration.minutes(15) }),
      appMetricsNamespace: DEMO_APP_METRICS_NAMESPACE,
      oldCapacity: props.oldCapacity ?? 0,
      probeTargets: { newUrl: stageUrl(this, this.probeNewApi), oldUrl: probeOldUrl },
      probePath: '/health',
      removalPolicy: RemovalPolicy.DESTROY,
      logRetention: logs.RetentionDays.ONE_WEEK,
    });
    if (props.notificationEmail !== undefined) {
      this.migration.topic.addSubscription(new subscriptions.EmailSubscription(props.notificationEmail));
    }
    // The controller's gate probes the new version through ProbeNewApi as soon as the trigger starts
    // a migration: its stage and its invoke permission on the version must exist by then.
    this.migration.deployTrigger.node.addDependency(this.probeNewApi);

    // An alarm on the new version's own 5XX answers: entering ALARM rolls back at once, without
    // waiting for the judge's statistics.
    const newVersion5xx = new cloudwatch.Alarm(this, 'NewVersion5xxAlarm', {
      alarmDescription: 'Cutover demo: the version being migrated to answers 5XX',
      metric: this.migration.metricApp(AppMetric.ERRORS_5XX, version.version, { period: Duration.minutes(1) }),
      threshold: 10,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.migration.addAlarm(newVersion5xx);

    // --- The public API on the alias -------------------------------------------------------------
    // The alias is not a resource of this stack (so CloudFormation never resets its weights): the
    // deploy trigger creates it on the first deploy. `migration.alias` orders the invoke permission
    // that LambdaIntegration adds on the alias qualifier after the trigger.
    this.api = makeApi('Api', this.migration.alias, `Cutover demo API: traffic through alias ${DEMO_ALIAS_NAME}, migrated by Cutover`);

    // --- The old side for the probe ---------------------------------------------------------------
    // Read after the deploy trigger ran: the alias then exists (created on the first deploy, so old =
    // new = the only version) and its main version is the one the migration moves away from. The
    // version in the physical id makes every new version an Update, so the lookup runs again.
    const lookupLogs = new logs.LogGroup(this, 'OldVersionLookupLogs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    // Its own role (no AWSLambdaBasicExecutionRole): its log group, plus the GetAlias statement below.
    const lookupRole = new iam.Role(this, 'OldVersionLookupRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Cutover demo: reads which version the live alias points at',
    });
    lookupLogs.grantWrite(lookupRole);
    const oldVersionLookup = new cr.AwsCustomResource(this, 'OldVersionLookup', {
      onUpdate: {
        service: 'Lambda',
        action: 'GetAlias',
        parameters: { FunctionName: fn.functionName, Name: DEMO_ALIAS_NAME },
        physicalResourceId: cr.PhysicalResourceId.of(`${DEMO_ALIAS_NAME}@${version.version}`),
        outputPaths: ['FunctionVersion'],
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ['lambda:GetAlias'], resources: [fn.functionArn, `${fn.functionArn}:${DEMO_ALIAS_NAME}`] }),
      ]),
      installLatestAwsSdk: false,
      logGroup: lookupLogs,
      role: lookupRole,
    });
    oldVersionLookup.node.addDependency(this.migration.deployTrigger);
    const oldVersion = lambda.Function.fromFunctionAttributes(this, 'OldVersion', {
      functionArn: `${fn.functionArn}:${oldVersionLookup.getResponseField('FunctionVersion')}`,
      sameEnvironment: true,
    });
    this.probeOldApi = makeApi('ProbeOldApi', oldVersion, 'Cutover demo: reaches only the version the alias pointed at when the deploy started');
    // The integration URI is a lookup result, identical in the template from one deploy to the next:
    // tie the API deployment to the new version so that API Gateway redeploys the stage whenever the
    // old side may have changed.
    this.probeOldApi.latestDeployment?.addToLogicalId({ newVersion: version.version });

    new CfnOutput(this, 'ApiUrl', { value: stageUrl(this, this.api), description: 'Public API (through the alias)' });
    new CfnOutput(this, 'ProbeNewUrl', { value: stageUrl(this, this.probeNewApi), description: 'Reaches only the new version' });
    new CfnOutput(this, 'ProbeOldUrl', { value: stageUrl(this, this.probeOldApi), description: 'Reaches only the old version' });
    new CfnOutput(this, 'ControllerFunctionName', {
      value: this.migration.controllerFunction.functionName,
      description: 'Invoke with {"command":"pause|resume|abort|promote|teardown","reason":"..."}',
    });
    new CfnOutput(this, 'TopicArn', { value: this.migration.topic.topicArn, description: 'Rollbacks, pauses and promotions' });
    new CfnOutput(this, 'TableName', { value: this.migration.table.tableName, description: 'Migration state and history' });
    if (this.migration.dashboard) {
      new CfnOutput(this, 'DashboardName', { value: this.migration.dashboard.dashboardName, description: 'CloudWatch dashboard of the migration' });
    }
  }
}

/**
 * `https://<api id>.execute-api.<region>.<suffix>/prod/`, built from the RestApi id and the literal
 * stage name so that nothing referring to the URL depends on the stage resource.
 */
function stageUrl(stack: Stack, api: apigateway.IRestApi): string {
  return `https://${api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${DEMO_STAGE_NAME}/`;
}

/** A boolean context key (`-c key=true`, or `true` in cdk.json); absent means false. */
function booleanContext(scope: Stack, key: string): boolean {
  const value: unknown = scope.node.tryGetContext(key);
  if (value === undefined || value === null || value === '' || value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  throw new CutoverValidationError(`context ${key} must be true or false, got ${show(value)}`, scope);
}

/** The demo APIs are public on purpose; every finding that follows from that is acknowledged here with its reason. */
function acknowledgePublicDemoApi(api: apigateway.RestApi, executionLogging: boolean): void {
  if (!executionLogging) {
    Validations.of(api).acknowledge({
      id: 'AwsSolutions-APIG6',
      reason:
        `Execution logging needs the region-wide API Gateway CloudWatch Logs role, which the demo only sets with -c ${API_GATEWAY_ACCOUNT_LOGGING_CONTEXT}=true ` +
        '(it would replace a role another stack set); every request is still in the stage access logs.',
    });
  }
  Validations.of(api).acknowledge(
    {
      id: 'AwsSolutions-APIG2',
      reason:
        'Lambda proxy integration: the demo function validates its own requests, and the Keep-Alive probe deliberately sends malformed, oversized and wrong-method requests that must reach the function.',
    },
    {
      id: 'AwsSolutions-APIG3',
      reason: 'Demo API with stage throttling (50 rps, burst 100); a WAF web ACL would cost more than the whole demo.',
    },
    {
      id: 'AwsSolutions-APIG4',
      reason: 'Public demo API without secrets or user data; the probe must reach it without credentials (no secrets in environment variables).',
    },
    {
      id: 'AwsSolutions-COG4',
      reason: 'Public demo API: no Cognito user pool, see AwsSolutions-APIG4.',
    },
  );
}
