/**
 * A controller killed at every port-call boundary and resumed by a restarted one (see
 * test/core/crash-scenario.ts), over FileStateStore: the restarted controller opens a new store
 * instance on the same directory, as a new process would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationRecord } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import { FileStateStore } from '../../local/file-store';
import { CRASH_POINTS, crashEverywhere } from '../core/crash-scenario';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cutover-crash-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('a controller killed at every port-call boundary (file store)', () => {
  for (const point of CRASH_POINTS) {
    it(`should resume correctly when it dies while ${point.name}`, async () => {
      const runs = await crashEverywhere(point, () => ({ open: () => new FileStateStore<MigrationRecord, MigrationEvent>({ directory }) }));
      expect(runs.length).toBeGreaterThanOrEqual(16);
    }, 60_000);
  }
});
