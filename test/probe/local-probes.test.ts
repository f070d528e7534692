/**
 * The rehearsal's ProbePort: real probes of loopback servers, with the synthetic health in every
 * outcome, and periodic rounds that probe every side asked for equally often.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalProbes } from '../../local/probes';
import * as servers from './servers';
import { BODY_LIMIT, HEALTH_PATH, type TestServer } from './servers';

const open: TestServer[] = [];
const probesOpen: LocalProbes[] = [];
afterEach(async () => {
  await Promise.all(probesOpen.splice(0).map((p) => p.stop()));
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function start(server: Promise<TestServer>): Promise<TestServer> {
  const s = await server;
  open.push(s);
  return s;
}

function localProbes(urls: { old: string; new: string }): LocalProbes {
  let t = 0;
  const probes = new LocalProbes({ urls, clock: { now: () => ++t }, probe: { healthPath: HEALTH_PATH, idleMs: 20, largeBodyBytes: 2 * BODY_LIMIT } });
  probesOpen.push(probes);
  return probes;
}

describe('LocalProbes', () => {
  it('should fill in the synthetic health of every outcome: answers, and how many were 4XX and 5XX', async () => {
    const healthy = await start(servers.nodeHttpServer());
    const flaky = await start(servers.random503Server(0.3, 3));
    const probes = localProbes({ old: healthy.url, new: flaky.url });
    const old = await probes.probeNow('old');
    expect(old.verdict).toBe('ok');
    expect(old.health!.requests).toBeGreaterThan(100);
    expect(old.health!.errors5xx).toBe(0);
    // The probe's deliberate 404, 413, 405, 400 and 401 answers.
    expect(old.health!.errors4xx).toBeGreaterThanOrEqual(10);
    const fresh = await probes.probeNow('new');
    expect(fresh.verdict).not.toBe('desync');
    expect(fresh.health!.errors5xx / fresh.health!.requests).toBeGreaterThan(0.15);
    expect(fresh.health!.errors5xx / fresh.health!.requests).toBeLessThan(0.45);
    expect(await probes.recentResults(0)).toEqual([old, fresh]);
  });

  it('should probe every side it is given once per periodic round', async () => {
    const a = await start(servers.nodeHttpServer());
    const b = await start(servers.nodeHttpServer());
    const probes = localProbes({ old: a.url, new: b.url });
    probes.startPeriodic(['new', 'old'], 10);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await probes.stop();
    const sides = probes.all().map((o) => o.side);
    const count = (side: string) => sides.filter((s) => s === side).length;
    expect(count('new')).toBeGreaterThanOrEqual(1);
    expect(count('new')).toBe(count('old'));
  }, 20_000);
});
