import { afterEach, describe, expect, it } from 'vitest';
import { RevisionConflictError } from '../../lambda/core/ports';
import { PROBE_MARKER_VALUE, PROBE_MARKER_WIRE_NAME, runProbe } from '../../lambda/probe';
import { DEFAULT_BODY_LIMIT_BYTES, startDemoServer, type DemoServerOptions } from '../../local/demo-server';
import { LocalHealth, LocalMetrics, type MetricsRecorder } from '../../local/metrics';
import { PortInUseError } from '../../local/net';
import { seededRandom } from '../../local/random';
import { startRouter, type RouterOptions } from '../../local/router';
import { Cleanup, eventually, send, singleConnectionAgent } from './helpers';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function sides(v2: Partial<DemoServerOptions> = {}) {
  const v1 = cleanup.add(await startDemoServer({ version: 'v1' }), (s) => s.close());
  const v2s = cleanup.add(await startDemoServer({ version: 'v2', ...v2 }), (s) => s.close());
  return { v1, v2: v2s };
}

async function router<M extends MetricsRecorder = LocalMetrics>(options: RouterOptions<M>) {
  return cleanup.add(await startRouter(options), (r) => r.close());
}

function agent() {
  return cleanup.add(singleConnectionAgent(), (a) => a.destroy());
}

describe('router traffic split', () => {
  it('should split requests by weight within binomial bounds', async () => {
    const { v1, v2 } = await sides();
    const metrics = new LocalMetrics();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 30, random: seededRandom(1234), metrics });
    const a = agent();
    const n = 400;
    let toNew = 0;
    for (let i = 0; i < n; i += 1) {
      const response = await send(`${r.url}/apps/1/channels/news-1`, { agent: a, headers: { 'x-request-id': `q${i}` } });
      expect(response.status).toBe(200);
      expect(response.json!.requestId).toBe(`q${i}`);
      const side = response.headers['x-cutover-side'];
      // The header tells the truth: old is served by v1, new by v2.
      expect(response.json!.served_by).toBe(side === 'new' ? 'v2' : 'v1');
      if (side === 'new') toNew += 1;
    }
    const mean = n * 0.3;
    const sd = Math.sqrt(n * 0.3 * 0.7);
    expect(Math.abs(toNew - mean)).toBeLessThan(4 * sd);
    expect(metrics.totals()).toEqual({
      old: { requests: n - toNew, errors4xx: 0, errors5xx: 0 },
      new: { requests: toNew, errors4xx: 0, errors5xx: 0 },
    });
    expect(r.stats().new.requests).toBe(toNew);
    expect(v2.stats().requests).toBe(toNew);
  });

  it('should send nothing to new at weight 0 and everything at 100', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 0 });
    for (let i = 0; i < 20; i += 1) expect((await send(`${r.url}/health`)).headers['x-cutover-side']).toBe('old');
    const { revision } = await r.traffic.getWeight();
    await r.traffic.setWeight(100, revision);
    for (let i = 0; i < 20; i += 1) expect((await send(`${r.url}/health`)).headers['x-cutover-side']).toBe('new');
    expect(v2.stats().requests).toBe(20);
    expect(v1.stats().requests).toBe(20);
  });

  it('should keep connections alive towards the client and both upstreams', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 50, random: seededRandom(5) });
    const a = agent();
    for (let i = 0; i < 40; i += 1) {
      const response = await send(`${r.url}/apps/1/channels`, { agent: a });
      expect(response.status).toBe(200);
      if (i > 0) expect(response.reusedSocket).toBe(true);
    }
    const stats = r.stats();
    expect(stats.clientConnections).toBe(1);
    expect(stats.old.requests + stats.new.requests).toBe(40);
    expect(stats.old.requests).toBeGreaterThan(5);
    expect(stats.new.requests).toBeGreaterThan(5);
    // Sequential requests reuse one upstream connection per side.
    expect(stats.old.connectionsOpened).toBe(1);
    expect(stats.new.connectionsOpened).toBe(1);
    expect(v1.stats().connectionsAccepted).toBe(1);
    expect(v2.stats().connectionsAccepted).toBe(1);
  });

  it('should forward bodies and relay 413 with the side header', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 100 });
    const ok = await send(`${r.url}/apps/1/events`, {
      method: 'POST',
      headers: { 'x-request-id': 'p1' },
      body: JSON.stringify({ name: 'e', channels: ['news-1'], data: 'd' }),
    });
    expect([ok.status, ok.json!.requestId, ok.headers['x-cutover-side']]).toEqual([200, 'p1', 'new']);
    const big = await send(`${r.url}/apps/1/events`, {
      method: 'POST',
      headers: { 'x-request-id': 'p2' },
      body: JSON.stringify({ name: 'e', channels: ['news-1'], data: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES) }),
    });
    expect([big.status, big.json!.requestId]).toEqual([413, 'p2']);
  });
});

describe('router TrafficPort', () => {
  it('should change the revision on every write and reject a stale one', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url });
    const start = await r.traffic.getWeight();
    expect(start).toMatchObject({ weight: 0, settled: true });
    const next = await r.traffic.setWeight(10, start.revision);
    expect(next.weight).toBe(10);
    expect(next.revision).not.toBe(start.revision);
    const same = await r.traffic.setWeight(10, next.revision);
    expect(same.revision).not.toBe(next.revision);

    const stale = r.traffic.setWeight(50, start.revision);
    await expect(stale).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(stale).rejects.toThrow(`expected ${start.revision}, found ${same.revision}`);
    expect((await r.traffic.getWeight()).weight).toBe(10);
  });

  it('fails when the weight is out of range, showing the value', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url });
    const { revision } = await r.traffic.getWeight();
    await expect(r.traffic.setWeight(120, revision)).rejects.toThrow(/weight must be a number from 0 to 100, got 120/);
    await expect(startRouter({ oldUrl: v1.url, newUrl: 'http://example.com:80' })).rejects.toThrow(/newUrl must point at a loopback address/);
  });

  it('fails when the port is in use', async () => {
    const { v1, v2 } = await sides();
    await expect(startRouter({ oldUrl: v1.url, newUrl: v2.url, port: v1.port })).rejects.toBeInstanceOf(PortInUseError);
  });
});

describe('router failures', () => {
  it('should count the new side 5XX fault on the new side only', async () => {
    const { v1, v2 } = await sides({ faults: { errorRate5xx: 1 } });
    const metrics = new LocalMetrics();
    const health = new LocalHealth({ metrics });
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 50, random: seededRandom(9), metrics });
    const from = Date.now();
    const a = agent();
    for (let i = 0; i < 60; i += 1) await send(`${r.url}/apps/1/channels`, { agent: a });
    const window = await health.readWindow(from - 1000, Date.now() + 1000);
    expect(window).toBeDefined();
    expect(window!.new.requests).toBeGreaterThan(0);
    expect(window!.new.errors5xx).toBe(window!.new.requests);
    expect(window!.old.errors5xx).toBe(0);
    expect(window!.old.requests + window!.new.requests).toBe(60);
    expect(window!.new.latencyMs).toBeGreaterThan(0);
  });

  it('should answer 502 with the request id when the new side crashed', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 100 });
    const metrics = r.metrics;
    const a = agent();
    expect((await send(`${r.url}/health`, { agent: a })).status).toBe(200);
    v2.setFaults({ crashed: true });
    for (let i = 0; i < 5; i += 1) {
      const response = await send(`${r.url}/apps/1/channels`, { agent: a, headers: { 'x-request-id': `c${i}` } });
      expect(response.status).toBe(502);
      expect(response.headers['x-cutover-side']).toBe('new');
      expect(response.json).toMatchObject({ requestId: `c${i}`, served_by: 'router', error: 'bad gateway' });
    }
    expect(metrics.totals().new).toEqual({ requests: 6, errors4xx: 0, errors5xx: 5 });
    expect(r.stats().new.responsesByStatus['502']).toBe(5);
  });

  it('should answer 504 when the upstream is silent past the timeout', async () => {
    const { v1, v2 } = await sides({ faults: { addedLatencyMs: 5000 } });
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 100, upstreamTimeoutMs: 100 });
    const response = await send(`${r.url}/apps/1/channels`, { headers: { 'x-request-id': 'slow' } });
    expect(response.status).toBe(504);
    expect(response.json).toMatchObject({ requestId: 'slow', error: 'gateway timeout' });
  });
});

describe('router drain on rollback', () => {
  it('should destroy the new side connections when the weight drops to 0', async () => {
    const { v1, v2 } = await sides();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 100 });
    // Parallel requests open several upstream connections that then sit idle in the pool.
    await Promise.all(Array.from({ length: 6 }, () => send(`${r.url}/apps/1/channels`)));
    const opened = r.stats().new.connectionsOpened;
    expect(opened).toBeGreaterThan(1);
    await eventually(() => v2.stats().openConnections === opened, 'v2 sees the idle pooled connections');

    const { revision } = await r.traffic.getWeight();
    await r.traffic.setWeight(0, revision);
    expect(r.stats().new.connectionsDrained).toBe(opened);
    await eventually(() => v2.stats().openConnections === 0, 'v2 connections closed by the drain');
    expect((await send(`${r.url}/health`)).headers['x-cutover-side']).toBe('old');
    expect(v2.stats().connectionsAccepted).toBe(opened);
  });

  it('should never reuse a shifted connection after a rollback and a new shift', async () => {
    const { v1, v2 } = await sides({ faults: { desyncAfter413: true } });
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 100 });
    const a = agent();
    await send(`${r.url}/apps/1/events`, {
      method: 'POST',
      agent: a,
      body: JSON.stringify({ name: 'e', channels: ['news-1'], data: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES) }),
    });
    const shifted = await send(`${r.url}/apps/1/channels`, { agent: a, headers: { 'x-request-id': 'victim' } });
    expect(shifted.status).toBe(413);
    expect(shifted.json!.requestId).not.toBe('victim');

    let state = await r.traffic.getWeight();
    state = await r.traffic.setWeight(0, state.revision);
    await r.traffic.setWeight(100, state.revision);
    const after = await send(`${r.url}/apps/1/channels`, { agent: a, headers: { 'x-request-id': 'clean' } });
    expect([after.status, after.json!.requestId]).toEqual([200, 'clean']);
    expect(r.stats().new.connectionsOpened).toBe(2);
  });
});

describe('router and the probe marker', () => {
  it("should forward the probe's requests and answers but keep them out of the judge's metrics and the side's counts", async () => {
    const { v1, v2 } = await sides();
    const metrics = new LocalMetrics();
    const r = await router({ oldUrl: v1.url, newUrl: v2.url, weight: 100, metrics });
    // The real probe through the router: its deliberate 404, 400, 401, 405 and 413 reach v2.
    const report = await runProbe({ baseUrl: r.url, healthPath: '/health', idleMs: 20, largeBodyBytes: DEFAULT_BODY_LIMIT_BYTES + 1 });
    expect(report.verdict).not.toBe('desync');
    const probed = r.stats().new.probeRequests;
    expect(probed).toBeGreaterThan(100); // the long pass alone sends 120
    expect(v2.stats().requests).toBeGreaterThanOrEqual(probed);
    // A marked request by hand is answered like any other (its 404 reaches the sender)…
    const marked = await send(`${r.url}/no-such-route`, { headers: { 'x-request-id': 'm1', [PROBE_MARKER_WIRE_NAME]: PROBE_MARKER_VALUE } });
    expect([marked.status, marked.headers['x-cutover-side']]).toEqual([404, 'new']);
    // …while user requests, a 404 among them, are counted as before.
    for (let i = 0; i < 10; i += 1) expect((await send(`${r.url}/apps/1/channels`)).status).toBe(200);
    expect((await send(`${r.url}/no-such-route`)).status).toBe(404);

    expect(metrics.totals()).toEqual({
      old: { requests: 0, errors4xx: 0, errors5xx: 0 },
      new: { requests: 11, errors4xx: 1, errors5xx: 0 },
    });
    const stats = r.stats().new;
    expect(stats).toMatchObject({ requests: 11, probeRequests: probed + 1, responsesByStatus: { '200': 10, '404': 1 } });
  });
});
