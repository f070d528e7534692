/**
 * What one `npm run integ` costs, from what the run measured (its minutes and the API requests it
 * sent) and list prices. Printed at the end of a run; docs/integ.md shows it for a typical run.
 * Only the unit prices and the stated assumptions are typed in, each with its source or reason.
 */

/** Unit prices (us-east-1, list prices, first tier), with their source. */
export const INTEG_PRICES = {
  restApiRequest: { usd: 3.5 / 1e6, source: 'Amazon API Gateway pricing: REST APIs $3.50 per million requests (first 333 million)' },
  lambdaRequest: { usd: 0.2 / 1e6, source: 'AWS Lambda pricing: $0.20 per 1M requests' },
  lambdaArmGbSecond: { usd: 0.0000133334, source: 'AWS Lambda pricing, Arm: $0.0000133334 per GB-second' },
  customMetricMonth: { usd: 0.3, source: 'Amazon CloudWatch pricing: custom metrics $0.30 per metric-month, prorated by the hour' },
  alarmMetricMonth: { usd: 0.1, source: 'Amazon CloudWatch pricing: standard-resolution alarm $0.10 per alarm metric-month, prorated by the hour' },
  dashboardMonth: { usd: 3, source: 'Amazon CloudWatch pricing: $3.00 per dashboard per month beyond the first 3, prorated by the hour' },
  logsIngestedGb: { usd: 0.5, source: 'Amazon CloudWatch Logs pricing: $0.50 per GB ingested (standard)' },
} as const;

/** Hours in a month, as CloudWatch prorates. */
const HOURS_PER_MONTH = 730;

/** The assumptions, each with its reason; overridable per call. */
export const INTEG_ASSUMPTIONS = {
  /**
   * What the controller and probe cost per live migration-day: the figure `npm run bench:controller`
   * prints (their schedules are off while nothing migrates, so only live days count).
   */
  controllerUsdPerDay: 0.142,
  /** The demo's app metrics: Requests, Errors4xx, Errors5xx, LatencyMs for each of the two versions. */
  appMetrics: 8,
  /** Lambda time billed per demo API request (a routing table lookup and one EMF line). */
  demoApiMsPerRequest: 20,
  /** The demo function's memory, in MB (the Cutover function defaults). */
  demoApiMemoryMb: 256,
  /**
   * Probe requests per minute through the two probe APIs: both sides, the default sequence's 9
   * steps (lambda/probe/sequence.ts), about 4 passes each (a control pass and the Keep-Alive
   * passes). Counted for the whole stand: an upper bound once the probe runs only while migrating.
   */
  probeRequestsPerMinute: 2 * 9 * 4,
  /** Log bytes per API request: the stage's access log line, the EMF line, Lambda's START/END/REPORT lines. */
  logBytesPerRequest: 2048,
} as const;

export interface RunCostInput {
  /** Minutes the stack stood (the run's duration is an upper bound). */
  readonly minutes: number;
  /** API requests the run sent. */
  readonly apiRequests: number;
  /** @default INTEG_ASSUMPTIONS.controllerUsdPerDay */
  readonly controllerUsdPerDay?: number;
}

export interface RunCostLine {
  readonly item: string;
  readonly usd: number;
  readonly how: string;
}

export interface RunCost {
  readonly totalUsd: number;
  readonly lines: readonly RunCostLine[];
}

export function estimateRunCost(input: RunCostInput): RunCost {
  const { minutes, apiRequests } = input;
  if (!(minutes >= 0) || !(apiRequests >= 0)) {
    throw new RangeError(`minutes and apiRequests must be zero or more, got ${JSON.stringify(input)}`);
  }
  const a = INTEG_ASSUMPTIONS;
  const p = INTEG_PRICES;
  const controllerUsdPerDay = input.controllerUsdPerDay ?? a.controllerUsdPerDay;
  // CloudWatch bills metrics, alarms and dashboards by the hour started.
  const hours = Math.max(1, Math.ceil(minutes / 60));
  const lambdaUsdPerRequest = p.lambdaRequest.usd + (a.demoApiMsPerRequest / 1000) * (a.demoApiMemoryMb / 1024) * p.lambdaArmGbSecond.usd;
  const probeRequests = Math.round(minutes * a.probeRequestsPerMinute);
  const lines: RunCostLine[] = [
    { item: 'API Gateway requests', usd: apiRequests * p.restApiRequest.usd, how: `${apiRequests} requests × $${p.restApiRequest.usd * 1e6}/M` },
    {
      item: 'probe requests',
      usd: probeRequests * (p.restApiRequest.usd + lambdaUsdPerRequest),
      how: `${probeRequests} requests (API Gateway and the demo function)`,
    },
    {
      item: 'demo API Lambda',
      usd: apiRequests * lambdaUsdPerRequest,
      how: `${apiRequests} invocations of ${a.demoApiMsPerRequest} ms at ${a.demoApiMemoryMb} MB (Arm)`,
    },
    {
      item: 'controller and probe',
      usd: (controllerUsdPerDay * minutes) / (24 * 60),
      how: `$${controllerUsdPerDay} per migration-day × ${minutes.toFixed(1)} min`,
    },
    {
      item: 'demo app metrics',
      usd: (a.appMetrics * p.customMetricMonth.usd * hours) / HOURS_PER_MONTH,
      how: `${a.appMetrics} custom metrics × ${hours} h`,
    },
    { item: 'alarm', usd: (p.alarmMetricMonth.usd * hours) / HOURS_PER_MONTH, how: `1 alarm × ${hours} h` },
    {
      item: 'dashboard',
      usd: (p.dashboardMonth.usd * hours) / HOURS_PER_MONTH,
      how: `1 dashboard × ${hours} h (free if the account has at most 3)`,
    },
    {
      item: 'CloudWatch Logs',
      usd: (apiRequests * a.logBytesPerRequest * p.logsIngestedGb.usd) / 1024 ** 3,
      how: `${apiRequests} requests × ${a.logBytesPerRequest} bytes`,
    },
  ];
  return { totalUsd: lines.reduce((sum, l) => sum + l.usd, 0), lines };
}
