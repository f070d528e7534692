// @ts-check
/**
 * Mutation testing of the controller core: `npm run test:mutation` (not part of `npm test`).
 * Reports go to reports/mutation/ (gitignored). See vitest.mutation.config.ts for the tests run.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
const config = {
  // Every path that moves traffic or capacity.
  mutate: [
    'lambda/core/controller.ts',
    'lambda/core/steps.ts',
    'lambda/core/machine.ts',
    'lambda/core/routing.ts',
    'lambda/core/capacity.ts',
    'lambda/core/fail-safe.ts',
    // The judge: every rule that turns signals into advance / hold / rollback / pause.
    'lambda/core/judge.ts',
    'lambda/core/judge-config.ts',
    'lambda/core/evidence.ts',
    'lambda/core/stats.ts',
  ],
  testRunner: 'vitest',
  // The tests run are chosen by vitest.mutation.config.ts (its `include`/`exclude`); `dir` is
  // not set because vitest resolves `include` relative to it.
  vitest: { configFile: 'vitest.mutation.config.ts' },
  // TypeScript 7 has no JS API: no TypeScript checker, and a tsconfigFile that names no file so
  // that Stryker does not load `typescript` to rewrite tsconfig.json in its sandbox (that call
  // fails with TypeScript 7). Mutants that do not type-check simply run (and are killed or not).
  checkers: [],
  tsconfigFile: 'tsconfig.stryker-none.json',
  coverageAnalysis: 'perTest',
  reporters: ['clear-text', 'html', 'json', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true },
  // A 2-core machine: two test-runner processes.
  concurrency: 2,
  // A mutant times out after (its tests' own time × timeoutFactor) + timeoutMS. Generous because
  // two workers share two cores with the Stryker process itself, and a static mutant reloads and
  // runs the whole suite (~12 s alone, more under load: 10 s gave spurious timeouts). A mutant that
  // loops forever is stopped sooner anyway, by Stryker's hit limit.
  timeoutMS: 30_000,
  timeoutFactor: 2,
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  thresholds: { high: 85, low: 70, break: null },
};
export default config;
