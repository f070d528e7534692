import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_BODY_LIMIT_BYTES, demoChannels, startDemoServer, type DemoFaults, type DrainMode } from '../../local/demo-server';
import { PortInUseError } from '../../local/net';
import { seededRandom } from '../../local/random';
import { WorkerPool } from '../../local/worker-pool';
import { Cleanup, send, singleConnectionAgent } from './helpers';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function server(options: Parameters<typeof startDemoServer>[0]) {
  return cleanup.add(await startDemoServer(options), (s) => s.close());
}

function agent() {
  return cleanup.add(singleConnectionAgent(), (a) => a.destroy());
}

function oversizedEvent(): string {
  return JSON.stringify({ name: 'bulk', channels: ['news-1'], data: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES + 1) });
}

describe('demo server API', () => {
  it('should serve list, item, events and health, each with the request identity', async () => {
    const v1 = await server({ version: 'v1' });
    expect(v1.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const list = await send(`${v1.url}/apps/42/channels?filter_by_prefix=presence-&info=user_count`, { headers: { 'x-request-id': 'r-1' } });
    expect(list.status).toBe(200);
    expect(list.headers['x-request-id']).toBe('r-1');
    expect(list.json).toMatchObject({ requestId: 'r-1', method: 'GET', path: '/apps/42/channels?filter_by_prefix=presence-&info=user_count', served_by: 'v1' });
    const channels = list.json!.channels as Record<string, { user_count?: number }>;
    expect(Object.keys(channels).length).toBeGreaterThan(0);
    for (const [name, info] of Object.entries(channels)) {
      expect(name.startsWith('presence-')).toBe(true);
      expect(info.user_count).toBeGreaterThan(0);
    }

    const known = Object.keys(channels)[0]!;
    const item = await send(`${v1.url}/apps/42/channels/${known}`, { headers: { 'x-request-id': 'r-2' } });
    expect(item.status).toBe(200);
    expect(item.json).toMatchObject({ requestId: 'r-2', occupied: true, served_by: 'v1' });
    expect(item.json!.subscription_count).toBeGreaterThan(0);

    const unknown = await send(`${v1.url}/apps/42/channels/nobody-here`, { headers: { 'x-request-id': 'r-3' } });
    expect(unknown.json).toMatchObject({ occupied: false, subscription_count: 0 });

    const event = await send(`${v1.url}/apps/42/events`, {
      method: 'POST',
      headers: { 'x-request-id': 'r-4', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'order-created', channels: ['news-1', 'private-orders-1'], data: '{"id":1}' }),
    });
    expect(event.status).toBe(200);
    expect(event.json).toMatchObject({ requestId: 'r-4', method: 'POST', accepted: true, channels: 2 });

    const health = await send(`${v1.url}/health`);
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', version: 'v1', requestId: null });
    expect(v1.stats()).toMatchObject({ version: 'v1', requests: 5, eventsAccepted: 1, responsesByStatus: { '200': 5 } });
  });

  it('should answer 400 for invalid JSON or fields, 404 for unknown paths and 405 with Allow', async () => {
    const v1 = await server({ version: 'v1' });
    const badJson = await send(`${v1.url}/apps/1/events`, { method: 'POST', body: '{"name":', headers: { 'x-request-id': 'a' } });
    expect(badJson.status).toBe(400);
    expect(badJson.json).toMatchObject({ requestId: 'a', error: 'body is not valid JSON' });
    const badFields = await send(`${v1.url}/apps/1/events`, { method: 'POST', body: '{"name":"x","channels":[],"data":"d"}' });
    expect(badFields.status).toBe(400);
    expect((await send(`${v1.url}/nowhere`)).status).toBe(404);
    const wrongMethod = await send(`${v1.url}/apps/1/events`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
  });

  it('should answer 413 over the body limit and keep serving the connection correctly', async () => {
    const v2 = await server({ version: 'v2' });
    const a = agent();
    const tooBig = await send(`${v2.url}/apps/1/events`, { method: 'POST', body: oversizedEvent(), agent: a, headers: { 'x-request-id': 'big' } });
    expect(tooBig.status).toBe(413);
    expect(tooBig.json).toMatchObject({ requestId: 'big', limit_bytes: DEFAULT_BODY_LIMIT_BYTES });
    const next = await send(`${v2.url}/apps/1/channels`, { agent: a, headers: { 'x-request-id': 'after' } });
    expect(next.reusedSocket).toBe(true);
    expect(next.status).toBe(200);
    expect(next.json!.requestId).toBe('after');
    expect(v2.stats().desyncedResponses).toBe(0);
  });

  it('should list the deterministic demo channels', () => {
    expect(demoChannels(4)).toEqual(['presence-room-1', 'private-orders-1', 'news-1', 'presence-room-2']);
  });
});

describe('demo server faults', () => {
  it('should shift every response after a 413 on that connection when desyncAfter413 is on', async () => {
    const v2 = await server({ version: 'v2', faults: { desyncAfter413: true } });
    const a = agent();
    const get = (id: string) => send(`${v2.url}/apps/1/channels/news-1`, { agent: a, headers: { 'x-request-id': id } });

    const first = await get('A');
    expect(first.json!.requestId).toBe('A');
    const big = await send(`${v2.url}/apps/1/events`, { method: 'POST', body: oversizedEvent(), agent: a, headers: { 'x-request-id': 'B' } });
    expect([big.status, big.json!.requestId]).toEqual([413, 'B']);
    // The first request after the 413 gets the 413 again, then each gets the previous answer.
    const c = await get('C');
    expect([c.status, c.headers['x-request-id'], c.json!.requestId]).toEqual([413, 'B', 'B']);
    const d = await get('D');
    expect([d.status, d.json!.requestId]).toEqual([200, 'C']);
    const e = await get('E');
    expect(e.json!.requestId).toBe('D');
    expect(e.reusedSocket).toBe(true);

    // Other connections are not shifted.
    const fresh = await send(`${v2.url}/apps/1/channels/news-1`, { headers: { 'x-request-id': 'F' } });
    expect(fresh.json!.requestId).toBe('F');
    expect(v2.stats()).toMatchObject({ desyncedResponses: 3, shiftedConnections: 1 });
  });

  it('should answer 5XX at the configured rate', async () => {
    const v2 = await server({ version: 'v2', faults: { errorRate5xx: 1 } });
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => send(`${v2.url}/apps/1/channels`, { headers: { 'x-request-id': `e${i}` } })));
    for (const [i, response] of all.entries()) {
      expect([500, 503]).toContain(response.status);
      expect(response.json!.requestId).toBe(`e${i}`);
    }
    v2.setFaults({ errorRate5xx: 0 });
    expect((await send(`${v2.url}/apps/1/channels`)).status).toBe(200);

    const half = await server({ version: 'v2', faults: { errorRate5xx: 0.5 }, random: seededRandom(7) });
    const statuses = [];
    for (let i = 0; i < 40; i += 1) statuses.push((await send(`${half.url}/health`)).status);
    const errors = statuses.filter((s) => s >= 500).length;
    expect(errors).toBeGreaterThan(5);
    expect(errors).toBeLessThan(35);
  });

  it('should answer every Nth API request with an unexpected 401, settable at run time', async () => {
    const v2 = await server({ version: 'v2' });
    const a = agent();
    const api = (id: string) => send(`${v2.url}/apps/1/channels/news-1`, { agent: a, headers: { 'x-request-id': id } });
    // Off by default.
    expect((await api('before')).status).toBe(200);
    expect(v2.setFaults({ unauthorizedEvery: 3 })).toMatchObject({ unauthorizedEvery: 3 });
    const statuses: number[] = [];
    for (let i = 1; i <= 9; i += 1) {
      const response = await api(`r${i}`);
      statuses.push(response.status);
      // A 401 is still this request's own answer (right identity, wrong status), on a reused connection.
      expect(response.json!.requestId).toBe(`r${i}`);
      expect(response.headers['x-request-id']).toBe(`r${i}`);
      if (response.status === 401) {
        expect(response.json).toMatchObject({ error: 'unauthorized', fault: 'unauthorizedEvery', served_by: 'v2' });
        expect(response.headers['www-authenticate']).toMatch(/^Basic/);
      }
    }
    expect(statuses).toEqual([200, 200, 401, 200, 200, 401, 200, 200, 401]);

    // Health checks and oversized bodies do not count and are not affected.
    for (let i = 0; i < 5; i += 1) expect((await send(`${v2.url}/health`, { agent: a })).status).toBe(200);
    expect((await send(`${v2.url}/apps/1/events`, { method: 'POST', body: oversizedEvent(), agent: a })).status).toBe(413);
    expect((await api('after-health-1')).status).toBe(200);
    expect((await api('after-health-2')).status).toBe(200);
    expect((await api('after-health-3')).status).toBe(401);

    // Setting the fault again restarts the count; 0 turns it off.
    expect((await api('x')).status).toBe(200);
    v2.setFaults({ unauthorizedEvery: 2 });
    expect([(await api('y1')).status, (await api('y2')).status]).toEqual([200, 401]);
    v2.setFaults({ unauthorizedEvery: 0 });
    for (let i = 0; i < 5; i += 1) expect((await api(`z${i}`)).status).toBe(200);
    expect(v2.stats()).toMatchObject({ unauthorizedFaults: 5, responsesByStatus: { '401': 5 } });

    // Every request: unauthorizedEvery 1.
    const always = await server({ version: 'v2', faults: { unauthorizedEvery: 1 } });
    expect((await send(`${always.url}/apps/1/channels`)).status).toBe(401);
    expect((await send(`${always.url}/health`)).status).toBe(200);
  });

  it('should reset connections while crashed and serve again after recovery', async () => {
    const v2 = await server({ version: 'v2' });
    const a = agent();
    expect((await send(`${v2.url}/health`, { agent: a })).status).toBe(200);
    v2.setFaults({ crashed: true });
    await expect(send(`${v2.url}/health`, { agent: a })).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(send(`${v2.url}/health`)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(v2.stats().crashResets).toBeGreaterThanOrEqual(2);
    v2.setFaults({ crashed: false });
    expect((await send(`${v2.url}/health`)).status).toBe(200);
  });

  it('should refuse with 503 when its worker pool is saturated', async () => {
    const pool = cleanup.add(new WorkerPool({ size: 1, maxQueue: 0, autoscaler: false }), (p) => p.close());
    const v1 = await server({ version: 'v1', workerPool: pool, serviceTimeMs: 1 });
    expect((await send(`${v1.url}/apps/1/channels`)).status).toBe(200);
    const release = await pool.acquire();
    const refused = await send(`${v1.url}/apps/1/channels`, { headers: { 'x-request-id': 'busy' } });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ requestId: 'busy', error: 'over capacity' });
    // Health does not need a worker.
    expect((await send(`${v1.url}/health`)).status).toBe(200);
    release();
    expect((await send(`${v1.url}/apps/1/channels`)).status).toBe(200);
    expect(v1.stats().capacityRejections).toBe(1);
  });
});

describe('demo server drain mode', () => {
  it("close: answers every request with Connection: close and ends its connection, without breaking a shifted connection's answers", async () => {
    const v2 = await server({ version: 'v2' });
    const a = agent();
    const first = await send(`${v2.url}/health`, { agent: a });
    expect(first.headers.connection).toBe('keep-alive');
    expect((await send(`${v2.url}/health`, { agent: a })).reusedSocket).toBe(true);
    expect(await v2.setDrain('close')).toBe('close');
    // The idle connection is not cut under the client: its next request is answered, with the close.
    const draining = await send(`${v2.url}/apps/1/channels`, { agent: a, headers: { 'x-request-id': 'd-1' } });
    expect(draining).toMatchObject({ status: 200, reusedSocket: true });
    expect(draining.headers.connection).toBe('close');
    expect(draining.json).toMatchObject({ requestId: 'd-1' });
    // Every answer ends its connection: each request needs a new one.
    for (let i = 0; i < 3; i++) {
      const next = await send(`${v2.url}/health`, { agent: a });
      expect(next.reusedSocket).toBe(false);
      expect(next.headers.connection).toBe('close');
    }
    expect(v2.stats()).toMatchObject({ drainMode: 'close', drainedConnections: 4 });
    // Back to Keep-Alive.
    expect(await v2.setDrain('off')).toBe('off');
    await send(`${v2.url}/health`, { agent: a });
    expect((await send(`${v2.url}/health`, { agent: a })).reusedSocket).toBe(true);
    expect(v2.stats().drainedConnections).toBe(4);
  });

  it('close: a connection shifted by the desync bug gets its one queued wrong answer, then is closed', async () => {
    const v2 = await server({ version: 'v2', faults: { desyncAfter413: true } });
    const a = agent();
    expect((await send(`${v2.url}/apps/1/events`, { agent: a, method: 'POST', body: oversizedEvent(), headers: { 'x-request-id': 'big' } })).status).toBe(413);
    await v2.setDrain('close');
    const shifted = await send(`${v2.url}/health`, { agent: a, headers: { 'x-request-id': 'h-1' } });
    // The 413 again (the previous request's answer), and the end of that connection.
    expect(shifted.status).toBe(413);
    expect(shifted.json).toMatchObject({ requestId: 'big' });
    expect(shifted.headers.connection).toBe('close');
    // A new connection answers right.
    const fresh = await send(`${v2.url}/health`, { agent: a, headers: { 'x-request-id': 'h-2' } });
    expect(fresh).toMatchObject({ status: 200, reusedSocket: false, json: expect.objectContaining({ requestId: 'h-2' }) });
  });

  it('refuse: stops accepting connections (ECONNREFUSED), finishes what it has, and can listen again on its port', async () => {
    const v2 = await server({ version: 'v2' });
    const a = agent();
    expect((await send(`${v2.url}/health`, { agent: a })).status).toBe(200);
    expect(await v2.setDrain('refuse')).toBe('refuse');
    // The open Keep-Alive connection still gets its answer, with the close.
    const last = await send(`${v2.url}/health`, { agent: a });
    expect(last.status).toBe(200);
    expect(last.headers.connection).toBe('close');
    await expect(send(`${v2.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(v2.stats().drainMode).toBe('refuse');
    // Setting it twice is harmless; leaving it listens again, on the same port.
    await v2.setDrain('refuse');
    expect(await v2.setDrain('close')).toBe('close');
    const again = await send(`${v2.url}/health`);
    expect(again.status).toBe(200);
    expect(again.headers.connection).toBe('close');
    await v2.setDrain('off');
    expect((await send(`${v2.url}/health`, { agent: agent() })).headers.connection).toBe('keep-alive');
  });

  it('closes cleanly while refusing, and refuses a bad mode', async () => {
    const v2 = await startDemoServer({ version: 'v2' });
    await v2.setDrain('refuse');
    await v2.close();
    await expect(send(`${v2.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(v2.setDrain('close')).rejects.toThrow(/is closed/);
    const v1 = await server({ version: 'v1' });
    await expect(v1.setDrain('drain' as DrainMode)).rejects.toThrow(/drain mode must be one of off, close, refuse, got "drain"/);
    expect(v1.stats().drainMode).toBe('off');
  });
});

describe('demo server options', () => {
  it('fails when the port is in use', async () => {
    const first = await server({ version: 'v1' });
    const attempt = startDemoServer({ version: 'v2', port: first.port });
    await expect(attempt).rejects.toBeInstanceOf(PortInUseError);
    await expect(attempt).rejects.toThrow(`port ${first.port} is in use`);
  });

  it('fails when a fault is out of range, showing the value', async () => {
    await expect(startDemoServer({ version: 'v2', faults: { errorRate5xx: 1.5 } })).rejects.toThrow(/errorRate5xx must be a number from 0 to 1, got 1\.5/);
    const v2 = await server({ version: 'v2' });
    expect(() => v2.setFaults({ addedLatencyMs: -5 })).toThrow(/addedLatencyMs .* got -5/);
    expect(() => v2.setFaults({ crashed: 'yes' as unknown as boolean })).toThrow(/crashed must be a boolean, got "yes"/);
    expect(() => v2.setFaults({ errorRate: 0.5 } as Partial<DemoFaults>)).toThrow(/unknown fault "errorRate"/);
    expect(() => v2.setFaults({ unauthorizedEvery: 1.5 })).toThrow(/unauthorizedEvery must be an integer from 0 to \d+, got 1\.5/);
    expect(() => v2.setFaults({ unauthorizedEvery: -1 })).toThrow(/unauthorizedEvery .* got -1/);
    expect(v2.setFaults({ errorRate5xx: undefined, addedLatencyMs: 20 })).toEqual({
      errorRate5xx: 0,
      unauthorizedEvery: 0,
      addedLatencyMs: 20,
      crashed: false,
      desyncAfter413: false,
    });
  });

  it('fails on a bad version label or port', async () => {
    await expect(startDemoServer({ version: 'v 2' })).rejects.toThrow(/version must be .* got "v 2"/);
    await expect(startDemoServer({ version: 'v2', port: 70_000 })).rejects.toThrow(/port must be an integer from 0 to 65535, got 70000/);
  });
});
