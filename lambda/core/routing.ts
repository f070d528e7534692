/**
 * The routing half of the tick protocol (docs/tick-protocol.md): how the controller changes the
 * share of traffic on the new side so that any number of ticks and commands running at once, or a
 * tick that dies anywhere, can never leave the routing at a weight the record does not know.
 *
 * ## The rules, in order
 * 1. **Record, then route.** A change is first saved in the record as a `PendingShift` (status
 *    `shifting`) with the store's version check. A tick that loses that save has touched nothing
 *    and stops. So at any moment the routing is at the record's `weight` or at its `shift.weight`.
 * 2. **Made at most once.** The change is written against the routing revision saved with it.
 *    Every tick that finds the change pending tries it with that same revision, so exactly one
 *    write can succeed; the others see a conflict, read the routing back, and find it made.
 * 3. **Settled before anything else.** A tick or command that loads a record with a pending change
 *    first reads the routing: at the target, it records the change in effect; untouched (same
 *    revision), it makes it; anything else was changed outside the controller: it pauses and
 *    records the weight it found, so the record still tells the truth.
 * 4. **Rollbacks always land.** A rollback replaces any pending change, has no expected revision
 *    (it writes against whatever it finds, retrying conflicts up to `ROLLBACK_ATTEMPTS` times) and
 *    never waits for anything. A rollback still pending after that is settled by the next tick.
 * 5. **Saved, then in effect.** The change counts (weight, step, a fresh bake) only once a write
 *    or a read shows it in effect; while a source still propagates (`settled: false`) the record
 *    stays `shifting` and the next tick looks again.
 */
import { startResidualWatch } from './residual';
import type { Draft } from './draft';
import { MigrationStatus as S, type Decision, type MigrationStatus } from './model';
import { RevisionConflictError, type TrafficPort, type TrafficState } from './ports';
import { ZERO_SIDE, type PendingShift } from './record';

/** Tries a rollback makes against routing conflicts in one tick before it reports a failure. */
export const ROLLBACK_ATTEMPTS = 4;

/** Weights closer than this are the same (a weight read back may carry float noise). */
const WEIGHT_EPSILON = 1e-6;

export function sameWeight(a: number, b: number): boolean {
  return Math.abs(a - b) < WEIGHT_EPSILON;
}

/** A weight change that could not be made; the controller records it and rethrows. */
export class TrafficShiftError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = 'TrafficShiftError';
  }
}

/** How a change ended for this tick. */
export type ShiftOutcome =
  /** In effect: the record shows the new weight and status. */
  | 'in-effect'
  /** Made, still propagating: the record stays `shifting`. */
  | 'pending'
  /** Someone else changed the routing: the migration is paused with the weight found. */
  | 'outside';

/** A change the controller wants to make. */
export interface ShiftRequest {
  readonly kind: PendingShift['kind'];
  readonly weight: number;
  readonly step: number;
  readonly then: MigrationStatus;
  /** The event written once it is in effect. */
  readonly type: string;
  readonly decision: Pick<Decision, 'code' | 'reason'> & Partial<Pick<Decision, 'signals'>>;
}

export class Routing {
  constructor(
    private readonly traffic: TrafficPort,
    /** Saves the draft now, with the version check; throws when another writer saved first. */
    private readonly checkpoint: (draft: Draft) => Promise<void>,
  ) {}

  /** Rule 1 then 2: records the change, then makes it. */
  async change(draft: Draft, request: ShiftRequest): Promise<ShiftOutcome> {
    const record = draft.record;
    let expectedRevision: string | undefined;
    if (request.kind !== 'rollback') {
      expectedRevision = record.trafficRevision;
      if (expectedRevision === undefined) {
        // The first change of a migration: learn the revision, and check nobody moved the weight.
        const current = await this.read(draft);
        if (!sameWeight(current.weight, record.weight)) return this.outside(draft, current);
        expectedRevision = current.revision;
      }
    }
    const from = record.shift?.from ?? (record.status === S.PAUSED ? (record.pausedFrom ?? S.GATING) : record.status);
    const shift: PendingShift = {
      kind: request.kind,
      weight: request.weight,
      fromWeight: record.weight,
      step: request.step,
      then: request.then,
      from,
      type: request.type,
      code: request.decision.code,
      reason: request.decision.reason,
      ...(expectedRevision !== undefined ? { expectedRevision } : {}),
      requestedAtMs: draft.current(),
    };
    draft.move(
      S.SHIFTING,
      'shifting',
      { ...request.decision, reason: `${request.decision.reason} → setting the new side's weight to ${request.weight}%` },
      { shift },
    );
    await this.checkpoint(draft);
    return this.apply(draft);
  }

  /** Rule 3: settles a change found pending in a loaded record. */
  async settle(draft: Draft): Promise<ShiftOutcome> {
    const shift = draft.record.shift!;
    const current = await this.read(draft);
    if (sameWeight(current.weight, shift.weight)) return this.inEffect(draft, current);
    if (shift.kind === 'rollback') return this.apply(draft);
    if (shift.appliedRevision === undefined && current.revision === shift.expectedRevision) return this.apply(draft);
    return this.outside(draft, current);
  }

  /** Rule 2 and 4: makes the pending change. */
  private async apply(draft: Draft): Promise<ShiftOutcome> {
    const shift = draft.record.shift!;
    // A rollback first tries the revision it last knew (no read on the happy path), then what it finds.
    let revision = shift.kind === 'rollback' ? draft.record.trafficRevision : shift.expectedRevision;
    for (let attempt = 1; ; attempt++) {
      if (revision === undefined) {
        const current = await this.read(draft);
        if (sameWeight(current.weight, shift.weight)) return this.inEffect(draft, current);
        revision = current.revision;
      }
      let written: TrafficState | undefined;
      let conflict: RevisionConflictError | undefined;
      try {
        written = await this.traffic.setWeight(shift.weight, revision);
      } catch (error) {
        if (!(error instanceof RevisionConflictError)) throw this.failed(draft, error);
        conflict = error;
      }
      // Outside the try: only the routing call's own failure is a routing failure.
      if (written) return this.inEffect(draft, written);
      const current = await this.read(draft);
      // A twin settling the same change made it with the same revision: it is in effect.
      if (sameWeight(current.weight, shift.weight)) return this.inEffect(draft, current);
      if (shift.kind !== 'rollback') return this.outside(draft, current);
      if (attempt >= ROLLBACK_ATTEMPTS) throw this.failed(draft, conflict!, attempt);
      revision = current.revision;
    }
  }

  /** Rule 5: records what the routing shows for the pending change. */
  private inEffect(draft: Draft, state: TrafficState): ShiftOutcome {
    const shift = draft.record.shift!;
    if (state.settled === false) {
      draft.patch({ shift: { ...shift, appliedRevision: state.revision }, trafficRevision: state.revision });
      return 'pending';
    }
    const now = draft.current();
    const paused = draft.record.status === S.PAUSED;
    // A new step, promotion bake or soak starts its evidence from zero.
    const phase =
      shift.then === S.ROLLED_BACK
        ? {}
        : { phaseStartedAtMs: now, lastWindowEndMs: now, lastWindowReadMs: now, stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE } };
    draft.omit('shift');
    draft.move(
      paused ? S.PAUSED : shift.then,
      shift.type,
      { code: shift.code, reason: shift.reason },
      { weight: shift.weight, step: shift.step, trafficRevision: state.revision, ...phase, ...(paused ? { pausedFrom: shift.then } : {}) },
    );
    // A rollback is not done until the new side is empty: watch it from now (residual.ts).
    if (shift.then === S.ROLLED_BACK && !paused) startResidualWatch(draft, shift.code);
    return 'in-effect';
  }

  /** Someone else moved the routing: pause and record what was found, rather than fight them. */
  outside(draft: Draft, current: TrafficState): ShiftOutcome {
    const record = draft.record;
    const expected = record.shift ? `${record.shift.fromWeight}% or ${record.shift.weight}%` : `${record.weight}%`;
    const back = record.shift?.from ?? (record.status === S.PAUSED ? (record.pausedFrom ?? S.GATING) : record.status);
    draft.omit('shift');
    draft.move(
      S.PAUSED,
      'paused',
      {
        code: 'weight-changed-outside',
        reason: `routing was changed outside the controller (weight ${current.weight}%, the record expected ${expected}): paused at the weight found for a human to decide`,
      },
      { pausedFrom: back === S.SHIFTING ? S.GATING : back, weight: current.weight, trafficRevision: current.revision },
    );
    return 'outside';
  }

  private async read(draft: Draft): Promise<TrafficState> {
    try {
      return await this.traffic.getWeight();
    } catch (error) {
      throw this.failed(draft, error);
    }
  }

  /** Records that the change could not be made (it stays pending) and returns the error to throw. */
  private failed(draft: Draft, error: unknown, attempts?: number): TrafficShiftError {
    if (error instanceof TrafficShiftError) return error;
    const shift = draft.record.shift;
    const what = shift ? `setting the new side's weight to ${shift.weight}% (${shift.code})` : "reading the new side's weight";
    const tries = attempts ? ` after ${attempts} attempts` : '';
    const next = shift ? '; the change stays recorded and the next tick settles it' : '';
    const message = `${what} failed${tries}: ${errorMessage(error)}${next}`;
    draft.move(draft.record.status, 'shift-failed', { code: 'shift-failed', reason: message });
    return new TrafficShiftError(message, error);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
