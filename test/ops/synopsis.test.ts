/**
 * README's CLI synopsis against the CLI itself: the block under "The CLI" is what `synopsis`
 * renders from the commands' definitions (every argument and option `cutover <command> --help`
 * lists, in its order), and the real `cutover --help` lists the same commands.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerCommands } from '../../bin/commands/register';
import { synopsis } from '../../bin/commands/synopsis';

const ROOT = join(__dirname, '..', '..');

function readmeSynopsis(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /^## The CLI\n\n```sh\n([\s\S]*?)```$/m.exec(readme);
  if (!block) throw new Error('README.md has no ```sh block right under "## The CLI"');
  return block[1]!.trimEnd().split('\n');
}

function helpOf(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'bin', 'cli.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(out);
      else reject(new Error(`cutover ${args.join(' ')} exited ${code}`));
    });
  });
}

describe('README CLI synopsis', () => {
  it("should be exactly the commands' synopsis, one per command", () => {
    const lines = synopsis(registerCommands(new Command('cutover')));
    expect(readmeSynopsis()).toEqual(lines);
    const commands = lines.filter((l) => l.startsWith('cutover ')).map((l) => l.split(' ')[1]);
    expect(commands).toEqual(['rehearse', 'probe', 'list', 'status', 'watch', 'history', 'pause', 'resume', 'abort', 'promote', 'teardown', 'dashboard', '--version', 'help']);
    // Every line fits the width, and what rehearse really has is there.
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
    expect(lines.join('\n')).toMatch(/\[--state-dir <dir>\]/);
    expect(lines.join('\n')).toMatch(/\[--max-watch <duration>\]/);
  });

  it('should list the commands the real `cutover --help` lists, in its order', async () => {
    const help = await helpOf(['--help']);
    const listed = [...help.split('Commands:\n')[1]!.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
    const registered = registerCommands(new Command('cutover')).commands.map((c) => c.name());
    expect(listed).toEqual([...registered, 'help']);
  }, 40_000);

  it('should render arguments, bracket optional flags, wrap under the first one and show a needed flag bare', () => {
    const program = new Command('tool');
    program.command('go').argument('<target>').argument('[more...]').option('--fast').addOption(new Option('-w, --width <n>', 'w')).option('--a-rather-long-flag <value>');
    program.command('promote').argument('<migration>').option('--full').option('--reason <text>');
    expect(synopsis(program, 40)).toEqual([
      'tool go <target> [more...] [--fast]',
      '                           [--width <n>]',
      '                           [--a-rather-long-flag <value>]',
      'tool promote <migration> --full',
      '                         [--reason <text>]',
      'tool --version',
      'tool help [command]',
    ]);
  });
});
