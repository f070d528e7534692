/**
 * `MigrationCompletionWait` on a migration: the Provider with isComplete and its timeouts, the
 * custom resource's properties and order (after the deploy trigger), the handler's read-only access
 * to the table, the synth-time checks of the timeout, cdk-nag with no unacknowledged finding, and
 * cfn-lint on the template (skipped with one line when cfn-lint is not installed).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryMigration } from '../../lib/canary-migration';
import { MigrationCompletionWait } from '../../lib/completion-wait';
import { CutoverValidationError } from '../../lib/errors';
import { TrafficShiftPlan } from '../../lib/plan';
import { appStack, logicalId, removeTestOutputs } from './fixtures';

afterAll(removeTestOutputs);

/** A minimal migration with a wait of `timeout` on it (and the plan, unless `withPlan` is false). */
function waited(timeout: unknown, options: { plan?: TrafficShiftPlan; withPlan?: boolean; encryptionKey?: boolean; stackId?: string } = {}) {
  const { app, stack, fn } = appStack(options.stackId ?? 'Waited');
  const encryptionKey = options.encryptionKey ? new kms.Key(stack, 'Key', { enableKeyRotation: true }) : undefined;
  const migration = new CanaryMigration(stack, 'Migration', {
    function: fn,
    aliasName: 'live',
    version: fn.currentVersion,
    ...(options.plan ? { plan: options.plan } : {}),
    ...(encryptionKey ? { encryptionKey } : {}),
  });
  const wait = new MigrationCompletionWait(migration, 'CompletionWait', {
    deployTrigger: migration.deployTrigger,
    migrationId: migration.migrationId,
    table: migration.table,
    timeout: timeout as Duration,
    ...(options.withPlan === false ? {} : { plan: migration.plan }),
  });
  return { app, stack, migration, wait, encryptionKey };
}

function statementsOf(template: Template, roleLogicalId: string): any[] {
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: Match.arrayWith([{ Ref: roleLogicalId }]) } });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

describe('MigrationCompletionWait', () => {
  const w = waited(Duration.minutes(45));
  const template = Template.fromStack(w.stack);
  const triggerId = logicalId(w.stack, w.migration.deployTrigger);
  const waitId = logicalId(w.stack, w.wait.resource);
  const handlerId = logicalId(w.stack, w.wait.handler);
  const tableId = logicalId(w.stack, w.migration.table);
  const handlerRoleId = w.stack.getLogicalId(w.wait.handler.role!.node.defaultChild as never);

  it('should read the trigger\'s MigrationId, expect this template\'s migration and carry the timeout', () => {
    const resource = template.toJSON().Resources[waitId];
    expect(resource.Type).toBe('Custom::CutoverCompletionWait');
    expect(resource.Properties.RecordedMigrationId).toEqual({ 'Fn::GetAtt': [triggerId, 'MigrationId'] });
    expect(w.stack.resolve(w.migration.migrationId)).toEqual(resource.Properties.ExpectedMigrationId);
    expect(resource.Properties.TimeoutSeconds).toBe('2700');
    // CloudFormation's own wait: the timeout and two query intervals, under its 3600 s limit.
    expect(resource.Properties.ServiceTimeout).toBe('2760');
    // Ordered after the role that lets the handler read the record.
    expect(resource.DependsOn).toEqual(expect.arrayContaining([handlerRoleId]));
  });

  it('should run a Provider with isComplete every 30 s for the whole timeout, then time out', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine');
    expect(Object.keys(machines)).toHaveLength(1);
    const definition = JSON.stringify(Object.values(machines)[0]!.Properties.DefinitionString);
    // 2700 s / 30 s = 90 attempts at a 30 s interval, backoff 1.
    expect(definition).toMatch(/\\"IntervalSeconds\\":30/);
    expect(definition).toMatch(/\\"MaxAttempts\\":90/);
    expect(definition).toMatch(/\\"BackoffRate\\":1/);
    // No state machine log (the framework functions log each step), so no logs permission on `*`.
    expect(Object.values(machines)[0]!.Properties.LoggingConfiguration).toBeUndefined();
    // The framework's onEvent, isComplete and onTimeout functions all call the same handler.
    const frameworks = template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: Match.objectLike({ USER_IS_COMPLETE_FUNCTION_ARN: Match.anyValue() }) } },
    });
    expect(Object.keys(frameworks).length).toBeGreaterThanOrEqual(2);
    for (const fn of Object.values(frameworks)) {
      const vars = (fn as any).Properties.Environment.Variables;
      expect(vars.USER_IS_COMPLETE_FUNCTION_ARN).toEqual({ 'Fn::GetAtt': [handlerId, 'Arn'] });
      expect(vars.USER_ON_EVENT_FUNCTION_ARN).toEqual({ 'Fn::GetAtt': [handlerId, 'Arn'] });
    }
  });

  it('should let the handler do nothing but GetItem on the migration table and write its own logs', () => {
    const statements = statementsOf(template, handlerRoleId);
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => a.startsWith('dynamodb:'))).toEqual(['dynamodb:GetItem']);
    const read = statements.find((s) => [s.Action].flat().includes('dynamodb:GetItem'));
    expect(read.Resource).toEqual({ 'Fn::GetAtt': [tableId, 'Arn'] });
    expect(actions.every((a) => a === 'dynamodb:GetItem' || a.startsWith('logs:'))).toBe(true);
    const role = template.toJSON().Resources[handlerRoleId];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const handler = template.toJSON().Resources[handlerId];
    expect(handler.Properties.Environment.Variables.CUTOVER_TABLE_NAME).toEqual({ Ref: tableId });
    expect(handler.Properties.Timeout).toBe(30);
  });

  it('should give its roles no managed policy and no `*` resource', () => {
    const resources = Object.entries(template.toJSON().Resources as Record<string, any>).filter(([id]) => id.startsWith('MigrationCompletionWait'));
    const roles = resources.filter(([, r]) => r.Type === 'AWS::IAM::Role');
    expect(roles).toHaveLength(4); // the handler's, the framework's onEvent and waiter functions', the state machine's
    for (const [id, role] of roles) expect(role.Properties.ManagedPolicyArns, `role ${id}`).toBeUndefined();
    const resourcesGranted = resources
      .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Resource].flat()));
    expect(resourcesGranted).not.toContain('*');
  });

  it('should add 16 resources to a migration', () => {
    const resources = Object.keys(template.toJSON().Resources).filter((id) => id.startsWith('MigrationCompletionWait'));
    expect(resources).toHaveLength(16);
  });

  it('should add Decrypt on the table key alone when the table has a customer managed key', () => {
    const k = waited(Duration.minutes(30), { encryptionKey: true, stackId: 'WaitedWithKey' });
    const t = Template.fromStack(k.stack);
    const roleId = k.stack.getLogicalId(k.wait.handler.role!.node.defaultChild as never);
    const kmsStatements = statementsOf(t, roleId).filter((s) => [s.Action].flat().some((a: string) => a.startsWith('kms:')));
    expect(kmsStatements).toHaveLength(1);
    expect(kmsStatements[0].Action).toBe('kms:Decrypt');
    expect(kmsStatements[0].Resource).toEqual({ 'Fn::GetAtt': [logicalId(k.stack, k.encryptionKey!), 'Arn'] });
  });
});

describe('MigrationCompletionWait: the timeout, checked at synth', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not a Duration', 30, /waitForCompletion must be a Duration, got 30: give waitForCompletion a whole number of minutes from 5 to 60/],
    ['under 5 minutes', Duration.minutes(2), /waitForCompletion is 2 minutes: give waitForCompletion a whole number of minutes from 5 to 60/],
    ['not whole minutes', Duration.seconds(330), /waitForCompletion is 5 minutes 30 seconds: give waitForCompletion a whole number of minutes/],
    ['over CloudFormation\'s hour', Duration.hours(2), /waitForCompletion is 2 hours, longer than CloudFormation waits for a custom resource \(1 hour.*poll `cutover status <migration>`/],
  ];
  for (const [what, timeout, message] of bad) {
    it(`should refuse a timeout ${what}, saying the fix`, () => {
      expect(() => waited(timeout, { stackId: `Bad${what.replace(/[^A-Za-z]/g, '')}` })).toThrow(CutoverValidationError);
      expect(() => waited(timeout, { stackId: `Bad${what.replace(/[^A-Za-z]/g, '')}2` })).toThrow(message);
    });
  }

  it('should refuse a timeout shorter than the plan could ever take, naming the plan', () => {
    // The default plan: 10 % for 5 min, 100 % for 5 min, soak 10 min: at least 20 minutes.
    expect(() => waited(Duration.minutes(15), { stackId: 'ShortForPlan' })).toThrow(
      /waitForCompletion is 15 minutes, shorter than the plan's minimum duration of 20 minutes .*every deploy would time out/,
    );
    expect(() => waited(Duration.minutes(15), { stackId: 'NoPlanGiven', withPlan: false })).not.toThrow();
  });

  it('should say when no wait can cover the plan at all', () => {
    const long = TrafficShiftPlan.linear({ percentPerStep: 25, interval: Duration.minutes(20) });
    expect(() => waited(Duration.minutes(60), { plan: long, stackId: 'LongPlan' })).toThrow(/cannot cover this plan: it takes at least .* a deploy can wait at most 1 hour/);
  });

  it('should accept a Duration of another aws-cdk-lib copy (duck-typed, not instanceof)', () => {
    const foreign = { ...Duration.minutes(30), toSeconds: () => 1800, toMinutes: () => 30, toHumanString: () => '30 minutes', isUnresolved: () => false } as unknown;
    expect(waited(foreign, { stackId: 'Foreign' }).wait.timeout.toSeconds()).toBe(1800);
  });
});

describe('MigrationCompletionWait under cdk-nag and cfn-lint', () => {
  it('should leave no unacknowledged AwsSolutions finding, each acknowledgement with a reason', () => {
    const w = waited(Duration.minutes(30), { stackId: 'Nag' });
    Validations.of(w.app).addPlugins(new AwsSolutionsChecks(w.app));
    w.app.synth();
    const report = new AwsSolutionsChecks().validateScope(w.app);
    const findings = report.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${'constructPath' in r ? r.constructPath : r.resourceLogicalId}`),
    );
    expect(findings).toEqual([]);
    const acknowledged = w.wait.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap((m) => Object.entries(m.data as Record<string, unknown>)));
    // L1 on the handler, IAM5 on the two framework roles and twice on the waiter's role, SF1 and SF2.
    expect(acknowledged).toHaveLength(7);
    for (const [id, reason] of acknowledged) expect(String(reason).length, id).toBeGreaterThanOrEqual(40);
  });

  it('should pass cfn-lint', () => {
    const w = waited(Duration.minutes(30), { stackId: 'Lint' });
    const findings = cfnLint(w.stack);
    if (findings === undefined) {
      console.log('cfn-lint not installed: template lint check skipped');
      return;
    }
    expect(findings).toBe('');
  });
});

/** W3005: aws-cdk adds a DependsOn on a function's role next to the GetAtt of that role; harmless. */
function cfnLint(stack: Stack): string | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cutover-cfn-lint-'));
  try {
    const file = path.join(dir, 'template.json');
    writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON()));
    try {
      execFileSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3005', '--', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return '';
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stdout?: string };
      if (e.code === 'ENOENT') return undefined;
      return e.stdout ?? String(error);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('CanaryMigration waitForCompletion', () => {
  it('should add the wait on the deploy trigger when set, with the migration\'s id and the timeout', () => {
    const { stack, fn } = appStack('WaitProp');
    const migration = new CanaryMigration(stack, 'Migration', {
      function: fn,
      aliasName: 'live',
      version: fn.currentVersion,
      waitForCompletion: Duration.minutes(40),
    });
    expect(migration.completionWait).toBeDefined();
    const template = Template.fromStack(stack);
    const resource = template.toJSON().Resources[logicalId(stack, migration.completionWait!.resource)];
    expect(resource.Type).toBe('Custom::CutoverCompletionWait');
    expect(resource.Properties.RecordedMigrationId).toEqual({ 'Fn::GetAtt': [logicalId(stack, migration.deployTrigger), 'MigrationId'] });
    expect(resource.Properties.ExpectedMigrationId).toEqual(stack.resolve(migration.migrationId));
    expect(String(resource.Properties.TimeoutSeconds)).toBe('2400');
  });

  it('should add no wait by default', () => {
    const { stack, fn } = appStack('NoWaitProp');
    const migration = new CanaryMigration(stack, 'Migration', { function: fn, aliasName: 'live', version: fn.currentVersion });
    expect(migration.completionWait).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('Custom::CutoverCompletionWait', 0);
  });

  it('should refuse a wait over an hour at synth, naming the value and the fix', () => {
    const { stack, fn } = appStack('LongWaitProp');
    expect(() => new CanaryMigration(stack, 'Migration', {
      function: fn,
      aliasName: 'live',
      version: fn.currentVersion,
      waitForCompletion: Duration.hours(2),
    })).toThrow(/120 minutes|2 hours/);
  });
});
