/**
 * The demo API's traffic while the migration is judged: a fixed rate of GET requests through the
 * public API (the alias), as the shell loop of docs/aws.md sends, bounded in time and in requests
 * in flight. The judge needs requests on both versions (the demo expects 20 per step).
 */
import { formatDuration } from './poll';

export interface TrafficOptions {
  /** The URL requested (e.g. `<ApiUrl>channels`). */
  readonly url: string;
  /**
   * Requests started per second.
   * @default 5
   */
  readonly ratePerSecond?: number;
  /**
   * The loop stops by itself this long after `start()`, whatever else happens.
   * @default 45 minutes
   */
  readonly maxDurationMs?: number;
  /**
   * Timeout of one request.
   * @default 10 000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Requests in flight at most; a tick that finds this many waiting skips its request.
   * @default 20
   */
  readonly maxInFlight?: number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** What the loop saw. */
export interface TrafficReport {
  readonly sent: number;
  /** Answers by HTTP status. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Requests that got no HTTP answer (timeouts, connection errors). */
  readonly failed: number;
  /** Ticks skipped because `maxInFlight` requests were still waiting. */
  readonly skipped: number;
}

export class TrafficLoop {
  private readonly rate: number;
  private readonly maxDurationMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly fetchFn: typeof fetch;
  private timer: NodeJS.Timeout | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private sent = 0;
  private failed = 0;
  private skipped = 0;
  private readonly byStatus: Record<string, number> = {};

  constructor(private readonly options: TrafficOptions) {
    this.rate = options.ratePerSecond ?? 5;
    this.maxDurationMs = options.maxDurationMs ?? 45 * 60_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxInFlight = options.maxInFlight ?? 20;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    if (!(this.rate > 0 && this.rate <= 50)) {
      // The demo's stages throttle at 50 requests per second; more would only measure throttling.
      throw new RangeError(`ratePerSecond must be above 0 and at most 50 (the demo stage's throttle), got ${JSON.stringify(options.ratePerSecond)}`);
    }
    if (!(this.maxDurationMs > 0)) throw new RangeError(`maxDurationMs must be positive, got ${JSON.stringify(options.maxDurationMs)}`);
    if (!/^https?:\/\//.test(options.url)) throw new TypeError(`url must be an http(s) URL, got ${JSON.stringify(options.url)}`);
  }

  /** Starts sending (idempotent). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), 1000 / this.rate);
    this.stopTimer = setTimeout(() => this.halt(), this.maxDurationMs);
    this.stopTimer.unref();
  }

  /** Stops sending, waits for the requests in flight (each bounded by its timeout), returns the report. */
  async stop(): Promise<TrafficReport> {
    this.halt();
    await Promise.allSettled([...this.inFlight]);
    return this.report();
  }

  report(): TrafficReport {
    return { sent: this.sent, byStatus: { ...this.byStatus }, failed: this.failed, skipped: this.skipped };
  }

  /** Answers with a 2XX status so far. */
  ok(): number {
    return Object.entries(this.byStatus).reduce((sum, [status, n]) => (status.startsWith('2') ? sum + n : sum), 0);
  }

  private halt(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.stopTimer) clearTimeout(this.stopTimer);
    this.timer = undefined;
    this.stopTimer = undefined;
  }

  private tick(): void {
    if (this.inFlight.size >= this.maxInFlight) {
      this.skipped++;
      return;
    }
    this.sent++;
    const request = this.fetchFn(this.options.url, { signal: AbortSignal.timeout(this.requestTimeoutMs) })
      .then(async (response) => {
        await response.arrayBuffer().catch(() => undefined);
        this.byStatus[response.status] = (this.byStatus[response.status] ?? 0) + 1;
      })
      .catch(() => {
        this.failed++;
      });
    this.inFlight.add(request);
    void request.finally(() => this.inFlight.delete(request));
  }
}

/** `1234 requests: 200 ×1100, 503 ×130, 4 without answer` */
export function describeTraffic(report: TrafficReport, elapsedMs?: number): string {
  const statuses = Object.entries(report.byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${status} ×${n}`);
  const parts = [...statuses, ...(report.failed > 0 ? [`${report.failed} without answer`] : [])];
  const over = elapsedMs !== undefined ? ` over ${formatDuration(elapsedMs)}` : '';
  return `${report.sent} requests${over}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}
