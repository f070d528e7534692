/**
 * The deploy trigger: `onEvent` of every migration's CloudFormation custom resource in the stack
 * (through the `aws-cdk-lib/custom-resources` Provider, so it only returns
 * `{ PhysicalResourceId, Data }`). A Lambda alias migration's resource has FunctionName, AliasName,
 * TargetVersion, MigrationId (see `lambda/aws/deploy-trigger.ts`); a fleet's has TargetKind
 * "fleet", MigrationKey, Release and, for DNS, Records (see `lambda/aws/fleet-deploy-trigger.ts`);
 * both carry the migration's `Settings`, from which `lambda/aws/deploy-trigger-dispatch.ts` builds
 * its configuration.
 *
 * Only the stack's variables are read at load (CUTOVER_TABLE_NAME, CUTOVER_CONTROLLERS): a bad one
 * fails the first invocation with its name. The SDK clients are made at their first use and kept
 * for the container, so that an alias deploy never loads the fleet's.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { Route53Client } from '@aws-sdk/client-route-53';
import { clientConfig } from '../aws/clients';
import { readControllerEntries } from '../aws/config';
import { commandClientConfig, type DeployTriggerResponse } from '../aws/deploy-trigger';
import { onSharedDeployEvent, type DeployTriggerClients } from '../aws/deploy-trigger-dispatch';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';
import { MigrationRegistry } from '../aws/registry';

const env = process.env;
const tableName = env.CUTOVER_TABLE_NAME?.trim();
if (!tableName) throw new TypeError(`environment variable CUTOVER_TABLE_NAME must be set, got ${JSON.stringify(env.CUTOVER_TABLE_NAME ?? null)}`);
// Checked now (and read again per event): a damaged value fails at once, not at some later deploy.
readControllerEntries(env);
const { documents } = createDocumentClients();
const logger = new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'cutover-deploy-trigger' });
const store = new DynamoDbStateStore({ documents, tableName, onWarning: (message, detail) => logger.warn(message, detail ?? {}) });
const registry = new MigrationRegistry({ documents, tableName });

/** A getter that makes its client once, at the first call. */
function once<T>(make: () => T): () => T {
  let made: T | undefined;
  return () => (made ??= make());
}
const clients: DeployTriggerClients = {
  lambda: once(() => new LambdaClient(clientConfig())),
  // Synchronous commands wait for a whole controller run: a client of their own, whose request
  // handler allows that wait (a per-call option could be ignored by the runtime's SDK).
  commandLambda: once(() => new LambdaClient(commandClientConfig())),
  eventBridge: once(() => new EventBridgeClient(clientConfig())),
  elb: once(() => new ElasticLoadBalancingV2Client(clientConfig())),
  route53: once(() => new Route53Client(clientConfig())),
};

export async function handler(event: CloudFormationCustomResourceEvent): Promise<DeployTriggerResponse> {
  return onSharedDeployEvent(event, { env, registry, store, clients, log: (message, detail) => logger.info(message, detail) });
}
