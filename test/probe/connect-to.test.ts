/**
 * Probing one side of a fleet migration: `connectTo` (connect to one address, speak as the URL's
 * host: Host header, SNI and certificate check), the target's extra headers, their validation,
 * certificate failures reported as such, and the 4XX answers counted in the synthetic health.
 *
 * The TLS server uses the committed test certificate for `api.cutover.test` (fixtures/README.md
 * says how to regenerate it). `.test` names never resolve, so a probe that connected to the URL's
 * host instead of `connectTo` could not pass.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConnectTo, checkTargetHeaders, resolveOptions, runProbe, toProbeOutcome, ProbeUsageError, type ProbeOptions } from '../../lambda/probe';
import { appResponse, BODY_LIMIT, HEALTH_PATH } from './servers';

const CERT = readFileSync(join(__dirname, 'fixtures', 'api.cutover.test-cert.pem'));
const KEY = readFileSync(join(__dirname, 'fixtures', 'api.cutover.test-key.pem'));

/** What the server saw of one request. */
interface Seen {
  readonly host: string | undefined;
  readonly probeId: string;
  readonly headers: Readonly<Record<string, string[]>>;
}

interface RecordingServer {
  readonly port: number;
  /** Every request, in arrival order. */
  readonly requests: Seen[];
  /** The TLS server names (SNI) of every connection (https only). */
  readonly servernames: Array<string | false | null>;
  /** Statuses the server wrote. */
  readonly statuses: number[];
  close(): Promise<void>;
}

const open: RecordingServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** The test app (servers.ts) on node:http or node:https, on 127.0.0.1, recording what it sees. */
async function recordingServer(secure = false): Promise<RecordingServer> {
  const requests: Seen[] = [];
  const statuses: number[] = [];
  const servernames: Array<string | false | null> = [];
  const handler: http.RequestListener = (req, res) => {
    const headers: Record<string, string[]> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      (headers[name] ??= []).push(req.rawHeaders[i + 1]!);
    }
    requests.push({ host: req.headers.host, probeId: String(req.headers['x-probe-id'] ?? ''), headers });
    const path = (req.url ?? '/').split('?')[0]!;
    const answer = appResponse({ method: req.method ?? 'GET', path, contentLength: Number(req.headers['content-length'] ?? '0'), headers: req.headers });
    statuses.push(answer.status);
    res.writeHead(answer.status, answer.reason, Object.fromEntries(answer.headers.map(([n, v]) => [n, v])));
    res.end(req.method === 'HEAD' ? undefined : answer.body);
    req.resume();
  };
  const server = secure ? https.createServer({ key: KEY, cert: CERT }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  if (secure) server.on('secureConnection', (socket: tls.TLSSocket) => servernames.push(socket.servername));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const recording: RecordingServer = {
    port: (server.address() as net.AddressInfo).port,
    requests,
    servernames,
    statuses,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(recording);
  return recording;
}

/** Fast settings against the test app: short idle watch, a short long pass, the oversized POST just over its limit. */
const FAST: Omit<ProbeOptions, 'baseUrl'> = { healthPath: HEALTH_PATH, idleMs: 30, longPassRequests: 30, largeBodyBytes: 2 * BODY_LIMIT, timeoutMs: 3000 };

describe('connectTo over plain HTTP', () => {
  it("should connect to the given address and send the URL's host as Host", async () => {
    const server = await recordingServer();
    const report = await runProbe({ ...FAST, baseUrl: 'http://api.cutover.test/', connectTo: `127.0.0.1:${server.port}` });
    expect(report.verdict).toBe('ok');
    expect(report.settings.connectTo).toBe(`127.0.0.1:${server.port}`);
    expect(server.requests.length).toBeGreaterThan(20);
    expect(new Set(server.requests.map((r) => r.host))).toEqual(new Set(['api.cutover.test']));
  });

  it("should take the URL's port when connectTo gives none, and keep it in Host", async () => {
    const server = await recordingServer();
    const report = await runProbe({ ...FAST, baseUrl: `http://api.cutover.test:${server.port}/`, connectTo: '127.0.0.1' });
    expect(report.verdict).toBe('ok');
    expect(new Set(server.requests.map((r) => r.host))).toEqual(new Set([`api.cutover.test:${server.port}`]));
  });

  it('should name the connectTo address and the URL host when nothing listens there', async () => {
    const server = await recordingServer();
    const port = server.port;
    await open.pop()!.close();
    const report = await runProbe({ ...FAST, baseUrl: 'http://api.cutover.test/', connectTo: `127.0.0.1:${port}` });
    expect(report.verdict).toBe('inconclusive');
    expect(report.findings[0]).toMatchObject({
      kind: 'unreachable',
      message: expect.stringMatching(new RegExp(`^could not connect to 127\\.0\\.0\\.1:${port} \\(connectTo, for api\\.cutover\\.test\\): ECONNREFUSED`)),
    });
  });
});

describe("the target's extra headers", () => {
  it('should send them on every request, in every pass', async () => {
    const server = await recordingServer();
    const report = await runProbe({ ...FAST, baseUrl: `http://127.0.0.1:${server.port}/`, headers: { 'X-Cutover-Probe-Side': 'new' }, pipelined: true });
    expect(report.verdict).toBe('ok');
    expect(report.settings.headers).toEqual(['X-Cutover-Probe-Side']);
    // Passes 0 to 5 (control, sequential, immediate, paused, pipelined, long) all carried it.
    expect(new Set(server.requests.map((r) => r.probeId.split('.')[1]))).toEqual(new Set(['0', '1', '2', '3', '4', '5']));
    for (const r of server.requests) expect(r.headers['x-cutover-probe-side']).toEqual(['new']);
  });

  it("should leave a header out of a step that sets it itself (the bad-credentials step's Authorization)", async () => {
    const server = await recordingServer();
    await runProbe({ ...FAST, baseUrl: `http://127.0.0.1:${server.port}/`, headers: { authorization: 'Bearer probe-token' }, longPassRequests: 0 });
    const byStep = (i: number) => server.requests.filter((r) => r.probeId.split('.')[2] === String(i));
    // Step 6 of the default sequence is bad-credentials.
    expect(byStep(6).length).toBeGreaterThan(0);
    for (const r of byStep(6)) expect(r.headers.authorization).toEqual([`Basic ${Buffer.from('cutover-probe:invalid').toString('base64')}`]);
    for (const r of byStep(0)) expect(r.headers.authorization).toEqual(['Bearer probe-token']);
  });
});

describe('connectTo over TLS', () => {
  it('should send the URL host by SNI and as Host, and check the certificate against it, not the address', async () => {
    const server = await recordingServer(true);
    const report = await runProbe({ ...FAST, baseUrl: 'https://api.cutover.test/', connectTo: `127.0.0.1:${server.port}`, ca: CERT });
    expect(report.findings).toEqual([]);
    expect(report.verdict).toBe('ok');
    expect(new Set(server.servernames)).toEqual(new Set(['api.cutover.test']));
    expect(new Set(server.requests.map((r) => r.host))).toEqual(new Set(['api.cutover.test']));
  });

  it('should report an untrusted certificate as such, naming the host name checked and the reason', async () => {
    const server = await recordingServer(true);
    const report = await runProbe({ ...FAST, baseUrl: 'https://api.cutover.test/', connectTo: `127.0.0.1:${server.port}` });
    expect(report.verdict).toBe('inconclusive');
    expect(report.findings.map((f) => f.kind)).toEqual(['tls-certificate']);
    expect(report.findings[0]!.message).toBe(
      `certificate for api.cutover.test at 127.0.0.1:${server.port} not trusted: self-signed certificate; pass NODE_EXTRA_CA_CERTS=<file> to trust a private CA`,
    );
    expect(report.summary).toContain('not trusted: self-signed certificate');
    expect(server.requests).toEqual([]);
  });

  it('should report a certificate for another name as such, even when the CA is trusted', async () => {
    const server = await recordingServer(true);
    const report = await runProbe({ ...FAST, baseUrl: 'https://other.cutover.test/', connectTo: `127.0.0.1:${server.port}`, ca: CERT });
    expect(report.verdict).toBe('inconclusive');
    expect(report.findings.map((f) => f.kind)).toEqual(['tls-certificate']);
    expect(report.findings[0]!.message).toMatch(
      new RegExp(
        `^certificate for other\\.cutover\\.test at 127\\.0\\.0\\.1:${server.port} does not match the name: .*other\\.cutover\\.test.*DNS:api\\.cutover\\.test.*` +
          "\\(checked against the URL's host name, not the connectTo address\\)$",
      ),
    );
    // Without connectTo the same check, and no word about it.
    const direct = await runProbe({ ...FAST, baseUrl: `https://127.0.0.1:${server.port}/`, ca: CERT });
    expect(direct.findings.map((f) => f.kind)).toEqual(['tls-certificate']);
    expect(direct.findings[0]!.message).toMatch(/^certificate for 127\.0\.0\.1 does not match the name: IP: 127\.0\.0\.1 is not in the cert's list: ?$/);
    expect(server.requests).toEqual([]);
  });

  it('should check nothing with rejectUnauthorized: false', async () => {
    const server = await recordingServer(true);
    const report = await runProbe({ ...FAST, baseUrl: 'https://other.cutover.test/', connectTo: `127.0.0.1:${server.port}`, rejectUnauthorized: false });
    expect(report.verdict).toBe('ok');
    expect(new Set(server.servernames)).toEqual(new Set(['other.cutover.test']));
  });
});

describe('validation of connectTo and headers', () => {
  it.each([
    ['alb-new-123.eu-west-1.elb.amazonaws.com', { host: 'alb-new-123.eu-west-1.elb.amazonaws.com' }],
    ['alb.example.com:8443', { host: 'alb.example.com', port: 8443 }],
    ['10.0.3.7:443', { host: '10.0.3.7', port: 443 }],
    ['[2001:db8::7]:65535', { host: '2001:db8::7', port: 65535 }],
    ['[::1]', { host: '::1' }],
    ['localhost:1', { host: 'localhost', port: 1 }],
  ])('should accept %s', (value, expected) => {
    expect(parseConnectTo(value)).toEqual(expected);
  });

  it.each([
    ['', /it is empty/],
    ['https://alb.example.com', /give no scheme/],
    ['alb.example.com/health', /give no path/],
    ['user@alb.example.com', /give no path, query, user name or spaces/],
    ['alb example.com', /spaces/],
    ['alb.example.com:0', /port must be a whole number from 1 to 65535/],
    ['alb.example.com:65536', /port must be a whole number from 1 to 65535/],
    ['alb.example.com:http', /port must be a whole number/],
    ['alb.example.com:', /port must be a whole number/],
    ['2001:db8::7', /write an IPv6 address in brackets/],
    ['[2001:db8::7', /no closing bracket/],
    ['[10.0.0.1]:80', /is not an IPv6 address/],
    ['[::1]x', /only :port may follow/],
    ['999.0.0.1', /"999\.0\.0\.1" is not an IPv4 address/],
    ['-alb.example.com', /is not a host name/],
    ['alb..example.com', /is not a host name/],
  ])('should refuse %j', (value, message) => {
    expect(() => parseConnectTo(value)).toThrow(ProbeUsageError);
    expect(() => parseConnectTo(value)).toThrow(message);
    // The engine's own error names the option, says what is wrong and shows the value.
    let thrown = '';
    try {
      resolveOptions({ baseUrl: 'https://api.example.com/', connectTo: value });
    } catch (error) {
      thrown = (error as Error).message;
    }
    expect(thrown.startsWith('connectTo must be a host name or IP address with an optional :port (IPv6 in brackets); ')).toBe(true);
    expect(thrown.endsWith(`, got ${JSON.stringify(value)}`)).toBe(true);
  });

  it('should refuse a connectTo that is not a string', () => {
    expect(() => resolveOptions({ baseUrl: 'https://api.example.com/', connectTo: 443 as never })).toThrow(/connectTo must be a host name .*, got 443/);
  });

  it.each([
    [{ 'X Side': 'new' }, /invalid header name "X Side"/],
    [{ 'X-Side:': 'new' }, /invalid header name "X-Side:"/],
    [{ 'X-Side': 'new\r\nX-Injected: 1' }, /header "X-Side" must be a string .* without CR, LF or other control characters/],
    [{ 'X-Side': 'a\nb' }, /without CR, LF/],
    [{ 'X-Side': 'a\u0000b' }, /without CR, LF/],
    [{ 'X-Side': 3 }, /header "X-Side" must be a string/],
    [{ Host: 'elsewhere.example.com' }, /header "Host" is set by the probe and cannot be given/],
    [{ 'content-length': '0' }, /header "content-length" is set by the probe/],
    [{ 'Transfer-Encoding': 'chunked' }, /header "Transfer-Encoding" is set by the probe/],
    [{ Connection: 'close' }, /header "Connection" is set by the probe/],
    [{ 'X-Cutover-Probe': '0' }, /header "X-Cutover-Probe" is set by the probe/],
    [{ 'X-Side': 'a', 'x-side': 'b' }, /header "x-side" is given twice/],
    [Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, 'v'])), /at most 20 headers, got 21/],
    [['X-Side', 'new'], /headers must be an object of header names and string values/],
  ])('should refuse headers %j', (headers, message) => {
    expect(() => checkTargetHeaders(headers)).toThrow(ProbeUsageError);
    expect(() => resolveOptions({ baseUrl: 'https://api.example.com/', headers: headers as never })).toThrow(message);
  });

  it('should accept token names and values with tabs, spaces and obs-text', () => {
    expect(checkTargetHeaders({ 'X-Cutover-Probe-Side': 'new', "X-Weird_Name!#$%&'*+.^`|~": 'a b\tc\u00e9' })).toEqual([
      ['X-Cutover-Probe-Side', 'new'],
      ["X-Weird_Name!#$%&'*+.^`|~", 'a b\tc\u00e9'],
    ]);
  });
});

describe('4XX answers in the synthetic health', () => {
  it("should count every 4XX answer, the probe's deliberate ones included, and carry them into the outcome", async () => {
    const server = await recordingServer();
    const report = await runProbe({ ...FAST, baseUrl: `http://127.0.0.1:${server.port}/`, runs: 2 });
    expect(report.verdict).toBe('ok');
    const written4xx = server.statuses.filter((s) => s >= 400 && s < 500).length;
    // The default sequence asks for a 404, a 413, a 405, a 400 and a 401, twice each on fresh connections alone.
    expect(report.health.errors4xx).toBeGreaterThanOrEqual(2 * 2 * 5);
    expect(report.health).toEqual({ requests: server.statuses.length, errors4xx: written4xx, errors5xx: 0 });
    expect(report.runReports.reduce((n, r) => n + r.health.errors4xx, 0)).toBe(written4xx);
    expect(toProbeOutcome(report, 'new', 1).health).toEqual({ requests: server.statuses.length, errors4xx: written4xx, errors5xx: 0 });
  });
});
