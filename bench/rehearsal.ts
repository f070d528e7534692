/**
 * `npm run bench` / `npm run bench:rehearsal`: runs every rehearsal scenario several times and
 * prints, per scenario, the outcomes, the time from fault onset to weight 0, the blast radius
 * (client requests that got an error or a wrong answer between the fault and the rollback), and
 * the rollback's residual (requests that still reached the new side after it, and when it drained),
 * and the router's added latency against calling v1 directly.
 *
 *   npm run bench -- --runs 5 --scenario error-spike
 *   npm run bench -- --shift dns        # DNS weights instead of the router (see rehearsal/shift.ts)
 */
import { Agent, request } from 'node:http';
import { Command } from 'commander';
import { startDemoServer, startRouter } from '../local';
import { buildRehearsalPlan, DEFAULT_REHEARSAL_SOAK, DEFAULT_REHEARSAL_STEPS, DEFAULT_REHEARSAL_WINDOW, parseInteger } from '../rehearsal/options';
import { runRehearsal, type RehearsalReport } from '../rehearsal/run';
import { SCENARIOS } from '../rehearsal/scenarios';
import type { ShiftMode } from '../rehearsal/shift';

const program = new Command()
  .option('--runs <n>', 'rehearsals per scenario', '3')
  .option('--scenario <name>', 'only this scenario')
  .option('--latency-requests <n>', 'requests per path for the router latency figure', '2000')
  .option('--shift <mode>', 'proxy or dns', 'proxy')
  .parse();
const flags = program.opts<{ runs: string; scenario?: string; latencyRequests: string; shift: string }>();
if (flags.shift !== 'proxy' && flags.shift !== 'dns') throw new Error(`--shift must be proxy or dns, got ${JSON.stringify(flags.shift)}`);
const shift: ShiftMode = flags.shift;
const runs = parseInteger(flags.runs, '--runs', 1, 100);
const latencyRequests = parseInteger(flags.latencyRequests, '--latency-requests', 100, 100_000);

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
  console.log(`Rehearsal benchmark: ${runs} run(s) per scenario, shift ${shift}, plan ${DEFAULT_REHEARSAL_STEPS}, soak ${DEFAULT_REHEARSAL_SOAK}, window ${DEFAULT_REHEARSAL_WINDOW}\n`);
  await scenarios();
  console.log(`Router overhead: ${latencyRequests} sequential Keep-Alive GETs per path\n`);
  await routerLatency();
})().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
