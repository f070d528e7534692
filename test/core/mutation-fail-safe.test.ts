/**
 * Failing safe on damaged state (fail-safe.ts and the controller's load/failSafe), on the details
 * fail-safe.test.ts leaves open: routing to the old side against conflicts (the same four tries as
 * a rollback), what the replacement record keeps and names as lost, the alert's fields, and the
 * store's own errors during it.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MigrationNotFoundError, type MigrationRecord } from '../../lambda/core/controller';
import { FailSafeRoutingError, UNREADABLE_PLAN, replacementFor } from '../../lambda/core/fail-safe';
import { DamagedStateError, StaleStateError } from '../../lambda/core/ports';
import { checkRecord } from '../../lambda/core/record';
import { ROLLBACK_ATTEMPTS } from '../../lambda/core/routing';
import { ConflictingTraffic, SPEC, setup, startAndRunTo, type World } from './mutation-world';

type ConflictWorld = World & { traffic: ConflictingTraffic };

/** A migration at 10 %, whose stored record is then replaced by `spoil(record)`. */
async function damaged(world: World, spoil: (good: MigrationRecord) => unknown): Promise<MigrationRecord> {
  const good = (await startAndRunTo(world, 'baking')).record;
  world.store.damage(SPEC.id, spoil(good));
  return good;
}

describe('the stand-in plan', () => {
  it('should be a single 100 % step of a minute with no soak, torn down by hand', () => {
    expect(UNREADABLE_PLAN).toEqual({ steps: [{ weight: 100, bakeMs: 60_000 }], soakMs: 0, healthWindowMs: 60_000, teardown: 'manual' });
  });
});

describe('routing everything to the old side', () => {
  let world: ConflictWorld;
  beforeEach(() => {
    world = setup(new ConflictingTraffic()) as ConflictWorld;
  });

  it('should retry conflicts like a rollback and land on the fourth try', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.traffic.conflicts = ROLLBACK_ATTEMPTS - 1;
    world.traffic.writes = 0;
    const result = await world.controller.tick(SPEC.id);
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.weight).toBe(0);
    expect(world.traffic.writes).toBe(ROLLBACK_ATTEMPTS);
  });

  it('should give up after four conflicting tries, alert, and leave the record for the next tick', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.traffic.conflicts = 1_000;
    world.traffic.writes = 0;
    const error = await world.controller.tick(SPEC.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FailSafeRoutingError);
    expect((error as Error).name).toBe('FailSafeRoutingError');
    expect(world.traffic.writes).toBe(ROLLBACK_ATTEMPTS);
    expect((await world.store.load(SPEC.id))!.record).toMatchObject({ status: 'bogus' });
  });

  it('should say the traffic is on the old side when a twin moved it there meanwhile', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.traffic.conflicts = 1;
    world.traffic.twinWeight = 0;
    const result = await world.controller.tick(SPEC.id);
    expect(result.record.lastDecision?.reason).toMatch(/: all traffic is on the old side, and the migration stopped;/);
  });

  it('should say the traffic was already on the old side when it found it there', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.traffic.externalWrite(0);
    world.traffic.writes = 0;
    const result = await world.controller.tick(SPEC.id);
    expect(result.record.lastDecision?.reason).toMatch(/: all traffic was already on the old side, and the migration stopped;/);
    expect(world.traffic.writes).toBe(0);
  });
});

describe('the record that replaces a damaged one', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should keep the salvaged step and plan, stop the migration, and record the decision and event', async () => {
    const good = await damaged(world, (r) => ({ ...r, status: 'bogus', capacityRestoring: true }));
    const result = await world.controller.tick(SPEC.id);
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0, step: good.step, plan: good.plan, capacityRestoring: false, capacityReleased: false });
    expect(result.record.lastDecision).toMatchObject({ action: 'rollback', code: 'state-damaged' });
    expect(result.decision).toMatchObject({ code: 'state-damaged' });
    expect(result.events).toEqual([
      expect.objectContaining({ type: 'state-damaged', code: 'state-damaged', from: 'rolled-back', to: 'rolled-back', weight: 0, step: good.step }),
    ]);
  });

  it('should name the status it was damaged in as where the event comes from', async () => {
    await damaged(world, (r) => ({ ...r, judge: 'garbage' }));
    const result = await world.controller.tick(SPEC.id);
    expect(result.events[0]).toMatchObject({ from: 'baking', to: 'rolled-back' });
  });

  it('should start from step -1 when the step was lost, and from the plan it kept when the step does not fit it', async () => {
    const good = await damaged(world, ({ step: _step, ...rest }) => rest);
    const lost = await world.controller.tick(SPEC.id);
    expect(lost.record).toMatchObject({ step: -1, plan: good.plan });

    const other = setup();
    const kept = await damaged(other, (r) => ({ ...r, step: 7 }));
    const beyond = await other.controller.tick(SPEC.id);
    expect(beyond.record).toMatchObject({ step: -1, plan: kept.plan });
  });

  it('should not name optional fields it could not read as lost, only required ones', async () => {
    await damaged(world, (r) => ({
      ...r,
      status: 'bogus',
      pinnedCapacity: -1,
      phaseStartedAtMs: 'x',
      lastWindowEndMs: 'x',
      lastWindowReadMs: 'x',
      alarmsConfirmedAtMs: 'x',
      latestNewProbe: 'x',
      trafficRevision: 7,
      shift: 'x',
      pausedFrom: 'x',
      capacityReleasing: 'x',
      damage: 'x',
      lastDecision: 'x',
    }));
    const result = await world.controller.tick(SPEC.id);
    expect(result.record.damage?.lost).toEqual(['status']);
  });

  it('should call the pin released only when its release was confirmed', () => {
    const build = (fields: Partial<MigrationRecord>) =>
      replacementFor('m', { what: 'x', raw: { id: 'm', ...fields } }, 'routed', { lastEventSeq: 0, keptAs: 'k', now: 1 }).record.capacityReleased;
    expect(build({ capacityReleased: true })).toBe(true);
    expect(build({ capacityReleased: true, capacityReleasing: true })).toBe(false);
    expect(build({ capacityReleased: false })).toBe(false);
    expect(build({})).toBe(false);
  });
});

describe('the alert when routing failed too', () => {
  it('should carry the damaged record\'s status, weight and step as far as they could be read', async () => {
    const world = setup();
    const good = await damaged(world, (r) => ({ ...r, judge: 'garbage' }));
    world.traffic.failNext = new Error('down');
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow(FailSafeRoutingError);
    expect(world.sink.published.at(-1)).toMatchObject({ from: 'baking', to: 'baking', weight: 10, step: good.step, seq: 0 });
  });

  it('should say paused, weight 0 and step -1 for what could not be read', async () => {
    const world = setup();
    await damaged(world, (r) => ({ ...r, status: 'bogus', weight: 'x', step: 'x' }));
    world.traffic.failNext = new Error('down');
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow(FailSafeRoutingError);
    expect(world.sink.published.at(-1)).toMatchObject({ from: 'paused', to: 'paused', weight: 0, step: -1 });
  });
});

describe('loading a damaged record', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should show the first three schema problems and count the rest', async () => {
    await damaged(world, (r) => ({ ...r, weight: 'x', createdAtMs: 'x', updatedAtMs: 'x', eventSeq: 'x', probesSeenUntilMs: 'x' }));
    const result = await world.controller.tick(SPEC.id);
    expect(result.damaged?.what).toMatch(/^record version \d+ fails its schema: [^;]+; [^;]+; [^;]+ \(and 2 more\)$/);
  });

  it('should show three problems without a count', async () => {
    const spoil = (r: MigrationRecord) => ({ ...r, weight: 'x', createdAtMs: 'x', updatedAtMs: 'x' });
    const good = await damaged(world, spoil);
    const check = checkRecord(SPEC.id, spoil(good));
    if (check.ok) throw new Error('the spoiled record passed its schema');
    expect(check.problems).toHaveLength(3);
    const result = await world.controller.tick(SPEC.id);
    expect(result.damaged?.what).toBe(`record version ${result.damaged!.version} fails its schema: ${check.problems.join('; ')}`);
  });

  it('should fail safe when the store itself reports the state damaged', async () => {
    await startAndRunTo(world, 'baking');
    const damage = { what: 'state file is not JSON', version: 3 };
    const load = world.store.load.bind(world.store);
    world.store.load = async (id) => {
      world.store.load = load;
      throw new DamagedStateError(id, damage);
    };
    world.store.quarantine = async (_id, _damage, build) => {
      const { record, events } = build({ lastEventSeq: 5, keptAs: 'file.bad' });
      world.store.records.set(SPEC.id, { record, version: 4 });
      world.store.log.set(SPEC.id, [...events]);
      return 4;
    };
    const result = await world.controller.tick(SPEC.id);
    expect(result.damaged).toEqual(damage);
    expect(result.record).toMatchObject({ status: 'rolled-back', damage: { what: 'state file is not JSON', keptAs: 'file.bad' } });
    expect(world.traffic.weight).toBe(0);
  });

  it('should pass on any other error of the store', async () => {
    await startAndRunTo(world, 'baking');
    world.store.load = async () => {
      throw new Error('EACCES');
    };
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow('EACCES');
  });

  it('should pass on an error of the quarantine other than a lost race', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.store.quarantine = async () => {
      throw new Error('EROFS');
    };
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow('EROFS');
  });

  it('should report a lost quarantine race with the stored record, or rethrow it when that is still damaged', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.store.quarantine = async (id, damage) => {
      throw new StaleStateError(id, damage.version ?? 0);
    };
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow(StaleStateError);

    const quarantine = Object.getPrototypeOf(world.store).quarantine.bind(world.store);
    world.store.quarantine = async (id, damage, build) => {
      await quarantine(id, damage, build); // a twin replaced it first
      throw new StaleStateError(id, damage.version ?? 0);
    };
    const result = await world.controller.tick(SPEC.id);
    expect(result).toMatchObject({ conflict: true, events: [], record: { status: 'rolled-back' } });
  });

  it('should pass on a quarantine error even when the replacement was stored (its answer was lost)', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    const quarantine = Object.getPrototypeOf(world.store).quarantine.bind(world.store);
    world.store.quarantine = async (id, damage, build) => {
      await quarantine(id, damage, build);
      throw new Error('socket hang up');
    };
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow('socket hang up');
  });

  it('should say the migration is gone when it was deleted while the quarantine lost its race', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.store.quarantine = async (id, damage) => {
      world.store.records.delete(id);
      throw new StaleStateError(id, damage.version ?? 0);
    };
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow(MigrationNotFoundError);
  });

  it('should keep a publish failure of the alert in the result', async () => {
    await damaged(world, (r) => ({ ...r, status: 'bogus' }));
    world.sink.fail = true;
    const result = await world.controller.tick(SPEC.id);
    expect(result.publishError?.message).toBe('sink down');
    expect(result.record.status).toBe('rolled-back');
  });
});
