/**
 * The judge's newer rules through the real controller: slow-request counts asked of the health
 * source, shared outages and degradations that hold instead of rolling back (at a partial weight
 * and at 100 %, where the old side's synthetic health decides), missing data over a sliding span,
 * and alarms without data.
 */
import { describe, expect, it } from 'vitest';
import { MigrationController, type MigrationSpec } from '../../lambda/core/controller';
import { MigrationPlan } from '../../lambda/core/plan';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';

const WINDOW = 10_000;

function world(steps = [10, 50, 100], options: { soakWindows?: number; bakeWindows?: number; seed?: number } = {}) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const traffic = new FakeTraffic();
  const health = new SimulatedHealth(traffic, options.seed ?? 7);
  health.requestsPerWindow = 5000;
  health.oldErrorRate = health.newErrorRate = 0.001;
  health.clock = clock;
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const sink = new CollectingSink();
  const controller = new MigrationController({ clock, store, traffic, health, probes, capacity, events: sink });
  const plan = MigrationPlan.fromSteps(
    steps.map((weight) => ({ weight, bakeMs: (options.bakeWindows ?? 3) * WINDOW })),
    { healthWindowMs: WINDOW, soakMs: (options.soakWindows ?? 3) * WINDOW },
  ).toSpec();
  const spec: MigrationSpec = { id: 'orders:live:9', plan, metadata: { newVersion: '9' } };
  /** One tick per health window; stops early when `until` holds. */
  const run = async (ticks: number, until: (status: string, weight: number) => boolean = () => false) => {
    let result = await controller.tick(spec.id);
    for (let i = 0; i < ticks && !until(result.record.status, result.record.weight); i++) {
      clock.advance(WINDOW);
      result = await controller.tick(spec.id);
    }
    return result;
  };
  const events = async () => store.events(spec.id);
  return { clock, store, traffic, health, probes, capacity, sink, controller, spec, run, events };
}

describe('latency: slow-request counts', () => {
  it("should ask the health source for requests slower than the old side's first p99 plus the margin", async () => {
    const w = world();
    w.health.oldLatencyMs = 120;
    await w.controller.start(w.spec);
    await w.run(6);
    // Old p99 120 ms + the default 50 ms margin, asked on every window after the first.
    expect(new Set(w.health.slowReads)).toEqual(new Set([170]));
    expect(w.health.slowReads.length).toBeGreaterThan(2);
  });

  it('should roll back when the new side has several times the old side\'s share of slow requests', async () => {
    const w = world();
    w.health.newSlowShare = 0.05; // old: 1 %
    await w.controller.start(w.spec);
    const result = await w.run(40, (s) => s === 'rolled-back');
    expect(result.record.status).toBe('rolled-back');
    expect(result.record.lastDecision).toMatchObject({ action: 'rollback', code: 'latency' });
    expect(result.record.lastDecision?.reason).toMatch(/of its requests took over 90 ms/);
  });
});

describe('shared outages hold instead of rolling back', () => {
  it('should hold and notify once while both sides fail at 30 % mid-bake, then resume and complete by itself', async () => {
    const w = world();
    await w.controller.start(w.spec);
    await w.run(30, (_, weight) => weight === 50);
    expect(w.traffic.weight).toBe(50);
    w.health.oldErrorRate = w.health.newErrorRate = 0.3;
    const during = await w.run(8);
    expect(during.record.status).toBe('baking');
    expect(during.record.weight).toBe(50);
    expect(during.record.lastDecision).toMatchObject({ action: 'hold', code: 'shared-outage' });
    w.health.oldErrorRate = w.health.newErrorRate = 0.001;
    const done = await w.run(60, (s) => s === 'complete');
    expect(done.record.status).toBe('complete');
    const types = (await w.events()).map((e) => e.type);
    expect(types.filter((t) => t === 'shared-outage')).toHaveLength(1);
    expect(types).not.toContain('rolled-back');
  });

  it('should never step forward into a shared degradation (0.1 % → 3 % on both sides, below the ceiling)', async () => {
    const w = world();
    await w.controller.start(w.spec);
    await w.run(30, (_, weight) => weight === 10);
    await w.run(2);
    w.health.oldErrorRate = w.health.newErrorRate = 0.03;
    const result = await w.run(40);
    expect(result.record.weight).toBe(10);
    expect(result.record.status).toBe('baking');
    expect(result.record.lastDecision).toMatchObject({ action: 'hold', code: 'shared-outage' });
    expect(w.traffic.history).toEqual([10]);
  });

  describe('at 100 %, where the old side takes no traffic', () => {
    async function inSoak() {
      const w = world([10, 100], { soakWindows: 30 });
      await w.controller.start(w.spec);
      await w.run(40, (s) => s === 'soaking');
      await w.run(2);
      expect(w.traffic.weight).toBe(100);
      w.probes.calls.length = 0;
      return w;
    }

    it("should probe the old side and roll back when it is healthy (the new version's regression)", async () => {
      const w = await inSoak();
      w.probes.health.old = { requests: 120, errors5xx: 0 };
      w.health.newErrorRate = 0.3;
      const result = await w.run(10, (s) => s === 'rolled-back');
      expect(result.record.status).toBe('rolled-back');
      expect(w.probes.calls).toContain('old');
      expect(result.record.lastDecision?.reason).toMatch(/a probe of the old side got 0 5XX in 120 answers/);
    });

    it('should roll back when the old side\'s health cannot be known (the safe default)', async () => {
      const w = await inSoak();
      w.health.newErrorRate = 0.3;
      const result = await w.run(10, (s) => s === 'rolled-back');
      expect(result.record.status).toBe('rolled-back');
      expect(result.record.lastDecision?.reason).toMatch(/old side's health is unknown/);
    });

    it('should hold when the probe finds the old side failing as well, and finish the soak once both recover', async () => {
      const w = await inSoak();
      w.probes.health.old = { requests: 120, errors5xx: 40 };
      w.health.newErrorRate = 0.3;
      const during = await w.run(10);
      expect(during.record.status).toBe('soaking');
      expect(during.record.weight).toBe(100);
      expect(w.probes.calls).toContain('old');
      expect((await w.events()).map((e) => e.type)).toContain('shared-outage');
      w.health.newErrorRate = 0.001;
      w.probes.health.old = { requests: 120, errors5xx: 0 };
      const done = await w.run(60, (s) => s === 'complete');
      expect(done.record.status).toBe('complete');
      expect((await w.events()).map((e) => e.type)).not.toContain('rolled-back');
    });
  });
});

describe('missing data and alarms without data', () => {
  it('should roll back when 2 of every 3 windows are missing (no run of 3 in a row ever happens)', async () => {
    const w = world();
    await w.controller.start(w.spec);
    await w.run(30, (_, weight) => weight === 10);
    let result = await w.run(0);
    for (let i = 0; i < 30 && result.record.status !== 'rolled-back'; i++) {
      w.health.missing = i % 3 !== 2;
      w.clock.advance(WINDOW);
      result = await w.controller.tick(w.spec.id);
    }
    expect(result.record.status).toBe('rolled-back');
    expect(result.record.lastDecision).toMatchObject({ code: 'signals-missing' });
    expect(result.record.lastDecision?.reason).toMatch(/3 of the last \d+ windows without complete signals/);
  });

  it('should hold at the gate on an alarm in INSUFFICIENT_DATA, then pass once it has data', async () => {
    const w = world();
    w.health.alarms = [{ name: 'p99', state: 'INSUFFICIENT_DATA' }];
    await w.controller.start(w.spec);
    const held = await w.run(3);
    expect(held.record.status).toBe('gating');
    expect(held.record.lastDecision).toMatchObject({ action: 'hold', code: 'alarm-no-data' });
    expect(w.traffic.history).toEqual([]);
    w.health.alarms = [{ name: 'p99', state: 'OK' }];
    await w.run(1);
    expect(w.traffic.history).toEqual([10]);
  });

  it('should not step forward while an alarm has no data after the bake, and pause past maxHold', async () => {
    const w = world();
    await w.controller.start(w.spec);
    await w.run(30, (_, weight) => weight === 10);
    w.health.alarms = [{ name: 'p99', state: 'INSUFFICIENT_DATA' }];
    const held = await w.run(5);
    expect(held.record.weight).toBe(10);
    expect(held.record.lastDecision).toMatchObject({ action: 'hold', code: 'alarm-no-data' });
    const paused = await w.run(200, (s) => s === 'paused');
    expect(paused.record.status).toBe('paused');
    expect(paused.record.lastDecision?.code).toBe('alarm-no-data');
    expect(w.traffic.history).toEqual([10]);
  });
});
