/**
 * The dashboard's views as one self-contained HTML file (`cutover rehearse --report report.html`):
 * the page's style, uPlot and the page's modules inlined, the migrations' views embedded as JSON.
 * It opens from a CI artifact or an incident review's attachment with no server and no network:
 * its Content-Security-Policy allows inline code only (`default-src 'none'`), so it cannot fetch
 * anything either.
 *
 * The page's ES modules are joined into one classic script: their `import` lines are dropped and
 * their `export` keywords removed (the modules share no top-level names; a test checks the joined
 * script runs, in a browser).
 */
import { writeFileSync } from 'node:fs';
import type { MigrationSource } from '../ops/types';
import { assetText } from './assets';
import { buildMigrationView, type MigrationView } from './view';

/** The page's modules in dependency order. */
const MODULES = ['render.js', 'charts.js', 'app.js'] as const;

const REPORT_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

export interface ReportData {
  readonly generatedAtMs: number;
  readonly views: readonly MigrationView[];
}

/** The views of the given migrations (every one the source lists when none is named). */
export async function collectViews(source: MigrationSource, ids?: readonly string[], now: () => number = Date.now): Promise<MigrationView[]> {
  const wanted = ids ?? (await source.list()).map((m) => m.id);
  const views: MigrationView[] = [];
  for (const id of wanted) {
    const state = await source.status(id);
    views.push(buildMigrationView(state, await source.history(state.id), now()));
  }
  return views;
}

/** The report as one HTML document. */
export function renderReport(data: ReportData): string {
  const first = data.views[0]?.state;
  const title = first ? `${first.status} · ${first.id} · Cutover report` : 'Cutover report';
  const script = MODULES.map((name) => joinable(assetText(name), name)).join('\n');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">`,
    '<meta name="cutover-read-only" content="true">',
    `<title>${escapeHtml(title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${inlineSafe(assetText('uPlot.min.css'), 'style')}\n${inlineSafe(assetText('app.css'), 'style')}</style>`,
    '</head>',
    '<body>',
    '<header class="top"><span class="brand">Cutover</span><span class="where" id="where">report</span><span id="conn" class="conn"></span></header>',
    '<main id="main"></main>',
    // JSON in a data block: `<` is escaped so that no value can close the element.
    `<script type="application/json" id="cutover-report">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>`,
    `<script>${inlineSafe(assetText('uPlot.iife.min.js'), 'script')}</script>`,
    `<script>(() => {\n${inlineSafe(script, 'script')}\n})();</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** Writes the report of the given migrations (all the source holds when none is named) to `path`. */
export async function writeReport(path: string, source: MigrationSource, ids?: readonly string[], now: () => number = Date.now): Promise<{ bytes: number; migrations: number }> {
  const views = await collectViews(source, ids, now);
  const html = renderReport({ generatedAtMs: now(), views });
  writeFileSync(path, html);
  return { bytes: Buffer.byteLength(html), migrations: views.length };
}

/** A module's text as part of one classic script. */
function joinable(text: string, name: string): string {
  const body = text.replace(/^import [^;]+;$/gm, '').replace(/^export \{[^}]*\};?$/gm, '').replace(/^export (?=(async )?function|const|let|class)/gm, '');
  if (/^\s*(import|export)\b/m.test(body)) throw new Error(`dashboard asset ${name} has an import or export the report cannot join; keep them on one line each`);
  return `// ${name}\n${body}`;
}

/** Text that cannot end its inline element early. */
function inlineSafe(text: string, element: 'script' | 'style'): string {
  return text.replace(new RegExp(`</${element}`, 'gi'), `<\\/${element}`);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
