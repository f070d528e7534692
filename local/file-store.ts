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
 * Concurrency: saves of one id are serialised within the process (a promise chain per id). Across
 * processes there is no lock: the version is checked when the save starts and again just before
 * the rename, which catches a writer that has already committed but not one committing in the
 * same instant. Run one controller per migration and directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StaleStateError, type Clock, type StateStore } from '../lambda/core/ports';
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

  constructor(options: FileStateStoreOptions) {
    if (typeof options.directory !== 'string' || options.directory.trim() === '') {
      throw new TypeError(`directory must be a non-empty path, got ${JSON.stringify(options.directory)}`);
    }
    this.directory = options.directory;
    this.clock = options.clock ?? systemClock;
  }

  async load(migrationId: string): Promise<{ readonly record: S; readonly version: number } | undefined> {
    const file = await this.readRecord(validateMigrationId(migrationId));
    return file === undefined ? undefined : { record: file.record, version: file.version };
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
    const file = await this.readRecord(migrationId);
    if (file === undefined || file.logHead === null) return [];
    const lines = await this.readLog(migrationId);
    const batches: LogLine<E>[] = [];
    let txn: string | null = file.logHead;
    // Each step consumes one distinct line, so the walk ends within lines.size steps.
    for (let steps = 0; txn !== null; steps += 1) {
      const line = lines.get(txn);
      if (line === undefined || steps > lines.size) {
        throw new Error(`event log of migration ${migrationId} is damaged: committed entry ${txn} not found in ${this.logPath(migrationId)}`);
      }
      batches.push(line);
      txn = line.parent;
    }
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
      .filter((name) => name.endsWith('.json') && MIGRATION_ID.test(name.slice(0, -'.json'.length)))
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

  private async saveNow(migrationId: string, record: S, expectedVersion: number, events: readonly E[]): Promise<number> {
    const current = await this.readRecord(migrationId);
    const currentVersion = current?.version ?? 0;
    if (currentVersion !== expectedVersion) throw new StaleStateError(migrationId, expectedVersion);
    await mkdir(this.directory, { recursive: true });

    const version = expectedVersion + 1;
    const now = this.clock.now();
    let logHead = current?.logHead ?? null;
    if (events.length > 0) {
      const txn = randomBytes(8).toString('hex');
      const line: LogLine<E> = { txn, parent: logHead, version, atMs: now, events };
      await this.append(migrationId, `${JSON.stringify(line)}\n`);
      logHead = txn;
    }

    const file: RecordFile<S> = { format: FORMAT, migrationId, version, savedAtMs: now, logHead, record };
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
      // Last look before the commit: another process may have committed meanwhile.
      const latest = await this.readRecord(migrationId);
      if ((latest?.version ?? 0) !== expectedVersion) throw new StaleStateError(migrationId, expectedVersion);
      await rename(temp, this.recordPath(migrationId));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.syncDirectory();
    return version;
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

  private async readRecord(migrationId: string): Promise<RecordFile<S> | undefined> {
    const path = this.recordPath(migrationId);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read migration ${migrationId} from ${path}: ${(err as Error).message}`, { cause: err });
    }
    let file: RecordFile<S>;
    try {
      file = JSON.parse(text) as RecordFile<S>;
    } catch (err) {
      throw new Error(`migration file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (file.format !== FORMAT || !Number.isInteger(file.version) || file.version < 1) {
      throw new Error(`migration file ${path} has an unknown format (format ${String(file.format)}, version ${String(file.version)})`);
    }
    return file;
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
