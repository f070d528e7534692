/**
 * After a rollback: is the new side really empty? (The incident's last five hours: ~10 % of
 * requests still reached the faulty fleet over Keep-Alive connections and stale DNS caches until
 * engineers closed them by hand.)
 *
 * A rollback is in effect once the routing says weight 0, but clients that cached a DNS answer or
 * keep a connection open still reach the new side. So, from the moment the rollback is in effect,
 * the controller keeps ticking a rolled-back migration until the new side is drained:
 *
 * 1. **Drain actively, once** (`TrafficPort.drain`, when the routing has one): e.g. the new
 *    fleet's load balancer shortens its client Keep-Alive so clients reconnect and resolve again.
 *    A failed request is noted in the timeline and the watch goes on (the drain only speeds it up).
 * 2. **Watch one health window at a time** (the same source the judge reads), adding up the new
 *    side's requests. Drained: a whole window whose request rate is at most 1 % of the new side's
 *    peak rate during the migration (`newPeakPerMinute`, kept by the step watch).
 * 3. **Report once** (event `rollback-residual`, notified): requests after the rollback, wrong
 *    answers after it, and how long the new side took to drain; or, after `MAX_WATCH_MS`, that it
 *    did not drain (people must look: it still receives traffic).
 *
 * Wrong answers are what a client saw; the controller cannot see them. When the rollback was made
 * because a probe found a desync, every request answered by the new side after it may have been a
 * wrong answer, so that count is reported as the bound (`wrongAnswersBound: true`); after any other
 * rollback it is 0. The rehearsal, whose clients check every answer, reports the exact count.
 *
 * Safe under the tick protocol: the watch only reads and records. The drain request is idempotent
 * (two ticks may both make it), and the record's version check lets one tick's window count.
 */
import type { Draft } from './draft';
import { MigrationStatus as S } from './model';
import type { HealthPort, HealthWindow, TrafficPort } from './ports';

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The watch of a rolled-back migration's new side, kept in the record. */
export interface ResidualWatch {
  /** When the rollback was in effect, epoch ms. */
  readonly sinceMs: number;
  /** The new side's peak request rate during the migration, per minute. */
  readonly peakPerMinute: number;
  /** The rollback's reason code (a desync makes every later answer a possible wrong one). */
  readonly causeCode: string;
  /** New-side requests counted since the rollback. */
  readonly requests: number;
  /** Where the next window starts. */
  readonly lastWindowEndMs: number;
  /** When the last window was read (one read per health window). */
  readonly lastReadMs: number;
  /** True once the routing's drain was asked for (or the routing has none). */
  readonly drainRequested: boolean;
  /** Set when the watch ended: drained, or given up after `MAX_WATCH_MS`. */
  readonly endedAtMs?: number;
  /** True once the drain was undone (after teardown). */
  readonly drainUndone?: boolean;
}

/** What the `rollback-residual` event reports (`signals.residual`). */
export interface ResidualReport {
  readonly requestsAfterRollback: number;
  readonly wrongAnswersAfterRollback: number;
  /** True when `wrongAnswersAfterRollback` is an upper bound (the rollback was for a desync). */
  readonly wrongAnswersBound: boolean;
  /** From the rollback to the end of the first window at or below the threshold; null if not drained. */
  readonly drainedAfterMs: number | null;
  readonly drained: boolean;
  readonly peakRequestsPerMinute: number;
  readonly thresholdRequestsPerMinute: number;
  /** Whether the routing drained actively (`TrafficPort.drain`). */
  readonly activeDrain: boolean;
}

/** The new side counts as drained at or below this share of its peak rate. */
export const DRAINED_SHARE = 0.01;
/** The watch gives up (and says the new side did not drain) this long after the rollback. */
export const MAX_WATCH_MS = 60 * 60_000;
/** Reason codes of rollbacks for a desync (probe findings on the new side). */
const DESYNC_CODES: readonly string[] = ['probe-desync'];

/** Starts the watch when a rollback comes into effect after traffic moved (nothing to watch otherwise). */
export function startResidualWatch(draft: Draft, causeCode: string): void {
  const record = draft.record;
  if (record.step < 0 && (record.newPeakPerMinute ?? 0) === 0) return;
  const now = draft.current();
  draft.patch({
    residual: {
      sinceMs: now,
      peakPerMinute: record.newPeakPerMinute ?? 0,
      causeCode,
      requests: 0,
      lastWindowEndMs: now,
      lastReadMs: now,
      drainRequested: false,
    },
  });
}

/** Keeps the step watch's peak of the new side's request rate (per minute) up to date. */
export function notePeak(draft: Draft, window: HealthWindow): void {
  const minutes = Math.max(window.toMs - window.fromMs, 1) / 60_000;
  const rate = window.new.requests / minutes;
  if (rate > (draft.record.newPeakPerMinute ?? 0)) draft.patch({ newPeakPerMinute: rate });
}

export class ResidualWatcher {
  constructor(private readonly deps: { readonly traffic: TrafficPort; readonly health: HealthPort }) {}

  /** One tick of the watch of a rolled-back migration (nothing once it ended). */
  async watch(draft: Draft): Promise<void> {
    const watch = draft.record.residual;
    if (draft.record.status !== S.ROLLED_BACK || !watch || watch.endedAtMs !== undefined) return;
    const { traffic, health } = this.deps;
    if (!watch.drainRequested) {
      const drain = traffic.drain?.bind(traffic);
      let reason = 'the routing drains by itself (each request is routed anew): nothing to close';
      if (drain) {
        try {
          reason = await drain();
        } catch (error) {
          reason = `could not ask the new side to drain (${errorMessage(error)}); watching it drain by itself`;
        }
      }
      draft.move(S.ROLLED_BACK, 'drain-requested', { code: 'drain-requested', reason }, { residual: { ...watch, drainRequested: true } });
    }
    const current = draft.record.residual!;
    const now = draft.current();
    const threshold = current.peakPerMinute * DRAINED_SHARE;
    if (now - current.lastReadMs >= draft.record.plan.healthWindowMs) {
      let window: HealthWindow | undefined;
      try {
        window = await health.readWindow(current.lastWindowEndMs, now);
      } catch {
        window = undefined; // missing: the same minutes are read on a later tick
      }
      draft.patch({ residual: { ...current, lastReadMs: now } });
      if (window && window.toMs > current.lastWindowEndMs) {
        const requests = current.requests + window.new.requests;
        const minutes = (window.toMs - window.fromMs) / 60_000;
        const drained = window.new.requests / minutes <= threshold;
        const next = { ...draft.record.residual!, requests, lastWindowEndMs: window.toMs };
        draft.patch({ residual: next });
        if (drained) this.report(draft, next, window.toMs - current.sinceMs);
      }
    }
    if (draft.record.residual!.endedAtMs === undefined && now - current.sinceMs >= MAX_WATCH_MS) this.report(draft, draft.record.residual!, null);
    // Torn down while it drained: the drain is undone now that the watch ended.
    if (draft.record.residual!.endedAtMs !== undefined) await this.undrain(draft);
  }

  /**
   * Undoes the routing's drain (e.g. the new load balancer's client Keep-Alive back to its own
   * setting) once the migration is torn down AND the watch has ended, whichever comes last: while
   * the new side still drains, the drain stays. A failure is recorded, never thrown (the drain only
   * shortens connections).
   */
  async undrain(draft: Draft): Promise<void> {
    const { residual, capacityReleased, capacityReleasing } = draft.record;
    const undrain = this.deps.traffic.undrain?.bind(this.deps.traffic);
    if (!undrain || !residual?.drainRequested || residual.drainUndone) return;
    if (!capacityReleased && !capacityReleasing) return;
    if (residual.endedAtMs === undefined) {
      draft.move(S.ROLLED_BACK, 'drain-kept', {
        code: 'drain-kept',
        reason: 'the new side is still draining: its drain stays, and is undone when the watch ends',
      });
      return;
    }
    let reason: string;
    try {
      reason = await undrain();
    } catch (error) {
      reason = `could not undo the drain (${errorMessage(error)}): undo it by hand`;
    }
    draft.move(S.ROLLED_BACK, 'drain-undone', { code: 'drain-undone', reason }, { residual: { ...residual, drainUndone: true } });
  }

  private report(draft: Draft, watch: ResidualWatch, drainedAfterMs: number | null): void {
    const bound = DESYNC_CODES.includes(watch.causeCode);
    const residual: ResidualReport = {
      requestsAfterRollback: watch.requests,
      wrongAnswersAfterRollback: bound ? watch.requests : 0,
      wrongAnswersBound: bound,
      drainedAfterMs,
      drained: drainedAfterMs !== null,
      peakRequestsPerMinute: Math.round(watch.peakPerMinute * 100) / 100,
      thresholdRequestsPerMinute: Math.round(watch.peakPerMinute * DRAINED_SHARE * 100) / 100,
      activeDrain: this.deps.traffic.drain !== undefined,
    };
    const reason =
      drainedAfterMs !== null
        ? `new side drained ${Math.round(drainedAfterMs / 1000)} s after the rollback: ${watch.requests} requests reached it meanwhile` +
          (bound ? ` (each may have been a wrong answer: the rollback was for a desync)` : '')
        : `new side still receives requests ${Math.round(MAX_WATCH_MS / 60_000)} min after the rollback (${watch.requests} so far): close its connections and check clients' DNS caches`;
    draft.move(
      S.ROLLED_BACK,
      'rollback-residual',
      { code: drainedAfterMs !== null ? 'residual-drained' : 'residual-not-drained', reason, signals: { residual } },
      { residual: { ...watch, endedAtMs: draft.current() } },
    );
  }
}
