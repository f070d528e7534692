#!/usr/bin/env node
/**
 * A CDK app that adopts Cutover from its package, as any application would: one function, reached
 * through a REST API, an HTTP API and a function URL, all on the alias Cutover migrates, with a
 * plan and health rules built from this app's own `Duration`s.
 *
 *   npx cdk synth                            # offline: no account, region or network needed
 *   npx cdk deploy                           # first deploy: creates the alias on version 1
 *   npx cdk deploy -c greeting='hello v2'    # publishes version 2 and starts a migration
 */
import { App, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigatewayv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { CanaryMigration, HealthCheck, TeardownPolicy, TrafficShiftPlan } from 'cutover';

interface GreetingStackProps extends StackProps {
  /** What the function answers; changing it publishes a new version, which starts a migration. */
  readonly greeting: string;
}

class GreetingStack extends Stack {
  constructor(scope: Construct, id: string, props: GreetingStackProps) {
    super(scope, id, props);

    // Inline code keeps the example free of a bundler; any lambda.Function works the same way.
    const fn = new lambda.Function(this, 'Greeting', {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(
        `exports.handler = async () => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(`${props.greeting}\n`)} });`,
      ),
    });

    const errors = new cloudwatch.Alarm(this, 'GreetingErrors', {
      metric: fn.metricErrors({ period: Duration.minutes(1) }),
      threshold: 5,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: 'More than 5 errors in a minute: Cutover rolls the migration back',
    });

    // The plan and the health rules take this app's own Durations: aws-cdk-lib is a peer
    // dependency of Cutover, so there is one copy of it and they are Durations to Cutover too.
    const migration = new CanaryMigration(this, 'Cutover', {
      function: fn,
      aliasName: 'live',
      version: fn.currentVersion,
      plan: TrafficShiftPlan.steps(
        [
          { weight: 5, bake: Duration.minutes(4) },
          { weight: 25, bake: Duration.minutes(4) },
          { weight: 100, bake: Duration.minutes(2) },
        ],
        { soak: Duration.minutes(15), healthWindow: Duration.minutes(2), teardown: TeardownPolicy.AFTER_SOAK },
      ),
      healthCheck: HealthCheck.custom({ maxHold: Duration.minutes(20), latencyMargin: Duration.millis(80) }),
      alarms: [errors],
    });

    // Every client reaches the function through `migration.alias`: the invoke permissions and the
    // function URL wait for the deploy trigger, which creates the alias on the first deploy.
    const restApi = new apigateway.LambdaRestApi(this, 'RestApi', {
      handler: migration.alias,
      description: 'Greeting REST API on the migrated alias',
    });
    const httpApi = new apigatewayv2.HttpApi(this, 'HttpApi', {
      defaultIntegration: new HttpLambdaIntegration('Greeting', migration.alias),
    });
    const url = migration.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });

    new CfnOutput(this, 'RestApiUrl', { value: restApi.url });
    new CfnOutput(this, 'HttpApiUrl', { value: httpApi.apiEndpoint });
    new CfnOutput(this, 'FunctionUrl', { value: url.url });
    // `npx cutover list --table <MigrationTable>` and the other operator commands read it.
    new CfnOutput(this, 'MigrationTable', { value: migration.table.tableName });
  }
}

const app = new App();
const greeting: unknown = app.node.tryGetContext('greeting');
// Account and region from the CLI profile when set; synth works offline without them.
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;
new GreetingStack(app, 'CutoverExample', {
  greeting: typeof greeting === 'string' && greeting !== '' ? greeting : 'hello',
  env: { ...(account ? { account } : {}), ...(region ? { region } : {}) },
});
