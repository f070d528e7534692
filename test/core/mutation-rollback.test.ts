/**
 * Rollbacks through the controller, on the paths an earlier review found unpinned: the fresh probe
 * right before a weight increase, and a rollback that keeps meeting routing conflicts (routing.ts
 * rule 4: it retries ROLLBACK_ATTEMPTS times in one tick, then reports a failure and stays
 * recorded for the next tick, never giving up early and never retrying forever).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { TrafficShiftError } from '../../lambda/core/controller';
import { ROLLBACK_ATTEMPTS } from '../../lambda/core/routing';
import { ConflictingTraffic, PLAN, SPEC, WINDOW, log, runUntil, setup, startAndRunTo, type World } from './mutation-world';

describe('a rollback that meets routing conflicts', () => {
  let world: World & { traffic: ConflictingTraffic };
  beforeEach(async () => {
    world = setup(new ConflictingTraffic()) as World & { traffic: ConflictingTraffic };
    await startAndRunTo(world, 'baking');
    world.traffic.writes = 0;
  });

  it('should try exactly ROLLBACK_ATTEMPTS (4) times in one call, then fail and keep the rollback recorded', async () => {
    expect(ROLLBACK_ATTEMPTS).toBe(4);
    world.traffic.conflicts = 1_000; // never gets through
    const failure = await world.controller.command(SPEC.id, 'abort', 'bad build').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TrafficShiftError);
    expect((failure as Error).message).toMatch(/setting the new side's weight to 0% \(operator-abort\) failed after 4 attempts: RevisionConflictError/);
    expect((failure as Error).message).toMatch(/the change stays recorded and the next tick settles it$/);
    expect(world.traffic.writes).toBe(ROLLBACK_ATTEMPTS);
    // Nothing moved, and the record says a rollback is in flight (it is never forgotten).
    expect(world.traffic.weight).toBe(10);
    const stored = (await world.store.load(SPEC.id))!.record;
    expect(stored).toMatchObject({ status: 'shifting', weight: 10, shift: { kind: 'rollback', weight: 0, then: 'rolled-back' } });
    expect((await log(world)).at(-1)).toMatchObject({ type: 'shift-failed', code: 'shift-failed', to: 'shifting' });
  });

  it('should land when the last of the four attempts gets through', async () => {
    world.traffic.conflicts = ROLLBACK_ATTEMPTS - 1;
    const result = await world.controller.command(SPEC.id, 'abort', 'bad build');
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.writes).toBe(ROLLBACK_ATTEMPTS);
    expect(world.traffic.weight).toBe(0);
  });

  it('should not write again once the first write got through', async () => {
    const result = await world.controller.command(SPEC.id, 'abort');
    expect(result.record.status).toBe('rolled-back');
    expect(world.traffic.writes).toBe(1);
  });

  it('should be settled by the next tick after it failed, with a fresh set of attempts', async () => {
    world.traffic.conflicts = 1_000;
    await expect(world.controller.command(SPEC.id, 'abort')).rejects.toThrow(TrafficShiftError);
    world.traffic.conflicts = ROLLBACK_ATTEMPTS - 1;
    world.traffic.writes = 0;
    world.clock.advance(1000);
    const settled = await world.controller.tick(SPEC.id);
    expect(settled.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(settled.events.at(-1)).toMatchObject({ type: 'aborted', code: 'operator-abort', to: 'rolled-back' });
    expect(world.traffic.writes).toBe(ROLLBACK_ATTEMPTS);
  });

  it('should stop at once when the rollback finds the routing already at 0 after a conflict', async () => {
    // A twin made the same rollback: its write is the one in effect.
    world.traffic.conflicts = 1_000;
    world.traffic.twinWeight = 0;
    const result = await world.controller.command(SPEC.id, 'abort');
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.writes).toBe(1);
  });

  it('should not retry a step forward that meets a conflict: someone else moved the routing, so it pauses', async () => {
    // Only a rollback fights for the routing; a weight increase never does.
    world.traffic.conflicts = 1_000;
    const result = await runUntil(world, SPEC.id, (r) => r.record.status !== 'baking', 100);
    expect(result.record).toMatchObject({ status: 'paused', weight: 10, pausedFrom: 'baking' });
    expect(result.events.at(-1)).toMatchObject({ code: 'weight-changed-outside' });
    expect(world.traffic.writes).toBe(1);
  });

  it('should give a judge rollback the same four attempts as an abort', async () => {
    world.health.newErrorRate = 0.3;
    world.traffic.conflicts = 1_000;
    let failure: unknown;
    for (let i = 0; i < 100 && failure === undefined; i++) {
      world.clock.advance(1000);
      failure = await world.controller.tick(SPEC.id).then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    expect(failure).toBeInstanceOf(TrafficShiftError);
    expect((failure as Error).message).toMatch(/weight to 0% \(error-rate-5xx\) failed after 4 attempts/);
    expect(world.traffic.writes).toBe(ROLLBACK_ATTEMPTS);
  });
});

describe('the probe right before a weight increase', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should roll back, not raise the weight, when it finds a desync once the step has baked', async () => {
    const baking = await startAndRunTo(world, 'baking');
    const phaseStart = baking.record.phaseStartedAtMs!;
    const probesBefore = world.probes.calls.length;
    world.probes.verdict.new = 'desync';
    const result = await runUntil(world, SPEC.id, (r) => r.record.status !== 'baking', 100);
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.history).toEqual([10, 0]);
    expect(result.decision).toMatchObject({ action: 'rollback', code: 'probe-desync' });
    expect(result.decision?.reason).toBe('Keep-Alive probe before raising the weight found a desync on the new side: new probe desync');
    // The probe that found it is the evidence, kept with the decision.
    expect(result.decision?.signals.probes).toEqual([expect.objectContaining({ side: 'new', verdict: 'desync' })]);
    // It ran once, at the tick where the step had baked (not on every mid-bake tick).
    expect(world.probes.calls.length).toBe(probesBefore + 1);
    expect(world.clock.now() - phaseStart).toBe(PLAN.steps[0]!.bakeMs);
    const shifting = (await log(world)).filter((e) => e.type === 'shifting').at(-1)!;
    expect(shifting).toMatchObject({ code: 'probe-desync', weight: 10 });
    expect(result.record.latestNewProbe).toMatchObject({ verdict: 'desync' });
    expect(result.events.at(-1)).toMatchObject({ type: 'rolled-back', code: 'probe-desync', to: 'rolled-back', weight: 0 });
  });

  it('should raise the weight when it is ok, and record it as the latest probe of the new side', async () => {
    await startAndRunTo(world, 'baking');
    const result = await runUntil(world, SPEC.id, (r) => r.record.weight === 50, 100);
    expect(result.record.latestNewProbe).toMatchObject({ side: 'new', verdict: 'ok', atMs: world.clock.now() });
    expect(result.record.probesSeenUntilMs).toBe(world.clock.now());
  });

  describe('when it is inconclusive', () => {
    /** Ticks only where a window is due, so that the bake is covered at a chosen time past it. */
    async function bakeThenProbeAt(maxHoldMs: number, pastBakeMs: number) {
      const baking = await startAndRunTo(world, 'baking', { ...SPEC, judge: { maxHoldMs } });
      const start = baking.record.phaseStartedAtMs!;
      world.probes.verdict.new = 'inconclusive';
      world.clock.ms = start + WINDOW;
      await world.controller.tick(SPEC.id);
      world.clock.ms = start + 2 * WINDOW;
      await world.controller.tick(SPEC.id);
      // The window read now covers the rest of the bake and `pastBakeMs` more.
      world.clock.ms = start + PLAN.steps[0]!.bakeMs + pastBakeMs;
      return world.controller.tick(SPEC.id);
    }

    it('should hold, once, with its own reason, while it has held for less than maxHoldMs past the bake', async () => {
      const result = await bakeThenProbeAt(5_001, 5_000);
      expect(result.record).toMatchObject({ status: 'baking', weight: 10 });
      expect(result.decision).toMatchObject({ action: 'hold', code: 'probe-inconclusive' });
      expect(result.decision?.reason).toBe('Keep-Alive probe before raising the weight was inconclusive: new probe inconclusive');
      expect(result.events.map((e) => `${e.type}:${e.code}`)).toEqual(['held:probe-inconclusive']);
      expect(result.record.lastDecision).toMatchObject({ code: 'probe-inconclusive', action: 'hold' });
      expect(world.traffic.history).toEqual([10]);
    });

    it('should not write the same hold again when the next probe before raising is inconclusive too', async () => {
      const first = await bakeThenProbeAt(60_000, 0);
      expect(first.events.map((e) => e.type)).toEqual(['held']);
      // A periodic probe finds the new side ok, so the judge lets the step go ahead again, and the
      // probe right before the increase is still inconclusive: same hold, nothing new to write.
      world.probes.record('new', 'ok', world.clock.now() + 500);
      world.clock.advance(1000);
      const calls = world.probes.calls.length;
      const again = await world.controller.tick(SPEC.id);
      expect(world.probes.calls.length).toBe(calls + 1);
      expect(again.decision).toMatchObject({ action: 'hold', code: 'probe-inconclusive' });
      expect(again.events).toEqual([]);
      expect(world.traffic.history).toEqual([10]);
    });

    it('should pause once it has held for maxHoldMs past the bake (the limit itself included)', async () => {
      const result = await bakeThenProbeAt(5_000, 5_000);
      expect(result.record).toMatchObject({ status: 'paused', pausedFrom: 'baking', weight: 10 });
      expect(result.events.at(-1)).toMatchObject({ type: 'paused', code: 'probe-inconclusive' });
      expect(result.events.at(-1)?.reason).toBe('Keep-Alive probes before raising the weight stayed inconclusive for 5s: new probe inconclusive');
      expect(world.traffic.history).toEqual([10]);
    });
  });
});
