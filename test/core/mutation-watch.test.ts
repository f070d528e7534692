/**
 * The watch (controller.ts `watch`/`restartAfterGap`/`act`) on the paths the earlier review found
 * unpinned: how long a soak lasts, what ticking a complete migration does, and the evidence-gap
 * restart right at its limit (a gap of exactly `evidenceGapMs` keeps the evidence, one ms more
 * throws it away and reads the routing).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { evidenceGapMs } from '../../lambda/core/controller';
import { DEFAULT_JUDGE_CONFIG } from '../../lambda/core/judge';
import { PLAN, SPEC, WINDOW, log, runUntil, setup, startAndRunTo, type World } from './mutation-world';

describe('the soak', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should bake the promotion for the last step\'s bake, then soak for exactly soakMs of covered data', async () => {
    const done = await startAndRunTo(world, 'complete');
    const events = await log(world);
    const promoted = events.find((e) => e.type === 'promoted')!;
    const soaking = events.find((e) => e.type === 'soaking')!;
    const completed = events.find((e) => e.type === 'completed')!;
    // Ticks every second, a window every WINDOW: each phase ends on the first tick its data covers it.
    expect(soaking.atMs - promoted.atMs).toBe(PLAN.steps[2]!.bakeMs);
    expect(completed.atMs - soaking.atMs).toBe(PLAN.soakMs);
    expect(completed).toMatchObject({ from: 'soaking', to: 'complete', code: 'healthy', weight: 100 });
    expect(completed.reason).toMatch(/^soak passed: \d+ requests on new/);
    expect(done.record.status).toBe('complete');
  });

  it('should not complete one window before the soak\'s data covers it, however long the wall clock ran', async () => {
    const soaking = await startAndRunTo(world, 'soaking');
    const start = soaking.record.phaseStartedAtMs!;
    // The health source lags: its data ends one window short of the soak.
    const read = world.health.readWindow.bind(world.health);
    world.health.readWindow = async (fromMs, toMs) => {
      const window = await read(fromMs, toMs);
      return window && { ...window, toMs: Math.min(toMs, start + PLAN.soakMs - 1) };
    };
    const held = await runUntil(world, SPEC.id, (r) => r.record.status !== 'soaking', 35);
    expect(held.record.status).toBe('soaking');
    expect(held.decision?.code).toBe('baking');
    expect(held.decision?.reason).toMatch(/^soaking: 30s of 30s, healthy so far$/);
    expect(held.record.lastWindowEndMs).toBe(start + PLAN.soakMs - 1);
  });

  it('should roll back a soaking migration that goes bad', async () => {
    await startAndRunTo(world, 'soaking');
    world.health.newErrorRate = 0.3;
    const result = await runUntil(world, SPEC.id, (r) => r.record.status !== 'soaking', 100);
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(world.traffic.history).toEqual([10, 50, 100, 0]);
  });
});

describe('a complete migration', () => {
  let world: World;
  beforeEach(async () => {
    world = setup();
    await startAndRunTo(world, 'complete', { ...SPEC, judge: { alarmRecheckMs: 60 * WINDOW } });
    world.health.pushedAlarms = [];
  });

  it('should keep watching on every tick: a judged window is recorded as watched, nothing moves', async () => {
    const reads = world.health.windows.length;
    const history = [...world.traffic.history];
    const results = [];
    for (let i = 0; i < WINDOW / 1000; i++) {
      world.clock.advance(1000);
      results.push(await world.controller.tick(SPEC.id));
    }
    // Nine ticks between windows record nothing; the tick that judged a window records it.
    expect(results.slice(0, -1).every((r) => r.events.length === 0)).toBe(true);
    const last = results.at(-1)!;
    expect(last.events.map((e) => `${e.type}:${e.from}:${e.to}`)).toEqual(['watched:complete:complete']);
    expect(last.record).toMatchObject({ status: 'complete', weight: 100 });
    expect(world.health.windows.length).toBe(reads + 1);
    expect(world.traffic.history).toEqual(history);
    expect(world.capacity.calls).toEqual(['pin 10']);
  });

  it('should read alarms as a routine watch there, since a complete migration never moves on', async () => {
    const before = world.health.alarmReads.length;
    for (let i = 0; i < 3; i++) {
      world.clock.advance(1000);
      await world.controller.tick(SPEC.id);
    }
    expect(world.health.alarmReads.slice(before).map((r) => r.purpose)).toEqual(['watch', 'watch', 'watch']);
  });

  it('should still roll back when the new side goes bad after completion', async () => {
    world.health.newErrorRate = 0.3;
    const result = await runUntil(world, SPEC.id, (r) => r.record.status !== 'complete', 100);
    expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(result.decision?.code).toMatch(/^error-/);
  });
});

describe('the evidence-gap restart', () => {
  let world: World;
  let phaseStart: number;
  const gap = evidenceGapMs({ plan: PLAN, judge: DEFAULT_JUDGE_CONFIG });
  beforeEach(async () => {
    world = setup();
    const baking = await startAndRunTo(world, 'baking');
    phaseStart = baking.record.phaseStartedAtMs!;
    expect(baking.record.lastWindowReadMs).toBe(phaseStart);
  });

  it('should be the missing-data limit plus one window', () => {
    expect(gap).toBe((DEFAULT_JUDGE_CONFIG.maxMissingWindows + 1) * WINDOW);
    expect(evidenceGapMs({ plan: { ...PLAN, healthWindowMs: 7 }, judge: { ...DEFAULT_JUDGE_CONFIG, maxMissingWindows: 2 } })).toBe(21);
  });

  it('should keep the evidence after a gap of exactly the limit: no routing read, the window is judged', async () => {
    world.clock.ms = phaseStart + gap;
    const reads = world.traffic.reads;
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.reads).toBe(reads);
    expect(result.events.some((e) => e.code === 'evidence-gap')).toBe(false);
    // The window covering the whole gap counts: the step has baked and the weight rises.
    expect(result.record).toMatchObject({ status: 'baking', weight: 50 });
  });

  it('should restart the bake after a gap one ms over the limit, with the routing read', async () => {
    world.clock.ms = phaseStart + gap + 1;
    const reads = world.traffic.reads;
    const windows = world.health.windows.length;
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.reads).toBe(reads + 1);
    expect(world.health.windows.length).toBe(windows);
    expect(result.events.map((e) => `${e.type}:${e.code}:${e.to}`)).toEqual(['evidence-reset:evidence-gap:baking']);
    expect(result.events[0]!.reason).toBe(
      'no health window was read for 40s (limit 40s): evidence from before the gap no longer counts, so the bake starts again at 10% (routing checked: 10%)',
    );
    const now = world.clock.now();
    expect(result.record).toMatchObject({
      status: 'baking',
      weight: 10,
      phaseStartedAtMs: now,
      lastWindowEndMs: now,
      lastWindowReadMs: now,
      trafficRevision: String(world.traffic.revision),
      stepTotals: { old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } },
    });
    // The restarted bake needs its whole length of fresh data again.
    const next = await runUntil(world, SPEC.id, (r) => r.record.weight === 50, 100);
    expect(world.clock.now() - now).toBe(PLAN.steps[0]!.bakeMs);
    expect(next.record.weight).toBe(50);
  });

  it('should count the gap from the last window read, not from the start of the step', async () => {
    world.clock.ms = phaseStart + WINDOW;
    await world.controller.tick(SPEC.id);
    world.clock.ms = phaseStart + WINDOW + gap;
    const reads = world.traffic.reads;
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.reads).toBe(reads);
    expect(result.events.some((e) => e.code === 'evidence-gap')).toBe(false);
  });

  it('should pause with the weight found when the routing moved during the gap', async () => {
    world.clock.ms = phaseStart + gap + 1;
    world.traffic.externalWrite(0);
    const result = await world.controller.tick(SPEC.id);
    expect(result.record).toMatchObject({ status: 'paused', pausedFrom: 'baking', weight: 0 });
    expect(result.events.at(-1)?.reason).toBe(
      'routing was changed outside the controller (weight 0%, the record expected 10%): paused at the weight found for a human to decide',
    );
  });

  it('should fail the tick, reading nothing else, when the routing cannot be read after a gap', async () => {
    world.clock.ms = phaseStart + gap + 1;
    world.traffic.getWeight = async () => {
      throw new Error('ThrottlingException');
    };
    const windows = world.health.windows.length;
    await expect(world.controller.tick(SPEC.id)).rejects.toThrow(/^reading the routing after a gap of 40s failed: Error: ThrottlingException$/);
    expect(world.health.windows.length).toBe(windows);
  });

  it('should say "watch" when it restarts a soak', async () => {
    const soaking = await runUntil(world, SPEC.id, (r) => r.record.status === 'soaking');
    world.clock.ms = soaking.record.lastWindowReadMs! + gap + 1;
    const result = await world.controller.tick(SPEC.id);
    expect(result.events[0]!.reason).toMatch(/so the watch starts again at 100% \(routing checked: 100%\)$/);
    expect(result.record).toMatchObject({ status: 'soaking', phaseStartedAtMs: world.clock.now() });
  });
});
