/**
 * The self-contained report file: everything inlined, nothing fetched, the data kept as data
 * (markup in probe findings cannot close its element), and the joined page script valid.
 */
import { Script } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { collectViews, renderReport } from '../../dashboard/report';
import { LocalMigrationSource } from '../../ops/local-source';
import { tempDir } from '../ops/helpers';
import { T0, writeJudgedMigration } from './helpers';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function report(): Promise<{ html: string; views: Awaited<ReturnType<typeof collectViews>> }> {
  const { dir, remove } = tempDir('cutover-report-');
  cleanups.push(remove);
  await writeJudgedMigration(dir, 'rehearsal-a', { rolledBack: true });
  await writeJudgedMigration(dir, 'rehearsal-b');
  const source = new LocalMigrationSource({ stateDir: dir });
  const views = await collectViews(source, undefined, () => T0 + 10_000);
  return { html: renderReport({ generatedAtMs: T0 + 10_000, views }), views };
}

describe('report file', () => {
  it('should inline every asset and load nothing from anywhere', async () => {
    const { html } = await report();
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">/);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)="(?!data:)/i);
    expect(html).not.toMatch(/\burl\(\s*['"]?https?:/i);
    expect(html.match(/<script\b/g)).toHaveLength(3);
    expect(html).toContain('<title>rolled-back · rehearsal-a · Cutover report</title>');
  });

  it('should carry the views as data: markup in probe findings stays text inside its element', async () => {
    const { html, views } = await report();
    expect(html).not.toContain('<script>alert(1)</script>');
    const block = /<script type="application\/json" id="cutover-report">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const data = JSON.parse(block) as { generatedAtMs: number; views: unknown[] };
    expect(data).toEqual({ generatedAtMs: T0 + 10_000, views: JSON.parse(JSON.stringify(views)) });
    expect(JSON.stringify(data)).toContain('<script>alert(1)</script>');
  });

  it('should join the page modules into one script that compiles (no import or export left)', async () => {
    const { html } = await report();
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(2);
    for (const text of scripts) expect(() => new Script(text)).not.toThrow();
    expect(scripts[1]).not.toMatch(/^\s*(import|export)\b/m);
    expect(scripts[1]).toContain('// app.js');
  });
});
