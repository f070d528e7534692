/**
 * Shared builders for the infrastructure tests. Bundling is skipped (`aws:cdk:bundling-stacks: []`)
 * everywhere except in `bundling.test.ts`, so these synthesise in a few seconds without esbuild.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { CanaryMigration, type CanaryMigrationProps } from '../../lib/canary-migration';

export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] as string[] };

/** The feature flags of `cdk.json`, so that tests synthesise what `cdk deploy` would. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8'),
).context;

const outdirs: string[] = [];

/**
 * An app with the project's feature flags and without bundling. Its cloud assembly goes to a temp
 * directory that `removeTestOutputs` (called in each file's `afterAll`) deletes.
 */
export function testApp(extraContext: Record<string, unknown> = {}): App {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'cutover-infra-'));
  outdirs.push(outdir);
  return new App({ outdir, context: { ...CDK_JSON_CONTEXT, ...NO_BUNDLING, ...extraContext } });
}

/** Deletes the cloud assemblies written by the apps of this test file. */
export function removeTestOutputs(): void {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A stack with a plain inline function and its current version: the thing being migrated. */
export function appStack(id = 'Test'): { app: App; stack: Stack; fn: lambda.Function } {
  const app = testApp();
  const stack = new Stack(app, id, { env: { account: '123456789012', region: 'eu-west-1' } });
  // A stand-in for the user's function, itself clean for cdk-nag so that the gate sees only Cutover.
  const fn = new lambda.Function(stack, 'Service', {
    runtime: lambda.Runtime.NODEJS_24_X,
    role: new iam.Role(stack, 'ServiceRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }),
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "ok" });'),
  });
  return { app, stack, fn };
}

export function alarm(stack: Stack, id: string): cloudwatch.Alarm {
  return new cloudwatch.Alarm(stack, id, {
    metric: new cloudwatch.Metric({ namespace: 'Test', metricName: id, period: Duration.minutes(1) }),
    threshold: 1,
    evaluationPeriods: 1,
  });
}

/** A migration with every optional feature on: alarms, probe, pinned capacity, a bus and a key of its own. */
export function fullMigration(overrides: Partial<CanaryMigrationProps> = {}) {
  const { app, stack, fn } = appStack('Full');
  const bus = new events.EventBus(stack, 'Bus');
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const alarms = [alarm(stack, 'AlarmA'), alarm(stack, 'AlarmB')];
  const migration = new CanaryMigration(stack, 'Migration', {
    function: fn,
    aliasName: 'live',
    version: fn.currentVersion,
    alarms,
    probeTargets: { newUrl: 'https://new.example.com/prod/', oldUrl: 'https://old.example.com/prod/' },
    probePath: '/health',
    probeRuns: 3,
    oldCapacity: 5,
    eventBus: bus,
    encryptionKey: key,
    ...overrides,
  });
  return { app, stack, fn, bus, key, alarms, migration };
}

/** A migration with nothing but the required props. */
export function minimalMigration() {
  const { app, stack, fn } = appStack('Minimal');
  const migration = new CanaryMigration(stack, 'Migration', { function: fn, aliasName: 'live', version: fn.currentVersion });
  return { app, stack, fn, migration };
}

/** Logical id of a construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}

/**
 * cfn-lint findings over a stack's synthesized template ('' when clean), or undefined when cfn-lint
 * is not installed. `ignore` lists checks that come from aws-cdk's own patterns or from the test's
 * environment (each caller says why).
 */
export function cfnLint(stack: Stack, ignore: readonly string[] = ['W3005']): string | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cutover-cfn-lint-'));
  try {
    const file = path.join(dir, 'template.json');
    writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON()));
    try {
      execFileSync('cfn-lint', ['--format', 'parseable', ...(ignore.length > 0 ? ['--ignore-checks', ...ignore] : []), '--', file], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
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
