/**
 * Demo REST servers for the local rehearsal: the old side (v1) and the new side (v2), each a
 * plain Node `http` server on 127.0.0.1 with Keep-Alive, serving a small API shaped like the
 * Pusher Channels REST API (the API of the incident):
 *
 * - `GET  /apps/:appId/channels`        list of occupied channels (`?filter_by_prefix=`, `?info=user_count`)
 * - `GET  /apps/:appId/channels/:name`  one channel: `occupied`, `subscription_count`, `user_count`
 * - `POST /apps/:appId/events`          publish `{ name, channels, data }`; over the body limit → 413,
 *                                       invalid JSON → 400
 * - `GET  /health`                      liveness
 *
 * Every response echoes the request's `X-Request-Id` header and carries `requestId`, `method`,
 * `path` and `served_by` in its JSON body, so that a client can tell whether a response is the
 * answer to its own request.
 *
 * Faults (settable at run time, meant for v2): a 5XX rate, an unexpected 401 on every Nth API
 * request, added latency, a crash (connections reset, new ones reset at once), and
 * `desyncAfter413`, the incident's bug: see `DemoFaults`.
 * The old side can be backed by a `WorkerPool`, so that its capacity is finite.
 *
 * Drain mode (settable at run time, meant for a side that was rolled back, see `DrainMode`):
 * `close` answers every request with `Connection: close`, so each Keep-Alive connection ends after
 * its current request and its client has to connect (and, with DNS, look the name up) again;
 * `refuse` also stops accepting connections, as a side taken out of service.
 */
import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { checkInteger, checkRange, closeServer, listenOnLoopback, LOOPBACK_HOST, sleep } from './net';
import type { RandomSource } from './random';
import { PoolClosedError, PoolSaturatedError, type WorkerPool } from './worker-pool';

/** The event body limit of the demo API (the Pusher API's limit on event data is 10 KB). */
export const DEFAULT_BODY_LIMIT_BYTES = 10 * 1024;

/** Faults a demo server can be told to show. */
export interface DemoFaults {
  /** Share of requests (0–1) answered with a 503 or 500 instead of their real answer. */
  readonly errorRate5xx: number;
  /**
   * Answer every Nth API request (under `/apps/`) with a 401 its client did not ask for, as an
   * authentication layer gone wrong would; 0 turns it off. Counting starts when the value is set
   * (the Nth API request after it gets the first 401). `/health` and unknown paths are not
   * affected (health checks do not go through the API's authentication), nor are bodies over the
   * limit (their 413 comes first). The 401 carries the request's own identity: it is the right
   * request's answer, with a wrong status.
   */
  readonly unauthorizedEvery: number;
  /** Extra delay before every answer, ms. */
  readonly addedLatencyMs: number;
  /**
   * The process "crashed": open connections are reset (TCP RST) and new ones are reset as soon
   * as they are accepted, so a client or proxy sees ECONNRESET, as with a dead process.
   */
  readonly crashed: boolean;
  /**
   * The incident's bug. After this server answers a 413 on a connection, that connection keeps a
   * one-response queue: every later request on it gets the response computed for the PREVIOUS
   * request on that connection (the first one after the 413 gets the 413 again), and its own
   * response waits for the next request. The shift is permanent for the connection (turning the
   * fault off later does not heal connections already shifted; only closing them does), exactly
   * like a server that wrote one 413 twice.
   */
  readonly desyncAfter413: boolean;
}

/**
 * How a server lets go of its clients.
 * - `off`: Keep-Alive as usual.
 * - `close`: every response carries `Connection: close` and its connection is closed after it
 *   (connections that are idle now get theirs on their next request, so no request ever races
 *   a close), while new connections are still accepted.
 * - `refuse`: `close`, and the server stops listening: new connections are refused
 *   (ECONNREFUSED, nothing sent), as a side taken out of service.
 */
export type DrainMode = 'off' | 'close' | 'refuse';

const DRAIN_MODES: readonly DrainMode[] = ['off', 'close', 'refuse'];

/** No faults. */
export const NO_FAULTS: DemoFaults = Object.freeze({ errorRate5xx: 0, unauthorizedEvery: 0, addedLatencyMs: 0, crashed: false, desyncAfter413: false });

/** Options of `startDemoServer`. */
export interface DemoServerOptions {
  /** Version label returned as `served_by` (e.g. "v1", "v2"). */
  readonly version: string;
  /**
   * TCP port on 127.0.0.1; 0 picks a free one. A port in use fails with `PortInUseError`.
   * @default 0
   */
  readonly port?: number;
  /**
   * Largest accepted request body; larger bodies get 413.
   * @default DEFAULT_BODY_LIMIT_BYTES (10 KiB)
   */
  readonly bodyLimitBytes?: number;
  /**
   * Idle time before the server closes a Keep-Alive connection (announced in `Keep-Alive:
   * timeout=`). Clients and the router use a shorter idle timeout so that they never reuse a
   * connection the server is closing.
   * @default 5000
   */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Faults at start.
   * @default NO_FAULTS
   */
  readonly faults?: Partial<DemoFaults>;
  /**
   * Random source for the 5XX fault (the 401 fault is deterministic).
   * @default Math.random
   */
  readonly random?: RandomSource;
  /**
   * Worker pool that backs this server's capacity: each API request (not `/health`) occupies a
   * worker for `serviceTimeMs`; when the pool refuses (queue full or waited too long), the answer
   * is 503.
   * @default - unlimited capacity
   */
  readonly workerPool?: WorkerPool;
  /**
   * Service time of one API request, ms (with or without a worker pool).
   * @default 0
   */
  readonly serviceTimeMs?: number;
  /**
   * Number of demo channels the API knows.
   * @default 24
   */
  readonly channelCount?: number;
}

/** Counters of one demo server since it started. */
export interface DemoServerStats {
  readonly version: string;
  /** Requests received (crashed resets included). */
  readonly requests: number;
  /** Responses sent, by status code. */
  readonly responsesByStatus: Readonly<Record<string, number>>;
  /** Responses that were not the answer to the request they went out for (desync fault). */
  readonly desyncedResponses: number;
  /** Connections that entered the shifted state after a 413. */
  readonly shiftedConnections: number;
  readonly connectionsAccepted: number;
  readonly openConnections: number;
  /** Connections reset because the server was "crashed". */
  readonly crashResets: number;
  /** Requests refused for lack of capacity (worker pool). */
  readonly capacityRejections: number;
  /** 401s sent by the `unauthorizedEvery` fault. */
  readonly unauthorizedFaults: number;
  /** Events accepted by `POST /apps/:appId/events`. */
  readonly eventsAccepted: number;
  /** The drain mode in force. */
  readonly drainMode: DrainMode;
  /** Responses sent with `Connection: close` because of the drain: connections it ended. */
  readonly drainedConnections: number;
}

/** A running demo server. */
export interface DemoServer {
  /** Base URL, e.g. `http://127.0.0.1:43125`. */
  readonly url: string;
  readonly port: number;
  readonly version: string;
  /** Current faults. */
  faults(): DemoFaults;
  /** Changes some faults (the others stay); returns the faults now in force. Validates values. */
  setFaults(faults: Partial<DemoFaults>): DemoFaults;
  stats(): DemoServerStats;
  /**
   * Sets the drain mode (see `DrainMode`); resolves once it is in force (for `refuse`, once the
   * server stopped listening; from `refuse` back to `close` or `off`, once it listens again on the
   * same port, which rejects with `PortInUseError` if the port was taken in between).
   */
  setDrain(mode: DrainMode): Promise<DrainMode>;
  /** Stops the server and destroys its connections. */
  close(): Promise<void>;
}

/** The identity part of every JSON response body. */
export interface DemoResponseIdentity {
  /** The request's X-Request-Id, or null when it had none. */
  readonly requestId: string | null;
  readonly method: string;
  /** The request target as received (path and query). */
  readonly path: string;
  /** The version of the server that computed the response. */
  readonly served_by: string;
}

/** A response computed for one request, kept whole so that the desync fault can replay it. */
interface Computed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Close the connection after this response (body too large to drain). */
  readonly close: boolean;
}

interface SocketState {
  /** Requests on one connection are handled one after the other, like a simple server. */
  chain: Promise<void>;
  /** The response owed to the previous request once the connection is shifted. */
  queued: Computed | undefined;
}

type BodyResult =
  | { readonly kind: 'ok'; readonly body: Buffer }
  | { readonly kind: 'too-large'; readonly bytes: number; readonly drained: boolean }
  | { readonly kind: 'aborted' };

const CHANNEL_NAME = /^[A-Za-z0-9_\-=@,.;]{1,200}$/;
const APP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The demo channel names a server with `count` channels knows (deterministic). */
export function demoChannels(count = 24): string[] {
  checkInteger(count, 0, 10_000, 'channelCount');
  const kinds = ['presence-room', 'private-orders', 'news'];
  return Array.from({ length: count }, (_, i) => `${kinds[i % kinds.length]}-${Math.floor(i / kinds.length) + 1}`);
}

/** A stable small number from a name (so that counts are the same on v1 and v2). */
function stableCount(name: string, modulo: number): number {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i += 1) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619) >>> 0;
  return hash % modulo;
}

/** `base` with the defined fields of `change` (validated) applied. */
function mergeFaults(base: DemoFaults, change: Partial<DemoFaults>): DemoFaults {
  validateFaults(change);
  const defined = Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined));
  return Object.freeze({ ...base, ...defined });
}

function validateFaults(faults: Partial<DemoFaults>): Partial<DemoFaults> {
  for (const key of Object.keys(faults)) {
    if (!(key in NO_FAULTS)) throw new TypeError(`unknown fault ${JSON.stringify(key)} (known: ${Object.keys(NO_FAULTS).join(', ')})`);
  }
  if (faults.errorRate5xx !== undefined) checkRange(faults.errorRate5xx, 0, 1, 'errorRate5xx');
  if (faults.unauthorizedEvery !== undefined) checkInteger(faults.unauthorizedEvery, 0, 1_000_000_000, 'unauthorizedEvery');
  if (faults.addedLatencyMs !== undefined) checkRange(faults.addedLatencyMs, 0, 600_000, 'addedLatencyMs');
  if (faults.crashed !== undefined && typeof faults.crashed !== 'boolean') {
    throw new TypeError(`crashed must be a boolean, got ${JSON.stringify(faults.crashed)}`);
  }
  if (faults.desyncAfter413 !== undefined && typeof faults.desyncAfter413 !== 'boolean') {
    throw new TypeError(`desyncAfter413 must be a boolean, got ${JSON.stringify(faults.desyncAfter413)}`);
  }
  return faults;
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

/**
 * Starts a demo server on 127.0.0.1. Resolves once it listens; rejects with `PortInUseError`
 * when `port` is taken, or with a RangeError/TypeError naming a bad option.
 */
export async function startDemoServer(options: DemoServerOptions): Promise<DemoServer> {
  const version = options.version;
  if (typeof version !== 'string' || !/^[A-Za-z0-9._-]{1,32}$/.test(version)) {
    throw new TypeError(`version must be 1–32 letters, digits, ".", "_" or "-", got ${JSON.stringify(version)}`);
  }
  const bodyLimit = checkInteger(options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES, 1, 64 * 1024 * 1024, 'bodyLimitBytes');
  // Bodies over the limit are read and discarded so that the connection stays usable (that is
  // what lets the desync fault bite), but only up to this cap; past it the connection is closed.
  // 4 MiB covers the probe's default oversized body (1 MiB + 1, just over nginx's default limit).
  const drainCap = Math.max(4 * 1024 * 1024, 4 * bodyLimit);
  const keepAliveTimeoutMs = checkInteger(options.keepAliveTimeoutMs ?? 5000, 1, 600_000, 'keepAliveTimeoutMs');
  const serviceTimeMs = checkRange(options.serviceTimeMs ?? 0, 0, 60_000, 'serviceTimeMs');
  const channels = demoChannels(options.channelCount ?? 24);
  const random = options.random ?? Math.random;
  const pool = options.workerPool;
  let faults: DemoFaults = mergeFaults(NO_FAULTS, options.faults ?? {});
  /** API requests counted towards the next fault 401 since `unauthorizedEvery` was last set. */
  let sinceUnauthorized = 0;

  const closing = new AbortController();
  // Every request sleeping (added latency, service time) listens to it until its sleep ends: with
  // the latency fault, dozens at once are normal, not a leak worth Node's warning.
  setMaxListeners(0, closing.signal);
  const sockets = new Set<Socket>();
  const socketStates = new WeakMap<Socket, SocketState>();
  const byStatus = new Map<number, number>();
  const counters = {
    requests: 0,
    desyncedResponses: 0,
    shiftedConnections: 0,
    connectionsAccepted: 0,
    crashResets: 0,
    capacityRejections: 0,
    unauthorizedFaults: 0,
    eventsAccepted: 0,
    drainedConnections: 0,
  };
  let drainMode: DrainMode = 'off';

  const crash = (socket: Socket): void => {
    counters.crashResets += 1;
    // resetAndDestroy sends a TCP RST: the peer sees ECONNRESET, as when a process dies.
    socket.resetAndDestroy();
  };

  const server = createServer((req, res) => {
    counters.requests += 1;
    const socket = req.socket;
    if (faults.crashed) {
      crash(socket);
      return;
    }
    let state = socketStates.get(socket);
    if (state === undefined) {
      state = { chain: Promise.resolve(), queued: undefined };
      socketStates.set(socket, state);
    }
    const current = state;
    current.chain = current.chain.then(() =>
      handle(req, res, current).catch((err: unknown) => {
        // A bug in the handler must not leave the client hanging: answer 500 if still possible.
        if (!res.headersSent && !res.destroyed) {
          send(res, computed(req, 500, { error: 'internal error', detail: (err as Error).message }));
        } else {
          res.destroy();
        }
      }),
    );
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  // Bounded waits for slow or stuck clients.
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    counters.connectionsAccepted += 1;
    if (faults.crashed) {
      crash(socket);
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  function computed(req: IncomingMessage, status: number, payload: Record<string, unknown>, extraHeaders: Record<string, string> = {}, close = false): Computed {
    const requestId = headerValue(req.headers['x-request-id']);
    const identity: DemoResponseIdentity = { requestId, method: req.method ?? '', path: req.url ?? '', served_by: version };
    const body = Buffer.from(JSON.stringify({ ...identity, ...payload }));
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(body.length),
      'x-served-by': version,
      ...extraHeaders,
    };
    if (requestId !== null) headers['x-request-id'] = requestId;
    if (close) headers.connection = 'close';
    return { status, headers, body, close };
  }

  function send(res: ServerResponse, response: Computed): void {
    byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1);
    if (drainMode !== 'off' && response.headers.connection !== 'close') {
      // Node closes the connection after a response that says so.
      counters.drainedConnections += 1;
      res.writeHead(response.status, { ...response.headers, connection: 'close' });
      res.end(response.body);
      return;
    }
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, state: SocketState): Promise<void> {
    const body = await readBody(req, bodyLimit, drainCap);
    if (body.kind === 'aborted' || res.destroyed) return;
    const own = await compute(req, body);
    if (res.destroyed || req.socket.destroyed) return;
    if (faults.crashed) {
      crash(req.socket);
      return;
    }
    let outgoing = own;
    if (state.queued !== undefined) {
      // Shifted connection: answer with the previous request's response, keep this one for the next.
      outgoing = state.queued;
      state.queued = own;
      counters.desyncedResponses += 1;
    } else if (own.status === 413 && !own.close && faults.desyncAfter413) {
      // The bug: the 413 is "written twice" — once now, once more for the next request.
      state.queued = own;
      counters.shiftedConnections += 1;
    }
    if (own.close) {
      // The body was too big to drain: say so and close. Keep reading (and discarding) for a
      // moment so that the kernel does not answer the unread bytes with a RST that could destroy
      // the 413 before the client reads it; then destroy the connection whatever happens.
      outgoing = { ...outgoing, headers: { ...outgoing.headers, connection: 'close' } };
      res.once('finish', () => {
        req.resume();
        setTimeout(() => req.socket.destroy(), 1000).unref();
      });
    }
    send(res, outgoing);
  }

  async function compute(req: IncomingMessage, body: Exclude<BodyResult, { kind: 'aborted' }>): Promise<Computed> {
    if (body.kind === 'too-large') {
      return computed(
        req,
        413,
        { error: 'request entity too large', limit_bytes: bodyLimit, received_bytes: body.bytes },
        {},
        !body.drained,
      );
    }
    const url = new URL(req.url ?? '/', `http://${LOOPBACK_HOST}`);
    const segments = url.pathname.split('/').filter((s) => s !== '');
    const isHealth = url.pathname === '/health';

    if (faults.addedLatencyMs > 0) await sleep(faults.addedLatencyMs, closing.signal);
    // Authentication comes before any work: a wrongly rejected request takes no worker.
    if (faults.unauthorizedEvery > 0 && segments[0] === 'apps') {
      sinceUnauthorized += 1;
      if (sinceUnauthorized >= faults.unauthorizedEvery) {
        sinceUnauthorized = 0;
        counters.unauthorizedFaults += 1;
        return computed(req, 401, { error: 'unauthorized', fault: 'unauthorizedEvery' }, { 'www-authenticate': 'Basic realm="demo"' });
      }
    }
    if (!isHealth && pool !== undefined) {
      try {
        await pool.run(serviceTimeMs);
      } catch (err) {
        if (err instanceof PoolSaturatedError || err instanceof PoolClosedError) {
          counters.capacityRejections += 1;
          return computed(req, 503, { error: 'over capacity', detail: err.message }, { 'retry-after': '1' });
        }
        throw err;
      }
    } else if (!isHealth && serviceTimeMs > 0) {
      await sleep(serviceTimeMs, closing.signal);
    }
    if (faults.errorRate5xx > 0 && random() < faults.errorRate5xx) {
      const status = random() < 0.5 ? 500 : 503;
      return computed(req, status, { error: status === 500 ? 'internal server error' : 'service unavailable', fault: 'errorRate5xx' });
    }
    return route(req, url, segments, body.body);
  }

  function route(req: IncomingMessage, url: URL, segments: string[], body: Buffer): Computed {
    const method = req.method ?? '';
    const notAllowed = (allow: string): Computed =>
      computed(req, 405, { error: `method ${method} not allowed`, allow }, { allow });

    if (url.pathname === '/health') {
      return method === 'GET' || method === 'HEAD' ? computed(req, 200, { status: 'ok', version }) : notAllowed('GET, HEAD');
    }
    if (segments[0] !== 'apps' || segments.length < 3 || segments.length > 4) {
      return computed(req, 404, { error: `no route for ${url.pathname}` });
    }
    const appId = segments[1]!;
    if (!APP_ID.test(appId)) return computed(req, 400, { error: `invalid app id ${JSON.stringify(appId)}` });

    if (segments[2] === 'channels' && segments.length === 3) {
      if (method !== 'GET') return notAllowed('GET');
      const prefix = url.searchParams.get('filter_by_prefix') ?? '';
      const withUsers = (url.searchParams.get('info') ?? '').split(',').includes('user_count');
      if (withUsers && !prefix.startsWith('presence-')) {
        return computed(req, 400, { error: 'info=user_count needs filter_by_prefix=presence-' });
      }
      const list: Record<string, { user_count?: number }> = {};
      for (const name of channels) {
        if (!name.startsWith(prefix) || stableCount(name, 50) === 0) continue;
        list[name] = withUsers ? { user_count: stableCount(`${name}#users`, 40) + 1 } : {};
      }
      return computed(req, 200, { channels: list });
    }
    if (segments[2] === 'channels' && segments.length === 4) {
      if (method !== 'GET') return notAllowed('GET');
      let name: string;
      try {
        name = decodeURIComponent(segments[3]!);
      } catch {
        return computed(req, 400, { error: `invalid channel name ${JSON.stringify(segments[3])}` });
      }
      if (!CHANNEL_NAME.test(name)) return computed(req, 400, { error: `invalid channel name ${JSON.stringify(name)}` });
      const known = channels.includes(name) && stableCount(name, 50) !== 0;
      const subscriptions = known ? stableCount(`${name}#subs`, 200) + 1 : 0;
      const info: Record<string, unknown> = { occupied: known, subscription_count: subscriptions };
      if (name.startsWith('presence-')) info.user_count = known ? stableCount(`${name}#users`, 40) + 1 : 0;
      return computed(req, 200, info);
    }
    if (segments[2] === 'events' && segments.length === 3) {
      if (method !== 'POST') return notAllowed('POST');
      return publish(req, body);
    }
    return computed(req, 404, { error: `no route for ${url.pathname}` });
  }

  function publish(req: IncomingMessage, body: Buffer): Computed {
    let event: unknown;
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return computed(req, 400, { error: 'body is not valid JSON', detail: (err as Error).message });
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return computed(req, 400, { error: 'body must be a JSON object with name, channels and data' });
    }
    const { name, channels: targets, channel, data } = event as Record<string, unknown>;
    const list = targets ?? (channel === undefined ? undefined : [channel]);
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      return computed(req, 400, { error: `name must be a string of 1–200 characters, got ${JSON.stringify(name)?.slice(0, 80)}` });
    }
    if (!Array.isArray(list) || list.length === 0 || list.length > 100 || !list.every((c) => typeof c === 'string' && CHANNEL_NAME.test(c))) {
      return computed(req, 400, { error: 'channels must be an array of 1–100 valid channel names' });
    }
    if (typeof data !== 'string') return computed(req, 400, { error: `data must be a string, got ${typeof data}` });
    counters.eventsAccepted += 1;
    return computed(req, 200, { accepted: true, name, channels: list.length });
  }

  const port = await listenOnLoopback(server, options.port ?? 0);

  async function setDrain(mode: DrainMode): Promise<DrainMode> {
    if (!DRAIN_MODES.includes(mode)) throw new TypeError(`drain mode must be one of ${DRAIN_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
    if (closing.signal.aborted) throw new Error(`demo server ${version} is closed`);
    const wasRefusing = drainMode === 'refuse';
    drainMode = mode;
    if (mode === 'refuse' && !wasRefusing && server.listening) {
      // Stop listening only: http.Server#close would also destroy the idle connections at once,
      // racing requests their clients are sending on them; the drain closes those after their
      // current request instead.
      // The listening socket closes at once; the close callback would wait for every connection.
      NetServer.prototype.close.call(server);
    } else if (mode !== 'refuse' && wasRefusing && !server.listening) {
      await listenOnLoopback(server, port);
    }
    return drainMode;
  }

  return {
    url: `http://${LOOPBACK_HOST}:${port}`,
    port,
    version,
    faults: () => faults,
    setFaults(change: Partial<DemoFaults>): DemoFaults {
      faults = mergeFaults(faults, change);
      if (change.unauthorizedEvery !== undefined) sinceUnauthorized = 0;
      if (faults.crashed) for (const socket of sockets) crash(socket);
      return faults;
    },
    stats(): DemoServerStats {
      return {
        version,
        ...counters,
        responsesByStatus: Object.fromEntries([...byStatus].map(([status, count]) => [String(status), count])),
        openConnections: sockets.size,
        drainMode,
      };
    },
    setDrain,
    async close(): Promise<void> {
      closing.abort();
      // Refusing, the server no longer listens, so closeServer would not call http.Server#close:
      // call it here for its own clean-up (it stops the server's connection checks).
      if (!server.listening) server.close();
      await closeServer(server);
    },
  };
}

/**
 * Reads a request body up to `limit` bytes. Bigger bodies are read on and discarded up to `cap`
 * (so the connection stays reusable); past `cap` reading stops (`drained: false`) and the caller
 * closes the connection.
 */
function readBody(req: IncomingMessage, limit: number, cap: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    return Promise.resolve({ kind: 'too-large', bytes: declared, drained: false });
  }
  return new Promise<BodyResult>((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes <= limit) chunks.push(chunk);
      else if (bytes > cap) {
        req.pause();
        finish({ kind: 'too-large', bytes, drained: false });
      }
    };
    const complete = (): BodyResult =>
      bytes > limit ? { kind: 'too-large', bytes, drained: true } : { kind: 'ok', body: Buffer.concat(chunks) };
    req.on('data', onData);
    req.once('end', () => finish(complete()));
    req.once('error', () => finish({ kind: 'aborted' }));
    req.once('close', () => finish(req.complete ? complete() : { kind: 'aborted' }));
  });
}
