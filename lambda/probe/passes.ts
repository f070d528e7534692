/**
 * The probe's passes over one request sequence: the control pass on fresh connections, the
 * keep-alive passes (sequential with idle watches, immediate, paused after errors) and the optional
 * pipelined pass. Each pass records what every step got and adds findings to the run. The long
 * pass (many interleaved requests on one connection) is in long-pass.ts and shares the step
 * helpers exported here.
 */
import { ConnectError, ProbeConnection, nowMs, type ReadResult, type Target } from './connection';
import { ResponseParser, FramingError, serializeRequest, type FramingLimits, type ParsedResponse } from './http1';
import { PROBE_MARKER_VALUE, PROBE_MARKER_WIRE_NAME } from './marker';
import type { ProbeStep } from './sequence';
import {
  classify,
  failureSignature,
  isTransient,
  newToken,
  noResponseSignature,
  responseSignature,
  type Signature,
  type StepProfile,
} from './signature';
import { plural, printable } from './text';
import type { FindingKind, FindingSeverity, PassName, ProbeFinding, StepAttempt } from './types';

/** Everything a pass needs, and where it records what it saw. */
export interface RunContext {
  readonly run: number;
  readonly target: Target;
  readonly steps: readonly ProbeStep[];
  readonly timeoutMs: number;
  readonly idleMs: number;
  readonly controlRepeats: number;
  readonly limits: FramingLimits;
  /** Monotonic time after which no new request is sent. */
  readonly deadline: number;
  /** Identifies the run in every X-Probe-Id header. */
  readonly runToken: string;
  readonly progress: (line: string) => void;
  readonly findings: ProbeFinding[];
  readonly notes: ProbeFinding[];
  /** Per step index: what it got in each keep-alive pass. */
  readonly attempts: StepAttempt[][];
  /**
   * Counters for the report's metrics. `answers` counts the responses the server gave to the
   * probe's requests (every pass, retries included; not unsolicited extra responses), and
   * `answers5xx` those with a 5XX status: the side's synthetic health (`ProbeReport.health`).
   */
  readonly counters: { reusedRequests: number; unsolicitedBytes: number; maxRequestsPerConnection: number; answers: number; answers5xx: number };
}

/** The run cannot go on (the target is unreachable, or the first step never answers). */
export class RunAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunAborted';
  }
}

/** Steps sent in a keep-alive pass: how the next request follows a response. */
export type KeepAliveMode = 'sequential' | 'immediate' | 'paused';

/** What the control pass saw for one step. */
export interface ControlResult {
  readonly step: ProbeStep;
  readonly samples: Signature[];
  readonly broken: boolean;
  /** The server ended a fresh connection after the step's answer, or closed it without one. */
  readonly closes: boolean;
}

/** What a single exchange produced (shared with long-pass.ts). */
export interface Outcome {
  readonly read: ReadResult;
  readonly sig: Signature;
}

/** Bytes kept unread at most: a response's head and body plus room for one more. */
function maxBuffered(limits: FramingLimits): number {
  return 2 * (limits.maxHeaderBytes + limits.maxBodyBytes);
}

export function add(
  ctx: RunContext,
  severity: FindingSeverity,
  kind: FindingKind,
  pass: PassName,
  message: string,
  extra: Partial<Omit<ProbeFinding, 'kind' | 'severity' | 'run' | 'pass' | 'message'>> = {},
): void {
  const finding: ProbeFinding = { kind, severity, run: ctx.run, pass, ...extra, message };
  (severity === 'info' ? ctx.notes : ctx.findings).push(finding);
}

export function stepFields(step: ProbeStep): { step: number; stepName: string } {
  return { step: step.index, stepName: step.name };
}

/** Pass numbers in X-Probe-Id (digits, so that servers echoing the header still match across passes). */
const PASS_NUMBERS: Readonly<Record<PassName, number>> = { control: 0, sequential: 1, immediate: 2, paused: 3, pipelined: 4, long: 5 };

/**
 * Builds the bytes of one request. Every request carries a fresh nonce, an
 * `X-Probe-Id: <run token>.<pass number>.<step index>.<attempt>` and the probe marker
 * `X-Cutover-Probe: 1` (see marker.ts: applications leave marked requests out of the metrics the
 * judge compares). The control pass sends the very
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
  const smuggled = Buffer.from(
    `GET ${ctx.target.basePath}/cutover-probe-smuggled-${newToken()} HTTP/1.1\r\nHost: ${ctx.target.hostHeader}\r\n` +
      `X-Probe-Id: ${probeId}.smuggled\r\n${PROBE_MARKER_WIRE_NAME}: ${PROBE_MARKER_VALUE}\r\n\r\n`,
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

export function signatureOf(read: ReadResult, method: string): Signature {
  switch (read.kind) {
    case 'response':
      return responseSignature(read.response, method);
    case 'no-response':
      return noResponseSignature(read.how);
    case 'timeout':
      return failureSignature('timeout');
    case 'protocol-error':
      return failureSignature(read.errorKind === 'protocol-error' ? 'protocol error' : read.errorKind);
  }
}

export function remaining(ctx: RunContext): number {
  return ctx.deadline - nowMs();
}

export async function open(ctx: RunContext): Promise<ProbeConnection> {
  return ProbeConnection.open(ctx.target, Math.max(1, Math.min(ctx.timeoutMs, remaining(ctx))), maxBuffered(ctx.limits));
}

export function readTimeout(ctx: RunContext): number {
  return Math.max(1, Math.min(ctx.timeoutMs, remaining(ctx)));
}

/**
 * Reads the answer to the request just written, within the probe's bounds, and counts it for the
 * run's synthetic health (every response is counted, 5XX separately; a close, timeout or protocol
 * error is no answer).
 */
export async function readAnswer(ctx: RunContext, conn: ProbeConnection, method: string): Promise<ReadResult> {
  const read = await conn.readResponse(method, readTimeout(ctx), ctx.limits);
  if (read.kind === 'response') {
    ctx.counters.answers += 1;
    if (read.response.status >= 500) ctx.counters.answers5xx += 1;
  }
  return read;
}

/** Finding kind for a failed read. */
function failureKind(read: ReadResult): FindingKind {
  if (read.kind === 'timeout') return 'timeout';
  if (read.kind === 'protocol-error') return read.errorKind;
  return 'no-response';
}

// ---------------------------------------------------------------------------------------------
// Control pass
// ---------------------------------------------------------------------------------------------

/**
 * Sends each step on its own fresh connection (closed after the answer) until it has `controlRepeats`
 * answers (a close without answer counts), with up to 4 extra tries for 5XX and 408. A step that times out or breaks
 * the protocol is marked broken and left out of later passes; if the first step cannot be answered
 * at all, the run is aborted.
 */
export async function controlPass(ctx: RunContext, result: ControlResult[]): Promise<void> {
  for (const step of ctx.steps) {
    const samples: Signature[] = [];
    let broken = false;
    let closes = false;
    let conclusive = 0;
    // Up to 4 extra tries for 5XX and 408 answers (with 15% random 503s a step then stays
    // unlearned about once in 10^5); a close without answer counts: it is how some servers refuse.
    for (let attempt = 0; conclusive < ctx.controlRepeats && attempt < ctx.controlRepeats + 4; attempt++) {
      if (remaining(ctx) <= 0) {
        const message = `the probe's time budget ran out during the control pass, at step ${step.name}`;
        add(ctx, 'warning', 'deadline', 'control', message, stepFields(step));
        throw new RunAborted(message);
      }
      let conn: ProbeConnection;
      try {
        conn = await open(ctx);
      } catch (error) {
        if (!(error instanceof ConnectError)) throw error;
        add(ctx, 'warning', 'unreachable', 'control', error.message, stepFields(step));
        throw new RunAborted(error.message);
      }
      let read: ReadResult;
      try {
        conn.write(buildRequest(ctx, step, 'control', attempt));
        read = await readAnswer(ctx, conn, step.method);
        // Bytes after the answer in the same read (a response written twice at once) show even on
        // a fresh connection.
        if (conn.buffered > 0 && read.kind === 'response' && !isTimeoutClose(read.response)) {
          await handleIdleBytes(ctx, conn, 'control', step, 'in the same read as its response');
        }
      } finally {
        conn.destroy();
      }
      const sig = signatureOf(read, step.method);
      samples.push(sig);
      // The request was sent without `Connection: close`, so the answer says whether the server
      // would have kept this connection.
      if (read.kind === 'no-response' || (read.kind === 'response' && !read.response.keepAlive && !isTransient(read.response.status))) closes = true;
      // 5XX can be random and a 408 is the server's idle timer racing the request: try again.
      if (read.kind === 'no-response' || (read.kind === 'response' && !isTransient(read.response.status))) conclusive += 1;
      if (read.kind === 'timeout' || read.kind === 'protocol-error') {
        broken = true;
        add(ctx, 'warning', failureKind(read), 'control', `${step.name} on a fresh connection: ${read.message}`, {
          ...stepFields(step),
          got: sig.display,
          ...(read.firstBytes.length > 0 ? { unsolicited: printable(read.firstBytes) } : {}),
        });
        break;
      }
    }
    result.push({ step, samples, broken, closes });
    if (step.index === 0 && (broken || samples.every((s) => s.kind !== 'response'))) {
      if (!broken) {
        add(ctx, 'warning', 'no-response', 'control', `${step.name}: the server closed ${plural(samples.length, 'fresh connection')} without answering`, {
          ...stepFields(step),
          got: samples[0]?.display,
        });
      }
      throw new RunAborted(`the first step (${step.name}) got no usable answer on a fresh connection`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Keep-alive passes
// ---------------------------------------------------------------------------------------------

/**
 * Sends every usable step on one connection, reopening only when the server closes it.
 * - `sequential`: after each response, watches the idle connection (`idleMs`) for bytes nobody
 *   asked for;
 * - `immediate`: sends the next request as soon as a response is complete, so a late duplicate
 *   lands on the next request;
 * - `paused`: waits (and watches) `2 × idleMs` after error responses only.
 */
export async function keepAlivePass(ctx: RunContext, mode: KeepAliveMode, profiles: readonly StepProfile[]): Promise<void> {
  const usable = profiles.filter((p) => !p.broken);
  let conn: ProbeConnection | undefined;
  let notedReopen = false;
  const dropConnection = (): void => {
    conn?.destroy();
    conn = undefined;
  };
  /** The open connection, or a new one; undefined (and a finding) when none can be made. */
  const ensureConnection = async (): Promise<ProbeConnection | undefined> => {
    if (conn && !conn.closed) return conn;
    dropConnection();
    try {
      conn = await open(ctx);
      return conn;
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      add(ctx, 'warning', 'unreachable', mode, error.message);
      return undefined;
    }
  };
  try {
    let previous: ProbeStep | undefined;
    for (const profile of usable) {
      const step = profile.step;
      const before = previous;
      previous = step;
      if (remaining(ctx) <= 0) {
        add(ctx, 'warning', 'deadline', mode, `the probe's time budget ran out before step ${step.name}`, stepFields(step));
        return;
      }
      let outcome: Outcome | undefined;
      let reused = false;
      for (let attempt = 0; attempt < 2 && !outcome; attempt++) {
        let c = await ensureConnection();
        if (!c) return;
        if (c.buffered > 0) {
          // Arrived after the last check and before this request: unsolicited.
          if (!(await handleIdleBytes(ctx, c, mode, before ?? step, 'before the next request'))) {
            dropConnection();
            c = await ensureConnection();
            if (!c) return;
          }
        }
        reused = c.reused;
        c.write(buildRequest(ctx, step, mode, attempt));
        const read = await readAnswer(ctx, c, step.method);
        const closedIdle = attempt === 0 && isIdleClose(read, reused);
        if (closedIdle) {
          // The server's idle timeout crossed this request (a close on a kept-alive connection, or
          // a 408 and close): normal keep-alive behaviour, so try once more on a new connection.
          add(
            ctx,
            'info',
            read.kind === 'response' ? 'idle-timeout-408' : 'closed-while-idle',
            mode,
            `${step.name}: the server ${read.kind === 'response' ? 'answered 408 and closed the connection' : 'closed the kept-alive connection'} instead of answering; retried on a new connection`,
            stepFields(step),
          );
          dropConnection();
          continue;
        }
        outcome = { read, sig: signatureOf(read, step.method) };
      }
      if (!outcome) continue;
      if (reused) ctx.counters.reusedRequests += 1;
      if (conn) countResponses(ctx, conn);
      recordAttempt(ctx, mode, profile, profiles, outcome, reused);

      const { read } = outcome;
      if (read.kind !== 'response') {
        if (read.kind === 'timeout' || read.kind === 'protocol-error') {
          reportFailure(ctx, mode, profile, read, reused);
          // A connection that hung or lost its framing says nothing more; the next pass goes on.
          return;
        }
        dropConnection();
        continue;
      }
      if (!conn || isTimeoutClose(read.response)) {
        dropConnection();
        continue;
      }
      if (conn.buffered > 0 && !(await handleIdleBytes(ctx, conn, mode, step, 'in the same read as its response'))) {
        dropConnection();
        continue;
      }
      if (!read.response.keepAlive) {
        if (!notedReopen) {
          notedReopen = true;
          add(ctx, 'info', 'not-reused', mode, `${step.name}: the server ended the connection after ${read.response.status} (${closeReason(read.response)}); continuing on a new one`, stepFields(step));
        }
        dropConnection();
        continue;
      }
      const isError = read.response.status >= 400;
      // The paused pass holds the long watch after errors (where the incident's duplicate came
      // from), so the sequential pass, run at the same time, need not: the two take as long as one.
      const watchMs = mode === 'sequential' ? ctx.idleMs : mode === 'paused' && isError ? 2 * ctx.idleMs : 0;
      if (watchMs > 0) {
        const idle = await conn.watchIdle(Math.min(watchMs, Math.max(0, remaining(ctx))));
        if (idle.bytes > 0) {
          const keep = await handleIdleBytes(ctx, conn, mode, step, `while the connection was idle after it`);
          if (!keep) dropConnection();
        } else if (idle.closed) {
          dropConnection();
        }
      }
    }
  } finally {
    dropConnection();
  }
}

/**
 * The server's idle timeout crossing the request: a 408-and-close (on any connection: a server may
 * time out a new connection before the request reaches it), or a plain close on a kept-alive one.
 */
export function isIdleClose(read: ReadResult, reused: boolean): boolean {
  if (read.kind === 'no-response') return reused;
  return read.kind === 'response' && isTimeoutClose(read.response);
}

/**
 * A 408 that ends the connection: the server's own timer, not an answer to the request, so it is
 * framed by its Content-Length even when the request was a HEAD and bytes after it mean nothing.
 */
export function isTimeoutClose(response: ParsedResponse): boolean {
  return response.status === 408 && !response.keepAlive;
}

export function closeReason(response: ParsedResponse): string {
  if (response.framing === 'close-delimited') return `HTTP/${response.version} body delimited by the close`;
  if (response.version === '1.0') return 'HTTP/1.0 without keep-alive';
  if (response.anomalies.length > 0) return response.anomalies.join(', ');
  return 'Connection: close';
}

/** Keeps the report's "most requests on one connection" up to date. */
export function countResponses(ctx: RunContext, conn: ProbeConnection): void {
  ctx.counters.maxRequestsPerConnection = Math.max(ctx.counters.maxRequestsPerConnection, conn.responseCount);
}

export function recordAttempt(
  ctx: RunContext,
  pass: PassName,
  profile: StepProfile,
  profiles: readonly StepProfile[],
  outcome: Outcome,
  reused: boolean,
  /** Long pass: where the request was on its connection, and the offsets measured there. */
  long?: { readonly position: number; readonly shiftOffsets: readonly number[] },
): StepAttempt {
  const c = classify(outcome.sig, profile, profiles);
  const offsets = long && c.match === 'shifted' ? long.shiftOffsets : c.shiftOffsets;
  const attempt: StepAttempt = {
    pass,
    got: outcome.sig.display,
    match: c.match,
    ...(offsets && offsets.length > 0 ? { shiftOffsets: offsets } : {}),
    ...(c.exact ? { exact: true } : {}),
    reused,
    ...(long ? { position: long.position } : {}),
  };
  ctx.attempts[profile.step.index].push(attempt);
  if (outcome.read.kind === 'response' && outcome.read.response.anomalies.length > 0) {
    const message = `${profile.step.name}: ${outcome.read.response.anomalies.join(', ')}`;
    // Once per pass and message: the long pass would repeat it for every request.
    if (!ctx.notes.some((n) => n.kind === 'framing-anomaly' && n.pass === pass && n.message === message)) {
      add(ctx, 'info', 'framing-anomaly', pass, message, stepFields(profile.step));
    }
  }
  return attempt;
}

export function reportFailure(ctx: RunContext, pass: PassName, profile: StepProfile, read: Extract<ReadResult, { kind: 'timeout' | 'protocol-error' }>, reused: boolean): void {
  const step = profile.step;
  const controlParsed = profile.samples.some((s) => s.kind === 'response');
  const extra = {
    ...stepFields(step),
    got: signatureOf(read, step.method).display,
    ...(read.firstBytes.length > 0 ? { unsolicited: printable(read.firstBytes) } : {}),
  };
  if (read.kind === 'protocol-error' && read.errorKind === 'protocol-error' && reused && controlParsed) {
    // The same request parses fine on a fresh connection: the bytes on this reused connection are
    // not where a response should start, i.e. the stream is out of step.
    add(ctx, 'desync', 'garbled-response', pass, `${step.name} on a reused connection: ${read.message} (on fresh connections it parsed as ${profile.samples.find((s) => s.kind === 'response')?.display})`, extra);
    return;
  }
  add(ctx, 'warning', failureKind(read), pass, `${step.name}${reused ? ' on a reused connection' : ''}: ${read.message}`, extra);
}

/**
 * Bytes arrived that no request asked for. Benign: CR/LF only (parsers skip empty lines), or a
 * 408 followed by the server closing (a normal idle timeout). Anything else is hard evidence of a
 * desync. Returns true when the connection may still be used.
 */
export async function handleIdleBytes(
  ctx: RunContext,
  conn: ProbeConnection,
  pass: PassName,
  after: ProbeStep,
  when: string,
  /** Long pass: the number on its connection of the request the bytes came after. */
  position?: number,
): Promise<boolean> {
  const where = position !== undefined ? { position } : {};
  const data = conn.takeBuffered();
  if (data.every((b) => b === 0x0d || b === 0x0a)) {
    add(ctx, 'info', 'stray-whitespace', pass, `${plural(data.length, 'CR/LF byte')} after ${after.name} ${when} (ignored, as RFC 9112 allows)`, stepFields(after));
    return true;
  }
  const parsed = describeResponses(data);
  if (parsed.statuses[0] === 408 && parsed.statuses.length === 1) {
    const closed = conn.closed || (await conn.waitForClose(Math.min(ctx.timeoutMs, Math.max(ctx.idleMs * 2, 100))));
    if (closed) {
      add(ctx, 'info', 'idle-timeout-408', pass, `after ${after.name}: the server sent 408 and closed the idle connection (a normal idle timeout)`, stepFields(after));
      return false;
    }
    add(ctx, 'warning', 'unsolicited-408-kept-open', pass, `after ${after.name}: the server sent 408 on the idle connection but kept it open; a client reusing it would take the 408 as its next answer`, {
      ...stepFields(after),
      ...where,
      unsolicited: printable(data),
      unsolicitedBytes: data.length,
    });
    return false;
  }
  ctx.counters.unsolicitedBytes += data.length;
  const what = parsed.statuses.length > 0 ? `${plural(parsed.statuses.length, 'extra response')} (${parsed.statuses.join(', ')})` : 'bytes that are not a response';
  const smuggled = data.toString('latin1').includes('cutover-probe-smuggled-')
    ? '; they answer the request hidden in the POST body, so the server read that body as a new request'
    : '';
  add(ctx, 'desync', 'unsolicited-bytes', pass, `${plural(data.length, 'unsolicited byte')} after ${after.name} ${when}: ${what}${smuggled}`, {
    ...stepFields(after),
    ...where,
    unsolicited: printable(data),
    unsolicitedBytes: data.length,
  });
  return false;
}

/** Statuses of the complete (or started) responses in `data`, for messages. */
function describeResponses(data: Buffer): { statuses: number[] } {
  const statuses: number[] = [];
  let rest = data;
  while (rest.length > 0 && statuses.length < 10) {
    const parser = new ResponseParser('GET');
    let used: number;
    try {
      used = parser.push(rest);
    } catch (error) {
      if (error instanceof FramingError) break;
      throw error;
    }
    const response = parser.response;
    if (response) {
      statuses.push(response.status);
      rest = rest.subarray(used);
      continue;
    }
    // Incomplete: take the status from the status line if there is one.
    const status = /^\s*HTTP\/1\.[01] (\d{3})/.exec(rest.toString('latin1', 0, 64));
    if (status) statuses.push(Number(status[1]));
    break;
  }
  return { statuses };
}

// ---------------------------------------------------------------------------------------------
// Long pass
// ---------------------------------------------------------------------------------------------


// ---------------------------------------------------------------------------------------------
// Pipelined pass
// ---------------------------------------------------------------------------------------------

/**
 * Sends the safe steps (GET/HEAD without a body) in one write on one connection and reads the
 * answers in order; then watches for leftovers.
 */
export async function pipelinedPass(ctx: RunContext, profiles: readonly StepProfile[]): Promise<void> {
  const safe = profiles.filter((p) => !p.broken && (p.step.method === 'GET' || p.step.method === 'HEAD') && p.step.bodyBytes === 0);
  if (safe.length < 2) {
    add(ctx, 'info', 'pipeline-not-supported', 'pipelined', `pipelined pass skipped: ${plural(safe.length, 'safe step')} (GET/HEAD without body), at least 2 needed`);
    return;
  }
  if (remaining(ctx) <= 0) {
    add(ctx, 'warning', 'deadline', 'pipelined', "the probe's time budget ran out before the pipelined pass");
    return;
  }
  let conn: ProbeConnection;
  try {
    conn = await open(ctx);
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    add(ctx, 'warning', 'unreachable', 'pipelined', error.message);
    return;
  }
  try {
    conn.write(Buffer.concat(safe.map((p, i) => buildRequest(ctx, p.step, 'pipelined', i))));
    for (const profile of safe) {
      const reused = conn.reused;
      const read = await readAnswer(ctx, conn, profile.step.method);
      if (read.kind === 'no-response') {
        add(ctx, 'info', 'pipeline-not-supported', 'pipelined', `the server closed the pipelined connection before answering ${profile.step.name}`, stepFields(profile.step));
        return;
      }
      if (reused) ctx.counters.reusedRequests += 1;
      countResponses(ctx, conn);
      recordAttempt(ctx, 'pipelined', profile, profiles, { read, sig: signatureOf(read, profile.step.method) }, reused);
      if (read.kind !== 'response') {
        reportFailure(ctx, 'pipelined', profile, read, reused);
        return;
      }
      if (!read.response.keepAlive) {
        add(ctx, 'info', 'pipeline-not-supported', 'pipelined', `the server ended the pipelined connection after ${profile.step.name} (${closeReason(read.response)})`, stepFields(profile.step));
        return;
      }
    }
    const last = safe[safe.length - 1].step;
    if (conn.buffered === 0) await conn.watchIdle(Math.min(ctx.idleMs, Math.max(0, remaining(ctx))));
    if (conn.buffered > 0) await handleIdleBytes(ctx, conn, 'pipelined', last, 'after the last pipelined response');
  } finally {
    conn.destroy();
  }
}
