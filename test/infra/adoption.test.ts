/**
 * Adopting Cutover from your own CDK app (issue #11): `migration.alias` wherever an `IFunction` or
 * an `IAlias` is taken, with everything CloudFormation creates against the alias qualifier ordered
 * after the deploy trigger (which creates the alias on the first deploy), `migration.addFunctionUrl`,
 * and the synth-time errors for the mistakes a new user makes, each naming the fix.
 */
import { App, NestedStack, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryMigration } from '../../lib/canary-migration';
import { CutoverValidationError } from '../../lib/errors';
import { MigrationTarget } from '../../lib/targets/migration-target';
import { appStack, logicalId, removeTestOutputs, testApp } from './fixtures';

afterAll(removeTestOutputs);

const ENV = { account: '123456789012', region: 'eu-west-1' };

/** `<function ARN>:live` as the template has it. */
const liveArn = (fnId: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [fnId, 'Arn'] }, ':live']] });

function inlineFunction(stack: Stack, id: string): lambda.Function {
  return new lambda.Function(stack, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "ok" });'),
  });
}

/** Every resource of a type whose properties match, with its DependsOn. */
function resources(template: Template, type: string, props: Record<string, unknown> = {}): Array<{ id: string; DependsOn?: string[]; Properties: any }> {
  return Object.entries(template.findResources(type, { Properties: props })).map(([id, r]) => ({ id, ...(r as any) }));
}

describe('migration.alias', () => {
  let stack: Stack;
  let migration: CanaryMigration;
  let template: Template;
  let ids: { fn: string; trigger: string };
  let url: lambda.FunctionUrl;
  let caller: iam.Role;

  beforeAll(() => {
    const f = appStack('Adopt');
    stack = f.stack;
    migration = new CanaryMigration(stack, 'Cutover', { function: f.fn, aliasName: 'live', version: f.fn.currentVersion });
    // A REST API (two proxy methods), an HTTP API, a public function URL, a service grant, an
    // SQS event source and an async invoke configuration, all on the alias.
    new apigateway.LambdaRestApi(stack, 'Rest', { handler: migration.alias, cloudWatchRole: false });
    new apigwv2.HttpApi(stack, 'Http', { defaultIntegration: new HttpLambdaIntegration('Live', migration.alias) });
    url = migration.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    migration.alias.grantInvoke(new iam.ServicePrincipal('events.amazonaws.com'));
    caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    migration.alias.grantInvoke(caller);
    migration.alias.addEventSource(new SqsEventSource(new sqs.Queue(stack, 'Jobs', { enforceSSL: true })));
    migration.alias.configureAsyncInvoke({ retryAttempts: 1 });
    template = Template.fromStack(stack);
    ids = { fn: logicalId(stack, f.fn), trigger: logicalId(stack, migration.deployTrigger) };
  });

  it('should be the function:<name>:live alias of the migrated function, on the version this deploy migrates to', () => {
    expect(migration.alias.aliasName).toBe('live');
    expect(stack.resolve(migration.alias.functionArn)).toEqual(liveArn(ids.fn));
    expect(stack.resolve(migration.alias.functionName)).toEqual({ 'Fn::Join': ['', [{ Ref: ids.fn }, ':live']] });
    expect(stack.resolve(migration.alias.version.version)).toEqual(stack.resolve(migration.targetVersion));
    // Still no AWS::Lambda::Alias: the trigger owns the alias.
    template.resourceCountIs('AWS::Lambda::Alias', 0);
  });

  it('should let a LambdaRestApi invoke the alias qualifier only after the deploy trigger', () => {
    const integrations = resources(template, 'AWS::ApiGateway::Method').map((m) => JSON.stringify(m.Properties.Integration.Uri));
    expect(integrations).toHaveLength(2); // root and {proxy+}
    for (const uri of integrations) expect(uri).toContain(`{"Fn::GetAtt":["${ids.fn}","Arn"]},":live/invocations"`);
    const permissions = resources(template, 'AWS::Lambda::Permission', {
      FunctionName: liveArn(ids.fn),
      Principal: 'apigateway.amazonaws.com',
      SourceArn: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([{ Ref: logicalId(stack, stack.node.findChild('Rest') as apigateway.RestApi) }])] }),
    });
    expect(permissions).toHaveLength(4); // each method, and its console test invoke
    for (const p of permissions) expect(p.DependsOn, p.id).toContain(ids.trigger);
  });

  it('should let an HttpApi invoke the alias qualifier only after the deploy trigger', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationUri: liveArn(ids.fn), IntegrationType: 'AWS_PROXY' });
    const http = logicalId(stack, stack.node.findChild('Http') as apigwv2.HttpApi);
    const permissions = resources(template, 'AWS::Lambda::Permission', { FunctionName: liveArn(ids.fn), Principal: 'apigateway.amazonaws.com' }).filter((p) =>
      JSON.stringify(p.Properties.SourceArn).includes(http),
    );
    expect(permissions).toHaveLength(1);
    expect(permissions[0]!.DependsOn).toContain(ids.trigger);
  });

  it('should put a function URL on the alias qualifier, with its public permissions, after the deploy trigger', () => {
    const urls = resources(template, 'AWS::Lambda::Url');
    expect(urls).toHaveLength(1);
    expect(urls[0]!.Properties).toMatchObject({ TargetFunctionArn: { 'Fn::GetAtt': [ids.fn, 'Arn'] }, Qualifier: 'live', AuthType: 'NONE' });
    expect(urls[0]!.DependsOn).toContain(ids.trigger);
    expect(stack.resolve(url.url)).toEqual({ 'Fn::GetAtt': [urls[0]!.id, 'FunctionUrl'] });
    const invokeUrl = resources(template, 'AWS::Lambda::Permission', { FunctionName: liveArn(ids.fn), Action: 'lambda:InvokeFunctionUrl' });
    expect(invokeUrl).toHaveLength(1);
    expect(invokeUrl[0]!.Properties).toMatchObject({ Principal: '*', FunctionUrlAuthType: 'NONE' });
    const viaUrl = resources(template, 'AWS::Lambda::Permission', { FunctionName: liveArn(ids.fn), Action: 'lambda:InvokeFunction', InvokedViaFunctionUrl: true });
    expect(viaUrl).toHaveLength(1);
    for (const p of [...invokeUrl, ...viaUrl]) expect(p.DependsOn, p.id).toContain(ids.trigger);
    expect(() => migration.addFunctionUrl()).toThrow(/FunctionUrl/);
  });

  it('should grant a service through a permission after the deploy trigger, and a role through its own policy on the alias', () => {
    const events = resources(template, 'AWS::Lambda::Permission', { FunctionName: liveArn(ids.fn), Principal: 'events.amazonaws.com' });
    expect(events).toHaveLength(1);
    expect(events[0]!.DependsOn).toContain(ids.trigger);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalId(stack, caller) }],
      PolicyDocument: { Statement: [Match.objectLike({ Action: 'lambda:InvokeFunction', Resource: liveArn(ids.fn) })] },
    });
  });

  it('should map an event source to the alias and configure its async invokes after the deploy trigger', () => {
    const mappings = resources(template, 'AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    expect(mappings[0]!.Properties.FunctionName).toEqual({ 'Fn::Join': ['', [{ Ref: ids.fn }, ':live']] });
    expect(mappings[0]!.DependsOn).toContain(ids.trigger);
    const configs = resources(template, 'AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: ids.fn }, Qualifier: 'live' });
    expect(configs).toHaveLength(1);
    expect(configs[0]!.DependsOn).toContain(ids.trigger);
  });

  it('should measure the invocations through the alias', () => {
    const invocations = migration.alias.metricInvocations();
    expect(stack.resolve(invocations.dimensions)).toEqual({
      FunctionName: { Ref: ids.fn },
      Resource: { 'Fn::Join': ['', [{ Ref: ids.fn }, ':live']] },
    });
  });
});

describe('migration.alias in other set-ups', () => {
  it('should add the permissions in a stack without an account or region, where an imported ARN would add none', () => {
    const app = testApp();
    const stack = new Stack(app, 'Agnostic');
    const fn = inlineFunction(stack, 'Service');
    const migration = new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version: fn.currentVersion });
    new apigateway.LambdaRestApi(stack, 'Rest', { handler: migration.alias, cloudWatchRole: false });
    const permissions = resources(Template.fromStack(stack), 'AWS::Lambda::Permission', { FunctionName: liveArn(logicalId(stack, fn)) });
    expect(permissions).toHaveLength(4);
    for (const p of permissions) expect(p.DependsOn).toContain(logicalId(stack, migration.deployTrigger));
  });

  it('should accept the same function imported two ways (by name, and in a version ARN)', () => {
    const app = testApp();
    const stack = new Stack(app, 'Imported', { env: ENV });
    const fn = lambda.Function.fromFunctionName(stack, 'Orders', 'orders');
    const version = lambda.Version.fromVersionArn(stack, 'Version', 'arn:aws:lambda:eu-west-1:123456789012:function:orders:7');
    const migration = new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version });
    new apigateway.LambdaRestApi(stack, 'Rest', { handler: migration.alias, cloudWatchRole: false });
    const permissions = resources(Template.fromStack(stack), 'AWS::Lambda::Permission', { Principal: 'apigateway.amazonaws.com' });
    expect(permissions).toHaveLength(4);
    for (const p of permissions) {
      expect(JSON.stringify(p.Properties.FunctionName)).toContain(':function:orders:live');
      expect(p.DependsOn).toContain(logicalId(stack, migration.deployTrigger));
    }
  });

  it('should accept a version imported from the migrated function ARN', () => {
    const { stack, fn } = appStack('ByArn');
    const version = lambda.Version.fromVersionArn(stack, 'Version', `${fn.functionArn}:3`);
    expect(() => new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version })).not.toThrow();
  });

  it('fails with the reason when a fleet migration is asked for its alias', () => {
    const app = testApp();
    const stack = new Stack(app, 'Fleet', { env: ENV });
    const zone = route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: 'Z123', zoneName: 'example.com' });
    const alb = (id: string) =>
      elbv2.ApplicationLoadBalancer.fromApplicationLoadBalancerAttributes(stack, id, {
        loadBalancerArn: `arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/${id}/0123456789abcdef`,
        securityGroupId: 'sg-12345678',
        loadBalancerDnsName: `${id}.eu-west-1.elb.amazonaws.com`,
        loadBalancerCanonicalHostedZoneId: 'Z32O12XQLNTSW2',
      });
    const migration = new CanaryMigration(stack, 'Cutover', {
      target: MigrationTarget.dns({ zone, recordName: 'api', old: { loadBalancer: alb('old') }, new: { loadBalancer: alb('new') }, release: 'v2' }),
    });
    expect(() => migration.alias).toThrow(CutoverValidationError);
    expect(() => migration.alias).toThrow(/^Fleet\/Cutover: alias is only for Lambda alias migrations; this migration's target is "dns"/);
    expect(() => migration.alias).toThrow(/the DNS name: use migration\.record/);
    expect(() => migration.addFunctionUrl()).toThrow(/alias is only for Lambda alias migrations/);
  });

  it("should give a DNS migration's weighted name as migration.record, created after the deploy trigger", () => {
    const app = testApp();
    const stack = new Stack(app, 'Dns', { env: ENV });
    const zone = new route53.PublicHostedZone(stack, 'Zone', { zoneName: 'example.com' });
    const alb = (id: string) =>
      elbv2.ApplicationLoadBalancer.fromApplicationLoadBalancerAttributes(stack, id, {
        loadBalancerArn: `arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/${id}/0123456789abcdef`,
        securityGroupId: 'sg-12345678',
        loadBalancerDnsName: `${id}.eu-west-1.elb.amazonaws.com`,
        loadBalancerCanonicalHostedZoneId: 'Z32O12XQLNTSW2',
      });
    const migration = new CanaryMigration(stack, 'Cutover', {
      target: MigrationTarget.dns({ zone, recordName: 'api', recordType: 'A', old: { loadBalancer: alb('old') }, new: { loadBalancer: alb('new') }, release: 'v2' }),
    });
    expect(migration.record.domainName).toBe('api.example.com');
    expect(migration.record.recordType).toBe('A');
    new route53.ARecord(stack, 'Apex', { zone, target: route53.RecordTarget.fromAlias(migration.record) });
    const template = Template.fromStack(stack);
    const [triggerId] = Object.keys(template.findResources('Custom::CutoverDeployTrigger'));
    const apex = Object.values(template.findResources('AWS::Route53::RecordSet', { Properties: { Name: 'example.com.' } }))[0] as { DependsOn?: string[]; Properties: Record<string, unknown> };
    expect(apex.Properties.AliasTarget).toMatchObject({ DNSName: 'api.example.com' });
    expect(apex.DependsOn).toContain(triggerId);
  });

  it('fails with the handle that fits when a non-DNS migration is asked for its record', () => {
    const app = testApp();
    const stack = new Stack(app, 'NoRecord', { env: ENV });
    const fn = new lambda.Function(stack, 'Fn', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1') });
    const migration = new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version: fn.currentVersion });
    expect(() => migration.record).toThrow(/record is only for DNS migrations; this migration's target is "lambda-alias": use migration\.alias/);
  });
});

describe('synth-time errors a new user meets, each naming the fix', () => {
  it('fails when the version belongs to another function of the app, though both are tokens', () => {
    const { stack, fn } = appStack('OtherVersion');
    const other = inlineFunction(stack, 'Other');
    const fix = /; pass a version of the migrated function \(usually function\.currentVersion\), or migrate the function that version belongs to$/;
    expect(() => new CanaryMigration(stack, 'A', { function: fn, aliasName: 'live', version: other.currentVersion })).toThrow(
      /^OtherVersion\/A: version belongs to OtherVersion\/Other, not to the migrated function OtherVersion\/Service; pass a version/,
    );
    expect(() => new CanaryMigration(stack, 'B', { function: fn, aliasName: 'live', version: other.currentVersion })).toThrow(fix);
    // The same, imported through the other function's ARN token.
    const imported = lambda.Version.fromVersionArn(stack, 'Imported', `${other.functionArn}:3`);
    expect(() => new CanaryMigration(stack, 'C', { function: fn, aliasName: 'live', version: imported })).toThrow(
      /version belongs to OtherVersion\/Other, not to the migrated function OtherVersion\/Service/,
    );
    // Two imported functions with different names.
    const byName = lambda.Function.fromFunctionName(stack, 'Orders', 'orders');
    const payments = lambda.Version.fromVersionArn(stack, 'Payments', 'arn:aws:lambda:eu-west-1:123456789012:function:payments:4');
    expect(() => new CanaryMigration(stack, 'D', { function: byName, aliasName: 'live', version: payments })).toThrow(
      /version belongs to arn:aws:lambda:eu-west-1:123456789012:function:payments, not to the migrated function arn:aws:lambda:eu-west-1:123456789012:function:orders;/,
    );
  });

  it('fails when a second CanaryMigration migrates the same alias in the app', () => {
    const { stack, fn } = appStack('Twice');
    new CanaryMigration(stack, 'First', { function: fn, aliasName: 'live', version: fn.currentVersion });
    expect(() => new CanaryMigration(stack, 'Second', { function: fn, aliasName: 'live', version: fn.currentVersion })).toThrow(CutoverValidationError);
    expect(() => new CanaryMigration(stack, 'Third', { function: fn, aliasName: 'live', version: fn.currentVersion })).toThrow(
      /^Twice\/Third: alias "live" of function Twice\/Service is already migrated by Twice\/First: an alias takes one CanaryMigration .* Keep one CanaryMigration per alias and use its migration\.alias wherever the alias is needed, or give this one another aliasName$/,
    );
    // Another alias of the same function is another migration.
    expect(() => new CanaryMigration(stack, 'Staging', { function: fn, aliasName: 'staging', version: fn.currentVersion })).not.toThrow();
  });

  it('fails when two stacks of one app migrate the same alias of an imported function', () => {
    const app = testApp();
    const arn = 'arn:aws:lambda:eu-west-1:123456789012:function:orders';
    for (const id of ['One', 'Two']) {
      const stack = new Stack(app, id, { env: ENV });
      const fn = lambda.Function.fromFunctionArn(stack, 'Orders', arn);
      const version = lambda.Version.fromVersionArn(stack, 'Version', `${arn}:7`);
      const create = () => new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version });
      if (id === 'One') create();
      else expect(create).toThrow(/^Two\/Cutover: alias "live" of function arn:aws:lambda:eu-west-1:123456789012:function:orders is already migrated by One\/Cutover/);
    }
  });

  it('fails at synth when the function keeps an AWS::Lambda::Alias of the same name', () => {
    const { app, stack, fn } = appStack('KeptAlias');
    new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version: fn.currentVersion });
    // Added after the migration: found when the app is synthesized.
    fn.addAlias('live');
    expect(() => app.synth()).toThrow(CutoverValidationError);
    expect(() => Template.fromStack(stack)).toThrow(
      /^KeptAlias\/Cutover: function KeptAlias\/Service also has an AWS::Lambda::Alias named "live" \(KeptAlias\/Service\/Aliaslive\): CloudFormation would set the alias back to the template's version on every deploy, in the middle of a migration\. Remove it \(fn\.addAlias \/ new lambda\.Alias\) and use migration\.alias wherever it was used; to keep the alias that already exists in AWS, first deploy it with alias\.applyRemovalPolicy\(RemovalPolicy\.RETAIN\), then remove it from the code/,
    );
  });

  it('fails at synth for a lambda.Alias of the same name in another stack, and not for another alias name', () => {
    const app = testApp();
    const stack = new Stack(app, 'Service', { env: ENV });
    const fn = inlineFunction(stack, 'Api');
    new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'live', version: fn.currentVersion });
    new lambda.Alias(stack, 'Staging', { aliasName: 'staging', version: fn.currentVersion });
    expect(() => Template.fromStack(stack)).not.toThrow();

    const app2 = testApp();
    const stack2 = new Stack(app2, 'Service', { env: ENV });
    const fn2 = inlineFunction(stack2, 'Api');
    new CanaryMigration(stack2, 'Cutover', { function: fn2, aliasName: 'live', version: fn2.currentVersion });
    const elsewhere = new Stack(app2, 'Elsewhere', { env: ENV });
    new lambda.Alias(elsewhere, 'Live', { aliasName: 'live', version: fn2.currentVersion });
    expect(() => app2.synth()).toThrow(/function Service\/Api also has an AWS::Lambda::Alias named "live" \(Elsewhere\/Live\)/);
  });

  it('fails when the version is a resource of another stack, and accepts it by ARN', () => {
    const app = testApp();
    const functionStack = new Stack(app, 'Functions', { env: ENV });
    const fn = inlineFunction(functionStack, 'Api');
    const migrationStack = new Stack(app, 'Migrations', { env: ENV });
    expect(() => new CanaryMigration(migrationStack, 'Cutover', { function: fn, aliasName: 'live', version: fn.currentVersion })).toThrow(
      /^Migrations\/Cutover: version Functions\/Api\/CurrentVersion is a resource of stack Functions, the migration is in stack Migrations: Migrations would import it from an export of Functions, and CloudFormation cannot replace an exported value another stack imports, so the next release of the function \(a new version\) would fail to deploy\. Create the CanaryMigration in Functions, the function's stack, or pass the version by ARN \(version: lambda\.Version\.fromVersionArn\(this, 'Version', '<function ARN>:<version>'\)\), which exports nothing$/,
    );
    const byArn = lambda.Version.fromVersionArn(migrationStack, 'Version', 'arn:aws:lambda:eu-west-1:123456789012:function:api:3');
    expect(() => new CanaryMigration(migrationStack, 'ByArn', { function: fn, aliasName: 'live', version: byArn })).not.toThrow();
  });

  it('accepts a version in a nested stack of the migration stack (parameters, not exports)', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const parent = new Stack(app, 'Parent', { env: ENV });
    const nested = new NestedStack(parent, 'Nested');
    const fn = inlineFunction(nested, 'Api');
    expect(() => new CanaryMigration(parent, 'Cutover', { function: fn, aliasName: 'live', version: fn.currentVersion })).not.toThrow();
  });
});
