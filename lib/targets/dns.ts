/**
 * `MigrationTarget.dns`: two Route 53 weighted records of one name, each answering with one fleet's
 * load balancer (the incident's migration). The deploy trigger creates the records on the first
 * deploy (everything on the old side) so that no CloudFormation resource owns their weights.
 *
 * What propagates how fast: a weight change is INSYNC on Route 53's name servers within about a
 * minute; resolvers then keep their answer for the TTL (some longer), and a Keep-Alive connection
 * stays on the fleet it was opened to. So the gate lowers the TTL to `ttl` before the first shift
 * and waits out the old one, and a rollback is watched until the new side is empty.
 *
 * Permissions: Route 53 changes only in this zone, and only of this name and type, with CREATE and
 * DELETE (never UPSERT: a concurrent change fails instead of being overwritten); `GetChange` on
 * changes (IAM has no narrower resource for them).
 */
import { Duration, Names, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as route53 from 'aws-cdk-lib/aws-route53';
import { CutoverValidationError, show } from '../errors';
import { nagResourceFinding } from '../nag';
import type { IMigrationTarget, MigrationTargetBinding, ProbeTargetSpec, TargetBindContext } from './binding';
import { checkRelease, checkUrl, loadBalancerFullName, loadBalancerWidgets } from './load-balancer';

/** One side of a DNS migration: the fleet's own load balancer. */
export interface DnsSide {
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;
  /**
   * The weighted record's `SetIdentifier`.
   * @default 'old' or 'new'
   */
  readonly setIdentifier?: string;
}

/** Props of `MigrationTarget.dns`. */
export interface DnsTargetProps {
  readonly zone: route53.IHostedZone;
  /** The name clients resolve: relative to the zone (`api`) or fully qualified (`api.example.com`). */
  readonly recordName: string;
  /**
   * `CNAME` records answer with each load balancer's DNS name and carry `ttl`; `A` alias records
   * answer with its addresses and have the load balancer's own TTL (60 s), which `ttl` cannot lower.
   * A zone apex needs `A`.
   * @default 'CNAME'
   */
  readonly recordType?: 'CNAME' | 'A';
  /**
   * The TTL during the migration: a longer TTL is lowered to it before the first shift, and the
   * gate waits out the old one. A client that honours it follows a weight change within it.
   * @default Duration.seconds(60)
   */
  readonly ttl?: Duration;
  readonly old: DnsSide;
  readonly new: DnsSide;
  /** A label of what the new fleet runs: a migration starts on `cdk deploy` whenever it changes. */
  readonly release: string;
  /**
   * Probe each fleet alone: the probe connects to each side's load balancer and speaks as `url`'s
   * host (Host header and TLS SNI; the certificate is checked against it).
   * @default - no probe
   */
  readonly probe?: { readonly url: string };
  /**
   * Name of the migration (the metrics' `Migration` dimension and the key of its history).
   * @default - a name derived from the construct's path
   */
  readonly migrationName?: string;
}

export class DnsTarget implements IMigrationTarget {
  readonly kind = 'dns' as const;

  constructor(readonly props: DnsTargetProps) {}

  bind({ scope }: TargetBindContext): MigrationTargetBinding {
    const props = this.props;
    const fail = (message: string): never => {
      throw new CutoverValidationError(message, scope);
    };
    if (!props.zone) fail('MigrationTarget.dns: zone is required (the hosted zone of the record)');
    if (!props.old?.loadBalancer || !props.new?.loadBalancer) fail('MigrationTarget.dns: old.loadBalancer and new.loadBalancer are required');
    if (props.old.loadBalancer === props.new.loadBalancer) fail('MigrationTarget.dns: old and new must be two different load balancers (one per fleet)');
    const recordType = props.recordType ?? 'CNAME';
    if (recordType !== 'CNAME' && recordType !== 'A') fail(`MigrationTarget.dns: recordType must be 'CNAME' or 'A', got ${show(recordType)}`);
    const ttl = props.ttl ?? Duration.seconds(60);
    const ttlSeconds = ttl.toSeconds();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 86_400) {
      fail(`MigrationTarget.dns: ttl must be whole seconds from 1 second to 1 day, got ${ttl.toHumanString()}`);
    }
    if (recordType === 'A' && props.ttl !== undefined) {
      fail("MigrationTarget.dns: ttl has no effect on A alias records (they answer with the load balancer's TTL, 60 s); use recordType 'CNAME' to set it");
    }
    checkRelease(scope, props.release, 'MigrationTarget.dns');
    const oldId = props.old.setIdentifier ?? 'old';
    const newId = props.new.setIdentifier ?? 'new';
    if (oldId === newId) fail(`MigrationTarget.dns: the two records need different setIdentifiers, both are ${show(oldId)}`);
    const recordName = fullName(scope, props.recordName, props.zone.zoneName);
    if (props.probe) checkUrl(scope, props.probe.url, 'MigrationTarget.dns: probe.url');

    const stack = Stack.of(scope);
    const migrationKey = props.migrationName ?? Names.uniqueResourceName(scope, { maxLength: 128, separator: '-' });
    const zoneId = props.zone.hostedZoneId;
    const target = {
      kind: 'dns',
      hostedZoneId: zoneId,
      recordName,
      recordType,
      oldSetIdentifier: oldId,
      newSetIdentifier: newId,
      ...(recordType === 'CNAME' ? { maxTtlSeconds: ttlSeconds } : {}),
      oldLoadBalancer: loadBalancerFullName(props.old.loadBalancer),
      newLoadBalancer: loadBalancerFullName(props.new.loadBalancer),
      // After a rollback the controller shortens this load balancer's client Keep-Alive.
      newLoadBalancerArn: props.new.loadBalancer.loadBalancerArn,
    };
    const side = (s: DnsSide, setIdentifier: string) => ({
      setIdentifier,
      dnsName: s.loadBalancer.loadBalancerDnsName,
      ...(recordType === 'A' ? { aliasHostedZoneId: s.loadBalancer.loadBalancerCanonicalHostedZoneId } : {}),
    });
    const records = { hostedZoneId: zoneId, recordName, recordType, ttl: ttlSeconds, old: side(props.old, oldId), new: side(props.new, newId) };
    const zoneArn = stack.formatArn({ service: 'route53', region: '', account: '', resource: 'hostedzone', resourceName: zoneId });
    const normalizedName = Token.isUnresolved(recordName) ? recordName : recordName.replace(/\.$/, '').toLowerCase();
    const change = (sid: string, actions: string[]) =>
      new iam.PolicyStatement({
        sid,
        actions: ['route53:ChangeResourceRecordSets'],
        resources: [zoneArn],
        conditions: {
          'ForAllValues:StringEquals': {
            'route53:ChangeResourceRecordSetsNormalizedRecordNames': [normalizedName],
            'route53:ChangeResourceRecordSetsRecordTypes': [recordType],
            'route53:ChangeResourceRecordSetsActions': actions,
          },
        },
      });
    const changeArns = stack.formatArn({ service: 'route53', region: '', account: '', resource: 'change', resourceName: '*' });
    const list = new iam.PolicyStatement({ sid: 'ReadWeightedRecords', actions: ['route53:ListResourceRecordSets'], resources: [zoneArn] });
    const probeTargets: ProbeTargetSpec[] | undefined = props.probe
      ? [
          { side: 'old', url: props.probe.url, connectTo: props.old.loadBalancer.loadBalancerDnsName },
          { side: 'new', url: props.probe.url, connectTo: props.new.loadBalancer.loadBalancerDnsName },
        ]
      : undefined;
    return {
      kind: this.kind,
      migrationKey,
      identity: props.release,
      environment: { CUTOVER_TARGET: stack.toJsonString(target), CUTOVER_MIGRATION_KEY: migrationKey },
      triggerProperties: { TargetKind: 'fleet', MigrationKey: migrationKey, Release: props.release, Records: stack.toJsonString(records) },
      ...(probeTargets ? { probeTargets } : {}),
      weightedRecord: { zone: props.zone, domainName: recordName, recordType },
      grantController: (role) => {
        role.addToPrincipalPolicy(list);
        role.addToPrincipalPolicy(change('ShiftRecordWeights', ['CREATE', 'DELETE']));
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({ sid: 'WaitForRecordChanges', actions: ['route53:GetChange'], resources: [changeArns] }),
        );
        // The rollback's active drain: the NEW load balancer's client Keep-Alive, its original kept in a tag.
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'DrainNewLoadBalancer',
            actions: ['elasticloadbalancing:ModifyLoadBalancerAttributes', 'elasticloadbalancing:AddTags', 'elasticloadbalancing:RemoveTags'],
            resources: [props.new.loadBalancer.loadBalancerArn],
          }),
        );
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'ReadNewLoadBalancer',
            actions: ['elasticloadbalancing:DescribeLoadBalancerAttributes', 'elasticloadbalancing:DescribeTags'],
            resources: ['*'],
          }),
        );
      },
      grantTrigger: (role) => {
        role.addToPrincipalPolicy(list);
        role.addToPrincipalPolicy(change('CreateWeightedRecordsOnce', ['CREATE']));
      },
      acknowledge: ({ controller }) => {
        Validations.of(controller).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason:
            'elasticloadbalancing:DescribeLoadBalancerAttributes and DescribeTags support no resource-level permissions: `*` is the only resource they accept. The drain itself (ModifyLoadBalancerAttributes, AddTags, RemoveTags) is scoped to the new load balancer.',
        });
        Validations.of(controller).acknowledge({
          id: `AwsSolutions-IAM5[${nagResourceFinding(scope, changeArns)}]`,
          reason: 'route53:GetChange is authorized on change resources, whose ids are only known when a change is made: `change/*` is the narrowest scope IAM offers; it only reads the status of a change.',
        });
      },
      healthWidgets: () =>
        loadBalancerWidgets(
          undefined,
          [
            ['old', loadBalancerFullName(props.old.loadBalancer)],
            ['new', loadBalancerFullName(props.new.loadBalancer)],
          ],
          true,
        ),
    };
  }
}

/** The record's fully qualified name without the final dot (`api` in `example.com` → `api.example.com`). */
function fullName(scope: TargetBindContext['scope'], recordName: string, zoneName: string): string {
  if (typeof recordName !== 'string' || (!Token.isUnresolved(recordName) && !/^[A-Za-z0-9*_.-]{1,253}$/.test(recordName))) {
    throw new CutoverValidationError(`MigrationTarget.dns: recordName must be a domain name such as "api" or "api.example.com", got ${show(recordName)}`, scope);
  }
  if (Token.isUnresolved(recordName) || Token.isUnresolved(zoneName)) return recordName;
  const name = recordName.replace(/\.$/, '');
  const zone = zoneName.replace(/\.$/, '');
  return name === zone || name.endsWith(`.${zone}`) ? name : `${name}.${zone}`;
}
