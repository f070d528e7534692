/**
 * The cells of every table: which traffic, which fault, which plan. Cell ids are canonical (built
 * from the parameters), so a cell that appears in two tables (e.g. the healthy twin of a fault)
 * is run once and seeded the same everywhere.
 */
import type { SideModel } from './sim';
import type { Cell, PlanShape } from './world';

export const TABLES = ['false-rollbacks', 'latency', 'detection', 'outage', 'data'] as const;
export type TableName = (typeof TABLES)[number];

/** Median latency of both sides when healthy, ms. */
export const MEDIAN_MS = 40;
/** 4XX share of both sides (client errors; the same on both sides in every scenario). */
export const RATE_4XX = 0.02;
/** The latency spread of tables 1 and 3–5 (table 2 also runs 1.0). */
export const SIGMA = 0.5;
/** Baseline 5XX of tables 2, 4 and 5, and of the latency faults. */
export const LOW_BASELINE = 0.001;

export const BASELINES = [0, 0.001, 0.01, 0.05] as const;
export const REQUESTS = [50, 500, 5000] as const;
export const WEIGHTS = [1, 10, 50] as const;
export const SIGMAS = [0.5, 1.0] as const;

export function side(rate5xx: number, sigma = SIGMA, medianMs = MEDIAN_MS): SideModel {
  return { rate5xx, rate4xx: RATE_4XX, medianMs, sigma };
}

const fixed = (weight: number): PlanShape => ({ kind: 'fixed', weight });
const PROMOTING: PlanShape = { kind: 'promoting' };
const planKey = (plan: PlanShape): string => (plan.kind === 'fixed' ? `w=${plan.weight}` : 'promoting');

/** Healthy: new = old. */
export function healthy(baseline: number, requests: number, plan: PlanShape, sigma = SIGMA): Cell {
  const s = side(baseline, sigma);
  return { id: `healthy|b=${baseline}|n=${requests}|${planKey(plan)}|s=${sigma}`, requests, plan, model: () => ({ old: s, new: s }) };
}

/** A fault on the new side from the start (including the gate's probes). */
export interface Fault {
  readonly kind: '5xx' | 'latency';
  /** 5XX: rate multiplier; latency: multiplier of the whole distribution (so of the p99). */
  readonly factor: number;
  readonly baseline: number;
  readonly requests: number;
  readonly weight: number;
  readonly sigma: number;
}

export function faultCell(f: Fault): Cell {
  const old = side(f.baseline, f.sigma);
  const bad = f.kind === '5xx' ? side(Math.min(1, f.baseline * f.factor), f.sigma) : side(f.baseline, f.sigma, MEDIAN_MS * f.factor);
  return {
    id: `fault-${f.kind}×${f.factor}|b=${f.baseline}|n=${f.requests}|w=${f.weight}|s=${f.sigma}`,
    requests: f.requests,
    plan: fixed(f.weight),
    model: () => ({ old, new: bad }),
  };
}

export function twinOf(f: Fault): Cell {
  return healthy(f.baseline, f.requests, fixed(f.weight), f.sigma);
}

/** The shared outage's windows: both sides at 30 % 5XX from 0.3·N to 0.5·N (30–50 of 100). */
export function outageWindows(windows: number): [number, number] {
  return [Math.max(2, Math.round(0.3 * windows)), Math.max(2, Math.round(0.5 * windows))];
}
export const OUTAGE_RATE = 0.3;

export function outageCell(weight: number, requests: number): Cell {
  const normal = side(LOW_BASELINE);
  const down = side(OUTAGE_RATE);
  return {
    id: `outage|b=${LOW_BASELINE}|n=${requests}|w=${weight}`,
    requests,
    plan: fixed(weight),
    model: (j, windows) => {
      const [from, to] = outageWindows(windows);
      const s = j >= from && j <= to ? down : normal;
      return { old: s, new: s };
    },
    eventFrom: (windows) => outageWindows(windows)[0],
  };
}

/** Shared degradation: both sides 0.1 % → 3 % 5XX from 0.3·N on, never recovering. */
export const DEGRADED_RATE = 0.03;
export function degradeCell(requests: number): Cell {
  const normal = side(LOW_BASELINE);
  const bad = side(DEGRADED_RATE);
  const from = (windows: number): number => Math.max(2, Math.round(0.3 * windows));
  return {
    id: `degrade|b=${LOW_BASELINE}|n=${requests}|promoting`,
    requests,
    plan: PROMOTING,
    model: (j, windows) => (j >= from(windows) ? { old: bad, new: bad } : { old: normal, new: normal }),
    eventFrom: from,
  };
}

/** Missing data and noisy alarms, on a healthy promoting migration. */
export const DATA_REQUESTS = 500;
export function dataCells(): { label: string; cell: Cell }[] {
  const base = healthy(LOW_BASELINE, DATA_REQUESTS, PROMOTING);
  const variant = (key: string, extra: Partial<Cell>): Cell => ({ ...base, ...extra, id: `${base.id}|${key}` });
  return [
    { label: 'control: nothing missing, no alarm', cell: base },
    { label: 'health window missing 2 of every 3', cell: variant('missing-2of3', { missing: (j) => j % 3 !== 0 }) },
    { label: 'health window missing at random 10 %', cell: variant('missing-10pct', { missing: (_j, u) => u < 0.1 }) },
    { label: 'alarm INSUFFICIENT_DATA throughout', cell: variant('alarm-insufficient', { alarm: () => 'INSUFFICIENT_DATA' }) },
    { label: 'alarm flaps to ALARM 1 window at random 1 %', cell: variant('alarm-flap-1pct', { alarm: (j, u) => (j > 0 && u < 0.01 ? 'ALARM' : 'OK') }) },
  ];
}

// ---------------------------------------------------------------------------------------------
// The tables' rows

export interface Table1Row { readonly baseline: number; readonly requests: number; readonly weight: number; readonly cell: Cell }
export function falseRollbackRows(): Table1Row[] {
  return BASELINES.flatMap((baseline) =>
    REQUESTS.flatMap((requests) => WEIGHTS.map((weight) => ({ baseline, requests, weight, cell: healthy(baseline, requests, fixed(weight)) }))),
  );
}

/** Table 1b: a healthy release through a whole promoting plan (the judge at 100 % compares with a baseline). */
export interface Table1bRow { readonly baseline: number; readonly requests: number; readonly cell: Cell }
export function promotingFalseRollbackRows(): Table1bRow[] {
  return BASELINES.flatMap((baseline) => REQUESTS.map((requests) => ({ baseline, requests, cell: healthy(baseline, requests, PROMOTING) })));
}

export interface Table2Row { readonly sigma: number; readonly requests: number; readonly weight: number; readonly cell: Cell }
export function latencyRows(): Table2Row[] {
  return SIGMAS.flatMap((sigma) =>
    REQUESTS.flatMap((requests) => WEIGHTS.map((weight) => ({ sigma, requests, weight, cell: healthy(LOW_BASELINE, requests, fixed(weight), sigma) }))),
  );
}

export interface FaultRow { readonly fault: Fault; readonly cell: Cell; readonly twin: Cell }
export function detectionRows(): FaultRow[] {
  const faults: Fault[] = [];
  for (const factor of [2, 5, 10]) {
    for (const weight of WEIGHTS) faults.push({ kind: '5xx', factor, baseline: 0.01, requests: 500, weight, sigma: SIGMA });
  }
  faults.push({ kind: '5xx', factor: 5, baseline: LOW_BASELINE, requests: 5000, weight: 10, sigma: SIGMA });
  faults.push({ kind: '5xx', factor: 5, baseline: 0.01, requests: 50, weight: 50, sigma: SIGMA });
  for (const sigma of SIGMAS) {
    for (const factor of [1.2, 2]) {
      for (const weight of WEIGHTS) faults.push({ kind: 'latency', factor, baseline: LOW_BASELINE, requests: 500, weight, sigma });
    }
  }
  return faults.map((fault) => ({ fault, cell: faultCell(fault), twin: twinOf(fault) }));
}

/** The detection target's cell: ×5 5XX at a 1 % baseline, 500 requests a window, 10 % weight. */
export function isTargetFault(f: Fault): boolean {
  return f.kind === '5xx' && f.factor === 5 && f.baseline === 0.01 && f.requests === 500 && f.weight === 10;
}

export const OUTAGE_WEIGHTS = [1, 10, 50, 100] as const;
export const OUTAGE_REQUESTS = [500, 5000] as const;
export function outageRows(): { weight: number; requests: number; cell: Cell }[] {
  return OUTAGE_REQUESTS.flatMap((requests) => OUTAGE_WEIGHTS.map((weight) => ({ weight, requests, cell: outageCell(weight, requests) })));
}
export function degradeRows(): { requests: number; cell: Cell }[] {
  return OUTAGE_REQUESTS.map((requests) => ({ requests, cell: degradeCell(requests) }));
}

/** Every cell a set of tables needs (deduplicated by id). */
export function cellsFor(tables: readonly TableName[]): Map<string, Cell> {
  const cells = new Map<string, Cell>();
  const add = (cell: Cell): void => void cells.set(cell.id, cell);
  if (tables.includes('false-rollbacks')) [...falseRollbackRows(), ...promotingFalseRollbackRows()].forEach((r) => add(r.cell));
  if (tables.includes('latency')) latencyRows().forEach((r) => add(r.cell));
  if (tables.includes('detection')) detectionRows().forEach((r) => (add(r.cell), add(r.twin)));
  if (tables.includes('outage')) {
    outageRows().forEach((r) => add(r.cell));
    degradeRows().forEach((r) => add(r.cell));
  }
  if (tables.includes('data')) dataCells().forEach((r) => add(r.cell));
  return cells;
}
