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
 *
 * Split by idea: this file holds the server (connections, capacity, faults applied, the 413
 * desync, drain, stats); `local/demo-api.ts` holds the API's routes and answers, the response
 * identity, the demo channels and the body reader; `local/demo-faults.ts` holds the fault and
 * drain-mode definitions and their validation. Every export stays available from here.
 */
import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { DEFAULT_BODY_LIMIT_BYTES, DemoApi, demoChannels, readBody, type BodyResult, type Computed } from './demo-api';
import { DRAIN_MODES, mergeFaults, NO_FAULTS, type DemoFaults, type DrainMode } from './demo-faults';
import { checkInteger, checkRange, closeServer, listenOnLoopback, LOOPBACK_HOST, sleep } from './net';
import type { RandomSource } from './random';
import { PoolClosedError, PoolSaturatedError, type WorkerPool } from './worker-pool';

export { DEFAULT_BODY_LIMIT_BYTES, demoChannels, type DemoResponseIdentity } from './demo-api';
export { NO_FAULTS, type DemoFaults, type DrainMode } from './demo-faults';

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

interface SocketState {
  /** Requests on one connection are handled one after the other, like a simple server. */
  chain: Promise<void>;
  /** The response owed to the previous request once the connection is shifted. */
  queued: Computed | undefined;
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
  const api = new DemoApi(version, channels, () => {
    counters.eventsAccepted += 1;
  });

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
          send(res, api.respond(req, 500, { error: 'internal error', detail: (err as Error).message }));
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
      return api.respond(
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
        return api.respond(req, 401, { error: 'unauthorized', fault: 'unauthorizedEvery' }, { 'www-authenticate': 'Basic realm="demo"' });
      }
    }
    if (!isHealth && pool !== undefined) {
      try {
        await pool.run(serviceTimeMs);
      } catch (err) {
        if (err instanceof PoolSaturatedError || err instanceof PoolClosedError) {
          counters.capacityRejections += 1;
          return api.respond(req, 503, { error: 'over capacity', detail: err.message }, { 'retry-after': '1' });
        }
        throw err;
      }
    } else if (!isHealth && serviceTimeMs > 0) {
      await sleep(serviceTimeMs, closing.signal);
    }
    if (faults.errorRate5xx > 0 && random() < faults.errorRate5xx) {
      const status = random() < 0.5 ? 500 : 503;
      return api.respond(req, status, { error: status === 500 ? 'internal server error' : 'service unavailable', fault: 'errorRate5xx' });
    }
    return api.route(req, url, segments, body.body);
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
