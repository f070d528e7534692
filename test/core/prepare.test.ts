/**
 * The gate readies the routing before the first shift (`TrafficPort.prepare`: a DNS record's TTL
 * lowered and the old TTL waited out) and pins a fleet at its desired size, not at whatever is
 * running at that moment.
 */
import { describe, expect, it } from 'vitest';
import { MigrationController, type MigrationSpec } from '../../lambda/core/controller';
import { MigrationPlan } from '../../lambda/core/plan';
import type { CapacityStatus, TrafficPreparation } from '../../lambda/core/ports';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';

const WINDOW = 10_000;
const plan = MigrationPlan.fromSteps([{ weight: 10, bakeMs: 3 * WINDOW }, { weight: 100, bakeMs: 2 * WINDOW }], {
  healthWindowMs: WINDOW,
  soakMs: WINDOW,
}).toSpec();
const spec: MigrationSpec = { id: 'api:dns:r2', plan, metadata: {} };

/** A DNS-like routing: the first call lowers the TTL from 300 s, later calls find it already low. */
class PreparingTraffic extends FakeTraffic {
  ttl = 300;
  failures = 0;
  readonly preparations: TrafficPreparation[] = [];
  constructor(private readonly clock: FakeClock) {
    super();
  }
  async prepare(): Promise<TrafficPreparation> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('Throttling: Rate exceeded');
    }
    let answer: TrafficPreparation;
    if (this.ttl > 60) {
      const old = this.ttl;
      this.ttl = 60;
      answer = { ready: false, reason: `TTL lowered from ${old} s to 60 s`, readyAtMs: this.clock.now() + old * 1000 };
    } else {
      answer = { ready: true, reason: 'TTL is 60 s' };
    }
    this.preparations.push(answer);
    return answer;
  }
}

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const traffic = new PreparingTraffic(clock);
  const health = new SimulatedHealth(traffic, 7);
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const controller = new MigrationController({ clock, store, traffic, health, probes, capacity, events: new CollectingSink() });
  return { clock, store, traffic, capacity, controller };
}

describe('gate: TrafficPort.prepare', () => {
  it('holds the first shift until the old TTL has expired, says why in the timeline, and keeps the wait across ticks', async () => {
    const world = setup();
    await world.controller.start(spec);
    const first = await world.controller.tick(spec.id);
    expect(first.record.weight).toBe(0);
    expect(first.decision?.code).toBe('traffic-preparing');
    expect(first.decision?.reason).toContain('TTL lowered from 300 s to 60 s');
    expect(first.record.trafficReadyAtMs).toBe(world.clock.now() + 300_000);

    // The TTL is low now, but caches may still hold the 300 s answer: the gate keeps waiting.
    world.clock.advance(100_000);
    const second = await world.controller.tick(spec.id);
    expect(second.record.weight).toBe(0);
    expect(second.decision?.code).toBe('traffic-preparing');
    expect(second.decision?.reason).toMatch(/waiting 200 s more/);

    world.clock.advance(200_000);
    const third = await world.controller.tick(spec.id);
    expect(third.record.weight).toBe(10);
    expect(world.traffic.history).toEqual([10]);

    const held = (await world.store.events(spec.id)).filter((e) => e.code === 'traffic-preparing');
    // One timeline entry for the wait, not one per tick.
    expect(held).toHaveLength(1);
    expect(held[0]!.reason).toContain('TTL lowered');
  });

  it('never shifts when the preparation fails, and passes once it succeeds', async () => {
    const world = setup();
    world.traffic.ttl = 60;
    world.traffic.failures = 2;
    await world.controller.start(spec);
    for (let i = 0; i < 2; i++) {
      const result = await world.controller.tick(spec.id);
      expect(result.record.weight).toBe(0);
      expect(result.decision?.action).toBe('hold');
      world.clock.advance(1000);
    }
    const passed = await world.controller.tick(spec.id);
    expect(passed.record.weight).toBe(10);
  });

  it('survives a damaged readiness time: a record with a bad trafficReadyAtMs fails safe, never shifts', async () => {
    const world = setup();
    await world.controller.start(spec);
    await world.controller.tick(spec.id);
    const { record } = (await world.store.load(spec.id))!;
    world.store.damage(spec.id, { ...record, trafficReadyAtMs: 'soon' });
    const result = await world.controller.tick(spec.id);
    expect(result.record.weight).toBe(0);
    expect(result.record.damage?.what).toMatch(/trafficReadyAtMs/);
  });
});

describe('gate: pinning a fleet', () => {
  it('pins at the desired size when fewer units are running at that moment', async () => {
    const world = setup();
    world.traffic.ttl = 60;
    world.capacity.current = 3;
    world.capacity.ready = false;
    const read = world.capacity.read.bind(world.capacity);
    world.capacity.read = async (): Promise<CapacityStatus> => ({ ...(await read()), desired: 4 });
    await world.controller.start(spec);
    const result = await world.controller.tick(spec.id);
    expect(result.record.pinnedCapacity).toBe(4);
    expect(world.capacity.calls[0]).toBe('pin 4');
    expect(result.record.weight).toBe(0);
  });
});
