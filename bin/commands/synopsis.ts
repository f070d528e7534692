/**
 * A one-line synopsis of every `cutover` command, generated from the commands' own definitions:
 * the arguments and options `cutover <command> --help` lists, in its order and spelling. README's
 * "The CLI" block is this synopsis of `registerCommands` (register.ts), and a test keeps the two
 * equal, so that the documentation cannot drift from the flags the CLI really has.
 */
import type { Argument, Command, Option } from 'commander';

/**
 * Options a command refuses to run without, shown without brackets. `promote` checks `--full`
 * itself (its own message and exit code 2) rather than through commander's mandatory options,
 * so commander does not know it is needed.
 */
const NEEDED: Readonly<Record<string, readonly string[]>> = { promote: ['--full'] };

/** Default width of the synopsis; longer lines wrap under the command's first option. */
export const SYNOPSIS_WIDTH = 100;

/**
 * `cutover <command> <arguments> [--option <value>] …` for every command of `program`, wrapped at
 * `width` columns, then `cutover --version` and `cutover help [command]`.
 */
export function synopsis(program: Command, width = SYNOPSIS_WIDTH): string[] {
  const lines: string[] = [];
  for (const command of program.commands) {
    const name = command.name();
    if (name === 'help') continue;
    const head = [program.name(), name, ...command.registeredArguments.map(argumentText)].join(' ');
    const options = command.options.filter((o) => !o.hidden).map((o) => optionText(o, NEEDED[name] ?? []));
    lines.push(...wrap(head, options, width));
  }
  lines.push(`${program.name()} --version`, `${program.name()} help [command]`);
  return lines;
}

function argumentText(argument: Argument): string {
  const name = `${argument.name()}${argument.variadic ? '...' : ''}`;
  return argument.required ? `<${name}>` : `[${name}]`;
}

function optionText(option: Option, needed: readonly string[]): string {
  // The long form alone ("--json", not "-j, --json"), with its value as --help names it.
  const flags = option.long !== undefined ? option.flags.replace(/^-\w,\s*/, '') : option.flags;
  return needed.includes(option.long ?? '') ? flags : `[${flags}]`;
}

/** `head` and then the parts, each line at most `width` wide, continuation lines under the first part. */
function wrap(head: string, parts: readonly string[], width: number): string[] {
  const indent = ' '.repeat(head.length);
  const lines: string[] = [];
  let line = head;
  for (const part of parts) {
    // A part always follows the head on the first line, however long (nothing to wrap under yet).
    if (line !== head && line.length + 1 + part.length > width) {
      lines.push(line);
      line = indent;
    }
    line = `${line} ${part}`;
  }
  lines.push(line);
  return lines;
}
