/**
 * The probe marker: every request the probe sends carries `X-Cutover-Probe: 1` (the smuggled one
 * in the oversized body too), and `isProbeRequest` recognises it in the usual header shapes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PROBE_MARKER_HEADER, PROBE_MARKER_VALUE, isProbeRequest, parseSequence, runProbe } from '../../lambda/probe';
import { appResponse, BODY_LIMIT, HEALTH_PATH, rawServer, serialize, type RawRequest, type TestServer } from './servers';

const open: TestServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

describe('isProbeRequest', () => {
  it('should find the marker whatever the case of the header name, in every usual shape', () => {
    expect(PROBE_MARKER_HEADER).toBe('x-cutover-probe');
    expect(PROBE_MARKER_VALUE).toBe('1');
    expect(isProbeRequest({ 'X-Cutover-Probe': '1' })).toBe(true); // API Gateway REST: as the client wrote it
    expect(isProbeRequest({ 'x-cutover-probe': ' 1 ' })).toBe(true); // Node, API Gateway HTTP APIs
    expect(isProbeRequest({ 'X-CUTOVER-PROBE': ['0', '1'] })).toBe(true); // multiValueHeaders
    expect(isProbeRequest(new Headers({ 'X-Cutover-Probe': '1' }))).toBe(true); // Fetch
  });

  it('should not take anything else for the marker', () => {
    for (const headers of [undefined, null, {}, { 'x-cutover-probe': '0' }, { 'x-cutover-probe': 'true' }, { 'x-cutover-probe': undefined }, { 'x-cutover-probes': '1' }, new Headers()]) {
      expect(isProbeRequest(headers)).toBe(false);
    }
  });

  it('should not let a user sequence set the marker itself', () => {
    expect(() => parseSequence([{ path: '/' }, { path: '/x', headers: { 'X-Cutover-Probe': '0' } }])).toThrow(/header "X-Cutover-Probe" is set by the probe/);
  });
});

describe('the probe marker on the wire', () => {
  it('should be on every request of every pass, the request hidden in the oversized body included', async () => {
    const seen: RawRequest[] = [];
    // Answers 413 without reading a large body and goes on (the bug), so the request hidden in the
    // body is parsed and seen too.
    const server = await rawServer({
      readBody: (req) => req.contentLength <= BODY_LIMIT,
      handle(req, conn) {
        seen.push(req);
        conn.write(serialize(appResponse(req), { head: req.method === 'HEAD' }));
      },
    });
    open.push(server);
    await runProbe({ baseUrl: server.url, healthPath: HEALTH_PATH, idleMs: 20, largeBodyBytes: 2 * BODY_LIMIT, pipelined: true });
    expect(seen.length).toBeGreaterThan(30);
    expect(seen.some((r) => r.path.includes('cutover-probe-smuggled-'))).toBe(true);
    expect(seen.filter((r) => !isProbeRequest(r.headers)).map((r) => `${r.method} ${r.target}`)).toEqual([]);
  });
});
