/**
 * Rollback completeness: how much traffic still reached the new side after the rollback was in
 * effect, and when it stopped.
 *
 * A rollback sets the new side's weight to 0, but that is not "no traffic on the new side": with
 * DNS weights, clients keep their cached answers for the TTL (some for longer) and their Keep-Alive
 * connections until something closes them. In the incident about 10 % of requests still reached
 * the faulty instances after every DNS answer pointed at the working ones, until engineers closed
 * the connections by hand. The rehearsal keeps watching the new side after a rollback, drains it
 * (see `DrainMode` in `local/demo-server.ts`), and reports the residual. With the active drain off
 * (`--no-drain`) the new side keeps answering as before, Keep-Alive and all, as in the incident
 * before the engineers stepped in, and the watch measures how long the residual lasts by itself.
 *
 * "Per window" counts use the plan's health window W, as the judge does: the traffic of a window
 * starting at t is the number of the new side's responses in [t, t + W). The peak is the largest
 * such count before the rollback; the new side has drained at the moment after which no window
 * holds more than 1 % of that peak.
 */
import type { Side } from '../lambda/core/ports';
import type { MetricsRecorder } from '../local/metrics';
import { sleep } from '../local/net';

/** Share of the peak per window the new side must stay at or under to count as drained. */
export const DRAINED_SHARE_OF_PEAK = 0.01;

/** What `rollback.residual` reports. */
export interface ResidualReport {
  /** How traffic was shifted (`--shift`). */
  readonly shift: 'proxy' | 'dns';
  /** The window the counts are per (the plan's health window). */
  readonly windowMs: number;
  /** The most responses of the new side in any one window before the rollback was in effect. */
  readonly peakRequestsPerWindow: number;
  /** 1 % of the peak: the most a window may hold for the new side to count as drained. */
  readonly thresholdRequestsPerWindow: number;
  /** Responses of the new side (as the judge's metrics recorded them) after the rollback was in effect. */
  readonly requestsAfterRollback: number;
  /** Wrong answers (another request's answer) clients got after the rollback: `blastRadius.afterRollback.total.wrongAnswers`. */
  readonly wrongAnswersAfterRollback: number;
  /** Every request harmed after the rollback, whatever the harm: `blastRadius.afterRollback.total.total`. */
  readonly harmedAfterRollback: number;
  /**
   * Whether the rehearsal drained the new side (`Connection: close`, then refusing connections):
   * false with `--no-drain`, when the new side kept answering normally after the rollback.
   */
  readonly activeDrain: boolean;
  /** Whether the new side's traffic fell to the threshold and stayed there until the watch ended. */
  readonly drained: boolean;
  /**
   * From the rollback in effect to the moment after which no window held more than the threshold
   * for the new side. Absent when it never drained within the watch.
   */
  readonly drainedAfterMs?: number;
  /**
   * What `drainedAfterMs` must stay within: with DNS, the TTL + the drain interval + one window
   * (caches run out, the stragglers are refused, the window that sees it); through the proxy, one
   * window.
   */
  readonly boundMs: number;
  readonly withinBound: boolean;
  /** How long after the rollback the rehearsal watched the new side. */
  readonly watchedMs: number;
  /** The longest the watch lasts (`--max-watch`, see `defaultMaxWatchMs`): past it, `drained: false`. */
  readonly maxWatchMs: number;
  /** The new side's responses in each window from the rollback on (the last one may be partial). */
  readonly requestsPerWindowAfterRollback: readonly number[];
  /** What the drain did to the new side, ms after the rollback in effect. Absent without the active drain. */
  readonly drain?: {
    /** When it started answering with `Connection: close`. */
    readonly closeAfterMs: number;
    /** When it stopped accepting connections (DNS only, and only if someone was still arriving). */
    readonly refuseAfterMs?: number;
    /** Connections it ended with `Connection: close`. */
    readonly connectionsClosed: number;
    /** Connection attempts refused after that (each client then looked up again and went to the old side). */
    readonly connectionsRefused: number;
  };
  /** DNS only: the new side's responses after the rollback by kind of client. */
  readonly byClients?: {
    /** Clients that honour the TTL (Keep-Alive connections and caches still within their TTL). */
    readonly ttlHonouring: number;
    /** Clients that ignore the TTL. */
    readonly ttlIgnoring: number;
  };
}

/**
 * A `MetricsRecorder` that passes every response on to the judge's recorder and keeps, besides,
 * the counts per side and status and the time of every response of the new side.
 */
export class SideTally implements MetricsRecorder {
  private readonly requests = { old: 0, new: 0 };
  private readonly statuses = { old: new Map<number, number>(), new: new Map<number, number>() };
  private readonly newTimes: number[] = [];

  constructor(
    private readonly inner: MetricsRecorder,
    private readonly now: () => number,
  ) {}

  record(side: Side, status: number, latencyMs: number, atMs: number = this.now()): void {
    this.inner.record(side, status, latencyMs, atMs);
    this.requests[side] += 1;
    this.statuses[side].set(status, (this.statuses[side].get(status) ?? 0) + 1);
    if (side === 'new') this.newTimes.push(atMs);
  }

  requestsBySide(): { readonly old: number; readonly new: number } {
    return { ...this.requests };
  }

  responsesBySide(): { readonly old: Readonly<Record<string, number>>; readonly new: Readonly<Record<string, number>> } {
    const plain = (m: Map<number, number>): Record<string, number> => Object.fromEntries([...m].map(([s, n]) => [String(s), n]));
    return { old: plain(this.statuses.old), new: plain(this.statuses.new) };
  }

  /** Times of the new side's responses, epoch ms, in the order they were recorded. */
  newSideTimes(): readonly number[] {
    return this.newTimes;
  }

  /** The new side's responses in [fromMs, toMs). */
  newSideCount(fromMs: number, toMs: number): number {
    let n = 0;
    // Newest last: walk back from the end while the times are recent enough.
    for (let i = this.newTimes.length - 1; i >= 0; i -= 1) {
      const t = this.newTimes[i]!;
      if (t >= fromMs && t < toMs) n += 1;
      else if (t < fromMs - 1000) break; // recorded times are at most a little out of order
    }
    return n;
  }
}

/** The most events in any window [t, t + windowMs) among `times` (any order). */
export function peakPerWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last += 1) {
    while (sorted[last]! - sorted[first]! >= windowMs) first += 1;
    peak = Math.max(peak, last - first + 1);
  }
  return peak;
}

/**
 * From `fromMs`, how long until no window [t, t + windowMs) holds more than `threshold` of
 * `times` (any order): 0 when none ever did after `fromMs`. The moment returned is the start of
 * the last window that held more; every window starting after it holds at most `threshold`.
 */
export function drainedAfter(times: readonly number[], fromMs: number, windowMs: number, threshold: number): number {
  const sorted = times.filter((t) => t >= fromMs).sort((a, b) => a - b);
  // A window holds more than the threshold iff it holds `needed` events within less than windowMs.
  const needed = Math.floor(threshold) + 1;
  for (let i = sorted.length - needed; i >= 0; i -= 1) {
    if (sorted[i + needed - 1]! - sorted[i]! < windowMs) return sorted[i]! - fromMs;
  }
  return 0;
}

/** Counts of `times` in consecutive windows from `fromMs` to `toMs` (the last one may be partial). */
export function countsPerWindow(times: readonly number[], fromMs: number, toMs: number, windowMs: number): number[] {
  const windows = Math.max(1, Math.ceil((toMs - fromMs) / windowMs));
  const counts = new Array<number>(windows).fill(0);
  for (const t of times) {
    if (t < fromMs || t >= toMs) continue;
    counts[Math.min(windows - 1, Math.floor((t - fromMs) / windowMs))]! += 1;
  }
  return counts;
}

/** What `drainedAfterMs` must stay within (see `ResidualReport.boundMs`). */
export function residualBoundMs(mode: 'proxy' | 'dns', ttlMs: number, drainIntervalMs: number, windowMs: number): number {
  return mode === 'dns' ? ttlMs + drainIntervalMs + windowMs : windowMs;
}

/**
 * The default cap of the residual watch (`--max-watch`): twice the bound plus 5 s, and with DNS
 * at least the longest a stale client keeps an answer plus two TTLs and a window, so that a run
 * without the active drain can see the last stale cache run out.
 */
export function defaultMaxWatchMs(mode: 'proxy' | 'dns', ttlMs: number, drainIntervalMs: number, windowMs: number, staleHoldMs: number): number {
  const withDrain = 2 * residualBoundMs(mode, ttlMs, drainIntervalMs, windowMs) + 5000;
  return mode === 'dns' ? Math.max(withDrain, staleHoldMs + 2 * ttlMs + windowMs) : withDrain;
}

/** Options of `watchResidual`. */
export interface ResidualWatchOptions {
  readonly mode: 'proxy' | 'dns';
  /** When the rollback was in effect (weight 0 written), epoch ms. */
  readonly rollbackAt: number;
  readonly windowMs: number;
  readonly ttlMs: number;
  readonly drainIntervalMs: number;
  readonly tally: SideTally;
  /**
   * Whether to drain the new side (`Connection: close`, then with DNS refusing connections); false
   * leaves it answering normally and only watches.
   * @default true
   */
  readonly activeDrain?: boolean;
  /** The longest the watch lasts from the rollback, ms (see `defaultMaxWatchMs`). */
  readonly maxWatchMs: number;
  /** The new side's server, to drain. */
  readonly newSide: { setDrain(mode: 'close' | 'refuse'): Promise<unknown> };
  /** DNS: how many clients' cached answers still name the new side. */
  readonly cachedOnNewSide: () => number;
  readonly now: () => number;
  /** Time between looks at the new side's traffic. */
  readonly pollMs: number;
  readonly signal?: AbortSignal;
  /** Called at every look, for the live view. */
  readonly onPoll?: (frame: ResidualFrameData) => void;
}

/** One look at the residual traffic (see `ResidualFrame` in report.ts). */
export interface ResidualFrameData {
  readonly sinceRollbackMs: number;
  readonly windowMs: number;
  readonly lastWindow: number;
  readonly peakRequestsPerWindow: number;
  readonly thresholdRequestsPerWindow: number;
  readonly requestsAfterRollback: number;
  /** What the drain is doing: nothing (`off`, `--no-drain`), `Connection: close`, or also refusing connections. */
  readonly drain: 'off' | 'close' | 'refuse';
  readonly cachedOnNewSide?: number;
}

/** What the watch saw and did. */
export interface ResidualWatch {
  readonly peakRequestsPerWindow: number;
  readonly thresholdRequestsPerWindow: number;
  /** Whether the new side was drained (see `ResidualWatchOptions.activeDrain`). */
  readonly activeDrain: boolean;
  /** The cap the watch ran under, ms from the rollback. */
  readonly maxWatchMs: number;
  /** The drain's steps, epoch ms; absent without the active drain. */
  readonly closeAt?: number;
  readonly refuseAt?: number;
  readonly endedAt: number;
  /** The new side's last window was within the threshold, and no cache still named it, when the watch ended. */
  readonly drained: boolean;
  readonly interrupted: boolean;
}

/**
 * Drains the new side after a rollback and watches its traffic until it has drained: its last
 * window holds at most 1 % of its peak (and, with DNS, no client's cached answer still names it),
 * at least one window after the rollback. The drain: `Connection: close` on every answer at once;
 * with DNS, once the TTL and the drain interval have passed, the new side also refuses
 * connections, which sends the clients that ignore the TTL back to a lookup. Without the active
 * drain (`activeDrain: false`) the new side is left alone: connections stay open until their
 * clients close them, and cached answers run out at their own pace. Gives up `maxWatchMs` after
 * the rollback (then `drained: false`), or when `signal` aborts.
 */
export async function watchResidual(o: ResidualWatchOptions): Promise<ResidualWatch> {
  const peak = peakPerWindow(
    o.tally.newSideTimes().filter((t) => t < o.rollbackAt),
    o.windowMs,
  );
  const threshold = Math.round(peak * DRAINED_SHARE_OF_PEAK * 10_000) / 10_000;
  const activeDrain = o.activeDrain ?? true;
  let closeAt: number | undefined;
  if (activeDrain) {
    await o.newSide.setDrain('close');
    closeAt = o.now();
  }
  const refuseDue = activeDrain && o.mode === 'dns' ? o.rollbackAt + o.ttlMs + o.drainIntervalMs : undefined;
  const giveUpAt = o.rollbackAt + o.maxWatchMs;
  let refuseAt: number | undefined;
  let drained = false;
  let interrupted = false;
  while (true) {
    if (o.signal?.aborted) {
      interrupted = true;
      break;
    }
    let now = o.now();
    if (refuseDue !== undefined && refuseAt === undefined && now >= refuseDue) {
      await o.newSide.setDrain('refuse');
      refuseAt = now = o.now();
    }
    const lastWindow = o.tally.newSideCount(now - o.windowMs, now);
    const cached = o.mode === 'dns' ? o.cachedOnNewSide() : 0;
    o.onPoll?.({
      sinceRollbackMs: now - o.rollbackAt,
      windowMs: o.windowMs,
      lastWindow,
      peakRequestsPerWindow: peak,
      thresholdRequestsPerWindow: threshold,
      requestsAfterRollback: o.tally.newSideCount(o.rollbackAt, Number.MAX_SAFE_INTEGER),
      drain: !activeDrain ? 'off' : refuseAt === undefined ? 'close' : 'refuse',
      ...(o.mode === 'dns' ? { cachedOnNewSide: cached } : {}),
    });
    // A quiet window is final once no cache still names the new side, or once the new side has
    // refused connections for a window (a cached answer can no longer reach it).
    const nobodyLeft = cached === 0 || (refuseAt !== undefined && now >= refuseAt + o.windowMs);
    if (now >= o.rollbackAt + o.windowMs && lastWindow <= threshold && nobodyLeft) {
      drained = true;
      break;
    }
    if (now >= giveUpAt) break;
    await sleep(o.pollMs, o.signal);
  }
  return {
    peakRequestsPerWindow: peak,
    thresholdRequestsPerWindow: threshold,
    activeDrain,
    maxWatchMs: o.maxWatchMs,
    ...(closeAt !== undefined ? { closeAt } : {}),
    ...(refuseAt !== undefined ? { refuseAt } : {}),
    endedAt: o.now(),
    drained,
    interrupted,
  };
}

/** The report's `rollback.residual`, once the clients have stopped. */
export function residualReport(input: {
  readonly mode: 'proxy' | 'dns';
  readonly rollbackAt: number;
  readonly windowMs: number;
  readonly ttlMs: number;
  readonly drainIntervalMs: number;
  readonly watch: ResidualWatch;
  readonly tally: SideTally;
  /** What clients suffered after the rollback (`blastRadius.afterRollback`). */
  readonly afterRollback: { readonly total: { readonly wrongAnswers: number; readonly total: number } } | undefined;
  readonly connectionsClosed: number;
  readonly connectionsRefused: number;
  readonly byClients?: ResidualReport['byClients'];
}): ResidualReport {
  const { watch, rollbackAt, windowMs } = input;
  const times = input.tally.newSideTimes();
  const after = times.filter((t) => t >= rollbackAt);
  const boundMs = residualBoundMs(input.mode, input.ttlMs, input.drainIntervalMs, windowMs);
  const drainedAfterMs = watch.drained ? drainedAfter(after, rollbackAt, windowMs, watch.thresholdRequestsPerWindow) : undefined;
  return {
    shift: input.mode,
    windowMs,
    peakRequestsPerWindow: watch.peakRequestsPerWindow,
    thresholdRequestsPerWindow: watch.thresholdRequestsPerWindow,
    requestsAfterRollback: after.length,
    wrongAnswersAfterRollback: input.afterRollback?.total.wrongAnswers ?? 0,
    harmedAfterRollback: input.afterRollback?.total.total ?? 0,
    activeDrain: watch.activeDrain,
    drained: watch.drained,
    ...(drainedAfterMs !== undefined ? { drainedAfterMs } : {}),
    boundMs,
    withinBound: drainedAfterMs !== undefined && drainedAfterMs <= boundMs,
    watchedMs: watch.endedAt - rollbackAt,
    maxWatchMs: watch.maxWatchMs,
    requestsPerWindowAfterRollback: countsPerWindow(after, rollbackAt, after.reduce((end, t) => Math.max(end, t + 1), watch.endedAt), windowMs),
    ...(watch.closeAt !== undefined
      ? {
          drain: {
            closeAfterMs: Math.max(0, watch.closeAt - rollbackAt),
            ...(watch.refuseAt !== undefined ? { refuseAfterMs: watch.refuseAt - rollbackAt } : {}),
            connectionsClosed: input.connectionsClosed,
            connectionsRefused: input.connectionsRefused,
          },
        }
      : {}),
    ...(input.byClients ? { byClients: input.byClients } : {}),
  };
}

/** With DNS: the new side's answers after the rollback, by whether the client honours the TTL. */
export function residualByClients(
  ignoresTtl: (client: number) => boolean,
  atRollback: readonly { readonly new: number }[],
  final: readonly { readonly new: number }[],
): NonNullable<ResidualReport['byClients']> {
  let ttlHonouring = 0;
  let ttlIgnoring = 0;
  final.forEach((counts, client) => {
    const after = counts.new - (atRollback[client]?.new ?? 0);
    if (ignoresTtl(client)) ttlIgnoring += after;
    else ttlHonouring += after;
  });
  return { ttlHonouring, ttlIgnoring };
}
