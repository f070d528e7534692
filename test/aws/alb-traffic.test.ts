import {
  DescribeListenersCommand,
  DescribeRulesCommand,
  ElasticLoadBalancingV2Client,
  ListenerNotFoundException,
  ModifyListenerCommand,
  ModifyRuleCommand,
  RuleNotFoundException,
  type Action,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { clientConfig, describeError } from '../../lambda/aws/clients';
import { UnexpectedRoutingError } from '../../lambda/aws/traffic/alias';
import { LoadBalancerWeightedTraffic, type LoadBalancerWeightedTrafficProps } from '../../lambda/aws/traffic/alb';
import { MigrationController } from '../../lambda/core/controller';
import { Command } from '../../lambda/core/model';
import { RevisionConflictError } from '../../lambda/core/ports';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from '../core/fakes';
import { SPEC } from '../core/mutation-world';
import { startFakeAws, type Reply } from './fake-aws';
import { TEST_CREDENTIALS } from './helpers';

const elb = new ElasticLoadBalancingV2Client({ region: 'us-east-1' });
// The instance only: the clients of the socket tests below keep their real `send`.
const elbMock = mockClient(elb);

const PREFIX = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const LISTENER = `${PREFIX}:listener/app/api/50dc6c495c0c9188/f2f7dc8efc522ab2`;
const RULE = `${PREFIX}:listener-rule/app/api/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee`;
const OLD = `${PREFIX}:targetgroup/blue/73e2d6bc24d8a067`;
const NEW = `${PREFIX}:targetgroup/green/2453ed029918f21f`;
const OTHER = `${PREFIX}:targetgroup/purple/0e5e4b1c8d3f6a21`;

let sleeps: number[] = [];
const sleep = async (ms: number) => {
  sleeps.push(ms);
};

function traffic(overrides: Partial<LoadBalancerWeightedTrafficProps> = {}) {
  return new LoadBalancerWeightedTraffic({ elb, listenerArn: LISTENER, oldTargetGroupArn: OLD, newTargetGroupArn: NEW, sleep, ...overrides });
}

afterEach(() => {
  elbMock.reset();
  sleeps = [];
});

const STICKY = { Enabled: true, DurationSeconds: 300 };
function forward(oldWeight: number, newWeight: number, stickiness: { Enabled: boolean; DurationSeconds?: number } = { Enabled: false }): Action {
  return {
    Type: 'forward',
    Order: 2,
    ForwardConfig: {
      TargetGroups: [
        { TargetGroupArn: OLD, Weight: oldWeight },
        { TargetGroupArn: NEW, Weight: newWeight },
      ],
      TargetGroupStickinessConfig: stickiness,
    },
  };
}
/** An authenticate action as ELB describes it: without the client secret. */
const OIDC: Action = {
  Type: 'authenticate-oidc',
  Order: 1,
  AuthenticateOidcConfig: {
    Issuer: 'https://idp.example.com',
    AuthorizationEndpoint: 'https://idp.example.com/auth',
    TokenEndpoint: 'https://idp.example.com/token',
    UserInfoEndpoint: 'https://idp.example.com/userinfo',
    ClientId: 'cutover',
    OnUnauthenticatedRequest: 'authenticate',
  },
};
function listener(...actions: Action[]) {
  return { Listeners: [{ ListenerArn: LISTENER, Port: 443, Protocol: 'HTTPS' as const, DefaultActions: actions }] };
}
function rules(actions: Action[], nextMarker?: string) {
  return { Rules: [{ RuleArn: RULE, Priority: '10', Conditions: [{ Field: 'path-pattern', Values: ['/v2/*'] }], Actions: actions, IsDefault: false }], ...(nextMarker ? { NextMarker: nextMarker } : {}) };
}
function awsError(name: string, message: string) {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

/** The revision the port gives these actions (read through a client of its own). */
const probeClient = new ElasticLoadBalancingV2Client({ region: 'us-east-1' });
const probeMock = mockClient(probeClient);
async function revisionFor(...actions: Action[]): Promise<string> {
  probeMock.reset();
  probeMock.on(DescribeListenersCommand).resolves(listener(...actions));
  return (await traffic({ elb: probeClient }).getWeight()).revision;
}

describe('LoadBalancerWeightedTraffic.getWeight', () => {
  it("should read the listener's default forward action and give the new group's share", async () => {
    elbMock.on(DescribeListenersCommand).resolves(listener(forward(90, 10)));
    const state = await traffic().getWeight();
    expect(state).toMatchObject({ weight: 10, settled: true });
    expect(state.revision).toMatch(/^alb-[0-9a-f]{32}$/);
    expect(elbMock.commandCalls(DescribeListenersCommand)[0]!.args[0].input).toEqual({ ListenerArns: [LISTENER] });
  });

  it('should give a stable revision of the actions: groups in any order, but every weight, stickiness and other action counts', async () => {
    const base = await revisionFor(OIDC, forward(90, 10));
    const swapped = forward(90, 10);
    swapped.ForwardConfig!.TargetGroups!.reverse();
    expect(await revisionFor(OIDC, swapped)).toBe(base);
    expect(await revisionFor(OIDC, forward(80, 20))).not.toBe(base);
    expect(await revisionFor(OIDC, forward(90, 10, STICKY))).not.toBe(base);
    expect(await revisionFor({ ...OIDC, AuthenticateOidcConfig: { ...OIDC.AuthenticateOidcConfig!, Scope: 'openid email' } }, forward(90, 10))).not.toBe(base);
  });

  it('should read a forward to one of the two groups alone as 0 or 100', async () => {
    elbMock
      .on(DescribeListenersCommand)
      .resolvesOnce(listener({ Type: 'forward', TargetGroupArn: OLD }))
      .resolvesOnce(listener({ Type: 'forward', TargetGroupArn: NEW, ForwardConfig: { TargetGroups: [{ TargetGroupArn: NEW, Weight: 1 }] } }));
    expect((await traffic().getWeight()).weight).toBe(0);
    expect((await traffic().getWeight()).weight).toBe(100);
  });

  it('fails when the forward action has a third group, a stranger alone, both weights at 0, or there is no forward action', async () => {
    const three: Action = { Type: 'forward', ForwardConfig: { TargetGroups: [...forward(80, 10).ForwardConfig!.TargetGroups!, { TargetGroupArn: OTHER, Weight: 10 }] } };
    elbMock
      .on(DescribeListenersCommand)
      .resolvesOnce(listener(three))
      .resolvesOnce(listener({ Type: 'forward', TargetGroupArn: OTHER }))
      .resolvesOnce(listener(forward(0, 0)))
      .resolvesOnce(listener({ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '503' } }))
      .resolvesOnce({ Listeners: [] });
    await expect(traffic().getWeight()).rejects.toThrow(new RegExp(`forwards to 3 target group\\(s\\), including ${OTHER}, which belong to neither side`));
    await expect(traffic().getWeight()).rejects.toBeInstanceOf(UnexpectedRoutingError);
    await expect(traffic().getWeight()).rejects.toThrow(/gives both target groups weight 0/);
    await expect(traffic().getWeight()).rejects.toThrow(/has 0 forward actions \(types: fixed-response\)/);
    await expect(traffic().getWeight()).rejects.toThrow(/was not in the DescribeListeners answer/);
  });

  it("should read a rule's action, following DescribeRules pages", async () => {
    elbMock
      .on(DescribeRulesCommand)
      .resolvesOnce({ Rules: [], NextMarker: 'm-2' })
      .resolvesOnce(rules([forward(75, 25)]));
    expect((await traffic({ listenerArn: undefined, ruleArn: RULE }).getWeight()).weight).toBe(25);
    expect(elbMock.commandCalls(DescribeRulesCommand).map((c) => c.args[0].input)).toEqual([{ RuleArns: [RULE] }, { RuleArns: [RULE], Marker: 'm-2' }]);
  });

  it('should pass ELB failures through after the SDK gave up retrying (throttling, timeout, no such listener or rule)', async () => {
    elbMock
      .on(DescribeListenersCommand)
      .rejectsOnce(awsError('Throttling', 'Rate exceeded'))
      .rejectsOnce(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }))
      .rejectsOnce(new ListenerNotFoundException({ message: 'One or more listeners not found', $metadata: {} }));
    await expect(traffic().getWeight()).rejects.toThrow(/Rate exceeded/);
    await expect(traffic().getWeight()).rejects.toThrow(/socket timed out/);
    await expect(traffic().getWeight()).rejects.toBeInstanceOf(ListenerNotFoundException);
    elbMock.on(DescribeRulesCommand).rejects(new RuleNotFoundException({ message: 'One or more rules not found', $metadata: {} }));
    await expect(traffic({ listenerArn: undefined, ruleArn: RULE }).getWeight()).rejects.toBeInstanceOf(RuleNotFoundException);
  });
});

describe('LoadBalancerWeightedTraffic.setWeight', () => {
  it('should re-read, write the new weights keeping every other part of the actions, then read them back', async () => {
    const before = [OIDC, forward(90, 10, STICKY)];
    const after = [OIDC, forward(75, 25, STICKY)];
    const expected = await revisionFor(...before);
    elbMock.on(DescribeListenersCommand).resolvesOnce(listener(...before)).resolves(listener(...after));
    elbMock.on(ModifyListenerCommand).resolves(listener(...after));

    const state = await traffic().setWeight(25, expected);

    // Written and read back, but counted only once the next tick's read still finds it (see below).
    expect(state).toEqual({ weight: 25, revision: await revisionFor(...after), settled: false });
    const modify = elbMock.commandCalls(ModifyListenerCommand);
    expect(modify).toHaveLength(1);
    expect(modify[0]!.args[0].input).toEqual({
      ListenerArn: LISTENER,
      DefaultActions: [
        // ELB never returns the OIDC client secret: keep the stored one.
        { ...OIDC, AuthenticateOidcConfig: { ...OIDC.AuthenticateOidcConfig, UseExistingClientSecret: true } },
        forward(75, 25, STICKY),
      ],
    });
    expect(elbMock.commandCalls(DescribeListenersCommand)).toHaveLength(2);
  });

  it("should write a rule's actions with ModifyRule, leaving its conditions alone", async () => {
    const expected = (await (async () => {
      probeMock.reset();
      probeMock.on(DescribeRulesCommand).resolves(rules([forward(100, 0)]));
      return traffic({ elb: probeClient, listenerArn: undefined, ruleArn: RULE }).getWeight();
    })()).revision;
    elbMock.on(DescribeRulesCommand).resolvesOnce(rules([forward(100, 0)])).resolves(rules([forward(95, 5)]));
    elbMock.on(ModifyRuleCommand).resolves({});
    expect(await traffic({ listenerArn: undefined, ruleArn: RULE }).setWeight(5, expected)).toMatchObject({ weight: 5 });
    expect(elbMock.commandCalls(ModifyRuleCommand)[0]!.args[0].input).toEqual({ RuleArn: RULE, Actions: [forward(95, 5)] });
    expect(elbMock.commandCalls(ModifyListenerCommand)).toHaveLength(0);
  });

  it('should add the new group to a forward that had the old group alone, dropping the single TargetGroupArn', async () => {
    const before: Action = { Type: 'forward', TargetGroupArn: OLD, ForwardConfig: { TargetGroups: [{ TargetGroupArn: OLD, Weight: 1 }], TargetGroupStickinessConfig: { Enabled: false } } };
    const expected = await revisionFor(before);
    elbMock.on(DescribeListenersCommand).resolvesOnce(listener(before)).resolves(listener(forward(95, 5)));
    elbMock.on(ModifyListenerCommand).resolves({});
    await traffic().setWeight(5, expected);
    const written = elbMock.commandCalls(ModifyListenerCommand)[0]!.args[0].input.DefaultActions![0]!;
    expect(written).toEqual({
      Type: 'forward',
      ForwardConfig: {
        TargetGroups: [
          { TargetGroupArn: OLD, Weight: 95 },
          { TargetGroupArn: NEW, Weight: 5 },
        ],
        TargetGroupStickinessConfig: { Enabled: false },
      },
    });
  });

  it('should map percentages to ELB weights exactly: whole ones sum to 100, fractions use the smallest exact sum', async () => {
    const cases: [number, number, number][] = [
      [0, 100, 0],
      [10, 90, 10],
      [100, 0, 100],
      [12.5, 7, 1],
      [0.1, 999, 1],
    ];
    for (const [percent, oldWeight, newWeight] of cases) {
      elbMock.reset();
      const expected = await revisionFor(forward(1, 1));
      elbMock.on(DescribeListenersCommand).resolvesOnce(listener(forward(1, 1))).resolves(listener(forward(oldWeight, newWeight)));
      elbMock.on(ModifyListenerCommand).resolves({});
      const state = await traffic().setWeight(percent, expected);
      const groups = elbMock.commandCalls(ModifyListenerCommand)[0]!.args[0].input.DefaultActions![0]!.ForwardConfig!.TargetGroups!;
      expect(groups.map((g) => g.Weight), `${percent}%`).toEqual([oldWeight, newWeight]);
      expect(state.weight).toBe(percent);
    }
  });

  it('fails before any call when the weight is not a percentage ELB can express exactly', async () => {
    await expect(traffic().setWeight(-1, 'r')).rejects.toThrow(/from 0 to 100, got -1/);
    await expect(traffic().setWeight(33.333, 'r')).rejects.toThrow(/33.333% cannot be expressed exactly with ELB weights \(integers 0–999\)/);
    expect(elbMock.calls()).toHaveLength(0);
    expect(LoadBalancerWeightedTraffic.canExpress(0.1)).toBe(true);
    expect(LoadBalancerWeightedTraffic.canExpress(100 / 3)).toBe(false); // 2:1 would read back as 33.3333
    expect(LoadBalancerWeightedTraffic.canExpress(33.333)).toBe(false);
  });

  it('should refuse with RevisionConflictError, writing nothing, when the action changed since the revision was read', async () => {
    const stale = await revisionFor(forward(90, 10));
    const theirs = await revisionFor(forward(90, 10, STICKY));
    elbMock.on(DescribeListenersCommand).resolves(listener(forward(90, 10, STICKY)));
    const attempt = traffic().setWeight(50, stale);
    await expect(attempt).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(attempt).rejects.toMatchObject({ expectedRevision: stale, actualRevision: theirs });
    expect(elbMock.commandCalls(ModifyListenerCommand)).toHaveLength(0);
  });

  it('should report a conflict when the read-back shows someone else wrote right after us', async () => {
    const expected = await revisionFor(forward(90, 10));
    const theirs = await revisionFor(forward(100, 0));
    elbMock.on(DescribeListenersCommand).resolvesOnce(listener(forward(90, 10))).resolves(listener(forward(100, 0)));
    elbMock.on(ModifyListenerCommand).resolves({});
    await expect(traffic().setWeight(50, expected)).rejects.toMatchObject({ name: 'RevisionConflictError', expectedRevision: expected, actualRevision: theirs });
    expect(elbMock.commandCalls(ModifyListenerCommand)).toHaveLength(1);
  });

  it('should read again while the read-back still shows the previous action, and fail (not conflict) if it never changes', async () => {
    const expected = await revisionFor(forward(90, 10));
    elbMock
      .on(DescribeListenersCommand)
      .resolvesOnce(listener(forward(90, 10)))
      .resolvesOnce(listener(forward(90, 10)))
      .resolves(listener(forward(50, 50)));
    elbMock.on(ModifyListenerCommand).resolves({});
    expect(await traffic().setWeight(50, expected)).toMatchObject({ weight: 50 });
    expect(sleeps).toEqual([500]);

    elbMock.reset();
    sleeps = [];
    elbMock.on(DescribeListenersCommand).resolves(listener(forward(90, 10)));
    elbMock.on(ModifyListenerCommand).resolves({});
    const attempt = traffic({ readBackAttempts: 2, readBackDelayMs: 100 }).setWeight(50, expected);
    await expect(attempt).rejects.toThrow(/still shows the previous weights \(old 90, new 10\) 2 read\(s\) after the change to 50% was accepted/);
    await expect(attempt).rejects.not.toBeInstanceOf(RevisionConflictError);
    expect(sleeps).toEqual([100]);
  });

  it('should pass a throttled, timed-out or refused write through (after the SDK retries), reading nothing back', async () => {
    const expected = await revisionFor(forward(90, 10));
    elbMock.on(DescribeListenersCommand).resolves(listener(forward(90, 10)));
    elbMock
      .on(ModifyListenerCommand)
      .rejectsOnce(awsError('Throttling', 'Rate exceeded'))
      .rejectsOnce(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }))
      .rejectsOnce(awsError('InvalidConfigurationRequestException', 'target group is not attached to the load balancer'));
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/Rate exceeded/);
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/socket timed out/);
    await expect(traffic().setWeight(50, expected)).rejects.toThrow(/not attached/);
    expect(elbMock.commandCalls(DescribeListenersCommand)).toHaveLength(3); // the re-reads only
  });

  it('should write nothing when both groups already hold the target weights (a twin made the change)', async () => {
    const expected = await revisionFor(forward(50, 50));
    elbMock.on(DescribeListenersCommand).resolves(listener(forward(50, 50)));
    expect(await traffic().setWeight(50, expected)).toEqual({ weight: 50, revision: expected, settled: false });
    expect(elbMock.commandCalls(ModifyListenerCommand)).toHaveLength(0);
  });

  it('should report writes as settled with confirmOnNextRead off, and reads as settled either way', async () => {
    const expected = await revisionFor(forward(90, 10));
    elbMock.on(DescribeListenersCommand).resolvesOnce(listener(forward(90, 10))).resolves(listener(forward(50, 50)));
    elbMock.on(ModifyListenerCommand).resolves({});
    const port = traffic({ confirmOnNextRead: false });
    expect(await port.setWeight(50, expected)).toMatchObject({ weight: 50, settled: true });
    expect(await traffic().getWeight()).toMatchObject({ weight: 50, settled: true });
  });
});

describe('LoadBalancerWeightedTraffic props', () => {
  it('fails when built with values that cannot name a weighted forward, showing the bad value and the fix', () => {
    expect(() => traffic({ listenerArn: undefined })).toThrow(/give exactly one of listenerArn .* or ruleArn .*, got \{\}/);
    expect(() => traffic({ ruleArn: RULE })).toThrow(/give exactly one of listenerArn/);
    expect(() => traffic({ listenerArn: 'api-listener' })).toThrow(/listenerArn must be a listener ARN \(arn:aws:elasticloadbalancing:<region>:<account>:listener\/app\/<lb>\/<id>\/<id>\), got "api-listener"/);
    expect(() => traffic({ listenerArn: undefined, ruleArn: LISTENER })).toThrow(/ruleArn must be a listener rule ARN/);
    expect(() => traffic({ newTargetGroupArn: 'green' })).toThrow(/newTargetGroupArn must be a target group ARN .*, got "green"/);
    expect(() => traffic({ newTargetGroupArn: OLD })).toThrow(/must differ, both are/);
    expect(() => traffic({ readBackAttempts: 0 })).toThrow(/readBackAttempts must be a whole number from 1 to 10, got 0/);
    expect(() => traffic({ readBackDelayMs: -1 })).toThrow(/readBackDelayMs must be a whole number of milliseconds/);
  });
});

// ---------------------------------------------------------------------------------------------
// Over a socket: the real client's retry strategy and query serialization (the mocks above
// replace `send`, and with it the SDK's retries).
// ---------------------------------------------------------------------------------------------

const XMLNS = 'xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"';
function listenersXml(oldWeight: number, newWeight: number): string {
  const group = (arn: string, weight: number) => `<member><TargetGroupArn>${arn}</TargetGroupArn><Weight>${weight}</Weight></member>`;
  const action = `<member><Type>forward</Type><ForwardConfig><TargetGroups>${group(OLD, oldWeight)}${group(NEW, newWeight)}</TargetGroups><TargetGroupStickinessConfig><Enabled>false</Enabled></TargetGroupStickinessConfig></ForwardConfig></member>`;
  const body = `<Listeners><member><ListenerArn>${LISTENER}</ListenerArn><Port>443</Port><Protocol>HTTPS</Protocol><DefaultActions>${action}</DefaultActions></member></Listeners>`;
  return `<DescribeListenersResponse ${XMLNS}><DescribeListenersResult>${body}</DescribeListenersResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DescribeListenersResponse>`;
}

async function overSocket(context: TestContext, script: readonly Reply[]) {
  const server = await startFakeAws('query', script);
  const client = new ElasticLoadBalancingV2Client(clientConfig({ endpoint: server.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 3, requestTimeoutMs: 150, connectionTimeoutMs: 500 }));
  context.onTestFinished(async () => {
    client.destroy();
    await server.close();
  });
  return { server, port: traffic({ elb: client }) };
}

describe('LoadBalancerWeightedTraffic over a socket', () => {
  it('should read the listener after a throttle and a 5XX, retried by the SDK', async (context) => {
    const { server, port } = await overSocket(context, [{ kind: 'throttle' }, { kind: '5xx' }, { kind: 'ok', body: listenersXml(80, 20) }]);
    expect(await port.getWeight()).toMatchObject({ weight: 20, settled: true });
    expect(server.requests.map((r) => r.attempt)).toEqual(['attempt=1; max=3', 'attempt=2; max=3', 'attempt=3; max=3']);
    expect(server.requests[0]!.body).toContain('Action=DescribeListeners');
  });

  it('should fail with the timeout after every attempt timed out', async (context) => {
    const { server, port } = await overSocket(context, [{ kind: 'hang' }]);
    const error = await port.getWeight().then(() => undefined, (e: unknown) => e);
    expect(describeError(error)).toMatch(/TimeoutError/);
    expect(server.requests).toHaveLength(3);
  });

  it('should send ModifyListener with both weighted groups and the stickiness, then read back', async (context) => {
    const modified = `<ModifyListenerResponse ${XMLNS}><ModifyListenerResult><Listeners/></ModifyListenerResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></ModifyListenerResponse>`;
    const { server, port } = await overSocket(context, [
      { kind: 'ok', body: listenersXml(90, 10) },
      { kind: 'ok', body: listenersXml(90, 10) },
      { kind: 'throttle' },
      { kind: 'ok', body: modified },
      { kind: 'ok', body: listenersXml(50, 50) },
    ]);
    const expected = (await port.getWeight()).revision;
    expect(await port.setWeight(50, expected)).toMatchObject({ weight: 50, settled: false });
    const body = new URLSearchParams(server.requests[3]!.body);
    expect(body.get('Action')).toBe('ModifyListener');
    expect(body.get('DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn')).toBe(OLD);
    expect(body.get('DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight')).toBe('50');
    expect(body.get('DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight')).toBe('50');
    expect(body.get('DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled')).toBe('false');
    expect(body.get('DefaultActions.member.1.TargetGroupArn')).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// The race a write without a condition leaves open, through the real controller: an advance's
// ModifyListener is held in flight while an abort rolls back completely, then lands.
// ---------------------------------------------------------------------------------------------

describe('LoadBalancerWeightedTraffic under the tick protocol', () => {
  /** A listener in memory; `holdAt` parks the next write of that weight until `release()`. */
  function fakeListener(mirror: FakeTraffic) {
    let actions: Action[] = [forward(100, 0)];
    let hold: { weight: number; parked: () => void; gate: Promise<void> } | undefined;
    let release = () => {};
    elbMock.on(DescribeListenersCommand).callsFake(async () => listener(...structuredClone(actions)));
    elbMock.on(ModifyListenerCommand).callsFake(async (input: { DefaultActions: Action[] }) => {
      const written = input.DefaultActions[0]!.ForwardConfig!.TargetGroups!.find((g) => g.TargetGroupArn === NEW)!.Weight!;
      if (hold && hold.weight === written) {
        const parked = hold;
        hold = undefined;
        parked.parked();
        await parked.gate;
      }
      actions = structuredClone(input.DefaultActions);
      mirror.weight = written; // the simulated health follows the real split
      return {};
    });
    return {
      weightNow: () => actions[0]!.ForwardConfig!.TargetGroups!.find((g) => g.TargetGroupArn === NEW)!.Weight,
      holdAt(weight: number): Promise<void> {
        return new Promise<void>((parked) => {
          hold = { weight, parked, gate: new Promise<void>((r) => (release = r)) };
        });
      },
      release: () => release(),
    };
  }

  async function race(confirmOnNextRead: boolean) {
    const clock = new FakeClock();
    const mirror = new FakeTraffic();
    const health = new SimulatedHealth(mirror, 42);
    health.requestsPerWindow = 5000;
    health.clock = clock;
    const store = new MemoryStore();
    const elbState = fakeListener(mirror);
    const controller = new MigrationController({
      clock,
      store,
      traffic: traffic({ confirmOnNextRead }),
      health,
      probes: new FakeProbes(clock),
      capacity: new FakeCapacity(),
      events: new CollectingSink(),
    });
    await controller.start(SPEC);
    // Run until the first step (10 %) bakes, then until tick A parks its write of 50 %.
    let status = '';
    for (let i = 0; i < 300 && status !== 'baking'; i++, clock.advance(1000)) status = (await controller.tick(SPEC.id)).record.status;
    expect(status).toBe('baking');
    const parked = elbState.holdAt(50);
    let tickA: Promise<unknown> | undefined;
    for (let i = 0; i < 300 && !tickA; i++) {
      clock.advance(1000);
      const tick = controller.tick(SPEC.id);
      if ((await Promise.race([tick.then(() => 'done'), parked.then(() => 'parked')])) === 'parked') tickA = tick;
    }
    expect(tickA, 'tick A should have started the 50 % write').toBeDefined();
    // Meanwhile an abort rolls back: compare, write 0 %, read back 0 %, all before A's write lands.
    await controller.command(SPEC.id, Command.ABORT, 'operator abort');
    expect(elbState.weightNow()).toBe(0);
    elbState.release(); // A's write lands now, on top of the rollback
    await tickA!.catch(() => undefined); // A loses its next save and stops
    expect(elbState.weightNow()).toBe(50);
    for (let i = 0; i < 5; i++, clock.advance(1000)) await controller.tick(SPEC.id);
    return { weight: elbState.weightNow(), record: (await store.load(SPEC.id))!.record };
  }

  it('should land the rollback anyway: the next tick confirms the write, finds 50 % and rolls back again', async () => {
    const { weight, record } = await race(true);
    expect(weight).toBe(0);
    expect(record).toMatchObject({ status: 'rolled-back', weight: 0 });
  });

  it('shows why confirmation is on by default: without it the routing stays at 50 % under a rolled-back record', async () => {
    const { weight, record } = await race(false);
    expect(record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(weight).toBe(50);
  });
});
