/**
 * What a `CanaryMigration` moves traffic on, chosen aws-cdk style with a static factory:
 *
 * ```ts
 * MigrationTarget.lambdaAlias({ function: fn, aliasName: 'live', version: fn.currentVersion })
 * MigrationTarget.loadBalancer({ loadBalancer, listener, oldTargetGroup, newTargetGroup, release })
 * MigrationTarget.dns({ zone, recordName: 'api', old: { loadBalancer: oldAlb }, new: { loadBalancer: newAlb }, release })
 * ```
 *
 * Each kind is one traffic adapter in the controller (lambda/aws/traffic/alias.ts,
 * traffic/alb.ts, traffic/route53.ts) and one binding here; docs/targets/ has a page per kind.
 */
import type { IMigrationTarget } from './binding';
import { DnsTarget, type DnsTargetProps } from './dns';
import { LambdaAliasTarget, type LambdaAliasTargetProps } from './lambda-alias';
import { LoadBalancerTarget, type LoadBalancerTargetProps } from './load-balancer';

/** A target to migrate (what the static factories return). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface MigrationTarget extends IMigrationTarget {}

export abstract class MigrationTarget {
  /** The weights of a Lambda alias between the version it points at and `version`. */
  public static lambdaAlias(props: LambdaAliasTargetProps): MigrationTarget {
    return new LambdaAliasTarget(props);
  }

  /** The weights of an ALB forward action between the old and the new fleet's target groups. */
  public static loadBalancer(props: LoadBalancerTargetProps): MigrationTarget {
    return new LoadBalancerTarget(props);
  }

  /** The weights of two Route 53 weighted records, each answering with one fleet's load balancer. */
  public static dns(props: DnsTargetProps): MigrationTarget {
    return new DnsTarget(props);
  }
}
