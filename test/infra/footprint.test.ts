/**
 * What each migration adds to a stack: the resource count of a stack with 1, 2 and 3 migrations
 * (a typical one each: its own function, an alarm, probe targets, a pinned old side), and the
 * schedules' state at deploy. The difference between two counts is "resources per added
 * migration"; it is measured here, not assumed. The stack's shared controller (table, topic,
 * functions, schedules, provider) comes with the first migration and is counted apart.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryMigration } from '../../lib/canary-migration';
import { alarm, removeTestOutputs, testApp } from './fixtures';

afterAll(removeTestOutputs);

const APP_OWN = /^(Service|ServiceRole|Errors)\d/;

/** A stack with `n` migrated functions; returns its template and the count of the app's own resources. */
function stackWith(n: number): { template: Template; own: number } {
  const app = testApp();
  const stack = new Stack(app, `Footprint${n}`, { env: { account: '123456789012', region: 'eu-west-1' } });
  let own = 0;
  for (let i = 1; i <= n; i++) {
    const fn = new lambda.Function(stack, `Service${i}`, {
      runtime: lambda.Runtime.NODEJS_24_X,
      role: new iam.Role(stack, `ServiceRole${i}`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }),
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "ok" });'),
    });
    const errors = alarm(stack, `Errors${i}`);
    new CanaryMigration(stack, `Migration${i}`, {
      function: fn,
      aliasName: 'live',
      version: fn.currentVersion,
      alarms: [errors],
      probeTargets: { newUrl: `https://new${i}.example.com/`, oldUrl: `https://old${i}.example.com/` },
      oldCapacity: 5,
    });
  }
  const template = Template.fromStack(stack);
  // The app's own: each function, its log group and its version (ServiceN…), its role
  // (ServiceRoleN…), its alarm (ErrorsN…).
  for (const id of Object.keys(template.toJSON().Resources)) if (APP_OWN.test(id)) own++;
  return { template, own };
}

const counts = [1, 2, 3].map((n) => {
  const { template, own } = stackWith(n);
  const resources = Object.keys(template.toJSON().Resources).length;
  return { n, template, own, resources };
});

describe('footprint of migrations in one stack', () => {
  it('should add the same number of resources with every migration, and say how many', () => {
    const added = counts.slice(1).map((c, i) => c.resources - counts[i]!.resources);
    expect(added[0]).toBe(added[1]);
    // Per added migration, the app's own five (function, log group, version, role, alarm) set aside.
    expect(counts.map((c) => c.own)).toEqual([5, 10, 15]);
    const perMigration = added[0]! - 5;
    const shared = counts[0]!.resources - counts[0]!.own - perMigration;
    expect({ resources: counts.map((c) => c.resources), shared, perAddedMigration: perMigration }).toEqual({
      resources: [5 + shared + perMigration, 10 + shared + 2 * perMigration, 15 + shared + 3 * perMigration],
      // The table, topic (+ policy), deploy trigger (function, role, policy, log group), its
      // provider (function, role, policy, log group), the alias family's controller (function,
      // role, policy, log group, async config, schedule, desync rule, their two permissions, the
      // alarm read policy) and the probe (function, role, policy, log group, async config,
      // schedule, its permission).
      shared: 28,
      // Its deploy trigger custom resource, its alarm rule and that rule's permission to invoke
      // the controller, and its dashboard. (With a controller per migration it was 32 by this
      // count: the table, topic, functions, schedules and provider, each migration its own.)
      perAddedMigration: 4,
    });
    // What one added migration brings, by type.
    const second = Object.entries<any>(counts[1]!.template.toJSON().Resources).filter(([id]) => id.startsWith('Migration2'));
    expect(second).toHaveLength(perMigration);
    expect(second.map(([, r]) => r.Type).sort()).toEqual(
      ['AWS::CloudWatch::Dashboard', 'AWS::Events::Rule', 'AWS::Lambda::Permission', 'Custom::CutoverDeployTrigger'].sort(),
    );
  });

  it('should create every schedule DISABLED at deploy, one controller and one probe schedule per stack, and no other rule on a schedule', () => {
    for (const { template } of counts) {
      const scheduled = Object.values(template.findResources('AWS::Events::Rule')).filter((r: any) => r.Properties.ScheduleExpression);
      expect(scheduled).toHaveLength(2);
      for (const rule of scheduled as any[]) expect(rule.Properties.State).toBe('DISABLED');
      // Rule names are unique in the account and region: one per stack and kind.
      expect(new Set(scheduled.map((r: any) => r.Properties.Name)).size).toBe(2);
    }
  });

  it('should give each migration only grants on the shared roles, each still scoped to its own function', () => {
    const { template } = counts[2]!;
    const policies = Object.values<any>(template.findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p.Properties.Roles).includes('LambdaAliasControllerRole'));
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
    const sids = statements.map((st: any) => st.Sid).filter(Boolean);
    // IAM refuses two statements with one Sid in a policy: each migration's gets its own.
    expect(new Set(sids).size).toBe(sids.length);
    const shifts = statements.filter((st: any) => [st.Action].flat().includes('lambda:UpdateAlias'));
    expect(shifts.map((st: any) => st.Sid)).toEqual(['ShiftAliasWeights', 'ShiftAliasWeights2', 'ShiftAliasWeights3']);
    shifts.forEach((st: any, i: number) => expect(JSON.stringify(st.Resource)).toContain(`Service${i + 1}`));
  });
});
