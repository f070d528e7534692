/**
 * The probe's long pass: many requests on ONE kept-alive connection, interleaving the sequence's
 * distinct requests, so that a desync that starts only at the Nth request on a connection shifts
 * every later answer and is caught. Split from passes.ts, whose step helpers it shares.
 */
import { ConnectError, ProbeConnection, nowMs } from './connection';
import { sameRequest, type ProbeStep } from './sequence';
import { answerClasses, isAnswerOf, type StepProfile } from './signature';
import { plural } from './text';
import { add, stepFields, buildRequest, signatureOf, remaining, open, readAnswer, isIdleClose, isTimeoutClose, closeReason, countResponses, recordAttempt, reportFailure, handleIdleBytes, type Outcome, type RunContext } from './passes';

/** Bodies this large go into the long pass half as often: each one is uploaded in full. */
const LARGE_BODY_BYTES = 64 * 1024;
/** How far back on its connection an answer is looked for when it is another request's. */
const MAX_LONG_OFFSET = 8;

/**
 * The long pass's request order over `classes` (one step per answer the sequence can tell apart):
 * least-sent first, never the class of either of the two requests before when there is a choice.
 * So an answer shifted by one or two requests always looks like another step's, and every stretch
 * of a few requests holds every class: a desync that starts at any request is seen within a few.
 * Deterministic, so a run can be repeated exactly.
 */
export function longPassOrder<T extends { readonly step: ProbeStep }>(classes: readonly T[], count: number): T[] {
  const uses = classes.map(() => 0);
  const order: number[] = [];
  for (let i = 0; i < count && classes.length > 0; i++) {
    const ranked = classes.map((_, c) => c).sort((a, b) => uses[a] - uses[b] || a - b);
    const previous = order[i - 1];
    const beforeThat = order[i - 2];
    const pick = ranked.find((c) => c !== previous && c !== beforeThat) ?? ranked.find((c) => c !== previous) ?? ranked[0];
    order.push(pick);
    uses[pick] += classes[pick].step.bodyBytes >= LARGE_BODY_BYTES ? 2 : 1;
  }
  return order.map((c) => classes[c]);
}

/** How much the long pass sends. */
export interface LongPassLimits {
  /** Requests in all. */
  readonly requests: number;
  /** No request is sent after this long (ms from the pass's start): a slow server gets fewer. */
  readonly maxMs: number;
}

/**
 * Sends `limits.requests` requests back to back on one connection (a new one only when the server
 * ends it), interleaving the steps whose answers can be told apart and that keep the connection
 * open (HEAD is left out: a shifted answer to a HEAD loses its body and would stall the next
 * read). A server that goes wrong only from its Nth request on a connection shifts every later
 * answer; each answer is compared with the requests sent just before it on the same connection.
 * Stops early once the evidence is plain, or when `limits.maxMs` is spent (noted: later requests
 * went unchecked), and watches the idle connection at the end.
 */
export async function longPass(ctx: RunContext, profiles: readonly StepProfile[], limits: LongPassLimits): Promise<void> {
  const classes = answerClasses(profiles.filter((p) => !p.broken && !p.closesConnection && p.step.method !== 'HEAD'));
  if (classes.length < 2) {
    add(ctx, 'info', 'long-pass', 'long', `long pass skipped: ${plural(classes.length, 'step')} whose answers can be told apart keep the connection open, at least 2 needed`);
    return;
  }
  const order = longPassOrder(classes, limits.requests);
  const started = nowMs();
  /** What each request on the current connection got, in order (for offsets). */
  let onConnection: Array<{ profile: StepProfile; position: number }> = [];
  let conn: ProbeConnection | undefined;
  let notedClose = false;
  let notedIdleClose = false;
  let shifted = 0;
  let firstExact: number | undefined;
  const desyncFindings = (): number => ctx.findings.filter((f) => f.pass === 'long' && f.severity === 'desync').length;
  const dropConnection = (): void => {
    conn?.destroy();
    conn = undefined;
  };
  const ensureConnection = async (): Promise<ProbeConnection | undefined> => {
    if (conn && !conn.closed) return conn;
    dropConnection();
    onConnection = [];
    try {
      conn = await open(ctx);
      return conn;
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      add(ctx, 'warning', error.kind, 'long', error.message);
      return undefined;
    }
  };
  try {
    let sent = 0;
    for (let i = 0; i < order.length; i++) {
      const profile = order[i];
      const step = profile.step;
      if (remaining(ctx) <= 0) {
        add(ctx, 'warning', 'deadline', 'long', `the probe's time budget ran out after ${plural(sent, 'request')} of the long pass`, stepFields(step));
        return;
      }
      const elapsed = nowMs() - started;
      if (elapsed >= limits.maxMs) {
        // A slow server: a shorter pass rather than a probe many times longer than the others.
        add(
          ctx,
          'info',
          'long-pass',
          'long',
          `the long pass sent ${sent} of ${limits.requests} requests within its ${limits.maxMs} ms (about ${Math.round(elapsed / Math.max(1, sent))} ms per answer); ` +
            `a bug that starts later on a connection went unchecked (raise longPassMaxMs to check it)`,
        );
        break;
      }
      let outcome: Outcome | undefined;
      let reused = false;
      for (let attempt = 0; attempt < 2 && !outcome; attempt++) {
        const c = await ensureConnection();
        if (!c) return;
        if (c.buffered > 0) {
          const before = desyncFindings();
          const previous = onConnection[onConnection.length - 1]?.profile.step ?? step;
          const keep = await handleIdleBytes(ctx, c, 'long', previous, `(request ${onConnection.length} on the long pass's connection) before the next request`, onConnection.length);
          if (desyncFindings() > before) return;
          if (!keep) {
            // A 408 and close (the server's idle timer): this try is used up, the next opens anew.
            dropConnection();
            continue;
          }
        }
        reused = c.reused;
        c.write(buildRequest(ctx, step, 'long', i));
        const read = await readAnswer(ctx, c, step.method);
        if (attempt === 0 && isIdleClose(read, reused)) {
          if (!notedIdleClose) {
            notedIdleClose = true;
            add(ctx, 'info', 'closed-while-idle', 'long', `${step.name}: the server closed the long pass's connection after ${plural(onConnection.length, 'request')} instead of answering; retried on a new connection`, stepFields(step));
          }
          dropConnection();
          continue;
        }
        outcome = { read, sig: signatureOf(read, step.method) };
      }
      if (!outcome || !conn) continue;
      sent += 1;
      const position = onConnection.length + 1;
      // Offsets on this connection: how many requests back each request whose answer this is went out.
      const shiftOffsets = onConnection
        .filter((e) => position - e.position <= MAX_LONG_OFFSET && !sameRequest(e.profile.step, step) && isAnswerOf(outcome.sig, e.profile))
        .map((e) => position - e.position)
        .reverse();
      onConnection.push({ profile, position });
      if (reused) ctx.counters.reusedRequests += 1;
      countResponses(ctx, conn);
      const attempt = recordAttempt(ctx, 'long', profile, profiles, outcome, reused, { position, shiftOffsets });
      if (attempt.match === 'shifted') {
        shifted += 1;
        if (attempt.exact && firstExact === undefined) firstExact = i;
      }

      const { read } = outcome;
      if (read.kind !== 'response') {
        if (read.kind === 'timeout' || read.kind === 'protocol-error') {
          reportFailure(ctx, 'long', profile, read, reused);
          return;
        }
        dropConnection();
        continue;
      }
      if (isTimeoutClose(read.response)) {
        dropConnection();
        continue;
      }
      if (conn.buffered > 0) {
        const before = desyncFindings();
        const keep = await handleIdleBytes(ctx, conn, 'long', step, `(request ${position} on the long pass's connection) in the same read as its response`, position);
        if (desyncFindings() > before) return;
        if (!keep) {
          dropConnection();
          continue;
        }
      }
      // Enough to judge: a few answers past the first that belongs to another request.
      if (shifted >= 3 || (firstExact !== undefined && i - firstExact >= 3)) return;
      if (!read.response.keepAlive) {
        if (!notedClose) {
          notedClose = true;
          add(ctx, 'info', 'not-reused', 'long', `the server ended the long pass's connection after ${plural(position, 'request')} (${closeReason(read.response)}); continuing on a new one`, stepFields(step));
        }
        dropConnection();
      }
    }
    // A late duplicate of the last answers arrives while the connection sits idle.
    if (conn && !conn.closed && remaining(ctx) > 0) {
      const idle = await conn.watchIdle(Math.min(2 * ctx.idleMs, remaining(ctx)));
      const last = onConnection[onConnection.length - 1];
      if (idle.bytes > 0 && last) {
        await handleIdleBytes(ctx, conn, 'long', last.profile.step, `(request ${last.position} on the long pass's connection) while the connection was idle after it`, last.position);
      }
    }
  } finally {
    dropConnection();
  }
}
