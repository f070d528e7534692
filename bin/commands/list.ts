/**
 * `cutover list`: the migrations a source knows. On AWS, every key's current migration (the
 * table's pointer items, each with its record); locally, every migration in the state directory.
 * Exit codes: 0 listed, 2 usage error, 5 the source could not be read.
 */
import type { Command } from 'commander';
import type { MigrationSummary } from '../../ops/types';
import { EXIT } from '../../ops/types';
import { addSourceOptions, ago, colourStatus, colors, defaultIo, printJson, READ_EXIT_HELP, stepText, withSource, type OpsIo, type SourceFlags } from './ops-common';

export function registerListCommand(program: Command, io: OpsIo = defaultIo): void {
  const command = program
    .command('list')
    .description("list migrations: on AWS each key's current migration, locally every one in the state directory");
  addSourceOptions(command, { controller: false })
    .addHelpText('after', READ_EXIT_HELP)
    .action(async (flags: SourceFlags) => {
      process.exitCode = await listCommand(flags, io);
    });
}

export function listCommand(flags: SourceFlags, io: OpsIo = defaultIo): Promise<number> {
  return withSource('list', flags, io, 'read', async (source) => {
    const rows = await source.list();
    if (flags.json) printJson(io, rows);
    else io.stdout(formatList(rows, source.kind, flags, io));
    return EXIT.ok;
  });
}

export function formatList(rows: readonly MigrationSummary[], kind: 'aws' | 'local', flags: SourceFlags, io: OpsIo, now = Date.now()): string {
  const c = colors(flags, io);
  if (rows.length === 0) return kind === 'aws' ? 'no migrations recorded in this table\n' : 'no migrations in this state directory\n';
  const header = ['MIGRATION', ...(kind === 'aws' ? ['KEY'] : []), 'STATUS', 'WEIGHT', 'STEP', 'UPDATED', ...(kind === 'local' ? ['RUNNING'] : [])];
  const cells = rows.map((r) => [
    r.id,
    ...(kind === 'aws' ? [r.key ?? '-'] : []),
    r.status,
    r.weight === undefined ? '-' : `${r.weight}%`,
    stepText(r.step, r.steps),
    ago(r.updatedAtMs, now),
    ...(kind === 'local' ? [r.live === undefined ? '?' : r.live ? 'yes' : 'no'] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const statusColumn = header.indexOf('STATUS');
  const line = (row: string[], colour: boolean): string =>
    row
      .map((cell, i) => {
        const padded = cell.padEnd(widths[i]!);
        return colour && i === statusColumn ? colourStatus(cell, c) + padded.slice(cell.length) : padded;
      })
      .join('  ')
      .trimEnd();
  const notes = rows.filter((r) => r.damage || r.note).map((r) => c.dim(`  ${r.id}: ${r.damage ?? r.note}`));
  return `${[c.bold(line(header, false)), ...cells.map((row) => line(row, true)), ...notes].join('\n')}\n`;
}
