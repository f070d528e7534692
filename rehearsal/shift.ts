/**
 * How the rehearsal moves traffic between the two demo servers (`--shift`):
 *
 * - `proxy` (the default): a central router decides per request by the weight and records every
 *   response per side (`local/router.ts`). A rollback is complete at once: the router sends nothing
 *   more to the new side and drains its connections to it.
 * - `dns`: no router. The engine changes the weights of a local resolver (`local/resolver.ts`),
 *   and each client resolves a side for itself, caches the answer for the TTL (a share of clients
 *   ignore the TTL), and keeps its Keep-Alive connection to that side until the connection is
 *   closed. The clients record each answer per side into the same metrics the judge reads, as the
 *   router does in proxy mode (502 for a reset, 504 after the same 5 s wait). A rollback leaves
 *   residual traffic on the new side until caches run out and connections are drained.
 */
import type { Clock, TrafficPort } from '../lambda/core/ports';
import type { ClientsOptions } from '../local/clients';
import type { MetricsRecorder } from '../local/metrics';
import { seededRandom } from '../local/random';
import { DnsRouting, LocalResolver, type DnsRoutingStats } from '../local/resolver';
import { startRouter, type Router } from '../local/router';
import type { SideTally } from './residual';

export type ShiftMode = 'proxy' | 'dns';

export const SHIFT_MODES: readonly ShiftMode[] = ['proxy', 'dns'];

/** DNS settings of a rehearsal; scaled to a plan whose steps last seconds. */
export interface DnsSettings {
  /**
   * The records' TTL, ms.
   * @default 2000
   */
  readonly ttlMs?: number;
  /**
   * Share of clients (0–1) that ignore the TTL and keep their cached answer.
   * @default 0.1
   */
  readonly staleClients?: number;
  /**
   * Longest a client that ignores the TTL keeps one answer, ms.
   * @default 10 × the TTL
   */
  readonly staleHoldMs?: number;
  /**
   * Clients come and go: a connection lives this long on average (exponentially distributed, so a
   * few live much longer) before its client closes it and connects again, looking the name up if
   * its answer has expired. Without it no client would ever follow a weight change.
   * @default 2000
   */
  readonly connectionLifetimeMs?: number;
}

export const DEFAULT_DNS_TTL_MS = 2000;
export const DEFAULT_STALE_CLIENTS = 0.1;
export const DEFAULT_CONNECTION_LIFETIME_MS = 2000;
/** Clients in DNS mode: enough that a share of them is a weight (8 clients would make 5 % a coin toss). */
export const DEFAULT_DNS_CLIENTS = 40;

/** The traffic shifter a rehearsal runs on, whichever the mode. */
export interface Shift {
  readonly mode: ShiftMode;
  /** The weight, as the core's `TrafficPort` (the router's or the resolver's). */
  readonly traffic: TrafficPort;
  /** Where the clients send their requests, and, in DNS mode, how they resolve and record them. */
  readonly clients: Pick<ClientsOptions, 'targetUrl' | 'routing' | 'metrics' | 'connectionLifetimeMs'>;
  /** The DNS TTL in DNS mode; 0 through the proxy. */
  readonly ttlMs: number;
  /** The longest a client that ignores the TTL keeps one answer in DNS mode; 0 through the proxy. */
  readonly staleHoldMs: number;
  /** Requests and responses by status per side, over the whole run (see the report's fields). */
  requestsBySide(): { readonly old: number; readonly new: number };
  responsesBySide(): { readonly old: Readonly<Record<string, number>>; readonly new: Readonly<Record<string, number>> };
  /** DNS mode: whether client `client` ignores the TTL. */
  isStaleClient(client: number): boolean;
  /** DNS mode: how many clients' cached answers name the new side right now. */
  cachedOnNewSide(): number;
  /** DNS mode: the clients' lookups. */
  dnsStats(): DnsRoutingStats | undefined;
  /** One line for the live view's header. */
  describe(): string;
  close(): Promise<void>;
}

export interface ShiftOptions {
  readonly mode: ShiftMode;
  readonly oldUrl: string;
  readonly newUrl: string;
  /** Where responses are recorded: the router's recorder, or the clients' in DNS mode. */
  readonly metrics: SideTally;
  readonly clock: Clock;
  readonly seed: number;
  readonly concurrency: number;
  /** Proxy mode: the router's port (0: any free one). */
  readonly port?: number;
  /** Proxy mode: how long the router waits for a silent side. */
  readonly upstreamTimeoutMs: number;
  readonly dns?: DnsSettings;
}

/** Starts the traffic shifter of `options.mode`. */
export async function startShift(options: ShiftOptions): Promise<Shift> {
  return options.mode === 'dns' ? dnsShift(options) : proxyShift(options);
}

async function proxyShift(options: ShiftOptions): Promise<Shift> {
  const router: Router<MetricsRecorder> = await startRouter({
    oldUrl: options.oldUrl,
    newUrl: options.newUrl,
    weight: 0,
    metrics: options.metrics,
    clock: options.clock,
    random: seededRandom(options.seed + 2),
    // Below the clients' own timeout, so a side that stays silent reaches them as the router's
    // 504 for that side (counted against it) rather than as an anonymous client timeout.
    upstreamTimeoutMs: options.upstreamTimeoutMs,
    ...(options.port !== undefined ? { port: options.port } : {}),
  });
  return {
    mode: 'proxy',
    traffic: router.traffic,
    clients: { targetUrl: router.url },
    ttlMs: 0,
    staleHoldMs: 0,
    requestsBySide: () => {
      const stats = router.stats();
      return { old: stats.old.requests, new: stats.new.requests };
    },
    responsesBySide: () => {
      const stats = router.stats();
      return { old: stats.old.responsesByStatus, new: stats.new.responsesByStatus };
    },
    isStaleClient: () => false,
    cachedOnNewSide: () => 0,
    dnsStats: () => undefined,
    describe: () => 'shift proxy (a router decides per request)',
    close: () => router.close(),
  };
}

async function dnsShift(options: ShiftOptions): Promise<Shift> {
  const dns = options.dns ?? {};
  const ttlMs = dns.ttlMs ?? DEFAULT_DNS_TTL_MS;
  const staleShare = dns.staleClients ?? DEFAULT_STALE_CLIENTS;
  const resolver = new LocalResolver({
    oldUrl: options.oldUrl,
    newUrl: options.newUrl,
    weight: 0,
    ttlMs,
    clock: options.clock,
    random: seededRandom(options.seed + 2),
  });
  const routing = new DnsRouting(resolver, {
    clients: options.concurrency,
    staleShare,
    ...(dns.staleHoldMs !== undefined ? { staleHoldMs: dns.staleHoldMs } : {}),
    clock: options.clock,
    random: seededRandom(options.seed + 4),
  });
  const clients = Array.from({ length: options.concurrency }, (_, i) => i);
  return {
    mode: 'dns',
    traffic: resolver.traffic,
    clients: {
      routing,
      metrics: options.metrics,
      connectionLifetimeMs: dns.connectionLifetimeMs ?? DEFAULT_CONNECTION_LIFETIME_MS,
    },
    ttlMs,
    staleHoldMs: dns.staleHoldMs ?? 10 * ttlMs,
    requestsBySide: () => options.metrics.requestsBySide(),
    responsesBySide: () => options.metrics.responsesBySide(),
    isStaleClient: (client) => routing.isStale(client),
    cachedOnNewSide: () => clients.filter((c) => routing.cachedSide(c) === 'new').length,
    dnsStats: () => routing.stats(),
    describe: () =>
      `shift dns (TTL ${seconds(ttlMs)}, ${routing.stats().staleClients.length} of ${options.concurrency} clients ignore it)`,
    close: async () => undefined,
  };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(2))}s`;
}
