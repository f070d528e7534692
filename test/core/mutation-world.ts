/**
 * Shared set-up for the mutation-testing suites (test/core/mutation-*.test.ts): the fakes of
 * fakes.ts wired to a controller, the plan of controller.test.ts, and a few ports that misbehave
 * in exactly one way (a router that keeps losing races, a health source that counts its reads).
 */
import { MigrationController, type MigrationSpec, type TickResult } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import { MigrationPlan } from '../../lambda/core/plan';
import type { TrafficState } from '../../lambda/core/ports';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';

export const WINDOW = 10_000;

/** 10 % and 50 % for three windows each, 100 % for two, a soak of three windows. */
export const PLAN = MigrationPlan.fromSteps(
  [
    { weight: 10, bakeMs: 3 * WINDOW },
    { weight: 50, bakeMs: 3 * WINDOW },
    { weight: 100, bakeMs: 2 * WINDOW },
  ],
  { healthWindowMs: WINDOW, soakMs: 3 * WINDOW },
).toSpec();

export const SPEC: MigrationSpec = { id: 'orders:live:7', plan: PLAN };

/**
 * A router on which someone else writes right before each of the controller's writes, so every
 * write meets a revision conflict, `conflicts` times; the write after that goes through. Past
 * `runawayAfter` writes it throws a plain error, so a retry loop that never stops fails the test
 * instead of hanging it.
 */
export class ConflictingTraffic extends FakeTraffic {
  conflicts = 0;
  writes = 0;
  runawayAfter = 50;
  /** The weight the other writer sets (undefined: it leaves the weight as it is). */
  twinWeight: number | undefined;
  override async setWeight(weight: number, expectedRevision: string): Promise<TrafficState> {
    this.writes++;
    if (this.writes > this.runawayAfter) throw new Error(`runaway: ${this.writes} writes`);
    if (this.conflicts > 0) {
      this.conflicts--;
      this.revision++; // another writer got there first
      if (this.twinWeight !== undefined) this.weight = this.twinWeight;
    }
    return super.setWeight(weight, expectedRevision);
  }
}

export function setup(traffic: FakeTraffic = new FakeTraffic()) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const health = new SimulatedHealth(traffic, 42);
  health.requestsPerWindow = 5000;
  health.clock = clock;
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const sink = new CollectingSink();
  const controller = new MigrationController({ clock, store, traffic, health, probes, capacity, events: sink });
  return { clock, store, traffic, health, probes, capacity, sink, controller };
}

export type World = ReturnType<typeof setup>;

/** Ticks every second of fake time until `stop` holds or `maxTicks` is reached. */
export async function runUntil(world: World, id: string, stop: (result: TickResult) => boolean, maxTicks = 500): Promise<TickResult> {
  let result = await world.controller.tick(id);
  for (let i = 0; i < maxTicks && !stop(result); i++) {
    world.clock.advance(1000);
    if (world.capacity.ready === false) world.capacity.ready = true; // warm-up finishes
    result = await world.controller.tick(id);
  }
  return result;
}

/** Starts `spec` and ticks until the record's status is `status` (fails loudly if never). */
export async function startAndRunTo(world: World, status: string, spec: MigrationSpec = SPEC): Promise<TickResult> {
  await world.controller.start(spec);
  const result = await runUntil(world, spec.id, (r) => r.record.status === status);
  if (result.record.status !== status) throw new Error(`never reached ${status} (stopped at ${result.record.status})`);
  return result;
}

export async function log(world: World, id = SPEC.id): Promise<readonly MigrationEvent[]> {
  return world.store.events(id);
}
