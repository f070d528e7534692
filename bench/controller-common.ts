/**
 * What the controller benchmark's sections share (bench/controller.ts, bench/controller-shared.ts):
 * the unit prices and the live day's assumptions, the cost of a migration-day from per-tick
 * figures, and the counting helpers (DynamoDB requests on dynalite's wire, AWS calls by service,
 * EMF metric series).
 */
import type { Server } from 'node:http';
import type { CommandName } from '../test/aws/fake-account';
import { DEPLOYED_MIN_READ_MINUTES } from '../lambda/aws/health-reads';
import { emfLines } from '../test/aws/helpers';

/** Unit prices (us-east-1, list prices, first tier); the only typed-in figures, with their source. */
export const PRICES = {
  lambdaRequest: { usd: 0.2 / 1e6, source: 'AWS Lambda pricing: $0.20 per 1M requests' },
  lambdaArmGbSecond: { usd: 0.0000133334, source: 'AWS Lambda pricing, Arm: $0.0000133334 per GB-second' },
  provisionedArmGbSecond: { usd: 0.0000033334, source: 'AWS Lambda pricing, Arm provisioned concurrency: $0.0000033334 per GB-second' },
  getMetricDataMetric: { usd: 0.01 / 1000, source: 'Amazon CloudWatch pricing: GetMetricData $0.01 per 1,000 metrics requested' },
  cloudWatchApiRequest: { usd: 0.01 / 1000, source: 'Amazon CloudWatch pricing: API requests $0.01 per 1,000 requests' },
  customMetricMonth: { usd: 0.3, source: 'Amazon CloudWatch pricing: custom metrics $0.30 per metric-month (first 10,000)' },
  logsIngestedGb: { usd: 0.5, source: 'Amazon CloudWatch Logs pricing: $0.50 per GB ingested (standard)' },
  dynamoWriteUnit: { usd: 0.625 / 1e6, source: 'Amazon DynamoDB on-demand pricing: $0.625 per million write request units' },
  dynamoReadUnit: { usd: 0.125 / 1e6, source: 'Amazon DynamoDB on-demand pricing: $0.125 per million read request units' },
  eventBridgeEvent: { usd: 1 / 1e6, source: 'Amazon EventBridge pricing: custom events $1.00 per million' },
  snsPublish: { usd: 0.5 / 1e6, source: 'Amazon SNS pricing: $0.50 per 1M publishes' },
} as const;

export const MIN = 60_000;
/** While a migration is live, the schedules wake the controller and the probe once a minute. */
export const TICKS_PER_DAY = 24 * 60;
/** Issue #11: at most this per migration-day (controller and probe, without the pin). */
export const COST_TARGET_USD = 0.15;
/** Probe targets per migration (old and new side), as the cost assumes. */
export const PROBE_TARGETS = 2;
/** Both benchmarks' migration plan (a live day: deploy, two steps, soak, then watched until the teardown). */
export const BENCH_PLAN = { steps: [{ weight: 10, bakeMs: 30 * MIN }, { weight: 100, bakeMs: 30 * MIN }], soakMs: 60 * MIN, healthWindowMs: MIN, teardown: 'manual' as const };
/** The fake clock's start (the deploy): both sections tick from the same minute. */
export const DAY_STARTS_MS = Date.UTC(2026, 5, 1, 12, 0, 0);

export const READ_COMMANDS = new Set<string>(['GetAlias', 'GetProvisionedConcurrencyConfig', 'GetMetricData', 'DescribeAlarms', 'GetItem', 'Query', 'BatchGetItem']);

export function serviceOf(command: CommandName | string): string {
  if (command === 'GetMetricData' || command === 'DescribeAlarms') return 'CloudWatch';
  if (command === 'PutEvents' || command === 'EnableRule' || command === 'DisableRule') return 'EventBridge';
  if (command === 'Publish') return 'SNS';
  return 'Lambda';
}

/** One DynamoDB request as dynalite received it: the operation, the bytes each way, and whether it was the registry's. */
export interface WireRequest {
  readonly op: string;
  readonly request: number;
  readonly response: number;
  /** It addressed the registry's partition (pk REGISTRY): the registry's own Query or update. */
  readonly registry: boolean;
}

/** Records every request dynalite answers, into the returned array (clear it with `length = 0`). */
export function watchDynamo(server: Server): WireRequest[] {
  const sizes: WireRequest[] = [];
  server.on('request', (req, res) => {
    const op = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '?';
    let request = 0;
    let response = 0;
    let registry = false;
    req.on('data', (c: Buffer) => {
      request += c.length;
      if (!registry && c.includes('"S":"REGISTRY"')) registry = true;
    });
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (chunk) response += Buffer.byteLength(chunk as string);
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk: unknown, ...rest: unknown[]) => {
      if (chunk && typeof chunk !== 'function') response += Buffer.byteLength(chunk as string);
      sizes.push({ op, request, response, registry });
      return (end as (...a: unknown[]) => unknown)(chunk, ...rest);
    }) as typeof res.end;
  });
  return sizes;
}

/**
 * Capacity units of one request: strongly consistent reads 1 unit per 4 KB read, writes 1 unit per
 * 1 KB (upper bounds: the JSON on the wire is larger than the item).
 */
export function unitsOf(x: WireRequest): { read: number; write: number } {
  return READ_COMMANDS.has(x.op) ? { read: Math.max(1, Math.ceil(x.response / 4096)), write: 0 } : { read: 0, write: Math.max(1, Math.ceil(x.request / 1024)) };
}

/** `Name{Dim=value,…}` of every metric in the EMF lines of `records`. */
export function metricKeys(records: Record<string, unknown>[]): string[] {
  return emfLines(records, 'Cutover').flatMap((line) => {
    const directive = (line._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] }).CloudWatchMetrics[0]!;
    const dims = directive.Dimensions[0]!.map((d) => `${d}=${String(line[d])}`).join(',');
    return directive.Metrics.map((m) => `${m.Name}{${dims}}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Cost of a migration-day
// ---------------------------------------------------------------------------------------------

/** One migration's share of a live day, per tick (a shared part already divided among the migrations). */
export interface DayShare {
  /** Controller invocations per tick paid by this migration: 1 alone, 1/N when N share one. */
  readonly controllerInvocations: number;
  /** Probe invocations per tick (the probe function is shared like the controller). */
  readonly probeInvocations: number;
  /** Billed controller time per tick, ms (its share). */
  readonly controllerMs: number;
  readonly controllerMsHow: string;
  readonly getMetricDataMetrics: number;
  readonly describeAlarms: number;
  readonly controllerMetricsPerHour: number;
  readonly logBytes: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  /** Read units per tick of the probe function's registry Query (its share); 0 without one. */
  readonly probeRegistryReadUnits: number;
  readonly busEvents: number;
  readonly notifications: number;
}

export interface Assumptions {
  readonly controllerMemoryMb: number;
  readonly probeMemoryMb: number;
}

export interface CostLine {
  readonly item: string;
  /** `invocations`: requests and controller time, paid once per invocation whoever it serves. */
  readonly part: 'invocations' | 'migration';
  readonly usd: number;
  readonly how: string;
}

/** The cost lines of one migration-day (a tick and a probe run a minute). */
export function dayCost(t: DayShare, probe: { durationMs: number; metricsPerRun: number }, a: Assumptions): CostLine[] {
  const metricHour = PRICES.customMetricMonth.usd / (30 * 24);
  const n = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  return [
    {
      item: 'Lambda requests',
      part: 'invocations',
      usd: TICKS_PER_DAY * (t.controllerInvocations + t.probeInvocations) * PRICES.lambdaRequest.usd,
      how: `${n(TICKS_PER_DAY * t.controllerInvocations)} controller + ${n(TICKS_PER_DAY * t.probeInvocations)} probe invocations`,
    },
    {
      item: 'Lambda duration, controller',
      part: 'invocations',
      usd: TICKS_PER_DAY * (t.controllerMs / 1000) * (a.controllerMemoryMb / 1024) * PRICES.lambdaArmGbSecond.usd,
      how: `${TICKS_PER_DAY} × ${t.controllerMsHow} × ${a.controllerMemoryMb} MB`,
    },
    {
      item: 'Lambda duration, probe',
      part: 'migration',
      usd: TICKS_PER_DAY * (probe.durationMs / 1000) * (a.probeMemoryMb / 1024) * PRICES.lambdaArmGbSecond.usd,
      how: `${TICKS_PER_DAY} × ${ms(probe.durationMs)} (measured probe, ${PROBE_TARGETS} targets in parallel) × ${a.probeMemoryMb} MB`,
    },
    {
      item: 'CloudWatch GetMetricData',
      part: 'migration',
      usd: TICKS_PER_DAY * t.getMetricDataMetrics * PRICES.getMetricDataMetric.usd,
      how: `${TICKS_PER_DAY} × ${t.getMetricDataMetrics.toFixed(2)} metrics requested per tick (${DEPLOYED_MIN_READ_MINUTES} minutes per read)`,
    },
    {
      item: 'CloudWatch DescribeAlarms',
      part: 'migration',
      usd: TICKS_PER_DAY * t.describeAlarms * PRICES.cloudWatchApiRequest.usd,
      how: `${TICKS_PER_DAY} × ${t.describeAlarms.toFixed(2)} request (share of ticks that confirm alarms)`,
    },
    {
      item: 'CloudWatch custom metrics (EMF)',
      part: 'migration',
      usd: 24 * (t.controllerMetricsPerHour + probe.metricsPerRun) * metricHour,
      how: `24 h × (${t.controllerMetricsPerHour.toFixed(2)} controller + ${probe.metricsPerRun} probe metrics sent per hour), billed per metric-hour`,
    },
    {
      item: 'CloudWatch Logs (controller)',
      part: 'migration',
      usd: (TICKS_PER_DAY * t.logBytes * PRICES.logsIngestedGb.usd) / 1024 ** 3,
      how: `${TICKS_PER_DAY} × ${t.logBytes.toFixed(0)} bytes of JSON logs and EMF (platform lines not counted)`,
    },
    {
      item: 'DynamoDB, controller',
      part: 'migration',
      usd: TICKS_PER_DAY * (t.readUnits * PRICES.dynamoReadUnit.usd + t.writeUnits * PRICES.dynamoWriteUnit.usd),
      how: `${TICKS_PER_DAY} × (${t.readUnits.toFixed(2)} RRU + ${t.writeUnits.toFixed(2)} WRU)`,
    },
    {
      item: 'DynamoDB, probe results',
      part: 'migration',
      // Each run reads the current-migration pointer (one item < 4 KB) to file its results under it.
      usd: TICKS_PER_DAY * (PROBE_TARGETS * PRICES.dynamoWriteUnit.usd + (1 + t.probeRegistryReadUnits) * PRICES.dynamoReadUnit.usd),
      how:
        `${TICKS_PER_DAY} × (${PROBE_TARGETS} writes of < 1 KB + 1 pointer read` +
        `${t.probeRegistryReadUnits > 0 ? ` + ${t.probeRegistryReadUnits.toFixed(2)} RRU of its registry Query` : ''})`,
    },
    {
      item: 'EventBridge events',
      part: 'migration',
      usd: TICKS_PER_DAY * (t.busEvents + PROBE_TARGETS) * PRICES.eventBridgeEvent.usd,
      how: `${TICKS_PER_DAY} × (${t.busEvents.toFixed(2)} controller + ${PROBE_TARGETS} probe events)`,
    },
    {
      item: 'SNS',
      part: 'migration',
      usd: TICKS_PER_DAY * t.notifications * PRICES.snsPublish.usd,
      how: `${TICKS_PER_DAY} × ${t.notifications.toFixed(3)} (only rollbacks, pauses, promotions publish)`,
    },
  ];
}

export function sumUsd(lines: readonly CostLine[], part?: CostLine['part']): number {
  return lines.filter((l) => part === undefined || l.part === part).reduce((a, l) => a + l.usd, 0);
}

export function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} KB`;
}

export function ms(value: number): string {
  return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}
