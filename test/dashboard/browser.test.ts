/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core. A short real
 * rehearsal is followed live (the weight rises, the rollback appears with its reason, charts
 * drawn), the list page, the confirmation flow of an action, read-only mode, a phone's width and
 * dark mode, and the report file opened with no server. Screenshots go to $CUTOVER_SCREENSHOTS
 * (default: a new temporary folder, printed). Skipped, with one line, where Chromium is absent.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MigrationStatus } from '../../lambda/core/model';
import { buildRehearsalPlan } from '../../rehearsal/options';
import { runRehearsal } from '../../rehearsal/run';
import { findScenario } from '../../rehearsal/scenarios';
import { collectViews, renderReport } from '../../dashboard/report';
import { fakeEngine, tempDir, writeMigration } from '../ops/helpers';
import { startDashboard, writeJudgedMigration, type Running } from './helpers';

// The page's globals, as the callbacks run in the browser see them (this project compiles without the DOM library).
declare const window: any;
declare const document: any;
declare function getComputedStyle(element: unknown): { backgroundColor: string };
interface HTMLCanvasElement {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) console.log(`dashboard browser tests: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`);

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(!available)('dashboard in Chromium', () => {
  let browser: Browser;
  let shots: string;
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    // A fresh profile each run: launch() makes a temporary user-data-dir of its own.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    shots = process.env.CUTOVER_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'cutover-dashboard-shots-'));
    mkdirSync(shots, { recursive: true });
    console.log(`dashboard screenshots: ${shots}`);
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function page(options: { width?: number; dark?: boolean } = {}): Promise<{ page: Page; context: BrowserContext; errors: string[]; requests: string[] }> {
    const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: 900 }, colorScheme: options.dark ? 'dark' : 'light' });
    cleanups.push(() => context.close());
    const p = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    p.on('request', (r) => requests.push(r.url()));
    return { page: p, context, errors, requests };
  }

  async function dashboard(dir: string, options: Parameters<typeof startDashboard>[1] = {}): Promise<Running> {
    const running = await startDashboard(dir, options);
    cleanups.push(running.close);
    return running;
  }

  function stateDir(): string {
    const { dir, remove } = tempDir('cutover-dashboard-browser-');
    cleanups.push(remove);
    return dir;
  }

  /** Non-transparent pixels of a chart's canvas: drawn, not just present. */
  function inkOf(p: Page, chart: string): Promise<number> {
    return p.evaluate((id) => {
      const canvas = document.querySelector(`#chart-${id} canvas`) as HTMLCanvasElement | null;
      if (!canvas) return 0;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let ink = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) ink++;
      return ink;
    }, chart);
  }

  it('should follow a running rehearsal live: the weight rises, then the rollback appears with its reason', async () => {
    const dir = stateDir();
    const d = await dashboard(dir, { pollMs: 200 });
    let started = '';
    const run = runRehearsal({
      scenario: findScenario('error-spike')!,
      plan: buildRehearsalPlan('5@2s,25@2s,50@2s,100@2s', '1s', '1s'),
      stateDir: dir,
      keepState: true,
      onStarted: (id) => (started = id),
    });
    cleanups.push(() => run.catch(() => undefined));
    await expect.poll(() => started, { timeout: 5000 }).not.toBe('');
    const { page: p, errors, requests } = await page();
    const firstLoad: { bytes: number }[] = [];
    // Bytes on the wire (gzipped where the server gzips), headers included: the page weight.
    p.on('requestfinished', async (r) => {
      if (r.url().includes('/stream')) return;
      const sizes = await r.sizes();
      firstLoad.push({ bytes: sizes.responseBodySize + sizes.responseHeadersSize });
    });
    await p.goto(`${d.base}/migrations/${started}?token=${d.server.token}`);
    // The token leaves the address bar; the page keeps it for its actions.
    expect(new URL(p.url()).search).toBe('');
    await p.waitForFunction(() => window.cutoverDashboard.lastView?.state.weight > 0, null, { timeout: 15_000 });
    const rising = await p.locator('#weight').textContent();
    expect(Number.parseInt(rising!, 10)).toBeGreaterThan(0);
    const viewsBefore = await p.evaluate(() => window.cutoverDashboard.views);

    await p.waitForFunction(() => window.cutoverDashboard.lastView?.state.status === 'rolled-back', null, { timeout: 20_000 });
    const report = await run;
    expect(report.outcome).toBe('rolled-back');
    // Live: more views arrived over the same page load, over server-sent events (no reload).
    expect(await p.evaluate(() => window.cutoverDashboard.views)).toBeGreaterThan(viewsBefore);
    expect(requests.filter((u) => u.includes('/stream'))).toHaveLength(1);
    await expect.poll(() => p.locator('#summary .badge').textContent()).toBe('rolled-back');
    const reason = report.rollback!.reason;
    expect(await p.locator('#summary').textContent()).toContain(reason);
    expect(await p.locator('#decisions-body tr.t-rolled-back').first().textContent()).toContain(reason);
    // Every chart drawn, with its data: the weight (steps marked), both 5XX series, the evidence.
    for (const chart of ['weight', '5xx', '4xx', 'latency', 'evidence', 'capacity']) {
      expect(Number(await p.locator(`#chart-${chart}`).getAttribute('data-points')), chart).toBeGreaterThan(1);
      expect(await inkOf(p, chart), chart).toBeGreaterThan(500);
    }
    expect(await p.locator('#probe-strip circle.probe').count()).toBeGreaterThan(1);
    expect(await p.locator('#chart-5xx .u-legend').textContent()).toMatch(/new.*old/);
    const arrivals = await p.evaluate(() => window.cutoverDashboard.arrivals as { eventAtMs: number; receivedAtMs: number }[]);
    const latencies = arrivals.slice(1).map((a) => a.receivedAtMs - a.eventAtMs).sort((a, b) => a - b);
    const bytes = firstLoad.reduce((sum, r) => sum + r.bytes, 0);
    console.log(`dashboard: first load ${bytes} bytes in ${firstLoad.length} responses; decision → page latency median ${latencies[latencies.length >> 1]} ms, max ${latencies.at(-1)} ms over ${latencies.length} updates (poll 200 ms)`);
    // One read interval plus the run's own save and the page's drawing; generous for a loaded machine.
    expect(latencies.at(-1)).toBeLessThan(3000);
    expect(bytes).toBeLessThan(60_000);
    await p.screenshot({ path: join(shots, 'rolled-back.png'), fullPage: true });
    expect(errors).toEqual([]);

    // The same migration as a report file, opened with no server: charts drawn, nothing fetched.
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport({ generatedAtMs: Date.now(), views: await collectViews(d.source) }));
    const offline = await page({ dark: true });
    await offline.page.goto(`file://${file}`);
    await offline.page.waitForFunction(() => window.cutoverDashboard?.page === 'report');
    expect(await inkOf(offline.page, 'weight')).toBeGreaterThan(500);
    expect(await offline.page.locator('#summary .badge').textContent()).toBe('rolled-back');
    expect(offline.requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    await offline.page.screenshot({ path: join(shots, 'report-dark.png'), fullPage: true });
    expect(offline.errors).toEqual([]);
  }, 45_000);

  it('should show a healthy rehearsal rising step by step to 100 % with no rollback', async () => {
    const dir = stateDir();
    const d = await dashboard(dir, { pollMs: 200 });
    let started = '';
    const run = runRehearsal({
      scenario: findScenario('healthy')!,
      plan: buildRehearsalPlan('10@2s,50@2s,100@1s', '1s', '1s'),
      stateDir: dir,
      keepState: true,
      onStarted: (id) => (started = id),
    });
    cleanups.push(() => run.catch(() => undefined));
    await expect.poll(() => started, { timeout: 5000 }).not.toBe('');
    const { page: p, errors } = await page();
    await p.goto(`${d.base}/migrations/${started}`);
    await p.locator('#summary').waitFor();
    // Every weight the page saw, in order: it only rises, through the plan's steps.
    await p.evaluate(() => {
      const w = window as any;
      w.seenWeights = [];
      setInterval(() => {
        const weight = w.cutoverDashboard.lastView?.state.weight;
        if (weight !== undefined && w.seenWeights.at(-1) !== weight) w.seenWeights.push(weight);
      }, 50);
    });
    const report = await run;
    expect(report.outcome).toBe('promoted');
    await p.waitForFunction(() => ['torn-down', 'complete'].includes(window.cutoverDashboard.lastView?.state.status), null, { timeout: 5000 });
    const seen = (await p.evaluate(() => window.seenWeights)) as number[];
    expect(seen.at(-1)).toBe(100);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBeGreaterThanOrEqual(2);
    expect(await p.locator('#decisions-body tr.t-rolled-back').count()).toBe(0);
    expect(await inkOf(p, 'weight')).toBeGreaterThan(500);
    await p.screenshot({ path: join(shots, 'healthy.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 30_000);

  it('should list the migrations and open one from the list', async () => {
    const dir = stateDir();
    await writeJudgedMigration(dir, 'rehearsal-healthy');
    await writeJudgedMigration(dir, 'rehearsal-desync', { rolledBack: true });
    const d = await dashboard(dir);
    const { page: p, errors } = await page();
    await p.goto(`${d.base}/`);
    await p.locator('#list tbody tr').nth(1).waitFor();
    expect(await p.locator('#list tr[data-id="rehearsal-desync"] .badge').textContent()).toBe('rolled-back');
    expect(await p.locator('#list tr[data-id="rehearsal-healthy"] .badge').textContent()).toBe('baking');
    await p.screenshot({ path: join(shots, 'list.png'), fullPage: true });
    await p.locator('#list a', { hasText: 'rehearsal-desync' }).click();
    await p.waitForFunction(() => window.cutoverDashboard?.page === 'migration');
    await p.locator('#summary').waitFor();
    // The desync's findings, raw bytes included, shown as text (never as markup).
    expect(await p.locator('#probe-detail pre').textContent()).toContain('<script>alert(1)</script>');
    expect(await p.locator('#residual').textContent()).toContain('12 (at most)');
    // An unknown migration says so.
    await p.goto(`${d.base}/migrations/nope`);
    await expect.poll(() => p.locator('#error').textContent()).toContain('no migration "nope"');
    expect(errors.filter((e) => !e.includes('404'))).toEqual([]);
  });

  it('should ask before sending an action, send it with the token, and show the result live', async () => {
    const dir = stateDir();
    await writeMigration(dir, 'rehearsal-a', MigrationStatus.BAKING);
    const engine = fakeEngine(dir, 'rehearsal-a');
    cleanups.push(() => engine.stop());
    const d = await dashboard(dir);
    const { page: p, errors } = await page();
    await p.goto(`${d.base}/migrations/rehearsal-a?token=${d.server.token}`);
    await expect.poll(() => p.locator('#summary .badge').textContent()).toBe('baking');

    await p.locator('button[data-command="pause"]').click();
    await expect.poll(() => p.locator('#confirm').isVisible()).toBe(true);
    expect(await p.locator('#confirm-text').textContent()).toContain('rehearsal-a');
    await p.locator('#confirm-no').click();
    await expect.poll(() => p.locator('#confirm').isVisible()).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(engine.taken).toEqual([]);

    await p.locator('button[data-command="pause"]').click();
    await p.locator('#confirm-reason').fill('checking a customer report');
    await p.screenshot({ path: join(shots, 'confirm.png') });
    await p.locator('#confirm-yes').click();
    await expect.poll(() => p.locator('#action-result').textContent(), { timeout: 5000 }).toContain('pause applied');
    await expect.poll(() => p.locator('#summary .badge').textContent(), { timeout: 5000 }).toBe('paused');
    expect(await p.locator('#decisions-body tr').first().textContent()).toContain('checking a customer report');
    expect(errors).toEqual([]);
  });

  it('should grey the actions when read-only, and the server should refuse them too', async () => {
    const dir = stateDir();
    await writeJudgedMigration(dir, 'rehearsal-a');
    const d = await dashboard(dir, { readOnly: true });
    const { page: p } = await page({ width: 390, dark: true });
    await p.goto(`${d.base}/migrations/rehearsal-a?token=${d.server.token}`);
    await p.locator('#summary').waitFor();
    expect(await p.locator('#read-only').isVisible()).toBe(true);
    for (const button of await p.locator('#actions button[data-command]').all()) expect(await button.isDisabled()).toBe(true);
    const status = await p.evaluate(async (token) => {
      const answer = await fetch('/api/migrations/rehearsal-a/abort', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Cutover-Token': token }, body: '{}' });
      return answer.status;
    }, d.server.token);
    expect(status).toBe(403);
    // A phone's width: one column, nothing wider than the screen; dark colours from the scheme.
    for (const chart of ['weight', '5xx', 'evidence']) expect(await inkOf(p, chart), chart).toBeGreaterThan(300);
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await p.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(17, 20, 24)');
    await p.screenshot({ path: join(shots, 'phone-dark-read-only.png'), fullPage: true });
  });
});
