/**
 * `MigratedRecord` (`migration.record`): as a Route 53 alias target it makes the alias record wait
 * for the deploy trigger that creates the weighted records, and refuses at synth an alias in
 * another zone or of another type; depending on the handle is depending on the trigger.
 */
import { App, CustomResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { MigratedRecord } from '../../lib/migrated-record';

function setup(recordType: 'A' | 'CNAME' = 'A') {
  const app = new App();
  const stack = new Stack(app, 'Records', { env: { account: '123456789012', region: 'us-east-1' } });
  const zone = new route53.PublicHostedZone(stack, 'Zone', { zoneName: 'example.com' });
  const trigger = new CustomResource(stack, 'DeployTrigger', { serviceToken: 'arn:aws:lambda:us-east-1:123456789012:function:trigger' });
  const record = new MigratedRecord({ zone, domainName: 'api.example.com', recordType, createdBy: trigger });
  return { app, stack, zone, trigger, record };
}

const triggerId = (stack: Stack) => Object.keys(Template.fromStack(stack).findResources('AWS::CloudFormation::CustomResource'))[0];

describe('MigratedRecord', () => {
  it('should bind as an alias target in its zone, created after the trigger', () => {
    const { stack, zone, record } = setup('A');
    new route53.ARecord(stack, 'Apex', { zone, target: route53.RecordTarget.fromAlias(record) });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'example.com.',
      Type: 'A',
      AliasTarget: { DNSName: 'api.example.com', HostedZoneId: { Ref: 'ZoneA5DE4B68' }, EvaluateTargetHealth: true },
    });
    const apex = Object.values(template.findResources('AWS::Route53::RecordSet'))[0] as { DependsOn?: string[] };
    expect(apex.DependsOn).toContain(triggerId(stack));
  });

  it('should accept a CNAME alias to CNAME weighted records', () => {
    const { stack, zone, record } = setup('CNAME');
    new route53.RecordSet(stack, 'Www', { zone, recordName: 'www', recordType: route53.RecordType.CNAME, target: route53.RecordTarget.fromAlias(record) });
    expect(() => Template.fromStack(stack)).not.toThrow();
  });

  it('should refuse at synth an alias of another type, naming the construct to use', () => {
    const { app, stack, zone, record } = setup('CNAME');
    new route53.ARecord(stack, 'Apex', { zone, target: route53.RecordTarget.fromAlias(record) });
    expect(() => app.synth()).toThrow(/must have its type CNAME, got A: use route53\.RecordSet with recordType: RecordType\.CNAME/);
  });

  it('should refuse an alias in another hosted zone, naming the fix', () => {
    const { stack, trigger } = setup('A');
    const other = route53.HostedZone.fromHostedZoneAttributes(stack, 'Other', { hostedZoneId: 'Z0OTHER', zoneName: 'other.com' });
    const zoned = new MigratedRecord({
      zone: route53.HostedZone.fromHostedZoneAttributes(stack, 'Mine', { hostedZoneId: 'Z0MINE', zoneName: 'example.com' }),
      domainName: 'api.example.com',
      recordType: 'A',
      createdBy: trigger,
    });
    expect(() => new route53.ARecord(stack, 'Elsewhere', { zone: other, target: route53.RecordTarget.fromAlias(zoned) })).toThrow(
      /must be in its zone "Z0MINE", got "Z0OTHER": .*use a CNAME to migration\.record\.domainName/,
    );
  });

  it('should make whatever depends on it wait for the trigger', () => {
    const { stack, record } = setup('A');
    const topic = new sns.Topic(stack, 'UsesTheName', { displayName: record.domainName });
    topic.node.addDependency(record);
    const resource = Object.values(Template.fromStack(stack).findResources('AWS::SNS::Topic'))[0] as { DependsOn?: string[] };
    expect(resource.DependsOn).toContain(triggerId(stack));
  });
});
