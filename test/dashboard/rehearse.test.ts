/**
 * `cutover rehearse --dashboard --report <file>` as a user runs it: the dashboard's URL while the
 * run goes on (it answers), the report file at the end, the temporary state directory removed,
 * and the usage errors of the new flags.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../ops/helpers';

const ROOT = join(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = join(ROOT, 'bin', 'cli.ts');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Runs the CLI; `onStderr` sees stderr as it grows (to reach the dashboard while the run goes on). */
function cutover(args: readonly string[], onStderr?: (text: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr?.(stderr);
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('cutover rehearse --dashboard --report', () => {
  it('should serve the running rehearsal and write the report at the end, reporting no temporary state', async () => {
    const { dir, remove } = tempDir('cutover-rehearse-report-');
    cleanups.push(remove);
    const file = join(dir, 'report.html');
    let pageStatus: Promise<number> | undefined;
    const run = await cutover(['rehearse', '--steps', '10@1s,100@1s', '--soak', '1s', '--json', '--dashboard', '--report', file], (stderr) => {
      const url = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/migrations\/\S+)/.exec(stderr)?.[1];
      if (url && !pageStatus) pageStatus = fetch(new URL(url).href.replace('/migrations/', '/api/migrations/').replace(/\?.*$/, '')).then((r) => r.status);
    });
    expect(run.code, run.stderr).toBe(0);
    expect(await pageStatus).toBe(200);
    const report = JSON.parse(run.stdout) as { outcome: string; migrationId: string; stateDir?: string };
    expect(report.outcome).toBe('promoted');
    // The directory was temporary: not reported, and gone.
    expect(report.stateDir).toBeUndefined();
    expect(run.stderr).toMatch(/report written to .*report\.html \(\d+ kB, self-contained\)/);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain(`<title>torn-down · ${report.migrationId} · Cutover report</title>`);
    expect(html).toContain('"code":"operator-teardown"');
  }, 60_000);

  it('should refuse a bad --dashboard-port, a port without --dashboard and an empty --report', async () => {
    const cases: [string[], RegExp][] = [
      [['--dashboard', '--dashboard-port', '70000'], /--dashboard-port must be between 0 and 65535, got 70000/],
      [['--dashboard-port', '7000'], /--dashboard-port applies to --dashboard only/],
      [['--report', ' '], /--report needs a file name/],
      // Before the run, not after it: a folder that is not there.
      [['--report', join(tmpdir(), 'cutover-no-such-folder', 'r.html')], /--report .*the folder .*cutover-no-such-folder does not exist/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cutover(['rehearse', ...args])));
    runs.forEach((run, i) => {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(cases[i]![1]);
    });
  }, 30_000);
});
