/**
 * Module-level values of the mutated core, imported inside the tests rather than at the top of
 * the file. A broken constant (the stand-in plan of fail-safe.ts, say) makes its module throw on
 * import; imported at the top, that fails the whole file before any test runs, which vitest
 * reports as no tests at all. Imported here, it fails a test, as it should.
 */
import { describe, expect, it } from 'vitest';

describe('module-level values of the core', () => {
  it('should load fail-safe.ts with its stand-in plan: one 100 % step of a minute, no soak, torn down by hand', async () => {
    const { UNREADABLE_PLAN } = await import('../../lambda/core/fail-safe');
    expect(UNREADABLE_PLAN).toEqual({ steps: [{ weight: 100, bakeMs: 60_000 }], soakMs: 0, healthWindowMs: 60_000, teardown: 'manual' });
  });

  it('should load routing.ts with four rollback attempts', async () => {
    const { ROLLBACK_ATTEMPTS } = await import('../../lambda/core/routing');
    expect(ROLLBACK_ATTEMPTS).toBe(4);
  });

  it('should load machine.ts and the controller', async () => {
    const { canTransition } = await import('../../lambda/core/machine');
    const { MigrationController } = await import('../../lambda/core/controller');
    expect(canTransition('pending', 'gating')).toBe(true);
    expect(typeof MigrationController).toBe('function');
  });
});
