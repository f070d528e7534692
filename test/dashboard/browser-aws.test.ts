/**
 * An AWS migration's page in a real browser (Debian's Chromium through playwright-core): the
 * table in dynalite, CloudWatch mocked. CloudWatch's per-minute series are drawn beside the judge's
 * decision evidence and labelled as CloudWatch data; a throttled read leaves the page up with the
 * last data and a stale marker, and missing credentials are said in the page. Screenshots go to
 * $CUTOVER_SCREENSHOTS (default: a new temporary folder). Skipped, with one line, without Chromium.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { MigrationStatus } from '../../lambda/core/model';
import { AwsMigrationSource } from '../../ops';
import { CloudWatchLiveMetrics } from '../../dashboard/cloudwatch';
import { DashboardServer } from '../../dashboard/server';
import { makeEvent, makeRecord } from '../aws/fixtures';
import { startDynalite, type LocalDynamo } from '../aws/helpers';
import { judged } from './helpers';

// The page's globals, as the callbacks run in the browser see them (no DOM library here).
declare const window: any;
declare const document: any;

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) console.log(`dashboard AWS browser test: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`);
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const TABLE = 'cutover-dashboard-browser';
const MINUTE = 60_000;
const cloudWatch = new CloudWatchClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const cwMock = mockClient(cloudWatch);

/** Twenty minutes of datapoints: the new side's 5XX rate climbs to 6 % in its last minutes. */
function minutes(queries: readonly MetricDataQuery[], endMs: number) {
  const times = Array.from({ length: 20 }, (_, i) => endMs - (20 - i) * MINUTE);
  const value = (id: string, i: number): number | undefined => {
    if (id === 'ctl_weight') return i < 10 ? 10 : 50;
    if (id === 'ctl_old_capacity' || id === 'ctl_pinned_capacity') return 5;
    if (id === 'new_invocations') return i < 10 ? 100 : 500;
    if (id === 'old_invocations') return i < 10 ? 900 : 500;
    if (id === 'new_errors5xx') return i < 16 ? 0 : 30;
    if (id === 'new_errors4xx' || id === 'old_errors4xx') return 3;
    if (id === 'new_durationP99') return 120 + i;
    if (id === 'old_durationP99') return 100;
    return undefined;
  };
  return queries.map((q) => {
    const points = times.map((at, i) => [at, value(q.Id!, i)] as const).filter((p): p is readonly [number, number] => p[1] !== undefined);
    return { Id: q.Id, StatusCode: 'Complete', Timestamps: points.map(([at]) => new Date(at)), Values: points.map(([, v]) => v) };
  });
}

describe.skipIf(!available)('AWS dashboard page in Chromium', () => {
  let browser: Browser;
  let dynamo: LocalDynamo;
  let server: DashboardServer;
  let base: string;
  let shots: string;

  beforeAll(async () => {
    const now = Date.now();
    dynamo = await startDynalite();
    await dynamo.createTable(TABLE);
    const store = new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE });
    const id = 'api:live:2';
    const at = (minutesAgo: number) => now - minutesAgo * MINUTE;
    const events = [
      makeEvent(id, 1, { atMs: at(22), weight: 0, step: -1, type: 'created' }),
      makeEvent(id, 2, { atMs: at(21), weight: 10, step: 0, type: 'advanced' }),
      makeEvent(id, 3, { atMs: at(15), weight: 10, step: 0, signals: judged(at(15), 500, 0, 0) }),
      makeEvent(id, 4, { atMs: at(11), weight: 50, step: 1, type: 'advanced', signals: judged(at(11), 520, 1, 0.1) }),
      makeEvent(id, 5, { atMs: at(3), weight: 50, step: 1, signals: judged(at(3), 2500, 150, 3.5) }),
    ];
    await store.save(id, makeRecord(id, { status: MigrationStatus.BAKING, weight: 50, step: 1, eventSeq: events.length, createdAtMs: at(22), updatedAtMs: at(3) }), 0, events);
    await store.putPointer('api:live', { migrationId: id, oldVersion: '1', newVersion: '2', createdAtMs: at(22) }, undefined);
    const source = new AwsMigrationSource({ tableName: TABLE, documents: dynamo.clients.documents });
    server = new DashboardServer({ source, sourceLabel: `table ${TABLE}`, pollMs: 200, liveMetrics: new CloudWatchLiveMetrics({ cloudWatch, minIntervalMs: 0 }) });
    base = (await server.start()).url.replace(/\/$/, '');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    shots = process.env.CUTOVER_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'cutover-dashboard-shots-'));
    mkdirSync(shots, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await dynamo?.close();
  });

  it("should draw CloudWatch's series beside the judge's, then keep them, marked stale, when CloudWatch throttles", async () => {
    const end = Math.floor(Date.now() / MINUTE) * MINUTE;
    cwMock.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: MetricDataQuery[] }) => ({ MetricDataResults: minutes(input.MetricDataQueries, end) }));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await context.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await p.goto(`${base}/migrations/${encodeURIComponent('api:live')}?token=${server.token}`);
    await p.waitForFunction(() => window.cutoverDashboard.lastView?.cloudWatch?.status === 'live', null, { timeout: 10_000 });
    await expect.poll(() => p.locator('#cloudwatch-status').textContent()).toBe('live');
    expect(await p.locator('#cloudwatch').textContent()).toMatch(/16 metrics \(GetMetricData: \$0\.01 per 1,000\)/);
    // The judge's three windows and CloudWatch's twenty minutes on one time axis.
    await expect.poll(async () => Number(await p.locator('#chart-5xx').getAttribute('data-points'))).toBe(23);
    expect(await p.locator('#chart-5xx .u-legend').textContent()).toMatch(/new \(CloudWatch\).*old \(CloudWatch\)/);
    expect(await p.locator('#chart-weight .u-legend').textContent()).toMatch(/Weight \(CloudWatch\)/);
    expect(await p.locator('#chart-capacity .u-legend').textContent()).toMatch(/OldCapacity \(CloudWatch\)/);
    await p.screenshot({ path: join(shots, 'aws-cloudwatch.png'), fullPage: true });

    cwMock.reset();
    cwMock.on(GetMetricDataCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    await p.waitForFunction(() => window.cutoverDashboard.lastView?.cloudWatch?.status === 'stale', null, { timeout: 10_000 });
    await expect.poll(() => p.locator('#cloudwatch-status').textContent()).toMatch(/^stale/);
    expect(await p.locator('#cloudwatch-message').textContent()).toMatch(/throttled .*showing the data read at/);
    // Not an error page: the migration, its judge's evidence and the CloudWatch data are all still there.
    expect(await p.locator('#summary .badge').textContent()).toBe('baking');
    expect(Number(await p.locator('#chart-5xx').getAttribute('data-points'))).toBe(23);
    expect(await p.locator('#conn').textContent()).toBe('live');
    await p.screenshot({ path: join(shots, 'aws-cloudwatch-stale.png'), fullPage: true });

    cwMock.reset();
    cwMock.on(GetMetricDataCommand).rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    await expect.poll(() => p.locator('#cloudwatch-status').textContent(), { timeout: 10_000 }).toBe('no credentials');
    expect(await p.locator('#cloudwatch-message').textContent()).toMatch(/no usable AWS credentials.*AWS_PROFILE/);
    expect(errors).toEqual([]);
    await context.close();
  }, 40_000);
});
