import { beforeEach, describe, expect, it } from 'vitest';
import { MigrationController, InvalidCommandError, MigrationNotFoundError, TrafficShiftError, type MigrationSpec } from '../../lambda/core/controller';
import { MigrationPlan, PlanValidationError } from '../../lambda/core/plan';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, MemoryStore, SimulatedHealth } from './fakes';

const WINDOW = 10_000;
const plan = MigrationPlan.fromSteps(
  [
    { weight: 10, bakeMs: 3 * WINDOW },
    { weight: 50, bakeMs: 3 * WINDOW },
    { weight: 100, bakeMs: 2 * WINDOW },
  ],
  { healthWindowMs: WINDOW, soakMs: 3 * WINDOW },
).toSpec();

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const traffic = new FakeTraffic();
  const health = new SimulatedHealth(traffic, 42);
  health.requestsPerWindow = 5000;
  const probes = new FakeProbes(clock);
  const capacity = new FakeCapacity();
  const sink = new CollectingSink();
  const controller = new MigrationController({ clock, store, traffic, health, probes, capacity, events: sink });
  return { clock, store, traffic, health, probes, capacity, sink, controller };
}

type World = ReturnType<typeof setup>;

/** Ticks every second of fake time until the migration stops changing or `maxTicks` is reached. */
async function runUntil(world: World, id: string, stop: (status: string) => boolean, maxTicks = 500) {
  let result = await world.controller.tick(id);
  for (let i = 0; i < maxTicks && !stop(result.record.status); i++) {
    world.clock.advance(1000);
    if (world.capacity.ready === false) world.capacity.ready = true; // warm-up finishes
    result = await world.controller.tick(id);
  }
  return result;
}

const spec: MigrationSpec = { id: 'orders:live:7', plan, metadata: { newVersion: '7' } };

describe('MigrationController', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should run a healthy migration through every step, soak, and wait for an explicit teardown', async () => {
    await world.controller.start(spec);
    const done = await runUntil(world, spec.id, (s) => s === 'complete');
    expect(done.record.status).toBe('complete');
    expect(world.traffic.history).toEqual([10, 50, 100]);
    expect(world.capacity.calls).toEqual(['pin 10']);
    expect(world.capacity.pinned).toBe(10);

    // A complete migration keeps the old side pinned until teardown.
    const teardown = await world.controller.command(spec.id, 'teardown', 'operator: new side proven');
    expect(teardown.record.status).toBe('torn-down');
    expect(world.capacity.calls).toEqual(['pin 10', 'release']);

    const log = await world.store.events(spec.id);
    const types = log.filter((e) => e.type !== 'held').map((e) => `${e.type}:${e.to}`);
    expect(types).toEqual([
      'created:pending',
      'gating:gating',
      'capacity-pinned:gating',
      // Every routing change is recorded before it is made, then recorded in effect.
      'shifting:shifting',
      'advanced:baking',
      'shifting:shifting',
      'advanced:baking',
      'shifting:shifting',
      'promoted:promoted',
      'soaking:soaking',
      'completed:complete',
      'torn-down:torn-down',
    ]);
    // Every event carries a reason; seq numbers have no gap; the sink got them all.
    expect(log.every((e) => e.reason.length > 0)).toBe(true);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
    expect(world.sink.published).toEqual(log);
    // The gate probed both sides; every weight increase after it probed the new side again.
    expect(world.probes.calls).toEqual(['new', 'old', 'new', 'new']);
  });

  it('should release the old side after the soak when the plan says so', async () => {
    await world.controller.start({ ...spec, plan: { ...plan, teardown: 'after-soak' } });
    const done = await runUntil(world, spec.id, (s) => s === 'torn-down');
    expect(done.record.status).toBe('torn-down');
    expect(world.capacity.calls).toContain('release');
  });

  it('should roll back automatically when the new side starts returning 5XX', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, () => world.traffic.weight === 50);
    world.health.newErrorRate = 0.2;
    const result = await runUntil(world, spec.id, (s) => s === 'rolled-back');
    expect(result.record.status).toBe('rolled-back');
    expect(world.traffic.weight).toBe(0);
    expect(result.decision?.code).toBe('error-rate-5xx');
    const last = (await world.store.events(spec.id)).at(-1)!;
    expect(last).toMatchObject({ type: 'rolled-back', weight: 0, code: 'error-rate-5xx' });
    // The evidence is kept with the decision, recorded before the routing changed.
    const decided = (await world.store.events(spec.id)).at(-2)!;
    expect(decided).toMatchObject({ type: 'shifting', to: 'shifting', code: 'error-rate-5xx' });
    expect(decided.signals?.window?.new.errors5xx).toBeGreaterThan(0);
    // Rolling back never shrinks the old side.
    expect(world.capacity.calls).not.toContain('release');
  });

  it('should never move traffic when the gate probe finds a desync', async () => {
    world.probes.verdict.new = 'desync';
    await world.controller.start(spec);
    const result = await world.controller.tick(spec.id);
    expect(result.record.status).toBe('rolled-back');
    expect(result.decision?.code).toBe('probe-desync');
    expect(Math.max(0, ...world.traffic.history)).toBe(0);
  });

  it('should roll back when a periodic probe finds a desync during a bake', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, (s) => s === 'baking');
    world.clock.advance(500);
    world.probes.record('new', 'desync', world.clock.now());
    world.clock.advance(500);
    const result = await world.controller.tick(spec.id);
    expect(result.record.status).toBe('rolled-back');
    expect(world.traffic.weight).toBe(0);
  });

  it('should hold and restore the old side when it falls below its pin, then complete', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, () => world.traffic.weight === 10);
    world.capacity.current = 4; // an autoscaler shrank it behind the pin's back
    const held = await world.controller.tick(spec.id);
    expect(held.events.map((e) => e.type)).toContain('capacity-restoring');
    expect(world.capacity.calls).toContain('restore 10');
    const done = await runUntil(world, spec.id, (s) => s === 'complete');
    expect(done.record.status).toBe('complete');
    const log = await world.store.events(spec.id);
    expect(log.map((e) => e.type)).toContain('capacity-restored');
    // No weight increase happened between the drop and the restore.
    const dropAt = log.findIndex((e) => e.type === 'capacity-restoring');
    const backAt = log.findIndex((e) => e.type === 'capacity-restored');
    expect(log.slice(dropAt, backAt).some((e) => e.type === 'advanced')).toBe(false);
  });

  it('should roll back after maxMissingWindows windows without signals', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, (s) => s === 'baking');
    world.health.missing = true;
    const result = await runUntil(world, spec.id, (s) => s === 'rolled-back', 100);
    expect(result.decision?.code).toBe('signals-missing');
    expect(world.traffic.weight).toBe(0);
  });

  it('should treat a failing alarm read as missing signals: hold, then roll back, and never advance', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, (s) => s === 'baking');
    world.health.readAlarms = async () => {
      throw new Error('ThrottlingException: Rate exceeded');
    };
    const result = await runUntil(world, spec.id, (s) => s === 'rolled-back', 100);
    expect(result.decision?.code).toBe('signals-missing');
    expect(result.decision?.reason).toMatch(/alarms: Error: ThrottlingException/);
    expect(world.traffic.history).toEqual([10, 0]);
  });

  it('should confirm alarms at the gate and before every move on, and answer mid-bake ticks from pushed states', async () => {
    world.health.clock = world.clock;
    world.health.pushedAlarms = [];
    await world.controller.start({ ...spec, judge: { alarmRecheckMs: 15_000 } });
    const done = await runUntil(world, spec.id, (s) => s === 'complete');
    expect(done.record.status).toBe('complete');
    const reads = world.health.alarmReads;
    expect(reads[0]?.purpose).toBe('confirm');
    const confirms = reads.filter((r) => r.purpose === 'confirm').map((r) => r.atMs);
    const watches = reads.filter((r) => r.purpose === 'watch');
    // Most ticks are mid-bake and need no call to the alarms' source.
    expect(watches.length).toBeGreaterThan(confirms.length * 3);
    // Every step forward happened in a tick that confirmed the alarms first.
    const log = await world.store.events(spec.id);
    const movesOn = log.filter((e) => ['advanced', 'promoted', 'soaking', 'completed'].includes(e.type));
    expect(movesOn.length).toBe(5);
    for (const event of movesOn) expect(confirms).toContain(event.atMs);
    // Between steps, a confirmation is never older than alarmRecheckMs (+ one tick).
    const gaps = confirms.slice(1).map((t, i) => t - confirms[i]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(16_000);
  });

  it('should catch an ALARM that never arrived as an event in the confirmation before moving on', async () => {
    world.health.pushedAlarms = [{ name: 'errors', state: 'OK' }];
    await world.controller.start({ ...spec, judge: { alarmRecheckMs: 10 * 60_000 } });
    await runUntil(world, spec.id, (s) => s === 'baking');
    // The alarm fires but its state change event is lost: routine reads still say OK.
    world.health.alarms = [{ name: 'errors', state: 'ALARM', reason: 'threshold crossed' }];
    const result = await runUntil(world, spec.id, (s) => s !== 'baking', 100);
    expect(result.record.status).toBe('rolled-back');
    expect(result.decision?.code).toBe('alarm');
    expect(world.traffic.history).toEqual([10, 0]);
  });

  it('should confirm alarms on every tick when alarmRecheckMs is 0', async () => {
    world.health.pushedAlarms = [];
    await world.controller.start({ ...spec, judge: { alarmRecheckMs: 0 } });
    await runUntil(world, spec.id, (s) => s === 'complete');
    expect(world.health.alarmReads.every((r) => r.purpose === 'confirm')).toBe(true);
  });

  it('should not count a window with no completed period as missing, nor judge it', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, (s) => s === 'baking');
    const read = world.health.readWindow.bind(world.health);
    let calls = 0;
    world.health.readWindow = async (fromMs, toMs) => {
      calls++;
      // Like CloudWatch at the start of a step: no whole period has ended yet.
      return calls <= 5 ? { fromMs, toMs: fromMs, old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } } : read(fromMs, toMs);
    };
    const done = await runUntil(world, spec.id, (s) => s === 'complete');
    expect(done.record.status).toBe('complete');
    const log = await world.store.events(spec.id);
    expect(log.some((e) => e.code === 'signals-missing')).toBe(false);
  });

  it('should pause when probes of the new side stay inconclusive past maxHoldMs', async () => {
    await world.controller.start({ ...spec, judge: { maxHoldMs: 20_000 } });
    await runUntil(world, spec.id, (s) => s === 'baking');
    world.probes.verdict.new = 'inconclusive';
    const result = await runUntil(world, spec.id, (s) => s === 'paused', 200);
    expect(result.record.status).toBe('paused');
    expect(result.events.at(-1)?.code).toBe('probe-inconclusive');
    expect(world.traffic.history).toEqual([10]);
  });

  it('should pause a gate that cannot pass within maxHoldMs (an alarm that never clears)', async () => {
    world.health.alarms = [{ name: 'errors', state: 'ALARM' }];
    await world.controller.start({ ...spec, judge: { maxHoldMs: 10_000 } });
    const result = await runUntil(world, spec.id, (s) => s === 'paused', 100);
    expect(result.record.status).toBe('paused');
    expect(result.events.at(-1)?.reason).toMatch(/gate held for \d+s: alarm already in ALARM before any traffic moved: errors/);
    expect(world.traffic.history).toEqual([]);
  });

  it('should treat a probe that throws as inconclusive, never ok', async () => {
    world.probes.probeNow = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    await world.controller.start(spec);
    const result = await world.controller.tick(spec.id);
    expect(result.record.status).toBe('gating');
    expect(result.decision?.code).toBe('probe-inconclusive');
    expect(world.traffic.history).toEqual([]);
  });

  it('should be safe when two ticks overlap: one wins, the other changes nothing', async () => {
    await world.controller.start(spec);
    const [a, b] = await Promise.all([world.controller.tick(spec.id), world.controller.tick(spec.id)]);
    expect([a.conflict ?? false, b.conflict ?? false].sort()).toEqual([false, true]);
    expect(world.traffic.history.length).toBeLessThanOrEqual(1);
    const log = await world.store.events(spec.id);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
  });

  it('should pause rather than fight when someone else changes the weight', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, (s) => s === 'baking');
    world.traffic.externalWrite(30);
    const result = await runUntil(world, spec.id, (s) => s === 'paused', 100);
    expect(result.record.status).toBe('paused');
    expect(result.events.at(-1)?.code).toBe('weight-changed-outside');
    expect(world.traffic.weight).toBe(30);
  });

  it('should not resume on stale evidence after a crash, nor leave routing at a weight the record does not know', async () => {
    // The incident of a kill at 50 % and a restart whose router came back at 0 %.
    await world.controller.start(spec);
    await runUntil(world, spec.id, () => world.traffic.weight === 50);
    world.clock.advance(10 * 60_000);
    world.traffic.externalWrite(0);
    const first = await world.controller.tick(spec.id);
    // The gap is noticed, the routing read, and the record now says what the routing does.
    expect(first.record).toMatchObject({ status: 'paused', weight: 0, pausedFrom: 'baking' });
    expect(first.events.at(-1)).toMatchObject({ code: 'weight-changed-outside' });
    expect(world.traffic.history).toEqual([10, 50]);

    // Resumed by a human: the step's weight is put back and the step bakes again on fresh data only.
    const resumedAt = world.clock.now();
    const resumed = await world.controller.command(spec.id, 'resume', 'router restarted; carry on');
    expect(resumed.record).toMatchObject({ status: 'baking', weight: 50, phaseStartedAtMs: resumedAt });
    const next = await runUntil(world, spec.id, () => world.traffic.weight === 100);
    const log = await world.store.events(spec.id);
    const raised = log.find((e) => e.type === 'shifting' && e.atMs > resumedAt)!;
    expect(raised.atMs - resumedAt).toBeGreaterThanOrEqual(plan.steps[1]!.bakeMs);
    expect(next.record.weight).toBe(100);
  });

  it('should restart the bake after a gap in its watch, with the routing checked', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, () => world.traffic.weight === 10);
    world.clock.advance(5 * WINDOW);
    const reads = world.traffic.reads;
    const result = await world.controller.tick(spec.id);
    expect(result.events.map((e) => e.code)).toEqual(['evidence-gap']);
    expect(result.events[0]!.reason).toMatch(/no health window was read for \d+s \(limit 40s\): evidence from before the gap no longer counts, so the bake starts again at 10% \(routing checked: 10%\)/);
    expect(world.traffic.reads).toBe(reads + 1);
    expect(result.record).toMatchObject({ phaseStartedAtMs: world.clock.now(), stepTotals: { new: { requests: 0 } } });
  });

  it('should record a failed rollback and retry it on the next tick', async () => {
    await world.controller.start(spec);
    await runUntil(world, spec.id, (s) => s === 'baking');
    world.traffic.failNext = new Error('ThrottlingException');
    await expect(world.controller.command(spec.id, 'abort')).rejects.toThrow(TrafficShiftError);
    const log = await world.store.events(spec.id);
    expect(log.at(-1)).toMatchObject({ type: 'shift-failed' });
    expect(log.at(-1)?.reason).toMatch(/ThrottlingException/);
    const retry = await world.controller.command(spec.id, 'abort');
    expect(retry.record.status).toBe('rolled-back');
  });

  it('should wait in shifting until a weight change settles', async () => {
    world.traffic.settleAfterCalls = 2;
    await world.controller.start(spec);
    const first = await world.controller.tick(spec.id);
    expect(first.record.status).toBe('shifting');
    world.clock.advance(1000);
    expect((await world.controller.tick(spec.id)).record.status).toBe('shifting');
    world.clock.advance(1000);
    expect((await world.controller.tick(spec.id)).record.status).toBe('shifting');
    world.clock.advance(1000);
    expect((await world.controller.tick(spec.id)).record.status).toBe('baking');
  });

  it('should keep events when publishing them fails', async () => {
    world.sink.fail = true;
    const result = await world.controller.start(spec);
    expect(result.publishError?.message).toBe('sink down');
    expect((await world.store.events(spec.id)).length).toBe(1);
  });

  describe('commands', () => {
    it('should pause and resume, restarting the bake', async () => {
      await world.controller.start(spec);
      await runUntil(world, spec.id, (s) => s === 'baking');
      expect((await world.controller.command(spec.id, 'pause', 'looking at logs')).record.status).toBe('paused');
      world.clock.advance(60_000);
      expect((await world.controller.tick(spec.id)).events).toEqual([]);
      const resumed = await world.controller.command(spec.id, 'resume');
      expect(resumed.record).toMatchObject({ status: 'baking', phaseStartedAtMs: world.clock.now() });
    });

    it('should promote on command, and still soak', async () => {
      await world.controller.start(spec);
      await runUntil(world, spec.id, (s) => s === 'baking');
      const promoted = await world.controller.command(spec.id, 'promote', 'clearly healthy');
      expect(promoted.record).toMatchObject({ status: 'promoted', weight: 100 });
      const done = await runUntil(world, spec.id, (s) => s === 'complete');
      expect(done.record.status).toBe('complete');
    });

    it('should roll back on abort from a complete migration (old side still pinned)', async () => {
      await world.controller.start(spec);
      await runUntil(world, spec.id, (s) => s === 'complete');
      const aborted = await world.controller.command(spec.id, 'abort', 'late bug report');
      expect(aborted.record.status).toBe('rolled-back');
      expect(world.traffic.weight).toBe(0);
    });

    it('fails when tearing down before the migration is complete', async () => {
      await world.controller.start(spec);
      await runUntil(world, spec.id, (s) => s === 'baking');
      await expect(world.controller.command(spec.id, 'teardown')).rejects.toThrow(InvalidCommandError);
      await expect(world.controller.command(spec.id, 'teardown')).rejects.toThrow(/cannot teardown a migration that is baking/);
    });

    it('fails on an unknown command or migration', async () => {
      await world.controller.start(spec);
      await expect(world.controller.command(spec.id, 'explode' as never)).rejects.toThrow(/unknown command "explode"/);
      await expect(world.controller.tick('nope')).rejects.toThrow(MigrationNotFoundError);
    });
  });

  describe('start', () => {
    it('should be idempotent', async () => {
      const a = await world.controller.start(spec);
      const b = await world.controller.start(spec);
      expect(b.record).toEqual(a.record);
      expect(b.events).toEqual([]);
    });

    it('fails on an invalid plan with the bad value', async () => {
      await expect(world.controller.start({ ...spec, plan: { ...plan, steps: [{ weight: 50, bakeMs: WINDOW }, { weight: 40, bakeMs: WINDOW }] } })).rejects.toThrow(
        PlanValidationError,
      );
    });
  });
});
