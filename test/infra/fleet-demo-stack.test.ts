/**
 * The fleet demo (`CutoverFleetDemoStack`) and its container (`containers/demo-api`): the template
 * (load balancer, weighted groups, Fargate fleets, the migration and the old fleet's pin), the DNS
 * variant, the cdk-nag gate with a written reason for every acknowledgement, the image's build
 * context, and the container's server on loopback (the REST API and the incident's 413 shift,
 * relayed unchanged).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import * as path from 'node:path';
import { Validations, type App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readContainerConfig, startContainerServer, type ContainerServer } from '../../containers/demo-api/server';
import { CutoverFleetDemoStack, type CutoverFleetDemoStackProps } from '../../lib/fleet-demo-stack';
import { logicalId, removeTestOutputs, testApp } from './fixtures';

const DNS = { hostedZoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com', recordName: 'api' } as const;

function fleetDemo(props: CutoverFleetDemoStackProps = {}, app: App = testApp()) {
  const stack = new CutoverFleetDemoStack(app, props.dns ? 'FleetDns' : 'Fleet', props);
  return { app, stack, template: Template.fromStack(stack) };
}

/** Every resource of a type, as JSON text (tokens included), for checks across nested properties. */
function resourcesText(template: Template, type: string, props: Record<string, unknown> = {}): string {
  return JSON.stringify(template.findResources(type, props));
}

/**
 * What the shared controller reads for the migration: its custom resource's `Settings` (the deploy
 * trigger stores them in the registry), which name the target and the pin.
 */
function controllerEnvironment(template: Template): Record<string, unknown> {
  const triggers = Object.values(template.findResources('Custom::CutoverDeployTrigger'));
  expect(triggers, 'one migration, one deploy trigger resource').toHaveLength(1);
  return (triggers[0] as any).Properties.Settings;
}

/** A port p such that p and p + 1 are free, from [from, to). */
async function freePortPair(from: number, to: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = from + 2 * Math.floor((Math.random() * (to - from)) / 2);
    if ((await free(port)) && (await free(port + 1))) return port;
  }
  throw new Error(`no two free ports found from ${from} to ${to}`);
}

afterAll(removeTestOutputs);

describe('CutoverFleetDemoStack', () => {
  let stack: CutoverFleetDemoStack;
  let template: Template;
  let ids: { oldGroup: string; newGroup: string; oldService: string; newService: string; newTask: string; oldTask: string; listener: string };

  beforeAll(() => {
    ({ stack, template } = fleetDemo({ release: '2', fault: 'desync-413' }));
    ids = {
      oldGroup: logicalId(stack, stack.oldFleet.targetGroup),
      newGroup: logicalId(stack, stack.newFleet.targetGroup),
      oldService: logicalId(stack, stack.oldFleet.service),
      newService: logicalId(stack, stack.newFleet.service),
      oldTask: logicalId(stack, stack.oldFleet.service.taskDefinition),
      newTask: logicalId(stack, stack.newFleet.service.taskDefinition),
      listener: Object.keys(template.findResources('AWS::ElasticLoadBalancingV2::Listener'))[0]!,
    };
  });

  it('should put both fleets behind one internet-facing load balancer on port 80, in public subnets without a NAT gateway', () => {
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing', Type: 'application' });
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true });
  });

  it('should forward the default action to the old group at weight 100 and the new group at 0', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      DefaultActions: [
        {
          Type: 'forward',
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: { Ref: ids.oldGroup }, Weight: 100 },
              { TargetGroupArn: { Ref: ids.newGroup }, Weight: 0 },
            ],
            // No group stickiness: it would hold clients on a side across a rollback.
            TargetGroupStickinessConfig: Match.absent(),
          },
        },
      ],
    });
  });

  it('should have two IP target groups on the demo port, health-checked on the container health port', () => {
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::TargetGroup', 2);
    template.allResourcesProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'ip',
      Port: 8080,
      Protocol: 'HTTP',
      HealthCheckPort: '8081',
      HealthCheckPath: '/health',
      TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }]),
    });
  });

  it('should run two Fargate services of two ARM64 tasks with public IPs, each registered in its own group', () => {
    template.resourceCountIs('AWS::ECS::Service', 2);
    template.allResourcesProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 2,
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'ENABLED' }) },
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 100, DeploymentCircuitBreaker: { Enable: true, Rollback: true } }),
    });
    template.allResourcesProperties('AWS::ECS::TaskDefinition', {
      Cpu: '256',
      Memory: '512',
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    for (const [service, group] of [
      [ids.oldService, ids.oldGroup],
      [ids.newService, ids.newGroup],
    ] as const) {
      template.hasResourceProperties('AWS::ECS::Service', {
        LoadBalancers: [{ ContainerName: 'Api', ContainerPort: 8080, TargetGroupArn: { Ref: group } }],
      });
      expect(JSON.stringify(template.toJSON().Resources[service].Properties.LoadBalancers)).toContain(group);
    }
  });

  it('should run the baseline release on the old fleet and the new release with its fault on the new one', () => {
    const env = (task: string) =>
      Object.fromEntries(
        (template.toJSON().Resources[task].Properties.ContainerDefinitions[0].Environment as { Name: string; Value: string }[]).map((e) => [e.Name, e.Value]),
      );
    const ports = { PORT: '8080', HEALTH_PORT: '8081' };
    expect(env(ids.oldTask)).toEqual({ ...ports, CUTOVER_DEMO_VERSION: 'old-1', DEMO_FAULT_5XX_RATE: '0', DEMO_FAULT_DESYNC_AFTER_413: 'false' });
    expect(env(ids.newTask)).toEqual({ ...ports, CUTOVER_DEMO_VERSION: 'new-2', DEMO_FAULT_5XX_RATE: '0', DEMO_FAULT_DESYNC_AFTER_413: 'true' });
    template.allResourcesProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ ReadonlyRootFilesystem: true, LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }) })],
    });
  });

  it('should let the tasks accept the demo and health ports from the load balancer only', () => {
    const tasksGroup = logicalId(stack, stack.oldFleet.service.connections.securityGroups[0]!);
    for (const port of [8080, 8081]) {
      template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: { 'Fn::GetAtt': [tasksGroup, 'GroupId'] },
        FromPort: port,
        ToPort: port,
        SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LoadBalancerSecurityGroup'), 'GroupId'] },
      });
    }
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 2);
    const tasks = template.toJSON().Resources[tasksGroup].Properties;
    expect(tasks.SecurityGroupIngress ?? []).toEqual([]);
  });

  it('should build the image at deploy from the Dockerfile and the bundled API, for ARM64', () => {
    const assembly = stack.node.root as App;
    const assets = JSON.parse(readFileSync(path.join(assembly.outdir, `${stack.artifactId}.assets.json`), 'utf8'));
    const images = Object.values(assets.dockerImages) as { source: { directory: string; platform?: string } }[];
    expect(images).toHaveLength(1); // one image for both fleets: they differ by environment only
    expect(images[0]!.source.platform).toBe('linux/arm64');
    const context = path.join(assembly.outdir, images[0]!.source.directory);
    expect(readFileSync(path.join(context, 'Dockerfile'), 'utf8')).toMatch(/CMD \["node", "main\.js"\]/);
    const bundle = readFileSync(path.join(context, 'main.js'), 'utf8');
    expect(bundle).toContain('desyncAfter413'); // the local demo server is in the bundle
    expect(bundle).not.toMatch(/require\("\.\.?\//); // and nothing is left to resolve at run time
  });

  it('should start the bundled server in a plain Node process, as the container does', async () => {
    const assembly = stack.node.root as App;
    const assets = JSON.parse(readFileSync(path.join(assembly.outdir, `${stack.artifactId}.assets.json`), 'utf8'));
    const directory = (Object.values(assets.dockerImages)[0] as { source: { directory: string } }).source.directory;
    const bundle = path.join(assembly.outdir, directory, 'main.js');
    // Below the OS's ephemeral range, where the server's own loopback demo server binds.
    const port = await freePortPair(10_000, 30_000);
    const child = spawn(process.execPath, [bundle], {
      env: { PATH: process.env.PATH, PORT: String(port), HEALTH_PORT: String(port + 1), CUTOVER_DEMO_VERSION: 'new-7' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const started = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out);
        });
        void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
        setTimeout(() => reject(new Error(`not listening after 10 s: ${out} ${stderr}`)), 10_000).unref();
      });
      expect(JSON.parse(started.split('\n')[0]!)).toMatchObject({ message: 'listening', port, version: 'new-7' });
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      expect(await response.json()).toMatchObject({ status: 'ok', served_by: 'new-7' });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('should migrate on the listener weights, with the new fleet task definition as the release', () => {
    const env = controllerEnvironment(template);
    const target = JSON.stringify(env.CUTOVER_TARGET);
    expect(target).toContain('load-balancer');
    expect(target).toContain(`{"Ref":"${ids.listener}"}`);
    expect(target).toContain(`{"Ref":"${ids.oldGroup}"}`);
    expect(target).toContain(`{"Ref":"${ids.newGroup}"}`);
    // The deploy trigger starts a migration when the release changes: the task definition's ARN
    // (`Ref`), which changes with every revision CloudFormation registers.
    const triggers = template.findResources('Custom::CutoverDeployTrigger');
    expect(Object.keys(triggers)).toHaveLength(1);
    const trigger = Object.values(triggers)[0]!;
    expect(JSON.stringify(trigger.Properties)).toContain(`{"Ref":"${ids.newTask}"}`);
    // ... once the new fleet's service is steady on it, not while ECS still replaces its tasks.
    expect(trigger.DependsOn).toContain(ids.newService);
    // Only the migration moves weights: it may modify this listener and nothing else.
    const policies = resourcesText(template, 'AWS::IAM::Policy');
    expect(policies).toContain('elasticloadbalancing:ModifyListener');
    expect(policies).toContain(`{"Ref":"${ids.listener}"}`);
  });

  it('should probe each fleet alone through listener rules on X-Cutover-Probe-Side', () => {
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::ListenerRule', 2);
    for (const [side, group] of [
      ['old', ids.oldGroup],
      ['new', ids.newGroup],
    ] as const) {
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
        ListenerArn: { Ref: ids.listener },
        Conditions: [{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-Cutover-Probe-Side', Values: [side] } }],
        Actions: [Match.objectLike({ Type: 'forward', TargetGroupArn: { Ref: group } })],
      });
    }
    // The probe's health step asks the demo API's health route.
    template.hasResourceProperties('Custom::CutoverDeployTrigger', { Settings: Match.objectLike({ CUTOVER_PROBE_PATH: '/health' }) });
  });

  it('should pin the old fleet and leave the new one alone', () => {
    const capacity = JSON.stringify(controllerEnvironment(template).CUTOVER_CAPACITY);
    expect(capacity).toContain('ecs-service');
    expect(capacity).toContain(ids.oldService);
    expect(capacity).not.toContain(ids.newService);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    const pin = policies.find((s: any) => [s.Action].flat().includes('ecs:UpdateService'));
    expect(pin, 'a statement allowing ecs:UpdateService').toBeDefined();
    expect(pin.Resource).toEqual({ Ref: ids.oldService }); // the old service's ARN, nothing else
  });

  it('should watch no alarm of its own: the load balancer metrics count the probe too', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    expect(stack.migration.alarms).toHaveLength(0);
  });

  it('should output what the walkthrough reads', () => {
    expect(Object.keys(template.toJSON().Outputs)).toEqual(
      expect.arrayContaining([
        'Url',
        'LoadBalancerUrl',
        'ListenerArn',
        'OldTargetGroupArn',
        'NewTargetGroupArn',
        'ClusterName',
        'OldServiceName',
        'NewServiceName',
        'ControllerFunctionName',
        'TopicArn',
        'DashboardName',
      ]),
    );
  });

  it('should change only the new fleet task definition when the release or the fault changes', () => {
    const task = (t: Template, id: string) => JSON.stringify(t.toJSON().Resources[id].Properties);
    for (const next of [fleetDemo({ release: '3', fault: 'desync-413' }).template, fleetDemo({ release: '2', fault: 'none' }).template]) {
      expect(task(next, ids.newTask)).not.toBe(task(template, ids.newTask));
      expect(task(next, ids.oldTask)).toBe(task(template, ids.oldTask));
      expect(JSON.stringify(next.toJSON().Resources[ids.listener])).toBe(JSON.stringify(template.toJSON().Resources[ids.listener]));
    }
  });

  it('fails with the bad value and the fix when a prop is invalid', () => {
    expect(() => fleetDemo({ release: 'v 2' })).toThrow(/release must be 1–28 of \[A-Za-z0-9._-\], e\.g\. "2", got "v 2"/);
    expect(() => fleetDemo({ fault: 'slow' as never })).toThrow(/fault must be one of none, desync-413, 5xx, got "slow"/);
    expect(() => fleetDemo({ tasksPerFleet: 0 })).toThrow(/tasksPerFleet must be a whole number from 1 to 10, got 0/);
    expect(() => fleetDemo({ dns: { ...DNS, hostedZoneId: 'zone' } })).toThrow(/dns\.hostedZoneId must be a hosted zone id .* got "zone"/);
    expect(() => fleetDemo({ dns: { ...DNS, recordName: 'example.com' } })).toThrow(/below the zone apex/);
    expect(() => fleetDemo({ dns: { ...DNS, recordName: 'a b' } })).toThrow(/dns\.recordName must be a host name .* got "a b"/);
  });
});

describe('CutoverFleetDemoStack with DNS', () => {
  let stack: CutoverFleetDemoStack;
  let template: Template;

  beforeAll(() => {
    ({ stack, template } = fleetDemo({ dns: DNS }));
  });

  it('should put each fleet behind its own load balancer, forwarding to its group only', () => {
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 2);
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 2);
    for (const fleet of [stack.oldFleet, stack.newFleet]) {
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
        Port: 80,
        DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: logicalId(stack, fleet.targetGroup) } }],
      });
    }
    // The client keepalive stays ELB's: the controller shortens the new one's after a rollback
    // (the active drain), and may do so on the new load balancer only.
    expect(JSON.stringify(template.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))).not.toContain('client_keep_alive');
    const drain = Object.values(template.findResources('AWS::IAM::Policy'))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement)
      .find((st: any) => [st.Action].flat().includes('elasticloadbalancing:ModifyLoadBalancerAttributes'));
    expect(drain?.Resource).toEqual({ Ref: logicalId(stack, stack.loadBalancers[1]!) });
  });

  it('should migrate the weighted records of the record name in the given zone', () => {
    expect(stack.url).toBe('http://api.example.com/');
    const text = JSON.stringify(template.toJSON());
    expect(text).toContain('api.example.com');
    expect(text).toContain(DNS.hostedZoneId);
    const target = JSON.stringify(controllerEnvironment(template).CUTOVER_TARGET);
    expect(target).toContain('dns');
    expect(target).toContain('api.example.com');
    expect(Object.keys(template.toJSON().Outputs)).toEqual(expect.arrayContaining(['Url', 'OldLoadBalancerUrl', 'NewLoadBalancerUrl']));
  });

  it('should accept the record name as a whole name too', () => {
    expect(fleetDemo({ dns: { ...DNS, recordName: 'API.Example.com.' } }).stack.url).toBe('http://api.example.com/');
  });
});

// ---- cdk-nag ----------------------------------------------------------------------------------------

interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: unknown;
}

function acknowledgementsIn(root: IConstruct): Acknowledgement[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.entries(entry.data as Record<string, unknown>).map(([id, reason]) => ({ path: construct.node.path, id, reason }))),
  );
}

describe('cdk-nag AwsSolutions gate of the fleet demo', () => {
  const gates: { name: string; findings: string[]; acknowledgements: Acknowledgement[] }[] = [];

  beforeAll(() => {
    // Also as `cdk deploy` synthesizes: with an account and a region, ARNs get a literal partition.
    const deployed = { env: { account: '123456789012', region: 'us-east-1' } };
    for (const [name, props] of [
      ['load balancer', { release: '2', fault: '5xx' }],
      ['DNS', { dns: DNS }],
      ['load balancer, account and region', { ...deployed, release: '2', fault: 'desync-413' }],
      ['DNS, account and region', { ...deployed, dns: DNS }],
    ] as const) {
      const app = testApp();
      new CutoverFleetDemoStack(app, 'Fleet', props as CutoverFleetDemoStackProps);
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      app.synth(); // throws on any unacknowledged finding
      const report = new AwsSolutionsChecks().validateScope(app);
      const findings = report.violations.flatMap((v) =>
        v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${'constructPath' in r ? r.constructPath : r.resourceLogicalId}`),
      );
      gates.push({ name, findings, acknowledgements: acknowledgementsIn(app) });
    }
  });

  it('should leave no unacknowledged finding in either variant', () => {
    for (const gate of gates) expect(gate.findings, gate.name).toEqual([]);
  });

  it('should give every acknowledgement a written reason, on a construct below the stack', () => {
    for (const gate of gates) {
      expect(gate.acknowledgements.length).toBeGreaterThan(0);
      for (const ack of gate.acknowledgements) {
        expect(typeof ack.reason, `${ack.id} at ${ack.path}`).toBe('string');
        expect((ack.reason as string).trim().length, `${ack.id} at ${ack.path} has a real reason`).toBeGreaterThanOrEqual(40);
        // aws-cdk itself acknowledges a CloudFormation validation warning on the stack (literal AZs).
        if (/AwsSolutions/.test(ack.id)) expect(ack.path.split('/').length, `${ack.id} at ${ack.path}`).toBeGreaterThan(1);
      }
    }
  });

  it("should acknowledge the demo's own findings where they arise", () => {
    const ids = gates[0]!.acknowledgements.map((a) => `${a.path} ${a.id.replace(/^annotation::/i, '')}`);
    expect(ids).toEqual(
      expect.arrayContaining([
        'Fleet/Vpc AwsSolutions-VPC7',
        'Fleet/Cluster AwsSolutions-ECS4',
        'Fleet/OldTask AwsSolutions-ECS2',
        'Fleet/NewTask AwsSolutions-ECS2',
        'Fleet/OldTask/ExecutionRole/DefaultPolicy AwsSolutions-IAM5[Resource::*]',
        'Fleet/LoadBalancer AwsSolutions-ELB2',
        'Fleet/LoadBalancerSecurityGroup AwsSolutions-EC23',
      ]),
    );
  });
});

// ---- the container ------------------------------------------------------------------------------

describe('the demo API container server', () => {
  it('should read its environment, with defaults', () => {
    expect(readContainerConfig({})).toEqual({ port: 8080, healthPort: 8081, version: 'demo', faults: {} });
    expect(
      readContainerConfig({ PORT: '9000', HEALTH_PORT: '9001', CUTOVER_DEMO_VERSION: 'new-2', DEMO_FAULT_5XX_RATE: '0.25', DEMO_FAULT_DESYNC_AFTER_413: 'true' }),
    ).toEqual({
      port: 9000,
      healthPort: 9001,
      version: 'new-2',
      faults: { errorRate5xx: 0.25, desyncAfter413: true },
    });
  });

  it('fails on a bad variable, naming it and its value', () => {
    expect(() => readContainerConfig({ PORT: '80a' })).toThrow(/PORT must be a port number from 1 to 65535, got "80a"/);
    expect(() => readContainerConfig({ HEALTH_PORT: '8080' })).toThrow(/PORT and HEALTH_PORT must differ, both are 8080/);
    expect(() => readContainerConfig({ CUTOVER_DEMO_VERSION: 'new 2' })).toThrow(/CUTOVER_DEMO_VERSION must be .* got "new 2"/);
    expect(() => readContainerConfig({ DEMO_FAULT_5XX_RATE: '2' })).toThrow(/DEMO_FAULT_5XX_RATE must be a number from 0 to 1, got "2"/);
    expect(() => readContainerConfig({ DEMO_FAULT_DESYNC_AFTER_413: 'yes' })).toThrow(/DEMO_FAULT_DESYNC_AFTER_413 must be "true" or "false", got "yes"/);
  });

  /** Sends raw requests on ONE connection, one after the other, and returns each answer's status and request id. */
  async function onOneConnection(port: number, requests: string[]): Promise<{ status: number; requestId: string | undefined }[]> {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const answers = () => [...received.matchAll(/HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n/g)];
    try {
      for (const [i, request] of requests.entries()) {
        socket.write(request);
        const deadline = Date.now() + 5000;
        while (answers().length <= i && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      socket.destroy();
    }
    return answers().map((m) => ({ status: Number(m[1]), requestId: /x-request-id: (\S+)/i.exec(m[0])?.[1] }));
  }

  const big = 'x'.repeat(20 * 1024);
  const requests = [
    `POST /apps/demo/events HTTP/1.1\r\nHost: demo\r\nX-Request-Id: big\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
    'GET /apps/demo/channels HTTP/1.1\r\nHost: demo\r\nX-Request-Id: second\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: demo\r\nX-Request-Id: third\r\n\r\n',
  ];

  for (const desync of [false, true]) {
    it(`should relay the demo API on Keep-Alive connections ${desync ? 'with' : 'without'} the incident's 413 shift`, async () => {
      let server: ContainerServer | undefined;
      try {
        server = await startContainerServer({ port: 0, healthPort: 0, host: '127.0.0.1', version: 'new-2', faults: { desyncAfter413: desync } });
        const health = await fetch(`http://127.0.0.1:${server.port}/health`);
        expect(await health.json()).toMatchObject({ status: 'ok', served_by: 'new-2' });
        const check = await fetch(`http://127.0.0.1:${server.healthPort}/health`);
        expect([check.status, await check.json()]).toEqual([200, { status: 'ok', version: 'new-2' }]);
        const answers = await onOneConnection(server.port, requests);
        expect(answers.map((a) => a.status)).toEqual(desync ? [413, 413, 200] : [413, 200, 200]);
        // With the bug every answer after the 413 is the previous request's.
        expect(answers.map((a) => a.requestId)).toEqual(desync ? ['big', 'big', 'second'] : ['big', 'second', 'third']);
        expect(server.stats().shiftedConnections).toBe(desync ? 1 : 0);
      } finally {
        await server?.close();
        await server?.close(); // twice is harmless
      }
    });
  }

  it("should answer the load balancer's health check whatever the API answers", async () => {
    const server = await startContainerServer({ port: 0, healthPort: 0, host: '127.0.0.1', version: 'bad', faults: { errorRate5xx: 1 } });
    try {
      expect((await fetch(`http://127.0.0.1:${server.port}/health`)).status).toBeGreaterThanOrEqual(500);
      for (let i = 0; i < 5; i++) expect((await fetch(`http://127.0.0.1:${server.healthPort}/health`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${server.healthPort}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('fails to start on a port in use, leaving nothing running', async () => {
    const first = await startContainerServer({ port: 0, healthPort: 0, host: '127.0.0.1', version: 'a', faults: {} });
    try {
      await expect(startContainerServer({ port: first.port, healthPort: 0, host: '127.0.0.1', version: 'b', faults: {} })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      await first.close();
    }
  });
});
