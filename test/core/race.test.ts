/**
 * Concurrent ticks and commands against one migration: 1,000 seeded interleavings of 2–10
 * controllers over the atomic in-memory store (see race-scenario.ts for what each run does and
 * interleave.ts for the invariants).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from './fakes';
import { runRace } from './race-scenario';

const SEEDS = 1_000;

describe('the tick protocol under concurrency', () => {
  it(`should keep routing and record in agreement over ${SEEDS} interleavings of 2–10 controllers`, async () => {
    const controllers = new Map<number, number>();
    const endings = new Map<string, number>();
    let steps = 0;
    let commands = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const store = new MemoryStore();
      const outcome = await runRace(seed, () => store);
      controllers.set(outcome.controllers, (controllers.get(outcome.controllers) ?? 0) + 1);
      const ending = outcome.after.split(' ')[0]!;
      endings.set(ending, (endings.get(ending) ?? 0) + 1);
      steps += outcome.steps;
      commands += outcome.operations.filter((o) => o !== 'tick').length;
    }
    // The runs covered what they claim to: every controller count, commands, and real races.
    expect([...controllers.keys()].sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(commands).toBeGreaterThan(SEEDS);
    expect(steps / SEEDS).toBeGreaterThan(20);
    for (const status of ['baking', 'rolled-back', 'paused']) expect(endings.get(status) ?? 0, `runs ending ${status}`).toBeGreaterThan(10);
  }, 120_000);
});
