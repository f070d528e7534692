/**
 * Ctrl-C in `cutover rehearse`: the guard's rules without a process, then the live view in a real
 * pseudo-terminal, where log-update's cursor handling used to let the signal kill the process
 * before the summary (the piped tests in cli.test.ts never draw the live view).
 */
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InterruptGuard, type InterruptSignal, type SignalSource } from '../../rehearsal/interrupt';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'cli.ts');
const TSX_CLI = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const SCRIPT = '/usr/bin/script';

function fakeProcess(): SignalSource & { send(signal: InterruptSignal): void; count(): number } {
  const emitter = new EventEmitter();
  return {
    on: (signal, listener) => emitter.on(signal, listener),
    off: (signal, listener) => emitter.off(signal, listener),
    send: (signal) => emitter.emit(signal, signal),
    count: () => emitter.listenerCount('SIGINT') + emitter.listenerCount('SIGTERM'),
  };
}

describe('InterruptGuard', () => {
  it('aborts on the first Ctrl-C, takes a repeat within the grace for the same one, and exits at the second', () => {
    const source = fakeProcess();
    let now = 1000;
    const first: InterruptSignal[] = [];
    const second: Array<[InterruptSignal, number]> = [];
    const guard = new InterruptGuard({ source, now: () => now, repeatGraceMs: 500, onFirst: (s) => first.push(s), onSecond: (s, code) => second.push([s, code]) }).install();
    expect(source.count()).toBe(2);
    expect(guard.exitCode()).toBe(0);

    source.send('SIGINT');
    expect(guard.signal.aborted).toBe(true);
    expect(guard.signal.reason).toBe('SIGINT');
    expect([first, guard.received, guard.exitCode()]).toEqual([['SIGINT'], 'SIGINT', 130]);
    // The same Ctrl-C forwarded by npm and tsx, 30 ms later: still the first.
    now += 30;
    source.send('SIGINT');
    expect(second).toEqual([]);
    // The listeners stay in place until the run is over (`once` let signal-exit kill the process).
    expect(source.count()).toBe(2);
    now += 600;
    source.send('SIGINT');
    expect(second).toEqual([['SIGINT', 130]]);

    guard.uninstall();
    expect(source.count()).toBe(0);
  });

  it('exits 143 on SIGTERM, and a SIGTERM after a Ctrl-C is a second signal at once', () => {
    const source = fakeProcess();
    const second: Array<[InterruptSignal, number]> = [];
    const term = new InterruptGuard({ source, onSecond: (s, code) => second.push([s, code]) }).install();
    source.send('SIGTERM');
    expect(term.exitCode()).toBe(143);
    term.uninstall();

    const both = new InterruptGuard({ source, now: () => 0, onSecond: (s, code) => second.push([s, code]) }).install();
    source.send('SIGINT');
    source.send('SIGTERM');
    expect(second).toEqual([['SIGTERM', 143]]);
    both.uninstall();
  });
});

const hasScript = spawnSync(SCRIPT, ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasScript) console.warn(`skipped: the pseudo-terminal test of Ctrl-C needs ${SCRIPT} (util-linux)`);

describe.skipIf(!hasScript)('cutover rehearse in a terminal (pty via script)', () => {
  it('stops cleanly on Ctrl-C in the live view: summary printed, cursor shown, exit 130', async () => {
    const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;
    // A window size, or log-update draws nothing on a 0x0 terminal; exec, so that the shell is
    // not in the way of the signal or the exit code.
    const command = `stty rows 40 cols 200; exec ${[process.execPath, TSX_CLI, CLI, 'rehearse', '--steps', '10@2s,100@2s', '--soak', '1s'].map(quote).join(' ')}`;
    const child = spawn(SCRIPT, ['-qfec', command, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let sent = false;
    const result = await new Promise<{ code: number | null }>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        // Once the panel is drawn, type Ctrl-C: the terminal turns it into SIGINT for the whole
        // foreground process group (tsx's parent and the CLI), as in a real terminal.
        if (!sent && /last 1s/.test(output)) {
          sent = true;
          child.stdin.write('\u0003');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      // Bounded: a hung CLI fails the test instead of hanging the suite.
      const killer = setTimeout(() => child.kill('SIGKILL'), 45_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(killer);
        resolve({ code });
      });
    });
    const text = output.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
    expect(sent).toBe(true);
    expect(text).toMatch(/Ctrl-C: stopping the clients, servers and probes; the summary of the run so far follows/);
    expect(text).toMatch(/Summary — healthy/);
    expect(text).toMatch(/interrupted \(Ctrl-C\): the run so far/);
    expect(text).toMatch(/state {13}not kept: a temporary directory, removed at the end/);
    // The cursor the live view hid is shown again.
    expect(output.lastIndexOf('\u001b[?25h')).toBeGreaterThan(output.lastIndexOf('\u001b[?25l'));
    expect(result.code).toBe(130);
  });
});
