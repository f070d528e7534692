/**
 * The vitest configuration Stryker runs (`npm run test:mutation`, see stryker.config.mjs): the
 * core's unit tests only. race.test.ts (1,000 seeded interleavings, ~4–9 s) is left out because
 * it would run for every mutant it covers; test/core/mutation-race.test.ts runs the same scenario
 * over 100 seeds instead. `npm test` still runs the full race test.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/core/**/*.test.ts'],
    exclude: ['test/core/race.test.ts', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
