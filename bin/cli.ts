#!/usr/bin/env -S npx tsx
/**
 * The `cutover` command line: `cutover rehearse` (a whole migration on loopback) and
 * `cutover probe <url>` (the Keep-Alive desync probe against any endpoint).
 *
 * Exit codes are part of the interface: 0 the command ran (for `rehearse`, whatever the outcome),
 * 2 a usage error (one clear line on stderr), others as each command documents.
 */
import { Command, CommanderError } from 'commander';
import { registerProbeCommand } from './commands/probe';
import { registerRehearseCommand } from './commands/rehearse';

export const USAGE_EXIT_CODE = 2;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cutover')
    .description('Canary migrations with Keep-Alive desync probes, a pinned old side and automatic rollback')
    .exitOverride();
  registerRehearseCommand(program);
  registerProbeCommand(program);
  return program;
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
