#!/usr/bin/env -S npx tsx
/**
 * The `cutover` command line: `cutover rehearse` (a whole migration on loopback),
 * `cutover probe <url>` (the Keep-Alive desync probe against any endpoint), and the operator
 * commands on a deployed migration or a running rehearsal: `list`, `status`, `watch`, `history`,
 * `pause`, `resume`, `abort`, `promote --full`, `teardown` (built on `ops/`).
 *
 * Exit codes are part of the interface: 0 the command ran (for `rehearse`, whatever the outcome),
 * 2 a usage error (one clear line on stderr), others as each command documents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { registerControlCommands } from './commands/control';
import { registerHistoryCommand } from './commands/history';
import { registerListCommand } from './commands/list';
import { registerProbeCommand } from './commands/probe';
import { registerRehearseCommand } from './commands/rehearse';
import { registerStatusCommand } from './commands/status';
import { registerWatchCommand } from './commands/watch';

export const USAGE_EXIT_CODE = 2;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cutover')
    .description('Canary migrations with Keep-Alive desync probes, a pinned old side and automatic rollback')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride();
  registerRehearseCommand(program);
  registerProbeCommand(program);
  registerListCommand(program);
  registerStatusCommand(program);
  registerWatchCommand(program);
  registerHistoryCommand(program);
  registerControlCommands(program);
  return program;
}

/** The version in package.json (the CLI runs from the package, never from a bundle). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version are "errors" to commander with exit code 0.
      process.exitCode = error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
      return;
    }
    throw error;
  }
}

main(process.argv).catch((error: unknown) => {
  process.stderr.write(`cutover: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  // 70 (EX_SOFTWARE): distinct from every documented outcome code (probe uses 1 for "desync").
  process.exitCode = 70;
});
