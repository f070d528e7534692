/**
 * Parsing of the rehearsal's command-line values, with errors that show the bad value.
 */
import { MigrationPlan, type PlanSpec, type PlanStep } from '../lambda/core/plan';

/** A value on the command line that cannot be used. The CLI prints it and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1500ms", "3s", "2m", "1.5s" → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!match) throw new UsageError(`${what} must be a duration like 500ms, 3s or 2m, got ${JSON.stringify(text)}`);
  return Math.round(Number(match[1]) * UNITS[match[2]!]!);
}

/** "5@3s,25@3s,100@2s" → steps. */
export function parseSteps(text: string): PlanStep[] {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new UsageError(`--steps needs at least one step like 10@3s, got ${JSON.stringify(text)}`);
  return parts.map((part) => {
    const match = /^(\d+(?:\.\d+)?)%?@(.+)$/.exec(part);
    if (!match) throw new UsageError(`--steps: each step must look like <weight>@<bake>, e.g. 10@3s; got ${JSON.stringify(part)}`);
    return { weight: Number(match[1]), bakeMs: parseDuration(match[2]!, `--steps bake of ${JSON.stringify(part)}`) };
  });
}

/** A whole number within [min, max]. */
export function parseInteger(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`${what} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A share from 0 to 1 ("0.1"), or a percentage ("10%"). */
export function parseShare(text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text);
  if (!match) throw new UsageError(`${what} must be a share from 0 to 1 (or a percentage like 10%), got ${JSON.stringify(text)}`);
  const value = match[2] === '%' ? Number(match[1]) / 100 : Number(match[1]);
  if (value > 1) throw new UsageError(`${what} must be a share from 0 to 1 (or a percentage like 10%), got ${JSON.stringify(text)}`);
  return value;
}

/** The compressed plan the rehearsal runs by default: seconds, not minutes. */
export const DEFAULT_REHEARSAL_STEPS = '5@3s,25@3s,50@3s,100@3s';
export const DEFAULT_REHEARSAL_SOAK = '3s';
export const DEFAULT_REHEARSAL_WINDOW = '1s';

/** Builds and validates a plan from the CLI's values; a bad plan is a usage error. */
export function buildRehearsalPlan(steps: string, soak: string, window: string): PlanSpec {
  const healthWindowMs = parseDuration(window, '--window');
  try {
    return MigrationPlan.fromSteps(parseSteps(steps), {
      soakMs: parseDuration(soak, '--soak'),
      healthWindowMs,
      teardown: 'manual',
    }).toSpec();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`invalid plan: ${error instanceof Error ? error.message : String(error)}`);
  }
}
