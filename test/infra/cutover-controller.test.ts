/**
 * One shared controller per stack: two migrations of different target families in one stack (two
 * controllers, one table, topic, deploy trigger, provider and probe), what each family's
 * controller is told and may do, the probe's timeout, the props a migration shares with the
 * controller (a mismatch is a synth error naming both values and the fix), `CutoverController.of`,
 * and cdk-nag and cfn-lint over the mixed stack and the two demo stacks.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryMigration } from '../../lib/canary-migration';
import { CutoverController } from '../../lib/cutover-controller';
import { CutoverDemoStack } from '../../lib/demo-stack';
import { CutoverFleetDemoStack } from '../../lib/fleet-demo-stack';
import { MigrationTarget } from '../../lib/targets/migration-target';
import { alarm, appStack, cfnLint, logicalId, removeTestOutputs, testApp } from './fixtures';

afterAll(removeTestOutputs);

const fnArn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

/** A stack with a Lambda alias migration and a load balancer (fleet) migration, both probed. */
function mixedStack() {
  const { app, stack, fn } = appStack('Mixed');
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }] });
  const alb = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc, internetFacing: true });
  const group = (id: string) => new elbv2.ApplicationTargetGroup(stack, id, { vpc, port: 8080, protocol: elbv2.ApplicationProtocol.HTTP, targetType: elbv2.TargetType.IP });
  const oldGroup = group('OldGroup');
  const newGroup = group('NewGroup');
  const listener = alb.addListener('Http', {
    port: 80,
    defaultAction: elbv2.ListenerAction.weightedForward([
      { targetGroup: oldGroup, weight: 100 },
      { targetGroup: newGroup, weight: 0 },
    ]),
  });
  const api = new CanaryMigration(stack, 'Api', {
    function: fn,
    aliasName: 'live',
    version: fn.currentVersion,
    alarms: [alarm(stack, 'ApiErrors')],
    probeTargets: { newUrl: 'https://new.example.com/' },
    probeTimeout: Duration.seconds(90),
  });
  const web = new CanaryMigration(stack, 'Web', {
    target: MigrationTarget.loadBalancer({ loadBalancer: alb, listener, oldTargetGroup: oldGroup, newTargetGroup: newGroup, release: 'v2', probe: { url: 'https://web.example.com' } }),
    alarms: [alarm(stack, 'WebErrors')],
    probeTimeout: Duration.minutes(2),
  });
  return { app, stack, fn, api, web, template: Template.fromStack(stack) };
}

function functionsOf(template: Template, service: string): Array<[string, any]> {
  return Object.entries(template.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: service }) } } }));
}

function statementsOf(template: Template, roleId: string): any[] {
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: Match.arrayWith([{ Ref: roleId }]) } });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

describe('two migrations of different target families in one stack', () => {
  const m = mixedStack();
  const { stack, template } = m;

  it('should share one table, topic, deploy trigger, provider and probe, with one controller per family', () => {
    expect(m.api.controller).toBe(m.web.controller);
    expect(m.api.controller.node.path).toBe('Mixed/CutoverController');
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.resourceCountIs('Custom::CutoverDeployTrigger', 2);
    expect(functionsOf(template, 'cutover-probe')).toHaveLength(1);
    const controllers = functionsOf(template, 'cutover-controller');
    expect(controllers.map(([, r]) => r.Properties.Environment.Variables.CUTOVER_CONTROLLER_FAMILY).sort()).toEqual(['fleet', 'lambda-alias']);
    expect(m.api.controllerFunction).not.toBe(m.web.controllerFunction);
    expect(m.api.table).toBe(m.web.table);
    expect(m.api.probeFunction).toBe(m.web.probeFunction);
    // Every custom resource is served by the one Provider.
    const tokens = Object.values<any>(template.findResources('Custom::CutoverDeployTrigger')).map((r) => JSON.stringify(r.Properties.ServiceToken));
    expect(new Set(tokens).size).toBe(1);
  });

  it('should tell the deploy trigger both controllers and their schedules, and let it start and enable exactly those', () => {
    const trigger = logicalId(stack, m.api.deployTriggerFunction);
    const env = template.toJSON().Resources[trigger].Properties.Environment.Variables;
    const apiController = logicalId(stack, m.api.controllerFunction);
    const webController = logicalId(stack, m.web.controllerFunction);
    const names = m.api.controller.scheduleNames;
    expect(env.CUTOVER_CONTROLLERS).toEqual({
      'Fn::Join': [
        '',
        [
          '{"lambda-alias":{"functionName":"',
          { Ref: apiController },
          `","schedule":"${names.controller['lambda-alias']}"},"fleet":{"functionName":"`,
          { Ref: webController },
          `","schedule":"${names.controller.fleet}"}}`,
        ],
      ],
    });
    expect(env.CUTOVER_PROBE_SCHEDULE).toBe(names.probe);
    const statements = statementsOf(template, logicalId(stack, m.api.deployTriggerFunction.role!));
    const invoke = statements.filter((s) => s.Action === 'lambda:InvokeFunction').map((s) => s.Resource);
    expect(invoke).toEqual([fnArn(apiController), fnArn(webController)]);
    const enable = statements.filter((s) => s.Action === 'events:EnableRule').map((s) => s.Resource);
    const arn = (name: string) => `arn:aws:events:eu-west-1:123456789012:rule/${name}`;
    expect(enable.sort()).toEqual([arn(names.controller['lambda-alias']), arn(names.controller.fleet), arn(names.probe)].sort());
    // Each family's grants go to the trigger once: creating the alias, reading the listener.
    expect(statements.map((s) => s.Sid)).toEqual(expect.arrayContaining(['CreateAliasOnce', 'ReadListenerRouting']));
  });

  it("should give each family's controller its own schedule, its migrations' grants only, and the shared probe", () => {
    const names = m.api.controller.scheduleNames;
    for (const [migration, family, own, other] of [
      [m.api, 'lambda-alias', 'lambda:UpdateAlias', 'elasticloadbalancing:ModifyListener'],
      [m.web, 'fleet', 'elasticloadbalancing:ModifyListener', 'lambda:UpdateAlias'],
    ] as const) {
      const id = logicalId(stack, migration.controllerFunction);
      const env = template.toJSON().Resources[id].Properties.Environment.Variables;
      expect(env.CUTOVER_CONTROLLER_FAMILY).toBe(family);
      expect(env.CUTOVER_CONTROLLER_SCHEDULE).toBe(names.controller[family]);
      expect(env.CUTOVER_PROBE_SCHEDULE).toBe(names.probe);
      expect(env.CUTOVER_PROBE_FUNCTION_NAME).toEqual({ Ref: logicalId(stack, migration.probeFunction!) });
      const actions = statementsOf(template, logicalId(stack, migration.controllerFunction.role!)).flatMap((s) => [s.Action].flat());
      expect(actions).toContain(own);
      expect(actions).not.toContain(other);
      template.hasResourceProperties('AWS::Events::Rule', {
        Name: names.controller[family],
        State: 'DISABLED',
        Targets: [Match.objectLike({ Arn: fnArn(id) })],
      });
    }
  });

  it("should wake each controller only for its own migrations' alarms and desyncs", () => {
    for (const migration of [m.api, m.web]) {
      const id = logicalId(stack, migration.controllerFunction);
      const alarmRule = Object.values<any>(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.cloudwatch'] } } })).filter(
        (r) => JSON.stringify(r.Properties.Targets[0].Arn) === JSON.stringify(fnArn(id)),
      );
      expect(alarmRule).toHaveLength(1);
      expect(alarmRule[0].Properties.EventPattern.resources).toEqual([fnArn(logicalId(stack, migration.alarms[0]!))]);
      const desync = Object.values<any>(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['cutover.probe'] } } })).filter(
        (r) => JSON.stringify(r.Properties.Targets[0].Arn) === JSON.stringify(fnArn(id)),
      );
      expect(desync).toHaveLength(1);
      // Not filtered by migration key (the pattern would grow with every migration past EventBridge's
      // size limit); the controller skips another family's migrations.
      expect(desync[0].Properties.EventPattern.detail).toEqual({ verdict: ['desync'] });
    }
  });

  it('should give the shared probe the largest probeTimeout of its migrations', () => {
    const [[, probe]] = functionsOf(template, 'cutover-probe') as [[string, any]];
    expect(probe.Properties.Timeout).toBe(120);
  });

  it('should make each custom resource wait for its own controller, schedule and the probe', () => {
    for (const migration of [m.api, m.web]) {
      const resource = template.toJSON().Resources[logicalId(stack, migration.deployTrigger)];
      expect(resource.DependsOn).toEqual(
        expect.arrayContaining([logicalId(stack, migration.controllerFunction.role!), logicalId(stack, migration.probeFunction!)]),
      );
      const schedule = migration.controller.controllerFor(migration.targetKind === 'lambda-alias' ? 'lambda-alias' : 'fleet').schedule;
      expect(resource.DependsOn).toContain(stack.getLogicalId(schedule.node.defaultChild as never));
    }
  });

  it('should pass cfn-lint and the cdk-nag gate', () => {
    const lint = cfnLint(stack, ['W3005', 'W3010']);
    if (lint !== undefined) expect(lint).toBe('');
    const again = mixedStack();
    Validations.of(again.app).addPlugins(new AwsSolutionsChecks(again.app));
    expect(() => again.app.synth()).not.toThrow();
  });
});

describe('the props a migration shares with the controller', () => {
  it('should create the controller with the first migration\'s, and take them in every later migration that leaves them out', () => {
    const { stack, fn } = appStack('Shared');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const first = new CanaryMigration(stack, 'First', { function: fn, aliasName: 'live', version: fn.currentVersion, encryptionKey: key, logRetention: logs.RetentionDays.ONE_WEEK });
    const second = new CanaryMigration(stack, 'Second', { function: fn, aliasName: 'staging', version: fn.currentVersion });
    expect(second.controller).toBe(first.controller);
    expect(first.controller.encryptionKey).toBe(key);
    expect(first.controller.logRetention).toBe(logs.RetentionDays.ONE_WEEK);
    // The same values given again are fine.
    expect(() => new CanaryMigration(stack, 'Third', { function: fn, aliasName: 'canary', version: fn.currentVersion, encryptionKey: key, removalPolicy: RemovalPolicy.RETAIN })).not.toThrow();
  });

  it('fails when a migration gives another key, bus, removal policy or log retention, naming both values and the fix', () => {
    const { stack, fn } = appStack('Mismatch');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    new CanaryMigration(stack, 'First', { function: fn, aliasName: 'live', version: fn.currentVersion, encryptionKey: key });
    const other = new kms.Key(stack, 'OtherKey', { enableKeyRotation: true });
    const migration = (id: string, props: object) => () => new CanaryMigration(stack, id, { function: fn, aliasName: id.toLowerCase(), version: fn.currentVersion, ...props });
    expect(migration('A', { encryptionKey: other })).toThrow(
      /Mismatch\/A: CanaryMigration encryptionKey is Mismatch\/OtherKey, but the stack's CutoverController Mismatch\/CutoverController has encryptionKey Mismatch\/Key: .*leave it out of the migrations .*CutoverController\.of\(this, \{ … \}\)/,
    );
    expect(migration('B', { eventBus: new events.EventBus(stack, 'Bus') })).toThrow(/eventBus is Mismatch\/Bus, but .* has eventBus the default bus/);
    expect(migration('C', { removalPolicy: RemovalPolicy.DESTROY })).toThrow(/removalPolicy is "destroy", but .* has removalPolicy "retain"/);
    expect(migration('D', { logRetention: logs.RetentionDays.ONE_WEEK })).toThrow(/logRetention is 7 days, but .* has logRetention 30 days/);
  });

  it('should take its props from a controller set up first, and refuse a migration that disagrees', () => {
    const { stack, fn } = appStack('First');
    const controller = CutoverController.of(stack, { removalPolicy: RemovalPolicy.DESTROY });
    expect(CutoverController.of(stack)).toBe(controller);
    const migration = new CanaryMigration(stack, 'Migration', { function: fn, aliasName: 'live', version: fn.currentVersion });
    expect(migration.controller).toBe(controller);
    Template.fromStack(stack).hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    expect(() => CutoverController.of(stack, { removalPolicy: RemovalPolicy.RETAIN })).toThrow(/CutoverController\.of removalPolicy is "retain", but .* has removalPolicy "destroy"/);
  });

  it('fails on a second controller in one stack, naming CutoverController.of, and on a controller of another stack', () => {
    const { app, stack, fn } = appStack('Twice');
    CutoverController.of(stack);
    expect(() => new CutoverController(stack, 'Another')).toThrow(/already has a CutoverController \(Twice\/CutoverController\).*Use CutoverController\.of\(scope\)/);
    const elsewhere = new Stack(app, 'Elsewhere', { env: { account: '123456789012', region: 'eu-west-1' } });
    const foreign = CutoverController.of(elsewhere);
    expect(() => new CanaryMigration(stack, 'M', { function: fn, aliasName: 'live', version: fn.currentVersion, controller: foreign })).toThrow(
      /controller Elsewhere\/CutoverController is in stack Elsewhere, the migration in Twice: .*leave controller out/,
    );
  });

  it('should never clash with a migration named `Cutover`, created before or after the controller', () => {
    const { stack, fn } = appStack('Named');
    const first = new CanaryMigration(stack, 'Other', { function: fn, aliasName: 'live', version: fn.currentVersion });
    const named = new CanaryMigration(stack, 'Cutover', { function: fn, aliasName: 'next', version: fn.currentVersion });
    expect(first.controller.node.path).toBe('Named/CutoverController');
    expect(named.controller).toBe(first.controller);
  });

  it('should grant operators every controller, also one a later migration brings', () => {
    const { stack, fn } = appStack('Operate');
    const controller = CutoverController.of(stack);
    const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
    controller.grantOperate(operator);
    const migration = new CanaryMigration(stack, 'Migration', { function: fn, aliasName: 'live', version: fn.currentVersion });
    const statements = statementsOf(Template.fromStack(stack), logicalId(stack, operator));
    expect(statements).toEqual([expect.objectContaining({ Action: 'lambda:InvokeFunction', Resource: fnArn(logicalId(stack, migration.controllerFunction)) })]);
  });

  it('should connect a probe that comes with a later migration to the controller created before it', () => {
    const { stack, fn } = appStack('LateProbe');
    const first = new CanaryMigration(stack, 'First', { function: fn, aliasName: 'live', version: fn.currentVersion });
    expect(first.probeFunction).toBeUndefined();
    const other = new lambda.Function(stack, 'Other', { runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('x') });
    const second = new CanaryMigration(stack, 'Second', { function: other, aliasName: 'live', version: other.currentVersion, probeTargets: { newUrl: 'https://n.example.com' } });
    const template = Template.fromStack(stack);
    const env = template.toJSON().Resources[logicalId(stack, first.controllerFunction)].Properties.Environment.Variables;
    expect(env.CUTOVER_PROBE_FUNCTION_NAME).toEqual({ Ref: logicalId(stack, second.probeFunction!) });
    expect(env.CUTOVER_PROBE_SCHEDULE).toBe(first.controller.scheduleNames.probe);
  });
});

describe('cfn-lint over the demo templates', () => {
  // W3005: aws-cdk's DependsOn beside a GetAtt of a function's role. W3010: the fleet demo's
  // placeholder availability zones in an environment-agnostic test synth.
  it('should find nothing in the Lambda demo stack', () => {
    const lint = cfnLint(new CutoverDemoStack(testApp(), 'Demo'));
    if (lint !== undefined) expect(lint).toBe('');
  });

  it('should find nothing in the fleet demo stack, with either target', () => {
    const dns = { hostedZoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com', recordName: 'api.example.com' };
    for (const props of [{}, { dns }]) {
      const lint = cfnLint(new CutoverFleetDemoStack(testApp(), 'dns' in props ? 'FleetDns' : 'Fleet', props), ['W3005', 'W3010']);
      if (lint !== undefined) expect(lint).toBe('');
    }
  });
});
