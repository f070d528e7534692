/**
 * Rehearsals of a DNS-weighted migration (`--shift dns`): no router, a local resolver whose weights
 * the engine changes, clients that cache its answers (some past the TTL) and keep their Keep-Alive
 * connections. Real servers, clients and probes on loopback, on a shortened plan; assertions are
 * about outcomes and the documented bound, never about exact timing.
 */
import { describe, expect, it } from 'vitest';
import { buildRehearsalPlan } from '../../rehearsal/options';
import { runRehearsal, type RehearsalReport } from '../../rehearsal/run';
import { findScenario, type Scenario } from '../../rehearsal/scenarios';
import { PROBE_ONLY_STATUSES } from './helpers';

// A first step of 10 % (not 5 %): with DNS a share of 40 clients is lumpy, and a tiny step would
// mostly wait for enough requests on the new side.
const plan = buildRehearsalPlan('10@2s,50@2s,100@2s', '2s', '1s');

async function rehearse(name: string): Promise<RehearsalReport> {
  const scenario = findScenario(name);
  if (!scenario) throw new Error(`no scenario ${name}`);
  return runRehearsal({ scenario, plan, shift: 'dns' });
}

const NO_HARM = { unexpected4xx: 0, unexpected5xx: 0, wrongAnswers: 0, transportErrors: 0, otherUnexpected: 0, total: 0 };

describe('rehearsal with DNS weights', () => {
  it('healthy: promotes with every answer right; the clients recorded both sides for the judge', async () => {
    const report = await rehearse('healthy');
    expect(report).toMatchObject({ shift: 'dns', outcome: 'promoted', finalState: 'torn-down', finalWeight: 100, errorResponses: 0, misalignedResponses: 0 });
    expect(report.dns).toMatchObject({ ttlMs: 2000, staleClients: 0.1, staleClientCount: 4, clients: 40, drainIntervalMs: 1000 });
    expect(report.dns!.lookups).toBeGreaterThan(40);
    expect(report.dns!.connections.new).toBeGreaterThan(0);
    // No router: the sides' counts are what the clients recorded, and they add up to every request.
    expect(report.requestsBySide.new).toBeGreaterThan(0);
    expect(report.requestsBySide.old + report.requestsBySide.new).toBe(report.clientRequests);
    expect(report.responsesBySide.new['200']).toBeGreaterThan(0);
    // What the clients recorded for the judge holds none of the probes' deliberate 4XX.
    expect(report.probes.runs).toBeGreaterThan(2);
    for (const side of ['old', 'new'] as const) {
      expect(Object.keys(report.responsesBySide[side]).filter((status) => PROBE_ONLY_STATUSES.includes(status))).toEqual([]);
    }
    expect(report.rollback).toBeUndefined();
    expect(report.blastRadius).toMatchObject({ span: { from: 'start', to: 'end' }, old: NO_HARM, new: NO_HARM, unattributed: NO_HARM, total: NO_HARM });
  });

  it('keepalive-desync-under-load: rolls back, counts wrong answers after the rollback, and drains within TTL + drain interval + one window', async () => {
    const report = await rehearse('keepalive-desync-under-load');
    expect(report).toMatchObject({ shift: 'dns', outcome: 'rolled-back', finalWeight: 0 });
    expect(report.requestsBySide.new).toBeGreaterThan(0);
    const b = report.blastRadius;
    expect(b.span).toMatchObject({ from: 'fault', to: 'rollback' });
    // Every request went to a side the client resolved: nothing is unattributed, wrong answers come from v2.
    expect(b.unattributed).toEqual(NO_HARM);
    expect(b.old.wrongAnswers + b.afterRollback!.old.wrongAnswers).toBe(0);
    expect(b.new.wrongAnswers + b.afterRollback!.new.wrongAnswers).toBe(report.misalignedResponses);

    const residual = report.rollback!.residual!;
    expect(residual).toBeDefined();
    expect(residual).toMatchObject({ shift: 'dns', windowMs: 1000, boundMs: 2000 + 1000 + 1000, activeDrain: true, maxWatchMs: 25_000, drained: true, withinBound: true });
    expect(residual.drainedAfterMs).toBeLessThanOrEqual(residual.boundMs);
    expect(residual.peakRequestsPerWindow).toBeGreaterThan(0);
    expect(residual.thresholdRequestsPerWindow).toBeCloseTo(residual.peakRequestsPerWindow / 100, 6);
    // Wrong answers and every other harm after the rollback are the blast radius's own counts.
    expect(residual.wrongAnswersAfterRollback).toBe(b.afterRollback!.total.wrongAnswers);
    expect(residual.harmedAfterRollback).toBe(b.afterRollback!.total.total);
    // The residual is real traffic, per window, and by kind of client (give or take a request
    // recorded in the very millisecond of the rollback).
    expect(residual.requestsPerWindowAfterRollback.reduce((n, c) => n + c, 0)).toBe(residual.requestsAfterRollback);
    const byClients = residual.byClients!.ttlHonouring + residual.byClients!.ttlIgnoring + b.afterRollback!.new.transportErrors;
    expect(Math.abs(byClients - residual.requestsAfterRollback)).toBeLessThanOrEqual(2);
    // The drain started at once: Connection: close on the new side.
    const drain = residual.drain!;
    expect(drain.closeAfterMs).toBeLessThan(1000);
    if (drain.refuseAfterMs !== undefined) expect(drain.refuseAfterMs).toBeGreaterThanOrEqual(3000);
    // The last window of the watch was within the threshold.
    expect(residual.requestsPerWindowAfterRollback.at(-1)).toBeLessThanOrEqual(Math.max(1, residual.thresholdRequestsPerWindow));
  });

  it('without the active drain (--no-drain) the new side keeps serving after the rollback: more requests, for longer, than with it (same seed)', async () => {
    // Kept short: 5XX from the first step, a 0.5 s TTL, and both runs at once. The shorter the TTL,
    // the sooner a drained client's cache lets it go, while a client left alone keeps its
    // Keep-Alive connection for its lifetime (2 s on average): the gap is wide whatever the timing.
    const spike: Scenario = {
      name: 'error-spike-at-once',
      description: 'v2 answers 25 % of requests with 5XX from the first step',
      expected: 'rolled-back',
      faultAt: 0,
      fault: 'v2 answers 25% of requests with 5XX',
      inject: (c) => c.setNewSideFaults({ errorRate5xx: 0.25 }),
    };
    const fast = buildRehearsalPlan('50@1s,100@1s', '1s', '1s');
    const [on, off] = await Promise.all(
      [true, false].map((activeDrain) =>
        runRehearsal({ scenario: spike, plan: fast, seed: 4, shift: 'dns', dns: { ttlMs: 500 }, activeDrain, maxWatchMs: 3000 }),
      ),
    );
    expect(on).toMatchObject({ outcome: 'rolled-back', finalWeight: 0 });
    expect(off).toMatchObject({ outcome: 'rolled-back', finalWeight: 0 });
    const withDrain = on!.rollback!.residual!;
    const without = off!.rollback!.residual!;
    expect(withDrain).toMatchObject({ activeDrain: true, maxWatchMs: 3000, drained: true });
    expect(withDrain.drain!.connectionsClosed).toBeGreaterThan(0);
    // Left alone: no Connection: close, no refusals, and the report says the drain was off.
    expect(without).toMatchObject({ activeDrain: false, maxWatchMs: 3000 });
    expect(without.drain).toBeUndefined();
    expect(off!.dns!.refusedConnections).toBe(0);
    expect(without.requestsAfterRollback).toBeGreaterThan(withDrain.requestsAfterRollback);
    // Longer: it drained later than with the drain, or not within the watch at all.
    expect(without.drainedAfterMs ?? Number.POSITIVE_INFINITY).toBeGreaterThan(withDrain.drainedAfterMs!);
  });
});
