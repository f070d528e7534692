/**
 * The summary's blast radius lines, without a terminal.
 */
import { describe, expect, it } from 'vitest';
import type { ResidualReport } from '../../rehearsal/residual';
import type { BlastRadius, SideHarm } from '../../rehearsal/run';
import { blastRadiusLines, residualLine, residualLines, stateLine, teardownLine } from '../../rehearsal/view';

const plain = (lines: string[]): string[] => lines.map((line) => line.replace(/\u001b\[[0-9;]*m/g, ''));
const NONE: SideHarm = { unexpected4xx: 0, unexpected5xx: 0, wrongAnswers: 0, transportErrors: 0, otherUnexpected: 0, total: 0 };

describe('summary: blast radius', () => {
  it('shows the span and total, then each side, in two lines', () => {
    const newSide: SideHarm = { ...NONE, unexpected4xx: 44, transportErrors: 1, total: 45 };
    const radius: BlastRadius = {
      span: { from: 'fault', fromMs: 8500, to: 'rollback', toMs: 20_100 },
      errorResponses: 1,
      misalignedResponses: 0,
      old: NONE,
      new: newSide,
      unattributed: NONE,
      total: newSide,
      afterRollback: { old: NONE, new: { ...NONE, unexpected4xx: 1, total: 1 }, unattributed: NONE, total: { ...NONE, unexpected4xx: 1, total: 1 } },
    };
    expect(plain(blastRadiusLines(radius))).toEqual([
      '  blast radius      fault at 8.5s → rollback in effect at 20.1s: 45 requests harmed; 1 more after it (new 1 4XX, 0 5XX, 0 wrong, 0 timeouts · old 0)',
      '                    new 44 unexpected 4XX, 0 5XX, 0 wrong answers, 1 timeouts/transport errors · old none',
    ]);
  });

  it('says so when nobody was harmed, and names requests no side can be blamed for', () => {
    const noResponse: SideHarm = { ...NONE, transportErrors: 2, total: 2 };
    const radius: BlastRadius = {
      span: { from: 'start', fromMs: 300, to: 'end', toMs: 14_000 },
      errorResponses: 2,
      misalignedResponses: 0,
      old: NONE,
      new: NONE,
      unattributed: noResponse,
      total: noResponse,
    };
    expect(plain(blastRadiusLines(radius))).toEqual([
      '  blast radius      first request at 0.3s → end at 14.0s: 2 requests harmed',
      '                    new none · old none · no side 2 timeouts/transport errors',
    ]);
    expect(plain(blastRadiusLines({ ...radius, unattributed: NONE, total: NONE, errorResponses: 0 }))[0]).toMatch(/: 0 requests harmed$/);
  });
});

describe('summary and live view: residual traffic after a rollback', () => {
  const residual: ResidualReport = {
    shift: 'dns',
    windowMs: 1000,
    peakRequestsPerWindow: 50,
    thresholdRequestsPerWindow: 0.5,
    requestsAfterRollback: 45,
    wrongAnswersAfterRollback: 1,
    harmedAfterRollback: 2,
    activeDrain: true,
    drained: true,
    drainedAfterMs: 3100,
    boundMs: 4000,
    withinBound: true,
    watchedMs: 4100,
    maxWatchMs: 25_000,
    requestsPerWindowAfterRollback: [29, 11, 5, 0, 0],
    drain: { closeAfterMs: 6, refuseAfterMs: 3021, connectionsClosed: 45, connectionsRefused: 1 },
    byClients: { ttlHonouring: 30, ttlIgnoring: 15 },
  };

  it('shows what reached the new side, when it drained against its bound, and what the drain did', () => {
    expect(plain(residualLines(residual))).toEqual([
      '  residual          45 requests reached the new side after the rollback (1 wrong answers, 2 harmed in all); drained to ≤ 1 % of its peak (50/1.0s) 3.1s after it (bound 4.0s)',
      '                    clients honouring the TTL 30, ignoring it 15; per 1.0s: 29 11 5 0 0; drain: Connection: close from +0.0s, connections refused from +3.0s (1 refused)',
    ]);
    const proxy: ResidualReport = { ...residual, shift: 'proxy', requestsAfterRollback: 0, drainedAfterMs: 0, boundMs: 1000, requestsPerWindowAfterRollback: [0], drain: { closeAfterMs: 5, connectionsClosed: 0, connectionsRefused: 0 } };
    delete (proxy as { byClients?: unknown }).byClients;
    expect(plain(residualLines(proxy))[1]).toBe('                    per 1.0s: 0; drain: Connection: close from +0.0s');
    const stuck: ResidualReport = { ...residual, drained: false, withinBound: false };
    delete (stuck as { drainedAfterMs?: unknown }).drainedAfterMs;
    expect(plain(residualLines(stuck))[0]).toMatch(/not drained to ≤ 1 % of its peak \(50\/1\.0s\) within 4\.1s$/);
    // Without the active drain (--no-drain) there are no drain steps: the line says the drain was off.
    const leftAlone: ResidualReport = { ...stuck, activeDrain: false, watchedMs: 25_000 };
    delete (leftAlone as { drain?: unknown }).drain;
    expect(plain(residualLines(leftAlone))).toEqual([
      '  residual          45 requests reached the new side after the rollback (1 wrong answers, 2 harmed in all); not drained to ≤ 1 % of its peak (50/1.0s) within 25.0s',
      '                    clients honouring the TTL 30, ignoring it 15; per 1.0s: 29 11 5 0 0; drain: off (Keep-Alive kept, connections accepted)',
    ]);
  });

  it('keeps one live line up to date while the new side drains', () => {
    const line = residualLine({
      sinceRollbackMs: 1500,
      windowMs: 1000,
      lastWindow: 7,
      peakRequestsPerWindow: 50,
      thresholdRequestsPerWindow: 0.5,
      requestsAfterRollback: 31,
      drain: 'refuse',
      cachedOnNewSide: 1,
    });
    expect(plain([line])[0]).toBe(
      '  residual   new side 1.5s after the rollback: 7 req in the last 1.0s (peak 50, drained at ≤ 0.50), 31 since it · drain: Connection: close, refusing new connections · 1 client still caches it',
    );
    const off = residualLine({ sinceRollbackMs: 1500, windowMs: 1000, lastWindow: 7, peakRequestsPerWindow: 50, thresholdRequestsPerWindow: 0.5, requestsAfterRollback: 31, drain: 'off' });
    expect(plain([off])[0]).toMatch(/31 since it · drain: off \(the new side answers as before\)$/);
  });
});

describe('summary: the rehearsal\'s own teardown and its state', () => {
  it('says the teardown was the rehearsal\'s own cleanup, not an operator\'s', () => {
    expect(plain([teardownLine({ by: 'rehearsal', atMs: 13_600 })])[0]).toMatch(
      /^  teardown          by the rehearsal at 13\.6s, once its run was over: its own cleanup, not an operator's/,
    );
  });

  it('names the state directory only when it was kept', () => {
    expect(stateLine({ stateDir: '/var/state', migrationId: 'rehearsal-healthy-1' })).toBe('  state kept in     /var/state (migration rehearsal-healthy-1)');
    expect(stateLine({ migrationId: 'rehearsal-healthy-1' })).toMatch(/^  state             not kept: a temporary directory, removed at the end \(--state-dir <dir> keeps/);
  });
});
