/**
 * The local resolver of DNS-weighted migrations: weighted answers, its TrafficPort's revisions, the
 * clients' caches (TTL, clients that ignore it, refusals), and, on loopback, clients that follow the
 * weights and drain from a rolled-back side.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RevisionConflictError } from '../../lambda/core/ports';
import { startClients, type SyntheticClients } from '../../local/clients';
import { startDemoServer, type DemoServerOptions } from '../../local/demo-server';
import { LocalMetrics } from '../../local/metrics';
import { seededRandom } from '../../local/random';
import { DnsRouting, LocalResolver } from '../../local/resolver';
import { Cleanup, eventually, FakeClock } from './helpers';

const OLD = 'http://127.0.0.1:41001';
const NEW = 'http://127.0.0.1:41002';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function resolver(options: Partial<ConstructorParameters<typeof LocalResolver>[0]> = {}): LocalResolver {
  return new LocalResolver({ oldUrl: OLD, newUrl: NEW, ttlMs: 1000, random: seededRandom(1), ...options });
}

async function setWeight(r: LocalResolver, weight: number): Promise<void> {
  const { revision } = await r.traffic.getWeight();
  await r.traffic.setWeight(weight, revision);
}

describe('LocalResolver', () => {
  it('answers by weight: 0 never names the new side, 100 always, 30 about 30 % of the time', async () => {
    const r = resolver();
    expect(Array.from({ length: 200 }, () => r.resolve().side)).not.toContain('new');
    await setWeight(r, 100);
    expect(Array.from({ length: 200 }, () => r.resolve().side)).not.toContain('old');
    await setWeight(r, 30);
    const answers = Array.from({ length: 4000 }, () => r.resolve());
    const share = answers.filter((a) => a.side === 'new').length / answers.length;
    expect(share).toBeGreaterThan(0.27);
    expect(share).toBeLessThan(0.33);
    // Each answer is the side's address and port, with the TTL.
    expect(answers.find((a) => a.side === 'new')).toMatchObject({ url: NEW, ttlMs: 1000 });
    expect(answers.find((a) => a.side === 'old')).toMatchObject({ url: OLD, ttlMs: 1000 });
    expect(r.stats()).toMatchObject({ weight: 30, queries: 4400, writes: 2 });
    expect(r.stats().answers.new + r.stats().answers.old).toBe(4400);
  });

  it('is a TrafficPort with revision checks: a stale revision is a conflict and changes nothing', async () => {
    const r = resolver();
    const first = await r.traffic.getWeight();
    expect(first).toMatchObject({ weight: 0, settled: true });
    const second = await r.traffic.setWeight(25, first.revision);
    expect(second).toMatchObject({ weight: 25, settled: true });
    expect(second.revision).not.toBe(first.revision);
    await expect(r.traffic.setWeight(50, first.revision)).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(r.traffic.setWeight(50, first.revision)).rejects.toThrow(`expected ${first.revision}, found ${second.revision}`);
    expect(await r.traffic.getWeight()).toEqual(second);
    // Another resolver's revisions never match, even at the same count of writes.
    const other = resolver();
    await expect(other.traffic.setWeight(25, second.revision)).rejects.toBeInstanceOf(RevisionConflictError);
    // Out-of-range weights are refused before the revision is even looked at.
    await expect(r.traffic.setWeight(101, second.revision)).rejects.toThrow(/weight must be a number from 0 to 100, got 101/);
    expect((await r.traffic.getWeight()).weight).toBe(25);
  });

  it('fails on bad options, showing the value', () => {
    expect(() => resolver({ newUrl: 'http://10.0.0.1:80' })).toThrow(/newUrl must point at a loopback address/);
    expect(() => resolver({ ttlMs: -1 })).toThrow(/ttlMs must be an integer from 0 .* got -1/);
    expect(() => resolver({ weight: 150 })).toThrow(/weight must be a number from 0 to 100, got 150/);
    expect(() => new DnsRouting(resolver(), { clients: 4, staleShare: 1.5 })).toThrow(/staleShare must be a number from 0 to 1, got 1.5/);
    expect(() => new DnsRouting(resolver(), { clients: 4, staleHoldMs: 10 })).toThrow(/staleHoldMs must be an integer from 1000/);
  });
});

describe('DnsRouting (the clients caches)', () => {
  it('keeps an answer for its TTL, then asks again and follows the new weights', async () => {
    const clock = new FakeClock();
    const r = resolver({ clock });
    const dns = new DnsRouting(r, { clients: 3, clock });
    expect(dns.connect(0)).toEqual({ url: OLD, side: 'old' });
    await setWeight(r, 100);
    // Within the TTL the cached answer holds, weight or no weight.
    clock.advance(999);
    expect(dns.connect(0).side).toBe('old');
    expect(dns.cachedSide(0)).toBe('old');
    // A client that never asked gets the new weights at once.
    expect(dns.connect(1).side).toBe('new');
    clock.advance(1);
    expect(dns.cachedSide(0)).toBeUndefined();
    expect(dns.connect(0).side).toBe('new');
    expect(dns.stats()).toMatchObject({ lookups: 3, cacheHits: 1, staleHits: 0, connections: { old: 2, new: 2 }, staleClients: [] });
  });

  it('lets a share of clients ignore the TTL: they keep their answer until their own hold runs out', async () => {
    const clock = new FakeClock();
    const r = resolver({ clock, weight: 100 });
    const dns = new DnsRouting(r, { clients: 10, staleShare: 0.2, staleHoldMs: 5000, clock, random: seededRandom(7) });
    // floor(10 × 0.2) = 2 of them, spread over the indexes.
    expect(dns.stats().staleClients).toEqual([4, 9]);
    expect(dns.isStale(4)).toBe(true);
    expect(dns.isStale(0)).toBe(false);
    for (let c = 0; c < 10; c++) expect(dns.connect(c).side).toBe('new');
    await setWeight(r, 0);
    clock.advance(1000);
    // Past the TTL: clients that honour it go to the old side, the stale ones stay.
    for (let c = 0; c < 10; c++) expect(dns.connect(c).side).toBe(dns.isStale(c) ? 'new' : 'old');
    expect(dns.stats().staleHits).toBe(2);
    // Not for ever: at most staleHoldMs after their lookup they ask again.
    clock.advance(4000);
    for (let c = 0; c < 10; c++) expect(dns.connect(c).side).toBe('old');
  });

  it('drops an answer whose address refused a connection, so the client looks up again', async () => {
    const clock = new FakeClock();
    const r = resolver({ clock, weight: 100 });
    const dns = new DnsRouting(r, { clients: 1, staleShare: 1, staleHoldMs: 60_000, clock, random: () => 0.99 });
    const target = dns.connect(0);
    expect(target.side).toBe('new');
    await setWeight(r, 0);
    clock.advance(30_000);
    expect(dns.connect(0).side).toBe('new');
    dns.refused(0, target);
    expect(dns.cachedSide(0)).toBeUndefined();
    expect(dns.connect(0).side).toBe('old');
    // A refusal of an address the client no longer holds does not drop its newer answer.
    dns.refused(0, target);
    expect(dns.cachedSide(0)).toBe('old');
    expect(dns.stats().refusals).toBe(2);
  });
});

describe('clients over DNS on loopback', () => {
  async function server(options: DemoServerOptions) {
    return cleanup.add(await startDemoServer(options), (s) => s.close());
  }
  function clients(options: Parameters<typeof startClients>[0]): SyntheticClients {
    return cleanup.add(startClients(options), (c) => c.stop());
  }

  it('attributes and records each answer to the side the client resolved, and follows the weights', async () => {
    const v1 = await server({ version: 'v1' });
    const v2 = await server({ version: 'v2' });
    const r = new LocalResolver({ oldUrl: v1.url, newUrl: v2.url, ttlMs: 50, random: seededRandom(3) });
    const routing = new DnsRouting(r, { clients: 6 });
    const metrics = new LocalMetrics();
    const c = clients({ routing, metrics, concurrency: 6, ratePerSecond: 600, oversizeShare: 0, connectionLifetimeMs: 50, random: seededRandom(4) });
    await eventually(() => c.stats().requests >= 100, '100 requests on the old side');
    expect(c.stats().bySource.new.requests).toBe(0);
    await setWeight(r, 100);
    // Connections come and go and caches run out: every client ends up on the new side.
    await eventually(() => c.stats().bySource.new.requests >= 200, '200 requests on the new side');
    const stats = await c.stop();
    expect(stats.bySource.direct.requests).toBe(0);
    expect(stats.errorResponses + stats.misalignedResponses + stats.unexpectedResponses).toBe(0);
    expect(stats.connectionsRetired).toBeGreaterThan(0);
    // Every answer was recorded for the judge, on the side that gave it, as the router would.
    expect(metrics.totals().old.requests).toBe(stats.bySource.old.requests);
    expect(metrics.totals().new.requests).toBe(stats.bySource.new.requests);
    expect(v2.stats().requests).toBe(stats.bySource.new.requests);
    const perClient = stats.perClient.reduce((n, p) => n + p.old + p.new, 0);
    expect(perClient).toBe(stats.requests);
  });

  it('drains a rolled-back side: Connection: close moves the clients that honour the TTL, refusing moves the rest, and nobody is harmed', async () => {
    const v1 = await server({ version: 'v1' });
    const v2 = await server({ version: 'v2' });
    const r = new LocalResolver({ oldUrl: v1.url, newUrl: v2.url, ttlMs: 300, weight: 100, random: seededRandom(5) });
    // Half the clients ignore the TTL and keep their answer for about a minute (hold times are
    // drawn between the TTL and staleHoldMs: this source draws near the top).
    const routing = new DnsRouting(r, { clients: 6, staleShare: 0.5, staleHoldMs: 60_000, random: () => 0.99 });
    const metrics = new LocalMetrics();
    // No connection lifetime: a client keeps its Keep-Alive connection until someone closes it.
    const c = clients({ routing, metrics, concurrency: 6, ratePerSecond: 300, oversizeShare: 0, random: seededRandom(7) });
    await eventually(() => c.stats().requests >= 60, 'traffic on the new side');
    expect(c.stats().bySource.old.requests).toBe(0);

    // The rollback: weight 0. Keep-Alive connections stay where they are, whatever DNS says.
    await setWeight(r, 0);
    const atRollback = c.stats().bySource.new.requests;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(c.stats().bySource.new.requests).toBeGreaterThan(atRollback + 30);
    expect(c.stats().bySource.old.requests).toBe(0);

    // Drain: every answer closes its connection; clients reconnect, and those past their TTL look
    // up again and go to the old side for good. The stale ones come back to the new side.
    await v2.setDrain('close');
    const stale = routing.stats().staleClients;
    const honouring = [0, 1, 2, 3, 4, 5].filter((k) => !stale.includes(k));
    expect(stale).toHaveLength(3);
    await eventually(() => honouring.every((k) => c.stats().perClient[k]!.old > 0), 'clients that honour the TTL on the old side');
    const before = c.stats().perClient;
    await eventually(() => stale.every((k) => c.stats().perClient[k]!.new > before[k]!.new + 3), 'stale clients still on the new side');
    const after = c.stats().perClient;
    for (const k of honouring) expect(after[k]!.new).toBe(before[k]!.new);
    for (const k of stale) expect(after[k]!.old).toBe(0);

    // Refuse: the stale clients' next connection is refused; they look up again and retry there.
    await v2.setDrain('refuse');
    await eventually(() => stale.every((k) => c.stats().perClient[k]!.old > 0), 'every client on the old side');
    const moved = c.stats().bySource.new.requests;
    const oldNow = c.stats().bySource.old.requests;
    await eventually(() => c.stats().bySource.old.requests >= oldNow + 60, '60 more requests, all on the old side');
    const stats = await c.stop();
    expect(stats.bySource.new.requests).toBe(moved);
    expect(stats.refusedConnections).toBe(stale.length);
    expect(routing.stats().refusals).toBe(stale.length);
    // Nothing went wrong for anyone: a refused connection sent nothing, the request went to the old side.
    expect(stats.errorResponses + stats.misalignedResponses + stats.unexpectedResponses).toBe(0);
    expect(stats.ok).toBe(stats.requests);
    expect(v2.stats().drainedConnections).toBeGreaterThan(0);
  });
});
