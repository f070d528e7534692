/**
 * The custom resource that turns `cdk deploy` of a new function version into a migration.
 *
 * The alias is not an `AWS::Lambda::Alias` of the stack, so no deploy ever resets its weights: the
 * controller alone moves traffic. This resource only
 * - creates the alias on the first deploy (nothing to migrate yet),
 * - records a migration from the alias's current version to the deployed one and wakes the
 *   controller so the canary starts now,
 * - never routes traffic to the new version itself.
 *
 * One trigger serves every migration of a stack (deploy-trigger-dispatch.ts builds each one's
 * configuration from its `Settings`): before anything else it registers the migration's settings
 * (lambda/aws/registry.ts), so that whatever it goes on to record the controller can serve; after
 * recording it marks the migration live, then enables the schedules, then wakes the controller.
 */
import { CreateAliasCommand, GetAliasCommand, InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { CloudFormationCustomResourceDeleteEvent, CloudFormationCustomResourceEvent } from 'aws-lambda';
import { MigrationStatus, TERMINAL_STATUSES, type Command } from '../core/model';
import { clientConfig, errorName, type AwsClientOptions } from './clients';
import type { DeployTriggerConfig } from './config';
import type { ControllerCommandPayload, DeployTriggerPayload } from './controller-requests';
import { aliasKeyOf, type DynamoDbStateStore, type MigrationPointer } from './dynamodb-store';
import type { MigrationRegistry, TargetFamily } from './registry';
import { needsTicks } from './needs-ticks';
import type { ScheduleSwitch } from './schedules';

/** The resource's properties (CloudFormation passes every value as a string). */
export interface DeployTriggerProperties {
  readonly FunctionName: string;
  readonly AliasName: string;
  /** The version just published, e.g. "7". */
  readonly TargetVersion: string;
  /** Unique per version, e.g. `${fn}:${alias}:${version}`. */
  readonly MigrationId: string;
  /** The migration's per-migration variables (checked by the dispatcher, see `DeployTriggerDeps.settings`). */
  readonly Settings?: unknown;
}

/** What the Provider framework expects back. */
export interface DeployTriggerResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: Readonly<Record<string, string>>;
}

export interface DeployTriggerDeps {
  /** The migration's configuration: the shared environment plus its `Settings` (deploy-trigger-dispatch.ts). */
  readonly config: DeployTriggerConfig;
  /** The stack's registry: the migration is registered first, marked live once recorded. */
  readonly registry: Pick<MigrationRegistry, 'register' | 'markLive' | 'deregister' | 'get' | 'removeOwner'>;
  /** The resource's `Settings`, checked (`checkSettings`): what `register` stores. */
  readonly settings: Readonly<Record<string, string>>;
  /** For the alias calls and the asynchronous wake-up of the controller (ordinary `clientConfig()`). */
  readonly lambda: LambdaClient;
  /**
   * For synchronous commands to the controller (abort, teardown), which wait for a whole controller
   * run: build it once per container with `commandClientConfig()`.
   */
  readonly commandLambda: LambdaClient;
  readonly store: Pick<DynamoDbStateStore, 'getPointer' | 'putPointer' | 'load'>;
  /**
   * The controller's and the probe's schedules, created disabled: enabled once a migration is
   * recorded (the controller disables them when it is over).
   * @default - none (schedules always on)
   */
  readonly schedules?: Pick<ScheduleSwitch, 'enable'>;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default - console */
  readonly log?: (message: string, detail: Record<string, unknown>) => void;
}

/** A deploy that cannot start a migration now; the message says what to do. */
export class DeployBlockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployBlockedError';
  }
}

export async function onDeployEvent(event: CloudFormationCustomResourceEvent, deps: DeployTriggerDeps): Promise<DeployTriggerResponse> {
  const log = deps.log ?? ((message, detail) => console.log(JSON.stringify({ message, ...detail })));
  if (event.RequestType === 'Delete') {
    // The alias is left alone: it carries live traffic (API Gateway invokes fn:alias), and a Delete
    // also comes when this resource is replaced, not only when the stack goes away. Deleting the
    // function removes its aliases anyway.
    return onDeleteEvent(event, { registry: deps.registry, log }, 'alias left in place');
  }
  const props = validateAliasProperties(event.ResourceProperties as unknown as Record<string, unknown>);
  const physicalResourceId = aliasKeyOf(props.FunctionName, props.AliasName);
  await deps.registry.register(physicalResourceId, deps.settings, (deps.now ?? Date.now)(), registrationOwner(event));
  const respond = (data: Record<string, string>): DeployTriggerResponse => {
    log('deploy trigger', { requestType: event.RequestType, properties: props, result: data });
    return { PhysicalResourceId: physicalResourceId, Data: data };
  };
  const target = props.TargetVersion;

  let alias: { FunctionVersion?: string; RoutingConfig?: { AdditionalVersionWeights?: Record<string, number> } };
  try {
    alias = await deps.lambda.send(new GetAliasCommand({ FunctionName: props.FunctionName, Name: props.AliasName }));
  } catch (error) {
    if (errorName(error) !== 'ResourceNotFoundException') throw error;
    await deps.lambda.send(
      new CreateAliasCommand({
        FunctionName: props.FunctionName,
        Name: props.AliasName,
        FunctionVersion: target,
        Description: 'Managed by Cutover: traffic weights are set by the controller, not by CloudFormation',
      }),
    );
    return respond({ Action: 'alias-created', MigrationId: '', OldVersion: '', NewVersion: target });
  }

  const main = alias.FunctionVersion ?? '';
  const weights = alias.RoutingConfig?.AdditionalVersionWeights ?? {};
  const split = Object.keys(weights).length > 0;
  const key = physicalResourceId;
  const pointer = await deps.store.getPointer(key);
  // The pointed migration's status, read at most once and only when a decision needs it.
  let loadedStatus: Promise<MigrationStatus> | undefined;
  const statusOf = (current: MigrationPointer): Promise<MigrationStatus> =>
    (loadedStatus ??= deps.store.load(current.migrationId).then((loaded) => loaded?.record.status ?? MigrationStatus.PENDING));

  // Checked before any "already on target" shortcut: at the gate (weight 0) the alias still points
  // at the old version alone, yet the migration goes on and would later move traffic to a version
  // the template no longer has.
  if (pointer && target === pointer.oldVersion && !TERMINAL_STATUSES.includes(await statusOf(pointer))) {
    // CloudFormation is rolling the stack back to the version the migration started from:
    // roll the traffic back too.
    await invokeCommand(deps, pointer.migrationId, 'abort', `CloudFormation rolled the stack back to version ${target}`, [MigrationStatus.ROLLED_BACK]);
    return respond({ Action: 'abort-requested', MigrationId: pointer.migrationId, OldVersion: pointer.oldVersion, NewVersion: pointer.newVersion });
  }
  if (main === target && !split) {
    return respond({ Action: 'none', MigrationId: '', OldVersion: main, NewVersion: target });
  }
  if (pointer?.migrationId === props.MigrationId) {
    // CloudFormation sent the same request again (retry, or a rollback of a later failure).
    await keepLive(deps, key, pointer, await statusOf(pointer));
    return respond({ Action: 'already-recorded', MigrationId: pointer.migrationId, OldVersion: pointer.oldVersion, NewVersion: pointer.newVersion });
  }
  if (pointer) await makeRoomFor(deps, pointer, await statusOf(pointer), `version ${target}`);

  if (main === target || split) {
    throw new DeployBlockedError(
      `alias ${key} routes ${JSON.stringify(weights)} besides version ${main} outside any running migration; ` +
        `reset it to a single version before deploying version ${target}`,
    );
  }
  if (!/^[1-9][0-9]*$/.test(main)) {
    throw new DeployBlockedError(`alias ${key} points at ${JSON.stringify(main)}, not a published version; point it at one before deploying`);
  }

  const record: MigrationPointer = {
    migrationId: props.MigrationId,
    oldVersion: main,
    newVersion: target,
    createdAtMs: (deps.now ?? Date.now)(),
    spec: { plan: deps.config.plan, judge: deps.config.judge, pinnedCapacity: deps.config.pinnedCapacity },
  };
  await recordAndWake(deps, key, record, pointer?.migrationId);
  return respond({ Action: 'migration-recorded', MigrationId: props.MigrationId, OldVersion: main, NewVersion: target });
}

/**
 * Which resource registered a migration: its stack and logical id. A migration whose construct
 * moves gets a new resource with the same key; the old one's Delete (which CloudFormation sends
 * after the new one's Create) must not remove the registration the new one wrote.
 */
export function registrationOwner(event: Pick<CloudFormationCustomResourceEvent, 'StackId' | 'LogicalResourceId'>): string {
  return `${event.StackId}/${event.LogicalResourceId}`;
}

/**
 * What a Delete needs to settle a migration that is still live: the controller's function of its
 * family (the stack's `CUTOVER_CONTROLLERS`), undefined when the stack has none for it any more.
 */
export interface LiveMigrationSettler {
  readonly commandLambda: LambdaClient;
  readonly store: Pick<DynamoDbStateStore, 'load'>;
  readonly controllerFunctionName: (family: TargetFamily) => string | undefined;
}

/**
 * Delete of a migration's resource. The target (the alias, the records, the listener) is left
 * alone: it carries live traffic, and a Delete also comes when the resource is replaced. The
 * registration is removed only by the resource that wrote it (a moved construct's old resource
 * leaves the new one's alone, see `registrationOwner`). Needs no settings: a resource whose
 * settings went bad must still be deletable.
 *
 * A migration still live when its resource goes cannot be left registered: CloudFormation has
 * already taken its grants out of the shared roles (a removal applies the smaller policy before it
 * deletes the resource), so every tick of it would fail, retried without end, and its live mark
 * would keep the shared schedules on. So it is settled first, while that is still possible (a
 * stack rollback deletes the resource before it restores the policy; a whole stack's deletion
 * too): a migration in flight is aborted (traffic back on the old side), a complete one torn down
 * (its new side keeps the traffic it has), a rolled-back one whose drain is being watched is left
 * as it is. A command that fails (the grants are gone) is logged with what to do, never thrown (a
 * failed Delete would only block the stack), and the registration is removed all the same.
 */
export async function onDeleteEvent(
  event: CloudFormationCustomResourceDeleteEvent,
  deps: Pick<DeployTriggerDeps, 'registry' | 'log'> & { readonly settle?: LiveMigrationSettler },
  note: string,
): Promise<DeployTriggerResponse> {
  const log = deps.log ?? ((message, detail) => console.log(JSON.stringify({ message, ...detail })));
  const key = event.PhysicalResourceId;
  const owner = registrationOwner(event);
  let registration = await deps.registry.deregister(key, owner);
  if (registration === 'kept-live') {
    await settleLive(key, deps, log);
    registration = await deps.registry.deregister(key, owner, { evenIfLive: true });
  }
  log(`delete: ${note}`, { physicalResourceId: key, registration });
  return { PhysicalResourceId: key };
}

async function settleLive(
  key: string,
  deps: Pick<DeployTriggerDeps, 'registry'> & { readonly settle?: LiveMigrationSettler },
  log: (message: string, detail: Record<string, unknown>) => void,
): Promise<void> {
  let migrationId: string | undefined;
  try {
    const registered = await deps.registry.get(key);
    migrationId = registered?.live?.migrationId;
    // `deregister` left the owners before answering `kept-live`: no other resource owns it.
    if (!registered || !migrationId) return;
    const functionName = deps.settle?.controllerFunctionName(registered.family);
    if (!deps.settle || !functionName) throw new Error(`the stack has no ${registered.family} controller any more`);
    const status = (await deps.settle.store.load(migrationId))?.record.status;
    const command: Command | undefined =
      status === MigrationStatus.COMPLETE ? 'teardown' : status === undefined || TERMINAL_STATUSES.includes(status) ? undefined : 'abort';
    if (!command) return;
    await invokeCommand(
      { commandLambda: deps.settle.commandLambda, store: deps.settle.store, config: { controllerFunctionName: functionName } },
      migrationId,
      command,
      `its deploy trigger resource was deleted (${key} taken out of the stack, or the stack rolled back or deleted)`,
      command === 'teardown' ? [MigrationStatus.TORN_DOWN] : [MigrationStatus.ROLLED_BACK],
      // One send: a conflict resent twice more (each up to two 20 s attempts) could pass the
      // trigger's 2-minute timeout, and a Delete that times out blocks the stack's rollback.
      1,
    );
    const after = (await deps.settle.store.load(migrationId))?.record;
    if (needsTicks(after)) {
      // An abort usually leaves a residual drain to watch, a teardown a pin still being released:
      // nobody ticks it once it is deregistered.
      log('live migration settled before its resource was deleted, but it still needed ticks; finish it by hand', {
        migrationId,
        command,
        status: after?.status,
        fix: `check that its new side drained and its old side's capacity was released (cutover status ${migrationId})`,
      });
      return;
    }
    log('live migration settled before its resource was deleted', { migrationId, command });
  } catch (error) {
    log('could not settle the live migration of a deleted resource; it is left where it is and no longer ticked', {
      migrationKey: key,
      migrationId,
      error: (error as Error).message,
      fix: `check its traffic and old-side capacity by hand (cutover status ${migrationId ?? key}); remove a migration from a stack only once it is not live`,
    });
  }
}

/**
 * The same migration deployed again (a CloudFormation retry): an earlier attempt may have died
 * between recording it and marking it live, and a migration that is not live gets no ticks once
 * another migration keeps the shared schedule on. So an unfinished one is marked live again and
 * its schedules enabled (both idempotent; marking again keeps its place in the tick's order).
 */
export async function keepLive(deps: DeployTriggerDeps, key: string, pointer: MigrationPointer, status: MigrationStatus): Promise<void> {
  if (TERMINAL_STATUSES.includes(status)) return;
  await markLiveAndEnable(deps, key, pointer.migrationId);
}

/**
 * Before a new migration is recorded: a completed one is torn down (deploying on top of it accepts
 * its version, so the side before it is no longer a rollback target and its pin is released; the
 * new migration pins its own old side), a running one blocks the deploy with what to do.
 */
export async function makeRoomFor(
  deps: DeployTriggerDeps,
  pointer: MigrationPointer,
  status: MigrationStatus,
  next: string,
  sides = `version ${pointer.oldVersion} → ${pointer.newVersion}`,
): Promise<void> {
  if (TERMINAL_STATUSES.includes(status)) return;
  if (status === MigrationStatus.COMPLETE) {
    await invokeCommand(deps, pointer.migrationId, 'teardown', `superseded by the deploy of ${next}`, [MigrationStatus.TORN_DOWN]);
    return;
  }
  throw new DeployBlockedError(
    `migration ${pointer.migrationId} (${sides}) is still ${status}; ` +
      `${next} cannot start until it ends: wait for it, or invoke the controller with ` +
      // Named: the stack's controller serves every migration and refuses a command naming none.
      `{"command":"promote","migration":"${pointer.migrationId}"} or {"command":"abort","migration":"${pointer.migrationId}"}, then deploy again`,
  );
}

/**
 * Records the new migration as the current one (refused if another deploy raced), marks it live in
 * the registry, enables the schedules and wakes the controller.
 *
 * The pointer is written, then the live mark, and only then are the schedules enabled (never
 * before): a controller that is disabling them at the same moment lists the registry again after
 * its disable and re-enables what is live, so one of the two enables last (lambda/aws/schedules.ts).
 * A mark or an enable that fails (after the SDK's retries; some rules may have switched) fails the
 * deploy: the migration would otherwise run with no ticks. CloudFormation's rollback then sends the
 * previous version back, which aborts the recorded migration (see `onDeployEvent`), and the
 * controller switches the schedules off again.
 */
export async function recordAndWake(deps: DeployTriggerDeps, key: string, record: MigrationPointer, replacing: string | undefined): Promise<void> {
  await deps.store.putPointer(key, record, replacing);
  await markLiveAndEnable(deps, key, record.migrationId);
  const payload: DeployTriggerPayload = { trigger: 'deploy', migrationId: record.migrationId, migrationKey: key };
  await deps.lambda.send(
    new InvokeCommand({
      FunctionName: deps.config.controllerFunctionName,
      // Asynchronous: the controller starts the canary now and the deploy does not wait for it.
      InvocationType: 'Event',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
}

/** Marks the recorded migration live, THEN enables its schedules (see `recordAndWake`). */
async function markLiveAndEnable(deps: DeployTriggerDeps, key: string, migrationId: string): Promise<void> {
  const fails = (what: string, error: unknown) =>
    new Error(
      `migration ${migrationId} was recorded but ${what} (${(error as Error).message}); ` +
        'the deploy fails so that CloudFormation rolls back, which aborts the migration: deploy a new version (or, for a fleet, a new release label) once the service answers; the same one is already recorded and would not start again',
      { cause: error },
    );
  try {
    await deps.registry.markLive(key, migrationId, (deps.now ?? Date.now)());
  } catch (error) {
    // Before any enable: the schedules must never be switched on for a migration the registry does
    // not call live (the controller would switch them off again before it was ever ticked).
    throw fails('could not be marked live in the registry, so no schedule would tick it', error);
  }
  if (!deps.schedules) return;
  try {
    await deps.schedules.enable();
  } catch (error) {
    throw fails('its schedules could not be enabled', error);
  }
}

/** How long one attempt of a synchronous command to the controller may wait for its answer. */
export const COMMAND_TIMEOUT_MS = 20_000;
/**
 * Attempts per synchronous command: a retry after a lost answer is safe (see `invokeCommand`), and
 * two attempts (40 s) leave room in the trigger's two-minute timeout for its other calls.
 */
export const COMMAND_MAX_ATTEMPTS = 2;

/**
 * Client configuration for `DeployTriggerDeps.commandLambda`: the shared settings with a
 * per-attempt timeout long enough for a controller run.
 *
 * The timeout is set on the client's request handler, not passed per call: the handlers use the
 * SDK of the Lambda runtime (it is not bundled), and SDK versions older than the one tested here
 * ignore a per-request `requestTimeout` and apply the client's (3 s by default, shorter than a
 * controller run, and as a socket idle timeout on those versions).
 */
export function commandClientConfig(options: Omit<AwsClientOptions, 'requestTimeoutMs' | 'maxAttempts'> = {}) {
  return clientConfig({ ...options, requestTimeoutMs: COMMAND_TIMEOUT_MS, maxAttempts: COMMAND_MAX_ATTEMPTS });
}

/**
 * Sends of one command when the controller answers that a concurrent run saved first (its
 * answer's `conflict`): the command changed nothing and is sent again. Such answers come at once,
 * so three fit in the trigger's timeout beside the lost-answer retries.
 */
export const COMMAND_CONFLICT_ATTEMPTS = 3;

/**
 * Sends a command to the controller and waits for it, so a refusal fails the deploy visibly. A
 * refusal because the command already took effect (e.g. the SDK retried an invoke whose answer
 * was lost) is not a failure: the migration's status is checked again before reporting one.
 *
 * An answer without an error is not yet success: when a concurrent run (the minute's tick) saved
 * first, the controller answers `conflict` and the command changed nothing. Taking that for done
 * would let a CloudFormation rollback "succeed" while the migration goes on shifting, so the
 * command is sent again (bounded) unless the migration already reached a `done` status.
 */
export async function invokeCommand(
  deps: Pick<DeployTriggerDeps, 'commandLambda' | 'log'> & {
    readonly store: Pick<DynamoDbStateStore, 'load'>;
    readonly config: Pick<DeployTriggerConfig, 'controllerFunctionName'>;
  },
  migrationId: string,
  command: Command,
  reason: string,
  done: readonly MigrationStatus[],
  sends: number = COMMAND_CONFLICT_ATTEMPTS,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    // A controller run takes longer than an ordinary API call: this client's requests may wait
    // COMMAND_TIMEOUT_MS (see commandClientConfig).
    // Named by id: the shared controller serves many migrations, and acts on this one only while
    // it is still its key's current migration (a newer deploy's is never aborted or torn down).
    const payload: ControllerCommandPayload = { command, reason, migration: migrationId };
    const result = await deps.commandLambda.send(
      new InvokeCommand({
        FunctionName: deps.config.controllerFunctionName,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
    );
    const body = result.Payload ? new TextDecoder().decode(result.Payload) : '';
    if (!result.FunctionError && !answeredConflict(body)) return;
    const status = (await deps.store.load(migrationId))?.record.status;
    if (status && done.includes(status)) return;
    if (result.FunctionError) {
      throw new Error(`controller refused ${command} of migration ${migrationId} (now ${status ?? 'unknown'}): ${result.FunctionError} ${body}`.trim());
    }
    if (attempt >= sends) {
      throw new Error(
        `the ${command} of migration ${migrationId} changed nothing ${attempt} times: another controller run saved first each time ` +
          `(now ${status ?? 'unknown'}); deploy again, or send it with cutover ${command} ${migrationId}`,
      );
    }
    deps.log?.('command lost a race with a concurrent controller run; sending it again', { migrationId, command, attempt, status });
  }
}

/** Whether a controller's answer says a concurrent run saved first (see `ControllerResponse.conflict`). */
function answeredConflict(body: string): boolean {
  if (body === '') return false;
  try {
    const answer = JSON.parse(body) as { conflict?: unknown } | null;
    return answer !== null && typeof answer === 'object' && answer.conflict === true;
  } catch {
    return false;
  }
}

/** The alias resource's properties (all but `Settings`, which the dispatcher checks), or a TypeError naming the property. */
export function validateAliasProperties(properties: Record<string, unknown>): DeployTriggerProperties {
  const get = (name: keyof DeployTriggerProperties): string => {
    const value = properties[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new TypeError(`resource property ${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
    return value.trim();
  };
  const props = { FunctionName: get('FunctionName'), AliasName: get('AliasName'), TargetVersion: get('TargetVersion'), MigrationId: get('MigrationId') };
  if (!/^[1-9][0-9]*$/.test(props.TargetVersion)) {
    throw new TypeError(`resource property TargetVersion must be a published version number, got ${JSON.stringify(props.TargetVersion)}`);
  }
  return props;
}
