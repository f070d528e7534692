import { describe, expect, it } from 'vitest';
import { FramingError, ResponseParser, serializeRequest, type FramingLimits, type ParsedResponse } from '../../lambda/probe/http1';

/** Feeds `text` to a parser in pieces of `piece` bytes; returns the response and the bytes left over. */
function parse(text: string | Buffer, options: { method?: string; piece?: number; eof?: boolean; limits?: FramingLimits } = {}): {
  response: ParsedResponse | undefined;
  rest: string;
} {
  const data = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const parser = new ResponseParser(options.method ?? 'GET', options.limits);
  const piece = options.piece ?? data.length;
  let offset = 0;
  let rest = '';
  while (offset < data.length) {
    const chunk = data.subarray(offset, offset + piece);
    const used = parser.push(chunk);
    offset += used;
    if (parser.response) {
      rest = data.subarray(offset).toString('latin1');
      break;
    }
    if (used < chunk.length) throw new Error('parser stopped early without a response');
  }
  if (!parser.response && options.eof) parser.end();
  return { response: parser.response, rest };
}

function parseError(text: string, options: Parameters<typeof parse>[1] = {}): FramingError {
  try {
    parse(text, options);
  } catch (error) {
    if (error instanceof FramingError) return error;
    throw error;
  }
  throw new Error('expected a FramingError');
}

describe('ResponseParser', () => {
  it('should frame a Content-Length body and leave the next bytes unread', () => {
    const { response, rest } = parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloHTTP/1.1 413');
    expect(response?.status).toBe(200);
    expect(response?.body.toString()).toBe('hello');
    expect(response?.framing).toBe('content-length');
    expect(response?.keepAlive).toBe(true);
    expect(rest).toBe('HTTP/1.1 413');
  });

  it('should give the same result whatever the read boundaries', () => {
    const text =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT';
    for (let piece = 1; piece <= 9; piece++) {
      const { response, rest } = parse(text, { piece });
      expect(response?.body.toString()).toBe('hello world');
      expect(response?.trailers).toEqual([['x-trailer', 't']]);
      expect(rest.endsWith('NEXT')).toBe(true);
    }
  });

  it('should read no body for HEAD, 204 and 304 even with a Content-Length', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n', { method: 'HEAD' }).response?.framing).toBe('no-body');
    const noContent = parse('HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc');
    expect(noContent.response?.body.length).toBe(0);
    expect(noContent.rest).toBe('abc');
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n').response?.status).toBe(304);
  });

  it('should skip 100 Continue and 103 Early Hints before the final response', () => {
    const { response } = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', {
      piece: 7,
    });
    expect(response?.status).toBe(201);
    expect(response?.informational).toEqual([100, 103]);
  });

  it('should treat 101 as an error because the probe never upgrades', () => {
    expect(parseError('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n').message).toMatch(/101/);
  });

  it('should read an HTTP/1.0 body until the connection closes and not reuse it', () => {
    const parser = new ResponseParser('GET');
    parser.push(Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, '));
    parser.push(Buffer.from('part two'));
    expect(parser.response).toBeUndefined();
    parser.end();
    expect(parser.response?.body.toString()).toBe('part one, part two');
    expect(parser.response?.framing).toBe('close-delimited');
    expect(parser.response?.keepAlive).toBe(false);
  });

  it('should honour Connection: close and HTTP/1.0 keep-alive', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').response?.keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').response?.keepAlive).toBe(true);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').response?.keepAlive).toBe(false);
  });

  it('should let Transfer-Encoding win over Content-Length, note it and not reuse the connection', () => {
    const { response } = parse('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(response?.body.toString()).toBe('abc');
    expect(response?.anomalies).toContain('both Transfer-Encoding and Content-Length');
    expect(response?.keepAlive).toBe(false);
  });

  it('should accept repeated equal Content-Length values and reject different ones', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok').response?.body.toString()).toBe('ok');
    expect(parseError('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok').message).toMatch(/invalid Content-Length "2, 3"/);
    expect(parseError('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n').message).toMatch(/invalid Content-Length "-1"/);
  });

  it('should skip CR/LF before a status line and accept bare LF line ends', () => {
    const { response } = parse('\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok');
    expect(response?.body.toString()).toBe('ok');
    expect(response?.leadingWhitespace).toBe(4);
  });

  it('should unfold obs-fold header values and note them', () => {
    const { response } = parse('HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n');
    expect(response?.headers).toContainEqual(['x-long', 'one two']);
    expect(response?.anomalies[0]).toMatch(/obs-fold/);
  });

  it('should fail fast on bytes that are not a status line, showing them', () => {
    const error = parseError('GARBAGE\x00 not http');
    expect(error.kind).toBe('protocol-error');
    expect(error.message).toContain('GARBAGE\\x00');
  });

  it('should reject invalid header lines and unsupported versions', () => {
    expect(parseError('HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n').message).toMatch(/invalid header line "Bad Header: x"/);
    expect(parseError('HTTP/2.0 200 OK\r\n\r\n').message).toMatch(/HTTP\/2\.0/);
    expect(parseError('HTTP/1.1 20 OK\r\n\r\n').message).toMatch(/invalid status line/);
  });

  it('should stop at the header limit', () => {
    const limits = { maxHeaderBytes: 1024, maxBodyBytes: 1024 };
    const error = parseError(`HTTP/1.1 200 OK\r\n${'X-Filler: aaaaaaaaaa\r\n'.repeat(100)}`, { limits, piece: 100 });
    expect(error.kind).toBe('header-too-large');
    expect(error.message).toContain('1024');
  });

  it('should stop at the body limit for Content-Length, chunked and close-delimited bodies', () => {
    const limits = { maxHeaderBytes: 1024, maxBodyBytes: 10 };
    expect(parseError('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n', { limits }).kind).toBe('body-too-large');
    expect(parseError('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n', { limits }).kind).toBe('body-too-large');
    expect(parseError(`HTTP/1.0 200 OK\r\n\r\n${'x'.repeat(11)}`, { limits }).kind).toBe('body-too-large');
  });

  it('should reject chunk data longer than its size and invalid chunk sizes', () => {
    expect(parseError('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n').message).toMatch(/longer than its declared size/);
    expect(parseError('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n').message).toMatch(/invalid chunk-size line "zz"/);
  });

  it('should report a response cut short by the close', () => {
    const parser = new ResponseParser('GET');
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    expect(() => parser.end()).toThrow(/connection closed after \d+ bytes, in the middle of the response body \(3 body bytes read\)/);
  });
});

describe('serializeRequest', () => {
  it('should write the request line, Host, headers and a Content-Length for a body', () => {
    const bytes = serializeRequest({ method: 'POST', target: '/a?b=1', host: 'example.test:8080', headers: [['X-One', '1']], body: Buffer.from('hi') });
    expect(bytes.toString('latin1')).toBe('POST /a?b=1 HTTP/1.1\r\nHost: example.test:8080\r\nX-One: 1\r\nContent-Length: 2\r\n\r\nhi');
  });

  it('should send no Content-Length for a GET without body', () => {
    expect(serializeRequest({ method: 'GET', target: '/', host: 'h', headers: [] }).toString('latin1')).toBe('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  });
});
