/**
 * The race the shared schedules must keep closed (controller-schedules.ts): a deploy marking a
 * migration live and enabling while a controller clears a finished one's mark, disables and reads
 * the registry again; two controller ticks at once; a tick that dies between any two of its steps.
 * Whatever happens, the schedule is never left off while something is live, once Lambda's retry of
 * a failed tick (or the next tick) has run.
 *
 * The deploy's steps are placed at EVERY position among the tick's port calls (each combination, in
 * order), so the interleavings of the two sequences are all tried, not sampled; two ticks at once
 * are interleaved by the seeded scheduler of test/core/interleave.ts. The registry is in dynalite.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { ScheduleSwitch } from '../../lambda/aws/schedules';
import { seededRandom } from '../../local/random';
import { Scheduler, scheduled } from '../core/interleave';
import { CONTROLLER_RULE, PROBE_RULE, SCHEDULED, deploySteps, makeDispatchWorld, type DispatchWorld } from './controller-dispatch-world';
import { FakeAccount } from './fake-account';
import { captureOutput, startDynalite, type LocalDynamo } from './helpers';

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let output: ReturnType<typeof captureOutput>;
const RULES = { controller: CONTROLLER_RULE, probe: PROBE_RULE };
const TARGETS = { CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://new.example.com/"}]' };

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  account.restore();
  await dynamo.close();
});
beforeEach(() => {
  account.resetState();
  output = captureOutput();
});
afterEach(() => output.restore());

/** A process that died: every later call of it fails without acting. */
class Crash extends Error {}

/**
 * Wraps `port` so that `before(label)` runs before each of its calls acts (a deploy step placed
 * there, or a crash).
 */
function instrument<T extends object>(port: T, name: string, before: (label: string) => Promise<void>): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') return value;
      return async (...args: unknown[]) => {
        await before(`${name}.${property}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Every way to place `steps` ordered steps at positions 0..n (before the tick's call of that index; n: after it). */
function placements(steps: number, n: number): number[][] {
  if (steps === 0) return [[]];
  const out: number[][] = [];
  for (const rest of placements(steps - 1, n)) {
    const from = rest.at(-1) ?? 0;
    for (let p = from; p <= n; p++) out.push([...rest, p]);
  }
  return out;
}

interface Scenario {
  /** The key the deploy records a migration for: the finished one's (a new version) or another. */
  readonly deployKey: string;
  /** Tick call index before which it dies (undefined: it does not). */
  readonly crashAt?: number;
}

/** A world with `a:live` marked live and finished (the tick will let it go), both rules on. */
async function finishedWorld(): Promise<DispatchWorld> {
  const world = await makeDispatchWorld(dynamo);
  await world.register('a:live', TARGETS);
  await world.register('b:live', TARGETS);
  world.key('a:live').current = { id: 'a:live:2', live: false };
  await world.registry.markLive('a:live', 'a:live:2', 1_000);
  account.rules.set(CONTROLLER_RULE, 'ENABLED');
  account.rules.set(PROBE_RULE, 'ENABLED');
  return world;
}

/**
 * One tick of the controller with the deploy's three steps placed before its calls `at`, or after
 * it; the tick dies before its call `crashAt`. Returns the order in which things acted.
 */
async function race(world: DispatchWorld, scenario: Scenario, at: readonly number[]): Promise<{ trace: string[]; tickError: unknown }> {
  const trace: string[] = [];
  const deployId = `${scenario.deployKey}:3`;
  const steps = deploySteps(world, scenario.deployKey, deployId, new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), RULES), true);
  const pending = [
    ['deploy.pointer', steps.pointer],
    ['deploy.markLive', steps.markLive],
    ['deploy.enable', steps.enable],
  ] as const;
  let next = 0;
  let calls = 0;
  let dead = false;
  const runDeployUpTo = async (position: number) => {
    while (next < pending.length && at[next]! <= position) {
      const [label, step] = pending[next++]!;
      trace.push(label);
      await step();
    }
  };
  const before = async (label: string) => {
    if (dead) throw new Crash(`${label} after the crash`);
    const index = calls++;
    await runDeployUpTo(index);
    if (scenario.crashAt === index) {
      dead = true;
      throw new Crash(`died before ${label}`);
    }
    trace.push(`tick.${label}`);
  };
  const dispatcher = world.dispatcher({
    registry: instrument(world.registry, 'registry', before),
    switch: instrument(new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), RULES), 'switch', before),
    wrapRunner: (server) => instrument(server, 'runner', before),
  });
  const fired = { ...SCHEDULED, time: new Date(world.clock.now).toISOString() };
  const tickError = await dispatcher.handle(fired).then(
    () => undefined,
    (error: unknown) => error,
  );
  // Whatever the tick did, the deploy finishes its steps.
  await runDeployUpTo(Number.POSITIVE_INFINITY);
  if (tickError !== undefined) {
    // Lambda retries a failed asynchronous invocation with the same event, a minute later or more.
    world.clock.now += 60_000;
    await world.dispatcher().handle(fired);
  }
  return { trace, tickError };
}

/** The invariants once the tick (and Lambda's retry of it) and the deploy are over. */
async function expectSettled(world: DispatchWorld, deployKey: string, what: string): Promise<void> {
  const { migrations } = await world.list();
  const marks = Object.fromEntries(migrations.map((m) => [m.migrationKey, m.live?.migrationId]));
  // The new migration is marked; the finished one's mark is gone (unless the key is the deploy's).
  expect(marks[deployKey], what).toBe(`${deployKey}:3`);
  if (deployKey !== 'a:live') expect(marks['a:live'], what).toBeUndefined();
  // Something live: both rules on (the deployed migration has probe targets).
  expect({ controller: account.rules.get(CONTROLLER_RULE), probe: account.rules.get(PROBE_RULE) }, what).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
}

describe('a deploy marking live while the controller quiesces', () => {
  for (const deployKey of ['b:live', 'a:live']) {
    it(`should leave the schedules on in every interleaving of the two sequences (deploy of ${deployKey === 'a:live' ? 'the finished key' : 'another key'})`, async () => {
      // The tick's calls when nothing interferes: list, serve, clearLive, list, disable, list.
      const n = 6;
      const seen = new Set<string>();
      for (const at of placements(3, n)) {
        account.resetState();
        const world = await finishedWorld();
        const { trace, tickError } = await race(world, { deployKey }, at);
        expect(tickError, `${at.join(',')}: ${trace.join(' → ')}`).toBeUndefined();
        await expectSettled(world, deployKey, trace.join(' → '));
        seen.add(trace.join(' → '));
      }
      // Among them the three that matter: marked before the tick's check, between its disable and
      // its re-read, and after the re-read (the deploy's enable then comes last).
      const orders = [...seen];
      expect(orders.some((o) => /deploy.markLive.*tick.registry.list/.test(o) && !/disableSome/.test(o))).toBe(true);
      expect(orders.some((o) => /tick.switch.disableSome → (deploy.pointer → )?deploy.markLive → (deploy.enable → )?tick.registry.list/.test(o))).toBe(true);
      expect(orders.some((o) => /disableSome → tick.registry.list.*deploy.markLive → deploy.enable$/.test(o))).toBe(true);
    }, 60_000);
  }
});

describe('a tick that dies', () => {
  // Before its call k: 2 = between serving (the run saw the migration finished) and clearLive, 3 =
  // between clearLive and its check, 4 = between the check and the disable, 5 = between the disable
  // and the re-read.
  for (const crashAt of [2, 3, 4, 5]) {
    it(`should be healed by Lambda's retry or the next tick when it dies before its call ${crashAt}, whatever the deploy does meanwhile`, async () => {
      for (const at of placements(3, 6)) {
        account.resetState();
        const world = await finishedWorld();
        const { trace } = await race(world, { deployKey: 'b:live', crashAt }, at);
        // Lambda's retry ran (see race); one more scheduled tick on time settles anything left.
        await world.dispatcher().handle(SCHEDULED);
        await expectSettled(world, 'b:live', trace.join(' → '));
      }
    }, 60_000);
  }

  it('should leave the schedule on when it dies between clearLive and the disable, and the next tick switches off', async () => {
    const world = await finishedWorld();
    // No deploy: all three steps placed after the tick; the deploy key is not deployed at all here.
    let calls = 0;
    const before = async () => {
      if (calls++ === 3) throw new Crash('died after clearLive');
    };
    await expect(world.dispatcher({ registry: instrument(world.registry, 'registry', before), wrapRunner: (s) => instrument(s, 'runner', before) }).handle(SCHEDULED)).rejects.toThrow(Crash);
    expect((await world.list()).migrations.every((m) => m.live === undefined)).toBe(true);
    expect(account.rules.get(CONTROLLER_RULE)).toBe('ENABLED');
    await world.dispatcher().handle(SCHEDULED);
    expect({ controller: account.rules.get(CONTROLLER_RULE), probe: account.rules.get(PROBE_RULE) }).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
  });
});

describe('two ticks at once', () => {
  it('should agree on the marks and the schedules in every seeded interleaving, with a deploy running too', async () => {
    const orders = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      account.resetState();
      const world = await makeDispatchWorld(dynamo);
      const random = seededRandom(seed);
      // Three migrations, each live or finished by the seed; all marked (they were live).
      for (const key of ['a:live', 'b:live', 'c:live']) {
        await world.register(key, TARGETS);
        world.key(key).current = { id: `${key}:2`, live: random() < 0.4 };
        await world.registry.markLive(key, `${key}:2`, 1_000);
      }
      await world.register('d:live', TARGETS);
      account.rules.set(CONTROLLER_RULE, 'ENABLED');
      account.rules.set(PROBE_RULE, 'ENABLED');
      const scheduler = new Scheduler(seededRandom(seed * 7919 + 1));
      const order: string[] = [];
      const tick = (name: string) => {
        const registry = scheduled(instrument(world.registry, `${name}.registry`, async (l) => void order.push(l)), scheduler) as MigrationRegistry;
        const switcher = scheduled(instrument(new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), RULES), `${name}.switch`, async (l) => void order.push(l)), scheduler);
        return () => world.dispatcher({ registry, switch: switcher, wrapRunner: (s) => scheduled(s, scheduler) }).handle(SCHEDULED);
      };
      const deployer = scheduled(
        {
          pointer: async () => void (world.key('d:live').current = { id: 'd:live:3', live: true }, order.push('deploy.pointer')),
          markLive: async () => (order.push('deploy.markLive'), world.registry.markLive('d:live', 'd:live:3', world.clock.now)),
          enable: async () => (order.push('deploy.enable'), new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), RULES).enableSome({ controller: true, probe: true })),
        },
        scheduler,
      );
      const deploy = async () => {
        await deployer.pointer();
        await deployer.markLive();
        await deployer.enable();
      };
      const results = await scheduler.run<unknown>([tick('one'), tick('two'), deploy]);
      const what = `seed ${seed}: ${order.join(' → ')}`;
      for (const result of results) expect(result.status, `${what}: ${result.status === 'rejected' ? String(result.reason) : ''}`).toBe('fulfilled');
      orders.add(order.join(','));
      const { migrations } = await world.list();
      for (const m of migrations) {
        const current = world.key(m.migrationKey).current!;
        // Every migration that needs ticks is marked; every finished one lost its mark.
        expect(m.live?.migrationId, `${what}: ${m.migrationKey}`).toBe(current.live ? current.id : undefined);
      }
      expect({ controller: account.rules.get(CONTROLLER_RULE), probe: account.rules.get(PROBE_RULE) }, what).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    }
    // The seeds produced many different interleavings, not one.
    expect(orders.size).toBeGreaterThan(20);
  }, 120_000);
});
