/**
 * The rehearsal's time limit leaves out the operator's holds (`cutover pause … --state-dir`), and
 * only those.
 */
import { describe, expect, it } from 'vitest';
import { TimeLimit } from '../../rehearsal/time-limit';

describe('TimeLimit', () => {
  it('should count the running time against the limit', () => {
    const limit = new TimeLimit(10_000, 1_000);
    expect(limit.counted(4_000)).toBe(3_000);
    expect(limit.exceeded(11_000)).toBe(false); // exactly the limit
    expect(limit.exceeded(11_001)).toBe(true);
  });

  it('should leave out every hold, finished or under way, and never run out during one', () => {
    const limit = new TimeLimit(10_000, 0);
    limit.held(false, 1_000); // not held: changes nothing
    limit.held(true, 2_000);
    limit.held(true, 30_000); // still the same hold, from 2 s
    expect(limit.counted(50_000)).toBe(2_000);
    expect(limit.exceeded(50_000)).toBe(false);
    limit.held(false, 60_000); // resumed: 58 s held
    expect(limit.counted(60_000)).toBe(2_000);
    expect(limit.exceeded(68_000)).toBe(false);
    limit.held(true, 65_000);
    limit.held(false, 66_000); // a second hold of 1 s
    expect(limit.counted(70_000)).toBe(70_000 - 58_000 - 1_000);
    expect(limit.exceeded(69_000)).toBe(false);
    expect(limit.exceeded(69_001)).toBe(true);
  });

  it('should refuse a limit that is not a positive number, naming it', () => {
    expect(() => new TimeLimit(0, 0)).toThrow('timeLimitMs must be a positive number of milliseconds, got 0');
    expect(() => new TimeLimit(Number.NaN, 0)).toThrow(/got NaN/);
  });
});
