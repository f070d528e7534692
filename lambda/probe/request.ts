/**
 * The bytes of one probe request: every pass sends the same bytes for a step (a fresh nonce, the
 * `X-Probe-Id` that names run, pass, step and attempt, and the probe marker), and a step with a
 * body carries a complete request hidden in it. Separate from the passes because it is what the
 * server sees on the wire, whichever pass sends it.
 */
import { serializeRequest } from './http1';
import { PROBE_MARKER_VALUE, PROBE_MARKER_WIRE_NAME } from './marker';
import type { RunContext } from './pass-context';
import type { ProbeStep } from './sequence';
import { newToken } from './signature';
import type { PassName } from './types';

/** Pass numbers in X-Probe-Id (digits, so that servers echoing the header still match across passes). */
const PASS_NUMBERS: Readonly<Record<PassName, number>> = { control: 0, sequential: 1, immediate: 2, paused: 3, pipelined: 4, long: 5 };

/**
 * Builds the bytes of one request. Every request carries a fresh nonce, an
 * `X-Probe-Id: <run token>.<pass number>.<step index>.<attempt>` and the probe marker
 * `X-Cutover-Probe: 1` (see marker.ts: applications leave marked requests out of the metrics the
 * judge compares), then the target's own headers (`ProbeOptions.headers`, e.g. the header an ALB
 * listener rule routes one side's probe traffic by) except those the step sets itself (the
 * bad-credentials step's invalid `Authorization` wins), then the step's. The control pass sends the very
 * same bytes as the keep-alive passes (no `Connection: close`; the probe closes the connection
 * itself), so that a server echoing the request (TRACE) answers alike in every pass.
 */
export function buildRequest(ctx: RunContext, step: ProbeStep, pass: PassName, attempt: number): Buffer {
  const nonce = newToken();
  const path = `${ctx.target.basePath}${step.path.replaceAll('{unique}', nonce)}`;
  const target = `${path}${path.includes('?') ? '&' : '?'}cutover-probe=${nonce}`;
  const probeId = `${ctx.runToken}.${PASS_NUMBERS[pass]}.${step.index}.${attempt}`;
  const headers: Array<[string, string]> = [
    ['User-Agent', 'cutover-probe'],
    ['Accept', '*/*'],
    ['X-Probe-Id', probeId],
    [PROBE_MARKER_WIRE_NAME, PROBE_MARKER_VALUE],
  ];
  const stepNames = new Set(step.headers.map(([n]) => n.toLowerCase()));
  headers.push(...ctx.target.headers.filter(([n]) => !stepNames.has(n.toLowerCase())).map(([n, v]) => [n, v] as [string, string]));
  headers.push(...step.headers.map(([n, v]) => [n, v] as [string, string]));
  let body: Buffer | undefined;
  if (step.bodyBytes > 0) {
    if (!step.headers.some(([n]) => n.toLowerCase() === 'content-type')) headers.push(['Content-Type', 'text/plain']);
    body = requestBody(ctx, step.bodyBytes, probeId);
  }
  return serializeRequest({ method: step.method, target, host: ctx.target.hostHeader, headers, body });
}

/** The small body: a JSON object an endpoint that takes POSTs can accept, padded with spaces. */
const SMALL_BODY = Buffer.from('{"cutover_probe":true}', 'latin1');

/**
 * A body that starts with a complete GET to a unique path, padded with CRLF. A server that answers
 * before reading the body and then parses it as a new request sends one extra response (the
 * padding is empty lines, which RFC 9112 §2.2 lets a server skip), and the probe sees it. A body
 * too small to hold that request is a small JSON object padded with spaces instead (a body of CRLF
 * would be rejected as invalid, and the small POST is meant to succeed).
 */
function requestBody(ctx: RunContext, size: number, probeId: string): Buffer {
  // The target's headers too: a request that reaches a backend carries them, however it got there.
  const extra = ctx.target.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
  const smuggled = Buffer.from(
    `GET ${ctx.target.basePath}/cutover-probe-smuggled-${newToken()} HTTP/1.1\r\nHost: ${ctx.target.hostHeader}\r\n` +
      `X-Probe-Id: ${probeId}.smuggled\r\n${PROBE_MARKER_WIRE_NAME}: ${PROBE_MARKER_VALUE}\r\n${extra}\r\n`,
    'latin1',
  );
  if (size >= smuggled.length) {
    const body = Buffer.alloc(size, '\r\n', 'latin1');
    smuggled.copy(body, 0);
    return body;
  }
  const body = Buffer.alloc(size, ' ', 'latin1');
  if (size >= SMALL_BODY.length) SMALL_BODY.copy(body, 0);
  else if (size >= 2) Buffer.from('{}', 'latin1').copy(body, 0);
  return body;
}
