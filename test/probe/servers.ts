/**
 * Loopback HTTP servers, each reproducing one behaviour the probe must judge: healthy ones,
 * servers with the incident's class of bug, and hostile ones. Shared by the probe tests and the
 * probe benchmark. Every server listens on 127.0.0.1 with an ephemeral port and `close()` ends all
 * its sockets and timers.
 *
 * Most are written on raw `net` because the bugs (a response written twice, a queue off by one, a
 * body left unread) cannot be produced through node:http, which frames responses correctly.
 */
import * as http from 'node:http';
import * as net from 'node:net';

/** Body limit of the test app: above it a POST gets 413. */
export const BODY_LIMIT = 8 * 1024;
export const HEALTH_PATH = '/health';
const HEALTH_BODY = '{"status":"ok"}';

export interface TestServer {
  readonly url: string;
  close(): Promise<void>;
}

export interface RawRequest {
  readonly method: string;
  /** Request target as sent (path and query). */
  readonly target: string;
  /** Path without the query. */
  readonly path: string;
  readonly version: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly contentLength: number;
}

export interface AppResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  503: 'Service Unavailable',
};

/** What the test application looks at in a request. */
export interface AppRequest extends Pick<RawRequest, 'method' | 'path' | 'contentLength'> {
  /** Header fields, names lower-cased; only `authorization` matters. */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * The test application: a health endpoint, 404 pages that echo the path, 400 for a path that is
 * not valid percent-encoding (as Express does), 401 for any credentials (it accepts none), 405,
 * 413, and 200 for a small POST.
 */
export function appResponse(req: AppRequest): AppResponse {
  const make = (status: number, type: string, body: string, extra: Array<[string, string]> = []): AppResponse => ({
    status,
    reason: REASONS[status] ?? 'Status',
    headers: [['Content-Type', type], ...extra],
    body,
  });
  try {
    decodeURIComponent(req.path);
  } catch {
    return make(400, 'text/plain', 'Bad Request: the path is not valid percent-encoding');
  }
  if (req.path !== HEALTH_PATH) return make(404, 'text/plain', `Not found: ${req.path}`);
  if (req.headers?.authorization !== undefined) {
    return make(401, 'application/json', '{"error":"invalid credentials"}', [['WWW-Authenticate', 'Basic realm="test"']]);
  }
  if (req.method === 'GET' || req.method === 'HEAD') return make(200, 'application/json', HEALTH_BODY);
  if (req.method === 'POST') {
    if (req.contentLength > BODY_LIMIT) return make(413, 'text/plain', `Payload Too Large: limit ${BODY_LIMIT} bytes`);
    return make(200, 'application/json', `{"received":${req.contentLength}}`);
  }
  return make(405, 'text/plain', 'Method Not Allowed', [['Allow', 'GET, HEAD, POST']]);
}

/** Serialises a response; `head` omits the body (HEAD request), `close` adds Connection: close. */
export function serialize(res: AppResponse, options: { head?: boolean; close?: boolean; version?: string; noLength?: boolean } = {}): Buffer {
  const lines = [`HTTP/${options.version ?? '1.1'} ${res.status} ${res.reason}`];
  for (const [n, v] of res.headers) lines.push(`${n}: ${v}`);
  if (!options.noLength) lines.push(`Content-Length: ${Buffer.byteLength(res.body)}`);
  if (options.close) lines.push('Connection: close');
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${options.head ? '' : res.body}`, 'latin1');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A seeded random source (mulberry32), so that a "random" server misbehaves the same way each run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// A minimal raw HTTP/1.1 server on which behaviours are built
// ---------------------------------------------------------------------------------------------

export interface RawConnection {
  readonly socket: net.Socket;
  /** Per-connection state a behaviour may keep. */
  readonly state: Record<string, unknown>;
  write(bytes: Buffer | string): void;
  /** Sends FIN after pending writes. */
  end(): void;
  readonly closed: boolean;
  /** Starts a timer that is cleared when the connection or server closes. */
  later(ms: number, fn: () => void): void;
}

export interface Behaviour {
  /** Return false to leave a request's body unread: its bytes are then parsed as the next request. */
  readBody?(req: RawRequest, conn: RawConnection): boolean;
  handle(req: RawRequest, conn: RawConnection): void | Promise<void>;
  onConnection?(conn: RawConnection): void;
}

const MAX_HEAD = 64 * 1024;

export async function rawServer(behaviour: Behaviour): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const connTimers = new Set<NodeJS.Timeout>();
    socket.on('close', () => {
      sockets.delete(socket);
      for (const t of connTimers) {
        clearTimeout(t);
        timers.delete(t);
      }
    });
    let buf: Buffer = Buffer.alloc(0);
    let busy = false;
    const conn: RawConnection = {
      socket,
      state: {},
      write: (bytes) => {
        if (!socket.destroyed && !socket.writableEnded) socket.write(bytes);
      },
      end: () => {
        if (!socket.destroyed) socket.end();
      },
      get closed() {
        return socket.destroyed || socket.writableEnded;
      },
      later: (ms, fn) => {
        const t = setTimeout(() => {
          connTimers.delete(t);
          timers.delete(t);
          if (!socket.destroyed) fn();
        }, ms);
        connTimers.add(t);
        timers.add(t);
      },
    };
    behaviour.onConnection?.(conn);

    /** One request from the buffer, or undefined when more bytes are needed. */
    const next = (): RawRequest | 'bad' | undefined => {
      let start = 0;
      while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
      buf = buf.subarray(start);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return buf.length > MAX_HEAD ? 'bad' : undefined;
      const [line, ...fields] = buf.toString('latin1', 0, end).split('\r\n');
      const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(line);
      if (!m) return 'bad';
      const headers: Record<string, string> = {};
      for (const f of fields) {
        const i = f.indexOf(':');
        if (i <= 0) return 'bad';
        headers[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1).trim();
      }
      const contentLength = Number(headers['content-length'] ?? '0');
      const req: RawRequest = { method: m[1], target: m[2], path: m[2].split('?')[0], version: m[3], headers, contentLength };
      const readBody = behaviour.readBody?.(req, conn) ?? true;
      const total = end + 4 + (readBody ? contentLength : 0);
      if (buf.length < total) return undefined;
      buf = buf.subarray(total);
      return req;
    };

    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        while (!conn.closed) {
          const req = next();
          if (req === undefined) break;
          if (req === 'bad') {
            conn.write(serialize({ status: 400, reason: 'Bad Request', headers: [['Content-Type', 'text/plain']], body: 'Bad Request' }, { close: true }));
            conn.end();
            break;
          }
          await behaviour.handle(req, conn);
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      void pump();
    });
  });
  return listen(server, async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const s of sockets) s.destroy();
  });
}

function listen(server: net.Server | http.Server, beforeClose: () => Promise<void> | void): Promise<TestServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: async () => {
          await beforeClose();
          await new Promise<void>((done) => server.close(() => done()));
        },
      });
    });
  });
}

/** Answers with the app, keeping the connection alive (HTTP/1.1) unless the client asked to close. */
function respond(req: RawRequest, conn: RawConnection, res: AppResponse = appResponse(req)): void {
  const close = req.headers.connection?.toLowerCase() === 'close';
  conn.write(serialize(res, { head: req.method === 'HEAD', close }));
  if (close) conn.end();
}

// ---------------------------------------------------------------------------------------------
// Healthy servers
// ---------------------------------------------------------------------------------------------

/** Node's own http server running the app. */
export async function nodeHttpServer(): Promise<TestServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = appResponse({ method: req.method ?? 'GET', path, contentLength: Number(req.headers['content-length'] ?? '0'), headers: req.headers });
    res.writeHead(answer.status, answer.reason, Object.fromEntries(answer.headers.map(([n, v]) => [n, v])));
    res.end(req.method === 'HEAD' ? undefined : answer.body);
    // Drain whatever body is left so the connection stays usable.
    req.resume();
  });
  server.keepAliveTimeout = 30_000;
  return listen(server, () => {
    server.closeAllConnections();
  });
}

/**
 * Ends every connection after `limit` answers with Connection: close, as Apache does after
 * MaxKeepAliveRequests (100 by default): normal, and the long pass must go on on a new connection.
 */
export function keepAliveLimitServer(limit: number): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      const nth = ((conn.state.requests as number | undefined) ?? 0) + 1;
      conn.state.requests = nth;
      const close = nth >= limit;
      conn.write(serialize(appResponse(req), { head: req.method === 'HEAD', close }));
      if (close) conn.end();
    },
  });
}

/**
 * Answers like nginx serving a static file: 400 for an undecodable path and 413 for a large body,
 * both with Connection: close; the same 405 page for POST and TRACE; credentials ignored; one
 * constant 404 page. Healthy: steps that answer alike and steps that close must not look like a
 * desync. Overloaded on request: `rate503` of the requests (seeded) get 503 instead, and the
 * first `busyHealthGets` health GETs without credentials get 503 (12 covers every try of the
 * control pass for health and health-again, which run first); a 503 to a body it did not read
 * closes the connection, as a server must.
 */
export function staticServerLike(overload: { rate503?: number; seed?: number; busyHealthGets?: number } = {}): Promise<TestServer> {
  const page = (status: number, reason: string): AppResponse => ({
    status,
    reason,
    headers: [['Content-Type', 'text/html']],
    body: `<html><head><title>${status} ${reason}</title></head><body><center><h1>${status} ${reason}</h1></center></body></html>`,
  });
  const random = seededRandom(overload.seed ?? 1);
  let healthGets = 0;
  return rawServer({
    readBody: (req) => req.contentLength <= BODY_LIMIT,
    handle(req, conn) {
      let res: AppResponse;
      let close = false;
      const healthGet = req.method === 'GET' && req.path === HEALTH_PATH && req.headers.authorization === undefined;
      if (healthGet) healthGets += 1;
      const busy = (overload.rate503 !== undefined && random() < overload.rate503) || (healthGet && healthGets <= (overload.busyHealthGets ?? 0));
      if (busy) {
        close = req.contentLength > BODY_LIMIT;
        conn.write(serialize(page(503, 'Service Temporarily Unavailable'), { head: req.method === 'HEAD', close }));
        if (close) conn.end();
        return;
      }
      try {
        decodeURIComponent(req.path);
        if (req.path !== HEALTH_PATH) res = page(404, 'Not Found');
        else if (req.contentLength > BODY_LIMIT) [res, close] = [page(413, 'Request Entity Too Large'), true];
        else if (req.method === 'GET' || req.method === 'HEAD') res = { status: 200, reason: 'OK', headers: [['Content-Type', 'application/json']], body: HEALTH_BODY };
        else res = page(405, 'Not Allowed');
      } catch {
        [res, close] = [page(400, 'Bad Request'), true];
      }
      conn.write(serialize(res, { head: req.method === 'HEAD', close }));
      if (close) conn.end();
    },
  });
}

/** Closes the connection after every error response (with Connection: close). */
export function closeAfterErrorServer(): Promise<TestServer> {
  return rawServer({
    readBody: (req) => req.contentLength <= BODY_LIMIT,
    handle(req, conn) {
      const res = appResponse(req);
      const close = res.status >= 400 || req.headers.connection?.toLowerCase() === 'close';
      conn.write(serialize(res, { head: req.method === 'HEAD', close }));
      if (close) conn.end();
    },
  });
}

/** Rejects a too-large body by closing the connection without an answer. */
export function rejectLargeByClosingServer(): Promise<TestServer> {
  return rawServer({
    readBody: (req) => req.contentLength <= BODY_LIMIT,
    handle(req, conn) {
      if (req.contentLength > BODY_LIMIT) {
        conn.socket.destroy();
        return;
      }
      respond(req, conn);
    },
  });
}

/** Speaks HTTP/1.0: bodies delimited by the close, one request per connection. */
export function http10Server(): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      conn.write(serialize(appResponse(req), { head: req.method === 'HEAD', version: '1.0', noLength: true }));
      conn.end();
    },
  });
}

/** Keep-alive server that sends 408 and closes a connection idle for `idleTimeoutMs`. */
export function idle408Server(idleTimeoutMs: number): Promise<TestServer> {
  const arm = (conn: RawConnection): void => {
    const generation = ((conn.state.generation as number | undefined) ?? 0) + 1;
    conn.state.generation = generation;
    conn.later(idleTimeoutMs, () => {
      if (conn.state.generation !== generation || conn.state.busy) return;
      conn.write(serialize({ status: 408, reason: 'Request Timeout', headers: [['Content-Type', 'text/plain']], body: 'idle' }, { close: true }));
      conn.end();
    });
  };
  return rawServer({
    onConnection: arm,
    readBody: (req, conn) => {
      // A request has started arriving: the idle timer must not fire while its body streams in.
      conn.state.busy = true;
      return req.contentLength <= 4 * 1024 * 1024;
    },
    handle(req, conn) {
      conn.state.busy = false;
      respond(req, conn);
      arm(conn);
    },
  });
}

/** Answers a share of requests with 503 (random, or seeded to repeat), keeping the connection alive. */
export function random503Server(rate: number, seed?: number): Promise<TestServer> {
  const random = seed === undefined ? Math.random : seededRandom(seed);
  return rawServer({
    handle(req, conn) {
      if (random() < rate) {
        respond(req, conn, { status: 503, reason: 'Service Unavailable', headers: [['Content-Type', 'text/plain']], body: 'try again' });
      } else {
        respond(req, conn);
      }
    },
  });
}

/** Delays every answer by a random time in [minMs, maxMs]. */
export function slowServer(minMs: number, maxMs: number): Promise<TestServer> {
  return rawServer({
    async handle(req, conn) {
      await sleep(minMs + Math.random() * (maxMs - minMs));
      respond(req, conn);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Servers with the incident's class of bug
// ---------------------------------------------------------------------------------------------

/** Writes the 413 twice in one write. */
export function duplicateSameWriteServer(): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      const res = appResponse(req);
      if (res.status === 413) {
        const once = serialize(res, { head: req.method === 'HEAD' });
        conn.write(Buffer.concat([once, once]));
        return;
      }
      respond(req, conn, res);
    },
  });
}

/** Writes the 413, then the same 413 again `delayMs` later while the connection is idle. */
export function duplicateDelayedServer(delayMs: number): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      const res = appResponse(req);
      respond(req, conn, res);
      if (res.status === 413) {
        const again = serialize(res);
        conn.later(delayMs, () => conn.write(again));
      }
    },
  });
}

/**
 * The incident's bug as the local demo reproduces it: after a 413 on a connection, every later
 * request on it gets the previous request's answer (a permanent off-by-one queue).
 */
export function offByOneServer(): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      const res = appResponse(req);
      const bytes = serialize(res, { head: req.method === 'HEAD' });
      const queued = conn.state.queued as Buffer | undefined;
      if (queued) {
        conn.state.queued = serialize(res, { head: req.method === 'HEAD' });
        conn.write(queued);
        return;
      }
      conn.write(bytes);
      if (res.status === 413) conn.state.queued = bytes;
    },
  });
}

/**
 * An overloaded server with the incident's bug: answers `rate` of requests with 503 (seeded) and,
 * after a 413 on a connection, every later request gets the previous request's answer (503s
 * included). The 503s must not hide the shift.
 */
export function flakyOffByOneServer(rate: number, seed: number): Promise<TestServer> {
  const random = seededRandom(seed);
  return rawServer({
    handle(req, conn) {
      const res = random() < rate ? { status: 503, reason: 'Service Unavailable', headers: [['Content-Type', 'text/plain']] as Array<[string, string]>, body: 'overloaded' } : appResponse(req);
      const bytes = serialize(res, { head: req.method === 'HEAD' });
      const queued = conn.state.queued as Buffer | undefined;
      if (queued) {
        conn.state.queued = bytes;
        conn.write(queued);
        return;
      }
      conn.write(bytes);
      if (res.status === 413) conn.state.queued = bytes;
    },
  });
}

/** How a server that sends an answer twice sends the second copy. */
export type DoubleHow =
  /** Both copies in one write: bytes follow the answer in the same read. */
  | 'same-write'
  /**
   * The copy answers the next request, whose own answer then answers the one after: every later
   * answer on the connection belongs to the request before it (the incident).
   */
  | 'next-answer';

/**
 * Sends twice every answer `when` picks (given the request's number on its connection, from 1);
 * every other answer is right, until a `next-answer` copy shifts the connection for good.
 */
export function doubleAnswerServer(when: (req: RawRequest, res: AppResponse, nth: number) => boolean, how: DoubleHow = 'same-write'): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      const nth = ((conn.state.requests as number | undefined) ?? 0) + 1;
      conn.state.requests = nth;
      const res = appResponse(req);
      const bytes = serialize(res, { head: req.method === 'HEAD' });
      const queued = conn.state.queued as Buffer | undefined;
      if (queued) {
        conn.state.queued = bytes;
        conn.write(queued);
        return;
      }
      if (!when(req, res, nth)) {
        conn.write(bytes);
        return;
      }
      if (how === 'same-write') {
        conn.write(Buffer.concat([bytes, bytes]));
      } else {
        conn.write(bytes);
        conn.state.queued = bytes;
      }
    },
  });
}

/**
 * Healthy for the first `fromRequest - 1` requests on a connection; from then on it sends every
 * 4XX answer twice. Short sequences never get that far on one connection.
 */
export function doubleErrorFromServer(fromRequest: number, how: DoubleHow = 'same-write'): Promise<TestServer> {
  return doubleAnswerServer((_req, res, nth) => nth >= fromRequest && res.status >= 400 && res.status < 500, how);
}

/** Sends every 400 answer twice: a bug limited to rejecting a malformed request. */
export function double400Server(how: DoubleHow = 'same-write'): Promise<TestServer> {
  return doubleAnswerServer((_req, res) => res.status === 400, how);
}

/** Sends every 401 answer twice: a bug limited to rejecting credentials. */
export function double401Server(how: DoubleHow = 'same-write'): Promise<TestServer> {
  return doubleAnswerServer((_req, res) => res.status === 401, how);
}

/** Sends the answer to a small successful POST twice: a bug limited to writes that succeed. */
export function doubleSmallPostServer(how: DoubleHow = 'same-write'): Promise<TestServer> {
  return doubleAnswerServer((req, res) => req.method === 'POST' && res.status === 200, how);
}

/**
 * Answers `rate` of requests with the response a request on another connection got, as a proxy
 * that hands an upstream answer to the wrong client does. Seeded, so a run repeats. Framing stays
 * right (a HEAD answer is only swapped for another HEAD answer), so only the content tells.
 */
export function crossConnectionServer(rate: number, seed = 1): Promise<TestServer> {
  const random = seededRandom(seed);
  const recent: Array<{ readonly connection: number; readonly head: boolean; readonly bytes: Buffer }> = [];
  let connections = 0;
  return rawServer({
    onConnection(conn) {
      connections += 1;
      conn.state.id = connections;
    },
    handle(req, conn) {
      const head = req.method === 'HEAD';
      const own = serialize(appResponse(req), { head });
      const others = recent.filter((r) => r.connection !== conn.state.id && r.head === head);
      const other = others.length > 0 && random() < rate ? others[Math.floor(random() * others.length)] : undefined;
      recent.push({ connection: conn.state.id as number, head, bytes: own });
      if (recent.length > 64) recent.shift();
      conn.write(other ? other.bytes : own);
    },
  });
}

/**
 * Answers the `nth` request it receives (counted over all connections, from 1) with the response
 * of the request it received just before, from another connection when requests come one per
 * connection, as in the control pass. Everything else is right: one misrouted answer, on a fresh
 * connection.
 */
export function misroutedOnceServer(nth: number): Promise<TestServer> {
  let received = 0;
  let previous: Buffer | undefined;
  return rawServer({
    handle(req, conn) {
      received += 1;
      const own = serialize(appResponse(req), { head: req.method === 'HEAD' });
      conn.write(received === nth && previous ? previous : own);
      previous = own;
    },
  });
}

/** Answers 413 as soon as it sees a too-large Content-Length and parses the unread body as requests. */
export function early413Server(): Promise<TestServer> {
  return rawServer({
    readBody: (req) => req.contentLength <= BODY_LIMIT,
    handle(req, conn) {
      respond(req, conn);
    },
  });
}

/** Sends junk bytes `delayMs` after every response, while the connection is idle. */
export function idleJunkServer(delayMs: number): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      respond(req, conn);
      conn.later(delayMs, () => conn.write('\x00\x17junk!\r\n'));
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Hostile servers
// ---------------------------------------------------------------------------------------------

/** Answers every request with bytes that are not HTTP. */
export function garbageServer(): Promise<TestServer> {
  return rawServer({
    handle(_req, conn) {
      conn.write('GARBAGE\x00\x01 this is not a status line\r\n\r\n');
    },
  });
}

/** Writes `bytes` over and over, as fast as the socket takes them, until the connection closes. */
function writeForever(conn: { readonly closed: boolean; readonly socket: import('node:net').Socket }, bytes: Buffer): void {
  const pump = (): void => {
    while (!conn.closed && conn.socket.write(bytes)) {
      /* keep writing until the socket pushes back */
    }
    if (!conn.closed) conn.socket.once('drain', pump);
  };
  pump();
}

/** Sends a status line and then header fields forever. */
export function endlessHeadersServer(): Promise<TestServer> {
  return rawServer({
    handle(_req, conn) {
      conn.write('HTTP/1.1 200 OK\r\n');
      writeForever(conn, Buffer.from(`X-Filler: ${'f'.repeat(1000)}\r\n`));
    },
  });
}

/** Sends a chunked body that never ends. */
export function endlessBodyServer(): Promise<TestServer> {
  return rawServer({
    handle(_req, conn) {
      conn.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
      writeForever(conn, Buffer.from(`400\r\n${'b'.repeat(0x400)}\r\n`));
    },
  });
}

/** Promises a body it never sends (Content-Length larger than what comes, then silence). */
export function stalledBodyServer(): Promise<TestServer> {
  return rawServer({
    handle(_req, conn) {
      conn.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nonly a few bytes');
    },
  });
}

/** Accepts connections and never answers. */
export function silentServer(): Promise<TestServer> {
  return rawServer({ handle: () => undefined });
}

/** Starts a response and resets the connection in the middle of it. */
export function resetMidResponseServer(): Promise<TestServer> {
  return rawServer({
    handle(_req, conn) {
      conn.socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nhalf a bo', () => {
        // Let the bytes leave, and the client read them, before the reset: a reset drops bytes
        // still unread in the client's kernel, and on a busy machine 5 ms was not always enough.
        conn.later(50, () => conn.socket.resetAndDestroy());
      });
    },
  });
}

/**
 * Answers health requests `delayMs` late without holding back the next request: sequential
 * clients see nothing wrong, pipelined requests get their answers out of order.
 */
export function outOfOrderServer(delayMs: number): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      if (req.path === HEALTH_PATH && req.method === 'GET') {
        conn.later(delayMs, () => respond(req, conn));
        return;
      }
      respond(req, conn);
    },
  });
}

/** Healthy until `broken.on` is set, then off by one after a 413 (like a bad backend joining). */
export function switchableServer(broken: { on: boolean }): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      const res = appResponse(req);
      const bytes = serialize(res, { head: req.method === 'HEAD' });
      const queued = conn.state.queued as Buffer | undefined;
      if (queued) {
        conn.state.queued = bytes;
        conn.write(queued);
        return;
      }
      conn.write(bytes);
      if (broken.on && res.status === 413) conn.state.queued = bytes;
    },
  });
}

/** Sends an empty line (CRLF) shortly after every response, which clients must ignore. */
export function strayCrlfServer(delayMs: number): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      respond(req, conn);
      conn.later(delayMs, () => conn.write('\r\n'));
    },
  });
}

/** Sends 408 on a connection idle for `idleTimeoutMs` but keeps it open. */
export function idle408KeptOpenServer(idleTimeoutMs: number): Promise<TestServer> {
  return rawServer({
    handle(req, conn) {
      respond(req, conn);
      const generation = ((conn.state.generation as number | undefined) ?? 0) + 1;
      conn.state.generation = generation;
      conn.later(idleTimeoutMs, () => {
        if (conn.state.generation === generation) {
          conn.write(serialize({ status: 408, reason: 'Request Timeout', headers: [['Content-Type', 'text/plain']], body: 'idle' }));
        }
      });
    },
  });
}
