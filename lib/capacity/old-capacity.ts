/**
 * What the old side keeps until an explicit teardown, so that a rollback lands on a side that can
 * take all the traffic, chosen aws-cdk style:
 *
 * ```ts
 * OldCapacity.provisionedConcurrency(50)   // Lambda alias: provisioned concurrency on the old version
 * OldCapacity.autoScalingGroup(oldAsg)     // EC2 fleet: MinSize held at its size when the migration starts
 * OldCapacity.ecsService(oldService)       // ECS fleet: the scalable target's MinCapacity held likewise
 * OldCapacity.none()
 * ```
 *
 * Each kind is one capacity adapter in the controller (lambda/aws/capacity/provisioned-concurrency.ts,
 * capacity/auto-scaling.ts, capacity/ecs.ts). No weight increase while the old side is below its
 * pin; a rollback never waits for it.
 */
import { Stack, Token, Validations } from 'aws-cdk-lib';
import type * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { CutoverValidationError, show } from '../errors';
import { nagResourceFinding } from '../nag';
import type { IOldCapacity, MigrationTargetBinding, OldCapacityBinding, TargetBindContext } from '../targets/binding';

/** Options of a fleet's pin. */
export interface FleetPinOptions {
  /**
   * Units (instances or tasks) to hold.
   * @default - the fleet's size when the migration starts (the larger of its running and desired count)
   */
  readonly units?: number;
}

type BindContext = TargetBindContext & { readonly target: MigrationTargetBinding & { readonly lambdaFunction?: lambda.IFunction } };

/** An old-side capacity pin (what the static factories return). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface OldCapacity extends IOldCapacity {}

export abstract class OldCapacity {
  /**
   * Provisioned concurrency on the old Lambda version (not on the alias: AWS does not let it be
   * managed there while routing is in place) from the gate until teardown. Costs money while
   * pinned, and needs unreserved account concurrency for two full pools. Lambda alias targets only.
   */
  public static provisionedConcurrency(units: number): OldCapacity {
    return new ProvisionedConcurrencyPin(units);
  }

  /** An EC2 Auto Scaling group (the old fleet): `MinSize` held at the pin, restored at teardown. */
  public static autoScalingGroup(group: autoscaling.IAutoScalingGroup, options: FleetPinOptions = {}): OldCapacity {
    return new AutoScalingGroupPin(group, options);
  }

  /** An ECS service (the old fleet): its scalable target's `MinCapacity` held at the pin, restored at teardown. */
  public static ecsService(service: ecs.IBaseService, options: FleetPinOptions = {}): OldCapacity {
    return new EcsServicePin(service, options);
  }

  /** Capacity is not managed (on-demand concurrency, or a fleet scaled by other means). */
  public static none(): OldCapacity {
    return { kind: 'none', bind: () => ({ environment: { CUTOVER_CAPACITY: '{"kind":"none"}' }, units: 0, grantController: () => {} }) };
  }
}

class ProvisionedConcurrencyPin implements IOldCapacity {
  readonly kind = 'provisioned-concurrency' as const;
  constructor(private readonly units: number) {}

  bind({ scope, target }: BindContext): OldCapacityBinding {
    const units = this.units;
    if (Token.isUnresolved(units)) {
      throw new CutoverValidationError('OldCapacity.provisionedConcurrency: units must be known at synth (the controller also grants itself capacity permissions from it), got a token', scope);
    }
    if (!(Number.isInteger(units) && units >= 0)) {
      throw new CutoverValidationError(`OldCapacity.provisionedConcurrency: units must be a whole number of provisioned concurrent executions, 0 or more, got ${show(units)}`, scope);
    }
    const fn = target.lambdaFunction;
    if (target.kind !== 'lambda-alias' || !fn) {
      throw new CutoverValidationError(
        `OldCapacity.provisionedConcurrency pins a Lambda version and needs MigrationTarget.lambdaAlias, got a ${target.kind} target; use OldCapacity.autoScalingGroup or OldCapacity.ecsService for a fleet`,
        scope,
      );
    }
    // Every qualifier (version or alias) of the migrated function, and nothing else: the old
    // VERSION is only known at run time (whatever the alias pointed at when the deploy started).
    const qualifiedArns = `${fn.functionArn}:*`;
    return {
      environment: units > 0 ? { CUTOVER_CAPACITY: '{"kind":"provisioned-concurrency"}' } : { CUTOVER_CAPACITY: '{"kind":"none"}' },
      units,
      grantController: (role) => {
        if (units === 0) return;
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'PinOldCapacity',
            actions: ['lambda:GetProvisionedConcurrencyConfig', 'lambda:PutProvisionedConcurrencyConfig', 'lambda:DeleteProvisionedConcurrencyConfig'],
            resources: [qualifiedArns],
          }),
        );
      },
      acknowledge: (role) => {
        if (units === 0) return;
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[${nagResourceFinding(scope, qualifiedArns)}]`,
          reason:
            "Provisioned concurrency is pinned on the OLD version, which is only known at run time (whatever the alias pointed at when the deploy started): scoped to the migrated function's qualifiers, no other function.",
        });
      },
    };
  }
}

function checkUnits(scope: BindContext['scope'], where: string, units: number | undefined): void {
  if (units !== undefined && !(Number.isInteger(units) && units >= 1)) {
    throw new CutoverValidationError(`${where}: units must be a whole number ≥ 1 (or left out to pin the fleet at its size when the migration starts), got ${show(units)}`, scope);
  }
}

class AutoScalingGroupPin implements IOldCapacity {
  readonly kind = 'auto-scaling-group' as const;
  constructor(
    private readonly group: autoscaling.IAutoScalingGroup,
    private readonly options: FleetPinOptions,
  ) {}

  bind({ scope, target }: BindContext): OldCapacityBinding {
    if (!this.group) throw new CutoverValidationError('OldCapacity.autoScalingGroup: the group is required', scope);
    checkFleetTarget(scope, target, 'OldCapacity.autoScalingGroup');
    checkUnits(scope, 'OldCapacity.autoScalingGroup', this.options.units);
    const stack = Stack.of(scope);
    const name = this.group.autoScalingGroupName;
    const groupArn = stack.formatArn({ service: 'autoscaling', resource: 'autoScalingGroup', resourceName: `*:autoScalingGroupName/${name}`, arnFormat: undefined });
    return {
      environment: { CUTOVER_CAPACITY: stack.toJsonString({ kind: 'auto-scaling-group', autoScalingGroupName: name }) },
      units: this.options.units,
      grantController: (role) => {
        role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadOldFleet', actions: ['autoscaling:DescribeAutoScalingGroups'], resources: ['*'] }));
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'PinOldFleet',
            actions: ['autoscaling:UpdateAutoScalingGroup', 'autoscaling:CreateOrUpdateTags', 'autoscaling:DeleteTags'],
            resources: [groupArn],
          }),
        );
      },
      acknowledge: (role) => {
        Validations.of(role).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'autoscaling:DescribeAutoScalingGroups supports no resource-level permissions: `*` is the only resource it accepts.',
        });
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[${nagResourceFinding(scope, groupArn)}]`,
          reason: "An Auto Scaling group's ARN carries a generated id; the group is named exactly, only the id is a wildcard.",
        });
      },
    };
  }
}

class EcsServicePin implements IOldCapacity {
  readonly kind = 'ecs-service' as const;
  constructor(
    private readonly service: ecs.IBaseService,
    private readonly options: FleetPinOptions,
  ) {}

  bind({ scope, target }: BindContext): OldCapacityBinding {
    if (!this.service) throw new CutoverValidationError('OldCapacity.ecsService: the service is required', scope);
    checkFleetTarget(scope, target, 'OldCapacity.ecsService');
    checkUnits(scope, 'OldCapacity.ecsService', this.options.units);
    const stack = Stack.of(scope);
    const service = this.service;
    const scalableTargets = stack.formatArn({ service: 'application-autoscaling', resource: 'scalable-target', resourceName: '*' });
    return {
      environment: {
        CUTOVER_CAPACITY: stack.toJsonString({ kind: 'ecs-service', cluster: service.cluster.clusterName, service: service.serviceName }),
      },
      units: this.options.units,
      grantController: (role) => {
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'PinOldFleet',
            actions: ['ecs:DescribeServices', 'ecs:UpdateService', 'ecs:TagResource', 'ecs:UntagResource', 'ecs:ListTagsForResource'],
            resources: [service.serviceArn],
          }),
        );
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({ sid: 'ReadOldFleetScaling', actions: ['application-autoscaling:DescribeScalableTargets'], resources: ['*'] }),
        );
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'PinOldFleetScaling',
            actions: ['application-autoscaling:RegisterScalableTarget'],
            resources: [scalableTargets],
            // Only ECS services' scalable targets (the adapter names this one service).
            conditions: { StringEquals: { 'application-autoscaling:service-namespace': 'ecs' } },
          }),
        );
      },
      acknowledge: (role) => {
        Validations.of(role).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'autoscaling/application-autoscaling Describe* actions support no resource-level permissions: `*` is the only resource they accept.',
        });
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[${nagResourceFinding(scope, scalableTargets)}]`,
          reason:
            "A scalable target's ARN carries an id Application Auto Scaling generates; the statement is limited to the ECS namespace, and the adapter registers only the old service's target.",
        });
      },
    };
  }
}

function checkFleetTarget(scope: BindContext['scope'], target: MigrationTargetBinding, where: string): void {
  if (target.kind === 'lambda-alias') {
    throw new CutoverValidationError(`${where} pins a fleet and needs MigrationTarget.loadBalancer or MigrationTarget.dns, got a lambda-alias target; use OldCapacity.provisionedConcurrency`, scope);
  }
}
