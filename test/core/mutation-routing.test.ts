/**
 * The routing half of the tick protocol (routing.ts) through the controller: when it reads the
 * routing and when it does not, what a change recorded but not made leaves behind, how a change
 * found pending is settled, and what "changed outside the controller" records. Each test counts
 * reads and writes, because a protocol step that reads or writes once too often is exactly what
 * lets two ticks fight over the routing.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { TrafficShiftError } from '../../lambda/core/controller';
import { sameWeight } from '../../lambda/core/routing';
import { ConflictingTraffic, SPEC, log, runUntil, setup, startAndRunTo, type World } from './mutation-world';

type ConflictWorld = World & { traffic: ConflictingTraffic };

describe('sameWeight', () => {
  it('should treat float noise below a millionth of a percent as the same weight, and a millionth as different', () => {
    expect(sameWeight(0.1 + 0.2, 0.3)).toBe(true);
    expect(sameWeight(50, 50 + 1e-7)).toBe(true);
    expect(sameWeight(0, 1e-6)).toBe(false);
    expect(sameWeight(0, 0.5)).toBe(false);
  });

  it('should name its error TrafficShiftError and keep the cause', () => {
    const cause = new Error('x');
    const error = new TrafficShiftError('m', cause);
    expect(error).toMatchObject({ name: 'TrafficShiftError', message: 'm', cause });
  });
});

describe('routing reads and writes', () => {
  let world: ConflictWorld;
  beforeEach(() => {
    world = setup(new ConflictingTraffic()) as ConflictWorld;
  });

  it('should read the routing once before the first change (to learn its revision), and never before later steps', async () => {
    await world.controller.start(SPEC);
    const first = await world.controller.tick(SPEC.id);
    expect(first.record).toMatchObject({ status: 'baking', weight: 10, trafficRevision: '2' });
    expect(world.traffic.reads).toBe(1);
    expect(world.traffic.writes).toBe(1);
    const shifting = first.events.find((e) => e.type === 'shifting')!;
    expect(shifting).toMatchObject({ from: 'gating', to: 'shifting', weight: 0 });
    await runUntil(world, SPEC.id, (r) => r.record.weight === 50);
    expect(world.traffic.reads).toBe(1);
    expect(world.traffic.writes).toBe(2);
  });

  it('should roll back with one write and no read on the happy path', async () => {
    await startAndRunTo(world, 'baking');
    const reads = world.traffic.reads;
    const aborted = await world.controller.command(SPEC.id, 'abort');
    expect(aborted.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.reads).toBe(reads);
    expect(world.traffic.writes).toBe(2);
  });

  it('should not write at all when a rollback at the gate finds the routing already at 0', async () => {
    world.probes.verdict.new = 'desync';
    await world.controller.start(SPEC);
    const result = await world.controller.tick(SPEC.id);
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.writes).toBe(0);
    expect(world.traffic.reads).toBe(1);
  });

  it('should write 0 when an abort at the gate finds the routing moved by someone else', async () => {
    world.capacity.ready = false; // the gate holds
    await world.controller.start(SPEC);
    await world.controller.tick(SPEC.id);
    world.traffic.externalWrite(30);
    const aborted = await world.controller.command(SPEC.id, 'abort');
    expect(aborted.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.weight).toBe(0);
    expect(world.traffic.writes).toBe(1);
  });

  it('should pause, making no change, when the routing was moved before the first step', async () => {
    await world.controller.start(SPEC);
    world.traffic.externalWrite(30);
    const result = await world.controller.tick(SPEC.id);
    expect(result.record).toMatchObject({ status: 'paused', pausedFrom: 'gating', weight: 30, trafficRevision: '2' });
    expect(result.record.shift).toBeUndefined();
    expect(result.events.some((e) => e.type === 'shifting')).toBe(false);
    expect(result.events.at(-1)).toMatchObject({ type: 'paused', code: 'weight-changed-outside', from: 'gating', to: 'paused', weight: 30 });
    expect(result.events.at(-1)?.reason).toBe(
      'routing was changed outside the controller (weight 30%, the record expected 0%): paused at the weight found for a human to decide',
    );
    expect(world.traffic.writes).toBe(0);
    expect(world.traffic.weight).toBe(30);
  });

  it('should take a twin\'s write of the same step as in effect after a conflict, not as a change made outside', async () => {
    await startAndRunTo(world, 'baking');
    world.traffic.conflicts = 1;
    world.traffic.twinWeight = 50;
    const result = await runUntil(world, SPEC.id, (r) => r.record.weight !== 10, 100);
    expect(result.record).toMatchObject({ status: 'baking', weight: 50, step: 1 });
    expect(world.traffic.writes).toBe(2);
  });
});

describe('a change recorded but not made', () => {
  let world: ConflictWorld;
  beforeEach(async () => {
    world = setup(new ConflictingTraffic()) as ConflictWorld;
    await startAndRunTo(world, 'baking');
    world.traffic.failNext = new Error('boom');
  });

  async function failedStep() {
    let failure: unknown;
    for (let i = 0; i < 100 && failure === undefined; i++) {
      world.clock.advance(1000);
      failure = await world.controller.tick(SPEC.id).then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    return failure as Error;
  }

  it('should be reported, recorded with its revision, and left for the next tick', async () => {
    const failure = await failedStep();
    expect(failure).toBeInstanceOf(TrafficShiftError);
    expect(failure.message).toBe("setting the new side's weight to 50% (healthy) failed: Error: boom; the change stays recorded and the next tick settles it");
    const stored = (await world.store.load(SPEC.id))!.record;
    expect(stored).toMatchObject({ status: 'shifting', weight: 10, shift: { kind: 'advance', weight: 50, fromWeight: 10, step: 1, then: 'baking', from: 'baking', expectedRevision: '2' } });
    expect((await log(world)).at(-1)).toMatchObject({ type: 'shift-failed', code: 'shift-failed', from: 'shifting', to: 'shifting' });
  });

  it('should be made by the next tick when the routing is untouched', async () => {
    await failedStep();
    const writes = world.traffic.writes;
    world.clock.advance(1000);
    const settled = await world.controller.tick(SPEC.id);
    expect(settled.record).toMatchObject({ status: 'baking', weight: 50, step: 1 });
    expect(settled.record.shift).toBeUndefined();
    expect(settled.events.map((e) => e.type)).toEqual(['advanced']);
    expect(world.traffic.writes).toBe(writes + 1);
  });

  it('should pause with the weight found, without writing, when someone else moved the routing meanwhile', async () => {
    await failedStep();
    world.traffic.externalWrite(30);
    const writes = world.traffic.writes;
    world.clock.advance(1000);
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.writes).toBe(writes);
    expect(result.record).toMatchObject({ status: 'paused', pausedFrom: 'baking', weight: 30 });
    expect('shift' in result.record).toBe(false);
    expect(result.events.at(-1)?.reason).toBe(
      'routing was changed outside the controller (weight 30%, the record expected 10% or 50%): paused at the weight found for a human to decide',
    );
  });

  it('should record that a rollback carries no expected revision (it writes against whatever it finds)', async () => {
    world.traffic.failNext = new Error('boom');
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toThrow(
      "setting the new side's weight to 0% (operator-abort) failed: Error: boom; the change stays recorded and the next tick settles it",
    );
    const stored = (await world.store.load(SPEC.id))!.record;
    expect(stored.shift).toMatchObject({ kind: 'rollback', weight: 0, from: 'baking' });
    expect('expectedRevision' in stored.shift!).toBe(false);
  });

  it('should pass on a TrafficShiftError from the adapter as it is, without a second report', async () => {
    const own = new TrafficShiftError('alias locked', undefined);
    world.traffic.failNext = own;
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toBe(own);
    expect((await log(world)).some((e) => e.type === 'shift-failed')).toBe(false);
  });
});

describe('reading the routing fails', () => {
  it('should report it, with no change named, and keep the gate where it was', async () => {
    const world = setup();
    await world.controller.start(SPEC);
    world.traffic.getWeight = async () => {
      throw new Error('down');
    };
    const failure = (await world.controller.tick(SPEC.id).catch((e: unknown) => e)) as Error;
    expect(failure).toBeInstanceOf(TrafficShiftError);
    expect(failure.message).toBe("reading the new side's weight failed: Error: down");
    const stored = (await world.store.load(SPEC.id))!.record;
    expect(stored.status).toBe('gating');
    expect((await log(world)).at(-1)).toMatchObject({ type: 'shift-failed', code: 'shift-failed' });
  });

  it('should report a failed read while settling a change as a failure of that change', async () => {
    const world = setup();
    world.traffic.settleAfterCalls = 1;
    await world.controller.start(SPEC);
    expect((await world.controller.tick(SPEC.id)).record.status).toBe('shifting');
    world.traffic.getWeight = async () => {
      throw new Error('down');
    };
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow(
      "setting the new side's weight to 10% (gate-passed) failed: Error: down; the change stays recorded and the next tick settles it",
    );
  });
});

describe('a change still propagating', () => {
  let world: World;
  beforeEach(async () => {
    world = setup();
    await startAndRunTo(world, 'baking');
    world.traffic.settleAfterCalls = 1;
    await runUntil(world, SPEC.id, (r) => r.record.status === 'shifting');
  });

  it('should record the revision its write produced, and stay shifting', async () => {
    const stored = (await world.store.load(SPEC.id))!.record;
    const revision = String(world.traffic.revision);
    expect(stored).toMatchObject({ status: 'shifting', weight: 10, trafficRevision: revision, shift: { weight: 50, appliedRevision: revision } });
  });

  it('should pause with the weight found, without writing, when the routing moved during propagation', async () => {
    world.traffic.externalWrite(10);
    const history = [...world.traffic.history];
    world.clock.advance(1000);
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.history).toEqual(history);
    expect(result.record).toMatchObject({ status: 'paused', weight: 10, pausedFrom: 'baking' });
  });

  it('should never make it again, even when a restarted router reports the revision it was written against', async () => {
    const stored = (await world.store.load(SPEC.id))!.record;
    // The router restarted from old state: the weight before the change, and its old revision.
    world.traffic.weight = 10;
    world.traffic.revision = Number(stored.shift!.expectedRevision);
    const history = [...world.traffic.history];
    world.clock.advance(1000);
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.history).toEqual(history);
    expect(result.record).toMatchObject({ status: 'paused', weight: 10, pausedFrom: 'baking' });
  });

  it('should stay paused when paused meanwhile, and record where a resume goes back to', async () => {
    const paused = await world.controller.command(SPEC.id, 'pause', 'looking');
    expect(paused.record).toMatchObject({ status: 'paused', pausedFrom: 'shifting' });
    // Paused ticks still settle the change: still propagating on the first look, in effect on the next.
    world.clock.advance(1000);
    expect((await world.controller.tick(SPEC.id)).record).toMatchObject({ status: 'paused', pausedFrom: 'shifting', weight: 10 });
    world.clock.advance(1000);
    const settled = await world.controller.tick(SPEC.id);
    expect(settled.record).toMatchObject({ status: 'paused', pausedFrom: 'baking', weight: 50, step: 1 });
    expect(settled.record.shift).toBeUndefined();
    expect(settled.events.map((e) => `${e.type}:${e.from}:${e.to}`)).toEqual(['advanced:paused:paused']);
    // The record is whole: the next tick loads it (no damage) and does nothing.
    world.clock.advance(1000);
    const next = await world.controller.tick(SPEC.id);
    expect(next.damaged).toBeUndefined();
    expect(next.events).toEqual([]);
    const resumed = await world.controller.command(SPEC.id, 'resume');
    expect(resumed.record).toMatchObject({ status: 'baking', weight: 50 });
  });
});

describe('a rollback in effect', () => {
  it('should keep the step\'s evidence (phase start and totals) for the post-mortem', async () => {
    const world = setup();
    await startAndRunTo(world, 'baking');
    const before = (await runUntil(world, SPEC.id, (r) => r.record.stepTotals.new.requests > 0)).record;
    world.clock.advance(1000);
    const after = (await world.controller.command(SPEC.id, 'abort')).record;
    expect(after).toMatchObject({ status: 'rolled-back', weight: 0, step: before.step });
    expect(after.phaseStartedAtMs).toBe(before.phaseStartedAtMs);
    expect(after.lastWindowEndMs).toBe(before.lastWindowEndMs);
    expect(after.stepTotals).toEqual(before.stepTotals);
    expect(after.lastDecision).toMatchObject({ action: 'rollback', code: 'operator-abort', reason: 'operator command' });
  });
});

describe('a promote over a routing nobody expected', () => {
  it('should pause back where the migration was paused from (baking) when the write meets a change made outside', async () => {
    const world = setup();
    await startAndRunTo(world, 'baking');
    await world.controller.command(SPEC.id, 'pause');
    world.traffic.externalWrite(10); // same weight, new revision
    const result = await world.controller.command(SPEC.id, 'promote');
    expect(result.record).toMatchObject({ status: 'paused', pausedFrom: 'baking', weight: 10 });
    expect(world.traffic.weight).toBe(10);
  });

  it('should pause back to gating when the routing moved before any step', async () => {
    const world = setup();
    world.capacity.ready = false; // the gate holds
    await world.controller.start(SPEC);
    await world.controller.tick(SPEC.id);
    await world.controller.command(SPEC.id, 'pause');
    world.traffic.externalWrite(30);
    const result = await world.controller.command(SPEC.id, 'promote');
    expect(result.record).toMatchObject({ status: 'paused', pausedFrom: 'gating', weight: 30 });
    expect(world.traffic.history).toEqual([]);
  });
});
