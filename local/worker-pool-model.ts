/**
 * What a local `WorkerPool` says of itself and takes (worker-pool.ts): its errors, options,
 * scaling events and snapshots, apart from the pool's mechanics so that the readers of these
 * shapes (the report, the live view, the dashboard) need not read the pool.
 */
import type { Clock } from '../lambda/core/ports';

/** Thrown (or rejected) when a request cannot get a worker: the queue is full or it waited too long. */
export class PoolSaturatedError extends Error {
  constructor(
    readonly reason: 'queue-full' | 'queue-timeout',
    message: string,
  ) {
    super(message);
    this.name = 'PoolSaturatedError';
  }
}

/** Rejected for requests still waiting when the pool is closed, and for any later request. */
export class PoolClosedError extends Error {
  constructor() {
    super('worker pool is closed');
    this.name = 'PoolClosedError';
  }
}

/** Autoscaler settings. */
export interface AutoscalerOptions {
  /**
   * How often the autoscaler evaluates on its own; 0 = only when `evaluate()` is called.
   * @default 1000
   */
  readonly intervalMs?: number;
  /**
   * Average share of warm workers that should be busy; the pool is sized to
   * ceil(demand / targetUtilisation). Between 0 (exclusive) and 1.
   * @default 0.6
   */
  readonly targetUtilisation?: number;
  /**
   * How much recent history the demand is averaged over.
   * @default 5000
   */
  readonly lookbackMs?: number;
  /**
   * Whether the autoscaler also grows the pool (with the warm-up delay) when demand rises.
   * @default true
   */
  readonly scaleOut?: boolean;
}

/** Options of `WorkerPool`. */
export interface WorkerPoolOptions {
  /** Workers at start, all warm. */
  readonly size: number;
  /**
   * Most workers the autoscaler may run (a pin or restore above it raises it).
   * @default - `size`
   */
  readonly maxSize?: number;
  /**
   * The autoscaler's own floor when nothing is pinned.
   * @default 1
   */
  readonly minSize?: number;
  /**
   * Requests that may wait for a worker; past it they fail at once with `PoolSaturatedError`.
   * @default 100
   */
  readonly maxQueue?: number;
  /**
   * Longest a request waits in the queue before failing with `PoolSaturatedError`.
   * @default 2000
   */
  readonly maxQueueWaitMs?: number;
  /**
   * Time for a new worker (restore or scale-out) to become warm; 0 = at once.
   * @default 1000
   */
  readonly warmUpMs?: number;
  /**
   * Autoscaler settings, or `false` for a fixed pool.
   * @default - an autoscaler with the defaults of `AutoscalerOptions`
   */
  readonly autoscaler?: AutoscalerOptions | false;
  /**
   * Time source for utilisation and event timestamps (timers still use real time).
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
}

/** Why the pool's size changed. */
export type ScalingKind = 'scale-in' | 'scale-out' | 'restore' | 'warmed' | 'forced-loss' | 'pin' | 'release';

/** One change of the pool, kept in a bounded history for reports and the live view. */
export interface ScalingEvent {
  readonly atMs: number;
  readonly kind: ScalingKind;
  /** Warm workers before the change. */
  readonly from: number;
  /** Warm workers after the change (for scale-out/restore: the target once warm). */
  readonly to: number;
  readonly reason: string;
}

/** What one autoscaler evaluation saw and did. */
export interface ScalingDecision {
  readonly atMs: number;
  /** Average busy workers over the lookback plus requests queued now. */
  readonly demand: number;
  /** The size the autoscaler aimed for (after the floor, the pin and the maximum). */
  readonly desired: number;
  readonly action: 'none' | 'scale-in' | 'scale-out';
  /** Warm workers after the evaluation. */
  readonly current: number;
}

/** A point-in-time view of the pool. */
export interface WorkerPoolSnapshot {
  /** Warm workers. */
  readonly current: number;
  /** Workers still warming up. */
  readonly warming: number;
  readonly busy: number;
  readonly queued: number;
  readonly pinnedMin?: number;
  readonly minSize: number;
  readonly maxSize: number;
  /** False while workers are warming up. */
  readonly ready: boolean;
  /** Requests that got a worker. */
  readonly served: number;
  /** Requests refused (queue full or waited too long). */
  readonly rejected: number;
  /** Autoscaler evaluations so far. */
  readonly evaluations: number;
  /** The last `forceShrink`, if any. */
  readonly lastLoss?: ScalingEvent;
  /** See `WorkerPool.lowestWhilePinned`; absent until the first pin. */
  readonly lowestWhilePinned?: number;
}
