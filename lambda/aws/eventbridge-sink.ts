/**
 * EventSink on EventBridge and SNS.
 *
 * Every migration event goes to the event bus (`source: 'cutover'`); rollbacks, pauses,
 * promotions and failed shifts also go to the SNS topic as a readable message for people.
 * The event log in DynamoDB stays the record of truth: a publish that fails is reported to the
 * caller (the controller keeps the events and returns `publishError`), never silently dropped.
 */
import { PutEventsCommand, type EventBridgeClient, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { MigrationEvent } from '../core/model';
import type { EventSink } from '../core/ports';
import { describeError } from './clients';
import { EVENT_SOURCE, detailTypeOf } from './event-names';

export { DETAIL_TYPES, EVENT_SOURCE, PROBE_EVENT_SOURCE, PROBE_RESULT_DETAIL_TYPE, detailTypeOf } from './event-names';

/** Event types that people are told about on the SNS topic. */
export const NOTIFIED_TYPES: readonly string[] = [
  'rolled-back',
  'aborted',
  'paused',
  'promoted',
  'shift-failed',
  'state-damaged',
  'shared-outage',
  // After a rollback: how much still reached the new side, and whether it drained.
  'rollback-residual',
];

/** PutEvents accepts at most 10 entries per call. */
const MAX_ENTRIES = 10;
/** SNS subjects: at most 100 printable ASCII characters, no line breaks. */
const MAX_SUBJECT = 100;

export interface AwsEventSinkProps {
  readonly eventBridge: EventBridgeClient;
  readonly sns: SNSClient;
  /** Name or ARN of the event bus. */
  readonly eventBusName: string;
  /**
   * Topic for rollbacks, pauses and promotions.
   * @default - no notifications
   */
  readonly topicArn?: string;
  /** `<fn>:<alias>`, shown in every message and added to every event's detail. */
  readonly migrationKey: string;
  /**
   * Extra fields added to every event's detail (e.g. function name, versions).
   * @default {}
   */
  readonly context?: Readonly<Record<string, string>>;
}

/** Some events could not be put on the bus or sent to the topic. */
export class EventPublishError extends Error {
  constructor(
    readonly failures: readonly string[],
    readonly published: number,
  ) {
    super(`${failures.length} event publication(s) failed (${published} succeeded): ${failures.join('; ')}`);
    this.name = 'EventPublishError';
  }
}

export class AwsEventSink implements EventSink<MigrationEvent> {
  constructor(private readonly props: AwsEventSinkProps) {
    if (!props.eventBusName) throw new TypeError('eventBusName must be a non-empty string');
  }

  async publish(events: readonly MigrationEvent[]): Promise<void> {
    if (events.length === 0) return;
    const failures: string[] = [];
    let published = 0;

    const entries: PutEventsRequestEntry[] = events.map((event) => ({
      Source: EVENT_SOURCE,
      DetailType: detailTypeOf(event.type),
      EventBusName: this.props.eventBusName,
      Time: new Date(event.atMs),
      Detail: JSON.stringify({ migrationKey: this.props.migrationKey, ...(this.props.context ?? {}), ...event }),
    }));
    for (let i = 0; i < entries.length; i += MAX_ENTRIES) {
      const batch = entries.slice(i, i + MAX_ENTRIES);
      const batchEvents = events.slice(i, i + MAX_ENTRIES);
      try {
        const result = await this.props.eventBridge.send(new PutEventsCommand({ Entries: batch }));
        // PutEvents succeeds as a call even when some entries fail; each result is checked.
        (result.Entries ?? []).forEach((entry, j) => {
          if (entry.ErrorCode) {
            failures.push(`event ${batchEvents[j]?.seq} (${batchEvents[j]?.type}) on bus ${this.props.eventBusName}: ${entry.ErrorCode} ${entry.ErrorMessage ?? ''}`.trim());
          } else {
            published++;
          }
        });
        const unreported = batch.length - (result.Entries?.length ?? 0);
        if (unreported > 0 && (result.FailedEntryCount ?? 0) > 0) {
          failures.push(`${unreported} entries on bus ${this.props.eventBusName} without a result (FailedEntryCount ${result.FailedEntryCount})`);
        }
      } catch (error) {
        failures.push(`events ${batchEvents.map((e) => e.seq).join(', ')} on bus ${this.props.eventBusName}: ${describeError(error)}`);
      }
    }

    if (this.props.topicArn) {
      for (const event of events.filter((e) => NOTIFIED_TYPES.includes(e.type))) {
        try {
          await this.props.sns.send(
            new PublishCommand({ TopicArn: this.props.topicArn, Subject: this.subject(event), Message: this.message(event) }),
          );
          published++;
        } catch (error) {
          failures.push(`notification of event ${event.seq} (${event.type}): ${describeError(error)}`);
        }
      }
    }
    if (failures.length > 0) throw new EventPublishError(failures, published);
  }

  /** e.g. "Cutover: api:live rolled back at 10% (step 1)". */
  subject(event: MigrationEvent): string {
    const what: Record<string, string> = {
      'rolled-back': 'rolled back',
      aborted: 'aborted (rolled back)',
      paused: 'paused',
      promoted: 'promoted to 100%',
      'shift-failed': 'FAILED to shift traffic',
      'state-damaged': 'STOPPED: stored state damaged',
      'shared-outage': 'HOLDING: both versions failing',
    };
    const at = event.type === 'promoted' ? '' : ` at ${event.weight}% (step ${event.step + 1})`;
    const text = `Cutover: ${this.props.migrationKey} ${what[event.type] ?? event.type}${at}`;
    // SNS rejects subjects with non-ASCII or control characters, or longer than 100.
    const ascii = text.replace(/[^\x20-\x7e]/g, '?');
    return ascii.length <= MAX_SUBJECT ? ascii : `${ascii.slice(0, MAX_SUBJECT - 3)}...`;
  }

  message(event: MigrationEvent): string {
    const lines = [
      `Migration ${event.migrationId} (${this.props.migrationKey})`,
      `What:   ${event.type} (${event.from} -> ${event.to})`,
      `Why:    ${event.reason}`,
      `Code:   ${event.code}`,
      `Weight: ${event.weight}% on the new version, plan step ${event.step + 1}`,
      `When:   ${new Date(event.atMs).toISOString()}`,
      ...Object.entries(this.props.context ?? {}).map(([k, v]) => `${k}: ${v}`),
      '',
      event.type === 'paused'
        ? 'The weight is frozen until an operator sends resume, abort or promote.'
        : event.type === 'rolled-back' || event.type === 'aborted'
          ? 'All traffic is back on the old version, which stays pinned at full capacity until teardown.'
          : event.type === 'shift-failed'
            ? 'The controller could not change the alias; it will try again on the next tick. Check its logs.'
            : event.type === 'state-damaged'
              ? event.code === 'state-damaged-unrouted'
                ? 'The migration record is damaged AND the alias could not be moved to the old version: the controller retries every tick. Check the alias and the controller logs now.'
                : 'The migration record was damaged, so the controller moved all traffic to the old version and stopped the migration. The damaged record is kept (see Why). Start a new deploy once it is understood.'
              : event.type === 'shared-outage'
                ? 'Both versions are failing alike, so the controller holds the weight instead of blaming the new version, and goes on by itself once the old version recovers. Look for a shared cause (a dependency, the network, the data).'
                : 'The old version stays pinned at full capacity until teardown.',
    ];
    return lines.join('\n');
  }
}
