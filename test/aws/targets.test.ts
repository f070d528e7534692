/**
 * targets.ts (CUTOVER_TARGET / CUTOVER_CAPACITY, the adapters each kind needs, the probe's own
 * traffic) and the parts of config.ts that use it. SDK clients are counted as they are created
 * (each client class is wrapped) and answered by aws-sdk-client-mock.
 */
import { ApplicationAutoScalingClient, DescribeScalableTargetsCommand } from '@aws-sdk/client-application-auto-scaling';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeServicesCommand, ECSClient } from '@aws-sdk/client-ecs';
import { DescribeListenersCommand, DescribeRulesCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetAliasCommand, GetProvisionedConcurrencyConfigCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ChangeResourceRecordSetsCommand, ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AutoScalingGroupCapacity } from '../../lambda/aws/capacity/auto-scaling';
import { EcsServiceCapacity } from '../../lambda/aws/capacity/ecs';
import { ConfigError, readControllerConfig, readDeployTriggerConfig } from '../../lambda/aws/config';
import { LambdaAliasTraffic } from '../../lambda/aws/traffic/alias';
import { ProvisionedConcurrencyCapacity } from '../../lambda/aws/capacity/provisioned-concurrency';
import {
  TargetConfigError,
  parseCapacityConfig,
  parseTargetConfig,
  sumProbeHealth,
  targetGroupDimension,
  type CapacityConfig,
  type TargetConfig,
} from '../../lambda/aws/targets';
import { LoadBalancerWeightedTraffic } from '../../lambda/aws/traffic/alb';
import { MissingKitError, TargetAdapters } from '../../lambda/aws/adapter-kit';
import { EVERY_KIT } from '../../lambda/aws/every-kit';
import { fleetKit } from '../../lambda/aws/kit-fleet';
import { lambdaAliasKit } from '../../lambda/aws/kit-lambda-alias';
import { Route53WeightedTraffic } from '../../lambda/aws/traffic/route53';
import type { ProbeHealth, Side } from '../../lambda/core/ports';

// Every client class the adapters may create, wrapped to count what gets created.
const created = vi.hoisted(() => new Map<string, number>());
vi.mock('@aws-sdk/client-elastic-load-balancing-v2', async (original) => {
  const mod = await original<typeof import('@aws-sdk/client-elastic-load-balancing-v2')>();
  class ElasticLoadBalancingV2Client extends mod.ElasticLoadBalancingV2Client {
    constructor(...args: ConstructorParameters<typeof mod.ElasticLoadBalancingV2Client>) {
      super(...args);
      created.set('elb', (created.get('elb') ?? 0) + 1);
    }
  }
  return { ...mod, ElasticLoadBalancingV2Client };
});
vi.mock('@aws-sdk/client-route-53', async (original) => {
  const mod = await original<typeof import('@aws-sdk/client-route-53')>();
  class Route53Client extends mod.Route53Client {
    constructor(...args: ConstructorParameters<typeof mod.Route53Client>) {
      super(...args);
      created.set('route53', (created.get('route53') ?? 0) + 1);
    }
  }
  return { ...mod, Route53Client };
});
vi.mock('@aws-sdk/client-auto-scaling', async (original) => {
  const mod = await original<typeof import('@aws-sdk/client-auto-scaling')>();
  class AutoScalingClient extends mod.AutoScalingClient {
    constructor(...args: ConstructorParameters<typeof mod.AutoScalingClient>) {
      super(...args);
      created.set('autoScaling', (created.get('autoScaling') ?? 0) + 1);
    }
  }
  return { ...mod, AutoScalingClient };
});
vi.mock('@aws-sdk/client-ecs', async (original) => {
  const mod = await original<typeof import('@aws-sdk/client-ecs')>();
  class ECSClient extends mod.ECSClient {
    constructor(...args: ConstructorParameters<typeof mod.ECSClient>) {
      super(...args);
      created.set('ecs', (created.get('ecs') ?? 0) + 1);
    }
  }
  return { ...mod, ECSClient };
});
vi.mock('@aws-sdk/client-application-auto-scaling', async (original) => {
  const mod = await original<typeof import('@aws-sdk/client-application-auto-scaling')>();
  class ApplicationAutoScalingClient extends mod.ApplicationAutoScalingClient {
    constructor(...args: ConstructorParameters<typeof mod.ApplicationAutoScalingClient>) {
      super(...args);
      created.set('applicationAutoScaling', (created.get('applicationAutoScaling') ?? 0) + 1);
    }
  }
  return { ...mod, ApplicationAutoScalingClient };
});

const elbMock = mockClient(ElasticLoadBalancingV2Client);
const r53Mock = mockClient(Route53Client);
const asgMock = mockClient(AutoScalingClient);
const ecsMock = mockClient(ECSClient);
const aasMock = mockClient(ApplicationAutoScalingClient);
const lambda = new LambdaClient({ region: 'us-east-1' });
const lambdaMock = mockClient(lambda);
const ALIAS = { lambda, functionName: 'api', aliasName: 'live' };

beforeEach(() => {
  created.clear();
  for (const mock of [elbMock, r53Mock, asgMock, ecsMock, aasMock, lambdaMock]) mock.reset();
});
afterAll(() => {
  for (const mock of [elbMock, r53Mock, asgMock, ecsMock, aasMock, lambdaMock]) mock.restore();
});

const ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const LISTENER = `${ARN}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2`;
const RULE = `${ARN}:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee`;
const OLD_TG = `${ARN}:targetgroup/shop-blue/73e2d6bc24d8a067`;
const NEW_TG = `${ARN}:targetgroup/shop-green/943f017f100becff`;
const LB = { kind: 'load-balancer', loadBalancer: 'app/shop/50dc6c495c0c9188', listenerArn: LISTENER, oldTargetGroupArn: OLD_TG, newTargetGroupArn: NEW_TG };
const DNS = {
  kind: 'dns',
  hostedZoneId: 'Z0123456789ABCDEFGHIJ',
  recordName: 'api.example.com',
  recordType: 'CNAME',
  oldSetIdentifier: 'blue',
  newSetIdentifier: 'green',
  maxTtlSeconds: 60,
  oldLoadBalancer: 'app/shop-2019/1a2b3c4d5e6f7a8b',
  newLoadBalancer: 'app/shop-2026/8b7a6f5e4d3c2b1a',
};
const target = (value: unknown) => parseTargetConfig(JSON.stringify(value));
/** The error a parse throws (fails the test when it does not throw). */
function errorOf(parse: () => unknown): TargetConfigError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(TargetConfigError);
    return error as TargetConfigError;
  }
  throw new Error('expected a TargetConfigError');
}

describe('parseTargetConfig', () => {
  it('should default to the Lambda alias when CUTOVER_TARGET is unset or blank', () => {
    expect(parseTargetConfig(undefined)).toEqual({ kind: 'lambda-alias' });
    expect(parseTargetConfig('  ')).toEqual({ kind: 'lambda-alias' });
    expect(target({ kind: 'lambda-alias' })).toEqual({ kind: 'lambda-alias' });
  });

  it('should read a load balancer target on a listener or on a rule', () => {
    expect(target(LB)).toEqual(LB);
    const { listenerArn: _l, ...onRule } = { ...LB, ruleArn: RULE };
    expect(target(onRule)).toEqual({ kind: 'load-balancer', loadBalancer: LB.loadBalancer, ruleArn: RULE, oldTargetGroupArn: OLD_TG, newTargetGroupArn: NEW_TG });
  });

  it('should read a DNS target, with or without a TTL limit, and a /hostedzone/ id', () => {
    expect(target(DNS)).toEqual(DNS);
    const { maxTtlSeconds: _t, ...noLimit } = DNS;
    const parsed = target({ ...noLimit, hostedZoneId: '/hostedzone/Z0123456789ABCDEFGHIJ', recordType: 'A' });
    expect(parsed).toEqual({ ...noLimit, hostedZoneId: '/hostedzone/Z0123456789ABCDEFGHIJ', recordType: 'A' });
    expect('maxTtlSeconds' in parsed).toBe(false);
    expect(target({ ...DNS, maxTtlSeconds: 0 })).toMatchObject({ maxTtlSeconds: 0 });
  });

  it('fails on text that is not a JSON object with a known kind, showing what it got', () => {
    expect(errorOf(() => parseTargetConfig('{kind: dns}')).message).toMatch(/^environment variable CUTOVER_TARGET is not valid JSON \(.*\): \{kind: dns\}$/);
    expect(errorOf(() => parseTargetConfig('[1]')).message).toBe('environment variable CUTOVER_TARGET must be a JSON object with a "kind", got [1]');
    expect(errorOf(() => parseTargetConfig('null')).message).toBe('environment variable CUTOVER_TARGET must be a JSON object with a "kind", got null');
    expect(errorOf(() => target({ kind: 'alb' })).message).toBe(
      'environment variable CUTOVER_TARGET kind must be "lambda-alias", "load-balancer" or "dns", got {"kind":"alb"}',
    );
    expect(errorOf(() => target({ kind: 'alb' })).variable).toBe('CUTOVER_TARGET');
  });

  const lbCases: [string, Record<string, unknown>, string | RegExp][] = [
    ['neither listener nor rule', { ...LB, listenerArn: undefined }, /needs exactly one of listenerArn and ruleArn, got \{"kind":"load-balancer"/],
    ['both listener and rule', { ...LB, ruleArn: RULE }, /needs exactly one of listenerArn and ruleArn/],
    ['a rule ARN as the listener', { ...LB, listenerArn: RULE }, `field listenerArn must be a listener ARN, got ${JSON.stringify(RULE)}`],
    ['a listener ARN as the rule', { ...LB, listenerArn: undefined, ruleArn: LISTENER }, `field ruleArn must be a listener rule ARN, got ${JSON.stringify(LISTENER)}`],
    ['a target group name, not its ARN', { ...LB, oldTargetGroupArn: 'shop-blue' }, 'field oldTargetGroupArn must be a target group ARN, got "shop-blue"'],
    ['no new target group', { ...LB, newTargetGroupArn: undefined }, 'field newTargetGroupArn must be a target group ARN, got null'],
    ['the same group twice', { ...LB, newTargetGroupArn: OLD_TG }, `oldTargetGroupArn and newTargetGroupArn must differ, both are ${JSON.stringify(OLD_TG)}`],
    ['the ALB ARN instead of its name', { ...LB, loadBalancer: `${ARN}:loadbalancer/app/shop/50dc6c495c0c9188` }, /field loadBalancer must be the load balancer's full name "app\/<name>\/<id>", got "arn:aws/],
  ];
  for (const [label, value, message] of lbCases) {
    it(`fails on a load balancer target with ${label}`, () => {
      const error = errorOf(() => target(value));
      expect(error.variable).toBe('CUTOVER_TARGET');
      if (typeof message === 'string') expect(error.message).toContain(message);
      else expect(error.message).toMatch(message);
    });
  }

  const dnsCases: [string, Record<string, unknown>, string][] = [
    ['an MX record', { ...DNS, recordType: 'MX' }, 'field recordType must be "A", "AAAA" or "CNAME", got "MX"'],
    ['a lower-case zone id', { ...DNS, hostedZoneId: 'z0123' }, 'field hostedZoneId must be a hosted zone id, got "z0123"'],
    ['a name with a space', { ...DNS, recordName: 'api example.com' }, 'field recordName must be a domain name, got "api example.com"'],
    ['no old set identifier', { ...DNS, oldSetIdentifier: '' }, 'field oldSetIdentifier must be a SetIdentifier, got ""'],
    ['a set identifier too long', { ...DNS, newSetIdentifier: 'g'.repeat(129) }, `field newSetIdentifier must be a SetIdentifier, got "${'g'.repeat(129)}"`],
    ['a negative TTL', { ...DNS, maxTtlSeconds: -1 }, 'maxTtlSeconds must be a whole number of seconds ≥ 0, got -1'],
    ['a fractional TTL', { ...DNS, maxTtlSeconds: 1.5 }, 'maxTtlSeconds must be a whole number of seconds ≥ 0, got 1.5'],
    ['a TTL as text', { ...DNS, maxTtlSeconds: '60' }, 'maxTtlSeconds must be a whole number of seconds ≥ 0, got "60"'],
    ['no new load balancer', { ...DNS, newLoadBalancer: undefined }, `field newLoadBalancer must be the new side's load balancer full name "app/<name>/<id>", got null`],
  ];
  for (const [label, value, message] of dnsCases) {
    it(`fails on a DNS target with ${label}`, () => {
      expect(errorOf(() => target(value)).message).toBe(`environment variable CUTOVER_TARGET ${message}`);
    });
  }
});

describe('parseCapacityConfig', () => {
  const alias: TargetConfig = { kind: 'lambda-alias' };
  const fleet = target(LB);

  it('should default to provisioned concurrency for an alias and to none for fleets', () => {
    expect(parseCapacityConfig(undefined, alias)).toEqual({ kind: 'provisioned-concurrency' });
    expect(parseCapacityConfig('', fleet)).toEqual({ kind: 'none' });
    expect(parseCapacityConfig(undefined, target(DNS))).toEqual({ kind: 'none' });
  });

  it('should read every kind', () => {
    expect(parseCapacityConfig('{"kind":"none"}', alias)).toEqual({ kind: 'none' });
    expect(parseCapacityConfig('{"kind":"provisioned-concurrency"}', alias)).toEqual({ kind: 'provisioned-concurrency' });
    expect(parseCapacityConfig('{"kind":"auto-scaling-group","autoScalingGroupName":"shop-blue-asg"}', fleet)).toEqual({
      kind: 'auto-scaling-group',
      autoScalingGroupName: 'shop-blue-asg',
    });
    expect(parseCapacityConfig('{"kind":"ecs-service","cluster":"prod","service":"shop-blue"}', fleet)).toEqual({ kind: 'ecs-service', cluster: 'prod', service: 'shop-blue' });
  });

  it('fails with the variable, the field and the value', () => {
    expect(errorOf(() => parseCapacityConfig('{"kind":"provisioned-concurrency"}', fleet)).message).toBe(
      'environment variable CUTOVER_CAPACITY provisioned-concurrency pins a Lambda version and needs a lambda-alias target, got target load-balancer',
    );
    expect(errorOf(() => parseCapacityConfig('{"kind":"ecs-service","cluster":"prod"}', fleet)).message).toBe(
      'environment variable CUTOVER_CAPACITY field service must be an ECS service name or ARN, got null',
    );
    expect(errorOf(() => parseCapacityConfig('{"kind":"auto-scaling-group","autoScalingGroupName":""}', fleet)).message).toBe(
      'environment variable CUTOVER_CAPACITY field autoScalingGroupName must be an Auto Scaling group name or ARN, got ""',
    );
    expect(errorOf(() => parseCapacityConfig('{"kind":"ec2"}', fleet)).message).toBe(
      'environment variable CUTOVER_CAPACITY kind must be "provisioned-concurrency", "auto-scaling-group", "ecs-service" or "none", got {"kind":"ec2"}',
    );
    const bad = errorOf(() => parseCapacityConfig('ecs', fleet));
    expect(bad.variable).toBe('CUTOVER_CAPACITY');
    expect(bad.message).toMatch(/^environment variable CUTOVER_CAPACITY is not valid JSON .*: ecs$/);
  });
});

describe('targetGroupDimension', () => {
  it('should give the TargetGroup dimension of a target group ARN', () => {
    expect(targetGroupDimension(OLD_TG)).toBe('targetgroup/shop-blue/73e2d6bc24d8a067');
    expect(targetGroupDimension('arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:targetgroup/a/0f')).toBe('targetgroup/a/0f');
  });

  it('fails on anything else, showing it', () => {
    expect(() => targetGroupDimension('targetgroup/shop-blue/73e2d6bc24d8a067')).toThrow('not a target group ARN: "targetgroup/shop-blue/73e2d6bc24d8a067"');
    expect(() => targetGroupDimension(LISTENER)).toThrow(TypeError);
  });
});

describe('sumProbeHealth', () => {
  const at = (side: Side, atMs: number, health?: ProbeHealth) => ({ side, atMs, ...(health ? { health } : {}) });

  it('should sum each side over [start, end): the start included, the end excluded', () => {
    const results = [
      at('new', 999, { requests: 100, errors4xx: 100, errors5xx: 100 }), // before the window
      at('new', 1000, { requests: 7, errors4xx: 2, errors5xx: 1 }), // at its start: counted
      at('old', 1500, { requests: 5, errors4xx: 1, errors5xx: 0 }),
      at('new', 1999, { requests: 3, errors4xx: 1, errors5xx: 0 }),
      at('new', 2000, { requests: 100, errors4xx: 100, errors5xx: 100 }), // at its end: not counted
    ];
    expect(sumProbeHealth(results, 1000, 2000)).toEqual({
      old: { requests: 5, errors4xx: 1, errors5xx: 0 },
      new: { requests: 10, errors4xx: 3, errors5xx: 1 },
    });
  });

  it('should count a missing 4XX count as 0 and skip results without health', () => {
    const results = [at('old', 10, { requests: 4, errors5xx: 1 }), at('old', 20), at('old', 30, { requests: 2, errors4xx: 2, errors5xx: 0 })];
    expect(sumProbeHealth(results, 0, 60)).toEqual({ old: { requests: 6, errors4xx: 2, errors5xx: 1 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } });
    expect(sumProbeHealth([], 0, 60)).toEqual({ old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } });
  });
});

describe('TargetAdapters', () => {
  const sides = { oldVersion: '3', newVersion: '4' };
  const releases = { oldVersion: 'r3', newVersion: 'r4' };
  const OPTIONS = { region: 'eu-west-1', maxAttempts: 2 };

  it('should use the alias’s own Lambda client for an alias with provisioned concurrency, creating no other client', async () => {
    const adapters = new TargetAdapters({ kind: 'lambda-alias' }, { kind: 'provisioned-concurrency' }, ALIAS, EVERY_KIT, OPTIONS);
    const traffic = adapters.traffic(sides);
    const capacity = adapters.capacity(sides);
    expect(traffic).toBeInstanceOf(LambdaAliasTraffic);
    expect(capacity).toBeInstanceOf(ProvisionedConcurrencyCapacity);
    lambdaMock.on(GetAliasCommand).resolves({ FunctionVersion: '3', RevisionId: 'rev-1', RoutingConfig: { AdditionalVersionWeights: { '4': 0.25 } } });
    lambdaMock.on(GetProvisionedConcurrencyConfigCommand).resolves({ RequestedProvisionedConcurrentExecutions: 5, AllocatedProvisionedConcurrentExecutions: 5, Status: 'READY' });
    expect((await traffic.getWeight()).weight).toBe(25);
    await capacity.read();
    expect(lambdaMock.commandCalls(GetAliasCommand)[0]!.args[0].input).toEqual({ FunctionName: 'api', Name: 'live' });
    // The OLD version is the one pinned.
    expect(lambdaMock.commandCalls(GetProvisionedConcurrencyConfigCommand)[0]!.args[0].input).toEqual({ FunctionName: 'api', Qualifier: '3' });
    expect([...created]).toEqual([]);
    expect(adapters.metadata(sides)).toEqual({ functionName: 'api', aliasName: 'live', oldVersion: '3', newVersion: '4' });
  });

  it('should build the ALB adapter and the ECS one, each client created once and shared by every migration', async () => {
    const adapters = new TargetAdapters(target(LB), { kind: 'ecs-service', cluster: 'prod', service: 'shop-blue' }, ALIAS, EVERY_KIT, OPTIONS);
    const first = adapters.traffic(releases);
    const second = adapters.traffic({ oldVersion: 'r4', newVersion: 'r5' });
    const capacity = adapters.capacity(releases);
    adapters.capacity(releases);
    expect(first).toBeInstanceOf(LoadBalancerWeightedTraffic);
    expect(capacity).toBeInstanceOf(EcsServiceCapacity);
    expect(Object.fromEntries(created)).toEqual({ elb: 1, ecs: 1, applicationAutoScaling: 1 });

    elbMock.on(DescribeListenersCommand).resolves({
      Listeners: [
        {
          ListenerArn: LISTENER,
          DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: OLD_TG, Weight: 80 }, { TargetGroupArn: NEW_TG, Weight: 20 }] } }],
        },
      ],
    });
    expect((await first.getWeight()).weight).toBe(20);
    await second.getWeight();
    const calls = elbMock.commandCalls(DescribeListenersCommand);
    expect(calls[0]!.args[0].input).toEqual({ ListenerArns: [LISTENER] });
    expect(calls[1]!.thisValue).toBe(calls[0]!.thisValue);
    // Built with the options given.
    const client = calls[0]!.thisValue as ElasticLoadBalancingV2Client;
    expect(await client.config.region()).toBe('eu-west-1');
    expect(await client.config.maxAttempts()).toBe(2);

    ecsMock.on(DescribeServicesCommand).resolves({
      services: [{ serviceName: 'shop-blue', serviceArn: 'arn:aws:ecs:us-east-1:123456789012:service/prod/shop-blue', status: 'ACTIVE', desiredCount: 3, runningCount: 3 }],
    });
    aasMock.on(DescribeScalableTargetsCommand).resolves({ ScalableTargets: [] });
    expect(await capacity.read()).toMatchObject({ current: 3, desired: 3, ready: true });
    expect(ecsMock.commandCalls(DescribeServicesCommand)[0]!.args[0].input).toMatchObject({ cluster: 'prod', services: ['shop-blue'] });
    expect(aasMock.commandCalls(DescribeScalableTargetsCommand)[0]!.args[0].input).toMatchObject({ ResourceIds: ['service/prod/shop-blue'] });
    expect(adapters.metadata(releases)).toEqual({
      target: 'load-balancer',
      loadBalancer: 'app/shop/50dc6c495c0c9188',
      oldTargetGroup: targetGroupDimension(OLD_TG),
      newTargetGroup: targetGroupDimension(NEW_TG),
      oldRelease: 'r3',
      newRelease: 'r4',
    });
    expect(adapters.metadata(releases).oldTargetGroup).toMatch(/^targetgroup\//);
  });

  it('should read the rule, not the listener, for a rule target', async () => {
    const { listenerArn: _l, ...onRule } = { ...LB, ruleArn: RULE };
    const traffic = new TargetAdapters(target(onRule), { kind: 'none' }, ALIAS, EVERY_KIT).traffic(releases);
    elbMock.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE, Actions: [{ Type: 'forward', TargetGroupArn: OLD_TG }] }] });
    expect((await traffic.getWeight()).weight).toBe(0);
    expect(elbMock.commandCalls(DescribeRulesCommand)[0]!.args[0].input).toEqual({ RuleArns: [RULE] });
    expect(elbMock.commandCalls(DescribeListenersCommand)).toHaveLength(0);
  });

  it('should build the Route 53 adapter and the Auto Scaling one for a DNS target, and nothing else', async () => {
    const adapters = new TargetAdapters(target(DNS), { kind: 'auto-scaling-group', autoScalingGroupName: 'shop-blue-asg' }, ALIAS, EVERY_KIT, OPTIONS);
    const traffic = adapters.traffic(releases);
    const capacity = adapters.capacity(releases);
    expect(traffic).toBeInstanceOf(Route53WeightedTraffic);
    expect(capacity).toBeInstanceOf(AutoScalingGroupCapacity);
    expect(Object.fromEntries(created)).toEqual({ route53: 1, autoScaling: 1 });

    const record = (id: string, weight: number) => ({ Name: 'api.example.com.', Type: 'CNAME' as const, SetIdentifier: id, Weight: weight, TTL: 300, ResourceRecords: [{ Value: `${id}.elb.amazonaws.com` }] });
    r53Mock.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [record('blue', 95), record('green', 5)], IsTruncated: false, MaxItems: 100 });
    expect((await traffic.getWeight()).weight).toBe(5);
    expect(r53Mock.commandCalls(ListResourceRecordSetsCommand)[0]!.args[0].input).toMatchObject({ HostedZoneId: DNS.hostedZoneId, StartRecordName: 'api.example.com.', StartRecordType: 'CNAME' });
    // The TTL limit reached the adapter: 300 s is lowered to 60 s before the first shift.
    r53Mock.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C1', Status: 'INSYNC', SubmittedAt: new Date(0) } });
    expect(await traffic.prepare!()).toMatchObject({ ready: false, reason: expect.stringMatching(/TTL of api\.example\.com lowered from 300 s to 60 s/) });
    const creates = r53Mock.commandCalls(ChangeResourceRecordSetsCommand)[0]!.args[0].input.ChangeBatch!.Changes!.filter((c) => c.Action === 'CREATE');
    expect(creates.map((c) => c.ResourceRecordSet!.TTL)).toEqual([60, 60]);
    asgMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    await expect(capacity.read()).rejects.toThrow(/Auto Scaling group "shop-blue-asg" does not exist/);
    expect(asgMock.commandCalls(DescribeAutoScalingGroupsCommand)[0]!.args[0].input).toEqual({ AutoScalingGroupNames: ['shop-blue-asg'] });
    expect(adapters.metadata(releases)).toEqual({
      target: 'dns',
      recordName: 'api.example.com',
      oldLoadBalancer: 'app/shop-2019/1a2b3c4d5e6f7a8b',
      newLoadBalancer: 'app/shop-2026/8b7a6f5e4d3c2b1a',
      oldRelease: 'r3',
      newRelease: 'r4',
    });
  });

  it('should hand out an unmanaged capacity for "none" that calls nothing', async () => {
    const capacity = new TargetAdapters(target(LB), { kind: 'none' }, ALIAS, EVERY_KIT).capacity(releases);
    const unmanaged = { current: 0, ready: true, detail: 'capacity not managed' };
    expect(await capacity.read()).toEqual(unmanaged);
    expect(await capacity.pin(3)).toEqual(unmanaged);
    expect(await capacity.restore(3)).toEqual(unmanaged);
    expect(await capacity.release()).toEqual(unmanaged);
    expect([...created]).toEqual([]);
  });

  it('should build a kind only from a kit that has it, and refuse at construction a kind no given kit builds, naming the fix', () => {
    const aliasOnly = new TargetAdapters({ kind: 'lambda-alias' }, { kind: 'provisioned-concurrency' }, ALIAS, [lambdaAliasKit], OPTIONS);
    expect(aliasOnly.traffic(sides)).toBeInstanceOf(LambdaAliasTraffic);
    expect(aliasOnly.capacity(sides)).toBeInstanceOf(ProvisionedConcurrencyCapacity);
    // A migration recorded with a fleet target, run by an alias-only bundle.
    expect(() => aliasOnly.traffic(releases, target(LB))).toThrow(MissingKitError);
    expect(() => new TargetAdapters(target(LB), { kind: 'none' }, ALIAS, [lambdaAliasKit])).toThrow(
      /cannot build the target kind "load-balancer" \(it builds "lambda-alias"\): deploy it with the construct of this Cutover version/,
    );
    expect(() => new TargetAdapters(target(DNS), { kind: 'auto-scaling-group', autoScalingGroupName: 'g' }, ALIAS, [fleetKit])).not.toThrow();
    expect(() => new TargetAdapters({ kind: 'lambda-alias' }, { kind: 'provisioned-concurrency' }, ALIAS, [fleetKit])).toThrow(
      /cannot build the target kind "lambda-alias" \(it builds "load-balancer", "dns"\)/,
    );
    expect(() => new TargetAdapters(target(LB), { kind: 'provisioned-concurrency' }, ALIAS, [fleetKit])).toThrow(
      /cannot build the capacity kind "provisioned-concurrency" \(it builds "none", "auto-scaling-group", "ecs-service"\)/,
    );
    expect([...created]).toEqual([]);
  });

  it('should not create a client before an adapter needs it', () => {
    const kinds: CapacityConfig[] = [{ kind: 'ecs-service', cluster: 'prod', service: 's' }, { kind: 'auto-scaling-group', autoScalingGroupName: 'g' }];
    for (const kind of kinds) new TargetAdapters(target(DNS), kind, ALIAS, EVERY_KIT);
    expect([...created]).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// config.ts with fleet targets

const PLAN = JSON.stringify({ steps: [{ weight: 10, bakeMs: 120000 }, { weight: 100, bakeMs: 120000 }], soakMs: 120000, healthWindowMs: 60000, teardown: 'manual' });
const FLEET_ENV: Record<string, string> = {
  CUTOVER_TABLE_NAME: 'cutover',
  CUTOVER_TARGET: JSON.stringify(LB),
  CUTOVER_CAPACITY: '{"kind":"ecs-service","cluster":"prod","service":"shop-blue"}',
  CUTOVER_MIGRATION_KEY: 'shop-migration',
  CUTOVER_PLAN: PLAN,
  CUTOVER_PINNED_CAPACITY: '4',
  CUTOVER_EVENT_BUS_NAME: 'cutover-bus',
  CUTOVER_APP_METRICS_NAMESPACE: 'Shop',
};
function configError(read: () => unknown): ConfigError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
const without = (env: Record<string, string>, name: string) => Object.fromEntries(Object.entries(env).filter(([k]) => k !== name));

describe('readControllerConfig with a fleet target', () => {
  it('should key the migration by CUTOVER_MIGRATION_KEY and need no function or alias', () => {
    const config = readControllerConfig(FLEET_ENV);
    expect(config).toMatchObject({
      target: LB,
      capacity: { kind: 'ecs-service', cluster: 'prod', service: 'shop-blue' },
      functionName: '',
      aliasName: '',
      aliasKey: 'shop-migration',
      pinnedCapacity: 4,
      probeTargets: [],
    });
  });

  it('fails without CUTOVER_MIGRATION_KEY', () => {
    const error = configError(() => readControllerConfig(without(FLEET_ENV, 'CUTOVER_MIGRATION_KEY')));
    expect(error.variable).toBe('CUTOVER_MIGRATION_KEY');
    expect(error.message).toBe('environment variable CUTOVER_MIGRATION_KEY must be set, got null');
  });

  it('should accept CUTOVER_PINNED_CAPACITY=auto (sized at the gate)', () => {
    expect(readControllerConfig({ ...FLEET_ENV, CUTOVER_PINNED_CAPACITY: 'auto' }).pinnedCapacity).toBeUndefined();
  });

  it('should refuse a pin other than 0 with nothing to pin (CUTOVER_CAPACITY none, given or by default)', () => {
    for (const env of [{ ...FLEET_ENV, CUTOVER_CAPACITY: '{"kind":"none"}' }, without(FLEET_ENV, 'CUTOVER_CAPACITY')]) {
      const error = configError(() => readControllerConfig(env));
      expect(error.variable).toBe('CUTOVER_PINNED_CAPACITY');
      expect(error.message).toBe('environment variable CUTOVER_PINNED_CAPACITY must be 0 when CUTOVER_CAPACITY is {"kind":"none"} (nothing to pin), got "4"');
      expect(() => readControllerConfig({ ...env, CUTOVER_PINNED_CAPACITY: 'auto' })).toThrow(/must be 0 when CUTOVER_CAPACITY is \{"kind":"none"\}.*got "auto"/);
      expect(readControllerConfig({ ...env, CUTOVER_PINNED_CAPACITY: '0' })).toMatchObject({ capacity: { kind: 'none' }, pinnedCapacity: 0 });
    }
  });

  it('should report a bad CUTOVER_TARGET or CUTOVER_CAPACITY as a ConfigError of that variable, worded once', () => {
    const target = configError(() => readControllerConfig({ ...FLEET_ENV, CUTOVER_TARGET: JSON.stringify({ ...LB, oldTargetGroupArn: 'blue' }) }));
    expect(target.variable).toBe('CUTOVER_TARGET');
    expect(target.message).toBe('environment variable CUTOVER_TARGET field oldTargetGroupArn must be a target group ARN, got "blue"');
    const capacity = configError(() => readControllerConfig({ ...FLEET_ENV, CUTOVER_CAPACITY: '{"kind":"provisioned-concurrency"}' }));
    expect(capacity.variable).toBe('CUTOVER_CAPACITY');
    expect(capacity.message).toMatch(/^environment variable CUTOVER_CAPACITY provisioned-concurrency pins a Lambda version/);
  });

  it('should still need the function and alias for an alias target', () => {
    const alias = { ...without(without(FLEET_ENV, 'CUTOVER_TARGET'), 'CUTOVER_CAPACITY'), CUTOVER_FUNCTION_NAME: 'api', CUTOVER_ALIAS_NAME: 'live' };
    expect(readControllerConfig(alias)).toMatchObject({ target: { kind: 'lambda-alias' }, capacity: { kind: 'provisioned-concurrency' }, aliasKey: 'api:live' });
    expect(configError(() => readControllerConfig(without(alias, 'CUTOVER_FUNCTION_NAME'))).variable).toBe('CUTOVER_FUNCTION_NAME');
  });

  it('should accept probe targets that connect to each side’s load balancer with extra headers', () => {
    const targets = [
      { side: 'old', url: 'https://api.example.com', connectTo: 'shop-2019-1234.us-east-1.elb.amazonaws.com' },
      { side: 'new', url: 'https://api.example.com', connectTo: '10.0.0.7:8443', headers: { 'X-Canary': 'green' } },
    ];
    const config = readControllerConfig({ ...FLEET_ENV, CUTOVER_PROBE_TARGETS: JSON.stringify(targets), CUTOVER_PROBE_FUNCTION_NAME: 'cutover-probe' });
    expect(config.probeTargets).toEqual(targets);
    expect(config.probeFunctionName).toBe('cutover-probe');
    // A probe target needs the function that probes it.
    expect(configError(() => readControllerConfig({ ...FLEET_ENV, CUTOVER_PROBE_TARGETS: JSON.stringify(targets) })).variable).toBe('CUTOVER_PROBE_FUNCTION_NAME');
  });

  const badTargets: [string, unknown, RegExp][] = [
    ['a URL as connectTo', { side: 'new', url: 'https://api.example.com', connectTo: 'https://lb.example.com' }, /entry 1: connectTo must be a host name .*give no scheme.*got "https:\/\/lb\.example\.com"/],
    ['a port out of range', { side: 'new', url: 'https://api.example.com', connectTo: 'lb.example.com:70000' }, /entry 1: connectTo .*the port must be a whole number from 1 to 65535, got "lb\.example\.com:70000"/],
    ['a Host header', { side: 'new', url: 'https://api.example.com', headers: { Host: 'other.example.com' } }, /entry 1: headers: header "Host" is set by the probe and cannot be given/],
    ['headers as a list', { side: 'new', url: 'https://api.example.com', headers: ['X-Canary: green'] }, /entry 1: headers must be an object of header names and string values/],
    ['a number as a header value', { side: 'new', url: 'https://api.example.com', headers: { 'X-Canary': 1 } }, /entry 1: headers: header "X-Canary" must be a string/],
    ['a side that is neither', { side: 'blue', url: 'https://api.example.com' }, /entry 1: side must be "new" or "old", got \{"side":"blue"/],
  ];
  for (const [label, entry, message] of badTargets) {
    it(`should refuse a probe target with ${label}`, () => {
      const env = { ...FLEET_ENV, CUTOVER_PROBE_FUNCTION_NAME: 'p', CUTOVER_PROBE_TARGETS: JSON.stringify([{ side: 'old', url: 'https://api.example.com' }, entry]) };
      const error = configError(() => readControllerConfig(env));
      expect(error.variable).toBe('CUTOVER_PROBE_TARGETS');
      expect(error.message).toMatch(message);
    });
  }
});

describe('readDeployTriggerConfig with a fleet target', () => {
  const env = {
    CUTOVER_TABLE_NAME: 'cutover',
    CUTOVER_CONTROLLER_FUNCTION_NAME: 'cutover-controller',
    CUTOVER_PLAN: PLAN,
    CUTOVER_PINNED_CAPACITY: 'auto',
    CUTOVER_TARGET: JSON.stringify(DNS),
  };

  it('should read the target the trigger checks, with the pin left to the gate', () => {
    expect(readDeployTriggerConfig(env)).toMatchObject({ target: DNS, pinnedCapacity: undefined, controllerFunctionName: 'cutover-controller', judge: {} });
  });

  it('fails on a bad target, naming it', () => {
    const error = configError(() => readDeployTriggerConfig({ ...env, CUTOVER_TARGET: JSON.stringify({ ...DNS, kind: 'route53' }) }));
    expect(error.variable).toBe('CUTOVER_TARGET');
    expect(error.message).toMatch(/kind must be "lambda-alias", "load-balancer" or "dns", got \{"kind":"route53"/);
  });
});
