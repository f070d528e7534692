#!/usr/bin/env node
/**
 * The CDK app of `npm run integ`: the demo stack (lib/demo-stack.ts) exactly as bin/app.ts builds
 * it, under the stack name the run chose, plus a `NotificationRecorder` and its table's name as an
 * output. A separate app rather than bin/app.ts, so that the recorder never reaches a user's demo.
 *
 * Context: `cutover:stackName` (required), `cutover:release`, `cutover:faultRate`, and what the
 * stack reads itself (`cutover:apiGatewayAccountLogging`).
 *
 * The cdk-nag gate is not run here: it gates the demo as shipped in test/infra/nag.test.ts, and
 * the recorder is test scaffolding that lives for one run.
 */
import { App, CfnOutput } from 'aws-cdk-lib';
import { CutoverDemoStack } from '../lib/demo-stack';
import { NotificationRecorder } from './recorder';
import { RECORDER_TABLE_OUTPUT } from './recorder-names';

/** Builds the integration stack on `app` from its context (exported for the synth test). */
export function buildIntegApp(app: App): CutoverDemoStack {
  const context = (key: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const stackName = context('cutover:stackName');
  if (!stackName) throw new Error('the integration app needs -c cutover:stackName=<name> (integ/run.ts passes it)');
  const faultRate = context('cutover:faultRate');
  const account = process.env.CDK_DEFAULT_ACCOUNT;
  const region = process.env.CDK_DEFAULT_REGION;
  const stack = new CutoverDemoStack(app, stackName, {
    description: 'Cutover integration test (npm run integ): the demo stack with a notification recorder; deleted by the test',
    env: account || region ? { account, region } : undefined,
    release: context('cutover:release'),
    faultRate: faultRate === undefined ? undefined : Number(faultRate),
    tags: { 'cutover:integ': stackName },
  });
  const recorder = new NotificationRecorder(stack, 'IntegRecorder', { topic: stack.migration.topic, eventBus: stack.migration.eventBus });
  new CfnOutput(stack, RECORDER_TABLE_OUTPUT, { value: recorder.table.tableName, description: 'Notifications the integration test received' });
  return stack;
}

if (require.main === module) {
  const app = new App();
  buildIntegApp(app);
}
