/**
 * The summary's blast radius lines, without a terminal.
 */
import { describe, expect, it } from 'vitest';
import type { BlastRadius, SideHarm } from '../../rehearsal/run';
import { blastRadiusLines } from '../../rehearsal/view';

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
