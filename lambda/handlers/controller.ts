/**
 * The controller function: the migration's reconciler.
 *
 * Invoked every minute by a schedule while a migration is live (it switches the schedule off when
 * none is, see lambda/aws/schedules.ts), at once by an alarm state change or a desync probe result,
 * by the deploy trigger when a new version was deployed, and directly by operators with
 * `{ "command": "pause|resume|abort|promote|teardown", "reason": "…" }`. Idempotent and safe when
 * two invocations overlap (versioned record, alias RevisionId).
 *
 * Everything is built once per container; the environment is checked at load so that a bad
 * setting fails with the variable's name.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { createAwsClients } from '../aws/all-clients';
import { readControllerConfig } from '../aws/config';
import { ControllerRuntime, type ControllerResponse } from '../aws/controller-runtime';
import { DynamoDbStateStore } from '../aws/dynamodb-store';
import { createMetrics } from '../aws/metrics';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createInvokingProbeRunner, probeInvokeClientConfig } from '../aws/probe-invoker';

const config = readControllerConfig(process.env);
const clients = createAwsClients();
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'cutover-controller' });
const metrics = createMetrics('cutover-controller');
const warn = (message: string, detail?: Record<string, unknown>) => logger.warn(message, detail ?? {});
const store = new DynamoDbStateStore({
  documents: clients.documents,
  tableName: config.tableName,
  alarmStatesPerLoad: config.alarmNames.length,
  onWarning: warn,
});
const runtime = new ControllerRuntime({
  config,
  clients,
  store,
  logger,
  metrics,
  // Fresh probes are run by the probe function (see probe-invoker.ts), with a client that waits for one.
  ...(config.probeFunctionName
    ? { runner: createInvokingProbeRunner({ lambda: new LambdaClient(probeInvokeClientConfig()), functionName: config.probeFunctionName }) }
    : {}),
});

export async function handler(event: unknown): Promise<ControllerResponse> {
  return runtime.handle(event);
}
