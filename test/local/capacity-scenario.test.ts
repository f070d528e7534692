import { afterEach, describe, expect, it } from 'vitest';
import { startClients } from '../../local/clients';
import { startDemoServer } from '../../local/demo-server';
import { startRouter } from '../../local/router';
import { LocalCapacity, WorkerPool } from '../../local/worker-pool';
import { Cleanup, eventually } from './helpers';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/**
 * The incident's second lesson on loopback: while traffic sits on the new side, the autoscaler
 * shrinks the idle old side; rolling back then overloads it, unless its capacity was pinned.
 */
async function rollbackInto(pinned: boolean) {
  const pool = cleanup.add(
    new WorkerPool({ size: 8, minSize: 1, maxQueue: 2, maxQueueWaitMs: 2000, warmUpMs: 60_000, autoscaler: { intervalMs: 10, scaleOut: false } }),
    (p) => p.close(),
  );
  const capacity = new LocalCapacity(pool);
  if (pinned) await capacity.pin(8);
  const v1 = cleanup.add(await startDemoServer({ version: 'v1', workerPool: pool, serviceTimeMs: 20 }), (s) => s.close());
  const v2 = cleanup.add(await startDemoServer({ version: 'v2' }), (s) => s.close());
  const router = cleanup.add(await startRouter({ oldUrl: v1.url, newUrl: v2.url, weight: 100 }), (r) => r.close());

  // All traffic on new: the old side idles and the autoscaler runs a few times.
  await eventually(() => pool.snapshot().evaluations >= 5, 'the autoscaler evaluates the idle pool');
  expect(pool.current).toBe(pinned ? 8 : 1);

  const { revision } = await router.traffic.getWeight();
  await router.traffic.setWeight(0, revision);
  const clients = cleanup.add(startClients({ targetUrl: router.url, concurrency: 8, ratePerSecond: 2000, oversizeShare: 0 }), (c) => c.stop());
  await eventually(() => clients.stats().requests >= 120, '120 requests after the rollback', 30_000);
  return { stats: await clients.stop(), v1 };
}

describe('rollback into the old side', () => {
  it('should overload an old side that the autoscaler shrank', async () => {
    const { stats, v1 } = await rollbackInto(false);
    expect(stats.bySource.old.errorResponses).toBeGreaterThan(0);
    expect(v1.stats().capacityRejections).toBe(stats.errorResponses);
  });

  it('should serve everything when the old side was pinned', async () => {
    const { stats, v1 } = await rollbackInto(true);
    expect(stats.errorResponses).toBe(0);
    expect(stats.ok).toBe(stats.requests);
    expect(v1.stats().capacityRejections).toBe(0);
  });
});
