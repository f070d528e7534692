/**
 * The state file of a running migration damaged in every way a disk, an editor or a bug can:
 * the controller routes everything to the old side, replaces the record with a stopped one that
 * names the file and the fault (the damaged files kept beside it), alerts once, and never throws
 * on a later tick.
 */
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MigrationController, type MigrationRecord } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import { MigrationPlan } from '../../lambda/core/plan';
import { FileStateStore } from '../../local/file-store';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, SimulatedHealth } from '../core/fakes';

const ID = 'm1';
const plan = MigrationPlan.fromSteps([{ weight: 25, bakeMs: 300_000 }, { weight: 100, bakeMs: 60_000 }], { healthWindowMs: 10_000, soakMs: 60_000 }).toSpec();

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cutover-damage-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function world() {
  const clock = new FakeClock();
  const traffic = new FakeTraffic();
  const health = new SimulatedHealth(traffic, 5);
  const sink = new CollectingSink();
  const store = new FileStateStore<MigrationRecord, MigrationEvent>({ directory });
  const controller = new MigrationController({ clock, store, traffic, health, probes: new FakeProbes(clock), capacity: new FakeCapacity(), events: sink });
  return { clock, traffic, health, sink, store, controller };
}

const recordFile = () => join(directory, `${ID}.json`);
const logFile = () => join(directory, `${ID}.events.jsonl`);
async function editRecord(edit: (file: { record: Record<string, unknown> }) => unknown): Promise<void> {
  const file = JSON.parse(await readFile(recordFile(), 'utf8')) as { record: Record<string, unknown> };
  await writeFile(recordFile(), JSON.stringify(edit(file)));
}

const DAMAGES: ReadonlyArray<readonly [string, () => Promise<void>, RegExp]> = [
  ['garbage', () => writeFile(recordFile(), '\u0000\u0007garbage'), /m1\.json is not valid JSON/],
  ['truncated', () => truncate(recordFile(), 100), /m1\.json is not valid JSON .*truncated or overwritten/],
  ['empty', () => writeFile(recordFile(), ''), /m1\.json is empty/],
  ['record: null', () => editRecord((f) => ({ ...f, record: null })), /fails its schema/],
  ['missing judge', () => editRecord((f) => ({ ...f, record: { ...f.record, judge: undefined } })), /judge: missing/],
  ['status "bogus"', () => editRecord((f) => ({ ...f, record: { ...f.record, status: 'bogus' } })), /unknown status "bogus"/],
  ['an emptied event log', () => writeFile(logFile(), ''), /m1\.events\.jsonl lacks committed entry/],
];

describe('a damaged state file', () => {
  for (const [name, spoil, what] of DAMAGES) {
    it(`should fail safe, not throw forever, when the state file is ${name}`, async () => {
      const w = world();
      await w.controller.start({ id: ID, plan });
      expect((await w.controller.tick(ID)).record).toMatchObject({ status: 'baking', weight: 25 });
      w.health.newErrorRate = 0.5;
      await spoil();

      const result = await w.controller.tick(ID);
      expect(w.traffic.weight).toBe(0);
      expect(result.record).toMatchObject({ status: 'rolled-back', weight: 0 });
      expect(result.record.damage?.what).toMatch(what);
      // The alert names the damage and the files it was kept as; they are there.
      const alert = w.sink.published.filter((e) => e.type === 'state-damaged');
      expect(alert).toHaveLength(1);
      expect(alert[0]!.reason).toMatch(what);
      const kept = (await readdir(directory)).filter((n) => n.includes('.damaged-'));
      expect(kept.length).toBeGreaterThanOrEqual(1);
      for (const name of kept) expect(alert[0]!.reason).toContain(name);

      // Later ticks, a new process, and the report all read the new state.
      for (let i = 0; i < 3; i++) {
        w.clock.advance(10_000);
        expect((await w.controller.tick(ID)).events).toEqual([]);
      }
      const restarted = world();
      expect((await restarted.controller.tick(ID)).record.status).toBe('rolled-back');
      expect((await restarted.store.events(ID)).map((e) => e.type)).toEqual(['state-damaged']);
      expect(w.traffic.history).toEqual([25, 0]);
    });
  }
});
