/**
 * The migration plan: ordered steps of (weight, bake time), a soak after 100 %, and a teardown
 * policy. Pure data plus validation; the CDK construct and the CLI build plans through these
 * factories so that a bad plan fails the same way everywhere.
 */

/** One step: route `weight` % of traffic to the new side, then watch it for `bakeMs`. */
export interface PlanStep {
  /** Percent of traffic on the new side during this step: 0 < weight ≤ 100. */
  readonly weight: number;
  /** How long the step is watched before the next one may start, in ms. */
  readonly bakeMs: number;
}

/** When the old side's capacity pin is released. */
export type TeardownMode = 'manual' | 'after-soak';

/** The serialisable form of a plan (stored with the migration, passed in environment variables). */
export interface PlanSpec {
  readonly steps: readonly PlanStep[];
  /** How long the new side is watched at 100 % before the migration is complete, in ms. */
  readonly soakMs: number;
  /** Length of one health window the judge looks at, in ms. Every bake must be at least this long. */
  readonly healthWindowMs: number;
  /** `manual`: the old side stays pinned until an explicit teardown. `after-soak`: released when the soak passes. */
  readonly teardown: TeardownMode;
}

/** A plan that failed validation. The message shows the bad value. */
export class PlanValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanValidationError';
  }
}

const MINUTE = 60_000;

/** Options shared by every factory. */
export interface PlanOptions {
  /**
   * How long the new side is watched at 100 % before the migration counts as complete.
   * @default 10 minutes
   */
  readonly soakMs?: number;
  /**
   * Length of one health window.
   * @default 1 minute (CloudWatch's standard resolution)
   */
  readonly healthWindowMs?: number;
  /**
   * When the old side's capacity pin is released.
   * @default 'manual' — only an explicit teardown releases the old side
   */
  readonly teardown?: TeardownMode;
}

export interface CanaryOptions extends PlanOptions {
  /** Percent of traffic for the canary step, 0 < percent < 100. */
  readonly percent: number;
  /** Bake time of the canary step, in ms. */
  readonly bakeMs: number;
}

export interface LinearOptions extends PlanOptions {
  /** Percent added at every step, 0 < percentPerStep < 100. */
  readonly percentPerStep: number;
  /** Bake time of every step, in ms. */
  readonly intervalMs: number;
}

/** A validated migration plan. Build it with a factory or a preset; it cannot be invalid. */
export class MigrationPlan {
  /** 10 % for 5 minutes, then 100 %. */
  static readonly CANARY_10PERCENT_5MINUTES = MigrationPlan.canary({ percent: 10, bakeMs: 5 * MINUTE });
  /** 10 % for 10 minutes, then 100 %. */
  static readonly CANARY_10PERCENT_10MINUTES = MigrationPlan.canary({ percent: 10, bakeMs: 10 * MINUTE });
  /** 10 % for 15 minutes, then 100 %. */
  static readonly CANARY_10PERCENT_15MINUTES = MigrationPlan.canary({ percent: 10, bakeMs: 15 * MINUTE });
  /** 10 % for 30 minutes, then 100 %. */
  static readonly CANARY_10PERCENT_30MINUTES = MigrationPlan.canary({ percent: 10, bakeMs: 30 * MINUTE });
  /** +10 % every minute. */
  static readonly LINEAR_10PERCENT_EVERY_1MINUTE = MigrationPlan.linear({ percentPerStep: 10, intervalMs: MINUTE });
  /** +10 % every 2 minutes. */
  static readonly LINEAR_10PERCENT_EVERY_2MINUTES = MigrationPlan.linear({ percentPerStep: 10, intervalMs: 2 * MINUTE });
  /** +10 % every 3 minutes. */
  static readonly LINEAR_10PERCENT_EVERY_3MINUTES = MigrationPlan.linear({ percentPerStep: 10, intervalMs: 3 * MINUTE });
  /** +10 % every 10 minutes. */
  static readonly LINEAR_10PERCENT_EVERY_10MINUTES = MigrationPlan.linear({ percentPerStep: 10, intervalMs: 10 * MINUTE });
  /** Everything at once (still gated by the probe and watched during the soak). */
  static readonly ALL_AT_ONCE = MigrationPlan.fromSteps([{ weight: 100, bakeMs: MINUTE }]);

  /** A canary: `percent` for `bakeMs`, then 100 %. */
  static canary(options: CanaryOptions): MigrationPlan {
    if (!(options.percent > 0 && options.percent < 100)) {
      throw new PlanValidationError(`canary percent must be between 0 and 100 (exclusive), got ${options.percent}`);
    }
    return MigrationPlan.fromSteps(
      [
        { weight: options.percent, bakeMs: options.bakeMs },
        { weight: 100, bakeMs: options.bakeMs },
      ],
      options,
    );
  }

  /** Linear: +`percentPerStep` every `intervalMs` until 100 % (the last step is capped at 100). */
  static linear(options: LinearOptions): MigrationPlan {
    const { percentPerStep } = options;
    if (!(percentPerStep > 0 && percentPerStep < 100)) {
      throw new PlanValidationError(`linear percentPerStep must be between 0 and 100 (exclusive), got ${percentPerStep}`);
    }
    const steps: PlanStep[] = [];
    // Integer tenths avoid 0.1 + 0.2 style drift in the weights.
    for (let i = 1; ; i++) {
      const weight = Math.min(100, Math.round(percentPerStep * i * 1000) / 1000);
      steps.push({ weight, bakeMs: options.intervalMs });
      if (weight >= 100) break;
    }
    return MigrationPlan.fromSteps(steps, options);
  }

  /** An explicit list of steps. */
  static fromSteps(steps: readonly PlanStep[], options: PlanOptions = {}): MigrationPlan {
    return new MigrationPlan({
      steps: steps.map((s) => ({ weight: s.weight, bakeMs: s.bakeMs })),
      soakMs: options.soakMs ?? 10 * MINUTE,
      healthWindowMs: options.healthWindowMs ?? MINUTE,
      teardown: options.teardown ?? 'manual',
    });
  }

  /** Rebuilds (and re-validates) a plan from its stored form. */
  static fromSpec(spec: PlanSpec): MigrationPlan {
    if (spec === null || typeof spec !== 'object') {
      throw new PlanValidationError(`plan must be an object, got ${JSON.stringify(spec)}`);
    }
    if (!Array.isArray(spec.steps)) {
      throw new PlanValidationError(`plan.steps must be an array, got ${JSON.stringify(spec.steps)}`);
    }
    return new MigrationPlan(spec);
  }

  readonly steps: readonly PlanStep[];
  readonly soakMs: number;
  readonly healthWindowMs: number;
  readonly teardown: TeardownMode;

  private constructor(spec: PlanSpec) {
    validateSpec(spec);
    this.steps = Object.freeze(spec.steps.map((s) => Object.freeze({ weight: s.weight, bakeMs: s.bakeMs })));
    this.soakMs = spec.soakMs;
    this.healthWindowMs = spec.healthWindowMs;
    this.teardown = spec.teardown;
  }

  /** Total time from the first shift to the end of the soak, if every step passes at once. */
  get minimumDurationMs(): number {
    return this.steps.reduce((sum, s) => sum + s.bakeMs, 0) + this.soakMs;
  }

  toSpec(): PlanSpec {
    return {
      steps: this.steps.map((s) => ({ weight: s.weight, bakeMs: s.bakeMs })),
      soakMs: this.soakMs,
      healthWindowMs: this.healthWindowMs,
      teardown: this.teardown,
    };
  }

  /** Human-readable, e.g. "10% 5m → 100% 5m, soak 10m, teardown manual". */
  describe(): string {
    const steps = this.steps.map((s) => `${s.weight}% ${formatDuration(s.bakeMs)}`).join(' → ');
    return `${steps}, soak ${formatDuration(this.soakMs)}, teardown ${this.teardown}`;
  }
}

function validateSpec(spec: PlanSpec): void {
  const { steps, soakMs, healthWindowMs, teardown } = spec;
  if (!isFiniteNumber(healthWindowMs) || healthWindowMs <= 0) {
    throw new PlanValidationError(`healthWindowMs must be a positive number of milliseconds, got ${JSON.stringify(healthWindowMs)}`);
  }
  if (!isFiniteNumber(soakMs) || soakMs < 0) {
    throw new PlanValidationError(`soakMs must be zero or a positive number of milliseconds, got ${JSON.stringify(soakMs)}`);
  }
  if (teardown !== 'manual' && teardown !== 'after-soak') {
    throw new PlanValidationError(`teardown must be 'manual' or 'after-soak', got ${JSON.stringify(teardown)}`);
  }
  if (steps.length === 0) {
    throw new PlanValidationError('a plan needs at least one step, got none');
  }
  if (steps.length > 100) {
    throw new PlanValidationError(`a plan may have at most 100 steps, got ${steps.length}`);
  }
  let previous = 0;
  steps.forEach((step, i) => {
    const where = `step ${i + 1}`;
    if (!isFiniteNumber(step?.weight) || step.weight <= 0 || step.weight > 100) {
      throw new PlanValidationError(`${where}: weight must be more than 0 and at most 100, got ${JSON.stringify(step?.weight)}`);
    }
    if (step.weight <= previous) {
      throw new PlanValidationError(`${where}: weights must increase, got ${step.weight} after ${previous}`);
    }
    if (!isFiniteNumber(step.bakeMs) || step.bakeMs < healthWindowMs) {
      throw new PlanValidationError(
        `${where}: bake time must be at least one health window (${healthWindowMs} ms), got ${JSON.stringify(step.bakeMs)} ms`,
      );
    }
    previous = step.weight;
  });
  const last = steps[steps.length - 1]!.weight;
  if (last !== 100) {
    throw new PlanValidationError(`the last step must be 100%, got ${last}`);
  }
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** 90000 → "1m30s", 500 → "500ms". */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms < 1000) return `${ms}ms`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].join('') || '0s';
}
