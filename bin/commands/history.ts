/**
 * `cutover history <migration>`: the migration's event log, oldest first: every transition and
 * decision with its reason (`--json`: the events as stored, with the signals each was based on).
 * Exit codes: 0 printed, 2 usage error, 5 unknown migration or the source could not be read.
 */
import type { Command } from 'commander';
import type { MigrationEvent } from '../../lambda/core/model';
import { EXIT } from '../../ops/types';
import { addSourceOptions, clock, colors, defaultIo, printJson, READ_EXIT_HELP, withSource, type OpsIo, type SourceFlags } from './ops-common';

export function registerHistoryCommand(program: Command, io: OpsIo = defaultIo): void {
  const command = program
    .command('history')
    .description('print the event log of a migration: every transition and decision with its reason')
    .argument('<migration>', 'migration id (AWS: or a key such as <function>:<alias>, for its current migration)');
  addSourceOptions(command, { controller: false })
    .addHelpText('after', READ_EXIT_HELP)
    .action(async (migration: string, flags: SourceFlags) => {
      process.exitCode = await historyCommand(migration, flags, io);
    });
}

export function historyCommand(migration: string, flags: SourceFlags, io: OpsIo = defaultIo): Promise<number> {
  return withSource('history', flags, io, 'read', async (source) => {
    const events = await source.history(migration);
    if (flags.json) printJson(io, events);
    else io.stdout(formatHistory(events, flags, io));
    return EXIT.ok;
  });
}

export function formatHistory(events: readonly Pick<MigrationEvent, 'seq' | 'atMs' | 'type' | 'from' | 'to' | 'weight' | 'code' | 'reason'>[], flags: SourceFlags, io: OpsIo): string {
  const c = colors(flags, io);
  if (events.length === 0) return 'no events\n';
  return `${events.map((e) => eventText(e, c)).join('\n')}\n`;
}

/** One event on one line: `#12 2024-05-01 12:03:04  advanced  baking → baking  25%  reason [code]`. */
export function eventText(
  e: Pick<MigrationEvent, 'seq' | 'atMs' | 'type' | 'from' | 'to' | 'weight' | 'code' | 'reason'>,
  c: ReturnType<typeof colors>,
): string {
  const colour = e.to === 'rolled-back' ? c.red : e.type === 'advanced' || e.type === 'promoted' ? c.green : e.type === 'held' || e.to === 'paused' ? c.yellow : (s: string) => s;
  const move = e.from === e.to ? e.to : `${e.from} → ${e.to}`;
  return `${c.dim(`#${String(e.seq).padEnd(4)}${clock(e.atMs)}`)}  ${colour(e.type.padEnd(18))} ${move.padEnd(22)} ${String(e.weight).padStart(3)}%  ${e.reason} ${c.dim(`[${e.code}]`)}`;
}
