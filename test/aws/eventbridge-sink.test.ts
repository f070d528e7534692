import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsEventSink, EventPublishError, detailTypeOf } from '../../lambda/aws/eventbridge-sink';
import { MigrationStatus } from '../../lambda/core/model';
import { makeEvent } from './fixtures';

const ebMock = mockClient(EventBridgeClient);
const snsMock = mockClient(SNSClient);
const sink = new AwsEventSink({
  eventBridge: new EventBridgeClient({ region: 'us-east-1' }),
  sns: new SNSClient({ region: 'us-east-1' }),
  eventBusName: 'cutover-bus',
  topicArn: 'arn:aws:sns:us-east-1:123456789012:cutover',
  migrationKey: 'api:live',
  context: { functionName: 'api', oldVersion: '4', newVersion: '5' },
});

afterEach(() => {
  ebMock.reset();
  snsMock.reset();
});

describe('AwsEventSink', () => {
  it('should use the contract detail-types and derive the others from the event type', () => {
    expect(
      ['created', 'advanced', 'held', 'rolled-back', 'aborted', 'promoted', 'paused', 'completed', 'torn-down'].map(detailTypeOf),
    ).toEqual([
      'Migration Started',
      'Migration Advanced',
      'Migration Held',
      'Migration Rolled Back',
      'Migration Rolled Back',
      'Migration Promoted',
      'Migration Paused',
      'Migration Completed',
      'Migration Torn Down',
    ]);
    expect(detailTypeOf('capacity-pinned')).toBe('Migration Capacity Pinned');
  });

  it('should put every event on the bus with source cutover, in batches of at most 10', async () => {
    ebMock.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({ FailedEntryCount: 0, Entries: input.Entries.map((_, i) => ({ EventId: `e${i}` })) }));
    const events = Array.from({ length: 23 }, (_, i) => makeEvent('m1', i + 1));
    await sink.publish(events);
    const calls = ebMock.commandCalls(PutEventsCommand);
    expect(calls.map((c) => c.args[0].input.Entries?.length)).toEqual([10, 10, 3]);
    const entry = calls[0]!.args[0].input.Entries![0]!;
    expect(entry).toMatchObject({ Source: 'cutover', DetailType: 'Migration Held', EventBusName: 'cutover-bus' });
    expect(JSON.parse(entry.Detail!)).toEqual({ migrationKey: 'api:live', functionName: 'api', oldVersion: '4', newVersion: '5', ...events[0] });
    // "held" is not something people are paged for.
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('should notify the topic of rollbacks, pauses and promotions with a readable subject and message', async () => {
    ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }, { EventId: '2' }, { EventId: '3' }] });
    snsMock.on(PublishCommand).resolves({ MessageId: 'm' });
    await sink.publish([
      makeEvent('m1', 1, { type: 'rolled-back', to: MigrationStatus.ROLLED_BACK, weight: 0, step: 1, reason: "new side's 5XX rate is worse than old's", code: 'error-rate-5xx' }),
      makeEvent('m1', 2, { type: 'paused', to: MigrationStatus.PAUSED }),
      makeEvent('m1', 3, { type: 'promoted', to: MigrationStatus.PROMOTED, weight: 100 }),
    ]);
    const published = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(published.map((p) => p.Subject)).toEqual([
      'Cutover: api:live rolled back at 0% (step 2)',
      'Cutover: api:live paused at 10% (step 1)',
      'Cutover: api:live promoted to 100%',
    ]);
    expect(published[0]!.TopicArn).toBe('arn:aws:sns:us-east-1:123456789012:cutover');
    expect(published[0]!.Message).toContain("Why:    new side's 5XX rate is worse than old's");
    expect(published[0]!.Message).toContain('All traffic is back on the old version');
  });

  it('should keep SNS subjects within 100 printable ASCII characters', () => {
    const long = new AwsEventSink({ eventBridge: new EventBridgeClient({}), sns: new SNSClient({}), eventBusName: 'b', migrationKey: `${'f'.repeat(120)}:live→`, topicArn: 't' });
    const subject = long.subject(makeEvent('m', 1, { type: 'paused' }));
    expect(subject.length).toBeLessThanOrEqual(100);
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
  });

  it('should surface entries that PutEvents reports as failed, and still publish the rest', async () => {
    ebMock.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ EventId: 'ok' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }],
    });
    snsMock.on(PublishCommand).resolves({ MessageId: 'm' });
    const publish = sink.publish([makeEvent('m1', 1), makeEvent('m1', 2, { type: 'paused' })]);
    await expect(publish).rejects.toBeInstanceOf(EventPublishError);
    await expect(publish).rejects.toThrow(/event 2 \(paused\) on bus cutover-bus: ThrottlingException Rate exceeded/);
    // The paused event still reached the topic although its bus entry failed.
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('should report a failed PutEvents call and a failed SNS publish together', async () => {
    ebMock.on(PutEventsCommand).rejects(Object.assign(new Error('Service Unavailable'), { name: 'InternalException' }));
    snsMock.on(PublishCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const error = await sink.publish([makeEvent('m1', 7, { type: 'rolled-back' })]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventPublishError);
    expect((error as EventPublishError).failures).toEqual([
      'events 7 on bus cutover-bus: InternalException: Service Unavailable',
      'notification of event 7 (rolled-back): Throttling: Rate exceeded',
    ]);
  });

  it('should make no call for no events', async () => {
    await sink.publish([]);
    expect(ebMock.calls()).toHaveLength(0);
  });
});
