/**
 * A world for the shared controller's dispatcher: the real registry over dynalite, the real rule
 * switch over EventBridge behind aws-sdk-client-mock (FakeAccount), and fake migration runners whose
 * outcome each test sets (live or finished, failing, refusing). The runner's own work is tested in
 * controller-runtime.test.ts; here what matters is which migrations an invocation serves and what
 * happens to the live marks and the schedules afterwards.
 *
 * `deploy` is the deploy trigger's side of the contract (shared-design: pointer, THEN mark live,
 * THEN enable, THEN wake), written out step by step so that a test can interleave it with a tick.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ControllerFamily } from '../../lambda/aws/config';
import { ControllerDispatcher, type MigrationServer } from '../../lambda/aws/controller-dispatch';
import type { ControllerRequest } from '../../lambda/aws/controller-requests';
import { MigrationNotCurrentError, type MigrationRun, type ServeOptions } from '../../lambda/aws/controller-runner';
import { MigrationRegistry, REGISTRY_PK, type RegisteredMigration } from '../../lambda/aws/registry';
import { ScheduleSwitch } from '../../lambda/aws/schedules';
import { MigrationStatus } from '../../lambda/core/model';
import { makeRecord } from './fixtures';
import type { LocalDynamo } from './helpers';

export const CONTROLLER_RULE = 'Stack-Cutover-ControllerTick';
export const PROBE_RULE = 'Stack-Cutover-ProbeTick';
export const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };

/** A fake migration key: its current migration and what a run of it does. */
export interface FakeKey {
  /** The pointer: the current migration, and whether its record needs ticks. */
  current?: { id: string; live: boolean };
  /** Thrown by every run (an adapter failing) while set. */
  fail?: () => Error;
  /** Runs, in order, with what they were asked. */
  readonly runs: { request: ControllerRequest; options: ServeOptions | undefined }[];
}

export interface DispatchWorld {
  readonly registry: MigrationRegistry;
  readonly tableName: string;
  readonly keys: Map<string, FakeKey>;
  /** Runners built, by key (a settings change builds another). */
  readonly built: string[];
  readonly clock: { now: number };
  dispatcher(options?: { family?: ControllerFamily; maxPerTick?: number; registry?: MigrationRegistry; switch?: ScheduleSwitch; wrapRunner?: (s: MigrationServer) => MigrationServer }): ControllerDispatcher;
  /** Registers a migration (alias by default) with these settings over the defaults. */
  register(key: string, settings?: Record<string, string>): Promise<void>;
  key(key: string): FakeKey;
  /** Writes a registry item as is (to damage it). */
  putRaw(item: Record<string, unknown>): Promise<void>;
  list(): Promise<Awaited<ReturnType<MigrationRegistry['list']>>>;
}

export const ALIAS_SETTINGS = (fn: string): Record<string, string> => ({
  CUTOVER_FUNCTION_NAME: fn,
  CUTOVER_ALIAS_NAME: 'live',
  CUTOVER_PLAN: '{"steps":[{"weight":100,"bakeMs":60000}],"soakMs":0,"healthWindowMs":60000,"teardown":"manual"}',
  CUTOVER_PINNED_CAPACITY: '0',
  CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp',
});

export const FLEET_SETTINGS: Record<string, string> = {
  CUTOVER_TARGET: '{"kind":"dns","hostedZoneId":"Z1","recordName":"api.example.com","oldLoadBalancer":"app/old/1","newLoadBalancer":"app/new/2"}',
  CUTOVER_PLAN: '{"steps":[{"weight":100,"bakeMs":60000}],"soakMs":0,"healthWindowMs":60000,"teardown":"manual"}',
  CUTOVER_PINNED_CAPACITY: '0',
  CUTOVER_APP_METRICS_NAMESPACE: 'DemoApp',
};

let tables = 0;

export async function makeDispatchWorld(dynamo: LocalDynamo): Promise<DispatchWorld> {
  const tableName = `dispatch-${++tables}`;
  await dynamo.createTable(tableName);
  const registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName });
  const keys = new Map<string, FakeKey>();
  const built: string[] = [];
  const clock = { now: Date.UTC(2026, 5, 1, 12, 0, 0) };
  const key = (k: string): FakeKey => {
    let found = keys.get(k);
    if (!found) keys.set(k, (found = { runs: [] }));
    return found;
  };
  const fakeRunner = (migration: RegisteredMigration): MigrationServer => {
    built.push(migration.migrationKey);
    if (migration.settings.CUTOVER_PLAN === 'broken') {
      throw new Error('environment variable CUTOVER_PLAN is not valid JSON');
    }
    return {
      async serve(request, options): Promise<MigrationRun> {
        const state = key(migration.migrationKey);
        state.runs.push({ request, options });
        if (state.fail) throw state.fail();
        const current = state.current;
        if (options?.exact && options.migrationId !== current?.id) {
          throw new MigrationNotCurrentError(migration.migrationKey, options.migrationId!, current?.id);
        }
        if (!current) return { response: { migrationId: null, events: 0 }, migrationId: null, record: undefined, liveAtStart: false, conflict: false };
        const record = makeRecord(current.id, current.live ? {} : { status: MigrationStatus.TORN_DOWN });
        return {
          response: { migrationId: current.id, status: record.status, weight: record.weight, events: 1 },
          migrationId: current.id,
          record,
          liveAtStart: true,
          conflict: false,
        };
      },
    };
  };
  return {
    registry,
    tableName,
    keys,
    built,
    clock,
    dispatcher(options = {}) {
      return new ControllerDispatcher({
        registry: options.registry ?? registry,
        schedules: {
          switch: options.switch ?? new ScheduleSwitch(new EventBridgeClient({ region: 'us-east-1' }), { controller: CONTROLLER_RULE, probe: PROBE_RULE }),
          rules: { controller: CONTROLLER_RULE, probe: PROBE_RULE },
        },
        logger: new Logger({ serviceName: 'cutover-controller' }),
        family: options.family ?? 'any',
        makeRunner: (m) => (options.wrapRunner ? options.wrapRunner(fakeRunner(m)) : fakeRunner(m)),
        now: () => clock.now,
        ...(options.maxPerTick !== undefined ? { maxPerTick: options.maxPerTick } : {}),
      });
    },
    async register(k, settings = {}) {
      const base = settings.CUTOVER_TARGET ? {} : ALIAS_SETTINGS(k.split(':')[0]!);
      await registry.register(k, { ...base, ...settings }, clock.now);
      key(k);
    },
    key,
    async putRaw(item) {
      await dynamo.clients.documents.send(new PutCommand({ TableName: tableName, Item: { pk: REGISTRY_PK, ...item } }));
    },
    list: () => registry.list(),
  };
}

/**
 * The deploy trigger's steps for a new migration of `key` (as lambda/aws/deploy-trigger.ts does them
 * per the contract), each a function so that a test can run them one at a time.
 */
export function deploySteps(world: DispatchWorld, k: string, id: string, switcher: Pick<ScheduleSwitch, 'enableSome'>, probe = false) {
  return {
    pointer: async () => {
      world.key(k).current = { id, live: true };
    },
    markLive: () => world.registry.markLive(k, id, world.clock.now),
    enable: () => switcher.enableSome({ controller: true, probe }),
  };
}
