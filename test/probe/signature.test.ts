import { describe, expect, it } from 'vitest';
import { ResponseParser } from '../../lambda/probe/http1';
import type { ProbeStep } from '../../lambda/probe/sequence';
import { longPassOrder } from '../../lambda/probe/long-pass';
import {
  answerClasses,
  buildProfile,
  classify,
  distinctClasses,
  findForeignSamples,
  isDistinct,
  isExactAnswerOf,
  newToken,
  noResponseSignature,
  responseSignature,
  type Signature,
} from '../../lambda/probe/signature';

function response(status: number, type: string, body: string, method = 'GET'): Signature {
  const parser = new ResponseParser(method);
  const length = method === 'HEAD' ? 12 : Buffer.byteLength(body);
  parser.push(Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n${method === 'HEAD' ? '' : body}`));
  const parsed = parser.response;
  if (!parsed) throw new Error('test response did not parse');
  return responseSignature(parsed, method);
}

function step(index: number, name: string, method = 'GET', path = `/${name}`, bodyBytes = 0): ProbeStep {
  return { index, name, method, path, headers: [], bodyBytes };
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
    expect(classify(response(413, 'text/plain', 'too big'), head, all)).toEqual({ match: 'shifted', shiftOffsets: [1], exact: true });
    expect(classify(response(200, 'application/json', '{"ok":true}'), missing, all)).toEqual({ match: 'shifted', shiftOffsets: [1], exact: true });
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

  it("should not judge a step that got only 5XX on fresh connections, even when its answer is another step's exactly", () => {
    // An overloaded server ignoring credentials: health got only 503s, bad-credentials the health answer.
    const flakyHealth = buildProfile(step(0, 'health', 'GET', '/health'), [response(503, 'text/plain', 'busy'), response(503, 'text/plain', 'busy')], false);
    const credentials = { ...step(4, 'bad-credentials', 'GET', '/health'), headers: [['Authorization', 'Basic x']] as const };
    const creds = buildProfile(credentials, [response(200, 'application/json', '{"ok":true}'), response(200, 'application/json', '{"ok":true}')], false);
    const profiles = [flakyHealth, missing, creds];
    expect(classify(response(200, 'application/json', '{"ok":true}'), flakyHealth, profiles)).toEqual({ match: 'unjudged' });
    expect(classify(response(503, 'text/plain', 'busy'), flakyHealth, profiles)).toEqual({ match: 'aligned' });
    expect(classify(response(502, 'text/html', 'bad gateway'), flakyHealth, profiles)).toEqual({ match: 'server-error' });
    // A step that learned its answer still proves a shift with it.
    expect(classify(response(200, 'application/json', '{"ok":true}'), missing, profiles)).toMatchObject({ match: 'shifted', exact: true });
  });

  it('should count the answers the sequence can tell apart', () => {
    expect(distinctClasses(all)).toBe(4);
    const again = buildProfile(step(4, 'again'), health.samples, false);
    expect(isDistinct(health, [...all, again])).toBe(false);
    expect(isDistinct(missing, [...all, again])).toBe(true);
  });
});

describe('exact answers of another request', () => {
  const health = buildProfile(step(0, 'health'), [response(200, 'application/json', '{"ok":true}'), response(200, 'application/json', '{"ok":true}')], false);
  const again = buildProfile(step(1, 'again', 'GET', '/health'), [response(200, 'application/json', '{"ok":false}'), response(200, 'application/json', '{"ok":false}')], false);
  const missing = buildProfile(step(2, 'missing'), [response(404, 'text/plain', 'nope'), response(404, 'text/plain', 'nope')], false);
  const varying = buildProfile(step(3, 'varying'), [response(200, 'text/plain', 'a'), response(200, 'text/plain', 'b')], false);
  const head = buildProfile(step(4, 'head', 'HEAD', '/health'), [response(200, 'application/json', '', 'HEAD')], false);
  const all = [{ ...health, step: { ...health.step, path: '/health' } }, again, missing, varying, head];

  it('should mark a match on status, media type and body as exact, and nothing less', () => {
    expect(isExactAnswerOf(response(404, 'text/plain', 'nope'), missing)).toBe(true);
    expect(isExactAnswerOf(response(200, 'text/plain', 'c'), varying)).toBe(false);
    expect(isExactAnswerOf(response(200, 'application/json', '', 'HEAD'), head)).toBe(false);
    expect(classify(response(404, 'text/plain', 'nope'), health, all)).toEqual({ match: 'shifted', shiftOffsets: [-2], exact: true });
    expect(classify(response(200, 'text/plain', 'zzz'), missing, all)).toEqual({ match: 'shifted', shiftOffsets: [-1] });
  });

  it("should never take an identical request's answer for another request's", () => {
    // Same method, path and body: their answers may differ over time without proving anything.
    expect(classify(response(200, 'application/json', '{"ok":false}'), all[0], all).match).toBe('mismatch');
  });

  it('should count a 429 like a 5XX: it answers no request in particular', () => {
    expect(classify(response(429, 'text/plain', 'slow down'), health, all).match).toBe('server-error');
  });

  it("should find a fresh-connection answer that is exactly another step's answer", () => {
    const controls = [
      { step: step(0, 'health', 'GET', '/health'), samples: [response(200, 'application/json', '{"ok":true}'), response(200, 'application/json', '{"ok":true}')], broken: false },
      { step: step(1, 'missing'), samples: [response(200, 'application/json', '{"ok":true}'), response(404, 'text/plain', 'nope')], broken: false },
      { step: step(2, 'post', 'POST', '/health'), samples: [response(405, 'text/html', 'no'), response(405, 'text/html', 'no')], broken: false },
      { step: step(3, 'trace', 'TRACE', '/health'), samples: [response(405, 'text/html', 'no'), response(405, 'text/html', 'no')], broken: false },
    ];
    // Only the crossed answer; two steps that always answer alike prove nothing.
    expect(findForeignSamples(controls)).toEqual([{ step: 1, sample: 0, origin: 0 }]);
    const profile = buildProfile(controls[1].step, controls[1].samples, false, { foreign: new Set([0]) });
    expect(profile.key).toEqual({ level: 'fine', value: response(404, 'text/plain', 'nope').fine });
  });
});

describe('longPassOrder', () => {
  const classes = [step(0, 'a'), step(1, 'b'), step(2, 'big', 'POST', '/a', 1024 * 1024), step(3, 'c'), step(4, 'd')].map((s) => ({ step: s }));

  it('should never repeat a class within two requests, so any shift shows', () => {
    const order = longPassOrder(classes, 120).map((c) => c.step.index);
    expect(order).toHaveLength(120);
    for (let i = 2; i < order.length; i++) {
      expect(order[i]).not.toBe(order[i - 1]);
      expect(order[i]).not.toBe(order[i - 2]);
    }
    // Every stretch of a few requests holds every class: a desync starting anywhere is seen soon.
    for (let i = 0; i + 10 <= order.length; i++) expect(new Set(order.slice(i, i + 10)).size).toBe(5);
  });

  it('should send a large body half as often as the other steps', () => {
    const order = longPassOrder(classes, 120).map((c) => c.step.name);
    const count = (name: string): number => order.filter((n) => n === name).length;
    expect(count('big')).toBeLessThanOrEqual(Math.ceil(count('a') / 2) + 1);
    expect(count('big')).toBeGreaterThanOrEqual(Math.floor(count('a') / 2) - 1);
  });

  it('should be the same every time', () => {
    expect(longPassOrder(classes, 30)).toEqual(longPassOrder(classes, 30));
    expect(answerClasses([])).toEqual([]);
  });
});
