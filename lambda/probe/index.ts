/**
 * Keep-Alive desync probe: checks that each response on a persistent HTTP/1.1 connection belongs
 * to its request. Pure Node (`net`/`tls`), no AWS; shared by the CLI, the probe Lambda and the
 * local rehearsal. See docs/probe.md for the design, verdict rules and exit codes.
 */
import type { ProbeOutcome, Side } from '../core/ports';
import type { ProbeReport } from './types';

export { runProbe, resolveOptions, PROBE_DEFAULTS, PROBE_OPTION_RANGES } from './probe';
export { ProbeUsageError } from './errors';
export { loadSequenceFile, parseSequence, defaultSequence, type ProbeStep } from './sequence';
export { DEFAULT_LIMITS, ResponseParser, FramingError, type ParsedResponse, type FramingLimits } from './http1';
export { PROBE_MARKER_HEADER, PROBE_MARKER_VALUE, PROBE_MARKER_WIRE_NAME, isProbeRequest, type HeadersLike } from './marker';
export { parseConnectTo, checkTargetHeaders, MAX_TARGET_HEADERS, type ConnectAddress } from './target';
export type * from './types';

/**
 * The core's summary of a probe report (the full report stays with the caller), with the side's
 * synthetic health: the answers the probe got and how many were 4XX and 5XX.
 */
export function toProbeOutcome(report: ProbeReport, side: Side, atMs: number): ProbeOutcome {
  return {
    side,
    verdict: report.verdict,
    atMs,
    summary: report.summary,
    findings: report.findings.length,
    health: { requests: report.health.requests, errors4xx: report.health.errors4xx, errors5xx: report.health.errors5xx },
  };
}
