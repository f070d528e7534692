/**
 * Judge benchmark: `npm run bench:judge` (options: `-- --help`; `-- --quick` for a short run).
 *
 * What it measures: the real MigrationController (lambda/core/controller.ts, judging with
 * lambda/core/judge.ts at DEFAULT_JUDGE_CONFIG) driven with a fake clock over seeded simulated
 * traffic, one tick per health window, and what it did according to its tick results and event log
 * (rolled back or not, with which decision code, in which window; paused; promoted; completed).
 * Side by side, on the same window draws, two reference policies (bench/judge/policies.ts): Flagger
 * with its defaults and a CodeDeploy-style "≥ N 5XX in a window" alarm. It prints:
 * 1. false rollbacks of a healthy release over 5XX baseline × requests/window × weight; 1b. the same
 *    through a whole promoting plan (10 → 25 → 50 → 100 % + soak), where at 100 % the judge can only
 *    compare the new side with the old side's baseline from the earlier steps;
 * 2. latency false rollbacks (lognormal σ 0.5 and 1.0) over requests/window × weight;
 * 3. detection of 5XX (×2, ×5, ×10) and latency (p99 +20 %, +100 %) faults: share detected within 20
 *    windows and within the run, median/p95 windows to detect, failed requests served before the
 *    rollback (blast radius), and each policy's false rollbacks on the same cell when healthy;
 * 4. a shared outage (both sides 30 % 5XX for a while, then recovered) at 1/10/50/100 %, and a
 *    shared degradation (both 0.1 % → 3 %, never recovering) under a plan that would promote;
 * 5. missing health data and noisy alarms on a healthy promoting migration;
 * then the targets with a pass/fail mark computed from those figures, and the run time.
 *
 * Simplifying assumptions (all in the simulation, bench/judge/sim.ts and scenarios.ts):
 * - Requests are independent: each is a 5XX, a 4XX (2 % on both sides, always) or neither with its
 *   side's rates; latencies are i.i.d. lognormal (median 40 ms). No diurnal pattern, no bursts,
 *   no correlation between requests; a fixed number of requests per window (both sides together),
 *   split between the sides with a binomial draw at the routed weight.
 * - p99 is the exact nearest-rank p99 of the window's requests, and slow-request counts follow
 *   from the same sample (sim.ts explains how both are drawn without drawing every request).
 *   Flagger's p99 comes from Prometheus histogram buckets in reality; here it is exact.
 * - One tick per 60 s window, always on time; the routing settles at once; the old side's capacity
 *   is always at its pin; probes always answer `ok` (no desync is simulated) and report the side's
 *   synthetic health: 120 requests at the side's current 5XX rate, from every fresh probe the
 *   controller asks for (the gate, before each raise, an old-side check) and from a periodic probe
 *   of each side in every window.
 * - Fixed-weight cells: the first step is at the cell's weight with a bake longer than the run;
 *   100 % is a single 100 % step followed by a soak longer than the run (so the old side never
 *   took traffic and there is no baseline from earlier steps; table 1b covers that case). A fault
 *   is present from the start (the gate's probes included). Missing data is lost, not late: the
 *   next window read returns only its own window's counts. Runs under a promoting plan go on after
 *   the soak: the controller keeps judging a complete migration (until a teardown) and may still
 *   roll back, while the reference policies stop at completion.
 * - Flagger: a check per window; failed when the canary's success rate < 99 %, its p99 > 500 ms,
 *   or it has no data ("no values found"); 5 failed checks (cumulative) roll back. CodeDeploy: one
 *   window with ≥ N 5XX on the new side, or the user's alarm in ALARM, rolls back; missing data
 *   and INSUFFICIENT_DATA do not. Under a promoting plan both follow the plan's schedule.
 * Every run is reproducible from (cell, run index, seed): its draws depend on nothing else, so the
 * figures do not depend on --jobs.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_JUDGE_CONFIG } from '../lambda/core/judge';
import { runAll } from './judge/pool';
import { report, type Target } from './judge/report';
import { WINDOW_MS } from './judge/runner';
import { cellsFor, TABLES, type TableName } from './judge/scenarios';

const QUICK_RUNS = 40;

function positiveInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number ≥ 1, got ${JSON.stringify(value)}`);
  return n;
}

function tableNames(value: string, previous: TableName[] = []): TableName[] {
  const names = value.split(',').map((v) => v.trim()).filter(Boolean);
  for (const name of names) {
    const byNumber = /^[1-5]$/.test(name) ? TABLES[Number(name) - 1] : undefined;
    const found = byNumber ?? TABLES.find((t) => t === name);
    if (!found) throw new InvalidArgumentError(`unknown table ${JSON.stringify(name)}; known: ${TABLES.map((t, i) => `${i + 1}|${t}`).join(', ')}`);
    if (!previous.includes(found)) previous = [...previous, found];
  }
  return previous;
}

const program = new Command()
  .name('bench:judge')
  .description('False rollbacks and detection of the Cutover judge (real controller, simulated traffic) against Flagger and CodeDeploy defaults')
  .option('--runs <n>', `runs per cell (default: 200; ${QUICK_RUNS} with --quick)`, (v) => positiveInt(v, '--runs'))
  .option('--windows <n>', 'health windows (ticks) per run', (v) => positiveInt(v, '--windows'), 100)
  .option('--seed <n>', 'seed of every run (with the cell and the run index)', (v) => positiveInt(v, '--seed'), 1)
  .option('--only <tables>', `tables to run, by number or name, comma-separated or repeated: ${TABLES.map((t, i) => `${i + 1}|${t}`).join(', ')}`, tableNames)
  .option('--quick', `short run: ${QUICK_RUNS} runs per cell (unless --runs is given)`, false)
  .option('--codedeploy-threshold <n>', "5XX on the new side in one window that fire the CodeDeploy-style alarm", (v) => positiveInt(v, '--codedeploy-threshold'), 5)
  .option('--jobs <n>', 'worker processes', (v) => positiveInt(v, '--jobs'), Math.min(2, availableParallelism()))
  .parse();

const opts = program.opts<{ runs?: number; windows: number; seed: number; only?: TableName[]; quick: boolean; codedeployThreshold: number; jobs: number }>();

async function main(): Promise<void> {
  const started = performance.now();
  const runs = opts.runs ?? (opts.quick ? QUICK_RUNS : 200);
  const tables = opts.only ?? [...TABLES];
  const settings = { seed: opts.seed, windows: opts.windows, codedeployThreshold: opts.codedeployThreshold, tables };
  const cells = cellsFor(tables).size;
  const print = (line = ''): void => console.log(line);

  print('bench:judge: the Cutover controller and judge on simulated traffic, against Flagger and CodeDeploy defaults');
  print(`runs per cell ${runs}, windows per run ${opts.windows} (${WINDOW_MS / 1000} s each, one tick per window), seed ${opts.seed}, ${cells} cells, ${opts.jobs} worker process${opts.jobs === 1 ? '' : 'es'}`);
  print(`judge: DEFAULT_JUDGE_CONFIG ${JSON.stringify(DEFAULT_JUDGE_CONFIG)}`);
  print(`Flagger: check per window, success rate < 99 % or p99 > 500 ms or no data = failed check, rollback at 5 failed checks; CodeDeploy: rollback on ≥ ${opts.codedeployThreshold} 5XX on the new side in one window (or the user's alarm in ALARM)`);
  print('traffic: independent requests, 4XX 2 % on both sides, lognormal latency median 40 ms (σ 0.5 unless stated); see bench/judge.ts for every assumption');

  const cpu = { ms: 0 };
  let lastShown = 0;
  const tty = process.stderr.isTTY;
  const results = await runAll(settings, runs, opts.jobs, (done, total) => {
    const now = performance.now();
    if (done < total && now - lastShown < (tty ? 500 : 10_000)) return;
    lastShown = now;
    const elapsed = (now - started) / 1000;
    const eta = done > 0 ? (elapsed * (total - done)) / done : 0;
    const text = `bench:judge: ${done}/${total} runs (${((100 * done) / total).toFixed(0)} %), ${elapsed.toFixed(0)} s elapsed, ~${eta.toFixed(0)} s left`;
    if (tty) process.stderr.write(`\r${text}${done === total ? '\n' : ''}`);
    else process.stderr.write(`${text}\n`);
  }, cpu);

  const errors = [...results.values()].flat().filter((r) => r.cutover.error);
  if (errors.length > 0) print(`\nWARNING: the controller threw in ${errors.length} runs (counted as neither rolled back nor paused), e.g. ${errors[0]!.cutover.error}`);

  const targets = report({ results, runs, windows: opts.windows, codedeployThreshold: opts.codedeployThreshold, print }, tables);
  printTargets(print, targets);
  const wall = (performance.now() - started) / 1000;
  print(`\nrun time ${wall.toFixed(1)} s wall clock; the runs took ${(cpu.ms / 1000).toFixed(1)} s of CPU in ${opts.jobs} process${opts.jobs === 1 ? '' : 'es'} (${runs} runs × ${cells} cells × up to ${opts.windows} ticks)`);
}

function printTargets(print: (line?: string) => void, targets: readonly Target[]): void {
  print('\nTargets');
  for (const t of targets) {
    const m = t.pass === undefined ? '–' : t.pass ? '✓ pass' : '✗ FAIL';
    print(`  ${m.padEnd(6)}  ${t.name}: ${t.detail}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
