/**
 * What the probe function does with one invocation: probe every configured target, publish the
 * EMF metrics, record the results in the table for the controller, and put one
 * `Cutover Probe Result` event per result on the bus (a rule sends desync results to the
 * controller at once).
 *
 * Results are recorded in the partition of the alias's current migration (the pointer item), where
 * the controller reads them together with the record in one Query. The pointer is read when the
 * probes start, so a result is filed under a migration that existed before it was taken: a deploy
 * that lands while probes run cannot receive a result of the endpoints as they were before it.
 * With no migration at all (before the alias's first one) results go to the alias's own
 * `PROBE#<fn>:<alias>` partition, which no migration reads, so they can never count for one; the
 * events are put either way.
 *
 * Both sides are probed equally often, with the same settings and sequence: every scheduled run
 * probes every target, and a fresh probe the controller asks for (the new side, before the first
 * shift and before every increase) probes the other configured side with it (`runFreshProbe`).
 * So neither side gets more probe traffic than the other, and each fresh result of one side has
 * a result of the other from the same moment.
 *
 * A target may name where to connect (`connectTo`, e.g. one side's own load balancer while both
 * serve the URL's host name) and extra headers (`headers`, e.g. the one an ALB listener rule
 * routes one side's probe traffic by); the runner hands both to the probe engine, which validates
 * them. The response and the logs name the `connectTo` of each result, since two sides may share
 * one URL.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Side } from '../core/ports';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describeError } from './clients';
import type { ProbeHandlerConfig } from './config';
import type { DynamoDbStateStore, StoredProbeResult } from './dynamodb-store';
import { PROBE_EVENT_SOURCE, PROBE_RESULT_DETAIL_TYPE } from './event-names';
import { publishProbeMetrics } from './metrics';
import type { ProbeNowResponse } from './probe-invoker';
import { failedProbeResult } from './probe-runner';
import type { ProbeRunner, ProbeTarget } from './table-probes';

export interface ProbeRuntimeDeps {
  readonly config: ProbeHandlerConfig;
  readonly runner: ProbeRunner;
  readonly store: Pick<DynamoDbStateStore, 'getPointer' | 'putProbeResult' | 'putUnattributedProbeResult'>;
  readonly eventBridge: EventBridgeClient;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface ProbeResponse {
  readonly results: readonly {
    readonly side: string;
    readonly url?: string;
    /** The target's `connectTo`, when it has one (two sides may share one URL). */
    readonly connectTo?: string;
    readonly verdict: string;
    readonly summary: string;
  }[];
}

/** Results could not all be recorded or announced; the metrics and logs still have them. */
export class ProbeRecordError extends Error {
  constructor(readonly failures: readonly string[]) {
    super(`probe results were not fully recorded: ${failures.join('; ')}`);
    this.name = 'ProbeRecordError';
  }
}

/** PutEvents accepts at most 10 entries per call. */
const MAX_ENTRIES = 10;

export async function runProbes(deps: ProbeRuntimeDeps): Promise<ProbeResponse> {
  const { config, logger, metrics } = deps;
  if (config.targets.length === 0) {
    logger.warn('no probe targets configured (CUTOVER_PROBE_TARGETS is an empty list); nothing probed');
    return { results: [] };
  }
  // Read alongside the probes (not after them, see the header), settled so that a failure is
  // reported with the others once the probes are done.
  const pointer = readPointer(deps);
  const results = await probeAll(deps, config.targets);
  results.forEach((result, i) => {
    publishProbeMetrics(metrics, config.migrationKey, result);
    const log = result.verdict === 'desync' ? logger.error.bind(logger) : logger.info.bind(logger);
    log('probe result', { ...result, ...connectToOf(config.targets[i]!) });
  });
  const failures = await recordAndAnnounce(deps, results, pointer);
  if (failures.length > 0) {
    // Failing the invocation makes the gap visible (Lambda Errors). It is not retried (a probe
    // repeated minutes later measures another moment): the next scheduled run probes again.
    logger.error('probe results not fully recorded', { failures });
    throw new ProbeRecordError(failures);
  }
  return {
    results: results.map((r, i) => ({ side: r.side, ...(r.url ? { url: r.url } : {}), ...connectToOf(config.targets[i]!), verdict: r.verdict, summary: r.summary })),
  };
}

/** `{ connectTo }` of a target that has one, for logs and the response. */
function connectToOf(target: ProbeTarget): { connectTo?: string } {
  return target.connectTo !== undefined ? { connectTo: target.connectTo } : {};
}

/** Thrown by `runFreshProbe` for a side without a configured target. */
export class NoProbeTargetError extends Error {
  constructor(readonly side: Side) {
    super(`no ${side} target is configured (CUTOVER_PROBE_TARGETS)`);
    this.name = 'NoProbeTargetError';
  }
}

/**
 * A fresh probe for the controller (`{"probeNow":{"side":…}}`): probes the asked side and, at the
 * same moment and with the same runner (settings and sequence), every other configured side.
 *
 * The controller asks only for the new side (before the first shift and before every increase);
 * probing the old side with it keeps both sides probed equally often, and gives the judge an old
 * result from the same moment as each fresh new one. The asked side's result is returned: the
 * controller records it and decides on it, so it is not recorded or announced here (only its
 * metrics are published, as for every probe run). The other sides' results are handled like
 * periodic ones (metrics, the table under the current migration, one event each), and stamped no
 * earlier than 1 ms after the asked side's: the controller takes the fresh result as the newest it
 * has seen and reads recorded results after it, so it still reads them. A failure to record or
 * announce them is logged, not thrown: it must not cost the controller its fresh probe.
 */
export async function runFreshProbe(deps: ProbeRuntimeDeps, side: Side): Promise<ProbeNowResponse> {
  const { config, logger, metrics } = deps;
  const asked = config.targets.find((t) => t.side === side);
  if (!asked) throw new NoProbeTargetError(side);
  const others = config.targets.filter((t) => t !== asked && t.side !== side);
  const pointer = others.length > 0 ? readPointer(deps) : undefined;
  const [result, ...paired] = await probeAll(deps, [asked, ...others]);
  const otherResults = paired.map((r) => (r.atMs > result!.atMs ? r : { ...r, atMs: result!.atMs + 1 }));
  for (const r of [result!, ...otherResults]) publishProbeMetrics(metrics, config.migrationKey, r);
  logger.info('fresh probe for the controller', { ...result, ...connectToOf(asked) });
  otherResults.forEach((r, i) => {
    const log = r.verdict === 'desync' ? logger.error.bind(logger) : logger.info.bind(logger);
    log('probe result (with the fresh probe)', { ...r, ...connectToOf(others[i]!) });
  });
  if (pointer) {
    const failures = await recordAndAnnounce(deps, otherResults, pointer);
    if (failures.length > 0) logger.error('probe results taken with the fresh probe not fully recorded', { failures });
  }
  return { result: result! };
}

/** The alias's current migration, settled: a failure is reported with the other write failures. */
type PointerRead = Promise<{ ok: true; migrationId: string | undefined } | { ok: false; error: unknown }>;

function readPointer(deps: ProbeRuntimeDeps): PointerRead {
  return deps.store.getPointer(deps.config.migrationKey).then(
    (p) => ({ ok: true as const, migrationId: p?.migrationId }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/**
 * Probes the targets in parallel, each bounded by its own deadline, with the one runner (the same
 * settings and sequence for every side). A probe that cannot run is an inconclusive result.
 */
async function probeAll(deps: ProbeRuntimeDeps, targets: readonly ProbeTarget[]): Promise<StoredProbeResult[]> {
  const now = deps.now ?? Date.now;
  return Promise.all(
    targets.map(async (target) => {
      try {
        return await deps.runner(target);
      } catch (error) {
        deps.logger.error('probe failed to run', { side: target.side, url: target.url, ...connectToOf(target), error: describeError(error) });
        return failedProbeResult(target, error, now());
      }
    }),
  );
}

/** Records the results in the current migration's partition and puts one event each; returns what failed. */
async function recordAndAnnounce(deps: ProbeRuntimeDeps, results: readonly StoredProbeResult[], pointer: PointerRead): Promise<string[]> {
  const { config } = deps;
  const failures: string[] = [];
  const current = await pointer;
  if (!current.ok) {
    // Without the migration id there is no right partition: write nothing rather than a result
    // the controller would not find (or one filed under the wrong migration). The invocation fails.
    failures.push(`current migration of ${config.migrationKey} for the table writes: ${describeError(current.error)}`);
  } else {
    const { migrationId } = current;
    const writes = await Promise.allSettled(
      results.map((r) => (migrationId ? deps.store.putProbeResult(migrationId, r) : deps.store.putUnattributedProbeResult(config.migrationKey, r))),
    );
    writes.forEach((w, i) => {
      if (w.status === 'rejected') failures.push(`table write of the ${results[i]!.side} result: ${describeError(w.reason)}`);
    });
  }

  for (let i = 0; i < results.length; i += MAX_ENTRIES) {
    const batch = results.slice(i, i + MAX_ENTRIES);
    try {
      const put = await deps.eventBridge.send(
        new PutEventsCommand({
          Entries: batch.map((r) => ({
            Source: PROBE_EVENT_SOURCE,
            DetailType: PROBE_RESULT_DETAIL_TYPE,
            EventBusName: config.eventBusName,
            Time: new Date(r.atMs),
            Detail: JSON.stringify({ migrationKey: config.migrationKey, ...r }),
          })),
        }),
      );
      (put.Entries ?? []).forEach((entry, j) => {
        if (entry.ErrorCode) failures.push(`event for the ${batch[j]?.side} result: ${entry.ErrorCode} ${entry.ErrorMessage ?? ''}`.trim());
      });
    } catch (error) {
      failures.push(`events for ${batch.map((r) => r.side).join(', ')}: ${describeError(error)}`);
    }
  }
  return failures;
}
