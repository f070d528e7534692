/**
 * Runs the Keep-Alive probe engine against one target and turns its report into the result the
 * table, the metrics and the controller use (the verdict, the report's figures, and the side's
 * synthetic health: the answers the probe got and how many were 4XX and 5XX). Used by the probe
 * function, for its periodic probes and for the controller's fresh ones. A target's `connectTo`
 * and `headers` go to the engine as they are; it validates them (a bad value is a usage error,
 * which the probe runtime records as an inconclusive result saying why).
 */
import { runProbe, toProbeOutcome } from '../probe';
import type { ProbeSettingsConfig } from './config';
import type { StoredProbeResult } from './dynamodb-store';
import { describeTarget, type ProbeRunner, type ProbeTarget } from './table-probes';

export interface ProbeRunnerOptions {
  /**
   * Upper bound for one probe (all runs), in ms. It must end well within the function's timeout.
   * @default 40000 (the probe function runs every minute)
   */
  readonly maxDurationMs?: number;
  /** Current time, epoch ms. @default Date.now */
  readonly now?: () => number;
}

export function createProbeRunner(settings: ProbeSettingsConfig, options: ProbeRunnerOptions = {}): ProbeRunner {
  const now = options.now ?? Date.now;
  const maxDurationMs = options.maxDurationMs ?? 40_000;
  return async (target: ProbeTarget): Promise<StoredProbeResult> => {
    const report = await runProbe({
      baseUrl: target.url,
      healthPath: settings.path,
      runs: settings.runs,
      maxDurationMs,
      ...(settings.timeoutMs !== undefined ? { timeoutMs: settings.timeoutMs } : {}),
      ...(settings.largeBodyBytes !== undefined ? { largeBodyBytes: settings.largeBodyBytes } : {}),
      ...(target.connectTo !== undefined ? { connectTo: target.connectTo } : {}),
      ...(target.headers !== undefined ? { headers: target.headers } : {}),
    });
    return {
      ...toProbeOutcome(report, target.side, now()),
      url: target.url,
      unsolicitedBytes: report.unsolicitedBytes,
      shiftedSteps: report.shiftedSteps,
      mismatchRate: report.mismatchRate,
      durationMs: report.durationMs,
    };
  };
}

/** The result recorded when a probe could not run at all (it proves nothing either way). */
export function failedProbeResult(target: ProbeTarget, error: unknown, atMs: number): StoredProbeResult {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return {
    side: target.side,
    verdict: 'inconclusive',
    atMs,
    summary: `probe of ${describeTarget(target)} failed to run: ${reason}`,
    findings: 0,
    url: target.url,
  };
}
