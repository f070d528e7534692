/**
 * What a rehearsal reports: the JSON report (`--json`), the frames of the live view, and the
 * timeline taken from the migration's event log.
 */
import type { MigrationRecord } from '../lambda/core/controller';
import type { MigrationEvent, MigrationStatus } from '../lambda/core/model';
import type { CapacityStatus, HealthWindow, ProbeOutcome, StateStore } from '../lambda/core/ports';
import type { ClientStats } from '../local/clients';
import type { MemoryEventSink } from '../local/memory-events';
import type { BlastRadius } from './blast-radius';
import type { ResidualFrameData, ResidualReport } from './residual';
import type { ShiftMode } from './shift';

export type RehearsalOutcome = 'promoted' | 'rolled-back' | 'halted';

/** What the live view shows after each tick. */
export interface RehearsalFrame {
  readonly scenario: string;
  readonly elapsedMs: number;
  readonly status: MigrationStatus;
  readonly weight: number;
  /** 1-based step, 0 before the first shift. */
  readonly step: number;
  readonly steps: number;
  /** How traffic is shifted. */
  readonly shift: ShiftMode;
  /** The last second of traffic as the router (with DNS: the clients) recorded it. */
  readonly window?: HealthWindow;
  readonly oldCapacity: CapacityStatus;
  readonly clients: Pick<ClientStats, 'requests' | 'errorResponses' | 'misalignedResponses'>;
  /** The blast radius so far: from the fault's onset (or the first request) to the rollback or now. */
  readonly blastRadius: BlastRadius;
  readonly fault?: { readonly description: string; readonly active: boolean };
  readonly lastReason?: string;
  readonly lastProbe?: ProbeOutcome;
  /** After a rollback: what still reaches the new side while the rehearsal watches it drain. */
  readonly residual?: ResidualFrame;
}

/** The residual traffic on the new side after a rollback, as the live view shows it. */
export type ResidualFrame = ResidualFrameData;

export interface TimelineEntry {
  /** Milliseconds since the rehearsal started. */
  readonly atMs: number;
  readonly weight: number;
  readonly state: MigrationStatus;
  readonly type: string;
  /** The event's code; `rehearsal-teardown` for the rehearsal's own teardown (see `REHEARSAL_TEARDOWN_CODE`). */
  readonly code: string;
  readonly reason: string;
}

/**
 * The timeline's code for the teardown the rehearsal issues itself once a promoted run is over.
 * The stored event log records it as the operator command it is (`operator-teardown`); the
 * report names it for what it is, the rehearsal's own cleanup, not a person's teardown.
 */
export const REHEARSAL_TEARDOWN_CODE = 'rehearsal-teardown';

/** The reason the rehearsal gives with its own teardown command. */
export const REHEARSAL_TEARDOWN_REASON =
  "rehearsal over: tearing down (the rehearsal's own cleanup; with a manual teardown the old side would stay pinned until an operator tears it down)";

export interface RehearsalReport {
  readonly scenario: string;
  readonly description: string;
  /** How traffic was shifted: a router per request (`proxy`) or DNS weights (`dns`). */
  readonly shift: ShiftMode;
  /** DNS mode: its settings and the clients' lookups. */
  readonly dns?: {
    readonly ttlMs: number;
    /** Share of clients asked to ignore the TTL, and how many did. */
    readonly staleClients: number;
    readonly staleClientCount: number;
    readonly clients: number;
    readonly drainIntervalMs: number;
    /** Queries the clients sent to the resolver, and connections they opened per side. */
    readonly lookups: number;
    readonly connections: { readonly old: number; readonly new: number };
    /** Connection attempts refused (the new side out of service after a rollback), each followed by a new lookup. */
    readonly refusedConnections: number;
  };
  readonly outcome: RehearsalOutcome;
  /** Whether the outcome is what a correct engine does with this scenario. */
  readonly expectedOutcome: 'promoted' | 'rolled-back';
  readonly finalState: MigrationStatus;
  readonly finalWeight: number;
  readonly plan: string;
  readonly durationMs: number;
  /** The migration's id in the state directory (its record and event log are named after it). */
  readonly migrationId: string;
  /** Stopped early (Ctrl-C, SIGTERM, an aborted `signal`): the report covers the run so far. */
  readonly interrupted: boolean;
  /** The signal that stopped it, when the abort said (the CLI's does). */
  readonly interruptedBy?: 'SIGINT' | 'SIGTERM';
  readonly clientRequests: number;
  /** Client requests that got a 5XX or a transport error. */
  readonly errorResponses: number;
  /** Client requests that got the answer to another request. */
  readonly misalignedResponses: number;
  /** Requests per side: as the router sent them, or with DNS as the clients recorded their answers. */
  readonly requestsBySide: { readonly old: number; readonly new: number };
  /**
   * Responses by status code per side as the router relayed them (502/504: generated for a side it
   * could not reach in time), over the whole run: a count independent of the clients' own. With
   * DNS there is no router: the statuses the clients recorded per side for the judge (502/504 for
   * a side that reset or stayed silent for 5 s).
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
    /** What still reached the new side after the rollback was in effect, and when it drained: see `ResidualReport`. */
    readonly residual?: ResidualReport;
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
  /**
   * Set when the rehearsal tore the old side down itself, at the end of a promoted run (the plan's
   * teardown is manual, so nothing else would): when, since the start. Its timeline entry has the
   * code `rehearsal-teardown`.
   */
  readonly teardown?: { readonly by: 'rehearsal'; readonly atMs: number };
  readonly timeline: readonly TimelineEntry[];
  /**
   * Where the record and event log are kept (`stateDir` given, `--state-dir`), for other commands
   * to read later. Absent when the rehearsal used a temporary directory: it removed it at the end.
   */
  readonly stateDir?: string;
  /**
   * What went wrong with the rehearsal's own bookkeeping without spoiling the report, one
   * sentence each (e.g. an unreadable event log, replaced by the events published in memory).
   * @default - absent when nothing went wrong
   */
  readonly warnings?: readonly string[];
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
export async function timelineEvents(
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

