/**
 * The marker every probe request carries: `X-Cutover-Probe: 1`.
 *
 * The probe sends deliberately wrong requests (a 404, a 413, a 405, a 400, a 401 …) through the
 * same function as user traffic. An application that counts its answers per version for the judge
 * (`Requests`, `Errors4xx`, `Errors5xx`) must leave requests with this marker out of those counts,
 * or the probe's own errors would be judged as the side's errors. It still answers them normally:
 * the probe needs the real answers.
 *
 * Every probe request has it: every step in every pass, and the request hidden in the oversized
 * POST's body (so a server that reads that body as a request leaves it out too).
 *
 * The marker is not authentication. Any client may send it and so leave its own requests out of
 * the comparison (never add errors to it); Lambda's own invocation and error metrics and the
 * user's alarms still count such requests.
 *
 * This file imports nothing, so an application (and the demo API) can import it alone, without
 * the probe engine.
 */

/** Name of the marker header, in lower case (Node and API Gateway HTTP APIs lower-case names). */
export const PROBE_MARKER_HEADER = 'x-cutover-probe';

/** Value of the marker header. */
export const PROBE_MARKER_VALUE = '1';

/** The header as the probe writes it on the wire. */
export const PROBE_MARKER_WIRE_NAME = 'X-Cutover-Probe';

/** Request headers in any of the usual shapes. */
export type HeadersLike =
  /** Node's IncomingHttpHeaders, API Gateway's `headers` or `multiValueHeaders`, a plain object. */
  | Readonly<Record<string, string | readonly string[] | null | undefined>>
  /** Fetch `Headers` (or anything with a case-insensitive `get`). */
  | { get(name: string): string | null | undefined };

/**
 * True when `headers` carry the probe marker (`X-Cutover-Probe: 1`). Header names are compared
 * without regard to case (API Gateway REST APIs pass them as the client wrote them); the value
 * must be `1`, surrounding spaces ignored. `null` or `undefined` headers are not a probe's.
 */
export function isProbeRequest(headers: HeadersLike | null | undefined): boolean {
  if (!headers || typeof headers !== 'object') return false;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return isMarker((headers as { get(name: string): string | null | undefined }).get(PROBE_MARKER_HEADER));
  }
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (name.toLowerCase() !== PROBE_MARKER_HEADER) continue;
    if (Array.isArray(value) ? value.some(isMarker) : isMarker(value)) return true;
  }
  return false;
}

function isMarker(value: unknown): boolean {
  return typeof value === 'string' && value.trim() === PROBE_MARKER_VALUE;
}
