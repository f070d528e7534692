/**
 * `MigrationTarget.loadBalancer`: the weights of an Application Load Balancer forward action
 * between two target groups (the old fleet's and the new fleet's), on the listener's default
 * action or one rule's. ALB routes each request on its own, so a weight applies to the next
 * request even on a Keep-Alive connection, within seconds.
 *
 * Permissions: `DescribeListeners`/`DescribeRules` accept no resource (IAM lists none for them);
 * `ModifyListener`/`ModifyRule` only on that listener or rule. Health: the ALB's metrics per
 * target group. Probe: two listener rules forward requests carrying `X-Cutover-Probe-Side: old|new`
 * to one group each, so the probe checks each fleet alone through the same load balancer.
 */
import { Fn, Names, Stack, Token, type Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Validations } from 'aws-cdk-lib';
import { CutoverValidationError, show } from '../errors';
import type { IMigrationTarget, MigrationTargetBinding, ProbeTargetSpec, TargetBindContext } from './binding';

/** The header whose value (`old` or `new`) the probe's listener rules forward by. */
export const PROBE_SIDE_HEADER = 'X-Cutover-Probe-Side';

/** How the Keep-Alive probe reaches each fleet through the load balancer. */
export interface LoadBalancerProbeOptions {
  /**
   * The URL clients use, e.g. `https://api.example.com` (its host is sent as `Host` and TLS SNI, and
   * the certificate is checked against it). The probe connects to the load balancer's DNS name.
   */
  readonly url: string;
  /**
   * Priority of the rule that forwards probe requests to the old group; the new group's rule gets
   * the next one. Both must be free on the listener.
   * @default 1
   */
  readonly rulePriority?: number;
  /**
   * Where the probe connects.
   * @default - the load balancer's DNS name
   */
  readonly connectTo?: string;
}

/** Props of `MigrationTarget.loadBalancer`. */
export interface LoadBalancerTargetProps {
  /** The load balancer (its metrics' `LoadBalancer` dimension). */
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;
  /**
   * The listener whose default action forwards to both groups (in the template: old at its weight,
   * new at 0; a template change of the listener resets weights, which the controller sees as a
   * change made outside and handles as such).
   */
  readonly listener: elbv2.IApplicationListener;
  /**
   * A rule of the listener whose action forwards to both groups, instead of the default action.
   * @default - the listener's default action
   */
  readonly rule?: elbv2.ApplicationListenerRule;
  readonly oldTargetGroup: elbv2.IApplicationTargetGroup;
  readonly newTargetGroup: elbv2.IApplicationTargetGroup;
  /**
   * A label of what the new fleet runs: a migration starts on `cdk deploy` whenever it changes
   * (e.g. the new service's task definition ARN, an image tag or a launch template version).
   */
  readonly release: string;
  /**
   * Probe each fleet alone through the load balancer.
   * @default - no probe (the judge relies on metrics and alarms)
   */
  readonly probe?: LoadBalancerProbeOptions;
  /**
   * Name of the migration (the metrics' `Migration` dimension and the key of its history).
   * @default - a name derived from the construct's path
   */
  readonly migrationName?: string;
}

export class LoadBalancerTarget implements IMigrationTarget {
  readonly kind = 'load-balancer' as const;

  constructor(readonly props: LoadBalancerTargetProps) {}

  bind({ scope }: TargetBindContext): MigrationTargetBinding {
    const props = this.props;
    const fail = (message: string): never => {
      throw new CutoverValidationError(message, scope);
    };
    for (const key of ['loadBalancer', 'listener', 'oldTargetGroup', 'newTargetGroup'] as const) {
      if (!props[key]) fail(`MigrationTarget.loadBalancer: ${key} is required, got ${show(props[key])}`);
    }
    if (props.oldTargetGroup === props.newTargetGroup) fail('MigrationTarget.loadBalancer: oldTargetGroup and newTargetGroup must be two different target groups');
    checkRelease(scope, props.release, 'MigrationTarget.loadBalancer');
    const priority = props.probe?.rulePriority ?? 1;
    if (props.probe && !(Number.isInteger(priority) && priority >= 1 && priority <= 49_999)) {
      fail(`MigrationTarget.loadBalancer: probe.rulePriority must be a whole number from 1 to 49999 (the new side's rule takes the next one), got ${show(priority)}`);
    }
    const stack = Stack.of(scope);
    const migrationKey = props.migrationName ?? Names.uniqueResourceName(scope, { maxLength: 128, separator: '-' });
    const oldArn = props.oldTargetGroup.targetGroupArn;
    const newArn = props.newTargetGroup.targetGroupArn;
    const writeArn = props.rule ? props.rule.listenerRuleArn : props.listener.listenerArn;
    const target = {
      kind: 'load-balancer',
      loadBalancer: loadBalancerFullName(props.loadBalancer),
      ...(props.rule ? { ruleArn: props.rule.listenerRuleArn } : { listenerArn: props.listener.listenerArn }),
      oldTargetGroupArn: oldArn,
      newTargetGroupArn: newArn,
    };

    let probeTargets: ProbeTargetSpec[] | undefined;
    if (props.probe) {
      checkUrl(scope, props.probe.url, 'MigrationTarget.loadBalancer: probe.url');
      for (const [side, group, offset] of [['old', props.oldTargetGroup, 0], ['new', props.newTargetGroup, 1]] as const) {
        new elbv2.ApplicationListenerRule(scope, side === 'old' ? 'ProbeOldRule' : 'ProbeNewRule', {
          listener: props.listener,
          priority: priority + offset,
          conditions: [elbv2.ListenerCondition.httpHeader(PROBE_SIDE_HEADER, [side])],
          action: elbv2.ListenerAction.forward([group]),
        });
      }
      const connectTo = props.probe.connectTo ?? props.loadBalancer.loadBalancerDnsName;
      probeTargets = (['old', 'new'] as const).map((side) => ({ side, url: props.probe!.url, connectTo, headers: { [PROBE_SIDE_HEADER]: side } }));
    }

    return {
      kind: this.kind,
      migrationKey,
      identity: props.release,
      environment: { CUTOVER_TARGET: stack.toJsonString(target), CUTOVER_MIGRATION_KEY: migrationKey },
      triggerProperties: { TargetKind: 'fleet', MigrationKey: migrationKey, Release: props.release },
      ...(probeTargets ? { probeTargets } : {}),
      grantController: (role) => {
        describeRouting(role);
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({ sid: 'ShiftTargetGroupWeights', actions: [props.rule ? 'elasticloadbalancing:ModifyRule' : 'elasticloadbalancing:ModifyListener'], resources: [writeArn] }),
        );
      },
      grantTrigger: (role) => describeRouting(role),
      acknowledge: ({ controller, trigger }) => {
        for (const role of [controller, trigger]) {
          Validations.of(role).acknowledge({
            id: 'AwsSolutions-IAM5[Resource::*]',
            reason:
              'elasticloadbalancing:DescribeListeners and DescribeRules support no resource-level permissions (the Service Authorization Reference lists none): `*` is the only resource they accept. The write (ModifyListener/ModifyRule) is scoped to the one listener or rule.',
          });
        }
      },
      healthWidgets: () => loadBalancerWidgets(loadBalancerFullName(props.loadBalancer), [
        ['old', targetGroupFullName(props.oldTargetGroup)],
        ['new', targetGroupFullName(props.newTargetGroup)],
      ]),
    };
  }
}

/**
 * `app/<name>/<id>` (the `LoadBalancer` dimension), also for an imported load balancer: the ARN
 * ends with `:loadbalancer/app/<name>/<id>`.
 */
export function loadBalancerFullName(loadBalancer: elbv2.IApplicationLoadBalancer): string {
  const full = (loadBalancer as Partial<elbv2.ApplicationLoadBalancer>).loadBalancerFullName;
  return full ?? Fn.select(1, Fn.split(':loadbalancer/', loadBalancer.loadBalancerArn));
}

/** `targetgroup/<name>/<id>` (the `TargetGroup` dimension): the ARN's sixth `:`-separated field. */
export function targetGroupFullName(group: elbv2.IApplicationTargetGroup): string {
  const full = (group as Partial<elbv2.ApplicationTargetGroup>).targetGroupFullName;
  return full ?? Fn.select(5, Fn.split(':', group.targetGroupArn));
}

function describeRouting(role: iam.IRole): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadListenerRouting',
      actions: ['elasticloadbalancing:DescribeListeners', 'elasticloadbalancing:DescribeRules'],
      resources: ['*'],
    }),
  );
}

/** Requests, 5XX/4XX rates and p99 latency per side, from ALB metrics (per target group or per ALB). */
export function loadBalancerWidgets(loadBalancer: string | undefined, sides: readonly (readonly ['old' | 'new', string])[], perLoadBalancer = false): cloudwatch.IWidget[] {
  const metric = (side: string, dimension: string, metricName: string, statistic: string, period?: Duration) =>
    new cloudwatch.Metric({
      namespace: 'AWS/ApplicationELB',
      metricName,
      statistic,
      ...(period ? { period } : {}),
      label: side,
      dimensionsMap: perLoadBalancer ? { LoadBalancer: dimension } : { LoadBalancer: loadBalancer!, TargetGroup: dimension },
    });
  const rate = (metricName: string) =>
    sides.map(
      ([side, dimension]) =>
        new cloudwatch.MathExpression({
          // Ids must differ between the two sides of one graph.
          expression: `100 * FILL(errors_${side}, 0) / requests_${side}`,
          label: `${side} %`,
          usingMetrics: { [`errors_${side}`]: metric(side, dimension, metricName, 'Sum'), [`requests_${side}`]: metric(side, dimension, 'RequestCount', 'Sum') },
        }),
    );
  return [
    new cloudwatch.GraphWidget({ title: 'Requests per side (ALB)', width: 6, left: sides.map(([side, d]) => metric(side, d, 'RequestCount', 'Sum')) }),
    new cloudwatch.GraphWidget({ title: 'Target 5XX rate per side (%)', width: 6, left: rate('HTTPCode_Target_5XX_Count') }),
    new cloudwatch.GraphWidget({ title: 'Target 4XX rate per side (%)', width: 6, left: rate('HTTPCode_Target_4XX_Count') }),
    new cloudwatch.GraphWidget({ title: 'Target response time p99 (s)', width: 6, left: sides.map(([side, d]) => metric(side, d, 'TargetResponseTime', 'p99')) }),
  ];
}

export function checkRelease(scope: TargetBindContext['scope'], release: unknown, where: string): void {
  if (typeof release !== 'string' || (!Token.isUnresolved(release) && !/^\S.{0,255}$/s.test(release))) {
    throw new CutoverValidationError(
      `${where}: release must be a non-empty label of at most 256 characters that changes with each new release of the new side (e.g. a task definition ARN or an image tag), got ${show(release)}`,
      scope,
    );
  }
}

export function checkUrl(scope: TargetBindContext['scope'], url: unknown, where: string): void {
  if (typeof url !== 'string' || (!Token.isUnresolved(url) && !/^https?:\/\/[^\s/?#]+[^\s]*$/.test(url))) {
    throw new CutoverValidationError(`${where} must be an http(s) URL such as "https://api.example.com", got ${show(url)}`, scope);
  }
}
