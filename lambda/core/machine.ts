/**
 * The migration state machine: which status may follow which, and the event every transition
 * writes. The controller moves a migration only through `transition`, so an impossible move is a
 * bug that fails loudly instead of a corrupted record.
 *
 *   pending → gating → shifting → baking → shifting → … → promoted → soaking → complete → torn-down
 *   any non-terminal → shifting → rolled-back (rollback / abort); any non-terminal → paused → back (resume)
 *
 * Every routing change passes through `shifting`: the controller records the change it is about
 * to make before making it (docs/tick-protocol.md), and leaves `shifting` once it saw it in effect.
 */
import { MigrationStatus as S, type Decision, type MigrationEvent, type MigrationStatus } from './model';

// Every edge into rolled-back, baking and promoted starts at shifting: a routing change is always
// recorded before it is made, so a move that skips shifting is a bug and is refused.
const ALLOWED: Readonly<Record<MigrationStatus, readonly MigrationStatus[]>> = {
  [S.PENDING]: [S.GATING, S.SHIFTING, S.PAUSED],
  [S.GATING]: [S.SHIFTING, S.PAUSED],
  // soaking: an operator's resume of a soak whose 100 % was changed outside puts it back first.
  [S.SHIFTING]: [S.BAKING, S.PROMOTED, S.SOAKING, S.PAUSED, S.ROLLED_BACK],
  [S.BAKING]: [S.SHIFTING, S.PAUSED],
  [S.PROMOTED]: [S.SOAKING, S.SHIFTING, S.PAUSED],
  [S.SOAKING]: [S.COMPLETE, S.TORN_DOWN, S.SHIFTING, S.PAUSED],
  [S.COMPLETE]: [S.TORN_DOWN, S.SHIFTING],
  [S.PAUSED]: [S.PENDING, S.GATING, S.SHIFTING, S.BAKING, S.PROMOTED, S.SOAKING],
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
