/**
 * Prebuilds each of Cutover's Lambda handlers (lib/function-defaults.ts `CUTOVER_HANDLER_ENTRIES`)
 * to `dist/handlers/<name>/index.js` with its source map, with the esbuild settings the checkout's
 * `NodejsFunction` uses at synth (`HANDLER_BUNDLING`: Node 22, minified, source map, AWS SDK v3
 * left to the runtime). An installed package loads these with `Code.fromAsset`.
 */
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { CUTOVER_HANDLER_ENTRIES, HANDLER_BUNDLING, type CutoverHandlerName } from '../lib/function-defaults';

/** One prebuilt handler and its sizes in bytes. */
export interface BuiltHandler {
  readonly name: CutoverHandlerName;
  readonly bytes: number;
  readonly mapBytes: number;
}

export function buildHandlers(root: string): BuiltHandler[] {
  return (Object.keys(CUTOVER_HANDLER_ENTRIES) as CutoverHandlerName[]).map((name) => {
    const outfile = path.join(root, 'dist', 'handlers', name, 'index.js');
    buildSync({
      entryPoints: [path.join(root, 'lambda', CUTOVER_HANDLER_ENTRIES[name])],
      // Paths in the source map are relative to the root: the same bundle on every machine.
      absWorkingDir: root,
      outfile,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: HANDLER_BUNDLING.target,
      minify: HANDLER_BUNDLING.minify,
      sourcemap: HANDLER_BUNDLING.sourceMap,
      external: [...HANDLER_BUNDLING.externalModules],
      logLevel: 'warning',
    });
    return { name, bytes: statSync(outfile).size, mapBytes: statSync(`${outfile}.map`).size };
  });
}

export function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}
