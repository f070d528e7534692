/**
 * `runProbe`: validates options, runs the passes `runs` times, judges each run and aggregates.
 */
import { nowMs } from './connection';
import { ProbeUsageError } from './errors';
import { DEFAULT_LIMITS } from './http1';
import { longPass } from './long-pass';
import { controlPass, keepAlivePass, pipelinedPass, RunAborted, type ControlResult, type RunContext } from './passes';
import { defaultSequence, MAX_BODY_BYTES, sameRequest, stepsFromSpecs, type ProbeStep } from './sequence';
import {
  buildProfile,
  distinctClasses,
  expectedDisplay,
  findForeignSamples,
  isDistinct,
  isTransient,
  newToken,
  type ForeignSample,
  type StepProfile,
} from './signature';
import { parseTarget, type Target } from './target';
import { plural } from './text';
import type {
  PassName,
  ProbeFinding,
  ProbeOptions,
  ProbeReport,
  ProbeSettings,
  ProbeVerdict,
  RunReport,
  StepAttempt,
  StepReport,
} from './types';

/** Defaults of `ProbeOptions` (see there). */
export const PROBE_DEFAULTS = {
  healthPath: '/',
  runs: 1,
  timeoutMs: 5000,
  idleMs: 250,
  longPassRequests: 120,
  longPassMaxMs: 5000,
  maxDurationMs: 60_000,
  largeBodyBytes: 1024 * 1024 + 1,
  controlRepeats: 2,
} as const;

/**
 * Allowed ranges (inclusive) of the numeric `ProbeOptions`, for callers that validate their own
 * input first (the CLI names its flags in its errors).
 */
export const PROBE_OPTION_RANGES = {
  runs: [1, 100],
  timeoutMs: [10, 120_000],
  idleMs: [1, 60_000],
  longPassRequests: [0, 1000],
  longPassMaxMs: [100, 600_000],
  maxDurationMs: [100, 3_600_000],
  largeBodyBytes: [1, MAX_BODY_BYTES],
  controlRepeats: [1, 10],
} as const satisfies Record<string, readonly [number, number]>;

/**
 * Probes `baseUrl` for responses that answer the wrong request on a persistent connection.
 * Never throws for anything the server does (that becomes a finding); throws `ProbeUsageError`
 * for invalid options.
 */
export async function runProbe(options: ProbeOptions): Promise<ProbeReport> {
  const { settings, target, steps } = resolveOptions(options);
  const progress = options.onProgress ?? ((): void => undefined);
  const startedAtMs = Date.now();
  const start = nowMs();
  const deadline = start + settings.maxDurationMs;
  const reports: RunReport[] = [];

  for (let run = 1; run <= settings.runs; run++) {
    if (run > 1 && nowMs() >= deadline) {
      reports.push(skippedRun(run, settings.runs));
      continue;
    }
    const ctx: RunContext = {
      run,
      target,
      steps,
      timeoutMs: settings.timeoutMs,
      idleMs: settings.idleMs,
      controlRepeats: settings.controlRepeats,
      limits: DEFAULT_LIMITS,
      deadline,
      runToken: newToken(),
      progress: settings.runs > 1 ? (line) => progress(`run ${run}/${settings.runs}: ${line}`) : progress,
      findings: [],
      notes: [],
      attempts: steps.map(() => []),
      counters: { reusedRequests: 0, unsolicitedBytes: 0, maxRequestsPerConnection: 0, answers: 0, answers4xx: 0, answers5xx: 0 },
    };
    reports.push(await runOnce(ctx, settings));
  }

  const count = (v: ProbeVerdict): number => reports.filter((r) => r.verdict === v).length;
  const runs = { total: reports.length, ok: count('ok'), desync: count('desync'), inconclusive: count('inconclusive') };
  const verdict: ProbeVerdict = runs.desync > 0 ? 'desync' : runs.inconclusive > 0 ? 'inconclusive' : 'ok';
  const deciding = reports.find((r) => r.verdict === verdict) ?? reports[0];
  const findings = reports.flatMap((r) => r.findings);
  const compared = reports.reduce((n, r) => n + r.comparedAnswers, 0);
  const mismatched = reports.reduce((n, r) => n + r.mismatchedAnswers, 0);
  const durationMs = Math.round(nowMs() - start);
  return {
    verdict,
    findings,
    notes: reports.flatMap((r) => r.notes),
    runs,
    steps: deciding.steps,
    runReports: reports,
    settings,
    startedAtMs,
    durationMs,
    unsolicitedBytes: reports.reduce((n, r) => n + r.unsolicitedBytes, 0),
    shiftedSteps: reports.reduce((n, r) => n + r.shiftedSteps, 0),
    mismatchRate: compared === 0 ? 0 : mismatched / compared,
    health: {
      requests: reports.reduce((n, r) => n + r.health.requests, 0),
      errors4xx: reports.reduce((n, r) => n + r.health.errors4xx, 0),
      errors5xx: reports.reduce((n, r) => n + r.health.errors5xx, 0),
    },
    summary: summarize(verdict, runs, findings, deciding, durationMs),
  };
}

/** Validates options and fills in defaults. Throws `ProbeUsageError` naming the bad value. */
export function resolveOptions(options: ProbeOptions): { settings: ProbeSettings; target: Target; steps: ProbeStep[] } {
  if (typeof options?.baseUrl !== 'string') throw new ProbeUsageError(`baseUrl must be a string, got ${JSON.stringify(options?.baseUrl)}`);
  const target = parseTarget(options.baseUrl, {
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(options.servername !== undefined ? { servername: options.servername } : {}),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.connectTo !== undefined ? { connectTo: options.connectTo } : {}),
    ...(options.headers !== undefined ? { headers: options.headers } : {}),
  });
  const option = (name: keyof typeof PROBE_OPTION_RANGES & keyof typeof PROBE_DEFAULTS): number => {
    const [min, max] = PROBE_OPTION_RANGES[name];
    return integer(name, options[name], PROBE_DEFAULTS[name], min, max);
  };
  const runs = option('runs');
  const timeoutMs = option('timeoutMs');
  const idleMs = option('idleMs');
  const longPassRequests = option('longPassRequests');
  const longPassMaxMs = option('longPassMaxMs');
  const maxDurationMs = option('maxDurationMs');
  const largeBodyBytes = option('largeBodyBytes');
  const controlRepeats = option('controlRepeats');
  const steps = options.sequence ? stepsFromSpecs(options.sequence) : defaultSequence(options.healthPath ?? PROBE_DEFAULTS.healthPath, largeBodyBytes);
  return {
    target,
    steps,
    settings: {
      baseUrl: options.baseUrl,
      runs,
      timeoutMs,
      idleMs,
      longPassRequests,
      longPassMaxMs,
      maxDurationMs,
      largeBodyBytes,
      controlRepeats,
      pipelined: options.pipelined ?? false,
      sequence: options.sequence ? 'custom' : 'default',
      ...(target.connectTo !== undefined ? { connectTo: target.connectTo } : {}),
      // Names only: a value may be a secret, and the report is printed and stored.
      ...(target.headers.length > 0 ? { headers: target.headers.map(([name]) => name) } : {}),
    },
  };
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ProbeUsageError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

async function runOnce(ctx: RunContext, settings: ProbeSettings): Promise<RunReport> {
  const start = nowMs();
  const control: ControlResult[] = [];
  let profiles: StepProfile[] = [];
  let foreign: ForeignSample[] = [];
  try {
    ctx.progress(`control pass: ${plural(ctx.steps.length, 'step')}, each on fresh connections`);
    await controlPass(ctx, control);
    foreign = findForeignSamples(control);
    profiles = profilesOf(control, foreign);
    checkControl(ctx, profiles, foreign);
    await keepAlivePasses(ctx, profiles, settings);
    judgeShifts(ctx, profiles, settings.pipelined ? [...KEEP_ALIVE_PASSES, 'pipelined'] : KEEP_ALIVE_PASSES);
    if (ctx.counters.reusedRequests === 0 && !ctx.findings.some((f) => f.severity === 'desync')) {
      ctx.notes.push({
        kind: 'keep-alive-not-exercised',
        severity: 'info',
        run: ctx.run,
        pass: 'sequential',
        message: 'the server never kept a connection open for a second request, so no answer could be shifted',
      });
    }
  } catch (error) {
    if (!(error instanceof RunAborted)) throw error;
    if (!ctx.findings.some((f) => f.severity !== 'info')) {
      ctx.findings.push({ kind: 'no-response', severity: 'warning', run: ctx.run, pass: 'control', message: error.message });
    }
    profiles = profilesOf(control, foreign);
  }

  sortFindings(ctx.findings);
  sortFindings(ctx.notes);
  const attempts = ctx.attempts.flat();
  const verdict: ProbeVerdict = ctx.findings.some((f) => f.severity === 'desync')
    ? 'desync'
    : ctx.findings.some((f) => f.severity === 'warning')
      ? 'inconclusive'
      : 'ok';
  ctx.progress(`verdict ${verdict}${ctx.findings.length > 0 ? ` (${plural(ctx.findings.length, 'finding')})` : ''}`);
  return {
    run: ctx.run,
    verdict,
    findings: ctx.findings,
    notes: ctx.notes,
    steps: stepReports(ctx, profiles, foreign),
    durationMs: Math.round(nowMs() - start),
    reusedRequests: ctx.counters.reusedRequests,
    maxRequestsPerConnection: ctx.counters.maxRequestsPerConnection,
    unsolicitedBytes: ctx.counters.unsolicitedBytes,
    shiftedSteps: attempts.filter((a) => a.match === 'shifted').length,
    comparedAnswers: attempts.length,
    mismatchedAnswers: attempts.filter((a) => a.match !== 'aligned').length,
    health: { requests: ctx.counters.answers, errors4xx: ctx.counters.answers4xx, errors5xx: ctx.counters.answers5xx },
  };
}

/** Passes on keep-alive connections, judged together. */
const KEEP_ALIVE_PASSES: readonly PassName[] = ['sequential', 'immediate', 'paused', 'long'];

function profilesOf(control: readonly ControlResult[], foreign: readonly ForeignSample[]): StepProfile[] {
  return control.map((c) =>
    buildProfile(c.step, c.samples, c.broken, {
      foreign: new Set(foreign.filter((f) => f.step === c.step.index).map((f) => f.sample)),
      closesConnection: c.closes,
    }),
  );
}

/**
 * The keep-alive passes, each on its own connections and all at once: the idle watches of the
 * sequential and paused passes are spent waiting, so running the others meanwhile keeps a default
 * run within a few seconds. A pass never depends on another's connection, so the answers are the
 * same as one after the other; a server that mixes answers between connections shows it sooner.
 */
async function keepAlivePasses(ctx: RunContext, profiles: readonly StepProfile[], settings: ProbeSettings): Promise<void> {
  const lanes: Array<() => Promise<void>> = [
    async () => {
      ctx.progress('sequential keep-alive pass');
      await keepAlivePass(ctx, 'sequential', profiles);
    },
    async () => {
      ctx.progress('paused keep-alive pass');
      await keepAlivePass(ctx, 'paused', profiles);
    },
    async () => {
      ctx.progress('immediate keep-alive pass');
      await keepAlivePass(ctx, 'immediate', profiles);
      if (settings.pipelined) {
        ctx.progress('pipelined pass');
        await pipelinedPass(ctx, profiles);
      }
    },
    async () => {
      if (settings.longPassRequests === 0) return;
      ctx.progress(`long keep-alive pass: ${plural(settings.longPassRequests, 'request')} on one connection`);
      await longPass(ctx, profiles, { requests: settings.longPassRequests, maxMs: settings.longPassMaxMs });
    },
  ];
  // Every lane ends by itself (all waits are bounded); wait for all before judging or throwing.
  const results = await Promise.allSettled(lanes.map((lane) => lane()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

const PASS_ORDER: readonly PassName[] = ['control', 'sequential', 'immediate', 'paused', 'long', 'pipelined'];
const KIND_ORDER: readonly string[] = ['shifted-responses', 'foreign-answer', 'unsolicited-bytes', 'garbled-response'];

/** Strongest evidence first: desync before warnings, then by pass, kind and step. */
function sortFindings(findings: ProbeFinding[]): void {
  const rank = (f: ProbeFinding): number[] => [
    f.severity === 'desync' ? 0 : 1,
    PASS_ORDER.indexOf(f.pass),
    KIND_ORDER.includes(f.kind) ? KIND_ORDER.indexOf(f.kind) : KIND_ORDER.length,
    f.step ?? -1,
  ];
  findings.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i] - rb[i];
    return 0;
  });
}

/** What the control pass says about the sequence itself, and answers that crossed connections. */
function checkControl(ctx: RunContext, profiles: readonly StepProfile[], foreign: readonly ForeignSample[]): void {
  for (const f of foreign) {
    const p = profiles[f.step];
    const origin = profiles[f.origin];
    const got = p.samples[f.sample];
    ctx.findings.push({
      kind: 'foreign-answer',
      severity: 'desync',
      run: ctx.run,
      pass: 'control',
      step: p.step.index,
      stepName: p.step.name,
      expected: expectedDisplay(p),
      got: got.display,
      message:
        `${p.step.name} got, on a fresh connection that carried only its own request, exactly the answer of ${origin.step.name} (${got.display}); ` +
        `its other answers were ${p.own.map((s) => s.display).join(', ') || 'none'}: the response belongs to a request sent on another connection`,
    });
  }
  for (const p of profiles) {
    const step = p.step;
    const fields = { step: step.index, stepName: step.name };
    if (step.expectStatus !== undefined) {
      const other = p.own.find((s) => s.status !== step.expectStatus);
      if (other) {
        ctx.findings.push({
          kind: 'unexpected-status',
          severity: 'warning',
          run: ctx.run,
          pass: 'control',
          ...fields,
          expected: String(step.expectStatus),
          got: other.display,
          message: `${step.name} should answer ${step.expectStatus} on a fresh connection but got ${other.display}`,
        });
      }
    }
    if (!p.broken && p.own.length > 0 && p.own.every((s) => s.kind === 'response' && isTransient(s.status))) {
      ctx.notes.push({
        kind: 'unlearned-step',
        severity: 'info',
        run: ctx.run,
        pass: 'control',
        ...fields,
        got: p.own.map((s) => s.display).join(' | '),
        message: `${step.name} got only ${[...new Set(p.own.map((s) => s.status))].join('/')} on ${plural(p.own.length, 'fresh connection')}, so its keep-alive answers cannot be judged`,
      });
    }
    if (!p.broken && !p.key && p.own.some((s) => s.kind === 'response' && !isTransient(s.status))) {
      ctx.notes.push({
        kind: 'unstable-control',
        severity: 'info',
        run: ctx.run,
        pass: 'control',
        ...fields,
        got: p.own.map((s) => s.display).join(' | '),
        message: `${step.name} answered differently on fresh connections, so its answer cannot prove a shift`,
      });
    }
  }
  const classes = distinctClasses(profiles.filter((p) => !p.broken));
  if (classes < 2) {
    ctx.findings.push({
      kind: 'weak-sequence',
      severity: 'warning',
      run: ctx.run,
      pass: 'control',
      message: `the steps' answers cannot be told apart (${plural(classes, 'distinct answer')}); a shifted answer would look right — check the health path or give a sequence`,
    });
  }
}

interface Entry {
  readonly index: number;
  readonly a: StepAttempt;
}

/**
 * Judges the shifted, mismatched and failed answers of each pass:
 * - two or more answers that belong to requests the same distance away are a consistent shift
 *   (`shifted-responses`, desync);
 * - an answer that is exactly another, different request's answer is desync evidence on its own
 *   (`foreign-answer`): it cannot come from this request, wherever the other one was sent;
 * - a lone answer that only looks like another step's (status and media type), or an answer no
 *   step got on a fresh connection, is suspicious but not proof (inconclusive).
 * The long pass repeats each step many times, so what it found is told once per step and kind.
 */
function judgeShifts(ctx: RunContext, profiles: readonly StepProfile[], passes: readonly PassName[]): void {
  const expectedOf = (index: number): string => {
    const p = profiles[index];
    return p ? expectedDisplay(p) : 'nothing';
  };
  const nameOf = (index: number): string => profiles[index]?.step.name ?? String(index);
  const at = (e: Entry): string => (e.a.position !== undefined ? ` (request ${e.a.position} on its connection)` : '');
  for (const pass of passes) {
    const entries: Entry[] = ctx.attempts.flatMap((list, index) => list.filter((a) => a.pass === pass).map((a) => ({ index, a })));
    const byOffset = new Map<number, Entry[]>();
    for (const e of entries) {
      for (const d of e.a.shiftOffsets ?? []) byOffset.set(d, [...(byOffset.get(d) ?? []), e]);
    }
    const explained = new Set<StepAttempt>();
    for (const [offset, group] of [...byOffset.entries()].sort((x, y) => y[1].length - x[1].length)) {
      const fresh = group.filter((e) => !explained.has(e.a));
      if (group.length < 2 || fresh.length === 0) continue;
      for (const e of group) explained.add(e.a);
      // The long pass's evidence starts at the earliest request on the connection.
      const first = [...group].sort((x, y) => (x.a.position ?? 0) - (y.a.position ?? 0))[0];
      const names = [...new Set(group.map((e) => nameOf(e.index)))].join(', ');
      const direction = offset > 0 ? `sent ${plural(offset, 'request')} before it` : `sent ${plural(-offset, 'request')} after it`;
      ctx.findings.push({
        kind: 'shifted-responses',
        severity: 'desync',
        run: ctx.run,
        pass,
        step: first.index,
        stepName: nameOf(first.index),
        expected: expectedOf(first.index),
        got: first.a.got,
        shiftOffset: offset,
        ...(first.a.position !== undefined ? { position: first.a.position } : {}),
        message:
          `${plural(group.length, pass === 'long' ? 'answer' : 'step')} (${names}) each got the answer to the request ${direction}` +
          `${first.a.position !== undefined ? `, from request ${first.a.position} on its connection` : ''}: responses on the connection are out of step by ${offset}`,
      });
    }

    // The rest, told once per step and kind (the long pass sends each step many times).
    const told = new Map<string, { entry: Entry; count: number }>();
    const tell = (kind: string, e: Entry): void => {
      const key = `${kind}:${e.index}`;
      const seen = told.get(key);
      if (seen) seen.count += 1;
      else told.set(key, { entry: e, count: 1 });
    };
    for (const e of entries) {
      if (e.a.match === 'shifted' && !explained.has(e.a)) tell(e.a.exact ? 'foreign-answer' : 'shift-suspected', e);
      else if (e.a.match === 'mismatch') tell('mismatch', e);
      else if (e.a.match === 'unjudged') tell('unjudged', e);
      else if (e.a.match === 'server-error') tell('server-error', e);
      else if (e.a.match === 'failed' && e.a.got.startsWith('no response')) tell('no-response', e);
    }
    for (const [key, { entry: e, count }] of told) {
      const kind = key.slice(0, key.indexOf(':'));
      const name = nameOf(e.index);
      const times = count > 1 ? ` (${count} times in this pass; first shown)` : '';
      const base = {
        run: ctx.run,
        pass,
        step: e.index,
        stepName: name,
        expected: expectedOf(e.index),
        got: e.a.got,
        ...(e.a.position !== undefined ? { position: e.a.position } : {}),
      };
      switch (kind) {
        case 'foreign-answer': {
          const origin = profiles.find((p) => p.key?.level === 'fine' && p.key.value === e.a.got && !sameRequest(p.step, profiles[e.index].step));
          ctx.findings.push({
            ...base,
            kind: 'foreign-answer',
            severity: 'desync',
            ...(e.a.shiftOffsets?.length === 1 ? { shiftOffset: e.a.shiftOffsets[0] } : {}),
            message: `${name}${at(e)} got exactly the answer of ${origin?.step.name ?? 'another step'} (${e.a.got})${times}: the response belongs to another request${e.a.shiftOffsets ? '' : ', one not sent just before it on this connection'}`,
          });
          break;
        }
        case 'shift-suspected':
          ctx.findings.push({
            ...base,
            kind: 'shift-suspected',
            severity: 'warning',
            ...(e.a.shiftOffsets?.length === 1 ? { shiftOffset: e.a.shiftOffsets[0] } : {}),
            message: `${name}${at(e)} got another step's answer (${e.a.got})${count > 1 ? times : ' once'}, with no consistent shift`,
          });
          break;
        case 'mismatch':
          ctx.findings.push({ ...base, kind: 'mismatch', severity: 'warning', message: `${name}${at(e)} got ${e.a.got}${times}, which it never got on a fresh connection` });
          break;
        case 'unjudged':
          ctx.notes.push({ ...base, kind: 'unlearned-step', severity: 'info', message: `${name} got ${e.a.got}${times}; it never got a real answer on a fresh connection, so this cannot be judged` });
          break;
        case 'server-error':
          ctx.notes.push({ ...base, kind: 'server-error', severity: 'info', message: `${name}${at(e)} got ${e.a.got}${times}: a server error, timeout or rate limit, not another request's answer` });
          break;
        case 'no-response':
          ctx.notes.push({ ...base, kind: 'no-response', severity: 'info', message: `${name}${at(e)}: the server closed the connection without answering${times}` });
          break;
      }
    }
  }
}

function stepReports(ctx: RunContext, profiles: readonly StepProfile[], foreign: readonly ForeignSample[]): StepReport[] {
  return ctx.steps.map((step) => {
    const p = profiles[step.index];
    const crossed = new Set(foreign.filter((f) => f.step === step.index).map((f) => f.sample));
    const order = (a: StepAttempt): number => PASS_ORDER.indexOf(a.pass);
    return {
      index: step.index,
      name: step.name,
      method: step.method,
      path: `${ctx.target.basePath}${step.path}`,
      bodyBytes: step.bodyBytes,
      expected: p ? expectedDisplay(p) : 'not sent',
      control: p ? p.samples.map((s, i) => (crossed.has(i) ? `${s.display} (another request's answer)` : s.display)) : [],
      distinct: p ? isDistinct(p, profiles) : false,
      // Passes run at once, so attempts arrive interleaved: show them in pass order.
      attempts: [...(ctx.attempts[step.index] ?? [])].sort((a, b) => order(a) - order(b)),
    };
  });
}

function skippedRun(run: number, total: number): RunReport {
  const finding: ProbeFinding = {
    kind: 'deadline',
    severity: 'warning',
    run,
    pass: 'control',
    message: `run ${run} of ${total} skipped: the probe's time budget ran out`,
  };
  return {
    run,
    verdict: 'inconclusive',
    findings: [finding],
    notes: [],
    steps: [],
    durationMs: 0,
    reusedRequests: 0,
    maxRequestsPerConnection: 0,
    unsolicitedBytes: 0,
    shiftedSteps: 0,
    comparedAnswers: 0,
    mismatchedAnswers: 0,
    health: { requests: 0, errors4xx: 0, errors5xx: 0 },
  };
}

function summarize(verdict: ProbeVerdict, runs: ProbeReport['runs'], findings: readonly ProbeFinding[], deciding: RunReport, durationMs: number): string {
  const runsText = runs.total > 1 ? ` in ${runs[verdict]}/${runs.total} runs` : '';
  const seconds = `${(durationMs / 1000).toFixed(1)} s`;
  if (verdict === 'ok') {
    const steps = plural(deciding.steps.length, 'step');
    if (deciding.reusedRequests === 0) {
      return `ok${runsText}: the server never reused a connection (no keep-alive), so no answer could be shifted; ${steps} checked, ${seconds}`;
    }
    return (
      `ok${runsText}: ${steps} answered in order on keep-alive connections (${plural(deciding.reusedRequests, 'request')} on reused connections, ` +
      `up to ${deciding.maxRequestsPerConnection} on one), no unsolicited bytes, ${seconds}`
    );
  }
  const severity = verdict === 'desync' ? 'desync' : 'warning';
  const relevant = findings.filter((f) => f.severity === severity);
  const first = relevant[0];
  const more = relevant.length > 1 ? ` (+${relevant.length - 1} more)` : '';
  return `${verdict}${runsText}: ${first ? `[${first.pass}] ${first.message}` : 'no details'}${more}, ${seconds}`;
}
