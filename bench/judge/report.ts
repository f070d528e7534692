/**
 * Turns the runs' outcomes into the printed tables and the targets' pass/fail marks. Every figure
 * is computed here from the outcomes; nothing is typed in except the targets themselves.
 */
import type { Results, RunResult } from './pool';
import { isLive, type Outcome } from './runner';
import {
  dataCells,
  degradeRows,
  detectionRows,
  falseRollbackRows,
  isTargetFault,
  latencyRows,
  outageRows,
  outageWindows,
  promotingFalseRollbackRows,
  type FaultRow,
  type TableName,
} from './scenarios';
import type { Cell } from './world';

type PolicyName = keyof RunResult;
const POLICIES: readonly PolicyName[] = ['cutover', 'flagger', 'codedeploy'];
const SHOWN: Record<PolicyName, string> = { cutover: 'Cutover', flagger: 'Flagger', codedeploy: 'CodeDeploy' };

/** A target with its mark; `pass` undefined when its table was not run. */
export interface Target {
  readonly name: string;
  readonly pass: boolean | undefined;
  readonly detail: string;
}

export interface ReportContext {
  readonly results: Results;
  readonly runs: number;
  readonly windows: number;
  readonly codedeployThreshold: number;
  readonly print: (line?: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const FALSE_ROLLBACK_TARGET = 0.005;
const DETECTION_TARGET = 0.99;
const DETECTION_WINDOWS = 20;

function outcomes(ctx: ReportContext, cell: Cell, policy: PolicyName): Outcome[] {
  const found = ctx.results.get(cell.id);
  if (!found) throw new Error(`no results for cell ${cell.id}`);
  return found.map((r) => r[policy]);
}

function share(list: readonly Outcome[], test: (o: Outcome) => boolean): number {
  return list.filter(test).length / list.length;
}

/** A share as a percentage: whole numbers as such, others with one decimal (never rounded to a whole). */
function pct(value: number): string {
  if (value === 0) return '0';
  const x = value * 100;
  return `${Math.abs(x - Math.round(x)) < 1e-9 ? Math.round(x) : x.toFixed(1)} %`;
}

const mark = (pass: boolean): string => (pass ? '✓' : '✗');

/** "code×n, code×m" over the outcomes that have one, most frequent first. */
function tally(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code}×${n}`)
    .join(', ');
}

const rolledBack = (o: Outcome): boolean => o.rollbackAt !== null;
const pausedAtEnd = (o: Outcome): boolean => o.final === 'paused';

/** Nearest-rank quantile; undetected runs count as Infinity. */
function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

function printTable(ctx: ReportContext, headers: readonly string[], rows: readonly (readonly string[])[], leftColumns: number): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i < leftColumns || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  ctx.print(line(headers));
  ctx.print(widths.map((w) => '─'.repeat(w)).join('  '));
  rows.forEach((r) => ctx.print(line(r)));
}

// ---------------------------------------------------------------------------------------------
// Tables 1 and 2: false rollbacks

function falseRollbackCells(ctx: ReportContext, cell: Cell): { cells: string[]; worst: number } {
  const cut = outcomes(ctx, cell, 'cutover');
  const rate = share(cut, rolledBack);
  return {
    cells: [
      `${pct(rate)} ${mark(rate <= FALSE_ROLLBACK_TARGET)}`,
      pct(share(cut, pausedAtEnd)),
      pct(share(outcomes(ctx, cell, 'flagger'), rolledBack)),
      pct(share(outcomes(ctx, cell, 'codedeploy'), rolledBack)),
      tally([...cut.map((o) => o.rollbackCode), ...cut.map((o) => (o.final === 'paused' ? `pause:${o.pauseCode}` : ''))]),
    ],
    worst: rate,
  };
}

const FR_HEADERS = ['Cutover rolled back', 'paused', 'Flagger', 'CodeDeploy', 'Cutover: codes (runs)'];

export function reportFalseRollbacks(ctx: ReportContext): Target {
  ctx.print(`\n1. False rollbacks: healthy release (new = old), ${ctx.runs} runs × ${ctx.windows} windows at a fixed weight; % of runs rolled back (target ≤ 0.5 %)`);
  let worst = { rate: 0, where: '' };
  const rows = falseRollbackRows().map((r) => {
    const { cells, worst: rate } = falseRollbackCells(ctx, r.cell);
    const where = `5XX ${r.baseline * 100} %, ${r.requests} req/window, ${r.weight} %`;
    if (rate >= worst.rate) worst = { rate, where };
    return [`${r.baseline * 100} %`, String(r.requests), `${r.weight} %`, ...cells];
  });
  printTable(ctx, ['5XX', 'req/window', 'weight', ...FR_HEADERS], rows, 3);
  return { name: 'false rollbacks ≤ 0.5 % in every cell of table 1', pass: worst.rate <= FALSE_ROLLBACK_TARGET, detail: `worst ${pct(worst.rate)} (${worst.where})` };
}

/** Table 1b (beyond the brief's grid): a healthy release through a whole promoting plan. */
export function reportPromotingFalseRollbacks(ctx: ReportContext): Target {
  ctx.print(`\n1b. False rollbacks over a whole migration: healthy release, plan 10 → 25 → 50 → 100 % + soak (complete at about window ${Math.round(ctx.windows * 0.7)}),`);
  ctx.print(`    then watched to window ${ctx.windows}; at 100 % the old side takes no traffic and the judge compares with its baseline from the earlier steps`);
  let worst = { rate: 0, where: '' };
  const rows = promotingFalseRollbackRows().map((r) => {
    const cut = outcomes(ctx, r.cell, 'cutover');
    const rate = share(cut, rolledBack);
    if (rate >= worst.rate) worst = { rate, where: `5XX ${r.baseline * 100} %, ${r.requests} req/window` };
    return [
      `${r.baseline * 100} %`,
      String(r.requests),
      `${pct(rate)} ${mark(rate <= FALSE_ROLLBACK_TARGET)}`,
      pct(share(cut, (o) => o.rollbackAt !== null && o.promotedAt !== null && o.rollbackAt > o.promotedAt)),
      pct(share(cut, pausedAtEnd)),
      pct(share(cut, (o) => o.promotedAt !== null)),
      pct(share(cut, (o) => o.completed)),
      pct(share(outcomes(ctx, r.cell, 'flagger'), rolledBack)),
      pct(share(outcomes(ctx, r.cell, 'codedeploy'), rolledBack)),
      tally([...cut.map((o) => o.rollbackCode), ...cut.map((o) => (o.final === 'paused' ? `pause:${o.pauseCode}` : ''))]),
    ];
  });
  printTable(ctx, ['5XX', 'req/window', 'Cutover rolled back', 'at 100 %', 'paused', 'promoted', 'completed', 'Flagger', 'CodeDeploy', 'Cutover: codes (runs)'], rows, 2);
  return { name: '(beyond the brief) false rollbacks ≤ 0.5 % over a whole promoting migration (table 1b)', pass: worst.rate <= FALSE_ROLLBACK_TARGET, detail: `worst ${pct(worst.rate)} (${worst.where})` };
}

export function reportLatency(ctx: ReportContext): Target {
  ctx.print(`\n2. Latency false rollbacks: healthy, lognormal latency (median 40 ms), 5XX 0.1 %, ${ctx.runs} runs × ${ctx.windows} windows (target ≤ 0.5 %)`);
  let worst = { rate: 0, where: '' };
  const rows = latencyRows().map((r) => {
    const { cells, worst: rate } = falseRollbackCells(ctx, r.cell);
    const where = `σ ${r.sigma}, ${r.requests} req/window, ${r.weight} %`;
    if (rate >= worst.rate) worst = { rate, where };
    return [r.sigma.toFixed(1), String(r.requests), `${r.weight} %`, ...cells];
  });
  printTable(ctx, ['σ', 'req/window', 'weight', ...FR_HEADERS], rows, 3);
  return { name: 'false rollbacks ≤ 0.5 % in every cell of table 2', pass: worst.rate <= FALSE_ROLLBACK_TARGET, detail: `worst ${pct(worst.rate)} (${worst.where})` };
}

// ---------------------------------------------------------------------------------------------
// Table 3: detection

interface Detection {
  falseRollbacks: number;
  within20: number;
  withinRun: number;
  median: number;
  p95: number;
  blast: number;
  codes: string;
}

function detection(ctx: ReportContext, row: FaultRow, policy: PolicyName): Detection {
  const list = outcomes(ctx, row.cell, policy);
  const at = list.map((o) => o.rollbackAt ?? Infinity).sort((a, b) => a - b);
  const blast = list.reduce((sum, o) => sum + (row.fault.kind === '5xx' ? o.blast5xx : o.servedNew), 0) / list.length;
  return {
    falseRollbacks: share(outcomes(ctx, row.twin, policy), rolledBack),
    within20: share(list, (o) => o.rollbackAt !== null && o.rollbackAt <= DETECTION_WINDOWS),
    withinRun: share(list, rolledBack),
    median: quantile(at, 0.5),
    p95: quantile(at, 0.95),
    blast,
    codes: tally(list.map((o) => o.rollbackCode)),
  };
}

export function reportDetection(ctx: ReportContext): Target[] {
  const n = ctx.windows;
  ctx.print(`\n3. Detection: the new side is worse from the start, fixed weight, ${ctx.runs} runs × ${n} windows`);
  ctx.print(`   false rb = the same cell with a healthy new side; windows to detect counted from the first shift (>${n}: not detected);`);
  ctx.print(`   blast = mean per run of 5XX served by the new side up to its rollback (latency faults: requests served by the new side)`);
  const headers = ['fault', '5XX', 'req/win', 'weight', 'policy', 'false rb', `≤${DETECTION_WINDOWS} win`, `≤${n} win`, 'median', 'p95', 'blast', 'rollback codes (runs)'];
  const rows: string[][] = [];
  let targetDetection: Target = { name: `×5 5XX at 1 %, 500 req/window, 10 %: detected ≥ 99 % within ${DETECTION_WINDOWS} windows`, pass: undefined, detail: 'cell not run' };
  const blastFailures: string[] = [];
  let blastCompared = 0;
  const show = (w: number): string => (w === Infinity ? `>${n}` : String(w));
  for (const row of detectionRows()) {
    const f = row.fault;
    const label = f.kind === '5xx' ? `5XX ×${f.factor}` : `p99 +${Math.round((f.factor - 1) * 100)} % σ${f.sigma}`;
    const byPolicy = Object.fromEntries(POLICIES.map((p) => [p, detection(ctx, row, p)])) as Record<PolicyName, Detection>;
    POLICIES.forEach((p, i) => {
      const d = byPolicy[p];
      rows.push([
        i === 0 ? label : '',
        i === 0 ? `${f.baseline * 100} %` : '',
        i === 0 ? String(f.requests) : '',
        i === 0 ? `${f.weight} %` : '',
        SHOWN[p],
        pct(d.falseRollbacks),
        pct(d.within20),
        pct(d.withinRun),
        show(d.median),
        show(d.p95),
        d.blast.toFixed(f.kind === '5xx' ? 1 : 0),
        d.codes,
      ]);
    });
    if (isTargetFault(f)) {
      const d = byPolicy.cutover;
      targetDetection = { ...targetDetection, pass: d.within20 >= DETECTION_TARGET, detail: `${pct(d.within20)} within ${DETECTION_WINDOWS}, median ${show(d.median)} windows` };
    }
    if (byPolicy.flagger.falseRollbacks === 0) {
      blastCompared++;
      if (byPolicy.cutover.blast > byPolicy.flagger.blast) blastFailures.push(`${label} at ${f.baseline * 100} %/${f.requests}/${f.weight} %: ${byPolicy.cutover.blast.toFixed(1)} vs Flagger ${byPolicy.flagger.blast.toFixed(1)}`);
    }
  }
  printTable(ctx, headers, rows, 5);
  const blastTarget: Target = {
    name: 'blast radius ≤ Flagger on every fault where Flagger has no false rollbacks',
    pass: blastFailures.length === 0,
    detail: blastCompared === 0 ? 'Flagger has false rollbacks in every fault cell: nothing to compare' : blastFailures.length === 0 ? `${blastCompared} faults compared` : `worse on ${blastFailures.length} of ${blastCompared}: ${blastFailures.join('; ')}`,
  };
  return [targetDetection, blastTarget];
}

// ---------------------------------------------------------------------------------------------
// Table 4: shared outage and shared degradation

export function reportOutage(ctx: ReportContext): Target[] {
  const [from, to] = outageWindows(ctx.windows);
  ctx.print(`\n4a. Shared outage: both sides at 30 % 5XX in windows ${from}–${to}, then recovered; fixed weight, 5XX 0.1 % otherwise (target: 0 rollbacks)`);
  ctx.print(`    other holds = runs whose judge held for a reason other than its pre-outage one from window ${from} on; resumed = live at the end with the pre-outage decision again;`);
  ctx.print(`    median delay = windows after the outage ended (window ${to}) that still had another decision than before it (>${ctx.windows - to}: not resumed in the run)`);
  const rows: string[][] = [];
  let rollbacks = 0;
  let total = 0;
  for (const r of outageRows()) {
    const cut = outcomes(ctx, r.cell, 'cutover');
    const extra = cut.map((o) => otherHolds(o, from));
    const resumed = cut.map((o, i) => isLive(o.final) && o.codes!.at(-1) === o.codes![from - 2] && extra[i] !== undefined);
    const delays = cut.map((o, i) => (resumed[i] ? resumeDelay(o, from, to) : Infinity)).sort((a, b) => a - b);
    rollbacks += cut.filter(rolledBack).length;
    total += cut.length;
    rows.push([
      String(r.requests),
      `${r.weight} %`,
      `${pct(share(cut, rolledBack))} ${mark(!cut.some(rolledBack))}`,
      pct(share(cut, pausedAtEnd)),
      pct(extra.filter((c) => c !== undefined && c.length > 0).length / cut.length),
      pct(resumed.filter(Boolean).length / cut.length),
      showWindows(quantile(delays, 0.5), ctx.windows - to),
      pct(share(outcomes(ctx, r.cell, 'flagger'), rolledBack)),
      pct(share(outcomes(ctx, r.cell, 'codedeploy'), rolledBack)),
      tally([...cut.map((o) => o.rollbackCode), ...cut.map((o) => (o.pauseAt !== null ? `pause:${o.pauseCode}` : '')), ...extra.flatMap((c) => (c ?? []).map((code) => `hold:${code}`))]),
    ]);
  }
  printTable(ctx, ['req/win', 'weight', 'Cutover rolled back', 'paused', 'other holds', 'resumed', 'median delay', 'Flagger rb', 'CodeDeploy rb', 'Cutover: codes (runs)'], rows, 2);

  const first = degradeRows()[0];
  const start = first ? first.cell.eventFrom!(ctx.windows) : 0;
  ctx.print(`\n4b. Shared degradation: both sides 0.1 % → 3 % 5XX from window ${start} on, never recovering; plan 10 → 25 → 50 → 100 % that would promote`);
  ctx.print(`    at about window ${Math.round(ctx.windows * 0.4) + 1} when healthy (target: never promoted into the degradation)`);
  const dRows: string[][] = [];
  let promotedInto = 0;
  let dTotal = 0;
  for (const r of degradeRows()) {
    POLICIES.forEach((p, i) => {
      const list = outcomes(ctx, r.cell, p);
      const into = list.filter((o) => o.promotedAt !== null && o.promotedAt >= start).length;
      if (p === 'cutover') [promotedInto, dTotal] = [promotedInto + into, dTotal + list.length];
      dRows.push([
        i === 0 ? String(r.requests) : '',
        SHOWN[p],
        `${pct(into / list.length)}${p === 'cutover' ? ` ${mark(into === 0)}` : ''}`,
        pct(share(list, rolledBack)),
        pct(share(list, pausedAtEnd)),
        pct(share(list, (o) => o.completed && !rolledBack(o))),
        tally(list.map((o) => o.rollbackCode || (o.final === 'paused' ? `pause:${o.pauseCode}` : ''))),
      ]);
    });
  }
  printTable(ctx, ['req/win', 'policy', 'promoted into', 'rolled back', 'paused', 'completed', 'codes (runs)'], dRows, 2);
  return [
    { name: 'shared outage at any weight: 0 rollbacks', pass: rollbacks === 0, detail: `${rollbacks} of ${total} runs rolled back` },
    { name: 'shared degradation never promoted into', pass: promotedInto === 0, detail: `${promotedInto} of ${dTotal} runs promoted into it` },
  ];
}

/** Windows after `to` until the run's decisions are back to its pre-outage code for good. */
function resumeDelay(o: Outcome, from: number, to: number): number {
  const codes = o.codes ?? [];
  const normal = codes[from - 2];
  let k = codes.length;
  while (k > 0 && codes[k - 1] === normal) k--;
  return Math.max(0, k - to);
}

function showWindows(w: number, max: number): string {
  return w === Infinity ? `>${max}` : String(w);
}

/** Hold codes after `from` other than the run's pre-outage code; undefined when it never got there. */
function otherHolds(o: Outcome, from: number): string[] | undefined {
  const codes = o.codes ?? [];
  if (codes.length < from) return undefined;
  const normal = codes[from - 2];
  const seen = new Set(codes.slice(from - 1).filter((c) => c && c !== normal && c !== o.rollbackCode && c !== o.pauseCode));
  return [...seen];
}

// ---------------------------------------------------------------------------------------------
// Table 5: missing data and noisy alarms

export function reportData(ctx: ReportContext): void {
  ctx.print(`\n5. Missing data and noisy alarms: healthy release, 5XX 0.1 %, 500 req/window, plan 10 → 25 → 50 → 100 % + soak (completes at about window ${Math.round(ctx.windows * 0.7)} when nothing is wrong)`);
  ctx.print('   in progress = neither rolled back, paused nor complete at the end of the run; Cutover keeps judging once complete (until a teardown)');
  ctx.print('   and may still roll back then, while the reference policies stop at completion');
  const rows: string[][] = [];
  for (const { label, cell } of dataCells()) {
    POLICIES.forEach((p, i) => {
      const list = outcomes(ctx, cell, p);
      rows.push([
        i === 0 ? label : '',
        SHOWN[p],
        pct(share(list, rolledBack)),
        pct(share(list, (o) => !rolledBack(o) && pausedAtEnd(o))),
        pct(share(list, (o) => !rolledBack(o) && !pausedAtEnd(o) && !o.completed)),
        pct(share(list, (o) => !rolledBack(o) && o.completed)),
        tally(list.map((o) => o.rollbackCode || (o.final === 'paused' ? `pause:${o.pauseCode}` : ''))),
      ]);
    });
  }
  printTable(ctx, ['scenario', 'policy', 'rolled back', 'paused', 'in progress', 'completed', 'codes (runs)'], rows, 2);
}

/** Prints the tables that were run and returns every target. */
export function report(ctx: ReportContext, tables: readonly TableName[]): Target[] {
  const targets: Target[] = [];
  const skipped = (name: string): Target => ({ name, pass: undefined, detail: 'table not run' });
  if (tables.includes('false-rollbacks')) targets.push(reportFalseRollbacks(ctx), reportPromotingFalseRollbacks(ctx));
  else targets.push(skipped('false rollbacks ≤ 0.5 % in every cell of table 1'), skipped('(beyond the brief) false rollbacks ≤ 0.5 % over a whole promoting migration (table 1b)'));
  targets.push(tables.includes('latency') ? reportLatency(ctx) : skipped('false rollbacks ≤ 0.5 % in every cell of table 2'));
  if (tables.includes('detection')) targets.push(...reportDetection(ctx));
  else targets.push(skipped('×5 5XX at 1 %, 500 req/window, 10 %: detected ≥ 99 % within 20 windows'), skipped('blast radius ≤ Flagger where Flagger has no false rollbacks'));
  if (tables.includes('outage')) targets.push(...reportOutage(ctx));
  else targets.push(skipped('shared outage at any weight: 0 rollbacks'), skipped('shared degradation never promoted into'));
  if (tables.includes('data')) reportData(ctx);
  return targets;
}
