import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StaleStateError } from '../../lambda/core/ports';
import { FileStateStore } from '../../local/file-store';

interface Rec {
  readonly status: string;
  readonly weight: number;
}
interface Ev {
  readonly seq: number;
  readonly type: string;
}

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cutover-store-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const store = () => new FileStateStore<Rec, Ev>({ directory: join(directory, 'state') });

describe('FileStateStore', () => {
  it('should round-trip a record and its events with versions', async () => {
    const s = store();
    expect(await s.load('m1')).toBeUndefined();
    expect(await s.events('m1')).toEqual([]);
    expect(await s.save('m1', { status: 'pending', weight: 0 }, 0, [{ seq: 1, type: 'created' }])).toBe(1);
    expect(await s.save('m1', { status: 'baking', weight: 10 }, 1, [{ seq: 2, type: 'advanced' }, { seq: 3, type: 'held' }])).toBe(2);
    expect(await s.save('m1', { status: 'baking', weight: 10 }, 2, [])).toBe(3);
    expect(await s.load('m1')).toEqual({ record: { status: 'baking', weight: 10 }, version: 3 });
    expect((await s.events('m1')).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(await s.list()).toEqual(['m1']);
  });

  it('should reject a stale version and write nothing', async () => {
    const s = store();
    await s.save('m1', { status: 'pending', weight: 0 }, 0, [{ seq: 1, type: 'created' }]);
    const stale = s.save('m1', { status: 'baking', weight: 50 }, 0, [{ seq: 2, type: 'lost' }]);
    await expect(stale).rejects.toBeInstanceOf(StaleStateError);
    await expect(stale).rejects.toThrow('migration m1 was changed by another writer (expected version 0)');
    await expect(s.save('m1', { status: 'x', weight: 0 }, 5, [])).rejects.toBeInstanceOf(StaleStateError);
    expect(await s.load('m1')).toEqual({ record: { status: 'pending', weight: 0 }, version: 1 });
    expect(await s.events('m1')).toEqual([{ seq: 1, type: 'created' }]);
  });

  it('should read back everything after a restart (a new instance on the same directory)', async () => {
    const before = store();
    await before.save('m1', { status: 'baking', weight: 25 }, 0, [{ seq: 1, type: 'created' }]);
    await before.save('m2', { status: 'pending', weight: 0 }, 0, []);
    const after = store();
    expect(await after.load('m1')).toEqual({ record: { status: 'baking', weight: 25 }, version: 1 });
    expect(await after.events('m1')).toEqual([{ seq: 1, type: 'created' }]);
    expect(await after.save('m1', { status: 'promoted', weight: 100 }, 1, [{ seq: 2, type: 'promoted' }])).toBe(2);
    expect(await after.list()).toEqual(['m1', 'm2']);
  });

  it('should let exactly one of two concurrent writers of the same version win', async () => {
    const s = store();
    await s.save('m1', { status: 'pending', weight: 0 }, 0, []);
    const results = await Promise.allSettled([
      s.save('m1', { status: 'a', weight: 1 }, 1, [{ seq: 1, type: 'a' }]),
      s.save('m1', { status: 'b', weight: 2 }, 1, [{ seq: 1, type: 'b' }]),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toBeInstanceOf(StaleStateError);
    expect((await s.load('m1'))!.version).toBe(2);
    expect(await s.events('m1')).toHaveLength(1);
  });

  it('should ignore events of a save that never committed, and a torn last line', async () => {
    const s = store();
    await s.save('m1', { status: 'pending', weight: 0 }, 0, [{ seq: 1, type: 'created' }]);
    const log = join(directory, 'state', 'm1.events.jsonl');
    // A crash after appending but before the record rename leaves an orphan line, then a torn one.
    await appendFile(log, `${JSON.stringify({ txn: 'orphan', parent: null, version: 2, atMs: 0, events: [{ seq: 99, type: 'ghost' }] })}\n{"txn":"tor`);
    expect(await s.events('m1')).toEqual([{ seq: 1, type: 'created' }]);
    // The retried save commits its own events once, after the good ones.
    await s.save('m1', { status: 'baking', weight: 5 }, 1, [{ seq: 2, type: 'advanced' }]);
    expect(await store().events('m1')).toEqual([
      { seq: 1, type: 'created' },
      { seq: 2, type: 'advanced' },
    ]);
    // Nothing was rewritten: the orphan and the torn fragment are still in the file.
    const text = await readFile(log, 'utf8');
    expect(text).toContain('ghost');
    expect(text).toContain('{"txn":"tor\n');
  });

  it('should report a damaged log instead of returning partial events', async () => {
    const s = store();
    await s.save('m1', { status: 'pending', weight: 0 }, 0, [{ seq: 1, type: 'created' }]);
    await rm(join(directory, 'state', 'm1.events.jsonl'));
    await expect(s.events('m1')).rejects.toThrow(/event log of migration m1 is damaged/);
  });

  it('fails on an unsafe migration id or a bad version, showing the value', async () => {
    const s = store();
    await expect(s.load('../escape')).rejects.toThrow(/migration id must be .* got "..\/escape"/);
    await expect(s.save('m1', { status: 'x', weight: 0 }, -1, [])).rejects.toThrow(/expectedVersion must be an integer of at least 0, got -1/);
    expect(() => new FileStateStore({ directory: '' })).toThrow(/directory must be a non-empty path/);
  });
});
