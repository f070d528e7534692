/**
 * The local traffic router: a real HTTP reverse proxy on 127.0.0.1 that sends each request to the
 * old or the new side by the current weight, with Keep-Alive towards clients and towards both
 * upstreams (like the incident's new proxies, which is what let a shifted upstream connection
 * hand wrong answers to users). It implements the core's `TrafficPort` and records every
 * response per side in a `MetricsRecorder` for `LocalHealth`, except the probe's: a request with
 * the probe marker (`X-Cutover-Probe: 1`, lambda/probe/marker.ts) is routed and answered like any
 * other but left out of the judge's figures, as the application leaves it out of its metrics on
 * AWS, so that the probe's deliberate 404s, 400s and 405s are never judged as the side's errors.
 *
 * Routing is per request (not per client connection). After the weight drops to 0 (a rollback)
 * the router drains the new side's upstream Keep-Alive connections: idle ones are destroyed at
 * once and busy ones as soon as their response is done, so no connection that lingered on the
 * bad side (possibly shifted by a desync) is ever reused, even if the weight rises again later.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { RevisionConflictError, type Clock, type Side, type TrafficPort, type TrafficState } from '../lambda/core/ports';
import { isProbeRequest } from '../lambda/probe/marker';
import { LocalMetrics, type MetricsRecorder } from './metrics';
import { checkInteger, checkRange, closeServer, listenOnLoopback, LOOPBACK_HOST, parseLoopbackUrl, systemClock, urlPort } from './net';
import type { RandomSource } from './random';

/** Options of `startRouter`. */
export interface RouterOptions<M extends MetricsRecorder = LocalMetrics> {
  /** Base URL of the old side (loopback only), e.g. `http://127.0.0.1:41001`. */
  readonly oldUrl: string;
  /** Base URL of the new side (loopback only). */
  readonly newUrl: string;
  /**
   * Initial percent of requests sent to the new side, 0–100.
   * @default 0
   */
  readonly weight?: number;
  /**
   * TCP port on 127.0.0.1; 0 picks a free one. A port in use fails with `PortInUseError`.
   * @default 0
   */
  readonly port?: number;
  /**
   * Random source for the per-request choice (a seeded one makes a run repeatable).
   * @default Math.random
   */
  readonly random?: RandomSource;
  /**
   * Where responses are recorded.
   * @default - a new `LocalMetrics` on `clock` (read it back as `router.metrics`)
   */
  readonly metrics?: M;
  /**
   * Time source for recorded samples.
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
  /**
   * Longest an upstream may stay silent (no response bytes) before the request fails with 504.
   * @default 10_000
   */
  readonly upstreamTimeoutMs?: number;
  /**
   * Idle time before the router closes a client's Keep-Alive connection.
   * @default 5000
   */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Idle time after which the router drops an upstream Keep-Alive connection. Keep it below the
   * upstream servers' keep-alive timeout so the router never reuses a connection the server is
   * closing (Node also honours the servers' `Keep-Alive: timeout=` hint, minus one second).
   * @default 4000
   */
  readonly upstreamIdleTimeoutMs?: number;
  /**
   * Most concurrent connections to one upstream.
   * @default 256
   */
  readonly maxSocketsPerUpstream?: number;
}

/** Counters of one side as the router saw it. */
export interface RouterSideStats {
  /** Requests sent to this side, the probe's left out (see `probeRequests`). */
  readonly requests: number;
  /** Responses relayed or generated, by status code (502/504 for upstream failures), the probe's left out. */
  readonly responsesByStatus: Readonly<Record<string, number>>;
  /**
   * Requests with the probe marker sent to this side: forwarded and answered like any other, but
   * counted only here, never in `requests`, `responsesByStatus` or the metrics the judge reads.
   */
  readonly probeRequests: number;
  /** Upstream TCP connections opened. */
  readonly connectionsOpened: number;
  /** Idle GETs retried once on a fresh connection after the reused one was found closed. */
  readonly retries: number;
  /** Upstream connections destroyed by drains. */
  readonly connectionsDrained: number;
}

/** Counters of the router since it started. */
export interface RouterStats {
  readonly weight: number;
  readonly revision: string;
  readonly old: RouterSideStats;
  readonly new: RouterSideStats;
  /** Client TCP connections accepted. */
  readonly clientConnections: number;
  /** Requests whose client went away before the response was complete (not recorded as health). */
  readonly clientAborts: number;
  /** Times the router drained a side. */
  readonly drains: number;
}

/** A running router. */
export interface Router<M extends MetricsRecorder = LocalMetrics> {
  /** Base URL, e.g. `http://127.0.0.1:43127`. */
  readonly url: string;
  readonly port: number;
  /** The weight, as the core's `TrafficPort`. */
  readonly traffic: TrafficPort;
  /** Where responses are recorded (the one passed in options, or the router's own `LocalMetrics`). */
  readonly metrics: M;
  stats(): RouterStats;
  /**
   * Drops the Keep-Alive connections to one side: idle ones now, busy ones when their response is
   * done. Returns how many idle connections were destroyed now. Done automatically for the new
   * side when the weight is set to 0.
   */
  drain(side: Side): number;
  /** Stops the router and destroys client and upstream connections. */
  close(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded in either direction.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function stripHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * A keep-alive agent that counts the connections it opens and can be retired: a retired agent
 * never keeps a socket after its response (Node destroys the socket when `keepSocketAlive`
 * returns false), and its idle sockets are destroyed at retirement.
 */
class UpstreamAgent extends Agent {
  opened = 0;
  private retired = false;
  private readonly onDrained: () => void;

  constructor(idleTimeoutMs: number, maxSockets: number, onDrained: () => void) {
    super({ keepAlive: true, timeout: idleTimeoutMs, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
    this.onDrained = onDrained;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    this.opened += 1;
    return super.createConnection(options, callback);
  }

  override keepSocketAlive(socket: Duplex): boolean {
    if (this.retired) {
      this.onDrained();
      return false;
    }
    // The base implementation returns a boolean at run time (typed void in @types/node).
    return (super.keepSocketAlive(socket) as unknown as boolean | undefined) !== false;
  }

  /** Stops reusing sockets and destroys the idle ones; returns how many were destroyed. */
  retire(): number {
    this.retired = true;
    let destroyed = 0;
    for (const list of Object.values(this.freeSockets)) {
      for (const socket of [...(list ?? [])]) {
        socket.destroy();
        destroyed += 1;
      }
    }
    return destroyed;
  }

  /** True when the agent has no socket left (busy or idle). */
  empty(): boolean {
    const count = (d: NodeJS.ReadOnlyDict<unknown[]>): number => Object.values(d).reduce((n, l) => n + (l?.length ?? 0), 0);
    return count(this.sockets) === 0 && count(this.freeSockets) === 0;
  }
}

/** One upstream side: its URL, its current agent, the agents retired by drains, and counters. */
class Upstream {
  agent: UpstreamAgent;
  /** Agents replaced by a drain whose busy sockets have not finished yet (destroyed at close). */
  private readonly retired = new Set<UpstreamAgent>();
  private openedByRetired = 0;
  requests = 0;
  probeRequests = 0;
  retries = 0;
  drained = 0;
  readonly byStatus = new Map<number, number>();

  constructor(
    readonly name: Side,
    readonly url: URL,
    private readonly idleTimeoutMs: number,
    private readonly maxSockets: number,
  ) {
    this.agent = this.newAgent();
  }

  /** Replaces the agent; the old one destroys its idle sockets now and its busy ones when done. */
  drain(): number {
    const previous = this.agent;
    this.agent = this.newAgent();
    const destroyed = previous.retire();
    this.drained += destroyed;
    // A retired agent gets no new requests, so its count of opened connections is final.
    this.openedByRetired += previous.opened;
    for (const agent of [...this.retired]) if (agent.empty()) this.retired.delete(agent);
    if (!previous.empty()) this.retired.add(previous);
    return destroyed;
  }

  stats(): RouterSideStats {
    return {
      requests: this.requests,
      probeRequests: this.probeRequests,
      responsesByStatus: Object.fromEntries([...this.byStatus].map(([s, n]) => [String(s), n])),
      connectionsOpened: this.openedByRetired + this.agent.opened,
      retries: this.retries,
      connectionsDrained: this.drained,
    };
  }

  destroy(): void {
    this.agent.destroy();
    for (const agent of this.retired) agent.destroy();
    this.retired.clear();
  }

  private newAgent(): UpstreamAgent {
    return new UpstreamAgent(this.idleTimeoutMs, this.maxSockets, () => {
      this.drained += 1;
    });
  }
}

class UpstreamTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`upstream sent nothing for ${timeoutMs} ms`);
    this.name = 'UpstreamTimeoutError';
  }
}

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Starts the router on 127.0.0.1. Resolves once it listens; rejects with `PortInUseError` when
 * `port` is taken, or with a RangeError/TypeError naming a bad option.
 */
export async function startRouter<M extends MetricsRecorder = LocalMetrics>(options: RouterOptions<M>): Promise<Router<M>> {
  const oldUrl = parseLoopbackUrl(options.oldUrl, 'oldUrl');
  const newUrl = parseLoopbackUrl(options.newUrl, 'newUrl');
  let weight = checkRange(options.weight ?? 0, 0, 100, 'weight');
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;
  // Without a recorder, M is its default, LocalMetrics: the cast only restates that.
  const metrics = options.metrics ?? (new LocalMetrics({ clock }) as unknown as M);
  const upstreamTimeoutMs = checkInteger(options.upstreamTimeoutMs ?? 10_000, 1, 600_000, 'upstreamTimeoutMs');
  const keepAliveTimeoutMs = checkInteger(options.keepAliveTimeoutMs ?? 5000, 1, 600_000, 'keepAliveTimeoutMs');
  const upstreamIdleTimeoutMs = checkInteger(options.upstreamIdleTimeoutMs ?? 4000, 1, 600_000, 'upstreamIdleTimeoutMs');
  const maxSockets = checkInteger(options.maxSocketsPerUpstream ?? 256, 1, 65_536, 'maxSocketsPerUpstream');

  // Revisions: a per-router prefix (so a revision from another router never matches) and a counter.
  const instance = randomBytes(4).toString('hex');
  let writes = 0;
  let revision = `${instance}-0`;
  let clientConnections = 0;
  let clientAborts = 0;
  let drains = 0;

  const sides: Record<Side, Upstream> = {
    old: new Upstream('old', oldUrl, upstreamIdleTimeoutMs, maxSockets),
    new: new Upstream('new', newUrl, upstreamIdleTimeoutMs, maxSockets),
  };
  const drain = (name: Side): number => {
    drains += 1;
    return sides[name].drain();
  };

  const record = (side: Upstream, probe: boolean, status: number, startedAt: number): void => {
    // The probe's answers are its own business (it compares them itself), not the side's health.
    if (probe) return;
    side.byStatus.set(status, (side.byStatus.get(status) ?? 0) + 1);
    metrics.record(side.name, status, performance.now() - startedAt, clock.now());
  };

  const server = createServer((req, res) => {
    const side = sides[random() * 100 < weight ? 'new' : 'old'];
    const probe = isProbeRequest(req.headers);
    if (probe) side.probeRequests += 1;
    else side.requests += 1;
    forward(side, probe, req, res, performance.now(), true);
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  server.on('connection', () => {
    clientConnections += 1;
  });

  function forward(side: Upstream, probe: boolean, req: IncomingMessage, res: ServerResponse, startedAt: number, mayRetry: boolean): void {
    const method = req.method ?? 'GET';
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    const headers = stripHopByHop(req.headers);
    headers.host = side.url.host;
    const forwardedFor = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = forwardedFor === undefined ? (req.socket.remoteAddress ?? '') : `${String(forwardedFor)}, ${req.socket.remoteAddress ?? ''}`;
    const basePath = side.url.pathname === '/' ? '' : side.url.pathname.replace(/\/$/, '');

    let finished = false;
    const upstream = httpRequest(
      {
        host: side.url.hostname.replace(/^\[|\]$/g, ''),
        port: urlPort(side.url),
        method,
        path: `${basePath}${req.url ?? '/'}`,
        headers,
        agent: side.agent,
      },
      (upRes) => {
        const out = stripHopByHop(upRes.headers);
        out['x-cutover-side'] = side.name;
        const status = upRes.statusCode ?? 502;
        res.writeHead(status, out);
        upRes.pipe(res);
        upRes.once('end', () => {
          finished = true;
          record(side, probe, status, startedAt);
        });
        // Errors mid-body are handled on 'close' below; without a listener they would be thrown.
        upRes.on('error', () => undefined);
        upRes.once('close', () => {
          if (finished || upRes.complete) return;
          // The upstream died or stalled mid-body: the client gets a truncated response; count a
          // 502 for the side (a client abort is counted apart, see res 'close').
          finished = true;
          if (res.destroyed) return;
          record(side, probe, 502, startedAt);
          res.destroy();
        });
      },
    );
    upstream.setTimeout(upstreamTimeoutMs, () => upstream.destroy(new UpstreamTimeoutError(upstreamTimeoutMs)));
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (finished || res.headersSent) return;
      // A Keep-Alive connection the upstream closed while idle fails on first use; an idempotent
      // request without a body is safe to send again once, on a new connection.
      const staleConnection = upstream.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      if (mayRetry && staleConnection && !hasBody && IDEMPOTENT_METHODS.has(method) && !res.destroyed) {
        side.retries += 1;
        finished = true; // this attempt is over; the retry has its own bookkeeping
        forward(side, probe, req, res, startedAt, false);
        return;
      }
      finished = true;
      if (res.destroyed) return;
      const timeout = err instanceof UpstreamTimeoutError;
      const status = timeout ? 504 : 502;
      record(side, probe, status, startedAt);
      const requestId = req.headers['x-request-id'];
      const body = Buffer.from(
        JSON.stringify({
          requestId: typeof requestId === 'string' ? requestId : null,
          method,
          path: req.url ?? '',
          served_by: 'router',
          error: timeout ? 'gateway timeout' : 'bad gateway',
          detail: `${side.name} side: ${err.code ?? err.message}`,
        }),
      );
      const errorHeaders: OutgoingHttpHeaders = {
        'content-type': 'application/json; charset=utf-8',
        'content-length': body.length,
        'x-cutover-side': side.name,
      };
      if (typeof requestId === 'string') errorHeaders['x-request-id'] = requestId;
      res.writeHead(status, errorHeaders);
      res.end(body);
    });
    res.once('close', () => {
      if (!res.writableFinished) {
        // The client went away: stop the upstream request too. Not a health signal of the side.
        if (!finished) clientAborts += 1;
        finished = true;
        upstream.destroy();
      }
    });
    if (hasBody) req.pipe(upstream);
    else {
      req.resume();
      upstream.end();
    }
  }

  const traffic: TrafficPort = {
    async getWeight(): Promise<TrafficState> {
      return { weight, revision, settled: true };
    },
    async setWeight(next: number, expectedRevision: string): Promise<TrafficState> {
      checkRange(next, 0, 100, 'weight');
      if (expectedRevision !== revision) throw new RevisionConflictError(expectedRevision, revision);
      weight = next;
      writes += 1;
      revision = `${instance}-${writes}`;
      if (weight === 0) drain('new');
      return { weight, revision, settled: true };
    },
  };

  const port = await listenOnLoopback(server, options.port ?? 0);

  return {
    url: `http://${LOOPBACK_HOST}:${port}`,
    port,
    traffic,
    metrics,
    drain,
    stats: () => ({
      weight,
      revision,
      old: sides.old.stats(),
      new: sides.new.stats(),
      clientConnections,
      clientAborts,
      drains,
    }),
    async close(): Promise<void> {
      await closeServer(server);
      sides.old.destroy();
      sides.new.destroy();
    },
  };
}
