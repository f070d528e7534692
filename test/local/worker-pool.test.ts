import { afterEach, describe, expect, it } from 'vitest';
import { LocalCapacity, PoolClosedError, PoolSaturatedError, WorkerPool, type WorkerPoolOptions } from '../../local/worker-pool';
import { Cleanup, eventually, FakeClock } from './helpers';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function pool(options: WorkerPoolOptions): WorkerPool {
  return cleanup.add(new WorkerPool(options), (p) => p.close());
}

/** A pool whose autoscaler only runs when the test calls evaluate(), on a fake clock. */
function manualPool(options: Partial<WorkerPoolOptions> = {}) {
  const clock = new FakeClock();
  const p = pool({ size: 10, minSize: 1, warmUpMs: 0, clock, autoscaler: { intervalMs: 0, targetUtilisation: 0.6, lookbackMs: 5000 }, ...options });
  return { clock, pool: p };
}

describe('worker pool autoscaler', () => {
  it('should shrink an idle unpinned pool to its minimum', () => {
    const { clock, pool: p } = manualPool();
    clock.advance(1000);
    const decision = p.evaluate();
    expect(decision).toMatchObject({ action: 'scale-in', desired: 1, current: 1, demand: 0 });
    expect(p.history().at(-1)).toMatchObject({ kind: 'scale-in', from: 10, to: 1 });
  });

  it('should never shrink below the pin', () => {
    const { clock, pool: p } = manualPool();
    p.pin(8);
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'scale-in', current: 8 });
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'none', current: 8 });
    p.release();
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'scale-in', current: 1 });
  });

  it('should size the pool to recent demand over the target utilisation', async () => {
    const { clock, pool: p } = manualPool();
    const releases = await Promise.all([p.acquire(), p.acquire(), p.acquire()]);
    clock.advance(1000);
    // 3 busy workers at 60% target: ceil(3 / 0.6) = 5.
    expect(p.evaluate()).toMatchObject({ action: 'scale-in', demand: 3, desired: 5, current: 5 });
    for (const release of releases) release();
    // Half of the next second idle: the 5 s lookback now averages 3 busy over 1 s and 0 over 1 s.
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ demand: 1.5, current: 3 });
  });

  it('should scale out on demand with a warm-up, up to the maximum', async () => {
    const { clock, pool: p } = manualPool({ size: 2, maxSize: 6, warmUpMs: 20 });
    const held = await Promise.all([p.acquire(), p.acquire()]);
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'scale-out', desired: 4, current: 2 });
    expect(p.status()).toMatchObject({ current: 2, ready: false });
    expect(p.status().detail).toMatch(/IN_PROGRESS: 2 worker\(s\) warming up/);
    const ready = await p.waitUntilReady(5000);
    expect(ready).toMatchObject({ current: 4, ready: true, detail: 'READY' });
    for (const release of held) release();
  });

  it('should run on its own interval', async () => {
    const p = pool({ size: 6, minSize: 2, autoscaler: { intervalMs: 10 } });
    await eventually(() => p.current === 2, 'the interval autoscaler shrinks the idle pool');
    expect(p.history().some((e) => e.kind === 'scale-in')).toBe(true);
  });
});

describe('worker pool capacity loss and restore', () => {
  it('should report a forced loss below the pin and restore it after a warm-up', async () => {
    const { clock, pool: p } = manualPool({ warmUpMs: 30 });
    const capacity = new LocalCapacity(p);
    expect(await capacity.pin(10)).toMatchObject({ current: 10, pinned: 10, ready: true });
    p.forceShrink(3, 'instances terminated by a misconfigured autoscaler');
    const lost = await capacity.read();
    expect(lost).toMatchObject({ current: 3, pinned: 10, ready: true });
    expect(lost.detail).toMatch(/lost 7: instances terminated by a misconfigured autoscaler/);
    // The autoscaler does not heal a loss by itself (no demand), nor shrink further (pin).
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'none', current: 3 });

    const restoring = await capacity.restore(10);
    expect(restoring).toMatchObject({ current: 3, ready: false });
    // Idempotent: a second restore does not add more workers.
    await capacity.restore(10);
    expect(p.snapshot().warming).toBe(7);
    expect(await p.waitUntilReady(5000)).toMatchObject({ current: 10, pinned: 10, ready: true });
    expect(p.history().map((e) => e.kind)).toEqual(['pin', 'forced-loss', 'restore', 'warmed']);

    expect(await capacity.release()).toEqual({ current: 10, ready: true, detail: 'READY' });
  });

  it('should stay ready while it scales out above a pin that is met, and not while it restores below it', async () => {
    const { clock, pool: p } = manualPool({ size: 2, maxSize: 6, warmUpMs: 60_000 });
    p.pin(2);
    const held = await Promise.all([p.acquire(), p.acquire()]);
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'scale-out', current: 2 });
    // Both pinned workers are warm: demand growing the pool is not the old side falling short.
    const growing = p.status();
    expect(growing).toMatchObject({ current: 2, pinned: 2, ready: true });
    expect(growing.detail).toMatch(/^READY: 2 warm workers, pin of 2 met; 2 more warming up/);
    p.forceShrink(1, 'instance lost');
    p.restore(2);
    expect(p.status()).toMatchObject({ current: 1, pinned: 2, ready: false });
    expect(p.status().detail).toMatch(/^IN_PROGRESS: 1 worker\(s\) warming up/);
    for (const release of held) release();
  });

  it('should cancel a warm-up when capacity is lost during it', async () => {
    const { pool: p } = manualPool({ size: 2, maxSize: 10, warmUpMs: 60_000 });
    p.restore(10);
    expect(p.snapshot()).toMatchObject({ current: 2, warming: 8, ready: false });
    p.forceShrink(1, 'zone outage');
    expect(p.snapshot()).toMatchObject({ current: 1, warming: 0, ready: true });
  });
});

describe('worker pool low-water mark while pinned', () => {
  it('should track the lowest size from the pin to its release, and nothing after', async () => {
    const { clock, pool: p } = manualPool();
    const capacity = new LocalCapacity(p);
    // Before any pin nothing is measured, so a loss here does not count.
    p.forceShrink(9, 'lost before the migration began');
    expect(p.lowestWhilePinned).toBeUndefined();
    p.restore(10);

    await capacity.pin(10);
    expect(p.lowestWhilePinned).toBe(10);
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'none', current: 10 }); // the pin holds
    expect(p.lowestWhilePinned).toBe(10);

    p.forceShrink(4, 'instances terminated behind the pin');
    expect(p.lowestWhilePinned).toBe(4);
    await capacity.restore(10);
    expect(p.current).toBe(10);
    p.forceShrink(6, 'a smaller second loss');
    expect(p.snapshot()).toMatchObject({ current: 6, lowestWhilePinned: 4 });
    await capacity.restore(10);

    await capacity.release();
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'scale-in', current: 1 });
    p.forceShrink(0, 'torn down');
    expect(p.lowestWhilePinned).toBe(4);
  });

  it('should equal the pin when the pin did its job, however far the pool shrinks after release', () => {
    const { clock, pool: p } = manualPool();
    p.pin(10);
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      p.evaluate();
    }
    expect(p.lowestWhilePinned).toBe(10);
    p.release();
    clock.advance(1000);
    expect(p.evaluate()).toMatchObject({ action: 'scale-in', current: 1 });
    expect(p.lowestWhilePinned).toBe(10);
  });

  it('should count workers that finish warming up as a change of size', async () => {
    const { pool: p } = manualPool({ size: 2, maxSize: 10, warmUpMs: 10 });
    p.pin(2);
    p.restore(6);
    await p.waitUntilReady(5000);
    p.forceShrink(5, 'one worker lost');
    // Warming up raised the size to 6; the loss took it to 5, still above the pin's start of 2.
    expect(p.snapshot()).toMatchObject({ current: 5, lowestWhilePinned: 2 });
  });

  it('should continue the measurement when a pin that holds is changed, and start afresh after a release', () => {
    const { pool: p } = manualPool();
    p.pin(10);
    p.forceShrink(3, 'zone outage');
    p.pin(12);
    expect(p.lowestWhilePinned).toBe(3);
    p.release();
    p.restore(10);
    expect(p.lowestWhilePinned).toBe(3);
    p.pin(10);
    expect(p.lowestWhilePinned).toBe(10);
  });
});

describe('worker pool queue', () => {
  it('should queue within the bound and refuse past it', async () => {
    const p = pool({ size: 1, maxQueue: 1, autoscaler: false });
    const first = await p.acquire();
    const second = p.acquire();
    await expect(p.acquire()).rejects.toMatchObject({ name: 'PoolSaturatedError', reason: 'queue-full' });
    expect(p.snapshot()).toMatchObject({ busy: 1, queued: 1, rejected: 1 });
    first();
    first(); // releasing twice is harmless
    const release = await second;
    expect(p.snapshot()).toMatchObject({ busy: 1, queued: 0, served: 2 });
    release();
    expect(p.snapshot().busy).toBe(0);
  });

  it('should refuse a request that waited too long', async () => {
    const p = pool({ size: 1, maxQueueWaitMs: 20, autoscaler: false });
    const held = await p.acquire();
    const waiting = p.acquire();
    await expect(waiting).rejects.toBeInstanceOf(PoolSaturatedError);
    await expect(waiting).rejects.toThrow(/no worker free within 20 ms/);
    held();
  });

  it('should fail waiting requests when closed', async () => {
    const p = pool({ size: 0, maxSize: 1, minSize: 0, autoscaler: false });
    const waiting = p.acquire();
    p.close();
    await expect(waiting).rejects.toBeInstanceOf(PoolClosedError);
    await expect(p.run(1)).rejects.toBeInstanceOf(PoolClosedError);
  });
});

describe('worker pool options', () => {
  it('fails on invalid options, showing the value', () => {
    expect(() => new WorkerPool({ size: -1 })).toThrow(/size must be an integer from 0 to 100000, got -1/);
    expect(() => new WorkerPool({ size: 4, maxSize: 2 })).toThrow(/maxSize \(2\) must be at least size \(4\)/);
    expect(() => new WorkerPool({ size: 4, autoscaler: { targetUtilisation: 1.5 } })).toThrow(/targetUtilisation must be a number from 0 to 1, got 1.5/);
    const p = pool({ size: 1, autoscaler: false });
    expect(() => p.pin(2.5)).toThrow(/pin units must be an integer .* got 2.5/);
    expect(() => p.forceShrink(0, '')).toThrow(/forceShrink needs a reason/);
  });
});
