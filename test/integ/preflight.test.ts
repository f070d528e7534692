/**
 * `npm run integ` without credentials or in CI: exactly one line on stdout, exit 0, nothing
 * deployed. The end-to-end cases run integ/run.ts in a child process whose environment has no
 * credentials at all (no AWS variables, empty shared config files, the instance role lookup off),
 * so they never read this machine's own credentials; the rest drive `preflight` with fake chains.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inCi, preflight, type ChainResolvers } from '../../integ/preflight';

const ROOT = resolve(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const RUN = join(ROOT, 'integ', 'run.ts');
const home = mkdtempSync(join(tmpdir(), 'integ-home-'));
writeFileSync(join(home, 'empty'), '');
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** The parent's environment without anything AWS or CI, plus `extra`, with empty shared files. */
function hermeticEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(AWS_|CI$|CUTOVER_INTEG|CDK_|ECS_CONTAINER_METADATA)/.test(key)) continue;
    env[key] = value;
  }
  return {
    ...env,
    HOME: home,
    AWS_CONFIG_FILE: join(home, 'empty'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'empty'),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

function run(extra: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(TSX, [RUN], { cwd: ROOT, env: hermeticEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('npm run integ, end to end without AWS', () => {
  it('without credentials: one line saying so and how to provide them, exit 0', async () => {
    const { code, stdout, stderr } = await run({ AWS_REGION: 'eu-west-1' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^npm run integ: no AWS credentials found \(.*AWS_PROFILE.*AWS_ACCESS_KEY_ID.*\); skipped\.$/);
  });

  it('in CI without the opt-in: one line naming the opt-in, exit 0, before any credential lookup', async () => {
    // Credentials that look real: the skip must come first anyway.
    const { code, stdout, stderr } = await run({ CI: 'true', AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x', AWS_REGION: 'eu-west-1' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^npm run integ: skipped in CI \(.*CUTOVER_INTEG=1.*\)\.\n$/);
  });

  it('in CI with CUTOVER_INTEG=1 it goes on to the credential check', async () => {
    const { code, stdout } = await run({ CI: 'true', CUTOVER_INTEG: '1', AWS_REGION: 'eu-west-1' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^npm run integ: no AWS credentials found .*skipped\.\n$/);
  });
});

describe('preflight', () => {
  const chains = (over: Partial<ChainResolvers>): ChainResolvers => ({
    credentials: async () => ({ accessKeyId: 'AKIAEXAMPLE' }),
    region: async () => 'eu-west-1',
    ...over,
  });

  it('runs with credentials and a region', async () => {
    expect(await preflight({ env: {}, resolvers: chains({}) })).toEqual({ run: true, region: 'eu-west-1' });
  });

  it('a credential chain that never answers is bounded, and counts as no credentials', async () => {
    const started = Date.now();
    const decided = await preflight({ env: {}, resolvers: chains({ credentials: () => new Promise(() => {}) }), timeoutMs: 50 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(decided).toMatchObject({ run: false, exitCode: 0, line: expect.stringMatching(/no AWS credentials found/) });
  });

  it('credentials without a region: one line, exit 2 (somebody meant to run it)', async () => {
    const decided = await preflight({ env: {}, resolvers: chains({ region: async () => Promise.reject(new Error('Region is missing')) }) });
    expect(decided).toMatchObject({ run: false, exitCode: 2, line: expect.stringMatching(/no region \(set AWS_REGION/) });
  });

  it('CI: set to anything but empty, false or 0', () => {
    expect(inCi({ CI: 'true' })).toBe(true);
    expect(inCi({ CI: '1' })).toBe(true);
    expect(inCi({ CI: 'false' })).toBe(false);
    expect(inCi({ CI: '' })).toBe(false);
    expect(inCi({})).toBe(false);
  });

  it('CI with the opt-in other than "1" still skips', async () => {
    const decided = await preflight({ env: { CI: 'true', CUTOVER_INTEG: 'yes' }, resolvers: chains({}) });
    expect(decided).toMatchObject({ run: false, exitCode: 0 });
  });
});
