/**
 * The old side's capacity through the controller (capacity.ts): pinned at the gate, restored when
 * it falls below the pin with no weight increase until it is back, released only by a teardown
 * that was saved first. The hold must come from the controller passing capacity to the judge: a
 * step that is due while the old side is short holds rather than advances.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidCommandError } from '../../lambda/core/controller';
import type { CapacityStatus } from '../../lambda/core/ports';
import { PLAN, SPEC, WINDOW, log, runUntil, setup, startAndRunTo, type World } from './mutation-world';

/** Ticks at the times where a window is due until the step has baked; returns that tick. */
async function tickUntilBaked(world: World, phaseStart: number, bakeMs: number, beforeLast?: () => void) {
  for (let t = WINDOW; t < bakeMs; t += WINDOW) {
    world.clock.ms = phaseStart + t;
    await world.controller.tick(SPEC.id);
  }
  beforeLast?.();
  world.clock.ms = phaseStart + bakeMs;
  return world.controller.tick(SPEC.id);
}

describe('capacity through the controller', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should hold, not advance, when the old side is below its pin just as a step is due', async () => {
    const baking = await startAndRunTo(world, 'baking');
    const due = await tickUntilBaked(world, baking.record.phaseStartedAtMs!, PLAN.steps[0]!.bakeMs, () => {
      world.capacity.current = 4; // an autoscaler shrank it behind the pin's back
    });
    expect(due.record).toMatchObject({ status: 'baking', weight: 10, capacityRestoring: true });
    expect(due.decision).toMatchObject({ action: 'hold', code: 'capacity-below-pin' });
    // The judge saw the capacity as the port reported it after the restore was asked for.
    expect(due.decision?.signals.capacity).toEqual({ current: 10, pinned: 10, ready: false });
    expect(world.traffic.history).toEqual([10]);
    expect(world.capacity.calls).toEqual(['pin 10', 'restore 10']);
    const restoring = due.events.find((e) => e.type === 'capacity-restoring')!;
    expect(restoring).toMatchObject({ code: 'capacity-below-pin', from: 'baking', to: 'baking' });
    expect(restoring.reason).toBe('old side fell to 4 of 10 units: restoring, no weight increase until it is back');
    expect(restoring.signals?.capacity).toEqual({ current: 4, pinned: 10, ready: true });
  });

  it('should hold while a restore is under way, asking again on every tick without a new event', async () => {
    const baking = await startAndRunTo(world, 'baking');
    await tickUntilBaked(world, baking.record.phaseStartedAtMs!, PLAN.steps[0]!.bakeMs, () => {
      world.capacity.current = 4;
    });
    // The platform dropped the request: still short on the next tick.
    world.capacity.current = 4;
    world.clock.advance(1000);
    const again = await world.controller.tick(SPEC.id);
    expect(again.record).toMatchObject({ status: 'baking', weight: 10, capacityRestoring: true });
    expect(world.capacity.calls).toEqual(['pin 10', 'restore 10', 'restore 10']);
    expect(again.events.some((e) => e.type === 'capacity-restoring')).toBe(false);
    expect(world.traffic.history).toEqual([10]);

    // Back and ready: recorded once, and the step that was due goes ahead.
    world.capacity.current = 10;
    world.capacity.ready = true;
    world.clock.advance(1000);
    const back = await world.controller.tick(SPEC.id);
    expect(back.events.map((e) => e.type)).toEqual(['capacity-restored', 'shifting', 'advanced']);
    expect(back.events[0]).toMatchObject({ code: 'capacity-restored', reason: 'old side back at 10 of 10 units', from: 'baking', to: 'baking' });
    expect(back.events[0]!.signals?.capacity).toEqual({ current: 10, pinned: 10, ready: true });
    expect(back.record).toMatchObject({ weight: 50, capacityRestoring: false });
  });

  it('should count capacity that is there but not ready as short, without saying it fell', async () => {
    const baking = await startAndRunTo(world, 'baking');
    const due = await tickUntilBaked(world, baking.record.phaseStartedAtMs!, PLAN.steps[0]!.bakeMs, () => {
      world.capacity.ready = false;
    });
    expect(due.decision?.code).toBe('capacity-below-pin');
    expect(due.events.find((e) => e.type === 'capacity-restoring')?.reason).toBe(
      'old side at 10 of 10 units but not ready: restoring, no weight increase until it is back',
    );
    expect(world.traffic.history).toEqual([10]);
  });

  it('should describe a side above its pin that is not ready as above it (never "fell to 12 of 10")', async () => {
    const baking = await startAndRunTo(world, 'baking');
    const read = world.capacity.read.bind(world.capacity);
    const due = await tickUntilBaked(world, baking.record.phaseStartedAtMs!, PLAN.steps[0]!.bakeMs, () => {
      // Demand grew the side past its pin, and the new units are still warming up.
      world.capacity.current = 12;
      world.capacity.ready = false;
      world.capacity.read = async (): Promise<CapacityStatus> => ({ ...(await read()), detail: 'IN_PROGRESS: 2 warming up' });
    });
    const restoring = due.events.find((e) => e.type === 'capacity-restoring')!;
    expect(restoring.reason).toBe('old side at 12 units (pinned at 10) but not ready (IN_PROGRESS: 2 warming up): restoring, no weight increase until it is back');
    expect(restoring.signals?.capacity).toEqual({ current: 12, pinned: 10, ready: false, detail: 'IN_PROGRESS: 2 warming up' });
    expect(world.traffic.history).toEqual([10]);

    world.capacity.read = read;
    world.capacity.current = 12;
    world.capacity.ready = true;
    world.clock.advance(1000);
    const back = await world.controller.tick(SPEC.id);
    expect(back.events[0]).toMatchObject({ type: 'capacity-restored', reason: 'old side back at 12 units (pinned at 10)' });
  });

  it('should name the platform detail in the reason when there is one', async () => {
    const baking = await startAndRunTo(world, 'baking');
    const read = world.capacity.read.bind(world.capacity);
    const due = await tickUntilBaked(world, baking.record.phaseStartedAtMs!, PLAN.steps[0]!.bakeMs, () => {
      world.capacity.current = 3;
      world.capacity.read = async (): Promise<CapacityStatus> => ({ ...(await read()), detail: 'FAILED: quota' });
    });
    expect(due.events.find((e) => e.type === 'capacity-restoring')?.reason).toBe(
      'old side fell to 3 of 10 units (FAILED: quota): restoring, no weight increase until it is back',
    );
  });

  it('should hold the gate while the old side is short, and pass it once it is back', async () => {
    world.capacity.ready = false;
    await world.controller.start({ ...SPEC, pinnedCapacity: 10 });
    const held = await world.controller.tick(SPEC.id);
    expect(held.record.status).toBe('gating');
    expect(held.decision?.code).toBe('capacity-below-pin');
    expect(world.traffic.history).toEqual([]);
    world.capacity.ready = true;
    world.clock.advance(1000);
    const passed = await world.controller.tick(SPEC.id);
    expect(passed.record).toMatchObject({ status: 'baking', weight: 10 });
  });

  it('should pin the old side at its starting scale, and not pin again when the pin is in place', async () => {
    world.capacity.current = 7;
    await startAndRunTo(world, 'baking');
    const record = (await world.store.load(SPEC.id))!.record;
    expect(record.pinnedCapacity).toBe(7);
    expect(world.capacity.calls).toEqual(['pin 7']);
    const pinned = (await log(world)).find((e) => e.type === 'capacity-pinned')!;
    expect(pinned).toMatchObject({ code: 'capacity-pinned', reason: 'old side pinned at 7 units until teardown' });
    await runUntil(world, SPEC.id, (r) => r.record.status === 'complete');
    expect(world.capacity.calls).toEqual(['pin 7']);
  });

  it('should pin at a configured figure, above the current scale, and restore up to it', async () => {
    await world.controller.start({ ...SPEC, pinnedCapacity: 12 });
    const gate = await world.controller.tick(SPEC.id);
    expect(world.capacity.calls).toEqual(['pin 12', 'restore 12']);
    expect(gate.record).toMatchObject({ status: 'gating', pinnedCapacity: 12, capacityRestoring: true });
  });

  it('should manage nothing when the pin is 0, from the gate to the teardown', async () => {
    await startAndRunTo(world, 'complete', { ...SPEC, pinnedCapacity: 0 });
    world.capacity.current = 1; // would be "below the pin" if there were one
    const torn = await world.controller.command(SPEC.id, 'teardown');
    expect(torn.record).toMatchObject({ status: 'torn-down', capacityReleased: true });
    expect(torn.record.capacityReleasing).toBeUndefined();
    expect(world.capacity.calls).toEqual([]);
  });

  it('should leave capacity unmanaged when the old side had none at the start', async () => {
    world.capacity.current = 0;
    const baking = await startAndRunTo(world, 'baking');
    expect(baking.record.pinnedCapacity).toBe(0);
    expect(world.capacity.calls).toEqual([]);
  });
});

describe('teardown', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should save the teardown before releasing the pin, and finish an interrupted release on the next tick', async () => {
    await startAndRunTo(world, 'complete');
    const release = world.capacity.release.bind(world.capacity);
    world.capacity.release = async () => {
      // The teardown was saved before the release was asked for.
      expect((await world.store.load(SPEC.id))!.record).toMatchObject({ status: 'torn-down', capacityReleasing: true });
      throw new Error('ServiceUnavailable');
    };
    await expect(world.controller.command(SPEC.id, 'teardown')).rejects.toThrow('ServiceUnavailable');
    expect((await world.store.load(SPEC.id))!.record).toMatchObject({ status: 'torn-down', capacityReleasing: true, capacityReleased: false });

    world.capacity.release = release;
    world.clock.advance(1000);
    const finished = await world.controller.tick(SPEC.id);
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);
    expect(finished.record).toMatchObject({ status: 'torn-down', capacityReleased: true });
    expect(finished.record.capacityReleasing).toBeUndefined();
    // A later tick has nothing left to do.
    world.clock.advance(1000);
    expect((await world.controller.tick(SPEC.id)).events).toEqual([]);
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);
  });

  it('should release a rolled-back migration once, and refuse a second teardown', async () => {
    await startAndRunTo(world, 'baking');
    await world.controller.command(SPEC.id, 'abort');
    const released = await world.controller.command(SPEC.id, 'teardown', 'old side no longer needed');
    expect(released.record).toMatchObject({ status: 'rolled-back', capacityReleased: true });
    expect(released.events[0]).toMatchObject({ type: 'capacity-released', from: 'rolled-back', to: 'rolled-back', code: 'operator-teardown' });
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);
    await expect(world.controller.command(SPEC.id, 'teardown')).rejects.toThrow(InvalidCommandError);
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);
  });

  it('should tear down from soaking, and refuse before it (promoted, paused, gating)', async () => {
    await startAndRunTo(world, 'promoted');
    await expect(world.controller.command(SPEC.id, 'teardown')).rejects.toThrow(/cannot teardown a migration that is promoted/);
    await runUntil(world, SPEC.id, (r) => r.record.status === 'soaking');
    const torn = await world.controller.command(SPEC.id, 'teardown');
    expect(torn.record).toMatchObject({ status: 'torn-down', capacityReleased: true });
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);
  });

  it('should release after the soak when the plan says so, recording completion first', async () => {
    const torn = await startAndRunTo(world, 'torn-down', { ...SPEC, plan: { ...PLAN, teardown: 'after-soak' } });
    expect(torn.events.map((e) => `${e.type}:${e.to}`)).toEqual(['completed:complete', 'torn-down:torn-down']);
    expect(torn.events[1]).toMatchObject({ code: 'teardown-after-soak', reason: 'soak passed; plan releases the old side after the soak' });
    expect(torn.record).toMatchObject({ capacityReleased: true });
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);
  });

  it('should keep the old side pinned after a manual-teardown soak, and say so', async () => {
    const done = await startAndRunTo(world, 'complete');
    const completed = done.events.find((e) => e.type === 'completed')!;
    expect(completed.reason).toMatch(/; old side stays at full capacity until an explicit teardown$/);
    expect(world.capacity.calls).toEqual(['pin 10']);
  });
});
