/**
 * The shared controller function's wiring, built once per container at load: the stack's part of
 * the configuration (its own environment: table, topic, bus, schedules, family; a bad value fails
 * at load with the variable's name), SDK clients, logger, metrics, the registry and the dispatcher
 * (controller-dispatch.ts).
 *
 * Each migration's runner is built from `migrationEnvironment(env, registered)` — this function's
 * environment plus that migration's registry settings — by the same `readControllerConfig` that read
 * a per-migration function's environment, so the checks and messages are unchanged; a bad setting
 * fails that migration only (each of its runs, naming the variable), never the others. The runner is
 * kept while the migration's settings stay the same, with its store, probe runner and adapters (the
 * kits' SDK clients are created at their first use). A per-family entry passes one kit: a migration
 * of the other family fails with the fix (`MissingKitError`), per migration, not at load.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { TargetAdapters, type AdapterKitFactory } from './adapter-kit';
import { createAwsClients } from './all-clients';
import { readControllerConfig, readSharedControllerConfig, type ControllerFamily } from './config';
import { ControllerDispatcher, type InvocationContext } from './controller-dispatch';
import type { ControllerResponse } from './controller-requests';
import { ControllerRunner } from './controller-runner';
import { DynamoDbStateStore } from './dynamodb-store';
import { createMetrics } from './metrics';
import { createInvokingProbeRunner, probeInvokeClientConfig } from './probe-invoker';
import { MigrationRegistry, migrationEnvironment, type RegisteredMigration } from './registry';
import { ScheduleSwitch } from './schedules';

/**
 * The controller's Lambda handler, with the adapters of `kits`; `family` is what it serves when
 * `CUTOVER_CONTROLLER_FAMILY` is unset (a per-family entry: its own).
 */
export function createControllerHandler(
  kits: readonly AdapterKitFactory[],
  env: NodeJS.ProcessEnv = process.env,
  family: ControllerFamily = 'any',
): (event: unknown, context?: InvocationContext) => Promise<ControllerResponse> {
  const shared = readSharedControllerConfig(env, family);
  const clients = createAwsClients();
  const logger = new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'cutover-controller' });
  const metrics = createMetrics('cutover-controller');
  const warn = (message: string, detail?: Record<string, unknown>) => logger.warn(message, detail ?? {});
  // One client for every migration's fresh probes, created at the first one (most ticks need none).
  let probeLambda: LambdaClient | undefined;
  const makeRunner = (registered: RegisteredMigration): ControllerRunner => {
    // The dispatcher switches the schedules for every migration: a runner never does.
    const config = { ...readControllerConfig(migrationEnvironment(env, registered)), schedules: undefined };
    const store = new DynamoDbStateStore({
      documents: clients.documents,
      tableName: config.tableName,
      alarmStatesPerLoad: config.alarmNames.length,
      onWarning: warn,
    });
    return new ControllerRunner({
      config,
      clients,
      store,
      logger,
      metrics,
      adapters: new TargetAdapters(config.target, config.capacity, { lambda: clients.lambda, functionName: config.functionName, aliasName: config.aliasName }, kits),
      // Fresh probes are run by the probe function (see probe-invoker.ts), with a client that waits for one.
      ...(config.probeFunctionName
        ? {
            runner: createInvokingProbeRunner({
              lambda: (probeLambda ??= new LambdaClient(probeInvokeClientConfig())),
              functionName: config.probeFunctionName,
              migrationKey: registered.migrationKey,
            }),
          }
        : {}),
    });
  };
  const dispatcher = new ControllerDispatcher({
    registry: new MigrationRegistry({ documents: clients.documents, tableName: shared.tableName }),
    ...(shared.schedules ? { schedules: { switch: new ScheduleSwitch(clients.eventBridge, shared.schedules), rules: shared.schedules } } : {}),
    logger,
    family: shared.family,
    makeRunner,
  });
  return (event, context) => dispatcher.handle(event, context);
}
