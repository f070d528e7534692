/**
 * The migration state machine: which status may follow which, and the event every transition
 * writes. The controller moves a migration only through `transition`, so an impossible move is a
 * bug that fails loudly instead of a corrupted record.
 *
 *   pending → gating → (shifting ⇄) baking → … → promoted → soaking → complete → torn-down
 *   any non-terminal → rolled-back (rollback / abort); any non-terminal → paused → back (resume)
 */
import { MigrationStatus as S, type Decision, type MigrationEvent, type MigrationStatus } from './model';

const ALLOWED: Readonly<Record<MigrationStatus, readonly MigrationStatus[]>> = {
  [S.PENDING]: [S.GATING, S.PAUSED, S.ROLLED_BACK],
  [S.GATING]: [S.SHIFTING, S.BAKING, S.PROMOTED, S.PAUSED, S.ROLLED_BACK],
  [S.SHIFTING]: [S.BAKING, S.PROMOTED, S.PAUSED, S.ROLLED_BACK],
  [S.BAKING]: [S.SHIFTING, S.BAKING, S.PROMOTED, S.PAUSED, S.ROLLED_BACK],
  [S.PROMOTED]: [S.SOAKING, S.PAUSED, S.ROLLED_BACK],
  [S.SOAKING]: [S.COMPLETE, S.TORN_DOWN, S.PAUSED, S.ROLLED_BACK],
  [S.COMPLETE]: [S.TORN_DOWN, S.ROLLED_BACK],
  [S.PAUSED]: [S.PENDING, S.GATING, S.SHIFTING, S.BAKING, S.PROMOTED, S.SOAKING, S.ROLLED_BACK],
  [S.TORN_DOWN]: [],
  [S.ROLLED_BACK]: [],
};

/** An attempt to move a migration along an edge the state machine does not have. */
export class InvalidTransitionError extends Error {
  constructor(
    readonly from: MigrationStatus,
    readonly to: MigrationStatus,
  ) {
    super(`a migration cannot go from ${from} to ${to}`);
    this.name = 'InvalidTransitionError';
  }
}

export function canTransition(from: MigrationStatus, to: MigrationStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** The fields of the record that a transition touches. */
export interface MachineState {
  readonly id: string;
  readonly status: MigrationStatus;
  readonly weight: number;
  readonly step: number;
  readonly eventSeq: number;
}

/**
 * Moves `state` to `to` (or keeps its status when `to` is the same and `type` just records a
 * decision) and returns the event that records it. Throws `InvalidTransitionError` on a move the
 * machine does not allow.
 */
export function transition(
  state: MachineState,
  to: MigrationStatus,
  change: {
    readonly type: string;
    readonly atMs: number;
    readonly weight?: number;
    readonly step?: number;
    readonly decision: Pick<Decision, 'reason' | 'code'> & Partial<Pick<Decision, 'signals'>>;
  },
): MigrationEvent {
  if (to !== state.status && !canTransition(state.status, to)) {
    throw new InvalidTransitionError(state.status, to);
  }
  return {
    migrationId: state.id,
    seq: state.eventSeq + 1,
    atMs: change.atMs,
    type: change.type,
    from: state.status,
    to,
    weight: change.weight ?? state.weight,
    step: change.step ?? state.step,
    reason: change.decision.reason,
    code: change.decision.code,
    ...(change.decision.signals ? { signals: change.decision.signals } : {}),
  };
}
