/**
 * Operator commands against a running rehearsal: `cutover pause|resume|abort <id> --state-dir <dir>`
 * through the control commands' code path (bin/commands/control.ts → ops/local-source.ts → the
 * command inbox), taken by the rehearsal's run loop before each tick. A real rehearsal on
 * loopback: demo servers, router, clients, probes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { controlCommand } from '../../bin/commands/control';
import type { OpsIo } from '../../bin/commands/ops-common';
import { statusCommand } from '../../bin/commands/status';
import { MigrationStatus, type MigrationEvent } from '../../lambda/core/model';
import { buildRehearsalPlan } from '../../rehearsal/options';
import { runRehearsal, type RehearsalReport } from '../../rehearsal/run';
import { findScenario } from '../../rehearsal/scenarios';
import { eventually } from '../local/helpers';
import { tempDir } from '../ops/helpers';

const dirs: Array<() => void> = [];
afterAll(() => dirs.forEach((remove) => remove()));

/** Captures what a command function writes. */
function capture(): OpsIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: (t) => (out += t), stderr: (t) => (err += t), color: false, env: {}, out: () => out, err: () => err };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('operator commands against a running rehearsal', () => {
  it('should hold a paused rehearsal past its bake, go on after resume, and roll back on abort; the CLI exits 0, 1, 4 and 5', async () => {
    const { dir, remove } = tempDir('cutover-rehearsal-operator-');
    dirs.push(remove);
    let id: string | undefined;
    const events: MigrationEvent[] = [];
    let ended: RehearsalReport | undefined;
    let failure: unknown;
    const stop = new AbortController();
    const running = runRehearsal({
      scenario: findScenario('healthy')!,
      // A first bake long enough that the pause lands in it even on a busy machine.
      plan: buildRehearsalPlan('10@3s,50@1500ms,100@1s', '1s', '1s'),
      stateDir: dir,
      tickMs: 100,
      signal: stop.signal,
      onStarted: (migrationId) => (id = migrationId),
      onEvent: (event) => events.push(event),
    }).then(
      (report) => (ended = report),
      (error: unknown) => (failure = error),
    );
    const settled = (): boolean => ended !== undefined || failure !== undefined;
    try {
      await eventually(() => events.some((e) => e.to === MigrationStatus.BAKING) || settled(), 'the first step baking', 30_000);
      expect(failure).toBeUndefined();
      expect(id).toMatch(/^rehearsal-healthy-\d+$/);
      const migration = id!;

      const pause = capture();
      expect({ code: await controlCommand('pause', migration, { stateDir: dir, reason: 'customer report' }, pause), stderr: pause.err() }).toEqual({ code: 0, stderr: '' });
      expect(pause.out()).toBe(`pause applied to ${migration}: now paused at 10% (step 1); 1 event logged\n`);
      const pausedAt = events.length;

      // Held past the step's 3 s bake: the run goes on (a pause the controller decided would
      // have ended it), nothing moves, and status says paused (exit 4) with the rehearsal live.
      // That the run's time limit leaves the hold out is time-limit.test.ts.
      await sleep(4000);
      expect(settled()).toBe(false);
      expect(events.slice(pausedAt).map((e) => e.type)).toEqual([]);
      const status = capture();
      expect(await statusCommand(migration, { stateDir: dir, json: true }, status)).toBe(4);
      expect(JSON.parse(status.out())).toMatchObject({ status: 'paused', weight: 10, live: true });

      const resume = capture();
      expect(await controlCommand('resume', migration, { stateDir: dir }, resume)).toBe(0);
      expect(resume.out()).toMatch(new RegExp(`^resume applied to ${migration}: now baking at 10% \\(step 1\\)`));
      // Refused by the controller: nothing to resume any more (exit 1, the reason on stderr).
      const again = capture();
      expect(await controlCommand('resume', migration, { stateDir: dir }, again)).toBe(1);
      expect(again.err()).toMatch(/^cutover resume: resume not applied to .*: cannot resume a migration that is baking: only a paused migration can resume/);

      // It goes on by itself: the rebaked first step, then the second.
      await eventually(() => events.some((e) => e.type === 'advanced' && e.weight === 50) || settled(), 'the step to 50 % after resume', 30_000);
      expect(settled()).toBe(false);

      const abort = capture();
      expect(await controlCommand('abort', migration, { stateDir: dir, reason: 'test abort', json: true }, abort)).toBe(0);
      expect(JSON.parse(abort.out())).toMatchObject({ source: 'local', migrationId: migration, command: 'abort', applied: true, reason: 'test abort' });

      await running;
      expect(failure).toBeUndefined();
      const report = ended!;
      expect(report).toMatchObject({ outcome: 'rolled-back', finalState: 'rolled-back', finalWeight: 0, interrupted: false, stateDir: dir, migrationId: migration });
      expect(report.rollback).toMatchObject({ code: 'operator-abort', reason: 'test abort' });
      expect(report.warnings).toBeUndefined();
      const codes = report.timeline.map((e) => e.code);
      expect(codes.indexOf('operator-pause')).toBeGreaterThan(-1);
      expect(codes.indexOf('operator-resume')).toBeGreaterThan(codes.indexOf('operator-pause'));
      expect(codes.indexOf('operator-abort')).toBeGreaterThan(codes.indexOf('operator-resume'));

      // The run is over: a command is refused at once (exit 5), not after the 10 s wait for a taker.
      const late = capture();
      const sentAt = Date.now();
      expect(await controlCommand('pause', migration, { stateDir: dir }, late)).toBe(5);
      expect(Date.now() - sentAt).toBeLessThan(2000);
      expect(late.err()).toMatch(new RegExp(`^cutover pause: no rehearsal is running migration ${migration} any more \\(it is rolled-back, last seen \\d+ s ago\\)`));
      expect(await statusCommand(migration, { stateDir: dir }, capture())).toBe(1);
    } finally {
      // Whatever failed above, the rehearsal is stopped (a pause held by an operator has no time limit).
      stop.abort();
      await running;
    }
  }, 90_000);
});
