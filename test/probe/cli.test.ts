import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatReport, probeCommand, type ProbeCommandOptions } from '../../bin/commands/probe';
import { runProbe } from '../../lambda/probe';
import * as servers from './servers';
import type { TestServer } from './servers';

const open: TestServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
const dir = mkdtempSync(join(tmpdir(), 'cutover-probe-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(server: Promise<TestServer>): Promise<TestServer> {
  const s = await server;
  open.push(s);
  return s;
}

/** Fast settings: short idle watch, oversized body just above the test app's limit. */
const FAST: ProbeCommandOptions = { path: '/health', idleMs: '30', largeBodyBytes: String(2 * servers.BODY_LIMIT) };

async function run(url: string, options: ProbeCommandOptions): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await probeCommand(url, options, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), color: false });
  return { code, stdout, stderr };
}

describe('probeCommand', () => {
  it('should print the steps, the verdict and exit 0 on a healthy server', async () => {
    const server = await start(servers.nodeHttpServer());
    const { code, stdout, stderr } = await run(server.url, FAST);
    expect(code).toBe(0);
    expect(stdout).toMatch(/oversized-post\s+POST \/health \(16384 B\)\s+413 text\/plain #\w+\s+ok\s+ok\s+ok/);
    expect(stdout).toMatch(/Verdict: OK — ok: 9 steps answered in order on keep-alive connections \(\d+ requests on reused connections, up to 120 on one\)/);
    expect(stderr).toContain('sequential keep-alive pass');
    expect(stdout).toMatch(/^Answers: \d{3}, of which 4XX: \d+ \(mostly the probe's deliberate errors\), 5XX: 0 \(0\.0 %\)$/m);
  });

  it('should print the findings and exit 1 on a desync', async () => {
    const server = await start(servers.offByOneServer());
    const { code, stdout } = await run(server.url, FAST);
    expect(code).toBe(1);
    expect(stdout).toMatch(/DESYNC +\[sequential\] shifted-responses: .*out of step by 1/);
    expect(stdout).toMatch(/health-again\s+GET \/health\s+200 application\/json #\w+\s+>1/);
    expect(stdout).toMatch(/Verdict: DESYNC/);
  });

  it('should print one JSON object with the verdict and findings, and no progress', async () => {
    const server = await start(servers.duplicateSameWriteServer());
    const { code, stdout, stderr } = await run(server.url, { ...FAST, json: true });
    expect(code).toBe(1);
    expect(stderr).toBe('');
    const report = JSON.parse(stdout);
    expect(report.verdict).toBe('desync');
    expect(report.findings[0]).toMatchObject({ kind: expect.any(String), severity: 'desync' });
    expect(report).toHaveProperty('mismatchRate');
  });

  it('should exit 3 when the server cannot be probed', async () => {
    const server = await start(servers.silentServer());
    const { code, stdout } = await run(server.url, { ...FAST, timeoutMs: '200' });
    expect(code).toBe(3);
    expect(stdout).toMatch(/WARNING \[control\] timeout: health on a fresh connection: no response within 200 ms/);
  });

  it("should pass --long-pass-requests and --long-pass-max-ms to the probe's long pass", async () => {
    const server = await start(servers.nodeHttpServer());
    const short = await run(server.url, { ...FAST, json: true, longPassRequests: '30', longPassMaxMs: '2000' });
    expect(short.code).toBe(0);
    const report = JSON.parse(short.stdout);
    expect(report.settings).toMatchObject({ longPassRequests: 30, longPassMaxMs: 2000 });
    // The long pass's connection carries at most its 30 requests (the other passes carry fewer).
    expect(report.runReports[0].maxRequestsPerConnection).toBe(30);
    const off = await run(server.url, { ...FAST, longPassRequests: '0' });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain('no long pass');
    expect(off.stdout).toMatch(/up to \d on one\)/);
    // A time bound the pass cannot meet on a slow server: fewer requests, and a note that says so.
    const slow = await start(servers.slowServer(5, 10));
    const bounded = await run(slow.url, { ...FAST, longPassRequests: '500', longPassMaxMs: '300' });
    expect(bounded.code).toBe(0);
    expect(bounded.stdout).toMatch(/long pass 500 requests within 300 ms/);
    expect(bounded.stdout).toMatch(/the long pass sent \d+ of 500 requests within its 300 ms/);
  });

  it("should connect to --connect-to and add each --header, speaking as the URL's host", async () => {
    const server = await start(servers.nodeHttpServer());
    const port = new URL(server.url).port;
    const json = await run('http://api.cutover.test/', { ...FAST, json: true, connectTo: `127.0.0.1:${port}`, header: ['X-Cutover-Probe-Side: new', 'X-Team:probe'] });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.settings).toMatchObject({ baseUrl: 'http://api.cutover.test/', connectTo: `127.0.0.1:${port}`, headers: ['X-Cutover-Probe-Side', 'X-Team'] });
    expect(report.health.errors4xx).toBeGreaterThan(0);
    const human = await run('http://api.cutover.test/', { ...FAST, connectTo: `127.0.0.1:${port}`, header: ['X-Cutover-Probe-Side: new'] });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`Keep-Alive probe of http://api.cutover.test/ via 127.0.0.1:${port}`);
    expect(human.stdout).toContain('extra headers X-Cutover-Probe-Side');
  });

  it('should exit 2 with one clear line for usage errors', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '[{"path": "/"}, {"path": 3}]');
    const cases: Array<[string, ProbeCommandOptions, RegExp]> = [
      ['not-a-url', {}, /^cutover probe: base URL must be an absolute http:\/\/ or https:\/\/ URL, got "not-a-url"\n$/],
      ['http://127.0.0.1:1', { runs: 'abc' }, /^cutover probe: --runs must be a whole number, got "abc"\n$/],
      ['http://127.0.0.1:1', { runs: '0' }, /^cutover probe: runs must be an integer from 1 to 100, got 0\n$/],
      ['http://127.0.0.1:1', { timeoutMs: '1e3' }, /--timeout-ms must be a whole number, got "1e3"/],
      ['http://127.0.0.1:1', { sequence: join(dir, 'missing.json') }, /cannot read sequence file ".*missing\.json": ENOENT/],
      ['http://127.0.0.1:1', { sequence: bad }, /bad\.json": sequence step 2: "path" must be a string/],
      ['http://127.0.0.1:1', { path: 'health' }, /--path must start with "\/"/],
      ['http://127.0.0.1:1', { longPassRequests: '1001' }, /^cutover probe: --long-pass-requests must be a whole number from 0 to 1000, got "1001"\n$/],
      ['http://127.0.0.1:1', { longPassRequests: '-5' }, /^cutover probe: --long-pass-requests must be a whole number, got "-5"\n$/],
      ['http://127.0.0.1:1', { longPassMaxMs: '99' }, /^cutover probe: --long-pass-max-ms must be a whole number from 100 to 600000, got "99"\n$/],
      ['http://127.0.0.1:1', { longPassMaxMs: '5s' }, /^cutover probe: --long-pass-max-ms must be a whole number, got "5s"\n$/],
      ['https://api.example.com', { connectTo: 'https://alb.example.com' }, /^cutover probe: --connect-to must be a host name or IP address with an optional :port \(IPv6 in brackets\); give no scheme .*, got "https:\/\/alb\.example\.com"\n$/],
      ['https://api.example.com', { connectTo: 'alb.example.com:70000' }, /^cutover probe: --connect-to .*the port must be a whole number from 1 to 65535, got "alb\.example\.com:70000"\n$/],
      ['https://api.example.com', { header: ['X-Side new'] }, /^cutover probe: --header must be "Name: value", got "X-Side new"\n$/],
      ['https://api.example.com', { header: ['Host: elsewhere'] }, /^cutover probe: --header: header "Host" is set by the probe and cannot be given\n$/],
      ['https://api.example.com', { header: ['X-A: 1', 'x-a: 2'] }, /^cutover probe: --header "x-a" is given twice\n$/],
    ];
    for (const [url, options, message] of cases) {
      const { code, stdout, stderr } = await run(url, options);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(message);
    }
  });
});

describe('formatReport', () => {
  it('should show run counts when the probe ran more than once', async () => {
    const server = await start(servers.nodeHttpServer());
    const report = await runProbe({ baseUrl: server.url, healthPath: '/health', idleMs: 20, runs: 2, largeBodyBytes: 2 * servers.BODY_LIMIT });
    const text = formatReport(report, false);
    expect(text).toContain('Runs: 2 (ok 2, desync 0, inconclusive 0)');
    expect(text).not.toMatch(/\x1b\[/);
  });
});

describe('cutover probe (spawned)', () => {
  const entry = join(__dirname, 'cli-entry.ts');
  function spawnCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', entry, 'probe', ...args], { timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
        const code = error && typeof error.code === 'number' ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }
  const fastArgs = ['--path', '/health', '--idle-ms', '30', '--large-body-bytes', String(2 * servers.BODY_LIMIT)];

  it('should exit 0 and print JSON for a healthy server', async () => {
    const server = await start(servers.nodeHttpServer());
    const { code, stdout } = await spawnCli([server.url, ...fastArgs, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ verdict: 'ok', findings: [] });
  });

  it('should exit 1 on the off-by-one server', async () => {
    const server = await start(servers.offByOneServer());
    const { code, stdout } = await spawnCli([server.url, ...fastArgs, '--runs', '2']);
    expect(code).toBe(1);
    expect(stdout).toContain('Runs: 2 (ok 0, desync 2, inconclusive 0)');
  });

  it('should exit 2 on a usage error caught by the command or by commander', async () => {
    const badRuns = await spawnCli(['http://127.0.0.1:1', '--runs', 'many']);
    expect(badRuns.code).toBe(2);
    expect(badRuns.stderr.trim()).toBe('cutover probe: --runs must be a whole number, got "many"');
    const missing = await spawnCli([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'base-url'/);
  });

  it('should list the long-pass flags in --help, with their defaults and ranges', async () => {
    const { code, stdout } = await spawnCli(['--help']);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--long-pass-requests <n> requests sent back to back on one kept-alive connection .*\(0 to 1000; 0 turns the long pass off\) \(default: "120"\)/);
    expect(help).toMatch(/--long-pass-max-ms <ms> no long-pass request is sent after this long; .*\(100 to 600000\) \(default: "5000"\)/);
    const bad = await spawnCli(['http://127.0.0.1:1', '--long-pass-max-ms', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('cutover probe: --long-pass-max-ms must be a whole number from 100 to 600000, got "0"');
  });

  it('should take --connect-to and repeated --header flags, and list them in --help', async () => {
    const server = await start(servers.nodeHttpServer());
    const port = new URL(server.url).port;
    const { code, stdout } = await spawnCli(['http://api.cutover.test/', ...fastArgs, '--connect-to', `127.0.0.1:${port}`, '--header', 'X-A: 1', '--header', 'X-B: 2', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).settings).toMatchObject({ connectTo: `127.0.0.1:${port}`, headers: ['X-A', 'X-B'] });
    const help = (await spawnCli(['--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--connect-to <host\[:port\]> connect to this host/);
    expect(help).toMatch(/--header <name:value> extra header on every request/);
  });

  it('should exit 3 when nothing listens', async () => {
    const server = await start(servers.silentServer());
    const port = new URL(server.url).port;
    await server.close();
    open.splice(open.indexOf(server), 1);
    const { code, stdout } = await spawnCli([`http://127.0.0.1:${port}`, '--timeout-ms', '500']);
    expect(code).toBe(3);
    expect(stdout).toMatch(/unreachable: could not connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
  });
});
