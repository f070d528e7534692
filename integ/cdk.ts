/**
 * The integration test's deploys, through the repository's own `aws-cdk` CLI (`npx cdk`), with the
 * integration app (integ/app.ts: the demo stack plus a notification recorder) under a stack name of
 * its own. Outputs come back through `--outputs-file`, so no CloudFormation client is needed.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** What the scenario needs of a deployer (a fake one in tests). */
export interface CdkRunner {
  /** The stack under test. */
  readonly stackName: string;
  /** Deploys the stack with these context values; returns its outputs. */
  deploy(context: Readonly<Record<string, string>>): Promise<Readonly<Record<string, string>>>;
  /** Deletes the stack (succeeds when it does not exist). */
  destroy(): Promise<void>;
  /** The command that deletes the stack by hand, for messages when the test cannot. */
  readonly manualDestroy: string;
}

/** The integration app, relative to the repository root. */
export const INTEG_APP = 'npx tsx integ/app.ts';

export interface CdkCliOptions {
  readonly stackName: string;
  /** The repository root (where cdk.json and node_modules are). */
  readonly cwd: string;
  /** A directory of the run's own for `cdk.out` and the outputs file. */
  readonly workDir: string;
  /** Context passed to every deploy and to the destroy (e.g. the API Gateway logging switch). */
  readonly context?: Readonly<Record<string, string>>;
  /**
   * Runs one command; resolves with its exit code. The default spawns `npx` in a process group of
   * its own (`detached`), so a Ctrl-C in the terminal reaches only the test, which then lets a
   * deploy in progress finish before it destroys the stack (CloudFormation refuses to delete a
   * stack in the middle of an update).
   */
  readonly exec?: (command: string, args: readonly string[], cwd: string) => Promise<number>;
}

export class CdkCli implements CdkRunner {
  readonly stackName: string;
  readonly manualDestroy: string;
  private readonly exec: (command: string, args: readonly string[], cwd: string) => Promise<number>;

  constructor(private readonly options: CdkCliOptions) {
    if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(options.stackName)) {
      throw new TypeError(`stack name must start with a letter and hold only letters, digits and hyphens (at most 128), got ${JSON.stringify(options.stackName)}`);
    }
    this.stackName = options.stackName;
    this.exec = options.exec ?? spawnInOwnGroup;
    this.manualDestroy = `npx cdk destroy ${this.stackName} --force --app "${INTEG_APP}" -c cutover:stackName=${this.stackName}`;
  }

  async deploy(context: Readonly<Record<string, string>>): Promise<Readonly<Record<string, string>>> {
    const outputsFile = path.join(this.options.workDir, 'outputs.json');
    await this.cdk(['deploy', this.stackName, '--require-approval', 'never', '--outputs-file', outputsFile, ...this.contextArgs(context)]);
    const all = JSON.parse(await readFile(outputsFile, 'utf8')) as Record<string, Record<string, string>>;
    const outputs = all[this.stackName];
    if (!outputs) throw new Error(`cdk deploy wrote no outputs for ${this.stackName} to ${outputsFile} (found stacks: ${Object.keys(all).join(', ') || 'none'})`);
    return outputs;
  }

  async destroy(): Promise<void> {
    await this.cdk(['destroy', this.stackName, '--force', ...this.contextArgs({})]);
  }

  private contextArgs(context: Readonly<Record<string, string>>): string[] {
    const all = { ...this.options.context, ...context, 'cutover:stackName': this.stackName };
    return Object.entries(all).flatMap(([key, value]) => ['-c', `${key}=${value}`]);
  }

  private async cdk(args: readonly string[]): Promise<void> {
    const full = ['--no-install', 'cdk', ...args, '--app', INTEG_APP, '--output', path.join(this.options.workDir, 'cdk.out')];
    const code = await this.exec('npx', full, this.options.cwd);
    if (code !== 0) throw new Error(`npx cdk ${args[0]} ${this.stackName} exited with ${code}`);
  }
}

function spawnInOwnGroup(command: string, args: readonly string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd, stdio: ['ignore', 'inherit', 'inherit'], detached: true, env: process.env });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
