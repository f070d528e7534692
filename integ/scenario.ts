/**
 * The integration test's plan, with every AWS access behind `ScenarioDeps` so that its logic (the
 * order, the bounded waits, the assertions, the destroy that always runs) is tested without AWS:
 *
 * 1. deploy the demo (release 1: the alias is created on version 1, nothing migrates);
 * 2. send traffic through the public API until it answers;
 * 3. deploy a bad release (release 2, a share of API requests answered with 503): a migration starts;
 * 4. wait, through ops/ (the operator access layer), until it is rolled back, and check the
 *    decision and its reason, the alias back on the old version alone, the drain report (when
 *    traffic had moved), and the notifications delivered on SNS and EventBridge;
 * 5. destroy the stack, whatever happened before (a failure, a timeout, Ctrl-C).
 */
import type { MigrationEvent } from '../lambda/core/model';
import type { ResidualReport } from '../lambda/core/residual';
import type { MigrationState, MigrationSummary } from '../ops/types';
import {
  assertAliasBack,
  assertResidual,
  assertRolledBack,
  describeNotes,
  describeState,
  missingNotifications,
  residualApplies,
  residualEvent,
  rolledBackYet,
  type AliasReading,
  type RecordedNote,
} from './assertions';
import type { CdkRunner } from './cdk';
import { IntegAssertionError, InterruptedError, formatDuration, pollUntil, type Clock, type Progress } from './poll';
import { RECORDER_TABLE_OUTPUT } from './recorder-names';
import { describeTraffic, type TrafficReport } from './traffic';

/** What the scenario reads migrations with: the read side of ops/'s `MigrationSource`. */
export interface MigrationReader {
  list(): Promise<MigrationSummary[]>;
  status(migration: string): Promise<MigrationState>;
  history(migration: string): Promise<readonly MigrationEvent[]>;
  close(): void;
}

/** A running traffic loop (integ/traffic.ts). */
export interface TrafficHandle {
  /** Answers with a 2XX status so far. */
  ok(): number;
  report(): TrafficReport;
  stop(): Promise<TrafficReport>;
}

export interface ScenarioDeps {
  readonly cdk: CdkRunner;
  /** ops/'s `AwsMigrationSource` over the deployed table, in the real run. */
  openSource(tableName: string): MigrationReader;
  /** `GetAlias`. */
  readAlias(functionName: string, aliasName: string): Promise<AliasReading>;
  /** What the recorder received (integ/notes.ts). */
  readNotes(recorderTable: string): Promise<RecordedNote[]>;
  startTraffic(url: string): TrafficHandle;
  readonly clock: Clock;
  readonly progress: Progress;
  /** Aborted on Ctrl-C: every wait stops, and the destroy runs. */
  readonly signal?: AbortSignal;
}

/** Bounds of each wait, in ms. */
export interface ScenarioTimeouts {
  /** Until the public API answers 2XX after the first deploy (API Gateway and Lambda warm up). */
  readonly apiAnswersMs: number;
  /** Until the deploy's migration shows in the table. */
  readonly migrationFoundMs: number;
  /** Until the bad release is rolled back (gate, first step, a judged window, CloudWatch's delay). */
  readonly rollbackMs: number;
  /** Until the drain is reported (a health window or two after the rollback). */
  readonly residualMs: number;
  /** Until every expected notification was recorded. */
  readonly notificationsMs: number;
}

export const DEFAULT_TIMEOUTS: ScenarioTimeouts = {
  apiAnswersMs: 3 * 60_000,
  migrationFoundMs: 3 * 60_000,
  rollbackMs: 25 * 60_000,
  residualMs: 15 * 60_000,
  notificationsMs: 5 * 60_000,
};

export interface ScenarioOptions {
  /**
   * Share of the bad release's API requests answered with 503.
   * @default 0.5
   */
  readonly faultRate?: number;
  /** @default DEFAULT_TIMEOUTS */
  readonly timeouts?: Partial<ScenarioTimeouts>;
  /**
   * Pause between two readings of a wait.
   * @default 15 000
   */
  readonly pollIntervalMs?: number;
  /**
   * 2XX answers the API must give before the bad release is deployed.
   * @default 20
   */
  readonly warmUpAnswers?: number;
}

/** What a run that passed found. */
export interface ScenarioResult {
  readonly migrationId: string;
  readonly rollback: MigrationEvent;
  /** The drain report; absent when the rollback came before any traffic moved. */
  readonly residual?: ResidualReport;
  readonly notifications: number;
}

/** How a run ended. */
export interface ScenarioOutcome {
  readonly passed: boolean;
  readonly result?: ScenarioResult;
  /** Why it did not pass (an `IntegAssertionError` for a failed check, `InterruptedError` for Ctrl-C). */
  readonly error?: unknown;
  /** The destroy failed: the stack (and its costs) may still be there. */
  readonly destroyError?: unknown;
  readonly traffic?: TrafficReport;
}

/** Outputs of the demo stack the scenario reads. */
const REQUIRED_OUTPUTS = ['ApiUrl', 'TableName', RECORDER_TABLE_OUTPUT] as const;

export async function runScenario(deps: ScenarioDeps, options: ScenarioOptions = {}): Promise<ScenarioOutcome> {
  const { progress, cdk } = deps;
  let traffic: TrafficHandle | undefined;
  let source: MigrationReader | undefined;
  let result: ScenarioResult | undefined;
  let error: unknown;
  try {
    result = await steps(deps, options, {
      onTraffic: (t) => (traffic = t),
      onSource: (s) => (source = s),
    });
  } catch (caught) {
    error = caught;
  }
  let report: TrafficReport | undefined;
  let destroyError: unknown;
  try {
    if (traffic) {
      report = await traffic.stop();
      progress.line(`traffic stopped: ${describeTraffic(report)}`);
    }
    source?.close();
  } finally {
    const started = deps.clock.now();
    progress.line(`destroying ${cdk.stackName} …`);
    try {
      await cdk.destroy();
      progress.line(`destroyed ${cdk.stackName} in ${formatDuration(deps.clock.now() - started)}`);
    } catch (caught) {
      destroyError = caught;
    }
  }
  return {
    passed: error === undefined && destroyError === undefined,
    ...(result ? { result } : {}),
    ...(error !== undefined ? { error } : {}),
    ...(destroyError !== undefined ? { destroyError } : {}),
    ...(report ? { traffic: report } : {}),
  };
}

async function steps(
  deps: ScenarioDeps,
  options: ScenarioOptions,
  keep: { onTraffic(t: TrafficHandle): void; onSource(s: MigrationReader): void },
): Promise<ScenarioResult> {
  const { progress, cdk, clock, signal } = deps;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const intervalMs = options.pollIntervalMs ?? 15_000;
  const faultRate = options.faultRate ?? 0.5;
  const warmUp = options.warmUpAnswers ?? 20;
  const checkpoint = () => {
    if (signal?.aborted) throw new InterruptedError();
  };
  const poll = { clock, intervalMs, ...(signal ? { signal } : {}) };

  // 1. The demo, release 1.
  let started = clock.now();
  progress.line(`deploying ${cdk.stackName} (release 1: creates the live alias on version 1) …`);
  const outputs = requireOutputs(await cdk.deploy({ 'cutover:release': '1' }));
  progress.line(`deployed in ${formatDuration(clock.now() - started)}: API ${outputs.ApiUrl}`);
  checkpoint();

  // 2. Traffic, until the API answers.
  const url = `${outputs.ApiUrl.replace(/\/?$/, '/')}channels`;
  const traffic = deps.startTraffic(url);
  keep.onTraffic(traffic);
  progress.line(`sending traffic to ${url}`);
  await pollUntil({
    ...poll,
    what: 'the demo API through its live alias',
    expected: `${warmUp} answers with a 2XX status`,
    read: async () => traffic.report(),
    done: () => traffic.ok() >= warmUp,
    show: (r) => describeTraffic(r),
    timeoutMs: timeouts.apiAnswersMs,
    intervalMs: Math.min(intervalMs, 5_000),
  });
  progress.line(`the API answers: ${describeTraffic(traffic.report())}`);

  // 3. The bad release.
  started = clock.now();
  progress.line(`deploying the bad release (release 2: ${Math.round(faultRate * 100)} % of API requests answered with 503) …`);
  await cdk.deploy({ 'cutover:release': '2', 'cutover:faultRate': String(faultRate) });
  progress.line(`deployed in ${formatDuration(clock.now() - started)}`);
  checkpoint();

  // 4. The migration, through ops/.
  const source = deps.openSource(outputs.TableName);
  keep.onSource(source);
  const rows = await pollUntil({
    ...poll,
    what: `the migration of the bad release in table ${outputs.TableName}`,
    expected: 'one migration',
    read: () => source.list(),
    done: (found) => found.length > 0,
    show: (found) => `${found.length} migrations`,
    timeoutMs: timeouts.migrationFoundMs,
  });
  if (rows.length !== 1) {
    throw new IntegAssertionError(`migrations in ${outputs.TableName}`, 'exactly one (the stack is the run’s own)', rows.map((r) => `${r.id} (${r.status})`).join(', '));
  }
  const id = rows[0]!.id;
  progress.line(`migration ${id} started; waiting for its rollback (at most ${formatDuration(timeouts.rollbackMs)}) …`);
  let lastSeen = '';
  started = clock.now();
  const state = await pollUntil({
    ...poll,
    what: `migration ${id} of the bad release`,
    expected: 'status rolled-back',
    read: () => source.status(id),
    done: rolledBackYet,
    show: describeState,
    timeoutMs: timeouts.rollbackMs,
    onRead: (s) => {
      const now = `${s.status} at ${s.weight ?? '?'}%${s.lastDecision ? ` (${s.lastDecision.code})` : ''}`;
      if (now !== lastSeen) progress.line(`migration ${id}: ${now}`);
      lastSeen = now;
    },
  });
  const history = await source.history(id);
  const rollback = assertRolledBack(state, history);
  progress.line(`rolled back ${formatDuration(clock.now() - started)} after the deploy, at step ${rollback.step + 1} (${rollback.code}): ${rollback.reason}`);

  const metadata = state.metadata ?? {};
  const { functionName, aliasName, oldVersion, newVersion } = metadata;
  if (!functionName || !aliasName || !oldVersion || !newVersion) {
    throw new IntegAssertionError(`migration ${id}'s record`, 'metadata with functionName, aliasName, oldVersion and newVersion', JSON.stringify(metadata));
  }
  assertAliasBack(await deps.readAlias(functionName, aliasName), { oldVersion, newVersion }, `${functionName}:${aliasName}`);
  progress.line(`alias ${aliasName}: version ${oldVersion} alone, no weight on version ${newVersion}`);
  checkpoint();

  let residual: ResidualReport | undefined;
  const withResidual = residualApplies(history, rollback);
  if (withResidual) {
    progress.line(`waiting for the drain report (at most ${formatDuration(timeouts.residualMs)}) …`);
    const drained = await pollUntil({
      ...poll,
      what: `migration ${id}'s drain after the rollback`,
      expected: "a 'rollback-residual' event",
      read: () => source.history(id),
      done: (events) => residualEvent(events) !== undefined,
      show: (events) => `events ${events.map((e) => e.type).join(', ')}`,
      timeoutMs: timeouts.residualMs,
    });
    residual = assertResidual(drained, id);
    progress.line(
      `new side drained ${formatDuration(residual.drainedAfterMs ?? 0)} after the rollback: ${residual.requestsAfterRollback} requests reached it meanwhile`,
    );
  } else {
    progress.line('rolled back before any traffic moved: no drain to watch');
  }

  const notes = await pollUntil({
    ...poll,
    what: `notifications of migration ${id} (SNS topic and event bus, through the recorder)`,
    expected: 'every one of them',
    read: () => deps.readNotes(outputs[RECORDER_TABLE_OUTPUT]),
    done: (found) => missingNotifications(found, id, withResidual).length === 0,
    show: (found) => `missing ${missingNotifications(found, id, withResidual).join('; ')}; received ${describeNotes(found)}`,
    timeoutMs: timeouts.notificationsMs,
  });
  progress.line(`notifications received: ${describeNotes(notes)}`);
  return { migrationId: id, rollback, ...(residual ? { residual } : {}), notifications: notes.length };
}

function requireOutputs(outputs: Readonly<Record<string, string>>): Record<(typeof REQUIRED_OUTPUTS)[number], string> {
  const missing = REQUIRED_OUTPUTS.filter((key) => !outputs[key]);
  if (missing.length > 0) {
    throw new IntegAssertionError('the deployed stack', `outputs ${REQUIRED_OUTPUTS.join(', ')}`, `outputs ${Object.keys(outputs).join(', ') || '(none)'}; missing ${missing.join(', ')}`);
  }
  return outputs as Record<(typeof REQUIRED_OUTPUTS)[number], string>;
}
