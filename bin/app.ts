#!/usr/bin/env node
/**
 * The CDK app: the Cutover demo stack. Context and environment are read here and nowhere else.
 *
 *   npx cdk deploy                              # first deploy: creates the alias on version 1
 *   npx cdk deploy -c cutover:release=2         # publishes version 2 and starts a migration
 *   npx cdk deploy -c cutover:release=3 -c cutover:faultRate=0.3   # a bad release: watch it roll back
 *
 * Context keys: `cutover:release` (label of the demo release), `cutover:faultRate` (0–1, share of
 * 503s the release answers), `cutover:oldCapacity` (provisioned concurrency pinned on the old
 * version), `cutover:notificationEmail`, `cutover:stackName` (default `CutoverDemo`).
 * Account and region come from the CLI profile when set; synth works offline without them.
 * Every synth runs the cdk-nag AwsSolutions checks and fails on an unacknowledged finding.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CutoverDemoStack } from '../lib/demo-stack';

const app = new App();
// The cdk-nag gate runs on every synth and deploy: an unacknowledged AwsSolutions finding stops it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

function context(key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  return String(value);
}

function numberContext(key: string): number | undefined {
  const text = context(key);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw new Error(`context ${key} must be a number, got ${JSON.stringify(text)}`);
  }
  return value;
}

const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;

new CutoverDemoStack(app, context('cutover:stackName') ?? 'CutoverDemo', {
  description: 'Cutover demo: a REST API on a Lambda alias, migrated in weighted steps with Keep-Alive probes and automatic rollback',
  env: account || region ? { account, region } : undefined,
  release: context('cutover:release'),
  faultRate: numberContext('cutover:faultRate'),
  oldCapacity: numberContext('cutover:oldCapacity'),
  notificationEmail: context('cutover:notificationEmail'),
});
