/**
 * A tick or command killed at every port-call boundary, then resumed by a restarted controller
 * (see crash-scenario.ts), over the in-memory store. The same runs over the file store and
 * DynamoDB are in test/local/crash-file-store.test.ts and test/aws/crash-dynamodb.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { CRASH_POINTS, crashEverywhere } from './crash-scenario';
import { MemoryStore } from './fakes';

describe('a controller killed at every port-call boundary (in-memory store)', () => {
  for (const point of CRASH_POINTS) {
    it(`should resume correctly when it dies while ${point.name}`, async () => {
      const runs = await crashEverywhere(point, async () => {
        const store = new MemoryStore();
        return { open: () => store };
      });
      // Every boundary, before and after, each with a short and a long pause.
      expect(runs.length).toBeGreaterThanOrEqual(4 * 4);
      expect(new Set(runs.map((r) => r.boundary)).size * 2).toBe(runs.length);
    });
  }
});
