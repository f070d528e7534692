import { Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GATEWAY_ACCOUNT_LOGGING_CONTEXT, CutoverDemoStack, DEMO_APP_METRICS_NAMESPACE } from '../../lib/demo-stack';
import { logicalId, testApp, removeTestOutputs } from './fixtures';

function demo(props: ConstructorParameters<typeof CutoverDemoStack>[2] = {}) {
  const app = testApp();
  const stack = new CutoverDemoStack(app, 'Demo', props);
  return { stack, template: Template.fromStack(stack) };
}

/** The integration URI of every method of one RestApi, as JSON text. */
function integrationUris(template: Template, apiLogicalId: string): string[] {
  const methods = template.findResources('AWS::ApiGateway::Method', { Properties: { RestApiId: { Ref: apiLogicalId } } });
  return Object.values(methods).map((m: any) => JSON.stringify(m.Properties.Integration.Uri));
}


afterAll(removeTestOutputs);

describe('CutoverDemoStack', () => {
  let stack: CutoverDemoStack;
  let template: Template;
  let ids: { fn: string; version: string; trigger: string; api: string; probeNew: string; probeOld: string; lookup: string };

  beforeAll(() => {
    ({ stack, template } = demo());
    ids = {
      fn: Object.keys(template.findResources('AWS::Lambda::Function', { Properties: { Description: 'Cutover demo API, release 1' } }))[0]!,
      version: Object.keys(template.findResources('AWS::Lambda::Version'))[0]!,
      trigger: logicalId(stack, stack.migration.deployTrigger),
      api: logicalId(stack, stack.api),
      probeNew: logicalId(stack, stack.probeNewApi),
      probeOld: logicalId(stack, stack.probeOldApi),
      lookup: Object.keys(template.findResources('Custom::AWS'))[0]!,
    };
  });

  it('should publish the demo function as a retained version on Node 22 with the app metrics namespace', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Cutover demo API, release 1',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Environment: {
        Variables: {
          CUTOVER_APP_METRICS_NAMESPACE: DEMO_APP_METRICS_NAMESPACE,
          CUTOVER_DEMO_RELEASE: '1',
          DEMO_FAULT_5XX_RATE: '0',
          NODE_OPTIONS: '--enable-source-maps',
        },
      },
    });
    template.hasResource('AWS::Lambda::Version', {
      DeletionPolicy: 'Retain',
      Properties: { FunctionName: { Ref: ids.fn } },
    });
    template.resourceCountIs('AWS::Lambda::Alias', 0);
  });

  it('should integrate the public API with the live alias and the probe APIs with one version each', () => {
    template.resourceCountIs('AWS::ApiGateway::RestApi', 3);
    const alias = integrationUris(template, ids.api);
    expect(alias).toHaveLength(2); // root and {proxy+}
    for (const uri of alias) expect(uri).toContain(`{"Fn::GetAtt":["${ids.fn}","Arn"]},":live/invocations"`);
    for (const uri of integrationUris(template, ids.probeNew)) expect(uri).toContain(`{"Ref":"${ids.version}"},"/invocations"`);
    for (const uri of integrationUris(template, ids.probeOld)) {
      expect(uri).toContain(`{"Fn::GetAtt":["${ids.fn}","Arn"]},":",{"Fn::GetAtt":["${ids.lookup}","FunctionVersion"]},"/invocations"`);
    }
  });

  it('should allow the public API to invoke the alias qualifier only after the trigger created the alias', () => {
    const permissions = template.findResources('AWS::Lambda::Permission', {
      Properties: { FunctionName: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [ids.fn, 'Arn'] }, ':live']] }, Principal: 'apigateway.amazonaws.com' },
    });
    expect(Object.keys(permissions)).toHaveLength(1);
    const permission = Object.values(permissions)[0]!;
    expect(permission.DependsOn).toContain(ids.trigger);
    expect(JSON.stringify(permission.Properties.SourceArn)).toContain(ids.api);
  });

  it('should read the old version after the deploy trigger, with GetAlias only', () => {
    template.hasResource('Custom::AWS', { DependsOn: Match.arrayWith([ids.trigger]) });
    // The SDK call is a JSON string with tokens in it (a Fn::Join): check its text.
    const call = JSON.stringify(template.toJSON().Resources[ids.lookup].Properties.Create);
    expect(call).toContain('\\"service\\":\\"Lambda\\"');
    expect(call).toContain('\\"action\\":\\"GetAlias\\"');
    expect(call).toContain('\\"outputPaths\\":[\\"FunctionVersion\\"]');
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('OldVersionLookup') } });
    const actions = Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Action].flat()));
    expect(actions.filter((a) => a.startsWith('lambda:'))).toEqual(['lambda:GetAlias']);
  });

  it('should log every API stage to its access log with throttling, and set no account-level logging role by default', () => {
    // AWS::ApiGateway::Account is a region-wide singleton (it would replace another stack's role):
    // opt-in only. Without it there is no execution logging.
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    expect(Object.keys(template.findResources('AWS::IAM::Role', { Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })] } } }))).toEqual([]);
    template.resourceCountIs('AWS::ApiGateway::Stage', 3);
    template.allResourcesProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [Match.objectLike({ LoggingLevel: 'OFF', DataTraceEnabled: false, ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 })],
    });
    for (const stage of Object.values(template.findResources('AWS::ApiGateway::Stage'))) expect(stage.DependsOn ?? []).not.toContain('ApiGatewayAccount');
  });

  it('should set the account-level logging role, retained, and log executions with cutover:apiGatewayAccountLogging=true', () => {
    const app = testApp({ [API_GATEWAY_ACCOUNT_LOGGING_CONTEXT]: 'true' });
    const logging = Template.fromStack(new CutoverDemoStack(app, 'Demo'));
    logging.resourceCountIs('AWS::ApiGateway::Account', 1);
    logging.hasResource('AWS::ApiGateway::Account', { DeletionPolicy: 'Retain', Properties: { CloudWatchRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ApiGatewayLogsRole'), 'Arn'] } } });
    logging.hasResource('AWS::IAM::Role', {
      DeletionPolicy: 'Retain',
      Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })] } },
    });
    logging.allResourcesProperties('AWS::ApiGateway::Stage', {
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [Match.objectLike({ LoggingLevel: 'ERROR', DataTraceEnabled: false })],
    });
    for (const stage of Object.values(logging.findResources('AWS::ApiGateway::Stage'))) expect(stage.DependsOn).toContain('ApiGatewayAccount');
    // The prop wins over the context.
    const off = Template.fromStack(new CutoverDemoStack(testApp({ [API_GATEWAY_ACCOUNT_LOGGING_CONTEXT]: 'true' }), 'Demo', { apiGatewayAccountLogging: false }));
    off.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  it('should leave no unacknowledged cdk-nag finding with the account-level logging role either', () => {
    const app = testApp({ [API_GATEWAY_ACCOUNT_LOGGING_CONTEXT]: true });
    new CutoverDemoStack(app, 'Demo');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${'constructPath' in r ? r.constructPath : r.resourceLogicalId}`))).toEqual([]);
  });

  it('should start the probe gate only once the new version\'s probe API has its stage and its invoke permission', () => {
    const trigger = template.toJSON().Resources[ids.trigger];
    const stage = Object.keys(template.findResources('AWS::ApiGateway::Stage', { Properties: { RestApiId: { Ref: ids.probeNew } } }));
    expect(stage).toHaveLength(1);
    const permissions = Object.keys(
      template.findResources('AWS::Lambda::Permission', { Properties: { FunctionName: { Ref: ids.version }, Principal: 'apigateway.amazonaws.com' } }),
    );
    expect(permissions).toHaveLength(1);
    expect(trigger.DependsOn).toEqual(expect.arrayContaining([...stage, ...permissions]));
  });

  it('should probe /health on both per-version APIs', () => {
    // The migration's probe settings, which the shared probe reads from the registry.
    const trigger = Object.values(template.findResources('Custom::CutoverDeployTrigger'))[0]!;
    const env = trigger.Properties.Settings;
    expect(env.CUTOVER_PROBE_PATH).toBe('/health');
    const targets = JSON.stringify(env.CUTOVER_PROBE_TARGETS);
    expect(targets).toContain(`{"Ref":"${ids.probeNew}"}`);
    expect(targets).toContain(`{"Ref":"${ids.probeOld}"}`);
    expect(targets).toContain('\\"side\\":\\"new\\"');
    expect(targets).toContain('\\"side\\":\\"old\\"');
    expect(targets).toContain('/prod/');
  });

  it('should roll back on an alarm on the new version 5XX count', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: DEMO_APP_METRICS_NAMESPACE,
      MetricName: 'Errors5xx',
      Dimensions: Match.arrayWith([{ Name: 'Version', Value: { 'Fn::GetAtt': [ids.version, 'Version'] } }]),
      TreatMissingData: 'notBreaching',
    });
    expect(stack.migration.alarms).toHaveLength(1);
  });

  it('should output the URLs, the controller, the topic, the table and the dashboard', () => {
    const outputs = Object.keys(template.toJSON().Outputs);
    expect(outputs).toEqual(
      expect.arrayContaining(['ApiUrl', 'ProbeNewUrl', 'ProbeOldUrl', 'ControllerFunctionName', 'TopicArn', 'TableName', 'DashboardName']),
    );
  });

  it('should publish a new version and redeploy the old-side probe API when the release changes', () => {
    const next = demo({ release: '2', faultRate: 0.25 }).template;
    const versionOf = (t: Template) => Object.keys(t.findResources('AWS::Lambda::Version'))[0];
    const oldProbeDeploymentOf = (t: Template) =>
      Object.keys(t.findResources('AWS::ApiGateway::Deployment', { Properties: { RestApiId: { Ref: ids.probeOld } } }))[0];
    expect(versionOf(next)).not.toBe(versionOf(template));
    expect(oldProbeDeploymentOf(next)).not.toBe(oldProbeDeploymentOf(template));
    next.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ CUTOVER_DEMO_RELEASE: '2', DEMO_FAULT_5XX_RATE: '0.25' }) },
    });
  });

  it('fails when the fault rate, the release label or the logging context key is invalid', () => {
    expect(() => new CutoverDemoStack(testApp(), 'Bad', { faultRate: 2 })).toThrow(/faultRate must be a number from 0 to 1, got 2/);
    expect(() => new CutoverDemoStack(testApp(), 'Bad', { release: 'v 2' })).toThrow(/release must be .* got "v 2"/);
    expect(() => new CutoverDemoStack(testApp({ [API_GATEWAY_ACCOUNT_LOGGING_CONTEXT]: 'yes' }), 'Bad')).toThrow(
      /^Bad: context cutover:apiGatewayAccountLogging must be true or false, got "yes"$/,
    );
  });
});
