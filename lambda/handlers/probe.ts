/**
 * The probe function: every minute, runs the Keep-Alive desync probe against the configured
 * old/new endpoints, publishes EMF metrics, records the results for the controller and announces
 * each one on the event bus (a desync wakes the controller at once).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { clientConfig } from '../aws/clients';
import { readProbeConfig } from '../aws/config';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';
import { createMetrics } from '../aws/metrics';
import { createProbeRunner } from '../aws/probe-runner';
import { runProbes, type ProbeResponse } from '../aws/probe-runtime';

const config = readProbeConfig(process.env);
// Only the clients this function uses, so that cold start loads no other SDK package.
const { documents } = createDocumentClients();
const eventBridge = new EventBridgeClient(clientConfig());
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'cutover-probe' });
const metrics = createMetrics('cutover-probe');
const store = new DynamoDbStateStore({
  documents,
  tableName: config.tableName,
  onWarning: (message, detail) => logger.warn(message, detail ?? {}),
});
// Bounded well inside the one-minute schedule, so runs never pile up.
const runner = createProbeRunner(config.probe, { maxDurationMs: 40_000 });

export async function handler(): Promise<ProbeResponse> {
  return runProbes({ config, runner, store, eventBridge, logger, metrics });
}
