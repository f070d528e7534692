import { afterEach, describe, expect, it } from 'vitest';
import { startClients, type ClientStats, type SyntheticClients } from '../../local/clients';
import { startDemoServer, type DemoServerOptions } from '../../local/demo-server';
import { LocalMetrics } from '../../local/metrics';
import { seededRandom } from '../../local/random';
import { DnsRouting, LocalResolver } from '../../local/resolver';
import { startRouter } from '../../local/router';
import { Cleanup, eventually } from './helpers';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function server(options: DemoServerOptions) {
  return cleanup.add(await startDemoServer(options), (s) => s.close());
}

function clients(options: Parameters<typeof startClients>[0]): SyntheticClients {
  return cleanup.add(startClients(options), (c) => c.stop());
}

/** Runs clients until they finished at least `count` requests, then stops them. */
async function runUntil(c: SyntheticClients, count: number): Promise<ClientStats> {
  await eventually(() => c.stats().requests >= count, `${count} client requests`, 30_000);
  return c.stop();
}

function expectConsistent(stats: ClientStats): void {
  expect(stats.ok + stats.errorResponses + stats.misalignedResponses + stats.unexpectedResponses).toBe(stats.requests);
  // The breakdowns: errors are the server's 5XX, the router's gateway errors and requests without
  // any response; unexpected 4XX are a part of the unexpected answers. Per source likewise.
  expect(stats.unexpected5xx + stats.gatewayErrors + stats.transportErrors).toBe(stats.errorResponses);
  expect(stats.unexpected4xx).toBeLessThanOrEqual(stats.unexpectedResponses);
  for (const s of Object.values(stats.bySource)) {
    expect(s.unexpected5xx + s.gatewayErrors).toBe(s.errorResponses);
    expect(s.unexpected4xx).toBeLessThanOrEqual(s.unexpectedResponses);
  }
  for (const key of ['unexpected4xx', 'unexpected5xx', 'gatewayErrors'] as const) {
    expect(Object.values(stats.bySource).reduce((n, s) => n + s[key], 0)).toBe(stats[key]);
  }
  const bySource = Object.values(stats.bySource).reduce((n, s) => n + s.requests, 0);
  expect(bySource + stats.transportErrors).toBe(stats.requests);
  expect(Object.values(stats.byKind).reduce((n, k) => n + k, 0)).toBe(stats.requests);
  expect(stats.inFlight).toBe(0);
  expect(stats.running).toBe(false);
}

describe('synthetic clients', () => {
  it('should see no misaligned response from a healthy server over many Keep-Alive requests', async () => {
    const v2 = await server({ version: 'v2' });
    const c = clients({ targetUrl: v2.url, concurrency: 4, ratePerSecond: 1000, oversizeShare: 0.1, random: seededRandom(3) });
    const stats = await runUntil(c, 400);
    expectConsistent(stats);
    expect(stats.misalignedResponses).toBe(0);
    expect(stats.errorResponses).toBe(0);
    expect(stats.unexpectedResponses).toBe(0);
    expect(stats.ok).toBe(stats.requests);
    expect(stats.byKind.oversize).toBeGreaterThan(10);
    expect(stats.statusCounts['413']).toBe(stats.byKind.oversize);
    // Each client keeps one connection: almost every request reuses it.
    expect(stats.newConnections).toBe(4);
    expect(stats.reusedConnections).toBe(stats.requests - 4);
    expect(stats.bySource.direct.requests).toBe(stats.requests);
  });

  it('should count misaligned responses only after a 413 on the same connection', async () => {
    const v2 = await server({ version: 'v2', faults: { desyncAfter413: true } });
    const c = clients({ targetUrl: v2.url, concurrency: 3, ratePerSecond: 1000, oversizeShare: 0.05, random: seededRandom(11) });
    const stats = await runUntil(c, 300);
    expectConsistent(stats);
    expect(stats.misalignedResponses).toBeGreaterThan(0);
    expect(stats.misaligned.length).toBe(stats.misalignedResponses);
    for (const entry of stats.misaligned) {
      expect(entry.connectionSaw413).toBe(true);
      expect(entry.source).toBe('direct');
      expect(entry.received.servedBy).toBe('v2');
      expect(entry.received.requestId).not.toBe(entry.expected.requestId);
    }
    // Everything misaligned was shifted by this server's bug, nothing else went wrong.
    expect(v2.stats().desyncedResponses).toBe(stats.misalignedResponses);
    expect(stats.errorResponses).toBe(0);
  });

  it('should count responses per side through the router', async () => {
    const v1 = await server({ version: 'v1' });
    const v2 = await server({ version: 'v2', faults: { errorRate5xx: 1 } });
    const router = cleanup.add(await startRouter({ oldUrl: v1.url, newUrl: v2.url, weight: 50, random: seededRandom(2) }), (r) => r.close());
    const c = clients({ targetUrl: router.url, concurrency: 4, ratePerSecond: 1000, oversizeShare: 0, random: seededRandom(4) });
    const stats = await runUntil(c, 200);
    expectConsistent(stats);
    expect(stats.bySource.direct.requests).toBe(0);
    expect(stats.bySource.old.requests).toBeGreaterThan(0);
    expect(stats.bySource.old.ok).toBe(stats.bySource.old.requests);
    expect(stats.bySource.new.requests).toBeGreaterThan(0);
    expect(stats.bySource.new.errorResponses).toBe(stats.bySource.new.requests);
    // v2's own 5XX answers, not the router's gateway errors.
    expect(stats.bySource.new.unexpected5xx).toBe(stats.bySource.new.requests);
    expect(stats.bySource.new.gatewayErrors).toBe(0);
    expect(stats.misalignedResponses).toBe(0);
    const routed = router.stats();
    expect(routed.old.requests + routed.new.requests).toBe(stats.requests);
    // Client connections to the router are kept alive too.
    expect(routed.clientConnections).toBe(4);
  });

  it('should count unexpected 4XX per side, and not the 413 an oversized POST expects', async () => {
    const v1 = await server({ version: 'v1' });
    const v2 = await server({ version: 'v2', faults: { unauthorizedEvery: 4 } });
    const router = cleanup.add(await startRouter({ oldUrl: v1.url, newUrl: v2.url, weight: 50, random: seededRandom(5) }), (r) => r.close());
    const c = clients({ targetUrl: router.url, concurrency: 4, ratePerSecond: 1000, oversizeShare: 0.1, random: seededRandom(6) });
    const stats = await runUntil(c, 300);
    expectConsistent(stats);
    // Every 401 v2 sent reached a client and was counted against the new side, and only there.
    const sent = v2.stats().unauthorizedFaults;
    expect(sent).toBeGreaterThan(10);
    expect(stats.bySource.new.unexpected4xx).toBe(sent);
    expect(stats.bySource.new.unexpectedResponses).toBe(sent);
    expect(stats.statusCounts['401']).toBe(sent);
    expect(stats.bySource.old.unexpected4xx).toBe(0);
    expect(stats.unexpected4xx).toBe(sent);
    // The oversized POSTs got the 413 they expect, on both sides: not counted.
    expect(stats.statusCounts['413']).toBe(stats.byKind.oversize);
    expect(stats.byKind.oversize).toBeGreaterThan(5);
    expect(stats.bySource.old.ok).toBe(stats.bySource.old.requests);
    expect(stats.errorResponses + stats.misalignedResponses).toBe(0);
  });

  it("should count the router's 504 for a silent side as that side's gateway error, not a 5XX", async () => {
    const v1 = await server({ version: 'v1' });
    const v2 = await server({ version: 'v2', faults: { addedLatencyMs: 300 } });
    const router = cleanup.add(
      await startRouter({ oldUrl: v1.url, newUrl: v2.url, weight: 50, upstreamTimeoutMs: 50, random: seededRandom(8) }),
      (r) => r.close(),
    );
    const c = clients({ targetUrl: router.url, concurrency: 2, ratePerSecond: 200, oversizeShare: 0, random: seededRandom(9) });
    const stats = await runUntil(c, 30);
    expectConsistent(stats);
    expect(stats.bySource.new.requests).toBeGreaterThan(0);
    expect(stats.bySource.new.gatewayErrors).toBe(stats.bySource.new.requests);
    expect(stats.bySource.new.unexpected5xx).toBe(0);
    expect(stats.statusCounts['504']).toBe(stats.bySource.new.requests);
    expect(stats.bySource.old.ok).toBe(stats.bySource.old.requests);
    expect(stats.transportErrors).toBe(0);
  });

  it('should count transport errors when the server resets connections, and stop cleanly', async () => {
    const crashed = await server({ version: 'v2', faults: { crashed: true } });
    const c = clients({ targetUrl: crashed.url, concurrency: 2, ratePerSecond: 200 });
    const stats = await runUntil(c, 5);
    expectConsistent(stats);
    expect(stats.transportErrors).toBe(stats.requests);
    expect(stats.errorResponses).toBe(stats.requests);
    // No response, so no side and neither a 5XX nor a gateway error.
    expect(stats.unexpected5xx + stats.gatewayErrors).toBe(0);
  });

  it('with routing (no router): counts a reset of its own connection against the side it resolved, and records a 502 for it', async () => {
    const v1 = await server({ version: 'v1' });
    const crashed = await server({ version: 'v2', faults: { crashed: true } });
    const resolver = new LocalResolver({ oldUrl: v1.url, newUrl: crashed.url, ttlMs: 0, weight: 100 });
    const metrics = new LocalMetrics();
    const c = clients({ routing: new DnsRouting(resolver, { clients: 2 }), metrics, concurrency: 2, ratePerSecond: 200 });
    const stats = await runUntil(c, 5);
    expectConsistent(stats);
    // The side is known: the same harm the router's 502 would have shown, one hop earlier.
    expect(stats.transportErrors).toBe(0);
    expect(stats.bySource.new.gatewayErrors).toBe(stats.requests);
    expect(stats.gatewayErrors).toBe(stats.requests);
    expect(metrics.totals().new).toEqual({ requests: stats.requests, errors4xx: 0, errors5xx: stats.requests });
    expect(metrics.totals().old.requests).toBe(0);
  });

  it('needs a target or routing', () => {
    expect(() => startClients({ concurrency: 1, ratePerSecond: 1 })).toThrow(/targetUrl is required unless routing is given/);
  });

  it('should stop by itself after durationMs', async () => {
    const v1 = await server({ version: 'v1' });
    const c = clients({ targetUrl: v1.url, concurrency: 2, ratePerSecond: 100, durationMs: 200 });
    const stats = await c.done;
    expectConsistent(stats);
    expect(stats.requests).toBeGreaterThan(0);
    const requestsAtEnd = v1.stats().requests;
    expect(requestsAtEnd).toBe(stats.requests);
    expect(await c.stop()).toEqual(stats);
  });

  it('fails on bad options, showing the value', () => {
    expect(() => startClients({ targetUrl: 'http://127.0.0.1:1', concurrency: 1, ratePerSecond: 1, oversizeShare: 2 })).toThrow(
      /oversizeShare must be a number from 0 to 1, got 2/,
    );
    expect(() => startClients({ targetUrl: 'http://127.0.0.1:1', concurrency: 0, ratePerSecond: 1 })).toThrow(/concurrency .* got 0/);
    expect(() => startClients({ targetUrl: 'https://127.0.0.1:1', concurrency: 1, ratePerSecond: 1 })).toThrow(/targetUrl must be an http: URL/);
  });
});
