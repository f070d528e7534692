/**
 * The probe function of a stack: every minute while a migration with probe targets is live (its
 * schedule is switched with the controllers'), runs the Keep-Alive desync probe against each live
 * migration's old/new endpoints (its settings in the registry, lambda/aws/registry.ts), publishes
 * EMF metrics, records the results for the controller and announces each one on the event bus (a
 * desync wakes the controller at once). See lambda/aws/probe-dispatch.ts.
 *
 * Invoked by a controller with `{ "probeNow": { "side": "new", "migrationKey": "…" } }`, it probes
 * that migration's target of that side once and returns the result (the controller records it and
 * decides on it): see `lambda/aws/probe-invoker.ts`. The migration's other configured side is probed
 * with it and recorded like a periodic result, so that both sides are probed equally often (see
 * `runFreshProbe`).
 *
 * Each configured target (`CUTOVER_PROBE_TARGETS`) may name where to connect (`connectTo`, e.g.
 * its side's own load balancer while both serve the URL's host name) and extra request headers;
 * the runner passes them to the probe engine. A private CA is trusted through the function's
 * `NODE_EXTRA_CA_CERTS`.
 *
 * Only the stack's variables are read at load (a bad one fails the first invocation with its name);
 * each migration's settings are checked at its run, so a bad one fails that migration only.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { clientConfig } from '../aws/clients';
import { readSharedProbeConfig } from '../aws/config';
import type { InvocationContext } from '../aws/controller-dispatch';
import { DynamoDbStateStore, createDocumentClients } from '../aws/dynamodb-store';
import { createMetrics } from '../aws/metrics';
import { isProbeNowRequest, type ProbeNowResponse } from '../aws/probe-invoker';
import { probeLiveMigrations, probeMigrationNow, probeRunnerCache, type SharedProbeDeps, type SharedProbeResponse } from '../aws/probe-dispatch';
import { MigrationRegistry } from '../aws/registry';

const env = process.env;
const shared = readSharedProbeConfig(env);
// Only the clients this function uses, so that cold start loads no other SDK package.
const { documents } = createDocumentClients();
const logger = new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'cutover-probe' });
const deps: SharedProbeDeps = {
  env,
  registry: new MigrationRegistry({ documents, tableName: shared.tableName }),
  store: new DynamoDbStateStore({ documents, tableName: shared.tableName, onWarning: (message, detail) => logger.warn(message, detail ?? {}) }),
  eventBridge: new EventBridgeClient(clientConfig()),
  logger,
  metrics: createMetrics('cutover-probe'),
  // Scheduled runs are bounded well inside the one-minute schedule, so runs never pile up; a fresh
  // probe for a controller must leave it time for the rest of its tick.
  runnerFor: probeRunnerCache(),
};

export async function handler(event?: unknown, context?: InvocationContext): Promise<SharedProbeResponse | ProbeNowResponse> {
  if (isProbeNowRequest(event)) return probeMigrationNow(deps, event.probeNow);
  return probeLiveMigrations(deps, context);
}
