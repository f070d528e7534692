/**
 * What a migration moves (its target) and what it pins (the old side's capacity), as the construct
 * describes them in the controller's environment, and the adapters each one needs.
 *
 * One controller, one core: a target kind is one traffic adapter (`traffic/alias.ts`,
 * `traffic/alb.ts`, `traffic/route53.ts`) plus the health source that can see its two sides
 * (Lambda's per-version metrics for an alias, ALB metrics for fleets), and a capacity kind is one
 * capacity adapter (`capacity/provisioned-concurrency.ts`, `capacity/auto-scaling.ts`, `capacity/ecs.ts`).
 * They are built by the kits of adapter-kit.ts; this file only reads and checks the configuration
 * (config.ts imports it, so it imports no adapter).
 *
 * The environment:
 * - `CUTOVER_TARGET`: JSON, `{"kind":"lambda-alias"}` (the function and alias come from
 *   `CUTOVER_FUNCTION_NAME`/`CUTOVER_ALIAS_NAME`; also the default when the variable is unset),
 *   `{"kind":"load-balancer","loadBalancer":"app/…","listenerArn"|"ruleArn":…,"oldTargetGroupArn":…,"newTargetGroupArn":…}`
 *   or `{"kind":"dns","hostedZoneId":…,"recordName":…,"recordType":…,"oldSetIdentifier":…,"newSetIdentifier":…,"maxTtlSeconds":…,"oldLoadBalancer":"app/…","newLoadBalancer":"app/…"}`.
 * - `CUTOVER_CAPACITY`: JSON, `{"kind":"provisioned-concurrency"}` (default for an alias),
 *   `{"kind":"auto-scaling-group","autoScalingGroupName":…}`, `{"kind":"ecs-service","cluster":…,"service":…}`
 *   or `{"kind":"none"}`.
 */
import type { ProbeHealth, Side } from '../core/ports';
import type { WeightedRecordType } from './traffic/route53';

export type TargetConfig = LambdaAliasTargetConfig | LoadBalancerTargetConfig | DnsTargetConfig;

export interface LambdaAliasTargetConfig {
  readonly kind: 'lambda-alias';
}

export interface LoadBalancerTargetConfig {
  readonly kind: 'load-balancer';
  /** The ALB's full name, `app/<name>/<id>` (the `LoadBalancer` dimension of its metrics). */
  readonly loadBalancer: string;
  /** The listener whose default action forwards to both groups; or `ruleArn`. */
  readonly listenerArn?: string;
  readonly ruleArn?: string;
  readonly oldTargetGroupArn: string;
  readonly newTargetGroupArn: string;
}

export interface DnsTargetConfig {
  readonly kind: 'dns';
  readonly hostedZoneId: string;
  readonly recordName: string;
  readonly recordType: WeightedRecordType;
  readonly oldSetIdentifier: string;
  readonly newSetIdentifier: string;
  /** Undefined: the TTL is left as it is. */
  readonly maxTtlSeconds?: number;
  /** Each side's own ALB, `app/<name>/<id>`, for its metrics. */
  readonly oldLoadBalancer: string;
  readonly newLoadBalancer: string;
  /** The new side's load balancer ARN: its client Keep-Alive is shortened to drain it after a rollback. */
  readonly newLoadBalancerArn?: string;
}

export type CapacityConfig =
  | { readonly kind: 'provisioned-concurrency' }
  | { readonly kind: 'auto-scaling-group'; readonly autoScalingGroupName: string }
  | { readonly kind: 'ecs-service'; readonly cluster: string; readonly service: string }
  | { readonly kind: 'none' };

/** A bad `CUTOVER_TARGET`/`CUTOVER_CAPACITY`: names the field, shows the value and what fits. */
export class TargetConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`environment variable ${variable} ${problem}`);
    this.name = 'TargetConfigError';
  }
}

const LOAD_BALANCER_NAME = /^app\/[A-Za-z0-9-]{1,32}\/[0-9a-f]{1,32}$/;
const TARGET_GROUP_ARN = /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:(targetgroup\/[A-Za-z0-9-]{1,32}\/[0-9a-f]{1,32})$/;
const LISTENER_ARN = /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener\/app\/.+$/;
const LOAD_BALANCER_ARN = /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer\/app\/.+$/;
const RULE_ARN = /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener-rule\/app\/.+$/;

/** Parses `CUTOVER_TARGET` (JSON text, or undefined for the Lambda alias). */
export function parseTargetConfig(text: string | undefined): TargetConfig {
  if (!text?.trim()) return { kind: 'lambda-alias' };
  const value = parseJson('CUTOVER_TARGET', text);
  const field = fieldReader('CUTOVER_TARGET', value);
  switch (value.kind) {
    case 'lambda-alias':
      return { kind: 'lambda-alias' };
    case 'load-balancer': {
      const listenerArn = field.optional('listenerArn', LISTENER_ARN, 'a listener ARN');
      const ruleArn = field.optional('ruleArn', RULE_ARN, 'a listener rule ARN');
      if ((listenerArn === undefined) === (ruleArn === undefined)) {
        throw new TargetConfigError('CUTOVER_TARGET', `needs exactly one of listenerArn and ruleArn, got ${preview(value)}`);
      }
      const oldTargetGroupArn = field.text('oldTargetGroupArn', TARGET_GROUP_ARN, 'a target group ARN');
      const newTargetGroupArn = field.text('newTargetGroupArn', TARGET_GROUP_ARN, 'a target group ARN');
      if (oldTargetGroupArn === newTargetGroupArn) {
        throw new TargetConfigError('CUTOVER_TARGET', `oldTargetGroupArn and newTargetGroupArn must differ, both are ${JSON.stringify(oldTargetGroupArn)}`);
      }
      return {
        kind: 'load-balancer',
        loadBalancer: field.text('loadBalancer', LOAD_BALANCER_NAME, 'the load balancer\'s full name "app/<name>/<id>"'),
        ...(listenerArn ? { listenerArn } : { ruleArn: ruleArn! }),
        oldTargetGroupArn,
        newTargetGroupArn,
      };
    }
    case 'dns': {
      const maxTtl = value.maxTtlSeconds;
      if (maxTtl !== undefined && !(Number.isInteger(maxTtl) && (maxTtl as number) >= 0)) {
        throw new TargetConfigError('CUTOVER_TARGET', `maxTtlSeconds must be a whole number of seconds ≥ 0, got ${JSON.stringify(maxTtl)}`);
      }
      return {
        kind: 'dns',
        hostedZoneId: field.text('hostedZoneId', /^(\/hostedzone\/)?[A-Z0-9]{1,32}$/, 'a hosted zone id'),
        recordName: field.text('recordName', /^[^\s]{1,254}$/, 'a domain name'),
        recordType: field.text('recordType', /^(A|AAAA|CNAME)$/, '"A", "AAAA" or "CNAME"') as WeightedRecordType,
        oldSetIdentifier: field.text('oldSetIdentifier', /^.{1,128}$/s, 'a SetIdentifier'),
        newSetIdentifier: field.text('newSetIdentifier', /^.{1,128}$/s, 'a SetIdentifier'),
        ...(maxTtl !== undefined ? { maxTtlSeconds: maxTtl as number } : {}),
        oldLoadBalancer: field.text('oldLoadBalancer', LOAD_BALANCER_NAME, 'the old side\'s load balancer full name "app/<name>/<id>"'),
        newLoadBalancer: field.text('newLoadBalancer', LOAD_BALANCER_NAME, 'the new side\'s load balancer full name "app/<name>/<id>"'),
        ...optionalArn(field.optional('newLoadBalancerArn', LOAD_BALANCER_ARN, 'the new side\'s load balancer ARN')),
      };
    }
    default:
      throw new TargetConfigError('CUTOVER_TARGET', `kind must be "lambda-alias", "load-balancer" or "dns", got ${preview(value)}`);
  }
}

/** Parses `CUTOVER_CAPACITY` (JSON text; undefined: provisioned concurrency for an alias, none for fleets). */
export function parseCapacityConfig(text: string | undefined, target: TargetConfig): CapacityConfig {
  if (!text?.trim()) return target.kind === 'lambda-alias' ? { kind: 'provisioned-concurrency' } : { kind: 'none' };
  const value = parseJson('CUTOVER_CAPACITY', text);
  const field = fieldReader('CUTOVER_CAPACITY', value);
  switch (value.kind) {
    case 'none':
      return { kind: 'none' };
    case 'provisioned-concurrency':
      if (target.kind !== 'lambda-alias') {
        throw new TargetConfigError('CUTOVER_CAPACITY', `provisioned-concurrency pins a Lambda version and needs a lambda-alias target, got target ${target.kind}`);
      }
      return { kind: 'provisioned-concurrency' };
    case 'auto-scaling-group':
      return { kind: 'auto-scaling-group', autoScalingGroupName: field.text('autoScalingGroupName', /^.{1,1600}$/s, 'an Auto Scaling group name or ARN') };
    case 'ecs-service':
      return {
        kind: 'ecs-service',
        cluster: field.text('cluster', /^.{1,2048}$/s, 'an ECS cluster name or ARN'),
        service: field.text('service', /^.{1,2048}$/s, 'an ECS service name or ARN'),
      };
    default:
      throw new TargetConfigError(
        'CUTOVER_CAPACITY',
        `kind must be "provisioned-concurrency", "auto-scaling-group", "ecs-service" or "none", got ${preview(value)}`,
      );
  }
}

/** The CloudWatch `TargetGroup` dimension of a target group ARN (`targetgroup/<name>/<id>`). */
export function targetGroupDimension(arn: string): string {
  const match = TARGET_GROUP_ARN.exec(arn);
  if (!match) throw new TypeError(`not a target group ARN: ${JSON.stringify(arn)}`);
  return match[1]!;
}

/** What the adapters of one migration need to know about its two sides. */
export interface MigrationSides {
  /** Lambda versions for an alias; release labels for fleets. */
  readonly oldVersion: string;
  readonly newVersion: string;
}

/** Sums the probe's own requests per side (for health sources that cannot tell them from users'). */
export function sumProbeHealth(results: readonly { side: Side; atMs: number; health?: ProbeHealth }[], startMs: number, endMs: number): Record<Side, ProbeHealth> {
  const sum: Record<Side, { requests: number; errors4xx: number; errors5xx: number }> = {
    old: { requests: 0, errors4xx: 0, errors5xx: 0 },
    new: { requests: 0, errors4xx: 0, errors5xx: 0 },
  };
  for (const result of results) {
    if (result.atMs < startMs || result.atMs >= endMs || !result.health) continue;
    sum[result.side].requests += result.health.requests;
    sum[result.side].errors4xx += result.health.errors4xx ?? 0;
    sum[result.side].errors5xx += result.health.errors5xx;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------

function parseJson(variable: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TargetConfigError(variable, `is not valid JSON (${(error as Error).message}): ${text.slice(0, 200)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TargetConfigError(variable, `must be a JSON object with a "kind", got ${preview(value)}`);
  }
  return value as Record<string, unknown>;
}

function fieldReader(variable: string, value: Record<string, unknown>) {
  const text = (name: string, pattern: RegExp, what: string): string => {
    const field = value[name];
    if (typeof field !== 'string' || !pattern.test(field)) {
      throw new TargetConfigError(variable, `field ${name} must be ${what}, got ${JSON.stringify(field ?? null)}`);
    }
    return field;
  };
  return {
    text,
    optional: (name: string, pattern: RegExp, what: string): string | undefined => (value[name] === undefined ? undefined : text(name, pattern, what)),
  };
}

function optionalArn(arn: string | undefined): { newLoadBalancerArn?: string } {
  return arn === undefined ? {} : { newLoadBalancerArn: arn };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
