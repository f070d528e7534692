/**
 * One deploy trigger for every migration of a stack: it turns a migration's custom resource event
 * into the configuration a per-migration trigger once read from its own environment, then hands the
 * event to the trigger of the migration's kind (deploy-trigger.ts for a Lambda alias,
 * fleet-deploy-trigger.ts for a fleet).
 *
 * The configuration is `readDeployTriggerConfig` (unchanged checks and messages) of the shared
 * function's environment plus the resource's `Settings` (`migrationEnvironment`), plus the variables
 * of the migration's family's controller taken from `CUTOVER_CONTROLLERS`: its function, its
 * schedule, and the stack's probe schedule only when this migration has probe targets (a migration
 * without them must not switch a probe on). So two migrations of different families, deployed
 * through one trigger, each start their own controller and enable their own rule.
 *
 * Settings are checked here, before anything is written: a value the controller could not read
 * (checked with the controller's own reader) fails the deploy naming the setting, rather than
 * registering a migration that would fail every tick.
 *
 * A Delete needs no settings: a resource whose settings went bad must still be deletable.
 */
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { Route53Client } from '@aws-sdk/client-route-53';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type { TrafficPort } from '../core/ports';
import { ConfigError, readControllerConfig, readControllerEntries, readDeployTriggerConfig, type DeployTriggerConfig } from './config';
import { onDeleteEvent, onDeployEvent, registrationOwner, validateAliasProperties, type DeployTriggerDeps, type DeployTriggerResponse } from './deploy-trigger';
import { aliasKeyOf } from './dynamodb-store';
import { onFleetDeployEvent, validateFleetProperties } from './fleet-deploy-trigger';
import { fleetTraffic } from './kit-fleet';
import { PER_MIGRATION_SETTINGS, checkSettings, familyOf, migrationEnvironment, type TargetFamily } from './registry';
import { ScheduleSwitch } from './schedules';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The SDK clients, each made at its first use and then kept for the container (the handler's
 * getters): an alias deploy never loads the fleet's clients, and the fleet's are no longer chosen
 * at load from one migration's target.
 */
export interface DeployTriggerClients {
  /** Alias calls and the asynchronous wake-up of the controller. */
  readonly lambda: () => LambdaClient;
  /** Synchronous commands to the controller (`commandClientConfig()`). */
  readonly commandLambda: () => LambdaClient;
  readonly eventBridge: () => EventBridgeClient;
  readonly elb: () => ElasticLoadBalancingV2Client;
  readonly route53: () => Route53Client;
}

export interface SharedDeployTriggerDeps {
  /** The function's own environment: CUTOVER_TABLE_NAME, CUTOVER_CONTROLLERS, CUTOVER_PROBE_SCHEDULE. */
  readonly env: Env;
  readonly registry: DeployTriggerDeps['registry'];
  readonly store: DeployTriggerDeps['store'];
  readonly clients: DeployTriggerClients;
  /** A fleet's routing as the trigger reads it. @default - the target's traffic adapter (`fleetTraffic`) */
  readonly fleetRouting?: (config: DeployTriggerConfig) => TrafficPort;
  readonly now?: () => number;
  readonly log?: (message: string, detail: Record<string, unknown>) => void;
}

/** What the dispatcher made of a resource's properties: enough to run the trigger of its kind. */
export interface ResolvedDeploy {
  readonly kind: 'lambda-alias' | 'fleet';
  readonly migrationKey: string;
  readonly family: TargetFamily;
  readonly settings: Readonly<Record<string, string>>;
  readonly config: DeployTriggerConfig;
}

export async function onSharedDeployEvent(event: CloudFormationCustomResourceEvent, deps: SharedDeployTriggerDeps): Promise<DeployTriggerResponse> {
  if (event.RequestType === 'Delete') {
    const fleet = (event.ResourceProperties as Record<string, unknown>).TargetKind === 'fleet';
    return onDeleteEvent(
      event,
      {
        ...deps,
        settle: {
          commandLambda: deps.clients.commandLambda(),
          store: deps.store,
          controllerFunctionName: (family) => {
            try {
              return readControllerEntries(deps.env)[family]?.functionName;
            } catch {
              return undefined;
            }
          },
        },
      },
      fleet ? 'routing left in place' : 'alias left in place',
    );
  }
  const resolved = resolveDeploy(event.ResourceProperties as unknown as Record<string, unknown>, deps.env);
  const { config } = resolved;
  const base: DeployTriggerDeps = {
    config,
    registry: deps.registry,
    settings: resolved.settings,
    lambda: deps.clients.lambda(),
    commandLambda: deps.clients.commandLambda(),
    store: deps.store,
    ...(config.schedules ? { schedules: new ScheduleSwitch(deps.clients.eventBridge(), config.schedules) } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.log ? { log: deps.log } : {}),
  };
  try {
    if (resolved.kind === 'lambda-alias') return await onDeployEvent(event, base);
    const traffic = deps.fleetRouting
      ? deps.fleetRouting(config)
      : fleetTraffic(config.target, { elb: deps.clients.elb, route53: deps.clients.route53 });
    return await onFleetDeployEvent(event, { ...base, traffic, ...(config.target.kind === 'dns' ? { route53: deps.clients.route53() } : {}) });
  } catch (error) {
    // CloudFormation sends no Delete for a resource whose Create failed: it leaves the owners here,
    // or a later Delete of the resource that stays (a moved construct's old one) would find another
    // owner forever and never settle or remove the registration.
    if (event.RequestType === 'Create') {
      await deps.registry.removeOwner(resolved.migrationKey, registrationOwner(event)).catch((cleanup: unknown) =>
        deps.log?.('could not take a failed Create out of the registration owners', { migrationKey: resolved.migrationKey, error: (cleanup as Error).message }),
      );
    }
    throw error;
  }
}

/**
 * The migration's key, kind, settings and configuration from a Create or Update's properties, or
 * an error naming the property (or setting) and the fix. Writes nothing.
 */
export function resolveDeploy(properties: Record<string, unknown>, env: Env): ResolvedDeploy {
  const kind = properties.TargetKind === 'fleet' ? 'fleet' : 'lambda-alias';
  const migrationKey =
    kind === 'fleet'
      ? validateFleetProperties(properties).MigrationKey
      : ((p) => aliasKeyOf(p.FunctionName, p.AliasName))(validateAliasProperties(properties));
  let settings: Record<string, string>;
  let family: TargetFamily;
  try {
    settings = checkSettings(properties.Settings);
    family = familyOf(settings);
  } catch (error) {
    const older = properties.Settings === undefined ? ' (a resource of an older construct: deploy with the construct of this version)' : '';
    throw new TypeError(`resource property Settings of migration ${migrationKey}: ${(error as Error).message}${older}`, { cause: error });
  }
  if (family !== kind) {
    throw new TypeError(
      `resource property Settings of migration ${migrationKey}: CUTOVER_TARGET is a ${family} target, but the resource is a ${kind === 'fleet' ? 'fleet' : 'Lambda alias'} migration's`,
    );
  }
  if (kind === 'lambda-alias') {
    // The controller finds the alias (and its pointer) by these settings: they must name the
    // alias this resource deploys, or the two would act on different migrations.
    const named = aliasKeyOf(settings.CUTOVER_FUNCTION_NAME?.trim() ?? '', settings.CUTOVER_ALIAS_NAME?.trim() ?? '');
    if (named !== migrationKey) {
      throw new TypeError(
        `resource property Settings of migration ${migrationKey}: CUTOVER_FUNCTION_NAME and CUTOVER_ALIAS_NAME name ${JSON.stringify(named)}, not the alias the resource deploys (FunctionName, AliasName)`,
      );
    }
  }
  const triggerEnv = triggerEnvironment(env, migrationKey, settings, family);
  const config = settingsChecked(migrationKey, () => readDeployTriggerConfig(triggerEnv));
  // The controller reads more than the trigger (the alarms, the probe targets, the metrics'
  // namespace): checked with its own reader now, so that a migration it could not serve is never
  // registered. The stack's variables the trigger does not have are stand-ins: only settings are checked.
  settingsChecked(migrationKey, () =>
    readControllerConfig({ CUTOVER_EVENT_BUS_NAME: 'checked-by-the-controller', CUTOVER_PROBE_FUNCTION_NAME: 'checked-by-the-controller', ...triggerEnv }),
  );
  return { kind, migrationKey, family, settings, config };
}

/**
 * The environment a per-migration trigger read: the shared one with the migration's settings, and
 * the controller of its family. A family with no controller is a stack deployed by an older
 * construct (or a hand-written one): the fix is the construct of this version.
 */
export function triggerEnvironment(env: Env, migrationKey: string, settings: Readonly<Record<string, string>>, family: TargetFamily): Record<string, string | undefined> {
  const controllers = readControllerEntries(env);
  const entry = controllers[family];
  if (!entry) {
    const present = Object.keys(controllers);
    throw new ConfigError(
      'CUTOVER_CONTROLLERS',
      `has no ${family} controller for migration ${migrationKey} (it names ${present.length > 0 ? present.join(', ') : 'none'}); ` +
        'deploy with the construct of this version, which creates one controller per target family the stack has',
    );
  }
  const probeSchedule = settings.CUTOVER_PROBE_TARGETS?.trim() ? env.CUTOVER_PROBE_SCHEDULE : undefined;
  return {
    ...migrationEnvironment(env, { migrationKey, settings }),
    CUTOVER_CONTROLLER_FUNCTION_NAME: entry.functionName,
    CUTOVER_CONTROLLER_SCHEDULE: entry.schedule,
    CUTOVER_PROBE_SCHEDULE: probeSchedule,
  };
}

const SETTING_NAMES = new Set<string>(PER_MIGRATION_SETTINGS);

/** Runs a reader; a bad per-migration variable is reported as the resource's setting it came from. */
function settingsChecked<T>(migrationKey: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ConfigError && SETTING_NAMES.has(error.variable)) {
      throw new TypeError(`resource property Settings of migration ${migrationKey}: ${error.message.replace(/^environment variable /, 'setting ')}`, { cause: error });
    }
    throw error;
  }
}
