import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultSequence, loadSequenceFile, parseSequence, ProbeUsageError, resolveOptions } from '../../lambda/probe';
import { parseTarget, sameRequest, SMALL_POST_BYTES } from '../../lambda/probe/sequence';

const dir = mkdtempSync(join(tmpdir(), 'cutover-probe-seq-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('defaultSequence', () => {
  it('should build steps with different expected answers and the error step early', () => {
    const steps = defaultSequence('/health', 2048);
    expect(steps.map((s) => `${s.method} ${s.name}`)).toEqual([
      'GET health',
      'GET not-found',
      'POST oversized-post',
      'GET health-again',
      'TRACE wrong-method',
      'GET bad-request',
      'GET bad-credentials',
      'POST small-post',
      'HEAD head',
    ]);
    expect(steps[2].bodyBytes).toBe(2048);
    expect(steps[1].path).toContain('{unique}');
  });

  it('should ask for a 400, a 401 and a small successful POST', () => {
    const steps = defaultSequence('/health', 2048);
    const byName = Object.fromEntries(steps.map((s) => [s.name, s]));
    // Not a percent-encoding: parseable everywhere, undecodable by the server.
    expect(byName['bad-request'].path).toMatch(/%zz/);
    expect(byName['bad-credentials'].headers).toEqual([['Authorization', `Basic ${Buffer.from('cutover-probe:invalid').toString('base64')}`]]);
    expect(byName['small-post']).toMatchObject({ path: '/health', bodyBytes: SMALL_POST_BYTES, headers: [['Content-Type', 'application/json']] });
  });

  it('should tell identical requests from different ones', () => {
    const steps = defaultSequence('/health', 2048);
    expect(sameRequest(steps[0], steps[3])).toBe(true);
    expect(sameRequest(steps[0], steps[6])).toBe(false);
    expect(sameRequest(steps[2], steps[7])).toBe(false);
  });

  it('fails when the health path is not a path', () => {
    expect(() => defaultSequence('health', 10)).toThrow(/--path must start with "\/".*got "health"/);
    expect(() => defaultSequence('/a b', 10)).toThrow(ProbeUsageError);
  });
});

describe('parseSequence', () => {
  it('should accept an array or an object with steps, and fill defaults', () => {
    const steps = parseSequence({ steps: [{ path: '/a' }, { name: 'big', method: 'post', path: '/b?x=1', bodyBytes: 10, expectStatus: 413, headers: { 'X-Key': 'v' } }] });
    expect(steps).toEqual([{ path: '/a' }, { name: 'big', method: 'POST', path: '/b?x=1', bodyBytes: 10, expectStatus: 413, headers: { 'X-Key': 'v' } }]);
    expect(parseSequence([{ path: '/a' }, { path: '/b' }])).toHaveLength(2);
  });

  it('fails when the sequence is not a list of at least two steps', () => {
    expect(() => parseSequence('nope')).toThrow(/JSON array of steps.*got "nope"/);
    expect(() => parseSequence([{ path: '/' }])).toThrow(/between 2 and 32 steps.*got 1/);
  });

  it('fails with the step number and the bad value', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ path: 'x' }, /step 2: "path" must start with "\/".*got "x"/],
      [{ path: '/', method: 'G T' }, /step 2: "method" must be an HTTP method token.*got "G T"/],
      [{ path: '/', method: 'CONNECT' }, /step 2: "method" CONNECT/],
      [{ path: '/', bodyBytes: -1 }, /step 2: "bodyBytes" must be an integer.*got -1/],
      [{ path: '/', bodyBytes: 1.5 }, /got 1.5/],
      [{ path: '/', expectStatus: 99 }, /"expectStatus" must be a final status code.*got 99/],
      [{ path: '/', headers: { 'Content-Length': '5' } }, /header "Content-Length" is set by the probe/],
      [{ path: '/', headers: { 'X-A': 'a\r\nb' } }, /header "X-A" must be a string without control characters/],
      [{ path: '/', headers: ['x'] }, /"headers" must be an object of strings/],
      [{ path: '/', nonsense: 1 }, /unknown field "nonsense"/],
      [{ path: '/', name: 'a b' }, /"name" must be 1-64 letters.*got "a b"/],
      [7, /step 2 must be an object, got 7/],
    ];
    for (const [step, message] of cases) {
      expect(() => parseSequence([{ path: '/ok' }, step])).toThrow(message);
    }
  });

  it('fails on duplicate step names', () => {
    expect(() => parseSequence([{ name: 'a', path: '/' }, { name: 'a', path: '/x' }])).toThrow(/step 2: duplicate name "a"/);
  });
});

describe('loadSequenceFile', () => {
  it('should read a valid file', () => {
    const file = join(dir, 'ok.json');
    writeFileSync(file, JSON.stringify([{ path: '/health', expectStatus: 200 }, { path: '/missing-{unique}' }]));
    expect(loadSequenceFile(file)).toHaveLength(2);
  });

  it('fails on a missing file with its name', () => {
    expect(() => loadSequenceFile(join(dir, 'absent.json'))).toThrow(/cannot read sequence file ".*absent\.json": ENOENT/);
  });

  it('fails on bad JSON and on bad steps, naming the file', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    expect(() => loadSequenceFile(bad)).toThrow(/bad\.json" is not valid JSON/);
    const invalid = join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify([{ path: '/' }, { path: '/', bodyBytes: 'big' }]));
    expect(() => loadSequenceFile(invalid)).toThrow(/invalid\.json": sequence step 2: "bodyBytes"/);
  });
});

describe('parseTarget and resolveOptions', () => {
  it('should split the URL into where to connect and what to send', () => {
    const t = parseTarget('https://[::1]:8443/prod/', { rejectUnauthorized: true });
    expect(t).toMatchObject({ protocol: 'https:', hostname: '::1', port: 8443, hostHeader: '[::1]:8443', basePath: '/prod' });
    expect(t.servername).toBeUndefined();
    expect(parseTarget('http://example.test', { rejectUnauthorized: true })).toMatchObject({ port: 80, basePath: '', servername: 'example.test' });
  });

  it('fails on URLs the probe cannot use, showing them', () => {
    expect(() => parseTarget('not a url', { rejectUnauthorized: true })).toThrow(/absolute http:\/\/ or https:\/\/ URL, got "not a url"/);
    expect(() => parseTarget('ftp://x', { rejectUnauthorized: true })).toThrow(/got "ftp:"/);
    expect(() => parseTarget('http://x/?a=1', { rejectUnauthorized: true })).toThrow(/query or fragment/);
    expect(() => parseTarget('http://u:p@x/', { rejectUnauthorized: true })).toThrow(/credentials/);
  });

  it('fails on out-of-range numbers, showing them', () => {
    expect(() => resolveOptions({ baseUrl: 'http://127.0.0.1:1', runs: 0 })).toThrow(/runs must be an integer from 1 to 100, got 0/);
    expect(() => resolveOptions({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 1.5 })).toThrow(/timeoutMs .* got 1.5/);
    expect(() => resolveOptions({ baseUrl: 'http://127.0.0.1:1', largeBodyBytes: 0 })).toThrow(/largeBodyBytes/);
    expect(() => resolveOptions({ baseUrl: 'http://127.0.0.1:1', longPassRequests: 1001 })).toThrow(/longPassRequests must be an integer from 0 to 1000, got 1001/);
  });

  it('should fill defaults', () => {
    const { settings, steps } = resolveOptions({ baseUrl: 'http://127.0.0.1:1' });
    expect(settings).toMatchObject({ runs: 1, timeoutMs: 5000, idleMs: 250, longPassRequests: 120, controlRepeats: 2, pipelined: false, sequence: 'default' });
    expect(steps[0].path).toBe('/');
  });
});
