/**
 * The cdk-nag gate (AwsSolutions pack, cdk-nag 3.x): no unacknowledged finding, of any severity, in
 * the demo stack or in a migration with every optional feature on; every acknowledgement carries a
 * written reason.
 */
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutoverDemoStack } from '../../lib/demo-stack';
import { fullMigration, testApp, removeTestOutputs } from './fixtures';

interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: unknown;
}

function acknowledgementsIn(root: IConstruct): Acknowledgement[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.entries(entry.data as Record<string, unknown>).map(([id, reason]) => ({ path: construct.node.path, id, reason }))),
  );
}

/** Synthesises with the pack registered the documented way; synthesis throws on any violation. */
function gate(app: App): { findings: string[]; acknowledgements: Acknowledgement[] } {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  // The same pack run directly, for a readable list in the failure message.
  const report = new AwsSolutionsChecks().validateScope(app);
  const findings = report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${'constructPath' in r ? r.constructPath : r.resourceLogicalId}`),
  );
  return { findings, acknowledgements: acknowledgementsIn(app) };
}


afterAll(removeTestOutputs);

describe('cdk-nag AwsSolutions gate', () => {
  let demo: ReturnType<typeof gate>;
  let full: ReturnType<typeof gate>;

  beforeAll(() => {
    const demoApp = testApp();
    new CutoverDemoStack(demoApp, 'Demo');
    demo = gate(demoApp);
    // Pinned capacity, alarms, probe, own bus and key: the acknowledgements that depend on props.
    full = gate(fullMigration({ oldCapacity: 3 }).app);
  });

  it('should leave no unacknowledged finding in the demo stack', () => {
    expect(demo.findings).toEqual([]);
  });

  it('should leave no unacknowledged finding in a migration with every feature on', () => {
    expect(full.findings).toEqual([]);
  });

  it('should give every acknowledgement a written reason', () => {
    const all = [...demo.acknowledgements, ...full.acknowledgements];
    expect(all.length).toBeGreaterThan(0);
    for (const ack of all) {
      expect(typeof ack.reason, `${ack.id} at ${ack.path}`).toBe('string');
      expect((ack.reason as string).trim().length, `${ack.id} at ${ack.path} has a real reason`).toBeGreaterThanOrEqual(40);
    }
  });

  it('should acknowledge only what the design needs, on the narrowest construct', () => {
    const ids = full.acknowledgements.map((a) => `${a.path} ${a.id.replace(/^annotation::/i, '')}`);
    expect(ids).toEqual(
      expect.arrayContaining([
        // The stack's shared controller holds the shared functions; a migration's grants (the pin
        // on the function's qualifiers) are acknowledged on the shared role they are added to.
        'Full/CutoverController/LambdaAliasController/Function AwsSolutions-L1',
        'Full/CutoverController/LambdaAliasController/Role AwsSolutions-IAM5[Resource::*]',
        // DescribeAlarms on `*` (composite alarms), in a policy of its own.
        'Full/CutoverController/LambdaAliasController/ReadWatchedAlarms AwsSolutions-IAM5[Resource::*]',
        'Full/CutoverController/LambdaAliasController/Role AwsSolutions-IAM5[Resource::<ServiceDBC79909.Arn>:*]',
        expect.stringMatching(/^Full\/CutoverController\/DeployTriggerProviderRole AwsSolutions-IAM5\[Resource::<CutoverControllerDeployTriggerHandler[0-9A-F]{8}\.Arn>:\*\]$/),
      ]),
    );
    // Nothing is acknowledged for a whole stack or app.
    for (const ack of [...demo.acknowledgements, ...full.acknowledgements]) {
      expect(ack.path.split('/').length, `${ack.id} at ${ack.path}`).toBeGreaterThan(1);
    }
  });
});
