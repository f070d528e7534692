/**
 * The race of test/core/race.test.ts over the file store: every controller has its own
 * FileStateStore on one directory, as separate processes would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationRecord } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import { FileStateStore } from '../../local/file-store';
import { runRace } from '../core/race-scenario';

const SEEDS = 40;
let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cutover-race-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('the tick protocol over FileStateStores on one directory', () => {
  it(`should keep routing and record in agreement over ${SEEDS} interleavings`, async () => {
    const endings = new Set<string>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const outcome = await runRace(seed, () => new FileStateStore<MigrationRecord, MigrationEvent>({ directory }));
      endings.add(outcome.after.split(' ')[0]!);
    }
    expect(endings.size).toBeGreaterThan(2);
  }, 300_000);
});
