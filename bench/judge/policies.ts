/**
 * The two reference policies, run on the same window draws as the controller (World.draw: same
 * seed and weight → same per-window counts).
 *
 * (a) Flagger with its defaults: one check per window (interval = window); the check fails when
 *     the canary's success rate (non-5XX share) is below 99 % or its p99 is above 500 ms, and also
 *     when the window has no data for the canary (no requests, or no health data at all): Flagger
 *     halts on "no values found" and counts a failed check. Failed checks accumulate over the
 *     analysis (they are not reset by passing checks); at 5 (the threshold) it rolls back. A
 *     failed check also holds the step (no advance in that window). Flagger reads no user alarms.
 * (b) A CodeDeploy-style alarm: rollback in the first window with ≥ N 5XX on the new side (one
 *     datapoint of one, a 1-window period), or when the user's alarm is in ALARM. Missing data
 *     leaves the alarm as it was (TreatMissingData: missing), so it never rolls back on it; an
 *     INSUFFICIENT_DATA alarm does not roll back either.
 *
 * With a promoting plan both follow the plan's schedule (a step advances after its bake windows),
 * with Flagger holding on every failed check as said.
 */
import { emptyOutcome, promotingSteps, type Outcome } from './runner';
import type { WindowDraw } from './sim';
import type { World } from './world';

export interface PolicyOptions {
  /** 5XX on the new side in one window that fire the CodeDeploy-style alarm. */
  readonly codedeployThreshold: number;
}

/** Flagger's defaults as used here. */
export const FLAGGER = { minSuccessRate: 0.99, maxP99Ms: 500, threshold: 5 } as const;

/** What a policy says about one window. */
type Verdict = { readonly kind: 'pass' } | { readonly kind: 'fail'; readonly code: string } | { readonly kind: 'rollback'; readonly code: string };

interface Policy {
  readonly name: string;
  /** `draw` undefined: the window has no health data. */
  check(draw: WindowDraw | undefined, alarmFiring: boolean): Verdict;
}

function flagger(): Policy {
  let failed = 0;
  return {
    name: 'flagger',
    check(draw) {
      let code = '';
      if (!draw || draw.new.requests === 0) code = 'no-values';
      else if (1 - draw.new.errors5xx / draw.new.requests < FLAGGER.minSuccessRate) code = 'success-rate';
      else if ((draw.new.p99Ms ?? 0) > FLAGGER.maxP99Ms) code = 'request-duration';
      if (!code) return { kind: 'pass' };
      failed++;
      return failed >= FLAGGER.threshold ? { kind: 'rollback', code } : { kind: 'fail', code };
    },
  };
}

function codedeploy(threshold: number): Policy {
  return {
    name: 'codedeploy',
    check(draw, alarmFiring) {
      if (alarmFiring) return { kind: 'rollback', code: 'user-alarm' };
      if (draw && draw.new.errors5xx >= threshold) return { kind: 'rollback', code: `5xx>=${threshold}` };
      return { kind: 'pass' };
    },
  };
}

/** The weight schedule of a plan for a policy: step weights and bake windows, then the soak. */
function schedule(world: World): { steps: [number, number][]; soak: number } {
  const plan = world.cell.plan;
  if (plan.kind === 'promoting') return promotingSteps(world.windows);
  return { steps: [[plan.weight, Infinity]], soak: Infinity };
}

function runPolicy(world: World, policy: Policy): Outcome {
  const out = emptyOutcome();
  const { steps, soak } = schedule(world);
  let step = 0;
  let inStep = 0;
  let soaking = false;
  for (let j = 1; j <= world.windows; j++) {
    const weight = soaking ? 100 : steps[step]![0];
    const draw = world.draw(j, weight);
    out.blast5xx += draw.new.errors5xx;
    out.servedNew += draw.new.requests;
    const alarmFiring = world.alarms(j).some((a) => a.state === 'ALARM');
    const verdict = policy.check(world.missing(j) ? undefined : draw, alarmFiring);
    if (verdict.kind === 'rollback') {
      [out.rollbackAt, out.rollbackCode, out.final] = [j, verdict.code, 'rolled-back'];
      return out;
    }
    if (verdict.kind === 'fail') continue;
    inStep++;
    if (soaking) {
      if (inStep >= soak) {
        out.completed = true;
        break;
      }
    } else if (inStep >= steps[step]![1]) {
      inStep = 0;
      if (step + 1 < steps.length) step++;
      else soaking = true;
      if (steps[step]![0] >= 100 && out.promotedAt === null) out.promotedAt = j;
    }
  }
  out.final = out.completed ? 'complete' : 'live';
  return out;
}

export function runFlagger(world: World): Outcome {
  return runPolicy(world, flagger());
}

export function runCodeDeploy(world: World, options: PolicyOptions): Outcome {
  return runPolicy(world, codedeploy(options.codedeployThreshold));
}
