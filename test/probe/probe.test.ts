import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runProbe, toProbeOutcome, type ProbeOptions, type ProbeReport } from '../../lambda/probe';
import * as servers from './servers';
import { appResponse, BODY_LIMIT, HEALTH_PATH, type TestServer } from './servers';

const open: TestServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function start(server: Promise<TestServer>): Promise<TestServer> {
  const s = await server;
  open.push(s);
  return s;
}

/** Short idle watches keep the suite fast; the oversized POST is just above the test app's limit. */
function probe(server: TestServer, extra: Partial<ProbeOptions> = {}): Promise<ProbeReport> {
  return runProbe({ baseUrl: server.url, healthPath: HEALTH_PATH, idleMs: 50, largeBodyBytes: 2 * BODY_LIMIT, ...extra });
}

const kinds = (report: ProbeReport): string[] => [...new Set(report.findings.map((f) => f.kind))];

describe('runProbe on healthy servers', () => {
  it("should pass Node's http server and see every keep-alive pass reuse the connection", async () => {
    const report = await probe(await start(servers.nodeHttpServer()), { pipelined: true });
    expect(report.verdict).toBe('ok');
    expect(report.findings).toEqual([]);
    expect(report.runReports[0].reusedRequests).toBeGreaterThanOrEqual(15);
    expect(report.unsolicitedBytes).toBe(0);
    expect(report.shiftedSteps).toBe(0);
    expect(report.mismatchRate).toBe(0);
    expect(report.steps.map((s) => s.expected)).toEqual([
      expect.stringMatching(/^200 application\/json #/),
      expect.stringMatching(/^404 text\/plain #/),
      expect.stringMatching(/^413 text\/plain #/),
      expect.stringMatching(/^200 application\/json #/),
      expect.stringMatching(/^405 text\/plain #/),
      expect.stringMatching(/^400 text\/plain #/),
      expect.stringMatching(/^401 application\/json #/),
      expect.stringMatching(/^200 application\/json #/),
      '200 application/json #empty',
    ]);
    // Every answer class but health's (sent twice) can prove a shift.
    expect(report.steps.filter((s) => !s.distinct).map((s) => s.name)).toEqual(['health', 'health-again']);
    expect(report.runReports[0].maxRequestsPerConnection).toBe(120);
    // 404 pages echo the requested path with its nonce: still one signature for the step.
    expect(new Set(report.steps[1].control).size).toBe(1);
    expect(report.steps.every((s) => s.attempts.every((a) => a.match === 'aligned'))).toBe(true);
  });

  it('should pass a server that closes after every error', async () => {
    const report = await probe(await start(servers.closeAfterErrorServer()));
    expect(report.verdict).toBe('ok');
    expect(report.notes.map((n) => n.kind)).toContain('not-reused');
  });

  it('should pass a server that rejects large bodies by closing without an answer', async () => {
    const report = await probe(await start(servers.rejectLargeByClosingServer()));
    expect(report.verdict).toBe('ok');
    expect(report.steps[2].expected).toMatch(/^no response/);
  });

  it('should pass an HTTP/1.0 server and say keep-alive was never exercised', async () => {
    const report = await probe(await start(servers.http10Server()));
    expect(report.verdict).toBe('ok');
    expect(report.notes.map((n) => n.kind)).toContain('keep-alive-not-exercised');
    expect(report.summary).toMatch(/never reused a connection/);
  });

  it('should pass a server that sends 408 and closes idle connections', async () => {
    const report = await probe(await start(servers.idle408Server(20)), { idleMs: 100 });
    expect(report.verdict).toBe('ok');
    expect(report.notes.map((n) => n.kind)).toContain('idle-timeout-408');
  });

  it('should ignore an empty line sent after a response, and say so', async () => {
    const report = await probe(await start(servers.strayCrlfServer(5)), { idleMs: 100 });
    expect(report.verdict).toBe('ok');
    expect(report.notes.map((n) => n.kind)).toContain('stray-whitespace');
  });

  it('should count every answer, none as 5XX and the deliberate errors as 4XX, in the synthetic health of a healthy server', async () => {
    const report = await probe(await start(servers.nodeHttpServer()));
    expect(report.verdict).toBe('ok');
    expect(report.health.errors5xx).toBe(0);
    // not-found, oversized-post, wrong-method, bad-request and bad-credentials: at least twice each on fresh connections.
    expect(report.health.errors4xx).toBeGreaterThanOrEqual(10);
    expect(report.health.errors4xx).toBeLessThan(report.health.requests);
    // The control pass (2 per step), the three short keep-alive passes and the long pass.
    expect(report.health.requests).toBeGreaterThan(2 * report.steps.length + 3 * (report.steps.length - 1) + 100);
    expect(report.health).toEqual(report.runReports[0].health);
  });

  it('should never call a server that answers 30 % of requests with 503 a desync, and count its 5XX', async () => {
    const server = await start(servers.random503Server(0.3, 7));
    let requests = 0;
    let errors5xx = 0;
    for (let i = 0; i < 6; i++) {
      const report = await probe(server, { runs: 2 });
      expect(report.verdict, report.summary).not.toBe('desync');
      expect(report.findings.filter((f) => f.severity === 'desync')).toEqual([]);
      // A 503 is a server error (or, where the step learned nothing else, unjudged), never another request's answer.
      const attempts = report.runReports.flatMap((r) => r.steps.flatMap((st) => st.attempts));
      for (const a of attempts.filter((x) => x.got.startsWith('503 '))) expect(['server-error', 'aligned', 'unjudged']).toContain(a.match);
      expect(report.health.requests).toBe(report.runReports.reduce((n, r) => n + r.health.requests, 0));
      requests += report.health.requests;
      errors5xx += report.health.errors5xx;
    }
    expect(requests).toBeGreaterThan(1000);
    expect(errors5xx / requests).toBeGreaterThan(0.25);
    expect(errors5xx / requests).toBeLessThan(0.35);
  }, 60_000);

  it('should still find a desync behind 30 % of 503 answers (the shifted answers are other requests\' exact ones)', async () => {
    const server = await start(servers.flakyOffByOneServer(0.3, 11));
    const report = await probe(server, { runs: 2 });
    expect(report.verdict).toBe('desync');
    expect(report.health.errors5xx).toBeGreaterThan(0);
  }, 30_000);

  it("should not take an answer of a step that got only 503 on fresh connections for another step's (static server, credentials ignored)", async () => {
    // health and health-again get only 503 on fresh connections, then the health answer in the
    // keep-alive passes, which is exactly bad-credentials' answer: unjudged, not a desync.
    const report = await probe(await start(servers.staticServerLike({ busyHealthGets: 12 })));
    expect(report.verdict, report.summary).not.toBe('desync');
    expect(report.notes.some((n) => n.kind === 'unlearned-step' && n.stepName === 'health-again')).toBe(true);
    const again = report.steps.find((st) => st.name === 'health-again')!;
    expect(again.attempts.some((a) => a.got === report.steps.find((st) => st.name === 'bad-credentials')!.expected && a.match === 'unjudged')).toBe(true);
    const overloaded = await start(servers.staticServerLike({ rate503: 0.3, seed: 5 }));
    for (let i = 0; i < 4; i++) expect((await probe(overloaded, { runs: 2 })).verdict).not.toBe('desync');
  }, 60_000);

  it('should not call random 503s a desync', async () => {
    const server = await start(servers.random503Server(0.15));
    for (let i = 0; i < 3; i++) {
      const report = await probe(server);
      expect(report.verdict).not.toBe('desync');
    }
  });

  it('should pass a slow server', async () => {
    const report = await probe(await start(servers.slowServer(5, 40)));
    expect(report.verdict).toBe('ok');
  });

  it('should pass over TLS, offering only http/1.1 by ALPN', async () => {
    const fixtures = join(__dirname, 'fixtures');
    const alpn: Array<string | false | null> = [];
    const server = https.createServer(
      { key: readFileSync(join(fixtures, 'localhost-key.pem')), cert: readFileSync(join(fixtures, 'localhost-cert.pem')), ALPNProtocols: ['h2', 'http/1.1'] },
      (req, res) => {
        alpn.push((req.socket as tls.TLSSocket).alpnProtocol);
        const answer = appResponse({ method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0], contentLength: Number(req.headers['content-length'] ?? 0) });
        res.writeHead(answer.status, Object.fromEntries(answer.headers));
        res.end(req.method === 'HEAD' ? undefined : answer.body);
        req.resume();
      },
    );
    const url = await listen(server);
    open.push({ url, close: () => closeServer(server) });
    const report = await runProbe({ baseUrl: url.replace('http:', 'https:'), healthPath: HEALTH_PATH, idleMs: 50, largeBodyBytes: 2 * BODY_LIMIT, rejectUnauthorized: false });
    expect(report.verdict).toBe('ok');
    expect(new Set(alpn)).toEqual(new Set(['http/1.1']));

    const verified = await runProbe({ baseUrl: url.replace('http:', 'https:'), healthPath: HEALTH_PATH, idleMs: 50 });
    expect(verified.verdict).toBe('inconclusive');
    // A refused certificate is told as such (the name checked and why), not as "unreachable".
    expect(verified.findings[0]).toMatchObject({ kind: 'tls-certificate', message: expect.stringMatching(/^certificate for 127\.0\.0\.1 not trusted: self-signed certificate; /) });
    expect(verified.findings.some((f) => f.kind === 'unreachable')).toBe(false);
  });

  it('should be inconclusive, not ok, against an HTTP/2-only server', async () => {
    const fixtures = join(__dirname, 'fixtures');
    const server = http2.createSecureServer({ key: readFileSync(join(fixtures, 'localhost-key.pem')), cert: readFileSync(join(fixtures, 'localhost-cert.pem')), allowHTTP1: false });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const url = await listen(server);
    open.push({ url, close: () => closeServer(server) });
    const report = await runProbe({ baseUrl: url.replace('http:', 'https:'), rejectUnauthorized: false, timeoutMs: 2000 });
    expect(report.verdict).toBe('inconclusive');
  });
});

describe('runProbe on servers with the incident class of bug', () => {
  it('should find a 413 written twice in the same write', async () => {
    const report = await probe(await start(servers.duplicateSameWriteServer()));
    expect(report.verdict).toBe('desync');
    const finding = report.findings.find((f) => f.kind === 'unsolicited-bytes');
    expect(finding).toMatchObject({ stepName: 'oversized-post', severity: 'desync' });
    expect(finding?.unsolicited).toMatch(/^HTTP\/1\.1 413 Payload Too Large\\r\\n/);
    expect(finding?.message).toMatch(/1 extra response \(413\)/);
    expect(report.unsolicitedBytes).toBeGreaterThan(0);
  });

  it('should find a duplicate that arrives while the connection is idle', async () => {
    const report = await probe(await start(servers.duplicateDelayedServer(10)), { idleMs: 100 });
    expect(report.verdict).toBe('desync');
    // Seen by the passes that watch the idle connection after the 413 (sequential, paused).
    expect(report.findings).toContainEqual(
      expect.objectContaining({ kind: 'unsolicited-bytes', stepName: 'oversized-post', message: expect.stringMatching(/while the connection was idle/) }),
    );
  });

  it('should find the permanent off-by-one queue after a 413 (the local demo bug) with its shift offset', async () => {
    const report = await probe(await start(servers.offByOneServer()));
    expect(report.verdict).toBe('desync');
    const shifted = report.findings.find((f) => f.kind === 'shifted-responses' && f.pass === 'sequential');
    expect(shifted).toMatchObject({ shiftOffset: 1, stepName: 'health-again', got: expect.stringMatching(/^413 /), expected: expect.stringMatching(/^200 /) });
    expect(report.shiftedSteps).toBeGreaterThanOrEqual(6);
    expect(report.mismatchRate).toBeGreaterThan(0);
    expect(report.steps[3].attempts.find((a) => a.pass === 'sequential')).toMatchObject({ match: 'shifted', shiftOffsets: [1], reused: true });
  });

  it('should find a server that answers 413 early and reads the body as a new request', async () => {
    const report = await probe(await start(servers.early413Server()));
    expect(report.verdict).toBe('desync');
    const finding = report.findings.find((f) => f.kind === 'unsolicited-bytes');
    expect(finding?.message).toMatch(/extra response \(404\).*request hidden in the POST body/);
    expect(finding?.unsolicited).toContain('cutover-probe-smuggled-');
  });

  it('should find junk bytes sent while idle', async () => {
    const report = await probe(await start(servers.idleJunkServer(5)), { idleMs: 100 });
    expect(report.verdict).toBe('desync');
    expect(report.findings).toContainEqual(expect.objectContaining({ kind: 'unsolicited-bytes', unsolicited: '\\x00\\x17junk!\\r\\n', unsolicitedBytes: 9 }));
  });

  it('should be inconclusive about a 408 sent on an idle connection that stays open', async () => {
    // The server's idle timer (200 ms) fires within the idle watch (400 ms) but not between a
    // response and the next request of the back-to-back passes: a 408 that crosses a request in
    // flight really does shift the connection's answers, and the probe would rightly say desync.
    // (The margins are wide so that a busy machine, with other test files running at the same
    // time, does not stretch a gap between two requests past the server's timer.)
    const report = await probe(await start(servers.idle408KeptOpenServer(200)), { idleMs: 400 });
    expect(report.verdict).toBe('inconclusive');
    expect(report.findings[0]).toMatchObject({ kind: 'unsolicited-408-kept-open', unsolicited: expect.stringMatching(/^HTTP\/1\.1 408/) });
  });

  it('should find answers out of order in the pipelined pass only', async () => {
    const server = await start(servers.outOfOrderServer(20));
    const plain = await probe(server);
    expect(plain.verdict).toBe('ok');
    const report = await probe(server, { pipelined: true });
    expect(report.verdict).toBe('desync');
    expect(report.findings.every((f) => f.pass === 'pipelined')).toBe(true);
  });
});

describe('runProbe on bugs that start late on a connection or hide in rare answers', () => {
  const late: Array<[number, servers.DoubleHow]> = [
    [6, 'same-write'],
    [21, 'next-answer'],
    [100, 'same-write'],
    [100, 'next-answer'],
  ];
  for (const [from, how] of late) {
    it(`should find a 4XX sent twice (${how}) only from request ${from} on a connection`, async () => {
      const report = await probe(await start(servers.doubleErrorFromServer(from, how)));
      expect(report.verdict).toBe('desync');
      if (from > 9) {
        // No other pass sends that many requests on one connection.
        expect(new Set(report.findings.map((f) => f.pass))).toEqual(new Set(['long']));
        expect(report.findings[0].position).toBeGreaterThanOrEqual(from);
      }
    });
  }

  it('should measure a late shift by position on the long connection', async () => {
    const report = await probe(await start(servers.doubleErrorFromServer(100, 'next-answer')));
    const shifted = report.steps.flatMap((s) => s.attempts).filter((a) => a.pass === 'long' && a.match === 'shifted');
    expect(shifted.length).toBeGreaterThanOrEqual(2);
    for (const a of shifted) {
      expect(a.position).toBeGreaterThan(100);
      expect(a.shiftOffsets).toContain(1);
      expect(a.exact).toBe(true);
    }
    expect(report.findings[0]).toMatchObject({ kind: 'shifted-responses', pass: 'long', shiftOffset: 1, message: expect.stringMatching(/from request 10\d on its connection/) });
  });

  const rare: Array<[string, () => Promise<TestServer>, string]> = [
    ['a 400', () => servers.double400Server(), 'bad-request'],
    ['a 400, shifting the connection', () => servers.double400Server('next-answer'), 'bad-request'],
    ['a 401', () => servers.double401Server(), 'bad-credentials'],
    ['a 401, shifting the connection', () => servers.double401Server('next-answer'), 'bad-credentials'],
    ['a small successful POST', () => servers.doubleSmallPostServer(), 'small-post'],
    ['a small successful POST, shifting the connection', () => servers.doubleSmallPostServer('next-answer'), 'small-post'],
  ];
  for (const [what, make, step] of rare) {
    it(`should find a server that sends ${what} answer twice`, async () => {
      const report = await probe(await start(make()));
      expect(report.verdict).toBe('desync');
      // The first evidence is on the step whose answer was doubled, or the one right after it.
      const first = report.findings.find((f) => f.pass === 'sequential');
      const names = report.steps.map((s) => s.name);
      expect([step, names[names.indexOf(step) + 1]]).toContain(first?.stepName);
    });
  }

  it('should call an answer that crossed from another connection a desync (1 answer in 10, seeded)', async () => {
    for (const seed of [1, 2, 3]) {
      const report = await probe(await start(servers.crossConnectionServer(0.1, seed)));
      expect(report.verdict).toBe('desync');
      expect(report.findings.map((f) => f.kind)).toContain('foreign-answer');
      expect(report.findings.every((f) => f.kind !== 'unsolicited-bytes')).toBe(true);
    }
  });

  it("should treat another step's exact answer on a fresh connection as desync evidence, not as an unstable control", async () => {
    // The 3rd request (not-found's first fresh connection) gets the 2nd one's answer (health's).
    const report = await probe(await start(servers.misroutedOnceServer(3)));
    expect(report.verdict).toBe('desync');
    expect(report.findings).toEqual([
      expect.objectContaining({ kind: 'foreign-answer', pass: 'control', stepName: 'not-found', got: expect.stringMatching(/^200 application\/json #/), expected: expect.stringMatching(/^404 /) }),
    ]);
    expect(report.notes.map((n) => n.kind)).not.toContain('unstable-control');
    expect(report.steps[1].control[0]).toMatch(/\(another request's answer\)$/);
    // Its own answer is still learned, so later passes judge the step.
    expect(report.steps[1].distinct).toBe(true);
  });
});

describe('runProbe on well-behaved servers that the longer sequence must not misjudge', () => {
  it('should pass a server that ends connections after 100 requests, continuing the long pass on a new one', async () => {
    const report = await probe(await start(servers.keepAliveLimitServer(100)));
    expect(report.verdict).toBe('ok');
    expect(report.runReports[0].maxRequestsPerConnection).toBe(100);
    expect(report.notes).toContainEqual(expect.objectContaining({ kind: 'not-reused', pass: 'long', message: expect.stringMatching(/after 100 requests/) }));
  });

  it('should pass a static-like server that closes after 400 and 413 and answers POST and TRACE alike', async () => {
    const report = await probe(await start(servers.staticServerLike()));
    expect(report.verdict).toBe('ok');
    expect(report.findings).toEqual([]);
    // The steps that close are left out of the long pass, so its connection lasts.
    expect(report.runReports[0].maxRequestsPerConnection).toBe(120);
    const longSteps = new Set(report.steps.filter((s) => s.attempts.some((a) => a.pass === 'long')).map((s) => s.name));
    expect(longSteps).toEqual(new Set(['health', 'not-found', 'wrong-method']));
  });

  it('should not call a few random 503s in the long pass anything but notes', async () => {
    const report = await probe(await start(servers.random503Server(0.1)));
    expect(report.verdict).not.toBe('desync');
    // Told once per step and pass, however often the long pass met them.
    const serverErrors = report.notes.filter((n) => n.kind === 'server-error' && n.pass === 'long');
    expect(new Set(serverErrors.map((n) => n.step)).size).toBe(serverErrors.length);
  });

  it('should shorten the long pass on a slow server and say how far it got, not stretch the probe', async () => {
    const report = await probe(await start(servers.slowServer(5, 10)), { longPassMaxMs: 200 });
    expect(report.verdict).toBe('ok');
    const note = report.notes.find((n) => n.kind === 'long-pass');
    expect(note?.message).toMatch(/^the long pass sent \d+ of 120 requests within its 200 ms/);
    expect(report.runReports[0].maxRequestsPerConnection).toBeLessThan(120);
  });

  it('should skip the long pass when asked to', async () => {
    const report = await probe(await start(servers.nodeHttpServer()), { longPassRequests: 0 });
    expect(report.verdict).toBe('ok');
    expect(report.steps.flatMap((s) => s.attempts).some((a) => a.pass === 'long')).toBe(false);
    expect(report.settings.longPassRequests).toBe(0);
  });
});

describe('runProbe on hostile servers', () => {
  const hostile: Array<[string, () => Promise<TestServer>, string]> = [
    ['garbage instead of a status line', servers.garbageServer, 'protocol-error'],
    ['endless headers', servers.endlessHeadersServer, 'header-too-large'],
    ['a chunked body that never ends', servers.endlessBodyServer, 'body-too-large'],
    ['a body shorter than its Content-Length', servers.stalledBodyServer, 'timeout'],
    ['a server that never answers', servers.silentServer, 'timeout'],
    ['a reset in the middle of a response', servers.resetMidResponseServer, 'connection-reset'],
  ];
  for (const [what, make, kind] of hostile) {
    it(`should end with a clear ${kind} finding on ${what}`, async () => {
      const report = await probe(await start(make()), { timeoutMs: 300 });
      expect(report.verdict).toBe('inconclusive');
      expect(report.findings[0]).toMatchObject({ kind, pass: 'control', stepName: 'health' });
      expect(report.findings[0].message.length).toBeGreaterThan(10);
      expect(report.summary).toMatch(/^inconclusive: \[control\] health/);
    });
  }

  it('should show the offending bytes of a garbage answer', async () => {
    const report = await probe(await start(servers.garbageServer()), { timeoutMs: 300 });
    expect(report.findings[0].unsolicited).toMatch(/^GARBAGE\\x00\\x01/);
  });

  it('should be inconclusive when nothing listens', async () => {
    const port = await freePort();
    const report = await runProbe({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 500 });
    expect(report.verdict).toBe('inconclusive');
    expect(report.findings[0]).toMatchObject({ kind: 'unreachable', message: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('should keep to the time budget', async () => {
    const report = await probe(await start(servers.silentServer()), { timeoutMs: 5000, maxDurationMs: 200, runs: 3 });
    expect(report.verdict).toBe('inconclusive');
    expect(report.runs).toEqual({ total: 3, ok: 0, desync: 0, inconclusive: 3 });
    expect(kinds(report)).toEqual(expect.arrayContaining(['timeout', 'deadline']));
  });
});

describe('runProbe options and aggregation', () => {
  it('should count what each run found and report desync when one backend goes bad', async () => {
    const broken = { on: false };
    const server = await start(servers.switchableServer(broken));
    const report = await probe(server, {
      runs: 2,
      onProgress: (line) => {
        if (line.startsWith('run 2/2:')) broken.on = true;
      },
    });
    expect(report.runs).toEqual({ total: 2, ok: 1, desync: 1, inconclusive: 0 });
    expect(report.verdict).toBe('desync');
    expect(report.findings.every((f) => f.run === 2)).toBe(true);
    expect(report.summary).toMatch(/^desync in 1\/2 runs/);
  });

  it('should run a user sequence and flag a step whose status differs from what the user expects', async () => {
    const server = await start(servers.nodeHttpServer());
    const report = await probe(server, {
      sequence: [
        { name: 'health', path: HEALTH_PATH, expectStatus: 200 },
        { name: 'big', method: 'POST', path: HEALTH_PATH, bodyBytes: 100, expectStatus: 413 },
        { name: 'gone', path: '/gone-{unique}' },
      ],
    });
    expect(report.settings.sequence).toBe('custom');
    expect(report.verdict).toBe('inconclusive');
    expect(report.findings).toEqual([
      expect.objectContaining({ kind: 'unexpected-status', stepName: 'big', expected: '413', got: expect.stringMatching(/^200 /) }),
    ]);
  });

  it('should be inconclusive when the answers cannot be told apart', async () => {
    const server = await start(servers.nodeHttpServer());
    const report = await probe(server, { sequence: [{ path: HEALTH_PATH }, { path: `${HEALTH_PATH}?again=1` }] });
    expect(report.verdict).toBe('inconclusive');
    expect(kinds(report)).toEqual(['weak-sequence']);
  });

  it('should map a report to the core outcome', async () => {
    const report = await probe(await start(servers.offByOneServer()));
    expect(toProbeOutcome(report, 'new', 1234)).toEqual({
      side: 'new',
      verdict: 'desync',
      atMs: 1234,
      summary: report.summary,
      findings: report.findings.length,
      health: { requests: report.health.requests, errors4xx: report.health.errors4xx, errors5xx: 0 },
    });
    expect(report.health.requests).toBeGreaterThan(0);
    expect(report.health.errors4xx).toBeGreaterThan(0);
  });

  it('should reject bad options before connecting', async () => {
    await expect(runProbe({ baseUrl: 'ftp://127.0.0.1/' })).rejects.toThrow(/http: or https:, got "ftp:"/);
    await expect(runProbe({ baseUrl: 'http://127.0.0.1:1', runs: 101 })).rejects.toThrow(/runs .* got 101/);
  });
});

function listen(server: net.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`));
  });
}

function closeServer(server: https.Server | http2.Http2SecureServer): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  const url = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return Number(new URL(url).port);
}
