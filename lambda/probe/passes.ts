/**
 * The probe's passes over one request sequence: the control pass on fresh connections, the
 * keep-alive passes (sequential with idle watches, immediate, paused after errors) and the optional
 * pipelined pass. Each pass records what every step got and adds findings to the run. The long
 * pass (many interleaved requests on one connection) is in long-pass.ts. What the passes share is
 * split by idea and re-exported here, so that this stays the module the others import: the run's
 * context and one exchange in pass-context.ts, the request bytes in request.ts, and what an answer
 * or stray bytes mean in pass-evidence.ts.
 */
import { ConnectError, type ProbeConnection, type ReadResult } from './connection';
import {
  RunAborted,
  add,
  failureKind,
  open,
  readAnswer,
  remaining,
  signatureOf,
  stepFields,
  type Outcome,
  type RunContext,
} from './pass-context';
import {
  closeReason,
  countResponses,
  handleIdleBytes,
  isIdleClose,
  isTimeoutClose,
  recordAttempt,
  reportFailure,
} from './pass-evidence';
import { buildRequest } from './request';
import type { ProbeStep } from './sequence';
import { isTransient, type Signature, type StepProfile } from './signature';
import { plural, printable } from './text';

export { RunAborted, add, open, readAnswer, readTimeout, remaining, signatureOf, stepFields, type Outcome, type RunContext } from './pass-context';
export { closeReason, countResponses, handleIdleBytes, isIdleClose, isTimeoutClose, recordAttempt, reportFailure } from './pass-evidence';
export { buildRequest } from './request';

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
        add(ctx, 'warning', error.kind, 'control', error.message, stepFields(step));
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
      add(ctx, 'warning', error.kind, mode, error.message);
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
    add(ctx, 'warning', error.kind, 'pipelined', error.message);
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
