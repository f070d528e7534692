/**
 * The dashboard's server on a real loopback port over a state directory: the API, the event
 * streams, the control commands (through the command inbox to a running engine loop), the
 * refusals (read-only, no token, unknown migration or command, bad input) and the CLI's errors.
 */
import { request } from 'node:http';
import { createServer } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { dashboardCommand } from '../../bin/commands/dashboard';
import { MigrationStatus } from '../../lambda/core/model';
import type { ListView, MigrationView } from '../../dashboard/view';
import { fakeEngine, tempDir, writeMigration } from '../ops/helpers';
import { readEvents, startDashboard, T0, writeJudgedMigration, type Running } from './helpers';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function stateDir(): string {
  const { dir, remove } = tempDir('cutover-dashboard-');
  cleanups.push(remove);
  return dir;
}

async function dashboard(dir: string, options: Parameters<typeof startDashboard>[1] = {}): Promise<Running> {
  const running = await startDashboard(dir, options);
  cleanups.push(running.close);
  return running;
}

function post(d: Running, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${d.base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Cutover-Token': d.server.token, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('dashboard server: reading', () => {
  it('should list the migrations and serve one migration\'s view built from its event log', async () => {
    const dir = stateDir();
    await writeJudgedMigration(dir, 'rehearsal-a', { rolledBack: true });
    await writeMigration(dir, 'rehearsal-b', MigrationStatus.BAKING);
    const d = await dashboard(dir);

    const list = (await (await fetch(`${d.base}/api/migrations`)).json()) as ListView;
    expect(list.migrations.map((m) => [m.id, m.status])).toEqual(
      expect.arrayContaining([
        ['rehearsal-a', 'rolled-back'],
        ['rehearsal-b', 'baking'],
      ]),
    );

    const view = (await (await fetch(`${d.base}/api/migrations/rehearsal-a`)).json()) as MigrationView;
    expect(view.state).toMatchObject({ id: 'rehearsal-a', status: 'rolled-back', weight: 0, stepWeights: [10, 50, 100] });
    // Each change of weight, then the last weight held until the record's last update.
    expect(view.weight.map((p) => [p.atMs - T0, p.weight])).toEqual([
      [1000, 0],
      [2000, 10],
      [4000, 50],
      [6000, 0],
      [7000, 0],
    ]);
    // One point per judged window; the probes of both events, the desync with its raw findings.
    expect(view.windows).toHaveLength(4);
    expect(view.windows.at(-1)).toMatchObject({ newRequests: 210, newRate5xx: 3 / 210, oldRate5xx: 0, slowThresholdMs: 190 });
    expect(view.evidence.at(-1)).toMatchObject({ cusum5xx: 2, threshold: Math.log(100_000) });
    expect(view.probes.at(-1)).toMatchObject({ verdict: 'desync', findings: 3, summary: expect.stringContaining('<script>') });
    expect(view.capacity.at(-1)).toMatchObject({ current: 5, pinned: 5 });
    expect(view.residual).toMatchObject({ requestsAfterRollback: 12, wrongAnswersBound: true, drained: true, drainedAfterMs: 4000 });
    expect(view.decisions.at(-2)).toMatchObject({ type: 'rolled-back', code: 'probe-desync' });
  });

  it('should answer 404 for an unknown migration (view and stream) and for an unknown path', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const d = await dashboard(dir);
    for (const path of ['/api/migrations/nope', '/api/migrations/nope/stream', '/api/nothing', '/assets/secret.txt', '/assets/index.html']) {
      const response = await fetch(`${d.base}${path}`);
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as { error: { message: string } }).error.message).not.toBe('');
    }
    const unknown = (await (await fetch(`${d.base}/api/migrations/nope`)).json()) as { error: { code: string; message: string } };
    expect(unknown.error).toEqual({ code: 'unknown-migration', message: expect.stringContaining('no migration "nope"') });
  });

  it('should serve the page and its assets under a strict CSP, gzipped when asked, and refuse other host names', async () => {
    const dir = stateDir();
    const d = await dashboard(dir, { readOnly: true });
    const page = await fetch(`${d.base}/migrations/x`);
    expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'self'/);
    const html = await page.text();
    expect(html).toContain('<meta name="cutover-read-only" content="true">');
    expect(html).not.toMatch(/https?:\/\//);

    const raw = await new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      const req = request(`${d.base}/assets/uPlot.iife.min.js`, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(raw.body.length).toBeLessThan(30_000);
    expect(gunzipSync(raw.body).toString()).toContain('uPlot');

    // A page from elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing.
    const port = new URL(d.base).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/migrations', headers: { Host: `attacker.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });

  it('should refuse a rebinding Host on any loopback address, and answer IP addresses and localhost in any case', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    // 127.0.0.2 is loopback too, but was not spelled as such: the check must not depend on it.
    const d = await dashboard(dir, { host: '127.0.0.2' });
    const port = new URL(d.base).port;
    const statusFor = (hostHeader: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.2', port, path: '/api/migrations', headers: { Host: hostHeader } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await statusFor(`attacker.example:${port}`)).toBe(421);
    expect(await statusFor(`127.0.0.2:${port}`)).toBe(200);
    expect(await statusFor(`LOCALHOST:${port}`)).toBe(200);
  });
});

describe('dashboard server: live updates', () => {
  it('should push a changed view over server-sent events without a new request', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const engine = fakeEngine(dir, 'rehearsal-a');
    cleanups.push(() => engine.stop());
    const d = await dashboard(dir);
    const url = `${d.base}/api/migrations/rehearsal-a/stream`;

    const seen = readEvents(url, (e) => e.event === 'view' && (e.data as MigrationView).state.status === 'paused');
    // The first view arrives at once; the pause then changes the log and a second view follows.
    await new Promise((r) => setTimeout(r, 300));
    const outcome = await d.source.command('rehearsal-a', 'pause', 'from the test');
    expect(outcome.applied).toBe(true);
    const events = await seen;
    const statuses = events.filter((e) => e.event === 'view').map((e) => (e.data as MigrationView).state.status);
    expect(statuses[0]).toBe('baking');
    expect(statuses.at(-1)).toBe('paused');
    expect((events.at(-1)!.data as MigrationView).decisions.at(-1)).toMatchObject({ type: 'paused', reason: 'from the test' });

    const list = await readEvents(`${d.base}/api/stream`, (e) => e.event === 'view');
    expect((list[0]!.data as ListView).migrations[0]).toMatchObject({ id: 'rehearsal-a', status: 'paused', live: true });
  });
});

describe('dashboard server: commands', () => {
  it('should carry a command to the running rehearsal with the token, and answer a refusal with 409', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const engine = fakeEngine(dir, 'rehearsal-a');
    cleanups.push(() => engine.stop());
    const d = await dashboard(dir);

    const paused = await post(d, '/api/migrations/rehearsal-a/pause', { reason: 'checking a report' });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ command: 'pause', applied: true, status: 'paused', reason: 'checking a report' });
    const again = await post(d, '/api/migrations/rehearsal-a/pause', {});
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ applied: false, refusal: expect.stringContaining('cannot pause') });
    const promoted = await post(d, '/api/migrations/rehearsal-a/promote', '');
    expect(await promoted.json()).toMatchObject({ command: 'promote', applied: true, reason: 'operator promote (cutover dashboard)' });
  });

  it('should refuse commands without the token, with bad input, for unknown commands and migrations', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const d = await dashboard(dir);
    const cases: [string, Promise<Response>, number, string][] = [
      ['no token', post(d, '/api/migrations/rehearsal-a/abort', {}, { 'X-Cutover-Token': '' }), 403, 'bad-token'],
      ['wrong token', post(d, '/api/migrations/rehearsal-a/abort', {}, { 'X-Cutover-Token': 'x'.repeat(48) }), 403, 'bad-token'],
      ['teardown', post(d, '/api/migrations/rehearsal-a/teardown', {}), 404, 'unknown-command'],
      ['not JSON', post(d, '/api/migrations/rehearsal-a/abort', '{reason'), 400, 'bad-request'],
      ['not an object', post(d, '/api/migrations/rehearsal-a/abort', '[1]'), 400, 'bad-request'],
      ['long reason', post(d, '/api/migrations/rehearsal-a/abort', { reason: 'x'.repeat(501) }), 400, 'bad-request'],
      ['form post', post(d, '/api/migrations/rehearsal-a/abort', 'reason=x', { 'Content-Type': 'application/x-www-form-urlencoded' }), 415, 'bad-request'],
      ['unknown migration', post(d, '/api/migrations/nope/abort', {}), 404, 'unknown-migration'],
      // No rehearsal ever took commands here: the inbox says it cannot deliver (withdrawn, nothing applied).
      ['no rehearsal', post(d, '/api/migrations/rehearsal-a/abort', {}), 503, 'not-taken'],
    ];
    for (const [what, response, status, code] of cases) {
      const answer = await response;
      const body = (await answer.json()) as { error?: { code: string; message: string } };
      expect([what, answer.status, body.error?.code]).toEqual([what, status, code]);
      expect(body.error!.message.length).toBeGreaterThan(10);
    }
  }, 15_000);

  it('should refuse every command when read-only, even with the token', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const engine = fakeEngine(dir, 'rehearsal-a');
    cleanups.push(() => engine.stop());
    const d = await dashboard(dir, { readOnly: true });
    for (const command of ['pause', 'resume', 'promote', 'abort']) {
      const answer = await post(d, `/api/migrations/rehearsal-a/${command}`, {});
      expect(answer.status).toBe(403);
      expect(await answer.json()).toEqual({ error: { code: 'read-only', message: expect.stringContaining('--read-only') } });
    }
    expect(engine.taken).toEqual([]);
    expect((await d.source.status('rehearsal-a')).status).toBe('baking');
  });
});

describe('cutover dashboard (the command)', () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), color: false } };
  }
  const flags = (over: Record<string, unknown>) => ({ port: '0', host: '127.0.0.1', interval: '1s', ...over });

  it('should print the URL with its token, serve until stopped, and exit 0', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const { out, io: base } = io();
    const stop = new AbortController();
    let listening = '';
    const done = dashboardCommand(flags({ stateDir: dir, readOnly: true }), { ...base, signal: stop.signal, onListening: (url) => (listening = url) });
    await expect.poll(() => listening, { timeout: 5000 }).not.toBe('');
    expect(out.join('')).toMatch(/^Cutover dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}\n {2}read-only/);
    expect((await fetch(new URL('/api/migrations', listening))).status).toBe(200);
    stop.abort();
    expect(await done).toBe(0);
    await expect(fetch(new URL('/api/migrations', listening))).rejects.toThrow();
  });

  it('should exit 2 on a bad port, a bad host, a port in use and a missing state directory', async () => {
    const dir = stateDir();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => taken.close(r)));
    const busy = String((taken.address() as { port: number }).port);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ port: '70000' }, /--port must be a whole number from 0 to 65535 \(0 = any free port\), got "70000"/],
      [{ port: 'http' }, /--port must be a whole number/],
      [{ host: ' ' }, /--host must be an address/],
      [{ interval: '10ms' }, /--interval must be at least 100ms/],
      [{ port: busy }, new RegExp(`127\\.0\\.0\\.1:${busy} is in use; choose another --port`)],
      [{ stateDir: `${dir}/missing` }, /state directory .*missing does not exist/],
    ];
    for (const [over, message] of cases) {
      const { err, io: base } = io();
      const code = await dashboardCommand(flags({ stateDir: dir, ...over }), { ...base, signal: AbortSignal.abort() });
      expect([over, code]).toEqual([over, 2]);
      expect(err.join('')).toMatch(message);
    }
  });
});
