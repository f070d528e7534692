/**
 * A tiny `cutover` entry for the CLI tests: a commander program with only the probe command,
 * mapping commander's usage errors to exit code 2 the way bin/cli.ts does.
 */
import { Command, CommanderError } from 'commander';
import { registerProbeCommand } from '../../bin/commands/probe';

async function main(): Promise<void> {
  const program = new Command().name('cutover').exitOverride();
  registerProbeCommand(program);
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  }
}

void main();
