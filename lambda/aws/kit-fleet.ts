/**
 * The adapters of a fleet migration (see adapter-kit.ts): ALB weighted target groups
 * (traffic/alb.ts) or Route 53 weighted records (traffic/route53.ts, with the new load balancer's
 * Keep-Alive drain after a rollback), the load balancers' metrics (load-balancer-health.ts; per
 * target group behind one ALB, per ALB with DNS), and the old fleet's pin on an Auto Scaling group
 * (capacity/auto-scaling.ts) or an ECS service (capacity/ecs.ts). Only the SDK clients a kind uses
 * are created, once, at the first use.
 */
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { ECSClient } from '@aws-sdk/client-ecs';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { Route53Client } from '@aws-sdk/client-route-53';
import type { AdapterKitFactory } from './adapter-kit';
import { AutoScalingGroupCapacity } from './capacity/auto-scaling';
import { EcsServiceCapacity } from './capacity/ecs';
import { clientConfig } from './clients';
import { LoadBalancerHealth } from './load-balancer-health';
import { targetGroupDimension } from './targets';
import { LoadBalancerWeightedTraffic } from './traffic/alb';
import { KeepAliveDrain, withKeepAliveDrain } from './traffic/keep-alive-drain';
import { Route53WeightedTraffic } from './traffic/route53';
import type { TrafficPort } from '../core/ports';
import type { TargetConfig } from './targets';

export const fleetKit: AdapterKitFactory = (_alias, clientOptions) => {
  let elb: ElasticLoadBalancingV2Client | undefined;
  let route53: Route53Client | undefined;
  let autoScaling: AutoScalingClient | undefined;
  let ecs: ECSClient | undefined;
  let applicationAutoScaling: ApplicationAutoScalingClient | undefined;
  const elbClient = () => (elb ??= new ElasticLoadBalancingV2Client(clientConfig(clientOptions)));
  return {
    targetKinds: ['load-balancer', 'dns'],
    capacityKinds: ['auto-scaling-group', 'ecs-service'],
    traffic: (target) => fleetTraffic(target, { elb: elbClient, route53: () => (route53 ??= new Route53Client(clientConfig(clientOptions))) }),
    // ALB metrics also count the probe's requests: the probe results of the window, recorded in
    // the table, are subtracted from them.
    health: (target, { cloudWatch, config, onWarning, probeTraffic }) => {
      if (target.kind === 'lambda-alias') throw new TypeError('the fleet kit has no health source for lambda-alias');
      const sides =
        target.kind === 'load-balancer'
          ? {
              old: { loadBalancer: target.loadBalancer, targetGroup: targetGroupDimension(target.oldTargetGroupArn) },
              new: { loadBalancer: target.loadBalancer, targetGroup: targetGroupDimension(target.newTargetGroupArn) },
            }
          : { old: { loadBalancer: target.oldLoadBalancer }, new: { loadBalancer: target.newLoadBalancer } };
      return new LoadBalancerHealth({
        cloudWatch,
        ...sides,
        alarmNames: config.alarmNames,
        minReadMinutes: config.healthReads.minReadMinutes,
        onWarning,
        probeTraffic,
      });
    },
    capacity: (kind) => {
      if (kind.kind === 'auto-scaling-group') {
        return new AutoScalingGroupCapacity({
          autoScaling: (autoScaling ??= new AutoScalingClient(clientConfig(clientOptions))),
          autoScalingGroupName: kind.autoScalingGroupName,
        });
      }
      if (kind.kind !== 'ecs-service') throw new TypeError(`the fleet kit has no capacity adapter for ${kind.kind}`);
      return new EcsServiceCapacity({
        ecs: (ecs ??= new ECSClient(clientConfig(clientOptions))),
        applicationAutoScaling: (applicationAutoScaling ??= new ApplicationAutoScalingClient(clientConfig(clientOptions))),
        cluster: kind.cluster,
        service: kind.service,
      });
    },
  };
};

/**
 * The routing of a fleet target, with the SDK clients it needs made by `clients` (at most once
 * each: the callers cache them). Also used alone by the deploy trigger, which reads a fleet's
 * weights before it records a migration (its bundle then leaves the rest of this kit out).
 */
export function fleetTraffic(
  target: TargetConfig,
  clients: { readonly elb: () => ElasticLoadBalancingV2Client; readonly route53: () => Route53Client },
): TrafficPort {
  if (target.kind === 'load-balancer') {
    return new LoadBalancerWeightedTraffic({
      elb: clients.elb(),
      ...(target.listenerArn ? { listenerArn: target.listenerArn } : { ruleArn: target.ruleArn! }),
      oldTargetGroupArn: target.oldTargetGroupArn,
      newTargetGroupArn: target.newTargetGroupArn,
    });
  }
  if (target.kind !== 'dns') throw new TypeError(`a fleet target is "load-balancer" or "dns", got ${JSON.stringify(target.kind)}`);
  const records = new Route53WeightedTraffic({
    route53: clients.route53(),
    hostedZoneId: target.hostedZoneId,
    recordName: target.recordName,
    recordType: target.recordType,
    oldSetIdentifier: target.oldSetIdentifier,
    newSetIdentifier: target.newSetIdentifier,
    ...(target.maxTtlSeconds !== undefined ? { maxTtlSeconds: target.maxTtlSeconds } : {}),
  });
  if (!target.newLoadBalancerArn) return records;
  // After a rollback, the new fleet's load balancer ends its clients' Keep-Alive connections sooner.
  return withKeepAliveDrain(records, new KeepAliveDrain({ elb: clients.elb(), loadBalancerArn: target.newLoadBalancerArn }));
}
