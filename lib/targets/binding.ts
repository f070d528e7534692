/**
 * The contract between `CanaryMigration` and what it migrates (a `MigrationTarget`) or pins (an
 * `OldCapacity`): what each adds to the controller's and the deploy trigger's environment and
 * permissions, the deploy trigger's properties, the probe's targets and the dashboard's health
 * widgets. A new traffic mechanism or capacity kind is one more implementation of these, never a
 * change to the construct.
 */
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as route53 from 'aws-cdk-lib/aws-route53';
import type { Construct } from 'constructs';

/** One endpoint the Keep-Alive probe checks, reaching one side only. */
export interface ProbeTargetSpec {
  readonly side: 'old' | 'new';
  /** The URL whose host is sent as `Host` and TLS SNI (and checked against the certificate). */
  readonly url: string;
  /** Where to connect instead of the URL's host (a load balancer's DNS name). */
  readonly connectTo?: string;
  /** Extra request headers (a listener rule's header that forwards to one target group). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the migration tells its target when binding it. */
export interface TargetBindContext {
  /** The migration construct (resources the target adds are its children). */
  readonly scope: Construct;
}

/** What a target adds to the migration. */
export interface MigrationTargetBinding {
  /** `lambda-alias`, `load-balancer` or `dns`. */
  readonly kind: 'lambda-alias' | 'load-balancer' | 'dns';
  /** Keys the current-migration pointer, the metrics' `Migration` dimension and the events. */
  readonly migrationKey: string;
  /** What changes with each deploy of a new side: a version number or a release label. */
  readonly identity: string;
  /** Environment of the controller and the deploy trigger (`CUTOVER_TARGET` and the like). */
  readonly environment: Readonly<Record<string, string>>;
  /** Properties of the deploy trigger's custom resource (a change of one starts a migration). */
  readonly triggerProperties: Readonly<Record<string, string>>;
  /** Grants the controller what moving the traffic and reading the routing needs. */
  grantController(role: iam.IRole): void;
  /** Grants the deploy trigger what it needs (create the alias or records once, read the routing). */
  grantTrigger(role: iam.IRole): void;
  /** cdk-nag findings that are part of the design, each acknowledged with its reason. */
  acknowledge?(roles: { readonly controller: iam.IRole; readonly trigger: iam.IRole }): void;
  /** The probe's endpoints, one side each. @default - none (the migration's `probeTargets` apply) */
  readonly probeTargets?: readonly ProbeTargetSpec[];
  /** Health widgets for the dashboard (requests, error rates and latency per side). */
  healthWidgets?(): cloudwatch.IWidget[];
  /**
   * The weighted records a DNS target moves traffic on (created by the deploy trigger, not by
   * CloudFormation): `migration.record` is built from it.
   */
  readonly weightedRecord?: { readonly zone: route53.IHostedZone; readonly domainName: string; readonly recordType: 'CNAME' | 'A' };
}

/** A target to migrate: create with `MigrationTarget.lambdaAlias/loadBalancer/dns`. */
export interface IMigrationTarget {
  readonly kind: MigrationTargetBinding['kind'];
  bind(context: TargetBindContext): MigrationTargetBinding;
}

/** What an old-side capacity pin adds to the migration. */
export interface OldCapacityBinding {
  /** `CUTOVER_CAPACITY` for the controller. */
  readonly environment: Readonly<Record<string, string>>;
  /** Units to pin: a number, 0 for none, or undefined for the side's size when the migration starts. */
  readonly units: number | undefined;
  grantController(role: iam.IRole): void;
  acknowledge?(role: iam.IRole): void;
}

/** An old-side capacity pin: create with `OldCapacity.provisionedConcurrency/autoScalingGroup/ecsService/none`. */
export interface IOldCapacity {
  readonly kind: 'provisioned-concurrency' | 'auto-scaling-group' | 'ecs-service' | 'none';
  bind(context: TargetBindContext & { readonly target: MigrationTargetBinding }): OldCapacityBinding;
}
