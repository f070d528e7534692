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
import { LambdaClient } from '@aws-sdk/client-lambda';
import { Route53Client } from '@aws-sdk/client-route-53';
import { clientConfig } from '../aws/clients';
import { readDeployTriggerConfig } from '../aws/config';
import { commandClientConfig, onDeployEvent, type DeployTriggerResponse } from '../aws/deploy-trigger';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';
import { onFleetDeployEvent } from '../aws/fleet-deploy-trigger';
import { ScheduleSwitch } from '../aws/schedules';
import { TargetAdapters } from '../aws/targets';

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
const fleet =
  config.target.kind === 'lambda-alias'
    ? undefined
    : {
        // The fleet's routing, read before a migration is recorded (its sides' labels do not matter to a read).
        traffic: new TargetAdapters(config.target, { kind: 'none' }, { lambda, functionName: '', aliasName: '' }).traffic({ oldVersion: 'old', newVersion: 'new' }),
        ...(config.target.kind === 'dns' ? { route53: new Route53Client(clientConfig()) } : {}),
      };

export async function handler(event: CloudFormationCustomResourceEvent): Promise<DeployTriggerResponse> {
  const deps = { config, lambda, commandLambda, store, ...(schedules ? { schedules } : {}), log: (message: string, detail: Record<string, unknown>) => logger.info(message, detail) };
  if (fleet) return onFleetDeployEvent(event, { ...deps, ...fleet });
  return onDeployEvent(event, deps);
}
