/**
 * The controller function's wiring, built once per container at load (so that a bad environment
 * fails with the variable's name): configuration, SDK clients, state store, logger, metrics, the
 * probe runner and the adapters of the given kits (every kit for the generic entry, one for a
 * per-family entry: see adapter-kit.ts).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { TargetAdapters, type AdapterKitFactory } from './adapter-kit';
import { createAwsClients } from './all-clients';
import { readControllerConfig } from './config';
import type { ControllerResponse } from './controller-requests';
import { ControllerRunner } from './controller-runner';
import { DynamoDbStateStore } from './dynamodb-store';
import { createMetrics } from './metrics';
import { createInvokingProbeRunner, probeInvokeClientConfig } from './probe-invoker';

/** The controller's Lambda handler, with the adapters of `kits`. */
export function createControllerHandler(kits: readonly AdapterKitFactory[], env: NodeJS.ProcessEnv = process.env): (event: unknown) => Promise<ControllerResponse> {
  const config = readControllerConfig(env);
  const clients = createAwsClients();
  const logger = new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'cutover-controller' });
  const metrics = createMetrics('cutover-controller');
  const warn = (message: string, detail?: Record<string, unknown>) => logger.warn(message, detail ?? {});
  const store = new DynamoDbStateStore({
    documents: clients.documents,
    tableName: config.tableName,
    alarmStatesPerLoad: config.alarmNames.length,
    onWarning: warn,
  });
  const runner = new ControllerRunner({
    config,
    clients,
    store,
    logger,
    metrics,
    adapters: new TargetAdapters(config.target, config.capacity, { lambda: clients.lambda, functionName: config.functionName, aliasName: config.aliasName }, kits),
    // Fresh probes are run by the probe function (see probe-invoker.ts), with a client that waits for one.
    ...(config.probeFunctionName
      ? { runner: createInvokingProbeRunner({ lambda: new LambdaClient(probeInvokeClientConfig()), functionName: config.probeFunctionName }) }
      : {}),
  });
  return (event) => runner.handle(event);
}
