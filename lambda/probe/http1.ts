/**
 * Strict HTTP/1.1 response framing (RFC 9112 §6) and request serialisation.
 *
 * Hand-written on purpose: the probe must see every byte the server sends and decide itself where
 * one response ends, because library clients (node:http, undici, fetch) silently drop or
 * re-attribute exactly the bytes the probe is looking for. Node's own parser (llhttp) is only
 * reachable through those clients or through an undocumented internal binding, and no parser is a
 * dependency of this project. The parser is incremental: `push` consumes bytes up to the end of one
 * response and leaves the rest (the next response, or unsolicited bytes) to the caller.
 */
import { quoted } from './text';

/** Limits that bound what one response may cost. */
export interface FramingLimits {
  /** Status line + header fields (+ trailers, + any 1xx heads), in bytes. */
  readonly maxHeaderBytes: number;
  /** Decoded body bytes (a chunked body's data, without chunk framing). */
  readonly maxBodyBytes: number;
}

/** 64 KiB of head and 1 MiB of body: far above any health or error response. */
export const DEFAULT_LIMITS: FramingLimits = { maxHeaderBytes: 64 * 1024, maxBodyBytes: 1024 * 1024 };

/** How the body's end was found. */
export type Framing = 'content-length' | 'chunked' | 'close-delimited' | 'no-body';

/** One complete response. */
export interface ParsedResponse {
  /** `1.1` or `1.0`. */
  readonly version: string;
  readonly status: number;
  readonly reason: string;
  /** Header fields in order, names lower-cased. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly trailers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  readonly framing: Framing;
  /** Whether the connection may carry another request after this response. */
  readonly keepAlive: boolean;
  /** Statuses of 1xx responses that came first (100 Continue, 103 Early Hints). */
  readonly informational: readonly number[];
  /** Legal but suspicious framing details (both Content-Length and Transfer-Encoding, obs-fold…). */
  readonly anomalies: readonly string[];
  /** CR/LF bytes skipped before the status line. */
  readonly leadingWhitespace: number;
  /** Bytes this response took on the wire. */
  readonly wireBytes: number;
}

export type FramingErrorKind = 'protocol-error' | 'header-too-large' | 'body-too-large';

/** The bytes are not a valid HTTP/1.x response, or exceed a limit. */
export class FramingError extends Error {
  constructor(
    readonly kind: FramingErrorKind,
    message: string,
    /** The first bytes of the offending response. */
    readonly firstBytes: Buffer,
  ) {
    super(message);
    this.name = 'FramingError';
  }
}

const CR = 0x0d;
const LF = 0x0a;
const HTTP_PREFIX = Buffer.from('HTTP/', 'latin1');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_LINE = /^([^:\s]+):[ \t]*(.*?)[ \t]*$/s;
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: (.*))?$/s;
const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$/s;
/** Longest chunk-size line accepted (size + extensions). */
const MAX_CHUNK_LINE = 4096;
/** Kept for error messages and reports. */
const FIRST_BYTES = 256;
/** 1xx responses accepted before the final one (a server looping on 103 must not hold the probe). */
const MAX_INFORMATIONAL = 8;

type State =
  | 'lead'
  | 'head'
  | 'body-length'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-data-end'
  | 'trailers'
  | 'close-delimited'
  | 'done';

/**
 * Incremental parser for one response to a request with the given method.
 * Feed bytes with `push` until `response` is set; call `end` when the connection closes.
 */
export class ResponseParser {
  private state: State = 'lead';
  /** Bytes of the current head, trailer section or chunk-size line. */
  private line: Buffer[] = [];
  private lineBytes = 0;
  /** Offset in the joined head buffer from which to look for the next line end. */
  private headBuffer = Buffer.alloc(0);
  private headScan = 0;
  private headLineStart = 0;
  private headLines: string[] = [];
  private headTotal = 0;
  private remaining = 0;
  private bodyParts: Buffer[] = [];
  private bodyBytes = 0;
  private first: Buffer[] = [];
  private firstBytesLen = 0;
  private wire = 0;
  private leading = 0;
  private informational: number[] = [];
  private anomalies: string[] = [];
  private status = 0;
  private version = '';
  private reason = '';
  private headers: Array<[string, string]> = [];
  private trailers: Array<[string, string]> = [];
  private framing: Framing = 'no-body';
  private keepAlive = true;
  private result: ParsedResponse | undefined;
  /** The bytes `step` is working on, for error messages. */
  private current: Buffer | undefined;

  constructor(
    private readonly method: string,
    private readonly limits: FramingLimits = DEFAULT_LIMITS,
  ) {}

  /** The complete response, once parsed. */
  get response(): ParsedResponse | undefined {
    return this.result ? { ...this.result, wireBytes: this.wire } : undefined;
  }

  /** Bytes consumed so far (including skipped leading CR/LF). */
  get bytesSeen(): number {
    return this.wire;
  }

  /** True once any non-whitespace byte of a response has been consumed. */
  get started(): boolean {
    return this.wire > this.leading;
  }

  /** True while reading a body that ends when the connection closes. */
  get awaitingClose(): boolean {
    return this.state === 'close-delimited';
  }

  /** First bytes consumed, for messages. */
  firstBytes(): Buffer {
    return Buffer.concat(this.first);
  }

  /**
   * Consumes bytes of this response from `data` and returns how many were used; bytes after the
   * end of the response are left for the caller. Throws `FramingError` on invalid input.
   */
  push(data: Buffer): number {
    let offset = 0;
    while (offset < data.length && this.state !== 'done') {
      this.current = data.subarray(offset);
      const used = this.step(this.current);
      this.record(data.subarray(offset, offset + used));
      offset += used;
    }
    this.current = undefined;
    return offset;
  }

  /**
   * The connection was closed. Completes a close-delimited body; anything else still incomplete
   * is a truncated response (the caller decides what an empty one means).
   */
  end(): void {
    if (this.state === 'done') return;
    if (this.state === 'close-delimited') {
      this.finish();
      return;
    }
    throw new FramingError(
      'protocol-error',
      `connection closed after ${this.wire} bytes, in the middle of the response ${this.describeState()}`,
      this.firstBytes(),
    );
  }

  private record(bytes: Buffer): void {
    this.wire += bytes.length;
    if (this.firstBytesLen < FIRST_BYTES && bytes.length > 0) {
      const part = bytes.subarray(0, FIRST_BYTES - this.firstBytesLen);
      // Copy: the caller's buffer may be reused.
      this.first.push(Buffer.from(part));
      this.firstBytesLen += part.length;
    }
  }

  private describeState(): string {
    switch (this.state) {
      case 'lead':
      case 'head':
        return 'head';
      case 'trailers':
        return 'trailers';
      default:
        return `body (${this.bodyBytes} body bytes read)`;
    }
  }

  private fail(kind: FramingErrorKind, message: string): never {
    // Include the bytes being parsed: they are usually the offending ones.
    const shown = this.current ? Buffer.concat([this.firstBytes(), this.current.subarray(0, FIRST_BYTES)]) : this.firstBytes();
    throw new FramingError(kind, message, shown.subarray(0, FIRST_BYTES));
  }

  /** Handles the start of `data` in the current state; returns bytes consumed (> 0). */
  private step(data: Buffer): number {
    switch (this.state) {
      case 'lead':
        return this.stepLead(data);
      case 'head':
      case 'trailers':
        return this.stepHead(data);
      case 'body-length':
      case 'chunk-data': {
        const n = Math.min(this.remaining, data.length);
        this.addBody(data.subarray(0, n));
        this.remaining -= n;
        if (this.remaining === 0) {
          if (this.state === 'body-length') this.finish();
          else this.beginLine('chunk-data-end');
        }
        return n;
      }
      case 'chunk-size':
      case 'chunk-data-end':
        return this.stepChunkLine(data);
      case 'close-delimited':
        this.addBody(data);
        return data.length;
      case 'done':
        return 0;
    }
  }

  /** Skips CR/LF before a status line (RFC 9112 §2.2 lets a recipient ignore them). */
  private stepLead(data: Buffer): number {
    let i = 0;
    while (i < data.length && (data[i] === CR || data[i] === LF)) i++;
    this.leading += i;
    if (i < data.length) {
      this.state = 'head';
      this.headBuffer = Buffer.alloc(0);
      this.headScan = 0;
      this.headLineStart = 0;
      this.headLines = [];
    }
    return i === 0 ? this.stepHead(data) : i;
  }

  private stepHead(data: Buffer): number {
    const isTrailer = this.state === 'trailers';
    const before = this.headBuffer.length;
    // Cap what is buffered: never hold more than the limit allows.
    const room = this.limits.maxHeaderBytes - this.headTotal;
    if (room <= 0) {
      this.fail(
        'header-too-large',
        `response ${isTrailer ? 'trailers' : 'head'} exceeds ${this.limits.maxHeaderBytes} bytes`,
      );
    }
    const take = data.subarray(0, Math.min(data.length, room));
    this.headBuffer = before === 0 ? Buffer.from(take) : Buffer.concat([this.headBuffer, take]);
    if (!isTrailer && this.headLines.length === 0) this.checkStatusPrefix();

    // Scan the new bytes for line ends; an empty line ends the section.
    for (let i = Math.max(this.headScan, before); i < this.headBuffer.length; i++) {
      if (this.headBuffer[i] !== LF) continue;
      const end = i > this.headLineStart && this.headBuffer[i - 1] === CR ? i - 1 : i;
      const line = this.headBuffer.toString('latin1', this.headLineStart, end);
      this.headLineStart = i + 1;
      if (line === '' && (isTrailer || this.headLines.length > 0)) {
        const used = i + 1 - before;
        this.headTotal += used;
        this.headScan = 0;
        if (isTrailer) this.endTrailers();
        else this.endHead();
        return used;
      }
      if (line.includes('\r')) this.fail('protocol-error', `bare CR in response line ${quoted(Buffer.from(line, 'latin1'))}`);
      this.headLines.push(line);
    }
    this.headScan = this.headBuffer.length;
    this.headTotal += take.length;
    if (take.length < data.length || this.headTotal >= this.limits.maxHeaderBytes) {
      this.fail(
        'header-too-large',
        `response ${isTrailer ? 'trailers' : 'head'} exceeds ${this.limits.maxHeaderBytes} bytes`,
      );
    }
    return take.length;
  }

  /** Fails fast on bytes that cannot start a status line, instead of waiting for a whole head. */
  private checkStatusPrefix(): void {
    const n = Math.min(this.headBuffer.length, HTTP_PREFIX.length);
    if (this.headBuffer.subarray(0, n).compare(HTTP_PREFIX.subarray(0, n)) !== 0) {
      this.fail('protocol-error', `expected a status line ("HTTP/1.1 …"), got ${quoted(this.headBuffer, 60)}`);
    }
  }

  private endHead(): void {
    const [statusLine, ...fieldLines] = this.headLines;
    const match = STATUS_LINE.exec(statusLine ?? '');
    if (!match) this.fail('protocol-error', `invalid status line ${quoted(Buffer.from(statusLine ?? '', 'latin1'), 80)}`);
    const [, major, minor, code, reason] = match;
    if (major !== '1' || (minor !== '0' && minor !== '1')) {
      this.fail('protocol-error', `unsupported protocol version HTTP/${major}.${minor} in ${JSON.stringify(statusLine)}`);
    }
    const status = Number(code);
    if (status < 100) this.fail('protocol-error', `invalid status code ${code} in ${JSON.stringify(statusLine)}`);
    const headers = this.parseFields(fieldLines, 'header');

    if (status >= 100 && status < 200) {
      // 101 only answers an Upgrade, which the probe never sends.
      if (status === 101) this.fail('protocol-error', 'unexpected 101 Switching Protocols (the probe never asks to upgrade)');
      this.informational.push(status);
      if (this.informational.length > MAX_INFORMATIONAL) {
        this.fail('protocol-error', `more than ${MAX_INFORMATIONAL} informational (1xx) responses before a final one`);
      }
      this.state = 'lead';
      return;
    }

    this.version = `${major}.${minor}`;
    this.status = status;
    this.reason = reason ?? '';
    this.headers = headers;
    const connection = this.tokens('connection');
    this.keepAlive = this.version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive');

    // RFC 9112 §6.3, in order.
    if (this.method === 'HEAD' || status === 204 || status === 304) {
      this.framing = 'no-body';
      this.finish();
      return;
    }
    const transferEncoding = this.tokens('transfer-encoding');
    const lengths = this.values('content-length');
    if (transferEncoding.length > 0) {
      if (lengths.length > 0) {
        // Legal for a recipient to resolve (TE wins) but the mark of request smuggling: note it and
        // do not reuse the connection, as §6.3 tells a client to do.
        this.anomalies.push('both Transfer-Encoding and Content-Length');
        this.keepAlive = false;
      }
      if (this.version === '1.0') {
        this.anomalies.push('Transfer-Encoding in an HTTP/1.0 response');
        this.keepAlive = false;
      }
      if (transferEncoding[transferEncoding.length - 1] === 'chunked') {
        this.framing = 'chunked';
        this.beginLine('chunk-size');
      } else {
        this.framing = 'close-delimited';
        this.keepAlive = false;
        this.state = 'close-delimited';
      }
      return;
    }
    if (lengths.length > 0) {
      const parts = lengths.flatMap((v) => v.split(',').map((p) => p.trim()));
      if (!parts.every((p) => /^\d{1,15}$/.test(p)) || new Set(parts).size !== 1) {
        this.fail('protocol-error', `invalid Content-Length ${JSON.stringify(lengths.join(', '))}`);
      }
      const length = Number(parts[0]);
      if (length > this.limits.maxBodyBytes) {
        this.fail('body-too-large', `Content-Length ${length} exceeds the ${this.limits.maxBodyBytes}-byte body limit`);
      }
      this.framing = 'content-length';
      if (length === 0) {
        this.finish();
      } else {
        this.remaining = length;
        this.state = 'body-length';
      }
      return;
    }
    this.framing = 'close-delimited';
    this.keepAlive = false;
    this.state = 'close-delimited';
  }

  private endTrailers(): void {
    this.trailers = this.parseFields(this.headLines, 'trailer');
    this.finish();
  }

  private parseFields(lines: readonly string[], what: string): Array<[string, string]> {
    const fields: Array<[string, string]> = [];
    for (const line of lines) {
      const last = fields[fields.length - 1];
      if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
        // obs-fold: RFC 9112 §5.2 tells a user agent to replace it with a space.
        this.anomalies.push(`obs-fold in ${what} ${last[0]}`);
        last[1] = `${last[1]} ${line.trim()}`;
        continue;
      }
      const match = HEADER_LINE.exec(line);
      if (!match || !TOKEN.test(match[1])) {
        this.fail('protocol-error', `invalid ${what} line ${quoted(Buffer.from(line, 'latin1'), 80)}`);
      }
      fields.push([match[1].toLowerCase(), match[2]]);
    }
    return fields;
  }

  private values(name: string): string[] {
    return this.headers.filter(([n]) => n === name).map(([, v]) => v);
  }

  private tokens(name: string): string[] {
    return this.values(name)
      .flatMap((v) => v.split(','))
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== '');
  }

  private beginLine(state: 'chunk-size' | 'chunk-data-end'): void {
    this.state = state;
    this.line = [];
    this.lineBytes = 0;
  }

  /** Reads a chunk-size line, or the CRLF that ends a chunk's data. */
  private stepChunkLine(data: Buffer): number {
    const lf = data.indexOf(LF);
    const take = lf === -1 ? data.length : lf + 1;
    this.line.push(Buffer.from(data.subarray(0, take)));
    this.lineBytes += take;
    const limit = this.state === 'chunk-data-end' ? 2 : MAX_CHUNK_LINE;
    if (this.lineBytes > limit) {
      this.fail(
        'protocol-error',
        this.state === 'chunk-data-end'
          ? `chunk data longer than its declared size (got ${quoted(Buffer.concat(this.line), 40)})`
          : `chunk-size line longer than ${MAX_CHUNK_LINE} bytes`,
      );
    }
    if (lf === -1) return take;
    const raw = Buffer.concat(this.line).toString('latin1');
    const text = raw.endsWith('\r\n') ? raw.slice(0, -2) : raw.slice(0, -1);
    if (this.state === 'chunk-data-end') {
      if (text !== '') this.fail('protocol-error', `chunk data longer than its declared size (got ${JSON.stringify(text)})`);
      this.beginLine('chunk-size');
      return take;
    }
    const match = CHUNK_SIZE_LINE.exec(text);
    if (!match) this.fail('protocol-error', `invalid chunk-size line ${quoted(Buffer.from(text, 'latin1'), 60)}`);
    const size = Number.parseInt(match[1], 16);
    if (this.bodyBytes + size > this.limits.maxBodyBytes) {
      this.fail('body-too-large', `chunked body exceeds the ${this.limits.maxBodyBytes}-byte body limit`);
    }
    if (size === 0) {
      this.state = 'trailers';
      this.headBuffer = Buffer.alloc(0);
      this.headScan = 0;
      this.headLineStart = 0;
      this.headLines = [];
    } else {
      this.remaining = size;
      this.state = 'chunk-data';
    }
    return take;
  }

  private addBody(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.bodyBytes += bytes.length;
    if (this.bodyBytes > this.limits.maxBodyBytes) {
      this.fail('body-too-large', `response body exceeds the ${this.limits.maxBodyBytes}-byte body limit (${this.framing})`);
    }
    this.bodyParts.push(Buffer.from(bytes));
  }

  private finish(): void {
    this.state = 'done';
    this.result = {
      version: this.version,
      status: this.status,
      reason: this.reason,
      headers: this.headers,
      trailers: this.trailers,
      body: Buffer.concat(this.bodyParts),
      framing: this.framing,
      keepAlive: this.keepAlive,
      informational: this.informational,
      anomalies: this.anomalies,
      leadingWhitespace: this.leading,
      // Filled in by the `response` getter: the bytes of the final step are counted after it.
      wireBytes: 0,
    };
  }
}

/** First value of a header, names compared case-insensitively. */
export function headerValue(response: Pick<ParsedResponse, 'headers'>, name: string): string | undefined {
  const lower = name.toLowerCase();
  return response.headers.find(([n]) => n === lower)?.[1];
}

/** One request to serialise. */
export interface RequestSpec {
  readonly method: string;
  /** origin-form target: path and query. */
  readonly target: string;
  readonly host: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body?: Buffer;
}

/** Serialises a request; adds Content-Length when there is a body. */
export function serializeRequest(spec: RequestSpec): Buffer {
  const lines = [`${spec.method} ${spec.target} HTTP/1.1`, `Host: ${spec.host}`];
  for (const [name, value] of spec.headers) lines.push(`${name}: ${value}`);
  const body = spec.body ?? Buffer.alloc(0);
  if (body.length > 0 || spec.method === 'POST' || spec.method === 'PUT' || spec.method === 'PATCH') {
    lines.push(`Content-Length: ${body.length}`);
  }
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return body.length > 0 ? Buffer.concat([head, body]) : head;
}
