/**
 * The custom resource that turns `cdk deploy` of a new function version into a migration.
 *
 * The alias is not an `AWS::Lambda::Alias` of the stack, so no deploy ever resets its weights: the
 * controller alone moves traffic. This resource only
 * - creates the alias on the first deploy (nothing to migrate yet),
 * - records a migration from the alias's current version to the deployed one and wakes the
 *   controller so the canary starts now,
 * - never routes traffic to the new version itself.
 */
import { CreateAliasCommand, GetAliasCommand, InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { MigrationStatus, TERMINAL_STATUSES, type Command } from '../core/model';
import { clientConfig, errorName, type AwsClientOptions } from './clients';
import type { DeployTriggerConfig } from './config';
import type { DeployTriggerPayload } from './controller-requests';
import { aliasKeyOf, type DynamoDbStateStore, type MigrationPointer } from './dynamodb-store';
import type { ScheduleSwitch } from './schedules';

/** The resource's properties (CloudFormation passes every value as a string). */
export interface DeployTriggerProperties {
  readonly FunctionName: string;
  readonly AliasName: string;
  /** The version just published, e.g. "7". */
  readonly TargetVersion: string;
  /** Unique per version, e.g. `${fn}:${alias}:${version}`. */
  readonly MigrationId: string;
}

/** What the Provider framework expects back. */
export interface DeployTriggerResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: Readonly<Record<string, string>>;
}

export interface DeployTriggerDeps {
  readonly config: DeployTriggerConfig;
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
    log('delete: alias left in place', { physicalResourceId: event.PhysicalResourceId });
    return { PhysicalResourceId: event.PhysicalResourceId };
  }
  const props = validate(event.ResourceProperties as unknown as Record<string, unknown>);
  const physicalResourceId = aliasKeyOf(props.FunctionName, props.AliasName);
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
      `{"command":"promote"} or {"command":"abort"}, then deploy again`,
  );
}

/**
 * Records the new migration as the current one (refused if another deploy raced), enables the
 * schedules and wakes the controller.
 *
 * The pointer is written before the schedules are enabled (never after): a controller that is
 * disabling them at the same moment reads the pointer again after its disable and re-enables, so
 * one of the two enables last (lambda/aws/schedules.ts). An enable that fails (after the SDK's
 * retries; some rules may have switched) fails the deploy: the migration would otherwise run with
 * no ticks. CloudFormation's rollback then sends the previous version back, which aborts the
 * recorded migration (see `onDeployEvent`), and the controller switches the schedules off again.
 */
export async function recordAndWake(deps: DeployTriggerDeps, key: string, record: MigrationPointer, replacing: string | undefined): Promise<void> {
  await deps.store.putPointer(key, record, replacing);
  if (deps.schedules) {
    try {
      await deps.schedules.enable();
    } catch (error) {
      throw new Error(
        `migration ${record.migrationId} was recorded but its schedules could not be enabled (${(error as Error).message}); ` +
          'the deploy fails so that CloudFormation rolls back, which aborts the migration: deploy a new version (or, for a fleet, a new release label) once EventBridge answers; the same one is already recorded and would not start again',
        { cause: error },
      );
    }
  }
  const payload: DeployTriggerPayload = { trigger: 'deploy', migrationId: record.migrationId };
  await deps.lambda.send(
    new InvokeCommand({
      FunctionName: deps.config.controllerFunctionName,
      // Asynchronous: the controller starts the canary now and the deploy does not wait for it.
      InvocationType: 'Event',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
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
  deps: DeployTriggerDeps,
  migrationId: string,
  command: Command,
  reason: string,
  done: readonly MigrationStatus[],
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    // A controller run takes longer than an ordinary API call: this client's requests may wait
    // COMMAND_TIMEOUT_MS (see commandClientConfig).
    const result = await deps.commandLambda.send(
      new InvokeCommand({
        FunctionName: deps.config.controllerFunctionName,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify({ command, reason })),
      }),
    );
    const body = result.Payload ? new TextDecoder().decode(result.Payload) : '';
    if (!result.FunctionError && !answeredConflict(body)) return;
    const status = (await deps.store.load(migrationId))?.record.status;
    if (status && done.includes(status)) return;
    if (result.FunctionError) {
      throw new Error(`controller refused ${command} of migration ${migrationId} (now ${status ?? 'unknown'}): ${result.FunctionError} ${body}`.trim());
    }
    if (attempt >= COMMAND_CONFLICT_ATTEMPTS) {
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

function validate(properties: Record<string, unknown>): DeployTriggerProperties {
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
