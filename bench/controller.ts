/**
 * Controller benchmark: `npm run bench:controller` (options: `-- --help`).
 *
 * Prints, every figure computed here (only unit prices and the stated assumptions are inputs):
 * 1. each Lambda's bundle size, bundled with esbuild as NodejsFunction does (`@aws-sdk/*` left to
 *    the runtime, minified, CommonJS, node22) — target ≤ 150 KB;
 * 2. each bundled handler module's cold init time in a fresh `node` process (median of N);
 * 3. the AWS API calls of one steady-state controller tick (read vs write), measured on the real
 *    runtime with the table in dynalite and the other services behind aws-sdk-client-mock —
 *    target ≤ 3 read calls (DynamoDB is one Query: the record, the alarm states EventBridge
 *    delivered and the probe results since the last tick together) — and the reads of every tick
 *    of a whole migration, with the ticks that confirm alarms with DescribeAlarms;
 * 4. the estimated AWS cost of one migration-day from those counts and sizes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { Command } from 'commander';
import { build } from 'esbuild';
import { readControllerConfig } from '../lambda/aws/config';
import { ControllerRuntime } from '../lambda/aws/controller-runtime';
import { DynamoDbStateStore } from '../lambda/aws/dynamodb-store';
import { createMetrics } from '../lambda/aws/metrics';
import { createProbeRunner } from '../lambda/aws/probe-runner';
import type { PlanSpec } from '../lambda/core/plan';
import { startDemoServer } from '../local/demo-server';
import { FakeAccount, type CommandName } from '../test/aws/fake-account';
import { captureOutput, emfLines, startDynalite } from '../test/aws/helpers';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '..');

const program = new Command()
  .name('bench:controller')
  .option('--runs <n>', 'cold-init samples per handler', (v) => positiveInt(v, '--runs'), 7)
  .option('--api-latency-ms <ms>', 'assumed latency of one AWS API call from Lambda (same region)', (v) => positiveInt(v, '--api-latency-ms'), 20)
  .option('--controller-memory-mb <mb>', 'assumed memory of the controller function', (v) => positiveInt(v, '--controller-memory-mb'), 256)
  .option('--probe-memory-mb <mb>', 'assumed memory of the probe function', (v) => positiveInt(v, '--probe-memory-mb'), 256)
  .option('--app-memory-mb <mb>', "assumed memory of the application's function (for the pin)", (v) => positiveInt(v, '--app-memory-mb'), 512)
  .option('--pinned <units>', 'provisioned concurrency pinned on the old version', (v) => positiveInt(v, '--pinned'), 5)
  .option('--alarms <n>', 'user alarms watched by the controller', (v) => nonNegativeInt(v, '--alarms'), 1)
  .parse();
const opts = program.opts<{ runs: number; apiLatencyMs: number; controllerMemoryMb: number; probeMemoryMb: number; appMemoryMb: number; pinned: number; alarms: number }>();

/** Unit prices (us-east-1, list prices, first tier); the only typed-in figures, with their source. */
const PRICES = {
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

const MIN = 60_000;
/** The schedule wakes the controller (and the probe) once a minute. */
const TICKS_PER_DAY = 24 * 60;
const HANDLERS = [
  { name: 'controller', entry: 'lambda/handlers/controller.ts' },
  { name: 'probe', entry: 'lambda/handlers/probe.ts' },
  { name: 'deploy-trigger', entry: 'lambda/handlers/deploy-trigger.ts' },
  { name: 'demo api', entry: 'lambda/demo/api.ts' },
] as const;
const BUNDLE_TARGET_BYTES = 150_000;
const READ_TARGET = 3;

/** Environment that lets each bundle load (values are placeholders; nothing is called at load). */
const INIT_ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  CUTOVER_TABLE_NAME: 'bench-table',
  CUTOVER_FUNCTION_NAME: 'api',
  CUTOVER_ALIAS_NAME: 'live',
  CUTOVER_PLAN: JSON.stringify({ steps: [{ weight: 10, bakeMs: 300000 }, { weight: 100, bakeMs: 300000 }], soakMs: 600000, healthWindowMs: 60000, teardown: 'manual' }),
  CUTOVER_JUDGE: '{}',
  CUTOVER_ALARM_NAMES: '["api-errors"]',
  CUTOVER_PINNED_CAPACITY: '5',
  CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
  CUTOVER_EVENT_BUS_NAME: 'cutover',
  CUTOVER_APP_METRICS_NAMESPACE: 'App',
  CUTOVER_CONTROLLER_FUNCTION_NAME: 'cutover-controller',
  CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://new.example.com/"}]',
  CUTOVER_PROBE_FUNCTION_NAME: 'cutover-probe',
  CUTOVER_MIGRATION_KEY: 'api:live',
  AWS_LAMBDA_FUNCTION_NAME: 'api',
  AWS_LAMBDA_FUNCTION_VERSION: '1',
};

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cutover-bench-'));
  try {
    const bundles = await bundleAll(dir);
    await coldInit(bundles);
    console.log(`\n3. AWS API calls in one steady-state tick (baking, healthy, a window judged; target ≤ ${READ_TARGET} reads)`);
    const tick = await steadyTick(opts.alarms, opts.pinned);
    // The same tick without the optional reads: no alarms watched, capacity not managed.
    await steadyTick(0, 0);
    const probe = await probeRun();
    cost(tick, probe);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Bundle sizes
// ---------------------------------------------------------------------------------------------

async function bundleAll(dir: string): Promise<{ name: string; file: string; bytes: number }[]> {
  console.log('\n1. Bundle size (esbuild, minified, cjs, node22, @aws-sdk/* external; target ≤ 150 KB)');
  const out: { name: string; file: string; bytes: number }[] = [];
  for (const handler of HANDLERS) {
    const file = join(dir, `${handler.name.replace(/\W+/g, '-')}.js`);
    const result = await build({
      entryPoints: [join(ROOT, handler.entry)],
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      minify: true,
      external: ['@aws-sdk/*'],
      outfile: file,
      metafile: true,
      logLevel: 'silent',
    });
    const output = Object.values(result.metafile.outputs)[0]!;
    const top = Object.entries(output.inputs)
      .map(([path, v]) => ({ path: path.replace(/^.*node_modules\//, ''), bytes: v.bytesInOutput }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 3)
      .map((i) => `${i.path.split('/').slice(0, 3).join('/')} ${kb(i.bytes)}`)
      .join(', ');
    const ok = output.bytes <= BUNDLE_TARGET_BYTES ? 'ok' : 'OVER TARGET';
    console.log(`   ${handler.name.padEnd(15)} ${kb(output.bytes).padStart(9)}  ${ok}   largest: ${top}`);
    out.push({ name: handler.name, file, bytes: output.bytes });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. Cold init
// ---------------------------------------------------------------------------------------------

async function coldInit(bundles: { name: string; file: string }[]): Promise<void> {
  console.log(`\n2. Cold init of each bundled handler module in a fresh node ${process.version} process (median of ${opts.runs}; the SDK from node_modules)`);
  const script =
    'const t=process.hrtime.bigint();require(process.argv[1]);const d=Number(process.hrtime.bigint()-t)/1e6;process.stdout.write(String(d))';
  for (const bundle of bundles) {
    const samples: number[] = [];
    for (let i = 0; i < opts.runs; i++) {
      const { stdout } = await run(process.execPath, ['-e', script, bundle.file], {
        env: { ...INIT_ENV, PATH: process.env.PATH ?? '', NODE_PATH: join(ROOT, 'node_modules'), AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING: '1' },
        timeout: 30_000,
      });
      samples.push(Number(stdout));
    }
    samples.sort((a, b) => a - b);
    console.log(`   ${bundle.name.padEnd(15)} median ${ms(median(samples)).padStart(8)}   (min ${ms(samples[0]!)}, max ${ms(samples[samples.length - 1]!)})`);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Calls per steady-state tick
// ---------------------------------------------------------------------------------------------

interface TickFigures {
  readonly reads: Map<string, number>;
  readonly writes: Map<string, number>;
  readonly localMs: number;
  readonly metricsPerGetMetricData: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly logBytes: number;
  readonly busEvents: number;
  readonly notifications: number;
  readonly distinctMetrics: number;
  /** Every tick of the migration after the measured one, up to completion. */
  readonly migration: { readonly ticks: number; readonly reads: number; readonly describeAlarms: number; readonly byReads: Map<number, number> };
}

const READ_COMMANDS = new Set<string>(['GetAlias', 'GetProvisionedConcurrencyConfig', 'GetMetricData', 'DescribeAlarms', 'GetItem', 'Query', 'BatchGetItem']);

async function steadyTick(alarms: number, pinned: number): Promise<TickFigures> {
  const table = 'bench-cutover';
  const dynamo = await startDynalite({ maxAttempts: 1 });
  const account = new FakeAccount('api');
  const output = captureOutput();
  try {
    await dynamo.createTable(table);
    // Request and response sizes on the wire, by operation: the basis of the capacity units.
    const sizes: { op: string; request: number; response: number }[] = [];
    dynamo.server.on('request', (req, res) => {
      const op = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '?';
      let request = 0;
      let response = 0;
      req.on('data', (c: Buffer) => (request += c.length));
      const write = res.write.bind(res);
      const end = res.end.bind(res);
      res.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (chunk) response += Buffer.byteLength(chunk as string);
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof res.write;
      res.end = ((chunk: unknown, ...rest: unknown[]) => {
        if (chunk && typeof chunk !== 'function') response += Buffer.byteLength(chunk as string);
        sizes.push({ op, request, response });
        return (end as (...a: unknown[]) => unknown)(chunk, ...rest);
      }) as typeof res.end;
    });

    const plan: PlanSpec = { steps: [{ weight: 10, bakeMs: 30 * MIN }, { weight: 100, bakeMs: 30 * MIN }], soakMs: 60 * MIN, healthWindowMs: MIN, teardown: 'manual' };
    const alarmNames = Array.from({ length: alarms }, (_, i) => `api-alarm-${i + 1}`);
    const config = readControllerConfig({
      ...INIT_ENV,
      CUTOVER_TABLE_NAME: table,
      CUTOVER_PLAN: JSON.stringify(plan),
      CUTOVER_ALARM_NAMES: JSON.stringify(alarmNames),
      CUTOVER_PINNED_CAPACITY: String(pinned),
      CUTOVER_PROBE_TARGETS: '',
    });
    const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: table, alarmStatesPerLoad: alarmNames.length });
    const clock = { now: Date.UTC(2026, 5, 1, 12, 0, 0) };
    for (const name of alarmNames) {
      account.alarms.set(name, 'OK');
      account.alarmChangedAtMs.set(name, clock.now - 3_600_000);
    }
    const runtime = new ControllerRuntime({
      config,
      clients: dynamo.clients,
      store,
      logger: new Logger({ serviceName: 'cutover-controller' }),
      metrics: createMetrics('cutover-controller', 'Cutover'),
      now: () => clock.now,
    });
    const migrationId = `${config.aliasKey}:2`;
    // What the probe function records every minute, in the migration's partition.
    const probesOk = async () => {
      for (const side of ['new', 'old'] as const) {
        await store.putProbeResult(migrationId, { side, verdict: 'ok', atMs: clock.now - 1_000, summary: 'aligned', findings: 0 });
      }
    };

    // The migration: deploy, gate, first step; then the ticks before the step's first minute has
    // been ingested (CloudWatchHealth's 2-minute ingestion delay), to reach the steady state.
    account.alias = { main: '1', weights: {}, revision: 1 };
    await store.putPointer(config.aliasKey, { migrationId, oldVersion: '1', newVersion: '2', createdAtMs: clock.now }, undefined);
    await probesOk();
    await runtime.handle({ trigger: 'deploy', migrationId });
    for (let i = 0; i < 2; i++) {
      clock.now += MIN;
      await probesOk();
      await runtime.handle({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
    }

    // The measured tick: one minute later, baking, healthy, nothing to change but the judgement.
    clock.now += MIN;
    await probesOk();
    account.calls.clear();
    sizes.length = 0;
    const eventsBefore = account.events.length;
    const notificationsBefore = account.notifications.length;
    const recordsBefore = output.records();
    const bytesBefore = output.bytes();
    const started = performance.now();
    const result = await runtime.handle({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
    const localMs = performance.now() - started;
    if (result.status !== 'baking' || result.action !== 'hold' || account.count('GetMetricData') !== 1) {
      throw new Error(`the measured tick was not a steady hold: ${JSON.stringify(result)}`);
    }

    const reads = new Map<string, number>();
    const writes = new Map<string, number>();
    const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n);
    for (const [name, n] of account.calls) add(READ_COMMANDS.has(name) ? reads : writes, `${serviceOf(name)} ${name}`, n);
    let readUnits = 0;
    let writeUnits = 0;
    for (const s of sizes) {
      if (READ_COMMANDS.has(s.op)) {
        add(reads, `DynamoDB ${s.op}`, 1);
        // Strongly consistent reads: 1 unit per 4 KB read (upper bound: the JSON answer is larger than the item).
        readUnits += Math.max(1, Math.ceil(s.response / 4096));
      } else {
        add(writes, `DynamoDB ${s.op}`, 1);
        // 1 unit per 1 KB written (upper bound: the JSON request is larger than the item).
        writeUnits += Math.max(1, Math.ceil(s.request / 1024));
      }
    }
    const getMetricData = account.cloudWatchMock.commandCalls(GetMetricDataCommand);
    const metricsPerGetMetricData = getMetricData.at(-1)?.args[0].input.MetricDataQueries?.length ?? 0;
    const distinctMetrics = new Set(
      emfLines(output.records(), 'Cutover').flatMap((line) => {
        const directive = (line._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] }).CloudWatchMetrics[0]!;
        const dims = directive.Dimensions[0]!.map((d) => `${d}=${String(line[d])}`).join(',');
        return directive.Metrics.map((m) => `${m.Name}{${dims}}`);
      }),
    ).size;

    // The rest of the migration, tick by tick (one a minute, as scheduled), to completion: the
    // reads of every tick, including those that confirm the alarms (the end of each bake and the
    // soak, and every alarmRecheckMs).
    const readsOfTick = () =>
      [...account.calls].reduce((n, [name, c]) => n + (READ_COMMANDS.has(name) ? c : 0), 0) + sizes.filter((x) => READ_COMMANDS.has(x.op)).length;
    const migration = { ticks: 0, reads: 0, describeAlarms: 0, byReads: new Map<number, number>() };
    const tickRecords = output.records().slice(recordsBefore.length);
    const tickBytes = output.bytes() - bytesBefore;
    const busEvents = account.events.length - eventsBefore;
    const notifications = account.notifications.length - notificationsBefore;
    for (let status = String(result.status); status !== 'complete'; ) {
      if (migration.ticks > 24 * 60) throw new Error(`the migration did not complete in a day of ticks (status ${status})`);
      clock.now += MIN;
      await probesOk();
      account.calls.clear();
      sizes.length = 0;
      status = String((await runtime.handle({ source: 'aws.events', 'detail-type': 'Scheduled Event' })).status);
      if (status === 'rolled-back' || status === 'paused') throw new Error(`the healthy migration stopped: ${status}`);
      const n = readsOfTick();
      migration.ticks++;
      migration.reads += n;
      migration.describeAlarms += account.count('DescribeAlarms');
      migration.byReads.set(n, (migration.byReads.get(n) ?? 0) + 1);
    }

    const figures: TickFigures = {
      reads,
      writes,
      localMs,
      metricsPerGetMetricData,
      readUnits,
      writeUnits,
      logBytes: tickBytes,
      busEvents,
      notifications,
      distinctMetrics,
      migration,
    };
    output.restore();
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    console.log(`   with ${alarms} alarm(s) and ${pinned > 0 ? `the old version pinned at ${pinned}` : 'capacity not managed'}:`);
    console.log(`   reads  ${String(total(reads)).padStart(2)}: ${[...reads].map(([k, v]) => `${k}×${v}`).join(', ')}  ${total(reads) <= READ_TARGET ? 'ok' : 'OVER TARGET'}`);
    console.log(`   writes ${String(total(writes)).padStart(2)}: ${[...writes].map(([k, v]) => `${k}×${v}`).join(', ')}`);
    console.log(`   GetMetricData: ${metricsPerGetMetricData} metrics in ${account.count('GetMetricData')} call(s); DynamoDB ≈ ${readUnits} read / ${writeUnits} write units (from wire sizes)`);
    console.log(`   tick time in process (mocked AWS, local dynalite): ${ms(localMs)}; ${tickRecords.length} log/EMF lines, ${figures.logBytes} bytes`);
    const spread = [...migration.byReads].sort(([a], [b]) => a - b).map(([n, c]) => `${c} with ${n}`).join(', ');
    console.log(
      `   every later tick to completion (${migration.ticks} ticks, plan ${plan.steps.map((st) => `${st.weight}%@${st.bakeMs / MIN}min`).join(', ')}, soak ${plan.soakMs / MIN} min): ` +
        `mean ${(migration.reads / migration.ticks).toFixed(2)} reads; ${spread} reads; DescribeAlarms in ${migration.describeAlarms} of them`,
    );
    return figures;
  } finally {
    output.restore();
    account.restore();
    await dynamo.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The probe function's share: one real probe against a loopback demo server
// ---------------------------------------------------------------------------------------------

async function probeRun(): Promise<{ durationMs: number }> {
  const server = await startDemoServer({ version: 'bench' });
  try {
    const runner = createProbeRunner({ path: '/health', runs: 1, largeBodyBytes: 20_000 });
    const result = await runner({ side: 'new', url: server.url });
    if (result.verdict !== 'ok') throw new Error(`probe of the healthy demo server was ${result.verdict}: ${result.summary}`);
    return { durationMs: result.durationMs ?? 0 };
  } finally {
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Cost per migration-day
// ---------------------------------------------------------------------------------------------

function cost(tick: TickFigures, probe: { durationMs: number }): void {
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const callsPerTick = sum(tick.reads) + sum(tick.writes);
  // Billed time: the measured in-process time plus the assumed latency of each call, one after
  // the other (the core makes them in sequence).
  const tickMs = tick.localMs + callsPerTick * opts.apiLatencyMs;
  const probeTargets = 2;
  const getMetricDataCalls = tick.reads.get('CloudWatch GetMetricData') ?? 0;
  // Alarms are confirmed on some ticks only: the share measured over the whole migration.
  const describeAlarmsCalls = tick.migration.describeAlarms / tick.migration.ticks;
  const lines: { item: string; usd: number; how: string }[] = [
    {
      item: 'Lambda requests',
      usd: 2 * TICKS_PER_DAY * PRICES.lambdaRequest.usd,
      how: `${TICKS_PER_DAY} controller + ${TICKS_PER_DAY} probe invocations`,
    },
    {
      item: 'Lambda duration, controller',
      usd: TICKS_PER_DAY * (tickMs / 1000) * (opts.controllerMemoryMb / 1024) * PRICES.lambdaArmGbSecond.usd,
      how: `${TICKS_PER_DAY} × ${ms(tickMs)} × ${opts.controllerMemoryMb} MB`,
    },
    {
      item: 'Lambda duration, probe',
      usd: TICKS_PER_DAY * (probe.durationMs / 1000) * (opts.probeMemoryMb / 1024) * PRICES.lambdaArmGbSecond.usd,
      how: `${TICKS_PER_DAY} × ${ms(probe.durationMs)} (measured probe, ${probeTargets} targets in parallel) × ${opts.probeMemoryMb} MB`,
    },
    {
      item: 'CloudWatch GetMetricData',
      usd: TICKS_PER_DAY * getMetricDataCalls * tick.metricsPerGetMetricData * PRICES.getMetricDataMetric.usd,
      how: `${TICKS_PER_DAY} × ${getMetricDataCalls} call × ${tick.metricsPerGetMetricData} metrics`,
    },
    {
      item: 'CloudWatch DescribeAlarms',
      usd: TICKS_PER_DAY * describeAlarmsCalls * PRICES.cloudWatchApiRequest.usd,
      how: `${TICKS_PER_DAY} × ${describeAlarmsCalls.toFixed(2)} request (share of ticks that confirm alarms)`,
    },
    {
      item: 'CloudWatch custom metrics (EMF)',
      usd: ((tick.distinctMetrics + 7 * probeTargets) * PRICES.customMetricMonth.usd) / 30,
      how: `${tick.distinctMetrics} controller + ${7 * probeTargets} probe metrics, a day of a month`,
    },
    {
      item: 'CloudWatch Logs (controller)',
      usd: (TICKS_PER_DAY * tick.logBytes * PRICES.logsIngestedGb.usd) / 1024 ** 3,
      how: `${TICKS_PER_DAY} × ${tick.logBytes} bytes of JSON logs and EMF (platform lines not counted)`,
    },
    {
      item: 'DynamoDB, controller',
      usd: TICKS_PER_DAY * (tick.readUnits * PRICES.dynamoReadUnit.usd + tick.writeUnits * PRICES.dynamoWriteUnit.usd),
      how: `${TICKS_PER_DAY} × (${tick.readUnits} RRU + ${tick.writeUnits} WRU)`,
    },
    {
      item: 'DynamoDB, probe results',
      // Each run reads the current-migration pointer (one item < 4 KB) to file its results under it.
      usd: TICKS_PER_DAY * (probeTargets * PRICES.dynamoWriteUnit.usd + PRICES.dynamoReadUnit.usd),
      how: `${TICKS_PER_DAY} × (${probeTargets} writes of < 1 KB + 1 pointer read)`,
    },
    {
      item: 'EventBridge events',
      usd: TICKS_PER_DAY * (tick.busEvents + probeTargets) * PRICES.eventBridgeEvent.usd,
      how: `${TICKS_PER_DAY} × (${tick.busEvents} controller + ${probeTargets} probe events)`,
    },
    {
      item: 'SNS',
      usd: TICKS_PER_DAY * tick.notifications * PRICES.snsPublish.usd,
      how: `${tick.notifications} per steady tick (only rollbacks, pauses, promotions publish)`,
    },
  ];
  const running = lines.reduce((a, l) => a + l.usd, 0);
  const pin = opts.pinned * (opts.appMemoryMb / 1024) * 24 * 3600 * PRICES.provisionedArmGbSecond.usd;
  console.log(`\n4. Estimated AWS cost per migration-day (us-east-1 list prices; ${TICKS_PER_DAY} ticks/day; assumed API latency ${opts.apiLatencyMs} ms/call)`);
  for (const l of lines) console.log(`   ${l.item.padEnd(32)} $${l.usd.toFixed(4).padStart(8)}   ${l.how}`);
  console.log(`   ${'controller + probe, total'.padEnd(32)} $${running.toFixed(4).padStart(8)}`);
  console.log(`   ${'pinned old version (if pinned)'.padEnd(32)} $${pin.toFixed(4).padStart(8)}   ${opts.pinned} units × ${opts.appMemoryMb} MB × 24 h of provisioned concurrency`);
  console.log(`   ${'total with the pin'.padEnd(32)} $${(running + pin).toFixed(4).padStart(8)}`);
  console.log('\n   Unit prices assumed:');
  for (const p of Object.values(PRICES)) console.log(`   - ${p.source}`);
}

// ---------------------------------------------------------------------------------------------

function serviceOf(command: CommandName | string): string {
  if (command === 'GetMetricData' || command === 'DescribeAlarms') return 'CloudWatch';
  if (command === 'PutEvents') return 'EventBridge';
  if (command === 'Publish') return 'SNS';
  return 'Lambda';
}

function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} KB`;
}

function ms(value: number): string {
  return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number ≥ 1, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number ≥ 0, got ${JSON.stringify(value)}`);
  return n;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
