/**
 * A synthetic client's connection (see `local/clients.ts`): where it connects (a fixed target, or
 * a `ClientRouting` that plays DNS), opening a Keep-Alive connection there, sending one request on
 * it with a timeout, following its socket so that a closed connection is replaced, and the retry
 * policy for a connection that failed before carrying anything. Separate from the client loop
 * because it is the transport: the loop decides what to send and when, and counts what came back.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Side } from '../lambda/core/ports';
import type { RequestKind } from './client-outcomes';
import { parseLoopbackUrl, urlPort } from './net';
import type { RandomSource } from './random';

/** A server a client connects to, and which side it is. */
export interface ClientTarget {
  /** Base URL (loopback only). */
  readonly url: string;
  readonly side: Side;
}

/**
 * Where clients connect when no router sits between them and the sides: each client finds its
 * server itself (a DNS lookup, see `DnsRouting` in `local/resolver.ts`).
 */
export interface ClientRouting {
  /**
   * The server for client `client`'s next connection. Asked only when the client holds no open
   * connection; the client keeps the connection (and so the side) until it is closed.
   */
  connect(client: number): ClientTarget;
  /**
   * Client `client`'s connection to `target` was refused (nothing was sent): it must look the name
   * up afresh. The client then asks `connect` once more and sends the request there.
   */
  refused(client: number, target: ClientTarget): void;
}

/** One request a client sends. */
export interface RequestSpec {
  readonly kind: RequestKind;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly requestId: string;
  readonly body?: Buffer;
}

/** A response as received, with the connection it came on. */
export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly reused: boolean;
  readonly socket: Socket | undefined;
}

/** One client's Keep-Alive connection (its agent holds at most one socket). */
export interface Connection {
  readonly agent: Agent;
  readonly url: URL;
  readonly basePath: string;
  /** Where `routing` sent it; undefined for the fixed target. */
  readonly target: ClientTarget | undefined;
  /** When the client closes it itself (`connectionLifetimeMs`), `performance.now()` time. */
  readonly retireAt?: number;
  /** The server closed it, it failed, or it was retired: the next request needs a new one. */
  closed: boolean;
}

/** The code of a client's own request timeout. */
export const TIMEOUT_CODE = 'CUTOVER_CLIENT_TIMEOUT';

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** What `openConnection` needs to know, fixed for a run of clients. */
export interface ConnectionSettings {
  /** Where each new connection goes, if a client finds its server itself. */
  readonly routing: ClientRouting | undefined;
  /** Otherwise, the one target. */
  readonly fixedTarget: URL | undefined;
  /** Mean lifetime of a connection (`connectionLifetimeMs`), if clients retire theirs. */
  readonly lifetimeMs: number | undefined;
  readonly random: RandomSource;
  /** Idle time after which the agent drops its Keep-Alive socket. */
  readonly idleTimeoutMs: number;
}

/** Opens a client's next connection: to the fixed target, or where `routing` says. */
export function openConnection(client: number, settings: ConnectionSettings): Connection {
  const { routing, fixedTarget, lifetimeMs, random, idleTimeoutMs } = settings;
  const chosen = routing?.connect(client);
  const url = chosen ? parseLoopbackUrl(chosen.url, `routing target of client ${client}`) : fixedTarget!;
  const lifetime = lifetimeMs === undefined ? undefined : Math.min(10 * lifetimeMs, -lifetimeMs * Math.log(1 - random()));
  return {
    agent: new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: idleTimeoutMs }),
    url,
    basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''),
    target: chosen,
    ...(lifetime === undefined ? {} : { retireAt: performance.now() + lifetime }),
    closed: false,
  };
}

/** Sends one request on `agent` and reads its whole response (or fails: error, timeout, too large). */
export function sendRequest(agent: Agent, target: URL, spec: RequestSpec, requestTimeoutMs: number): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    let socket: Socket | undefined;
    const headers: Record<string, string | number> = { 'x-request-id': spec.requestId, accept: 'application/json' };
    if (spec.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = spec.body.length;
    }
    const req = httpRequest(
      { host: target.hostname.replace(/^\[|\]$/g, ''), port: urlPort(target), method: spec.method, path: spec.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_RESPONSE_BYTES) req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.once('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket, socket }),
        );
        res.once('error', reject);
      },
    );
    req.once('socket', (s: Socket) => {
      socket = s;
    });
    req.setTimeout(requestTimeoutMs, () => req.destroy(Object.assign(new Error(`no response within ${requestTimeoutMs} ms`), { code: TIMEOUT_CODE })));
    // Errors before any response say whether the connection was a fresh one (see `retryAfter`).
    req.once('error', (error: Error) => reject(Object.assign(error, { freshConnection: !req.reusedSocket })));
    req.end(spec.body);
  });
}

/**
 * Follows the connection's socket, so that a closed one is replaced (and, with `routing`, looked up
 * again). `watchedSockets` keeps a socket from being followed twice.
 */
export function watchConnection(connection: Connection, response: RawResponse, watchedSockets: WeakSet<Socket>): void {
  const socket = response.socket;
  const close = String(response.headers.connection ?? '').toLowerCase().split(/\s*,\s*/).includes('close');
  if (close || socket === undefined || socket.destroyed) {
    connection.closed = true;
    return;
  }
  if (watchedSockets.has(socket)) return;
  watchedSockets.add(socket);
  socket.once('close', () => {
    connection.closed = true;
  });
}

/** The retries a client already made for one request (see `retryAfter`). */
export interface RetryState {
  refusedOnce: boolean;
  resetOnce: boolean;
}

/**
 * With routing, a connection that failed before it carried anything is tried again, as clients
 * do: refused (nothing sent), the client looks the name up afresh first; reset as soon as it was
 * opened (a server that stopped listening with the connection still in its accept queue resets it
 * instead of refusing it), it connects once more, and is then refused, or reset again and fails.
 * Returns why to retry (and notes it in `state`), or undefined when the error stands.
 */
export function retryAfter(error: unknown, state: RetryState): 'refused' | 'reset' | undefined {
  const code = errorCode(error);
  const fresh = (error as { freshConnection?: unknown }).freshConnection === true;
  if (code === 'ECONNREFUSED' && !state.refusedOnce) {
    state.refusedOnce = true;
    return 'refused';
  }
  if ((code === 'ECONNRESET' || code === 'EPIPE') && fresh && !state.resetOnce && !state.refusedOnce) {
    state.resetOnce = true;
    return 'reset';
  }
  return undefined;
}
