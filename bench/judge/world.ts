/**
 * One simulated run's world: the cell's scenario (what each side does in each window), seeded for
 * (seed, cell, run), with memoised window draws shared by the controller and the reference
 * policies. See sim.ts for the traffic model and the seeding.
 */
import type { AlarmSignal, ProbeHealth, Side } from '../../lambda/core/ports';
import { binomial, drawWindow, hashString, mix, stream, type SideModel, type WindowDraw, type WindowModel } from './sim';

/** The migration plan a cell runs (built into a real plan spec by the runner). */
export type PlanShape =
  /** Hold one weight for the whole run (bake longer than the run; 100 % is judged in the soak). */
  | { readonly kind: 'fixed'; readonly weight: number }
  /** 10 % → 25 % → 50 % → 100 %, then a soak; would complete at about 70 % of the run if healthy. */
  | { readonly kind: 'promoting' };

/** A table cell: one scenario, run many times with different seeds. */
export interface Cell {
  /** Canonical id; seeds the runs (two tables that share a cell share its runs). */
  readonly id: string;
  /** Requests per window (both sides together). */
  readonly requests: number;
  readonly plan: PlanShape;
  /** How the sides behave in window `j` (1-based; 0 is the gate, before any window). */
  model(j: number, windows: number): { readonly old: SideModel; readonly new: SideModel };
  /** True when window `j` has no health data (`u` is a seeded uniform for that window). */
  readonly missing?: (j: number, u: number) => boolean;
  /** State of the user's alarm in window `j`, when the cell attaches one (`u` as above). */
  readonly alarm?: (j: number, u: number) => AlarmSignal['state'];
  /** Windows in which the fault or the outage is present (for the report), if any. */
  readonly eventFrom?: (windows: number) => number;
}

/** Requests one synthetic probe sends (the probe's long Keep-Alive pass). */
export const PROBE_REQUESTS = 120;

const TAG_MISSING = 101;
const TAG_ALARM = 102;
const TAG_PROBE = 103;

export class World {
  readonly base: number;
  private readonly draws = new Map<number, WindowDraw>();

  constructor(
    readonly cell: Cell,
    readonly run: number,
    seed: number,
    readonly windows: number,
  ) {
    this.base = mix(seed, hashString(cell.id), run);
  }

  model(j: number): WindowModel {
    return { requests: this.cell.requests, ...this.cell.model(j, this.windows) };
  }

  /** Window `j` as served at `weight` % on the new side (the same for every policy at that weight). */
  draw(j: number, weight: number): WindowDraw {
    const key = j * 1_000_000 + Math.round(weight * 1000);
    let found = this.draws.get(key);
    if (!found) {
      found = drawWindow(this.base, j, weight, this.model(j));
      this.draws.set(key, found);
    }
    return found;
  }

  missing(j: number): boolean {
    return this.cell.missing ? this.cell.missing(j, stream(this.base, j, TAG_MISSING)()) : false;
  }

  alarms(j: number): AlarmSignal[] {
    if (!this.cell.alarm) return [];
    const state = this.cell.alarm(j, stream(this.base, j, TAG_ALARM)());
    return [{ name: 'app-alarm', state, reason: `simulated ${state}` }];
  }

  /** A probe's synthetic health of `side` in window `j` (`nonce` tells probes of one window apart). */
  probeHealth(j: number, side: Side, nonce: number): ProbeHealth {
    const rate = this.model(j)[side].rate5xx;
    return { requests: PROBE_REQUESTS, errors5xx: binomial(PROBE_REQUESTS, rate, stream(this.base, j, TAG_PROBE, side === 'new' ? 1 : 2, nonce)) };
  }
}
