/**
 * `StateStore` on local files, for the rehearsal and for runs without AWS. It survives a restart
 * of the process: a new instance on the same directory reads what the previous one wrote.
 *
 * Layout, per migration id, in one directory:
 * - `<id>.json` — the record and its version, replaced atomically (written to a temporary file,
 *   flushed, renamed over the old one). The rename is the commit point of a save.
 * - `<id>.events.jsonl` — the event log, append-only: one line per save that had events,
 *   `{"txn","parent","version","atMs","events":[…]}`. Lines are never rewritten.
 *
 * A save appends its events (and flushes them) before it renames the record, so committed events
 * are never lost. If the process dies between the two steps, the appended line is an orphan: the
 * record still names the previous line as the head of the log. Reading follows the chain from the
 * record's head through each line's `parent`, so orphans (and a torn last line) are skipped, and
 * a retried save can never duplicate events.
 *
 * Concurrency: a save is a compare-and-swap on the version, made atomic across instances and
 * processes by a lock per migration (proper-lockfile: an atomically created `<id>.lock`
 * directory whose holder refreshes its time while it works, so the lock of a process that died is
 * taken over once it is `lockStaleMs` old). The version is read and compared, the events appended
 * and the record renamed, all while the lock is held; saves of one id are also serialised within
 * the process so that they do not queue on the lock.
 *
 * Damage: `load` checks what it reads (JSON, the file format, and that the event log still holds
 * every committed entry) and throws `DamagedStateError` naming the file and the fault, rather than
 * returning a record it cannot vouch for. `quarantine` renames the damaged files aside
 * (`<id>.damaged-<time>.json`, `<id>.events.damaged-<time>.jsonl`) and writes the replacement.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';
import {
  DamagedStateError,
  StaleStateError,
  type Clock,
  type ReplacementBuilder,
  type StateDamage,
  type StateStore,
} from '../lambda/core/ports';
import { systemClock } from './net';

/** Options of `FileStateStore`. */
export interface FileStateStoreOptions {
  /** Directory holding the files (created on first save). */
  readonly directory: string;
  /**
   * Time source for the `savedAtMs`/`atMs` stamps in the files (informational).
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
  /**
   * How old a lock may get before another writer takes it over (its holder is presumed dead).
   * @default 10000
   */
  readonly lockStaleMs?: number;
}

const FORMAT = 1;
const MIGRATION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

interface RecordFile<S> {
  readonly format: number;
  readonly migrationId: string;
  readonly version: number;
  readonly savedAtMs: number;
  /** `txn` of the newest committed log line, or null when no save had events. */
  readonly logHead: string | null;
  readonly record: S;
}

interface LogLine<E> {
  readonly txn: string;
  readonly parent: string | null;
  readonly version: number;
  readonly atMs: number;
  readonly events: readonly E[];
}


/** Checks a migration id: it becomes a file name, so no separators and no leading dot. */
export function validateMigrationId(migrationId: string): string {
  if (typeof migrationId !== 'string' || !MIGRATION_ID.test(migrationId)) {
    throw new TypeError(
      `migration id must be 1–128 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${JSON.stringify(migrationId)}`,
    );
  }
  return migrationId;
}

/** A `StateStore` of JSON files; see the module comment for the format and guarantees. */
export class FileStateStore<S = unknown, E = unknown> implements StateStore<S, E> {
  readonly directory: string;
  private readonly clock: Clock;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly lockStaleMs: number;

  constructor(options: FileStateStoreOptions) {
    if (typeof options.directory !== 'string' || options.directory.trim() === '') {
      throw new TypeError(`directory must be a non-empty path, got ${JSON.stringify(options.directory)}`);
    }
    this.directory = options.directory;
    this.clock = options.clock ?? systemClock;
    this.lockStaleMs = options.lockStaleMs ?? 10_000;
    if (!Number.isInteger(this.lockStaleMs) || this.lockStaleMs < 2000) {
      // proper-lockfile refuses less: its holder refreshes the lock every lockStaleMs / 2.
      throw new RangeError(`lockStaleMs must be a whole number of ms ≥ 2000, got ${JSON.stringify(options.lockStaleMs)}`);
    }
  }

  /** The record and its version; throws `DamagedStateError` when the files cannot be vouched for. */
  async load(migrationId: string): Promise<{ readonly record: S; readonly version: number } | undefined> {
    validateMigrationId(migrationId);
    const file = await this.readVerified(migrationId);
    return file === undefined ? undefined : { record: file.record, version: file.version };
  }

  /**
   * The record file, checked whole: its JSON and format, and that the event log still holds every
   * committed entry (a log emptied or cut short would otherwise lose the history silently).
   */
  private async readVerified(migrationId: string): Promise<(RecordFile<S> & { readonly fingerprint: string }) | undefined> {
    const file = await this.readRecord(migrationId);
    if (file === undefined || file.logHead === null) return file;
    const broken = brokenLink(file.logHead, await this.readLog(migrationId));
    if (broken !== undefined) {
      throw new DamagedStateError(migrationId, {
        what: `event log ${this.logPath(migrationId)} lacks committed entry ${broken} (emptied, truncated or replaced)`,
        version: file.version,
        raw: file.record,
        fingerprint: file.fingerprint,
      });
    }
    return file;
  }

  async quarantine(migrationId: string, damage: StateDamage, build: ReplacementBuilder<S, E>): Promise<number> {
    validateMigrationId(migrationId);
    return this.serialise(migrationId, () =>
      this.locked(migrationId, async () => {
        const text = await readText(this.recordPath(migrationId));
        const fingerprint = text === undefined ? undefined : fingerprintOf(text);
        const version = text === undefined ? 0 : versionIn(text);
        const matches = damage.fingerprint !== undefined ? damage.fingerprint === fingerprint : (damage.version ?? 0) === version;
        if (!matches) throw new StaleStateError(migrationId, damage.version ?? 0);

        const lastEventSeq = lastSeqIn(await this.readLog(migrationId).catch(() => new Map<string, LogLine<E>>()));
        const stamp = `${this.clock.now()}-${randomBytes(3).toString('hex')}`;
        const kept: string[] = [];
        for (const [from, to] of [
          [this.recordPath(migrationId), join(this.directory, `${migrationId}.damaged-${stamp}.json`)],
          [this.logPath(migrationId), join(this.directory, `${migrationId}.events.damaged-${stamp}.jsonl`)],
        ] as const) {
          try {
            await rename(from, to);
            kept.push(to);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
        }
        const { record, events } = build({ lastEventSeq, keptAs: kept.join(' and ') || 'nothing (no files were left)' });
        const next = (damage.version ?? version) + 1;
        await this.writeNow(migrationId, record, next, null, events);
        return next;
      }),
    );
  }

  save(migrationId: string, record: S, expectedVersion: number, events: readonly E[]): Promise<number> {
    validateMigrationId(migrationId);
    if (!Number.isInteger(expectedVersion) || expectedVersion < 0) {
      return Promise.reject(new RangeError(`expectedVersion must be an integer of at least 0, got ${String(expectedVersion)}`));
    }
    if (!Array.isArray(events)) return Promise.reject(new TypeError(`events must be an array, got ${typeof events}`));
    return this.serialise(migrationId, () => this.saveNow(migrationId, record, expectedVersion, events));
  }

  async events(migrationId: string): Promise<readonly E[]> {
    validateMigrationId(migrationId);
    const file = await this.readVerified(migrationId);
    if (file === undefined || file.logHead === null) return [];
    const lines = await this.readLog(migrationId);
    // The chain is whole (checked above), so the walk visits each committed line once.
    const batches: LogLine<E>[] = [];
    for (let txn: string | null = file.logHead; txn !== null; txn = lines.get(txn)!.parent) batches.push(lines.get(txn)!);
    return batches.reverse().flatMap((line) => line.events);
  }

  /** Ids of the migrations stored in the directory, sorted. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((name) => name.endsWith('.json') && !name.includes('.damaged-') && MIGRATION_ID.test(name.slice(0, -'.json'.length)))
      .map((name) => name.slice(0, -'.json'.length))
      .sort();
  }

  private recordPath(migrationId: string): string {
    return join(this.directory, `${migrationId}.json`);
  }

  private logPath(migrationId: string): string {
    return join(this.directory, `${migrationId}.events.jsonl`);
  }

  /** Runs `task` after every earlier task of the same id has settled. */
  private serialise<T>(migrationId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(migrationId) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.chains.set(migrationId, tail);
    void tail.then(() => {
      if (this.chains.get(migrationId) === tail) this.chains.delete(migrationId);
    });
    return result;
  }

  /** Runs `task` holding the migration's lock (see the module comment). */
  private async locked<T>(migrationId: string, task: () => Promise<T>): Promise<T> {
    await mkdir(this.directory, { recursive: true });
    const release = await lock(join(this.directory, migrationId), {
      realpath: false,
      stale: this.lockStaleMs,
      // A save holds the lock for milliseconds; wait up to about a stale period for it.
      retries: { retries: 200, factor: 1.2, minTimeout: 2, maxTimeout: 100 },
    });
    try {
      return await task();
    } finally {
      await release();
    }
  }

  private async saveNow(migrationId: string, record: S, expectedVersion: number, events: readonly E[]): Promise<number> {
    return this.locked(migrationId, async () => {
      const current = await this.readVerified(migrationId).catch((err: unknown) => {
        // A damaged record is never saved over: only quarantine replaces it.
        if (err instanceof DamagedStateError) throw new StaleStateError(migrationId, expectedVersion);
        throw err;
      });
      const currentVersion = current?.version ?? 0;
      if (currentVersion !== expectedVersion) throw new StaleStateError(migrationId, expectedVersion);
      const version = expectedVersion + 1;
      await this.writeNow(migrationId, record, version, current?.logHead ?? null, events);
      return version;
    });
  }

  /** Appends the events (if any) after `logHead`, then commits the record by renaming it into place. */
  private async writeNow(migrationId: string, record: S, version: number, logHead: string | null, events: readonly E[]): Promise<void> {
    const now = this.clock.now();
    let head = logHead;
    if (events.length > 0) {
      const txn = randomBytes(8).toString('hex');
      const line: LogLine<E> = { txn, parent: head, version, atMs: now, events };
      await this.append(migrationId, `${JSON.stringify(line)}\n`);
      head = txn;
    }
    const file: RecordFile<S> = { format: FORMAT, migrationId, version, savedAtMs: now, logHead: head, record };
    const text = `${JSON.stringify(file, null, 2)}\n`;
    const temp = `${this.recordPath(migrationId)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.recordPath(migrationId));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.syncDirectory();
  }

  /** Appends one line and flushes it to disk; repairs a torn last line first. */
  private async append(migrationId: string, line: string): Promise<void> {
    const handle = await open(this.logPath(migrationId), 'a+');
    try {
      const { size } = await handle.stat();
      let text = line;
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        // An append interrupted mid-line left no newline: start on a fresh line so that the
        // torn (uncommitted) fragment stays a separate, skipped line.
        if (last[0] !== 0x0a) text = `\n${line}`;
      }
      await handle.appendFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private async syncDirectory(): Promise<void> {
    // Makes the rename itself durable on Linux/macOS. Some platforms (Windows) cannot open a
    // directory for syncing; the rename is still atomic there, so the failure is ignored.
    try {
      const dir = await open(this.directory, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // best effort, see above
    }
  }

  private async readRecord(migrationId: string): Promise<(RecordFile<S> & { readonly fingerprint: string }) | undefined> {
    const path = this.recordPath(migrationId);
    const text = await readText(path).catch((err: unknown) => {
      throw new Error(`cannot read migration ${migrationId} from ${path}: ${(err as Error).message}`, { cause: err });
    });
    if (text === undefined) return undefined;
    const fingerprint = fingerprintOf(text);
    const damaged = (what: string, file?: Partial<RecordFile<S>>): DamagedStateError =>
      new DamagedStateError(migrationId, {
        what: `migration file ${path} ${what}`,
        fingerprint,
        ...(file && Number.isInteger(file.version) ? { version: file.version } : {}),
        ...(file && 'record' in file ? { raw: file.record } : {}),
      });
    if (text.trim() === '') throw damaged('is empty');
    let file: RecordFile<S>;
    try {
      file = JSON.parse(text) as RecordFile<S>;
    } catch (err) {
      throw damaged(`is not valid JSON (${(err as Error).message}): truncated or overwritten`);
    }
    if (file === null || typeof file !== 'object' || Array.isArray(file)) throw damaged('does not hold a JSON object');
    if (file.format !== FORMAT || !Number.isInteger(file.version) || file.version < 1) {
      throw damaged(`has an unknown format (format ${String(file.format)}, version ${String(file.version)})`, file);
    }
    if (file.logHead !== null && typeof file.logHead !== 'string') throw damaged(`has a malformed logHead ${JSON.stringify(file.logHead)}`, file);
    return { ...file, fingerprint };
  }

  private async readLog(migrationId: string): Promise<Map<string, LogLine<E>>> {
    const path = this.logPath(migrationId);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    const lines = new Map<string, LogLine<E>>();
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      try {
        const line = JSON.parse(raw) as LogLine<E>;
        if (typeof line.txn === 'string' && Array.isArray(line.events)) lines.set(line.txn, line);
      } catch {
        // A torn line from an interrupted append: never committed (the record was not renamed
        // after it), so it is not on the chain and is safe to skip.
      }
    }
    return lines;
  }
}

/** The text of a file, or undefined when it does not exist. */
async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function fingerprintOf(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** The version a record file's text claims, 0 when it cannot be read. */
function versionIn(text: string): number {
  try {
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'number' && Number.isInteger(version) ? version : 0;
  } catch {
    return 0;
  }
}

/** The first committed entry missing on the chain from `head`, or undefined when the chain is whole. */
function brokenLink<E>(head: string, lines: ReadonlyMap<string, LogLine<E>>): string | undefined {
  let txn: string | null = head;
  // Each step consumes one distinct line, so the walk ends within lines.size steps.
  for (let steps = 0; txn !== null; steps += 1) {
    const line = lines.get(txn);
    if (line === undefined || steps > lines.size) return txn;
    txn = line.parent;
  }
  return undefined;
}

/** The highest event `seq` in any readable line of a log (0 if none). */
function lastSeqIn<E>(lines: ReadonlyMap<string, LogLine<E>>): number {
  let last = 0;
  for (const line of lines.values()) {
    for (const event of line.events) {
      const seq = (event as { seq?: unknown } | null)?.seq;
      if (typeof seq === 'number' && Number.isFinite(seq)) last = Math.max(last, seq);
    }
  }
  return last;
}
