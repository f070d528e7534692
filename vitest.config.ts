import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Loopback servers and CDK synths are slow-ish on 2 cores; keep each test bounded anyway.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the cores: a single worker on a 2-core machine,
    // where the suite then takes 8–9 minutes. Most of its time is spent waiting (loopback servers,
    // the rehearsal's timers), not computing, so three workers share two cores well: about 3.5
    // minutes, measured on 2 cores.
    maxWorkers: 3,
    minWorkers: 1,
    reporters: ['default'],
  },
});
