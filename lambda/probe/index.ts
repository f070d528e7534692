/**
 * Keep-Alive desync probe: checks that each response on a persistent HTTP/1.1 connection belongs
 * to its request. Pure Node (`net`/`tls`), no AWS; shared by the CLI, the probe Lambda and the
 * local rehearsal. See docs/probe.md for the design, verdict rules and exit codes.
 */
import type { ProbeOutcome, Side } from '../core/ports';
import type { ProbeReport } from './types';

export { runProbe, resolveOptions, PROBE_DEFAULTS } from './probe';
export { ProbeUsageError } from './errors';
export { loadSequenceFile, parseSequence, defaultSequence, type ProbeStep } from './sequence';
export { DEFAULT_LIMITS, ResponseParser, FramingError, type ParsedResponse, type FramingLimits } from './http1';
export type * from './types';

/** The core's summary of a probe report (the full report stays with the caller). */
export function toProbeOutcome(report: ProbeReport, side: Side, atMs: number): ProbeOutcome {
  return {
    side,
    verdict: report.verdict,
    atMs,
    summary: report.summary,
    findings: report.findings.length,
  };
}
