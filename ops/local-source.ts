/**
 * A rehearsal's state directory as a `MigrationSource`: reads go straight to its FileStateStore
 * files; commands go through the command inbox (`inbox.ts`) to the rehearsal that runs the
 * migration, which alone can carry them out.
 */
import { stat } from 'node:fs/promises';
import type { MigrationRecord } from '../lambda/core/controller';
import type { Command, MigrationEvent } from '../lambda/core/model';
import { DamagedStateError } from '../lambda/core/ports';
import { FileStateStore, validateMigrationId } from '../local/file-store';
import { liveness, sendCommand, type SendOptions } from './inbox';
import { readRecord, stateOf, summaryOf } from './state';
import {
  SourceUnavailableError,
  SourceUsageError,
  UnknownMigrationError,
  type CommandOptions,
  type CommandOutcome,
  type MigrationSource,
  type MigrationState,
  type MigrationSummary,
} from './types';

export interface LocalMigrationSourceOptions extends SendOptions {
  /** The rehearsal's state directory. */
  readonly stateDir: string;
}

export class LocalMigrationSource implements MigrationSource {
  readonly kind = 'local' as const;
  private readonly store: FileStateStore<MigrationRecord, MigrationEvent>;
  private readonly now: () => number;

  constructor(private readonly options: LocalMigrationSourceOptions) {
    this.store = new FileStateStore<MigrationRecord, MigrationEvent>({ directory: options.stateDir });
    this.now = options.now ?? Date.now;
  }

  async list(): Promise<MigrationSummary[]> {
    await this.checkDir();
    const ids = await this.store.list();
    return Promise.all(
      ids.map(async (id) => {
        const read = await readRecord(() => this.store.load(id));
        return summaryOf(id, read ?? { kind: 'damaged', what: 'its record file vanished while listing' }, await this.live(id));
      }),
    );
  }

  async status(migration: string): Promise<MigrationState> {
    const id = await this.checkId(migration);
    const read = await readRecord(() => this.store.load(id));
    if (!read) throw new UnknownMigrationError(id, `state directory ${this.options.stateDir}`);
    const events = read.kind === 'record' ? await this.store.events(id).catch(() => []) : [];
    return stateOf('local', id, read, events, await this.live(id));
  }

  async history(migration: string): Promise<readonly MigrationEvent[]> {
    const id = await this.checkId(migration);
    try {
      if (!(await this.store.load(id))) throw new UnknownMigrationError(id, `state directory ${this.options.stateDir}`);
      return await this.store.events(id);
    } catch (error) {
      if (error instanceof DamagedStateError) throw new SourceUnavailableError(error.message, 'damaged');
      throw error;
    }
  }

  async command(migration: string, command: Command, reason: string, options: CommandOptions = {}): Promise<CommandOutcome> {
    const id = await this.checkId(migration);
    const read = await readRecord(() => this.store.load(id));
    if (!read) throw new UnknownMigrationError(id, `state directory ${this.options.stateDir}`);
    const live = await liveness(this.options.stateDir, id, this.now);
    if (live.state === 'stopped') {
      const status = read.kind === 'record' ? ((read.raw as { status?: unknown } | null)?.status ?? 'unknown') : 'damaged';
      const ago = live.lastSeenMs ? `, last seen ${Math.round((this.now() - live.lastSeenMs) / 1000)} s ago` : '';
      throw new SourceUnavailableError(
        `no rehearsal is running migration ${id} any more (it is ${String(status)}${ago}); a command needs the rehearsal that runs it`,
        'not-running',
      );
    }
    const result = await sendCommand(this.options.stateDir, { migrationId: id, command, reason }, { ...this.options, ...(options.signal ? { signal: options.signal } : {}) });
    if (result.conflict) {
      throw new SourceUnavailableError(`another writer changed ${id} at the same time, so the ${command} command changed nothing; send it again`, 'conflict');
    }
    if (result.expired) {
      throw new SourceUnavailableError(`the rehearsal took the ${command} command too late (after this command stopped waiting); nothing was applied`, 'not-taken');
    }
    return {
      source: 'local',
      migrationId: id,
      command,
      reason,
      applied: result.applied,
      ...(result.refusal !== undefined ? { refusal: result.refusal } : {}),
      ...(result.status !== undefined ? { status: result.status } : {}),
      ...(result.weight !== undefined ? { weight: result.weight } : {}),
      ...(result.step !== undefined ? { step: result.step } : {}),
      events: result.events,
    };
  }

  /** `live`: true while a rehearsal takes its commands, false once it stopped, absent when no rehearsal ever said. */
  private async live(id: string): Promise<{ live?: boolean }> {
    const { state } = await liveness(this.options.stateDir, id, this.now);
    return state === 'unknown' ? {} : { live: state === 'running' };
  }

  close(): void {
    // Nothing held open.
  }

  private async checkDir(): Promise<void> {
    const found = await stat(this.options.stateDir).catch(() => undefined);
    if (!found?.isDirectory()) throw new SourceUsageError(`state directory ${this.options.stateDir} does not exist`);
  }

  /** A migration id that can name a file, in a directory that exists. */
  private async checkId(migration: string): Promise<string> {
    await this.checkDir();
    try {
      return validateMigrationId(migration);
    } catch {
      // No file can have that name, so no such migration.
      throw new UnknownMigrationError(migration, `state directory ${this.options.stateDir}`);
    }
  }
}
