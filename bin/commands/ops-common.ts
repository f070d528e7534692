/**
 * What the operator commands (list, status, watch, history and the control commands) share: the
 * source flags (`--table`, `--controller`, `--region` for AWS; `--state-dir` for a rehearsal),
 * opening the source, output, and turning errors into the documented exit codes.
 */
import { Option, type Command } from 'commander';
import pc from 'picocolors';
import type { MigrationSource } from '../../ops/types';
import { EXIT, OpsError } from '../../ops/types';
import { AwsMigrationSource } from '../../ops/aws-source';
import { LocalMigrationSource } from '../../ops/local-source';

/** Raw option values as commander hands them over. */
export interface SourceFlags {
  readonly table?: string;
  readonly controller?: string;
  readonly region?: string;
  readonly stateDir?: string;
  readonly json?: boolean;
}

/** Where a command writes; tests pass their own. */
export interface OpsIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Colour the human output. @default - when stdout supports it */
  readonly color?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

export const defaultIo: OpsIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** The exit-code table of `status` and `watch`, for --help. */
export const STATUS_EXIT_HELP = `
Exit codes:
  0  complete or torn down
  1  rolled back
  2  usage error
  3  still running (pending, gating, shifting, baking, promoted, soaking)
  4  paused
  5  damaged or unknown (no such migration, or the source could not be read)`;

/** The exit-code table of the control commands, for --help. */
export const CONTROL_EXIT_HELP = `
Exit codes:
  0  applied
  1  refused by the controller (the command does not apply now), or failed in it
  2  usage error
  5  not delivered or outcome unknown: the controller could not be invoked (throttled, no access,
     no such function), another run changed the migration at the same time, or no rehearsal took
     the command (it is then withdrawn: nothing was applied)
  130  interrupted (Ctrl-C) before a rehearsal took the command (withdrawn: nothing was applied)`;

/** Exit codes of list and history, for --help. */
export const READ_EXIT_HELP = `
Exit codes: 0 done, 2 usage error, 5 unknown migration or the source could not be read.`;

const SOURCES_HELP = `
Sources: AWS with --table (and --controller for commands), credentials and region from the
standard AWS chain (environment, profile, SSO, instance role); or a rehearsal's state directory
with --state-dir. CUTOVER_TABLE and CUTOVER_CONTROLLER stand in for --table and --controller.`;

/** Adds the source flags and --json to a command. */
export function addSourceOptions(command: Command, options: { readonly controller: boolean }): Command {
  command
    .option('--table <name>', 'AWS: the migration table (default: $CUTOVER_TABLE)')
    .option('--region <name>', 'AWS: region (default: the standard AWS chain)');
  if (options.controller) command.option('--controller <function>', 'AWS: the controller function to invoke (default: $CUTOVER_CONTROLLER)');
  command
    .addOption(new Option('--state-dir <dir>', "a rehearsal's state directory (instead of AWS)"))
    .option('--json', 'print JSON on stdout (nothing else)')
    .addHelpText('after', SOURCES_HELP);
  return command;
}

/**
 * Opens the source the flags name. Both sources are imported statically: a lazy import() of a
 * TypeScript module fails under the require hook that runs the CLI in a checkout (node
 * bin/cutover.js), and loading the two SDK clients costs about 0.2 s.
 */
export async function openSource(flags: SourceFlags, io: OpsIo, needs: 'read' | 'command'): Promise<MigrationSource> {
  const env = io.env ?? process.env;
  const stateDir = flags.stateDir?.trim();
  if (stateDir !== undefined) {
    if (stateDir === '') throw new OpsError('--state-dir needs a directory', EXIT.usage, 'usage');
    if (flags.table !== undefined || flags.controller !== undefined || flags.region !== undefined) {
      throw new OpsError('--state-dir reads a rehearsal; --table, --controller and --region name AWS: give one source', EXIT.usage, 'usage');
    }
    return new LocalMigrationSource({ stateDir });
  }
  const tableName = nonEmpty(flags.table) ?? nonEmpty(env.CUTOVER_TABLE);
  const controllerFunctionName = nonEmpty(flags.controller) ?? nonEmpty(env.CUTOVER_CONTROLLER);
  if (needs === 'read' && !tableName) {
    throw new OpsError('name a source: --table <name> (or CUTOVER_TABLE) for AWS, or --state-dir <dir> for a rehearsal', EXIT.usage, 'usage');
  }
  if (needs === 'command' && !controllerFunctionName) {
    throw new OpsError(
      'name a source: --controller <function> (or CUTOVER_CONTROLLER, with --table to check the migration first) for AWS, or --state-dir <dir> for a running rehearsal',
      EXIT.usage,
      'usage',
    );
  }
  const region = nonEmpty(flags.region);
  return new AwsMigrationSource({
    ...(tableName ? { tableName } : {}),
    ...(controllerFunctionName ? { controllerFunctionName } : {}),
    clientOptions: region ? { region } : {},
  });
}

/**
 * Runs a command body against the source the flags name and returns its exit code: errors become
 * one line on stderr (and, with --json, `{"error": {...}}` on stdout) with their exit code.
 */
export async function withSource(
  name: string,
  flags: SourceFlags,
  io: OpsIo,
  needs: 'read' | 'command',
  body: (source: MigrationSource) => Promise<number>,
): Promise<number> {
  let source: MigrationSource | undefined;
  try {
    source = await openSource(flags, io, needs);
    return await body(source);
  } catch (error) {
    if (!(error instanceof OpsError)) throw error;
    return fail(name, flags, io, error.message, error.exitCode, error.code);
  } finally {
    source?.close();
  }
}

/** One error line on stderr (and the error as JSON on stdout with --json); returns the exit code. */
export function fail(name: string, flags: SourceFlags, io: OpsIo, message: string, exitCode: number, code: string): number {
  io.stderr(`cutover ${name}: ${message}\n`);
  if (flags.json) printJson(io, { error: { code, message, exitCode } });
  return exitCode;
}

export function printJson(io: OpsIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

export function colors(flags: SourceFlags, io: OpsIo): ReturnType<typeof pc.createColors> {
  return pc.createColors(!flags.json && (io.color ?? pc.isColorSupported));
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

// ---------------------------------------------------------------------------------------------
// Text helpers shared by the human outputs
// ---------------------------------------------------------------------------------------------

const BAR_WIDTH = 30;

export function weightBar(weight: number, c: ReturnType<typeof pc.createColors>, width = BAR_WIDTH): string {
  const filled = Math.max(0, Math.min(width, Math.round((weight / 100) * width)));
  return c.green('█'.repeat(filled)) + c.dim('░'.repeat(width - filled));
}

export function colourStatus(status: string, c: ReturnType<typeof pc.createColors>): string {
  switch (status) {
    case 'rolled-back':
    case 'damaged':
      return c.red(status);
    case 'paused':
      return c.yellow(status);
    case 'complete':
    case 'promoted':
    case 'torn-down':
      return c.green(status);
    default:
      return c.cyan(status);
  }
}

/** `12s ago`, `3m ago`, `2h ago`. */
export function ago(atMs: number | undefined, now: number): string {
  if (atMs === undefined) return '-';
  const s = Math.max(0, Math.round((now - atMs) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** `2024-05-01 12:03:04Z` (UTC). */
export function clock(atMs: number): string {
  return `${new Date(atMs).toISOString().replace('T', ' ').slice(0, 19)}Z`;
}

/** `step 2/4`, or `before step 1` before the first shift. */
export function stepText(step: number | undefined, steps: number | undefined): string {
  if (step === undefined) return '-';
  if (step < 0) return `before step 1${steps !== undefined ? `/${steps}` : ''}`;
  return `step ${step + 1}${steps !== undefined ? `/${steps}` : ''}`;
}
