/**
 * CapacityPort on an Amazon ECS service: the OLD fleet of a fleet migration.
 *
 * **The pin.** When the service has an Application Auto Scaling scalable target
 * (`service/<cluster>/<service>`, dimension `ecs:service:DesiredCount`), `pin(units)` raises its
 * `MinCapacity` to `units` with `RegisterScalableTarget` (which updates only the figures it is
 * given, and moves the service's desired count into the new range), so no scaling policy or
 * scheduled action can shrink the service while its traffic drains; a MinCapacity already higher
 * is kept. When the service has no scalable target, nothing autoscales it: the pin raises
 * `desiredCount` to `units` (`UpdateService`) when it is lower, and records that it pinned that
 * way (`cutover:pinned-by = desired-count`). Cutover never registers a scalable target of its own
 * (and so never deregisters one): with no target there is no autoscaler to hold back, only a
 * person or a pipeline that could lower desiredCount, which `restore` puts back; registering one
 * would need the service-linked role and leave an object behind. In both cases a desiredCount below
 * the pin is raised to it. `restore(units)` does all of it again: MinCapacity back if someone
 * lowered it, desiredCount back to at least `units`. A target whose MaxCapacity is below the pin
 * fails `pin` with the fix, unless `allowRaisingMaxCapacity` lets it raise it (put back at release).
 *
 * **What `read()` reports.** `current` is the service's `runningCount` (DescribeServices). `ready`
 * means `current ≥ pin`, the service still holds the pin (desiredCount ≥ pin, and MinCapacity ≥ pin
 * when a target exists: a target registered by someone after a desired-count pin counts too), and
 * the primary deployment is steady: rollout COMPLETED with no other deployment still ACTIVE.
 * Deployments in progress are named in `detail`. A service whose deployments ECS does not list
 * (CODE_DEPLOY or EXTERNAL controller) counts as steady: `ready` then rests on the counts. Without a pin the target is desiredCount. A
 * service that does not exist fails `read` (never zeros: the core would pin at 0).
 *
 * **What is remembered where.** The Lambda keeps nothing between invocations, so the figures from
 * before the pin are kept as tags on the ECS service itself: `cutover:pinned-capacity` (the pin),
 * `cutover:original-desired-count`, `cutover:original-min-capacity` and
 * `cutover:original-max-capacity` (when a scalable target existed), and `cutover:pinned-by`
 * (`scalable-target` or `desired-count`, for people). Service tags rather than the target's: they
 * exist whether or not a target does, and they come back in the same `DescribeServices` call that
 * `read` makes anyway (`include: TAGS`). A service whose `propagateTags` is SERVICE passes them on to
 * tasks started while pinned; that is harmless. Tagging needs the service's long ARN format (the
 * default since 2021); a short-ARN service fails the pin with that fix.
 *
 * **Crash recovery.** A pin tags first (`TagResource`), then changes the target and the service. The
 * originals are written only when absent, so they always are the figures from before Cutover.
 *   - Crash (or a failed RegisterScalableTarget/UpdateService) after the tags: `read` reports the pin
 *     with `ready: false` ("MinCapacity 2 below the pin"), so the core calls `restore`, which
 *     completes it; a second `pin` does the same.
 *   - `release` puts the target back first, then removes the tags. Crash between: the next release
 *     finds MinCapacity already original and only removes the tags. After an interrupted pin (tags,
 *     no change) release finds MinCapacity not at Cutover's figure, leaves it, removes the tags.
 *   - Tags that cannot be read back stop pin and release with an error that says what to fix.
 *
 * **Release.** MinCapacity goes back to the original only while it is still Cutover's figure
 * (max(original, pin)): a figure someone else set meanwhile is theirs. MaxCapacity goes back only
 * when Cutover raised it. desiredCount is left to the target's scaling policies (putting back a
 * count from before the migration would be a blind scale-in), or, with no target, to the teardown
 * that removes or resizes the old fleet; the detail names the original.
 */
import {
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
  type ApplicationAutoScalingClient,
  type ScalableTarget,
} from '@aws-sdk/client-application-auto-scaling';
import {
  DescribeServicesCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
  type ECSClient,
  type Service,
} from '@aws-sdk/client-ecs';
import type { CapacityPort, CapacityStatus } from '../../core/ports';
import { errorName } from '../clients';
import { CapacityPinError, CapacityTargetNotFoundError, checkName, checkUnits, counts, readRecordedTags, TAG_PREFIX } from './shared';

export interface EcsServiceCapacityProps {
  readonly ecs: ECSClient;
  readonly applicationAutoScaling: ApplicationAutoScalingClient;
  /** The old fleet's cluster: its name or ARN. */
  readonly cluster: string;
  /** The old fleet's service: its name or ARN. */
  readonly service: string;
  /**
   * Let the pin raise the scalable target's MaxCapacity when it is below the pin (put back at release).
   * @default false - a MaxCapacity below the pin fails `pin` with the fix
   */
  readonly allowRaisingMaxCapacity?: boolean;
}

/** The tags (on the service) that keep its figures from before the pin. */
export const ECS_TAGS = {
  pin: `${TAG_PREFIX}pinned-capacity`,
  desiredCount: `${TAG_PREFIX}original-desired-count`,
  minCapacity: `${TAG_PREFIX}original-min-capacity`,
  maxCapacity: `${TAG_PREFIX}original-max-capacity`,
} as const;
/** Informational: how the pin holds the service (`scalable-target` or `desired-count`). */
export const ECS_PINNED_BY_TAG = `${TAG_PREFIX}pinned-by`;

type Recorded = { pin: number; desiredCount: number; minCapacity?: number; maxCapacity?: number };
interface State {
  readonly service: Service;
  readonly desired: number;
  readonly target: ScalableTarget | undefined;
  readonly recorded: Recorded | undefined;
}

const NAME = /^[A-Za-z0-9_-]{1,255}$/;
const CLUSTER_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/([A-Za-z0-9_-]{1,255})$/;
const SERVICE_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:service\/(?:([A-Za-z0-9_-]{1,255})\/)?([A-Za-z0-9_-]{1,255})$/;
const DIMENSION = 'ecs:service:DesiredCount';
const NOT_FOUND = new Set(['ClusterNotFoundException', 'ServiceNotFoundException', 'ServiceNotActiveException', 'ResourceNotFoundException']);

export class EcsServiceCapacity implements CapacityPort {
  private readonly cluster: string;
  private readonly service: string;
  private readonly resourceId: string;

  constructor(private readonly props: EcsServiceCapacityProps) {
    const cluster: unknown = props.cluster;
    const service: unknown = props.service;
    const hint = 'name of 1–255 letters, digits, hyphens and underscores, or an ARN';
    this.cluster = checkName('cluster', (typeof cluster === 'string' && CLUSTER_ARN.exec(cluster)?.[1]) || cluster, 255, NAME, `an ECS cluster ${hint}`);
    const arn = typeof service === 'string' ? SERVICE_ARN.exec(service) : null;
    if (arn?.[1] !== undefined && arn[1] !== this.cluster) {
      throw new TypeError(`service ${JSON.stringify(service)} belongs to cluster "${arn[1]}", not to cluster "${this.cluster}": give the cluster it runs in`);
    }
    this.service = checkName('service', arn?.[2] ?? service, 255, NAME, `an ECS service ${hint}`);
    this.resourceId = `service/${this.cluster}/${this.service}`;
  }

  async read(): Promise<CapacityStatus> {
    return statusOf(await this.describe());
  }

  /** Holds MinCapacity (or, without a scalable target, desiredCount) at `units` or more. Idempotent. */
  async pin(units: number): Promise<CapacityStatus> {
    checkUnits(units);
    return this.hold(await this.describe(), units);
  }

  /** Puts desiredCount back to at least `units`, and MinCapacity if someone lowered it. Idempotent. */
  async restore(units: number): Promise<CapacityStatus> {
    checkUnits(units);
    return this.hold(await this.describe(), units);
  }

  /** Puts the original MinCapacity (and a raised MaxCapacity) back and removes the tags. Idempotent. */
  async release(): Promise<CapacityStatus> {
    const state = await this.describe(true);
    if (!state || state.service.status !== 'ACTIVE') {
      return { current: 0, ready: false, detail: `released: ECS service ${this.resourceId} ${state ? `is ${state.service.status}` : 'no longer exists'}` };
    }
    const { recorded, target } = state;
    if (!recorded) return { ...statusOf(state), detail: `released: nothing pinned on ECS service ${this.resourceId}` };

    const notes: string[] = [];
    const update: { MinCapacity?: number; MaxCapacity?: number } = {};
    if (target && recorded.minCapacity !== undefined && recorded.maxCapacity !== undefined) {
      const min = target.MinCapacity ?? 0;
      const max = target.MaxCapacity ?? 0;
      const cutoverMin = Math.max(recorded.minCapacity, recorded.pin);
      if (min === cutoverMin && cutoverMin !== recorded.minCapacity) {
        update.MinCapacity = recorded.minCapacity;
        notes.push(`MinCapacity ${min} → ${recorded.minCapacity}`);
      } else if (min !== recorded.minCapacity) {
        notes.push(`MinCapacity ${min} left as is (changed outside Cutover; ${recorded.minCapacity} before the pin)`);
      }
      const cutoverMax = Math.max(recorded.maxCapacity, recorded.pin);
      if (max === cutoverMax && cutoverMax !== recorded.maxCapacity && (update.MinCapacity ?? min) <= recorded.maxCapacity) {
        update.MaxCapacity = recorded.maxCapacity;
        notes.push(`MaxCapacity ${max} → ${recorded.maxCapacity}`);
      }
    } else if (recorded.minCapacity !== undefined) {
      notes.push('the scalable target is gone: nothing to put back');
    }
    if (Object.keys(update).length > 0) await this.register(update);
    notes.push(
      `desiredCount ${state.desired} left to ${target ? "the scalable target's scaling policies" : 'the teardown (no scalable target)'} (${recorded.desiredCount} before the pin)`,
    );
    try {
      await this.props.ecs.send(
        new UntagResourceCommand({ resourceArn: state.service.serviceArn, tagKeys: [...Object.values(ECS_TAGS), ECS_PINNED_BY_TAG] }),
      );
    } catch (error) {
      if (!NOT_FOUND.has(errorName(error) ?? '')) throw error;
    }
    const after: State = { ...state, recorded: undefined, target: target && { ...target, ...update } };
    return { ...statusOf(after), detail: `released: ${notes.join('; ')}` };
  }

  private async hold(state: State, units: number): Promise<CapacityStatus> {
    const { service, target, recorded } = state;
    if (service.status !== 'ACTIVE') {
      throw new CapacityTargetNotFoundError(`ECS service ${this.resourceId} is ${service.status}: it cannot hold the old fleet`);
    }
    if (service.schedulingStrategy === 'DAEMON') {
      throw new CapacityPinError(
        `ECS service ${this.resourceId} uses the DAEMON scheduling strategy (one task per container instance, no desired count): ` +
          `pin the capacity of its cluster instead (e.g. with AutoScalingGroupCapacity on the cluster's Auto Scaling group)`,
      );
    }
    const min = target?.MinCapacity ?? 0;
    const max = target?.MaxCapacity ?? 0;
    const raiseMax = target !== undefined && max < units;
    if (raiseMax && !this.props.allowRaisingMaxCapacity) {
      throw new CapacityPinError(
        `the scalable target of ECS service ${this.resourceId} has MaxCapacity ${max}, below the pin of ${units} tasks, so it cannot ` +
          `hold the old fleet at that size: raise its MaxCapacity to at least ${units} (where the target is defined, or aws ` +
          `application-autoscaling register-scalable-target --service-namespace ecs --resource-id ${this.resourceId} ` +
          `--scalable-dimension ${DIMENSION} --max-capacity ${units}), or set allowRaisingMaxCapacity: true to let Cutover raise it and put it back at release`,
      );
    }
    // Write-ahead: originals (only when absent) and the pin are tagged before anything changes.
    const pinnedBy = target ? 'scalable-target' : 'desired-count';
    const tags: Record<string, string> = {};
    if (recorded?.pin !== units) tags[ECS_TAGS.pin] = String(units);
    if (!recorded) tags[ECS_TAGS.desiredCount] = String(state.desired);
    if (target && recorded?.minCapacity === undefined) {
      tags[ECS_TAGS.minCapacity] = String(min);
      tags[ECS_TAGS.maxCapacity] = String(max);
    }
    if (tagOf(service, ECS_PINNED_BY_TAG) !== pinnedBy) tags[ECS_PINNED_BY_TAG] = pinnedBy;
    if (Object.keys(tags).length > 0) await this.tag(service, tags);

    if (target && (min < units || raiseMax)) {
      await this.register({ MinCapacity: Math.max(min, units), ...(raiseMax ? { MaxCapacity: units } : {}) });
    }
    if (state.desired < units) {
      await this.guard(() => this.props.ecs.send(new UpdateServiceCommand({ cluster: this.cluster, service: this.service, desiredCount: units })));
    }
    const numbers = Object.fromEntries(Object.entries(tags).filter(([key]) => key !== ECS_PINNED_BY_TAG));
    const after: State = {
      service: { ...service, desiredCount: Math.max(state.desired, units) },
      desired: Math.max(state.desired, units),
      target: target && { ...target, MinCapacity: Math.max(min, units), MaxCapacity: Math.max(max, units) },
      recorded: { ...(recorded ?? { desiredCount: state.desired }), ...recordedFrom(numbers), pin: units },
    };
    return statusOf(after);
  }

  private async register(figures: { MinCapacity?: number; MaxCapacity?: number }): Promise<void> {
    await this.props.applicationAutoScaling.send(
      new RegisterScalableTargetCommand({ ServiceNamespace: 'ecs', ResourceId: this.resourceId, ScalableDimension: DIMENSION, ...figures }),
    );
  }

  private async tag(service: Service, tags: Record<string, string>): Promise<void> {
    try {
      await this.guard(() =>
        this.props.ecs.send(
          new TagResourceCommand({ resourceArn: service.serviceArn, tags: Object.entries(tags).map(([key, value]) => ({ key, value })) }),
        ),
      );
    } catch (error) {
      if (errorName(error) === 'InvalidParameterException' && /long arn/i.test((error as Error).message)) {
        throw new CapacityPinError(
          `ECS service ${this.resourceId} (${service.serviceArn}) has a short ARN and cannot be tagged, and Cutover keeps the service's ` +
            `figures from before the pin in its tags: opt the account in to the long ARN format (aws ecs put-account-setting-default ` +
            `--name serviceLongArnFormat --value enabled) and recreate the service, or pin it outside Cutover`,
        );
      }
      throw error;
    }
  }

  /** Runs an ECS call, reporting a service or cluster that vanished meanwhile as not found. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (NOT_FOUND.has(errorName(error) ?? '')) throw this.notFound(`${errorName(error)}: ${(error as Error).message}`);
      throw error;
    }
  }

  private notFound(why: string): CapacityTargetNotFoundError {
    return new CapacityTargetNotFoundError(
      `ECS service ${this.resourceId} does not exist in this account and region (${why}): check cluster and service (names are case-sensitive) and the controller's region`,
    );
  }

  private async describe(): Promise<State>;
  private async describe(missingOk: true): Promise<State | undefined>;
  private async describe(missingOk = false): Promise<State | undefined> {
    let described;
    try {
      described = await Promise.all([
        this.props.ecs.send(new DescribeServicesCommand({ cluster: this.cluster, services: [this.service], include: ['TAGS'] })),
        this.props.applicationAutoScaling.send(
          new DescribeScalableTargetsCommand({ ServiceNamespace: 'ecs', ResourceIds: [this.resourceId], ScalableDimension: DIMENSION }),
        ),
      ]);
    } catch (error) {
      if (missingOk && NOT_FOUND.has(errorName(error) ?? '')) return undefined;
      if (NOT_FOUND.has(errorName(error) ?? '')) throw this.notFound(`${errorName(error)}: ${(error as Error).message}`);
      throw error;
    }
    const [{ services = [], failures = [] }, { ScalableTargets: targets = [] }] = described;
    const service = services.find((s) => s.serviceName === this.service);
    if (!service || service.status === 'INACTIVE') {
      if (missingOk) return undefined;
      const failure = failures[0];
      throw this.notFound(service ? 'its status is INACTIVE' : `DescribeServices: ${failure ? `${failure.reason}${failure.detail ? ` ${failure.detail}` : ''}` : 'no such service'}`);
    }
    return {
      service,
      desired: service.desiredCount ?? 0,
      target: targets.find((t) => t.ResourceId === this.resourceId && t.ScalableDimension === DIMENSION),
      recorded: recordedOf(this.resourceId, service),
    };
  }
}

function tagOf(service: Service, key: string): string | undefined {
  return service.tags?.find((t) => t.key === key)?.value;
}

function recordedFrom(tags: Record<string, string>): Partial<Recorded> {
  const keys = Object.entries(ECS_TAGS) as [keyof Recorded, string][];
  return Object.fromEntries(keys.filter(([, key]) => tags[key] !== undefined).map(([name, key]) => [name, Number(tags[key])]));
}

function recordedOf(resourceId: string, service: Service): Recorded | undefined {
  const map = new Map<string, string>();
  for (const tag of service.tags ?? []) if (tag.key?.startsWith(TAG_PREFIX)) map.set(tag.key, tag.value ?? '');
  const where = `ECS service ${resourceId}`;
  const fix =
    `these tags keep the service's figures from before Cutover pinned it. Set each missing or wrong one to the figure from before ` +
    `the migration, or, if the service and its scalable target are back at their own figures, delete every cutover:* tag on the service`;
  const found = readRecordedTags(map, ECS_TAGS, ['pin', 'desiredCount'], where, fix);
  if (!found) return undefined;
  if ((found.minCapacity === undefined) !== (found.maxCapacity === undefined)) {
    throw new CapacityPinError(`${where} has only one of ${ECS_TAGS.minCapacity} and ${ECS_TAGS.maxCapacity}: ${fix}`);
  }
  return found as Recorded;
}

function statusOf(state: State): CapacityStatus {
  const { service, target, desired } = state;
  const current = service.runningCount ?? 0;
  const pin = state.recorded?.pin;
  const wanted = pin ?? desired;
  const deployments = service.deployments ?? [];
  const primary = deployments.find((d) => d.status === 'PRIMARY');
  const others = deployments.filter((d) => d.status === 'ACTIVE').length;
  const rollout = primary?.rolloutState ?? 'COMPLETED';
  const steady = rollout === 'COMPLETED' && others === 0;
  const problems: string[] = [];
  if (primary && rollout !== 'COMPLETED') problems.push(`primary deployment ${rollout}${primary.rolloutStateReason ? `: ${primary.rolloutStateReason}` : ''}`);
  if (others > 0) problems.push(`${others} older deployment${others > 1 ? 's' : ''} still active (a deployment in progress)`);
  if (pin !== undefined && target && (target.MinCapacity ?? 0) < pin) {
    problems.push(`MinCapacity ${target.MinCapacity} below the pin of ${pin} (an interrupted pin, or changed outside Cutover): restore puts it back`);
  }
  if (pin !== undefined && desired < pin) problems.push(`desiredCount ${desired} below the pin ${pin}: restore raises it`);
  if (service.status !== 'ACTIVE') problems.push(`service status ${service.status}`);
  const pendingNote = counts([[service.pendingCount ?? 0, 'pending']]);
  const scaling = target ? `scalable target min ${target.MinCapacity}, max ${target.MaxCapacity}` : 'no scalable target';
  const detail = `${current} running of ${desired} desired${pendingNote ? ` (${pendingNote})` : ''}; ${scaling}${problems.length > 0 ? `; ${problems.join('; ')}` : ''}`;
  const holding = desired >= wanted && (pin === undefined || !target || (target.MinCapacity ?? 0) >= pin);
  return {
    current,
    ...(pin !== undefined ? { pinned: pin } : {}),
    desired,
    ready: current >= wanted && holding && steady && service.status === 'ACTIVE',
    detail,
  };
}
