/**
 * The old side's capacity rules: pinned at its starting scale from the gate until an explicit
 * teardown, restored when it falls below the pin, and released only by a teardown that was
 * recorded first.
 *
 * Pin and restore only ever add capacity and are idempotent, so two ticks doing them at once, or
 * a tick that dies after one, is harmless. Release is the one capacity change that can hurt (a
 * rollback needs the old side at full scale), so it follows the same write-ahead rule as routing:
 * the teardown is saved (`capacityReleasing`) before the pin is released, and a tick that finds
 * the flag still set releases again. Two racing commands cannot both win the save, so a release
 * never happens for a migration that an abort rolled back at the same moment.
 */
import type { Draft } from './draft';
import type { CapacityPort, CapacityStatus } from './ports';

export class CapacityKeeper {
  constructor(
    private readonly capacity: CapacityPort,
    /** Saves the draft now, with the version check; throws when another writer saved first. */
    private readonly checkpoint: (draft: Draft) => Promise<void>,
  ) {}

  /**
   * Reads the old side's capacity, pins it on first use, and asks for a restore when it fell
   * below the pin. Returns undefined when capacity is not managed (or already released).
   */
  async ensure(draft: Draft): Promise<CapacityStatus | undefined> {
    let pinned = draft.record.pinnedCapacity;
    if (pinned === 0 || draft.record.capacityReleased || draft.record.capacityReleasing) return undefined;
    let status = await this.capacity.read();
    if (pinned === undefined) {
      pinned = Math.max(status.current, status.desired ?? 0);
      draft.patch({ pinnedCapacity: pinned });
      if (pinned === 0) return undefined;
    }
    if (status.pinned !== pinned) {
      status = await this.capacity.pin(pinned);
      draft.move(draft.record.status, 'capacity-pinned', {
        code: 'capacity-pinned',
        reason: `old side pinned at ${pinned} units until teardown`,
      });
    }
    const short = status.current < pinned || !status.ready;
    if (short && !draft.record.capacityRestoring) {
      const before = status;
      status = await this.capacity.restore(pinned);
      draft.move(
        draft.record.status,
        'capacity-restoring',
        {
          code: 'capacity-below-pin',
          reason: `${shortfall(before, pinned)}: restoring, no weight increase until it is back`,
          signals: { capacity: before },
        },
        { capacityRestoring: true },
      );
    } else if (short) {
      // Ask again on every tick: restore is idempotent and the platform may have dropped the request.
      status = await this.capacity.restore(pinned);
    } else if (draft.record.capacityRestoring) {
      draft.move(
        draft.record.status,
        'capacity-restored',
        { code: 'capacity-restored', reason: `old side back at ${units(status.current, pinned)}`, signals: { capacity: status } },
        { capacityRestoring: false },
      );
    }
    return status;
  }

  /**
   * Releases the pin after `record` (a teardown already moved into the draft) is saved with
   * `capacityReleasing`, then records that it is released.
   */
  async release(draft: Draft): Promise<void> {
    if (draft.record.pinnedCapacity === 0 || draft.record.capacityReleased) {
      draft.patch({ capacityReleased: true });
      draft.omit('capacityReleasing');
      return;
    }
    draft.patch({ capacityReleasing: true });
    await this.checkpoint(draft);
    await this.finishRelease(draft);
  }

  /** Releases a pin whose teardown was saved but whose release was not confirmed (idempotent). */
  async finishRelease(draft: Draft): Promise<void> {
    await this.capacity.release();
    draft.patch({ capacityReleased: true });
    draft.omit('capacityReleasing');
  }
}

/**
 * Why the old side counts as short of its pin. "Fell to X of Y" only when it has fewer units than
 * the pin: a side at or above the pin that is short because its units are not all ready (warming
 * up, provisioned concurrency IN_PROGRESS, a pin being applied) would otherwise read "fell to 3 of
 * 2 units". The status carries no count of ready units, only `ready` and the platform's `detail`.
 */
function shortfall(status: CapacityStatus, pinned: number): string {
  const detail = status.detail ? ` (${status.detail})` : '';
  if (status.current < pinned) return `old side fell to ${status.current} of ${pinned} units${status.ready ? '' : ' (not ready)'}${detail}`;
  return `old side at ${units(status.current, pinned)} but not ready${detail}`;
}

/** `10 of 10 units`, or `12 units (pinned at 10)` above the pin. */
function units(current: number, pinned: number): string {
  return current > pinned ? `${current} units (pinned at ${pinned})` : `${current} of ${pinned} units`;
}
