/**
 * The probe function: every minute while a migration is live (its schedule is switched with the
 * controller's), runs the Keep-Alive desync probe against the configured
 * old/new endpoints, publishes EMF metrics, records the results for the controller and announces
 * each one on the event bus (a desync wakes the controller at once).
 *
 * Invoked by the controller with `{ "probeNow": { "side": "new" } }`, it probes that side's
 * configured target once and returns the result (the controller records it and decides on it):
 * see `lambda/aws/probe-invoker.ts`. The other configured side is probed with it and recorded like
 * a periodic result, so that both sides are probed equally often (see `runFreshProbe`).
 *
 * Each configured target (`CUTOVER_PROBE_TARGETS`) may name where to connect (`connectTo`, e.g.
 * its side's own load balancer while both serve the URL's host name) and extra request headers;
 * the runner passes them to the probe engine. A private CA is trusted through the function's
 * `NODE_EXTRA_CA_CERTS`.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { clientConfig } from '../aws/clients';
import { readProbeConfig } from '../aws/config';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';
import { createMetrics } from '../aws/metrics';
import { PROBE_NOW_MAX_DURATION_MS, isProbeNowRequest, type ProbeNowResponse } from '../aws/probe-invoker';
import { createProbeRunner } from '../aws/probe-runner';
import { runFreshProbe, runProbes, type ProbeResponse } from '../aws/probe-runtime';

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

// A fresh probe for the controller must leave it time for the rest of its tick.
const runnerNow = createProbeRunner(config.probe, { maxDurationMs: PROBE_NOW_MAX_DURATION_MS });

export async function handler(event?: unknown): Promise<ProbeResponse | ProbeNowResponse> {
  if (isProbeNowRequest(event)) {
    return runFreshProbe({ config, runner: runnerNow, store, eventBridge, logger, metrics }, event.probeNow.side);
  }
  return runProbes({ config, runner, store, eventBridge, logger, metrics });
}
