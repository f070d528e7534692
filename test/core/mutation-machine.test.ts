/**
 * The state machine on its own (machine.ts): every edge it has, every edge it lacks, and the
 * event a transition writes. The controller relies on `transition` refusing a move that skips
 * `shifting` (a routing change recorded before it is made, docs/tick-protocol.md rule 2), so the
 * table is pinned here edge by edge rather than only through migrations that happen to use it.
 */
import { describe, expect, it } from 'vitest';
import { InvalidTransitionError, canTransition, transition, type MachineState } from '../../lambda/core/machine';
import { MigrationStatus as S, TERMINAL_STATUSES, type MigrationStatus } from '../../lambda/core/model';

const ALL: readonly MigrationStatus[] = Object.values(S);

// Written out independently of machine.ts: the edges the README and docs/tick-protocol.md name.
const EXPECTED: Readonly<Record<MigrationStatus, readonly MigrationStatus[]>> = {
  pending: ['gating', 'shifting', 'paused'],
  gating: ['shifting', 'paused'],
  shifting: ['baking', 'promoted', 'soaking', 'paused', 'rolled-back'],
  baking: ['shifting', 'paused'],
  promoted: ['soaking', 'shifting', 'paused'],
  soaking: ['complete', 'torn-down', 'shifting', 'paused'],
  complete: ['torn-down', 'shifting'],
  paused: ['pending', 'gating', 'shifting', 'baking', 'promoted', 'soaking'],
  'torn-down': [],
  'rolled-back': [],
};

const state = (status: MigrationStatus, extra: Partial<MachineState> = {}): MachineState => ({
  id: 'm-1',
  status,
  weight: 25,
  step: 1,
  eventSeq: 7,
  ...extra,
});

const change = { type: 'test', atMs: 1_000, decision: { code: 'c', reason: 'r' } };

describe('the state machine', () => {
  it('should know exactly the edges of the documented table, and no other', () => {
    for (const from of ALL) {
      for (const to of ALL) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(EXPECTED[from].includes(to));
      }
    }
  });

  it('should refuse every edge it lacks with InvalidTransitionError naming both ends', () => {
    for (const from of ALL) {
      for (const to of ALL) {
        if (to === from || EXPECTED[from].includes(to)) continue;
        const attempt = () => transition(state(from), to, change);
        expect(attempt, `${from} → ${to}`).toThrow(InvalidTransitionError);
        expect(attempt).toThrow(`a migration cannot go from ${from} to ${to}`);
      }
    }
  });

  it('should refuse a routing change that skips shifting: baking → rolled-back, gating → baking, baking → promoted', () => {
    // A rollback, a first step and a promotion all move traffic: each must be recorded first.
    expect(() => transition(state(S.BAKING), S.ROLLED_BACK, change)).toThrow(InvalidTransitionError);
    expect(() => transition(state(S.GATING), S.BAKING, change)).toThrow(InvalidTransitionError);
    expect(() => transition(state(S.BAKING), S.PROMOTED, change)).toThrow(InvalidTransitionError);
    const error = (() => {
      try {
        transition(state(S.GATING), S.BAKING, change);
      } catch (e) {
        return e as InvalidTransitionError;
      }
      return undefined;
    })();
    expect(error).toMatchObject({ name: 'InvalidTransitionError', from: 'gating', to: 'baking' });
  });

  it('should never let a terminal status go anywhere else', () => {
    for (const from of TERMINAL_STATUSES) {
      for (const to of ALL) {
        if (to === from) continue;
        expect(canTransition(from, to), `${from} → ${to}`).toBe(false);
        expect(() => transition(state(from), to, change)).toThrow(InvalidTransitionError);
      }
    }
  });

  it('should allow staying in any status, terminal ones included, to record a decision', () => {
    // A teardown after a rollback records "capacity-released" without leaving rolled-back.
    for (const status of ALL) {
      const event = transition(state(status), status, change);
      expect(event).toMatchObject({ from: status, to: status });
    }
  });

  it('should write the event: next seq, time, ends, decision, and the weight and step it leads to', () => {
    const event = transition(state(S.SHIFTING), S.BAKING, {
      type: 'advanced',
      atMs: 42,
      weight: 50,
      step: 2,
      decision: { code: 'healthy', reason: 'step passed', signals: { alarms: [] } },
    });
    expect(event).toEqual({
      migrationId: 'm-1',
      seq: 8,
      atMs: 42,
      type: 'advanced',
      from: 'shifting',
      to: 'baking',
      weight: 50,
      step: 2,
      reason: 'step passed',
      code: 'healthy',
      signals: { alarms: [] },
    });
  });

  it('should keep the weight and step of the state when the change names none, and add no signals key', () => {
    const event = transition(state(S.BAKING, { weight: 10, step: 0, eventSeq: 0 }), S.PAUSED, change);
    expect(event).toEqual({
      migrationId: 'm-1',
      seq: 1,
      atMs: 1_000,
      type: 'test',
      from: 'baking',
      to: 'paused',
      weight: 10,
      step: 0,
      reason: 'r',
      code: 'c',
    });
    expect('signals' in event).toBe(false);
  });

  it('should keep a weight or step of 0 given by the change (not fall back to the state)', () => {
    const event = transition(state(S.SHIFTING, { weight: 50, step: 1 }), S.ROLLED_BACK, { ...change, weight: 0, step: 0 });
    expect(event).toMatchObject({ weight: 0, step: 0 });
  });
});
