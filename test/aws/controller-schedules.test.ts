/**
 * The shared controller's schedules when an invocation fails or dies halfway through switching them
 * (controller-schedules.ts), across the two families that share the probe rule, and for commands,
 * which nobody retries. Each case is one a reviewer found leaving a rule off while something was
 * live; the registry in dynalite, the rules behind aws-sdk-client-mock, fake runners
 * (controller-dispatch-world.ts).
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MigrationRegistry } from '../../lambda/aws/registry';
import { ScheduleSwitch, type ScheduleRules } from '../../lambda/aws/schedules';
import { FLEET_SETTINGS, PROBE_RULE, SCHEDULED, makeDispatchWorld, type DispatchWorld } from './controller-dispatch-world';
import { FakeAccount } from './fake-account';
import { captureOutput, startDynalite, type LocalDynamo } from './helpers';

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let output: ReturnType<typeof captureOutput>;
const TARGETS = { CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://new.example.com/"}]' };
const ALIAS_RULES: ScheduleRules = { controller: 'Stack-Cutover-AliasTick', probe: PROBE_RULE };
const FLEET_RULES: ScheduleRules = { controller: 'Stack-Cutover-FleetTick', probe: PROBE_RULE };

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

const switchOf = (rules: ScheduleRules) => new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), rules);
const states = () => Object.fromEntries(account.rules);
const tickAt = (world: DispatchWorld) => ({ ...SCHEDULED, time: new Date(world.clock.now).toISOString() });

/** A process that died: every later call of it fails without acting. */
class Crash extends Error {}

/**
 * Wraps `port` so that `before(name, property, index)` runs before each of its calls acts (a
 * deploy placed there, a failure, a crash); `index` counts the calls of all ports sharing `counter`.
 */
function instrument<T extends object>(port: T, name: string, counter: { calls: number }, before: (label: string, index: number) => Promise<void>): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') return value;
      return async (...args: unknown[]) => {
        await before(`${name}.${property}`, counter.calls++);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/**
 * Alias `a:live` marked live and finished (the next alias run lets it go), fleet `shop` registered
 * with probe targets and not yet deployed; every rule on.
 */
async function twoFamilies(world: DispatchWorld): Promise<void> {
  await world.register('a:live');
  world.key('a:live').current = { id: 'a:live:2', live: false };
  await world.registry.markLive('a:live', 'a:live:2', 1_000);
  await world.register('shop', { ...FLEET_SETTINGS, ...TARGETS });
  for (const rule of [ALIAS_RULES.controller, FLEET_RULES.controller, PROBE_RULE]) account.rules.set(rule, 'ENABLED');
}

/** The deploy trigger's steps for fleet `shop` (pointer, mark, enable of its rule and the probe's). */
async function deployShop(world: DispatchWorld): Promise<void> {
  world.key('shop').current = { id: 'shop:r1', live: true };
  await world.registry.markLive('shop', 'shop:r1', world.clock.now);
  await switchOf(FLEET_RULES).enableSome({ controller: true, probe: true });
}

describe("the shared probe rule after an alias tick that failed halfway while a fleet deploy went live", () => {
  /**
   * The alias tick clears a:live's mark, lists (nothing live), then the fleet deploy runs whole, then
   * the alias tick disables its rule and the probe rule: the fleet migration's probes are off until
   * something enables them again. `failReRead`: the re-read throws (the tick goes on); `die`: the
   * tick dies there (every later call fails, its own enables too).
   */
  async function aliasTickAgainstFleetDeploy(world: DispatchWorld, fault: 'failReRead' | 'die'): Promise<unknown> {
    let lists = 0;
    let dead = false;
    const counter = { calls: 0 };
    const before = async (label: string) => {
      if (dead) throw new Crash(`${label} after the crash`);
      if (label !== 'registry.list') return;
      lists++;
      // The second list is the quiesce's check: the fleet deploy runs right after it.
      if (lists === 3) {
        if (fault === 'die') dead = true;
        throw fault === 'die' ? new Crash('died before the re-read') : Object.assign(new Error('Rate of requests exceeds the allowed throughput'), { name: 'ProvisionedThroughputExceededException' });
      }
    };
    const registry = instrument(world.registry, 'registry', counter, before) as MigrationRegistry;
    const afterCheck = new Proxy(registry, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'list') return value;
        return async () => {
          const listing = await (value as () => ReturnType<MigrationRegistry['list']>)();
          if (lists === 2) await deployShop(world);
          return listing;
        };
      },
    });
    const switcher = instrument(switchOf(ALIAS_RULES), 'switch', counter, before);
    return world.dispatcher({ family: 'lambda-alias', registry: afterCheck, switch: switcher }).handle(tickAt(world)).then(
      () => undefined,
      (error: unknown) => error,
    );
  }

  it('should enable both rules when the re-read after the disable fails, before failing the invocation', async () => {
    const world = await makeDispatchWorld(dynamo);
    await twoFamilies(world);
    const error = await aliasTickAgainstFleetDeploy(world, 'failReRead');
    expect(String(error)).toMatch(/ProvisionedThroughputExceededException|allowed throughput/);
    // The disable happened (probe rule first) and was undone at once: what is live was unknown.
    expect(account.ruleSwitches.filter((s) => s.startsWith('disable'))).toEqual([`disable ${PROBE_RULE}`, `disable ${ALIAS_RULES.controller}`]);
    expect(states()).toMatchObject({ [PROBE_RULE]: 'ENABLED', [FLEET_RULES.controller]: 'ENABLED' });
    expect(output.records().some((r) => r.message === 'could not read the registry around switching the schedules: enabling them, failing so that Lambda retries')).toBe(true);

    // Lambda's retry quiesces the alias rule (on for nothing) and leaves the probe rule on.
    world.clock.now += 60_000;
    await world.dispatcher({ family: 'lambda-alias', switch: switchOf(ALIAS_RULES) }).handle({ ...tickAt(world), time: new Date(world.clock.now - 60_000).toISOString() });
    // The fleet's own on-time tick serves shop and switches nothing.
    await world.dispatcher({ family: 'fleet', switch: switchOf(FLEET_RULES) }).handle(tickAt(world));
    expect(world.key('shop').runs).toHaveLength(1);
    expect(states()).toEqual({ [ALIAS_RULES.controller]: 'DISABLED', [FLEET_RULES.controller]: 'ENABLED', [PROBE_RULE]: 'ENABLED' });
  });

  it("should enable the probe rule on Lambda's retry of a tick that died between its disable and its re-read, though the retry's first read finds the fleet live", async () => {
    const world = await makeDispatchWorld(dynamo);
    await twoFamilies(world);
    const fired = tickAt(world);
    // Failed (its own enables died with it): Lambda retries the event.
    expect(String(await aliasTickAgainstFleetDeploy(world, 'die'))).toMatch(/died before the re-read/);
    expect(states()).toMatchObject({ [PROBE_RULE]: 'DISABLED', [FLEET_RULES.controller]: 'ENABLED' });

    // The retry: nothing of the alias family is live, something of the other family is, with probes.
    world.clock.now += 60_000;
    account.ruleSwitches.length = 0;
    await world.dispatcher({ family: 'lambda-alias', switch: switchOf(ALIAS_RULES) }).handle(fired);
    expect(account.ruleSwitches).toEqual([`disable ${ALIAS_RULES.controller}`, `enable ${PROBE_RULE}`]);
    await world.dispatcher({ family: 'fleet', switch: switchOf(FLEET_RULES) }).handle(tickAt(world));
    expect(states()).toEqual({ [ALIAS_RULES.controller]: 'DISABLED', [FLEET_RULES.controller]: 'ENABLED', [PROBE_RULE]: 'ENABLED' });
    expect((await world.list()).migrations.map((m) => [m.migrationKey, m.live?.migrationId])).toEqual([
      ['shop', 'shop:r1'],
      ['a:live', undefined],
    ]);
  });
});

describe("Lambda's retry of a tick whose own family is still live", () => {
  it('should switch the shared probe rule on for a live migration of the other family with probe targets', async () => {
    const world = await makeDispatchWorld(dynamo);
    // The alias migration (no probe targets) goes on; a fleet deploy with probes marked shop live
    // while the first try of this tick had the probe rule off and died before its re-read.
    await world.register('a:live');
    world.key('a:live').current = { id: 'a:live:2', live: true };
    await world.registry.markLive('a:live', 'a:live:2', 1_000);
    await world.register('shop', { ...FLEET_SETTINGS, ...TARGETS });
    await world.registry.markLive('shop', 'shop:r1', 2_000);
    account.rules.set(ALIAS_RULES.controller, 'ENABLED');
    account.rules.set(FLEET_RULES.controller, 'ENABLED');
    account.rules.set(PROBE_RULE, 'DISABLED');
    const fired = tickAt(world);
    world.clock.now += 60_000;
    await world.dispatcher({ family: 'lambda-alias', switch: switchOf(ALIAS_RULES) }).handle(fired);
    expect(states()).toMatchObject({ [ALIAS_RULES.controller]: 'ENABLED', [PROBE_RULE]: 'ENABLED' });
  });
});

describe('a command (synchronous: nobody retries it)', () => {
  it('should clear the mark of what it finished and switch no rule off; the next on-time tick does', async () => {
    const world = await makeDispatchWorld(dynamo);
    await world.register('a:live', TARGETS);
    world.key('a:live').current = { id: 'a:live:2', live: false };
    await world.registry.markLive('a:live', 'a:live:2', 1_000);
    account.rules.set(ALIAS_RULES.controller, 'ENABLED');
    account.rules.set(PROBE_RULE, 'ENABLED');
    await world.dispatcher({ family: 'lambda-alias', switch: switchOf(ALIAS_RULES) }).handle({ command: 'teardown', reason: 'v2 accepted', migration: 'a:live' });
    expect((await world.list()).migrations[0]!.live).toBeUndefined();
    expect(account.ruleSwitches).toEqual([]);
    world.clock.now += 60_000;
    await world.dispatcher({ family: 'lambda-alias', switch: switchOf(ALIAS_RULES) }).handle(tickAt(world));
    expect(account.ruleSwitches).toEqual([`disable ${PROBE_RULE}`, `disable ${ALIAS_RULES.controller}`]);
  });

  it("should never leave the shared rule off for another key's deploy, even when it dies right after switching", async () => {
    // The deploy trigger's abort of a:live (a rollback), while another alias key b:live is deployed:
    // b's deploy runs whole after the command's check of the registry, before its first rule switch
    // (or after the command, if it switches none), and the command dies right after any switch.
    // Nobody retries a command, and the rule it switched off would fire no tick to mend it.
    const world = await makeDispatchWorld(dynamo);
    await world.register('a:live');
    world.key('a:live').current = { id: 'a:live:2', live: false };
    await world.registry.markLive('a:live', 'a:live:2', 1_000);
    await world.register('b:live');
    account.rules.set(ALIAS_RULES.controller, 'ENABLED');
    let deployed = false;
    const deployB = async () => {
      deployed = true;
      world.key('b:live').current = { id: 'b:live:1', live: true };
      await world.registry.markLive('b:live', 'b:live:1', world.clock.now);
      await switchOf(ALIAS_RULES).enableSome({ controller: true, probe: false });
    };
    let dead = false;
    const counter = { calls: 0 };
    const registry = instrument(world.registry, 'registry', counter, async (label) => {
      if (dead) throw new Crash(`${label} after the crash`);
    });
    const switcher = instrument(switchOf(ALIAS_RULES), 'switch', counter, async (label) => {
      if (dead) throw new Crash(`${label} after the crash`);
      if (!deployed) await deployB();
    });
    // The command's process dies right after any rule switch acted.
    const dying = new Proxy(switcher, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function' || property === 'constructor') return value;
        return async (...args: unknown[]) => {
          const result: unknown = await (value as (...a: unknown[]) => unknown).apply(target, args);
          dead = true;
          return result;
        };
      },
    });
    await world
      .dispatcher({ family: 'lambda-alias', registry: registry as MigrationRegistry, switch: dying })
      .handle({ command: 'abort', reason: 'CloudFormation rollback', migration: 'a:live:2' })
      .catch((error: unknown) => {
        if (!(error instanceof Crash)) throw error;
      });
    if (!deployed) await deployB();
    expect((await world.list()).migrations.map((m) => [m.migrationKey, m.live?.migrationId])).toEqual([
      ['b:live', 'b:live:1'],
      ['a:live', undefined],
    ]);
    expect(account.rules.get(ALIAS_RULES.controller)).toBe('ENABLED');
    expect(account.count('DisableRule')).toBe(0);
  });
});

describe('the live mark a tick writes', () => {
  it("should not write over a newer deploy's mark made after the tick's listing", async () => {
    const world = await makeDispatchWorld(dynamo);
    await world.register('a:live');
    // Marked for v1; the key's current migration v2 needs ticks (its mark was never written).
    await world.registry.markLive('a:live', 'a:live:1', 1_000);
    world.key('a:live').current = { id: 'a:live:2', live: true };
    const dispatcher = world.dispatcher({
      family: 'lambda-alias',
      switch: switchOf(ALIAS_RULES),
      wrapRunner: (server) => ({
        serve: async (request, options) => {
          const run = await server.serve(request, options);
          // Between the run and its mark: a deploy records v3 and marks it.
          world.key('a:live').current = { id: 'a:live:3', live: true };
          await world.registry.markLive('a:live', 'a:live:3', world.clock.now);
          return run;
        },
      }),
    });
    await dispatcher.handle(tickAt(world));
    expect((await world.list()).migrations[0]!.live).toEqual({ migrationId: 'a:live:3', sinceMs: world.clock.now });
    expect(output.records().find((r) => r.message === 'the live mark changed since it was read (a new deploy): kept')).toMatchObject({ migrationId: 'a:live:2', mark: 'a:live:3' });
  });
});
