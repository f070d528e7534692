/**
 * Controller benchmark: `npm run bench:controller` (options: `-- --help`).
 *
 * Prints, every figure computed here (only unit prices and the stated assumptions are inputs):
 * 1. each Lambda's bundle size, bundled with esbuild as NodejsFunction does (`@aws-sdk/*` left to
 *    the runtime, minified, CommonJS, node22) — target ≤ 150 KB;
 * 2. each bundled handler module's cold init time in a fresh `node` process (median of N);
 * 3. the AWS API calls of the controller's ticks, measured on the real runtime with the table in
 *    dynalite and the other services behind aws-sdk-client-mock, configured as the construct
 *    deploys it (health read 3 minutes at a time, schedules switched): the first tick that reads
 *    the health window (read vs write; target ≤ 3 read calls: DynamoDB is one Query for the record,
 *    the delivered alarm states and the probe results together), then every tick of a whole
 *    migration to completion, averaged (calls, metrics requested, capacity units, log bytes, the
 *    metrics sent in each hour), and the schedules' states after the teardown;
 * 4. the estimated AWS cost of one live migration-day from those figures (target ≤ $0.15), and of
 *    a day with nothing migrating (the schedules are off: nothing runs);
 * 5. one shared controller for N = 1, 5, 25 live migrations (bench/controller-shared.ts): the real
 *    handler's calls per scheduled tick and per migration, the registry's share, the time of a tick,
 *    whether every migration advanced, and the cost per migration-day with what one invocation pays
 *    divided among the N.
 *
 * Sections 1 and 2 are in bench/controller-bundles.ts; the prices, the day's assumptions, the cost
 * lines and the counting helpers that sections 3–5 share are in bench/controller-common.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { Command } from 'commander';
import { readControllerConfig } from '../lambda/aws/config';
import { ControllerRuntime } from '../lambda/aws/controller-runtime';
import { DynamoDbStateStore } from '../lambda/aws/dynamodb-store';
import { DEPLOYED_APP_REQUESTS_EVERY_MINUTES, DEPLOYED_MIN_READ_MINUTES } from '../lambda/aws/health-reads';
import { createMetrics, publishProbeMetrics } from '../lambda/aws/metrics';
import { createProbeRunner } from '../lambda/aws/probe-runner';
import type { PlanSpec } from '../lambda/core/plan';
import { startDemoServer } from '../local/demo-server';
import { FakeAccount } from '../test/aws/fake-account';
import { captureOutput, startDynalite } from '../test/aws/helpers';
import {
  BENCH_PLAN,
  COST_TARGET_USD,
  DAY_STARTS_MS,
  MIN,
  PRICES,
  READ_COMMANDS,
  TICKS_PER_DAY,
  dayCost,
  metricKeys,
  ms,
  serviceOf,
  sumUsd,
  unitsOf,
  watchDynamo,
} from './controller-common';
import { INIT_ENV, bundleAll, coldInit } from './controller-bundles';
import { sharedController } from './controller-shared';


const program = new Command()
  .name('bench:controller')
  .option('--runs <n>', 'cold-init samples per handler', (v) => positiveInt(v, '--runs'), 7)
  .option('--api-latency-ms <ms>', 'assumed latency of one AWS API call from Lambda (same region)', (v) => positiveInt(v, '--api-latency-ms'), 20)
  .option('--controller-memory-mb <mb>', 'assumed memory of the controller function', (v) => positiveInt(v, '--controller-memory-mb'), 256)
  .option('--probe-memory-mb <mb>', 'assumed memory of the probe function', (v) => positiveInt(v, '--probe-memory-mb'), 256)
  .option('--app-memory-mb <mb>', "assumed memory of the application's function (for the pin)", (v) => positiveInt(v, '--app-memory-mb'), 512)
  .option('--pinned <units>', 'provisioned concurrency pinned on the old version', (v) => positiveInt(v, '--pinned'), 5)
  .option('--alarms <n>', 'user alarms watched by the controller', (v) => nonNegativeInt(v, '--alarms'), 1)
  .option('--shared <list>', 'numbers of live migrations one shared controller serves (section 5), comma-separated', (v) => v.split(',').map((x) => positiveInt(x.trim(), '--shared')), [1, 5, 25])
  .parse();
const opts = program.opts<{ runs: number; apiLatencyMs: number; controllerMemoryMb: number; probeMemoryMb: number; appMemoryMb: number; pinned: number; alarms: number; shared: number[] }>();

const READ_TARGET = 3;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cutover-bench-'));
  try {
    const bundles = await bundleAll(dir);
    await coldInit(bundles, opts.runs);
    console.log(`\n3. AWS API calls of a migration's ticks (baking, healthy; target ≤ ${READ_TARGET} reads in a tick that reads the health window)`);
    const figures = await simulate(opts.alarms, opts.pinned, true);
    // The same without the optional reads (no alarms watched, capacity not managed), to completion.
    await simulate(0, 0, false);
    const probe = await probeRun();
    const usd = cost(figures, probe);
    await sharedController({
      counts: opts.shared,
      alarms: opts.alarms,
      pinned: opts.pinned,
      apiLatencyMs: opts.apiLatencyMs,
      controllerMemoryMb: opts.controllerMemoryMb,
      probeMemoryMb: opts.probeMemoryMb,
      probe,
      reference: { ...(figures.completedAtMin !== undefined ? { completedAtMin: figures.completedAtMin } : {}), usd },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Calls per tick, measured over a whole migration
// ---------------------------------------------------------------------------------------------

/** What one migration costs per tick, averaged over every tick from the steady state to completion. */
interface MigrationFigures {
  /** The first tick that read the health window: its calls, read vs write. */
  readonly steady: { readonly reads: Map<string, number>; readonly writes: Map<string, number>; readonly localMs: number; readonly metricsRequested: number };
  readonly ticks: number;
  /** Ticks (of `ticks`) before the migration was complete, when it completed within them. */
  readonly completedAfter?: number;
  /** Minutes from the deploy to the first tick that answered `complete`. */
  readonly completedAtMin?: number;
  /** Per tick, on average. */
  readonly perTick: {
    readonly calls: number;
    readonly reads: number;
    readonly getMetricDataMetrics: number;
    readonly describeAlarms: number;
    readonly readUnits: number;
    readonly writeUnits: number;
    readonly logBytes: number;
    readonly busEvents: number;
    readonly notifications: number;
    readonly localMs: number;
  };
  readonly byReads: Map<number, number>;
  /** Distinct controller metrics (name and dimensions) per hour of the migration, on average. */
  readonly controllerMetricsPerHour: number;
  /** The schedules' states once the migration was torn down, and what switched them. */
  readonly afterTeardown: { readonly rules: Map<string, string>; readonly switches: readonly string[] };
}

const CONTROLLER_RULE = 'bench-ControllerTick';
const PROBE_RULE = 'bench-ProbeTick';

/**
 * One migration on the deployed configuration. `wholeDay`: a live day, the migration from its
 * deploy to completion and then complete (watched, its old side pinned, waiting for the manual
 * teardown) until a day of ticks has passed; otherwise up to completion only.
 */
async function simulate(alarms: number, pinned: number, wholeDay: boolean): Promise<MigrationFigures> {
  const table = 'bench-cutover';
  const dynamo = await startDynalite({ maxAttempts: 1 });
  const account = new FakeAccount('api');
  const output = captureOutput();
  try {
    await dynamo.createTable(table);
    // Request and response sizes on the wire, by operation: the basis of the capacity units.
    const sizes = watchDynamo(dynamo.server);

    const plan: PlanSpec = BENCH_PLAN;
    const alarmNames = Array.from({ length: alarms }, (_, i) => `api-alarm-${i + 1}`);
    // The environment the construct gives a deployed controller (health reads, schedules).
    const config = readControllerConfig({
      ...INIT_ENV,
      CUTOVER_TABLE_NAME: table,
      CUTOVER_PLAN: JSON.stringify(plan),
      CUTOVER_ALARM_NAMES: JSON.stringify(alarmNames),
      CUTOVER_PINNED_CAPACITY: String(pinned),
      CUTOVER_PROBE_TARGETS: '',
      CUTOVER_HEALTH_READ_MINUTES: String(DEPLOYED_MIN_READ_MINUTES),
      CUTOVER_APP_REQUESTS_EVERY_MINUTES: String(DEPLOYED_APP_REQUESTS_EVERY_MINUTES),
      CUTOVER_CONTROLLER_SCHEDULE: CONTROLLER_RULE,
      CUTOVER_PROBE_SCHEDULE: PROBE_RULE,
    });
    const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: table, alarmStatesPerLoad: alarmNames.length });
    const clock = { now: DAY_STARTS_MS };
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
    const scheduled = () => ({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date(clock.now).toISOString() });

    // The deploy: the trigger records the migration and enables both schedules (lambda/aws/schedules.ts).
    account.alias = { main: '1', weights: {}, revision: 1 };
    await store.putPointer(config.aliasKey, { migrationId, oldVersion: '1', newVersion: '2', createdAtMs: clock.now }, undefined);
    account.rules.set(CONTROLLER_RULE, 'ENABLED');
    account.rules.set(PROBE_RULE, 'ENABLED');
    await probesOk();
    await runtime.handle({ trigger: 'deploy', migrationId });

    const readsOfTick = () =>
      [...account.calls].reduce((n, [name, c]) => n + (READ_COMMANDS.has(name) ? c : 0), 0) + sizes.filter((x) => READ_COMMANDS.has(x.op)).length;
    const callsOfTick = () => [...account.calls.values()].reduce((a, b) => a + b, 0) + sizes.length;
    /** GetMetricData calls by the number of metrics each requested, over the migration. */
    const readSizes = new Map<number, number>();
    const metricsRequested = (note = false) =>
      account.cloudWatchMock.commandCalls(GetMetricDataCommand).reduce((n, call) => {
        const size = call.args[0].input.MetricDataQueries?.length ?? 0;
        if (note) readSizes.set(size, (readSizes.get(size) ?? 0) + 1);
        return n + size;
      }, 0);

    // Ticks once a minute until the first one that reads a health window: the steady state.
    let steady: MigrationFigures['steady'] | undefined;
    for (let i = 0; !steady; i++) {
      if (i > 10) throw new Error('no tick read the health window in 10 minutes');
      clock.now += MIN;
      await probesOk();
      account.calls.clear();
      account.cloudWatchMock.resetHistory();
      sizes.length = 0;
      const started = performance.now();
      const result = await runtime.handle(scheduled());
      const localMs = performance.now() - started;
      if (result.status !== 'baking' || result.action !== 'hold') throw new Error(`the migration is not baking steadily: ${JSON.stringify(result)}`);
      if (account.count('GetMetricData') === 0) continue;
      const reads = new Map<string, number>();
      const writes = new Map<string, number>();
      const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n);
      for (const [name, n] of account.calls) add(READ_COMMANDS.has(name) ? reads : writes, `${serviceOf(name)} ${name}`, n);
      for (const x of sizes) add(READ_COMMANDS.has(x.op) ? reads : writes, `DynamoDB ${x.op}`, 1);
      steady = { reads, writes, localMs, metricsRequested: metricsRequested() };
    }

    // The rest of the migration, tick by tick (one a minute, as scheduled), to completion.
    const totals = { calls: 0, reads: 0, getMetricDataMetrics: 0, describeAlarms: 0, readUnits: 0, writeUnits: 0, logBytes: 0, busEvents: 0, notifications: 0, localMs: 0 };
    const byReads = new Map<number, number>();
    const metricsByHour = new Map<number, Set<string>>();
    let ticks = 0;
    const dayEndsMs = DAY_STARTS_MS + TICKS_PER_DAY * MIN;
    let completedAfter: number | undefined;
    let completedAtMin: number | undefined;
    for (let status = 'baking'; wholeDay ? clock.now + MIN < dayEndsMs : status !== 'complete'; ) {
      if (status === 'complete' && completedAfter === undefined) {
        completedAfter = ticks;
        completedAtMin = (clock.now - DAY_STARTS_MS) / MIN;
      }
      if (ticks > TICKS_PER_DAY) throw new Error(`the migration did not complete in a day of ticks (status ${status})`);
      clock.now += MIN;
      await probesOk();
      account.calls.clear();
      account.cloudWatchMock.resetHistory();
      sizes.length = 0;
      const recordsBefore = output.records().length;
      const bytesBefore = output.bytes();
      const eventsBefore = account.events.length;
      const notificationsBefore = account.notifications.length;
      const started = performance.now();
      status = String((await runtime.handle(scheduled())).status);
      totals.localMs += performance.now() - started;
      if (status === 'rolled-back' || status === 'paused') throw new Error(`the healthy migration stopped: ${status}`);
      ticks++;
      const reads = readsOfTick();
      byReads.set(reads, (byReads.get(reads) ?? 0) + 1);
      totals.calls += callsOfTick();
      totals.reads += reads;
      totals.getMetricDataMetrics += metricsRequested(true);
      totals.describeAlarms += account.count('DescribeAlarms');
      for (const x of sizes) {
        const units = unitsOf(x);
        totals.readUnits += units.read;
        totals.writeUnits += units.write;
      }
      totals.logBytes += output.bytes() - bytesBefore;
      totals.busEvents += account.events.length - eventsBefore;
      totals.notifications += account.notifications.length - notificationsBefore;
      const hour = Math.floor(clock.now / 3_600_000);
      const seen = metricsByHour.get(hour) ?? new Set<string>();
      for (const key of metricKeys(output.records().slice(recordsBefore))) seen.add(key);
      metricsByHour.set(hour, seen);
    }

    // Teardown (an operator's direct invoke): the controller switches both schedules off.
    account.ruleSwitches.length = 0;
    await runtime.handle({ command: 'teardown', reason: 'bench: accepted' });
    const afterTeardown = { rules: new Map(account.rules), switches: [...account.ruleSwitches] };

    const perTick = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v / ticks])) as MigrationFigures['perTick'];
    const hours = [...metricsByHour.values()];
    const figures: MigrationFigures = {
      steady,
      ticks,
      ...(completedAfter !== undefined ? { completedAfter } : {}),
      ...(completedAtMin !== undefined ? { completedAtMin } : {}),
      perTick,
      byReads,
      controllerMetricsPerHour: hours.reduce((n, set) => n + set.size, 0) / hours.length,
      afterTeardown,
    };
    output.restore();
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    console.log(`   with ${alarms} alarm(s) and ${pinned > 0 ? `the old version pinned at ${pinned}` : 'capacity not managed'}:`);
    console.log(`   a tick that reads the health window:`);
    console.log(`     reads  ${String(total(steady.reads)).padStart(2)}: ${[...steady.reads].map(([k, v]) => `${k}×${v}`).join(', ')}  ${total(steady.reads) <= READ_TARGET ? 'ok' : 'OVER TARGET'}`);
    console.log(`     writes ${String(total(steady.writes)).padStart(2)}: ${[...steady.writes].map(([k, v]) => `${k}×${v}`).join(', ')}`);
    console.log(`     GetMetricData: ${steady.metricsRequested} metrics requested; in process (mocked AWS, local dynalite): ${ms(steady.localMs)}`);
    const spread = [...byReads].sort(([a], [b]) => a - b).map(([n, c]) => `${c} with ${n}`).join(', ');
    console.log(
      `   every later tick ${wholeDay ? `of the day (${ticks} ticks; complete after ${completedAfter} of them, then watched until the day ends)` : `to completion (${ticks} ticks)`}, ` +
        `plan ${plan.steps.map((st) => `${st.weight}%@${st.bakeMs / MIN}min`).join(', ')}, soak ${plan.soakMs / MIN} min; per tick on average: ` +
        `${perTick.reads.toFixed(2)} reads (${spread} reads), ${perTick.getMetricDataMetrics.toFixed(2)} metrics requested with GetMetricData, ` +
        `${perTick.describeAlarms.toFixed(2)} DescribeAlarms, ≈ ${perTick.readUnits.toFixed(2)} RRU / ${perTick.writeUnits.toFixed(2)} WRU, ${perTick.logBytes.toFixed(0)} log bytes`,
    );
    console.log(`   GetMetricData calls: ${[...readSizes].sort(([a], [b]) => a - b).map(([size, count]) => `${count} of ${size} metrics`).join(', ')}`);
    console.log(`   controller metrics billed per hour (distinct name and dimensions sent in it): ${figures.controllerMetricsPerHour.toFixed(2)}`);
    const hoursOf = new Map<string, number>();
    for (const keys of metricsByHour.values()) for (const key of keys) hoursOf.set(key.replace(/\{.*\}/, ''), (hoursOf.get(key.replace(/\{.*\}/, '')) ?? 0) + 1);
    console.log(`     sent in how many of the ${metricsByHour.size} hours: ${[...hoursOf].sort(([a], [b]) => a.localeCompare(b)).map(([name, h]) => `${name} ${h}`).join(', ')}`);
    console.log(
      `   after the teardown: ${afterTeardown.switches.join(', ') || 'nothing switched'}; ` +
        `${[...afterTeardown.rules].map(([name, state]) => `${name} ${state}`).join(', ')}`,
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

async function probeRun(): Promise<{ durationMs: number; metricsPerRun: number }> {
  const server = await startDemoServer({ version: 'bench' });
  try {
    const runner = createProbeRunner({ path: '/health', runs: 1, largeBodyBytes: 20_000 });
    const result = await runner({ side: 'new', url: server.url });
    if (result.verdict !== 'ok') throw new Error(`probe of the healthy demo server was ${result.verdict}: ${result.summary}`);
    // What the probe function sends for it on each side (an ok run on both).
    const output = captureOutput();
    try {
      const metrics = createMetrics('cutover-probe', 'Cutover');
      for (const side of ['new', 'old'] as const) publishProbeMetrics(metrics, 'api:live', { ...result, side, atMs: Date.now() });
      return { durationMs: result.durationMs ?? 0, metricsPerRun: new Set(metricKeys(output.records())).size };
    } finally {
      output.restore();
    }
  } finally {
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Cost per migration-day
// ---------------------------------------------------------------------------------------------

function cost(m: MigrationFigures, probe: { durationMs: number; metricsPerRun: number }): number {
  const t = m.perTick;
  // Billed time: the measured in-process time plus the assumed latency of each call, one after
  // the other (the core makes them in sequence).
  const tickMs = t.localMs + t.calls * opts.apiLatencyMs;
  // A live day: a tick and a probe run a minute. While nothing migrates both schedules are off:
  // every figure below is 0 (measured: the rules' states after the teardown).
  // `invocations`: what a tick costs as an invocation (requests, the controller's time): here one
  // migration alone pays them (section 5 divides them among the migrations one controller serves).
  // `migration`: what each migration costs whoever runs it (its reads, metrics, items, events, and
  // the probe's time, which grows with its targets).
  const lines = dayCost(
    {
      controllerInvocations: 1,
      probeInvocations: 1,
      controllerMs: tickMs,
      controllerMsHow: ms(tickMs),
      getMetricDataMetrics: t.getMetricDataMetrics,
      describeAlarms: t.describeAlarms,
      controllerMetricsPerHour: m.controllerMetricsPerHour,
      logBytes: t.logBytes,
      readUnits: t.readUnits,
      writeUnits: t.writeUnits,
      probeRegistryReadUnits: 0,
      busEvents: t.busEvents,
      notifications: t.notifications,
    },
    probe,
    opts,
  );
  const running = sumUsd(lines);
  const pin = opts.pinned * (opts.appMemoryMb / 1024) * 24 * 3600 * PRICES.provisionedArmGbSecond.usd;
  const enabledAfter = [...m.afterTeardown.rules.values()].filter((state) => state === 'ENABLED').length;
  console.log(`\n4. Estimated AWS cost per migration-day, one migration on its own runtime (us-east-1 list prices; a live day: ${TICKS_PER_DAY} ticks and probe runs; assumed API latency ${opts.apiLatencyMs} ms/call)`);
  for (const l of lines) console.log(`   ${l.item.padEnd(32)} $${l.usd.toFixed(4).padStart(8)}   ${l.part === 'invocations' ? '[invocations] ' : ''}${l.how}`);
  console.log(
    `   of which the invocations themselves $${sumUsd(lines, 'invocations').toFixed(4)} (requests and controller time: paid by this one migration alone; section 5 shares them) ` +
      `and the migration's own $${sumUsd(lines, 'migration').toFixed(4)} (its reads, metrics, items, events, probe time)`,
  );
  console.log(`   ${'controller + probe, total'.padEnd(32)} $${running.toFixed(4).padStart(8)}   target ≤ $${COST_TARGET_USD.toFixed(2)}: ${running <= COST_TARGET_USD ? 'ok' : 'OVER TARGET'}`);
  console.log(`   ${'pinned old version (if pinned)'.padEnd(32)} $${pin.toFixed(4).padStart(8)}   ${opts.pinned} units × ${opts.appMemoryMb} MB × 24 h of provisioned concurrency`);
  console.log(`   ${'total with the pin'.padEnd(32)} $${(running + pin).toFixed(4).padStart(8)}`);
  console.log(
    `   idle (nothing migrating): ${enabledAfter * TICKS_PER_DAY} scheduled invocations per day, $${(enabledAfter * TICKS_PER_DAY * PRICES.lambdaRequest.usd).toFixed(4)} ` +
      `(schedule rules enabled after the teardown: ${enabledAfter})`,
  );
  console.log('\n   Unit prices assumed:');
  for (const p of Object.values(PRICES)) console.log(`   - ${p.source}`);
  return running;
}

// ---------------------------------------------------------------------------------------------

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
