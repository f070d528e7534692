/**
 * The blast radius: what clients suffered, per side, between two snapshots of their own checks of
 * every answer. Pure arithmetic over `ClientStats`; the run loop decides the span (fault or start
 * to the rollback in effect, and what came after it).
 */
import type { ClientStats, OutcomeCounts } from '../local/clients';

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
   * `x-cutover-side` header. Only `transportErrors` is expected here. Without a router (`--shift
   * dns`) every request went to a side the client resolved itself, so this stays empty.
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
 * since they started). Answers are attributed by the router's side header (without a router, by the
 * side the client connected to); requests without an HTTP response, and answers without the
 * header, are `unattributed`.
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


/** The clients' statistics at a moment of the run (epoch ms). */
export interface ClientsAt {
  readonly at: number;
  readonly stats: ClientStats;
}

/**
 * The blast radius from the fault (or the first request) to the rollback in effect, or to `now`
 * (the end of the run when `ended`), with what came after the rollback apart.
 */
export function blastRadiusOver(moments: {
  /** When the rehearsal started: spans are reported relative to it. */
  readonly startedAt: number;
  readonly clientsStartedAt: number;
  readonly fault?: ClientsAt;
  readonly rollback?: ClientsAt;
  readonly now: ClientsAt;
  readonly ended: boolean;
}): BlastRadius {
  const { startedAt, fault, rollback, now } = moments;
  const to = rollback ?? now;
  return {
    span: {
      from: fault ? 'fault' : 'start',
      fromMs: (fault?.at ?? moments.clientsStartedAt) - startedAt,
      to: rollback ? 'rollback' : moments.ended ? 'end' : 'now',
      toMs: to.at - startedAt,
    },
    ...blastRadiusBetween(fault?.stats, to.stats),
    ...(rollback ? { afterRollback: harmBetween(rollback.stats, now.stats) } : {}),
  };
}
