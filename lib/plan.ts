/**
 * Traffic shift plans for `CanaryMigration`, in the aws-codedeploy style: presets named like
 * `LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES`, and static factories that take `Duration`s.
 *
 * The plan itself is built and validated by the pure core (`MigrationPlan`), so a plan that the CDK
 * side accepts is exactly a plan that the controller accepts at run time. This file only adds the
 * AWS-specific rules (whole-minute health windows) and the `Duration` ↔ milliseconds mapping.
 */
import { Duration, Token } from 'aws-cdk-lib';
import { MigrationPlan, type PlanSpec, type PlanStep } from '../lambda/core/plan';
import { CutoverValidationError, show } from './errors';

/** Declared before the class: its static presets are built (and checked) while the class is defined. */
const MINUTE_MS = 60_000;

/** When the old version's pinned capacity is released. */
export enum TeardownPolicy {
  /** The old side stays pinned until an operator sends `teardown` (the safe default). */
  MANUAL = 'manual',
  /** The pin is released automatically once the soak after 100 % has passed. */
  AFTER_SOAK = 'after-soak',
}

/** Options every plan factory accepts. */
export interface TrafficShiftPlanOptions {
  /**
   * How long the new version is watched at 100 % before the migration counts as complete. A
   * rollback during the soak is still instant because the old version keeps its capacity.
   * @default Duration.minutes(10)
   */
  readonly soak?: Duration;
  /**
   * Length of one health window the judge compares old against new. Lambda and EMF metrics have a
   * one-minute resolution, so this must be a whole number of minutes.
   * @default Duration.minutes(1)
   */
  readonly healthWindow?: Duration;
  /**
   * When the old version's pinned capacity is released.
   * @default TeardownPolicy.MANUAL
   */
  readonly teardown?: TeardownPolicy;
}

/** Options for `TrafficShiftPlan.canary`. */
export interface CanaryPlanOptions extends TrafficShiftPlanOptions {
  /** Percent of traffic on the new version during the canary step (more than 0, less than 100). */
  readonly percent: number;
  /** How long the canary step bakes before everything moves (at least one health window). */
  readonly bake: Duration;
}

/** Options for `TrafficShiftPlan.linear`. */
export interface LinearPlanOptions extends TrafficShiftPlanOptions {
  /** Percent added at every step (more than 0, less than 100); the last step is capped at 100. */
  readonly percentPerStep: number;
  /** Bake time of every step (at least one health window). */
  readonly interval: Duration;
}

/** One step of a custom plan. */
export interface TrafficShiftStep {
  /** Percent of traffic on the new version during this step (more than 0, at most 100, increasing). */
  readonly weight: number;
  /** How long the step bakes before the next one may start (at least one health window). */
  readonly bake: Duration;
}

/**
 * How traffic moves from the old version to the new one: weighted steps with bake times, a soak
 * at 100 %, and a teardown policy.
 *
 * Use a preset (comparable to CodeDeploy's `LambdaDeploymentConfig`) or a factory:
 *
 * ```ts
 * TrafficShiftPlan.CANARY_10PERCENT_5MINUTES
 * TrafficShiftPlan.linear({ percentPerStep: 25, interval: Duration.minutes(3) })
 * TrafficShiftPlan.steps([{ weight: 5, bake: Duration.minutes(10) }, { weight: 100, bake: Duration.minutes(5) }])
 * ```
 */
export class TrafficShiftPlan {
  /** 10 % for 5 minutes, then 100 %. */
  public static readonly CANARY_10PERCENT_5MINUTES = TrafficShiftPlan.preset(MigrationPlan.CANARY_10PERCENT_5MINUTES, 'CANARY_10PERCENT_5MINUTES');
  /** 10 % for 10 minutes, then 100 %. */
  public static readonly CANARY_10PERCENT_10MINUTES = TrafficShiftPlan.preset(MigrationPlan.CANARY_10PERCENT_10MINUTES, 'CANARY_10PERCENT_10MINUTES');
  /** 10 % for 15 minutes, then 100 %. */
  public static readonly CANARY_10PERCENT_15MINUTES = TrafficShiftPlan.preset(MigrationPlan.CANARY_10PERCENT_15MINUTES, 'CANARY_10PERCENT_15MINUTES');
  /** 10 % for 30 minutes, then 100 %. */
  public static readonly CANARY_10PERCENT_30MINUTES = TrafficShiftPlan.preset(MigrationPlan.CANARY_10PERCENT_30MINUTES, 'CANARY_10PERCENT_30MINUTES');
  /** +10 % every minute. */
  public static readonly LINEAR_10PERCENT_EVERY_1MINUTE = TrafficShiftPlan.preset(MigrationPlan.LINEAR_10PERCENT_EVERY_1MINUTE, 'LINEAR_10PERCENT_EVERY_1MINUTE');
  /** +10 % every 2 minutes. */
  public static readonly LINEAR_10PERCENT_EVERY_2MINUTES = TrafficShiftPlan.preset(MigrationPlan.LINEAR_10PERCENT_EVERY_2MINUTES, 'LINEAR_10PERCENT_EVERY_2MINUTES');
  /** +10 % every 3 minutes. */
  public static readonly LINEAR_10PERCENT_EVERY_3MINUTES = TrafficShiftPlan.preset(MigrationPlan.LINEAR_10PERCENT_EVERY_3MINUTES, 'LINEAR_10PERCENT_EVERY_3MINUTES');
  /** +10 % every 10 minutes. */
  public static readonly LINEAR_10PERCENT_EVERY_10MINUTES = TrafficShiftPlan.preset(MigrationPlan.LINEAR_10PERCENT_EVERY_10MINUTES, 'LINEAR_10PERCENT_EVERY_10MINUTES');
  /** Everything at once, still gated by the probe and watched during the soak. */
  public static readonly ALL_AT_ONCE = TrafficShiftPlan.preset(MigrationPlan.ALL_AT_ONCE, 'ALL_AT_ONCE');

  /** A canary: `percent` for `bake`, then 100 % for another `bake`, then the soak. */
  public static canary(options: CanaryPlanOptions): TrafficShiftPlan {
    const where = 'TrafficShiftPlan.canary';
    const percent = concreteNumber(options.percent, `${where}: percent`);
    const bakeMs = toMs(options.bake, `${where}: bake`);
    return TrafficShiftPlan.build(where, () => MigrationPlan.canary({ percent, bakeMs, ...coreOptions(options, where) }));
  }

  /** Linear: +`percentPerStep` every `interval` until 100 %, then the soak. */
  public static linear(options: LinearPlanOptions): TrafficShiftPlan {
    const where = 'TrafficShiftPlan.linear';
    const percentPerStep = concreteNumber(options.percentPerStep, `${where}: percentPerStep`);
    const intervalMs = toMs(options.interval, `${where}: interval`);
    return TrafficShiftPlan.build(where, () => MigrationPlan.linear({ percentPerStep, intervalMs, ...coreOptions(options, where) }));
  }

  /** An explicit list of steps; weights must increase and the last one must be 100. */
  public static steps(steps: TrafficShiftStep[], options: TrafficShiftPlanOptions = {}): TrafficShiftPlan {
    const where = 'TrafficShiftPlan.steps';
    if (!Array.isArray(steps)) {
      throw new CutoverValidationError(`${where}: steps must be an array, got ${show(steps)}`);
    }
    const coreSteps: PlanStep[] = steps.map((step, i) => ({
      weight: concreteNumber(step?.weight, `${where}: step ${i + 1} weight`),
      bakeMs: toMs(step?.bake, `${where}: step ${i + 1} bake`),
    }));
    return TrafficShiftPlan.build(where, () => MigrationPlan.fromSteps(coreSteps, coreOptions(options, where)));
  }

  /** Rebuilds a plan from its serialised form (for example one exported by the CLI). */
  public static fromSpec(spec: PlanSpec): TrafficShiftPlan {
    return TrafficShiftPlan.build('TrafficShiftPlan.fromSpec', () => MigrationPlan.fromSpec(spec));
  }

  private static preset(plan: MigrationPlan, name: string): TrafficShiftPlan {
    return new TrafficShiftPlan(plan, name);
  }

  /** Runs a core factory and reports its validation error with the factory's name. */
  private static build(where: string, make: () => MigrationPlan): TrafficShiftPlan {
    let plan: MigrationPlan;
    try {
      plan = make();
    } catch (error) {
      if (error instanceof CutoverValidationError) throw error;
      throw new CutoverValidationError(`${where}: ${(error as Error).message}`);
    }
    return new TrafficShiftPlan(plan);
  }

  /** The validated plan as the controller stores it (steps, soak, health window, teardown). */
  public readonly spec: PlanSpec;
  /** The preset's name (e.g. `CANARY_10PERCENT_5MINUTES`); undefined for custom plans. */
  public readonly presetName?: string;

  private readonly plan: MigrationPlan;

  private constructor(plan: MigrationPlan, presetName?: string) {
    // Re-checked here (not only in the factories) because presets come straight from the core and
    // the AWS-only rule (whole-minute windows) must hold for them too.
    checkHealthWindow(plan.healthWindowMs, presetName ?? 'TrafficShiftPlan');
    this.plan = plan;
    this.spec = plan.toSpec();
    this.presetName = presetName;
  }

  /** The same plan with another teardown policy. */
  public withTeardown(teardown: TeardownPolicy): TrafficShiftPlan {
    return TrafficShiftPlan.build('TrafficShiftPlan.withTeardown', () => MigrationPlan.fromSpec({ ...this.spec, teardown: teardownMode(teardown, 'TrafficShiftPlan.withTeardown') }));
  }

  /** Time from the first shift to the end of the soak when every step passes at once. */
  public get minimumDuration(): Duration {
    return Duration.millis(this.plan.minimumDurationMs);
  }

  /** Human-readable, e.g. "10% 5m → 100% 5m, soak 10m, teardown manual". */
  public describe(): string {
    return this.plan.describe();
  }
}

function coreOptions(options: TrafficShiftPlanOptions, where: string) {
  const healthWindowMs = options.healthWindow === undefined ? undefined : toMs(options.healthWindow, `${where}: healthWindow`);
  if (healthWindowMs !== undefined) checkHealthWindow(healthWindowMs, where);
  return {
    soakMs: options.soak === undefined ? undefined : toMs(options.soak, `${where}: soak`),
    healthWindowMs,
    teardown: options.teardown === undefined ? undefined : teardownMode(options.teardown, where),
  };
}

function checkHealthWindow(healthWindowMs: number, where: string): void {
  if (healthWindowMs < MINUTE_MS || healthWindowMs % MINUTE_MS !== 0) {
    throw new CutoverValidationError(
      `${where}: healthWindow must be a whole number of minutes (Lambda and EMF metrics have one-minute resolution), got ${healthWindowMs} ms`,
    );
  }
}

function teardownMode(teardown: TeardownPolicy, where: string): PlanSpec['teardown'] {
  if (teardown !== TeardownPolicy.MANUAL && teardown !== TeardownPolicy.AFTER_SOAK) {
    throw new CutoverValidationError(`${where}: teardown must be TeardownPolicy.MANUAL or TeardownPolicy.AFTER_SOAK, got ${show(teardown)}`);
  }
  return teardown;
}

function concreteNumber(value: unknown, what: string): number {
  if (typeof value === 'number' && Token.isUnresolved(value)) {
    throw new CutoverValidationError(`${what} must be a number known at synth (the plan is stored as JSON), got a token`);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new CutoverValidationError(`${what} must be a finite number, got ${show(value)}`);
  }
  return value;
}

function toMs(duration: unknown, what: string): number {
  if (!(duration instanceof Duration)) {
    throw new CutoverValidationError(`${what} must be a Duration (e.g. Duration.minutes(5)), got ${show(duration)}`);
  }
  if (duration.isUnresolved()) {
    throw new CutoverValidationError(`${what} must be known at synth (the plan is stored as JSON), got a token: ${duration.toString()}`);
  }
  return duration.toMilliseconds();
}
