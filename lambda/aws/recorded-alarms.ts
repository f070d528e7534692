/**
 * The user's alarms for the controller on AWS: states pushed by EventBridge, confirmed with
 * `DescribeAlarms` when it matters.
 *
 * CloudWatch sends every state change of an alarm to EventBridge and guarantees that delivery. The
 * controller's alarm rule invokes the controller with each change of a watched alarm; the runtime
 * records the new state in the migration's partition and ticks at once, so an alarm entering ALARM
 * rolls back within seconds without waiting for the schedule. The tick's one Query (`load`) reads
 * those recorded states with the record, so a routine tick needs no call to CloudWatch for them.
 *
 * `DescribeAlarms` still confirms them (the core asks with the purpose `confirm`):
 * - at the gate and on every tick that may move the migration on (raise the weight, promote, end
 *   the soak), so no step forward rests on an event that might have gone astray;
 * - when the last confirmation is older than the judge's `alarmRecheckMs` (10 minutes by default);
 * - whenever a watched alarm has no recorded state yet (the first tick of a migration, or a Query
 *   that could not read them all), and in an invocation woken by an alarm event it could not
 *   record.
 * A confirmation writes back every state the recorded copy lacked or had older, and warns when it
 * found a change that no event had delivered.
 */
import type { AlarmReadPurpose, AlarmSignal, HealthPort } from '../core/ports';
import { describeError } from './clients';
import type { DynamoDbStateStore, StoredAlarmState } from './dynamodb-store';

export interface RecordedAlarmsProps {
  /** Reads the alarms from CloudWatch (`CloudWatchHealth`: DescribeAlarms). */
  readonly source: Pick<HealthPort, 'readAlarms'>;
  readonly store: Pick<DynamoDbStateStore, 'takeLoadedAlarmStates' | 'recordAlarmState'>;
  readonly migrationId: string;
  /** The watched alarms. @default - none: every read answers `[]` without a call */
  readonly alarmNames?: readonly string[];
  /**
   * A state change delivered to this very invocation. It counts even if recording it failed, so
   * the tick it triggered acts on it either way.
   * @default - none
   */
  readonly delivered?: StoredAlarmState;
  /**
   * Confirm on every read, whatever the purpose: for an invocation woken by an alarm event that
   * could not be recorded (no name, state or time in it), whose news only CloudWatch can tell.
   * @default false
   */
  readonly confirmEveryRead?: boolean;
  /** Current time, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Problems that did not fail the read. @default - console warning */
  readonly onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

export class RecordedAlarms implements Pick<HealthPort, 'readAlarms'> {
  private readonly names: readonly string[];
  private readonly now: () => number;
  private readonly warn: (message: string, detail?: Record<string, unknown>) => void;
  /** Read from the store once per invocation (the load's copy is served once). */
  private recorded: ReadonlyMap<string, StoredAlarmState> | undefined | null = null;

  constructor(private readonly props: RecordedAlarmsProps) {
    this.names = [...new Set(props.alarmNames ?? [])];
    this.now = props.now ?? Date.now;
    this.warn = props.onWarning ?? ((message, detail) => console.warn(message, detail ?? ''));
  }

  async readAlarms(purpose: AlarmReadPurpose = 'confirm'): Promise<readonly AlarmSignal[]> {
    if (this.names.length === 0) return [];
    const recorded = this.recordedStates();
    if (purpose === 'watch' && !this.props.confirmEveryRead && recorded && this.names.every((name) => recorded.has(name))) {
      return this.names.map((name) => signalOf(recorded.get(name)!));
    }
    const confirmed = await this.props.source.readAlarms('confirm');
    await this.writeBack(confirmed, recorded);
    // A change delivered to this invocation after CloudWatch answered is newer than the answer.
    return confirmed.map((alarm) => {
      const delivered = this.props.delivered;
      return delivered && delivered.name === alarm.name && delivered.changedAtMs > (alarm.changedAtMs ?? 0) ? signalOf(delivered) : alarm;
    });
  }

  /** The recorded states with the delivered change applied; undefined when the load had none. */
  private recordedStates(): ReadonlyMap<string, StoredAlarmState> | undefined {
    if (this.recorded !== null) return this.recorded;
    const loaded = this.props.store.takeLoadedAlarmStates(this.props.migrationId);
    const delivered = this.props.delivered;
    if (loaded && delivered && (loaded.get(delivered.name)?.changedAtMs ?? -1) < delivered.changedAtMs) {
      this.recorded = new Map([...loaded, [delivered.name, delivered]]);
    } else {
      this.recorded = loaded;
    }
    return this.recorded;
  }

  /** Records what the confirmation found and the recorded copy lacked; warns about missed events. */
  private async writeBack(confirmed: readonly AlarmSignal[], recorded: ReadonlyMap<string, StoredAlarmState> | undefined): Promise<void> {
    const recordedAtMs = this.now();
    for (const alarm of confirmed) {
      const known = recorded?.get(alarm.name);
      const changedAtMs = alarm.changedAtMs ?? 0;
      if (known && known.state === alarm.state && known.changedAtMs >= changedAtMs) continue;
      if (known && known.state !== alarm.state && known.changedAtMs < changedAtMs) {
        // Harmless for this tick (it acts on the confirmed state), but worth knowing: the
        // alarm rule or the controller's invocations are losing events.
        this.warn('alarm state change found by DescribeAlarms that no event had delivered', {
          alarm: alarm.name,
          recorded: known.state,
          confirmed: alarm.state,
        });
      }
      try {
        await this.props.store.recordAlarmState(this.props.migrationId, {
          ...alarm,
          changedAtMs,
          source: 'describe',
          recordedAtMs,
        });
      } catch (error) {
        // The confirmed states still reach this tick's judge; only the recorded copy stays
        // behind until a later event or confirmation writes it.
        this.warn('could not record a confirmed alarm state', { alarm: alarm.name, error: describeError(error) });
      }
    }
  }
}

function signalOf(state: StoredAlarmState): AlarmSignal {
  return { name: state.name, state: state.state, ...(state.reason ? { reason: state.reason } : {}), changedAtMs: state.changedAtMs };
}
