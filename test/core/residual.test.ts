/**
 * A rollback is not done until the new side is empty: the controller drains it (once), watches its
 * requests window by window, and reports what still reached it and how long it took, also when two
 * ticks run at once, when a tick fails halfway, and when the watch's record is damaged.
 */
import { describe, expect, it } from 'vitest';
import { MigrationController, type MigrationSpec } from '../../lambda/core/controller';
import { MigrationPlan } from '../../lambda/core/plan';
import type { HealthWindow, WindowReadOptions } from '../../lambda/core/ports';
import { MAX_WATCH_MS, type ResidualReport } from '../../lambda/core/residual';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';

const WINDOW = 60_000;
const plan = MigrationPlan.fromSteps([{ weight: 50, bakeMs: 5 * WINDOW }, { weight: 100, bakeMs: 2 * WINDOW }], { healthWindowMs: WINDOW, soakMs: WINDOW }).toSpec();
const spec: MigrationSpec = { id: 'api:fleet:r2', plan, metadata: {} };

/** A routing that can drain (like a load balancer shortening its client Keep-Alive). */
class DrainingTraffic extends FakeTraffic {
  drains = 0;
  undrains = 0;
  failDrain = false;
  async drain(): Promise<string> {
    this.drains++;
    if (this.failDrain) throw new Error('Throttling: Rate exceeded');
    return 'client Keep-Alive of the new load balancer shortened from 3600 s to 60 s';
  }
  async undrain(): Promise<string> {
    this.undrains++;
    return 'client Keep-Alive of the new load balancer back to 3600 s';
  }
}

/** Until the rollback, the simulated traffic; after it, the residual requests given per window. */
class ResidualHealth extends SimulatedHealth {
  residual: number[] = [];
  rolledBack = false;
  failNext = false;
  override async readWindow(fromMs: number, toMs: number, options?: WindowReadOptions): Promise<HealthWindow | undefined> {
    if (!this.rolledBack) return super.readWindow(fromMs, toMs, options);
    if (this.failNext) {
      this.failNext = false;
      throw new Error('GetMetricData: ThrottlingException');
    }
    const n = this.residual.shift() ?? 0;
    return { fromMs, toMs, old: { requests: 1000, errors4xx: 0, errors5xx: 0 }, new: { requests: n, errors4xx: 0, errors5xx: 0 } };
  }
}

function setup(drain = true) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const traffic = drain ? new DrainingTraffic() : new FakeTraffic();
  const health = new ResidualHealth(traffic, 3);
  health.requestsPerWindow = 2000;
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const controller = new MigrationController({ clock, store, traffic, health, probes, capacity, events: new CollectingSink() });
  return { clock, store, traffic: traffic as DrainingTraffic, health, probes, controller };
}

type World = ReturnType<typeof setup>;

/** Runs to the first step, bakes a little, then rolls back on a desync (or a 5XX spike). */
async function rollBack(world: World, cause: 'desync' | 'errors') {
  await world.controller.start(spec);
  let result = await world.controller.tick(spec.id);
  for (let i = 0; i < 10 && result.record.weight !== 50; i++) {
    world.clock.advance(WINDOW);
    result = await world.controller.tick(spec.id);
  }
  expect(result.record.weight).toBe(50);
  for (let i = 0; i < 3; i++) {
    world.clock.advance(WINDOW);
    await world.controller.tick(spec.id);
  }
  if (cause === 'desync') world.probes.record('new', 'desync', world.clock.now());
  else world.health.newErrorRate = 0.5;
  for (let i = 0; i < 10 && result.record.status !== 'rolled-back'; i++) {
    world.clock.advance(WINDOW);
    result = await world.controller.tick(spec.id);
  }
  expect(result.record.status).toBe('rolled-back');
  world.health.rolledBack = true;
  return result;
}

async function residualEvent(world: World) {
  const events = await world.store.events(spec.id);
  return events.filter((e) => e.type === 'rollback-residual');
}

describe('residual watch after a rollback', () => {
  it('drains once, counts what still reaches the new side, and reports when it falls to 1 % of its peak', async () => {
    const world = setup();
    const rolled = await rollBack(world, 'desync');
    const peak = rolled.record.residual!.peakPerMinute;
    expect(peak).toBeGreaterThan(800); // about half of 2000 per minute
    world.health.residual = [300, 120, 40, Math.floor(peak * 0.01)];
    for (let i = 0; i < 6; i++) {
      world.clock.advance(WINDOW);
      await world.controller.tick(spec.id);
    }
    expect(world.traffic.drains).toBe(1);
    const [event, ...more] = await residualEvent(world);
    expect(more).toHaveLength(0);
    const residual = event!.signals!.residual as ResidualReport;
    expect(residual).toMatchObject({
      requestsAfterRollback: 460 + Math.floor(peak * 0.01),
      drained: true,
      drainedAfterMs: 4 * WINDOW,
      activeDrain: true,
      // The rollback was for a desync: each of those requests may have been a wrong answer.
      wrongAnswersBound: true,
      wrongAnswersAfterRollback: 460 + Math.floor(peak * 0.01),
    });
    expect(event!.code).toBe('residual-drained');
    const drained = (await world.store.events(spec.id)).find((e) => e.type === 'drain-requested');
    expect(drained?.reason).toContain('Keep-Alive');
    // The weight never moved off 0 while watching.
    expect(world.traffic.history.at(-1)).toBe(0);
  });

  it('says the routing drains by itself when it has no drain, and counts no wrong answers after a 5XX rollback', async () => {
    const world = setup(false);
    await rollBack(world, 'errors');
    world.health.residual = [0];
    world.clock.advance(WINDOW);
    await world.controller.tick(spec.id);
    const [event] = await residualEvent(world);
    expect(event!.signals!.residual).toMatchObject({ requestsAfterRollback: 0, wrongAnswersAfterRollback: 0, wrongAnswersBound: false, activeDrain: false, drained: true });
    expect((await world.store.events(spec.id)).find((e) => e.type === 'drain-requested')?.reason).toMatch(/drains by itself/);
  });

  it('gives up after the longest watch and says the new side still receives requests', async () => {
    const world = setup();
    await rollBack(world, 'errors');
    world.health.residual = Array.from({ length: 80 }, () => 200);
    for (let t = 0; t <= MAX_WATCH_MS; t += WINDOW) {
      world.clock.advance(WINDOW);
      await world.controller.tick(spec.id);
    }
    const events = await residualEvent(world);
    expect(events).toHaveLength(1);
    expect(events[0]!.code).toBe('residual-not-drained');
    expect(events[0]!.signals!.residual).toMatchObject({ drained: false, drainedAfterMs: null });
    expect(events[0]!.reason).toMatch(/close its connections/);
  });

  it('keeps the drain through a teardown while draining, and undoes it once the watch ends', async () => {
    const world = setup();
    await rollBack(world, 'errors');
    world.health.residual = [500, 500, 0];
    world.clock.advance(WINDOW);
    await world.controller.tick(spec.id);
    await world.controller.command(spec.id, 'teardown', 'operator: old side is enough');
    expect(world.traffic.undrains).toBe(0);
    expect((await world.store.events(spec.id)).some((e) => e.type === 'drain-kept')).toBe(true);
    for (let i = 0; i < 3; i++) {
      world.clock.advance(WINDOW);
      await world.controller.tick(spec.id);
    }
    expect(world.traffic.undrains).toBe(1);
    expect((await world.store.events(spec.id)).filter((e) => e.type === 'drain-undone')).toHaveLength(1);
  });

  it('survives a failed drain and a failed window read: the watch goes on and nothing is counted twice', async () => {
    const world = setup();
    await rollBack(world, 'errors');
    world.traffic.failDrain = true;
    world.health.failNext = true;
    world.health.residual = [100, 0];
    for (let i = 0; i < 4; i++) {
      world.clock.advance(WINDOW);
      await world.controller.tick(spec.id);
    }
    const drain = (await world.store.events(spec.id)).find((e) => e.type === 'drain-requested');
    expect(drain?.reason).toMatch(/could not ask the new side to drain/);
    const [event] = await residualEvent(world);
    expect(event!.signals!.residual).toMatchObject({ requestsAfterRollback: 100, drained: true });
  });

  it('counts each window once when two ticks run at once', async () => {
    const world = setup();
    await rollBack(world, 'errors');
    world.health.residual = [250, 250, 0, 0];
    world.clock.advance(WINDOW);
    // Both ticks load the same record; the one that saves second loses and changes nothing.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let waiting = 0;
    world.store.beforeSave = async () => {
      if (waiting++ === 0) await gate;
    };
    const first = world.controller.tick(spec.id);
    const second = world.controller.tick(spec.id);
    const settled = await Promise.allSettled([second.finally(release), first]);
    world.store.beforeSave = undefined;
    expect(settled.filter((s) => s.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) {
      world.clock.advance(WINDOW);
      await world.controller.tick(spec.id);
    }
    const [event] = await residualEvent(world);
    // Two windows of 250 were offered: the losing tick's read is not saved, so a later tick reads
    // the next window; the total counts only saved windows.
    const residual = event!.signals!.residual as ResidualReport;
    expect(residual.drained).toBe(true);
    expect([250, 500]).toContain(residual.requestsAfterRollback);
  });

  it('fails safe on a damaged watch: the record is quarantined and traffic stays on the old side', async () => {
    const world = setup();
    const rolled = await rollBack(world, 'errors');
    world.store.damage(spec.id, { ...rolled.record, residual: { ...rolled.record.residual!, requests: -3 } });
    world.clock.advance(WINDOW);
    const result = await world.controller.tick(spec.id);
    expect(result.record.damage?.what).toMatch(/residual/);
    expect(world.traffic.weight).toBe(0);
  });
});
