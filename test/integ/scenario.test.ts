/**
 * The integration scenario without AWS: a fake deployer and clock, a scripted migration read
 * through ops/'s state shaping, the alias through a mocked LambdaClient, and the notifications as
 * the real `AwsEventSink` formats them (captured from mocked EventBridge and SNS clients), read back
 * through integ/notes.ts from a mocked DynamoDB document client. Every failure must still destroy.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetAliasCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsEventSink } from '../../lambda/aws/eventbridge-sink';
import { MigrationStatus as S, type MigrationEvent } from '../../lambda/core/model';
import { IntegAssertionError, IntegTimeoutError, InterruptedError } from '../../integ/poll';
import { readNotes } from '../../integ/notes';
import { NOTE_PK } from '../../integ/recorder-names';
import { report } from '../../integ/run';
import { runScenario, type ScenarioDeps, type ScenarioOptions } from '../../integ/scenario';
import { makeEvent } from '../aws/fixtures';
import {
  FakeCdk,
  FakeClock,
  FakeTraffic,
  MIGRATION_ID,
  StorySource,
  badReleaseEvents,
  captureProgress,
  drainEvents,
  rollbackStory,
  type Frame,
} from './fakes';

const CREDENTIALS = { accessKeyId: 'k', secretAccessKey: 's' };
const lambda = new LambdaClient({ region: 'eu-west-1', credentials: CREDENTIALS });
const lambdaMock = mockClient(lambda);
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials: CREDENTIALS }));
const documentsMock = mockClient(documents);
const eventBridge = new EventBridgeClient({ region: 'eu-west-1', credentials: CREDENTIALS });
const eventBridgeMock = mockClient(eventBridge);
const sns = new SNSClient({ region: 'eu-west-1', credentials: CREDENTIALS });
const snsMock = mockClient(sns);

/** What the recorder table holds after the real sink published `events` (SNS and the bus). */
async function recorderItems(events: readonly MigrationEvent[]): Promise<Record<string, unknown>[]> {
  eventBridgeMock.reset();
  snsMock.reset();
  eventBridgeMock.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({ Entries: input.Entries.map(() => ({ EventId: 'e' })), FailedEntryCount: 0 }));
  snsMock.on(PublishCommand).resolves({ MessageId: 'm' });
  const sink = new AwsEventSink({ eventBridge, sns, eventBusName: 'default', topicArn: 'arn:aws:sns:eu-west-1:1:t', migrationKey: 'demo-fn:live', context: { functionName: 'demo-fn' } });
  await sink.publish(events);
  const items: Record<string, unknown>[] = [];
  let n = 0;
  for (const call of eventBridgeMock.commandCalls(PutEventsCommand)) {
    for (const entry of call.args[0].input.Entries ?? []) {
      items.push({ pk: NOTE_PK, sk: `${n++}`, via: 'events', atMs: n, detailType: entry.DetailType, detail: entry.Detail });
    }
  }
  for (const call of snsMock.commandCalls(PublishCommand)) {
    items.push({ pk: NOTE_PK, sk: `${n++}`, via: 'sns', atMs: n, subject: call.args[0].input.Subject, message: call.args[0].input.Message });
  }
  return items;
}

let clock: FakeClock;
let cdk: FakeCdk;
let traffic: FakeTraffic;
let lines: string[];

beforeEach(() => {
  clock = new FakeClock();
  cdk = new FakeCdk();
  traffic = new FakeTraffic();
  lambdaMock.reset();
  documentsMock.reset();
  lambdaMock.on(GetAliasCommand).resolves({ FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: {} } });
});
afterEach(() => {
  lambdaMock.reset();
  documentsMock.reset();
});

async function notesFor(events: readonly MigrationEvent[]): Promise<void> {
  documentsMock.on(QueryCommand).resolves({ Items: await recorderItems(events) });
}

function deps(source: StorySource, over: Partial<ScenarioDeps> = {}): ScenarioDeps {
  const captured = captureProgress(clock);
  lines = captured.lines;
  return {
    cdk,
    openSource: () => source,
    readAlias: (functionName, aliasName) => lambda.send(new GetAliasCommand({ FunctionName: functionName, Name: aliasName })),
    readNotes: (table) => readNotes(documents, table),
    startTraffic: () => traffic,
    clock,
    progress: captured.progress,
    ...over,
  };
}

const FAST: ScenarioOptions = { pollIntervalMs: 10_000 };
const ALL_EVENTS = [...badReleaseEvents(), ...drainEvents()];

describe('runScenario', () => {
  it('passes on a rollback with its reason, the alias back on the old version, the drain and every notification; then destroys', async () => {
    await notesFor(ALL_EVENTS);
    const source = new StorySource(rollbackStory(), undefined, drainEvents());
    const outcome = await runScenario(deps(source), FAST);

    expect(outcome.error).toBeUndefined();
    expect(outcome.passed).toBe(true);
    expect(outcome.result).toMatchObject({ migrationId: MIGRATION_ID, rollback: { code: 'error-rate-5xx' }, residual: { drained: true, requestsAfterRollback: 3 } });
    expect(cdk.calls).toEqual(['deploy 1', 'deploy 2 fault 0.5', 'destroy']);
    expect(lambdaMock.commandCalls(GetAliasCommand)[0]!.args[0].input).toEqual({ FunctionName: 'api', Name: 'live' });
    expect(traffic.stopped).toBe(true);
    expect(source.closed).toBe(true);
    // Progress lines carry the elapsed time, and the rollback's reason.
    expect(lines.every((l) => /^\[integ +\S+\] /.test(l))).toBe(true);
    expect(lines.join('\n')).toContain('(error-rate-5xx): new 5XX rate 31.0%');
    expect(lines.join('\n')).toMatch(/new side drained 1m05s after the rollback: 3 requests/);
  });

  it('a bad release that gets promoted fails at once with what was expected and found, and still destroys', async () => {
    const source = new StorySource([
      { record: { status: S.BAKING, weight: 10, step: 0 }, events: [] },
      { record: { status: S.PROMOTED, weight: 100, step: 1 }, events: [] },
    ]);
    const outcome = await runScenario(deps(source), FAST);

    expect(outcome.passed).toBe(false);
    expect(outcome.error).toBeInstanceOf(IntegAssertionError);
    expect((outcome.error as Error).message).toMatch(/of the bad release: expected a rollback; found status promoted at 100%/);
    expect(source.statusReads).toBe(2);
    expect(cdk.calls.at(-1)).toBe('destroy');
  });

  it('a rollback that never comes ends at the deadline (bounded reads), naming the last state, and destroys', async () => {
    const source = new StorySource([{ record: { status: S.BAKING, weight: 10, step: 0 }, events: [] }]);
    const outcome = await runScenario(deps(source), { pollIntervalMs: 10_000, timeouts: { rollbackMs: 60_000 } });

    expect(outcome.error).toBeInstanceOf(IntegTimeoutError);
    expect((outcome.error as Error).message).toMatch(/gave up after 1m00s\): expected status rolled-back; found status baking at 10%/);
    // One read at the start and one per interval up to the deadline: 0, 10, …, 60 s.
    expect(source.statusReads).toBe(7);
    expect(cdk.calls).toEqual(['deploy 1', 'deploy 2 fault 0.5', 'destroy']);
  });

  it('a failure injected midway (the bad release does not deploy) still stops the traffic and destroys', async () => {
    cdk.failOn = 'deploy 2';
    const outcome = await runScenario(deps(new StorySource(rollbackStory())), FAST);

    expect((outcome.error as Error).message).toBe('cdk deploy of release 2 failed (injected)');
    expect(cdk.calls).toEqual(['deploy 1', 'deploy 2 fault 0.5', 'destroy']);
    expect(traffic.stopped).toBe(true);
    expect(report(outcome, cdk.manualDestroy, () => {})).toBe(1);
  });

  it('a first deploy that fails is destroyed too (it may have left a half-created stack)', async () => {
    cdk.failOn = 'deploy 1';
    const outcome = await runScenario(deps(new StorySource(rollbackStory())), FAST);
    expect(cdk.calls).toEqual(['deploy 1', 'destroy']);
    expect(outcome.passed).toBe(false);
  });

  it('an alias still weighted toward the new version fails with both readings', async () => {
    await notesFor(ALL_EVENTS);
    lambdaMock.on(GetAliasCommand).resolves({ FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: { '2': 0.1 } } });
    const outcome = await runScenario(deps(new StorySource(rollbackStory(), undefined, drainEvents())), FAST);

    expect((outcome.error as Error).message).toBe(
      'alias api:live after the rollback: expected no weight on version 2 (the new one) or any other; found additional weights 2: 0.1',
    );
    expect(cdk.calls.at(-1)).toBe('destroy');
  });

  it('a missing notification times out listing what is missing and what arrived', async () => {
    // The residual report reached the bus but not the topic.
    const items = (await recorderItems(ALL_EVENTS)).filter((i) => !(i.via === 'sns' && String(i.message).includes('rollback-residual')));
    documentsMock.on(QueryCommand).resolves({ Items: items });
    const outcome = await runScenario(deps(new StorySource(rollbackStory(), undefined, drainEvents())), { ...FAST, timeouts: { notificationsMs: 30_000 } });

    expect(outcome.error).toBeInstanceOf(IntegTimeoutError);
    const message = (outcome.error as Error).message;
    expect(message).toContain(`missing SNS message "rollback-residual" of ${MIGRATION_ID}`);
    expect(message).toMatch(/received \d+ notification\(s\): .*SNS "Cutover: demo-fn:live rolled back at 0% \(step 1\)"/);
  });

  it('a rollback before any traffic moved needs no drain report', async () => {
    const events = [
      makeEvent(MIGRATION_ID, 1, { type: 'created', from: S.PENDING, to: S.PENDING, weight: 0, step: -1, code: 'created' }),
      makeEvent(MIGRATION_ID, 2, { type: 'rolled-back', from: S.GATING, to: S.ROLLED_BACK, weight: 0, step: -1, code: 'alarm', reason: 'alarm in ALARM: Demo-NewVersion5xxAlarm' }),
    ];
    await notesFor(events);
    const frames: Frame[] = [{ record: { status: S.ROLLED_BACK, weight: 0, step: -1 }, events }];
    const outcome = await runScenario(deps(new StorySource(frames)), FAST);

    expect(outcome.error).toBeUndefined();
    expect(outcome.result?.residual).toBeUndefined();
    expect(lines.join('\n')).toContain('rolled back before any traffic moved: no drain to watch');
  });

  it('Ctrl-C during the wait stops it, destroys, and exits 130', async () => {
    const interrupt = new AbortController();
    const source = new StorySource([{ record: { status: S.BAKING, weight: 10, step: 0 }, events: [] }]);
    const original = source.status.bind(source);
    source.status = async (id: string) => {
      if (source.statusReads === 3) interrupt.abort();
      return original(id);
    };
    const outcome = await runScenario(deps(source, { signal: interrupt.signal }), FAST);

    expect(outcome.error).toBeInstanceOf(InterruptedError);
    expect(source.statusReads).toBe(4);
    expect(cdk.calls.at(-1)).toBe('destroy');
    expect(report(outcome, cdk.manualDestroy, () => {})).toBe(130);
  });

  it('Ctrl-C during a deploy lets it finish, deploys nothing more, and destroys', async () => {
    const interrupt = new AbortController();
    cdk.duringDeploy = (release) => release === '1' && interrupt.abort();
    const outcome = await runScenario(deps(new StorySource(rollbackStory()), { signal: interrupt.signal }), FAST);
    expect(outcome.error).toBeInstanceOf(InterruptedError);
    expect(cdk.calls).toEqual(['deploy 1', 'destroy']);
  });

  it('a destroy that fails makes the run fail, with the command to delete the stack by hand', async () => {
    await notesFor(ALL_EVENTS);
    cdk.failOn = 'destroy';
    const outcome = await runScenario(deps(new StorySource(rollbackStory(), undefined, drainEvents())), FAST);
    expect(outcome.error).toBeUndefined();
    expect(outcome.passed).toBe(false);
    const printed: string[] = [];
    expect(report(outcome, cdk.manualDestroy, (l) => printed.push(l))).toBe(1);
    expect(printed[0]).toBe(
      'npm run integ: the stack could not be destroyed (stack in DELETE_FAILED (injected)); it still costs money. Delete it by hand: npx cdk destroy CutoverInteg-test --force',
    );
  });

  it('an API that never answers 2XX fails before the bad release is deployed', async () => {
    traffic = new FakeTraffic(0);
    const outcome = await runScenario(deps(new StorySource(rollbackStory())), { ...FAST, timeouts: { apiAnswersMs: 20_000 } });
    expect((outcome.error as Error).message).toMatch(/the demo API through its live alias \(gave up after 20s\): expected 20 answers with a 2XX status; found 0 requests/);
    expect(cdk.calls).toEqual(['deploy 1', 'destroy']);
  });
});
