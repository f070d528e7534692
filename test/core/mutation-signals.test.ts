/**
 * What a tick reads and how it records it (controller.ts `gate`/`watch`/`readAlarms`/`act`): the
 * cadence of health windows, fresh periodic probes, the alarms' confirm-or-watch choice, failing
 * sources named in the decision, and which holds are written to the log. Each pins a detail that
 * a survey of surviving mutants showed no other test noticed.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MigrationPlan } from '../../lambda/core/plan';
import { PLAN, SPEC, WINDOW, log, runUntil, setup, startAndRunTo, type World } from './mutation-world';

describe('the gate', () => {
  let world: World;
  beforeEach(() => {
    world = setup();
  });

  it('should record the fresh probe of the new side and the time it saw probes until', async () => {
    await world.controller.start(SPEC);
    world.clock.advance(5_000);
    const gated = await world.controller.tick(SPEC.id);
    expect(gated.record.latestNewProbe).toMatchObject({ side: 'new', verdict: 'ok', atMs: world.clock.now() });
    expect(gated.record.probesSeenUntilMs).toBe(world.clock.now());
    expect(gated.events.slice(0, 2).map((e) => `${e.type}:${e.code}:${e.to}`)).toEqual(['gating:gating:gating', 'capacity-pinned:capacity-pinned:gating']);
  });

  it('should hold while the old side is not ready, write that hold once, confirm alarms on every try, and pause exactly at maxHoldMs', async () => {
    world.health.pushedAlarms = [];
    await world.controller.start({ ...SPEC, judge: { maxHoldMs: 5_000, alarmRecheckMs: 60_000 } });
    world.capacity.ready = false; // and it never comes up: restore keeps it warming
    const first = await world.controller.tick(SPEC.id);
    const start = first.record.phaseStartedAtMs!;
    const results = [first];
    while (world.clock.now() < start + 5_000) {
      world.clock.advance(1000);
      results.push(await world.controller.tick(SPEC.id));
    }
    expect(results.slice(0, -1).every((r) => r.record.status === 'gating')).toBe(true);
    const paused = results.at(-1)!;
    expect(paused.record).toMatchObject({ status: 'paused', pausedFrom: 'gating' });
    expect(paused.events.at(-1)?.reason).toBe('gate held for 5s: old side at 10 of 10 pinned units (not ready): restoring before any weight increase');
    const holds = (await log(world)).filter((e) => e.type === 'held');
    expect(holds).toHaveLength(1);
    expect(world.health.alarmReads.map((r) => r.purpose)).toEqual(Array(results.length).fill('confirm'));
    expect(world.traffic.history).toEqual([]);
  });

  it('should pass a healthy gate even with a maxHoldMs of 0 (only a hold is limited)', async () => {
    await world.controller.start({ ...SPEC, judge: { maxHoldMs: 0 } });
    expect((await world.controller.tick(SPEC.id)).record).toMatchObject({ status: 'baking', weight: 10 });
  });

  it('should name a capacity source that fails, and hold', async () => {
    world.capacity.read = async () => {
      throw new Error('AccessDenied');
    };
    await world.controller.start(SPEC);
    const held = await world.controller.tick(SPEC.id);
    expect(held.record.status).toBe('gating');
    expect(held.decision).toMatchObject({ action: 'hold', code: 'signals-missing', reason: 'signals unavailable: capacity: Error: AccessDenied' });
  });

  it('should treat a probe that cannot run as inconclusive, saying why', async () => {
    world.probes.probeNow = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    await world.controller.start(SPEC);
    const held = await world.controller.tick(SPEC.id);
    expect(held.decision?.signals.probes?.[0]).toEqual({
      side: 'new',
      verdict: 'inconclusive',
      atMs: world.clock.now(),
      summary: 'probe could not run: Error: connect ECONNREFUSED',
      findings: 0,
    });
  });
});

describe('health windows during a bake', () => {
  let world: World;
  let start: number;
  beforeEach(async () => {
    world = setup();
    start = (await startAndRunTo(world, 'baking')).record.phaseStartedAtMs!;
  });

  it('should read one window per healthWindowMs, each starting where the last ended, and write a hold only for judged ones', async () => {
    const windows = world.health.windows.length;
    const results = [];
    for (let t = 1000; t < PLAN.steps[0]!.bakeMs; t += 1000) {
      world.clock.ms = start + t;
      results.push(await world.controller.tick(SPEC.id));
    }
    const read = world.health.windows.slice(windows);
    expect(read.map((w) => [w.fromMs - start, w.toMs - start])).toEqual([
      [0, WINDOW],
      [WINDOW, 2 * WINDOW],
    ]);
    const held = results.filter((r) => r.events.length > 0);
    // The first tick writes its hold because the reason changed (gate passed → baking); after
    // that only the ticks that judged a window do.
    expect(held.map((r) => r.events.map((e) => `${e.type}:${e.code}`))).toEqual([['held:baking'], ['held:baking'], ['held:baking']]);
    expect(held.map((r) => r.events[0]!.atMs - start)).toEqual([1000, WINDOW, 2 * WINDOW]);
    // Judged as a bake (a soak says "soaking").
    expect(held.map((r) => r.events[0]!.reason)).toEqual([
      'baking: 0s of 30s, healthy so far',
      'baking: 10s of 30s, healthy so far',
      'baking: 20s of 30s, healthy so far',
    ]);
    const last = results.at(-1)!.record;
    expect(last.stepTotals.new.requests + last.stepTotals.old.requests).toBe(2 * 5000);
  });

  it('should name a health source that fails, count it as missing, and not move the window start', async () => {
    world.health.readWindow = async () => {
      throw new Error('ThrottlingException');
    };
    world.clock.ms = start + WINDOW;
    const result = await world.controller.tick(SPEC.id);
    expect(result.decision).toMatchObject({ action: 'hold', code: 'signals-missing' });
    // The judge reports a window it did not get as missing; the source's error is not in the reason.
    expect(result.decision?.reason).toBe('no health signals for this window; 1 of the last 1 windows without complete signals (rollback at 3)');
    expect(result.record).toMatchObject({ lastWindowEndMs: start, lastWindowReadMs: start + WINDOW });
  });

  it('should neither judge nor count a window with no completed period', async () => {
    world.health.readWindow = async (fromMs) => ({ fromMs, toMs: fromMs, old: { requests: 0, errors4xx: 0, errors5xx: 0 }, new: { requests: 0, errors4xx: 0, errors5xx: 0 } });
    world.clock.ms = start + 1000; // writes the "baking" hold once (a change of reason)
    await world.controller.tick(SPEC.id);
    world.clock.ms = start + WINDOW;
    const result = await world.controller.tick(SPEC.id);
    expect(result.events).toEqual([]);
    expect(result.record).toMatchObject({ lastWindowEndMs: start, lastWindowReadMs: start + WINDOW });
    expect(result.record.judgeMemory.missingWindows).toBe(0);
  });

  it('should never count data past the present, whatever the source says', async () => {
    const read = world.health.readWindow.bind(world.health);
    world.health.readWindow = async (fromMs, toMs) => ({ ...(await read(fromMs, toMs))!, toMs: toMs + 5_000 });
    world.clock.ms = start + WINDOW;
    const result = await world.controller.tick(SPEC.id);
    expect(result.record.lastWindowEndMs).toBe(start + WINDOW);
  });

  it('should not restart a bake for a record that has no phase times (nothing to measure a gap from)', async () => {
    const stored = world.store.records.get(SPEC.id)!;
    const { phaseStartedAtMs: _p, lastWindowReadMs: _r, lastWindowEndMs: _e, ...rest } = stored.record;
    stored.record = rest as typeof stored.record;
    world.clock.ms = start + 10 * WINDOW;
    const reads = world.traffic.reads;
    const alarmReads = world.health.alarmReads.length;
    const result = await world.controller.tick(SPEC.id);
    expect(world.traffic.reads).toBe(reads);
    expect(result.events.some((e) => e.code === 'evidence-gap')).toBe(false);
    // It still watches: the fast checks run.
    expect(world.health.alarmReads.length).toBe(alarmReads + 1);
  });
});

describe('periodic probes during a bake', () => {
  let world: World;
  let start: number;
  beforeEach(async () => {
    world = setup();
    start = (await startAndRunTo(world, 'baking')).record.phaseStartedAtMs!;
  });

  it('should take the latest fresh probe of the new side, and see probes up to the latest of any side', async () => {
    world.probes.record('new', 'inconclusive', start + 100);
    world.probes.record('new', 'ok', start + 200);
    world.probes.record('old', 'ok', start + 300);
    world.clock.ms = start + 1000;
    const result = await world.controller.tick(SPEC.id);
    expect(result.record.latestNewProbe).toMatchObject({ side: 'new', verdict: 'ok', atMs: start + 200 });
    expect(result.record.probesSeenUntilMs).toBe(start + 300);
  });

  it('should keep the last known probe of the new side when only the old side was probed', async () => {
    const known = (await world.store.load(SPEC.id))!.record.latestNewProbe;
    world.probes.record('old', 'ok', start + 300);
    world.clock.ms = start + 1000;
    const result = await world.controller.tick(SPEC.id);
    expect(result.record.latestNewProbe).toEqual(known);
    expect(result.record.probesSeenUntilMs).toBe(start + 300);
  });

  it('should count a probe result once: an old-side desync pauses, and a resume is not paused again by it', async () => {
    world.probes.record('old', 'desync', start + 500);
    world.clock.ms = start + 1000;
    const paused = await world.controller.tick(SPEC.id);
    expect(paused.record).toMatchObject({ status: 'paused', pausedFrom: 'baking' });
    expect(paused.events.at(-1)).toMatchObject({ type: 'paused', code: 'old-side-desync', from: 'baking', to: 'paused' });
    await world.controller.command(SPEC.id, 'resume');
    world.clock.ms = start + 2000;
    const next = await world.controller.tick(SPEC.id);
    expect(next.record.status).toBe('baking');
  });

  it('should hand an inconclusive periodic probe of the new side to the judge, which holds the step', async () => {
    world.probes.record('new', 'inconclusive', start + 500);
    const calls = world.probes.calls.length;
    const result = await runUntil(world, SPEC.id, () => world.clock.now() >= start + PLAN.steps[0]!.bakeMs + 1000, 100);
    expect(result.record).toMatchObject({ status: 'baking', weight: 10 });
    expect(result.decision).toMatchObject({ action: 'hold', code: 'probe-inconclusive' });
    expect(result.decision?.reason).toBe('latest Keep-Alive probe of the new side was inconclusive: periodic new probe inconclusive');
    expect(world.probes.calls.length).toBe(calls);
  });

  it('should name a capacity source that fails mid-bake', async () => {
    world.capacity.read = async () => {
      throw new Error('AccessDenied');
    };
    world.clock.ms = start + 1000;
    const result = await world.controller.tick(SPEC.id);
    expect(result.decision?.reason).toBe('signals unavailable: capacity: Error: AccessDenied');
  });

  it('should name a probe source that fails', async () => {
    world.probes.recentResults = async () => {
      throw new Error('NoSuchKey');
    };
    world.clock.ms = start + 1000;
    const result = await world.controller.tick(SPEC.id);
    expect(result.decision?.reason).toBe('signals unavailable: probe results: Error: NoSuchKey');
  });
});

describe('alarms during a bake', () => {
  let world: World;
  let gateAt: number;
  beforeEach(async () => {
    world = setup();
    world.health.pushedAlarms = [];
    gateAt = (await startAndRunTo(world, 'baking', { ...SPEC, judge: { alarmRecheckMs: 5_000 } })).record.alarmsConfirmedAtMs!;
  });

  it('should answer routine ticks from pushed states until the confirmation is alarmRecheckMs old, then confirm', async () => {
    const before = world.health.alarmReads.length;
    for (const t of [1000, 4999, 5000]) {
      world.clock.ms = gateAt + t;
      await world.controller.tick(SPEC.id);
    }
    expect(world.health.alarmReads.slice(before).map((r) => r.purpose)).toEqual(['watch', 'watch', 'confirm']);
  });

  it('should record no alarms (rather than anything else) when they cannot be read', async () => {
    world.health.readAlarms = async () => {
      throw new Error('ThrottlingException');
    };
    world.clock.ms = gateAt + 1000;
    const result = await world.controller.tick(SPEC.id);
    expect(result.decision?.signals.alarms).toEqual([]);
    expect(result.decision?.reason).toBe('signals unavailable: alarms: Error: ThrottlingException');
  });

  it('should confirm alarms on the first tick after a promote that skipped the gate', async () => {
    const other = setup();
    other.health.pushedAlarms = [];
    await other.controller.start({ ...SPEC, judge: { alarmRecheckMs: 60_000 } });
    await other.controller.command(SPEC.id, 'promote');
    expect(other.health.alarmReads).toEqual([]);
    other.clock.advance(1000);
    await other.controller.tick(SPEC.id);
    expect(other.health.alarmReads.map((r) => r.purpose)).toEqual(['confirm']);
  });
});

describe('a judge pause during a bake', () => {
  it('should record a paused event with where to come back to', async () => {
    const world = setup();
    await startAndRunTo(world, 'baking', { ...SPEC, judge: { maxHoldMs: 0 } });
    world.health.requestsPerWindow = 50; // ~5 requests a window on the new side: too few to judge
    const paused = await runUntil(world, SPEC.id, (r) => r.record.status !== 'baking', 100);
    expect(paused.record).toMatchObject({ status: 'paused', pausedFrom: 'baking', weight: 10 });
    expect(paused.events.at(-1)).toMatchObject({ type: 'paused', code: 'too-few-requests' });
  });
});

describe('the step names', () => {
  it('should say which step of how many it raises to', async () => {
    const world = setup();
    await startAndRunTo(world, 'baking');
    const advanced = await runUntil(world, SPEC.id, (r) => r.record.weight === 50, 100);
    const shifting = advanced.events.find((e) => e.type === 'shifting')!;
    expect(shifting.reason).toMatch(/ → step 2 of 3: 50% → setting the new side's weight to 50%$/);
    expect(advanced.events.find((e) => e.type === 'advanced')?.reason).toMatch(/^step passed: .* → step 2 of 3: 50%$/);
  });
});

describe('a complete migration whose soak was shorter than its last bake', () => {
  it('should keep judging it as watched (it needs no more time), not as a bake that holds', async () => {
    const plan = MigrationPlan.fromSteps(
      [
        { weight: 10, bakeMs: 2 * WINDOW },
        { weight: 100, bakeMs: 3 * WINDOW },
      ],
      { healthWindowMs: WINDOW, soakMs: WINDOW },
    ).toSpec();
    const world = setup();
    await startAndRunTo(world, 'complete', { ...SPEC, plan });
    const next = await runUntil(world, SPEC.id, (r) => r.events.length > 0, 20);
    expect(next.events.map((e) => `${e.type}:${e.code}`)).toEqual(['watched:healthy']);
    expect(next.events[0]!.reason).toMatch(/^soak passed: /);
  });
});
