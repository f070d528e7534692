/**
 * ProbePort for the controller on AWS.
 *
 * `recentResults` reads what the probe function recorded in the migration's partition of the table
 * (it probes every minute). In a tick it is served from the store's `load`, which read the record
 * and the recent results in one Query; when that read does not cover the asked start (cold
 * container, long pause, another caller took it), it queries itself.
 * `probeNow` runs a fresh probe when the controller knows the side's URL; when it does not, it
 * returns the newest recorded result of that side if it is fresh enough, and otherwise an
 * `inconclusive` outcome saying why. Inconclusive is the safe answer: the judge holds on it (it
 * never advances without a probe that passed) but does not roll back a healthy version because a
 * probe was not configured.
 */
import type { ProbeHealth, ProbeOutcome, ProbePort, Side } from '../core/ports';
import { describeError } from './clients';
import type { DynamoDbStateStore, StoredProbeResult } from './dynamodb-store';

/**
 * One URL to probe and the side it reaches. In the probe function's environment it is one entry
 * of `CUTOVER_PROBE_TARGETS`: `{ "side": "old"|"new", "url": "https://…", "connectTo"?: "host[:port]",
 * "headers"?: { "Name": "value" } }`.
 */
export interface ProbeTarget {
  readonly side: Side;
  /**
   * `http:` or `https:` URL of an endpoint that reaches only that side's version, or, with
   * `connectTo` or `headers`, the URL the users call (its host name is sent as `Host` and by SNI,
   * and the certificate is checked against it).
   */
  readonly url: string;
  /**
   * Where the probe opens its connection instead of the URL's host: a host name, an IPv4 address
   * or an IPv6 address in brackets, with an optional `:port` (1–65535; the URL's port when left
   * out). For a fleet migration where both sides serve the same name: two ALBs (old fleet, new
   * fleet) behind `api.example.com`, each side's target has `url: "https://api.example.com/"` and
   * `connectTo` set to its own ALB's DNS name, so each side is probed alone and its certificate is
   * still checked against `api.example.com`. A private CA is trusted through the function's
   * `NODE_EXTRA_CA_CERTS`. Validated by the probe engine (`parseConnectTo` in
   * lambda/probe/target.ts): a bad value makes that side's results inconclusive, saying why.
   * @default - the URL's host and port
   */
  readonly connectTo?: string;
  /**
   * Extra headers on every probe request to this side, e.g. `{ "X-Cutover-Probe-Side": "new" }`
   * for an ALB listener rule that forwards probe traffic to one target group by a header. Names
   * are HTTP tokens, values have no CR/LF or other control characters; `Host`, `Content-Length`,
   * `Transfer-Encoding`, `Connection` and the other headers the probe sets itself are refused
   * (`checkTargetHeaders` in lambda/probe/target.ts).
   * @default - none
   */
  readonly headers?: Readonly<Record<string, string>>;
}

/** The target as one line for messages: its URL, and where the probe connects when elsewhere. */
export function describeTarget(target: ProbeTarget): string {
  return target.connectTo ? `${target.url} (connecting to ${target.connectTo})` : target.url;
}

/** Runs one probe against a target and returns its result (never throws for a bad server). */
export type ProbeRunner = (target: ProbeTarget) => Promise<StoredProbeResult>;

export interface TableProbesProps {
  readonly store: Pick<DynamoDbStateStore, 'probeResultsSince' | 'latestProbeResult' | 'putProbeResult' | 'takeLoadedProbeResults'>;
  /** The migration whose probe results are read and written. */
  readonly migrationId: string;
  /**
   * The sides `probeNow` may probe fresh, through `runner` (on AWS the probe function, see
   * probe-invoker.ts).
   * @default - none: probeNow uses recorded results
   */
  readonly targets?: readonly ProbeTarget[];
  /**
   * Runs a probe (required when `targets` is not empty).
   * @default - none
   */
  readonly runner?: ProbeRunner;
  /**
   * How old a recorded result may be to stand in for a fresh probe, in ms. Two schedule periods of
   * the probe function plus its run time.
   * @default 180000 (3 minutes)
   */
  readonly freshnessMs?: number;
  /** Current time, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Problems that did not fail the call. @default - console warning */
  readonly onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

export class TableProbes implements ProbePort {
  private readonly freshnessMs: number;
  private readonly now: () => number;
  private readonly warn: (message: string, detail?: Record<string, unknown>) => void;
  /** What `recentResults` last returned (oldest first): every result since its start. */
  private lastRead: readonly StoredProbeResult[] = [];

  constructor(private readonly props: TableProbesProps) {
    this.freshnessMs = props.freshnessMs ?? 180_000;
    if (!Number.isFinite(this.freshnessMs) || this.freshnessMs <= 0) {
      throw new RangeError(`freshnessMs must be a positive number, got ${JSON.stringify(props.freshnessMs)}`);
    }
    if ((props.targets ?? []).length > 0 && !props.runner) {
      throw new TypeError('a probe runner is required when probe targets are given');
    }
    this.now = props.now ?? Date.now;
    this.warn = props.onWarning ?? ((message, detail) => console.warn(message, detail ?? ''));
  }

  async probeNow(side: Side): Promise<ProbeOutcome> {
    const target = (this.props.targets ?? []).find((t) => t.side === side);
    if (target && this.props.runner) {
      let result: StoredProbeResult;
      try {
        result = await this.props.runner(target);
      } catch (error) {
        // The probe engine reports bad servers as findings; an exception is a bug or a bad
        // setting. Neither proves the side healthy nor broken.
        return this.inconclusive(side, `probe of ${describeTarget(target)} failed to run: ${describeError(error)}`);
      }
      try {
        await this.props.store.putProbeResult(this.props.migrationId, result);
      } catch (error) {
        // The outcome still reaches the decision (and its event); only the table copy is missing.
        this.warn('could not record the probe result', { side, error: describeError(error) });
      }
      return outcomeOf(result);
    }
    const since = this.now() - this.freshnessMs;
    // The tick's own read of recent results (moments ago, and complete from its start) usually
    // already holds the newest result of the side: no second Query then.
    const read = [...this.lastRead].reverse().find((r) => r.side === side && r.atMs >= since);
    const latest = read ?? (await this.props.store.latestProbeResult(this.props.migrationId, side, since));
    if (latest) return outcomeOf(latest);
    return this.inconclusive(
      side,
      `no probe target for the ${side} side in the controller and no probe result recorded in the last ${Math.round(this.freshnessMs / 1000)} s (is the probe function scheduled with a ${side} target?)`,
    );
  }

  async recentResults(sinceMs: number): Promise<readonly ProbeOutcome[]> {
    const { store, migrationId } = this.props;
    const results = store.takeLoadedProbeResults(migrationId, sinceMs) ?? (await store.probeResultsSince(migrationId, sinceMs));
    this.lastRead = results;
    return results.map(outcomeOf);
  }

  private inconclusive(side: Side, summary: string): ProbeOutcome {
    return { side, verdict: 'inconclusive', atMs: this.now(), summary, findings: 0 };
  }
}

/**
 * The fields the core needs (extra report figures stay in the table), with the probe's synthetic
 * health when the result carries a well-formed one (results recorded before it existed, or a
 * damaged figure, have none: the judge then goes without it).
 */
export function outcomeOf(result: StoredProbeResult): ProbeOutcome {
  const health = probeHealthOf(result.health);
  return {
    side: result.side,
    verdict: result.verdict,
    atMs: result.atMs,
    summary: result.summary,
    findings: result.findings,
    ...(health ? { health } : {}),
  };
}

/**
 * A clean copy of a probe's synthetic health read from the table or from the probe function's
 * answer: whole numbers, `0 ≤ errors5xx ≤ requests`, else undefined (never guessed). `errors4xx`
 * (the probe's 4XX answers, its deliberate ones included) is kept when it is a whole number with
 * `errors4xx + errors5xx ≤ requests`; a result recorded before it was counted, or a damaged one,
 * has none (the rest is kept).
 */
export function probeHealthOf(value: unknown): ProbeHealth | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { requests, errors4xx, errors5xx } = value as { requests?: unknown; errors4xx?: unknown; errors5xx?: unknown };
  if (typeof requests !== 'number' || typeof errors5xx !== 'number') return undefined;
  if (!Number.isSafeInteger(requests) || !Number.isSafeInteger(errors5xx) || errors5xx < 0 || errors5xx > requests) return undefined;
  const fourXx = typeof errors4xx === 'number' && Number.isSafeInteger(errors4xx) && errors4xx >= 0 && errors4xx + errors5xx <= requests;
  return fourXx ? { requests, errors4xx, errors5xx } : { requests, errors5xx };
}
