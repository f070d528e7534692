/**
 * Helpers for the operator commands' tests: a rehearsal-like state directory written with the
 * FileStateStore, and a fake engine loop that takes commands from its inbox as a rehearsal's run
 * loop does (a real MigrationController over the same files, with fake traffic, health, probes and
 * capacity).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MigrationController, type MigrationRecord } from '../../lambda/core/controller';
import { MigrationStatus, type MigrationEvent } from '../../lambda/core/model';
import { FileStateStore } from '../../local/file-store';
import { CommandInbox, type TakenCommand } from '../../ops/inbox';
import { makeEvent, makeRecord } from '../aws/fixtures';
import { CollectingSink, FakeCapacity, FakeClock, FakeProbes, FakeTraffic, SimulatedHealth } from '../core/fakes';

export { makeEvent, makeRecord };

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function fileStore(dir: string): FileStateStore<MigrationRecord, MigrationEvent> {
  return new FileStateStore<MigrationRecord, MigrationEvent>({ directory: dir });
}

/**
 * Saves a migration with `events` events (the last one moving to `status`), as a controller
 * would: the record's eventSeq follows its log.
 */
export async function writeMigration(
  dir: string,
  id: string,
  status: MigrationStatus,
  options: { readonly events?: number; readonly weight?: number; readonly step?: number; readonly record?: Partial<MigrationRecord> } = {},
): Promise<void> {
  const count = options.events ?? 3;
  const weight = options.weight ?? (status === MigrationStatus.ROLLED_BACK ? 0 : 10);
  const events = Array.from({ length: count }, (_, i) =>
    makeEvent(id, i + 1, i === count - 1 ? { type: status === MigrationStatus.ROLLED_BACK ? 'rolled-back' : 'held', to: status, weight, reason: `event ${i + 1}` } : {}),
  );
  const record = makeRecord(id, {
    status,
    weight,
    step: options.step ?? 0,
    eventSeq: count,
    ...(status === MigrationStatus.PAUSED ? { pausedFrom: MigrationStatus.BAKING } : {}),
    ...options.record,
  });
  await fileStore(dir).save(id, record, 0, events);
}

/** A rehearsal's run loop, reduced to taking commands every `tickMs` (no traffic moves). */
export function fakeEngine(dir: string, migrationId: string, tickMs = 25): { inbox: CommandInbox; taken: TakenCommand[]; stop: () => Promise<void> } {
  const clock = new FakeClock(Date.now());
  const traffic = new FakeTraffic();
  traffic.weight = 10;
  const controller = new MigrationController({
    clock: { now: () => Date.now() },
    traffic,
    health: new SimulatedHealth(traffic),
    probes: new FakeProbes(clock),
    capacity: new FakeCapacity(),
    store: fileStore(dir),
    events: new CollectingSink(),
  });
  const errors: unknown[] = [];
  const inbox = new CommandInbox({ stateDir: dir, migrationId, controller, onError: (e) => errors.push(e) });
  const taken: TakenCommand[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      taken.push(...(await inbox.take()));
      await new Promise((r) => setTimeout(r, tickMs));
    }
  })();
  return {
    inbox,
    taken,
    stop: async () => {
      running = false;
      await loop;
      if (errors.length > 0) throw new Error(`inbox errors: ${errors.map(String).join('; ')}`);
    },
  };
}
