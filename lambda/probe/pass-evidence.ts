/**
 * What the passes make of what came back: whether a close or a 408 is the server's idle timeout,
 * how an answer compares with what the step got on fresh connections (`recordAttempt`), what a
 * failed read means on a reused connection (`reportFailure`), and whether bytes nobody asked for
 * are benign or hard evidence of a desync (`handleIdleBytes`). Shared by the passes (passes.ts,
 * long-pass.ts) and kept apart from them: this is the evidence, they are the sending.
 */
import type { ProbeConnection, ReadResult } from './connection';
import { FramingError, ResponseParser, type ParsedResponse } from './http1';
import { add, failureKind, signatureOf, stepFields, type Outcome, type RunContext } from './pass-context';
import type { ProbeStep } from './sequence';
import { classify, type StepProfile } from './signature';
import { plural, printable } from './text';
import type { PassName, StepAttempt } from './types';

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
