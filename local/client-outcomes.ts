/**
 * The counting of synthetic clients' outcomes (see `local/clients.ts`): the outcome classes and
 * their counters, and the check of one response against the request it answers (identity, status,
 * source), which files misaligned responses in a bounded timeline. Separate from the client loop
 * and its connections because it is pure judgement of what came back: the rules by which a
 * response is ok, an error, misaligned or unexpected.
 */
import type { Clock, Side } from '../lambda/core/ports';
import type { RawResponse, RequestSpec } from './client-connection';

/** What kind of request a client sent. */
export type RequestKind = 'list' | 'item' | 'event' | 'oversize';

/** Where a response came from: the router's `x-cutover-side`, or `direct` without it. */
export type ResponseSource = 'old' | 'new' | 'direct';

/** Outcome counters (each finished request counts once). */
export interface OutcomeCounts {
  readonly requests: number;
  readonly ok: number;
  /** 5XX responses and transport errors (reset, refused, timeout). */
  readonly errorResponses: number;
  /** Responses that carry another request's identity. */
  readonly misalignedResponses: number;
  /** Right identity but an implausible status, or no identity to check. */
  readonly unexpectedResponses: number;
  /**
   * Among `unexpectedResponses`: a 4XX the request did not expect (any 4XX but the 413 of an
   * oversized event POST), e.g. a 401 from an authentication layer gone wrong.
   */
  readonly unexpected4xx: number;
  /** Among `errorResponses`: a 5XX from the server (its own answer to this request, wrong status). */
  readonly unexpected5xx: number;
  /**
   * Among `errorResponses`: a 502 or 504 the router generated (`served_by: "router"`) because the
   * side reset, refused or did not answer in time: a transport error or timeout of that side.
   * With `routing` (no router), a reset, refusal or timeout of the client's own connection to a
   * side counts here for that side, the same harm seen one hop earlier.
   */
  readonly gatewayErrors: number;
}

/** One misaligned response. */
export interface MisalignedResponse {
  /** When it was received (client clock), epoch ms. */
  readonly atMs: number;
  /** Index of the client (its connection). */
  readonly client: number;
  readonly source: ResponseSource;
  readonly expected: { readonly requestId: string; readonly kind: RequestKind; readonly method: string; readonly path: string };
  readonly received: {
    readonly status: number;
    readonly requestId: string | null;
    readonly method?: string;
    readonly path?: string;
    readonly servedBy?: string;
  };
  /** Whether a 413 had already arrived on the same client connection before this response. */
  readonly connectionSaw413: boolean;
}

export type Outcome = 'ok' | 'error' | 'misaligned' | 'unexpected';

/** The finer class of an `error` or `unexpected` outcome. */
export type Detail = 'status5xx' | 'gateway' | 'status4xx' | 'other' | 'transport';

/** Whether a response is the router's own 502/504 for a side it could not reach in time. */
function isGatewayError(status: number, servedBy: unknown): boolean {
  return (status === 502 || status === 504) && servedBy === 'router';
}

/** Mutable outcome counters; `snapshot()` gives the read-only view. */
export class MutableCounts implements OutcomeCounts {
  requests = 0;
  ok = 0;
  errorResponses = 0;
  misalignedResponses = 0;
  unexpectedResponses = 0;
  unexpected4xx = 0;
  unexpected5xx = 0;
  gatewayErrors = 0;

  add(outcome: Outcome, detail: Detail = 'other'): void {
    this.requests += 1;
    if (outcome === 'ok') this.ok += 1;
    else if (outcome === 'error') this.errorResponses += 1;
    else if (outcome === 'misaligned') this.misalignedResponses += 1;
    else this.unexpectedResponses += 1;
    if (outcome === 'error' && detail === 'status5xx') this.unexpected5xx += 1;
    if (outcome === 'error' && detail === 'gateway') this.gatewayErrors += 1;
    if (outcome === 'unexpected' && detail === 'status4xx') this.unexpected4xx += 1;
  }

  snapshot(): OutcomeCounts {
    return {
      requests: this.requests,
      ok: this.ok,
      errorResponses: this.errorResponses,
      misalignedResponses: this.misalignedResponses,
      unexpectedResponses: this.unexpectedResponses,
      unexpected4xx: this.unexpected4xx,
      unexpected5xx: this.unexpected5xx,
      gatewayErrors: this.gatewayErrors,
    };
  }
}

/** The misaligned responses kept so far (at most `max`) and how many were left out. */
export interface MisalignedTimeline {
  readonly entries: MisalignedResponse[];
  dropped: number;
  readonly max: number;
  /** Time source for the entries' `atMs`. */
  readonly clock: Clock;
}

/**
 * Judges `response` against `spec`, the request it answers on client `client`'s connection;
 * a misaligned one is filed in `timeline`. `side` is the side the client connected to, if known
 * (without a router); otherwise the router's `x-cutover-side` header names it.
 */
export function classifyResponse(
  spec: RequestSpec,
  response: RawResponse,
  client: number,
  saw413Before: boolean,
  side: Side | undefined,
  timeline: MisalignedTimeline,
): { outcome: Outcome; detail?: Detail; source: ResponseSource } {
  const sideHeader = response.headers['x-cutover-side'];
  const source: ResponseSource = side ?? (sideHeader === 'old' || sideHeader === 'new' ? sideHeader : 'direct');
  let parsed: Record<string, unknown> | undefined;
  try {
    const value: unknown = JSON.parse(response.body.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) parsed = value as Record<string, unknown>;
  } catch {
    parsed = undefined;
  }
  const headerId = typeof response.headers['x-request-id'] === 'string' ? response.headers['x-request-id'] : undefined;
  const bodyId = typeof parsed?.requestId === 'string' ? parsed.requestId : undefined;
  const method = typeof parsed?.method === 'string' ? parsed.method : undefined;
  const path = typeof parsed?.path === 'string' ? parsed.path : undefined;
  const ids = [headerId, bodyId].filter((id): id is string => id !== undefined);
  const foreign = ids.some((id) => id !== spec.requestId) || (method !== undefined && method !== spec.method) || (path !== undefined && path !== spec.path);
  if (foreign) {
    if (timeline.entries.length < timeline.max) {
      timeline.entries.push({
        atMs: timeline.clock.now(),
        client,
        source,
        expected: { requestId: spec.requestId, kind: spec.kind, method: spec.method, path: spec.path },
        received: {
          status: response.status,
          requestId: bodyId ?? headerId ?? null,
          ...(method === undefined ? {} : { method }),
          ...(path === undefined ? {} : { path }),
          ...(typeof parsed?.served_by === 'string' ? { servedBy: parsed.served_by } : {}),
        },
        connectionSaw413: saw413Before,
      });
    } else {
      timeline.dropped += 1;
    }
    return { outcome: 'misaligned', source };
  }
  if (response.status >= 500) return { outcome: 'error', detail: isGatewayError(response.status, parsed?.served_by) ? 'gateway' : 'status5xx', source };
  const unexpected4xx = response.status >= 400 && response.status < 500;
  if (ids.length === 0) return { outcome: 'unexpected', detail: unexpected4xx ? 'status4xx' : 'other', source };
  const plausible = spec.kind === 'oversize' ? response.status === 413 : response.status >= 200 && response.status < 300;
  return plausible ? { outcome: 'ok', source } : { outcome: 'unexpected', detail: unexpected4xx ? 'status4xx' : 'other', source };
}
