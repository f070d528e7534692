/**
 * Sections 1 and 2 of the controller benchmark (bench/controller.ts): each Lambda bundled as
 * NodejsFunction bundles it (esbuild, `@aws-sdk/*` left to the runtime, minified, CommonJS, node22)
 * with its size against the target, and each handler module's cold init in a fresh `node` process.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { kb, median, ms } from './controller-common';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '..');

export const HANDLERS = [
  { name: 'controller', entry: 'lambda/handlers/controller.ts' },
  { name: 'probe', entry: 'lambda/handlers/probe.ts' },
  { name: 'deploy-trigger', entry: 'lambda/handlers/deploy-trigger.ts' },
  { name: 'demo api', entry: 'lambda/demo/api.ts' },
  // The per-family controller entries read only the stack's variables at load (each migration's
  // settings come from the registry), so they load with INIT_ENV like the generic one.
  { name: 'controller, alias kit', entry: 'lambda/handlers/controller-lambda-alias.ts' },
  { name: 'controller, fleet kit', entry: 'lambda/handlers/controller-fleet.ts' },
] as const;
/** Bundles whose size is reported but whose cold init is not measured: the completion wait (a custom resource run once per deploy). */
const SIZE_ONLY_HANDLERS = [
  { name: 'completion-wait', entry: 'lambda/handlers/completion-wait.ts' },
] as const;
const BUNDLE_TARGET_BYTES = 150_000;

/** Environment that lets each bundle load (values are placeholders; nothing is called at load). */
export const INIT_ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  CUTOVER_TABLE_NAME: 'bench-table',
  CUTOVER_FUNCTION_NAME: 'api',
  CUTOVER_ALIAS_NAME: 'live',
  CUTOVER_PLAN: JSON.stringify({ steps: [{ weight: 10, bakeMs: 300000 }, { weight: 100, bakeMs: 300000 }], soakMs: 600000, healthWindowMs: 60000, teardown: 'manual' }),
  CUTOVER_JUDGE: '{}',
  CUTOVER_ALARM_NAMES: '["api-errors"]',
  CUTOVER_PINNED_CAPACITY: '5',
  CUTOVER_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cutover',
  CUTOVER_EVENT_BUS_NAME: 'cutover',
  CUTOVER_APP_METRICS_NAMESPACE: 'App',
  CUTOVER_CONTROLLER_FUNCTION_NAME: 'cutover-controller',
  // The shared deploy trigger's controllers, one per target family (read at its load).
  CUTOVER_CONTROLLERS: JSON.stringify({ 'lambda-alias': { functionName: 'cutover-controller-lambda-alias', schedule: 'cutover-tick-lambda-alias' } }),
  CUTOVER_PROBE_TARGETS: '[{"side":"new","url":"https://new.example.com/"}]',
  CUTOVER_PROBE_FUNCTION_NAME: 'cutover-probe',
  CUTOVER_MIGRATION_KEY: 'api:live',
  AWS_LAMBDA_FUNCTION_NAME: 'api',
  AWS_LAMBDA_FUNCTION_VERSION: '1',
};

// ---------------------------------------------------------------------------------------------
// 1. Bundle sizes
// ---------------------------------------------------------------------------------------------

export async function bundleAll(dir: string): Promise<{ name: string; file: string; bytes: number }[]> {
  console.log('\n1. Bundle size (esbuild, minified, cjs, node22, @aws-sdk/* external; target ≤ 150 KB)');
  const out: { name: string; file: string; bytes: number }[] = [];
  for (const handler of [...HANDLERS, ...SIZE_ONLY_HANDLERS]) {
    const file = join(dir, `${handler.name.replace(/\W+/g, '-')}.js`);
    const result = await build({
      entryPoints: [join(ROOT, handler.entry)],
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      minify: true,
      external: ['@aws-sdk/*'],
      outfile: file,
      metafile: true,
      logLevel: 'silent',
    });
    const output = Object.values(result.metafile.outputs)[0]!;
    const top = Object.entries(output.inputs)
      .map(([path, v]) => ({ path: path.replace(/^.*node_modules\//, ''), bytes: v.bytesInOutput }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 3)
      .map((i) => `${i.path.split('/').slice(0, 3).join('/')} ${kb(i.bytes)}`)
      .join(', ');
    const ok = output.bytes <= BUNDLE_TARGET_BYTES ? 'ok' : 'OVER TARGET';
    console.log(`   ${handler.name.padEnd(21)} ${kb(output.bytes).padStart(9)}  ${ok}   largest: ${top}`);
    if (HANDLERS.some((h) => h.name === handler.name)) out.push({ name: handler.name, file, bytes: output.bytes });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. Cold init
// ---------------------------------------------------------------------------------------------

export async function coldInit(bundles: { name: string; file: string }[], runs: number): Promise<void> {
  console.log(`\n2. Cold init of each bundled handler module in a fresh node ${process.version} process (median of ${runs}; the SDK from node_modules)`);
  const script =
    'const t=process.hrtime.bigint();require(process.argv[1]);const d=Number(process.hrtime.bigint()-t)/1e6;process.stdout.write(String(d))';
  for (const bundle of bundles) {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const { stdout } = await run(process.execPath, ['-e', script, bundle.file], {
        env: { ...INIT_ENV, PATH: process.env.PATH ?? '', NODE_PATH: join(ROOT, 'node_modules'), AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING: '1' },
        timeout: 30_000,
      }).catch((error: { stderr?: string }) => {
        // Node prints the minified line that threw: keep only the error's own lines.
        const lines = String(error.stderr ?? error).split('\n').filter((line) => line.length < 400);
        throw new Error(`the ${bundle.name} bundle failed to load with the bench's environment (INIT_ENV):\n${lines.slice(0, 12).join('\n')}`);
      });
      samples.push(Number(stdout));
    }
    samples.sort((a, b) => a - b);
    console.log(`   ${bundle.name.padEnd(21)} median ${ms(median(samples)).padStart(8)}   (min ${ms(samples[0]!)}, max ${ms(samples[samples.length - 1]!)})`);
  }
}
