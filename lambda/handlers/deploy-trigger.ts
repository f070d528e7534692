/**
 * The deploy trigger: `onEvent` of a CloudFormation custom resource (through the
 * `aws-cdk-lib/custom-resources` Provider, so it only returns `{ PhysicalResourceId, Data }`).
 * A Lambda alias migration's resource has FunctionName, AliasName, TargetVersion, MigrationId
 * (see `lambda/aws/deploy-trigger.ts`); a fleet's has TargetKind "fleet", MigrationKey, Release and,
 * for DNS, Records (see `lambda/aws/fleet-deploy-trigger.ts`).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { Route53Client } from '@aws-sdk/client-route-53';
import { clientConfig } from '../aws/clients';
import { readDeployTriggerConfig } from '../aws/config';
import { commandClientConfig, onDeployEvent, type DeployTriggerResponse } from '../aws/deploy-trigger';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';
import { onFleetDeployEvent } from '../aws/fleet-deploy-trigger';
import { fleetTraffic } from '../aws/kit-fleet';
import { ScheduleSwitch } from '../aws/schedules';

const config = readDeployTriggerConfig(process.env);
// Only the clients this function uses, so that cold start loads no other SDK package.
const { documents } = createDocumentClients();
const lambda = new LambdaClient(clientConfig());
// Synchronous commands wait for a whole controller run: a client of their own, whose request
// handler allows that wait (a per-call option could be ignored by the runtime's SDK).
const commandLambda = new LambdaClient(commandClientConfig());
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'cutover-deploy-trigger' });
const store = new DynamoDbStateStore({
  documents,
  tableName: config.tableName,
  onWarning: (message, detail) => logger.warn(message, detail ?? {}),
});
// Enables the controller's and the probe's schedules (created disabled) when a migration is recorded.
const schedules = config.schedules ? new ScheduleSwitch(new EventBridgeClient(clientConfig()), config.schedules) : undefined;
const route53 = config.target.kind === 'dns' ? new Route53Client(clientConfig()) : undefined;
const fleet =
  config.target.kind === 'lambda-alias'
    ? undefined
    : {
        // The fleet's routing, read before a migration is recorded. Only the traffic adapters: the
        // bundle then leaves out the rest of the fleet kit (capacity, health) and the alias's.
        traffic: fleetTraffic(config.target, {
          elb: () => new ElasticLoadBalancingV2Client(clientConfig()),
          route53: () => route53 ?? new Route53Client(clientConfig()),
        }),
        ...(route53 ? { route53 } : {}),
      };

export async function handler(event: CloudFormationCustomResourceEvent): Promise<DeployTriggerResponse> {
  const deps = { config, lambda, commandLambda, store, ...(schedules ? { schedules } : {}), log: (message: string, detail: Record<string, unknown>) => logger.info(message, detail) };
  if (fleet) return onFleetDeployEvent(event, { ...deps, ...fleet });
  return onDeployEvent(event, deps);
}
