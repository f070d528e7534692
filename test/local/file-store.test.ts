import { appendFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DamagedStateError, StaleStateError } from '../../lambda/core/ports';
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
    await expect(s.events('m1')).rejects.toBeInstanceOf(DamagedStateError);
    await expect(s.events('m1')).rejects.toThrow(/m1\.events\.jsonl lacks committed entry [0-9a-f]+ \(emptied, truncated or replaced\)/);
    await expect(s.load('m1')).rejects.toThrow(/lacks committed entry/);
  });

  describe('damaged files', () => {
    const recordFile = () => join(directory, 'state', 'm1.json');
    const logFile = () => join(directory, 'state', 'm1.events.jsonl');
    async function saved(): Promise<FileStateStore<Rec, Ev>> {
      const s = store();
      await s.save('m1', { status: 'pending', weight: 0 }, 0, [{ seq: 1, type: 'created' }]);
      await s.save('m1', { status: 'baking', weight: 25 }, 1, [{ seq: 2, type: 'advanced' }]);
      return s;
    }
    async function damage(s: FileStateStore<Rec, Ev>): Promise<DamagedStateError> {
      const error = await s.load('m1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DamagedStateError);
      return error as DamagedStateError;
    }

    it.each([
      ['garbage', async () => writeFile(recordFile(), '\u0000\u0001 not json at all'), /is not valid JSON/],
      ['truncated', async () => truncate(recordFile(), 40), /is not valid JSON .*truncated or overwritten/],
      ['empty', async () => writeFile(recordFile(), ''), /is empty/],
      ['not an object', async () => writeFile(recordFile(), 'null'), /does not hold a JSON object/],
      ['of an unknown format', async () => writeFile(recordFile(), JSON.stringify({ format: 9, version: 2, record: {} })), /unknown format \(format 9, version 2\)/],
      ['with an emptied log', async () => writeFile(logFile(), ''), /lacks committed entry/],
    ])('should refuse a record file that is %s with DamagedStateError naming the file', async (_name, spoil, message) => {
      const s = await saved();
      await spoil();
      const error = await damage(s);
      expect(error.message).toMatch(message);
      expect(error.damage.what).toContain('m1');
      expect(error.damage.fingerprint).toMatch(/^sha256:/);
      // Nothing saves over it: only quarantine replaces damaged state.
      await expect(s.save('m1', { status: 'x', weight: 0 }, 2, [])).rejects.toBeInstanceOf(StaleStateError);
    });

    it('should keep the damaged files aside and write the replacement with quarantine', async () => {
      const s = await saved();
      await writeFile(recordFile(), '{"format":1,"version":2,"logHead":');
      const { damage: found } = await damage(s);
      const seen: unknown[] = [];
      const version = await s.quarantine('m1', found, (context) => {
        seen.push(context);
        return { record: { status: 'rolled-back', weight: 0 }, events: [{ seq: context.lastEventSeq + 1, type: 'state-damaged' }] };
      });
      expect(version).toBe(1);
      expect(seen).toEqual([{ lastEventSeq: 2, keptAs: expect.stringMatching(/m1\.damaged-\d+-[0-9a-f]+\.json and .*m1\.events\.damaged-\d+-[0-9a-f]+\.jsonl$/) }]);
      expect(await s.load('m1')).toEqual({ record: { status: 'rolled-back', weight: 0 }, version: 1 });
      expect(await s.events('m1')).toEqual([{ seq: 3, type: 'state-damaged' }]);
      const names = await readdir(join(directory, 'state'));
      expect(names.filter((n) => n.includes('.damaged-'))).toHaveLength(2);
      expect(await s.list()).toEqual(['m1']);
      // The damaged bytes are kept as they were.
      const kept = names.find((n) => n.endsWith('.json') && n.includes('.damaged-'))!;
      expect(await readFile(join(directory, 'state', kept), 'utf8')).toBe('{"format":1,"version":2,"logHead":');
    });

    it('should refuse to quarantine state that changed since it was found damaged', async () => {
      const s = await saved();
      await writeFile(recordFile(), 'garbage');
      const { damage: found } = await damage(s);
      await writeFile(recordFile(), 'other garbage');
      await expect(s.quarantine('m1', found, () => ({ record: { status: 'x', weight: 0 }, events: [] }))).rejects.toBeInstanceOf(StaleStateError);
      expect(await readFile(recordFile(), 'utf8')).toBe('other garbage');
    });
  });

  it('should let exactly one writer win per version across instances on one directory', async () => {
    await store().save('m1', { status: 'pending', weight: 0 }, 0, [{ seq: 1, type: 'created' }]);
    // Ten processes' worth of stores, all saving on top of version 1 at once, five rounds.
    for (let round = 1; round <= 5; round++) {
      const stores = Array.from({ length: 10 }, () => store());
      const outcomes = await Promise.allSettled(
        stores.map((s, i) => s.save('m1', { status: `round ${round} by ${i}`, weight: i }, round, [{ seq: round + 1, type: `by-${i}` }])),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      expect(outcomes.filter((o) => o.status === 'rejected').every((o) => (o as PromiseRejectedResult).reason instanceof StaleStateError)).toBe(true);
    }
    const events = await store().events('m1');
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await store().load('m1'))?.version).toBe(6);
  });

  it('fails on an unsafe migration id or a bad version, showing the value', async () => {
    const s = store();
    await expect(s.load('../escape')).rejects.toThrow(/migration id must be .* got "..\/escape"/);
    await expect(s.save('m1', { status: 'x', weight: 0 }, -1, [])).rejects.toThrow(/expectedVersion must be an integer of at least 0, got -1/);
    expect(() => new FileStateStore({ directory: '' })).toThrow(/directory must be a non-empty path/);
  });
});
