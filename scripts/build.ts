/**
 * `npm run build` (and `prepack`): the published package's dist/.
 *
 * 1. `tsc -p tsconfig.build.json --noCheck`: CommonJS JavaScript and `.d.ts` for the CLI and the
 *    construct library. `--noCheck` because type-checking is `npm test`'s job (`tsc --noEmit`
 *    over the whole repository, tests included); the build only emits.
 * 2. Each Lambda handler bundled with esbuild (scripts/build-handlers.ts), so that an installed
 *    package loads them with `Code.fromAsset` and the user's synth never bundles.
 *
 * dist/ is removed first: a file whose source was deleted must not linger in the package. Progress
 * goes to stderr, so that `npm pack --json` (which runs this as `prepack`) keeps stdout JSON only.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { buildHandlers, formatBytes } from './build-handlers';

const ROOT = path.resolve(__dirname, '..');

/** Step 1 alone: `tsc -p tsconfig.build.json --noCheck` into dist/ (also used by scripts/api-docs.ts). */
export function compile(root: string): void {
  // typescript's `exports` hide bin/tsc from require.resolve; its package.json is exported.
  const tscBin = path.join(path.dirname(require.resolve('typescript/package.json', { paths: [root] })), 'bin', 'tsc');
  const tsc = spawnSync(process.execPath, [tscBin, '-p', 'tsconfig.build.json', '--noCheck'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) {
    throw new Error(`tsc -p tsconfig.build.json failed (exit ${tsc.status ?? tsc.signal}); npx tsc --noEmit shows the errors`);
  }
}

function main(): void {
  const started = performance.now();
  rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
  compile(ROOT);
  for (const { name, bytes, mapBytes } of buildHandlers(ROOT)) {
    process.stderr.write(`build: dist/handlers/${name}/index.js ${formatBytes(bytes)} (source map ${formatBytes(mapBytes)})\n`);
  }
  process.stderr.write(`build: dist/ written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

if (require.main === module) main();
