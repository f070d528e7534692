/**
 * The controller's runtime end to end: the real core, the real adapters, the table in dynalite,
 * Lambda/CloudWatch/EventBridge/SNS behind aws-sdk-client-mock, a fake clock. Covers the happy path,
 * rollbacks, operator commands, overlapping runs, and every AWS read or write failing.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../lambda/aws/all-clients';
import type { AwsClients } from '../../lambda/aws/clients';
import { readControllerConfig, type ControllerConfig } from '../../lambda/aws/config';
import { ControllerRuntime, parseControllerEvent } from '../../lambda/aws/controller-runtime';
import { DynamoDbStateStore, alarmSk, migrationPk, type MigrationPointer } from '../../lambda/aws/dynamodb-store';
import { createMetrics } from '../../lambda/aws/metrics';
import { InvalidCommandError } from '../../lambda/core/controller';
import { MigrationStatus } from '../../lambda/core/model';
import type { PlanSpec } from '../../lambda/core/plan';
import { FakeAccount, healthySide, serverError, throttled, timedOut, type CommandName } from './fake-account';
import { startFakeAws, type FakeAws } from './fake-aws';
import { TEST_CREDENTIALS, captureOutput, emfLines, startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-controller-test';
const MIN = 60_000;
const PLAN: PlanSpec = { steps: [{ weight: 10, bakeMs: 2 * MIN }, { weight: 100, bakeMs: 2 * MIN }], soakMs: 2 * MIN, healthWindowMs: MIN, teardown: 'manual' };
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let fnCounter = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
});
afterAll(async () => {
  account.restore();
  await dynamo.close();
});

/** One migration world per test: its own function name, so tests never share table items. */
interface World {
  readonly config: ControllerConfig;
  readonly store: DynamoDbStateStore;
  readonly clock: { now: number };
  readonly output: ReturnType<typeof captureOutput>;
  runtime(clients?: AwsClients): ControllerRuntime;
  /** What the probe function would record every minute (in the deployed migration's partition). */
  probesOk(): Promise<void>;
  deploy(oldVersion: string, newVersion: string): Promise<MigrationPointer>;
  tick(event?: unknown): Promise<Awaited<ReturnType<ControllerRuntime['handle']>>>;
}

let world: World;

function makeWorld(envOverrides: Record<string, string> = {}): World {
  const functionName = `api${++fnCounter}`;
  const config = readControllerConfig({
    CUTOVER_TABLE_NAME: TABLE,
    CUTOVER_FUNCTION_NAME: functionName,
    CUTOVER_ALIAS_NAME: 'live',
    CUTOVER_PLAN: JSON.stringify(PLAN),
    CUTOVER_JUDGE: '{}',
    CUTOVER_ALARM_NAMES: JSON.stringify(['api-errors']),
    CUTOVER_PINNED_CAPACITY: '5',
    CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
    CUTOVER_EVENT_BUS_NAME: 'cutover-bus',
    CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp',
    ...envOverrides,
  });
  const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, onWarning: () => {} });
  const clock = { now: Date.UTC(2026, 5, 1, 12, 0, 0) };
  const output = captureOutput();
  let runtime: ControllerRuntime | undefined;
  let migrationId: string | undefined;
  const make = (clients: AwsClients = dynamo.clients) =>
    new ControllerRuntime({
      config,
      clients,
      store: clients === dynamo.clients ? store : new DynamoDbStateStore({ documents: clients.documents, tableName: TABLE, onWarning: () => {} }),
      logger: new Logger({ serviceName: 'cutover-controller' }),
      metrics: createMetrics('cutover-controller', 'Cutover'),
      now: () => clock.now,
    });
  return {
    config,
    store,
    clock,
    output,
    runtime: make,
    async probesOk() {
      if (!migrationId) throw new Error('deploy first: probe results are recorded under a migration');
      for (const side of ['new', 'old'] as const) {
        await store.putProbeResult(migrationId, { side, verdict: 'ok', atMs: clock.now - 1_000, summary: 'responses aligned', findings: 0 });
      }
    },
    async deploy(oldVersion, newVersion) {
      account.alias = { main: oldVersion, weights: {}, revision: 1 };
      const pointer = { migrationId: `${config.aliasKey}:${newVersion}`, oldVersion, newVersion, createdAtMs: clock.now };
      await store.putPointer(config.aliasKey, pointer, migrationId);
      migrationId = pointer.migrationId;
      return pointer;
    },
    async tick(event = SCHEDULED) {
      runtime ??= make();
      return runtime.handle(event);
    },
  };
}

beforeEach(() => {
  account.resetState();
  // The configured alarm exists and has data: one in INSUFFICIENT_DATA (or missing) holds the gate.
  account.alarms.set('api-errors', 'OK');
  world = makeWorld();
});
afterEach(() => {
  world.output.restore();
});

/** Runs the migration from deploy to its first bake step (weight 10). */
async function startToFirstStep(): Promise<MigrationPointer> {
  const pointer = await world.deploy('1', '2');
  await world.probesOk();
  const result = await world.tick({ trigger: 'deploy', migrationId: pointer.migrationId });
  expect(result).toMatchObject({ migrationId: pointer.migrationId, status: MigrationStatus.BAKING, weight: 10, step: 0, action: 'advance', code: 'gate-passed' });
  return pointer;
}

/** An alarm state change as CloudWatch sends it to EventBridge (fields the controller reads). */
function alarmEvent(alarmName: string, value: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA', atMs: number) {
  const stamp = new Date(atMs).toISOString().replace('Z', '+0000');
  return {
    version: '0',
    id: `alarm-${alarmName}-${atMs}`,
    'detail-type': 'CloudWatch Alarm State Change',
    source: 'aws.cloudwatch',
    account: '123456789012',
    time: new Date(Math.floor(atMs / 1000) * 1000).toISOString().replace('.000', ''),
    region: 'us-east-1',
    resources: [`arn:aws:cloudwatch:us-east-1:123456789012:alarm:${alarmName}`],
    detail: { alarmName, state: { value, reason: `test: ${value}`, timestamp: stamp }, previousState: { value: 'OK', timestamp: stamp } },
  };
}

/** The alarm item in the migration's partition, read straight from the table. */
async function recordedAlarm(migrationId: string, alarmName: string) {
  const result = await dynamo.clients.documents.send(
    new GetCommand({ TableName: TABLE, Key: { pk: migrationPk(migrationId), sk: alarmSk(alarmName) }, ConsistentRead: true }),
  );
  return result.Item;
}

/**
 * CloudWatch minutes are read once they are 2 minutes old (the ingestion delay), so the first two
 * ticks of every step find no whole ingested minute yet and the third reads the step's first one.
 */
const LAG_TICKS = 2;
/**
 * A step's bake counts the time its health data covers, so a 2-minute step advances once its
 * second minute is ingested: 3 ticks after it began, in the 4th.
 */
const BAKE_TICKS = 3;

async function minute(event: unknown = SCHEDULED) {
  world.clock.now += MIN;
  await world.probesOk();
  return world.tick(event);
}

describe('controller runtime: a healthy migration', () => {
  it('should do nothing when the alias has no migration', async () => {
    expect(await world.tick()).toEqual({ migrationId: null, events: 0 });
    expect(account.count('GetAlias')).toBe(0);
  });

  it('should start a deployed migration, pin the old version, and run the canary to completion', async () => {
    await startToFirstStep();
    // The gate pinned provisioned concurrency on the OLD version itself.
    expect(account.pc.get('1')).toEqual({ requested: 5, allocated: 5, status: 'READY' });
    expect(account.alias).toMatchObject({ main: '1', weights: { '2': 0.1 } });

    const statuses: string[] = [];
    for (let i = 0; i < 13; i++) statuses.push(String((await minute()).status));
    // Each 2-minute phase moves on once its data covers it: in its 4th tick.
    expect(statuses).toEqual([
      ...['baking', 'baking', 'baking'],
      ...['promoted', 'promoted', 'promoted', 'promoted'],
      ...['soaking', 'soaking', 'soaking', 'soaking'],
      ...['complete', 'complete'],
    ]);

    // Promotion: the new version is the main one with no extra weights.
    expect(account.alias).toMatchObject({ main: '2', weights: {} });
    // The old version stays pinned until an explicit teardown.
    expect(account.pc.get('1')?.requested).toBe(5);
    expect(account.count('DeleteProvisionedConcurrencyConfig')).toBe(0);
    expect(account.detailTypes()).toEqual(
      expect.arrayContaining(['Migration Started', 'Migration Advanced', 'Migration Held', 'Migration Promoted', 'Migration Completed']),
    );
    expect(account.notifications.map((n) => n.Subject)).toEqual([`Cutover: ${world.config.aliasKey} promoted to 100%`]);

    const teardown = await world.tick({ command: 'teardown', reason: 'v2 accepted' });
    expect(teardown).toMatchObject({ status: 'torn-down', action: 'teardown' });
    expect(account.pc.has('1')).toBe(false);
    expect(account.detailTypes()).toContain('Migration Torn Down');

    // Nothing was lost: the log holds every event in order.
    const log = await world.store.events(teardown.migrationId!);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
    expect(log.map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'gating', 'capacity-pinned', 'advanced', 'promoted', 'soaking', 'completed', 'torn-down']));
  });

  it('should log every decision in the contract shape and publish the EMF metrics', async () => {
    await startToFirstStep();
    await minute();
    const records = world.output.records();
    const decisions = records.filter((r) => r.message === 'decision');
    expect(decisions.length).toBeGreaterThanOrEqual(2);
    expect(decisions[0]).toMatchObject({ migrationId: `${world.config.aliasKey}:2`, action: 'advance', code: 'gate-passed', status: 'baking', weight: 10, step: 0 });
    expect(decisions[1]).toMatchObject({ action: 'hold', code: 'baking', status: 'baking', weight: 10 });
    for (const d of decisions) expect(Object.keys(d)).toEqual(expect.arrayContaining(['migrationId', 'action', 'code', 'reason', 'status', 'weight', 'step']));

    const emf = emfLines(records, 'Cutover');
    const units = (line: Record<string, unknown>) =>
      Object.fromEntries(
        (line._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }).CloudWatchMetrics[0]!.Metrics.map((m) => [m.Name, m.Unit]),
      );
    for (const line of emf) expect((line._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0]!.Dimensions).toEqual([['Migration']]);
    // The gate's run changed the step and pinned the old side: everything, with the advance.
    const first = emf.find((line) => line.Advances !== undefined)!;
    expect(units(first)).toEqual({ Weight: 'Percent', StatusCode: 'Count', Step: 'Count', PinnedCapacity: 'Count', OldCapacity: 'Count', Advances: 'Count' });
    expect(first).toMatchObject({ Migration: world.config.aliasKey, Weight: 10, Step: 0, StatusCode: 3, PinnedCapacity: 5, OldCapacity: 5, Advances: 1 });
    // A routine hold: what changes on every tick, and the hold; no zero counters, no constant step or pin.
    const last = emf[emf.length - 1]!;
    expect(units(last)).toEqual({ Weight: 'Percent', StatusCode: 'Count', OldCapacity: 'Count', Holds: 'Count' });
    expect(last).toMatchObject({ Migration: world.config.aliasKey, Weight: 10, StatusCode: 3, OldCapacity: 5, Holds: 1 });
  });

  it('should read the pointer once while its migration runs (the steady tick reads only what it must)', async () => {
    world.output.restore();
    world = makeWorld({ CUTOVER_PLAN: JSON.stringify({ ...PLAN, steps: [{ weight: 10, bakeMs: 10 * MIN }, { weight: 100, bakeMs: 2 * MIN }] }) });
    await startToFirstStep();
    for (let i = 0; i < LAG_TICKS; i++) await minute();
    const before = new Map(dynamo.calls);
    account.calls.clear();
    expect(await minute()).toMatchObject({ action: 'hold', code: 'baking' });
    const delta = (op: string) => (dynamo.calls.get(op) ?? 0) - (before.get(op) ?? 0);
    // ONE DynamoDB read: a Query that returns the record and the probe results since the last
    // tick together (the pointer is cached) …
    expect(delta('Query')).toBe(1);
    expect(delta('GetItem')).toBe(0);
    expect(delta('BatchGetItem')).toBe(0);
    // … and one GetMetricData for every signal of both versions.
    expect(account.count('GetMetricData')).toBe(1);
  });

  it('should read the probe results the load did not cover with a query of their own, and still judge them', async () => {
    const pointer = await startToFirstStep();
    await minute();
    // A cold container: a store that has loaded nothing yet, limited to one result per load, so
    // the load's read cannot reach back to where the record's probes were last seen.
    const cold = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, onWarning: () => {}, probeResultsPerLoad: 1, alarmStatesPerLoad: 1 });
    const runtime = new ControllerRuntime({
      config: world.config,
      clients: dynamo.clients,
      store: cold,
      logger: new Logger({ serviceName: 'cutover-controller' }),
      metrics: createMetrics('cutover-controller', 'Cutover'),
      now: () => world.clock.now,
    });
    world.clock.now += 30_000;
    await world.store.putProbeResult(pointer.migrationId, { side: 'new', verdict: 'desync', atMs: world.clock.now - 2_000, summary: '2 responses shifted by one', findings: 2 });
    await world.store.putProbeResult(pointer.migrationId, { side: 'old', verdict: 'ok', atMs: world.clock.now - 1_000, summary: 'responses aligned', findings: 0 });
    const before = new Map(dynamo.calls);
    // The desync is older than the one result the load read: only the fallback query finds it.
    expect(await runtime.handle(SCHEDULED)).toMatchObject({ status: 'rolled-back', code: 'probe-desync' });
    expect((dynamo.calls.get('Query') ?? 0) - (before.get('Query') ?? 0)).toBe(2);
  });

  it('should never judge a migration on probe results of an earlier one', async () => {
    const first = await startToFirstStep();
    expect(await world.tick({ command: 'abort', reason: 'try again' })).toMatchObject({ status: 'rolled-back' });
    // A desync recorded for the first migration, after it ended …
    world.clock.now += MIN;
    await world.store.putProbeResult(first.migrationId, { side: 'new', verdict: 'desync', atMs: world.clock.now - 500, summary: 'shifted', findings: 1 });
    // … does not reach the next one, which starts and bakes on its own results.
    account.alias = { main: '1', weights: {}, revision: 1 };
    const second = await world.deploy('1', '3');
    await world.probesOk();
    expect(await world.tick({ trigger: 'deploy', migrationId: second.migrationId })).toMatchObject({ migrationId: second.migrationId, status: 'baking', weight: 10 });
    expect(await minute()).toMatchObject({ status: 'baking', action: 'hold' });
  });
});

describe('controller runtime: rollbacks', () => {
  it('should roll back to the old version when the new one serves more 5XX, and say so on the topic', async () => {
    await startToFirstStep();
    account.metrics = { old: healthySide(900), new: { ...healthySide(100), errors5xx: 30 } };
    let result = await minute();
    for (let i = 0; i < 3 && result.status !== 'rolled-back'; i++) result = await minute();
    expect(result).toMatchObject({ status: 'rolled-back', weight: 0, action: 'rollback' });
    expect(account.alias).toMatchObject({ main: '1', weights: {} });
    expect(account.notifications.at(-1)?.Subject).toMatch(/rolled back at 0%/);
    expect(account.detailTypes()).toContain('Migration Rolled Back');
    // Rollback never shrinks the old side.
    expect(account.pc.get('1')?.requested).toBe(5);
    const emf = emfLines(world.output.records(), 'Cutover');
    expect(emf.at(-1)).toMatchObject({ Rollbacks: 1, Weight: 0, StatusCode: 8 });
  });

  it('should roll back at once on an alarm state change to ALARM, from the event alone', async () => {
    const pointer = await startToFirstStep();
    world.clock.now += 5_000;
    account.alarms.set('api-errors', 'ALARM');
    account.alarmChangedAtMs.set('api-errors', world.clock.now - 1_000);
    const describes = account.count('DescribeAlarms');
    const result = await world.tick(alarmEvent('api-errors', 'ALARM', world.clock.now - 1_000));
    expect(result).toMatchObject({ status: 'rolled-back', code: 'alarm' });
    expect(account.alias?.weights).toEqual({});
    // Mid-bake: the delivered state was enough, CloudWatch was not asked.
    expect(account.count('DescribeAlarms')).toBe(describes);
    // … and it is recorded for later ticks.
    expect(await recordedAlarm(pointer.migrationId, 'api-errors')).toMatchObject({ state: 'ALARM', source: 'event', changedAtMs: world.clock.now - 1_000 });
  });

  it('should ask CloudWatch when an alarm event says too little to be recorded', async () => {
    await startToFirstStep();
    world.clock.now += 5_000;
    account.alarms.set('api-errors', 'ALARM');
    const describes = account.count('DescribeAlarms');
    const result = await world.tick({ source: 'aws.cloudwatch', 'detail-type': 'CloudWatch Alarm State Change', detail: { alarmName: 'api-errors' } });
    expect(result).toMatchObject({ status: 'rolled-back', code: 'alarm' });
    expect(account.count('DescribeAlarms')).toBe(describes + 1);
  });

  it('should roll back at once on a desync probe result', async () => {
    await startToFirstStep();
    world.clock.now += 10_000;
    await world.store.putProbeResult(`${world.config.aliasKey}:2`, { side: 'new', verdict: 'desync', atMs: world.clock.now - 500, summary: '2 responses shifted by one', findings: 2 });
    const result = await world.tick({ source: 'cutover.probe', 'detail-type': 'Cutover Probe Result', detail: { side: 'new', verdict: 'desync' } });
    expect(result).toMatchObject({ status: 'rolled-back', code: 'probe-desync' });
  });
});

describe('controller runtime: alarm states pushed by EventBridge, confirmed with DescribeAlarms', () => {
  it('should answer mid-bake ticks from recorded states and confirm at the gate, before every step and every alarmRecheckMs', async () => {
    world.output.restore();
    world = makeWorld({
      CUTOVER_PLAN: JSON.stringify({ ...PLAN, steps: [{ weight: 10, bakeMs: 30 * MIN }, { weight: 100, bakeMs: 2 * MIN }] }),
      CUTOVER_JUDGE: JSON.stringify({ alarmRecheckMs: 10 * MIN }),
    });
    account.alarms.set('api-errors', 'OK');
    const pointer = await startToFirstStep();
    // The gate confirmed, and recorded what it found.
    expect(account.count('DescribeAlarms')).toBe(1);
    expect(await recordedAlarm(pointer.migrationId, 'api-errors')).toMatchObject({ state: 'OK', source: 'describe' });
    const describedAt: number[] = [];
    for (let i = 0; i < 34; i++) {
      const before = account.count('DescribeAlarms');
      const result = await minute();
      if (account.count('DescribeAlarms') > before) describedAt.push(i + 1);
      if (result.weight === 100) break;
    }
    // Every 10 minutes, and in the tick that ended the 30-minute bake (once its data covered the
    // 30 minutes, 2 minutes of ingestion later) and promoted.
    expect(describedAt).toEqual([10, 20, 30, 32]);
    expect(account.alias).toMatchObject({ main: '2', weights: {} });
  });

  it('should keep the newer state when events arrive late or twice', async () => {
    const pointer = await startToFirstStep();
    const t = world.clock.now;
    await world.tick(alarmEvent('api-errors', 'OK', t + 2_000));
    world.clock.now += 1_000;
    // An older ALARM delivered after the OK that followed it: recorded state stays OK, no rollback.
    expect(await world.tick(alarmEvent('api-errors', 'ALARM', t + 1_000))).toMatchObject({ status: 'baking', weight: 10 });
    expect(await recordedAlarm(pointer.migrationId, 'api-errors')).toMatchObject({ state: 'OK', changedAtMs: t + 2_000 });
  });

  it('should catch an ALARM whose event was lost in the confirmation before the next step, and say so', async () => {
    await startToFirstStep();
    // The alarm fires but no event reaches the controller: mid-bake ticks do not see it …
    account.alarms.set('api-errors', 'ALARM');
    account.alarmChangedAtMs.set('api-errors', world.clock.now + 10_000);
    for (let i = 0; i < BAKE_TICKS; i++) expect(await minute()).toMatchObject({ status: 'baking', weight: 10, code: 'baking' });
    // … the tick that ends the 2-minute bake confirms before raising the weight, and rolls back instead.
    expect(await minute()).toMatchObject({ status: 'rolled-back', code: 'alarm', weight: 0 });
    expect(account.alias?.weights).toEqual({});
    expect(world.output.records().some((r) => r.message === 'alarm state change found by DescribeAlarms that no event had delivered')).toBe(true);
  });

  it('should act on a delivered ALARM it could not record, and fail the invocation so that Lambda retries the event', async () => {
    const pointer = await startToFirstStep();
    world.clock.now += 5_000;
    const event = alarmEvent('api-errors', 'ALARM', world.clock.now - 500);
    const store = world.store as DynamoDbStateStore & { recordAlarmState: DynamoDbStateStore['recordAlarmState'] };
    const original = store.recordAlarmState.bind(store);
    store.recordAlarmState = async () => {
      throw Object.assign(new Error('Throughput exceeds the current capacity'), { name: 'ProvisionedThroughputExceededException' });
    };
    await expect(world.tick(event)).rejects.toThrow(/Throughput exceeds/);
    // The rollback happened all the same.
    expect(account.alias?.weights).toEqual({});
    expect((await world.store.load(pointer.migrationId))?.record.status).toBe('rolled-back');
    // Lambda's retry records it (the tick it repeats moves no traffic; it only starts the watch of
    // the new side's residual traffic, whose first event asks the routing to drain).
    store.recordAlarmState = original;
    expect(await world.tick(event)).toMatchObject({ status: 'rolled-back', weight: 0, events: 1 });
    expect((await world.store.events(pointer.migrationId)).at(-1)?.type).toBe('drain-requested');
    expect(await recordedAlarm(pointer.migrationId, 'api-errors')).toMatchObject({ state: 'ALARM' });
  });
});

describe('controller runtime: failing safe when AWS calls fail (after the SDK retries)', () => {
  it('should never advance while metrics are missing, and roll back at the limit', async () => {
    await startToFirstStep();
    account.metrics = 'empty';
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await minute());
    expect(results.map((r) => r.action)).not.toContain('advance');
    expect(results.map((r) => r.code)).toContain('signals-missing');
    expect(results.at(-1)).toMatchObject({ status: 'rolled-back', weight: 0 });
    expect(account.alias).toMatchObject({ main: '1', weights: {} });
  });

  for (const [label, error] of [
    ['throttled', () => throttled()],
    ['a 5XX', serverError],
    ['timed out', timedOut],
  ] as const) {
    it(`should hold when GetMetricData is ${label} at the end of a bake`, async () => {
      await startToFirstStep();
      for (let i = 0; i < LAG_TICKS; i++) await minute();
      account.failures.set('GetMetricData', error);
      const result = await minute();
      expect(result).toMatchObject({ status: 'baking', weight: 10, action: 'hold', code: 'signals-missing' });
      expect(account.alias?.weights).toEqual({ '2': 0.1 });
    });
  }

  const reads: readonly CommandName[] = ['DescribeAlarms', 'GetProvisionedConcurrencyConfig'];
  for (const command of reads) {
    it(`should hold (missing signals, never healthy) when ${command} fails at the end of a bake`, async () => {
      await startToFirstStep();
      for (let i = 0; i < BAKE_TICKS; i++) await minute();
      const updates = account.count('UpdateAlias');
      account.failures.set(command, () => throttled('TooManyRequestsException'));
      const held = await minute();
      expect(held).toMatchObject({ status: 'baking', weight: 10, action: 'hold', code: 'signals-missing' });
      expect(account.count('UpdateAlias')).toBe(updates);
      expect(account.alias?.weights).toEqual({ '2': 0.1 });
      // The next tick, with the call working again, carries on.
      account.failures.delete(command);
      expect((await minute()).weight).toBe(100);
    });
  }

  it('should record a failed shift, keep the weight, and tell people, when UpdateAlias fails', async () => {
    const pointer = await startToFirstStep();
    for (let i = 0; i < BAKE_TICKS; i++) await minute();
    account.failures.set('UpdateAlias', serverError);
    await expect(minute()).rejects.toThrow(/setting the new side's weight to 100% \([a-z-]+\) failed: .*the change stays recorded and the next tick settles it/);
    // The change was recorded before it was tried, and stays recorded: the weight is still 10 %.
    const { record } = (await world.store.load(pointer.migrationId))!;
    expect(record).toMatchObject({ status: 'shifting', weight: 10, shift: { kind: 'advance', weight: 100, fromWeight: 10 } });
    expect(account.alias).toMatchObject({ main: '1', weights: { '2': 0.1 } });
    const log = await world.store.events(pointer.migrationId);
    expect(log.slice(-2).map((e) => e.type)).toEqual(['shifting', 'shift-failed']);
    expect(account.notifications.at(-1)?.Subject).toMatch(/FAILED to shift traffic/);
    account.failures.delete('UpdateAlias');
    // The next tick settles it: the alias had not moved, so the change is made now.
    expect(await minute()).toMatchObject({ status: 'promoted', weight: 100 });
  });

  it('should fail the tick without touching the alias when DynamoDB is throttled', async (context) => {
    await startToFirstStep();
    const fake: FakeAws = await startFakeAws('json', [{ kind: 'throttle' }]);
    const clients = createAwsClients({ endpoint: fake.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 2 });
    context.onTestFinished(async () => {
      for (const c of Object.values(clients)) c.destroy();
      await fake.close();
    });
    const updates = account.count('UpdateAlias');
    world.clock.now += 3 * MIN;
    await expect(world.runtime(clients).handle(SCHEDULED)).rejects.toThrow(/ThrottlingException|Rate exceeded/);
    expect(fake.requests.length).toBe(2);
    expect(account.count('UpdateAlias')).toBe(updates);
  });

  it('should keep the events and report them when EventBridge and SNS fail', async () => {
    const pointer = await world.deploy('1', '2');
    await world.probesOk();
    account.failures.set('PutEvents', () => throttled());
    account.failures.set('Publish', serverError);
    const result = await world.tick({ trigger: 'deploy', migrationId: pointer.migrationId });
    expect(result.status).toBe('baking');
    expect(result.publishError).toMatch(/ThrottlingException/);
    expect((await world.store.events(pointer.migrationId)).map((e) => e.type)).toEqual(['created', 'gating', 'capacity-pinned', 'shifting', 'advanced']);
    expect(world.output.records().some((r) => r.message === 'events saved in the log but not published')).toBe(true);
  });
});

describe('controller runtime: operators and overlapping runs', () => {
  it('should pause, resume, and abort on command', async () => {
    await startToFirstStep();
    expect(await world.tick({ command: 'pause', reason: 'looking at a graph' })).toMatchObject({ status: 'paused', action: 'pause' });
    // Paused: ticks change nothing.
    expect(await minute()).toMatchObject({ status: 'paused', weight: 10 });
    expect(await world.tick({ command: 'resume' })).toMatchObject({ status: 'baking' });
    expect(await world.tick({ command: 'abort', reason: 'customer report' })).toMatchObject({ status: 'rolled-back', weight: 0, action: 'rollback' });
    expect(account.alias).toMatchObject({ main: '1', weights: {} });
    const emf = emfLines(world.output.records(), 'Cutover');
    expect(emf.some((e) => e.Pauses === 1)).toBe(true);
  });

  it('should refuse a command that does not apply, naming the status', async () => {
    await startToFirstStep();
    await expect(world.tick({ command: 'teardown' })).rejects.toBeInstanceOf(InvalidCommandError);
    await expect(world.tick({ command: 'teardown' })).rejects.toThrow(/cannot teardown a migration that is baking/);
  });

  it('should let only one of two overlapping runs act', async () => {
    const pointer = await startToFirstStep();
    for (let i = 0; i < BAKE_TICKS; i++) await minute();
    world.clock.now += MIN;
    await world.probesOk();
    const updates = account.count('UpdateAlias');
    const [a, b] = await Promise.all([world.runtime().handle(SCHEDULED), world.runtime().handle(SCHEDULED)]);
    // Exactly one advanced to 100 %; the other found the migration or the alias changed under it.
    expect([a, b].filter((r) => r.conflict)).toHaveLength(1);
    expect(account.count('UpdateAlias') - updates).toBeLessThanOrEqual(2);
    expect(account.alias).toMatchObject({ main: '2', weights: {} });
    const log = await world.store.events(pointer.migrationId);
    expect(log.filter((e) => e.type === 'promoted')).toHaveLength(1);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
  });
});

describe('controller runtime: damaged state', () => {
  it('should route everything to the old version, tell people, and stop when the record item is damaged', async () => {
    const pointer = await startToFirstStep();
    const key = { pk: migrationPk(pointer.migrationId), sk: 'STATE' };
    const item = (await dynamo.clients.documents.send(new GetCommand({ TableName: TABLE, Key: key, ConsistentRead: true }))).Item!;
    await dynamo.clients.documents.send(new PutCommand({ TableName: TABLE, Item: { ...item, record: { ...item.record, status: 'bogus' } } }));

    const result = await minute();
    expect(result).toMatchObject({ status: 'rolled-back', weight: 0, action: 'rollback', code: 'state-damaged' });
    expect(account.alias).toMatchObject({ main: '1', weights: {} });
    expect(account.notifications.at(-1)?.Subject).toMatch(/STOPPED: stored state damaged/);
    expect(account.notifications.at(-1)?.Message).toMatch(/status: unknown status "bogus".*kept as table .* sk=DAMAGED#/s);
    // Stopped: the next ticks neither throw nor act.
    expect(await minute()).toMatchObject({ status: 'rolled-back', events: 0 });
    expect(await minute()).toMatchObject({ status: 'rolled-back', events: 0 });
  });
});

describe('parseControllerEvent', () => {
  it('should understand every way the controller is invoked', () => {
    expect(parseControllerEvent(SCHEDULED)).toEqual({ kind: 'tick', trigger: 'schedule' });
    // An older trigger's wake-up (no key) still parses; the dispatcher routes it by the id.
    expect(parseControllerEvent({ trigger: 'deploy', migrationId: 'm' })).toEqual({ kind: 'tick', trigger: 'deploy', detail: { migrationId: 'm' }, migrationId: 'm' });
    expect(parseControllerEvent({ trigger: 'deploy', migrationId: 'api:live:2', migrationKey: 'api:live' })).toEqual({
      kind: 'tick',
      trigger: 'deploy',
      detail: { migrationId: 'api:live:2' },
      migrationId: 'api:live:2',
      migrationKey: 'api:live',
    });
    expect(parseControllerEvent({ command: 'abort' })).toEqual({ kind: 'command', command: 'abort', reason: 'operator abort' });
    expect(parseControllerEvent({ command: 'abort', migration: ' api:live ' })).toEqual({ kind: 'command', command: 'abort', reason: 'operator abort', migration: 'api:live' });
    expect(parseControllerEvent({ source: 'cutover.probe', 'detail-type': 'Cutover Probe Result', detail: { side: 'new', verdict: 'desync', summary: 's', migrationKey: 'shop' } })).toMatchObject({
      trigger: 'probe',
      migrationKey: 'shop',
    });
    expect(parseControllerEvent({ source: 'cutover.probe', 'detail-type': 'Cutover Probe Result', detail: { side: 'new', verdict: 'desync', summary: 's' } })).toEqual({
      kind: 'tick',
      trigger: 'probe',
      detail: { side: 'new', verdict: 'desync', summary: 's' },
    });
  });

  it('fails on an unknown command or shape, listing what is accepted', () => {
    expect(() => parseControllerEvent({ command: 'rollback' })).toThrow(/unknown command "rollback"; known: pause, resume, abort, promote, teardown/);
    expect(() => parseControllerEvent({ comand: 'abort' })).toThrow(/unsupported event .*"comand".*expected an EventBridge event/);
    expect(() => parseControllerEvent({ command: 'abort', migration: 3 })).toThrow(/migration must be a migration key or id, got 3/);
  });
});

describe('controller runtime: alarms without data', () => {
  it('should hold the gate, without moving the alias, when a configured alarm does not exist (misnamed) or has no data', async () => {
    account.alarms.delete('api-errors');
    const pointer = await world.deploy('1', '2');
    await world.probesOk();
    const missing = await world.tick({ trigger: 'deploy', migrationId: pointer.migrationId });
    expect(missing).toMatchObject({ status: MigrationStatus.GATING, weight: 0, action: 'hold', code: 'alarm-no-data' });
    account.alarms.set('api-errors', 'INSUFFICIENT_DATA');
    world.clock.now += 60_000;
    expect(await world.tick()).toMatchObject({ status: MigrationStatus.GATING, weight: 0, code: 'alarm-no-data' });
    expect(account.alias?.weights).toEqual({});
    account.alarms.set('api-errors', 'OK');
    world.clock.now += 60_000;
    await world.probesOk();
    expect(await world.tick()).toMatchObject({ status: MigrationStatus.BAKING, weight: 10, code: 'gate-passed' });
  });
});
