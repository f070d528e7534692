/**
 * One probe function for every migration of a stack: it picks the migrations and hands each one to
 * the per-migration runtime (probe-runtime.ts), with the configuration a per-migration probe
 * function once read from its own environment: `readProbeConfig` (same checks, same messages) of
 * this function's environment plus the migration's registry settings (`migrationEnvironment`).
 *
 * - A scheduled run probes every LIVE migration that has probe targets (a migration that is not
 *   live is not moving, and nobody reads its results). Migrations run in parallel, at most
 *   `PROBE_CONCURRENCY` at once, so that one slow target (a probe may take up to its 40 s bound)
 *   does not hold the others back by a whole run each. Each is isolated: one whose settings are bad,
 *   whose probes cannot be recorded, or a damaged registry item, never stops the others; the
 *   invocation fails at the end naming them all (Lambda's Errors metric sees it), as a single
 *   migration's `ProbeRecordError` always did. No new migration starts when the invocation could
 *   not finish it; those left are named in a warning, and the starting point turns every minute so
 *   that the same ones are not always last.
 * - A fresh probe (`probeNow`) names its migration (`migrationKey`): only that migration's targets
 *   are probed, so one migration's controller can never make the function probe another's.
 *
 * Probe runners are kept per probe settings (path, runs, timeouts) for the container's life.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describeError } from './clients';
import { readProbeConfig, type ProbeHandlerConfig, type ProbeSettingsConfig } from './config';
import type { InvocationContext } from './controller-dispatch';
import { PROBE_NOW_MAX_DURATION_MS, type ProbeNowRequest, type ProbeNowResponse } from './probe-invoker';
import { createProbeRunner } from './probe-runner';
import { runFreshProbe, runProbes, type ProbeResponse, type ProbeRuntimeDeps } from './probe-runtime';
import { migrationEnvironment, type MigrationRegistry, type RegisteredMigration } from './registry';
import type { ProbeRunner } from './table-probes';

type Env = Readonly<Record<string, string | undefined>>;

/** Migrations probed at once in a scheduled run. */
export const PROBE_CONCURRENCY = 4;
/** The bound of one migration's scheduled probes (all its targets, in parallel), well inside the minute. */
export const SCHEDULED_PROBE_MAX_MS = 40_000;
/** What a migration's run may need beyond its probes (the table writes, the events). */
const RECORD_MARGIN_MS = 5_000;

/** What a probe run asks for: a scheduled run's runner, or a fresh probe's (shorter, for the controller). */
export type ProbePurpose = 'scheduled' | 'now';

export interface SharedProbeDeps {
  /** The function's own environment: CUTOVER_TABLE_NAME, CUTOVER_EVENT_BUS_NAME. */
  readonly env: Env;
  readonly registry: Pick<MigrationRegistry, 'list' | 'get'>;
  readonly store: ProbeRuntimeDeps['store'];
  readonly eventBridge: EventBridgeClient;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The runner for some probe settings (see `probeRunnerCache`). */
  readonly runnerFor: (probe: ProbeSettingsConfig, purpose: ProbePurpose) => ProbeRunner;
  /** @default PROBE_CONCURRENCY */
  readonly concurrency?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** A scheduled run's answer: each probed migration's results, and those left for the next run. */
export interface SharedProbeResponse {
  readonly migrations: readonly { readonly migrationKey: string; readonly results: ProbeResponse['results'] }[];
  readonly left?: readonly string[];
}

/** Some migrations could not be probed or recorded (each is in the log); the others were. */
export class ProbeMigrationsError extends Error {
  constructor(readonly failures: readonly { readonly migrationKey: string; readonly error: string }[]) {
    super(`probes of ${failures.length} migration(s) failed: ${failures.map((f) => `${f.migrationKey}: ${f.error}`.slice(0, 400)).join('; ')}`);
    this.name = 'ProbeMigrationsError';
  }
}

/** A fresh probe for a migration that cannot be served; the message says why and what to do. */
export class ProbeRequestError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProbeRequestError';
  }
}

/** Runners made once per probe settings and purpose (a migration's settings rarely change). */
export function probeRunnerCache(create: typeof createProbeRunner = createProbeRunner): SharedProbeDeps['runnerFor'] {
  const runners = new Map<string, ProbeRunner>();
  return (probe, purpose) => {
    const key = `${purpose} ${JSON.stringify(probe, Object.keys(probe).sort())}`;
    let runner = runners.get(key);
    if (!runner) {
      runner = create(probe, { maxDurationMs: purpose === 'now' ? PROBE_NOW_MAX_DURATION_MS : SCHEDULED_PROBE_MAX_MS });
      runners.set(key, runner);
    }
    return runner;
  };
}

/** A scheduled run: every live migration with probe targets (see the module comment). */
export async function probeLiveMigrations(deps: SharedProbeDeps, context?: InvocationContext): Promise<SharedProbeResponse> {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const listing = await deps.registry.list();
  const failures: { migrationKey: string; error: string }[] = [];
  for (const damaged of listing.damaged) {
    logger.error('registry item damaged: its probes do not run until a deploy rewrites it', { ...damaged });
    failures.push({ migrationKey: damaged.migrationKey, error: `registry item damaged: ${damaged.problem}` });
  }
  const probed = listing.migrations.filter((m) => m.live && m.settings.CUTOVER_PROBE_TARGETS?.trim());
  // Turned by the minute: when time runs short, a different migration is left each time.
  const turn = probed.length > 0 ? Math.floor(now() / 60_000) % probed.length : 0;
  const queue = [...probed.slice(turn), ...probed.slice(0, turn)];

  const done: SharedProbeResponse['migrations'][number][] = [];
  const left: string[] = [];
  let started = 0;
  const concurrency = Math.max(1, deps.concurrency ?? PROBE_CONCURRENCY);
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      // The first batch always starts (as a per-migration function always probed); later ones only
      // with time for a whole run, so that none is cut off by the timeout half recorded.
      if (started >= concurrency && context && context.getRemainingTimeInMillis() < SCHEDULED_PROBE_MAX_MS + RECORD_MARGIN_MS) {
        left.push(next.migrationKey, ...queue.splice(0).map((m) => m.migrationKey));
        return;
      }
      started++;
      try {
        const response = await probeOne(deps, next);
        done.push({ migrationKey: next.migrationKey, results: response.results });
      } catch (error) {
        logger.error('probes of a migration failed; the others run', { migrationKey: next.migrationKey, error: describeError(error) });
        failures.push({ migrationKey: next.migrationKey, error: describeError(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));

  if (left.length > 0) logger.warn('no time left to probe these migrations in this run; the next run starts with others', { left });
  if (failures.length > 0) throw new ProbeMigrationsError(failures);
  return { migrations: done, ...(left.length > 0 ? { left } : {}) };
}

/** A fresh probe of one side of the migration the controller names. */
export async function probeMigrationNow(deps: SharedProbeDeps, request: ProbeNowRequest['probeNow']): Promise<ProbeNowResponse> {
  const key = request.migrationKey?.trim();
  if (!key) {
    throw new ProbeRequestError(
      'the fresh probe request names no migration (probeNow.migrationKey): it came from a controller of an older version; deploy the stack with this version, whose controller names it',
    );
  }
  const migration = await deps.registry.get(key);
  if (!migration) throw new ProbeRequestError(`no migration ${JSON.stringify(key)} is registered in this stack, so it has no probe targets to probe`);
  const config = configOf(deps, migration);
  return runFreshProbe(runtimeDeps(deps, config, 'now'), request.side);
}

async function probeOne(deps: SharedProbeDeps, migration: RegisteredMigration): Promise<ProbeResponse> {
  return runProbes(runtimeDeps(deps, configOf(deps, migration), 'scheduled'));
}

/** The migration's probe configuration, or an error that names the migration and the setting. */
function configOf(deps: SharedProbeDeps, migration: RegisteredMigration): ProbeHandlerConfig {
  try {
    return readProbeConfig(migrationEnvironment(deps.env, migration));
  } catch (error) {
    throw new ProbeRequestError(`the probe settings of migration ${migration.migrationKey} cannot be used: ${(error as Error).message}`, { cause: error });
  }
}

function runtimeDeps(deps: SharedProbeDeps, config: ProbeHandlerConfig, purpose: ProbePurpose): ProbeRuntimeDeps {
  return {
    config,
    runner: deps.runnerFor(config.probe, purpose),
    store: deps.store,
    eventBridge: deps.eventBridge,
    // Every line of this migration's run names it (runs of several migrations interleave in the log).
    logger: deps.logger.createChild({ persistentKeys: { migrationKey: config.migrationKey } }),
    metrics: deps.metrics,
    ...(deps.now ? { now: deps.now } : {}),
  };
}
