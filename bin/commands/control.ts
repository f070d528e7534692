/**
 * The control commands: `cutover pause|resume|abort|promote --full|teardown <migration>
 * [--reason <text>]`. On AWS they invoke the controller function synchronously with
 * `{"command", "reason"}` and print its answer; with `--state-dir` they go through the command
 * inbox to the rehearsal that runs the migration and print its result.
 *
 * Exit codes: 0 applied, 1 refused by the controller (or failed in it), 2 usage error, 5 not
 * delivered or outcome unknown.
 */
import type { Command as Program } from 'commander';
import { Command } from '../../lambda/core/model';
import type { CommandOutcome } from '../../ops/types';
import { EXIT } from '../../ops/types';
import { addSourceOptions, colors, CONTROL_EXIT_HELP, defaultIo, fail, printJson, stepText, withSource, type OpsIo, type SourceFlags } from './ops-common';

export interface ControlFlags extends SourceFlags {
  readonly reason?: string;
  /** promote only. */
  readonly full?: boolean;
}

const DESCRIPTIONS: Record<Command, string> = {
  pause: 'stop the migration where it is: its weight is held until resume, abort or promote',
  resume: 'go on with a paused migration (the current step bakes again from the start)',
  abort: 'roll back now: all traffic to the old side',
  promote: 'skip the remaining steps: 100 % on the new side now (it still soaks); needs --full',
  teardown: "release the old side's pin (only once the migration is complete, soaking or rolled back)",
};

export function registerControlCommands(program: Program, io: OpsIo = defaultIo): void {
  for (const name of Object.values(Command)) {
    const command = program
      .command(name)
      .description(DESCRIPTIONS[name])
      .argument('<migration>', 'migration id (AWS with --table: or a key such as <function>:<alias>, for its current migration)')
      .option('--reason <text>', 'why: kept in the event log and sent with the notifications');
    if (name === Command.PROMOTE) command.option('--full', 'confirm: go to 100 % at once (the controller has no single-step promote)');
    addSourceOptions(command, { controller: true })
      .addHelpText('after', CONTROL_EXIT_HELP)
      .action(async (migration: string, flags: ControlFlags) => {
        // Ctrl-C while waiting: a local command not taken yet is withdrawn (exit 130); an AWS
        // invoke in flight cannot be called back, so its answer is still awaited.
        const abort = new AbortController();
        const onSignal = (): void => abort.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          process.exitCode = await controlCommand(name, migration, flags, { ...io, signal: abort.signal });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      });
  }
}

export async function controlCommand(name: Command, migration: string, flags: ControlFlags, io: OpsIo & { readonly signal?: AbortSignal } = defaultIo): Promise<number> {
  if (name === Command.PROMOTE && !flags.full) {
    return fail(
      name,
      flags,
      io,
      'promote moves the new side to 100 % at once, skipping the remaining steps (it still soaks); pass --full to confirm. There is no single-step promote: resume a paused migration to go on step by step',
      EXIT.usage,
      'usage',
    );
  }
  const reason = flags.reason?.trim() || `operator ${name} (cutover CLI)`;
  return withSource(name, flags, io, 'command', async (source) => {
    const outcome = await source.command(migration, name, reason, io.signal ? { signal: io.signal } : {});
    if (flags.json) printJson(io, outcome);
    else if (outcome.applied && !outcome.refusal) io.stdout(formatOutcome(outcome, flags, io));
    else io.stderr(`cutover ${name}: ${formatOutcome(outcome, flags, io)}`);
    return outcome.applied && !outcome.refusal ? EXIT.ok : EXIT.refused;
  });
}

export function formatOutcome(o: CommandOutcome, flags: SourceFlags, io: OpsIo): string {
  const c = colors(flags, io);
  const after =
    o.status !== undefined
      ? `now ${o.status}${o.weight !== undefined ? ` at ${o.weight}%` : ''}${o.step !== undefined ? ` (${stepText(o.step, undefined)})` : ''}`
      : '';
  const events = o.events !== undefined ? `; ${o.events} event${o.events === 1 ? '' : 's'} logged` : '';
  if (o.applied && !o.refusal) {
    return `${c.green(`${o.command} applied`)} to ${o.migrationId}: ${after}${events}${o.note ? c.dim(` (${o.note})`) : ''}\n`;
  }
  const applied = o.applied ? ` It was applied to ${o.migrationId}: ${after}${events}.` : '';
  return `${c.red(`${o.command} not applied`)} to ${o.migrationId}: ${o.refusal ?? 'refused'}${!o.applied && after ? ` (${after})` : ''}.${applied}\n`;
}
