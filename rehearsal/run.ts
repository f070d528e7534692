/**
 * The local rehearsal: a whole migration on loopback with real HTTP servers, a real
 * traffic-splitting router, real Keep-Alive clients and the real Keep-Alive probe, driven by the
 * same core controller that runs in Lambda.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MigrationController, type MigrationRecord } from '../lambda/core/controller';
import type { JudgeConfig } from '../lambda/core/judge';
import { TERMINAL_STATUSES, type MigrationEvent, type MigrationStatus } from '../lambda/core/model';
import { MigrationPlan, type PlanSpec } from '../lambda/core/plan';
import type { CapacityStatus, Clock, HealthWindow, ProbeOutcome, StateStore, TrafficPort } from '../lambda/core/ports';
import type { ProbeOptions } from '../lambda/probe';
import {
  FileStateStore,
  LocalCapacity,
  LocalHealth,
  LocalMetrics,
  MemoryEventSink,
  WorkerPool,
  seededRandom,
  startClients,
  startDemoServer,
  startRouter,
  type ClientStats,
  type DemoServer,
  type OutcomeCounts,
  type Router,
  type SyntheticClients,
} from '../local';
import { LocalProbes } from '../local/probes';
import type { Scenario } from './scenarios';

export type RehearsalOutcome = 'promoted' | 'rolled-back' | 'halted';

export interface RehearsalOptions {
  readonly scenario: Scenario;
  /** The (compressed) plan to run. */
  readonly plan: PlanSpec;
  /**
   * Port of the traffic router on 127.0.0.1; 0 picks a free one.
   * @default 0
   */
  readonly port?: number;
  /**
   * Seed of every random choice (routing, client mix, injected 5XX).
   * @default 1
   */
  readonly seed?: number;
  /**
   * Where the migration record and event log are kept.
   * @default - a new temporary directory
   */
  readonly stateDir?: string;
  /**
   * Time between controller ticks, ms.
   * @default 200
   */
  readonly tickMs?: number;
  /**
   * Pause between periodic probes of the new side, ms.
   * @default 500
   */
  readonly probeIntervalMs?: number;
  /**
   * Synthetic Keep-Alive clients and their total request rate.
   * @default 8 clients, 200 requests/s, 2 % oversized event posts
   */
  readonly clients?: { readonly concurrency?: number; readonly ratePerSecond?: number; readonly oversizeShare?: number };
  /**
   * Workers of the old side (its full scale).
   * @default 8
   */
  readonly oldWorkers?: number;
  /**
   * Judge settings for the compressed plan.
   * @default REHEARSAL_JUDGE
   */
  readonly judge?: Partial<JudgeConfig>;
  /**
   * Give up (outcome `halted`) after this long.
   * @default - three times the plan's minimum duration plus 30 s
   */
  readonly timeLimitMs?: number;
  /** Aborting stops the rehearsal (Ctrl-C); the report covers what happened so far. */
  readonly signal?: AbortSignal;
  /** Called for every event of the migration, as it happens. */
  readonly onEvent?: (event: MigrationEvent, elapsedMs: number) => void;
  /** Called after every tick with a snapshot for a live view. */
  readonly onFrame?: (frame: RehearsalFrame) => void;
  /**
   * Probe settings.
   * @default REHEARSAL_PROBE
   */
  readonly probe?: Omit<ProbeOptions, 'baseUrl'>;
}

/**
 * Judge settings that suit a plan measured in seconds at a few hundred requests per second.
 *
 * `latencyMarginMs` is 150 (default 50): a request counts as slow above the old side's p99 plus
 * 150 ms. On loopback a busy machine stalls the event loop for tens of milliseconds at a time;
 * such stalls hit both sides alike, which the latency test's new-against-old comparison cancels,
 * but a margin well above them keeps the slow counts about the application. The `latency`
 * scenario's 250 ms fault stays far above it.
 */
export const REHEARSAL_JUDGE: Partial<JudgeConfig> = {
  minRequests: 30,
  latencyMarginMs: 150,
  maxMissingWindows: 3,
  maxHoldMs: 15_000,
};

/**
 * Probe settings for loopback: the demo servers answer in milliseconds, so a 100 ms idle watch
 * (instead of the probe's 250 ms default, sized for real networks) still sees any stray bytes and
 * brings a probe from about 2.8 s down to about 1.3 s.
 */
export const REHEARSAL_PROBE: Omit<ProbeOptions, 'baseUrl'> = { healthPath: '/health', idleMs: 100 };

/** What the live view shows after each tick. */
export interface RehearsalFrame {
  readonly scenario: string;
  readonly elapsedMs: number;
  readonly status: MigrationStatus;
  readonly weight: number;
  /** 1-based step, 0 before the first shift. */
  readonly step: number;
  readonly steps: number;
  /** The last second of traffic as the router saw it. */
  readonly window?: HealthWindow;
  readonly oldCapacity: CapacityStatus;
  readonly clients: Pick<ClientStats, 'requests' | 'errorResponses' | 'misalignedResponses'>;
  /** The blast radius so far: from the fault's onset (or the first request) to the rollback or now. */
  readonly blastRadius: BlastRadius;
  readonly fault?: { readonly description: string; readonly active: boolean };
  readonly lastReason?: string;
  readonly lastProbe?: ProbeOutcome;
}

export interface TimelineEntry {
  /** Milliseconds since the rehearsal started. */
  readonly atMs: number;
  readonly weight: number;
  readonly state: MigrationStatus;
  readonly type: string;
  readonly code: string;
  readonly reason: string;
}

/**
 * What clients suffered from one side over a span of the run. Each client request counts at most
 * once, in one category, by when its answer (or failure) reached the client; requests that got
 * the answer they expected do not count.
 */
export interface SideHarm {
  /** A 4XX the request did not expect (any 4XX but the 413 of an oversized event POST), e.g. a stray 401. */
  readonly unexpected4xx: number;
  /** A 5XX from the side (the request's own answer, with an error status). */
  readonly unexpected5xx: number;
  /** The answer to another request (a shifted Keep-Alive connection: desync). */
  readonly wrongAnswers: number;
  /**
   * Timeouts and transport errors: the router answered 502/504 because the side reset, refused or
   * stayed silent for 5 s; under `unattributed`, requests that got no HTTP response at all.
   */
  readonly transportErrors: number;
  /** Any other status the request did not expect (e.g. a 200 where a 413 was due), or an answer without identity. */
  readonly otherUnexpected: number;
  /** The sum of the above. */
  readonly total: number;
}

/** `SideHarm` for each side, for what no side can be blamed for, and in total. */
export interface HarmBySide {
  readonly old: SideHarm;
  readonly new: SideHarm;
  /**
   * Requests that no side can be blamed for: no HTTP response at all (the client's own timeout, or
   * a connection reset between client and router), or an answer without the router's
   * `x-cutover-side` header. Only `transportErrors` is expected here.
   */
  readonly unattributed: SideHarm;
  /** `old` + `new` + `unattributed`, field by field. */
  readonly total: SideHarm;
}

/**
 * What clients suffered between the fault and the rollback, per side.
 *
 * The span starts at the fault's onset, or at the first client request when the scenario has no
 * fault or its fault never started (so a healthy run is measured over the whole run, and shows
 * zeros). It ends when the rollback is in effect, i.e. when the router took the new side's weight
 * to 0 (just before the `rolled-back` event), or when the clients stopped at the end of a run that
 * did not roll back. Answers that reach clients after the rollback is in effect (requests already
 * in flight on the new side, and anything the old side does afterwards) are counted apart, in
 * `afterRollback`.
 */
export interface BlastRadius extends HarmBySide {
  readonly span: {
    readonly from: 'fault' | 'start';
    /** Milliseconds since the rehearsal started. */
    readonly fromMs: number;
    /** `now` in a live frame, before any rollback. */
    readonly to: 'rollback' | 'end' | 'now';
    readonly toMs: number;
  };
  /** Client requests that got a 5XX or a transport error in the span (`total.unexpected5xx + total.transportErrors`). */
  readonly errorResponses: number;
  /** Client requests that got the answer to another request in the span (`total.wrongAnswers`). */
  readonly misalignedResponses: number;
  /** From the rollback in effect to the end of the run; only after a rollback. */
  readonly afterRollback?: HarmBySide;
}

export interface RehearsalReport {
  readonly scenario: string;
  readonly description: string;
  readonly outcome: RehearsalOutcome;
  /** Whether the outcome is what a correct engine does with this scenario. */
  readonly expectedOutcome: 'promoted' | 'rolled-back';
  readonly finalState: MigrationStatus;
  readonly finalWeight: number;
  readonly plan: string;
  readonly durationMs: number;
  readonly interrupted: boolean;
  readonly clientRequests: number;
  /** Client requests that got a 5XX or a transport error. */
  readonly errorResponses: number;
  /** Client requests that got the answer to another request. */
  readonly misalignedResponses: number;
  readonly requestsBySide: { readonly old: number; readonly new: number };
  /**
   * Responses by status code per side as the router relayed them (502/504: generated for a side it
   * could not reach in time), over the whole run: a count independent of the clients' own.
   */
  readonly responsesBySide: { readonly old: Readonly<Record<string, number>>; readonly new: Readonly<Record<string, number>> };
  readonly fault?: { readonly description: string; readonly onsetAtMs?: number };
  /** Set when the migration rolled back. */
  readonly rollback?: {
    readonly atMs: number;
    readonly code: string;
    readonly reason: string;
    /** From the fault's onset to weight 0. */
    readonly afterFaultMs?: number;
  };
  /** What clients suffered, per side, between the fault's onset and the rollback in effect: see `BlastRadius`. */
  readonly blastRadius: BlastRadius;
  readonly oldCapacity: {
    /** The figure the controller pinned the old side at (its scale at the first tick, unless the plan named one). */
    readonly pinned?: number;
    /**
     * The fewest warm workers of the old side while the pin held, from the moment it was set to
     * the moment teardown released it, tracked by the pool on every change of size (not sampled).
     * Equal to `pinned` when the pin did its job; below it when capacity was lost behind the pin's
     * back (the capacity-drop scenario). Shrinking after the release does not count. Absent when
     * the old side was never pinned.
     */
    readonly lowest?: number;
    /** Warm workers when the rehearsal ended (after a teardown the autoscaler may have shrunk it). */
    readonly final: number;
  };
  readonly probes: { readonly runs: number; readonly desync: number; readonly inconclusive: number };
  readonly timeline: readonly TimelineEntry[];
  /** Where the record and event log were kept. */
  readonly stateDir: string;
  /**
   * What went wrong with the rehearsal's own bookkeeping without spoiling the report, one
   * sentence each (e.g. an unreadable event log, replaced by the events published in memory).
   * @default - absent when nothing went wrong
   */
  readonly warnings?: readonly string[];
}

const CLOCK: Clock = { now: () => Date.now() };

/** How long the router waits for a silent side before it answers 504 for it. */
const UPSTREAM_TIMEOUT_MS = 5000;
/** How long a client waits for an answer; longer than the router's wait, see `UPSTREAM_TIMEOUT_MS`. */
const CLIENT_TIMEOUT_MS = 10_000;

const NO_COUNTS: OutcomeCounts = {
  requests: 0,
  ok: 0,
  errorResponses: 0,
  misalignedResponses: 0,
  unexpectedResponses: 0,
  unexpected4xx: 0,
  unexpected5xx: 0,
  gatewayErrors: 0,
};

function sideHarm(parts: Omit<SideHarm, 'total'>): SideHarm {
  const total = parts.unexpected4xx + parts.unexpected5xx + parts.wrongAnswers + parts.transportErrors + parts.otherUnexpected;
  return { ...parts, total };
}

/** What one source's counts grew by from `before` to `after`, as harm. */
function harmOf(before: OutcomeCounts, after: OutcomeCounts): SideHarm {
  const d = (key: keyof OutcomeCounts): number => after[key] - before[key];
  return sideHarm({
    unexpected4xx: d('unexpected4xx'),
    unexpected5xx: d('unexpected5xx'),
    wrongAnswers: d('misalignedResponses'),
    transportErrors: d('gatewayErrors'),
    otherUnexpected: d('unexpectedResponses') - d('unexpected4xx'),
  });
}

function addHarm(...parts: SideHarm[]): SideHarm {
  const sum = (key: keyof SideHarm): number => parts.reduce((n, p) => n + p[key], 0);
  return sideHarm({
    unexpected4xx: sum('unexpected4xx'),
    unexpected5xx: sum('unexpected5xx'),
    wrongAnswers: sum('wrongAnswers'),
    transportErrors: sum('transportErrors'),
    otherUnexpected: sum('otherUnexpected'),
  });
}

/**
 * What clients suffered between two snapshots of their statistics, per side (`before` undefined:
 * since they started). Answers are attributed by the router's side header; requests without an
 * HTTP response, and answers without the header, are `unattributed`.
 */
export function harmBetween(
  before: Pick<ClientStats, 'bySource' | 'transportErrors'> | undefined,
  after: Pick<ClientStats, 'bySource' | 'transportErrors'>,
): HarmBySide {
  const old = harmOf(before?.bySource.old ?? NO_COUNTS, after.bySource.old);
  const neu = harmOf(before?.bySource.new ?? NO_COUNTS, after.bySource.new);
  const noResponse = sideHarm({
    unexpected4xx: 0,
    unexpected5xx: 0,
    wrongAnswers: 0,
    transportErrors: after.transportErrors - (before?.transportErrors ?? 0),
    otherUnexpected: 0,
  });
  const unattributed = addHarm(harmOf(before?.bySource.direct ?? NO_COUNTS, after.bySource.direct), noResponse);
  return { old, new: neu, unattributed, total: addHarm(old, neu, unattributed) };
}

/** `harmBetween` with the totals under the report's historical names. */
export function blastRadiusBetween(
  before: Pick<ClientStats, 'bySource' | 'transportErrors'> | undefined,
  after: Pick<ClientStats, 'bySource' | 'transportErrors'>,
): HarmBySide & Pick<BlastRadius, 'errorResponses' | 'misalignedResponses'> {
  const harm = harmBetween(before, after);
  return {
    errorResponses: harm.total.unexpected5xx + harm.total.transportErrors,
    misalignedResponses: harm.total.wrongAnswers,
    ...harm,
  };
}

/** Runs one rehearsal end to end and stops everything it started, whatever happens. */
export async function runRehearsal(options: RehearsalOptions): Promise<RehearsalReport> {
  const { scenario } = options;
  const plan = MigrationPlan.fromSpec(options.plan);
  const seed = options.seed ?? 1;
  const tickMs = options.tickMs ?? 200;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'cutover-rehearsal-'));
  const timeLimitMs = options.timeLimitMs ?? plan.minimumDurationMs * 3 + 30_000;
  const startedAt = CLOCK.now();
  const elapsed = (): number => CLOCK.now() - startedAt;

  const cleanup: Array<() => Promise<void> | void> = [];
  const pool = new WorkerPool({ size: options.oldWorkers ?? 8, warmUpMs: 1500, autoscaler: { intervalMs: 500, lookbackMs: 2000 } });
  cleanup.push(() => pool.close());
  let v1: DemoServer | undefined;
  let v2: DemoServer | undefined;
  let router: Router | undefined;
  let clients: SyntheticClients | undefined;
  let probes: LocalProbes | undefined;
  try {
    v1 = await startDemoServer({ version: 'v1', workerPool: pool, serviceTimeMs: 5, random: seededRandom(seed) });
    cleanup.push(() => v1!.close());
    v2 = await startDemoServer({ version: 'v2', serviceTimeMs: 5, random: seededRandom(seed + 1) });
    cleanup.push(() => v2!.close());
    // 100 ms buckets: a 1 s judge window then ends at most 100 ms before "now".
    const metrics = new LocalMetrics({ clock: CLOCK, bucketMs: 100 });
    router = await startRouter({
      oldUrl: v1.url,
      newUrl: v2.url,
      weight: 0,
      metrics,
      clock: CLOCK,
      random: seededRandom(seed + 2),
      // Below the clients' own timeout, so a side that stays silent reaches them as the router's
      // 504 for that side (counted against it) rather than as an anonymous client timeout.
      upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS,
      ...(options.port !== undefined ? { port: options.port } : {}),
    });
    cleanup.push(() => router!.close());

    let lastProbe: ProbeOutcome | undefined;
    const probeRuns = { runs: 0, desync: 0, inconclusive: 0 };
    probes = new LocalProbes({
      urls: { old: v1.url, new: v2.url },
      clock: CLOCK,
      probe: options.probe ?? REHEARSAL_PROBE,
      onResult: (outcome) => {
        lastProbe = outcome;
        probeRuns.runs += 1;
        if (outcome.verdict === 'desync') probeRuns.desync += 1;
        if (outcome.verdict === 'inconclusive') probeRuns.inconclusive += 1;
      },
    });
    cleanup.push(() => probes!.stop());

    // The moment the router's weight last went to 0 and what clients had suffered by then: when a
    // rollback is in effect. The controller publishes its `rolled-back` event after this.
    let lastZero: { readonly at: number; readonly stats: ClientStats } | undefined;
    const routerTraffic = router.traffic;
    const traffic: TrafficPort = {
      getWeight: () => routerTraffic.getWeight(),
      async setWeight(weight, expectedRevision) {
        const state = await routerTraffic.setWeight(weight, expectedRevision);
        if (state.weight === 0 && clients) lastZero = { at: CLOCK.now(), stats: clients.stats() };
        return state;
      },
    };

    const sink = new MemoryEventSink<MigrationEvent>();
    const store = new FileStateStore<MigrationRecord, MigrationEvent>({ directory: stateDir });
    const health = new LocalHealth({ metrics, clock: CLOCK });
    const controller = new MigrationController({
      clock: CLOCK,
      traffic,
      health,
      probes,
      capacity: new LocalCapacity(pool),
      store,
      events: sink,
    });

    const clientOptions = options.clients ?? {};
    const clientsStartedAt = CLOCK.now();
    clients = startClients({
      targetUrl: router.url,
      concurrency: clientOptions.concurrency ?? 8,
      ratePerSecond: clientOptions.ratePerSecond ?? 200,
      oversizeShare: clientOptions.oversizeShare ?? 0.02,
      requestTimeoutMs: CLIENT_TIMEOUT_MS,
      random: seededRandom(seed + 3),
    });
    cleanup.push(async () => {
      await clients!.stop();
    });

    // Scenario bookkeeping: fault onset, rollback, client counts at those moments.
    let faultOnsetAt: number | undefined;
    let clientsAtFault: ClientStats | undefined;
    let rollbackInEffect: { readonly at: number; readonly stats: ClientStats } | undefined;
    let rollbackEvent: MigrationEvent | undefined;
    const inject = (): void => {
      if (faultOnsetAt !== undefined || !scenario.inject) return;
      scenario.inject({
        setNewSideFaults: (faults) => v2!.setFaults(faults),
        shrinkOldSide: (units, why) => pool.forceShrink(units, why),
      });
      faultOnsetAt = CLOCK.now();
      clientsAtFault = clients!.stats();
    };
    sink.subscribe((events) => {
      for (const event of events) {
        if (event.to === 'rolled-back' && event.from !== 'rolled-back' && !rollbackEvent) {
          rollbackEvent = event;
          // In effect since the router's weight went to 0 for it; without such a change seen
          // (the weight was already 0, set by someone else), since this event.
          const zeroForThis = lastZero !== undefined && lastZero.at >= (faultOnsetAt ?? startedAt) ? lastZero : undefined;
          rollbackInEffect = zeroForThis ?? { at: CLOCK.now(), stats: clients!.stats() };
        }
        options.onEvent?.(event, event.atMs - startedAt);
      }
    });

    if (scenario.faultAt === 'start') inject();

    /** The blast radius from the fault (or the first request) to the rollback in effect, or to `now`. */
    const blastRadius = (now: { readonly at: number; readonly stats: ClientStats }, ended: boolean): BlastRadius => {
      const from = clientsAtFault !== undefined && faultOnsetAt !== undefined ? { at: faultOnsetAt, stats: clientsAtFault } : undefined;
      const to = rollbackInEffect ?? now;
      return {
        span: {
          from: from ? 'fault' : 'start',
          fromMs: (from?.at ?? clientsStartedAt) - startedAt,
          to: rollbackInEffect ? 'rollback' : ended ? 'end' : 'now',
          toMs: to.at - startedAt,
        },
        ...blastRadiusBetween(from?.stats, to.stats),
        ...(rollbackInEffect ? { afterRollback: harmBetween(rollbackInEffect.stats, now.stats) } : {}),
      };
    };

    const id = `rehearsal-${scenario.name}-${startedAt}`;
    await controller.start({ id, plan: plan.toSpec(), judge: { ...REHEARSAL_JUDGE, ...options.judge }, metadata: { scenario: scenario.name } });
    // Both sides, each round, as the probe Lambda's schedule does on AWS: a desync on the old side
    // too is not the new version's fault, and the old side's answers are its synthetic health.
    probes.startPeriodic(['new', 'old'], options.probeIntervalMs ?? 500);

    let record: MigrationRecord | undefined;
    let interrupted = false;
    const signal = options.signal;
    while (true) {
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
      const result = await controller.tick(id);
      record = result.record;
      if (typeof scenario.faultAt === 'number' && record.step >= scenario.faultAt && record.status === 'baking') inject();
      if (record.status === 'complete') {
        const torn = await controller.command(id, 'teardown', 'rehearsal: the new side passed its soak; releasing the old side');
        record = torn.record;
      }
      options.onFrame?.(frame(record, pool.status()));
      if (TERMINAL_STATUSES.includes(record.status) || record.status === 'paused' || elapsed() > timeLimitMs) break;
      await sleepUnlessAborted(tickMs, signal);
    }

    function frame(r: MigrationRecord, capacity: CapacityStatus): RehearsalFrame {
      const now = CLOCK.now();
      const window = metrics.window(now - 1000, now);
      const c = clients!.stats();
      return {
        scenario: scenario.name,
        elapsedMs: now - startedAt,
        status: r.status,
        weight: r.weight,
        step: r.step + 1,
        steps: r.plan.steps.length,
        ...(window ? { window } : {}),
        oldCapacity: { ...capacity, pinned: r.pinnedCapacity ?? capacity.pinned },
        clients: { requests: c.requests, errorResponses: c.errorResponses, misalignedResponses: c.misalignedResponses },
        blastRadius: blastRadius({ at: now, stats: c }, false),
        ...(scenario.fault ? { fault: { description: scenario.fault, active: faultOnsetAt !== undefined } } : {}),
        ...(r.lastDecision ? { lastReason: r.lastDecision.reason } : {}),
        ...(lastProbe ? { lastProbe } : {}),
      };
    }

    // Let the clients see the end state for a moment (after a rollback: traffic back on v1),
    // then stop them so the totals are final.
    await probes.stop();
    const final = await clients.stop();
    const endedAt = CLOCK.now();
    const warnings: string[] = [];
    const timelineSource = await timelineEvents(store, id, sink);
    const events = timelineSource.events;
    if (timelineSource.warning !== undefined) warnings.push(timelineSource.warning);
    record = record ?? (await store.load(id))?.record;
    if (!record) throw new Error(`rehearsal ${id} has no record`);
    const outcome: RehearsalOutcome =
      record.status === 'torn-down' || record.status === 'complete'
        ? 'promoted'
        : record.status === 'rolled-back'
          ? 'rolled-back'
          : 'halted';
    const routerStats = router.stats();
    return {
      scenario: scenario.name,
      description: scenario.description,
      outcome,
      expectedOutcome: scenario.expected,
      finalState: record.status,
      finalWeight: record.weight,
      plan: plan.describe(),
      durationMs: elapsed(),
      interrupted,
      clientRequests: final.requests,
      errorResponses: final.errorResponses,
      misalignedResponses: final.misalignedResponses,
      requestsBySide: { old: routerStats.old.requests, new: routerStats.new.requests },
      responsesBySide: { old: routerStats.old.responsesByStatus, new: routerStats.new.responsesByStatus },
      ...(scenario.fault ? { fault: { description: scenario.fault, ...(faultOnsetAt !== undefined ? { onsetAtMs: faultOnsetAt - startedAt } : {}) } } : {}),
      ...(rollbackEvent
        ? {
            rollback: {
              atMs: rollbackEvent.atMs - startedAt,
              code: rollbackEvent.code,
              reason: rollbackEvent.reason,
              ...(faultOnsetAt !== undefined ? { afterFaultMs: Math.max(0, rollbackEvent.atMs - faultOnsetAt) } : {}),
            },
          }
        : {}),
      blastRadius: blastRadius({ at: endedAt, stats: final }, true),
      oldCapacity: {
        ...(record.pinnedCapacity !== undefined ? { pinned: record.pinnedCapacity } : {}),
        // From the pool, which tracks it on every change of size while the pin holds: a sample taken
        // here or per tick would also see the autoscaler's shrink right after the teardown's
        // release, and could miss a loss that was restored between two samples.
        ...(pool.lowestWhilePinned !== undefined ? { lowest: pool.lowestWhilePinned } : {}),
        final: pool.status().current,
      },
      probes: probeRuns,
      timeline: events.map((e) => ({
        atMs: e.atMs - startedAt,
        weight: e.weight,
        state: e.to,
        type: e.type,
        code: e.code,
        reason: e.reason,
      })),
      stateDir,
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  } finally {
    // Reverse order: clients first, the old side's pool last. Every step runs even if one fails.
    for (const stop of cleanup.reverse()) {
      try {
        await stop();
      } catch {
        // Already stopped or failed to start: nothing left to release.
      }
    }
  }
}

/**
 * The events for the report's timeline: the stored log when it holds every event this run
 * published, else the events the run's own sink collected, with a warning that says why.
 *
 * The file is only the durable copy of the log, and it can be damaged (emptied, truncated) while
 * the run goes on. Damaged after the run's last save, reading it throws; damaged earlier, the
 * controller sets it aside and carries on with a new log that lacks everything before. Either way
 * the sink saw every published event, so the report keeps its whole timeline.
 */
async function timelineEvents(
  store: Pick<StateStore<MigrationRecord, MigrationEvent>, 'events'>,
  id: string,
  sink: MemoryEventSink<MigrationEvent>,
): Promise<{ readonly events: readonly MigrationEvent[]; readonly warning?: string }> {
  const published = sink.events();
  const lost = sink.dropped > 0 ? ` (its ${sink.dropped} oldest events were no longer kept in memory)` : '';
  const fallback = `timeline taken from the events published during this run${lost}`;
  let stored: readonly MigrationEvent[];
  try {
    stored = await store.events(id);
  } catch (error) {
    // One line: the summary prints one line per warning.
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
    return { events: published, warning: `event log unreadable: ${message}; ${fallback}` };
  }
  const key = (e: MigrationEvent): string => `${e.seq}/${e.atMs}/${e.type}`;
  const kept = new Set(stored.map(key));
  const missing = published.filter((e) => !kept.has(key(e))).length;
  if (missing === 0) return { events: stored };
  return {
    events: published,
    warning: `event log incomplete: it lacks ${missing} of the ${published.length} events published during this run (a damaged log is set aside when the controller finds it); ${fallback}`,
  };
}

function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
