/**
 * A rehearsal whose event log file is damaged while it runs still produces its whole report: the
 * timeline comes from the events the run published, and a warning says why. Each test damages
 * the file from `onEvent`, at a point chosen by event, not by time.
 */
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TERMINAL_STATUSES, type MigrationEvent } from '../../lambda/core/model';
import { buildRehearsalPlan } from '../../rehearsal/options';
import { runRehearsal, type RehearsalReport } from '../../rehearsal/run';
import { findScenario } from '../../rehearsal/scenarios';
import { LiveView } from '../../rehearsal/view';

const plan = buildRehearsalPlan('5@2s,25@2s,100@2s', '2s', '1s');

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs the healthy scenario and empties its event log file at the first event `when` accepts. */
async function rehearseDamaging(when: (event: MigrationEvent) => boolean) {
  const stateDir = mkdtempSync(join(tmpdir(), 'cutover-damaged-log-'));
  dirs.push(stateDir);
  const seen: MigrationEvent[] = [];
  let damaged = false;
  const report = await runRehearsal({
    scenario: findScenario('healthy')!,
    plan,
    stateDir,
    clients: { concurrency: 6, ratePerSecond: 150 },
    onEvent: (event) => {
      seen.push(event);
      // Listeners run after the event's batch was saved, so the emptied file loses it too.
      if (!damaged && when(event)) {
        truncateSync(join(stateDir, `${event.migrationId}.events.jsonl`), 0);
        damaged = true;
      }
    },
  });
  return { report, seen, damaged };
}

const entries = (events: ReadonlyArray<Pick<RehearsalReport['timeline'][number], 'type' | 'weight' | 'reason'>>) =>
  events.map((e) => `${e.type}@${e.weight}: ${e.reason}`);

describe('rehearsal with a damaged event log', () => {
  it('reports the whole timeline with a warning when the log is emptied after the last save', async () => {
    // The first terminal event ends the run: no save follows, so only the report reads the log.
    const { report, seen, damaged } = await rehearseDamaging((e) => TERMINAL_STATUSES.includes(e.to));

    expect(damaged).toBe(true);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings![0]).toMatch(/^event log unreadable: .*damaged.*; timeline taken from the events published during this run$/);
    expect(entries(report.timeline)).toEqual(entries(seen));

    // The human summary shows the warning on a line of its own.
    let printed = '';
    const out = { isTTY: false, write: (text: string) => ((printed += text), true) } as unknown as NodeJS.WriteStream;
    new LiveView(out).summary(report);
    expect(printed.split('\n').filter((line) => line.startsWith('  warning '))).toEqual([`  warning           ${report.warnings![0]}`]);
  });

  it('keeps the events from before the damage when the log is emptied mid-run', async () => {
    // From the first shift on, later saves chain onto entries that are gone.
    const { report, seen, damaged } = await rehearseDamaging((e) => e.type === 'advanced');

    expect(damaged).toBe(true);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings![0]).toMatch(/; timeline taken from the events published during this run$/);
    expect(entries(report.timeline)).toEqual(entries(seen));
    expect(report.timeline.map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'gating', 'advanced']));
  });
});
