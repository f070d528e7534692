/**
 * RecordedAlarms: when the controller may answer from alarm states EventBridge delivered, and when
 * it must ask CloudWatch.
 */
import { describe, expect, it } from 'vitest';
import type { StoredAlarmState } from '../../lambda/aws/dynamodb-store';
import { RecordedAlarms, type RecordedAlarmsProps } from '../../lambda/aws/recorded-alarms';
import type { AlarmSignal } from '../../lambda/core/ports';

const T = 1_800_000_000_000;
const stored = (name: string, state: AlarmSignal['state'], changedAtMs: number, source: 'event' | 'describe' = 'event'): StoredAlarmState => ({
  name,
  state,
  changedAtMs,
  source,
  recordedAtMs: changedAtMs,
});

function setup(options: { recorded?: StoredAlarmState[] | undefined; cloudWatch?: AlarmSignal[]; failWrites?: boolean } & Partial<RecordedAlarmsProps> = {}) {
  const describes: string[] = [];
  const written: StoredAlarmState[] = [];
  const warnings: string[] = [];
  let loaded: ReadonlyMap<string, StoredAlarmState> | undefined =
    options.recorded === undefined ? undefined : new Map(options.recorded.map((r) => [r.name, r]));
  const alarms = new RecordedAlarms({
    source: {
      readAlarms: async (purpose) => {
        describes.push(String(purpose));
        return options.cloudWatch ?? [];
      },
    },
    store: {
      takeLoadedAlarmStates: () => {
        const value = loaded;
        loaded = undefined;
        return value;
      },
      recordAlarmState: async (_id, state) => {
        if (options.failWrites) throw new Error('ProvisionedThroughputExceededException');
        written.push(state);
        return true;
      },
    },
    migrationId: 'fn:live:2',
    alarmNames: ['errors', 'latency'],
    now: () => T + 60_000,
    onWarning: (message) => warnings.push(message),
    ...(options.delivered ? { delivered: options.delivered } : {}),
    ...(options.confirmEveryRead ? { confirmEveryRead: true } : {}),
    ...(options.alarmNames ? { alarmNames: options.alarmNames } : {}),
  });
  return { alarms, describes, written, warnings };
}

describe('RecordedAlarms', () => {
  it('should make no call at all when no alarm is watched', async () => {
    const { alarms, describes } = setup({ alarmNames: [] });
    expect(await alarms.readAlarms('confirm')).toEqual([]);
    expect(describes).toEqual([]);
  });

  it('should answer a routine read from the recorded states when every watched alarm has one', async () => {
    const { alarms, describes, written } = setup({ recorded: [stored('errors', 'OK', T), stored('latency', 'ALARM', T + 1)] });
    expect(await alarms.readAlarms('watch')).toEqual([
      { name: 'errors', state: 'OK', changedAtMs: T },
      { name: 'latency', state: 'ALARM', changedAtMs: T + 1 },
    ]);
    expect(describes).toEqual([]);
    expect(written).toEqual([]);
  });

  it('should ask CloudWatch on a routine read when a watched alarm has no recorded state, and record what it found', async () => {
    const cloudWatch: AlarmSignal[] = [
      { name: 'errors', state: 'OK', changedAtMs: T },
      { name: 'latency', state: 'OK', changedAtMs: T - 5 },
    ];
    const { alarms, describes, written } = setup({ recorded: [stored('errors', 'OK', T)], cloudWatch });
    expect(await alarms.readAlarms('watch')).toEqual(cloudWatch);
    expect(describes).toEqual(['confirm']);
    // Only the missing one is written: the other was already recorded as it is.
    expect(written).toEqual([{ name: 'latency', state: 'OK', changedAtMs: T - 5, source: 'describe', recordedAtMs: T + 60_000 }]);
  });

  it('should ask CloudWatch when the load could not read the states at all', async () => {
    const { alarms, describes } = setup({ recorded: undefined, cloudWatch: [] });
    await alarms.readAlarms('watch');
    expect(describes).toEqual(['confirm']);
  });

  it('should always ask CloudWatch to confirm, correct the record, and warn about a change no event delivered', async () => {
    const { alarms, describes, written, warnings } = setup({
      recorded: [stored('errors', 'OK', T), stored('latency', 'OK', T)],
      cloudWatch: [
        { name: 'errors', state: 'ALARM', reason: 'threshold crossed', changedAtMs: T + 30_000 },
        { name: 'latency', state: 'OK', changedAtMs: T },
      ],
    });
    const result = await alarms.readAlarms('confirm');
    expect(result.map((a) => a.state)).toEqual(['ALARM', 'OK']);
    expect(describes).toEqual(['confirm']);
    expect(written.map((w) => `${w.name}:${w.state}:${w.source}`)).toEqual(['errors:ALARM:describe']);
    expect(warnings).toEqual(['alarm state change found by DescribeAlarms that no event had delivered']);
  });

  it('should let a delivered change count in this tick, on a routine read and over an older CloudWatch answer', async () => {
    const delivered = stored('errors', 'ALARM', T + 10_000);
    const watch = setup({ recorded: [stored('errors', 'OK', T), stored('latency', 'OK', T)], delivered });
    expect((await watch.alarms.readAlarms('watch'))[0]).toMatchObject({ name: 'errors', state: 'ALARM' });
    expect(watch.describes).toEqual([]);
    // CloudWatch answered with the state before the change (eventual consistency): the change wins.
    const confirm = setup({
      recorded: [stored('errors', 'OK', T), stored('latency', 'OK', T)],
      cloudWatch: [
        { name: 'errors', state: 'OK', changedAtMs: T },
        { name: 'latency', state: 'OK', changedAtMs: T },
      ],
      delivered,
    });
    expect((await confirm.alarms.readAlarms('confirm'))[0]).toMatchObject({ name: 'errors', state: 'ALARM' });
  });

  it('should confirm on every read when told to (an alarm event it could not record)', async () => {
    const { alarms, describes } = setup({ recorded: [stored('errors', 'OK', T), stored('latency', 'OK', T)], confirmEveryRead: true });
    await alarms.readAlarms('watch');
    expect(describes).toEqual(['confirm']);
  });

  it('should still return the confirmed states when recording them fails, and warn', async () => {
    const { alarms, warnings } = setup({ recorded: undefined, cloudWatch: [{ name: 'errors', state: 'ALARM', changedAtMs: T }], failWrites: true, alarmNames: ['errors'] });
    expect(await alarms.readAlarms('confirm')).toEqual([{ name: 'errors', state: 'ALARM', changedAtMs: T }]);
    expect(warnings).toEqual(['could not record a confirmed alarm state']);
  });

  it('should let a CloudWatch failure fail the read (the core then counts alarms as unavailable)', async () => {
    const alarms = new RecordedAlarms({
      source: { readAlarms: async () => Promise.reject(new Error('Throttling: Rate exceeded')) },
      store: { takeLoadedAlarmStates: () => undefined, recordAlarmState: async () => true },
      migrationId: 'fn:live:2',
      alarmNames: ['errors'],
    });
    await expect(alarms.readAlarms('watch')).rejects.toThrow(/Rate exceeded/);
  });
});
