/**
 * The dashboard's web assets, shipped as they are: no build step on the user's machine.
 *
 * - `dashboard/web/` (shipped as it is: package.json's `files` lists it): the page, its ES modules
 *   and its style sheet, written by hand. Plain modules and CSS keep the page small
 *   (a few kB) and let it run with a strict Content-Security-Policy (`default-src 'self'`).
 * - uPlot's prebuilt file from its npm package (a runtime dependency): a canvas time-series chart
 *   of ~50 kB minified, fast with thousands of points, MIT, kept up to date upstream, and with no
 *   dependencies of its own. Chart.js or ECharts would each weigh several times that for the
 *   four line/step charts the page needs.
 *
 * Every asset is read once and kept gzipped as well, so that a first load transfers little.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';

export interface Asset {
  readonly name: string;
  readonly type: string;
  readonly body: Buffer;
  readonly gzipped: Buffer;
}

/** The page's files by the name they are served under (`/assets/<name>`), and where they come from. */
const FILES: readonly { readonly name: string; readonly type: string; readonly from: () => string }[] = [
  { name: 'app.js', type: 'text/javascript; charset=utf-8', from: () => webFile('app.js') },
  { name: 'charts.js', type: 'text/javascript; charset=utf-8', from: () => webFile('charts.js') },
  { name: 'render.js', type: 'text/javascript; charset=utf-8', from: () => webFile('render.js') },
  { name: 'app.css', type: 'text/css; charset=utf-8', from: () => webFile('app.css') },
  { name: 'uPlot.iife.min.js', type: 'text/javascript; charset=utf-8', from: () => require.resolve('uplot/dist/uPlot.iife.min.js') },
  { name: 'uPlot.min.css', type: 'text/css; charset=utf-8', from: () => require.resolve('uplot/dist/uPlot.min.css') },
];

/** The page's HTML shell (the same for the list and a migration: the page routes itself). */
export const INDEX_FILE = 'index.html';

let cache: Map<string, Asset> | undefined;

/** All assets, read on first use. Throws, naming the missing file, when the package is incomplete. */
export function loadAssets(): Map<string, Asset> {
  if (cache) return cache;
  const assets = new Map<string, Asset>();
  for (const file of [...FILES, { name: INDEX_FILE, type: 'text/html; charset=utf-8', from: () => webFile(INDEX_FILE) }]) {
    const where = file.from();
    let body: Buffer;
    try {
      body = readFileSync(where);
    } catch (error) {
      throw new Error(`the dashboard's asset ${file.name} is missing (${where}): reinstall the package, or run npm run build in a checkout`, { cause: error });
    }
    assets.set(file.name, { name: file.name, type: file.type, body, gzipped: gzipSync(body, { level: 9 }) });
  }
  cache = assets;
  return assets;
}

/** The text of one asset (for the self-contained report). */
export function assetText(name: string): string {
  const asset = loadAssets().get(name);
  if (!asset) throw new Error(`no dashboard asset named ${name}`);
  return asset.body.toString('utf8');
}

/** In a checkout this file is dashboard/assets.ts; installed, it runs as dist/dashboard/assets.js. */
const WEB_DIRS = [path.join(__dirname, 'web'), path.join(__dirname, '..', '..', 'dashboard', 'web')];

function webFile(name: string): string {
  const dir = WEB_DIRS.find((candidate) => existsSync(path.join(candidate, INDEX_FILE))) ?? WEB_DIRS[0]!;
  return path.join(dir, name);
}
