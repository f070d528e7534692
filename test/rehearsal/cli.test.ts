/**
 * `cutover rehearse` as a user runs it: a real child process, real exit codes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
// The executable users run (`npm start`, `npx cutover`): node itself, with tsx's loader inside, so a
// signal reaches the CLI. Through the tsx command, a second process relays it, and under load the
// CLI could die of the signal before its handler printed anything (the SIGTERM test failed so).
const CLI = join(ROOT, 'bin', 'cutover.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI. `interruptOn`: send `signal` (default SIGINT) once stdout or stderr matches, after
 * `interruptAfterMs`, so that the interrupt lands in the rehearsal however long the start takes on
 * a busy machine (a fixed delay from the spawn raced the CLI's start-up under load).
 */
function cutover(args: string[], options: { interruptOn?: RegExp; signal?: NodeJS.Signals; interruptAfterMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    const watch = (): void => {
      if (options.interruptOn && !interrupted && options.interruptOn.test(stdout + stderr)) {
        interrupted = true;
        setTimeout(() => child.kill(options.signal ?? 'SIGINT'), options.interruptAfterMs ?? 0);
      }
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      watch();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      watch();
    });
    // Bounded: a hung CLI fails the test instead of hanging the suite.
    const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('cutover rehearse (CLI)', () => {
  let blocker: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    blocker = undefined;
  });

  it('should print one JSON report with the documented fields and exit 0', async () => {
    const run = await cutover(['rehearse', '--scenario', 'keepalive-desync', '--json', '--steps', '10@2s,100@2s', '--soak', '1s']);
    expect(run.code).toBe(0);
    // stdout is the report alone (`| jq` works); the line saying the run started is on stderr.
    const report = JSON.parse(run.stdout);
    expect(run.stdout.trimStart().startsWith('{')).toBe(true);
    expect(run.stderr).toMatch(/^cutover rehearse: keepalive-desync, steps 10@2s,100@2s, .*: running; the JSON report follows on stdout\n$/);
    // Its state went to a temporary directory, removed at the end.
    expect(report.stateDir).toBeUndefined();
    expect(report.migrationId).toMatch(/^rehearsal-keepalive-desync-\d+$/);
    expect(report).toMatchObject({ scenario: 'keepalive-desync', outcome: 'rolled-back', finalWeight: 0, misalignedResponses: 0 });
    expect(typeof report.clientRequests).toBe('number');
    expect(typeof report.errorResponses).toBe('number');
    // Caught at the gate: the blast radius runs from the fault to the rollback, and no client
    // request ever reached the new side.
    expect(report.blastRadius).toMatchObject({
      span: { from: 'fault', to: 'rollback' },
      new: { unexpected4xx: 0, unexpected5xx: 0, wrongAnswers: 0, transportErrors: 0, otherUnexpected: 0, total: 0 },
      total: { total: expect.any(Number) },
      afterRollback: { new: { total: 0 } },
    });
    expect(report.timeline[0]).toEqual({ atMs: expect.any(Number), weight: 0, state: 'pending', type: 'created', code: 'created', reason: expect.any(String) });
  });

  it('should rehearse with DNS weights (--shift dns --ttl --stale-clients) and report the residual', async () => {
    const run = await cutover([
      'rehearse', '--scenario', 'keepalive-desync', '--json', '--shift', 'dns', '--ttl', '1s', '--stale-clients', '0.2', '--steps', '10@2s,100@2s', '--soak', '1s',
    ]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({
      scenario: 'keepalive-desync',
      shift: 'dns',
      dns: { ttlMs: 1000, staleClients: 0.2, staleClientCount: 8, clients: 40, drainIntervalMs: 1000 },
      outcome: 'rolled-back',
      finalWeight: 0,
      requestsBySide: { new: 0 },
    });
    // Caught at the gate: nothing ever reached the new side, so nothing is left to drain.
    expect(report.rollback.residual).toMatchObject({
      shift: 'dns',
      peakRequestsPerWindow: 0,
      requestsAfterRollback: 0,
      wrongAnswersAfterRollback: 0,
      activeDrain: true,
      drained: true,
      drainedAfterMs: 0,
      boundMs: 1000 + 1000 + 1000,
      withinBound: true,
      drain: { closeAfterMs: expect.any(Number), connectionsRefused: 0 },
      byClients: { ttlHonouring: 0, ttlIgnoring: 0 },
    });
  });

  it.each([
    [['rehearse', '--shift', 'pigeon'], /--shift must be one of proxy, dns, got "pigeon"/],
    [['rehearse', '--shift', 'dns', '--stale-clients', '2'], /--stale-clients must be a share from 0 to 1 \(or a percentage like 10%\), got "2"/],
    [['rehearse', '--shift', 'dns', '--ttl', 'soon'], /--ttl must be a duration like 500ms, 3s or 2m, got "soon"/],
    [['rehearse', '--ttl', '5s'], /--ttl applies to --shift dns only/],
    [['rehearse', '--shift', 'dns', '--port', '4321'], /--port names the router's port; --shift dns has no router/],
    [['rehearse', '--scenario', 'nope'], /unknown scenario "nope"; choose one of: healthy, error-spike/],
    [['rehearse', '--bogus'], /unknown option '--bogus'/],
    [['rehearse', '--steps', '50@2s,40@2s,100@2s'], /invalid plan: step 2: weights must increase, got 40 after 50/],
    [['rehearse', '--steps', '10@2s,90@2s'], /the last step must be 100%, got 90/],
    [['rehearse', '--soak', 'forever'], /--soak must be a duration like 500ms, 3s or 2m, got "forever"/],
    [['rehearse', '--port', '70000'], /--port must be between 0 and 65535, got 70000/],
    [['rehearse', '--shift', 'dns', '--no-drain', '--drain-interval', '2s'], /--drain-interval times the active drain; --no-drain turns it off/],
    [['rehearse', '--max-watch', '500ms'], /--max-watch must be at least the window \(1000 ms\), got 500 ms/],
  ])('fails with one clear line and exit 2 on bad input %#', async (args, message) => {
    const run = await cutover(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('fails with exit 2 when the router port is in use, leaving nothing running', async () => {
    blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker!.listen(0, '127.0.0.1', () => resolve((blocker!.address() as { port: number }).port)));
    const run = await cutover(['rehearse', '--port', String(port), '--json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`port ${port} is in use`));
    // The process exited by itself: every server it had started was closed.
  });

  it('should stop everything on SIGTERM and print the JSON report so far, marked interrupted (exit 143), keeping --state-dir', async () => {
    // Ctrl-C in the live view: interrupt.test.ts, in a pseudo-terminal.
    const dir = mkdtempSync(join(tmpdir(), 'cutover-cli-state-'));
    try {
      const stateDir = join(dir, 'state');
      const run = await cutover(['rehearse', '--scenario', 'healthy', '--json', '--state-dir', stateDir], {
        // Once the migration has started: the rehearsal names it for the operator commands.
        interruptOn: /: from another terminal, cutover status\|watch\|pause/,
        signal: 'SIGTERM',
        interruptAfterMs: 500,
      });
      expect(run.code).toBe(143);
      expect(run.stderr).toMatch(/SIGTERM: stopping the clients, servers and probes; the report of the run so far follows/);
      const report = JSON.parse(run.stdout);
      expect(report).toMatchObject({ scenario: 'healthy', interrupted: true, interruptedBy: 'SIGTERM', stateDir });
      // On stderr (stdout is the report alone): the id and state directory the commands take.
      expect(run.stderr).toContain(
        `cutover rehearse: migration ${report.migrationId}: from another terminal, cutover status|watch|pause|resume|abort|promote --full ${report.migrationId} --state-dir ${stateDir}\n`,
      );
      // Kept for other commands to read: the record and event log of the migration.
      expect(existsSync(join(stateDir, `${report.migrationId}.json`))).toBe(true);
      expect(existsSync(join(stateDir, `${report.migrationId}.events.jsonl`))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
