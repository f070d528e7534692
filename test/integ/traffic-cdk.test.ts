/**
 * The traffic loop against a real loopback server, the deployer's command lines with a fake exec,
 * and the run's cost estimate.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CdkCli, INTEG_APP } from '../../integ/cdk';
import { INTEG_PRICES, estimateRunCost } from '../../integ/cost';
import { TrafficLoop, describeTraffic } from '../../integ/traffic';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** A server answering 200, every third request 503, after `delayMs`; counts what it answered. */
async function serve(delayMs = 0): Promise<{ url: string; answered: Record<number, number> }> {
  const answered: Record<number, number> = {};
  let n = 0;
  server = createServer((_req, res) => {
    const status = ++n % 3 === 0 ? 503 : 200;
    setTimeout(() => {
      answered[status] = (answered[status] ?? 0) + 1;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    }, delayMs);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/prod/channels`, answered };
}

describe('TrafficLoop', () => {
  it('sends at its rate and counts every answer by status, as the server answered them', async () => {
    const { url, answered } = await serve();
    const loop = new TrafficLoop({ url, ratePerSecond: 40 });
    const started = Date.now();
    loop.start();
    // Until the server answered 9 (three of them 503), bounded; a busy machine only slows it down.
    while ((answered[200] ?? 0) + (answered[503] ?? 0) < 9 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
    const report = await loop.stop();
    const elapsedS = (Date.now() - started) / 1000;
    expect(report.sent).toBeGreaterThanOrEqual(9);
    // Never faster than its rate (an interval timer never catches up).
    expect(report.sent).toBeLessThanOrEqual(Math.ceil(40 * elapsedS) + 1);
    expect(report.byStatus).toEqual(Object.fromEntries(Object.entries(answered).map(([k, v]) => [k, v])));
    expect(report.failed).toBe(0);
    expect(loop.ok()).toBe(answered[200]);
    expect(describeTraffic(report)).toMatch(/^\d+ requests: 200 ×\d+, 503 ×\d+$/);
  });

  it('keeps at most maxInFlight requests waiting, and stops by itself at maxDurationMs', async () => {
    const { url } = await serve(400);
    const loop = new TrafficLoop({ url, ratePerSecond: 50, maxInFlight: 2, maxDurationMs: 300 });
    loop.start();
    await new Promise((r) => setTimeout(r, 700));
    const sentAtHalt = loop.report().sent;
    await new Promise((r) => setTimeout(r, 200));
    const report = await loop.stop();
    expect(report.sent).toBe(sentAtHalt);
    expect(report.skipped).toBeGreaterThan(0);
    expect(report.sent).toBeLessThanOrEqual(4);
  });

  it('counts a request without an answer as failed (timeout)', async () => {
    const { url } = await serve(1_000);
    const loop = new TrafficLoop({ url, ratePerSecond: 10, requestTimeoutMs: 100, maxDurationMs: 150 });
    loop.start();
    await new Promise((r) => setTimeout(r, 200));
    const report = await loop.stop();
    expect(report.failed).toBe(report.sent);
    expect(report.sent).toBeGreaterThan(0);
  });

  it('refuses a rate above the demo stage throttle, with the value', () => {
    expect(() => new TrafficLoop({ url: 'https://x.test/', ratePerSecond: 80 })).toThrow('ratePerSecond must be above 0 and at most 50 (the demo stage\'s throttle), got 80');
  });
});

describe('CdkCli', () => {
  it('deploys through the integration app with the stack name as context, and reads the outputs file', async () => {
    const workDir = await mkdtemp(path.join(tmpdir(), 'integ-cdk-'));
    const seen: { command: string; args: readonly string[]; cwd: string }[] = [];
    const cdk = new CdkCli({
      stackName: 'CutoverInteg-0612-ab12',
      cwd: '/repo',
      workDir,
      context: { 'cutover:apiGatewayAccountLogging': 'true' },
      exec: async (command, args, cwd) => {
        seen.push({ command, args, cwd });
        // Only deploy has an outputs file (indexOf -1 would pick the first argument and write it).
        const at = args.indexOf('--outputs-file');
        const file = at >= 0 ? args[at + 1] : undefined;
        if (file) await writeFile(file, JSON.stringify({ 'CutoverInteg-0612-ab12': { ApiUrl: 'https://a/prod/' } }));
        return 0;
      },
    });
    try {
      expect(await cdk.deploy({ 'cutover:release': '2', 'cutover:faultRate': '0.5' })).toEqual({ ApiUrl: 'https://a/prod/' });
      await cdk.destroy();
      expect(seen[0]!.command).toBe('npx');
      expect(seen[0]!.cwd).toBe('/repo');
      expect(seen[0]!.args.join(' ')).toBe(
        `--no-install cdk deploy CutoverInteg-0612-ab12 --require-approval never --outputs-file ${path.join(workDir, 'outputs.json')} ` +
          '-c cutover:apiGatewayAccountLogging=true -c cutover:release=2 -c cutover:faultRate=0.5 -c cutover:stackName=CutoverInteg-0612-ab12 ' +
          `--app ${INTEG_APP} --output ${path.join(workDir, 'cdk.out')}`,
      );
      expect(seen[1]!.args.slice(0, 5)).toEqual(['--no-install', 'cdk', 'destroy', 'CutoverInteg-0612-ab12', '--force']);
      expect(seen[1]!.args).toContain('cutover:stackName=CutoverInteg-0612-ab12');
      expect(JSON.parse(await readFile(path.join(workDir, 'outputs.json'), 'utf8'))).toHaveProperty('CutoverInteg-0612-ab12');
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });

  it('a failing command fails with its exit code; a bad stack name is refused with the value', async () => {
    const cdk = new CdkCli({ stackName: 'Integ', cwd: '.', workDir: '.', exec: async () => 3 });
    await expect(cdk.destroy()).rejects.toThrow('npx cdk destroy Integ exited with 3');
    expect(() => new CdkCli({ stackName: 'bad_name', cwd: '.', workDir: '.' })).toThrow(/got "bad_name"/);
  });
});

describe('estimateRunCost', () => {
  it('adds up its lines from the measured minutes and requests', () => {
    const cost = estimateRunCost({ minutes: 25, apiRequests: 7_500, controllerUsdPerDay: 0.15 });
    expect(cost.totalUsd).toBeCloseTo(cost.lines.reduce((s, l) => s + l.usd, 0), 12);
    expect(cost.lines.find((l) => l.item === 'API Gateway requests')!.usd).toBeCloseTo(7_500 * INTEG_PRICES.restApiRequest.usd, 12);
    expect(cost.lines.find((l) => l.item === 'controller and probe')!.usd).toBeCloseTo((0.15 * 25) / 1440, 12);
    // More traffic, more cost; a longer stand, more cost.
    expect(estimateRunCost({ minutes: 25, apiRequests: 15_000 }).totalUsd).toBeGreaterThan(estimateRunCost({ minutes: 25, apiRequests: 7_500 }).totalUsd);
    expect(estimateRunCost({ minutes: 90, apiRequests: 0 }).totalUsd).toBeGreaterThan(estimateRunCost({ minutes: 25, apiRequests: 0 }).totalUsd);
    expect(() => estimateRunCost({ minutes: -1, apiRequests: 0 })).toThrow(/got \{"minutes":-1/);
  });
});
