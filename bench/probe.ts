/**
 * Probe benchmark: `npm run bench:probe` (add `-- --quick` for a 10× shorter smoke run).
 *
 * For every server behaviour of the probe tests it prints:
 * - bugs: the detection rate (desync verdicts) over ≥ 200 runs;
 * - healthy and flaky servers: the false-desync rate over ≥ 1,000 runs (target 0);
 * - hostile servers: that every run ends, inconclusive, within the bounds;
 * - median and p95 probe time, and the probe time at default settings (target ≤ 5 s on loopback);
 * - side by side, what a fresh-connection health check (one GET per connection, as ALB and
 *   Route 53 do) says about the same server.
 * Then, at default settings:
 * - the detection rate of a 4XX sent twice from the 100th request on a connection (target ≥ 99 %);
 * - real servers (nginx, Apache, HAProxy in front of a loopback backend, lighttpd), each when
 *   installed: verdicts over ≥ 10 runs, false desyncs (target 0) and run time;
 * and a summary of the targets, met or not.
 *
 * The rate runs use a short idle watch so thousands of probes fit in a few minutes; the settings
 * are printed with the results.
 */
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import { PROBE_DEFAULTS, runProbe, type ProbeOptions, type ProbeReport, type ProbeVerdict } from '../lambda/probe';
import { installedRealServers, REAL_SERVER_NAMES, startRealServer, type RealServerName } from '../test/probe/real-servers';
import * as servers from '../test/probe/servers';
import { BODY_LIMIT, HEALTH_PATH, type TestServer } from '../test/probe/servers';

type Kind = 'bug' | 'healthy' | 'hostile';

interface Behaviour {
  readonly name: string;
  readonly kind: Kind;
  readonly start: () => Promise<TestServer>;
  /** Extra probe options for this behaviour. */
  readonly options?: Partial<ProbeOptions>;
}

const quick = process.argv.includes('--quick');
const scale = quick ? 0.1 : 1;
const RUNS: Record<Kind, number> = { bug: Math.round(200 * scale), healthy: Math.round(1000 * scale), hostile: Math.round(20 * scale) || 2 };
const CONCURRENCY = 16;
const TIMING_RUNS = quick ? 4 : 20;
/** Default runs spend most of their time in idle watches, so a few at once barely change their time. */
const TIMING_CONCURRENCY = 5;
const HEALTH_CHECKS = quick ? 20 : 200;
/** Default-settings runs per variant of the "4XX twice from the 100th request" target. */
const TARGET_RUNS = quick ? 20 : 200;
/** Default-settings runs per real server (N ≥ 10), and how many at once. */
const REAL_RUNS = quick ? 10 : 30;
const REAL_CONCURRENCY = 3;

/** Settings of the rate runs. */
const FAST: Partial<ProbeOptions> = { idleMs: 20, timeoutMs: 2000, largeBodyBytes: 2 * BODY_LIMIT };

const behaviours: Behaviour[] = [
  { name: 'duplicate 413, same write', kind: 'bug', start: servers.duplicateSameWriteServer },
  { name: 'duplicate 413, 5 ms later (idle)', kind: 'bug', start: () => servers.duplicateDelayedServer(5) },
  { name: 'off-by-one queue after 413', kind: 'bug', start: servers.offByOneServer },
  { name: 'early 413, body read as request', kind: 'bug', start: servers.early413Server },
  { name: 'junk bytes while idle (5 ms)', kind: 'bug', start: () => servers.idleJunkServer(5) },
  { name: '4XX twice from request 6 (same write)', kind: 'bug', start: () => servers.doubleErrorFromServer(6) },
  { name: '4XX twice from request 21 (next answer)', kind: 'bug', start: () => servers.doubleErrorFromServer(21, 'next-answer') },
  { name: '4XX twice from request 100 (same write)', kind: 'bug', start: () => servers.doubleErrorFromServer(100) },
  { name: '4XX twice from request 100 (next answer)', kind: 'bug', start: () => servers.doubleErrorFromServer(100, 'next-answer') },
  { name: "1 in 10 answers from another connection", kind: 'bug', start: () => servers.crossConnectionServer(0.1, 42) },
  { name: '400 twice (same write)', kind: 'bug', start: () => servers.double400Server() },
  { name: '401 twice (next answer)', kind: 'bug', start: () => servers.double401Server('next-answer') },
  { name: 'small POST answer twice (same write)', kind: 'bug', start: () => servers.doubleSmallPostServer() },
  { name: "node's http server", kind: 'healthy', start: servers.nodeHttpServer },
  { name: 'close after error', kind: 'healthy', start: servers.closeAfterErrorServer },
  { name: 'reject large body by closing', kind: 'healthy', start: servers.rejectLargeByClosingServer },
  { name: 'HTTP/1.0', kind: 'healthy', start: servers.http10Server },
  { name: 'idle 408 then close (10 ms)', kind: 'healthy', start: () => servers.idle408Server(10) },
  { name: 'random 503 (15%)', kind: 'healthy', start: () => servers.random503Server(0.15) },
  { name: 'slow answers (2-15 ms)', kind: 'healthy', start: () => servers.slowServer(2, 15) },
  { name: 'garbage status line', kind: 'hostile', start: servers.garbageServer, options: { timeoutMs: 300 } },
  { name: 'endless headers', kind: 'hostile', start: servers.endlessHeadersServer, options: { timeoutMs: 300 } },
  { name: 'endless chunked body', kind: 'hostile', start: servers.endlessBodyServer, options: { timeoutMs: 300 } },
  { name: 'never answers', kind: 'hostile', start: servers.silentServer, options: { timeoutMs: 300 } },
  { name: 'reset mid-response', kind: 'hostile', start: servers.resetMidResponseServer, options: { timeoutMs: 300 } },
];

/** Behaviours timed at the default settings. */
const TIMED = new Set(["node's http server", 'random 503 (15%)', 'slow answers (2-15 ms)', 'off-by-one queue after 413', '4XX twice from request 100 (next answer)']);

interface Row {
  readonly name: string;
  readonly kind: Kind;
  readonly runs: number;
  readonly verdicts: Record<ProbeVerdict, number>;
  readonly times: number[];
  readonly defaultTimes: number[];
  readonly healthCheckPass: number;
  /** Finding kinds of the runs that were not ok, with counts (why a healthy server was not ok). */
  readonly reasons: Map<string, number>;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Runs `count` tasks with at most `limit` at once. */
async function pool(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  });
  await Promise.all(workers);
}

/** One GET on a fresh connection; passes on 2xx/3xx, as an ALB or Route 53 health check does. */
function freshHealthCheck(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    // A whole-check deadline (like an ALB's health check timeout): a body that never ends must fail.
    const timer = setTimeout(() => req.destroy(), 2000);
    const finish = (healthy: boolean): void => {
      clearTimeout(timer);
      resolve(healthy);
    };
    const req = http.get(`${url}${HEALTH_PATH}`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => finish((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400));
      res.on('error', () => finish(false));
      res.on('close', () => finish(false));
    });
    req.on('error', () => finish(false));
  });
}

async function measure(b: Behaviour): Promise<Row> {
  const server = await b.start();
  try {
    const runs = RUNS[b.kind];
    const verdicts: Record<ProbeVerdict, number> = { ok: 0, desync: 0, inconclusive: 0 };
    const times: number[] = [];
    const reasons = new Map<string, number>();
    let done = 0;
    const options: ProbeOptions = { baseUrl: server.url, healthPath: HEALTH_PATH, ...FAST, ...b.options };
    await pool(runs, CONCURRENCY, async () => {
      const start = performance.now();
      const report = await runProbe(options);
      times.push(performance.now() - start);
      verdicts[report.verdict] += 1;
      if (report.verdict !== 'ok' && b.kind !== 'bug') {
        for (const kind of new Set(report.findings.map((f) => f.kind))) reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
      }
      if (report.verdict !== 'desync' && b.kind === 'bug') {
        for (const kind of new Set(report.findings.map((f) => f.kind))) reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
      }
      done += 1;
      if (done % Math.max(1, Math.round(runs / 4)) === 0) process.stderr.write(`  ${b.name}: ${done}/${runs}\n`);
    });

    const defaultTimes: number[] = [];
    if (TIMED.has(b.name)) {
      process.stderr.write(`  ${b.name}: ${TIMING_RUNS} runs at default settings\n`);
      await pool(TIMING_RUNS, TIMING_CONCURRENCY, async () => {
        const start = performance.now();
        await runProbe({ baseUrl: server.url, healthPath: HEALTH_PATH });
        defaultTimes.push(performance.now() - start);
      });
    }

    let healthCheckPass = 0;
    await pool(HEALTH_CHECKS, CONCURRENCY, async () => {
      if (await freshHealthCheck(server.url)) healthCheckPass += 1;
    });
    return { name: b.name, kind: b.kind, runs, verdicts, times, defaultTimes, healthCheckPass, reasons };
  } finally {
    await server.close();
  }
}

function pct(n: number, of: number): string {
  return of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`;
}

function ms(value: number): string {
  return Number.isNaN(value) ? '-' : `${Math.round(value)}`;
}

function table(rows: readonly Row[]): string {
  const header = ['behaviour', 'kind', 'runs', 'desync', 'inconcl.', 'ok', 'rate', 'median ms', 'p95 ms', 'default med/p95 ms', 'fresh-conn check'];
  const body = rows.map((r) => {
    const rate =
      r.kind === 'bug'
        ? `detect ${pct(r.verdicts.desync, r.runs)}`
        : r.kind === 'healthy'
          ? `false desync ${pct(r.verdicts.desync, r.runs)}`
          : `ended ${pct(r.verdicts.inconclusive, r.runs)} inconcl.`;
    const defaults = r.defaultTimes.length > 0 ? `${ms(percentile(r.defaultTimes, 50))} / ${ms(percentile(r.defaultTimes, 95))}` : '-';
    return [
      r.name,
      r.kind,
      String(r.runs),
      String(r.verdicts.desync),
      String(r.verdicts.inconclusive),
      String(r.verdicts.ok),
      rate,
      ms(percentile(r.times, 50)),
      ms(percentile(r.times, 95)),
      defaults,
      `healthy ${pct(r.healthCheckPass, HEALTH_CHECKS)}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** What a batch of default-settings runs against one server gave. */
interface DefaultRuns {
  readonly runs: number;
  readonly verdicts: Record<ProbeVerdict, number>;
  readonly times: number[];
  /** Finding kinds of the runs whose verdict was not `expect`, with counts. */
  readonly reasons: Map<string, number>;
  /** Most requests answered on one connection, over the runs. */
  readonly maxPerConnection: number;
}

async function defaultRuns(url: string, runs: number, concurrency: number, expect: ProbeVerdict, label: string): Promise<DefaultRuns> {
  const verdicts: Record<ProbeVerdict, number> = { ok: 0, desync: 0, inconclusive: 0 };
  const times: number[] = [];
  const reasons = new Map<string, number>();
  let maxPerConnection = 0;
  let done = 0;
  await pool(runs, concurrency, async () => {
    const start = performance.now();
    const report: ProbeReport = await runProbe({ baseUrl: url, healthPath: HEALTH_PATH });
    times.push(performance.now() - start);
    verdicts[report.verdict] += 1;
    maxPerConnection = Math.max(maxPerConnection, ...report.runReports.map((r) => r.maxRequestsPerConnection));
    if (report.verdict !== expect) {
      for (const kind of new Set(report.findings.map((f) => f.kind))) reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
    }
    done += 1;
    if (done % Math.max(1, Math.round(runs / 4)) === 0) process.stderr.write(`  ${label}: ${done}/${runs}\n`);
  });
  return { runs, verdicts, times, reasons, maxPerConnection };
}

function verdictCounts(r: DefaultRuns): string {
  return `ok ${r.verdicts.ok}, desync ${r.verdicts.desync}, inconclusive ${r.verdicts.inconclusive}`;
}

function reasonsText(r: DefaultRuns): string {
  return r.reasons.size === 0 ? '' : `; findings of the other runs: ${[...r.reasons].map(([k, n]) => `${k} ×${n}`).join(', ')}`;
}

/** The "4XX twice from the 100th request on a connection" target, at default settings. */
async function lateDoubleTarget(): Promise<Array<{ readonly name: string; readonly result: DefaultRuns }>> {
  const variants: Array<[string, () => Promise<TestServer>]> = [
    ['4XX twice from request 100 (same write)', () => servers.doubleErrorFromServer(100)],
    ['4XX twice from request 100 (next answer)', () => servers.doubleErrorFromServer(100, 'next-answer')],
  ];
  const out: Array<{ name: string; result: DefaultRuns }> = [];
  for (const [name, start] of variants) {
    process.stderr.write(`${name}: ${TARGET_RUNS} runs at default settings\n`);
    const server = await start();
    try {
      out.push({ name, result: await defaultRuns(server.url, TARGET_RUNS, CONCURRENCY, 'desync', name) });
    } finally {
      await server.close();
    }
  }
  return out;
}

interface RealRow {
  readonly name: RealServerName;
  /** One line: what ran, or why it was skipped. */
  readonly line: string;
  readonly result?: DefaultRuns;
}

/** Each real server that is installed: default-settings runs against its minimal configuration. */
async function realServers(): Promise<RealRow[]> {
  const rows: RealRow[] = [];
  for (const { name, binary } of installedRealServers()) {
    if (!binary) {
      const line = `${name}: not installed, skipped`;
      process.stderr.write(`${line}\n`);
      rows.push({ name, line });
      continue;
    }
    process.stderr.write(`${name} (${binary}): ${REAL_RUNS} runs at default settings\n`);
    let server;
    try {
      server = await startRealServer(name);
    } catch (error) {
      const line = `${name}: could not start (${error instanceof Error ? error.message : String(error)}), skipped`;
      process.stderr.write(`${line}\n`);
      rows.push({ name, line });
      continue;
    }
    try {
      const result = await defaultRuns(server.url, REAL_RUNS, REAL_CONCURRENCY, 'ok', name);
      rows.push({
        name,
        result,
        line:
          `${name} — ${server.version}, ${server.serves}: ${result.runs} runs: ${verdictCounts(result)}; false desyncs ${result.verdicts.desync}; ` +
          `run time median ${ms(percentile(result.times, 50))} ms, max ${ms(Math.max(...result.times))} ms; ` +
          `up to ${result.maxPerConnection} requests on one connection${reasonsText(result)}`,
      });
    } finally {
      await server.close();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const started = performance.now();
  process.stderr.write(
    `probe benchmark${quick ? ' (quick)' : ''}: ${RUNS.bug} runs per bug, ${RUNS.healthy} per healthy server, ${RUNS.hostile} per hostile one, ${CONCURRENCY} at a time\n`,
  );
  const rows: Row[] = [];
  for (const b of behaviours) {
    const t0 = performance.now();
    process.stderr.write(`${b.name} (${b.kind})\n`);
    rows.push(await measure(b));
    process.stderr.write(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const late = await lateDoubleTarget();
  const real = await realServers();

  const bugs = rows.filter((r) => r.kind === 'bug');
  const healthy = rows.filter((r) => r.kind === 'healthy');
  const falseDesync = healthy.reduce((n, r) => n + r.verdicts.desync, 0);
  const healthyRuns = healthy.reduce((n, r) => n + r.runs, 0);
  const defaultTimes = rows.flatMap((r) => r.defaultTimes);
  const maxDefault = Math.max(...defaultTimes);
  const lateRate = Math.min(...late.map((l) => l.result.verdicts.desync / l.result.runs));
  const ranReal = real.filter((r) => r.result !== undefined);
  const realFalse = ranReal.reduce((n, r) => n + (r.result?.verdicts.desync ?? 0), 0);
  const met = (ok: boolean): string => (ok ? 'met' : 'NOT MET');
  const out = [
    '',
    `Rate runs: idle watch ${FAST.idleMs} ms, timeout ${FAST.timeoutMs} ms (300 ms for hostile servers), oversized POST ${FAST.largeBodyBytes} B ` +
      `(test app limit ${BODY_LIMIT} B), ${PROBE_DEFAULTS.controlRepeats} control answers per step, long pass ${PROBE_DEFAULTS.longPassRequests} requests, no pipelined pass.`,
    `Default runs: idle watch ${PROBE_DEFAULTS.idleMs} ms, timeout ${PROBE_DEFAULTS.timeoutMs} ms, oversized POST ${PROBE_DEFAULTS.largeBodyBytes} B, ` +
      `long pass ${PROBE_DEFAULTS.longPassRequests} requests; timed: ${TIMING_RUNS} runs, ${TIMING_CONCURRENCY} at a time.`,
    `Fresh-connection check: ${HEALTH_CHECKS} × GET ${HEALTH_PATH} on a new connection each, healthy on 2xx/3xx.`,
    '',
    table(rows),
    '',
    ...rows
      .filter((r) => r.reasons.size > 0)
      .map((r) => `Findings of the runs not ${r.kind === 'bug' ? 'desync' : 'ok'} on "${r.name}" (${r.kind}): ${[...r.reasons].map(([k, n]) => `${k} ×${n}`).join(', ')}.`),
    `Detection (bugs): min ${Math.min(...bugs.map((r) => (100 * r.verdicts.desync) / r.runs)).toFixed(1)}% over ${bugs.length} behaviours.`,
    `False desync (healthy and flaky): ${falseDesync} of ${healthyRuns} runs (${pct(falseDesync, healthyRuns)}; target 0).`,
    `Default-settings probe time: median ${ms(percentile(defaultTimes, 50))} ms, p95 ${ms(percentile(defaultTimes, 95))} ms, max ${ms(maxDefault)} ms (target ≤ 5000 ms).`,
    '',
    `Late double 4XX at default settings (${CONCURRENCY} runs at a time):`,
    ...late.map(
      (l) =>
        `  ${l.name}: found in ${l.result.verdicts.desync}/${l.result.runs} runs (${pct(l.result.verdicts.desync, l.result.runs)}); ` +
        `run time median ${ms(percentile(l.result.times, 50))} ms, max ${ms(Math.max(...l.result.times))} ms${reasonsText(l.result)}`,
    ),
    '',
    `Real servers at default settings (health path ${HEALTH_PATH}, ${REAL_RUNS} runs each, ${REAL_CONCURRENCY} at a time):`,
    ...real.map((r) => `  ${r.line}`),
    '',
    'Targets:',
    `  4XX twice from the 100th request on a connection found in ≥ 99 % of default runs: ${(100 * lateRate).toFixed(1)} % — ${met(lateRate >= 0.99)}`,
    `  a default run stays ≤ 5 s on loopback: max ${ms(maxDefault)} ms — ${met(maxDefault <= 5000)}`,
    `  0 false desyncs on every real server: ${realFalse} over ${ranReal.map((r) => r.name).join(', ') || 'none'} ` +
      `(${REAL_SERVER_NAMES.length - ranReal.length} of ${REAL_SERVER_NAMES.length} not run) — ${ranReal.length === 0 ? 'not measured' : met(realFalse === 0)}`,
    `  0 false desyncs on loopback healthy and flaky servers: ${falseDesync} — ${met(falseDesync === 0)}`,
    '',
    `Benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s.`,
    '',
  ];
  process.stdout.write(out.join('\n'));
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
