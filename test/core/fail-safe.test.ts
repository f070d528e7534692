/**
 * Damaged or unreadable state fails safe: all traffic to the old side, a stopped record that
 * names the damage (the damaged one kept aside), one alert, and no tick that throws forever.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MigrationController, type MigrationRecord } from '../../lambda/core/controller';
import { FailSafeRoutingError, UNREADABLE_PLAN, routeAllToOld } from '../../lambda/core/fail-safe';
import { MigrationPlan } from '../../lambda/core/plan';
import { checkRecord } from '../../lambda/core/record';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';

const WINDOW = 10_000;
const plan = MigrationPlan.fromSteps(
  [
    { weight: 25, bakeMs: 30 * WINDOW },
    { weight: 100, bakeMs: 2 * WINDOW },
  ],
  { healthWindowMs: WINDOW, soakMs: 3 * WINDOW },
).toSpec();
const ID = 'orders:live:7';

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const traffic = new FakeTraffic();
  const health = new SimulatedHealth(traffic, 3);
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const sink = new CollectingSink();
  const controller = new MigrationController({ clock, store, traffic, health, probes, capacity, events: sink });
  return { clock, store, traffic, health, probes, capacity, sink, controller };
}
type World = ReturnType<typeof setup>;

/** A migration at 25 % whose new side now fails half its requests. */
async function atTwentyFivePercent(world: World): Promise<MigrationRecord> {
  await world.controller.start({ id: ID, plan });
  let record = (await world.controller.tick(ID)).record;
  expect(record).toMatchObject({ status: 'baking', weight: 25 });
  world.health.newErrorRate = 0.5;
  return record;
}

const DAMAGES: ReadonlyArray<readonly [string, (r: MigrationRecord) => unknown, RegExp]> = [
  ['record: null', () => null, /record version \d+ fails its schema/],
  ['a missing judge', ({ judge: _judge, ...rest }) => rest, /judge: missing/],
  ['an unknown status', (r) => ({ ...r, status: 'bogus' }), /status: unknown status "bogus"/],
  ['a weight that is not a number', (r) => ({ ...r, weight: '25' }), /weight: /],
  ['a step beyond the plan', (r) => ({ ...r, step: 7 }), /step 7 does not exist in a plan of 2 steps/],
  ['an invalid plan', (r) => ({ ...r, plan: { ...r.plan, steps: [{ weight: 50, bakeMs: 1 }] } }), /plan: invalid plan/],
  ['shifting without the change it makes', (r) => ({ ...r, status: 'shifting' }), /status shifting without the routing change/],
  ['a record of another migration', (r) => ({ ...r, id: 'other' }), /belongs to "other"/],
];

describe('damaged state', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  for (const [name, spoil, what] of DAMAGES) {
    it(`should route everything to the old side, alert once, and stop when the record has ${name}`, async () => {
      const good = await atTwentyFivePercent(world);
      world.store.damage(ID, spoil(good));

      const result = await world.controller.tick(ID);
      // Traffic first: the new side carries nothing.
      expect(world.traffic.weight).toBe(0);
      expect(world.traffic.history).toEqual([25, 0]);
      // A stopped record that says what happened, kept by the store's version check.
      expect(result.damaged?.what).toMatch(what);
      expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0, damage: { keptAs: expect.stringMatching(/^memory:/) } });
      expect(result.record.damage?.what).toMatch(what);
      expect(checkRecord(ID, result.record).ok).toBe(true);
      // One alert, in the log and published, naming the damage and where it was kept.
      const alerts = world.sink.published.filter((e) => e.type === 'state-damaged');
      expect(alerts).toHaveLength(1);
      expect(alerts[0]!.reason).toMatch(what);
      expect(alerts[0]!.reason).toMatch(/all traffic was routed to the old side \(new side's weight 25% → 0%\), and the migration stopped; the damaged state is kept as memory:/);
      const log = await world.store.events(ID);
      expect(log.at(-1)).toEqual(alerts[0]);
      expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
      // The damaged record itself is kept, not deleted.
      expect([...world.store.quarantined.values()]).toEqual([spoil(good)]);

      // Stopped: later ticks neither throw nor act, and the old side stays pinned.
      for (let i = 0; i < 5; i++) {
        world.clock.advance(WINDOW);
        expect((await world.controller.tick(ID)).events).toEqual([]);
      }
      expect(world.traffic.history).toEqual([25, 0]);
      expect(world.capacity.pinned).toBe(10);
      // A teardown still releases the old side's pin afterwards.
      await world.controller.command(ID, 'teardown', 'damage understood');
      expect(world.capacity.pinned).toBeUndefined();
    });
  }

  it('should keep what could be read of the damaged record and name what could not', async () => {
    const good = await atTwentyFivePercent(world);
    world.store.damage(ID, { ...good, judge: 'garbage', status: 'bogus', metadata: { functionName: 'orders' } });
    const { record } = await world.controller.tick(ID);
    expect(record.plan).toEqual(good.plan);
    expect(record.pinnedCapacity).toBe(10);
    expect(record.metadata).toEqual({ functionName: 'orders' });
    expect(record.damage?.lost).toEqual(['status', 'judge']);
    expect(record.eventSeq).toBe(good.eventSeq + 1);
  });

  it('should stand in for a plan that could not be read, and say so', async () => {
    await atTwentyFivePercent(world);
    world.store.damage(ID, { status: 'baking' });
    const { record } = await world.controller.tick(ID);
    expect(record.plan).toEqual(UNREADABLE_PLAN);
    expect(record.damage?.lost).toContain('plan');
    expect(record.step).toBe(-1);
  });

  it('should not call a record written before a judge setting existed damaged', async () => {
    const good = await atTwentyFivePercent(world);
    const { alarmRecheckMs: _recheck, ...olderJudge } = good.judge;
    world.store.damage(ID, { ...good, judge: olderJudge });
    const result = await world.controller.tick(ID);
    expect(result.damaged).toBeUndefined();
    expect(result.record.status).toBe('baking');
  });

  it('should alert and leave the record as it is when routing to the old side fails, then fail safe on the next tick', async () => {
    const good = await atTwentyFivePercent(world);
    world.store.damage(ID, { ...good, status: 'bogus' });
    world.traffic.failNext = new Error('ThrottlingException: Rate exceeded');
    const error = await world.controller.tick(ID).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FailSafeRoutingError);
    expect(String(error)).toMatch(/damaged .* and routing all traffic to the old side failed: Error: ThrottlingException: Rate exceeded; the record was left as it is and the next tick tries again/);
    // The alert went out although nothing could be saved; the damaged record is untouched.
    expect(world.sink.published.at(-1)).toMatchObject({ type: 'state-damaged', code: 'state-damaged-unrouted', seq: 0, weight: 25 });
    expect((await world.store.load(ID))?.record).toMatchObject({ status: 'bogus' });
    expect(world.traffic.weight).toBe(25);

    const next = await world.controller.tick(ID);
    expect(next.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.weight).toBe(0);
  });

  it('should fail safe once when two controllers find the same damage at once', async () => {
    const good = await atTwentyFivePercent(world);
    world.store.damage(ID, { ...good, status: 'bogus' });
    const twin = new MigrationController({ ...world, events: world.sink });
    const [a, b] = await Promise.all([world.controller.tick(ID), twin.tick(ID)]);
    expect([a.conflict ?? false, b.conflict ?? false].sort()).toEqual([false, true]);
    expect((await world.store.events(ID)).filter((e) => e.type === 'state-damaged')).toHaveLength(1);
    expect(world.traffic.weight).toBe(0);
  });

  it('should fail safe on a command too, so an operator never meets a record that cannot be acted on', async () => {
    const good = await atTwentyFivePercent(world);
    world.store.damage(ID, { ...good, status: 'bogus' });
    const result = await world.controller.command(ID, 'pause', 'looking');
    expect(result.record.status).toBe('rolled-back');
    expect(world.traffic.weight).toBe(0);
  });
});

describe('routing all to the old side when the source cannot write conditionally', () => {
  it('should read back an unsettled write, and write again when a late writer overwrote it', async () => {
    const traffic = new FakeTraffic();
    traffic.weight = 50;
    traffic.settleAfterCalls = 1; // every write comes back unsettled, like an ALB listener
    const set = traffic.setWeight.bind(traffic);
    let lateWrites = 1;
    traffic.setWeight = async (weight, revision) => {
      const state = await set(weight, revision);
      if (lateWrites-- > 0) traffic.externalWrite(50); // a throttled advance lands after our write
      return state;
    };
    expect(await routeAllToOld(traffic)).toMatch(/routed to the old side/);
    expect(traffic.weight).toBe(0);
    expect(traffic.history).toEqual([0, 0]);
  });

  it('should give up with the weight it read when another writer keeps winning', async () => {
    const traffic = new FakeTraffic();
    traffic.weight = 50;
    traffic.settleAfterCalls = 1;
    const set = traffic.setWeight.bind(traffic);
    traffic.setWeight = async (weight, revision) => {
      const state = await set(weight, revision);
      traffic.externalWrite(30);
      return state;
    };
    await expect(routeAllToOld(traffic)).rejects.toThrow(/read back at 30% after it was set to 0% 4 times/);
  });
});
