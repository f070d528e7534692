/**
 * CapacityPort on an EC2 Auto Scaling group: the OLD fleet of a fleet migration.
 *
 * **The pin.** `pin(units)` raises the group's `MinSize` to `units` (a MinSize already higher is
 * kept: a pin only ever adds capacity) and its `DesiredCapacity` to `units` when it is lower, in one
 * `UpdateAutoScalingGroup`. With MinSize at the pin, no scaling policy, scheduled action or
 * predictive scaling can shrink the group below it while its traffic drains to the new fleet, so a
 * rollback lands on a fleet that can take all the traffic. `restore(units)` does the same again
 * (DesiredCapacity back to at least `units`, and MinSize back if someone lowered it); unhealthy
 * instances are replaced by the group itself. A group whose `MaxSize` is below the pin cannot hold
 * it: `pin` fails with the fix, unless `allowRaisingMaxSize` lets it raise MaxSize (put back at
 * release).
 *
 * **What `read()` reports.** `current` is the capacity of the instances that serve: `InService`
 * and `Healthy` (not Pending, Standby, Terminating or Unhealthy), each counted by its
 * `WeightedCapacity` (1 without instance weights), so it is in the same units as DesiredCapacity.
 * `pinned` is the recorded pin. `ready` means `current ≥ pin` and the group is still holding it:
 * MinSize ≥ pin and DesiredCapacity ≥ pin. A DesiredCapacity below the pin (possible only once
 * someone lowered MinSize) means a scale-in towards it is under way or allowed, so the fleet is not
 * counted as ready even while its instances still run. Without a pin the target is DesiredCapacity.
 * A group that does not exist fails `read` (never zeros: the core would pin at 0).
 *
 * **What is remembered where.** The Lambda keeps nothing between invocations and the core's record
 * holds only the pinned figure, so the group's own figures from before the pin are kept as tags on
 * the group itself (`PropagateAtLaunch: false`, so instances do not get them):
 *   - `cutover:original-min-size`, `cutover:original-max-size`, `cutover:original-desired-capacity`
 *   - `cutover:pinned-min-size`: the pin.
 * Tags live and die with the group, come back in the same `DescribeAutoScalingGroups` call that
 * `read` makes anyway (no extra call, no other store to grant), and tell a person in the console
 * why MinSize is what it is.
 *
 * **Crash recovery.** A pin writes the tags first (one `CreateOrUpdateTags`), then updates the group;
 * the originals are written only when no `cutover:*` tag exists, and a later pin changes only the
 * pin tag, so they always are the figures from before Cutover touched the group.
 *   - Crash (or a failed update) after the tags: the group still has its own figures. `read` reports
 *     the pin with `ready: false` ("MinSize 2 below the pin"), so the core calls `restore`, which
 *     completes the update; a second `pin` does the same. Nothing is written twice.
 *   - `release` updates the group first, then deletes the tags. Crash between: the next release
 *     finds MinSize already at the original and only deletes the tags. A release after an
 *     interrupted pin (tags, no update) finds MinSize not at Cutover's figure, leaves it, and
 *     deletes the tags.
 *   - Tags that cannot be read back (one missing, not a number) stop pin and release with an error
 *     that says what to fix: guessing the originals could shrink the fleet.
 *
 * **Release.** MinSize goes back to the original only while it is still Cutover's figure
 * (max(original, pin)); a MinSize someone else changed meanwhile is theirs and is left, as the
 * detail says. MaxSize goes back only when Cutover raised it (then DesiredCapacity is lowered to it
 * if above, as the API requires Desired ≤ Max). DesiredCapacity is otherwise left to the group's
 * scaling policies: putting back a figure from before the migration would be a blind scale-in
 * sized for another hour's load, and the teardown that follows usually removes or resizes the old
 * fleet anyway; the release detail names the original for whoever wants it.
 */
import {
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
  type AutoScalingClient,
  type AutoScalingGroup,
  type TagDescription,
} from '@aws-sdk/client-auto-scaling';
import type { CapacityPort, CapacityStatus } from '../../core/ports';
import { CapacityPinError, CapacityTargetNotFoundError, checkName, checkUnits, counts, readRecordedTags, TAG_PREFIX } from './shared';

export interface AutoScalingGroupCapacityProps {
  readonly autoScaling: AutoScalingClient;
  /** The old fleet's group: its name, or its ARN (`…:autoScalingGroup:<id>:autoScalingGroupName/<name>`). */
  readonly autoScalingGroupName: string;
  /**
   * Let the pin raise the group's MaxSize when it is below the pin (put back at release).
   * @default false - a MaxSize below the pin fails `pin` with the fix
   */
  readonly allowRaisingMaxSize?: boolean;
}

/** The tags that keep the group's figures from before the pin. */
export const AUTO_SCALING_TAGS = {
  pin: `${TAG_PREFIX}pinned-min-size`,
  minSize: `${TAG_PREFIX}original-min-size`,
  maxSize: `${TAG_PREFIX}original-max-size`,
  desired: `${TAG_PREFIX}original-desired-capacity`,
} as const;

type Recorded = { readonly pin: number; readonly minSize: number; readonly maxSize: number; readonly desired: number };

/** The figures of a group that matter here. */
interface Group {
  readonly name: string;
  readonly minSize: number;
  readonly maxSize: number;
  readonly desired: number;
  readonly raw: AutoScalingGroup;
  readonly recorded: Recorded | undefined;
}

const ARN = /^arn:aws[a-z-]*:autoscaling:[a-z0-9-]+:\d{12}:autoScalingGroup:[0-9a-f-]+:autoScalingGroupName\/(.+)$/;

export class AutoScalingGroupCapacity implements CapacityPort {
  private readonly name: string;

  constructor(private readonly props: AutoScalingGroupCapacityProps) {
    const given: unknown = props.autoScalingGroupName;
    const fromArn = typeof given === 'string' ? ARN.exec(given)?.[1] : undefined;
    if (typeof given === 'string' && given.startsWith('arn:') && fromArn === undefined) {
      throw new TypeError(`autoScalingGroupName must be a group name or an Auto Scaling group ARN, got ${JSON.stringify(given)}`);
    }
    this.name = checkName('autoScalingGroupName', fromArn ?? given, 255, /^\S(.*\S)?$/, 'an Auto Scaling group name (1–255 characters) or ARN');
  }

  async read(): Promise<CapacityStatus> {
    return statusOf(await this.describe());
  }

  /** Holds MinSize (and DesiredCapacity) at `units` or more, recording the originals first. Idempotent. */
  async pin(units: number): Promise<CapacityStatus> {
    checkUnits(units);
    return this.hold(await this.describe(), units);
  }

  /** Puts DesiredCapacity back to at least `units`, and MinSize if someone lowered it. Idempotent. */
  async restore(units: number): Promise<CapacityStatus> {
    checkUnits(units);
    return this.hold(await this.describe(), units);
  }

  /** Puts the original MinSize (and a raised MaxSize) back and removes the tags. Idempotent. */
  async release(): Promise<CapacityStatus> {
    const group = await this.describe(true);
    if (!group || group.raw.Status) {
      return { current: 0, ready: false, detail: `released: Auto Scaling group "${this.name}" ${group ? `is being deleted (${group.raw.Status})` : 'no longer exists'}` };
    }
    const recorded = group.recorded;
    if (!recorded) return { ...statusOf(group), detail: `released: nothing pinned on Auto Scaling group "${this.name}"` };

    const notes: string[] = [];
    const update: { MinSize?: number; MaxSize?: number; DesiredCapacity?: number } = {};
    const cutoverMin = Math.max(recorded.minSize, recorded.pin);
    if (group.minSize === cutoverMin && cutoverMin !== recorded.minSize) {
      update.MinSize = recorded.minSize;
      notes.push(`MinSize ${group.minSize} → ${recorded.minSize}`);
    } else if (group.minSize !== recorded.minSize) {
      notes.push(`MinSize ${group.minSize} left as is (changed outside Cutover; ${recorded.minSize} before the pin)`);
    }
    const cutoverMax = Math.max(recorded.maxSize, recorded.pin);
    const finalMin = update.MinSize ?? group.minSize;
    if (group.maxSize === cutoverMax && cutoverMax !== recorded.maxSize && finalMin <= recorded.maxSize) {
      update.MaxSize = recorded.maxSize;
      notes.push(`MaxSize ${group.maxSize} → ${recorded.maxSize}`);
      if (group.desired > recorded.maxSize) update.DesiredCapacity = recorded.maxSize;
    }
    notes.push(
      update.DesiredCapacity !== undefined
        ? `DesiredCapacity ${group.desired} → ${update.DesiredCapacity} (down to the original MaxSize)`
        : `DesiredCapacity ${group.desired} left to the group's scaling policies (${recorded.desired} before the pin)`,
    );
    if (Object.keys(update).length > 0) {
      await this.props.autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: this.name, ...update }));
    }
    await this.props.autoScaling.send(
      new DeleteTagsCommand({ Tags: Object.values(AUTO_SCALING_TAGS).map((Key) => ({ ...this.tagTarget(), Key })) }),
    );
    const after = { ...group, minSize: update.MinSize ?? group.minSize, maxSize: update.MaxSize ?? group.maxSize, desired: update.DesiredCapacity ?? group.desired };
    return { ...statusOf({ ...after, recorded: undefined }), detail: `released: ${notes.join('; ')}` };
  }

  private async hold(group: Group, units: number): Promise<CapacityStatus> {
    if (group.raw.Status) {
      throw new CapacityTargetNotFoundError(`Auto Scaling group "${this.name}" is being deleted (${group.raw.Status}): it cannot hold the old fleet`);
    }
    const raiseMax = group.maxSize < units;
    if (raiseMax && !this.props.allowRaisingMaxSize) {
      throw new CapacityPinError(
        `Auto Scaling group "${this.name}" has MaxSize ${group.maxSize}, below the pin of ${units} units, so it cannot hold the old fleet at ` +
          `that size: raise its MaxSize to at least ${units} (in its template, or aws autoscaling update-auto-scaling-group ` +
          `--auto-scaling-group-name ${this.name} --max-size ${units}), or set allowRaisingMaxSize: true to let Cutover raise it and put it back at release`,
      );
    }
    // Write-ahead: the originals (first time only) and the pin are tagged before the group changes.
    const tags: Record<string, number> = group.recorded
      ? group.recorded.pin === units ? {} : { [AUTO_SCALING_TAGS.pin]: units }
      : {
          [AUTO_SCALING_TAGS.minSize]: group.minSize,
          [AUTO_SCALING_TAGS.maxSize]: group.maxSize,
          [AUTO_SCALING_TAGS.desired]: group.desired,
          [AUTO_SCALING_TAGS.pin]: units,
        };
    if (Object.keys(tags).length > 0) {
      await this.props.autoScaling.send(
        new CreateOrUpdateTagsCommand({
          Tags: Object.entries(tags).map(([Key, value]) => ({ ...this.tagTarget(), Key, Value: String(value), PropagateAtLaunch: false })),
        }),
      );
    }
    const minSize = Math.max(group.minSize, units);
    const desired = Math.max(group.desired, units);
    const maxSize = Math.max(group.maxSize, units);
    if (minSize !== group.minSize || desired !== group.desired || maxSize !== group.maxSize) {
      await this.props.autoScaling.send(
        new UpdateAutoScalingGroupCommand({
          AutoScalingGroupName: this.name,
          MinSize: minSize,
          ...(desired !== group.desired ? { DesiredCapacity: desired } : {}),
          ...(raiseMax ? { MaxSize: maxSize } : {}),
        }),
      );
    }
    const recorded: Recorded = group.recorded
      ? { ...group.recorded, pin: units }
      : { pin: units, minSize: group.minSize, maxSize: group.maxSize, desired: group.desired };
    return statusOf({ ...group, minSize, desired, maxSize, recorded });
  }

  private tagTarget() {
    return { ResourceId: this.name, ResourceType: 'auto-scaling-group' };
  }

  private async describe(): Promise<Group>;
  private async describe(missingOk: true): Promise<Group | undefined>;
  private async describe(missingOk = false): Promise<Group | undefined> {
    const { AutoScalingGroups: groups = [] } = await this.props.autoScaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [this.name] }),
    );
    const raw = groups.find((g) => g.AutoScalingGroupName === this.name);
    if (!raw) {
      if (missingOk) return undefined;
      throw new CapacityTargetNotFoundError(
        `Auto Scaling group "${this.name}" does not exist in this account and region (DescribeAutoScalingGroups found none): ` +
          `check autoScalingGroupName (the group's name, case-sensitive) and the controller's region`,
      );
    }
    return {
      name: this.name,
      minSize: raw.MinSize ?? 0,
      maxSize: raw.MaxSize ?? 0,
      desired: raw.DesiredCapacity ?? 0,
      raw,
      recorded: recordedOf(this.name, raw.Tags ?? []),
    };
  }
}

function recordedOf(name: string, tags: readonly TagDescription[]): Recorded | undefined {
  const map = new Map<string, string>();
  for (const tag of tags) if (tag.Key?.startsWith(TAG_PREFIX)) map.set(tag.Key, tag.Value ?? '');
  const fix =
    `these tags keep the group's figures from before Cutover pinned it. Set each missing or wrong one to the group's figure from ` +
    `before the migration, or, if the group is back at its own figures, delete every cutover:* tag on it`;
  const keys = AUTO_SCALING_TAGS;
  const found = readRecordedTags(map, keys, ['pin', 'minSize', 'maxSize'], `Auto Scaling group "${name}"`, fix);
  if (!found) return undefined;
  return { pin: found.pin!, minSize: found.minSize!, maxSize: found.maxSize!, desired: found.desired ?? found.minSize! };
}

function statusOf(group: Group): CapacityStatus {
  let current = 0;
  let pending = 0;
  let standby = 0;
  let unhealthy = 0;
  let leaving = 0;
  for (const instance of group.raw.Instances ?? []) {
    const state = instance.LifecycleState ?? '';
    if (state === 'InService' && instance.HealthStatus === 'Healthy') current += weightOf(instance.WeightedCapacity);
    else if (state === 'InService') unhealthy++;
    else if (state.startsWith('Pending')) pending++;
    else if (state === 'Standby' || state === 'EnteringStandby') standby++;
    else if (state.startsWith('Terminating') || state.startsWith('Detach')) leaving++;
  }
  const pin = group.recorded?.pin;
  const target = pin ?? group.desired;
  const problems: string[] = [];
  if (pin !== undefined && group.minSize < pin) problems.push(`MinSize ${group.minSize} below the pin of ${pin} (an interrupted pin, or changed outside Cutover): restore puts it back`);
  if (pin !== undefined && group.desired < pin) problems.push(`DesiredCapacity ${group.desired} below the pin ${pin}: the group may scale in`);
  if (group.raw.Status) problems.push(`group status: ${group.raw.Status}`);
  const others = counts([
    [pending, 'pending'],
    [standby, 'in Standby'],
    [unhealthy, 'unhealthy'],
    [leaving, 'terminating or detaching'],
  ]);
  const detail =
    `${current} InService and healthy (desired ${group.desired}, min ${group.minSize}, max ${group.maxSize})` +
    (others ? `; ${others}` : '') +
    (problems.length > 0 ? `; ${problems.join('; ')}` : '');
  return {
    current,
    ...(pin !== undefined ? { pinned: pin } : {}),
    desired: group.desired,
    ready: current >= target && group.desired >= target && (pin === undefined || group.minSize >= pin) && !group.raw.Status,
    detail,
  };
}

function weightOf(weighted: string | undefined): number {
  const weight = Number(weighted ?? '1');
  return Number.isInteger(weight) && weight >= 1 ? weight : 1;
}
