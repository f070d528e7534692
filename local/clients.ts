/**
 * Synthetic API clients for the local rehearsal. Each client owns a Keep-Alive agent with a single
 * socket, so its requests follow one another on one connection, exactly like the incident's
 * users. Every request carries a unique `X-Request-Id`, and every response is checked against
 * what the client asked: the echoed request id (header and body), method and path, and a status
 * plausible for the request (2XX for normal calls, 413 for the oversized event POSTs that a small
 * share of requests send on purpose, as in the incident).
 *
 * Outcomes: each finished request counts exactly once as `ok`, `errorResponses` (5XX or transport
 * error), `misalignedResponses` (the response carries another request's identity: the connection
 * is shifted) or `unexpectedResponses` (right identity, wrong status, or no identity to check).
 * Two of them are broken down further, for a blast radius of what clients suffered:
 * `errorResponses` = `unexpected5xx` (the server's own 5XX) + `gatewayErrors` (a 502/504 the router
 * generated because the side reset the connection or did not answer in time) + transport errors
 * (no HTTP response at all; only in the totals, since no side can be named), and
 * `unexpectedResponses` = `unexpected4xx` + the rest (a 1XX–3XX the request did not expect, e.g.
 * an oversized POST accepted, or a non-4XX without identity). Responses are attributed to a side by
 * the router's `x-cutover-side` header (`bySource`).
 *
 * Without a router (a DNS-weighted migration), `routing` tells each client where to open its
 * connection (see `ClientRouting` and `local/resolver.ts`): a client asks it only when it holds no
 * open connection, and keeps that Keep-Alive connection, and the side it leads to, until it is
 * closed (by the server, an idle timeout, an error or the client's own `connectionLifetimeMs`).
 * Answers are then attributed to the side the client connected to, a reset or timeout of that
 * connection counts against that side (as the router's 502/504 would), and each answer can be
 * recorded per side in a `MetricsRecorder`, as the router records it in proxy mode.
 *
 * Split by idea: this file holds the options, the statistics and the client loop (pacing, request
 * mix, retiring connections, tallying); `local/client-connection.ts` holds the connection side
 * (targets and `ClientRouting`, opening, sending, watching sockets, the retry policy);
 * `local/client-outcomes.ts` holds the counting of outcomes (counters, classification of a
 * response, the misaligned timeline). Every export stays available from here.
 */
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Clock, Side } from '../lambda/core/ports';
import {
  errorCode,
  openConnection,
  retryAfter,
  sendRequest,
  TIMEOUT_CODE,
  watchConnection,
  type ClientRouting,
  type Connection,
  type RawResponse,
  type RequestSpec,
  type RetryState,
} from './client-connection';
import {
  classifyResponse,
  MutableCounts,
  type MisalignedResponse,
  type MisalignedTimeline,
  type OutcomeCounts,
  type RequestKind,
  type ResponseSource,
} from './client-outcomes';
import { DEFAULT_BODY_LIMIT_BYTES, demoChannels } from './demo-server';
import type { MetricsRecorder } from './metrics';
import { checkInteger, checkRange, parseLoopbackUrl, sleep, systemClock } from './net';
import type { RandomSource } from './random';

export type { ClientRouting, ClientTarget } from './client-connection';
export type { MisalignedResponse, OutcomeCounts, RequestKind, ResponseSource } from './client-outcomes';

/** Options of `startClients`. */
export interface ClientsOptions {
  /**
   * Where to send requests: the router, or a demo server directly (loopback only). Required unless
   * `routing` is given.
   */
  readonly targetUrl?: string;
  /**
   * Each client picks its own server for every new connection (DNS mode); responses are then
   * attributed to the side it connected to.
   * @default - every request goes to `targetUrl`
   */
  readonly routing?: ClientRouting;
  /**
   * With `routing`: where every answer (or transport failure, as 502, or 504 after
   * `requestTimeoutMs`) is recorded per side, as the router records it in proxy mode.
   * @default - not recorded
   */
  readonly metrics?: MetricsRecorder;
  /**
   * Clients come and go: a client closes its connection once it is this old on average, before its
   * next request, and opens a new one (with `routing`, wherever `routing` now says). Each
   * connection's lifetime is drawn from an exponential distribution with this mean (a steady rate
   * of departures: most connections are short, a few live several times longer), capped at ten
   * times the mean.
   * @default - a client keeps its connection until something else closes it
   */
  readonly connectionLifetimeMs?: number;
  /** Number of clients, each with its own Keep-Alive connection. */
  readonly concurrency: number;
  /**
   * Requests per second across all clients (an upper bound: a client waits for each response
   * before its next request).
   */
  readonly ratePerSecond: number;
  /**
   * Share of requests (0–1) that are event POSTs over the body limit, expected to get 413.
   * @default 0.02
   */
  readonly oversizeShare?: number;
  /**
   * Stop by themselves after this long.
   * @default - run until `stop()`
   */
  readonly durationMs?: number;
  /**
   * App id used in the API paths.
   * @default '1000'
   */
  readonly appId?: string;
  /**
   * Random source for the request mix.
   * @default Math.random
   */
  readonly random?: RandomSource;
  /**
   * Longest wait for one response; past it the request counts as a transport error.
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Idle time after which a client drops its Keep-Alive connection; keep it below the target's
   * keep-alive timeout so that a client never reuses a connection the server is closing.
   * @default 4000
   */
  readonly idleTimeoutMs?: number;
  /**
   * Size of the `data` field of oversized events; must exceed the target's body limit.
   * @default 2 × DEFAULT_BODY_LIMIT_BYTES
   */
  readonly oversizeBytes?: number;
  /**
   * Most misaligned responses kept in the timeline (the counters stay exact).
   * @default 1000
   */
  readonly maxTimelineEntries?: number;
  /**
   * Time source for timeline timestamps.
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
}

/** Statistics of a run of synthetic clients. */
export interface ClientStats extends OutcomeCounts {
  /**
   * The errors among `errorResponses` that were transport errors (no HTTP response) no side can be
   * blamed for. With `routing` the side is known, so they count as that side's `gatewayErrors`.
   */
  readonly transportErrors: number;
  /** Outcomes of the HTTP responses by where they came from (transport errors have no source). */
  readonly bySource: Readonly<Record<ResponseSource, OutcomeCounts>>;
  readonly byKind: Readonly<Record<RequestKind, number>>;
  /** Responses by status code. */
  readonly statusCounts: Readonly<Record<string, number>>;
  /** Requests sent on a new connection. */
  readonly newConnections: number;
  /** Requests sent on a reused Keep-Alive connection. */
  readonly reusedConnections: number;
  /** Misaligned responses, oldest first (at most `maxTimelineEntries`). */
  readonly misaligned: readonly MisalignedResponse[];
  /** Misaligned responses left out of `misaligned` because of its bound. */
  readonly misalignedDropped: number;
  /** Requests in flight right now. */
  readonly inFlight: number;
  readonly running: boolean;
  /** HTTP responses per client (by index), by where they came from. */
  readonly perClient: readonly Readonly<Record<ResponseSource, number>>[];
  /** With `routing`: connection attempts refused, after which the client looked up again and retried. */
  readonly refusedConnections: number;
  /** Connections the clients closed themselves (`connectionLifetimeMs`). */
  readonly connectionsRetired: number;
}

/** Running synthetic clients. */
export interface SyntheticClients {
  /** A snapshot of the statistics so far. */
  stats(): ClientStats;
  /**
   * Stops sending, waits for the requests in flight (each bounded by `requestTimeoutMs`), closes
   * the connections and resolves with the final statistics. Idempotent.
   */
  stop(): Promise<ClientStats>;
  /** Resolves with the final statistics once the clients have stopped (by `stop()` or duration). */
  readonly done: Promise<ClientStats>;
}

/** Starts the clients at once; they run until `stop()` or `durationMs`. */
export function startClients(options: ClientsOptions): SyntheticClients {
  const routing = options.routing;
  if (options.targetUrl === undefined && routing === undefined) throw new TypeError('targetUrl is required unless routing is given');
  const fixedTarget = options.targetUrl === undefined ? undefined : parseLoopbackUrl(options.targetUrl, 'targetUrl');
  const metrics = options.metrics;
  const lifetimeMs = options.connectionLifetimeMs === undefined ? undefined : checkInteger(options.connectionLifetimeMs, 1, 86_400_000, 'connectionLifetimeMs');
  const concurrency = checkInteger(options.concurrency, 1, 1000, 'concurrency');
  const ratePerSecond = checkRange(options.ratePerSecond, 0, 100_000, 'ratePerSecond');
  if (ratePerSecond === 0) throw new RangeError('ratePerSecond must be above 0, got 0');
  const oversizeShare = checkRange(options.oversizeShare ?? 0.02, 0, 1, 'oversizeShare');
  const durationMs = options.durationMs === undefined ? undefined : checkInteger(options.durationMs, 1, 86_400_000, 'durationMs');
  const appId = options.appId ?? '1000';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(appId)) throw new TypeError(`appId must be 1–64 letters, digits, "_" or "-", got ${JSON.stringify(appId)}`);
  const random = options.random ?? Math.random;
  const requestTimeoutMs = checkInteger(options.requestTimeoutMs ?? 10_000, 1, 600_000, 'requestTimeoutMs');
  const idleTimeoutMs = checkInteger(options.idleTimeoutMs ?? 4000, 1, 600_000, 'idleTimeoutMs');
  const oversizeBytes = checkInteger(options.oversizeBytes ?? 2 * DEFAULT_BODY_LIMIT_BYTES, 1, 64 * 1024 * 1024, 'oversizeBytes');
  const maxTimeline = checkInteger(options.maxTimelineEntries ?? 1000, 0, 1_000_000, 'maxTimelineEntries');
  const clock = options.clock ?? systemClock;
  const channels = demoChannels();
  const oversizeData = 'x'.repeat(oversizeBytes);

  const runId = randomBytes(3).toString('hex');
  const stopping = new AbortController();
  // Every client sleeping between requests listens to it: one listener per client is expected.
  setMaxListeners(0, stopping.signal);
  const totals = new MutableCounts();
  const bySource: Record<ResponseSource, MutableCounts> = { old: new MutableCounts(), new: new MutableCounts(), direct: new MutableCounts() };
  const byKind: Record<RequestKind, number> = { list: 0, item: 0, event: 0, oversize: 0 };
  const statusCounts = new Map<number, number>();
  const timeline: MisalignedTimeline = { entries: [], dropped: 0, max: maxTimeline, clock };
  const sawA413 = new WeakSet<Socket>();
  const watchedSockets = new WeakSet<Socket>();
  let transportErrors = 0;
  let newConnections = 0;
  let reusedConnections = 0;
  let inFlight = 0;
  let running = true;
  let refusedConnections = 0;
  let connectionsRetired = 0;
  const perClient = Array.from({ length: concurrency }, () => ({ old: 0, new: 0, direct: 0 }));

  // Shared pacing: each request takes the next slot; slots are 1/rate apart (no catch-up bursts).
  const slotMs = 1000 / ratePerSecond;
  let nextSlotAt = performance.now();
  const takeSlot = (): number => {
    const now = performance.now();
    const at = Math.max(nextSlotAt, now);
    nextSlotAt = at + slotMs;
    return at - now;
  };

  const pick = <T>(items: readonly T[]): T => items[Math.min(items.length - 1, Math.floor(random() * items.length))]!;

  const nextSpec = (client: number, seq: number, basePath: string): RequestSpec => {
    const requestId = `${runId}-${client}-${seq}`;
    const roll = random();
    if (roll < oversizeShare) {
      const body = Buffer.from(JSON.stringify({ name: 'bulk-update', channels: [pick(channels)], data: oversizeData }));
      return { kind: 'oversize', method: 'POST', path: `${basePath}/apps/${appId}/events`, requestId, body };
    }
    // The rest: 30% list, 40% item, 30% normal events.
    const rest = (roll - oversizeShare) / (1 - oversizeShare || 1);
    if (rest < 0.3) {
      const prefix = pick(['', 'presence-', 'private-']);
      const query = prefix === '' ? '' : `?filter_by_prefix=${prefix}${prefix === 'presence-' ? '&info=user_count' : ''}`;
      return { kind: 'list', method: 'GET', path: `${basePath}/apps/${appId}/channels${query}`, requestId };
    }
    if (rest < 0.7) {
      return { kind: 'item', method: 'GET', path: `${basePath}/apps/${appId}/channels/${encodeURIComponent(pick(channels))}`, requestId };
    }
    const body = Buffer.from(JSON.stringify({ name: 'order-created', channels: [pick(channels)], data: JSON.stringify({ id: requestId, total: seq }) }));
    return { kind: 'event', method: 'POST', path: `${basePath}/apps/${appId}/events`, requestId, body };
  };

  const connectionSettings = { routing, fixedTarget, lifetimeMs, random, idleTimeoutMs };
  const open = (client: number): Connection => openConnection(client, connectionSettings);

  const recordSide = (side: Side | undefined, status: number, startedAt: number): void => {
    if (side !== undefined) metrics?.record(side, status, performance.now() - startedAt, clock.now());
  };

  const runClient = async (client: number): Promise<void> => {
    let connection: Connection | undefined;
    let seq = 0;
    try {
      while (!stopping.signal.aborted) {
        await sleep(takeSlot(), stopping.signal);
        if (stopping.signal.aborted) break;
        if (connection && lifetimeMs !== undefined && connection.retireAt !== undefined && performance.now() >= connection.retireAt && !connection.closed) {
          connectionsRetired += 1;
          connection.closed = true;
        }
        // Without routing the agent reconnects to the one target by itself; with routing a closed
        // connection is replaced by a new one wherever routing now says.
        if (connection && connection.closed && (routing !== undefined || lifetimeMs !== undefined)) {
          connection.agent.destroy();
          connection = undefined;
        }
        connection ??= open(client);
        seq += 1;
        const spec = nextSpec(client, seq, connection.basePath);
        byKind[spec.kind] += 1;
        inFlight += 1;
        let startedAt = performance.now();
        try {
          let response: RawResponse | undefined;
          const retries: RetryState = { refusedOnce: false, resetOnce: false };
          while (response === undefined) {
            try {
              response = await sendRequest(connection.agent, connection.url, spec, requestTimeoutMs);
            } catch (error) {
              // With routing, a connection that failed before it carried anything is tried again
              // (see `retryAfter`): refused, after a fresh look-up; reset at once, once more.
              if (routing === undefined || connection.target === undefined) throw error;
              const retry = retryAfter(error, retries);
              if (retry === undefined) throw error;
              if (retry === 'refused') {
                refusedConnections += 1;
                routing.refused(client, connection.target);
              }
              connection.agent.destroy();
              connection = open(client);
              startedAt = performance.now();
            }
          }
          const side = connection.target?.side;
          if (response.reused) reusedConnections += 1;
          else newConnections += 1;
          if (routing !== undefined || lifetimeMs !== undefined) watchConnection(connection, response, watchedSockets);
          statusCounts.set(response.status, (statusCounts.get(response.status) ?? 0) + 1);
          recordSide(side, response.status, startedAt);
          const saw413Before = response.socket !== undefined && sawA413.has(response.socket);
          if (response.status === 413 && response.socket !== undefined) sawA413.add(response.socket);
          const { outcome, detail, source } = classifyResponse(spec, response, client, saw413Before, side, timeline);
          totals.add(outcome, detail);
          bySource[source].add(outcome, detail);
          perClient[client]![source] += 1;
        } catch (error) {
          const side = connection?.target?.side;
          if (connection) connection.closed = true;
          if (side !== undefined) {
            // The side is known without a router: its reset, refusal or silence is its transport
            // error, recorded as the router would (504 after the wait, else 502).
            recordSide(side, errorCode(error) === TIMEOUT_CODE ? 504 : 502, startedAt);
            totals.add('error', 'gateway');
            bySource[side].add('error', 'gateway');
          } else {
            // No response, so no side to blame: counted in the totals and `transportErrors` only.
            transportErrors += 1;
            totals.add('error', 'transport');
          }
        } finally {
          inFlight -= 1;
        }
      }
    } finally {
      connection?.agent.destroy();
    }
  };

  const snapshot = (): ClientStats => ({
    ...totals.snapshot(),
    transportErrors,
    bySource: { old: bySource.old.snapshot(), new: bySource.new.snapshot(), direct: bySource.direct.snapshot() },
    byKind: { ...byKind },
    statusCounts: Object.fromEntries([...statusCounts].map(([status, count]) => [String(status), count])),
    newConnections,
    reusedConnections,
    misaligned: [...timeline.entries],
    misalignedDropped: timeline.dropped,
    inFlight,
    running,
    perClient: perClient.map((c) => ({ ...c })),
    refusedConnections,
    connectionsRetired,
  });

  const loops = Array.from({ length: concurrency }, (_, client) => runClient(client));
  const durationTimer = durationMs === undefined ? undefined : setTimeout(() => stopping.abort(), durationMs);
  const done = Promise.allSettled(loops).then(() => {
    if (durationTimer !== undefined) clearTimeout(durationTimer);
    running = false;
    return snapshot();
  });

  return {
    stats: snapshot,
    async stop(): Promise<ClientStats> {
      stopping.abort();
      return done;
    },
    done,
  };
}
