/** The checks of integ/assertions.ts: each failure names what was expected and what was found. */
import { describe, expect, it } from 'vitest';
import { MigrationStatus as S } from '../../lambda/core/model';
import { stateOf } from '../../ops/state';
import {
  assertAliasBack,
  assertResidual,
  assertRolledBack,
  missingNotifications,
  residualApplies,
  rolledBackYet,
} from '../../integ/assertions';
import { IntegAssertionError } from '../../integ/poll';
import { makeRecord } from '../aws/fixtures';
import { DRAINED, MIGRATION_ID, badReleaseEvents, drainEvents } from './fakes';

const rolledBack = (over = {}) => stateOf('aws', MIGRATION_ID, { kind: 'record', raw: makeRecord(MIGRATION_ID, { status: S.ROLLED_BACK, weight: 0, ...over }) }, []);

function failure(check: () => unknown): IntegAssertionError {
  try {
    check();
  } catch (error) {
    if (error instanceof IntegAssertionError) return error;
    throw error;
  }
  throw new Error('the check passed');
}

describe('assertRolledBack', () => {
  it('returns the rollback event of a 5XX rollback', () => {
    expect(assertRolledBack(rolledBack(), badReleaseEvents()).seq).toBe(4);
  });

  it('accepts the demo alarm, refuses another alarm or another reason', () => {
    expect(assertRolledBack(rolledBack(), badReleaseEvents({ code: 'alarm', reason: 'alarm in ALARM: Integ-NewVersion5xxAlarmA1B2' })).code).toBe('alarm');
    expect(failure(() => assertRolledBack(rolledBack(), badReleaseEvents({ code: 'alarm', reason: 'alarm in ALARM: Latency' }))).expected).toBe(
      "the demo's alarm on the new version's 5XX count",
    );
    const wrong = failure(() => assertRolledBack(rolledBack(), badReleaseEvents({ code: 'probe-desync', reason: 'desync on new' })));
    expect(wrong.message).toBe(`migration ${MIGRATION_ID}'s rollback reason: expected code error-rate-5xx or alarm; found code probe-desync: desync on new`);
  });

  it('refuses a log without a rollback, and a status other than rolled-back', () => {
    expect(failure(() => assertRolledBack(rolledBack(), badReleaseEvents().slice(0, 3))).found).toBe('events created, gate-passed, advanced');
    expect(failure(() => assertRolledBack(rolledBack({ status: S.BAKING, weight: 10 }), badReleaseEvents())).found).toMatch(/^status baking at 10%/);
  });
});

describe('rolledBackYet', () => {
  it('waits on a running migration, ends on a rollback, fails on paused and beyond-promoted', () => {
    const at = (status: S, weight: number, step = 0) => stateOf('aws', MIGRATION_ID, { kind: 'record', raw: makeRecord(MIGRATION_ID, { status, weight, step }) }, []);
    expect(rolledBackYet(at(S.BAKING, 10))).toBe(false);
    expect(rolledBackYet(at(S.GATING, 0, -1))).toBe(false);
    expect(rolledBackYet(at(S.ROLLED_BACK, 0))).toBe(true);
    for (const status of [S.PAUSED, S.SOAKING, S.COMPLETE, S.TORN_DOWN]) {
      expect(() => rolledBackYet(at(status, status === S.PAUSED ? 10 : 100, 1))).toThrow(IntegAssertionError);
    }
    const damaged = stateOf('aws', MIGRATION_ID, { kind: 'damaged', what: 'unreadable item' }, []);
    expect(failure(() => rolledBackYet(damaged)).found).toContain('damage: unreadable item');
  });
});

describe('assertAliasBack', () => {
  const versions = { oldVersion: '1', newVersion: '2' };
  it('passes on the old version alone', () => {
    expect(() => assertAliasBack({ FunctionVersion: '1' }, versions, 'fn:live')).not.toThrow();
    expect(() => assertAliasBack({ FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: { '2': 0 } } }, versions, 'fn:live')).not.toThrow();
  });
  it('fails on the new version as main', () => {
    expect(failure(() => assertAliasBack({ FunctionVersion: '2' }, versions, 'fn:live')).message).toBe(
      'alias fn:live after the rollback: expected main version 1 (the old one); found main version 2',
    );
  });
});

describe('residual', () => {
  it('applies once traffic had moved before the rollback', () => {
    const events = badReleaseEvents();
    expect(residualApplies(events, events[3]!)).toBe(true);
    const atGate = [events[0]!, { ...events[3]!, seq: 2, step: -1 }];
    expect(residualApplies(atGate, atGate[1]!)).toBe(false);
  });

  it('passes a drained report, fails one that did not drain or lacks the drain request', () => {
    const log = [...badReleaseEvents(), ...drainEvents()];
    expect(assertResidual(log, MIGRATION_ID)).toEqual(DRAINED);
    const notDrained = [...badReleaseEvents(), ...drainEvents({ ...DRAINED, drained: false, drainedAfterMs: null })];
    expect(failure(() => assertResidual(notDrained, MIGRATION_ID)).expected).toBe('the new side drained (code residual-drained)');
    expect(failure(() => assertResidual([...badReleaseEvents(), drainEvents()[1]!], MIGRATION_ID)).expected).toBe("a 'drain-requested' event");
  });
});

describe('missingNotifications', () => {
  it('lists every expected delivery when none arrived', () => {
    expect(missingNotifications([], MIGRATION_ID, true)).toEqual([
      `EventBridge "Migration Started" of ${MIGRATION_ID}`,
      `EventBridge "Migration Rolled Back" of ${MIGRATION_ID}`,
      `SNS message "rolled-back" of ${MIGRATION_ID}`,
      `EventBridge "Migration Rollback Residual" of ${MIGRATION_ID}`,
      `SNS message "rollback-residual" of ${MIGRATION_ID}`,
    ]);
  });

  it("ignores another migration's notifications", () => {
    const other = { via: 'events' as const, atMs: 1, detailType: 'Migration Rolled Back', detail: { migrationId: 'other:live:9', type: 'rolled-back' } };
    expect(missingNotifications([other], MIGRATION_ID, false)).toContain(`EventBridge "Migration Rolled Back" of ${MIGRATION_ID}`);
  });
});
