/**
 * Runs the real MigrationController over one simulated world: in-memory ports (a fake clock, a
 * store, a routing port, health/alarms/probes answering from the world), one tick per health
 * window, and reads what it did from the tick results and the event log.
 *
 * Only the controller's public API (`start`, `tick`) and the ports are used, so the bench keeps
 * working while the judge's rules and settings change: the judge runs with its defaults
 * (DEFAULT_JUDGE_CONFIG, applied by the controller when a spec gives no overrides).
 */
import { MigrationController, type MigrationRecord } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import type { PlanSpec } from '../../lambda/core/plan';
import {
  RevisionConflictError,
  StaleStateError,
  type AlarmSignal,
  type CapacityPort,
  type CapacityStatus,
  type Clock,
  type EventSink,
  type HealthPort,
  type HealthWindow,
  type ProbeOutcome,
  type ProbePort,
  type Side,
  type SideSignals,
  type StateStore,
  type TrafficPort,
  type TrafficState,
  type WindowReadOptions,
} from '../../lambda/core/ports';
import type { SideDraw } from './sim';
import type { PlanShape, World } from './world';

/** Length of one health window (CloudWatch's standard resolution); one tick per window. */
export const WINDOW_MS = 60_000;
const T0 = 1_700_000_000_000;

/**
 * What one policy did in one run. Windows are 1-based (0: the gate, before any window); null
 * means "never".
 */
export interface Outcome {
  rollbackAt: number | null;
  rollbackCode: string;
  pauseAt: number | null;
  pauseCode: string;
  /** Window after whose tick the new side took 100 % (promoting plans). */
  promotedAt: number | null;
  /** Soak passed (promoting plans). */
  completed: boolean;
  /** Status at the end of the run. */
  final: string;
  /** 5XX answers the new side served up to and including the rollback window (or the whole run). */
  blast5xx: number;
  /** Requests the new side served over the same windows. */
  servedNew: number;
  /** The controller's decision code per window (index j − 1; '' for a tick without one). */
  codes?: string[];
  /** Set when the controller threw. */
  error?: string;
}

export function emptyOutcome(): Outcome {
  return { rollbackAt: null, rollbackCode: '', pauseAt: null, pauseCode: '', promotedAt: null, completed: false, final: '', blast5xx: 0, servedNew: 0 };
}

/** Steps of a promoting plan in windows: [weight, bake windows]; soak after. */
export function promotingSteps(windows: number): { steps: [number, number][]; soak: number } {
  const b = Math.max(1, Math.round(windows / 10));
  return { steps: [[10, b], [25, b], [50, 2 * b], [100, b]], soak: 2 * b };
}

export function planSpec(shape: PlanShape, windows: number): PlanSpec {
  const beyond = (windows + 10) * WINDOW_MS;
  if (shape.kind === 'promoting') {
    const { steps, soak } = promotingSteps(windows);
    return { steps: steps.map(([weight, bake]) => ({ weight, bakeMs: bake * WINDOW_MS })), soakMs: soak * WINDOW_MS, healthWindowMs: WINDOW_MS, teardown: 'manual' };
  }
  if (shape.weight >= 100) return { steps: [{ weight: 100, bakeMs: WINDOW_MS }], soakMs: beyond, healthWindowMs: WINDOW_MS, teardown: 'manual' };
  return { steps: [{ weight: shape.weight, bakeMs: beyond }, { weight: 100, bakeMs: WINDOW_MS }], soakMs: WINDOW_MS, healthWindowMs: WINDOW_MS, teardown: 'manual' };
}

// ---------------------------------------------------------------------------------------------
// Ports

class SimClock implements Clock {
  ms = T0;
  now(): number {
    return this.ms;
  }
}

/** Versioned in-memory store; records are immutable in the core, so nothing is copied. */
class SimStore implements StateStore<MigrationRecord, MigrationEvent> {
  private record: MigrationRecord | undefined;
  private version = 0;
  readonly log: MigrationEvent[] = [];
  async load() {
    return this.record ? { record: this.record, version: this.version } : undefined;
  }
  async save(id: string, record: MigrationRecord, expectedVersion: number, events: readonly MigrationEvent[]) {
    if (expectedVersion !== this.version) throw new StaleStateError(id, expectedVersion);
    this.record = record;
    this.version++;
    this.log.push(...events);
    return this.version;
  }
  async events() {
    return this.log;
  }
  async quarantine(): Promise<number> {
    throw new Error('bench: the record was found damaged (the simulation never damages it)');
  }
}

class SimTraffic implements TrafficPort {
  weight = 0;
  private revision = 1;
  async getWeight(): Promise<TrafficState> {
    return { weight: this.weight, revision: String(this.revision), settled: true };
  }
  async setWeight(weight: number, expectedRevision: string): Promise<TrafficState> {
    if (expectedRevision !== String(this.revision)) throw new RevisionConflictError(expectedRevision, String(this.revision));
    this.weight = weight;
    this.revision++;
    return { weight, revision: String(this.revision), settled: true };
  }
}

class SimCapacity implements CapacityPort {
  private pinned: number | undefined;
  private status(): CapacityStatus {
    return { current: 10, ready: true, ...(this.pinned !== undefined ? { pinned: this.pinned } : {}) };
  }
  async read() {
    return this.status();
  }
  async pin(units: number) {
    this.pinned = units;
    return this.status();
  }
  async restore() {
    return this.status();
  }
  async release() {
    this.pinned = undefined;
    return this.status();
  }
}

const NO_SINK: EventSink<MigrationEvent> = { publish: async () => undefined };

function signals(draw: SideDraw, options: WindowReadOptions | undefined): SideSignals {
  return {
    requests: draw.requests,
    errors4xx: draw.errors4xx,
    errors5xx: draw.errors5xx,
    ...(draw.p99Ms !== undefined ? { latencyMs: draw.p99Ms } : {}),
    ...(options?.slowerThanMs !== undefined ? { slowRequests: draw.slowerThan(options.slowerThanMs) } : {}),
  };
}

/** Health, alarms and probes answering from the world for the window being ticked. */
class SimSignals implements HealthPort, ProbePort {
  /** The window whose end the current tick is at (0: the gate). */
  j = 0;
  private nonce = 0;
  readonly periodic: ProbeOutcome[] = [];
  constructor(
    private readonly world: World,
    private readonly traffic: SimTraffic,
    private readonly clock: SimClock,
  ) {}
  async readWindow(fromMs: number, toMs: number, options?: WindowReadOptions): Promise<HealthWindow | undefined> {
    // A missing window's data never arrives (lost, not late): the next read returns only its own.
    if (this.j === 0 || this.world.missing(this.j)) return undefined;
    const draw = this.world.draw(this.j, this.traffic.weight);
    return { fromMs, toMs, old: signals(draw.old, options), new: signals(draw.new, options) };
  }
  async readAlarms(): Promise<readonly AlarmSignal[]> {
    return this.world.alarms(this.j);
  }
  probe(side: Side, atMs: number, what: string): ProbeOutcome {
    return { side, verdict: 'ok', atMs, summary: `${what} ${side} probe ok`, findings: 0, health: this.world.probeHealth(this.j, side, this.nonce++) };
  }
  async probeNow(side: Side): Promise<ProbeOutcome> {
    return this.probe(side, this.clock.now(), 'fresh');
  }
  async recentResults(sinceMs: number): Promise<readonly ProbeOutcome[]> {
    return this.periodic.filter((p) => p.atMs >= sinceMs);
  }
  /** The periodic probes of both sides that ran during window `j` (kept: the last two windows). */
  runPeriodic(): void {
    const at = this.clock.now() - 1;
    this.periodic.push(this.probe('new', at, 'periodic'), this.probe('old', at, 'periodic'));
    if (this.periodic.length > 4) this.periodic.splice(0, this.periodic.length - 4);
  }
}

// ---------------------------------------------------------------------------------------------
// One run

const LIVE = new Set(['baking', 'promoted', 'soaking', 'complete', 'shifting']);

/** Runs the controller for `world.windows` windows and reports what it did. */
export async function runController(world: World): Promise<Outcome> {
  const clock = new SimClock();
  const traffic = new SimTraffic();
  const sim = new SimSignals(world, traffic, clock);
  const store = new SimStore();
  const controller = new MigrationController({ clock, traffic, health: sim, probes: sim, capacity: new SimCapacity(), store, events: NO_SINK });
  const id = `bench-${world.cell.id}-${world.run}`;
  const out: Outcome = { ...emptyOutcome(), codes: [] };
  try {
    await controller.start({ id, plan: planSpec(world.cell.plan, world.windows) });
    const note = (j: number, events: readonly MigrationEvent[]): void => {
      for (const event of events) {
        if (event.to === 'rolled-back' && out.rollbackAt === null) [out.rollbackAt, out.rollbackCode] = [j, event.code];
        if (event.to === 'paused' && out.pauseAt === null) [out.pauseAt, out.pauseCode] = [j, event.code];
        if (event.type === 'promoted' && out.promotedAt === null) out.promotedAt = j;
        if (event.to === 'complete') out.completed = true;
      }
    };
    let result = await controller.tick(id); // the gate: probes, pin, first shift
    note(0, result.events);
    for (let j = 1; j <= world.windows && out.rollbackAt === null; j++) {
      const weight = traffic.weight;
      clock.ms += WINDOW_MS;
      sim.j = j;
      sim.runPeriodic();
      const truth = world.draw(j, weight).new;
      out.blast5xx += truth.errors5xx;
      out.servedNew += truth.requests;
      result = await controller.tick(id);
      out.codes!.push(result.decision?.code ?? '');
      note(j, result.events);
    }
    out.final = result.record.status;
  } catch (error) {
    out.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    out.final = 'error';
  }
  return out;
}

export function isLive(status: string): boolean {
  return LIVE.has(status);
}
