import { describe, expect, it } from 'vitest';
import { ResponseParser } from '../../lambda/probe/http1';
import type { ProbeStep } from '../../lambda/probe/sequence';
import { buildProfile, classify, distinctClasses, isDistinct, newToken, noResponseSignature, responseSignature, type Signature } from '../../lambda/probe/signature';

function response(status: number, type: string, body: string, method = 'GET'): Signature {
  const parser = new ResponseParser(method);
  const length = method === 'HEAD' ? 12 : Buffer.byteLength(body);
  parser.push(Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n${method === 'HEAD' ? '' : body}`));
  const parsed = parser.response;
  if (!parsed) throw new Error('test response did not parse');
  return responseSignature(parsed, method);
}

function step(index: number, name: string, method = 'GET'): ProbeStep {
  return { index, name, method, path: `/${name}`, headers: [], bodyBytes: 0 };
}

describe('signatures', () => {
  it('should match bodies that differ only by probe tokens and numbers', () => {
    const a = response(404, 'text/plain; charset=utf-8', `Not found: /x-${newToken()} at 1712345678`);
    const b = response(404, 'text/plain', `Not found: /x-${newToken()} at 1799999999`);
    expect(a.fine).toBe(b.fine);
    expect(response(404, 'text/plain', 'Not found: /y').fine).not.toBe(a.fine);
  });

  it('should learn a coarse key when only the body varies, and none when the status varies', () => {
    const varying = buildProfile(step(0, 'a'), [response(200, 'application/json', '{"id":"abc"}'), response(200, 'application/json', '{"id":"xyz"}')], false);
    expect(varying.key).toEqual({ level: 'coarse', value: '200 application/json' });
    const unstable = buildProfile(step(0, 'a'), [response(200, 'text/plain', 'a'), response(404, 'text/plain', 'b')], false);
    expect(unstable.key).toBeUndefined();
    const only503 = buildProfile(step(0, 'a'), [response(503, 'text/plain', 'busy')], false);
    expect(only503.key).toBeUndefined();
  });
});

describe('classify', () => {
  const health = buildProfile(step(0, 'health'), [response(200, 'application/json', '{"ok":true}'), response(200, 'application/json', '{"ok":true}')], false);
  const missing = buildProfile(step(1, 'missing'), [response(404, 'text/plain', 'nope'), response(404, 'text/plain', 'nope')], false);
  const big = buildProfile(step(2, 'big', 'POST'), [response(413, 'text/plain', 'too big'), noResponseSignature('reset')], false);
  const head = buildProfile(step(3, 'head', 'HEAD'), [response(200, 'application/json', '', 'HEAD')], false);
  const all = [health, missing, big, head];

  it('should call an answer the step got on fresh connections aligned', () => {
    expect(classify(response(413, 'text/plain', 'too big'), big, all)).toEqual({ match: 'aligned' });
    expect(classify(noResponseSignature('closed'), big, all)).toEqual({ match: 'aligned' });
  });

  it("should call another step's answer shifted, with the distance", () => {
    expect(classify(response(413, 'text/plain', 'too big'), head, all)).toEqual({ match: 'shifted', shiftOffsets: [1] });
    expect(classify(response(200, 'application/json', '{"ok":true}'), missing, all)).toEqual({ match: 'shifted', shiftOffsets: [1] });
  });

  it('should match a HEAD answer by status and media type only', () => {
    // The HEAD request got the 404 meant for another step; its body was not sent.
    const parser = new ResponseParser('HEAD');
    parser.push(Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n'));
    expect(classify(responseSignature(parser.response!, 'HEAD'), head, all)).toEqual({ match: 'shifted', shiftOffsets: [2] });
  });

  it('should never take a 5XX or 408 for a shift', () => {
    expect(classify(response(503, 'text/plain', 'busy'), health, all).match).toBe('server-error');
    expect(classify(response(408, 'text/plain', 'idle'), health, all).match).toBe('server-error');
  });

  it('should call an unknown answer a mismatch, and not judge a step the control never learned', () => {
    expect(classify(response(418, 'text/plain', 'teapot'), health, all).match).toBe('mismatch');
    const unlearned = buildProfile(step(4, 'flaky'), [response(503, 'text/plain', 'busy'), response(503, 'text/plain', 'busy')], false);
    expect(classify(response(405, 'text/plain', 'no'), unlearned, [...all, unlearned]).match).toBe('unjudged');
  });

  it('should count the answers the sequence can tell apart', () => {
    expect(distinctClasses(all)).toBe(4);
    const again = buildProfile(step(4, 'again'), health.samples, false);
    expect(isDistinct(health, [...all, again])).toBe(false);
    expect(isDistinct(missing, [...all, again])).toBe(true);
  });
});
