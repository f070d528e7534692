/**
 * The local loopback adapters that the rehearsal runs on. Typical wiring:
 *
 * ```ts
 * const pool = new WorkerPool({ size: 8, warmUpMs: 1500 });            // the old side's capacity
 * const v1 = await startDemoServer({ version: 'v1', workerPool: pool, serviceTimeMs: 5 });
 * const v2 = await startDemoServer({ version: 'v2' });                   // faults: v2.setFaults({...})
 * const metrics = new LocalMetrics();
 * const router = await startRouter({ oldUrl: v1.url, newUrl: v2.url, metrics });
 * const clients = startClients({ targetUrl: router.url, concurrency: 8, ratePerSecond: 200, oversizeShare: 0.02 });
 *
 * // Ports for the core:
 * const traffic = router.traffic;                                        // TrafficPort
 * const health = new LocalHealth({ metrics });                           // HealthPort
 * const capacity = new LocalCapacity(pool);                              // CapacityPort
 * const store = new FileStateStore({ directory });                       // StateStore
 * const events = new MemoryEventSink();                                  // EventSink
 *
 * // Shut down in reverse order:
 * await clients.stop(); await router.close(); await v2.close(); await v1.close(); pool.close();
 * ```
 */
export * from './clients';
export * from './demo-server';
export * from './file-store';
export * from './memory-events';
export * from './metrics';
export * from './net';
export * from './random';
export * from './router';
export * from './worker-pool';
