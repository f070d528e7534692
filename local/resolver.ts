/**
 * DNS-weighted traffic on loopback, for rehearsing a fleet migration that moves traffic by DNS
 * weights (Route 53 weighted records, as in the incident) rather than through a proxy that decides
 * per request.
 *
 * - `LocalResolver` is the authoritative side: two weighted answers (the old and the new side's
 *   loopback address and port) with a TTL. Each query gets one of them, the new side's with
 *   probability weight/100, as Route 53 answers weighted records. Its `traffic` is the core's
 *   `TrafficPort`: the engine shifts traffic by changing the weights, with the same revision checks
 *   as every other routing adapter. A change is in effect on the resolver at once (`settled: true`,
 *   like Route 53 once INSYNC); it reaches clients only as their cached answers run out.
 * - `DnsRouting` is the clients' side (`ClientRouting` for `startClients`): each client caches its
 *   answer, and only asks when it opens a connection; its Keep-Alive connection stays on the side
 *   it resolved until that connection is closed. A client that honours the TTL asks the resolver
 *   again once its answer is older than the TTL. A stale client ignores the TTL: it keeps each
 *   answer for a random time up to `staleHoldMs` (a resolver that enforces its own minimum TTL, an
 *   application that caches lookups until it restarts), and looks up afresh early only when a
 *   connection to its cached address is refused.
 */
import { randomBytes } from 'node:crypto';
import { RevisionConflictError, type Clock, type Side, type TrafficPort, type TrafficState } from '../lambda/core/ports';
import type { ClientRouting, ClientTarget } from './clients';
import { checkInteger, checkRange, parseLoopbackUrl, systemClock } from './net';
import type { RandomSource } from './random';

/** Options of `LocalResolver`. */
export interface ResolverOptions {
  /** Base URL of the old side (loopback only): its address and port are the old record's answer. */
  readonly oldUrl: string;
  /** Base URL of the new side (loopback only). */
  readonly newUrl: string;
  /**
   * Initial percent of answers that name the new side, 0–100.
   * @default 0
   */
  readonly weight?: number;
  /** TTL of every answer, ms (the records' TTL). */
  readonly ttlMs: number;
  /**
   * Random source for the weighted choice (a seeded one makes a run repeatable).
   * @default Math.random
   */
  readonly random?: RandomSource;
  /**
   * Time source for answers.
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
}

/** One answer of the resolver. */
export interface ResolverAnswer {
  readonly side: Side;
  /** The side's base URL (its loopback address and port). */
  readonly url: string;
  readonly ttlMs: number;
  /** When it was given, epoch ms. */
  readonly atMs: number;
}

/** Counters of the resolver since it started. */
export interface ResolverStats {
  readonly weight: number;
  readonly revision: string;
  readonly ttlMs: number;
  /** Queries answered. */
  readonly queries: number;
  /** Answers given, by side. */
  readonly answers: { readonly old: number; readonly new: number };
  /** Weight changes made through `traffic`. */
  readonly writes: number;
}

/** The authoritative side of a DNS-weighted migration: two weighted answers with a TTL. */
export class LocalResolver {
  /** The weights, as the core's `TrafficPort`. */
  readonly traffic: TrafficPort;
  readonly ttlMs: number;
  private readonly urls: Readonly<Record<Side, string>>;
  private readonly random: RandomSource;
  private readonly clock: Clock;
  // Revisions: a per-resolver prefix (so a revision from another resolver never matches) and a counter.
  private readonly instance = randomBytes(4).toString('hex');
  private weight: number;
  private writes = 0;
  private revision: string;
  private queries = 0;
  private readonly answers = { old: 0, new: 0 };

  constructor(options: ResolverOptions) {
    this.urls = {
      old: parseLoopbackUrl(options.oldUrl, 'oldUrl').origin,
      new: parseLoopbackUrl(options.newUrl, 'newUrl').origin,
    };
    this.weight = checkRange(options.weight ?? 0, 0, 100, 'weight');
    this.ttlMs = checkInteger(options.ttlMs, 0, 86_400_000, 'ttlMs');
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    this.revision = `${this.instance}-0`;
    this.traffic = {
      getWeight: async (): Promise<TrafficState> => ({ weight: this.weight, revision: this.revision, settled: true }),
      setWeight: async (next: number, expectedRevision: string): Promise<TrafficState> => {
        checkRange(next, 0, 100, 'weight');
        if (expectedRevision !== this.revision) throw new RevisionConflictError(expectedRevision, this.revision);
        this.weight = next;
        this.writes += 1;
        this.revision = `${this.instance}-${this.writes}`;
        return { weight: this.weight, revision: this.revision, settled: true };
      },
    };
  }

  /** Answers one query: the new side with probability weight/100, else the old side. */
  resolve(): ResolverAnswer {
    // Like the router's choice: a weight of 0 never names the new side, 100 always does.
    const side: Side = this.random() * 100 < this.weight ? 'new' : 'old';
    this.queries += 1;
    this.answers[side] += 1;
    return { side, url: this.urls[side], ttlMs: this.ttlMs, atMs: this.clock.now() };
  }

  stats(): ResolverStats {
    return {
      weight: this.weight,
      revision: this.revision,
      ttlMs: this.ttlMs,
      queries: this.queries,
      answers: { ...this.answers },
      writes: this.writes,
    };
  }
}

/** Options of `DnsRouting`. */
export interface DnsRoutingOptions {
  /** Number of clients (the clients' `concurrency`). */
  readonly clients: number;
  /**
   * Share of clients (0–1) that ignore the TTL. `floor(clients × share)` of them are, spread
   * evenly over the client indexes.
   * @default 0
   */
  readonly staleShare?: number;
  /**
   * Longest a stale client keeps one answer, ms: each answer is kept for a time drawn uniformly
   * between the TTL and this.
   * @default 10 × the resolver's TTL
   */
  readonly staleHoldMs?: number;
  /**
   * Random source for the stale clients' hold times.
   * @default Math.random
   */
  readonly random?: RandomSource;
  /**
   * Time source of the caches.
   * @default - the system clock (`Date.now`)
   */
  readonly clock?: Clock;
}

/** Counters of the clients' lookups. */
export interface DnsRoutingStats {
  /** Queries sent to the resolver. */
  readonly lookups: number;
  /** Connections opened from a cached answer still within its TTL. */
  readonly cacheHits: number;
  /** Connections opened by stale clients from an answer past its TTL. */
  readonly staleHits: number;
  /** Connections refused, after which the client dropped its answer. */
  readonly refusals: number;
  /** Connections opened, by side. */
  readonly connections: { readonly old: number; readonly new: number };
  /** Indexes of the clients that ignore the TTL. */
  readonly staleClients: readonly number[];
}

interface CachedAnswer {
  readonly answer: ResolverAnswer;
  /** When the client stops using it, epoch ms: the TTL, or a stale client's longer hold. */
  readonly keepUntil: number;
}

/** The clients' DNS caches over a `LocalResolver`: where each client opens its next connection. */
export class DnsRouting implements ClientRouting {
  private readonly cache = new Map<number, CachedAnswer>();
  private readonly stale: ReadonlySet<number>;
  private readonly clients: number;
  private readonly staleHoldMs: number;
  private readonly random: RandomSource;
  private readonly clock: Clock;
  private lookups = 0;
  private cacheHits = 0;
  private staleHits = 0;
  private refusals = 0;
  private readonly connections = { old: 0, new: 0 };

  constructor(
    private readonly resolver: LocalResolver,
    options: DnsRoutingOptions,
  ) {
    this.clients = checkInteger(options.clients, 1, 100_000, 'clients');
    const share = checkRange(options.staleShare ?? 0, 0, 1, 'staleShare');
    this.staleHoldMs = checkInteger(options.staleHoldMs ?? 10 * resolver.ttlMs, resolver.ttlMs, 86_400_000, 'staleHoldMs');
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    const stale = new Set<number>();
    for (let i = 0; i < this.clients; i += 1) if (Math.floor((i + 1) * share) > Math.floor(i * share)) stale.add(i);
    this.stale = stale;
  }

  /** Whether client `client` ignores the TTL. */
  isStale(client: number): boolean {
    return this.stale.has(client);
  }

  connect(client: number): ClientTarget {
    checkInteger(client, 0, this.clients - 1, 'client');
    const now = this.clock.now();
    const cached = this.cache.get(client);
    let answer: ResolverAnswer;
    if (cached !== undefined && now < cached.keepUntil) {
      answer = cached.answer;
      if (now < cached.answer.atMs + cached.answer.ttlMs) this.cacheHits += 1;
      else this.staleHits += 1;
    } else {
      answer = this.resolver.resolve();
      this.lookups += 1;
      const hold = this.stale.has(client) ? answer.ttlMs + this.random() * (this.staleHoldMs - answer.ttlMs) : answer.ttlMs;
      this.cache.set(client, { answer, keepUntil: answer.atMs + hold });
    }
    this.connections[answer.side] += 1;
    return { url: answer.url, side: answer.side };
  }

  refused(client: number, target: ClientTarget): void {
    this.refusals += 1;
    // Drop the answer only if it is still the one that failed (a newer one stays).
    if (this.cache.get(client)?.answer.url === target.url) this.cache.delete(client);
  }

  /** The side each client's cached answer names right now (undefined: no usable answer). */
  cachedSide(client: number): Side | undefined {
    const cached = this.cache.get(client);
    return cached !== undefined && this.clock.now() < cached.keepUntil ? cached.answer.side : undefined;
  }

  stats(): DnsRoutingStats {
    return {
      lookups: this.lookups,
      cacheHits: this.cacheHits,
      staleHits: this.staleHits,
      refusals: this.refusals,
      connections: { ...this.connections },
      staleClients: [...this.stale].sort((a, b) => a - b),
    };
  }
}
