/** Records and events shaped like the core's, for adapter tests. */
import type { MigrationRecord } from '../../lambda/core/controller';
import { DEFAULT_JUDGE_CONFIG, INITIAL_JUDGE_MEMORY } from '../../lambda/core/judge';
import { MigrationStatus, type MigrationEvent } from '../../lambda/core/model';
import { MigrationPlan } from '../../lambda/core/plan';

const ZERO = { requests: 0, errors4xx: 0, errors5xx: 0 };

export function makeRecord(id: string, overrides: Partial<MigrationRecord> = {}): MigrationRecord {
  return {
    id,
    status: MigrationStatus.BAKING,
    weight: 10,
    step: 0,
    plan: MigrationPlan.CANARY_10PERCENT_5MINUTES.toSpec(),
    judge: DEFAULT_JUDGE_CONFIG,
    pinnedCapacity: 5,
    metadata: { functionName: 'api', aliasName: 'live', oldVersion: '1', newVersion: '2' },
    createdAtMs: 1_700_000_000_000,
    updatedAtMs: 1_700_000_000_000,
    stepTotals: { old: ZERO, new: ZERO },
    judgeMemory: INITIAL_JUDGE_MEMORY,
    probesSeenUntilMs: 1_700_000_000_000,
    capacityRestoring: false,
    capacityReleased: false,
    eventSeq: 0,
    ...overrides,
  };
}

export function makeEvent(migrationId: string, seq: number, overrides: Partial<MigrationEvent> = {}): MigrationEvent {
  return {
    migrationId,
    seq,
    atMs: 1_700_000_000_000 + seq * 1000,
    type: 'held',
    from: MigrationStatus.BAKING,
    to: MigrationStatus.BAKING,
    weight: 10,
    step: 0,
    reason: `event ${seq}`,
    code: 'baking',
    ...overrides,
  };
}
