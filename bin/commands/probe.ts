/**
 * `cutover probe <base-url>`: runs the Keep-Alive desync probe against any HTTP/1.1 endpoint and
 * prints what each step got, the findings and the verdict.
 *
 * Exit codes: 0 ok, 1 desync, 2 usage error, 3 inconclusive or unreachable.
 */
import type { Command } from 'commander';
import pc from 'picocolors';
import {
  checkTargetHeaders,
  loadSequenceFile,
  parseConnectTo,
  PROBE_DEFAULTS,
  PROBE_OPTION_RANGES,
  ProbeUsageError,
  runProbe,
  type ProbeFinding,
  type ProbeOptions,
  type ProbeReport,
  type PassName,
  type StepAttempt,
} from '../../lambda/probe';

/** Exit codes of `cutover probe`. */
export const PROBE_EXIT_CODES = {
  ok: 0,
  desync: 1,
  usage: 2,
  inconclusive: 3,
} as const;

/** Raw option values as commander hands them over (numbers still strings, validated here). */
export interface ProbeCommandOptions {
  readonly path?: string;
  readonly runs?: string;
  readonly timeoutMs?: string;
  readonly idleMs?: string;
  readonly maxDurationMs?: string;
  readonly longPassRequests?: string;
  readonly longPassMaxMs?: string;
  readonly largeBodyBytes?: string;
  readonly sequence?: string;
  readonly pipelined?: boolean;
  readonly insecure?: boolean;
  readonly servername?: string;
  /** `host[:port]` to connect to instead of the URL's host (`ProbeOptions.connectTo`). */
  readonly connectTo?: string;
  /** `Name: value` headers every request carries, one per `--header` (`ProbeOptions.headers`). */
  readonly header?: readonly string[];
  readonly json?: boolean;
}

/** Where the command writes; tests pass their own. */
export interface ProbeCommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Colour the human output. @default - when stdout supports it (picocolors' detection) */
  readonly color?: boolean;
}

const defaultIo: ProbeCommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Adds `probe` to a commander program. The action sets `process.exitCode` (see PROBE_EXIT_CODES). */
export function registerProbeCommand(program: Command): void {
  program
    .command('probe')
    .description('check that responses on a Keep-Alive connection answer the right requests (exit 0 ok, 1 desync, 2 usage error, 3 inconclusive)')
    .argument('<base-url>', 'http:// or https:// URL; its path prefixes every step path')
    .option('--path <path>', 'health path of the default sequence', '/')
    .option('--runs <n>', 'repeat the probe n times (to reach every backend behind a load balancer)', '1')
    .option('--timeout-ms <n>', 'bound on connecting and on each response', '5000')
    .option('--idle-ms <n>', 'idle watch after each response (doubled after errors)', '250')
    .option('--max-duration-ms <n>', 'bound on the whole probe', '60000')
    .option(
      '--long-pass-requests <n>',
      `requests sent back to back on one kept-alive connection in the long pass, to catch a bug that starts deep in a connection (${rangeText('longPassRequests')}; 0 turns the long pass off)`,
      String(PROBE_DEFAULTS.longPassRequests),
    )
    .option(
      '--long-pass-max-ms <ms>',
      `no long-pass request is sent after this long; raise it with --long-pass-requests on a slow or distant server (${rangeText('longPassMaxMs')})`,
      String(PROBE_DEFAULTS.longPassMaxMs),
    )
    .option('--large-body-bytes <n>', "size of the oversized POST: just above the server's body limit", String(1024 * 1024 + 1))
    .option('--sequence <file>', 'JSON file with your own steps (method, path, headers, bodyBytes, expectStatus)')
    .option('--pipelined', 'also send the safe steps pipelined in one write')
    .option('--insecure', 'do not verify the TLS certificate')
    .option('--servername <name>', 'TLS server name (SNI) to send and verify')
    .option(
      '--connect-to <host[:port]>',
      "connect to this host (IPv6 in brackets) instead of the URL's, still sending the URL's host as Host and by SNI and checking the certificate against it (probe one load balancer of several)",
    )
    .option('--header <name:value>', 'extra header on every request, e.g. "X-Cutover-Probe-Side: new" (repeatable)', collect, [] as string[])
    .option('--json', 'print one JSON report on stdout instead of the human output')
    .action(async (baseUrl: string, options: ProbeCommandOptions) => {
      process.exitCode = await probeCommand(baseUrl, options);
    });
}

/** Runs the command and returns its exit code. Never calls process.exit. */
export async function probeCommand(baseUrl: string, options: ProbeCommandOptions, io: ProbeCommandIo = defaultIo): Promise<number> {
  let probeOptions: ProbeOptions;
  try {
    probeOptions = {
      baseUrl,
      healthPath: options.path ?? '/',
      ...given({
        runs: integer('--runs', options.runs),
        timeoutMs: integer('--timeout-ms', options.timeoutMs),
        idleMs: integer('--idle-ms', options.idleMs),
        maxDurationMs: integer('--max-duration-ms', options.maxDurationMs),
        longPassRequests: inRange('--long-pass-requests', options.longPassRequests, 'longPassRequests'),
        longPassMaxMs: inRange('--long-pass-max-ms', options.longPassMaxMs, 'longPassMaxMs'),
        largeBodyBytes: integer('--large-body-bytes', options.largeBodyBytes),
      }),
      pipelined: options.pipelined ?? false,
      rejectUnauthorized: !options.insecure,
      ...(options.servername !== undefined ? { servername: options.servername } : {}),
      ...(options.connectTo !== undefined ? { connectTo: connectTo(options.connectTo) } : {}),
      ...(options.header !== undefined && options.header.length > 0 ? { headers: parseHeaders(options.header) } : {}),
      ...(options.sequence !== undefined ? { sequence: loadSequenceFile(options.sequence) } : {}),
      ...(options.json ? {} : { onProgress: (line: string) => io.stderr(`${pc.dim(`… ${line}`)}\n`) }),
    };
    const report = await runProbe(probeOptions);
    if (options.json) {
      io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      io.stdout(formatReport(report, io.color ?? pc.isColorSupported));
    }
    return PROBE_EXIT_CODES[report.verdict];
  } catch (error) {
    if (error instanceof ProbeUsageError) {
      io.stderr(`cutover probe: ${error.message}\n`);
      return PROBE_EXIT_CODES.usage;
    }
    throw error;
  }
}

/** Commander's collector for a repeatable option. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `--header "Name: value"` flags as the engine's headers (which validates names and values). A
 * name given twice is a usage error rather than a silent choice.
 */
function parseHeaders(values: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw new ProbeUsageError(`--header must be "Name: value", got ${JSON.stringify(value)}`);
    const name = value.slice(0, colon).trim();
    if (Object.keys(headers).some((n) => n.toLowerCase() === name.toLowerCase())) {
      throw new ProbeUsageError(`--header ${JSON.stringify(name)} is given twice`);
    }
    headers[name] = value.slice(colon + 1).trim();
  }
  // The engine checks them again; here the error names the flag.
  checkTargetHeaders(headers, '--header');
  return headers;
}

/** `--connect-to`, checked with the engine's rules so that the error names the flag. */
function connectTo(value: string): string {
  parseConnectTo(value, '--connect-to');
  return value;
}

/** Parses a decimal integer option; range checks are the engine's (its errors name the option too). */
/** The entries whose value is defined: an option left out takes the engine's default. */
function given<T extends Record<string, number | undefined>>(values: T): { [K in keyof T]?: number } {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: number };
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,10}$/.test(value.trim())) throw new ProbeUsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value.trim());
}

/** A whole-number option checked against the engine's range, with an error that names the flag. */
function inRange(flag: string, value: string | undefined, option: keyof typeof PROBE_OPTION_RANGES): number | undefined {
  const n = integer(flag, value);
  if (n === undefined) return undefined;
  const [min, max] = PROBE_OPTION_RANGES[option];
  if (n < min || n > max) throw new ProbeUsageError(`${flag} must be a whole number from ${rangeText(option)}, got ${JSON.stringify(value)}`);
  return n;
}

function rangeText(option: keyof typeof PROBE_OPTION_RANGES): string {
  const [min, max] = PROBE_OPTION_RANGES[option];
  return `${min} to ${max}`;
}

const PASS_LABELS: ReadonlyArray<readonly [PassName, string]> = [
  ['sequential', 'seq'],
  ['immediate', 'imm'],
  ['paused', 'pause'],
  ['pipelined', 'pipe'],
];

/** The human report: settings, steps with what each pass got, findings, notes, verdict. */
export function formatReport(report: ProbeReport, color: boolean): string {
  const c = pc.createColors(color);
  const s = report.settings;
  const lines: string[] = [];
  lines.push(
    c.bold(`Keep-Alive probe of ${s.baseUrl}${s.connectTo ? ` via ${s.connectTo}` : ''}`),
    c.dim(
      `${s.sequence} sequence, ${s.runs} run${s.runs === 1 ? '' : 's'}, timeout ${s.timeoutMs} ms, idle watch ${s.idleMs} ms, ` +
        `oversized body ${s.largeBodyBytes} B, ` +
        `${s.longPassRequests > 0 ? `long pass ${s.longPassRequests} requests within ${s.longPassMaxMs} ms` : 'no long pass'}${s.pipelined ? ', pipelined pass' : ''}` +
        `${s.headers && s.headers.length > 0 ? `, extra headers ${s.headers.join(', ')}` : ''}`,
    ),
    '',
  );

  const passes = PASS_LABELS.filter(([pass]) => report.steps.some((st) => st.attempts.some((a) => a.pass === pass)));
  const request = (st: ProbeReport['steps'][number]): string => `${st.method} ${st.path}${st.bodyBytes > 0 ? ` (${st.bodyBytes} B)` : ''}`;
  const nameWidth = Math.max(4, ...report.steps.map((st) => st.name.length));
  const reqWidth = Math.min(40, Math.max(7, ...report.steps.map((st) => request(st).length)));
  const expWidth = Math.max(8, ...report.steps.map((st) => st.expected.length));
  lines.push(
    c.bold(
      `  ${'#'.padEnd(3)}${'step'.padEnd(nameWidth + 2)}${'request'.padEnd(reqWidth + 2)}${'expected (fresh connections)'.padEnd(expWidth + 2)}` +
        passes.map(([, label]) => label.padEnd(7)).join(''),
    ),
  );
  const details: string[] = [];
  for (const st of report.steps) {
    const cells = passes.map(([pass]) => {
      const attempt = st.attempts.find((a) => a.pass === pass);
      const text = cell(attempt);
      const padded = text.padEnd(7);
      return !attempt ? c.dim(padded) : attempt.match === 'aligned' ? c.green(padded) : attempt.match === 'shifted' ? c.red(padded) : c.yellow(padded);
    });
    const req = request(st);
    lines.push(
      `  ${String(st.index).padEnd(3)}${st.name.padEnd(nameWidth + 2)}${(req.length > reqWidth ? `${req.slice(0, reqWidth - 1)}…` : req).padEnd(reqWidth + 2)}` +
        `${st.expected.padEnd(expWidth + 2)}${cells.join('')}`,
    );
    for (const a of st.attempts) {
      if (a.match !== 'aligned') details.push(`  ${st.name} [${a.pass}]: got ${a.got} — ${describeMatch(a)}${a.reused ? ' on a reused connection' : ''}`);
    }
  }
  lines.push(c.dim('  ok = the answer this step gets on a fresh connection; >n = another step\'s answer, shifted by n; 5xx/408 = server error or timeout; ? = unknown answer; ~ = not judged; x = failed'));
  if (details.length > 0) lines.push('', c.bold('Answers that differed'), ...details);

  if (report.findings.length > 0) {
    lines.push('', c.bold(`Findings (${report.findings.length})`));
    for (const f of report.findings) lines.push(...formatFinding(f, report.runs.total > 1, c));
  }
  if (report.notes.length > 0) {
    lines.push('', c.bold(`Notes (${report.notes.length})`));
    for (const n of report.notes) lines.push(`  - ${report.runs.total > 1 ? `run ${n.run} ` : ''}[${n.pass}] ${n.message}`);
  }
  lines.push('');
  if (report.runs.total > 1) {
    lines.push(`Runs: ${report.runs.total} (ok ${report.runs.ok}, desync ${report.runs.desync}, inconclusive ${report.runs.inconclusive})`);
  }
  // The synthetic health: a 5XX is a server failure (the probe asks for none), never a desync; the
  // 4XX are mostly the probe's own error requests.
  const { requests, errors4xx, errors5xx } = report.health;
  lines.push(
    `Answers: ${requests}, of which 4XX: ${errors4xx} (mostly the probe's deliberate errors), ` +
      `5XX: ${errors5xx}${requests > 0 ? ` (${((100 * errors5xx) / requests).toFixed(1)} %)` : ''}`,
  );
  const label = report.verdict.toUpperCase();
  const verdict = report.verdict === 'ok' ? c.green(label) : report.verdict === 'desync' ? c.red(label) : c.yellow(label);
  lines.push(`${c.bold('Verdict:')} ${c.bold(verdict)} — ${report.summary}`, '');
  return lines.join('\n');
}

function cell(attempt: StepAttempt | undefined): string {
  if (!attempt) return '-';
  switch (attempt.match) {
    case 'aligned':
      return 'ok';
    case 'shifted':
      return attempt.shiftOffsets && attempt.shiftOffsets.length > 0 ? `>${attempt.shiftOffsets.join('/')}` : '>?';
    case 'server-error':
      return attempt.got.split(' ')[0] ?? '?';
    case 'mismatch':
      return '?';
    case 'unjudged':
      return '~';
    case 'failed':
      return 'x';
  }
}

function describeMatch(a: StepAttempt): string {
  switch (a.match) {
    case 'aligned':
      return 'as expected';
    case 'shifted':
      return `another step's answer (shift ${a.shiftOffsets?.join(' or ') ?? '?'})`;
    case 'server-error':
      return 'a server error or timeout, not a shift';
    case 'mismatch':
      return 'an answer it never got on a fresh connection';
    case 'unjudged':
      return 'cannot be judged: the step never got a real answer on a fresh connection';
    case 'failed':
      return 'no usable answer';
  }
}

function formatFinding(f: ProbeFinding, showRun: boolean, c: ReturnType<typeof pc.createColors>): string[] {
  const tag = f.severity === 'desync' ? c.red('DESYNC ') : f.severity === 'warning' ? c.yellow('WARNING') : c.dim('NOTE   ');
  const out = [`  ${tag} ${showRun ? `run ${f.run} ` : ''}[${f.pass}] ${f.kind}: ${f.message}`];
  if (f.expected !== undefined || f.got !== undefined) out.push(`          expected ${f.expected ?? '-'}, got ${f.got ?? '-'}`);
  if (f.shiftOffset !== undefined) out.push(`          shift: ${f.shiftOffset}`);
  if (f.unsolicited !== undefined) out.push(`          bytes${f.unsolicitedBytes !== undefined ? ` (${f.unsolicitedBytes})` : ''}: "${f.unsolicited}"`);
  return out;
}
