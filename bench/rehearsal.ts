/**
 * `npm run bench` / `npm run bench:rehearsal`: runs every rehearsal scenario several times and
 * prints, per scenario, the outcomes, the time from fault onset to weight 0, the blast radius
 * (client requests that got an error or a wrong answer between the fault and the rollback), and
 * the rollback's residual (requests that still reached the new side after it, and when it drained),
 * then the residual with and without the active drain side by side (the new side closing and then
 * refusing connections after a rollback, or left answering as in the incident), and the router's
 * added latency against calling v1 directly.
 *
 *   npm run bench -- --runs 5 --scenario error-spike
 *   npm run bench -- --shift dns        # DNS weights instead of the router (see rehearsal/shift.ts)
 *   npm run bench -- --drain-only --drain-seeds 5   # only the drain on/off comparison, over 5 seeds
 */
import { Agent, request } from 'node:http';
import { Command } from 'commander';
import { startDemoServer, startRouter } from '../local';
import { buildRehearsalPlan, DEFAULT_REHEARSAL_SOAK, DEFAULT_REHEARSAL_STEPS, DEFAULT_REHEARSAL_WINDOW, parseInteger } from '../rehearsal/options';
import type { ResidualReport } from '../rehearsal/residual';
import { runRehearsal, type RehearsalReport } from '../rehearsal/run';
import { findScenario, SCENARIOS } from '../rehearsal/scenarios';
import { DEFAULT_DNS_TTL_MS, DEFAULT_STALE_CLIENTS, SHIFT_MODES, type ShiftMode } from '../rehearsal/shift';

const program = new Command()
  .option('--runs <n>', 'rehearsals per scenario', '3')
  .option('--scenario <name>', 'only this scenario')
  .option('--latency-requests <n>', 'requests per path for the router latency figure', '2000')
  .option('--shift <mode>', 'proxy or dns', 'proxy')
  .option('--drain-seeds <n>', 'seeds per scenario and shift for the drain on/off comparison (0 skips it)', '3')
  .option('--drain-only', 'only the drain on/off comparison')
  .parse();
const flags = program.opts<{ runs: string; scenario?: string; latencyRequests: string; shift: string; drainSeeds: string; drainOnly?: boolean }>();
if (flags.shift !== 'proxy' && flags.shift !== 'dns') throw new Error(`--shift must be proxy or dns, got ${JSON.stringify(flags.shift)}`);
const shift: ShiftMode = flags.shift;
const runs = parseInteger(flags.runs, '--runs', 1, 100);
const latencyRequests = parseInteger(flags.latencyRequests, '--latency-requests', 100, 100_000);
const drainSeeds = parseInteger(flags.drainSeeds, '--drain-seeds', 0, 100);

function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : `${(v / 1000).toFixed(2)}s`);

async function scenarios(): Promise<void> {
  const plan = buildRehearsalPlan(DEFAULT_REHEARSAL_STEPS, DEFAULT_REHEARSAL_SOAK, DEFAULT_REHEARSAL_WINDOW);
  const selected = SCENARIOS.filter((s) => !flags.scenario || s.name === flags.scenario);
  if (selected.length === 0) throw new Error(`unknown scenario ${JSON.stringify(flags.scenario)}`);
  const rows: string[][] = [];
  for (const scenario of selected) {
    const reports: RehearsalReport[] = [];
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`  ${scenario.name} run ${i + 1}/${runs} … `);
      const report = await runRehearsal({ scenario, plan, seed: i + 1, shift });
      const warnings = report.warnings?.length ? ` (warning: ${report.warnings.join('; ')})` : '';
      process.stderr.write(`${report.outcome} in ${ms(report.durationMs)}${warnings}\n`);
      reports.push(report);
    }
    const outcomes = new Map<string, number>();
    for (const r of reports) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    const toZero = reports.map((r) => r.rollback?.afterFaultMs).filter((v): v is number => v !== undefined);
    const errors = reports.map((r) => r.blastRadius.errorResponses);
    const wrong = reports.map((r) => r.blastRadius.misalignedResponses);
    const expectedCount = reports.filter((r) => r.outcome === r.expectedOutcome).length;
    const residuals = reports.map((r) => r.rollback?.residual).filter((v) => v !== undefined);
    const residualRequests = residuals.map((r) => r.requestsAfterRollback);
    const drained = residuals.map((r) => r.drainedAfterMs).filter((v): v is number => v !== undefined);
    const residualCell = residuals.length
      ? `${quantile(residualRequests, 0.5)} / ${Math.max(...residualRequests)} req; drained ${drained.length ? `${ms(quantile(drained, 0.5))} / ${ms(Math.max(...drained))}` : 'never'}` +
        ` (bound ${ms(residuals[0]!.boundMs)}, kept ${residuals.filter((r) => r.withinBound).length}/${residuals.length})`
      : '-';
    rows.push([
      scenario.name,
      [...outcomes].map(([k, v]) => `${k} ${v}`).join(', '),
      `${expectedCount}/${reports.length}`,
      toZero.length ? `${ms(quantile(toZero, 0.5))} / ${ms(Math.max(...toZero))}` : '-',
      `${quantile(errors, 0.5)} / ${Math.max(...errors)}`,
      `${quantile(wrong, 0.5)} / ${Math.max(...wrong)}`,
      residualCell,
      ms(quantile(reports.map((r) => r.durationMs), 0.5)),
    ]);
  }
  printTable(
    [
      'scenario',
      'outcomes',
      'as expected',
      'fault→weight 0 (median / max)',
      'errors before rollback (median / max)',
      'wrong answers before rollback (median / max)',
      'residual after rollback (median / max)',
      'wall time (median)',
    ],
    rows,
  );
}

/**
 * The drain comparison: the scenarios whose rollback leaves traffic on the new side, rehearsed
 * with the active drain on and off. Its own plan, the DNS tests' (a first step of 10 %: with DNS a
 * share of 40 clients is lumpy), keeps it to a few minutes.
 */
const DRAIN_SCENARIOS = ['keepalive-desync-under-load', 'error-spike'];
const DRAIN_STEPS = '10@2s,50@2s,100@2s';
const DRAIN_SOAK = '2s';

/**
 * Runs each scenario, shift and seed twice, drain on and drain off, side by side (concurrently:
 * same seed, same moment on the machine, and half the wall time), and prints what reached the new
 * side after the rollback for each.
 */
async function drainComparison(): Promise<void> {
  const plan = buildRehearsalPlan(DRAIN_STEPS, DRAIN_SOAK, DEFAULT_REHEARSAL_WINDOW);
  const shifts: readonly ShiftMode[] = [...SHIFT_MODES].sort((a, b) => (a === 'dns' ? -1 : b === 'dns' ? 1 : 0));
  const rows: string[][] = [];
  const caps = new Set<string>();
  for (const name of DRAIN_SCENARIOS) {
    const scenario = findScenario(name);
    if (!scenario) throw new Error(`unknown scenario ${JSON.stringify(name)}`);
    for (const mode of shifts) {
      const on: ResidualReport[] = [];
      const off: ResidualReport[] = [];
      for (let seed = 1; seed <= drainSeeds; seed++) {
        process.stderr.write(`  ${name} ${mode} seed ${seed}/${drainSeeds}, drain on and off … `);
        const [withDrain, without] = await Promise.all(
          [true, false].map((activeDrain) => runRehearsal({ scenario, plan, seed, shift: mode, activeDrain })),
        );
        const residuals = [withDrain!, without!].map((r) => r.rollback?.residual);
        process.stderr.write(
          residuals.map((r, i) => `${i === 0 ? 'on' : 'off'}: ${r ? `${r.requestsAfterRollback} req, ${r.drained ? ms(r.drainedAfterMs) : 'not drained'}` : `${[withDrain!, without!][i]!.outcome}, no rollback`}`).join('; ') + '\n',
        );
        if (residuals[0]) on.push(residuals[0]);
        if (residuals[1]) off.push(residuals[1]);
      }
      for (const r of [...on, ...off]) caps.add(ms(r.maxWatchMs));
      const pair = (f: (rs: ResidualReport[]) => string): string[] => [f(on), f(off)];
      rows.push([
        name,
        mode,
        `${on.length}/${drainSeeds} · ${off.length}/${drainSeeds}`,
        ...pair((rs) => medianMax(rs.map((r) => r.requestsAfterRollback), String)),
        ...pair((rs) => medianMax(rs.map((r) => r.wrongAnswersAfterRollback), String)),
        // Not drained within the watch counts as longer than any drain: "> the cap".
        ...pair((rs) => medianMax(rs.map((r) => r.drainedAfterMs ?? Number.POSITIVE_INFINITY), (v) => (Number.isFinite(v) ? ms(v) : `>${ms(rs[0]!.maxWatchMs)}`))),
        ...pair((rs) => (rs.length ? `${rs.filter((r) => r.withinBound).length}/${rs.length} (${ms(rs[0]!.boundMs)})` : '-')),
      ]);
    }
  }
  console.log(
    `Rollback residual, active drain on vs off: ${drainSeeds} seed(s) per scenario and shift, both runs of a seed side by side; ` +
      `plan ${DRAIN_STEPS}, soak ${DRAIN_SOAK}, window ${DEFAULT_REHEARSAL_WINDOW}; dns: TTL ${ms(DEFAULT_DNS_TTL_MS)}, ${Math.round(DEFAULT_STALE_CLIENTS * 100)} % of clients ignore it\n` +
      `on: Connection: close at the rollback, with dns connections refused after TTL + drain interval; off: the new side keeps answering (Keep-Alive kept, connections accepted).\n` +
      `Cells are "median / max" over the runs that rolled back; drain time is until the new side stayed at ≤ 1 % of its peak per window (">cap": not within the watch of ${[...caps].join(', ') || '-'}).\n`,
  );
  printTable(
    [
      'scenario',
      'shift',
      'rolled back on · off',
      'req. after rollback, on',
      'off',
      'wrong answers after, on',
      'off',
      'drain time, on',
      'off',
      'within bound, on',
      'off',
    ],
    rows,
  );
}

/** "median / max" of `values` (empty: "-"). */
function medianMax(values: readonly number[], show: (v: number) => string): string {
  if (values.length === 0) return '-';
  return `${show(quantile(values, 0.5)!)} / ${show(Math.max(...values))}`;
}

/** Sequential Keep-Alive GETs: the latency each path adds, measured the same way. */
async function routerLatency(): Promise<void> {
  const v1 = await startDemoServer({ version: 'v1' });
  const v2 = await startDemoServer({ version: 'v2' });
  const router = await startRouter({ oldUrl: v1.url, newUrl: v2.url, weight: 0 });
  // One Keep-Alive connection per path (the agent pools per host:port).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = async (base: string, i: number): Promise<number> => {
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}/apps/bench/channels/presence-room-${i % 24}`, { agent, headers: { 'x-request-id': `bench-${i}` } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  try {
    // Interleaved, after a warm-up of both paths, so that a busy moment on the machine hits
    // both paths alike instead of biasing whichever ran first.
    const direct: number[] = [];
    const routed: number[] = [];
    for (let i = 0; i < 200; i++) {
      await once(v1.url, i);
      await once(router.url, i);
    }
    for (let i = 0; i < latencyRequests; i++) {
      direct.push(await once(v1.url, i));
      routed.push(await once(router.url, i));
    }
    const row = (name: string, s: number[]): string[] => [name, `${quantile(s, 0.5)!.toFixed(3)} ms`, `${quantile(s, 0.99)!.toFixed(3)} ms`];
    printTable(
      ['path', 'p50', 'p99'],
      [
        row('client → v1 directly', direct),
        row('client → router → v1', routed),
        ['router adds', `${(quantile(routed, 0.5)! - quantile(direct, 0.5)!).toFixed(3)} ms`, `${(quantile(routed, 0.99)! - quantile(direct, 0.99)!).toFixed(3)} ms`],
      ],
    );
  } finally {
    agent.destroy();
    await router.close();
    await v2.close();
    await v1.close();
  }
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log('');
}

(async () => {
  if (!flags.drainOnly) {
    console.log(`Rehearsal benchmark: ${runs} run(s) per scenario, shift ${shift}, plan ${DEFAULT_REHEARSAL_STEPS}, soak ${DEFAULT_REHEARSAL_SOAK}, window ${DEFAULT_REHEARSAL_WINDOW}\n`);
    await scenarios();
  }
  if (drainSeeds > 0) await drainComparison();
  if (!flags.drainOnly) {
    console.log(`Router overhead: ${latencyRequests} sequential Keep-Alive GETs per path\n`);
    await routerLatency();
  }
})().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
