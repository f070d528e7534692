/**
 * `runProbe`: validates options, runs the passes `runs` times, judges each run and aggregates.
 */
import { nowMs } from './connection';
import { ProbeUsageError } from './errors';
import { DEFAULT_LIMITS } from './http1';
import { controlPass, keepAlivePass, pipelinedPass, RunAborted, type ControlResult, type KeepAliveMode, type RunContext } from './passes';
import { defaultSequence, MAX_BODY_BYTES, parseTarget, stepsFromSpecs, type ProbeStep } from './sequence';
import { buildProfile, distinctClasses, expectedDisplay, isDistinct, isTransient, newToken, type StepProfile } from './signature';
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
  maxDurationMs: 60_000,
  largeBodyBytes: 1024 * 1024 + 1,
  controlRepeats: 2,
} as const;

const KEEP_ALIVE_MODES: readonly KeepAliveMode[] = ['sequential', 'immediate', 'paused'];

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
      counters: { reusedRequests: 0, unsolicitedBytes: 0 },
    };
    reports.push(await runOnce(ctx, settings.pipelined));
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
    summary: summarize(verdict, runs, findings, deciding, durationMs),
  };
}

/** Validates options and fills in defaults. Throws `ProbeUsageError` naming the bad value. */
export function resolveOptions(options: ProbeOptions): { settings: ProbeSettings; target: ReturnType<typeof parseTarget>; steps: ProbeStep[] } {
  if (typeof options?.baseUrl !== 'string') throw new ProbeUsageError(`baseUrl must be a string, got ${JSON.stringify(options?.baseUrl)}`);
  const target = parseTarget(options.baseUrl, {
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(options.servername !== undefined ? { servername: options.servername } : {}),
  });
  const runs = integer('runs', options.runs, PROBE_DEFAULTS.runs, 1, 100);
  const timeoutMs = integer('timeoutMs', options.timeoutMs, PROBE_DEFAULTS.timeoutMs, 10, 120_000);
  const idleMs = integer('idleMs', options.idleMs, PROBE_DEFAULTS.idleMs, 1, 60_000);
  const maxDurationMs = integer('maxDurationMs', options.maxDurationMs, PROBE_DEFAULTS.maxDurationMs, 100, 3_600_000);
  const largeBodyBytes = integer('largeBodyBytes', options.largeBodyBytes, PROBE_DEFAULTS.largeBodyBytes, 1, MAX_BODY_BYTES);
  const controlRepeats = integer('controlRepeats', options.controlRepeats, PROBE_DEFAULTS.controlRepeats, 1, 10);
  const steps = options.sequence ? stepsFromSpecs(options.sequence) : defaultSequence(options.healthPath ?? PROBE_DEFAULTS.healthPath, largeBodyBytes);
  return {
    target,
    steps,
    settings: {
      baseUrl: options.baseUrl,
      runs,
      timeoutMs,
      idleMs,
      maxDurationMs,
      largeBodyBytes,
      controlRepeats,
      pipelined: options.pipelined ?? false,
      sequence: options.sequence ? 'custom' : 'default',
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

async function runOnce(ctx: RunContext, pipelined: boolean): Promise<RunReport> {
  const start = nowMs();
  const control: ControlResult[] = [];
  let profiles: StepProfile[] = [];
  try {
    ctx.progress(`control pass: ${plural(ctx.steps.length, 'step')}, each on fresh connections`);
    await controlPass(ctx, control);
    profiles = control.map((c) => buildProfile(c.step, c.samples, c.broken));
    checkControl(ctx, profiles);
    for (const mode of KEEP_ALIVE_MODES) {
      ctx.progress(`${mode} keep-alive pass`);
      await keepAlivePass(ctx, mode, profiles);
    }
    if (pipelined) {
      ctx.progress('pipelined pass');
      await pipelinedPass(ctx, profiles);
    }
    judgeShifts(ctx, profiles, pipelined ? [...KEEP_ALIVE_MODES, 'pipelined'] : KEEP_ALIVE_MODES);
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
    profiles = control.map((c) => buildProfile(c.step, c.samples, c.broken));
  }

  sortFindings(ctx.findings);
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
    steps: stepReports(ctx, profiles),
    durationMs: Math.round(nowMs() - start),
    reusedRequests: ctx.counters.reusedRequests,
    unsolicitedBytes: ctx.counters.unsolicitedBytes,
    shiftedSteps: attempts.filter((a) => a.match === 'shifted').length,
    comparedAnswers: attempts.length,
    mismatchedAnswers: attempts.filter((a) => a.match !== 'aligned').length,
  };
}

const PASS_ORDER: readonly PassName[] = ['control', 'sequential', 'immediate', 'paused', 'pipelined'];
const KIND_ORDER: readonly string[] = ['shifted-responses', 'unsolicited-bytes', 'garbled-response'];

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

/** What the control pass says about the sequence itself. */
function checkControl(ctx: RunContext, profiles: readonly StepProfile[]): void {
  for (const p of profiles) {
    const step = p.step;
    const fields = { step: step.index, stepName: step.name };
    if (step.expectStatus !== undefined) {
      const other = p.samples.find((s) => s.status !== step.expectStatus);
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
    if (!p.broken && p.samples.length > 0 && p.samples.every((s) => s.kind === 'response' && isTransient(s.status))) {
      ctx.notes.push({
        kind: 'unlearned-step',
        severity: 'info',
        run: ctx.run,
        pass: 'control',
        ...fields,
        got: p.samples.map((s) => s.display).join(' | '),
        message: `${step.name} got only ${[...new Set(p.samples.map((s) => s.status))].join('/')} on ${plural(p.samples.length, 'fresh connection')}, so its keep-alive answers cannot be judged`,
      });
    }
    if (!p.broken && !p.key && p.samples.some((s) => s.kind === 'response' && !isTransient(s.status))) {
      ctx.notes.push({
        kind: 'unstable-control',
        severity: 'info',
        run: ctx.run,
        pass: 'control',
        ...fields,
        got: p.samples.map((s) => s.display).join(' | '),
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

/**
 * Judges the shifted, mismatched and failed answers of each pass. Two or more steps whose answers
 * belong to requests the same distance away are a consistent shift: a desync. A lone shifted or
 * mismatched answer is suspicious but not proof (inconclusive).
 */
function judgeShifts(ctx: RunContext, profiles: readonly StepProfile[], passes: readonly PassName[]): void {
  const expectedOf = (index: number): string => {
    const p = profiles[index];
    return p ? expectedDisplay(p) : 'nothing';
  };
  for (const pass of passes) {
    const entries = ctx.attempts.flatMap((list, index) => list.filter((a) => a.pass === pass).map((a) => ({ index, a })));
    const byOffset = new Map<number, Array<{ index: number; a: StepAttempt }>>();
    for (const e of entries) {
      for (const d of e.a.shiftOffsets ?? []) byOffset.set(d, [...(byOffset.get(d) ?? []), e]);
    }
    const explained = new Set<StepAttempt>();
    for (const [offset, group] of [...byOffset.entries()].sort((x, y) => y[1].length - x[1].length)) {
      const fresh = group.filter((e) => !explained.has(e.a));
      if (group.length < 2 || fresh.length === 0) continue;
      for (const e of group) explained.add(e.a);
      const first = group[0];
      const names = group.map((e) => profiles[e.index]?.step.name ?? String(e.index)).join(', ');
      const direction = offset > 0 ? `sent ${plural(offset, 'request')} before it` : `sent ${plural(-offset, 'request')} after it`;
      ctx.findings.push({
        kind: 'shifted-responses',
        severity: 'desync',
        run: ctx.run,
        pass,
        step: first.index,
        stepName: profiles[first.index]?.step.name,
        expected: expectedOf(first.index),
        got: first.a.got,
        shiftOffset: offset,
        message: `${plural(group.length, 'step')} (${names}) each got the answer to the request ${direction}: responses on the connection are out of step by ${offset}`,
      });
    }
    for (const e of entries) {
      const name = profiles[e.index]?.step.name ?? String(e.index);
      const base = { run: ctx.run, pass, step: e.index, stepName: name, expected: expectedOf(e.index), got: e.a.got };
      if (e.a.match === 'shifted' && !explained.has(e.a)) {
        ctx.findings.push({
          ...base,
          kind: 'shift-suspected',
          severity: 'warning',
          ...(e.a.shiftOffsets?.length === 1 ? { shiftOffset: e.a.shiftOffsets[0] } : {}),
          message: `${name} got another step's answer (${e.a.got}) once, with no consistent shift`,
        });
      } else if (e.a.match === 'mismatch') {
        ctx.findings.push({ ...base, kind: 'mismatch', severity: 'warning', message: `${name} got ${e.a.got}, which it never got on a fresh connection` });
      } else if (e.a.match === 'unjudged') {
        ctx.notes.push({ ...base, kind: 'unlearned-step', severity: 'info', message: `${name} got ${e.a.got}; it never got a real answer on a fresh connection, so this cannot be judged` });
      } else if (e.a.match === 'server-error') {
        ctx.notes.push({ ...base, kind: 'server-error', severity: 'info', message: `${name} got ${e.a.got}: a server error or timeout, not another request's answer` });
      } else if (e.a.match === 'failed' && e.a.got.startsWith('no response')) {
        ctx.notes.push({ ...base, kind: 'no-response', severity: 'info', message: `${name}: the server closed the connection without answering` });
      }
    }
  }
}

function stepReports(ctx: RunContext, profiles: readonly StepProfile[]): StepReport[] {
  return ctx.steps.map((step) => {
    const p = profiles[step.index];
    return {
      index: step.index,
      name: step.name,
      method: step.method,
      path: `${ctx.target.basePath}${step.path}`,
      bodyBytes: step.bodyBytes,
      expected: p ? expectedDisplay(p) : 'not sent',
      control: p ? p.samples.map((s) => s.display) : [],
      distinct: p ? isDistinct(p, profiles) : false,
      attempts: ctx.attempts[step.index] ?? [],
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
    unsolicitedBytes: 0,
    shiftedSteps: 0,
    comparedAnswers: 0,
    mismatchedAnswers: 0,
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
    return `ok${runsText}: ${steps} answered in order on keep-alive connections (${plural(deciding.reusedRequests, 'request')} on reused connections), no unsolicited bytes, ${seconds}`;
  }
  const severity = verdict === 'desync' ? 'desync' : 'warning';
  const relevant = findings.filter((f) => f.severity === severity);
  const first = relevant[0];
  const more = relevant.length > 1 ? ` (+${relevant.length - 1} more)` : '';
  return `${verdict}${runsText}: ${first ? `[${first.pass}] ${first.message}` : 'no details'}${more}, ${seconds}`;
}
