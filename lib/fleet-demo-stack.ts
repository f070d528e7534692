/**
 * `CutoverFleetDemoStack`: a fleet migration in an empty account with `cdk deploy`.
 *
 * - Two ECS Fargate services run the demo REST API (`containers/demo-api`, the rehearsal's own
 *   demo server): the OLD fleet always on the baseline release, the NEW fleet on the release being
 *   rolled out (`release`, optionally with the incident's bug or 5XX: `fault`).
 * - One internet-facing Application Load Balancer whose listener's default action forwards to the
 *   two fleets' target groups, old 100 / new 0: Cutover moves those weights.
 *   With `dns`, each fleet gets its own load balancer instead, and Cutover moves the weights of
 *   two weighted CNAME records in the given hosted zone.
 * - A `CanaryMigration` on it, with the old fleet's desired count pinned until teardown, and the
 *   Keep-Alive probe reaching each fleet alone.
 *
 * Why Fargate and public subnets: docs/fleet-demo.md (choice, and the hourly cost by part).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, Stage, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { CanaryMigration } from './canary-migration';
import { OldCapacity } from './capacity/old-capacity';
import { CutoverValidationError, show } from './errors';
import { REPO_ROOT } from './function-defaults';
import { HealthCheck } from './health-check';
import { TeardownPolicy, TrafficShiftPlan } from './plan';
import type { IMigrationTarget } from './targets/binding';
import { MigrationTarget } from './targets/migration-target';

/** What the new fleet's app does wrong, to watch a rollback. */
export type FleetDemoFault =
  /** Nothing. */
  | 'none'
  /** The incident's bug: after a 413 on a Keep-Alive connection, every later answer on it is the previous request's. */
  | 'desync-413'
  /** A quarter of API requests (not `/health`) answered with 500 or 503. */
  | '5xx';

/** The faults `fault` accepts. */
export const FLEET_DEMO_FAULTS: readonly FleetDemoFault[] = ['none', 'desync-413', '5xx'];

/** The DNS variant: each fleet behind its own load balancer, weighted CNAME records in a zone. */
export interface FleetDemoDnsProps {
  /** Id of the public hosted zone that gets the records, `Z…`. */
  readonly hostedZoneId: string;
  /** The zone's domain name, e.g. `example.com`. */
  readonly zoneName: string;
  /** The records' name: relative to the zone (`api`) or whole (`api.example.com`). */
  readonly recordName: string;
  /**
   * TTL of the weighted records, 1–60 s: every demo step bakes 3 minutes, at least three TTLs.
   * @default Duration.seconds(60)
   */
  readonly ttl?: Duration;
}

/** Props of `CutoverFleetDemoStack`. */
export interface CutoverFleetDemoStackProps extends StackProps {
  /**
   * Label of the new fleet's release. It is part of the new fleet's task definition, so a new
   * value registers a new revision and the next deploy migrates to it.
   * @default '1' (the old fleet's baseline release)
   */
  readonly release?: string;
  /**
   * What the new fleet's app does wrong, to watch a rollback.
   * @default 'none'
   */
  readonly fault?: FleetDemoFault;
  /**
   * Fargate tasks per fleet (0.25 vCPU, 0.5 GB, ARM64 each): the old fleet's pinned capacity.
   * @default 2
   */
  readonly tasksPerFleet?: number;
  /**
   * Shift traffic with weighted DNS records instead of the load balancer's weighted target groups.
   * @default - one load balancer, weighted target groups
   */
  readonly dns?: FleetDemoDnsProps;
  /**
   * Email address subscribed to the migration's notifications (rollbacks, pauses, promotions).
   * @default - no subscription
   */
  readonly notificationEmail?: string;
}

/** The release the old fleet always runs: the baseline every release is compared with. */
export const FLEET_DEMO_BASELINE_RELEASE = '1';
/** The port the demo API container listens on. */
export const FLEET_DEMO_CONTAINER_PORT = 8080;
/** The container's health check port (whether its server is up, whatever the faults). */
export const FLEET_DEMO_HEALTH_PORT = 8081;
/** Share of API requests the `5xx` fault fails. */
const FAULT_5XX_RATE = 0.25;

/** One fleet: its service and the target group the load balancer forwards to. */
export interface FleetDemoFleet {
  readonly service: ecs.FargateService;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
}

/** The fleet demo: two Fargate fleets behind a weighted load balancer (or DNS), migrated by Cutover. */
export class CutoverFleetDemoStack extends Stack {
  /** The migration (its controller, dashboard and topic). */
  public readonly migration: CanaryMigration;
  public readonly cluster: ecs.Cluster;
  /** The fleet on the baseline release, pinned during a migration. */
  public readonly oldFleet: FleetDemoFleet;
  /** The fleet on the release being rolled out. */
  public readonly newFleet: FleetDemoFleet;
  /** The load balancer of both fleets, or (DNS variant) of the old and of the new fleet. */
  public readonly loadBalancers: readonly elbv2.ApplicationLoadBalancer[];
  /** The URL clients use: the load balancer's, or the weighted record's. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: CutoverFleetDemoStackProps = {}) {
    super(scope, id, props);
    const release = props.release ?? FLEET_DEMO_BASELINE_RELEASE;
    const fault = props.fault ?? 'none';
    const tasks = props.tasksPerFleet ?? 2;
    // The release becomes part of a 32-character label (`new-<release>`) in every answer.
    if (typeof release !== 'string' || !/^[A-Za-z0-9._-]{1,28}$/.test(release)) {
      throw new CutoverValidationError(`release must be 1–28 of [A-Za-z0-9._-], e.g. "2", got ${show(release)}`, this);
    }
    if (!FLEET_DEMO_FAULTS.includes(fault)) {
      throw new CutoverValidationError(`fault must be one of ${FLEET_DEMO_FAULTS.join(', ')}, got ${show(fault)}`, this);
    }
    if (!(Number.isInteger(tasks) && tasks >= 1 && tasks <= 10)) {
      throw new CutoverValidationError(`tasksPerFleet must be a whole number from 1 to 10, got ${show(tasks)}`, this);
    }
    const dns = props.dns ? checkedDns(this, props.dns) : undefined;

    // --- Network: public subnets only --------------------------------------------------------------
    // Tasks get public IPs and pull their image and write their logs straight through the internet
    // gateway: no NAT gateway, the largest fixed cost of a private-subnet layout (docs/fleet-demo.md).
    // Only the load balancer's security group is open; the tasks accept only the load balancer.
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      // Nothing here uses the default security group; restricting it would cost a custom resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    Validations.of(vpc).acknowledge({
      id: 'AwsSolutions-VPC7',
      reason:
        'A short-lived demo VPC with one public load balancer and tasks that accept only it; flow logs would add a log group and ingestion charges, and the migration is judged on target group metrics, not on flows.',
    });

    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason:
        'Container Insights is billed as custom metrics and log ingestion per task; the demo is judged on the load balancer target group metrics and its containers log to CloudWatch Logs.',
    });
    const logGroup = new logs.LogGroup(this, 'ApiLogs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    const image = demoApiImage(this);
    const tasksSecurityGroup = new ec2.SecurityGroup(this, 'TasksSecurityGroup', {
      vpc,
      description: 'Cutover fleet demo tasks: the demo API port, from the load balancers only',
    });

    const makeFleet = (side: 'old' | 'new', fleetRelease: string, fleetFault: FleetDemoFault): FleetDemoFleet => {
      const Side = side === 'old' ? 'Old' : 'New';
      const taskDefinition = new ecs.FargateTaskDefinition(this, `${Side}Task`, {
        cpu: 256,
        memoryLimitMiB: 512,
        // Graviton: 20 % less per vCPU-hour than x86 on Fargate; the image has no native code.
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      });
      taskDefinition.addContainer('Api', {
        image,
        portMappings: [{ containerPort: FLEET_DEMO_CONTAINER_PORT }, { containerPort: FLEET_DEMO_HEALTH_PORT }],
        environment: {
          PORT: String(FLEET_DEMO_CONTAINER_PORT),
          HEALTH_PORT: String(FLEET_DEMO_HEALTH_PORT),
          CUTOVER_DEMO_VERSION: `${side}-${fleetRelease}`,
          DEMO_FAULT_5XX_RATE: String(fleetFault === '5xx' ? FAULT_5XX_RATE : 0),
          DEMO_FAULT_DESYNC_AFTER_413: String(fleetFault === 'desync-413'),
        },
        logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: side }),
        readonlyRootFilesystem: true,
      });
      Validations.of(taskDefinition).acknowledge({
        id: 'AwsSolutions-ECS2',
        reason: 'The environment holds only the release label, the port and the demo fault switches: nothing secret.',
      });
      // aws-cdk's image pull grant (made when the container is added) includes ecr:GetAuthorizationToken on `*`.
      const executionPolicy = taskDefinition.executionRole?.node.tryFindChild('DefaultPolicy');
      if (executionPolicy) {
        Validations.of(executionPolicy).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason:
            'ecr:GetAuthorizationToken has no resource-level permissions (its resource must be *); the image pull itself is granted on the CDK asset repository only.',
        });
      }
      const service = new ecs.FargateService(this, `${Side}Service`, {
        cluster: this.cluster,
        taskDefinition,
        desiredCount: tasks,
        assignPublicIp: true,
        vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
        securityGroups: [tasksSecurityGroup],
        // A release rolls in before old tasks go, and a release whose tasks never get healthy rolls back.
        minHealthyPercent: 100,
        maxHealthyPercent: 200,
        circuitBreaker: { enable: true, rollback: true },
      });
      const targetGroup = new elbv2.ApplicationTargetGroup(this, `${Side}Targets`, {
        vpc,
        port: FLEET_DEMO_CONTAINER_PORT,
        protocol: elbv2.ApplicationProtocol.HTTP,
        targetType: elbv2.TargetType.IP,
        targets: [service],
        // On the container's own health port: a task is healthy while its server is up. A health
        // check of the API itself would fail with the `5xx` fault, and ECS would replace the tasks
        // (its circuit breaker rolling the deploy back) before Cutover judged the release.
        healthCheck: {
          port: String(FLEET_DEMO_HEALTH_PORT),
          path: '/health',
          interval: Duration.seconds(10),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 2,
        },
        // A task leaving (a new release rolling in) is drained for 30 s, not the default 300 s.
        deregistrationDelay: Duration.seconds(30),
      });
      return { service, targetGroup };
    };
    this.oldFleet = makeFleet('old', FLEET_DEMO_BASELINE_RELEASE, 'none');
    this.newFleet = makeFleet('new', release, fault);

    // --- Load balancers ------------------------------------------------------------------------------
    const makeLoadBalancer = (logicalId: string) => {
      const securityGroup = new ec2.SecurityGroup(this, `${logicalId}SecurityGroup`, {
        vpc,
        description: 'Cutover fleet demo load balancer: HTTP from anywhere',
        allowAllOutbound: false,
      });
      securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'HTTP from anywhere (public demo)');
      Validations.of(securityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'A public demo API: clients and the probe reach the load balancer from anywhere, on port 80 only.',
      });
      const loadBalancer = new elbv2.ApplicationLoadBalancer(this, logicalId, { vpc, internetFacing: true, securityGroup });
      // The traffic port's rules come with the target groups; the health check port's do not.
      loadBalancer.connections.allowTo(tasksSecurityGroup, ec2.Port.tcp(FLEET_DEMO_HEALTH_PORT), 'Health checks of the demo API tasks');
      Validations.of(loadBalancer).acknowledge({
        id: 'AwsSolutions-ELB2',
        reason:
          'Access logs need an S3 bucket to empty before every destroy; the migration is judged on target group metrics, which the load balancer publishes without them.',
      });
      return loadBalancer;
    };
    const newRelease = this.newFleet.service.taskDefinition.taskDefinitionArn;
    let target: IMigrationTarget;
    if (dns) {
      // One load balancer per fleet: a client's fleet is chosen by the answer it got for the name,
      // and kept for as long as its Keep-Alive connection lives, whatever the weights say later.
      // Their client keepalive is left at ELB's default: after a rollback the controller shortens
      // the new one's to 60 s itself (the active drain), and puts it back after teardown.
      const oldLoadBalancer = makeLoadBalancer('OldLoadBalancer');
      const newLoadBalancer = makeLoadBalancer('NewLoadBalancer');
      oldLoadBalancer.addListener('Http', { port: 80, open: false, defaultAction: elbv2.ListenerAction.forward([this.oldFleet.targetGroup]) });
      newLoadBalancer.addListener('Http', { port: 80, open: false, defaultAction: elbv2.ListenerAction.forward([this.newFleet.targetGroup]) });
      this.loadBalancers = [oldLoadBalancer, newLoadBalancer];
      this.url = `http://${dns.recordName}/`;
      target = MigrationTarget.dns({
        // An imported zone is only a reference: nothing in it but the weighted records is touched.
        zone: route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', { hostedZoneId: dns.hostedZoneId, zoneName: dns.zoneName }),
        recordName: dns.recordName,
        ttl: dns.ttl,
        old: { loadBalancer: oldLoadBalancer },
        new: { loadBalancer: newLoadBalancer },
        release: newRelease,
        probe: { url: this.url },
      });
    } else {
      const loadBalancer = makeLoadBalancer('LoadBalancer');
      // Both groups in the default action from the start, so every change Cutover makes is a
      // weight change. CloudFormation sets these weights only when it creates or changes the
      // listener; between deploys they are Cutover's.
      const listener = loadBalancer.addListener('Http', {
        port: 80,
        open: false,
        defaultAction: elbv2.ListenerAction.weightedForward([
          { targetGroup: this.oldFleet.targetGroup, weight: 100 },
          { targetGroup: this.newFleet.targetGroup, weight: 0 },
        ]),
      });
      this.loadBalancers = [loadBalancer];
      this.url = `http://${loadBalancer.loadBalancerDnsName}/`;
      new CfnOutput(this, 'ListenerArn', { value: listener.listenerArn, description: 'Its default action holds the two weights' });
      target = MigrationTarget.loadBalancer({
        loadBalancer,
        listener,
        oldTargetGroup: this.oldFleet.targetGroup,
        newTargetGroup: this.newFleet.targetGroup,
        release: newRelease,
        probe: { url: `http://${loadBalancer.loadBalancerDnsName}` },
      });
    }

    // --- The migration ---------------------------------------------------------------------------------
    this.migration = new CanaryMigration(this, 'Cutover', {
      target,
      // The old fleet keeps its tasks until teardown, so a rollback lands on a fleet at full size.
      oldCapacity: OldCapacity.ecsService(this.oldFleet.service),
      // Short steps so that one demo run takes about 20 minutes; each step is three 60 s TTLs long.
      plan: TrafficShiftPlan.steps(
        [
          { weight: 10, bake: Duration.minutes(3) },
          { weight: 50, bake: Duration.minutes(3) },
          { weight: 100, bake: Duration.minutes(3) },
        ],
        { soak: Duration.minutes(5), teardown: TeardownPolicy.AFTER_SOAK },
      ),
      // Demo traffic comes from a shell loop: 20 requests per step are enough to judge.
      healthCheck: HealthCheck.custom({ minRequests: 20, maxHold: Duration.minutes(15) }),
      probePath: '/health',
      removalPolicy: RemovalPolicy.DESTROY,
      logRetention: logs.RetentionDays.ONE_WEEK,
    });
    // CloudFormation waits for an ECS service update to be steady. The deploy trigger waits for the
    // new fleet's: a migration starts once every task of the new group runs the new release, never
    // while ECS still replaces the previous release's tasks in it.
    this.migration.deployTrigger.node.addDependency(this.newFleet.service);
    if (props.notificationEmail !== undefined) {
      this.migration.topic.addSubscription(new subscriptions.EmailSubscription(props.notificationEmail));
    }
    // No alarm on the new group's 5XX count, unlike the Lambda demo: the load balancer's metrics
    // count the probe's requests too, which reach the new fleet from the gate on, and an alarm
    // holds the gate. The judge reads the same metrics with the probe's own answers taken out.

    new CfnOutput(this, 'Url', { value: this.url, description: 'The demo API as clients reach it' });
    this.loadBalancers.forEach((lb, i) => {
      const name = this.loadBalancers.length === 1 ? 'LoadBalancerUrl' : ['OldLoadBalancerUrl', 'NewLoadBalancerUrl'][i]!;
      new CfnOutput(this, name, { value: `http://${lb.loadBalancerDnsName}/`, description: 'Load balancer (direct)' });
    });
    new CfnOutput(this, 'OldTargetGroupArn', { value: this.oldFleet.targetGroup.targetGroupArn });
    new CfnOutput(this, 'NewTargetGroupArn', { value: this.newFleet.targetGroup.targetGroupArn });
    new CfnOutput(this, 'ClusterName', { value: this.cluster.clusterName });
    new CfnOutput(this, 'OldServiceName', { value: this.oldFleet.service.serviceName, description: 'Old fleet (pinned during a migration)' });
    new CfnOutput(this, 'NewServiceName', { value: this.newFleet.service.serviceName, description: 'New fleet (the release rolled out)' });
    new CfnOutput(this, 'ControllerFunctionName', {
      value: this.migration.controllerFunction.functionName,
      description: 'Invoke with {"command":"pause|resume|abort|promote|teardown","reason":"..."}',
    });
    new CfnOutput(this, 'TopicArn', { value: this.migration.topic.topicArn, description: 'Rollbacks, pauses and promotions' });
    if (this.migration.dashboard) {
      new CfnOutput(this, 'DashboardName', { value: this.migration.dashboard.dashboardName, description: 'CloudWatch dashboard of the migration' });
    }
  }
}

/** `dns` checked, with the record's whole name (`api` in `example.com` → `api.example.com`). */
function checkedDns(scope: Construct, dns: FleetDemoDnsProps): Required<FleetDemoDnsProps> {
  const fail = (message: string): never => {
    throw new CutoverValidationError(message, scope);
  };
  const label = '(?!-)[a-z0-9-]{1,63}(?<!-)';
  const hostName = new RegExp(`^${label}(\\.${label})*$`);
  if (typeof dns.hostedZoneId !== 'string' || !/^Z[A-Z0-9]{1,31}$/.test(dns.hostedZoneId)) {
    fail(`dns.hostedZoneId must be a hosted zone id such as "Z0123456789ABCDEFGHIJ" (aws route53 list-hosted-zones), got ${show(dns.hostedZoneId)}`);
  }
  const zoneName = typeof dns.zoneName === 'string' ? dns.zoneName.toLowerCase().replace(/\.$/, '') : '';
  if (!hostName.test(zoneName)) fail(`dns.zoneName must be the zone's domain name such as "example.com", got ${show(dns.zoneName)}`);
  const name = typeof dns.recordName === 'string' ? dns.recordName.toLowerCase().replace(/\.$/, '') : '';
  if (!hostName.test(name)) fail(`dns.recordName must be a host name such as "api" or "api.${zoneName}", got ${show(dns.recordName)}`);
  if (name === zoneName) fail(`dns.recordName must name a record below the zone apex (a CNAME cannot sit at ${zoneName}), got ${show(dns.recordName)}`);
  const ttl = dns.ttl ?? Duration.seconds(60);
  if (!ttl.isUnresolved() && (ttl.toSeconds() < 1 || ttl.toSeconds() > 60)) {
    fail(`dns.ttl must be from 1 to 60 seconds (a demo step bakes 3 minutes: at least three TTLs), got ${ttl.toHumanString()}`);
  }
  return { hostedZoneId: dns.hostedZoneId, zoneName, recordName: name.endsWith(`.${zoneName}`) ? name : `${name}.${zoneName}`, ttl };
}

/**
 * The demo API's image: `containers/demo-api/main.ts` and the local demo server it reuses, bundled
 * into one file with esbuild at synth (offline, like the Lambda bundles), next to the Dockerfile,
 * in a build context under the cloud assembly. Docker runs only at deploy. Bundling here rather
 * than in the Dockerfile keeps the image build free of any package registry and of RUN steps,
 * so it builds for ARM64 on any machine, and the asset hash is the hash of exactly what ships.
 */
function demoApiImage(scope: Construct): ecs.ContainerImage {
  const source = path.join(REPO_ROOT, 'containers', 'demo-api');
  const context = path.join(Stage.of(scope)!.outdir, 'cutover-fleet-demo-api');
  fs.rmSync(context, { recursive: true, force: true });
  fs.mkdirSync(context, { recursive: true });
  buildSync({
    entryPoints: [path.join(source, 'main.ts')],
    outfile: path.join(context, 'main.js'),
    absWorkingDir: REPO_ROOT, // paths in the bundle's comments are relative to it: the same on every machine
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    legalComments: 'none',
    logLevel: 'silent',
  });
  fs.copyFileSync(path.join(source, 'Dockerfile'), path.join(context, 'Dockerfile'));
  return ecs.ContainerImage.fromAsset(context, { platform: Platform.LINUX_ARM64 });
}
