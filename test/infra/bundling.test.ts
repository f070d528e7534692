/**
 * The one test that really bundles: runs `bin/app.ts` the way the CDK CLI does (a child process
 * with `CDK_OUTDIR` and `CDK_CONTEXT_JSON`), offline, with local esbuild, then checks every
 * function's bundle and loads it in Node to see that it exports `handler`.
 *
 * It runs only when all four handler entry files exist (they are written by the runtime side).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CDK_JSON_CONTEXT } from './fixtures';

const ROOT = path.resolve(__dirname, '..', '..');
const ENTRIES = ['lambda/handlers/controller.ts', 'lambda/handlers/probe.ts', 'lambda/handlers/deploy-trigger.ts', 'lambda/demo/api.ts'];
const entriesExist = ENTRIES.every((entry) => existsSync(path.join(ROOT, entry)));
const TSX_CLI = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const STACK = 'CutoverDemo';

/** A CloudFormation value with its tokens replaced by a placeholder, enough to start a handler. */
function placeholder(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as Record<string, unknown>)?.['Fn::Join'] as [string, unknown[]] | undefined;
  if (join) return join[1].map(placeholder).join(join[0]);
  return 'placeholder';
}

describe.skipIf(!entriesExist)('synth of bin/app.ts with real bundling, offline', () => {
  let outdir: string;
  let synth: SpawnSyncReturns<string>;
  let template: any;

  beforeAll(() => {
    outdir = mkdtempSync(path.join(os.tmpdir(), 'cutover-synth-'));
    synth = spawnSync(process.execPath, [TSX_CLI, 'bin/app.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
      env: {
        ...process.env,
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_JSON_CONTEXT, 'cutover:release': '7' }),
        // No account or region: synth must not need them.
        CDK_DEFAULT_ACCOUNT: '',
        CDK_DEFAULT_REGION: '',
      },
    });
    if (synth.status === 0) template = JSON.parse(readFileSync(path.join(outdir, `${STACK}.template.json`), 'utf8'));
  }, 300_000);

  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it('should synthesise the demo app without network or credentials', () => {
    expect(synth.error, String(synth.error)).toBeUndefined();
    expect(synth.status, synth.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
    expect(manifest.artifacts[STACK].environment).toBe('aws://unknown-account/unknown-region');
    expect(template.Resources).toBeDefined();
  });

  it('should bundle each handler with esbuild, leaving the AWS SDK to the runtime', () => {
    const functions = Object.entries(template.Resources as Record<string, any>).filter(
      ([, r]) => r.Type === 'AWS::Lambda::Function' && r.Properties.Runtime === 'nodejs22.x',
    );
    // The demo API and the stack's shared functions: its one controller (one target family), the
    // probe and the deploy trigger.
    expect(functions).toHaveLength(4);
    for (const [id, resource] of functions) {
      const asset = path.join(outdir, `asset.${resource.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
      const bundle = path.join(asset, 'index.js');
      expect(existsSync(bundle), `${id}: ${bundle}`).toBe(true);
      expect(existsSync(`${bundle}.map`), `${id} has a source map`).toBe(true);
      const code = readFileSync(bundle, 'utf8');
      expect(code, `${id} does not bundle Powertools as an external`).not.toMatch(/require\("@aws-lambda-powertools\//);
      if (resource.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'cutover-controller') {
        for (const client of ['client-lambda', 'client-cloudwatch', 'client-dynamodb', 'client-sns', 'client-eventbridge']) {
          expect(code, `${id} requires @aws-sdk/${client} from the runtime`).toContain(`require("@aws-sdk/${client}")`);
        }
      }

      // Load the bundle as Lambda would: its own environment (tokens replaced), the SDK resolvable
      // the way the runtime provides it.
      const env: Record<string, string> = {};
      for (const [name, value] of Object.entries(resource.Properties.Environment?.Variables ?? {})) env[name] = placeholder(value);
      const load = spawnSync(
        process.execPath,
        ['-e', 'const m = require(process.argv[1]); if (typeof m.handler !== "function") { console.error(Object.keys(m)); process.exit(3); }', bundle],
        {
          encoding: 'utf8',
          timeout: 60_000,
          env: { PATH: process.env.PATH, NODE_PATH: path.join(ROOT, 'node_modules'), AWS_REGION: 'eu-west-1', ...env },
        },
      );
      expect(load.status, `${id} loads and exports handler: ${load.stderr}`).toBe(0);
    }
  });

  it('should wire the release context into the demo function', () => {
    const demo = Object.values(template.Resources as Record<string, any>).find(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.CUTOVER_DEMO_RELEASE,
    );
    expect(demo.Properties.Environment.Variables.CUTOVER_DEMO_RELEASE).toBe('7');
  });
});
