/**
 * One probe-owned connection (plain TCP or TLS forced to HTTP/1.1), with every wait bounded.
 *
 * The socket's bytes are buffered here and handed to the strict parser one response at a time, so
 * the probe knows exactly which bytes arrived when: during a response, after it in the same read,
 * or while the connection sat idle.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { FramingError, ResponseParser, type FramingErrorKind, type FramingLimits, type ParsedResponse } from './http1';
import { formatAddress, type Target } from './target';
import { quoted } from './text';

export type { Target } from './target';

/** How reading one response ended. */
export type ReadResult =
  | { readonly kind: 'response'; readonly response: ParsedResponse }
  /** The connection ended before any byte of a response: closed or reset by the server. */
  | { readonly kind: 'no-response'; readonly how: 'closed' | 'reset'; readonly message: string }
  | { readonly kind: 'timeout'; readonly bytes: number; readonly firstBytes: Buffer; readonly message: string }
  | {
      readonly kind: 'protocol-error';
      readonly errorKind: FramingErrorKind | 'connection-reset';
      readonly bytes: number;
      readonly firstBytes: Buffer;
      readonly message: string;
    };

/** What an idle watch saw. */
export interface IdleResult {
  /** Bytes that arrived (and are still buffered: `takeBuffered` returns them). */
  readonly bytes: number;
  /** True when the server closed (or reset) the connection. */
  readonly closed: boolean;
}

/**
 * Thrown by `ProbeConnection.open` when no connection could be made: `unreachable`, or
 * `tls-certificate` when the server's certificate was refused (not trusted, not valid, or not for
 * the name checked), which is the probe's settings or the server's certificate, not the network.
 */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly kind: 'unreachable' | 'tls-certificate' = 'unreachable',
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

/**
 * OpenSSL's certificate verification codes as Node reports them (`err.code`) and the code of
 * `checkServerIdentity`: the certificate was refused, the connection itself worked.
 */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const WRONG_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
const INVALID = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'UNABLE_TO_GET_CRL',
  'CRL_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_SIGNATURE_FAILURE',
]);

/**
 * The message of a `tls-certificate` finding for a refused certificate, or undefined for any other
 * connection failure. It names the host name the certificate was checked against (the URL's, even
 * with `connectTo`) and why.
 */
export function certificateProblem(err: NodeJS.ErrnoException & { reason?: string }, target: Target): string | undefined {
  const code = err.code ?? '';
  // With connectTo the name checked is not the address connected to: say both.
  const subject = `certificate for ${target.certName}${target.connectTo ? ` at ${formatAddress(target.hostname, target.port)}` : ''}`;
  if (UNTRUSTED.has(code)) return `${subject} not trusted: ${err.message}; pass NODE_EXTRA_CA_CERTS=<file> to trust a private CA`;
  if (WRONG_NAME.has(code)) {
    const check = target.connectTo ? " (checked against the URL's host name, not the connectTo address)" : '';
    return `${subject} does not match the name: ${err.reason ?? err.message}${check}`;
  }
  if (INVALID.has(code)) return `${subject} not valid: ${err.message} (${code})`;
  return undefined;
}

/** Monotonic milliseconds. */
export function nowMs(): number {
  return performance.now();
}

export class ProbeConnection {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  /** The server sent FIN (a clean close), as opposed to a reset. */
  private finReceived = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private responses = 0;

  private constructor(
    private readonly socket: net.Socket,
    /** Most bytes held unread; a flood beyond this ends the connection. */
    private readonly maxBuffered: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes > this.maxBuffered) {
        this.failure ??= new Error(`more than ${this.maxBuffered} unread bytes from the server`);
        socket.destroy();
      }
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.finReceived = true;
      this.notify();
    });
    socket.on('error', (err: Error) => {
      this.failure ??= err;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  /**
   * Connects within `timeoutMs`. Over TLS only `http/1.1` is offered by ALPN: on HTTP/2 this bug
   * class cannot happen, so the probe must speak HTTP/1.1 to prove anything.
   */
  static open(target: Target, timeoutMs: number, maxBuffered: number): Promise<ProbeConnection> {
    return new Promise((resolve, reject) => {
      const socket =
        target.protocol === 'https:'
          ? tls.connect({
              host: target.hostname,
              port: target.port,
              ...(target.servername !== undefined ? { servername: target.servername } : {}),
              ALPNProtocols: ['http/1.1'],
              rejectUnauthorized: target.rejectUnauthorized,
              ...(target.ca !== undefined ? { ca: target.ca as string | Buffer | Array<string | Buffer> } : {}),
              // Checked against the URL's host name (or `servername`), never the address connected
              // to: with `connectTo` the probe reaches one load balancer but must be served the
              // certificate of the name it speaks as.
              checkServerIdentity: (_host, cert) => tls.checkServerIdentity(target.certName, cert),
            })
          : net.connect({ host: target.hostname, port: target.port });
      const where = `${formatAddress(target.hostname, target.port)}${target.connectTo ? ` (connectTo, for ${target.hostHeader})` : ''}`;
      const timer = setTimeout(() => {
        socket.destroy();
        settle(new ConnectError(`could not connect to ${where} within ${timeoutMs} ms`));
      }, timeoutMs);
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('error', onError);
        if (error) {
          socket.destroy();
          reject(error);
          return;
        }
        socket.setNoDelay(true);
        resolve(new ProbeConnection(socket, maxBuffered));
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        const certificate = target.protocol === 'https:' ? certificateProblem(err, target) : undefined;
        settle(
          certificate !== undefined
            ? new ConnectError(certificate, 'tls-certificate')
            : new ConnectError(`could not connect to ${where}: ${err.code ? `${err.code} ` : ''}${err.message}`),
        );
      };
      socket.once('error', onError);
      if (socket instanceof tls.TLSSocket) {
        socket.once('secureConnect', () => {
          const alpn = socket.alpnProtocol;
          if (alpn && alpn !== 'http/1.1') {
            settle(new ConnectError(`${where} negotiated ${alpn} instead of http/1.1`));
          } else {
            settle();
          }
        });
      } else {
        socket.once('connect', () => settle());
      }
    });
  }

  /** True once the server closed or reset the connection (or it was destroyed). */
  get closed(): boolean {
    return this.ended || this.failure !== undefined || this.socket.destroyed;
  }

  /** True when a response has already been read on this connection. */
  get reused(): boolean {
    return this.responses > 0;
  }

  /** Responses read on this connection so far. */
  get responseCount(): number {
    return this.responses;
  }

  /** Bytes received and not yet parsed. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Writes bytes; a failure shows up as a closed connection on the next read. */
  write(bytes: Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(bytes);
  }

  /** Removes and returns the buffered bytes. */
  takeBuffered(): Buffer {
    const all = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return all;
  }

  /**
   * Reads one response to a request with `method`, within `timeoutMs`. Bytes after the response
   * stay buffered (see `buffered`).
   */
  async readResponse(method: string, timeoutMs: number, limits: FramingLimits): Promise<ReadResult> {
    const parser = new ResponseParser(method, limits);
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      if (this.pendingBytes > 0) {
        const data = this.takeBuffered();
        let used: number;
        try {
          used = parser.push(data);
        } catch (error) {
          if (!(error instanceof FramingError)) throw error;
          // The connection's framing is lost: nothing after this can be trusted.
          this.destroy();
          return {
            kind: 'protocol-error',
            errorKind: error.kind,
            bytes: parser.bytesSeen,
            firstBytes: error.firstBytes,
            message: error.message,
          };
        }
        if (used < data.length) {
          this.pending = [data.subarray(used)];
          this.pendingBytes = data.length - used;
        }
        const response = parser.response;
        if (response) {
          this.responses += 1;
          return { kind: 'response', response };
        }
      }
      if (this.closed) return this.endOfStream(parser);
      const left = deadline - nowMs();
      if (left <= 0) {
        this.destroy();
        return {
          kind: 'timeout',
          bytes: parser.bytesSeen,
          firstBytes: parser.firstBytes(),
          message:
            parser.bytesSeen === 0
              ? `no response within ${timeoutMs} ms`
              : `response incomplete after ${timeoutMs} ms (${parser.bytesSeen} bytes received)`,
        };
      }
      await this.waitForActivity(left);
    }
  }

  private endOfStream(parser: ResponseParser): ReadResult {
    const reset = this.failure !== undefined && !this.finReceived;
    const reason = reset ? describeError(this.failure) : 'closed';
    if (!parser.started) {
      return {
        kind: 'no-response',
        how: reset ? 'reset' : 'closed',
        message: `connection ${reset ? `failed (${reason})` : 'closed by the server'} before any response`,
      };
    }
    // A close-delimited body ends with the connection however it ends: a server that closes with
    // our request body unread makes the kernel send a reset right after its response.
    if (!reset || parser.awaitingClose) {
      try {
        parser.end();
        const response = parser.response;
        if (response) {
          this.responses += 1;
          return { kind: 'response', response };
        }
      } catch (error) {
        if (!(error instanceof FramingError)) throw error;
        return { kind: 'protocol-error', errorKind: error.kind, bytes: parser.bytesSeen, firstBytes: error.firstBytes, message: error.message };
      }
    }
    return {
      kind: 'protocol-error',
      errorKind: 'connection-reset',
      bytes: parser.bytesSeen,
      firstBytes: parser.firstBytes(),
      message: `connection failed (${reason}) after ${parser.bytesSeen} bytes of a response: ${quoted(parser.firstBytes(), 60)}`,
    };
  }

  /**
   * Watches the idle connection for `ms`: returns early only when the server closes it. Bytes that
   * arrive stay buffered for the caller.
   */
  async watchIdle(ms: number): Promise<IdleResult> {
    const deadline = nowMs() + ms;
    for (;;) {
      if (this.closed) break;
      const left = deadline - nowMs();
      if (left <= 0) break;
      await this.waitForActivity(left);
    }
    return { bytes: this.pendingBytes, closed: this.closed };
  }

  /** Waits up to `ms` for the server to close the connection; true if it did. */
  async waitForClose(ms: number): Promise<boolean> {
    const deadline = nowMs() + ms;
    while (!this.closed) {
      const left = deadline - nowMs();
      if (left <= 0) return false;
      await this.waitForActivity(left);
    }
    return true;
  }

  /** Closes the connection now. Safe to call more than once. */
  destroy(): void {
    this.socket.destroy();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves on the next socket event or after `ms`, whichever comes first. */
  private waitForActivity(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(1, Math.ceil(ms)));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function describeError(error: Error | undefined): string {
  if (!error) return 'closed';
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `${code}: ${error.message}` : error.message;
}
