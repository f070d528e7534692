#!/usr/bin/env node
/**
 * The CDK app: the two Cutover demo stacks. Context and environment are read here and nowhere else.
 *
 * `CutoverDemo` (docs/aws.md), a REST API on a Lambda alias:
 *   npx cdk deploy CutoverDemo                              # first deploy: creates the alias on version 1
 *   npx cdk deploy CutoverDemo -c cutover:release=2         # publishes version 2 and starts a migration
 *   npx cdk deploy CutoverDemo -c cutover:release=3 -c cutover:faultRate=0.3   # a bad release: watch it roll back
 *
 * `CutoverFleetDemo` (docs/fleet-demo.md), two ECS Fargate fleets behind a weighted load balancer:
 *   npx cdk deploy CutoverFleetDemo                                     # both fleets on release 1
 *   npx cdk deploy CutoverFleetDemo -c release=2 -c fault=desync-413    # the incident's bug: watch it roll back
 *   npx cdk deploy CutoverFleetDemo -c hostedZoneId=Z… -c zoneName=example.com -c recordName=api   # weighted DNS instead
 *
 * Context keys of `CutoverDemo`: `cutover:release` (label of the demo release), `cutover:faultRate`
 * (0–1, share of 503s the release answers), `cutover:oldCapacity` (provisioned concurrency pinned
 * on the old version), `cutover:stackName` (default `CutoverDemo`).
 * Of `CutoverFleetDemo`: `release` (label of the new fleet's release), `fault` (`none`,
 * `desync-413` or `5xx`), `tasksPerFleet` (default 2), and `hostedZoneId`, `zoneName`,
 * `recordName` together for the DNS variant. Of both: `cutover:notificationEmail`.
 * Account and region come from the CLI profile when set; synth works offline without them.
 * Every synth runs the cdk-nag AwsSolutions checks and fails on an unacknowledged finding.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CutoverDemoStack } from '../lib/demo-stack';
import { CutoverFleetDemoStack, type FleetDemoFault } from '../lib/fleet-demo-stack';

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

// The DNS variant needs all three keys; one or two of them is a typo, not a choice.
const dnsContext = { hostedZoneId: context('hostedZoneId'), zoneName: context('zoneName'), recordName: context('recordName') };
const missingDns = Object.entries(dnsContext).filter(([, value]) => value === undefined).map(([key]) => key);
if (missingDns.length > 0 && missingDns.length < 3) {
  throw new Error(
    `the fleet demo's DNS variant needs -c hostedZoneId=<Z…> -c zoneName=<example.com> -c recordName=<api> together; missing ${missingDns.join(', ')}`,
  );
}

new CutoverFleetDemoStack(app, 'CutoverFleetDemo', {
  description: 'Cutover fleet demo: two ECS Fargate fleets of a REST API behind a weighted load balancer (or weighted DNS), migrated with Keep-Alive probes and automatic rollback',
  env: account || region ? { account, region } : undefined,
  release: context('release'),
  // The stack checks the value and names the accepted ones.
  fault: context('fault') as FleetDemoFault | undefined,
  tasksPerFleet: numberContext('tasksPerFleet'),
  dns: missingDns.length === 0 ? (dnsContext as { hostedZoneId: string; zoneName: string; recordName: string }) : undefined,
  notificationEmail: context('cutover:notificationEmail'),
});
