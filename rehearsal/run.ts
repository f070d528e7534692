/**
 * The local rehearsal: a whole migration on loopback with real HTTP servers, real Keep-Alive
 * clients and the real Keep-Alive probe, driven by the same core controller that runs in Lambda.
 * Traffic moves through a real traffic-splitting router, or by DNS weights that clients cache
 * (`shift.ts`). This file runs the loop; its options and defaults (`settings.ts`), the blast radius
 * (`blast-radius.ts`), the rollback's residual traffic (`residual.ts`) and the report's shape
 * (`report.ts`) live apart.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { MigrationController, type MigrationRecord } from '../lambda/core/controller';
import { MigrationStatus, TERMINAL_STATUSES, type MigrationEvent } from '../lambda/core/model';
import { MigrationPlan } from '../lambda/core/plan';
import type { CapacityStatus, Clock, ProbeOutcome, TrafficPort } from '../lambda/core/ports';
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
  type DemoServer,
  type SyntheticClients,
} from '../local';
import { LocalProbes } from '../local/probes';
import { CommandInbox } from '../ops/inbox';
import { blastRadiusOver, type ClientsAt } from './blast-radius';
import {
  REHEARSAL_TEARDOWN_CODE,
  REHEARSAL_TEARDOWN_REASON,
  timelineEvents,
  type RehearsalFrame,
  type RehearsalOutcome,
  type RehearsalReport,
  type ResidualFrame,
} from './report';
import { defaultMaxWatchMs, residualByClients, residualReport, SideTally, watchResidual, type ResidualReport } from './residual';
import {
  DEFAULT_DRAIN_INTERVAL_MS,
  REHEARSAL_JUDGE,
  REHEARSAL_PROBE,
  RehearsalFailedError,
  temporaryStateDir,
  type RehearsalOptions,
} from './settings';
import { DEFAULT_DNS_CLIENTS, DEFAULT_STALE_CLIENTS, startShift, type Shift, type ShiftMode } from './shift';
import { TimeLimit } from './time-limit';

export { blastRadiusBetween, harmBetween, type BlastRadius, type HarmBySide, type SideHarm } from './blast-radius';
export type { RehearsalFrame, RehearsalOutcome, RehearsalReport, ResidualFrame, TimelineEntry } from './report';
export { REHEARSAL_TEARDOWN_CODE, REHEARSAL_TEARDOWN_REASON } from './report';
export type { ResidualReport } from './residual';
export { DEFAULT_DRAIN_INTERVAL_MS, REHEARSAL_JUDGE, REHEARSAL_PROBE, RehearsalFailedError, temporaryStateDir, type RehearsalOptions } from './settings';
export type { DnsSettings, ShiftMode } from './shift';

/**
 * How often the old side's autoscaler evaluates its pool. It starts once the migration pinned the
 * pool: started with the pool, it shrank the still idle old side while the servers and clients
 * came up on a busy machine, and the pin then held the shrunken size ("fell to 2 of 1 units").
 */
const AUTOSCALER_INTERVAL_MS = 500;

/** Failures of the command inbox listed in the report's warnings (the first ones say enough). */
const MAX_INBOX_WARNINGS = 5;

/** How often the live view is redrawn between ticks (a gate's probes take seconds). */
const FRAME_INTERVAL_MS = 250;

const CLOCK: Clock = { now: () => Date.now() };

/** How long the router waits for a silent side before it answers 504 for it. */
const UPSTREAM_TIMEOUT_MS = 5000;
/**
 * How long a client waits for an answer; longer than the router's wait, see `UPSTREAM_TIMEOUT_MS`.
 * With DNS the client is the only one waiting: it waits as long as the router would, and records
 * a 504 for the side as the router would.
 */
const CLIENT_TIMEOUT_MS = 10_000;

/** Runs one rehearsal end to end and stops everything it started, whatever happens. */
export async function runRehearsal(options: RehearsalOptions): Promise<RehearsalReport> {
  const { scenario } = options;
  const plan = MigrationPlan.fromSpec(options.plan);
  const mode: ShiftMode = options.shift ?? 'proxy';
  const seed = options.seed ?? 1;
  const tickMs = options.tickMs ?? 200;
  const drainIntervalMs = options.drainIntervalMs ?? DEFAULT_DRAIN_INTERVAL_MS;
  const timeLimitMs = options.timeLimitMs ?? plan.minimumDurationMs * 3 + 30_000;
  const startedAt = CLOCK.now();
  const elapsed = (): number => CLOCK.now() - startedAt;
  // Checked before anything starts or is created: a bad limit is the caller's error, not a failed run.
  const limit = new TimeLimit(timeLimitMs, startedAt);
  const stateDir = options.stateDir ?? temporaryStateDir();
  const keepState = options.keepState ?? options.stateDir !== undefined;
  if (options.stateDir !== undefined) mkdirSync(stateDir, { recursive: true });
  // Set once the migration may have written anything, and cleared when the run ended normally.
  let migrationStarted = false;
  let failed = true;

  const cleanup: Array<() => Promise<void> | void> = [];
  // The autoscaler only evaluates when told: see AUTOSCALER_INTERVAL_MS.
  const pool = new WorkerPool({ size: options.oldWorkers ?? 8, warmUpMs: 1500, autoscaler: { intervalMs: 0, lookbackMs: 2000 } });
  cleanup.push(() => pool.close());
  let autoscaler: NodeJS.Timeout | undefined;
  const startAutoscaler = (): void => {
    if (autoscaler) return;
    autoscaler = setInterval(() => pool.evaluate(), AUTOSCALER_INTERVAL_MS);
    autoscaler.unref();
  };
  cleanup.push(() => clearInterval(autoscaler));
  let v1: DemoServer | undefined;
  let v2: DemoServer | undefined;
  let shift: Shift | undefined;
  let clients: SyntheticClients | undefined;
  let probes: LocalProbes | undefined;
  try {
    v1 = await startDemoServer({ version: 'v1', workerPool: pool, serviceTimeMs: 5, random: seededRandom(seed) });
    cleanup.push(() => v1!.close());
    v2 = await startDemoServer({ version: 'v2', serviceTimeMs: 5, random: seededRandom(seed + 1) });
    cleanup.push(() => v2!.close());
    // 100 ms buckets: a 1 s judge window then ends at most 100 ms before "now". The router (or,
    // with DNS, the clients) record into the tally, which passes everything on to the judge's metrics.
    const metrics = new LocalMetrics({ clock: CLOCK, bucketMs: 100 });
    const tally = new SideTally(metrics, () => CLOCK.now());
    const clientOptions = options.clients ?? {};
    const concurrency = clientOptions.concurrency ?? (mode === 'dns' ? DEFAULT_DNS_CLIENTS : 8);
    shift = await startShift({
      mode,
      oldUrl: v1.url,
      newUrl: v2.url,
      metrics: tally,
      clock: CLOCK,
      seed,
      concurrency,
      upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS,
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.dns !== undefined ? { dns: options.dns } : {}),
    });
    cleanup.push(() => shift!.close());

    let lastProbe: ProbeOutcome | undefined;
    const probeRuns = { runs: 0, desync: 0, inconclusive: 0 };
    // Off once the new side drains after a rollback: a probe round still in flight then meets the
    // drain (Connection: close, refused connections), not the new version.
    let countProbes = true;
    probes = new LocalProbes({
      urls: { old: v1.url, new: v2.url },
      clock: CLOCK,
      probe: options.probe ?? REHEARSAL_PROBE,
      onResult: (outcome) => {
        if (!countProbes) return;
        lastProbe = outcome;
        probeRuns.runs += 1;
        if (outcome.verdict === 'desync') probeRuns.desync += 1;
        if (outcome.verdict === 'inconclusive') probeRuns.inconclusive += 1;
      },
    });
    cleanup.push(() => probes!.stop());

    // The moment the weight (the router's, or the resolver's) last went to 0 and what clients had
    // suffered by then: when a rollback is in effect. The controller publishes `rolled-back` after this.
    let lastZero: ClientsAt | undefined;
    const shiftTraffic = shift.traffic;
    const traffic: TrafficPort = {
      getWeight: () => shiftTraffic.getWeight(),
      async setWeight(weight, expectedRevision) {
        const state = await shiftTraffic.setWeight(weight, expectedRevision);
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

    const clientsStartedAt = CLOCK.now();
    clients = startClients({
      ...shift.clients,
      concurrency,
      ratePerSecond: clientOptions.ratePerSecond ?? 200,
      oversizeShare: clientOptions.oversizeShare ?? 0.02,
      requestTimeoutMs: mode === 'dns' ? UPSTREAM_TIMEOUT_MS : CLIENT_TIMEOUT_MS,
      random: seededRandom(seed + 3),
    });
    cleanup.push(async () => {
      await clients!.stop();
    });

    // Scenario bookkeeping: fault onset, rollback, client counts at those moments.
    let fault: ClientsAt | undefined;
    let rollbackInEffect: ClientsAt | undefined;
    let rollbackEvent: MigrationEvent | undefined;
    const inject = (): void => {
      if (fault !== undefined || !scenario.inject) return;
      scenario.inject({
        setNewSideFaults: (faults) => v2!.setFaults(faults),
        shrinkOldSide: (units, why) => pool.forceShrink(units, why),
      });
      fault = { at: CLOCK.now(), stats: clients!.stats() };
    };
    sink.subscribe((events) => {
      for (const event of events) {
        if (event.to === 'rolled-back' && event.from !== 'rolled-back' && !rollbackEvent) {
          rollbackEvent = event;
          // In effect since the weight went to 0 for it; without such a change seen (the weight
          // was already 0, set by someone else), since this event.
          const zeroForThis = lastZero !== undefined && lastZero.at >= (fault?.at ?? startedAt) ? lastZero : undefined;
          rollbackInEffect = zeroForThis ?? { at: CLOCK.now(), stats: clients!.stats() };
        }
        options.onEvent?.(event, event.atMs - startedAt);
      }
    });

    if (scenario.faultAt === 'start') inject();

    const blastRadius = (now: ClientsAt, ended: boolean) =>
      blastRadiusOver({
        startedAt,
        clientsStartedAt,
        ...(fault ? { fault } : {}),
        ...(rollbackInEffect ? { rollback: rollbackInEffect } : {}),
        now,
        ended,
      });

    const id = `rehearsal-${scenario.name}-${startedAt}`;
    migrationStarted = true;
    const started = await controller.start({ id, plan: plan.toSpec(), judge: { ...REHEARSAL_JUDGE, ...options.judge }, metadata: { scenario: scenario.name } });
    // Both sides, each round, as the probe Lambda's schedule does on AWS: a desync on the old side
    // too is not the new version's fault, and the old side's answers are its synthetic health.
    probes.startPeriodic(['new', 'old'], options.probeIntervalMs ?? 500);

    options.onStarted?.(id);
    let record: MigrationRecord | undefined = started.record;
    // Operator commands sent to a kept state directory (`cutover pause … --state-dir`): only this
    // loop can carry them out, with its router or resolver and its old side's pool. A temporary
    // directory's name is never shown, so nobody could send one there.
    const inboxErrors: string[] = [];
    const inbox = keepState
      ? new CommandInbox({
          stateDir,
          migrationId: id,
          controller,
          now: CLOCK.now,
          // The run goes on: a command that could not be taken is answered to its sender by its wait running out.
          onError: (error) => {
            if (inboxErrors.length < MAX_INBOX_WARNINGS) inboxErrors.push(`command inbox: ${error instanceof Error ? error.message : String(error)}`);
          },
        })
      : undefined;
    const operatorHold = (): void => limit.held(inbox?.pausedByOperator === true && record?.status === MigrationStatus.PAUSED, CLOCK.now());
    let interrupted = false;
    const signal = options.signal;
    // The panel from the start and between ticks (the gate's probes take seconds), not only after each.
    const drawFrame = (): void => {
      if (record && options.onFrame) options.onFrame(frame(record, pool.status()));
    };
    drawFrame();
    // A failing onFrame between ticks fails the run at its next tick, not as an uncaught exception.
    let frameError: { readonly error: unknown } | undefined;
    const frames = options.onFrame
      ? setInterval(() => {
          try {
            drawFrame();
          } catch (error) {
            frameError ??= { error };
          }
        }, FRAME_INTERVAL_MS)
      : undefined;
    try {
      while (true) {
        if (frameError) throw frameError.error;
        if (signal?.aborted) {
          interrupted = true;
          break;
        }
        if (inbox) {
          for (const taken of await inbox.take()) if (taken.tick) record = taken.tick.record;
          operatorHold();
        }
        const result = await controller.tick(id);
        record = result.record;
        // The first tick pinned the old side (the gate does it first): from now on it may scale.
        startAutoscaler();
        if (typeof scenario.faultAt === 'number' && record.step >= scenario.faultAt && record.status === 'baking') inject();
        if (record.status === 'complete' && !signal?.aborted) {
          // The plan's teardown is manual, so nothing else would release the old side: the
          // rehearsal does it as its own cleanup now that its run is over, and says so.
          const torn = await controller.command(id, 'teardown', REHEARSAL_TEARDOWN_REASON);
          record = torn.record;
        }
        drawFrame();
        operatorHold();
        // A pause the controller decided (routing changed behind its back, a damaged record) ends
        // the run: nobody would resume it. An operator's pause holds it until their next command.
        const pausedByController = record.status === MigrationStatus.PAUSED && !inbox?.pausedByOperator;
        if (TERMINAL_STATUSES.includes(record.status) || pausedByController || limit.exceeded(CLOCK.now())) break;
        await sleepUnlessAborted(tickMs, signal);
      }
    } finally {
      clearInterval(frames);
      // From now on a command would find nobody to apply it: senders are told at once.
      await inbox?.close();
    }

    function frame(r: MigrationRecord, capacity: CapacityStatus, residual?: ResidualFrame): RehearsalFrame {
      const now = CLOCK.now();
      const pinned = r.pinnedCapacity ?? capacity.pinned;
      const window = metrics.window(now - 1000, now);
      const c = clients!.stats();
      return {
        scenario: scenario.name,
        elapsedMs: now - startedAt,
        status: r.status,
        weight: r.weight,
        step: r.step + 1,
        steps: r.plan.steps.length,
        shift: mode,
        ...(window ? { window } : {}),
        oldCapacity: { ...capacity, ...(pinned !== undefined ? { pinned } : {}) },
        clients: { requests: c.requests, errorResponses: c.errorResponses, misalignedResponses: c.misalignedResponses },
        blastRadius: blastRadius({ at: now, stats: c }, false),
        ...(scenario.fault ? { fault: { description: scenario.fault, active: fault !== undefined } } : {}),
        ...(r.lastDecision ? { lastReason: r.lastDecision.reason } : {}),
        ...(lastProbe ? { lastProbe } : {}),
        ...(residual ? { residual } : {}),
      };
    }

    // After a rollback the clients keep going while the new side drains: what still reaches it is
    // the rollback's residual (at once none through the router; with DNS, until caches run out and
    // connections close). Without the active drain the new side is left alone and only watched,
    // up to the watch's cap. The drain starts at once, without waiting for a probe round in flight
    // (a probe of a slow side can take seconds). Otherwise the clients see the end state for a
    // moment, while the probes stop. Then they stop, so that the totals are final.
    const rolledBackAt = rollbackInEffect?.at;
    const residualDue = rolledBackAt !== undefined && !interrupted && record?.status === 'rolled-back';
    if (residualDue) countProbes = false;
    const probesStopped = probes.stop();
    const watch =
      residualDue && rolledBackAt !== undefined
        ? await watchResidual({
            mode,
            rollbackAt: rolledBackAt,
            windowMs: plan.healthWindowMs,
            ttlMs: shift.ttlMs,
            drainIntervalMs,
            tally,
            activeDrain: options.activeDrain ?? true,
            maxWatchMs:
              options.maxWatchMs ?? defaultMaxWatchMs(mode, shift.ttlMs, drainIntervalMs, plan.healthWindowMs, shift.staleHoldMs),
            newSide: v2,
            cachedOnNewSide: () => shift!.cachedOnNewSide(),
            now: () => CLOCK.now(),
            pollMs: Math.min(tickMs, 100),
            ...(signal ? { signal } : {}),
            onPoll: (residual) => {
              if (record && options.onFrame) options.onFrame(frame(record, pool.status(), residual));
            },
          })
        : undefined;
    if (watch?.interrupted) interrupted = true;
    await probesStopped;
    const final = await clients.stop();
    const endedAt = CLOCK.now();
    const warnings: string[] = [];
    const timelineSource = await timelineEvents(store, id, sink);
    const events = timelineSource.events;
    const ownTeardown = (e: MigrationEvent): boolean => e.to === 'torn-down' && e.code === 'operator-teardown' && e.reason === REHEARSAL_TEARDOWN_REASON;
    const teardownEvent = events.find(ownTeardown);
    if (timelineSource.warning !== undefined) warnings.push(timelineSource.warning);
    warnings.push(...inboxErrors);
    record = record ?? (await store.load(id))?.record;
    if (!record) throw new Error(`rehearsal ${id} has no record`);
    const outcome: RehearsalOutcome =
      record.status === 'torn-down' || record.status === 'complete'
        ? 'promoted'
        : record.status === 'rolled-back'
          ? 'rolled-back'
          : 'halted';
    const radius = blastRadius({ at: endedAt, stats: final }, true);
    const residual: ResidualReport | undefined =
      watch && rollbackInEffect
        ? residualReport({
            mode,
            rollbackAt: rollbackInEffect.at,
            windowMs: plan.healthWindowMs,
            ttlMs: shift.ttlMs,
            drainIntervalMs,
            watch,
            tally,
            afterRollback: radius.afterRollback,
            connectionsClosed: v2.stats().drainedConnections,
            connectionsRefused: final.refusedConnections - rollbackInEffect.stats.refusedConnections,
            ...(mode === 'dns' ? { byClients: residualByClients((c) => shift!.isStaleClient(c), rollbackInEffect.stats.perClient, final.perClient) } : {}),
          })
        : undefined;
    const dnsStats = shift.dnsStats();
    const report: RehearsalReport = {
      scenario: scenario.name,
      description: scenario.description,
      shift: mode,
      ...(dnsStats
        ? {
            dns: {
              ttlMs: shift.ttlMs,
              staleClients: options.dns?.staleClients ?? DEFAULT_STALE_CLIENTS,
              staleClientCount: dnsStats.staleClients.length,
              clients: concurrency,
              drainIntervalMs,
              lookups: dnsStats.lookups,
              connections: dnsStats.connections,
              refusedConnections: final.refusedConnections,
            },
          }
        : {}),
      outcome,
      expectedOutcome: scenario.expected,
      finalState: record.status,
      finalWeight: record.weight,
      plan: plan.describe(),
      durationMs: elapsed(),
      migrationId: id,
      interrupted,
      ...(interrupted && (signal?.reason === 'SIGINT' || signal?.reason === 'SIGTERM') ? { interruptedBy: signal.reason } : {}),
      clientRequests: final.requests,
      errorResponses: final.errorResponses,
      misalignedResponses: final.misalignedResponses,
      requestsBySide: shift.requestsBySide(),
      responsesBySide: shift.responsesBySide(),
      ...(scenario.fault ? { fault: { description: scenario.fault, ...(fault !== undefined ? { onsetAtMs: fault.at - startedAt } : {}) } } : {}),
      ...(rollbackEvent
        ? {
            rollback: {
              atMs: rollbackEvent.atMs - startedAt,
              code: rollbackEvent.code,
              reason: rollbackEvent.reason,
              ...(fault !== undefined ? { afterFaultMs: Math.max(0, rollbackEvent.atMs - fault.at) } : {}),
              ...(residual ? { residual } : {}),
            },
          }
        : {}),
      blastRadius: radius,
      oldCapacity: {
        ...(record.pinnedCapacity !== undefined ? { pinned: record.pinnedCapacity } : {}),
        // From the pool, which tracks it on every change of size while the pin holds: a sample taken
        // here or per tick would also see the autoscaler's shrink right after the teardown's
        // release, and could miss a loss that was restored between two samples.
        ...(pool.lowestWhilePinned !== undefined ? { lowest: pool.lowestWhilePinned } : {}),
        final: pool.status().current,
      },
      probes: probeRuns,
      ...(teardownEvent ? { teardown: { by: 'rehearsal' as const, atMs: teardownEvent.atMs - startedAt } } : {}),
      timeline: events.map((e) => ({
        atMs: e.atMs - startedAt,
        weight: e.weight,
        state: e.to,
        type: e.type,
        code: ownTeardown(e) ? REHEARSAL_TEARDOWN_CODE : e.code,
        reason: e.reason,
      })),
      ...(keepState ? { stateDir } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
    failed = false;
    return report;
  } catch (error) {
    // A failure once the migration was under way: its record and event log are what to look at.
    if (migrationStarted && !keepState) throw new RehearsalFailedError(error, stateDir);
    throw error;
  } finally {
    // Reverse order: clients first, the old side's pool last. Every step runs even if one fails.
    for (const stop of cleanup.reverse()) {
      try {
        await stop();
      } catch {
        // Already stopped or failed to start: nothing left to release.
      }
    }
    if (!keepState && !(failed && migrationStarted)) {
      try {
        rmSync(stateDir, { recursive: true, force: true });
      } catch {
        // Best effort: a temporary directory left behind is the only consequence.
      }
    }
  }
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
