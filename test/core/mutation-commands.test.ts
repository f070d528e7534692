/**
 * Starting a migration and the operator's commands (controller.ts `start`/`applyCommand`), and
 * how a tick saves: what each refusal says (an operator reads it), what each command records,
 * and that a failed save never leaves a routing change made that the record does not know.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidCommandError, MigrationNotFoundError, TrafficShiftError } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import { StaleStateError } from '../../lambda/core/ports';
import { PLAN, SPEC, runUntil, setup, startAndRunTo, type World } from './mutation-world';

describe('start', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should refuse an id that is empty, blank or not a string', async () => {
    await expect(world.controller.start({ ...SPEC, id: '' })).rejects.toThrow(new TypeError('migration id must be a non-empty string, got ""'));
    await expect(world.controller.start({ ...SPEC, id: '  ' })).rejects.toThrow('migration id must be a non-empty string, got "  "');
    await expect(world.controller.start({ ...SPEC, id: 42 as unknown as string })).rejects.toThrow('migration id must be a non-empty string, got 42');
    expect(world.store.records.size).toBe(0);
  });

  it('should refuse a pinned capacity that is not a whole number ≥ 0, and accept 0', async () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      await expect(world.controller.start({ ...SPEC, pinnedCapacity: bad })).rejects.toThrow(
        new TypeError(`pinnedCapacity must be a whole number ≥ 0, got ${JSON.stringify(bad)}`),
      );
    }
    const started = await world.controller.start({ ...SPEC, pinnedCapacity: 0 });
    expect(started.record.pinnedCapacity).toBe(0);
  });

  it('should record what it was given: no pin unless one was given, a copy of the metadata, a created event', async () => {
    const metadata = { newVersion: '7' };
    const started = await world.controller.start({ ...SPEC, metadata });
    expect('pinnedCapacity' in started.record).toBe(false);
    expect(started.record.metadata).toEqual({ newVersion: '7' });
    expect(started.record.metadata).not.toBe(metadata);
    expect(started.record).toMatchObject({ status: 'pending', weight: 0, step: -1, eventSeq: 1, capacityRestoring: false, capacityReleased: false });
    expect(started.events).toEqual([
      expect.objectContaining({ type: 'created', code: 'created', from: 'pending', to: 'pending', seq: 1, reason: expect.stringMatching(/^migration created: /) }),
    ]);
    const pinned = await setup().controller.start({ ...SPEC, pinnedCapacity: 3 });
    expect(pinned.record.pinnedCapacity).toBe(3);
  });

  it('should return an existing migration unchanged, without a conflict', async () => {
    await world.controller.start(SPEC);
    const again = await world.controller.start({ ...SPEC, metadata: { other: 'x' } });
    expect(again.conflict).toBeUndefined();
    expect(again.events).toEqual([]);
    expect(again.record.metadata).toEqual({});
    expect((await world.store.load(SPEC.id))!.version).toBe(1);
  });

  it('should fail safe when the migration it finds is damaged', async () => {
    await world.controller.start(SPEC);
    world.store.damage(SPEC.id, { status: 'bogus' });
    const again = await world.controller.start(SPEC);
    expect(again.damaged).toBeDefined();
    expect(again.record).toMatchObject({ status: 'rolled-back' });
  });
});

describe('an unknown migration or command', () => {
  it('should name the migration, for a tick and for a command', async () => {
    const world = setup();
    const error = (await world.controller.tick('nope').catch((e: unknown) => e)) as MigrationNotFoundError;
    expect(error).toBeInstanceOf(MigrationNotFoundError);
    expect(error).toMatchObject({ name: 'MigrationNotFoundError', migrationId: 'nope', message: 'no migration with id "nope"' });
    await expect(world.controller.command('nope', 'pause')).rejects.toThrow(MigrationNotFoundError);
  });

  it('should list the known commands', async () => {
    const world = setup();
    await world.controller.start(SPEC);
    await expect(world.controller.command(SPEC.id, 'explode' as never)).rejects.toThrow(
      new TypeError('unknown command "explode"; known: pause, resume, abort, promote, teardown'),
    );
  });
});

describe('commands', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  const refusal = async (command: Parameters<World['controller']['command']>[1]) => {
    const error = (await world.controller.command(SPEC.id, command).catch((e: unknown) => e)) as InvalidCommandError;
    expect(error).toBeInstanceOf(InvalidCommandError);
    expect(error.name).toBe('InvalidCommandError');
    return error.message;
  };

  it('should pause with the operator\'s code, the default reason, and where to come back to', async () => {
    await startAndRunTo(world, 'baking');
    const paused = await world.controller.command(SPEC.id, 'pause');
    expect(paused.record).toMatchObject({ status: 'paused', pausedFrom: 'baking' });
    expect(paused.events).toEqual([expect.objectContaining({ type: 'paused', code: 'operator-pause', reason: 'operator command', from: 'baking', to: 'paused' })]);
    expect(await refusal('pause')).toBe('cannot pause a migration that is paused: nothing to pause');
  });

  it('should refuse to pause a finished, a complete, or a rolling-back migration', async () => {
    await startAndRunTo(world, 'complete');
    expect(await refusal('pause')).toBe('cannot pause a migration that is complete: a complete migration moves no traffic; teardown or abort it');
    await world.controller.command(SPEC.id, 'abort');
    expect(await refusal('pause')).toBe('cannot pause a migration that is rolled-back: nothing to pause');
    expect(await refusal('abort')).toBe('cannot abort a migration that is rolled-back: the migration is over');
  });

  it('should never pause a rollback in flight', async () => {
    await startAndRunTo(world, 'baking');
    world.traffic.failNext = new Error('ThrottlingException');
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toThrow(TrafficShiftError);
    expect(await refusal('pause')).toBe('cannot pause a migration that is shifting: a rollback is being made, and a rollback is never paused');
    // A step forward in flight, by contrast, may be paused (paused ticks still settle it).
    const other = setup();
    await startAndRunTo(other, 'baking');
    other.traffic.settleAfterCalls = 1;
    await runUntil(other, SPEC.id, (r) => r.record.status === 'shifting');
    expect((await other.controller.command(SPEC.id, 'pause')).record).toMatchObject({ status: 'paused', pausedFrom: 'shifting' });
  });

  it('should resume only a paused migration, restarting the step\'s evidence', async () => {
    await startAndRunTo(world, 'baking');
    expect(await refusal('resume')).toBe('cannot resume a migration that is baking: only a paused migration can resume');
    await runUntil(world, SPEC.id, (r) => r.record.stepTotals.new.requests > 0);
    await world.controller.command(SPEC.id, 'pause');
    world.clock.advance(60_000);
    const resumed = await world.controller.command(SPEC.id, 'resume', 'carry on');
    const now = world.clock.now();
    expect(resumed.record).toMatchObject({
      status: 'baking',
      weight: 10,
      phaseStartedAtMs: now,
      lastWindowEndMs: now,
      lastWindowReadMs: now,
      stepTotals: { old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } },
    });
    expect(resumed.events).toEqual([expect.objectContaining({ type: 'resumed', code: 'operator-resume', reason: 'carry on', from: 'paused', to: 'baking' })]);
    expect(world.traffic.history).toEqual([10]);
  });

  it('should resume a paused gate without touching the routing', async () => {
    world.capacity.ready = false;
    await world.controller.start(SPEC);
    await world.controller.tick(SPEC.id);
    await world.controller.command(SPEC.id, 'pause');
    const resumed = await world.controller.command(SPEC.id, 'resume');
    expect(resumed.record).toMatchObject({ status: 'gating', weight: 0 });
    expect(resumed.events.map((e) => e.type)).toEqual(['resumed']);
    expect(world.traffic.history).toEqual([]);
  });

  it('should resume into shifting when paused while a change was in flight, and let the next tick settle it', async () => {
    await startAndRunTo(world, 'baking');
    world.traffic.settleAfterCalls = 5;
    await runUntil(world, SPEC.id, (r) => r.record.status === 'shifting');
    await world.controller.command(SPEC.id, 'pause');
    const resumed = await world.controller.command(SPEC.id, 'resume');
    expect(resumed.record).toMatchObject({ status: 'shifting', shift: { weight: 50 } });
    expect(resumed.events).toEqual([expect.objectContaining({ type: 'resumed', from: 'paused', to: 'shifting' })]);
    const settled = await runUntil(world, SPEC.id, (r) => r.record.status !== 'shifting', 20);
    expect(settled.record).toMatchObject({ status: 'baking', weight: 50 });
  });

  /** Paused by a routing change made outside during `status`, found after a gap in the watch. */
  async function pausedByOutsideChange(status: 'promoted' | 'soaking') {
    await startAndRunTo(world, status);
    world.traffic.externalWrite(30);
    world.clock.ms = (await world.store.load(SPEC.id))!.record.lastWindowReadMs! + 50_000; // a gap: the routing is read
    const paused = await world.controller.tick(SPEC.id);
    expect(paused.record).toMatchObject({ status: 'paused', pausedFrom: status, weight: 30 });
  }

  it('should put the promotion\'s 100 % back on resume after the routing was changed outside, through the protocol', async () => {
    await pausedByOutsideChange('promoted');
    world.traffic.settleAfterCalls = 1; // stays recorded while it propagates
    const resumed = await world.controller.command(SPEC.id, 'resume', 'router fixed');
    expect(resumed.record).toMatchObject({ status: 'shifting', shift: { kind: 'advance', weight: 100, then: 'promoted', type: 'resumed' } });
    expect(world.traffic.weight).toBe(100);
    world.clock.advance(1000);
    expect((await world.controller.tick(SPEC.id)).record.status).toBe('shifting');
    world.clock.advance(1000);
    const settled = await world.controller.tick(SPEC.id);
    // The stored shift was whole (a valid kind): the record loads, and the change is in effect.
    expect(settled.damaged).toBeUndefined();
    expect(settled.record).toMatchObject({ status: 'promoted', weight: 100, phaseStartedAtMs: world.clock.now() });
    expect(settled.events.map((e) => `${e.type}:${e.to}`)).toEqual(['resumed:promoted']);
  });

  // Resuming a soak paused by an outside routing change records a change whose `then` is
  // soaking: the state machine has the shifting → soaking edge for it.
  it('should write the soak\'s 100 % back to the routing on resume', async () => {
    await pausedByOutsideChange('soaking');
    await world.controller.command(SPEC.id, 'resume', 'router fixed');
    expect(world.traffic.weight).toBe(100);
    expect(world.traffic.history.at(-1)).toBe(100);
  });

  it('should put a soak\'s 100 % back on resume after the routing was changed outside, and soak again', async () => {
    await pausedByOutsideChange('soaking');
    const resumed = await world.controller.command(SPEC.id, 'resume', 'router fixed');
    expect(resumed.record).toMatchObject({ status: 'soaking', weight: 100 });
    expect(resumed.record.shift).toBeUndefined();
  });

  it('should abort with the operator\'s reason, recorded as the decision', async () => {
    await startAndRunTo(world, 'baking');
    const aborted = await world.controller.command(SPEC.id, 'abort', 'bad build');
    expect(aborted.decision).toMatchObject({ action: 'rollback', code: 'operator-abort', reason: 'bad build' });
    expect(aborted.events.map((e) => `${e.type}:${e.to}`)).toEqual(['shifting:shifting', 'aborted:rolled-back']);
    expect(aborted.record.lastDecision).toMatchObject({ code: 'operator-abort' });
  });

  it('should promote to the last step at 100 %, recorded as promoted', async () => {
    await startAndRunTo(world, 'baking');
    const promoted = await world.controller.command(SPEC.id, 'promote', 'clearly healthy');
    expect(promoted.record).toMatchObject({ status: 'promoted', weight: 100, step: PLAN.steps.length - 1 });
    expect(promoted.events.map((e) => `${e.type}:${e.code}:${e.to}`)).toEqual(['shifting:operator-promote:shifting', 'promoted:operator-promote:promoted']);
  });

  it('should promote a paused bake, but refuse once the new side has all the traffic, paused or not', async () => {
    await startAndRunTo(world, 'baking');
    await world.controller.command(SPEC.id, 'pause');
    expect((await world.controller.command(SPEC.id, 'promote')).record.status).toBe('promoted');
    const message = 'cannot promote a migration that is promoted: the new side already takes all the traffic, or the migration is over';
    expect(await refusal('promote')).toBe(message);
    await runUntil(world, SPEC.id, (r) => r.record.status === 'soaking');
    await world.controller.command(SPEC.id, 'pause');
    expect(await refusal('promote')).toBe('cannot promote a migration that is paused: the new side already takes all the traffic, or the migration is over');
  });

  it('should refuse to promote while a change is still being made', async () => {
    await startAndRunTo(world, 'baking');
    world.traffic.settleAfterCalls = 5;
    await runUntil(world, SPEC.id, (r) => r.record.status === 'shifting');
    expect(await refusal('promote')).toBe(
      'cannot promote a migration that is shifting: a change to 50% is still being made; promote once it has settled (the next tick settles it)',
    );
  });

  it('should refuse a teardown before the end, saying why', async () => {
    await startAndRunTo(world, 'baking');
    expect(await refusal('teardown')).toBe(
      'cannot teardown a migration that is baking: teardown releases the old side only after the migration is complete (or soaking, or rolled back), so a rollback always has somewhere to land',
    );
  });
});

describe('saving', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should not save a tick that changed nothing', async () => {
    await startAndRunTo(world, 'baking');
    await world.controller.command(SPEC.id, 'pause');
    const version = (await world.store.load(SPEC.id))!.version;
    world.clock.advance(1000);
    const result = await world.controller.tick(SPEC.id);
    expect(result.events).toEqual([]);
    expect((await world.store.load(SPEC.id))!.version).toBe(version);
  });

  it('should never publish an empty batch', async () => {
    const batches: (readonly MigrationEvent[])[] = [];
    const publish = world.sink.publish.bind(world.sink);
    world.sink.publish = async (events) => {
      batches.push(events);
      return publish(events);
    };
    await startAndRunTo(world, 'complete');
    expect(batches.length).toBeGreaterThan(5);
    expect(batches.every((b) => b.length > 0)).toBe(true);
  });

  it('should make no routing change when recording it fails, and report that failure as it is', async () => {
    await startAndRunTo(world, 'baking');
    const save = world.store.save.bind(world.store);
    let failures = 1;
    world.store.save = async (id, record, version, events) => {
      if (record.status === 'shifting' && failures-- > 0) throw new Error('disk full');
      return save(id, record, version, events);
    };
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toThrow('disk full');
    expect(world.traffic.history).toEqual([10]);
    expect((await world.store.load(SPEC.id))!.record.status).toBe('baking');
  });

  it('should report a failed final save as it is, not as a lost race', async () => {
    await startAndRunTo(world, 'baking');
    world.store.save = async () => {
      throw new Error('disk full');
    };
    await expect(world.controller.command(SPEC.id, 'pause')).rejects.toThrow('disk full');
  });

  it('should report a lost race on the final save as a conflict, with the record now stored', async () => {
    await startAndRunTo(world, 'baking');
    const save = world.store.save.bind(world.store);
    world.store.save = async (id, record, version, events) => {
      world.store.save = save; // one twin writes first, once
      const stored = (await world.store.load(id))!;
      await save(id, { ...stored.record, metadata: { twin: 'yes' } }, stored.version, []);
      return save(id, record, version, events);
    };
    const result = await world.controller.command(SPEC.id, 'pause');
    expect(result.conflict).toBe(true);
    expect(result.events).toEqual([]);
    expect(result.record).toMatchObject({ status: 'baking', metadata: { twin: 'yes' } });
  });

  it('should report a failed routing change even when saving that failure loses a race', async () => {
    await startAndRunTo(world, 'baking');
    world.traffic.failNext = new Error('ThrottlingException');
    const save = world.store.save.bind(world.store);
    world.store.save = async (id, record, version, events) => {
      if (events.some((e) => e.type === 'shift-failed')) throw new StaleStateError(id, version);
      return save(id, record, version, events);
    };
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toThrow(TrafficShiftError);
  });

  it('should report a failed save of a failed routing change rather than the routing failure', async () => {
    await startAndRunTo(world, 'baking');
    world.traffic.failNext = new Error('ThrottlingException');
    const save = world.store.save.bind(world.store);
    world.store.save = async (id, record, version, events) => {
      if (events.some((e) => e.type === 'shift-failed')) throw new Error('disk full');
      return save(id, record, version, events);
    };
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toThrow('disk full');
  });

  it('should fall back to the record it loaded when the record cannot be read back after a lost race', async () => {
    await startAndRunTo(world, 'baking');
    const before = (await world.store.load(SPEC.id))!.record;
    const save = world.store.save.bind(world.store);
    world.store.save = async (id, _record, version) => {
      world.store.load = async () => {
        throw new Error('unreachable');
      };
      void save;
      throw new StaleStateError(id, version);
    };
    const result = await world.controller.command(SPEC.id, 'pause');
    expect(result.conflict).toBe(true);
    expect(result.record).toEqual(before);
  });

  it('should keep a publish failure in the result of a lost race', async () => {
    await startAndRunTo(world, 'baking');
    world.sink.fail = true;
    const save = world.store.save.bind(world.store);
    let saves = 0;
    world.store.save = async (id, record, version, events) => {
      if (++saves === 2) throw new StaleStateError(id, version); // the abort's second save loses
      return save(id, record, version, events);
    };
    const result = await world.controller.command(SPEC.id, 'abort');
    expect(result.conflict).toBe(true);
    expect(result.publishError?.message).toBe('sink down');
    expect(result.events.map((e) => e.type)).toEqual(['shifting']);
  });
});
