/**
 * The deploy trigger: `onEvent` of a CloudFormation custom resource (through the
 * `aws-cdk-lib/custom-resources` Provider, so it only returns `{ PhysicalResourceId, Data }`).
 * Resource properties: FunctionName, AliasName, TargetVersion, MigrationId.
 * See `lambda/aws/deploy-trigger.ts` for what each request does.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { clientConfig } from '../aws/clients';
import { readDeployTriggerConfig } from '../aws/config';
import { commandClientConfig, onDeployEvent, type DeployTriggerResponse } from '../aws/deploy-trigger';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';

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

export async function handler(event: CloudFormationCustomResourceEvent): Promise<DeployTriggerResponse> {
  return onDeployEvent(event, { config, lambda, commandLambda, store, log: (message, detail) => logger.info(message, detail) });
}
