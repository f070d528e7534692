/**
 * The deploy trigger of a fleet migration (ALB weighted target groups, Route 53 weighted records):
 * `cdk deploy` with a new `release` label on the new side starts a migration, as a new version does
 * for a Lambda alias (deploy-trigger.ts, whose rules for running and completed migrations it shares).
 *
 * - **Create** (the first deploy): readies the routing and records nothing: there is no release
 *   before this one to migrate from. For DNS it creates the two weighted records when neither
 *   exists (everything on the old side), so that no CloudFormation record resource owns their
 *   weights and a later deploy never resets them. The listener of an ALB migration is the user's
 *   resource: its template must forward with the new group at weight 0.
 * - **Update with a new release**: records a migration from the previous release (CloudFormation's
 *   old properties) to this one and wakes the controller, unless the new side already carries
 *   traffic outside any migration (after a completed migration the roles must be swapped: the fleet
 *   that now serves is the old side of the next one), which blocks the deploy with that fix.
 * - **Update back to the release a running migration started from**: CloudFormation is rolling
 *   the stack back, so the migration is aborted (traffic back on the old side). Back to the release
 *   a rolled-back migration started from: nothing to do (the new side takes no traffic).
 * - A completed migration is torn down only once the deploy passed every check: a refused deploy
 *   leaves the old fleet pinned.
 * - **Delete**: the routing is left alone: it carries live traffic. The registration is removed
 *   unless the migration is live (see `onDeleteEvent`).
 *
 * Every Create and Update first registers the migration's settings (the controller serves what
 * gets recorded from them), as for an alias.
 */
import {
  ChangeResourceRecordSetsCommand,
  ListResourceRecordSetsCommand,
  type ResourceRecordSet,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { MigrationStatus, TERMINAL_STATUSES } from '../core/model';
import { DamagedStateError, type TrafficPort } from '../core/ports';
import {
  DeployBlockedError,
  invokeCommand,
  keepLive,
  makeRoomFor,
  onDeleteEvent,
  registrationOwner,
  recordAndWake,
  type DeployTriggerDeps,
  type DeployTriggerResponse,
} from './deploy-trigger';
import type { MigrationPointer } from './dynamodb-store';

/** The resource's properties for a fleet (CloudFormation passes every value as a string). */
export interface FleetDeployProperties {
  readonly TargetKind: 'fleet';
  /** The migration key (the pointer's key, the metrics' `Migration` dimension). */
  readonly MigrationKey: string;
  /** The new side's release label: a change starts a migration. */
  readonly Release: string;
  /** JSON of `WeightedRecords` for a DNS migration; absent for an ALB one. */
  readonly Records?: string;
  /** The migration's per-migration variables (checked by the dispatcher, see `DeployTriggerDeps.settings`). */
  readonly Settings?: unknown;
}

/** The two weighted records of a DNS migration, as the construct describes them. */
export interface WeightedRecords {
  readonly hostedZoneId: string;
  readonly recordName: string;
  readonly recordType: 'CNAME' | 'A';
  /** Seconds (CNAME only: an alias record answers with its target's TTL). */
  readonly ttl?: number;
  readonly old: WeightedRecordSide;
  readonly new: WeightedRecordSide;
}

export interface WeightedRecordSide {
  readonly setIdentifier: string;
  /** CNAME: the host name answered. A: the alias target's DNS name. */
  readonly dnsName: string;
  /** A alias records: the target's hosted zone id (the load balancer's canonical zone). */
  readonly aliasHostedZoneId?: string;
}

export interface FleetDeployDeps extends DeployTriggerDeps {
  /** Reads the routing's current weight (the target's traffic adapter). */
  readonly traffic: TrafficPort;
  /** For the weighted records of a DNS migration. @default - none (an ALB migration) */
  readonly route53?: Route53Client;
}

export async function onFleetDeployEvent(event: CloudFormationCustomResourceEvent, deps: FleetDeployDeps): Promise<DeployTriggerResponse> {
  const log = deps.log ?? ((message, detail) => console.log(JSON.stringify({ message, ...detail })));
  if (event.RequestType === 'Delete') return onDeleteEvent(event, { registry: deps.registry, log }, 'routing left in place');
  const props = validateFleetProperties(event.ResourceProperties as unknown as Record<string, unknown>);
  const key = props.MigrationKey;
  // First: whatever this deploy goes on to record, the controller finds its settings.
  await deps.registry.register(key, deps.settings, (deps.now ?? Date.now)(), registrationOwner(event));
  const respond = (data: Record<string, string>): DeployTriggerResponse => {
    log('deploy trigger', { requestType: event.RequestType, properties: props, result: data });
    return { PhysicalResourceId: key, Data: data };
  };
  const release = props.Release;
  const records = props.Records ? parseRecords(props.Records) : undefined;
  if (records) {
    if (!deps.route53) throw new TypeError('a DNS migration needs a Route 53 client');
    const created = await ensureRecords(deps.route53, records);
    if (created) log('weighted records created, all traffic on the old side', { recordName: records.recordName });
  }
  if (event.RequestType === 'Create') {
    return respond({ Action: 'routing-ready', MigrationId: '', OldRelease: '', NewRelease: release });
  }
  const previous = (event.OldResourceProperties as Record<string, unknown> | undefined)?.Release;
  const oldRelease = typeof previous === 'string' && previous.trim() ? previous.trim() : '';
  const migrationId = `${key}:${release}`;
  const pointer = await deps.store.getPointer(key);
  let loaded: Promise<MigrationStatus> | undefined;
  const statusOf = (current: MigrationPointer) =>
    (loaded ??= deps.store.load(current.migrationId).then((found) => found?.record.status ?? MigrationStatus.PENDING));

  if (pointer && release === pointer.oldVersion && !TERMINAL_STATUSES.includes(await statusOf(pointer))) {
    await invokeCommand(deps, pointer.migrationId, 'abort', `CloudFormation rolled the stack back to release ${release}`, [MigrationStatus.ROLLED_BACK]);
    return respond({ Action: 'abort-requested', MigrationId: pointer.migrationId, OldRelease: pointer.oldVersion, NewRelease: pointer.newVersion });
  }
  // Back to the release a rolled-back migration started from (CloudFormation rolling the stack
  // back after the controller already did, or a revert): the new side takes no traffic and goes
  // back to where it was before that migration, so there is nothing to migrate, as for an alias
  // already serving the version alone. Not after a teardown: the sides have been swapped since.
  if (pointer && release === pointer.oldVersion && (await statusOf(pointer)) === MigrationStatus.ROLLED_BACK) {
    return respond({ Action: 'none', MigrationId: '', OldRelease: oldRelease, NewRelease: release });
  }
  if (release === oldRelease) {
    return respond({ Action: 'none', MigrationId: '', OldRelease: oldRelease, NewRelease: release });
  }
  if (pointer?.migrationId === migrationId) {
    await keepLive(deps, key, pointer, await statusOf(pointer));
    return respond({ Action: 'already-recorded', MigrationId: migrationId, OldRelease: pointer.oldVersion, NewRelease: pointer.newVersion });
  }
  const status = pointer ? await statusOf(pointer) : undefined;
  const makeRoom = (current: MigrationPointer, currentStatus: MigrationStatus) =>
    makeRoomFor(deps, current, currentStatus, `release ${release}`, `release ${current.oldVersion} → ${current.newVersion}`);
  // A running migration refuses the deploy first (its message says how to end it).
  if (pointer && status !== MigrationStatus.COMPLETE) await makeRoom(pointer, status!);
  let earlier: string | undefined;
  try {
    earlier = (await deps.store.load(migrationId))?.record.status;
  } catch (error) {
    if (!(error instanceof DamagedStateError)) throw error;
    earlier = 'damaged';
  }
  if (earlier) {
    throw new DeployBlockedError(
      `release label ${JSON.stringify(release)} was already migrated (migration ${migrationId} is ${earlier}); ` +
        `a migration is started by a label it has not seen before: give this release a label of its own (e.g. the task definition ARN or an image digest)`,
    );
  }
  const routing = await deps.traffic.getWeight();
  if (routing.weight > 0) {
    throw new DeployBlockedError(
      `the new side already receives ${routing.weight}% of the traffic outside any running migration, so release ${release} has nothing to migrate from; ` +
        `after a completed migration the fleet that now serves is the OLD side of the next one: swap old and new in the migration's target, then deploy again`,
    );
  }
  // A completed migration is torn down (its pin released) only once nothing can refuse this deploy
  // any more: after a completion the routing check above refuses every deploy until the sides are
  // swapped, and a refused deploy must leave the old fleet pinned.
  if (pointer && status === MigrationStatus.COMPLETE) await makeRoom(pointer, status);
  await recordAndWake(deps, key, { migrationId, oldVersion: oldRelease || 'unknown', newVersion: release, createdAtMs: (deps.now ?? Date.now)(), spec: specOf(deps) }, pointer?.migrationId);
  return respond({ Action: 'migration-recorded', MigrationId: migrationId, OldRelease: oldRelease, NewRelease: release });
}

function specOf(deps: DeployTriggerDeps): NonNullable<MigrationPointer['spec']> {
  const { plan, judge, pinnedCapacity, target, capacity } = deps.config;
  // The target and the pin go with the migration: after the sides are swapped for the next
  // release, this migration's teardown must still release the fleet it pinned.
  return { plan, judge, ...(pinnedCapacity !== undefined ? { pinnedCapacity } : {}), target, capacity };
}

/**
 * Creates both weighted records when neither exists: the old one answering everything (weight
 * 100), the new one at 0. Both existing: left as they are (the controller owns their weights).
 * One of them alone: someone deleted the other, which the deploy refuses to guess about.
 * `CREATE` (never `UPSERT`) fails if a record appeared meanwhile, so two deploys cannot both write.
 */
export async function ensureRecords(route53: Route53Client, records: WeightedRecords): Promise<boolean> {
  const name = records.recordName.endsWith('.') ? records.recordName : `${records.recordName}.`;
  const wanted = normalizeName(name);
  const listed = await route53.send(
    new ListResourceRecordSetsCommand({ HostedZoneId: records.hostedZoneId, StartRecordName: name, StartRecordType: records.recordType, MaxItems: 100 }),
  );
  // Route 53 lists names in lower case with some characters escaped (a wildcard as `\052`).
  const same = (listed.ResourceRecordSets ?? []).filter((r) => normalizeName(r.Name ?? '') === wanted && r.Type === records.recordType);
  const has = (id: string) => same.some((r) => r.SetIdentifier === id);
  const haveOld = has(records.old.setIdentifier);
  const haveNew = has(records.new.setIdentifier);
  if (haveOld && haveNew) return false;
  if (haveOld !== haveNew) {
    const missing = haveOld ? records.new.setIdentifier : records.old.setIdentifier;
    throw new DeployBlockedError(
      `weighted record ${name} ${records.recordType} "${missing}" is missing while its pair exists; recreate it with weight 0 (new side) or delete the other one, then deploy again`,
    );
  }
  const record = (side: WeightedRecordSide, weight: number): ResourceRecordSet =>
    records.recordType === 'CNAME'
      ? { Name: name, Type: 'CNAME', SetIdentifier: side.setIdentifier, Weight: weight, TTL: records.ttl ?? 60, ResourceRecords: [{ Value: side.dnsName }] }
      : {
          Name: name,
          Type: 'A',
          SetIdentifier: side.setIdentifier,
          Weight: weight,
          AliasTarget: { DNSName: side.dnsName, HostedZoneId: side.aliasHostedZoneId!, EvaluateTargetHealth: true },
        };
  await route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: records.hostedZoneId,
      ChangeBatch: {
        Comment: `cutover: weighted records of ${name}, all traffic on the old side`,
        Changes: [
          { Action: 'CREATE', ResourceRecordSet: record(records.old, 100) },
          { Action: 'CREATE', ResourceRecordSet: record(records.new, 0) },
        ],
      },
    }),
  );
  return true;
}

/** The fleet resource's properties (all but `Settings`, which the dispatcher checks), or a TypeError naming the property. */
export function validateFleetProperties(properties: Record<string, unknown>): FleetDeployProperties {
  const get = (name: 'MigrationKey' | 'Release'): string => {
    const value = properties[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new TypeError(`resource property ${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
    return value.trim();
  };
  const records = properties.Records;
  if (records !== undefined && typeof records !== 'string') {
    throw new TypeError(`resource property Records must be a JSON string, got ${JSON.stringify(records)}`);
  }
  return { TargetKind: 'fleet', MigrationKey: get('MigrationKey'), Release: get('Release'), ...(records ? { Records: records } : {}) };
}

function parseRecords(text: string): WeightedRecords {
  let value: WeightedRecords;
  try {
    value = JSON.parse(text) as WeightedRecords;
  } catch (error) {
    throw new TypeError(`resource property Records is not valid JSON (${(error as Error).message})`);
  }
  const ok =
    value &&
    typeof value.hostedZoneId === 'string' &&
    typeof value.recordName === 'string' &&
    (value.recordType === 'CNAME' || value.recordType === 'A') &&
    [value.old, value.new].every((s) => s && typeof s.setIdentifier === 'string' && typeof s.dnsName === 'string') &&
    (value.recordType === 'CNAME' || [value.old, value.new].every((s) => typeof s.aliasHostedZoneId === 'string'));
  if (!ok) throw new TypeError(`resource property Records must describe two weighted records, got ${text.slice(0, 300)}`);
  return value;
}

/** A record name as Route 53 compares it: octal escapes decoded, lower case, one final dot. */
function normalizeName(name: string): string {
  const decoded = name.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return decoded.toLowerCase().replace(/\.?$/, '.');
}
