/**
 * The active drain of a DNS migration's new side after a rollback: the new fleet's load balancer
 * shortens its HTTP client Keep-Alive duration (`client_keep_alive.seconds`, 60–604800 s, ELB's
 * default 3600 s) to the minimum, 60 s. ELB then closes each client connection once it has been
 * open that long, after the request in flight, so a client that kept a connection (the incident's
 * ~10 % after the rollback) reconnects, and resolves the name again if its answer expired: the
 * weighted records now send it to the old fleet. Without it those connections stay on the new
 * fleet for up to an hour, or until someone closes them by hand.
 *
 * The load balancer's own setting is kept in a tag on it (`cutover:original-client-keep-alive`),
 * written before the change, so that `undrain` (at teardown, after the watch) puts it back even
 * from another Lambda container, and a crash between the tag and the change is harmless (the next
 * `drain` changes; `undrain` of an unchanged setting only removes the tag). A setting already at or
 * below 60 s is left alone.
 */
import {
  AddTagsCommand,
  DescribeLoadBalancerAttributesCommand,
  DescribeTagsCommand,
  ModifyLoadBalancerAttributesCommand,
  RemoveTagsCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { TrafficPort, TrafficPreparation, TrafficState } from '../../core/ports';

export const CLIENT_KEEP_ALIVE = 'client_keep_alive.seconds';
/** ELB's default for `client_keep_alive.seconds`. */
export const DEFAULT_CLIENT_KEEP_ALIVE_SECONDS = 3600;
/** ELB's minimum: connections end at most this long after they opened. */
export const DRAIN_CLIENT_KEEP_ALIVE_SECONDS = 60;
export const ORIGINAL_TAG = 'cutover:original-client-keep-alive';

export interface KeepAliveDrainProps {
  /** Created once by the caller. */
  readonly elb: ElasticLoadBalancingV2Client;
  /** The NEW fleet's load balancer ARN. */
  readonly loadBalancerArn: string;
}

export class KeepAliveDrain {
  constructor(private readonly props: KeepAliveDrainProps) {
    if (!/^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer\/app\/.+$/.test(props.loadBalancerArn ?? '')) {
      throw new TypeError(`loadBalancerArn must be an Application Load Balancer ARN, got ${JSON.stringify(props.loadBalancerArn)}`);
    }
  }

  /** Shortens the client Keep-Alive to 60 s (idempotent); returns a line for the timeline. */
  async drain(): Promise<string> {
    const current = await this.current();
    if (current <= DRAIN_CLIENT_KEEP_ALIVE_SECONDS) {
      return `client Keep-Alive of the new load balancer is already ${current} s: its connections end within that`;
    }
    const recorded = await this.recorded();
    if (recorded === undefined) {
      await this.props.elb.send(new AddTagsCommand({ ResourceArns: [this.props.loadBalancerArn], Tags: [{ Key: ORIGINAL_TAG, Value: String(current) }] }));
    }
    await this.set(DRAIN_CLIENT_KEEP_ALIVE_SECONDS);
    return `client Keep-Alive of the new load balancer shortened from ${current} s to ${DRAIN_CLIENT_KEEP_ALIVE_SECONDS} s: its connections end within a minute and clients resolve the name again`;
  }

  /** Puts the recorded setting back and removes the tag (idempotent). */
  async undrain(): Promise<string> {
    const recorded = await this.recorded();
    if (recorded === undefined) return 'nothing to undo: the new load balancer keeps its own client Keep-Alive';
    const current = await this.current();
    if (current === DRAIN_CLIENT_KEEP_ALIVE_SECONDS && recorded !== current) await this.set(recorded);
    await this.props.elb.send(new RemoveTagsCommand({ ResourceArns: [this.props.loadBalancerArn], TagKeys: [ORIGINAL_TAG] }));
    return current === DRAIN_CLIENT_KEEP_ALIVE_SECONDS
      ? `client Keep-Alive of the new load balancer back to ${recorded} s`
      : `client Keep-Alive of the new load balancer was changed to ${current} s meanwhile and is left so (it was ${recorded} s)`;
  }

  private async current(): Promise<number> {
    const out = await this.props.elb.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: this.props.loadBalancerArn }));
    const value = out.Attributes?.find((a) => a.Key === CLIENT_KEEP_ALIVE)?.Value;
    const seconds = value === undefined ? DEFAULT_CLIENT_KEEP_ALIVE_SECONDS : Number(value);
    if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`load balancer attribute ${CLIENT_KEEP_ALIVE} is ${JSON.stringify(value)}, not a number of seconds`);
    return seconds;
  }

  private async recorded(): Promise<number | undefined> {
    const out = await this.props.elb.send(new DescribeTagsCommand({ ResourceArns: [this.props.loadBalancerArn] }));
    const value = out.TagDescriptions?.[0]?.Tags?.find((t) => t.Key === ORIGINAL_TAG)?.Value;
    if (value === undefined) return undefined;
    const seconds = Number(value);
    if (!Number.isInteger(seconds) || seconds < DRAIN_CLIENT_KEEP_ALIVE_SECONDS) {
      throw new Error(`tag ${ORIGINAL_TAG} on the new load balancer is ${JSON.stringify(value)}, not a number of seconds ≥ 60: fix or remove it by hand`);
    }
    return seconds;
  }

  private async set(seconds: number): Promise<void> {
    await this.props.elb.send(
      new ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: this.props.loadBalancerArn, Attributes: [{ Key: CLIENT_KEEP_ALIVE, Value: String(seconds) }] }),
    );
  }
}

/** A traffic port whose rollback drain is the new load balancer's shortened client Keep-Alive. */
export function withKeepAliveDrain(traffic: TrafficPort, drain: KeepAliveDrain): TrafficPort {
  return {
    getWeight: (): Promise<TrafficState> => traffic.getWeight(),
    setWeight: (weight: number, expectedRevision: string): Promise<TrafficState> => traffic.setWeight(weight, expectedRevision),
    ...(traffic.prepare ? { prepare: (): Promise<TrafficPreparation> => traffic.prepare!() } : {}),
    drain: () => drain.drain(),
    undrain: () => drain.undrain(),
  };
}
