/**
 * Section 5 of the controller benchmark (bench/controller.ts): one controller for many migrations.
 *
 * Runs the real shared controller handler, `createControllerHandler` with the alias kit as
 * lambda/handlers/controller-lambda-alias.ts builds it (its own clients, logger, metrics, registry
 * and dispatcher), with the table in dynalite (reached through `AWS_ENDPOINT_URL_DYNAMODB`, as
 * Lambda's SDK resolves it) and the other services behind the bench's FakeAccount
 * (aws-sdk-client-mock), one alias and one provisioned-concurrency config per function. N alias
 * migrations are registered, recorded and marked live as the deploy trigger does (and each deploy
 * wakes the controller), then the schedule ticks once a minute on a fake clock (`Date.now`, which
 * the dispatcher and each runner read) through the first hours of the live day: every migration
 * baking, promoted, soaking, complete and then watched until a full watched hour has passed.
 *
 * A live day per migration is composed from that: the measured hours as they were, then the last
 * (a watched hour: every health read, alarm confirmation and metric of the watched state repeats
 * within it) for the rest of the day, as section 3 measures a whole day of one migration tick by
 * tick. Its cost uses the same prices and assumptions as section 4, with what one invocation pays
 * for all (the request, the billed time of the tick, the registry's Query, and the probe function's
 * request and its own registry Query) divided among the N migrations.
 */
import { performance } from 'node:perf_hooks';
import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DeleteProvisionedConcurrencyConfigCommand,
  GetAliasCommand,
  GetProvisionedConcurrencyConfigCommand,
  PreconditionFailedException,
  ProvisionedConcurrencyConfigNotFoundException,
  PutProvisionedConcurrencyConfigCommand,
  ResourceNotFoundException,
  UpdateAliasCommand,
} from '@aws-sdk/client-lambda';
import { createControllerHandler } from '../lambda/aws/controller-handler';
import type { ControllerResponse } from '../lambda/aws/controller-requests';
import { DynamoDbStateStore } from '../lambda/aws/dynamodb-store';
import { DEPLOYED_APP_REQUESTS_EVERY_MINUTES, DEPLOYED_MIN_READ_MINUTES } from '../lambda/aws/health-reads';
import { lambdaAliasKit } from '../lambda/aws/kit-lambda-alias';
import { PROBE_CONCURRENCY } from '../lambda/aws/probe-dispatch';
import { MigrationRegistry } from '../lambda/aws/registry';
import { FakeAccount, type CommandName } from '../test/aws/fake-account';
import { TEST_CREDENTIALS, captureOutput, startDynalite } from '../test/aws/helpers';
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
  type Assumptions,
} from './controller-common';

/** Hours ticked on the fake clock: to completion (about 2 h) and one whole watched hour after it. */
const MEASURED_HOURS = 4;
const CONTROLLER_RULE = 'bench-shared-ControllerTick';
const PROBE_RULE = 'bench-shared-ProbeTick';

export interface SharedParams extends Assumptions {
  readonly counts: readonly number[];
  readonly alarms: number;
  readonly pinned: number;
  readonly apiLatencyMs: number;
  readonly probe: { readonly durationMs: number; readonly metricsPerRun: number };
  /** Section 3's single migration on its own runtime: when it completed, and section 4's cost. */
  readonly reference: { readonly completedAtMin?: number; readonly usd: number };
}

/** What one scheduled tick of the shared controller did (all N migrations). */
interface Tick {
  readonly reads: Map<string, number>;
  readonly writes: Map<string, number>;
  readonly registryQueries: number;
  readonly registryReadUnits: number;
  readonly registryBytes: number;
  readonly calls: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly metricsRequested: number;
  readonly describeAlarms: number;
  readonly logBytes: number;
  readonly busEvents: number;
  readonly notifications: number;
  readonly localMs: number;
}

interface SharedFigures {
  readonly n: number;
  readonly ticks: Tick[];
  /** Distinct controller metric series per measured hour (all migrations). */
  readonly metricsPerHour: number[];
  /** Minutes from the deploy to `complete`, per migration. */
  readonly completedAtMin: number[];
  /** What went wrong with the migrations' progress (empty: every one advanced as expected). */
  readonly problems: string[];
}

export async function sharedController(p: SharedParams): Promise<void> {
  console.log(
    `\n5. One controller for many migrations: the shared handler (createControllerHandler, alias kit) over dynalite, N live alias migrations ` +
      `(each with ${p.alarms} alarm(s), old version pinned at ${p.pinned}), a tick a minute for ${MEASURED_HOURS} h from their deploy ` +
      `(baking, promoted, soaking, complete, then a whole watched hour)`,
  );
  const costs: string[] = [];
  for (const n of p.counts) {
    const f = await measure(n, p.alarms, p.pinned);
    const t = f.ticks;
    const avg = (pick: (x: Tick) => number) => t.reduce((a, x) => a + pick(x), 0) / t.length;
    const byService = (div: number) => {
      const services = new Map<string, { r: number; w: number }>();
      for (const x of t) {
        for (const [kind, map] of [['r', x.reads], ['w', x.writes]] as const) {
          for (const [name, c] of map) {
            const s = services.get(name.split(' ')[0]!) ?? { r: 0, w: 0 };
            s[kind] += c / t.length / div;
            services.set(name.split(' ')[0]!, s);
          }
        }
      }
      const total = [...services.values()].reduce((a, s) => ({ r: a.r + s.r, w: a.w + s.w }), { r: 0, w: 0 });
      return (
        `reads ${total.r.toFixed(2)}, writes ${total.w.toFixed(2)}: ` +
        [...services]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, s]) => `${name} ${s.r.toFixed(2)} r / ${s.w.toFixed(2)} w`)
          .join(', ')
      );
    };
    const localMs = avg((x) => x.localMs);
    const maxMs = Math.max(...t.map((x) => x.localMs));
    const calls = avg((x) => x.calls);
    const registryRru = avg((x) => x.registryReadUnits);
    const ok = f.problems.length === 0;
    const completed = [...new Set(f.completedAtMin)];
    console.log(
      `   N = ${n}: ${t.length} scheduled ticks; every migration served in every tick and complete at minute ${completed.join('/')} ` +
        `(the single runtime of section 3: ${p.reference.completedAtMin ?? '?'}), in step with each other, alias on version 2 at the end: ${ok ? 'ok' : `NOT AS EXPECTED: ${f.problems.slice(0, 3).join('; ')}`}`,
    );
    console.log(`     AWS calls per tick:      ${byService(1)}`);
    console.log(`     per migration and tick:  ${byService(n)}`);
    console.log(
      `     the registry's share:    ${avg((x) => x.registryQueries).toFixed(2)} Query per tick (${(avg((x) => x.registryBytes) / 1000).toFixed(1)} KB read, ≈ ${registryRru.toFixed(2)} RRU), ` +
        `${(avg((x) => x.registryQueries) / n).toFixed(3)} Query and ${(registryRru / n).toFixed(3)} RRU per migration and tick (${((100 * avg((x) => x.registryQueries)) / calls).toFixed(1)} % of the tick's calls)`,
    );
    console.log(
      `     local time of a tick:    ${ms(localMs)} on average (max ${ms(maxMs)}), ${ms(localMs / n)} per migration; billed with ${p.apiLatencyMs} ms per call in sequence: ` +
        `${ms(localMs + calls * p.apiLatencyMs)} a tick, ${ms((localMs + calls * p.apiLatencyMs) / n)} per migration`,
    );

    // A live day per migration: the measured hours, then the last (watched) hour for the rest of the day.
    const watched = t.slice(-60);
    const repeats = (TICKS_PER_DAY - t.length) / watched.length;
    const day = (pick: (x: Tick) => number) => (t.reduce((a, x) => a + pick(x), 0) + repeats * watched.reduce((a, x) => a + pick(x), 0)) / TICKS_PER_DAY;
    const metricHours = f.metricsPerHour.reduce((a, b) => a + b, 0) + repeats * f.metricsPerHour.at(-1)!;
    const tickMs = day((x) => x.localMs) + day((x) => x.calls) * p.apiLatencyMs;
    const registryUnits = day((x) => x.registryReadUnits);
    const lines = dayCost(
      {
        controllerInvocations: 1 / n,
        probeInvocations: 1 / n,
        controllerMs: tickMs / n,
        controllerMsHow: `${ms(tickMs)} / ${n}`,
        getMetricDataMetrics: day((x) => x.metricsRequested) / n,
        describeAlarms: day((x) => x.describeAlarms) / n,
        controllerMetricsPerHour: metricHours / 24 / n,
        logBytes: day((x) => x.logBytes) / n,
        readUnits: day((x) => x.readUnits) / n,
        writeUnits: day((x) => x.writeUnits) / n,
        // The probe function reads the same registry once a run.
        probeRegistryReadUnits: registryUnits / n,
        busEvents: day((x) => x.busEvents) / n,
        notifications: day((x) => x.notifications) / n,
      },
      p.probe,
      p,
    );
    const total = sumUsd(lines);
    const registryUsd = (TICKS_PER_DAY * 2 * registryUnits * PRICES.dynamoReadUnit.usd) / n;
    const own = sumUsd(lines, 'migration') - registryUsd;
    const perTick = lines.find((l) => l.item === 'CloudWatch GetMetricData')!;
    costs.push(
      `   N = ${String(n).padStart(2)}  $${total.toFixed(4)}  target ≤ $${COST_TARGET_USD.toFixed(2)}: ${total <= COST_TARGET_USD ? 'ok' : 'OVER TARGET'}   ` +
        `shared: invocations $${sumUsd(lines, 'invocations').toFixed(4)} (${whole(TICKS_PER_DAY / n)} controller + ${whole(TICKS_PER_DAY / n)} probe requests, ${ms(tickMs / n)} of a tick), ` +
        `registry Queries $${registryUsd.toFixed(5)}; the migration's own $${own.toFixed(4)} (GetMetricData $${perTick.usd.toFixed(4)}, metrics $${lines.find((l) => l.item.startsWith('CloudWatch custom'))!.usd.toFixed(4)} ` +
        `for ${(metricHours / 24 / n).toFixed(2)} series an hour, DynamoDB $${lines.find((l) => l.item === 'DynamoDB, controller')!.usd.toFixed(4)}, probe time $${lines.find((l) => l.item === 'Lambda duration, probe')!.usd.toFixed(4)})`,
    );
  }
  console.log(
    `   cost per migration-day (section 4's prices and assumptions; the day: the ${MEASURED_HOURS} measured hours, then their last, watched hour for the other ${24 - MEASURED_HOURS}; ` +
      `what one invocation pays, divided among the N; the probe's time per migration as in section 4, an upper bound since it probes ${PROBE_CONCURRENCY} migrations at once):`,
  );
  for (const line of costs) console.log(line);
  console.log(`   section 4, one migration on its own runtime (its own invocations, no registry): $${p.reference.usd.toFixed(4)}`);
}

async function measure(n: number, alarms: number, pinned: number): Promise<SharedFigures> {
  const table = `bench-shared-${n}`;
  const dynamo = await startDynalite({ maxAttempts: 1 });
  const account = new FakeAccount('api');
  const savedEnv = { ...process.env };
  const realNow = Date.now;
  const clock = { now: DAY_STARTS_MS };
  const output = captureOutput();
  try {
    await dynamo.createTable(table);
    const sizes = watchDynamo(dynamo.server);
    const { aliases } = accountPerFunction(account);
    // The process environment as Lambda gives it to the function (the SDK resolves DynamoDB's
    // endpoint from it), and the shared controller's own variables, as the construct sets them.
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      POWERTOOLS_SERVICE_NAME: 'cutover-controller',
      POWERTOOLS_METRICS_NAMESPACE: 'Cutover',
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CUTOVER_TABLE_NAME: table,
      CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
      CUTOVER_EVENT_BUS_NAME: 'cutover',
      CUTOVER_CONTROLLER_SCHEDULE: CONTROLLER_RULE,
      CUTOVER_PROBE_SCHEDULE: PROBE_RULE,
      CUTOVER_HEALTH_READ_MINUTES: String(DEPLOYED_MIN_READ_MINUTES),
      CUTOVER_PROBE_FUNCTION_NAME: 'cutover-probe',
    };
    Date.now = () => clock.now;
    const handler = createControllerHandler([lambdaAliasKit], env, 'lambda-alias');
    const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: table });
    const registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName: table });

    const migrations = Array.from({ length: n }, (_, i) => {
      const functionName = `api${String(i + 1).padStart(2, '0')}`;
      const key = `${functionName}:live`;
      return { functionName, key, id: `${key}:2`, alarmNames: Array.from({ length: alarms }, (_, a) => `${functionName}-alarm-${a + 1}`) };
    });
    const probesOk = async () => {
      for (const m of migrations) {
        for (const side of ['new', 'old'] as const) await store.putProbeResult(m.id, { side, verdict: 'ok', atMs: clock.now - 1_000, summary: 'aligned', findings: 0 });
      }
    };

    // The deploys: each registered (its custom resource's settings), recorded, marked live, the
    // schedules enabled, and the controller woken for it, as the deploy trigger does.
    for (const m of migrations) {
      for (const name of m.alarmNames) {
        account.alarms.set(name, 'OK');
        account.alarmChangedAtMs.set(name, clock.now - 3_600_000);
      }
      await registry.register(
        m.key,
        {
          CUTOVER_FUNCTION_NAME: m.functionName,
          CUTOVER_ALIAS_NAME: 'live',
          CUTOVER_PLAN: JSON.stringify(BENCH_PLAN),
          CUTOVER_JUDGE: '{}',
          CUTOVER_ALARM_NAMES: JSON.stringify(m.alarmNames),
          CUTOVER_PINNED_CAPACITY: String(pinned),
          CUTOVER_APP_METRICS_NAMESPACE: 'App',
          CUTOVER_APP_REQUESTS_EVERY_MINUTES: String(DEPLOYED_APP_REQUESTS_EVERY_MINUTES),
        },
        clock.now,
      );
      aliases.set(m.functionName, { main: '1', weights: {}, revision: 1 });
      await store.putPointer(m.key, { migrationId: m.id, oldVersion: '1', newVersion: '2', createdAtMs: clock.now }, undefined);
      await registry.markLive(m.key, m.id, clock.now);
      account.rules.set(CONTROLLER_RULE, 'ENABLED');
      account.rules.set(PROBE_RULE, 'ENABLED');
    }
    await probesOk();
    for (const m of migrations) {
      const woken = await handler({ trigger: 'deploy', migrationId: m.id, migrationKey: m.key });
      if (woken.status !== 'baking') throw new Error(`the deploy of ${m.id} did not start it: ${JSON.stringify(woken)}`);
    }

    const ticks: Tick[] = [];
    const metricsPerHour: number[] = [];
    /** Distinct metric series sent in each measured hour (all migrations). */
    const hourKeys: Set<string>[] = [];
    const completedAtMin = new Map<string, number>();
    const problems: string[] = [];
    const scheduled = () => ({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date(clock.now).toISOString(), detail: {} });
    for (let tick = 1; tick <= MEASURED_HOURS * 60; tick++) {
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
      const answer = await handler(scheduled());
      const localMs = performance.now() - started;

      // Every migration served, all in step (the same status and weight in the same tick).
      const runs = runsOf(answer);
      if (runs.length !== n) problems.push(`tick ${tick}: ${runs.length} of ${n} served`);
      const states = new Set(runs.map((r) => `${r.status}@${r.weight}`));
      if (states.size > 1) problems.push(`tick ${tick}: not in step: ${[...states].join(', ')}`);
      for (const r of runs) {
        if (r.status === 'rolled-back' || r.status === 'paused' || r.error) problems.push(`tick ${tick}: ${r.migrationKey} ${r.status ?? r.error}`);
        if (r.status === 'complete' && !completedAtMin.has(r.migrationKey)) completedAtMin.set(r.migrationKey, tick);
      }

      const reads = new Map<string, number>();
      const writes = new Map<string, number>();
      const add = (map: Map<string, number>, key: string, c: number) => map.set(key, (map.get(key) ?? 0) + c);
      for (const [name, c] of account.calls) add(READ_COMMANDS.has(name) ? reads : writes, `${serviceOf(name as CommandName)} ${name}`, c);
      let readUnits = 0;
      let writeUnits = 0;
      for (const x of sizes) {
        add(READ_COMMANDS.has(x.op) ? reads : writes, `DynamoDB ${x.op}`, 1);
        const units = unitsOf(x);
        readUnits += units.read;
        writeUnits += units.write;
      }
      const registryQueries = sizes.filter((x) => x.registry && x.op === 'Query');
      ticks.push({
        reads,
        writes,
        registryQueries: registryQueries.length,
        registryReadUnits: registryQueries.reduce((a, x) => a + unitsOf(x).read, 0),
        registryBytes: registryQueries.reduce((a, x) => a + x.response, 0),
        calls: [...account.calls.values()].reduce((a, b) => a + b, 0) + sizes.length,
        readUnits,
        writeUnits,
        metricsRequested: account.cloudWatchMock.commandCalls(GetMetricDataCommand).reduce((a, call) => a + (call.args[0].input.MetricDataQueries?.length ?? 0), 0),
        describeAlarms: account.count('DescribeAlarms'),
        logBytes: output.bytes() - bytesBefore,
        busEvents: account.events.length - eventsBefore,
        notifications: account.notifications.length - notificationsBefore,
        localMs,
      });
      const hour = Math.floor((tick - 1) / 60);
      hourKeys[hour] ??= new Set<string>();
      for (const key of metricKeys(output.records().slice(recordsBefore))) hourKeys[hour]!.add(key);
    }
    for (const keys of hourKeys) metricsPerHour.push(keys.size);

    for (const m of migrations) {
      if (!completedAtMin.has(m.key)) problems.push(`${m.key} never complete`);
      else if (completedAtMin.get(m.key)! > (MEASURED_HOURS - 1) * 60) problems.push(`${m.key} complete only at minute ${completedAtMin.get(m.key)}: the last hour is not a watched one`);
      const alias = aliases.get(m.functionName);
      if (alias?.main !== '2' || Object.keys(alias.weights).length > 0) problems.push(`${m.key}: alias ${JSON.stringify(alias)}`);
    }
    return { n, ticks, metricsPerHour, completedAtMin: migrations.map((m) => completedAtMin.get(m.key) ?? -1), problems };
  } finally {
    Date.now = realNow;
    output.restore();
    for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
    Object.assign(process.env, savedEnv);
    account.restore();
    await dynamo.close();
  }
}

function whole(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

/** Each migration's part of a tick's answer (one migration answers as it always did). */
function runsOf(answer: ControllerResponse): { migrationKey: string; status?: string; weight?: number; error?: string }[] {
  if (answer.migrations) return answer.migrations.map((m) => ({ migrationKey: m.migrationKey, status: m.status, weight: m.weight, ...(m.error ? { error: m.error } : {}) }));
  if (answer.migrationId === null) return [];
  return [{ migrationKey: answer.migrationKey ?? '?', status: answer.status, weight: answer.weight }];
}

/**
 * One alias and one set of provisioned-concurrency configs per function (FakeAccount has one alias
 * for all), counted in `account.calls` like the account's own commands.
 */
function accountPerFunction(account: FakeAccount): { aliases: Map<string, { main: string; weights: Record<string, number>; revision: number }> } {
  const aliases = new Map<string, { main: string; weights: Record<string, number>; revision: number }>();
  const pcs = new Map<string, number>();
  const count = (name: CommandName) => account.calls.set(name, (account.calls.get(name) ?? 0) + 1);
  const config = (fn: string) => {
    const alias = aliases.get(fn);
    if (!alias) throw new ResourceNotFoundException({ message: `Alias not found: ${fn}:live`, $metadata: { httpStatusCode: 404 } });
    return {
      AliasArn: `arn:aws:lambda:us-east-1:123456789012:function:${fn}:live`,
      Name: 'live',
      FunctionVersion: alias.main,
      RevisionId: `rev-${alias.revision}`,
      RoutingConfig: { AdditionalVersionWeights: { ...alias.weights } },
    };
  };
  const pc = (n: number) => ({ RequestedProvisionedConcurrentExecutions: n, AllocatedProvisionedConcurrentExecutions: n, AvailableProvisionedConcurrentExecutions: n, Status: 'READY' as const });
  account.lambdaMock.on(GetAliasCommand).callsFake((input: { FunctionName: string }) => {
    count('GetAlias');
    return config(input.FunctionName);
  });
  account.lambdaMock.on(UpdateAliasCommand).callsFake(
    (input: { FunctionName: string; FunctionVersion: string; RevisionId?: string; RoutingConfig?: { AdditionalVersionWeights?: Record<string, number> } }) => {
      count('UpdateAlias');
      const alias = aliases.get(input.FunctionName);
      if (!alias) throw new ResourceNotFoundException({ message: 'Alias not found', $metadata: {} });
      if (input.RevisionId && input.RevisionId !== `rev-${alias.revision}`) throw new PreconditionFailedException({ message: 'revision', $metadata: { httpStatusCode: 412 } });
      aliases.set(input.FunctionName, { main: input.FunctionVersion, weights: { ...(input.RoutingConfig?.AdditionalVersionWeights ?? {}) }, revision: alias.revision + 1 });
      return config(input.FunctionName);
    },
  );
  account.lambdaMock.on(GetProvisionedConcurrencyConfigCommand).callsFake((input: { FunctionName: string; Qualifier: string }) => {
    count('GetProvisionedConcurrencyConfig');
    const n = pcs.get(`${input.FunctionName}:${input.Qualifier}`);
    if (n === undefined) throw new ProvisionedConcurrencyConfigNotFoundException({ message: 'No Provisioned Concurrency Config found', $metadata: {} });
    return pc(n);
  });
  account.lambdaMock.on(PutProvisionedConcurrencyConfigCommand).callsFake((input: { FunctionName: string; Qualifier: string; ProvisionedConcurrentExecutions: number }) => {
    count('PutProvisionedConcurrencyConfig');
    pcs.set(`${input.FunctionName}:${input.Qualifier}`, input.ProvisionedConcurrentExecutions);
    return pc(input.ProvisionedConcurrentExecutions);
  });
  account.lambdaMock.on(DeleteProvisionedConcurrencyConfigCommand).callsFake((input: { FunctionName: string; Qualifier: string }) => {
    count('DeleteProvisionedConcurrencyConfig');
    if (!pcs.delete(`${input.FunctionName}:${input.Qualifier}`)) {
      throw new ProvisionedConcurrencyConfigNotFoundException({ message: 'No Provisioned Concurrency Config found', $metadata: {} });
    }
    return {};
  });
  return { aliases };
}
