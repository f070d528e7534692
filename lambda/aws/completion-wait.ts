/**
 * The completion wait: a custom resource (through the `aws-cdk-lib/custom-resources` Provider, with
 * `onEvent` and `isComplete`) that holds `cdk deploy` until the migration the deploy recorded has a
 * verdict, so that a CI pipeline sees the outcome in the deploy's own exit status, as it does with
 * CodeDeploy's alias update policy.
 *
 * - **onEvent** decides whether this deploy has anything to wait for, and returns at once. It waits
 *   only for the migration the deploy trigger recorded in this very deploy, and only when that is
 *   the migration of the version (or release) this template deploys: a deploy that records nothing
 *   (same version: the trigger returns an empty `MigrationId`, or is not updated at all), a change
 *   of the wait's own settings, and CloudFormation's rollback of a failed deploy (its Update
 *   carries the previous template's migration id, never the one the trigger last recorded) return
 *   at once. Delete always returns at once: nothing here may block a stack rollback or a deletion.
 * - **isComplete** reads the migration's record, read-only (the record log's `getStateItem` and the
 *   controller's own schema, `checkRecord`, exactly as the operator CLI reads it), and answers:
 *   - complete (or torn down after it): done, the deploy succeeds;
 *   - rolled back, or rolling back (a rollback decided and being put into effect): throws, so that
 *     CloudFormation fails the update and rolls the stack back, with a message naming the
 *     migration, the reason and the evidence of its last decision, and how to look further;
 *   - anything else (not started yet, gating, shifting, baking, promoted, soaking, paused): waits.
 *     Past the deadline (the wait's timeout, less a margin so that this message comes before the
 *     Provider's own bare "Operation timed out"), throws with where the migration stands.
 *
 * ## Why "complete" and not "promoted"
 * `promoted` and `soaking` still roll back on their own (a rollback stays instant until the soak
 * has passed), so a deploy reported green at 100 % could be rolled back minutes later while the CI
 * pipeline has moved on. The verdict is in at `complete`: the soak passed. (A complete migration
 * can still be aborted by an operator until teardown; that is a decision made after the deploy.)
 *
 * Reads only: `DynamoDbStateStore.load` finishes an interrupted outbox copy (a write), so this
 * reader uses the record log's `getStateItem`, as `ops/aws-source.ts` does, and its role has
 * nothing but `dynamodb:GetItem` on the table.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type { MigrationRecord } from '../core/controller';
import { MigrationStatus, type Decision } from '../core/model';
import type { AlarmSignal, HealthWindow, ProbeOutcome, SideSignals } from '../core/ports';
import { DamagedStateError } from '../core/ports';
import { checkRecord } from '../core/record';
import { describeError } from './clients';
import { getStateItem } from './dynamodb-record-log';

/** The resource's properties (CloudFormation passes every value as a string). */
export interface CompletionWaitProperties {
  /** The deploy trigger's `MigrationId` attribute: the migration it last recorded ('' for none). */
  readonly RecordedMigrationId: string;
  /** The id of the migration of the version or release this template deploys. */
  readonly ExpectedMigrationId: string;
  /** How long a deploy waits at most, in whole seconds. */
  readonly TimeoutSeconds: string;
}

/** Fields `onEvent` returns besides the Provider's own; the Provider passes them on to `isComplete`. */
export interface CompletionWaitState {
  /** The migration to wait for, or '' when there is nothing to wait for. */
  readonly CutoverWaitFor: string;
  /** When the wait began, epoch ms. */
  readonly CutoverWaitStartedAtMs: number;
  /** When `isComplete` gives up with its own message, epoch ms. */
  readonly CutoverWaitDeadlineMs: number;
}

export interface OnEventResponse extends CompletionWaitState {
  readonly PhysicalResourceId: string;
  readonly Data: { readonly MigrationId: string };
}

export interface IsCompleteResponse {
  readonly IsComplete: boolean;
  /** Only with `IsComplete: true` (the Provider refuses Data otherwise). */
  readonly Data?: { readonly Outcome: string };
}

export interface CompletionWaitDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default - console, one JSON line */
  readonly log?: (message: string, detail: Record<string, unknown>) => void;
}

/** The handler's environment. */
export interface CompletionWaitConfig {
  /** The migration table (`CUTOVER_TABLE_NAME`). */
  readonly tableName: string;
}

/** Reads the environment once, at module load: a missing table name fails the first call, named. */
export function readCompletionWaitConfig(env: Readonly<Record<string, string | undefined>>): CompletionWaitConfig {
  const tableName = env.CUTOVER_TABLE_NAME?.trim();
  if (!tableName) throw new TypeError(`environment variable CUTOVER_TABLE_NAME must name the migration table, got ${JSON.stringify(env.CUTOVER_TABLE_NAME)}`);
  return { tableName };
}

/**
 * How long before the Provider's own timeout `isComplete` fails with its message: two query
 * intervals (the construct queries every 30 s), so that at least one check lands between the two.
 */
export const DEADLINE_MARGIN_MS = 60_000;

/**
 * On the wait's Create, how recently the trigger must have recorded the migration for this deploy
 * to have started it. A Create comes when `waitForCompletion` is turned on: if the version did not
 * change in the same deploy, the trigger was not updated and its attribute still names the
 * migration of an earlier deploy, which this deploy must not wait for (it may be paused, or rolled
 * back long ago). The wait is created right after the trigger in the same deploy (it depends on
 * it), seconds later; a quarter of an hour leaves room for a slow CloudFormation.
 */
export const CREATE_RECENT_MS = 15 * 60_000;

const MAX_MESSAGE = 2500;

/** The wait's verdict on a deploy: the migration rolled back, or the deploy could not be judged in time. */
export class CompletionWaitError extends Error {
  constructor(message: string) {
    // Kept well under CloudFormation's 4 KB response, with its end (how to look) always kept.
    super(message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 600)} … ${message.slice(-500)}`);
    this.name = 'CompletionWaitError';
    // The Provider framework sends the error's trace to CloudFormation as the failure reason, and a
    // response over 4 KB is refused (the reason would be lost): the message alone is the trace.
    this.stack = `${this.name}: ${this.message}`;
  }
}

export async function onCompletionWaitEvent(event: CloudFormationCustomResourceEvent, deps: CompletionWaitDeps): Promise<OnEventResponse> {
  const log = deps.log ?? defaultLog;
  const now = (deps.now ?? Date.now)();
  const physicalResourceId = event.RequestType === 'Create' ? `cutover-completion-wait:${event.LogicalResourceId}` : event.PhysicalResourceId;
  const respond = (waitFor: string, why: string, timeoutMs = 0): OnEventResponse => {
    log(waitFor ? 'waiting for the migration' : 'nothing to wait for', { requestType: event.RequestType, migrationId: waitFor, why });
    return {
      PhysicalResourceId: physicalResourceId,
      Data: { MigrationId: waitFor },
      CutoverWaitFor: waitFor,
      CutoverWaitStartedAtMs: now,
      CutoverWaitDeadlineMs: now + Math.max(0, timeoutMs - DEADLINE_MARGIN_MS),
    };
  };
  if (event.RequestType === 'Delete') return respond('', 'delete: nothing to wait for');

  const props = validate(event.ResourceProperties as unknown as Record<string, unknown>);
  const recorded = props.RecordedMigrationId;
  const timeoutMs = Number(props.TimeoutSeconds) * 1000;
  if (recorded === '') return respond('', 'the deploy trigger recorded no migration (first deploy, or the same version again)');
  if (recorded !== props.ExpectedMigrationId) {
    // CloudFormation rolling the stack back: the previous template's version against the
    // migration the trigger recorded for the newer one (which the trigger aborts on this rollback).
    return respond('', `the recorded migration ${recorded} is not the one this template deploys (${props.ExpectedMigrationId}): a stack rollback`);
  }
  if (event.RequestType === 'Update') {
    const before = (event.OldResourceProperties as Record<string, unknown> | undefined)?.RecordedMigrationId;
    if (before === recorded) return respond('', `migration ${recorded} was recorded by an earlier deploy; only the wait's settings changed`);
    return respond(recorded, 'the deploy trigger recorded this migration in this deploy', timeoutMs);
  }
  // Create: wait only for a migration this deploy recorded (see CREATE_RECENT_MS).
  const read = await readState(deps, recorded);
  if (read.kind === 'record' && read.record.createdAtMs < now - CREATE_RECENT_MS) {
    return respond('', `migration ${recorded} was created at ${new Date(read.record.createdAtMs).toISOString()} by an earlier deploy (now ${read.record.status})`);
  }
  return respond(recorded, 'the deploy trigger recorded this migration in this deploy', timeoutMs);
}

export async function isMigrationComplete(
  event: CloudFormationCustomResourceEvent & Partial<CompletionWaitState>,
  deps: CompletionWaitDeps,
): Promise<IsCompleteResponse> {
  const log = deps.log ?? defaultLog;
  const now = (deps.now ?? Date.now)();
  if (event.RequestType === 'Delete' || !event.CutoverWaitFor) return { IsComplete: true, Data: { Outcome: 'not-waited' } };
  const id = event.CutoverWaitFor;
  const deadline = typeof event.CutoverWaitDeadlineMs === 'number' ? event.CutoverWaitDeadlineMs : Number.POSITIVE_INFINITY;
  const started = typeof event.CutoverWaitStartedAtMs === 'number' ? event.CutoverWaitStartedAtMs : now;
  const waited = formatDuration(now - started);
  const look = `Look: cutover status ${id} --table ${deps.tableName}`;
  const read = await readState(deps, id);
  const timedOut = now >= deadline;

  switch (read.kind) {
    case 'unreadable':
      // Throttling or a network fault that the SDK's own retries did not get past: the next check
      // may read it. Anything else (access denied, no such table) will not get better by waiting.
      if (!read.transient) throw new CompletionWaitError(`cannot read migration ${id} from table ${deps.tableName}: ${read.error}. ${look}`);
      log('read failed, trying again at the next check', { migrationId: id, error: read.error });
      if (timedOut) throw new CompletionWaitError(`timed out after ${waited} waiting for migration ${id}: its record could not be read (${read.error}). ${look}`);
      return { IsComplete: false };
    case 'damaged':
      throw new CompletionWaitError(
        `migration ${id} cannot be judged: its stored record is damaged (${read.what}). The controller routes all traffic to the old side and stops such a migration. ${look}`,
      );
    case 'missing':
      if (timedOut) {
        throw new CompletionWaitError(
          `timed out after ${waited}: migration ${id} was recorded by the deploy but the controller never started it (no record in table ${deps.tableName}); check the controller's logs. ${look}`,
        );
      }
      return { IsComplete: false };
    case 'record':
      break;
  }
  const record = read.record;
  const status = record.status;
  if (status === MigrationStatus.COMPLETE || status === MigrationStatus.TORN_DOWN) {
    log('migration complete', { migrationId: id, status, waitedMs: now - started });
    return { IsComplete: true, Data: { Outcome: status } };
  }
  if (status === MigrationStatus.ROLLED_BACK || record.shift?.kind === 'rollback') {
    const state = status === MigrationStatus.ROLLED_BACK ? 'was rolled back' : `is rolling back (traffic moving from ${record.shift!.fromWeight}% to 0%)`;
    const damage = record.damage ? ` Its stored state was damaged: ${record.damage.what} (kept as ${record.damage.keptAs}).` : '';
    throw new CompletionWaitError(
      `migration ${id} ${state} at step ${record.step + 1} of ${record.plan.steps.length}: ${reasonOf(record)}.${damage} ${evidenceOf(record.lastDecision)}` +
        `All traffic goes back to the old side; CloudFormation now rolls the stack back. ${look}`,
    );
  }
  if (timedOut) {
    const hint =
      status === MigrationStatus.PAUSED
        ? ' A paused migration waits for an operator: send resume, promote or abort (cutover resume|promote|abort); the stack rollback that follows aborts it.'
        : ' The deploy gives up before the migration ends; the stack rollback that follows aborts it. Raise waitForCompletion or shorten the plan.';
    throw new CompletionWaitError(`timed out after ${waited}: migration ${id} ${describeRecord(record)}.${hint} ${look}`);
  }
  log('still waiting', { migrationId: id, status, weight: record.weight, step: record.step, waitedMs: now - started });
  return { IsComplete: false };
}

type ReadState =
  | { readonly kind: 'record'; readonly record: MigrationRecord }
  | { readonly kind: 'missing' }
  | { readonly kind: 'damaged'; readonly what: string }
  | { readonly kind: 'unreadable'; readonly error: string; readonly transient: boolean };

/** The migration's record, checked with the controller's schema, or why there is none to judge. */
async function readState(deps: CompletionWaitDeps, migrationId: string): Promise<ReadState> {
  let raw: unknown;
  try {
    const item = await getStateItem({ documents: deps.documents, tableName: deps.tableName, maxPages: 1 }, migrationId);
    if (!item) return { kind: 'missing' };
    raw = item.record;
  } catch (error) {
    if (error instanceof DamagedStateError) return { kind: 'damaged', what: error.damage.what };
    return { kind: 'unreadable', error: describeError(error), transient: isTransient(error) };
  }
  const check = checkRecord(migrationId, raw);
  if (!check.ok) {
    const more = check.problems.length > 3 ? ` (and ${check.problems.length - 3} more)` : '';
    return { kind: 'damaged', what: `the record fails its schema: ${check.problems.slice(0, 3).join('; ')}${more}` };
  }
  return { kind: 'record', record: check.record };
}

/** Where a migration stands, for a timeout's message: "is paused at 10% (step 1 of 2), from baking: <reason>". */
export function describeRecord(record: MigrationRecord): string {
  const at = `at ${record.weight}% (step ${record.step + 1} of ${record.plan.steps.length})`;
  if (record.status === MigrationStatus.PAUSED) {
    return `is still paused ${at}, paused while ${record.pausedFrom ?? 'unknown'}, since ${new Date(record.updatedAtMs).toISOString()}: ${reasonOf(record)}`;
  }
  if (record.status === MigrationStatus.PENDING || record.status === MigrationStatus.GATING) {
    return `is still ${record.status} (no traffic moved yet)${record.lastDecision ? `: ${reasonOf(record)}` : ''}`;
  }
  return `is still ${record.status} ${at}${record.lastDecision ? `; last decision: ${reasonOf(record)}` : ''}`;
}

/**
 * The evidence of a decision in one line for a person reading a failed deploy: the window's counts
 * per side, the alarms in ALARM, the probes that did not pass. The signals are stored as written
 * (the schema keeps them unchecked), so each part is read defensively and skipped if malformed.
 */
export function evidenceOf(decision: Decision | undefined): string {
  if (!decision) return '';
  const signals = decision.signals as Record<string, unknown>;
  const parts: string[] = [];
  const window = signals.window as Partial<HealthWindow> | undefined;
  if (isSide(window?.new) && isSide(window?.old)) {
    parts.push(`last window new ${sideText(window.new)}, old ${sideText(window.old)}`);
  }
  for (const alarm of Array.isArray(signals.alarms) ? (signals.alarms as Partial<AlarmSignal>[]) : []) {
    if (alarm?.state === 'ALARM' && typeof alarm.name === 'string') {
      parts.push(`alarm ${alarm.name} in ALARM${typeof alarm.reason === 'string' ? ` (${clip(alarm.reason, 160)})` : ''}`);
    }
  }
  for (const probe of Array.isArray(signals.probes) ? (signals.probes as Partial<ProbeOutcome>[]) : []) {
    if (probe && probe.verdict !== 'ok' && typeof probe.verdict === 'string') {
      parts.push(`probe of the ${String(probe.side)} side: ${probe.verdict}${typeof probe.summary === 'string' ? ` (${clip(probe.summary, 160)})` : ''}`);
    }
  }
  return parts.length > 0 ? `Evidence: ${parts.join('; ')}. ` : '';
}

function isSide(value: unknown): value is SideSignals {
  const side = value as Partial<SideSignals> | undefined;
  return typeof side?.requests === 'number' && typeof side.errors5xx === 'number' && typeof side.errors4xx === 'number';
}

function sideText(side: SideSignals): string {
  const rate = (n: number) => (side.requests > 0 ? ` (${((100 * n) / side.requests).toFixed(1)}%)` : '');
  const latency = typeof side.latencyMs === 'number' ? `, p99 ${Math.round(side.latencyMs)} ms` : '';
  return `${side.requests} requests, ${side.errors5xx} 5XX${rate(side.errors5xx)}, ${side.errors4xx} 4XX${rate(side.errors4xx)}${latency}`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * An error that waiting may get past: throttling, a server fault, a timeout or a network error,
 * once the SDK's own retries are spent. Access denied, a missing table or a validation error will
 * not change by the next check.
 */
export function isTransient(error: unknown): boolean {
  const e = error as { name?: unknown; code?: unknown; $fault?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.$retryable || e.$fault === 'server') return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 500) return true;
  return (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) || (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code));
}

function reasonOf(record: MigrationRecord): string {
  const decision = record.lastDecision;
  if (!decision) return 'no decision recorded';
  return `${clip(decision.reason, 400)} (${decision.code})`;
}

function validate(properties: Record<string, unknown>): CompletionWaitProperties {
  const text = (name: keyof CompletionWaitProperties, allowEmpty: boolean): string => {
    const value = properties[name];
    if (typeof value !== 'string' || (!allowEmpty && value.trim() === '')) {
      throw new TypeError(`resource property ${name} must be a ${allowEmpty ? '' : 'non-empty '}string, got ${JSON.stringify(value)}`);
    }
    return value.trim();
  };
  const props = {
    RecordedMigrationId: text('RecordedMigrationId', true),
    ExpectedMigrationId: text('ExpectedMigrationId', false),
    TimeoutSeconds: text('TimeoutSeconds', false),
  };
  const seconds = Number(props.TimeoutSeconds);
  if (!Number.isInteger(seconds) || seconds < 60) {
    throw new TypeError(`resource property TimeoutSeconds must be a whole number of seconds ≥ 60, got ${JSON.stringify(props.TimeoutSeconds)}`);
  }
  return props;
}

/** e.g. "1h 2m", "3m 20s", "45s". */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return s > 0 ? `${m}m ${s}s` : `${m}m`;
  return `${s}s`;
}

function defaultLog(message: string, detail: Record<string, unknown>): void {
  console.log(JSON.stringify({ message, ...detail }));
}
