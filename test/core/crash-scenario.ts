/**
 * Crash injection: a tick or command killed at every port-call boundary in turn (before the call
 * acts, and after it acted but before the controller saw its result), then a restarted controller
 * (a new store instance on the same storage) ticks again after a short or a long pause.
 *
 * For every boundary it checks:
 * - right after the crash, the routing is at a weight the record knows (`expectRoutingKnown`);
 * - after the next tick, nothing is in flight and the routing equals the record (`expectSettled`);
 * - the event log is whole: numbered without gaps or repeats, no step entered twice, no weight
 *   raised twice (`expectLogWhole`);
 * - the old side's pin is released exactly when the record says so;
 * - after a long pause (longer than `evidenceGapMs`), no step, promotion bake or soak ends before
 *   health data covering its whole length, gathered after the restart, was judged.
 *
 * The migration is driven to the moment of interest with the in-memory store (deterministic and
 * fast), then copied into the store under test, so the file store and DynamoDB are exercised
 * exactly where the crash happens.
 */
import { expect } from 'vitest';
import { MigrationController, evidenceGapMs, type MigrationRecord, type TickResult } from '../../lambda/core/controller';
import { Command, MigrationStatus, TERMINAL_STATUSES, type MigrationEvent } from '../../lambda/core/model';
import { MigrationPlan } from '../../lambda/core/plan';
import type { StateStore } from '../../lambda/core/ports';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';
import { CrashSwitch, expectLogWhole, expectRoutingKnown, expectSettled } from './interleave';

export type Store = StateStore<MigrationRecord, MigrationEvent>;

const WINDOW = 1_000;
const PLAN = MigrationPlan.fromSteps(
  [
    { weight: 10, bakeMs: 2 * WINDOW },
    { weight: 50, bakeMs: 2 * WINDOW },
    { weight: 100, bakeMs: WINDOW },
  ],
  { healthWindowMs: WINDOW, soakMs: 2 * WINDOW },
).toSpec();

/** One moment of interest: how to get there, and the call that is killed there. */
export interface CrashPoint {
  readonly name: string;
  readonly teardown?: 'manual' | 'after-soak';
  /** Changes to the world before the first tick (e.g. a failing new side from some tick on). */
  readonly arrange?: (world: CrashWorld, tick: number) => void;
  /**
   * The moment: the first tick that saves an event this accepts. That tick is the one killed; with
   * `command`, the command is killed right after that tick.
   */
  readonly until: (event: MigrationEvent) => boolean;
  /** A command instead of a tick as the call to kill. */
  readonly command?: Command;
}

export const CRASH_POINTS: readonly CrashPoint[] = [
  { name: 'the gate passes and the first step starts', until: (e) => e.type === 'gating' },
  { name: 'a step bakes and the weight rises', until: (e) => e.type === 'advanced' && e.step === 1 },
  { name: 'the last step bakes and the new side is promoted', until: (e) => e.type === 'promoted' },
  {
    name: 'the judge rolls back a failing new side',
    arrange: (world, tick) => {
      if (tick === 6) world.health.newErrorRate = 0.4;
    },
    until: (e) => e.type === 'rolled-back',
  },
  {
    name: 'a periodic probe finds a desync',
    arrange: (world, tick) => {
      if (tick === 4) world.probes.record('new', 'desync', world.clock.now());
    },
    until: (e) => e.type === 'rolled-back',
  },
  {
    name: 'the old side fell below its pin and is restored',
    arrange: (world, tick) => {
      if (tick === 5) world.capacity.current = 3;
    },
    until: (e) => e.type === 'capacity-restoring',
  },
  { name: 'the soak passes and the plan releases the old side', teardown: 'after-soak', until: (e) => e.type === 'torn-down' },
  { name: 'an operator aborts mid-bake', until: (e) => e.type === 'advanced' && e.step === 1, command: Command.ABORT },
  { name: 'an operator promotes mid-bake', until: (e) => e.type === 'advanced' && e.step === 1, command: Command.PROMOTE },
  { name: 'an operator tears down a complete migration', until: (e) => e.type === 'completed', command: Command.TEARDOWN },
];

export interface CrashWorld {
  readonly clock: FakeClock;
  readonly traffic: FakeTraffic;
  readonly health: SimulatedHealth;
  readonly probes: FakeProbes;
  readonly capacity: FakeCapacity;
  readonly sink: CollectingSink;
}

function newWorld(): CrashWorld {
  const clock = new FakeClock();
  const traffic = new FakeTraffic();
  const health = new SimulatedHealth(traffic, 11);
  health.requestsPerWindow = 1_000;
  return { clock, traffic, health, probes: new FakeProbes(clock), capacity: new FakeCapacity(), sink: new CollectingSink() };
}

function controller(world: CrashWorld, store: Store, crash?: CrashSwitch): MigrationController {
  const wrap = <T extends object>(port: T, label: string): T => (crash ? crash.wrap(port, label) : port);
  return new MigrationController({
    clock: world.clock,
    store: wrap(store, 'store'),
    traffic: wrap(world.traffic, 'traffic'),
    health: wrap(world.health, 'health'),
    probes: wrap(world.probes, 'probes'),
    capacity: wrap(world.capacity, 'capacity'),
    events: wrap(world.sink, 'events'),
  });
}

/**
 * Drives a fresh world alone with the in-memory store. Stops before tick `stopBefore` (to copy
 * and kill there), or after the tick that saves an event `point.until` accepts: returns that
 * tick's index.
 */
async function drive(point: CrashPoint, id: string, stopBefore?: number): Promise<{ world: CrashWorld; memory: MemoryStore; index: number }> {
  const world = newWorld();
  const memory = new MemoryStore();
  const solo = controller(world, memory);
  await solo.start({ id, plan: { ...PLAN, teardown: point.teardown ?? 'manual' }, judge: { minRequests: 20 } });
  for (let index = 0; index < 60; index++) {
    point.arrange?.(world, index);
    if (index === stopBefore) return { world, memory, index };
    const result = await solo.tick(id);
    if (world.capacity.ready === false) world.capacity.ready = true; // the restore finishes warming up
    world.clock.advance(500);
    if (result.events.some(point.until)) return { world, memory, index };
  }
  throw new Error(`${point.name}: never reached its moment`);
}

/** Copies the record and its whole log into `store` (version 1). */
async function copyInto(memory: MemoryStore, id: string, store: Store): Promise<void> {
  const { record } = (await memory.load(id))!;
  await store.save(id, record, 0, await memory.events(id));
}

export interface CrashRun {
  readonly boundary: string;
  readonly pause: 'short' | 'long';
}

/**
 * Kills `point`'s call at every boundary, before and after, with a short and a long pause before
 * the restart. `storage()` gives a fresh storage for one run and a way to open store instances
 * on it (the second instance is the restarted process's); `wrapStore` lets a store's own backend
 * calls pass the crash switch too (DynamoDB's SDK calls).
 */
export async function crashEverywhere(
  point: CrashPoint,
  storage: () => Promise<{ open: (crash?: CrashSwitch) => Store }> | { open: (crash?: CrashSwitch) => Store },
): Promise<CrashRun[]> {
  const runs: CrashRun[] = [];
  const reference = await drive(point, 'reference');
  for (let at = 1; ; at++) {
    let reached = false;
    for (const when of ['before', 'after'] as const) {
      for (const pause of ['short', 'long'] as const) {
        const id = `crash-${point.name.replace(/[^A-Za-z0-9]+/g, '-')}-${at}-${when}-${pause}`;
        // A tick is killed in place of the reference's tick; a command right after it.
        const { world, memory } = await drive(point, id, point.command ? undefined : reference.index);
        const { open } = await storage();
        await copyInto(memory, id, open());
        const crash = new CrashSwitch(at, when);
        const victim = controller(world, open(crash), crash);
        let outcome: TickResult | unknown;
        try {
          outcome = point.command ? await victim.command(id, point.command, 'crash test') : await victim.tick(id);
        } catch (error) {
          outcome = error;
        }
        if (!crash.dead) {
          // The call made fewer than `at` port calls: every boundary has been tried.
          expect(outcome instanceof Error ? String(outcome) : 'ok', `${point.name}: the call itself failed without a crash`).toBe('ok');
          continue;
        }
        reached = true;
        const boundary = `${when} ${crash.trail.at(-1)}`;
        const context = `${point.name}, crash ${boundary} (${pause} pause)`;
        const restartStore = open();
        const found = (await restartStore.load(id))!.record as MigrationRecord;
        expectRoutingKnown(found, world.traffic, `${context}, right after the crash`);

        // The restarted process.
        const restartAt = world.clock.now() + (pause === 'short' ? 500 : 2 * evidenceGapMs(found));
        world.clock.ms = restartAt;
        const restarted = controller(world, restartStore);
        const record = (await restarted.tick(id)).record;
        expectSettled(record, world.traffic, context);
        await expectLogWhole(restartStore, record, world.traffic, [], context);
        expectPinAsRecorded(record, world.capacity, context);
        if (pause === 'long') await expectFreshEvidence(restarted, restartStore, world, id, restartAt, record, context);
        runs.push({ boundary, pause });
      }
    }
    if (!reached) return runs;
  }
}

/** The old side is pinned unless the record says the pin was released. */
function expectPinAsRecorded(record: MigrationRecord, capacity: FakeCapacity, context: string): void {
  if (!record.pinnedCapacity) return;
  if (record.capacityReleased) expect(capacity.pinned, `${context}: record says released, pin still in place`).toBeUndefined();
  else expect(capacity.pinned, `${context}: the pin was released but the record does not say so`).toBe(record.pinnedCapacity);
}

/**
 * After a long pause, the restarted controller keeps ticking; no phase may end before data
 * covering all of it, from after the restart, was judged.
 */
async function expectFreshEvidence(
  restarted: MigrationController,
  store: Store,
  world: CrashWorld,
  id: string,
  restartAt: number,
  first: MigrationRecord,
  context: string,
): Promise<void> {
  let record = first;
  for (let i = 0; i < 12 && !TERMINAL_STATUSES.includes(record.status) && record.status !== MigrationStatus.PAUSED; i++) {
    world.clock.advance(500);
    if (world.capacity.ready === false) world.capacity.ready = true;
    record = (await restarted.tick(id)).record;
  }
  for (const event of await store.events(id)) {
    // The decisions that end a phase, made by the restarted controller: raising the weight after
    // a step's bake (a `shifting` event towards the next step), ending the promotion bake, ending
    // the soak. A change the crashed call had already recorded is settled at the restart, but it
    // was decided on evidence from before the crash, whose phase had been covered whole.
    const raise = event.type === 'shifting' && /→ step \d+ of \d+/.test(event.reason) && event.step >= 0;
    const ended = raise
      ? PLAN.steps[event.step]!.bakeMs
      : event.type === 'soaking'
        ? PLAN.steps[PLAN.steps.length - 1]!.bakeMs
        : event.type === 'completed'
          ? PLAN.soakMs
          : undefined;
    if (ended === undefined || event.atMs < restartAt) continue;
    expect(event.atMs - restartAt, `${context}: ${event.type} (${event.reason}) ${event.atMs - restartAt} ms after the restart, before ${ended} ms of fresh data`).toBeGreaterThanOrEqual(ended);
  }
}
