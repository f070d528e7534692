/**
 * `MigratedRecord`: the weighted DNS name a DNS migration moves traffic on (`migration.record`), the
 * fleet counterpart of `migration.alias`.
 *
 * The two weighted records are not resources of the stack: the deploy trigger creates them on the
 * first deploy, so that no CloudFormation resource owns their weights. Whatever the app builds on
 * the name must therefore wait for the trigger, or the first deploy races their creation: a Route 53
 * alias record pointing at the name fails with "Tried to create an alias that targets …, but it
 * doesn't exist". This handle adds that dependency itself where aws-cdk binds it as an alias target
 * (`RecordTarget.fromAlias(migration.record)`), and is itself dependable (`node.addDependency(
 * migration.record)`) for anything else that uses `domainName` (a CloudFront origin, a health check).
 */
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Token } from 'aws-cdk-lib';
import { Dependable, type IConstruct, type IDependable } from 'constructs';
import { CutoverValidationError, show } from './errors';

/** Props of `MigratedRecord`. */
export interface MigratedRecordProps {
  /** The hosted zone of the weighted records. */
  readonly zone: route53.IHostedZone;
  /** Their fully qualified name. */
  readonly domainName: string;
  /** Their type. */
  readonly recordType: 'CNAME' | 'A';
  /** What creates the records on the first deploy (the migration's deploy trigger). */
  readonly createdBy: IConstruct;
}

/**
 * The name of a DNS migration's weighted records, usable as a Route 53 alias target in the same
 * zone and as a dependency. Create it through `CanaryMigration` (`migration.record`), not directly.
 */
export class MigratedRecord implements route53.IAliasRecordTarget, IDependable {
  /** The fully qualified name clients resolve. */
  public readonly domainName: string;
  /** The hosted zone of the weighted records. */
  public readonly zone: route53.IHostedZone;
  /** `CNAME` or `A`: an alias record pointing here must have the same type. */
  public readonly recordType: 'CNAME' | 'A';
  private readonly createdBy: IConstruct;

  constructor(props: MigratedRecordProps) {
    this.domainName = props.domainName;
    this.zone = props.zone;
    this.recordType = props.recordType;
    this.createdBy = props.createdBy;
    // Depending on the handle is depending on the trigger that creates the records.
    Dependable.implement(this, { dependencyRoots: [props.createdBy] });
  }

  /**
   * Binds the weighted name as the target of an alias record (aws-cdk calls this for
   * `RecordTarget.fromAlias`): the alias record is created after the trigger, must be in the same
   * zone (Route 53 aliases a record only within its zone) and of the same type.
   */
  public bind(record: route53.IRecordSet, zone?: route53.IHostedZone): route53.AliasRecordTargetConfig {
    const fail = (message: string): never => {
      throw new CutoverValidationError(message, record);
    };
    const zoneId = (zone ?? this.zone).hostedZoneId;
    if (!Token.isUnresolved(zoneId) && !Token.isUnresolved(this.zone.hostedZoneId) && zoneId !== this.zone.hostedZoneId) {
      fail(
        `an alias to the migrated record ${show(this.domainName)} must be in its zone ${show(this.zone.hostedZoneId)}, got ${show(zoneId)}: ` +
          'Route 53 aliases a record only within its hosted zone; use a CNAME to migration.record.domainName from another zone',
      );
    }
    // aws-cdk binds the target before it creates the record's CfnRecordSet: its type is checked at synth.
    record.node.addValidation({
      validate: () => {
        const type = (record.node.defaultChild as route53.CfnRecordSet | undefined)?.type;
        if (type === undefined || Token.isUnresolved(type) || type === this.recordType) return [];
        return [
          `an alias to the migrated record ${show(this.domainName)} must have its type ${this.recordType}, got ${type}: ` +
            (this.recordType === 'A' ? 'use route53.ARecord' : 'use route53.RecordSet with recordType: RecordType.CNAME'),
        ];
      },
    });
    record.node.addDependency(this.createdBy);
    return { dnsName: this.domainName, hostedZoneId: this.zone.hostedZoneId, evaluateTargetHealth: true };
  }
}
