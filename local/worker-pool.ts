/**
 * The old side's capacity in the local rehearsal: a pool of workers that requests occupy for
 * their service time, an autoscaler that shrinks the pool as its traffic falls (the very thing
 * that made the incident's rollback slow), and `LocalCapacity`, the core's `CapacityPort` over
 * the pool (pin, restore with a warm-up, release).
 *
 * Model: `current` workers are warm and serve; a restore or a scale-out adds workers that become
 * warm only after `warmUpMs` (like provisioned concurrency going from IN_PROGRESS to READY).
 * The autoscaler never shrinks below the pinned minimum, but it does not grow the pool back up
 * to the pin by itself either: capacity lost behind the pin's back (`forceShrink`) stays lost
 * until someone calls `restore`, so the controller's capacity check has something to find.
 *
 * While a pin is in place the pool also keeps the lowest `current` it reached
 * (`lowestWhilePinned`), updated on every change of size. A report can then state what the pin
 * guaranteed exactly, instead of sampling the pool on a timer that may run just after the release.
 */
import type { CapacityPort, CapacityStatus, Clock } from '../lambda/core/ports';
import { checkInteger, checkRange, sleep, systemClock } from './net';
import {
  PoolClosedError,
  type AutoscalerOptions,
  PoolSaturatedError,
  type ScalingDecision,
  type ScalingEvent,
  type ScalingKind,
  type WorkerPoolOptions,
  type WorkerPoolSnapshot,
} from './worker-pool-model';

export * from './worker-pool-model';

interface Waiter {
  readonly resolve: (release: () => void) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface WarmingBatch {
  readonly units: number;
  readonly readyAtMs: number;
  readonly timer: NodeJS.Timeout;
}

interface DemandSample {
  readonly atMs: number;
  readonly elapsedMs: number;
  readonly busyWorkerMs: number;
}

const HISTORY_LIMIT = 200;

/** A pool of workers with a bounded queue and an autoscaler. Call `close()` when done. */
export class WorkerPool {
  private readonly clock: Clock;
  private readonly minSize: number;
  private maxSize: number;
  private readonly maxQueue: number;
  private readonly maxQueueWaitMs: number;
  private readonly warmUpMs: number;
  private readonly autoscaler: Required<AutoscalerOptions> | undefined;
  private readonly interval: NodeJS.Timeout | undefined;
  private readonly closing = new AbortController();

  private warm: number;
  private busy = 0;
  private pinnedMin: number | undefined;
  // Low-water mark of `warm` over the current (or, once released, the last) pin; see the getter.
  private lowestPinned: number | undefined;
  private readonly queue: Waiter[] = [];
  private readonly batches: WarmingBatch[] = [];
  private readonly readyWaiters: (() => void)[] = [];
  private readonly events: ScalingEvent[] = [];
  private lastLoss: ScalingEvent | undefined;
  private served = 0;
  private rejected = 0;
  private evaluations = 0;

  // Busy time integral (worker·ms) for utilisation, and the demand samples of recent evaluations.
  private busyWorkerMs = 0;
  private lastBusyChangeAt: number;
  private lastEvaluationAt: number;
  private lastEvaluationBusyWorkerMs = 0;
  private readonly samples: DemandSample[] = [];

  constructor(options: WorkerPoolOptions) {
    this.clock = options.clock ?? systemClock;
    this.warm = checkInteger(options.size, 0, 100_000, 'size');
    this.maxSize = checkInteger(options.maxSize ?? options.size, 0, 100_000, 'maxSize');
    if (this.maxSize < this.warm) throw new RangeError(`maxSize (${this.maxSize}) must be at least size (${this.warm})`);
    this.minSize = checkInteger(options.minSize ?? Math.min(1, this.maxSize), 0, this.maxSize, 'minSize');
    this.maxQueue = checkInteger(options.maxQueue ?? 100, 0, 1_000_000, 'maxQueue');
    this.maxQueueWaitMs = checkInteger(options.maxQueueWaitMs ?? 2000, 1, 3_600_000, 'maxQueueWaitMs');
    this.warmUpMs = checkInteger(options.warmUpMs ?? 1000, 0, 3_600_000, 'warmUpMs');
    if (options.autoscaler !== false) {
      const a = options.autoscaler ?? {};
      const targetUtilisation = checkRange(a.targetUtilisation ?? 0.6, 0, 1, 'autoscaler.targetUtilisation');
      if (targetUtilisation === 0) throw new RangeError('autoscaler.targetUtilisation must be above 0, got 0');
      this.autoscaler = {
        intervalMs: checkInteger(a.intervalMs ?? 1000, 0, 3_600_000, 'autoscaler.intervalMs'),
        targetUtilisation,
        lookbackMs: checkInteger(a.lookbackMs ?? 5000, 1, 86_400_000, 'autoscaler.lookbackMs'),
        scaleOut: a.scaleOut ?? true,
      };
      if (this.autoscaler.intervalMs > 0) {
        this.interval = setInterval(() => this.evaluate(), this.autoscaler.intervalMs);
        // The autoscaler alone must not keep a finished process alive.
        this.interval.unref();
      }
    }
    const now = this.clock.now();
    this.lastBusyChangeAt = now;
    this.lastEvaluationAt = now;
  }

  /** Warm workers. */
  get current(): number {
    return this.warm;
  }

  /** The pinned minimum, if any. */
  get pinned(): number | undefined {
    return this.pinnedMin;
  }

  /**
   * The fewest warm workers while a pin was in place: starts at `current` when a pin is placed on
   * an unpinned pool, follows every change of size while the pin holds (re-pinning at another
   * figure continues the same measurement), and stops changing once the pin is released, so
   * shrinking after a teardown does not count. A new pin after a release starts afresh.
   * Undefined until the first pin.
   */
  get lowestWhilePinned(): number | undefined {
    return this.lowestPinned;
  }

  /** False while workers are warming up. */
  get ready(): boolean {
    return this.batches.length === 0;
  }

  snapshot(): WorkerPoolSnapshot {
    const snapshot: WorkerPoolSnapshot = {
      current: this.warm,
      warming: this.warmingUnits(),
      busy: this.busy,
      queued: this.queue.length,
      minSize: this.minSize,
      maxSize: this.maxSize,
      ready: this.ready,
      served: this.served,
      rejected: this.rejected,
      evaluations: this.evaluations,
    };
    return {
      ...snapshot,
      ...(this.pinnedMin === undefined ? {} : { pinnedMin: this.pinnedMin }),
      ...(this.lastLoss === undefined ? {} : { lastLoss: this.lastLoss }),
      ...(this.lowestPinned === undefined ? {} : { lowestWhilePinned: this.lowestPinned }),
    };
  }

  /** The last scaling events, oldest first (at most 200). */
  history(): readonly ScalingEvent[] {
    return [...this.events];
  }

  /**
   * The pool as the capacity port reports it. `ready` is false while workers warm up, except for a
   * scale-out above a pin that is already met: the pinned workers are all warm, and the port's
   * `ready` is about them (otherwise demand growing the pool read as the old side "not ready", and
   * the controller restored and held a pool that lacked nothing).
   */
  status(): CapacityStatus {
    const warming = this.warmingUnits();
    const pinMet = this.pinnedMin !== undefined && this.warm >= this.pinnedMin;
    let detail: string;
    if (warming > 0) {
      const readyIn = Math.max(0, Math.max(...this.batches.map((b) => b.readyAtMs)) - this.clock.now());
      detail = pinMet
        ? `READY: ${this.warm} warm workers, pin of ${this.pinnedMin} met; ${warming} more warming up, ready in about ${readyIn} ms`
        : `IN_PROGRESS: ${warming} worker(s) warming up, ready in about ${readyIn} ms`;
    } else if (this.pinnedMin !== undefined && this.warm < this.pinnedMin && this.lastLoss !== undefined) {
      detail = `READY with ${this.warm} of ${this.pinnedMin} pinned workers; lost ${this.lastLoss.from - this.lastLoss.to}: ${this.lastLoss.reason}`;
    } else {
      detail = 'READY';
    }
    return {
      current: this.warm,
      ...(this.pinnedMin === undefined ? {} : { pinned: this.pinnedMin }),
      ready: warming === 0 || pinMet,
      detail,
    };
  }

  /**
   * Takes a worker, waiting in the bounded queue if all are busy. Resolves with the function that
   * gives the worker back (calling it twice is harmless). Rejects with `PoolSaturatedError` when
   * the queue is full or the wait exceeds `maxQueueWaitMs`, `PoolClosedError` after `close()`.
   */
  acquire(): Promise<() => void> {
    if (this.closing.signal.aborted) return Promise.reject(new PoolClosedError());
    if (this.busy < this.warm && this.queue.length === 0) return Promise.resolve(this.take());
    if (this.queue.length >= this.maxQueue) {
      this.rejected += 1;
      return Promise.reject(
        new PoolSaturatedError('queue-full', `all ${this.warm} workers busy and ${this.queue.length} requests queued (limit ${this.maxQueue})`),
      );
    }
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.queue.indexOf(waiter);
          if (at >= 0) this.queue.splice(at, 1);
          this.rejected += 1;
          reject(new PoolSaturatedError('queue-timeout', `no worker free within ${this.maxQueueWaitMs} ms (${this.warm} warm, ${this.busy} busy)`));
        }, this.maxQueueWaitMs),
      };
      this.queue.push(waiter);
    });
  }

  /** Occupies a worker for `serviceMs` (queueing like `acquire`). */
  async run(serviceMs: number): Promise<void> {
    checkRange(serviceMs, 0, 3_600_000, 'serviceMs');
    const release = await this.acquire();
    try {
      await sleep(serviceMs, this.closing.signal);
    } finally {
      release();
    }
  }

  /**
   * One autoscaler evaluation: averages the busy workers over the lookback, adds the queue, and
   * sizes the pool to ceil(demand / targetUtilisation), never below max(minSize, pin) nor above
   * maxSize. Shrinking is immediate (busy workers finish their request first); growing takes the
   * warm-up. Called by the interval timer, or directly by tests and scenarios.
   */
  evaluate(): ScalingDecision {
    const now = this.clock.now();
    if (this.autoscaler === undefined || this.closing.signal.aborted) {
      return { atMs: now, demand: this.busy + this.queue.length, desired: this.warm, action: 'none', current: this.warm };
    }
    this.evaluations += 1;
    this.integrateBusy(now);
    const elapsedMs = now - this.lastEvaluationAt;
    if (elapsedMs > 0) {
      this.samples.push({ atMs: now, elapsedMs, busyWorkerMs: this.busyWorkerMs - this.lastEvaluationBusyWorkerMs });
    }
    this.lastEvaluationAt = now;
    this.lastEvaluationBusyWorkerMs = this.busyWorkerMs;
    while (this.samples.length > 0 && this.samples[0]!.atMs <= now - this.autoscaler.lookbackMs) this.samples.shift();

    const totalMs = this.samples.reduce((sum, s) => sum + s.elapsedMs, 0);
    const averageBusy = totalMs > 0 ? this.samples.reduce((sum, s) => sum + s.busyWorkerMs, 0) / totalMs : this.busy;
    const demand = averageBusy + this.queue.length;
    const needed = Math.ceil(demand / this.autoscaler.targetUtilisation - 1e-9);
    const floor = Math.max(this.minSize, this.pinnedMin ?? 0);
    const why = `demand ${demand.toFixed(2)} workers at target utilisation ${this.autoscaler.targetUtilisation}`;

    // The floor (minSize, pin) only stops scale-in; scale-out follows demand alone, so capacity
    // lost below the pin stays visible until an explicit restore (see the module comment).
    const planned = this.warm + this.warmingUnits();
    const shrinkTo = Math.min(this.maxSize, Math.max(floor, needed));
    const growTo = Math.min(this.maxSize, needed);
    if (shrinkTo < planned) {
      this.cancelWarming(planned - shrinkTo);
      let action: ScalingDecision['action'] = 'none';
      if (this.warm > shrinkTo) {
        this.recordEvent('scale-in', this.warm, shrinkTo, `${why}; floor ${floor}`);
        this.setWarm(shrinkTo);
        action = 'scale-in';
      }
      return { atMs: now, demand, desired: shrinkTo, action, current: this.warm };
    }
    if (growTo > planned && this.autoscaler.scaleOut) {
      this.startWarming(growTo - planned, 'scale-out', why);
      return { atMs: now, demand, desired: growTo, action: 'scale-out', current: this.warm };
    }
    return { atMs: now, demand, desired: planned, action: 'none', current: this.warm };
  }

  /** Pins the minimum: the autoscaler never shrinks below it. Raises maxSize if needed. */
  pin(units: number): CapacityStatus {
    checkInteger(units, 0, 100_000, 'pin units');
    if (this.pinnedMin !== units) {
      this.recordEvent('pin', this.warm, this.warm, `pinned at ${units}`);
      // A fresh pin measures from here; changing the figure of a pin that holds does not reset it.
      if (this.pinnedMin === undefined) this.lowestPinned = this.warm;
      this.pinnedMin = units;
      if (units > this.maxSize) this.maxSize = units;
    }
    return this.status();
  }

  /** Removes the pin. */
  release(): CapacityStatus {
    if (this.pinnedMin !== undefined) {
      this.recordEvent('release', this.warm, this.warm, `pin at ${this.pinnedMin} released`);
      this.pinnedMin = undefined;
    }
    return this.status();
  }

  /**
   * Brings the pool back to `units` workers: the missing ones warm up for `warmUpMs` (at once if
   * 0). Idempotent: workers already warm or warming count. Never shrinks.
   */
  restore(units: number): CapacityStatus {
    checkInteger(units, 0, 100_000, 'restore units');
    if (units > this.maxSize) this.maxSize = units;
    const planned = this.warm + this.warmingUnits();
    if (units > planned) this.startWarming(units - planned, 'restore', `restore to ${units}`);
    return this.status();
  }

  /**
   * Simulates capacity lost behind the pin's back (instances terminated, an autoscaler
   * misconfigured): drops to `units` warm workers at once, ignoring the pin, and cancels any
   * warm-up in progress. Nothing brings the capacity back except `restore` (or demand, if the
   * autoscaler scales out).
   */
  forceShrink(units: number, why: string): void {
    checkInteger(units, 0, 100_000, 'forceShrink units');
    if (typeof why !== 'string' || why.trim() === '') throw new TypeError(`forceShrink needs a reason, got ${JSON.stringify(why)}`);
    this.cancelWarming(this.warmingUnits());
    if (units < this.warm) {
      this.lastLoss = this.recordEvent('forced-loss', this.warm, units, why);
      this.setWarm(units);
    }
  }

  /**
   * Resolves when no worker is warming up; rejects after `timeoutMs` with the pool's status.
   */
  waitUntilReady(timeoutMs: number): Promise<CapacityStatus> {
    checkInteger(timeoutMs, 0, 3_600_000, 'timeoutMs');
    if (this.ready) return Promise.resolve(this.status());
    return new Promise<CapacityStatus>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(this.status());
      };
      const timer = setTimeout(() => {
        const at = this.readyWaiters.indexOf(done);
        if (at >= 0) this.readyWaiters.splice(at, 1);
        reject(new Error(`worker pool not ready after ${timeoutMs} ms: ${this.status().detail ?? ''}`));
      }, timeoutMs);
      this.readyWaiters.push(done);
    });
  }

  /** Stops the autoscaler and warm-ups, fails waiting requests with `PoolClosedError`. Idempotent. */
  close(): void {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    if (this.interval !== undefined) clearInterval(this.interval);
    for (const batch of this.batches.splice(0)) clearTimeout(batch.timer);
    for (const waiter of this.queue.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new PoolClosedError());
    }
    for (const done of this.readyWaiters.splice(0)) done();
  }

  private take(): () => void {
    this.integrateBusy(this.clock.now());
    this.busy += 1;
    this.served += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.integrateBusy(this.clock.now());
      this.busy -= 1;
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.busy < this.warm && this.queue.length > 0) {
      const waiter = this.queue.shift()!;
      clearTimeout(waiter.timer);
      waiter.resolve(this.take());
    }
  }

  private integrateBusy(now: number): void {
    if (now > this.lastBusyChangeAt) {
      this.busyWorkerMs += this.busy * (now - this.lastBusyChangeAt);
      this.lastBusyChangeAt = now;
    }
  }

  /** Every change of the warm workers goes through here, so the pin's low-water mark is exact. */
  private setWarm(units: number): void {
    this.warm = units;
    if (this.pinnedMin !== undefined && this.lowestPinned !== undefined && units < this.lowestPinned) this.lowestPinned = units;
  }

  private warmingUnits(): number {
    return this.batches.reduce((sum, b) => sum + b.units, 0);
  }

  private startWarming(units: number, kind: 'restore' | 'scale-out', reason: string): void {
    const from = this.warm;
    this.recordEvent(kind, from, from + this.warmingUnits() + units, reason);
    if (this.warmUpMs === 0) {
      this.setWarm(this.warm + units);
      this.dispatch();
      return;
    }
    this.scheduleBatch(units, this.clock.now() + this.warmUpMs);
  }

  private scheduleBatch(units: number, readyAtMs: number): void {
    const batch: WarmingBatch = {
      units,
      readyAtMs,
      timer: setTimeout(() => this.finishBatch(batch), Math.max(0, readyAtMs - this.clock.now())),
    };
    this.batches.push(batch);
  }

  private finishBatch(batch: WarmingBatch): void {
    const at = this.batches.indexOf(batch);
    if (at < 0) return;
    this.batches.splice(at, 1);
    this.recordEvent('warmed', this.warm, this.warm + batch.units, `${batch.units} worker(s) warm`);
    this.setWarm(this.warm + batch.units);
    this.dispatch();
    if (this.ready) for (const done of this.readyWaiters.splice(0)) done();
  }

  /** Cancels up to `units` warming workers, newest batches first. */
  private cancelWarming(units: number): void {
    let left = units;
    while (left > 0 && this.batches.length > 0) {
      const batch = this.batches.pop()!;
      clearTimeout(batch.timer);
      if (batch.units > left) {
        // Keep the part of the batch that is still wanted, with its original ready time.
        this.scheduleBatch(batch.units - left, batch.readyAtMs);
        left = 0;
      } else {
        left -= batch.units;
      }
    }
    if (this.ready) for (const done of this.readyWaiters.splice(0)) done();
  }

  private recordEvent(kind: ScalingKind, from: number, to: number, reason: string): ScalingEvent {
    const event: ScalingEvent = { atMs: this.clock.now(), kind, from, to, reason };
    this.events.push(event);
    if (this.events.length > HISTORY_LIMIT) this.events.shift();
    return event;
  }
}

/** `CapacityPort` over a local `WorkerPool`: the old side's capacity in the rehearsal. */
export class LocalCapacity implements CapacityPort {
  constructor(private readonly pool: WorkerPool) {}

  async read(): Promise<CapacityStatus> {
    return this.pool.status();
  }

  async pin(units: number): Promise<CapacityStatus> {
    return this.pool.pin(units);
  }

  async restore(units: number): Promise<CapacityStatus> {
    return this.pool.restore(units);
  }

  async release(): Promise<CapacityStatus> {
    return this.pool.release();
  }
}
