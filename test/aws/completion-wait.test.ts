/**
 * The completion wait's onEvent and isComplete against dynalite (the record written by the store
 * the controller uses), and a mocked client for the read errors dynalite cannot produce: what a
 * deploy waits for, what it returns at once (Delete, a stack rollback, nothing recorded), and the
 * verdicts (complete, rolled back with its reason and evidence, paused until the deadline, damaged).
 */
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CREATE_RECENT_MS,
  CompletionWaitError,
  DEADLINE_MARGIN_MS,
  isMigrationComplete,
  isTransient,
  onCompletionWaitEvent,
  readCompletionWaitConfig,
  type CompletionWaitDeps,
  type CompletionWaitState,
} from '../../lambda/aws/completion-wait';
import { DynamoDbStateStore, STATE_SK, migrationPk } from '../../lambda/aws/dynamodb-store';
import type { MigrationRecord } from '../../lambda/core/controller';
import { Action, MigrationStatus } from '../../lambda/core/model';
import { makeRecord } from './fixtures';
import { TEST_CREDENTIALS, captureOutput, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-wait-test';
const NOW = 1_750_000_000_000;
const TIMEOUT_S = 1800;
let dynamo: LocalDynamo;
let store: DynamoDbStateStore;
let n = 0;
/** A fresh migration id per test: the tests share one table. */
const newId = () => `api${++n}:live:7`;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
  store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
});
afterAll(async () => {
  await dynamo.close();
});

function deps(at = NOW, overrides: Partial<CompletionWaitDeps> = {}): CompletionWaitDeps {
  return { documents: dynamo.clients.documents, tableName: TABLE, now: () => at, log: () => {}, ...overrides };
}

function cfnEvent(
  requestType: 'Create' | 'Update' | 'Delete',
  props: { recorded: string; expected: string; timeout?: string },
  oldRecorded?: string,
): CloudFormationCustomResourceEvent {
  const properties = { ServiceToken: 'arn:provider', RecordedMigrationId: props.recorded, ExpectedMigrationId: props.expected, TimeoutSeconds: props.timeout ?? String(TIMEOUT_S) };
  return {
    RequestType: requestType,
    ServiceToken: 'arn:provider',
    ResponseURL: 'https://cfn-response.example.com/',
    StackId: 'arn:stack',
    RequestId: 'req-1',
    LogicalResourceId: 'MigrationCompletionWait',
    ResourceType: 'Custom::CutoverCompletionWait',
    ResourceProperties: properties,
    ...(requestType === 'Create' ? {} : { PhysicalResourceId: 'cutover-completion-wait:MigrationCompletionWait' }),
    ...(requestType === 'Update' ? { OldResourceProperties: { ...properties, RecordedMigrationId: oldRecorded ?? '' } } : {}),
  } as CloudFormationCustomResourceEvent;
}

/** What the Provider hands isComplete: the request merged with onEvent's answer. */
async function startWait(event: CloudFormationCustomResourceEvent, at = NOW) {
  const answer = await onCompletionWaitEvent(event, deps(at));
  return { answer, next: { ...event, ...answer } as CloudFormationCustomResourceEvent & CompletionWaitState };
}

async function saveRecord(id: string, overrides: Partial<MigrationRecord>): Promise<void> {
  const current = await store.load(id);
  await store.save(id, makeRecord(id, { createdAtMs: NOW - 60_000, ...overrides }), current?.version ?? 0, []);
}

describe('completion wait: onEvent decides what this deploy waits for', () => {
  it('should wait for the migration the trigger recorded in this deploy, with a deadline a margin before the timeout', async () => {
    const id = newId();
    const { answer } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, 'api:live:6'));
    expect(answer).toEqual({
      PhysicalResourceId: 'cutover-completion-wait:MigrationCompletionWait',
      Data: { MigrationId: id },
      CutoverWaitFor: id,
      CutoverWaitStartedAtMs: NOW,
      CutoverWaitDeadlineMs: NOW + TIMEOUT_S * 1000 - DEADLINE_MARGIN_MS,
    });
  });

  it('should return at once when the trigger recorded nothing (first deploy, or the same version again)', async () => {
    const { answer, next } = await startWait(cfnEvent('Update', { recorded: '', expected: newId() }, 'api:live:6'));
    expect(answer.CutoverWaitFor).toBe('');
    expect(await isMigrationComplete(next, deps())).toEqual({ IsComplete: true, Data: { Outcome: 'not-waited' } });
  });

  it("should return at once on CloudFormation's rollback: the trigger's migration is not the one the old template deploys", async () => {
    // The failed deploy recorded api:live:7; the rollback's Update carries the previous template (version 6).
    const failed = newId();
    await saveRecord(failed, { status: MigrationStatus.ROLLED_BACK });
    const { answer, next } = await startWait(cfnEvent('Update', { recorded: failed, expected: 'api:live:6' }, failed));
    expect(answer.CutoverWaitFor).toBe('');
    expect((await isMigrationComplete(next, deps())).IsComplete).toBe(true);
  });

  it("should not wait again when only the wait's own settings changed", async () => {
    const id = newId();
    await saveRecord(id, { status: MigrationStatus.PAUSED, pausedFrom: MigrationStatus.BAKING });
    const { answer } = await startWait(cfnEvent('Update', { recorded: id, expected: id, timeout: '3600' }, id));
    expect(answer.CutoverWaitFor).toBe('');
  });

  it('should return at once on Delete, from onEvent and from isComplete, without reading anything', async () => {
    const calls = dynamo.calls.get('GetItem') ?? 0;
    const { answer, next } = await startWait(cfnEvent('Delete', { recorded: 'x', expected: 'x' }));
    expect(answer.PhysicalResourceId).toBe('cutover-completion-wait:MigrationCompletionWait');
    expect(answer.CutoverWaitFor).toBe('');
    expect((await isMigrationComplete(next, deps())).IsComplete).toBe(true);
    expect(dynamo.calls.get('GetItem') ?? 0).toBe(calls);
  });

  it("on Create, should wait for a migration recorded just now but not for an earlier deploy's", async () => {
    const fresh = newId();
    // Not started by the controller yet: no record at all.
    expect((await startWait(cfnEvent('Create', { recorded: fresh, expected: fresh }))).answer.CutoverWaitFor).toBe(fresh);
    const recent = newId();
    await saveRecord(recent, { status: MigrationStatus.GATING, createdAtMs: NOW - 30_000 });
    expect((await startWait(cfnEvent('Create', { recorded: recent, expected: recent }))).answer.CutoverWaitFor).toBe(recent);
    // waitForCompletion turned on without a new version: the attribute names last week's migration.
    const old = newId();
    await saveRecord(old, { status: MigrationStatus.PAUSED, pausedFrom: MigrationStatus.BAKING, createdAtMs: NOW - CREATE_RECENT_MS - 1 });
    expect((await startWait(cfnEvent('Create', { recorded: old, expected: old }))).answer.CutoverWaitFor).toBe('');
  });

  it('should refuse malformed properties with the value shown', async () => {
    await expect(onCompletionWaitEvent(cfnEvent('Update', { recorded: 'a', expected: '' }), deps())).rejects.toThrow(
      'resource property ExpectedMigrationId must be a non-empty string, got ""',
    );
    await expect(onCompletionWaitEvent(cfnEvent('Update', { recorded: 'a', expected: 'a', timeout: '1.5' }), deps())).rejects.toThrow(
      'resource property TimeoutSeconds must be a whole number of seconds ≥ 60, got "1.5"',
    );
  });

  it('should name the variable when the table is not configured', () => {
    expect(() => readCompletionWaitConfig({})).toThrow('environment variable CUTOVER_TABLE_NAME must name the migration table, got undefined');
    expect(readCompletionWaitConfig({ CUTOVER_TABLE_NAME: ' t ' })).toEqual({ tableName: 't' });
  });
});

describe('completion wait: isComplete gives the verdict', () => {
  it('should keep waiting through pending, gating, baking and soaking, and complete when the soak passed', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    // The controller has not created the record yet.
    expect(await isMigrationComplete(next, deps(NOW + 5_000))).toEqual({ IsComplete: false });
    for (const status of [MigrationStatus.PENDING, MigrationStatus.GATING, MigrationStatus.BAKING, MigrationStatus.PROMOTED, MigrationStatus.SOAKING]) {
      await saveRecord(id, { status, weight: status === MigrationStatus.PROMOTED || status === MigrationStatus.SOAKING ? 100 : 10 });
      expect(await isMigrationComplete(next, deps(NOW + 60_000)), status).toEqual({ IsComplete: false });
    }
    await saveRecord(id, { status: MigrationStatus.COMPLETE, weight: 100, step: 1 });
    expect(await isMigrationComplete(next, deps(NOW + 120_000))).toEqual({ IsComplete: true, Data: { Outcome: 'complete' } });
  });

  it('should complete on torn-down too (a plan that tears down after the soak)', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await saveRecord(id, { status: MigrationStatus.TORN_DOWN, weight: 100, step: 1, capacityReleased: true });
    expect(await isMigrationComplete(next, deps())).toEqual({ IsComplete: true, Data: { Outcome: 'torn-down' } });
  });

  it('should fail the deploy when the migration rolled back, with the reason, the evidence and how to look', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await saveRecord(id, {
      status: MigrationStatus.ROLLED_BACK,
      weight: 0,
      step: 0,
      lastDecision: {
        action: Action.ROLLBACK,
        code: 'error-rate-5xx',
        reason: 'the new version fails 12.0% of requests with 5XX against 0.5% on the old one',
        signals: {
          window: { fromMs: NOW, toMs: NOW + 60_000, new: { requests: 50, errors4xx: 1, errors5xx: 6, latencyMs: 180 }, old: { requests: 450, errors4xx: 9, errors5xx: 2 } },
          alarms: [{ name: 'api-errors', state: 'ALARM', reason: 'Threshold Crossed: 1 datapoint [7.0] was greater than the threshold (5.0).' }, { name: 'api-latency', state: 'OK' }],
          probes: [{ side: 'new', verdict: 'ok', atMs: NOW, summary: 'fine', findings: 0 }],
        },
      },
    });
    const error = await isMigrationComplete(next, deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompletionWaitError);
    const message = (error as Error).message;
    expect(message).toContain(`migration ${id} was rolled back at step 1 of 2: the new version fails 12.0% of requests with 5XX against 0.5% on the old one (error-rate-5xx).`);
    expect(message).toContain('Evidence: last window new 50 requests, 6 5XX (12.0%), 1 4XX (2.0%), p99 180 ms, old 450 requests, 2 5XX (0.4%), 9 4XX (2.0%); alarm api-errors in ALARM (Threshold Crossed');
    expect(message).not.toContain('api-latency');
    expect(message).not.toContain('probe of the new side');
    expect(message).toMatch(new RegExp(`Look: cutover status ${id} --table ${TABLE}$`));
    // The stack the Provider framework sends CloudFormation is the message alone (its 4 KB limit).
    expect((error as Error).stack).toBe(`CompletionWaitError: ${message}`);
  });

  it('should fail as soon as a rollback is decided, before it is in effect, naming a probe that found a desync', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await saveRecord(id, {
      status: MigrationStatus.SHIFTING,
      weight: 25,
      step: 0,
      shift: { kind: 'rollback', weight: 0, fromWeight: 25, step: 0, then: MigrationStatus.ROLLED_BACK, from: MigrationStatus.BAKING, type: 'rolled-back', code: 'probe-desync', reason: 'desync', requestedAtMs: NOW },
      lastDecision: {
        action: Action.ROLLBACK,
        code: 'probe-desync',
        reason: 'the Keep-Alive probe found responses answering other requests on the new side',
        signals: { probes: [{ side: 'new', verdict: 'desync', atMs: NOW, summary: 'response 3 answered request 2', findings: 1 }] },
      },
    });
    await expect(isMigrationComplete(next, deps())).rejects.toThrow(
      /is rolling back \(traffic moving from 25% to 0%\) at step 1 of 2: .*\(probe-desync\)\. Evidence: probe of the new side: desync \(response 3 answered request 2\)\./,
    );
  });

  it("should say an operator's abort was one", async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await saveRecord(id, {
      status: MigrationStatus.ROLLED_BACK,
      weight: 0,
      lastDecision: { action: Action.ROLLBACK, code: 'operator-abort', reason: 'customer reports wrong totals', signals: {} },
    });
    await expect(isMigrationComplete(next, deps())).rejects.toThrow(`migration ${id} was rolled back at step 1 of 2: customer reports wrong totals (operator-abort). All traffic`);
  });

  it('should keep waiting while paused, then fail at the deadline saying it is still paused and how to go on', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await saveRecord(id, {
      status: MigrationStatus.PAUSED,
      pausedFrom: MigrationStatus.BAKING,
      weight: 10,
      updatedAtMs: NOW + 60_000,
      lastDecision: { action: Action.PAUSE, code: 'old-side-failing', reason: 'the old side fails its probe too: a human must decide', signals: {} },
    });
    const deadline = next.CutoverWaitDeadlineMs;
    expect(await isMigrationComplete(next, deps(deadline - 1))).toEqual({ IsComplete: false });
    await expect(isMigrationComplete(next, deps(deadline))).rejects.toThrow(
      new RegExp(
        `^timed out after 29m: migration ${id} is still paused at 10% \\(step 1 of 2\\), paused while baking, since .*: the old side fails its probe too: a human must decide \\(old-side-failing\\)\\. ` +
          'A paused migration waits for an operator: send resume, promote or abort',
      ),
    );
  });

  it('should fail at the deadline when the controller never started the migration', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await expect(isMigrationComplete(next, deps(next.CutoverWaitDeadlineMs))).rejects.toThrow(
      `migration ${id} was recorded by the deploy but the controller never started it (no record in table ${TABLE})`,
    );
  });

  it('should report a damaged record clearly instead of crashing on it', async () => {
    const unversioned = newId();
    await dynamo.clients.documents.send(new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(unversioned), sk: STATE_SK, version: 'seven', record: {} } }));
    const first = (await startWait(cfnEvent('Update', { recorded: unversioned, expected: unversioned }, ''))).next;
    await expect(isMigrationComplete(first, deps())).rejects.toThrow(
      new CompletionWaitError(
        `migration ${unversioned} cannot be judged: its stored record is damaged (state item of migration ${unversioned} is malformed: version is "seven", not a number). ` +
          `The controller routes all traffic to the old side and stops such a migration. Look: cutover status ${unversioned} --table ${TABLE}`,
      ),
    );
    const bogus = newId();
    await dynamo.clients.documents.send(
      new PutCommand({ TableName: TABLE, Item: { pk: migrationPk(bogus), sk: STATE_SK, version: 3, record: { ...makeRecord(bogus), status: 'bogus' } } }),
    );
    const second = (await startWait(cfnEvent('Update', { recorded: bogus, expected: bogus }, ''))).next;
    await expect(isMigrationComplete(second, deps())).rejects.toThrow(/its stored record is damaged \(the record fails its schema: status: unknown status "bogus"\)/);
  });

  it('should name the damage kept by the controller when it stopped a damaged migration', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    await saveRecord(id, {
      status: MigrationStatus.ROLLED_BACK,
      weight: 0,
      damage: { what: 'record.status: unknown status "bogus"', detectedAtMs: NOW, keptAs: `table ${TABLE} item sk=DAMAGED#1`, lost: ['status'] },
      lastDecision: { action: Action.ROLLBACK, code: 'state-damaged', reason: 'stored state damaged', signals: {} },
    });
    await expect(isMigrationComplete(next, deps())).rejects.toThrow(`Its stored state was damaged: record.status: unknown status "bogus" (kept as table ${TABLE} item sk=DAMAGED#1).`);
  });

  it('should keep a very long reason under the response limit and keep how to look', async () => {
    const id = newId();
    const { next } = await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''));
    const alarms = Array.from({ length: 10 }, (_, i) => ({ name: `alarm-${i}`, state: 'ALARM' as const, reason: 'x'.repeat(500) }));
    await saveRecord(id, { status: MigrationStatus.ROLLED_BACK, lastDecision: { action: Action.ROLLBACK, code: 'alarm', reason: 'y'.repeat(5000), signals: { alarms } } });
    const message = ((await isMigrationComplete(next, deps()).catch((e: unknown) => e)) as Error).message;
    expect(message.length).toBeLessThanOrEqual(2500);
    expect(message).toContain(`migration ${id} was rolled back`);
    expect(message.endsWith(`Look: cutover status ${id} --table ${TABLE}`)).toBe(true);
  });
});

describe('completion wait: read errors', () => {
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 1 }));
  const mock = mockClient(documents);
  afterEach(() => mock.reset());
  afterAll(() => mock.restore());

  const waiting = async (id: string) => (await startWait(cfnEvent('Update', { recorded: id, expected: id }, ''))).next;

  it('should keep waiting through throttling the SDK could not get past, until the deadline', async () => {
    const throttled = Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), { name: 'ThrottlingException', $fault: 'client', $retryable: { throttling: true } });
    mock.on(GetCommand).rejects(throttled);
    const next = await waiting(newId());
    const logs: string[] = [];
    expect(await isMigrationComplete(next, deps(NOW, { documents, log: (m) => logs.push(m) }))).toEqual({ IsComplete: false });
    expect(logs).toEqual(['read failed, trying again at the next check']);
    await expect(isMigrationComplete(next, deps(next.CutoverWaitDeadlineMs, { documents }))).rejects.toThrow(/its record could not be read \(ThrottlingException: Rate of requests/);
  });

  it('should fail at once on an error waiting cannot fix (no such table, access denied)', async () => {
    const id = newId();
    const next = await waiting(id);
    // dynalite answers a missing table as DynamoDB does.
    await expect(isMigrationComplete(next, deps(NOW, { tableName: 'no-such-table' }))).rejects.toThrow(
      `cannot read migration ${id} from table no-such-table: ResourceNotFoundException`,
    );
    mock.on(GetCommand).rejects(Object.assign(new Error('not authorized to perform: dynamodb:GetItem'), { name: 'AccessDeniedException', $fault: 'client', $metadata: { httpStatusCode: 400 } }));
    await expect(isMigrationComplete(next, deps(NOW, { documents }))).rejects.toThrow(/AccessDeniedException: not authorized/);
  });

  it('should tell transient errors from lasting ones', () => {
    expect(isTransient(Object.assign(new Error('x'), { name: 'InternalServerError', $fault: 'server' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { name: 'Whatever', $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isTransient(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { name: 'TimeoutError' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { name: 'ValidationException', $fault: 'client', $metadata: { httpStatusCode: 400 } }))).toBe(false);
    expect(isTransient('a string')).toBe(false);
  });
});

describe('completion wait handler, as Lambda loads it', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('should answer onEvent and then isComplete from one function, with clients built once', async () => {
    process.env = {
      ...saved,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      CUTOVER_TABLE_NAME: TABLE,
    };
    vi.resetModules();
    const output = captureOutput();
    try {
      const { handler } = await import('../../lambda/handlers/completion-wait');
      const id = newId();
      await saveRecord(id, { status: MigrationStatus.COMPLETE, weight: 100, step: 1, createdAtMs: Date.now() });
      const request = cfnEvent('Update', { recorded: id, expected: id }, '');
      const answer = await handler(request);
      expect(answer).toMatchObject({ CutoverWaitFor: id, Data: { MigrationId: id } });
      expect(await handler({ ...request, ...(answer as CompletionWaitState) })).toEqual({ IsComplete: true, Data: { Outcome: 'complete' } });
    } finally {
      output.restore();
    }
  });

  it('should fail to load without a table, naming the variable', async () => {
    process.env = { ...saved, AWS_REGION: 'us-east-1', CUTOVER_TABLE_NAME: '' };
    vi.resetModules();
    await expect(import('../../lambda/handlers/completion-wait')).rejects.toThrow('environment variable CUTOVER_TABLE_NAME must name the migration table');
  });
});
