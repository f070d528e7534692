/**
 * One seeded race: a migration driven alone to a random point (sometimes with a failing new side
 * or a desync), then 2–10 controllers, each with its own store instance on the same storage,
 * running ticks and operator commands at once under the seeded scheduler. Afterwards the
 * invariants of `interleave.ts` are checked, a single tick settles whatever is in flight, and the
 * routing must equal the record.
 */
import { expect } from 'vitest';
import { InvalidCommandError, MigrationController, TrafficShiftError, type MigrationRecord, type TickResult } from '../../lambda/core/controller';
import { Command, TERMINAL_STATUSES, type MigrationEvent } from '../../lambda/core/model';
import { MigrationPlan } from '../../lambda/core/plan';
import type { StateStore } from '../../lambda/core/ports';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, SimulatedHealth } from './fakes';
import { Scheduler, expectLogWhole, expectRoutingKnown, expectSettled, reportedEvents, scheduled, seededRandom } from './interleave';

export type Store = StateStore<MigrationRecord, MigrationEvent>;

const WINDOW = 2_000;
export const RACE_PLAN = MigrationPlan.fromSteps(
  [
    { weight: 10, bakeMs: 2 * WINDOW },
    { weight: 50, bakeMs: 2 * WINDOW },
    { weight: 100, bakeMs: WINDOW },
  ],
  { healthWindowMs: WINDOW, soakMs: 2 * WINDOW },
).toSpec();

const COMMANDS = [Command.PAUSE, Command.RESUME, Command.ABORT, Command.PROMOTE, Command.TEARDOWN] as const;

export interface RaceOutcome {
  readonly controllers: number;
  readonly operations: readonly string[];
  readonly steps: number;
  readonly before: string;
  readonly after: string;
}

/**
 * Runs race `seed`. `storeFor(i)` gives controller i its own store instance over the shared
 * storage (i = 0 is the one that drives the migration alone and settles it afterwards).
 */
export async function runRace(seed: number, storeFor: (i: number) => Store, id = `race-${seed}`): Promise<RaceOutcome> {
  const random = seededRandom(seed);
  const clock = new FakeClock();
  const traffic = new FakeTraffic();
  const health = new SimulatedHealth(traffic, seed);
  health.requestsPerWindow = 2_000;
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const sink = new CollectingSink();
  const controllerWith = (store: Store, scheduler?: Scheduler): MigrationController => {
    const wrap = <T extends object>(port: T): T => (scheduler ? scheduled(port, scheduler) : port);
    return new MigrationController({
      clock,
      store: wrap(store),
      traffic: wrap(traffic),
      health: wrap(health),
      probes: wrap(probes),
      capacity: wrap(capacity),
      events: wrap(sink),
    });
  };
  const solo = controllerWith(storeFor(0));
  const plan = { ...RACE_PLAN, teardown: random() < 0.3 ? ('after-soak' as const) : ('manual' as const) };
  await solo.start({ id, plan, judge: { minRequests: 20, maxHoldMs: 60_000 } });

  // Alone to a random point; some runs get a new side that fails, or a desync, on the way.
  const failAt = random() < 0.3 ? Math.floor(random() * 40) : -1;
  const desyncAt = random() < 0.1 ? Math.floor(random() * 40) : -1;
  const soloTicks = Math.floor(random() * 45);
  let record = (await solo.tick(id)).record;
  for (let i = 0; i < soloTicks && !TERMINAL_STATUSES.includes(record.status); i++) {
    if (i === failAt) health.newErrorRate = 0.3;
    if (i === desyncAt) probes.record('new', 'desync', clock.now());
    clock.advance(500);
    record = (await solo.tick(id)).record;
  }
  const before = `${record.status} ${record.weight}%`;

  // The race.
  const scheduler = new Scheduler(seededRandom(seed * 7919 + 1));
  const controllers = 2 + Math.floor(random() * 9);
  const operations = Array.from({ length: controllers }, () => (random() < 0.6 ? 'tick' : COMMANDS[Math.floor(random() * COMMANDS.length)]!));
  const racers = operations.map((_, i) => controllerWith(storeFor(i + 1), scheduler));
  const results = await scheduler.run<TickResult>(
    operations.map((operation, i) => () => (operation === 'tick' ? racers[i]!.tick(id) : racers[i]!.command(id, operation as Command, 'race'))),
    { onStep: () => clock.advance(7) },
  );
  for (const [i, result] of results.entries()) {
    if (result.status === 'fulfilled') continue;
    // A command that does not apply to what a twin already did is refused; a rollback that met
    // routing conflicts more often than it retries stays recorded. Nothing else may fail.
    const allowed = result.reason instanceof InvalidCommandError || result.reason instanceof TrafficShiftError;
    expect(allowed, `seed ${seed}: ${operations[i]} failed: ${String(result.reason)}`).toBe(true);
  }
  const context = `seed ${seed} (${controllers} controllers: ${operations.join(', ')}; from ${before})`;
  const afterRace = (await storeFor(0).load(id))!.record as MigrationRecord;
  expectRoutingKnown(afterRace, traffic, context);
  const log = await expectLogWhole(storeFor(0), afterRace, traffic, reportedEvents(results), context);
  // Every saved event was published exactly once, by the call that saved it.
  expect([...sink.published].sort((a, b) => a.seq - b.seq), `${context}: published events vs log`).toEqual(log);

  // One tick alone settles whatever is in flight.
  clock.advance(500);
  const settled = TERMINAL_STATUSES.includes(afterRace.status) ? afterRace : (await solo.tick(id)).record;
  expectSettled(settled, traffic, context);
  await expectLogWhole(storeFor(0), settled, traffic, [], `${context}, after settling`);
  return { controllers, operations, steps: scheduler.steps, before, after: `${settled.status} ${settled.weight}%` };
}
