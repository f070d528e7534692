/**
 * The `cutover` command line: `cutover rehearse` (a whole migration on loopback),
 * `cutover probe <url>` (the Keep-Alive desync probe against any endpoint), and the operator
 * commands on a deployed migration or a running rehearsal: `list`, `status`, `watch`, `history`,
 * `pause`, `resume`, `abort`, `promote --full`, `teardown` (built on `ops/`).
 *
 * Exit codes are part of the interface: 0 the command ran (for `rehearse`, whatever the outcome),
 * 2 a usage error (one clear line on stderr), others as each command documents.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/register';

export const USAGE_EXIT_CODE = 2;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cutover')
    .description('Canary migrations with Keep-Alive desync probes, a pinned old side and automatic rollback')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride();
  return registerCommands(program);
}

/**
 * The version in the nearest package.json above this file: bin/ in a checkout, dist/bin/ once
 * installed (the CLI runs from the package, never from a bundle).
 */
function packageVersion(): string {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  }
  return 'unknown';
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
