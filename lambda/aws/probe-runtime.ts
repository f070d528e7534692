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
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describeError } from './clients';
import type { ProbeHandlerConfig } from './config';
import type { DynamoDbStateStore, StoredProbeResult } from './dynamodb-store';
import { PROBE_EVENT_SOURCE, PROBE_RESULT_DETAIL_TYPE } from './event-names';
import { publishProbeMetrics } from './metrics';
import { failedProbeResult } from './probe-runner';
import type { ProbeRunner } from './table-probes';

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
  readonly results: readonly { readonly side: string; readonly url?: string; readonly verdict: string; readonly summary: string }[];
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
  const now = deps.now ?? Date.now;
  if (config.targets.length === 0) {
    logger.warn('no probe targets configured (CUTOVER_PROBE_TARGETS is an empty list); nothing probed');
    return { results: [] };
  }
  // Read alongside the probes (not after them, see the header), settled so that a failure is
  // reported with the others once the probes are done.
  const pointer = deps.store.getPointer(config.migrationKey).then(
    (p) => ({ ok: true as const, migrationId: p?.migrationId }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  // Targets are probed in parallel: each probe is bounded by its own deadline.
  const results: StoredProbeResult[] = await Promise.all(
    config.targets.map(async (target) => {
      try {
        return await deps.runner(target);
      } catch (error) {
        logger.error('probe failed to run', { side: target.side, url: target.url, error: describeError(error) });
        return failedProbeResult(target, error, now());
      }
    }),
  );

  const failures: string[] = [];
  for (const result of results) {
    publishProbeMetrics(metrics, config.migrationKey, result);
    const log = result.verdict === 'desync' ? logger.error.bind(logger) : logger.info.bind(logger);
    log('probe result', { ...result });
  }
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
  if (failures.length > 0) {
    // Failing the invocation makes the gap visible (Lambda Errors). It is not retried (a probe
    // repeated minutes later measures another moment): the next scheduled run probes again.
    logger.error('probe results not fully recorded', { failures });
    throw new ProbeRecordError(failures);
  }
  return { results: results.map((r) => ({ side: r.side, ...(r.url ? { url: r.url } : {}), verdict: r.verdict, summary: r.summary })) };
}
