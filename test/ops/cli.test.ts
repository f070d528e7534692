/**
 * The operator commands as a user runs them: the real `cutover` in a child process for
 * `--version`, `status`'s exit codes and `--json` output (local and, through dynalite, AWS), and
 * the command functions in-process for the rest (watch, the control commands, every status code).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationStatus } from '../../lambda/core/model';
import { controlCommand } from '../../bin/commands/control';
import { historyCommand } from '../../bin/commands/history';
import { listCommand } from '../../bin/commands/list';
import { statusCommand } from '../../bin/commands/status';
import { watchCommand } from '../../bin/commands/watch';
import type { OpsIo } from '../../bin/commands/ops-common';
import { makeEvent, makeRecord } from '../aws/fixtures';
import { TEST_CREDENTIALS, startDynalite, type LocalDynamo } from '../aws/helpers';
import { fakeEngine, fileStore, tempDir, writeMigration } from './helpers';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'cli.ts');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cutover` with only the environment it needs (never this machine's AWS settings). */
function cutover(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [CLI, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: ROOT,
        AWS_CONFIG_FILE: join(ROOT, 'no-such-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(ROOT, 'no-such-aws-credentials'),
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Captures what a command function writes. */
function capture(): OpsIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: (t) => (out += t), stderr: (t) => (err += t), color: false, env: {}, out: () => out, err: () => err };
}

const dirs: Array<() => void> = [];
afterAll(() => dirs.forEach((remove) => remove()));
function stateDir(): string {
  const { dir, remove } = tempDir('cutover-ops-cli-');
  dirs.push(remove);
  return dir;
}

describe('cutover (child process)', () => {
  const TABLE = 'cutover-cli';
  let dir: string;
  let dynamo: LocalDynamo;
  const runs = new Map<string, Run>();

  // Every child process starts at once (each spends most of its second loading TypeScript).
  beforeAll(async () => {
    dir = stateDir();
    await writeMigration(dir, 'rehearsal-baking', MigrationStatus.BAKING, { weight: 25, step: 1 });
    await writeMigration(dir, 'rehearsal-rolled-back', MigrationStatus.ROLLED_BACK);
    await writeMigration(dir, 'rehearsal-paused', MigrationStatus.PAUSED);
    dynamo = await startDynalite();
    await dynamo.createTable(TABLE);
    const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
    await store.save('api:live:2', makeRecord('api:live:2', { status: MigrationStatus.COMPLETE, weight: 100, step: 1, eventSeq: 1 }), 0, [makeEvent('api:live:2', 1)]);
    await store.putPointer('api:live', { migrationId: 'api:live:2', oldVersion: '1', newVersion: '2', createdAtMs: 1 }, undefined);
    const aws = { AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey };
    const cases: Record<string, [string[], Record<string, string>?]> = {
      version: [['--version']],
      baking: [['status', 'rehearsal-baking', '--state-dir', dir, '--json']],
      rolledBack: [['status', 'rehearsal-rolled-back', '--state-dir', dir]],
      paused: [['status', 'rehearsal-paused', '--state-dir', dir]],
      unknown: [['status', 'nope', '--state-dir', dir, '--json']],
      noSource: [['status', 'rehearsal-baking']],
      list: [['list', '--state-dir', dir, '--json']],
      aws: [['status', 'api:live', '--json'], { ...aws, CUTOVER_TABLE: TABLE }],
    };
    const results = await Promise.all(Object.entries(cases).map(async ([name, [args, env]]) => [name, await cutover(args, env)] as const));
    for (const [name, run] of results) runs.set(name, run);
  }, 60_000);

  afterAll(async () => {
    await dynamo?.close();
  });

  it('should print the version from package.json', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(runs.get('version')).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('should exit with the status code: 3 running (one JSON object, nothing else on stdout), 1 rolled back, 4 paused', () => {
    const baking = runs.get('baking')!;
    expect(baking.code).toBe(3);
    expect(JSON.parse(baking.stdout)).toMatchObject({ source: 'local', id: 'rehearsal-baking', status: 'baking', weight: 25, step: 1 });
    expect(runs.get('rolledBack')).toMatchObject({ code: 1, stdout: expect.stringMatching(/^rehearsal-rolled-back\n {2}status +rolled-back · step 1\/2/) });
    expect(runs.get('paused')).toMatchObject({ code: 4, stdout: expect.stringMatching(/status +paused \(from baking\)/) });
  });

  it('should exit 5 for an unknown migration (the error as JSON with --json) and 2 without a source', () => {
    const unknown = runs.get('unknown')!;
    expect(unknown.code).toBe(5);
    expect(JSON.parse(unknown.stdout)).toEqual({ error: { code: 'unknown-migration', message: expect.stringMatching(/^no migration "nope" in state directory /), exitCode: 5 } });
    expect(unknown.stderr).toMatch(/^cutover status: no migration "nope"/);
    expect(runs.get('noSource')).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^cutover status: name a source: --table <name>/) });
  });

  it('should list as JSON, and read a table through the standard AWS chain (CUTOVER_TABLE)', () => {
    const list = runs.get('list')!;
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { id: string }[]).map((r) => r.id)).toEqual(['rehearsal-baking', 'rehearsal-paused', 'rehearsal-rolled-back']);
    const aws = runs.get('aws')!;
    expect(aws.stderr).toBe('');
    expect(aws.code).toBe(0);
    expect(JSON.parse(aws.stdout)).toMatchObject({ source: 'aws', id: 'api:live:2', key: 'api:live', status: 'complete', weight: 100 });
  });
});

describe('cutover commands (in-process)', () => {
  it('should map every status to its exit code', async () => {
    const dir = stateDir();
    const expected: Record<string, number> = {
      pending: 3, gating: 3, shifting: 3, baking: 3, soaking: 3, promoted: 3, complete: 0, 'torn-down': 0, 'rolled-back': 1, paused: 4,
    };
    for (const status of Object.keys(expected)) {
      await writeMigration(dir, `m-${status}`, status as MigrationStatus, status === 'shifting' ? { record: { shift: { kind: 'advance', weight: 100, fromWeight: 10, step: 1, then: MigrationStatus.BAKING, from: MigrationStatus.BAKING, type: 'advanced', code: 'c', reason: 'r', requestedAtMs: 1 } } } : {});
    }
    const codes: Record<string, number> = {};
    for (const status of Object.keys(expected)) codes[status] = await statusCommand(`m-${status}`, { stateDir: dir }, capture());
    expect(codes).toEqual(expected);
  });

  it('should print a readable list and history', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING, { events: 2 });
    const list = capture();
    expect(await listCommand({ stateDir: dir }, list)).toBe(0);
    expect(list.out()).toMatch(/^MIGRATION +STATUS +WEIGHT +STEP +UPDATED +RUNNING\nrehearsal-a +baking +10% +step 1\/2 +\d+[smhd] ago +\?\n$/);
    const history = capture();
    expect(await historyCommand('rehearsal-a', { stateDir: dir }, history)).toBe(0);
    expect(history.out().split('\n')[1]).toMatch(/^#2 {3}2023-11-14 22:13:22Z {2}held +baking +10% {2}event 2 \[baking\]$/);
  });

  it('should pause and resume a running rehearsal, and refuse promote without --full', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const engine = fakeEngine(dir, 'rehearsal-a');
    try {
      const pause = capture();
      expect(await controlCommand('pause', 'rehearsal-a', { stateDir: dir, reason: 'customer report' }, pause)).toBe(0);
      expect(pause.out()).toBe('pause applied to rehearsal-a: now paused at 10% (step 1); 1 event logged\n');
      const again = capture();
      expect(await controlCommand('pause', 'rehearsal-a', { stateDir: dir, json: true }, again)).toBe(1);
      expect(JSON.parse(again.out())).toMatchObject({ applied: false, refusal: 'cannot pause a migration that is paused: nothing to pause', reason: 'operator pause (cutover CLI)' });
      const promote = capture();
      expect(await controlCommand('promote', 'rehearsal-a', { stateDir: dir }, promote)).toBe(2);
      expect(promote.err()).toMatch(/pass --full to confirm/);
      expect(await controlCommand('resume', 'rehearsal-a', { stateDir: dir }, capture())).toBe(0);
    } finally {
      await engine.stop();
    }
  });

  it('should watch until the migration settles and exit with its code, one JSON line per change', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const store = fileStore(dir);
    const io = capture();
    const watching = watchCommand('rehearsal-a', { stateDir: dir, interval: '100ms', json: true }, io);
    await new Promise((r) => setTimeout(r, 250));
    const { record, version } = (await store.load('rehearsal-a'))!;
    await store.save('rehearsal-a', { ...record, status: MigrationStatus.ROLLED_BACK, weight: 0, eventSeq: 4 }, version, [
      makeEvent('rehearsal-a', 4, { type: 'rolled-back', to: MigrationStatus.ROLLED_BACK, weight: 0 }),
    ]);
    expect(await watching).toBe(1);
    const lines = io.out().trimEnd().split('\n').map((l) => JSON.parse(l) as { status: string });
    expect(lines.map((l) => l.status)).toEqual(['baking', 'rolled-back']);
  });

  it('should exit 130 when interrupted, and 2 on a bad --interval', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const abort = new AbortController();
    const io = capture();
    const watching = watchCommand('rehearsal-a', { stateDir: dir, interval: '1' }, { ...io, signal: abort.signal });
    await new Promise((r) => setTimeout(r, 150));
    abort.abort();
    expect(await watching).toBe(130);
    expect(io.out()).toMatch(/rehearsal-a baking 10% step 1\/2 — held: event 3/);
    const bad = capture();
    expect(await watchCommand('rehearsal-a', { stateDir: dir, interval: 'soon' }, bad)).toBe(2);
    expect(bad.err()).toMatch(/--interval must be a duration/);
  });
});
