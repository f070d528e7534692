/**
 * What every probe pass shares: the run's context (`RunContext`) where a pass records its
 * findings and counters, how a pass ends the run (`RunAborted`), and one exchange on a connection
 * within the probe's bounds (open, read the answer, turn it into a signature). Separate from the
 * passes themselves (passes.ts, long-pass.ts), which only decide what to send and when; the bytes
 * of a request are built in request.ts, and what an answer or stray bytes mean in pass-evidence.ts.
 */
import { ProbeConnection, nowMs, type ReadResult, type Target } from './connection';
import type { FramingLimits } from './http1';
import type { ProbeStep } from './sequence';
import { failureSignature, noResponseSignature, responseSignature, type Signature } from './signature';
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
   * probe's requests (every pass, retries included; not unsolicited extra responses),
   * `answers4xx` those with a 4XX status (the probe's deliberate 404, 413, 400 … included) and
   * `answers5xx` those with a 5XX status: the side's synthetic health (`ProbeReport.health`).
   */
  readonly counters: {
    reusedRequests: number;
    unsolicitedBytes: number;
    maxRequestsPerConnection: number;
    answers: number;
    answers4xx: number;
    answers5xx: number;
  };
}

/** The run cannot go on (the target is unreachable, or the first step never answers). */
export class RunAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunAborted';
  }
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
 * run's synthetic health (every response is counted, 4XX and 5XX separately; a close, timeout or
 * protocol error is no answer).
 */
export async function readAnswer(ctx: RunContext, conn: ProbeConnection, method: string): Promise<ReadResult> {
  const read = await conn.readResponse(method, readTimeout(ctx), ctx.limits);
  if (read.kind === 'response') {
    ctx.counters.answers += 1;
    if (read.response.status >= 500) ctx.counters.answers5xx += 1;
    else if (read.response.status >= 400) ctx.counters.answers4xx += 1;
  }
  return read;
}

/** Finding kind for a failed read. */
export function failureKind(read: ReadResult): FindingKind {
  if (read.kind === 'timeout') return 'timeout';
  if (read.kind === 'protocol-error') return read.errorKind;
  return 'no-response';
}
