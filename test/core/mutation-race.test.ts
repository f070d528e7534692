/**
 * The race test at mutation-testing size: the scenario of race.test.ts (race-scenario.ts) over
 * 100 seeds instead of 1,000. Stryker runs it for every mutant it covers, and 100 seeds already
 * cover every controller count and every ending; race.test.ts keeps the full 1,000 in `npm test`
 * (vitest.mutation.config.ts leaves it out of the mutation run).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from './fakes';
import { runRace } from './race-scenario';

const SEEDS = 100;

describe('the tick protocol under concurrency (mutation-sized)', () => {
  it(`should keep routing and record in agreement over ${SEEDS} interleavings of 2–10 controllers`, async () => {
    const controllers = new Set<number>();
    const endings = new Map<string, number>();
    let commands = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const store = new MemoryStore();
      const outcome = await runRace(seed, () => store);
      controllers.add(outcome.controllers);
      const ending = outcome.after.split(' ')[0]!;
      endings.set(ending, (endings.get(ending) ?? 0) + 1);
      commands += outcome.operations.filter((o) => o !== 'tick').length;
    }
    // Fewer seeds must still cover what the full test claims: every controller count, commands,
    // and runs ending baking, rolled back and paused.
    expect([...controllers].sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(commands).toBeGreaterThan(SEEDS);
    for (const status of ['baking', 'rolled-back', 'paused']) expect(endings.get(status) ?? 0, `runs ending ${status}`).toBeGreaterThan(1);
  }, 60_000);
});
