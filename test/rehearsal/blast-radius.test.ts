/**
 * The blast radius arithmetic: what clients suffered between two snapshots of their statistics,
 * per side. Pure: no servers.
 */
import { describe, expect, it } from 'vitest';
import type { ClientStats, OutcomeCounts } from '../../local/clients';
import { blastRadiusBetween, harmBetween } from '../../rehearsal/run';

type Snapshot = Pick<ClientStats, 'bySource' | 'transportErrors'>;

function counts(partial: Partial<OutcomeCounts> = {}): OutcomeCounts {
  return {
    requests: 0,
    ok: 0,
    errorResponses: 0,
    misalignedResponses: 0,
    unexpectedResponses: 0,
    unexpected4xx: 0,
    unexpected5xx: 0,
    gatewayErrors: 0,
    ...partial,
  };
}

function snapshot(bySource: Partial<Record<'old' | 'new' | 'direct', Partial<OutcomeCounts>>>, transportErrors = 0): Snapshot {
  return { bySource: { old: counts(bySource.old), new: counts(bySource.new), direct: counts(bySource.direct) }, transportErrors };
}

const NONE = { unexpected4xx: 0, unexpected5xx: 0, wrongAnswers: 0, transportErrors: 0, otherUnexpected: 0, total: 0 };

describe('blast radius', () => {
  it('is all zeros when clients got only what they expected', () => {
    const healthy = snapshot({ old: { requests: 900, ok: 900 }, new: { requests: 100, ok: 100 } });
    expect(blastRadiusBetween(undefined, healthy)).toEqual({
      errorResponses: 0,
      misalignedResponses: 0,
      old: NONE,
      new: NONE,
      unattributed: NONE,
      total: NONE,
    });
  });

  it('counts each category per side, only between the two snapshots', () => {
    const atFault = snapshot(
      {
        old: { requests: 500, ok: 498, errorResponses: 2, unexpected5xx: 1, gatewayErrors: 1 },
        new: { requests: 50, ok: 49, unexpectedResponses: 1, unexpected4xx: 1 },
      },
      1,
    );
    const atRollback = snapshot(
      {
        // Old: one more 5XX and one more unexpected 4XX.
        old: { requests: 900, ok: 896, errorResponses: 3, unexpected5xx: 2, gatewayErrors: 1, unexpectedResponses: 1, unexpected4xx: 1 },
        // New: 44 unexpected 401s, 3 wrong answers, 2 timeouts (router 504s), 1 5XX, 1 200 where a 413 was due.
        new: {
          requests: 400,
          ok: 349,
          unexpectedResponses: 46,
          unexpected4xx: 45,
          misalignedResponses: 3,
          errorResponses: 3,
          gatewayErrors: 2,
          unexpected5xx: 1,
        },
        // An answer without the router's side header.
        direct: { requests: 1, unexpectedResponses: 1, unexpected4xx: 1 },
      },
      // Two requests with no HTTP response at all.
      3,
    );
    const b = blastRadiusBetween(atFault, atRollback);
    expect(b.old).toEqual({ ...NONE, unexpected4xx: 1, unexpected5xx: 1, total: 2 });
    expect(b.new).toEqual({ unexpected4xx: 44, unexpected5xx: 1, wrongAnswers: 3, transportErrors: 2, otherUnexpected: 1, total: 51 });
    expect(b.unattributed).toEqual({ ...NONE, unexpected4xx: 1, transportErrors: 2, total: 3 });
    expect(b.total).toEqual({ unexpected4xx: 46, unexpected5xx: 2, wrongAnswers: 3, transportErrors: 4, otherUnexpected: 1, total: 56 });
    // The historical totals keep their meaning: 5XX or transport error, and wrong answers.
    expect(b.errorResponses).toBe(6);
    expect(b.misalignedResponses).toBe(3);
  });

  it('splits a run into the blast radius and what came after the rollback', () => {
    const atFault = snapshot({ new: { requests: 10, ok: 10 } });
    const atRollback = snapshot({ new: { requests: 100, ok: 90, unexpectedResponses: 10, unexpected4xx: 10 } });
    const atEnd = snapshot({ new: { requests: 102, ok: 91, unexpectedResponses: 11, unexpected4xx: 11 } });
    const during = harmBetween(atFault, atRollback);
    const after = harmBetween(atRollback, atEnd);
    const whole = harmBetween(undefined, atEnd);
    expect(during.new.unexpected4xx).toBe(10);
    expect(after.new.unexpected4xx).toBe(1);
    expect(during.new.unexpected4xx + after.new.unexpected4xx).toBe(whole.new.unexpected4xx);
    expect(after.old).toEqual(NONE);
  });
});
