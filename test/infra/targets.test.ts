/**
 * Every target type and capacity kind through the construct: the controller's environment, the
 * deploy trigger's properties, least-privilege IAM (the write scoped to the one listener, zone
 * record or fleet), the probe's listener rules, the synth-time errors, and cfn-lint on each
 * template (skipped with one line when cfn-lint is not installed).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryMigration } from '../../lib/canary-migration';
import { OldCapacity } from '../../lib/capacity/old-capacity';
import { MigrationTarget } from '../../lib/targets/migration-target';
import { appStack, removeTestOutputs, testApp } from './fixtures';

afterAll(removeTestOutputs);

/** Two fleets behind one ALB: the old one an ECS service, the new one an Auto Scaling group's group. */
function fleets(id: string) {
  const app = testApp();
  const stack = new Stack(app, id, { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }] });
  const alb = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc, internetFacing: true });
  const oldGroup = new elbv2.ApplicationTargetGroup(stack, 'OldGroup', { vpc, port: 8080, protocol: elbv2.ApplicationProtocol.HTTP, targetType: elbv2.TargetType.IP });
  const newGroup = new elbv2.ApplicationTargetGroup(stack, 'NewGroup', { vpc, port: 8080, protocol: elbv2.ApplicationProtocol.HTTP, targetType: elbv2.TargetType.IP });
  const listener = alb.addListener('Http', {
    port: 80,
    defaultAction: elbv2.ListenerAction.weightedForward([
      { targetGroup: oldGroup, weight: 100 },
      { targetGroup: newGroup, weight: 0 },
    ]),
  });
  const cluster = new ecs.Cluster(stack, 'Cluster', { vpc });
  const task = new ecs.FargateTaskDefinition(stack, 'Task');
  task.addContainer('api', { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/node:22-alpine'), portMappings: [{ containerPort: 8080 }] });
  const oldService = new ecs.FargateService(stack, 'OldService', { cluster, taskDefinition: task, desiredCount: 2, assignPublicIp: true });
  const asg = new autoscaling.AutoScalingGroup(stack, 'OldAsg', {
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
    instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
    machineImage: ec2.MachineImage.latestAmazonLinux2023(),
    minCapacity: 2,
  });
  return { app, stack, vpc, alb, oldGroup, newGroup, listener, cluster, task, oldService, asg };
}

function statements(template: Template, roleLogicalIdPrefix: string): Array<Record<string, unknown>> {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleLogicalIdPrefix))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>);
}

/**
 * What the shared controller reads for the migration: its custom resource's `Settings`, which the
 * deploy trigger stores in the registry (the controller adds its own shared environment).
 */
function controllerEnvironment(template: Template): Record<string, unknown> {
  const triggers = Object.values(template.findResources('Custom::CutoverDeployTrigger'));
  expect(triggers).toHaveLength(1);
  return (triggers[0] as { Properties: { Settings: Record<string, unknown> } }).Properties.Settings;
}

/**
 * cfn-lint findings that come from aws-cdk's own patterns or from the test's environment, not from
 * Cutover's resources:
 * - W3005: aws-cdk adds a DependsOn on a function's role (and its default policy) next to the
 *   GetAtt of the role, so that the policy exists before the function runs; harmless.
 * - W3010: the test's stack has a fixed account and region, so the VPC gets aws-cdk's placeholder
 *   availability zones (a real synth looks them up).
 */
const IGNORED_CFN_LINT_CHECKS = ['W3005', 'W3010'];

/** cfn-lint over a synthesized template; undefined when cfn-lint is not installed. */
function cfnLint(stack: Stack): string | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cutover-cfn-lint-'));
  try {
    const file = path.join(dir, 'template.json');
    writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON()));
    try {
      execFileSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', ...IGNORED_CFN_LINT_CHECKS, '--', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return '';
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stdout?: string; status?: number };
      if (e.code === 'ENOENT') return undefined;
      return e.stdout ?? String(error);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function hasCfnLint(): boolean {
  try {
    execFileSync('cfn-lint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const CFN_LINT = hasCfnLint();
if (!CFN_LINT) console.log('cfn-lint not installed: template lint checks skipped');

describe('MigrationTarget.loadBalancer with OldCapacity.ecsService', () => {
  const f = fleets('AlbFleet');
  const migration = new CanaryMigration(f.stack, 'Cutover', {
    target: MigrationTarget.loadBalancer({
      loadBalancer: f.alb,
      listener: f.listener,
      oldTargetGroup: f.oldGroup,
      newTargetGroup: f.newGroup,
      release: 'v2',
      probe: { url: 'https://api.example.com', rulePriority: 10 },
    }),
    oldCapacity: OldCapacity.ecsService(f.oldService),
  });
  const template = Template.fromStack(f.stack);

  it('describes the target and the pin to the controller, with the pin at the fleet size at start', () => {
    const env = controllerEnvironment(template);
    expect(env.CUTOVER_PINNED_CAPACITY).toBe('auto');
    expect(env.CUTOVER_FUNCTION_NAME).toBeUndefined();
    expect(JSON.stringify(f.stack.resolve(env.CUTOVER_TARGET))).toContain('load-balancer');
    expect(JSON.stringify(f.stack.resolve(env.CUTOVER_CAPACITY))).toContain('ecs-service');
    expect(env.CUTOVER_MIGRATION_KEY).toBe(migration.migrationKey);
    expect(migration.targetKind).toBe('load-balancer');
    expect(migration.functionName).toBeUndefined();
    expect(migration.targetVersion).toBe('v2');
  });

  it('starts a migration when the release changes (the trigger carries it) and routes probe traffic by header', () => {
    template.hasResourceProperties('Custom::CutoverDeployTrigger', { TargetKind: 'fleet', Release: 'v2', MigrationKey: migration.migrationKey });
    for (const [side, priority] of [['old', 10], ['new', 11]] as const) {
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
        Priority: priority,
        Conditions: [{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-Cutover-Probe-Side', Values: [side] } }],
        Actions: [Match.objectLike({ Type: 'forward' })],
      });
    }
    const probeEnv = [controllerEnvironment(template).CUTOVER_PROBE_TARGETS];
    expect(probeEnv).toHaveLength(1);
    expect(JSON.stringify(probeEnv[0])).toContain('X-Cutover-Probe-Side');
  });

  it('lets the controller modify only this listener, and pin only the old service', () => {
    const controller = statements(template, 'FleetControllerRole');
    const modify = controller.find((s) => s.Sid === 'ShiftTargetGroupWeights')!;
    expect(modify.Action).toBe('elasticloadbalancing:ModifyListener');
    expect(f.stack.resolve(modify.Resource)).toEqual(f.stack.resolve(f.listener.listenerArn));
    const pin = controller.find((s) => s.Sid === 'PinOldFleet')!;
    expect(f.stack.resolve(pin.Resource)).toEqual(f.stack.resolve(f.oldService.serviceArn));
    const register = controller.find((s) => s.Sid === 'PinOldFleetScaling')!;
    expect(register.Condition).toEqual({ StringEquals: { 'application-autoscaling:service-namespace': 'ecs' } });
    // Nothing of Lambda's alias or provisioned concurrency.
    expect(JSON.stringify(controller)).not.toMatch(/UpdateAlias|ProvisionedConcurrency/);
    const trigger = statements(template, 'DeployTriggerRole');
    expect(JSON.stringify(trigger)).not.toContain('ModifyListener');
    expect(JSON.stringify(trigger)).toContain('elasticloadbalancing:DescribeListeners');
  });

  it('shows ALB metrics per target group on the dashboard', () => {
    const body = JSON.stringify(f.stack.resolve(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody));
    expect(body).toContain('AWS/ApplicationELB');
    expect(body).toContain('HTTPCode_Target_5XX_Count');
    expect(body).not.toContain('AWS/Lambda');
  });

  it.skipIf(!CFN_LINT)('is clean for cfn-lint', () => {
    expect(cfnLint(f.stack)).toBe('');
  });
});

describe('MigrationTarget.dns with OldCapacity.autoScalingGroup', () => {
  const f = fleets('DnsFleet');
  const newAlb = new elbv2.ApplicationLoadBalancer(f.stack, 'NewAlb', { vpc: f.vpc, internetFacing: true });
  const zone = route53.HostedZone.fromHostedZoneAttributes(f.stack, 'Zone', { hostedZoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com' });
  const migration = new CanaryMigration(f.stack, 'Cutover', {
    target: MigrationTarget.dns({
      zone,
      recordName: 'api',
      ttl: Duration.seconds(30),
      old: { loadBalancer: f.alb },
      new: { loadBalancer: newAlb },
      release: 'r7',
      probe: { url: 'https://api.example.com' },
    }),
    oldCapacity: OldCapacity.autoScalingGroup(f.asg, { units: 4 }),
  });
  const template = Template.fromStack(f.stack);

  it('gives the trigger the two weighted records to create once, and the controller the TTL limit', () => {
    const trigger = Object.values(template.findResources('Custom::CutoverDeployTrigger'))[0]!.Properties;
    const records = JSON.parse(JSON.stringify(f.stack.resolve(trigger.Records)));
    expect(JSON.stringify(records)).toContain('api.example.com');
    expect(JSON.stringify(records)).toContain('\\"recordType\\":\\"CNAME\\"');
    const env = controllerEnvironment(template);
    expect(JSON.stringify(f.stack.resolve(env.CUTOVER_TARGET))).toContain('\\"maxTtlSeconds\\":30');
    expect(env.CUTOVER_PINNED_CAPACITY).toBe('4');
    expect(migration.pinnedCapacity).toBe(4);
  });

  it('scopes record changes to the zone, the name, the type and CREATE/DELETE; the trigger may only CREATE', () => {
    const controller = statements(template, 'FleetControllerRole');
    const shift = controller.find((s) => s.Sid === 'ShiftRecordWeights')!;
    expect(shift.Condition).toEqual({
      'ForAllValues:StringEquals': {
        'route53:ChangeResourceRecordSetsNormalizedRecordNames': ['api.example.com'],
        'route53:ChangeResourceRecordSetsRecordTypes': ['CNAME'],
        'route53:ChangeResourceRecordSetsActions': ['CREATE', 'DELETE'],
      },
    });
    expect(JSON.stringify(f.stack.resolve(shift.Resource))).toContain('hostedzone/Z0123456789ABCDEFGHIJ');
    const pin = controller.find((s) => s.Sid === 'PinOldFleet')!;
    expect(JSON.stringify(f.stack.resolve(pin.Resource))).toContain('autoScalingGroupName/');
    const trigger = statements(template, 'DeployTriggerRole');
    const create = trigger.find((s) => s.Sid === 'CreateWeightedRecordsOnce')!;
    expect((create.Condition as Record<string, Record<string, string[]>>)['ForAllValues:StringEquals']!['route53:ChangeResourceRecordSetsActions']).toEqual(['CREATE']);
  });

  it('probes each load balancer alone, speaking as the public name', () => {
    const targets = JSON.stringify(f.stack.resolve(controllerEnvironment(template).CUTOVER_PROBE_TARGETS));
    expect(targets).toContain('connectTo');
    expect(targets).toContain('https://api.example.com');
  });

  it.skipIf(!CFN_LINT)('is clean for cfn-lint', () => {
    expect(cfnLint(f.stack)).toBe('');
  });
});

describe('MigrationTarget.lambdaAlias', () => {
  it('is the same migration as the function/aliasName/version shorthand', () => {
    const { stack, fn } = appStack('AliasTarget');
    const migration = new CanaryMigration(stack, 'Cutover', {
      target: MigrationTarget.lambdaAlias({ function: fn, aliasName: 'live', version: fn.currentVersion }),
      oldCapacity: OldCapacity.provisionedConcurrency(3),
    });
    const template = Template.fromStack(stack);
    expect(migration.targetKind).toBe('lambda-alias');
    expect(migration.aliasName).toBe('live');
    template.hasResourceProperties('Custom::CutoverDeployTrigger', { AliasName: 'live', TargetVersion: Match.anyValue() });
    const env = controllerEnvironment(template);
    expect(env.CUTOVER_ALIAS_NAME).toBe('live');
    expect(env.CUTOVER_PINNED_CAPACITY).toBe('3');
    expect(env.CUTOVER_TARGET).toBeUndefined();
    if (CFN_LINT) expect(cfnLint(stack)).toBe('');
  });
});

describe('synth-time errors name the fix', () => {
  it('refuses a pin that does not fit the target', () => {
    const f = fleets('Mismatch');
    const { fn } = { fn: new (require('aws-cdk-lib/aws-lambda').Function)(f.stack, 'Fn', { runtime: require('aws-cdk-lib/aws-lambda').Runtime.NODEJS_22_X, handler: 'index.handler', code: require('aws-cdk-lib/aws-lambda').Code.fromInline('exports.handler=async()=>1') }) };
    expect(
      () => new CanaryMigration(f.stack, 'A', { function: fn, aliasName: 'live', version: fn.currentVersion, oldCapacity: OldCapacity.ecsService(f.oldService) }),
    ).toThrow(/OldCapacity.ecsService pins a fleet and needs MigrationTarget.loadBalancer or MigrationTarget.dns/);
    const target = MigrationTarget.loadBalancer({ loadBalancer: f.alb, listener: f.listener, oldTargetGroup: f.oldGroup, newTargetGroup: f.newGroup, release: 'v2' });
    expect(() => new CanaryMigration(f.stack, 'B', { target, oldCapacity: 5 })).toThrow(/provisionedConcurrency pins a Lambda version and needs MigrationTarget.lambdaAlias/);
    expect(() => new CanaryMigration(f.stack, 'C', { target, function: fn })).toThrow(/give target or the Lambda alias shorthand/);
    expect(() => new CanaryMigration(f.stack, 'D', { target: MigrationTarget.loadBalancer({ loadBalancer: f.alb, listener: f.listener, oldTargetGroup: f.oldGroup, newTargetGroup: f.oldGroup, release: 'v2' }) })).toThrow(
      /oldTargetGroup and newTargetGroup must be two different target groups/,
    );
    expect(() => new CanaryMigration(f.stack, 'E', { target: MigrationTarget.loadBalancer({ loadBalancer: f.alb, listener: f.listener, oldTargetGroup: f.oldGroup, newTargetGroup: f.newGroup, release: '' }) })).toThrow(
      /release must be a non-empty label/,
    );
    expect(() => new CanaryMigration(f.stack, 'F', { target, probeTargets: { newUrl: 'https://x.example.com' } })).toThrow(/probeTargets are for Lambda alias migrations/);
    expect(() => new CanaryMigration(f.stack, 'G', { target, oldCapacity: OldCapacity.autoScalingGroup(f.asg, { units: 0 }) })).toThrow(/units must be a whole number ≥ 1/);
  });

  it('refuses a DNS target with a TTL that cannot apply or two records with one identifier', () => {
    const f = fleets('DnsErrors');
    const zone = route53.HostedZone.fromHostedZoneAttributes(f.stack, 'Zone', { hostedZoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com' });
    const other = new elbv2.ApplicationLoadBalancer(f.stack, 'Other', { vpc: f.vpc });
    const dns = (extra: Record<string, unknown>) =>
      MigrationTarget.dns({ zone, recordName: 'api', old: { loadBalancer: f.alb }, new: { loadBalancer: other }, release: 'r1', ...extra });
    expect(() => new CanaryMigration(f.stack, 'A', { target: dns({ recordType: 'A', ttl: Duration.seconds(30) }) })).toThrow(/ttl has no effect on A alias records/);
    expect(() => new CanaryMigration(f.stack, 'B', { target: dns({ ttl: Duration.days(2) }) })).toThrow(/ttl must be whole seconds from 1 second to 1 day, got 2 days/);
    expect(() => new CanaryMigration(f.stack, 'C', { target: dns({ old: { loadBalancer: f.alb, setIdentifier: 'x' }, new: { loadBalancer: other, setIdentifier: 'x' } }) })).toThrow(
      /different setIdentifiers, both are "x"/,
    );
  });
});
