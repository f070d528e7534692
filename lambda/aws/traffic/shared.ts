/**
 * Helpers shared by the weighted-routing TrafficPorts (Route 53 records, ALB target groups):
 * exact percent ↔ integer weight mapping, content revisions, and an injectable sleep.
 *
 * ## The weight mapping (both services)
 * The core speaks percent on the new side (0–100, fractions allowed); Route 53 (0–255) and ELB
 * (0–999) take one integer weight per side, and the share of a side is its weight over the sum.
 * A whole percentage p is written as **old = 100 − p, new = p**: the sum is 100, so the console
 * shows the percentages themselves, and reading back new / (old + new) · 100 gives p exactly.
 * A fractional p (12.5 %, 0.1 %) is written with the smallest sum that expresses it exactly
 * within the service's range (12.5 % → old 7, new 1; 0.5 % → old 199, new 1); a p no integer
 * weights in range can express (33.333 %, 100/3 %, or 0.1 % on Route 53) is refused before any
 * AWS call. Weights read back are rounded to 1e-4 %, and a mapping is used only if it reads back
 * as the very percentage written.
 * Exactness matters: the core compares the weight it reads back with the weight it recorded
 * (to 1e-6), and a rounded weight would look like someone else's change and pause the migration.
 */
import { createHash } from 'node:crypto';

/** Waits `ms` milliseconds; injected so that tests do not wait. */
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Integer weights of the two sides. */
export interface SideWeights {
  readonly old: number;
  readonly new: number;
}

/** A weight read back is rounded to 1e-4 % so that float noise never reaches the core. */
const PERCENT_DIGITS = 1e4;
const INTEGER_EPSILON = 1e-9;
/** The core's own tolerance when it compares a weight read back with the one it recorded. */
const READ_BACK_EPSILON = 1e-6;

/** Throws a RangeError unless `weight` is a percentage 0–100. */
export function checkPercent(weight: unknown): asserts weight is number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > 100) {
    throw new RangeError(`weight must be a percentage from 0 to 100, got ${JSON.stringify(weight)}`);
  }
}

/**
 * The integer weights that route exactly `percent` % to the new side, each within 0–`maxWeight`,
 * or undefined when no such pair exists. See the header for the rule.
 */
export function exactWeightsOrUndefined(percent: number, maxWeight: number): SideWeights | undefined {
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) return undefined;
  if (Number.isInteger(percent) && maxWeight >= 100) return { old: 100 - percent, new: percent };
  for (let total = 1; total <= 2 * maxWeight; total++) {
    const share = (percent * total) / 100;
    const rounded = Math.round(share);
    if (Math.abs(share - rounded) < INTEGER_EPSILON && rounded <= maxWeight && total - rounded <= maxWeight) {
      // Written only if it also reads back as `percent` (100/3 % would read 33.3333: refused).
      const back = percentOf(total - rounded, rounded);
      return back !== undefined && Math.abs(back - percent) < READ_BACK_EPSILON ? { old: total - rounded, new: rounded } : undefined;
    }
  }
  return undefined;
}

/** `exactWeightsOrUndefined`, throwing a RangeError that names the service and the fix. */
export function exactWeights(percent: number, maxWeight: number, service: string): SideWeights {
  checkPercent(percent);
  const weights = exactWeightsOrUndefined(percent, maxWeight);
  if (!weights) {
    throw new RangeError(
      `weight ${percent}% cannot be expressed exactly with ${service} weights (integers 0–${maxWeight}): ` +
        'use whole percentages (or simple fractions such as 12.5) in the plan',
    );
  }
  return weights;
}

/** Percent on the new side for two weights (undefined when both are 0: the caller decides). */
export function percentOf(oldWeight: number, newWeight: number): number | undefined {
  const total = oldWeight + newWeight;
  if (total <= 0) return undefined;
  return Math.round(((newWeight * 100) / total) * PERCENT_DIGITS) / PERCENT_DIGITS;
}

/** JSON with sorted keys and no undefined values: equal contents give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = sortKeys(item);
    }
    return out;
  }
  return value;
}

/** A short, stable revision of some routing configuration: `<prefix>-<sha256 of its canonical JSON>`. */
export function contentRevision(prefix: string, value: unknown): string {
  return `${prefix}-${createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 32)}`;
}

/** Throws a TypeError naming the prop and the received value. */
export function requireText(name: string, value: unknown, pattern: RegExp, expected: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new TypeError(`${name} must be ${expected}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A positive whole number of milliseconds (or the default), else a RangeError. */
export function wholeMs(name: string, value: number | undefined, fallback: number, min = 0): number {
  const result = value ?? fallback;
  if (!Number.isInteger(result) || result < min) {
    throw new RangeError(`${name} must be a whole number of milliseconds ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return result;
}
