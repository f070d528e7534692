/**
 * The demo REST function: routes, the 10 KiB body limit, the fault switch, and its per-version EMF
 * application metrics.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PROBE_MARKER_VALUE } from '../../lambda/probe/marker';
import { captureOutput, emfLines } from './helpers';

type Handler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;
const saved = { ...process.env };
let output: ReturnType<typeof captureOutput>;

async function load(env: Record<string, string> = {}): Promise<Handler> {
  process.env = { ...saved, AWS_LAMBDA_FUNCTION_NAME: 'demo-api', AWS_LAMBDA_FUNCTION_VERSION: '7', CUTOVER_APP_METRICS_NAMESPACE: 'CutoverDemoTest', ...env };
  vi.resetModules();
  return (await import('../../lambda/demo/api')).handler as Handler;
}

function request(method: string, path: string, body?: string, isBase64Encoded = false, headers: Record<string, string> = {}): APIGatewayProxyEvent {
  const multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  return { httpMethod: method, path, body: body ?? null, isBase64Encoded, headers, multiValueHeaders, pathParameters: null, queryStringParameters: null, multiValueQueryStringParameters: null, stageVariables: null, requestContext: {} as APIGatewayProxyEvent['requestContext'], resource: '/{proxy+}' };
}

beforeEach(() => {
  output = captureOutput();
});
afterEach(() => {
  output.restore();
  process.env = { ...saved };
});

describe('demo API', () => {
  it('should serve health, channels, and accept events', async () => {
    const handler = await load();
    expect(JSON.parse((await handler(request('GET', '/health'))).body)).toEqual({ status: 'ok', version: '7' });
    const list = JSON.parse((await handler(request('GET', '/channels'))).body);
    expect(list.channels.map((c: { name: string }) => c.name)).toEqual(['deploys', 'alerts', 'chat']);
    const posted = await handler(request('POST', '/events', JSON.stringify({ channel: 'deploys', type: 'started', data: { v: 7 } })));
    expect(posted.statusCode).toBe(202);
    const channel = JSON.parse((await handler(request('GET', '/channels/deploys'))).body);
    expect(channel.recentEvents).toHaveLength(1);
    expect(channel.recentEvents[0]).toMatchObject({ channel: 'deploys', type: 'started', data: { v: 7 } });
  });

  it('should answer 413 above 10 KiB (counting decoded base64 bytes), 400 on bad JSON, 404 and 405 where due', async () => {
    const handler = await load();
    const big = JSON.stringify({ channel: 'chat', type: 'x', data: 'a'.repeat(10 * 1024) });
    expect((await handler(request('POST', '/events', big))).statusCode).toBe(413);
    expect((await handler(request('POST', '/events', Buffer.from(big).toString('base64'), true))).statusCode).toBe(413);
    const justFits = JSON.stringify({ channel: 'chat', type: 'x', data: '' });
    expect((await handler(request('POST', '/events', justFits.padEnd(10 * 1024, ' ')))).statusCode).toBe(202);
    expect((await handler(request('POST', '/events', '{nope'))).statusCode).toBe(400);
    expect((await handler(request('POST', '/events', JSON.stringify({ channel: 'nope', type: 'x' })))).statusCode).toBe(404);
    expect((await handler(request('GET', '/channels/nope'))).statusCode).toBe(404);
    const wrong = await handler(request('DELETE', '/channels'));
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers).toMatchObject({ allow: 'GET' });
    expect((await handler(request('GET', '/nowhere'))).statusCode).toBe(404);
  });

  it('should publish Requests, Errors4xx, Errors5xx and LatencyMs per request with {FunctionName, Version}', async () => {
    const handler = await load();
    await handler(request('GET', '/channels'));
    await handler(request('POST', '/events', 'x'.repeat(20_000)));
    const emf = emfLines(output.records(), 'CutoverDemoTest');
    expect(emf).toHaveLength(2);
    const directive = (emf[0]!._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }).CloudWatchMetrics[0]!;
    expect(directive.Dimensions).toEqual([['FunctionName', 'Version']]);
    expect(directive.Metrics).toEqual([
      { Name: 'Requests', Unit: 'Count' },
      { Name: 'Errors4xx', Unit: 'Count' },
      { Name: 'Errors5xx', Unit: 'Count' },
      { Name: 'LatencyMs', Unit: 'Milliseconds' },
    ]);
    expect(emf[0]).toMatchObject({ FunctionName: 'demo-api', Version: '7', Requests: 1, Errors4xx: 0, Errors5xx: 0 });
    expect(emf[1]).toMatchObject({ Requests: 1, Errors4xx: 1, Errors5xx: 0 });
  });

  it('should fail API requests with 503 at DEMO_FAULT_5XX_RATE, but never /health', async () => {
    const handler = await load({ DEMO_FAULT_5XX_RATE: '1' });
    expect((await handler(request('GET', '/channels'))).statusCode).toBe(503);
    expect((await handler(request('GET', '/health'))).statusCode).toBe(200);
    const emf = emfLines(output.records(), 'CutoverDemoTest');
    expect(emf.map((e) => e.Errors5xx)).toEqual([1, 0]);
  });

  it('should answer probe requests (X-Cutover-Probe: 1) normally but leave them out of its metrics', async () => {
    const handler = await load();
    const probe = { 'X-Cutover-Probe': PROBE_MARKER_VALUE };
    // The probe's deliberate errors get their real answers …
    expect((await handler(request('GET', '/cutover-probe-missing-x', undefined, false, probe))).statusCode).toBe(404);
    expect((await handler(request('POST', '/events', 'x'.repeat(20_000), false, probe))).statusCode).toBe(413);
    expect((await handler(request('TRACE', '/health', undefined, false, probe))).statusCode).toBe(405);
    expect(JSON.parse((await handler(request('GET', '/health', undefined, false, { 'x-cutover-probe': '1' }))).body)).toEqual({ status: 'ok', version: '7' });
    // … and only the user's request is counted.
    await handler(request('GET', '/nowhere'));
    // Any other value of the header is not the marker.
    await handler(request('GET', '/nowhere', undefined, false, { 'X-Cutover-Probe': 'yes' }));
    const emf = emfLines(output.records(), 'CutoverDemoTest');
    expect(emf).toHaveLength(2);
    expect(emf.map((e) => [e.Requests, e.Errors4xx])).toEqual([
      [1, 1],
      [1, 1],
    ]);
  });

  it('fails at load on a fault rate outside 0–1, naming the variable', async () => {
    await expect(load({ DEMO_FAULT_5XX_RATE: '5%' })).rejects.toThrow('environment variable DEMO_FAULT_5XX_RATE must be a number from 0 to 1, got "5%"');
  });
});
