/**
 * The shared controller's dispatcher: which migrations an invocation serves (commands by key or id,
 * deploys, probe results, alarms, scheduled ticks bounded and turned by the minute), each isolated from the
 * others (a failing adapter, a bad setting, a damaged registry item), and what happens to the live
 * marks and the schedules afterwards. The registry in dynalite, the rules behind
 * aws-sdk-client-mock, fake per-migration runners (see controller-dispatch-world.ts).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MigrationRoutingError, MigrationRunsFailedError } from '../../lambda/aws/controller-dispatch';
import { MigrationNotCurrentError } from '../../lambda/aws/controller-runner';
import { DamagedRegistrationError, MAX_MIGRATIONS_PER_TICK } from '../../lambda/aws/registry';
import { CONTROLLER_RULE, FLEET_SETTINGS, PROBE_RULE, SCHEDULED, makeDispatchWorld, type DispatchWorld } from './controller-dispatch-world';
import { FakeAccount, throttled } from './fake-account';
import { captureOutput, startDynalite, type LocalDynamo } from './helpers';

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let world: DispatchWorld;
let output: ReturnType<typeof captureOutput>;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  account.restore();
  await dynamo.close();
});
beforeEach(async () => {
  account.resetState();
  world = await makeDispatchWorld(dynamo);
  output = captureOutput();
});
afterEach(() => output.restore());

const states = () => ({ controller: account.rules.get(CONTROLLER_RULE), probe: account.rules.get(PROBE_RULE) });
const logged = (message: string) => output.records().filter((r) => r.message === message);

/** A registered migration of `key` whose current migration `id` is live and marked so at `sinceMs`. */
async function liveMigration(key: string, id: string, sinceMs: number, settings: Record<string, string> = {}): Promise<void> {
  await world.register(key, settings);
  world.key(key).current = { id, live: true };
  await world.registry.markLive(key, id, sinceMs);
}

const LEFT = 'more live migrations than one tick serves: the rest wait for a later tick (the starting point turns every minute)';

const keysServed = () => [...world.keys].filter(([, k]) => k.runs.length > 0).map(([key]) => key);

describe('a scheduled tick', () => {
  it('should serve every live migration of the table, oldest mark first, and none that is not live', async () => {
    await liveMigration('c:live', 'c:live:2', 1_000);
    await liveMigration('a:live', 'a:live:5', 2_000);
    await world.register('b:live');
    world.key('b:live').current = { id: 'b:live:1', live: false };
    const answer = await world.dispatcher().handle(SCHEDULED);
    expect(answer).toMatchObject({
      migrationId: null,
      events: 2,
      migrations: [
        { migrationKey: 'c:live', migrationId: 'c:live:2', status: 'baking', events: 1 },
        { migrationKey: 'a:live', migrationId: 'a:live:5', status: 'baking', events: 1 },
      ],
    });
    expect(keysServed()).toEqual(['c:live', 'a:live']);
    // Each runner was told which migration its key's mark names (a cached pointer of another is read again).
    expect(world.key('a:live').runs[0]!.options).toEqual({ migrationId: 'a:live:5' });
    // Still live: the schedules are left as they are.
    expect(account.count('EnableRule') + account.count('DisableRule')).toBe(0);
  });

  it('should serve only its own family (the other family has its own controller and rule)', async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    await liveMigration('shop', 'shop:r2', 2_000, FLEET_SETTINGS);
    await world.dispatcher({ family: 'fleet' }).handle(SCHEDULED);
    expect(keysServed()).toEqual(['shop']);
    await world.dispatcher({ family: 'lambda-alias' }).handle(SCHEDULED);
    expect(keysServed()).toEqual(['a:live', 'shop']);
  });

  it(`should serve at most ${MAX_MIGRATIONS_PER_TICK}, from a starting point in the oldest-first order that turns every minute, and name the ones left`, async () => {
    const total = MAX_MIGRATIONS_PER_TICK + 3;
    // Marked newest first, so that the order is the marks' and not the keys' or the writes'.
    for (let i = 0; i < total; i++) await liveMigration(`m${String(i).padStart(2, '0')}:live`, `m${i}:live:2`, 10_000 - i);
    const oldestFirst = Array.from({ length: total }, (_, i) => `m${String(total - 1 - i).padStart(2, '0')}:live`);
    // A minute whose turn starts at the oldest, then the next minute's, one further on.
    const minute = Math.ceil(world.clock.now / 60_000 / total) * total;
    const at = (m: number) => ({ ...SCHEDULED, time: new Date(m * 60_000).toISOString() });
    const first = await world.dispatcher().handle(at(minute));
    expect(first.migrations?.map((m) => m.migrationKey)).toEqual(oldestFirst.slice(0, MAX_MIGRATIONS_PER_TICK));
    expect(logged(LEFT)[0]).toMatchObject({ left: oldestFirst.slice(MAX_MIGRATIONS_PER_TICK), served: MAX_MIGRATIONS_PER_TICK });
    const second = await world.dispatcher().handle(at(minute + 1));
    // Answers are listed oldest first, whichever was served first.
    expect(second.migrations?.map((m) => m.migrationKey)).toEqual(oldestFirst.slice(1, MAX_MIGRATIONS_PER_TICK + 1));
    expect(logged(LEFT)[1]).toMatchObject({ left: [...oldestFirst.slice(MAX_MIGRATIONS_PER_TICK + 1), oldestFirst[0]] });
  });

  it('should serve every live migration within a few ticks when there are more than one tick serves (no starvation by older ones)', async () => {
    for (const [key, sinceMs] of [['a:live', 1], ['b:live', 2], ['c:live', 3]] as const) await liveMigration(key, `${key}:1`, sinceMs);
    const dispatcher = world.dispatcher({ maxPerTick: 2 });
    const servedBy: string[][] = [];
    for (let i = 0; i < 3; i++) {
      world.clock.now += 60_000;
      const before = new Map([...world.keys].map(([k, v]) => [k, v.runs.length]));
      await dispatcher.handle({ ...SCHEDULED, time: new Date(world.clock.now).toISOString() });
      servedBy.push([...world.keys].filter(([k, v]) => v.runs.length > before.get(k)!).map(([k]) => k));
    }
    expect(servedBy.every((keys) => keys.length === 2)).toBe(true);
    for (const key of ['a:live', 'b:live', 'c:live']) expect(world.key(key).runs.length, `${key}: ${JSON.stringify(servedBy)}`).toBeGreaterThan(0);
    // Lambda's retry of a tick (the same event, later) serves the same ones as its first try, in
    // whichever container: the turn is the event's minute, not a container's memory.
    const fired = { ...SCHEDULED, time: new Date(world.clock.now).toISOString() };
    const again = await world.dispatcher({ maxPerTick: 2 }).handle(fired);
    world.clock.now += 5 * 60_000;
    const retried = await world.dispatcher({ maxPerTick: 2 }).handle(fired);
    expect(retried.migrations?.map((m) => m.migrationKey)).toEqual(again.migrations?.map((m) => m.migrationKey));
  });

  it('should start no new migration once less than 20 s of the invocation remain', async () => {
    for (let i = 0; i < 4; i++) await liveMigration(`t${i}:live`, `t${i}:live:2`, 1_000 + i);
    let remaining = 60_000;
    const context = { getRemainingTimeInMillis: () => remaining };
    const dispatcher = world.dispatcher({ wrapRunner: (s) => ({ serve: async (r, o) => ((remaining -= 15_000), s.serve(r, o)) }) });
    // Fired at a minute whose turn starts at the oldest (a multiple of the 4 live migrations).
    const answer = await dispatcher.handle({ ...SCHEDULED, time: new Date(Math.floor(world.clock.now / 240_000) * 240_000).toISOString() }, context);
    // 60 s → 45 s → 30 s → 15 s: the third run leaves too little for a fourth.
    expect(answer.migrations?.map((m) => m.migrationKey)).toEqual(['t0:live', 't1:live', 't2:live']);
    expect(logged(LEFT)[0]).toMatchObject({ left: ['t3:live'] });
  });
});

describe('one migration failing never stops the others', () => {
  it("should serve the others when one migration's adapters throw, and fail the invocation at the end with its error", async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    await liveMigration('b:live', 'b:live:2', 2_000);
    await liveMigration('c:live', 'c:live:2', 3_000);
    world.key('b:live').fail = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    world.key('c:live').current = { id: 'c:live:2', live: false };
    await expect(world.dispatcher().handle(SCHEDULED)).rejects.toThrow(/Rate exceeded/);
    expect(keysServed()).toEqual(['a:live', 'b:live', 'c:live']);
    expect(logged('migration run failed; the others are served')[0]).toMatchObject({ migrationKey: 'b:live' });
    // The schedules were still kept: the finished one let go, the failed one stays live.
    const { migrations } = await world.list();
    expect(migrations.map((m) => [m.migrationKey, m.live?.migrationId])).toEqual([
      ['a:live', 'a:live:2'],
      ['b:live', 'b:live:2'],
      ['c:live', undefined],
    ]);
  });

  it('should fail a migration whose settings are bad, naming the variable, and build its runner again once they are fixed', async () => {
    await liveMigration('a:live', 'a:live:2', 1_000, { CUTOVER_PLAN: 'broken' });
    await liveMigration('b:live', 'b:live:2', 2_000);
    const dispatcher = world.dispatcher();
    await expect(dispatcher.handle(SCHEDULED)).rejects.toThrow(/CUTOVER_PLAN is not valid JSON/);
    expect(keysServed()).toEqual(['b:live']);
    await expect(dispatcher.handle(SCHEDULED)).rejects.toThrow(/CUTOVER_PLAN/);
    // The good one's runner is kept across invocations; the bad one is tried again each time.
    expect(world.built).toEqual(['a:live', 'b:live', 'a:live']);
    await world.register('a:live', {});
    await dispatcher.handle(SCHEDULED);
    expect(keysServed()).toEqual(['a:live', 'b:live']);
    expect(world.built).toEqual(['a:live', 'b:live', 'a:live', 'a:live']);
  });

  it.each([
    ['settings that are not a map', { settings: 'CUTOVER_PLAN=x' }, /settings/],
    ['a setting that is not a string', { settings: { CUTOVER_PLAN: 3 } }, /CUTOVER_PLAN must be a string, got 3/],
    ['an unknown setting name', { settings: { CUTOVER_TABLE_NAME: 'other' } }, /"CUTOVER_TABLE_NAME" is not a per-migration setting/],
  ])('should report a damaged registry item (%s), serve the others, fail at the end, and never clear its live mark', async (_name, damage, problem) => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    world.key('a:live').current = { id: 'a:live:2', live: false };
    await world.putRaw({ sk: 'broken:live', updatedAtMs: 1, live: { migrationId: 'broken:live:4', sinceMs: 500 }, ...damage });
    account.rules.set(CONTROLLER_RULE, 'ENABLED');
    account.rules.set(PROBE_RULE, 'ENABLED');
    const error = await world.dispatcher().handle(SCHEDULED).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DamagedRegistrationError);
    expect(String(error)).toMatch(problem);
    expect(String(error)).toMatch(/broken:live is damaged: .*deploy the stack again to rewrite it/);
    expect(keysServed()).toEqual(['a:live']);
    expect(logged('registry item damaged: this migration is not served until a deploy rewrites it')[0]).toMatchObject({
      migrationKey: 'broken:live',
      liveMigrationId: 'broken:live:4',
    });
    // The good one finished and was let go; the damaged one keeps its mark, and the schedules stay on for it.
    const listing = await world.list();
    expect(listing.migrations.map((m) => m.live)).toEqual([undefined]);
    expect(listing.damaged).toEqual([expect.objectContaining({ migrationKey: 'broken:live', liveMigrationId: 'broken:live:4' })]);
    expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
  });

  it('should sum up several failures in one error that names each migration', async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    await liveMigration('b:live', 'b:live:2', 2_000);
    world.key('a:live').fail = () => new Error('alias gone');
    world.key('b:live').fail = () => new Error('metrics gone');
    const error = await world.dispatcher().handle(SCHEDULED).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationRunsFailedError);
    expect(String(error)).toMatch(/2 migration run\(s\) failed: a:live: Error: alias gone; b:live: Error: metrics gone/);
  });
});

describe('commands', () => {
  it('should go to the only registered migration when none is named', async () => {
    await world.register('a:live');
    world.key('a:live').current = { id: 'a:live:2', live: true };
    expect(await world.dispatcher().handle({ command: 'pause', reason: 'look' })).toMatchObject({ migrationId: 'a:live:2', migrationKey: 'a:live' });
  });

  it('should refuse a command naming no migration when several are registered, listing the keys', async () => {
    await world.register('a:live');
    await world.register('shop', FLEET_SETTINGS);
    const error = await world.dispatcher().handle({ command: 'abort' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationRoutingError);
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).toMatch(/2 migrations are registered: name one with "migration" \(a key or a migration id\); keys: a:live, shop/);
    expect(keysServed()).toEqual([]);
  });

  it('should route by key and by id, and refuse an id that is not the current one or matches nothing', async () => {
    await world.register('api:live');
    await world.register('api2:live');
    world.key('api:live').current = { id: 'api:live:7', live: true };
    world.key('api2:live').current = { id: 'api2:live:3', live: true };
    const dispatcher = world.dispatcher();
    expect(await dispatcher.handle({ command: 'pause', migration: 'api2:live' })).toMatchObject({ migrationId: 'api2:live:3' });
    expect(await dispatcher.handle({ command: 'pause', migration: 'api:live:7' })).toMatchObject({ migrationId: 'api:live:7', migrationKey: 'api:live' });
    expect(world.key('api:live').runs.at(-1)!.options).toEqual({ migrationId: 'api:live:7', exact: true });
    await expect(dispatcher.handle({ command: 'abort', migration: 'api:live:6' })).rejects.toThrow(MigrationNotCurrentError);
    await expect(dispatcher.handle({ command: 'abort', migration: 'api:live:6' })).rejects.toThrow(/api:live:6 is not the current migration of api:live \(that is api:live:7\)/);
    await expect(dispatcher.handle({ command: 'abort', migration: 'other:live' })).rejects.toThrow(/no registered migration has the key or id "other:live"; keys: api2:live, api:live/);
  });

  it("should refuse a migration of the other family, naming the controller that serves it, and a damaged one's command", async () => {
    await world.register('shop', FLEET_SETTINGS);
    await world.putRaw({ sk: 'gone:live', updatedAtMs: 1, settings: { CUTOVER_PLAN: 3 } });
    const dispatcher = world.dispatcher({ family: 'lambda-alias' });
    await expect(dispatcher.handle({ command: 'abort', migration: 'shop' })).rejects.toThrow(
      /migration shop is a fleet migration, served by the fleet controller, not by this lambda-alias one: send it to the controller-fleet function/,
    );
    await expect(dispatcher.handle({ command: 'abort', migration: 'gone:live:2' })).rejects.toThrow(DamagedRegistrationError);
    expect(keysServed()).toEqual([]);
  });

  it("should mark live and enable a migration a command finds needing ticks (a rule disabled by hand, an interrupted release)", async () => {
    await world.register('a:live', { CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://new.example.com/"}]' });
    world.key('a:live').current = { id: 'a:live:2', live: true };
    await world.dispatcher().handle({ command: 'resume', migration: 'a:live' });
    expect((await world.list()).migrations[0]!.live).toEqual({ migrationId: 'a:live:2', sinceMs: world.clock.now });
    expect(account.ruleSwitches).toEqual([`enable ${CONTROLLER_RULE}`, `enable ${PROBE_RULE}`]);
  });
});

describe('events about one migration', () => {
  it("should start the migration a deploy names, by its key or (an older trigger's) by the longest key its id starts with", async () => {
    await world.register('api:live');
    await world.register('api:live-eu');
    world.key('api:live').current = { id: 'api:live:2', live: true };
    world.key('api:live-eu').current = { id: 'api:live-eu:9', live: true };
    const dispatcher = world.dispatcher();
    expect(await dispatcher.handle({ trigger: 'deploy', migrationId: 'api:live:2', migrationKey: 'api:live' })).toMatchObject({ migrationId: 'api:live:2' });
    expect(await dispatcher.handle({ trigger: 'deploy', migrationId: 'api:live-eu:9' })).toMatchObject({ migrationKey: 'api:live-eu' });
    expect(keysServed()).toEqual(['api:live', 'api:live-eu']);
    await expect(dispatcher.handle({ trigger: 'deploy', migrationId: 'x:live:1', migrationKey: 'x:live' })).rejects.toThrow(/migration x:live, which is not registered; registered: api:live, api:live-eu/);
  });

  it('should route a probe result by its migration key, and leave one of the other family to its controller', async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    await liveMigration('shop', 'shop:r2', 2_000, FLEET_SETTINGS);
    const probe = (migrationKey: string) => ({ source: 'cutover.probe', 'detail-type': 'Cutover Probe Result', detail: { side: 'new', verdict: 'desync', migrationKey } });
    const dispatcher = world.dispatcher({ family: 'lambda-alias' });
    expect(await dispatcher.handle(probe('a:live'))).toMatchObject({ migrationId: 'a:live:2', migrationKey: 'a:live' });
    expect(await dispatcher.handle(probe('shop'))).toEqual({ migrationId: null, events: 0 });
    expect(keysServed()).toEqual(['a:live']);
  });

  it('should send an alarm state change to every migration watching the alarm, live or not, and to no other', async () => {
    await liveMigration('a:live', 'a:live:2', 1_000, { CUTOVER_ALARM_NAMES: '["api-errors","api-latency"]' });
    await liveMigration('b:live', 'b:live:2', 2_000, { CUTOVER_ALARM_NAMES: '["other"]' });
    await world.register('c:live', { CUTOVER_ALARM_NAMES: '["api-errors"]' });
    world.key('c:live').current = { id: 'c:live:1', live: false };
    const alarm = (alarmName: string) => ({
      source: 'aws.cloudwatch',
      'detail-type': 'CloudWatch Alarm State Change',
      time: new Date(world.clock.now).toISOString(),
      detail: { alarmName, state: { value: 'ALARM', timestamp: new Date(world.clock.now).toISOString() } },
    });
    const answer = await world.dispatcher().handle(alarm('api-errors'));
    expect(answer.migrations?.map((m) => m.migrationKey)).toEqual(['a:live', 'c:live']);
    expect(keysServed()).toEqual(['a:live', 'c:live']);
    expect(await world.dispatcher().handle(alarm('nobody-watches'))).toEqual({ migrationId: null, events: 0 });
    expect(logged('state change of an alarm no migration of this controller watches')).toHaveLength(1);
  });
});

describe('schedules of a shared controller', () => {
  it('should clear a finished migration\'s mark and switch off (probe rule first) only when nothing live is left', async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    await liveMigration('b:live', 'b:live:2', 2_000);
    world.key('a:live').current = { id: 'a:live:2', live: false };
    await world.dispatcher().handle(SCHEDULED);
    expect(account.ruleSwitches).toEqual([]);
    world.key('b:live').current = { id: 'b:live:2', live: false };
    await world.dispatcher().handle(SCHEDULED);
    expect(account.ruleSwitches).toEqual([`disable ${PROBE_RULE}`, `disable ${CONTROLLER_RULE}`]);
    expect((await world.list()).migrations.every((m) => m.live === undefined)).toBe(true);
  });

  it("should leave the shared probe rule on while the other family still has a live migration", async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    await liveMigration('shop', 'shop:r2', 2_000, FLEET_SETTINGS);
    world.key('a:live').current = { id: 'a:live:2', live: false };
    await world.dispatcher({ family: 'lambda-alias' }).handle(SCHEDULED);
    expect(account.ruleSwitches).toEqual([`disable ${CONTROLLER_RULE}`]);
  });

  it('should switch off a schedule that woke it with nothing live (a deploy that enabled and failed before marking)', async () => {
    await world.register('a:live');
    account.rules.set(CONTROLLER_RULE, 'ENABLED');
    expect(await world.dispatcher().handle(SCHEDULED)).toEqual({ migrationId: null, events: 0 });
    expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
  });

  it("should never clear a newer deploy's mark: only the one naming what the run found", async () => {
    await liveMigration('a:live', 'a:live:2', 1_000);
    world.key('a:live').current = { id: 'a:live:2', live: false };
    // Between the tick's listing and its clear, a deploy records and marks v3.
    const dispatcher = world.dispatcher({
      wrapRunner: (s) => ({
        serve: async (r, o) => {
          const run = await s.serve(r, o);
          world.key('a:live').current = { id: 'a:live:3', live: true };
          await world.registry.markLive('a:live', 'a:live:3', world.clock.now);
          return run;
        },
      }),
    });
    await dispatcher.handle(SCHEDULED);
    expect((await world.list()).migrations[0]!.live).toMatchObject({ migrationId: 'a:live:3' });
    expect(account.count('DisableRule')).toBe(0);
  });

  it('should fail the invocation when a re-enable fails, so that Lambda retries it; the retry (a redelivery) enables', async () => {
    await world.register('a:live');
    account.rules.set(CONTROLLER_RULE, 'ENABLED');
    let deployed = false;
    account.beforeRuleSwitch = async (action) => {
      if (action === 'disable' && !deployed) {
        // A whole deploy between the tick's listing and its disable; then EnableRule is throttled.
        deployed = true;
        world.key('a:live').current = { id: 'a:live:2', live: true };
        await world.registry.markLive('a:live', 'a:live:2', world.clock.now);
        account.failures.set('EnableRule', () => throttled());
      }
    };
    const fired = { ...SCHEDULED, time: new Date(world.clock.now).toISOString() };
    await expect(world.dispatcher().handle(fired)).rejects.toThrow(/could not enable the schedule rule/);
    expect(states().controller).toBe('DISABLED');
    account.failures.delete('EnableRule');
    world.clock.now += 60_000;
    await world.dispatcher().handle(fired);
    expect(states().controller).toBe('ENABLED');
  });
});
