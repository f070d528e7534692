/**
 * Every `cutover` command on one program: what bin/cli.ts runs, and what the README's synopsis is
 * generated from (synopsis.ts), so that both see the same commands and flags.
 */
import type { Command } from 'commander';
import { registerControlCommands } from './control';
import { registerDashboardCommand } from './dashboard';
import { registerHistoryCommand } from './history';
import { registerListCommand } from './list';
import { registerProbeCommand } from './probe';
import { registerRehearseCommand } from './rehearse';
import { registerStatusCommand } from './status';
import { registerWatchCommand } from './watch';

/** Registers every `cutover` command on `program`, in the order `cutover --help` lists them. */
export function registerCommands(program: Command): Command {
  registerRehearseCommand(program);
  registerProbeCommand(program);
  registerListCommand(program);
  registerStatusCommand(program);
  registerWatchCommand(program);
  registerHistoryCommand(program);
  registerControlCommands(program);
  registerDashboardCommand(program);
  return program;
}
