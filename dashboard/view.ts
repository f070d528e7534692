/**
 * The dashboard's view of one migration: what the page draws, built from what the operator access
 * layer (`ops/`) returns: the state (`MigrationSource.status`) and the whole event log
 * (`MigrationSource.history`). Pure and JSON-serialisable, so the same object feeds the live page
 * (over server-sent events) and the self-contained report file.
 *
 * Everything comes from the event log: the controller records a `held` event with its evidence for
 * every judged window, and each decision carries the signals it was based on (`Decision.signals`:
 * the window, the CUSUM statistics with their threshold, the probes, the capacity, the residual
 * traffic after a rollback). Nothing is recomputed here: the page shows what the judge saw.
 *
 * For an AWS migration, a page being watched also gets CloudWatch's own per-minute series
 * (`cloudWatch`, read by cloudwatch.ts): the controller's metrics and the per-side health the judge
 * reads, drawn next to the decision evidence and labelled as CloudWatch data.
 */
import type { MigrationEvent } from '../lambda/core/model';
import type { MigrationState, MigrationSummary } from '../ops/types';
import type { CloudWatchRead } from './cloudwatch';

/** One point of the weight step chart: the weight in effect from `atMs` on. */
export interface WeightPoint {
  readonly atMs: number;
  readonly weight: number;
  readonly step: number;
}

/** One judged health window, new against old. Rates are shares (0–1) of the side's requests. */
export interface WindowPoint extends SideHealth {
  /** End of the window, epoch ms. */
  readonly atMs: number;
  /** The latency test's line: requests slower than this count as slow (the judge's `slowThresholdMs`). */
  readonly slowThresholdMs: number | null;
}

/** The judge's sequential tests after one decision, against their common limit. */
export interface EvidencePoint {
  readonly atMs: number;
  readonly cusum5xx: number;
  readonly cusum4xx: number;
  readonly cusumSlow: number;
  readonly cusumCeiling: number;
  /** h = ln(falseAlarmWindows): a test reaching it rolls back. */
  readonly threshold: number;
}

/** One probe run of one side. */
export interface ProbePoint {
  readonly atMs: number;
  readonly side: 'old' | 'new';
  readonly verdict: string;
  readonly summary: string;
  readonly findings: number;
  readonly requests?: number;
  readonly errors5xx?: number;
}

/** The old side's capacity as a decision saw it. */
export interface CapacityPoint {
  readonly atMs: number;
  readonly current: number;
  readonly pinned: number | null;
  readonly ready: boolean;
  readonly detail?: string;
}

/** One line of the decision log. */
export interface DecisionLine {
  readonly seq: number;
  readonly atMs: number;
  readonly type: string;
  readonly from: string;
  readonly to: string;
  readonly weight: number;
  readonly step: number;
  readonly code: string;
  readonly reason: string;
}

/**
 * After a rollback: what still reached the new side, and how long it took to drain. From the
 * controller's `rollback-residual` event, or from a rehearsal's own report (its clients count
 * wrong answers exactly).
 */
export interface ResidualView {
  /** When it was reported, epoch ms. */
  readonly atMs: number;
  readonly requestsAfterRollback: number;
  readonly wrongAnswersAfterRollback: number;
  /** True when `wrongAnswersAfterRollback` is an upper bound (a rollback for a desync, on AWS). @default false */
  readonly wrongAnswersBound?: boolean;
  readonly drained: boolean;
  /** From the rollback to the drain; null or absent when it did not drain. */
  readonly drainedAfterMs?: number | null;
  readonly activeDrain: boolean;
}

/** Everything the migration page shows. */
export interface MigrationView {
  readonly state: MigrationState;
  /** When this view was built, epoch ms. */
  readonly builtAtMs: number;
  readonly weight: readonly WeightPoint[];
  /** The plan's steps (weights in order), marked on the weight chart. */
  readonly stepWeights: readonly number[];
  readonly windows: readonly WindowPoint[];
  readonly evidence: readonly EvidencePoint[];
  readonly probes: readonly ProbePoint[];
  readonly capacity: readonly CapacityPoint[];
  /** After a rollback: what still reached the new side and how long it took to drain (`rollback-residual`). */
  readonly residual?: ResidualView;
  /** The whole event log as lines, oldest first. */
  readonly decisions: readonly DecisionLine[];
  /**
   * The 5XX ceiling (`maxErrorRate`) drawn on the error-rate chart, when the state carries the
   * judge's settings. @default - not drawn
   */
  readonly maxErrorRate?: number;
  /** CloudWatch's per-minute series (AWS only, while the page is watched). @default - none */
  readonly cloudWatch?: CloudWatchView;
}

/** Requests, error rates (shares, 0–1; null without requests) and latency of each side in one period. */
export interface SideHealth {
  readonly newRequests: number;
  readonly oldRequests: number;
  readonly newRate5xx: number | null;
  readonly oldRate5xx: number | null;
  readonly newRate4xx: number | null;
  readonly oldRate4xx: number | null;
  readonly newLatencyMs: number | null;
  readonly oldLatencyMs: number | null;
}

/** One minute of the per-side health as CloudWatch has it. */
export interface CloudWatchMinute extends SideHealth {
  readonly atMs: number;
}

/** CloudWatch's series of one migration, as the page draws them. */
export interface CloudWatchView extends Omit<CloudWatchRead, 'series'> {
  /** What the page calls these series. */
  readonly label: 'CloudWatch';
  /** The controller's `Weight` per minute (the highest of the minute). */
  readonly weight: readonly { readonly atMs: number; readonly weight: number }[];
  /** The controller's `OldCapacity` (lowest of the minute) and `PinnedCapacity` per minute. */
  readonly capacity: readonly { readonly atMs: number; readonly current: number | null; readonly pinned: number | null }[];
  /** The controller's `ResidualRequests` after a rollback. */
  readonly residualRequests: readonly { readonly atMs: number; readonly requests: number }[];
  /** Per-side health per minute (Lambda alias migrations). */
  readonly minutes: readonly CloudWatchMinute[];
  /** Query ids with not one datapoint in the period (a metric not published, or nothing happened). */
  readonly missing: readonly string[];
}

/** Builds the view of one migration from its state, its whole event log, and a CloudWatch read when there is one. */
export function buildMigrationView(state: MigrationState, history: readonly MigrationEvent[], now: number, cloudWatch?: CloudWatchRead): MigrationView {
  const weight: WeightPoint[] = [];
  const windows: WindowPoint[] = [];
  const evidence: EvidencePoint[] = [];
  const capacity: CapacityPoint[] = [];
  const probes = new Map<string, ProbePoint>();
  let residual: MigrationView['residual'];
  let lastWindowEnd = -Infinity;

  for (const e of history) {
    const previous = weight[weight.length - 1];
    if (!previous || previous.weight !== e.weight || previous.step !== e.step) weight.push({ atMs: e.atMs, weight: e.weight, step: e.step });
    const s = e.signals;
    if (!s) continue;
    const stats = s.stats ?? {};
    // A window is judged once; a decision that repeats it (the shift after a hold) adds nothing.
    if (s.window && s.window.toMs > lastWindowEnd) {
      lastWindowEnd = s.window.toMs;
      const w = s.window;
      windows.push({
        atMs: w.toMs,
        newRequests: w.new.requests,
        oldRequests: w.old.requests,
        newRate5xx: share(w.new.errors5xx, w.new.requests),
        oldRate5xx: share(w.old.errors5xx, w.old.requests),
        newRate4xx: share(w.new.errors4xx, w.new.requests),
        oldRate4xx: share(w.old.errors4xx, w.old.requests),
        newLatencyMs: w.new.latencyMs ?? null,
        oldLatencyMs: w.old.latencyMs ?? null,
        slowThresholdMs: finite(stats.slowThresholdMs),
      });
    }
    if (isFiniteNumber(stats.threshold)) {
      evidence.push({
        atMs: e.atMs,
        cusum5xx: stats.cusum5xx ?? 0,
        cusum4xx: stats.cusum4xx ?? 0,
        cusumSlow: stats.cusumSlow ?? 0,
        cusumCeiling: stats.cusumCeiling ?? 0,
        threshold: stats.threshold,
      });
    }
    for (const p of s.probes ?? []) {
      const key = `${p.side}:${p.atMs}`;
      if (!probes.has(key)) {
        probes.set(key, {
          atMs: p.atMs,
          side: p.side,
          verdict: p.verdict,
          summary: p.summary,
          findings: p.findings,
          ...(p.health ? { requests: p.health.requests, errors5xx: p.health.errors5xx } : {}),
        });
      }
    }
    if (s.capacity) {
      capacity.push({
        atMs: e.atMs,
        current: s.capacity.current,
        pinned: s.capacity.pinned ?? state.oldCapacity?.pinned ?? null,
        ready: s.capacity.ready,
        ...(s.capacity.detail ? { detail: s.capacity.detail } : {}),
      });
    }
    if (s.residual) {
      const r = s.residual;
      residual = {
        atMs: e.atMs,
        requestsAfterRollback: r.requestsAfterRollback,
        wrongAnswersAfterRollback: r.wrongAnswersAfterRollback,
        wrongAnswersBound: r.wrongAnswersBound,
        drained: r.drained,
        drainedAfterMs: r.drainedAfterMs,
        activeDrain: r.activeDrain,
      };
    }
  }
  // The weight stays where it is until now: the step chart's last segment reaches the right edge.
  const last = weight[weight.length - 1];
  if (last && state.updatedAtMs !== undefined && state.updatedAtMs > last.atMs) weight.push({ ...last, atMs: state.updatedAtMs });

  const judge = (state as MigrationState & { readonly judge?: { readonly maxErrorRate?: unknown } }).judge;
  return {
    state,
    builtAtMs: now,
    weight,
    stepWeights: state.stepWeights ?? [],
    windows,
    evidence,
    probes: [...probes.values()].sort((a, b) => a.atMs - b.atMs),
    capacity,
    ...(residual ? { residual } : {}),
    decisions: history.map((e) => ({
      seq: e.seq,
      atMs: e.atMs,
      type: e.type,
      from: e.from,
      to: e.to,
      weight: e.weight,
      step: e.step,
      code: e.code,
      reason: e.reason,
    })),
    ...(judge && isFiniteNumber(judge.maxErrorRate) ? { maxErrorRate: judge.maxErrorRate } : {}),
    ...(cloudWatch ? { cloudWatch: cloudWatchView(cloudWatch) } : {}),
  };
}

/**
 * CloudWatch's datapoints as chart series. A minute's per-side figures are combined as the
 * controller's CloudWatch health source combines them: Lambda's `Invocations` through the alias
 * are the requests (the application's `Requests` when Lambda has no datapoint), 5XX are the
 * application's `Errors5xx` plus Lambda's `Errors` (failed invocations), both capped at the
 * requests; latency is Lambda's `Duration` p99.
 */
export function cloudWatchView(read: CloudWatchRead): CloudWatchView {
  const { series, ...rest } = read;
  const points = (id: string): readonly (readonly [number, number])[] => series[id]?.points ?? [];
  const byMinute = (id: string): Map<number, number> => new Map(points(id).map(([at, v]) => [at, v]));
  const capacityAt = new Map<number, { current: number | null; pinned: number | null }>();
  for (const [at, v] of points('ctl_old_capacity')) capacityAt.set(at, { current: v, pinned: null });
  for (const [at, v] of points('ctl_pinned_capacity')) capacityAt.set(at, { current: capacityAt.get(at)?.current ?? null, pinned: v });

  const minutes: CloudWatchMinute[] = [];
  if (read.health === 'lambda-alias') {
    const side = (s: 'old' | 'new') => {
      const m = Object.fromEntries(['requests', 'errors4xx', 'errors5xx', 'invocations', 'lambdaErrors', 'durationP99'].map((k) => [k, byMinute(`${s}_${k}`)]));
      return (at: number) => {
        const requests = m.invocations!.get(at) ?? m.requests!.get(at) ?? 0;
        const errors5xx = Math.min(requests, (m.errors5xx!.get(at) ?? 0) + (m.lambdaErrors!.get(at) ?? 0));
        const errors4xx = Math.min(requests, m.errors4xx!.get(at) ?? 0);
        const latency = m.durationP99!.get(at);
        return { requests, rate5xx: share(errors5xx, requests), rate4xx: share(errors4xx, requests), latencyMs: requests > 0 && latency !== undefined ? latency : null };
      };
    };
    pushMinutes(minutes, series, side('old'), side('new'));
  } else if (read.health === 'load-balancer') {
    // As the controller's ALB health source reads a side: RequestCount, target 5XX plus the
    // load balancer's own 5XX (per load balancer) or failed connections to the group's targets
    // (per target group), target 4XX, TargetResponseTime p99 in seconds. The probe's requests are
    // in these counts (the controller subtracts them using its stored probe results; the
    // dashboard does not read those).
    const side = (s: 'old' | 'new') => {
      const m = Object.fromEntries(['requests', 'target4xx', 'target5xx', 'elb5xx', 'connectionErrors', 'latencyP99'].map((k) => [k, byMinute(`${s}_${k}`)]));
      return (at: number) => {
        const requests = m.requests!.get(at) ?? 0;
        const errors5xx = Math.min(requests, (m.target5xx!.get(at) ?? 0) + (m.elb5xx!.get(at) ?? 0) + (m.connectionErrors!.get(at) ?? 0));
        const errors4xx = Math.min(requests, m.target4xx!.get(at) ?? 0);
        const latencySeconds = m.latencyP99!.get(at);
        return { requests, rate5xx: share(errors5xx, requests), rate4xx: share(errors4xx, requests), latencyMs: requests > 0 && latencySeconds !== undefined ? latencySeconds * 1000 : null };
      };
    };
    pushMinutes(minutes, series, side('old'), side('new'));
  }
  return {
    ...rest,
    label: 'CloudWatch',
    weight: points('ctl_weight').map(([atMs, weight]) => ({ atMs, weight })),
    capacity: [...capacityAt.entries()].sort((a, b) => a[0] - b[0]).map(([atMs, c]) => ({ atMs, ...c })),
    residualRequests: points('ctl_residual_requests').map(([atMs, requests]) => ({ atMs, requests })),
    minutes,
    missing: Object.entries(series)
      .filter(([, data]) => data.points.length === 0)
      .map(([id]) => id),
  };
}

type SideAt = (at: number) => { requests: number; rate5xx: number | null; rate4xx: number | null; latencyMs: number | null };

/** One minute for every minute either side has a datapoint in, in time order. */
function pushMinutes(minutes: CloudWatchMinute[], series: CloudWatchRead['series'], atOld: SideAt, atNew: SideAt): void {
  const times = new Set<number>();
  for (const [id, data] of Object.entries(series)) if (/^(old|new)_/.test(id)) for (const [at] of data.points) times.add(at);
  for (const at of [...times].sort((a, b) => a - b)) {
    const o = atOld(at);
    const n = atNew(at);
    minutes.push({
      atMs: at,
      newRequests: n.requests,
      oldRequests: o.requests,
      newRate5xx: n.rate5xx,
      oldRate5xx: o.rate5xx,
      newRate4xx: n.rate4xx,
      oldRate4xx: o.rate4xx,
      newLatencyMs: n.latencyMs,
      oldLatencyMs: o.latencyMs,
    });
  }
}

/** What the list page shows. */
export interface ListView {
  readonly builtAtMs: number;
  readonly source: string;
  readonly migrations: readonly MigrationSummary[];
}

/** A change key for a view: equal keys, nothing new to send (the build time is left out). */
export function viewKey(view: MigrationView | ListView): string {
  return JSON.stringify({ ...view, builtAtMs: 0 });
}

function share(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

function finite(value: number | undefined): number | null {
  return isFiniteNumber(value) ? value : null;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
