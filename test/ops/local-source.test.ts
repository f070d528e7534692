/**
 * LocalMigrationSource against a rehearsal-like state directory written with the FileStateStore,
 * and the command inbox round trip with a fake engine loop.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationStatus } from '../../lambda/core/model';
import {
  CommandInbox,
  INBOX_DIR,
  LocalMigrationSource,
  SourceUnavailableError,
  SourceUsageError,
  UnknownMigrationError,
  liveness,
  sendCommand,
  statusExitCode,
  type CommandRequest,
} from '../../ops';
import { fakeEngine, fileStore, tempDir, writeMigration } from './helpers';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function stateDir(): string {
  const { dir, remove } = tempDir('cutover-ops-local-');
  cleanups.push(remove);
  return dir;
}

function engine(dir: string, id: string) {
  const e = fakeEngine(dir, id);
  cleanups.push(() => e.stop());
  return e;
}

/** Fast waits: nothing in these tests needs the CLI's 10 s. */
const FAST = { waitMs: 1500, graceMs: 1000, pollMs: 20 };

describe('LocalMigrationSource: reading', () => {
  it('should list every migration of the directory with its status, weight and step', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING, { weight: 25, step: 1 });
    await writeMigration(dir, 'rehearsal-b', MigrationStatus.ROLLED_BACK);
    writeFileSync(join(dir, 'rehearsal-c.json'), '{"format":1,"vers');
    const rows = await new LocalMigrationSource({ stateDir: dir }).list();
    expect(rows).toEqual([
      { id: 'rehearsal-a', status: 'baking', weight: 25, step: 1, steps: 2, updatedAtMs: expect.any(Number) },
      { id: 'rehearsal-b', status: 'rolled-back', weight: 0, step: 0, steps: 2, updatedAtMs: expect.any(Number) },
      { id: 'rehearsal-c', status: 'damaged', damage: expect.stringMatching(/rehearsal-c\.json is not valid JSON/) },
    ]);
  });

  it('should show a migration: plan, pin, decision and its newest five events', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.PAUSED, {
      events: 7,
      record: { lastDecision: { action: 'pause', code: 'shared-outage', reason: 'both sides fail', signals: {} } },
    });
    const state = await new LocalMigrationSource({ stateDir: dir }).status('rehearsal-a');
    expect(state).toMatchObject({
      source: 'local',
      id: 'rehearsal-a',
      status: 'paused',
      pausedFrom: 'baking',
      weight: 10,
      plan: '10% 5m → 100% 5m, soak 10m, teardown manual',
      stepWeights: [10, 100],
      oldCapacity: { pinned: 5, released: false, restoring: false },
      lastDecision: { action: 'pause', code: 'shared-outage', reason: 'both sides fail' },
    });
    expect(state.recentEvents.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7]);
    expect(state.recentEvents[4]).toMatchObject({ to: 'paused', reason: 'event 7' });
    expect(state).not.toHaveProperty('live'); // no rehearsal ever took commands for it
    expect(statusExitCode(state.status)).toBe(4);
  });

  it('should call a record that fails the controller\'s schema damaged, never what its fields say', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING, { record: { status: 'bogus' as MigrationStatus } });
    const state = await new LocalMigrationSource({ stateDir: dir }).status('rehearsal-a');
    expect(state).toMatchObject({ status: 'damaged', damage: expect.stringMatching(/fails its schema: status: unknown status "bogus"/) });
    expect(statusExitCode(state.status)).toBe(5);
  });

  it('should return the whole history, and refuse unknown migrations and a missing directory', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING, { events: 4 });
    const source = new LocalMigrationSource({ stateDir: dir });
    expect((await source.history('rehearsal-a')).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    await expect(source.status('nope')).rejects.toBeInstanceOf(UnknownMigrationError);
    await expect(source.history('../escape')).rejects.toBeInstanceOf(UnknownMigrationError);
    await expect(new LocalMigrationSource({ stateDir: join(dir, 'missing') }).list()).rejects.toBeInstanceOf(SourceUsageError);
  });
});

describe('command inbox', () => {
  it('should carry pause and resume to the running rehearsal and answer with its result', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const e = engine(dir, 'rehearsal-a');
    const source = new LocalMigrationSource({ stateDir: dir, ...FAST });

    const paused = await source.command('rehearsal-a', 'pause', 'looking into a report');
    expect(paused).toEqual({ source: 'local', migrationId: 'rehearsal-a', command: 'pause', reason: 'looking into a report', applied: true, status: 'paused', weight: 10, step: 0, events: 1 });
    expect(e.inbox.pausedByOperator).toBe(true);
    const state = await source.status('rehearsal-a');
    expect(state).toMatchObject({ status: 'paused', live: true });
    expect(state.recentEvents.at(-1)).toMatchObject({ type: 'paused', code: 'operator-pause', reason: 'looking into a report' });

    // The controller's refusal is an outcome, not an error.
    const again = await source.command('rehearsal-a', 'pause', 'twice');
    expect(again).toMatchObject({ applied: false, refusal: 'cannot pause a migration that is paused: nothing to pause', status: 'paused' });

    expect(await source.command('rehearsal-a', 'resume', 'fine')).toMatchObject({ applied: true, status: 'baking' });
    expect(e.inbox.pausedByOperator).toBe(false);
    // Nothing is left behind: results are read and removed, taken commands removed.
    const inbox = join(dir, INBOX_DIR);
    expect(readdirSync(inbox).filter((n) => n.endsWith('.json'))).toEqual([]);
    expect(readdirSync(join(inbox, 'results'))).toEqual([]);
    expect(readdirSync(join(inbox, 'taken'))).toEqual([]);
  });

  it('should withdraw a command no rehearsal takes, so that none can apply it later', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const source = new LocalMigrationSource({ stateDir: dir, ...FAST, waitMs: 200 });
    const error = await source.command('rehearsal-a', 'abort', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect((error as SourceUnavailableError).code).toBe('not-taken');
    expect((error as Error).message).toMatch(/no rehearsal took the abort command for rehearsal-a within 0\.2 s .*withdrawn, nothing was applied/);
    expect(readdirSync(join(dir, INBOX_DIR)).filter((n) => n.endsWith('.json'))).toEqual([]);
    // A rehearsal started now finds nothing to apply.
    const e = engine(dir, 'rehearsal-a');
    await new Promise((r) => setTimeout(r, 100));
    expect(e.taken).toEqual([]);
    expect((await fileStore(dir).load('rehearsal-a'))?.record.status).toBe('baking');
  });

  it('should fail at once when the rehearsal that took commands has stopped', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    mkdirSync(join(dir, INBOX_DIR, 'live'), { recursive: true });
    writeFileSync(join(dir, INBOX_DIR, 'live', 'rehearsal-a.json'), JSON.stringify({ format: 1, migrationId: 'rehearsal-a', pid: process.pid, atMs: Date.now() - 60_000 }));
    expect(await liveness(dir, 'rehearsal-a')).toMatchObject({ state: 'stopped' });
    const source = new LocalMigrationSource({ stateDir: dir, ...FAST });
    const started = Date.now();
    await expect(source.command('rehearsal-a', 'pause', 'x')).rejects.toThrow(/no rehearsal is running migration rehearsal-a any more \(it is baking, last seen 60 s ago\)/);
    expect(Date.now() - started).toBeLessThan(500);
    expect((await source.status('rehearsal-a')).live).toBe(false);
  });

  it('should say at once that a rehearsal whose loop closed its inbox takes no more commands, and leave them pending', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.ROLLED_BACK);
    const calls: string[] = [];
    const inbox = new CommandInbox({
      stateDir: dir,
      migrationId: 'rehearsal-a',
      controller: { command: async (id, command) => (calls.push(`${id} ${command}`), Promise.reject(new Error('never'))) },
    });
    await inbox.take();
    // Fresh heartbeat, own (living) process: running.
    expect(await liveness(dir, 'rehearsal-a')).toMatchObject({ state: 'running', pid: process.pid });
    await inbox.close();
    expect(await liveness(dir, 'rehearsal-a')).toMatchObject({ state: 'stopped', pid: process.pid, lastSeenMs: expect.any(Number) });
    const source = new LocalMigrationSource({ stateDir: dir, ...FAST });
    const started = Date.now();
    await expect(source.command('rehearsal-a', 'teardown', 'x')).rejects.toThrow(/^no rehearsal is running migration rehearsal-a any more \(it is rolled-back, last seen \d s ago\)/);
    expect(Date.now() - started).toBeLessThan(500);
    // A command that arrives anyway is left for its sender to withdraw: a closed inbox takes nothing.
    const request: CommandRequest = { format: 1, id: '000000000000001-00000000000000cc', migrationId: 'rehearsal-a', command: 'abort', reason: 'r', requestedAtMs: 1, expiresAtMs: Date.now() + 60_000 };
    writeFileSync(join(dir, INBOX_DIR, `${request.id}.json`), JSON.stringify(request));
    expect(await inbox.take()).toEqual([]);
    expect(calls).toEqual([]);
    expect(existsSync(join(dir, INBOX_DIR, `${request.id}.json`))).toBe(true);
  });

  it('should tell a sender already waiting, within about a second, that the rehearsal ended before taking its command', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const inbox = new CommandInbox({ stateDir: dir, migrationId: 'rehearsal-a', controller: { command: async () => Promise.reject(new Error('never')) } });
    await inbox.take();
    // Waits up to 10 s for a rehearsal to take it; the run ends 200 ms in without taking it.
    const source = new LocalMigrationSource({ stateDir: dir, waitMs: 10_000, graceMs: 500, pollMs: 20 });
    const started = Date.now();
    const sent = source.command('rehearsal-a', 'abort', 'x');
    setTimeout(() => void inbox.close(), 200);
    await expect(sent).rejects.toThrow(/the rehearsal running rehearsal-a ended before it took the abort command; it was withdrawn, nothing was applied/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(readdirSync(join(dir, INBOX_DIR)).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('should leave another migration\'s commands alone and never apply an expired one', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    await writeMigration(dir, 'rehearsal-b', MigrationStatus.BAKING);
    const inbox = join(dir, INBOX_DIR);
    mkdirSync(inbox, { recursive: true });
    const request = (id: string, migrationId: string, expiresAtMs: number): void => {
      const value: CommandRequest = { format: 1, id, migrationId, command: 'abort', reason: 'r', requestedAtMs: 1, expiresAtMs };
      writeFileSync(join(inbox, `${id}.json`), JSON.stringify(value));
    };
    request('000000000000001-00000000000000aa', 'rehearsal-b', Date.now() + 60_000);
    request('000000000000002-00000000000000bb', 'rehearsal-a', Date.now() - 1);
    const calls: string[] = [];
    const take = new CommandInbox({
      stateDir: dir,
      migrationId: 'rehearsal-a',
      controller: { command: async (id, command) => (calls.push(`${id} ${command}`), Promise.reject(new Error('never'))) },
    });
    const taken = await take.take();
    expect(calls).toEqual([]);
    expect(taken.map((t) => t.result)).toEqual([expect.objectContaining({ id: '000000000000002-00000000000000bb', applied: false, expired: true })]);
    expect(existsSync(join(inbox, '000000000000001-00000000000000aa.json'))).toBe(true);
    expect(existsSync(join(inbox, 'results', '000000000000002-00000000000000bb.json'))).toBe(true);
  });

  it('should answer a command that fails in the controller, and keep taking commands', async () => {
    const dir = stateDir();
    const take = new CommandInbox({
      stateDir: dir,
      migrationId: 'm',
      controller: { command: () => Promise.reject(Object.assign(new Error('router gone'), { name: 'TrafficShiftError' })) },
    });
    const [result] = await Promise.all([
      sendCommand(dir, { migrationId: 'm', command: 'abort', reason: 'r' }, FAST),
      (async () => {
        for (let i = 0; i < 40; i++) {
          if ((await take.take()).length > 0) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
    ]);
    expect(result).toMatchObject({ applied: false, refusal: 'TrafficShiftError: router gone', events: 0 });
  });
});

describe('command inbox: interrupting the sender', () => {
  it('should withdraw a command nobody took yet when the sender is interrupted', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const started = Date.now();
    const error = await new LocalMigrationSource({ stateDir: dir, ...FAST })
      .command('rehearsal-a', 'abort', 'x', { signal: abort.signal })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 130, code: 'interrupted', message: expect.stringMatching(/withdrawn before any rehearsal took it; nothing was applied/) });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(readdirSync(join(dir, INBOX_DIR)).filter((n) => n.endsWith('.json'))).toEqual([]);
  });
});
