/**
 * What each migration adds to a stack: the resource count of a stack with 1, 2 and 3 migrations
 * (a typical one each: its own function, an alarm, probe targets, a pinned old side), and the
 * schedules' state at deploy. The difference between two counts is "resources per added
 * migration"; it is measured here, not assumed.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryMigration } from '../../lib/canary-migration';
import { alarm, removeTestOutputs, testApp } from './fixtures';

afterAll(removeTestOutputs);

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
  // The app's own: each function, its role, its version (ServiceN…), its alarm (ErrorsN…).
  for (const id of Object.keys(template.toJSON().Resources)) if (/^(Service|Errors)\d/.test(id)) own++;
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
    // Per added migration, the app's own four (function, role, version, alarm) set aside. Today
    // every migration brings its own table, topic, functions, schedules and dashboard.
    expect(counts.map((c) => c.own)).toEqual([4, 8, 12]);
    const perMigration = added[0]! - 4;
    // Nothing is shared yet: a stack with one migration holds the app's four and one migration's.
    expect(counts[0]!.resources - counts[0]!.own).toBe(perMigration);
    expect({ resources: counts.map((c) => c.resources), perAddedMigration: perMigration }).toEqual({
      resources: [4 + perMigration, 8 + 2 * perMigration, 12 + 3 * perMigration],
      perAddedMigration: 33,
    });
  });

  it('should create every schedule DISABLED at deploy, two per migration, and no other rule on a schedule', () => {
    for (const { n, template } of counts) {
      const scheduled = Object.values(template.findResources('AWS::Events::Rule')).filter((r: any) => r.Properties.ScheduleExpression);
      expect(scheduled).toHaveLength(2 * n);
      for (const rule of scheduled as any[]) expect(rule.Properties.State).toBe('DISABLED');
      // Rule names are unique in the account and region: one per migration and kind.
      expect(new Set(scheduled.map((r: any) => r.Properties.Name)).size).toBe(2 * n);
    }
  });
});
