#!/usr/bin/env node
/**
 * `npm run integ`: the demo on a real AWS account, end to end (see docs/integ.md). Deploys the demo
 * under a stack name of its own, sends traffic, deploys a bad release, checks the rollback, the
 * alias, the drain and the notifications, and destroys the stack whatever happened, Ctrl-C included.
 *
 * Without credentials (or in CI without CUTOVER_INTEG=1) it prints one line and exits 0.
 *
 * Exit codes: 0 passed (or skipped), 1 a check failed or the stack could not be destroyed,
 * 2 misconfigured (e.g. no region), 130 interrupted by Ctrl-C (143 by SIGTERM), after the destroy.
 *
 * Environment: CUTOVER_INTEG_STACK (stack name; default CutoverInteg-<time>-<random>),
 * CUTOVER_INTEG_FAULT_RATE (default 0.5), CUTOVER_INTEG_RATE (requests per second, default 5),
 * CUTOVER_INTEG_API_GATEWAY_ACCOUNT_LOGGING=1 (passes -c cutover:apiGatewayAccountLogging=true, for
 * a region whose API Gateway has no CloudWatch Logs role yet).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetAliasCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { clientConfig } from '../lambda/aws/clients';
import { createDocumentClients } from '../lambda/aws/dynamodb-table';
import { AwsMigrationSource } from '../ops/aws-source';
import { InterruptGuard } from '../rehearsal/interrupt';
import { IntegAssertionError, InterruptedError, Progress, formatDuration, realClock } from './poll';
import { CdkCli } from './cdk';
import { estimateRunCost } from './cost';
import { readNotes } from './notes';
import { preflight } from './preflight';
import { runScenario, type ScenarioOutcome } from './scenario';
import { TrafficLoop } from './traffic';

const REPO_ROOT = path.resolve(__dirname, '..');

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // The SDK warns on its first client under Node 20 (which this repository supports, see
  // package.json's engines) that its releases after January 2027 will need Node 22: eleven lines
  // on stderr that would bury the one-line skip. The warning is about future SDK updates, not
  // about this run; setting the SDK's own switch (unless the caller chose) silences it here only.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const decided = await preflight({ env });
  if (!decided.run) {
    process.stdout.write(`${decided.line}\n`);
    return decided.exitCode;
  }
  const stackName = env.CUTOVER_INTEG_STACK || defaultStackName();
  const faultRate = numberFrom(env, 'CUTOVER_INTEG_FAULT_RATE', 0.5, (v) => v > 0 && v <= 1, 'above 0 and at most 1');
  const rate = numberFrom(env, 'CUTOVER_INTEG_RATE', 5, (v) => v > 0 && v <= 50, 'above 0 and at most 50');
  const progress = new Progress();
  const workDir = await mkdtemp(path.join(tmpdir(), 'cutover-integ-'));
  const cdk = new CdkCli({
    stackName,
    cwd: REPO_ROOT,
    workDir,
    context: env.CUTOVER_INTEG_API_GATEWAY_ACCOUNT_LOGGING === '1' ? { 'cutover:apiGatewayAccountLogging': 'true' } : {},
  });
  const options = { region: decided.region };
  const lambda = new LambdaClient(clientConfig(options));
  const { dynamoDb, documents } = createDocumentClients(options);

  // Ctrl-C once: stop waiting, let a deploy in progress finish, destroy. Twice: leave now. The
  // rehearsal's guard also takes the copy of one Ctrl-C that npm and tsx forward as the same one.
  const guard = new InterruptGuard({
    onFirst: (name) =>
      progress.line(`${name}: stopping; a deploy in progress finishes first, then ${stackName} is destroyed (${name} again to leave it standing)`),
    onSecond: (_name, code) => {
      process.stderr.write(`left ${stackName} standing; delete it by hand: ${cdk.manualDestroy}\n`);
      process.exit(code);
    },
  }).install();

  progress.line(`region ${decided.region}, stack ${stackName}; 15–30 minutes, a few US cents (docs/integ.md)`);
  let outcome: ScenarioOutcome;
  try {
    outcome = await runScenario(
      {
        cdk,
        openSource: (tableName) => new AwsMigrationSource({ tableName, clientOptions: options }),
        readAlias: (functionName, aliasName) => lambda.send(new GetAliasCommand({ FunctionName: functionName, Name: aliasName })),
        readNotes: (tableName) => readNotes(documents, tableName),
        startTraffic: (url) => {
          const loop = new TrafficLoop({ url, ratePerSecond: rate });
          loop.start();
          return loop;
        },
        clock: realClock,
        progress,
        signal: guard.signal,
      },
      { faultRate },
    );
  } finally {
    guard.uninstall();
    lambda.destroy();
    documents.destroy();
    dynamoDb.destroy();
    await rm(workDir, { recursive: true, force: true });
  }

  const cost = estimateRunCost({ minutes: progress.elapsedMs() / 60_000, apiRequests: outcome.traffic?.sent ?? 0 });
  progress.line(`estimated cost of this run: $${cost.totalUsd.toFixed(3)} (${formatDuration(progress.elapsedMs())}; us-east-1 list prices, docs/integ.md)`);
  return report(outcome, cdk.manualDestroy, undefined, guard.exitCode() || 130);
}

/** Prints the verdict; returns the exit code. */
export function report(
  outcome: ScenarioOutcome,
  manualDestroy: string,
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  /** The exit code of an interrupted run (143 after SIGTERM). */
  interruptedCode = 130,
): number {
  if (outcome.destroyError !== undefined) {
    write(`npm run integ: the stack could not be destroyed (${message(outcome.destroyError)}); it still costs money. Delete it by hand: ${manualDestroy}`);
  }
  if (outcome.error instanceof InterruptedError) {
    write('npm run integ: interrupted.');
    return interruptedCode;
  }
  if (outcome.error !== undefined) {
    const kind = outcome.error instanceof IntegAssertionError ? 'FAILED' : 'FAILED (error)';
    write(`npm run integ: ${kind}: ${message(outcome.error)}`);
    return 1;
  }
  if (outcome.destroyError !== undefined) return 1;
  write(`npm run integ: passed (${outcome.result?.migrationId ?? ''} rolled back, drained and notified).`);
  return 0;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `CutoverInteg-0612-3fa9` (hours and minutes UTC, then random): unique, short, readable in the console. */
function defaultStackName(): string {
  const now = new Date();
  const hhmm = `${String(now.getUTCHours()).padStart(2, '0')}${String(now.getUTCMinutes()).padStart(2, '0')}`;
  return `CutoverInteg-${hhmm}-${randomBytes(2).toString('hex')}`;
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, ok: (v: number) => boolean, range: string): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || !ok(value)) throw new RangeError(`${name} must be a number ${range}, got ${JSON.stringify(text)}`);
  return value;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`npm run integ: ${message(error)}\n`);
      process.exit(2);
    },
  );
}
