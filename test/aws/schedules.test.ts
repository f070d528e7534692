/**
 * The schedules are off while nothing migrates: the deploy trigger enables them when it records a
 * migration, the controller disables them when its migration needs no more ticks, and re-enables
 * them when a deploy recorded a new one meanwhile. The real runtime, the real deploy trigger, the
 * table in dynalite, EventBridge's EnableRule/DisableRule behind aws-sdk-client-mock; the race is
 * interleaved at the moment a rule is switched.
 *
 * Every scenario runs twice: through the shared controller (the dispatcher, with the migration in
 * the registry and its live mark: controller-schedules.ts) and through a runner that serves one
 * migration and switches the schedules itself (`ScheduleKeeper`). The trigger's schedule switch is
 * wrapped to mark the migration live between its pointer and its enable, the order of the contract.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readControllerConfig, readDeployTriggerConfig, ConfigError } from '../../lambda/aws/config';
import { ControllerDispatcher } from '../../lambda/aws/controller-dispatch';
import { ControllerRuntime } from '../../lambda/aws/controller-runtime';
import { onDeployEvent } from '../../lambda/aws/deploy-trigger';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { createMetrics } from '../../lambda/aws/metrics';
import { MigrationRegistry } from '../../lambda/aws/registry';
import { ScheduleSwitch, needsTicks } from '../../lambda/aws/schedules';
import { MigrationStatus } from '../../lambda/core/model';
import type { PlanSpec } from '../../lambda/core/plan';
import { FakeAccount, healthySide, throttled } from './fake-account';
import { captureOutput, startDynalite, type LocalDynamo } from './helpers';

const MIN = 60_000;
const PLAN: PlanSpec = { steps: [{ weight: 10, bakeMs: 2 * MIN }, { weight: 100, bakeMs: 2 * MIN }], soakMs: 2 * MIN, healthWindowMs: MIN, teardown: 'manual' };
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };
const CONTROLLER_RULE = 'Stack-Migration-ControllerTick';
const PROBE_RULE = 'Stack-Migration-ProbeTick';
const MODES = ['shared controller', 'one migration per function'] as const;
type Mode = (typeof MODES)[number];

const account = new FakeAccount('api');
let dynamo: LocalDynamo;
let n = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  account.restore();
  await dynamo.close();
});

interface World {
  readonly fn: string;
  readonly key: string;
  readonly store: DynamoDbStateStore;
  readonly clock: { now: number };
  readonly output: ReturnType<typeof captureOutput>;
  /** The real deploy trigger's Update to `version` (it records, enables, then wakes the controller). */
  deploy(version: string): Promise<string | undefined>;
  tick(event?: unknown): Promise<Awaited<ReturnType<ControllerRuntime['handle']>>>;
  /** The deploy trigger's live mark of `migrationId` (after its pointer, before its enable). */
  markLive(migrationId: string): Promise<void>;
  probesOk(migrationId: string): Promise<void>;
}

let world: World;

async function makeWorld(mode: Mode): Promise<World> {
  const fn = `sched${++n}`;
  // A table per world: the registry is one partition, and an earlier test's live migrations must not tick here.
  const TABLE = `cutover-schedules-${n}`;
  await dynamo.createTable(TABLE);
  const key = `${fn}:live`;
  const env = {
    CUTOVER_TABLE_NAME: TABLE,
    CUTOVER_PLAN: JSON.stringify(PLAN),
    CUTOVER_JUDGE: '{}',
    CUTOVER_PINNED_CAPACITY: '0',
    CUTOVER_CONTROLLER_SCHEDULE: CONTROLLER_RULE,
    CUTOVER_PROBE_SCHEDULE: PROBE_RULE,
  };
  // The migration's settings, as its custom resource carries them (probe targets: the probe rule is its).
  const settings = {
    CUTOVER_FUNCTION_NAME: fn,
    CUTOVER_ALIAS_NAME: 'live',
    CUTOVER_PLAN: env.CUTOVER_PLAN,
    CUTOVER_JUDGE: env.CUTOVER_JUDGE,
    CUTOVER_PINNED_CAPACITY: env.CUTOVER_PINNED_CAPACITY,
    CUTOVER_ALARM_NAMES: JSON.stringify(['api-errors']),
    CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp',
    CUTOVER_PROBE_TARGETS: JSON.stringify([{ side: 'new', url: 'https://new.example.com/' }]),
  };
  const config = readControllerConfig({ ...env, ...settings, CUTOVER_EVENT_BUS_NAME: 'cutover-bus', CUTOVER_PROBE_FUNCTION_NAME: 'cutover-probe' });
  const triggerConfig = readDeployTriggerConfig({ ...env, CUTOVER_CONTROLLER_FUNCTION_NAME: 'cutover-controller' });
  const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, onWarning: () => {} });
  const registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName: TABLE });
  const clock = { now: Date.UTC(2026, 5, 1, 12, 0, 0) };
  const output = captureOutput();
  const logger = new Logger({ serviceName: 'cutover-controller' });
  const metrics = createMetrics('cutover-controller', 'Cutover');
  // The probe function's fresh probes, answered aligned (the probe's own tests cover the rest).
  const runner = async (target: { side: 'old' | 'new'; url: string }) => ({ side: target.side, verdict: 'ok' as const, atMs: clock.now, summary: 'aligned', findings: 0, url: target.url });
  const runtime = (schedules: boolean) =>
    new ControllerRuntime({ config: schedules ? config : { ...config, schedules: undefined }, clients: dynamo.clients, store, logger, metrics, runner, now: () => clock.now });
  const container = (): ((event: unknown) => Promise<Awaited<ReturnType<ControllerRuntime['handle']>>>) => {
    if (mode === 'one migration per function') {
      const single = runtime(true);
      return (event) => single.handle(event);
    }
    const shared = new ControllerDispatcher({
      registry,
      schedules: { switch: new ScheduleSwitch(dynamo.clients.eventBridge, config.schedules!), rules: config.schedules! },
      logger,
      family: 'lambda-alias',
      makeRunner: () => runtime(false),
      now: () => clock.now,
    });
    return (event) => shared.handle(event);
  };
  const current = container();
  const switcher = new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), triggerConfig.schedules!);
  // The trigger's part of the contract: pointer (its own), THEN the live mark, THEN the enable.
  const schedules = {
    enable: async () => {
      const pointer = await store.getPointer(key);
      if (pointer) await registry.markLive(key, pointer.migrationId, clock.now);
      await switcher.enable();
    },
    disable: () => switcher.disable(),
  } as unknown as ScheduleSwitch;
  return {
    fn,
    key,
    store,
    clock,
    output,
    async deploy(version) {
      await registry.register(key, settings, clock.now);
      const event = {
        RequestType: 'Update',
        ServiceToken: 'arn:provider',
        ResponseURL: 'https://cfn-response.example.com/',
        StackId: 'arn:stack',
        RequestId: `req-${version}`,
        LogicalResourceId: 'DeployTrigger',
        ResourceType: 'Custom::CutoverDeployTrigger',
        PhysicalResourceId: key,
        ResourceProperties: { ServiceToken: 'arn:provider', FunctionName: fn, AliasName: 'live', TargetVersion: version, MigrationId: `${key}:${version}` },
        OldResourceProperties: {},
      } as unknown as CloudFormationCustomResourceEvent;
      const response = await onDeployEvent(event, {
        config: triggerConfig,
        registry,
        settings,
        lambda: dynamo.clients.lambda,
        commandLambda: dynamo.clients.lambda,
        store,
        schedules,
        now: () => clock.now,
        log: () => {},
      });
      return response.Data?.MigrationId || undefined;
    },
    tick(event = SCHEDULED) {
      return current(event);
    },
    markLive(migrationId) {
      return registry.markLive(key, migrationId, clock.now);
    },
    async probesOk(migrationId) {
      for (const side of ['new', 'old'] as const) {
        await store.putProbeResult(migrationId, { side, verdict: 'ok', atMs: clock.now - 1_000, summary: 'aligned', findings: 0 });
      }
    },
  };
}

const states = () => ({ controller: account.rules.get(CONTROLLER_RULE), probe: account.rules.get(PROBE_RULE) });

/** Deploys version 2 over 1 and starts it as the deploy trigger's wake-up would. */
async function deployAndStart(): Promise<string> {
  account.alias = { main: '1', weights: {}, revision: 1 };
  const id = await world.deploy('2');
  expect(id).toBe(`${world.key}:2`);
  await world.probesOk(id!);
  expect(await world.tick({ trigger: 'deploy', migrationId: id })).toMatchObject({ status: MigrationStatus.BAKING, weight: 10 });
  return id!;
}

/** Scheduled ticks, one a minute, until `done` (bounded). */
async function tickUntil(id: string, done: (status: string) => boolean, max = 30): Promise<string> {
  for (let i = 0; i < max; i++) {
    world.clock.now += MIN;
    await world.probesOk(id);
    const status = String((await world.tick()).status);
    if (done(status)) return status;
  }
  throw new Error(`not done after ${max} ticks`);
}

beforeEach(() => {
  account.resetState();
  // Both rules start as CloudFormation creates them; the migration's alarm exists and is OK.
  account.rules.set(CONTROLLER_RULE, 'DISABLED');
  account.rules.set(PROBE_RULE, 'DISABLED');
  account.alarms.set('api-errors', 'OK');
});
afterEach(() => world?.output.restore());

describe('which migrations need ticks', () => {
  const record = (status: MigrationStatus, extra: Record<string, unknown> = {}) => ({ status, ...extra }) as Parameters<typeof needsTicks>[0];
  it('should keep ticking everything before teardown, paused and complete included', () => {
    for (const status of ['pending', 'gating', 'shifting', 'baking', 'promoted', 'soaking', 'paused', 'complete'] as const) {
      expect(needsTicks(record(status)), status).toBe(true);
    }
    // A recorded migration with no record yet, or one that cannot be read, is live.
    expect(needsTicks(undefined)).toBe(true);
  });

  it('should stop after teardown and after the residual watch of a rollback, unless a release was interrupted', () => {
    expect(needsTicks(record('torn-down'))).toBe(false);
    expect(needsTicks(record('torn-down', { capacityReleasing: true }))).toBe(true);
    expect(needsTicks(record('rolled-back'))).toBe(false);
    expect(needsTicks(record('rolled-back', { residual: { sinceMs: 1 } }))).toBe(true);
    expect(needsTicks(record('rolled-back', { residual: { sinceMs: 1, endedAtMs: 2 } }))).toBe(false);
    expect(needsTicks(record('rolled-back', { residual: { sinceMs: 1, endedAtMs: 2 }, capacityReleasing: true }))).toBe(true);
  });

  it('should refuse a probe schedule without the controller one, and a bad rule name, naming the variable', () => {
    expect(() => readDeployTriggerConfig({ CUTOVER_TABLE_NAME: 't', CUTOVER_CONTROLLER_FUNCTION_NAME: 'c', CUTOVER_PLAN: JSON.stringify(PLAN), CUTOVER_PINNED_CAPACITY: '0', CUTOVER_PROBE_SCHEDULE: 'p' })).toThrow(
      /CUTOVER_CONTROLLER_SCHEDULE must be set when CUTOVER_PROBE_SCHEDULE is/,
    );
    expect(() =>
      readDeployTriggerConfig({ CUTOVER_TABLE_NAME: 't', CUTOVER_CONTROLLER_FUNCTION_NAME: 'c', CUTOVER_PLAN: JSON.stringify(PLAN), CUTOVER_PINNED_CAPACITY: '0', CUTOVER_CONTROLLER_SCHEDULE: 'a rule' }),
    ).toThrow(ConfigError);
  });
});

describe.each(MODES)('%s', (mode) => {
  beforeEach(async () => {
    world = await makeWorld(mode);
  });

  /**
   * A command that ends the migration, then (shared controller) the next on-time tick: a shared
   * controller never switches a rule off on a command (synchronous, nobody retries it; see
   * controller-schedules.ts), its next scheduled tick finds nothing live and does. Returns the
   * command's answer.
   */
  async function endBy(command: { command: string; reason: string }): Promise<Awaited<ReturnType<World['tick']>>> {
    const answer = await world.tick(command);
    if (mode === 'shared controller') {
      expect(account.count('DisableRule')).toBe(0);
      world.clock.now += MIN;
      await world.tick({ ...SCHEDULED, time: new Date(world.clock.now).toISOString() });
    }
    return answer;
  }

  describe('schedules on while a migration is live, off when none is', () => {
    it('should be enabled by the deploy trigger after it recorded the migration, and disabled (probe first) at teardown, not before', async () => {
      let pointerAtEnable: unknown = 'unset';
      account.beforeRuleSwitch = async (action, name) => {
        if (action === 'enable' && name === CONTROLLER_RULE && pointerAtEnable === 'unset') pointerAtEnable = await world.store.getPointer(world.key);
      };
      const id = await deployAndStart();
      // The pointer was written before the first enable (the order that closes the race).
      expect(pointerAtEnable).toMatchObject({ migrationId: id });
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });

      // Through promotion and soak to complete: a complete migration is still watched, so the schedules stay on.
      await tickUntil(id, (s) => s === 'complete');
      for (let i = 0; i < 3; i++) expect((await world.tick()).status).toBe('complete');
      expect(account.count('DisableRule')).toBe(0);

      // The operator's teardown (a direct invoke) ends it: probe's rule off first, then the controller's.
      account.ruleSwitches.length = 0;
      expect(await endBy({ command: 'teardown', reason: 'v2 accepted' })).toMatchObject({ status: 'torn-down' });
      expect(account.ruleSwitches).toEqual([`disable ${PROBE_RULE}`, `disable ${CONTROLLER_RULE}`]);
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
    });

    it("should keep ticking a rollback until the residual watch ended, then switch off; an operator's teardown still works with the schedules off", async () => {
      const id = await deployAndStart();
      expect(await world.tick({ command: 'abort', reason: 'customer report' })).toMatchObject({ status: 'rolled-back', weight: 0 });
      // The new side is watched until it drained: still live.
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
      account.metrics = { old: healthySide(900), new: healthySide(0) };
      let ticks = 0;
      while (account.count('DisableRule') === 0) {
        if (++ticks > 10) throw new Error('the residual watch never ended');
        world.clock.now += MIN;
        await world.tick();
      }
      const loaded = await world.store.load(id);
      expect(loaded?.record.residual?.endedAtMs).toBeDefined();
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });

      // Nothing migrates: an alarm's state change (the alarm rule stays enabled) switches nothing.
      account.ruleSwitches.length = 0;
      await world.tick({ source: 'aws.cloudwatch', 'detail-type': 'CloudWatch Alarm State Change', detail: { alarmName: 'x', state: { value: 'OK' } } });
      expect(account.ruleSwitches).toEqual([]);
      // A rolled-back migration keeps its pin until a teardown, which works without the schedule.
      expect(await world.tick({ command: 'teardown', reason: 'release the pin' })).toMatchObject({ status: 'rolled-back', action: 'teardown' });
      expect(account.ruleSwitches).toEqual([]);
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
    });

    it("should switch a schedule off that woke it with nothing recorded (a deploy that enabled and failed before recording)", async () => {
      account.rules.set(CONTROLLER_RULE, 'ENABLED');
      expect(await world.tick()).toEqual({ migrationId: null, events: 0 });
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
    });

    it("should enable the schedules on an operator's command to a live migration (a rule disabled by hand, or a re-enable that failed)", async () => {
      await deployAndStart();
      account.rules.set(CONTROLLER_RULE, 'DISABLED');
      account.rules.set(PROBE_RULE, 'DISABLED');
      expect(await world.tick({ command: 'pause', reason: 'look first' })).toMatchObject({ status: 'paused' });
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });

    it('should enable the schedules on an alarm event for a live migration (a stack update reset the rules to DISABLED)', async () => {
      await deployAndStart();
      account.rules.set(CONTROLLER_RULE, 'DISABLED');
      account.rules.set(PROBE_RULE, 'DISABLED');
      // The migration's own alarm (the shared controller sends an alarm's event only to the migrations watching it).
      await world.tick({ source: 'aws.cloudwatch', 'detail-type': 'CloudWatch Alarm State Change', detail: { alarmName: 'api-errors', state: { value: 'OK' } } });
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });

    it("should enable the schedules on the deploy's wake-up too, when the trigger's enable did not take", async () => {
      account.alias = { main: '1', weights: {}, revision: 1 };
      const id = await world.deploy('2');
      account.rules.set(CONTROLLER_RULE, 'DISABLED');
      account.rules.set(PROBE_RULE, 'DISABLED');
      await world.probesOk(id!);
      await world.tick({ trigger: 'deploy', migrationId: id });
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });
  });

  describe('the race between a deploy and the controller switching off', () => {
    /** A migration torn down: the next controller invocation finds nothing live. */
    async function finishedMigration(): Promise<void> {
      const id = await deployAndStart();
      await tickUntil(id, (s) => s === 'complete');
    }

    it('should re-enable when a deploy recorded a migration AND enabled before the disable (the re-read sees it)', async () => {
      await finishedMigration();
      let deployed: string | undefined;
      account.beforeRuleSwitch = async (action) => {
        // The controller checked (nothing live) and is about to disable: the whole deploy runs now.
        if (action === 'disable' && deployed === undefined) {
          deployed = 'running';
          deployed = await world.deploy('3');
        }
      };
      account.ruleSwitches.length = 0;
      expect(await endBy({ command: 'teardown', reason: 'v2 accepted' })).toMatchObject({ status: 'torn-down' });
      expect(deployed).toBe(`${world.key}:3`);
      expect(account.ruleSwitches).toEqual([
        // The deploy: pointer written, then enabled.
        `enable ${CONTROLLER_RULE}`,
        `enable ${PROBE_RULE}`,
        // The controller's disable, which would leave the new migration without ticks …
        `disable ${PROBE_RULE}`,
        `disable ${CONTROLLER_RULE}`,
        // … undone after its re-read of the pointer.
        `enable ${CONTROLLER_RULE}`,
        `enable ${PROBE_RULE}`,
      ]);
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });

    it('should re-enable after a deploy in between even when its own disable failed halfway (the probe rule switched off, its rule throttled)', async () => {
      await finishedMigration();
      let deployed: string | undefined;
      account.beforeRuleSwitch = async (action, name) => {
        if (action === 'disable' && deployed === undefined) {
          deployed = 'running';
          deployed = await world.deploy('3');
        }
        if (action === 'disable' && name === CONTROLLER_RULE) throw throttled();
      };
      expect(await endBy({ command: 'teardown', reason: 'v2 accepted' })).toMatchObject({ status: 'torn-down' });
      expect(deployed).toBe(`${world.key}:3`);
      // Without the re-read the new migration would run with its probe schedule off.
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });

    it("should end enabled when the deploy's pointer lands between the disable and the re-read (both enable after it)", async () => {
      await finishedMigration();
      let deployed = false;
      account.beforeRuleSwitch = async (action, name) => {
        if (action === 'disable' && name === CONTROLLER_RULE && !deployed) {
          deployed = true;
          // Only the deploy's record (pointer and live mark) is written before the controller's last disable; its enable comes later.
          await world.store.putPointer(world.key, { migrationId: `${world.key}:3`, oldVersion: '2', newVersion: '3', createdAtMs: world.clock.now }, `${world.key}:2`);
          await world.markLive(`${world.key}:3`);
        }
      };
      account.ruleSwitches.length = 0;
      await endBy({ command: 'teardown', reason: 'v2 accepted' });
      expect(account.ruleSwitches.slice(-2)).toEqual([`enable ${CONTROLLER_RULE}`, `enable ${PROBE_RULE}`]);
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });

    it("should fail a scheduled tick whose re-enable failed, so that Lambda's retry of it (the same event, a minute later) enables", async () => {
      // Nothing recorded, the schedule on (a deploy's enable that came before its record failed).
      account.rules.set(CONTROLLER_RULE, 'ENABLED');
      account.alias = { main: '1', weights: {}, revision: 1 };
      let deployed = false;
      let throttleEnables = false;
      account.beforeRuleSwitch = async (action) => {
        if (action === 'disable' && !deployed) {
          deployed = true;
          // A whole deploy between the controller's check and its disable; then EnableRule is throttled.
          await world.deploy('2');
          throttleEnables = true;
          return;
        }
        if (action === 'enable' && throttleEnables) throw throttled();
      };
      const fired = { ...SCHEDULED, time: new Date(world.clock.now).toISOString() };
      await expect(world.tick(fired)).rejects.toThrow(/could not enable the schedule rule/);
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });

      // An on-time tick of a live migration switches nothing (its schedule is on when it fires) …
      throttleEnables = false;
      account.ruleSwitches.length = 0;
      await world.tick({ ...SCHEDULED, time: new Date(world.clock.now).toISOString() });
      expect(account.ruleSwitches).toEqual([]);
      // … Lambda's retry of the failed one, a minute after it fired, does.
      world.clock.now += MIN;
      await world.tick(fired);
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
    });
  });

  describe('the cached pointer', () => {
    it('should send a command to the migration that is current now, not to the one this container cached', async () => {
      const id = await deployAndStart();
      await tickUntil(id, (s) => s === 'complete');
      // Another container tears the complete migration down for the next deploy, which records v3:
      // this container still has v2 cached.
      account.invokeReply = async (payload) => {
        const { command } = payload as { command?: string };
        if (command === 'teardown') {
          const loaded = await world.store.load(id);
          await world.store.save(id, { ...loaded!.record, status: MigrationStatus.TORN_DOWN }, loaded!.version, []);
        }
        return {};
      };
      const next = await world.deploy('3');
      expect(next).toBe(`${world.key}:3`);
      const answer = await world.tick({ command: 'abort', reason: 'v3 looks wrong' });
      expect(answer).toMatchObject({ migrationId: next });
      expect((await world.store.load(next!))?.record.status).toBe(MigrationStatus.ROLLED_BACK);
    });
  });

  describe('a rule switch that fails', () => {
    it('should leave both schedules on when the probe rule cannot be disabled, and switch off on the next scheduled tick', async () => {
      const id = await deployAndStart();
      await tickUntil(id, (s) => s === 'complete');
      let throttle = true;
      account.beforeRuleSwitch = (action, name) => {
        if (throttle && action === 'disable' && name === PROBE_RULE) throw throttled();
      };
      // The teardown itself succeeds: a failed disable only costs ticks.
      expect(await endBy({ command: 'teardown', reason: 'done' })).toMatchObject({ status: 'torn-down' });
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'ENABLED' });
      expect(world.output.records().some((r) => r.message === 'could not disable the schedules; the next scheduled tick tries again')).toBe(true);
      throttle = false;
      world.clock.now += MIN;
      await world.tick();
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
    });

    it("should keep the controller's schedule on when only its own disable failed (partial), and finish on its next tick", async () => {
      const id = await deployAndStart();
      await tickUntil(id, (s) => s === 'complete');
      let throttle = true;
      account.beforeRuleSwitch = (action, name) => {
        if (throttle && action === 'disable' && name === CONTROLLER_RULE) throw throttled();
      };
      await endBy({ command: 'teardown', reason: 'done' });
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'DISABLED' });
      throttle = false;
      world.clock.now += MIN;
      await world.tick();
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
    });

    it('should fail the deploy when the trigger cannot enable a schedule (partial: the probe rule), with the migration recorded for the rollback to abort', async () => {
      account.alias = { main: '1', weights: {}, revision: 1 };
      account.beforeRuleSwitch = (action, name) => {
        if (action === 'enable' && name === PROBE_RULE) throw throttled();
      };
      await expect(world.deploy('2')).rejects.toThrow(
        /migration sched\d+:live:2 was recorded but its schedules could not be enabled \(could not enable the schedule rule\(s\) Stack-Migration-ProbeTick \(ThrottlingException: Rate exceeded\); Stack-Migration-ControllerTick did enable\)/,
      );
      expect(states()).toEqual({ controller: 'ENABLED', probe: 'DISABLED' });
      expect(await world.store.getPointer(world.key)).toMatchObject({ migrationId: `${world.key}:2` });
      // Not woken: CloudFormation's rollback (an Update back to version 1) aborts it instead.
      expect(account.invocations).toHaveLength(0);
      account.beforeRuleSwitch = () => {};
      account.invokeReply = async (payload) => ({ Payload: await world.tick(payload) });
      await world.deploy('1');
      expect((await world.store.load(`${world.key}:2`))?.record.status).toBe('rolled-back');
      // Rolled back before any traffic moved: nothing to watch, so the controller switched off (a
      // shared one on its next scheduled tick: the trigger's abort is a command).
      if (mode === 'shared controller') {
        expect(account.count('DisableRule')).toBe(0);
        world.clock.now += MIN;
        await world.tick({ ...SCHEDULED, time: new Date(world.clock.now).toISOString() });
      }
      expect(states()).toEqual({ controller: 'DISABLED', probe: 'DISABLED' });
    });
  });
});
