/**
 * TrafficPort on an Application Load Balancer forward action with two weighted target groups
 * (old and new): a listener's default action, or one listener rule's action.
 *
 * ## Locking: read, compare, write, check
 * The revision is a hash of the listener's default actions (or the rule's actions) as ELB
 * describes them: the forward action's target groups and weights (sorted by ARN), its group
 * stickiness, and every other action on the listener or rule (authenticate, …). `setWeight`
 * re-reads them and refuses with `RevisionConflictError` when that hash is not the expected
 * revision; otherwise it writes the same actions with only the two weights changed
 * (`ModifyListener` / `ModifyRule`, every other part kept), then reads back: our weights there →
 * done; anything else → `RevisionConflictError`; still the previous action → read again (ELB's
 * API may answer from a replica a moment behind), and an error after `readBackAttempts`.
 *
 * ELB has no conditional write, so a window remains: from our re-read until ELB applies our
 * `Modify…` (one round trip; seconds when the SDK retries the call after a throttle or a timeout).
 * A write by anyone else that lands inside it is overwritten. The core's tick protocol
 * (docs/tick-protocol.md) makes this safe among controller runs, with one help from this port:
 * - Record, then route: every run writing in that window writes a change saved in the record, and
 *   only the run that saved the latest change can save again. Two runs making the same change
 *   write the same weights (idempotent, as is the SDK retrying our own call).
 * - A writer overwritten before its read-back sees another weight there: `RevisionConflictError`,
 *   and a rollback retries against the new revision (rule 5).
 * - Left: an advance whose call lands AFTER a racing rollback already read its own weight back.
 *   The rollback would be saved as done while traffic sits at the advance's weight, and nothing
 *   re-reads a rolled-back migration. So (`confirmOnNextRead`, on by default) a write is reported
 *   `settled: false`: the core keeps the change `shifting` and the next tick reads the routing
 *   again. At the target, the change is in effect; overwritten, a rollback is made again and an
 *   advance is found changed outside. The price is one tick before a step's bake starts.
 * A person editing the listener in the window is overwritten, as if they had edited it just before.
 *
 * ## Propagation
 * ALB routes each request on its own (client and target connections are separate), so a new
 * weight applies to the next request even on a Keep-Alive connection, within seconds of the call
 * and with no status to poll: reads are reported `settled: true` (writes: see `confirmOnNextRead`). Exception: with target-group
 * stickiness on, a client already bound to a group stays there for the stickiness duration, and
 * that includes rollbacks (keep the duration short during a migration).
 *
 * ## Weights
 * ELB weights are integers 0–999 and a group's share is its weight over the sum. A whole
 * percentage p is written as old = 100 − p, new = p (fractions: `shared.ts`). Both groups stay in
 * the action at 0 and 100 so that the next change is a weight change only. A forward to one of the
 * two groups alone (the usual state before a migration) reads as 0 or 100; a write then adds the
 * other group. A third group, or both at weight 0, is an `UnexpectedRoutingError`.
 */
import {
  DescribeListenersCommand,
  DescribeRulesCommand,
  ModifyListenerCommand,
  ModifyRuleCommand,
  type Action,
  type ElasticLoadBalancingV2Client,
  type TargetGroupTuple,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { RevisionConflictError, type TrafficPort, type TrafficState } from '../../core/ports';
import { UnexpectedRoutingError } from './alias';
import { contentRevision, exactWeights, percentOf, realSleep, requireText, wholeMs, type SideWeights, type Sleep } from './shared';

export interface LoadBalancerWeightedTrafficProps {
  /** Created once by the caller (`new ElasticLoadBalancingV2Client(clientConfig())`). */
  readonly elb: ElasticLoadBalancingV2Client;
  /**
   * The listener whose DEFAULT action forwards to the two groups. Give this or `ruleArn`.
   * @default - none: `ruleArn` is used
   */
  readonly listenerArn?: string;
  /**
   * The listener rule whose action forwards to the two groups. Give this or `listenerArn`.
   * @default - none: `listenerArn` is used
   */
  readonly ruleArn?: string;
  readonly oldTargetGroupArn: string;
  readonly newTargetGroupArn: string;
  /**
   * Reads after a write while ELB still shows the previous action, before giving up.
   * @default 3
   */
  readonly readBackAttempts?: number;
  /** @default 500 */
  readonly readBackDelayMs?: number;
  /**
   * Report every write as `settled: false`, so that the change counts only once a later read (the
   * next tick) still finds it: closes the last race of a write without a condition (see header).
   * @default true
   */
  readonly confirmOnNextRead?: boolean;
  /** @default - real timers */
  readonly sleep?: Sleep;
}

export const ELB_MAX_WEIGHT = 999;

const ARN = 'arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}';
const LISTENER_ARN = new RegExp(`^${ARN}:listener/[^/]+/[^/]+/[^/]+/[^/]+$`);
const RULE_ARN = new RegExp(`^${ARN}:listener-rule/[^/]+/[^/]+/[^/]+/[^/]+/[^/]+$`);
const TARGET_GROUP_ARN = new RegExp(`^${ARN}:targetgroup/[^/]+/[^/]+$`);

/** The actions of the listener or rule as read, with the forward action and its two weights. */
interface Read {
  readonly actions: readonly Action[];
  readonly forwardIndex: number;
  readonly weights: SideWeights;
  readonly revision: string;
}

export class LoadBalancerWeightedTraffic implements TrafficPort {
  private readonly readBackAttempts: number;
  private readonly readBackDelayMs: number;
  private readonly sleep: Sleep;
  private readonly confirm: boolean;

  /** True when `percent` can be written exactly (validate plans with it before a migration). */
  static canExpress(percent: number): boolean {
    try {
      exactWeights(percent, ELB_MAX_WEIGHT, 'ELB');
      return true;
    } catch {
      return false;
    }
  }

  constructor(private readonly props: LoadBalancerWeightedTrafficProps) {
    if ((props.listenerArn === undefined) === (props.ruleArn === undefined)) {
      throw new TypeError(
        `give exactly one of listenerArn (the listener's default action) or ruleArn (a rule's action), got ${JSON.stringify({ listenerArn: props.listenerArn, ruleArn: props.ruleArn })}`,
      );
    }
    if (props.listenerArn !== undefined) {
      requireText('listenerArn', props.listenerArn, LISTENER_ARN, 'a listener ARN (arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<lb>/<id>/<id>)');
    }
    if (props.ruleArn !== undefined) {
      requireText('ruleArn', props.ruleArn, RULE_ARN, 'a listener rule ARN (arn:aws:elasticloadbalancing:<region>:<account>:listener-rule/app/<lb>/<id>/<id>/<id>)');
    }
    for (const key of ['oldTargetGroupArn', 'newTargetGroupArn'] as const) {
      requireText(key, props[key], TARGET_GROUP_ARN, 'a target group ARN (arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>)');
    }
    if (props.oldTargetGroupArn === props.newTargetGroupArn) {
      throw new TypeError(`oldTargetGroupArn and newTargetGroupArn must differ, both are ${JSON.stringify(props.oldTargetGroupArn)}`);
    }
    this.readBackAttempts = props.readBackAttempts ?? 3;
    if (!Number.isInteger(this.readBackAttempts) || this.readBackAttempts < 1 || this.readBackAttempts > 10) {
      throw new RangeError(`readBackAttempts must be a whole number from 1 to 10, got ${JSON.stringify(props.readBackAttempts)}`);
    }
    this.readBackDelayMs = wholeMs('readBackDelayMs', props.readBackDelayMs, 500);
    this.sleep = props.sleep ?? realSleep;
    this.confirm = props.confirmOnNextRead ?? true;
  }

  async getWeight(): Promise<TrafficState> {
    return stateOf(await this.read());
  }

  async setWeight(weight: number, expectedRevision: string): Promise<TrafficState> {
    const target = exactWeights(weight, ELB_MAX_WEIGHT, 'ELB');
    const before = await this.read();
    if (before.revision !== expectedRevision) throw new RevisionConflictError(expectedRevision, before.revision);
    if (before.weights.old === target.old && before.weights.new === target.new && this.hasBothGroups(before)) {
      return stateOf(before, !this.confirm); // a twin made this very change: nothing to write
    }
    const actions = before.actions.map((action, i) => (i === before.forwardIndex ? this.withWeights(action, target) : writable(action)));
    // ---- the window: a writer between the read above and this call is overwritten (see header) ----
    if (this.props.ruleArn !== undefined) {
      await this.props.elb.send(new ModifyRuleCommand({ RuleArn: this.props.ruleArn, Actions: actions }));
    } else {
      await this.props.elb.send(new ModifyListenerCommand({ ListenerArn: this.props.listenerArn, DefaultActions: actions }));
    }
    for (let attempt = 1; ; attempt++) {
      const after = await this.read();
      if (after.weights.old === target.old && after.weights.new === target.new) return stateOf(after, !this.confirm);
      if (after.revision !== before.revision) throw new RevisionConflictError(expectedRevision, after.revision);
      if (attempt >= this.readBackAttempts) {
        throw new Error(
          `${this.where()} still shows the previous weights (old ${before.weights.old}, new ${before.weights.new}) ${attempt} read(s) after the change to ${weight}% was accepted; the next read may show it`,
        );
      }
      await this.sleep(this.readBackDelayMs);
    }
  }

  /** The forward action with both groups at the target weights; stickiness and the rest kept. */
  private withWeights(action: Action, target: SideWeights): Action {
    const { TargetGroupArn: _single, ...rest } = action; // with ForwardConfig, a single ARN must match it: drop it
    const groups: TargetGroupTuple[] = [
      { TargetGroupArn: this.props.oldTargetGroupArn, Weight: target.old },
      { TargetGroupArn: this.props.newTargetGroupArn, Weight: target.new },
    ];
    return { ...rest, ForwardConfig: { ...action.ForwardConfig, TargetGroups: groups } };
  }

  private hasBothGroups(read: Read): boolean {
    const groups = groupsOf(read.actions[read.forwardIndex]!).map((g) => g.TargetGroupArn);
    return groups.includes(this.props.oldTargetGroupArn) && groups.includes(this.props.newTargetGroupArn);
  }

  private async read(): Promise<Read> {
    const actions = this.props.ruleArn !== undefined ? await this.ruleActions(this.props.ruleArn) : await this.listenerActions(this.props.listenerArn!);
    const forwards = actions.map((a, i) => (a.Type === 'forward' ? i : -1)).filter((i) => i >= 0);
    if (forwards.length !== 1) {
      throw new UnexpectedRoutingError(
        `${this.where()} has ${forwards.length} forward actions (types: ${actions.map((a) => a.Type).join(', ') || 'none'}); it needs exactly one, forwarding to the old and new target groups`,
      );
    }
    const forwardIndex = forwards[0]!;
    const groups = groupsOf(actions[forwardIndex]!);
    const { oldTargetGroupArn: oldArn, newTargetGroupArn: newArn } = this.props;
    const strangers = groups.map((g) => g.TargetGroupArn).filter((arn) => arn !== oldArn && arn !== newArn);
    if (strangers.length > 0 || groups.length === 0) {
      throw new UnexpectedRoutingError(
        `${this.where()} forwards to ${groups.length} target group(s), ${strangers.length > 0 ? `including ${strangers.join(', ')}, which belong to neither side` : 'none of them'}; expected the old (${oldArn}) and the new (${newArn}) group only`,
      );
    }
    // A group missing from the action gets nothing; a listed one without a weight field counts as 1.
    const weightOf = (arn: string) => {
      const group = groups.find((g) => g.TargetGroupArn === arn);
      return group ? (group.Weight ?? 1) : 0;
    };
    const weights = { old: weightOf(oldArn), new: weightOf(newArn) };
    if (weights.old + weights.new <= 0) {
      throw new UnexpectedRoutingError(`${this.where()} gives both target groups weight 0`);
    }
    return { actions, forwardIndex, weights, revision: revisionOf(actions) };
  }

  private async listenerActions(listenerArn: string): Promise<Action[]> {
    const out = await this.props.elb.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] }));
    const listener = (out.Listeners ?? []).find((l) => l.ListenerArn === listenerArn);
    if (!listener) throw new UnexpectedRoutingError(`listener ${listenerArn} was not in the DescribeListeners answer`);
    return listener.DefaultActions ?? [];
  }

  private async ruleActions(ruleArn: string): Promise<Action[]> {
    let marker: string | undefined;
    for (let page = 1; page <= 10; page++) {
      const out = await this.props.elb.send(new DescribeRulesCommand({ RuleArns: [ruleArn], ...(marker ? { Marker: marker } : {}) }));
      const rule = (out.Rules ?? []).find((r) => r.RuleArn === ruleArn);
      if (rule) return rule.Actions ?? [];
      marker = out.NextMarker;
      if (!marker) break;
    }
    throw new UnexpectedRoutingError(`rule ${ruleArn} was not in the DescribeRules answer`);
  }

  private where(): string {
    return this.props.ruleArn !== undefined ? `rule ${this.props.ruleArn}` : `the default action of listener ${this.props.listenerArn}`;
  }
}

/** The forward action's groups: ForwardConfig's, or the single TargetGroupArn. */
function groupsOf(action: Action): TargetGroupTuple[] {
  const groups = action.ForwardConfig?.TargetGroups ?? [];
  if (groups.length > 0) return groups;
  return action.TargetGroupArn ? [{ TargetGroupArn: action.TargetGroupArn, Weight: 1 }] : [];
}

/**
 * An action as ELB describes it, made fit to send back. Describe never returns an OIDC client
 * secret; Modify then needs `UseExistingClientSecret` to keep the stored one.
 */
function writable(action: Action): Action {
  const oidc = action.AuthenticateOidcConfig;
  if (oidc && oidc.ClientSecret === undefined) {
    return { ...action, AuthenticateOidcConfig: { ...oidc, UseExistingClientSecret: true } };
  }
  return action;
}

/** The revision: a hash of every action, the forward action's groups sorted by ARN. */
function revisionOf(actions: readonly Action[]): string {
  const normalized = actions.map((action) => {
    const groups = action.ForwardConfig?.TargetGroups;
    if (!groups) return action;
    const sorted = [...groups].sort((a, b) => (a.TargetGroupArn ?? '').localeCompare(b.TargetGroupArn ?? ''));
    return { ...action, ForwardConfig: { ...action.ForwardConfig, TargetGroups: sorted } };
  });
  return contentRevision('alb', normalized);
}

/** A read is settled (ALB applies a change within seconds, per request); a write may not be yet. */
function stateOf(read: Read, settled = true): TrafficState {
  return { weight: percentOf(read.weights.old, read.weights.new)!, revision: read.revision, settled };
}
