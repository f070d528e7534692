/**
 * Fresh probes for the controller through the probe function: the invoke, every way it can fail
 * (each becomes an inconclusive outcome in TableProbes, never a healthy one), and the client's wait.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PROBE_NOW_MAX_DURATION_MS,
  ProbeInvokeError,
  createInvokingProbeRunner,
  isProbeNowRequest,
  probeInvokeClientConfig,
} from '../../lambda/aws/probe-invoker';
import { TableProbes } from '../../lambda/aws/table-probes';

const lambda = new LambdaClient({ region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
const mock = mockClient(lambda);
afterEach(() => mock.reset());

const target = { side: 'new' as const, url: 'https://new.example.com/' };
const result = { side: 'new', verdict: 'ok', atMs: 1_700_000_000_000, summary: 'ok: 12 steps aligned', findings: 0, url: target.url };
const payload = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)) as never;
const runner = createInvokingProbeRunner({ lambda, functionName: 'probe-fn', migrationKey: 'api:live' });

describe('fresh probes through the probe function', () => {
  it('should name the side and the migration (never a URL) and return the function\'s result', async () => {
    mock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ result }) });
    expect(await runner(target)).toEqual(result);
    const sent = mock.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(sent).toMatchObject({ FunctionName: 'probe-fn', InvocationType: 'RequestResponse' });
    expect(JSON.parse(new TextDecoder().decode(sent.Payload as Uint8Array))).toEqual({ probeNow: { side: 'new', migrationKey: 'api:live' } });
    expect(isProbeNowRequest({ probeNow: { side: 'new', migrationKey: 'api:live' } })).toBe(true);
    // An older controller's request (no key) is still recognised, so that the probe function can refuse it with the fix.
    expect(isProbeNowRequest({ probeNow: { side: 'new' } })).toBe(true);
    expect(isProbeNowRequest({ probeNow: { side: 'new', migrationKey: 7 } })).toBe(false);
    expect(() => createInvokingProbeRunner({ lambda, functionName: 'probe-fn', migrationKey: '' })).toThrow(/migrationKey/);
    expect(isProbeNowRequest({ probeNow: { side: 'http://elsewhere' } })).toBe(false);
    expect(isProbeNowRequest({ source: 'aws.events' })).toBe(false);
  });

  it.each([
    ['a function error', { StatusCode: 200, FunctionError: 'Unhandled', Payload: payload({ errorMessage: 'no new target is configured' }) }, /probe function probe-fn failed \(Unhandled\): .*no new target is configured/],
    ['no JSON', { StatusCode: 200, Payload: payload('<html>') }, /answered with no JSON: "<html>"/],
    ['a result of the other side', { StatusCode: 200, Payload: payload({ result: { ...result, side: 'old' } }) }, /answered without a new result/],
    ['a result without a verdict', { StatusCode: 200, Payload: payload({ result: { ...result, verdict: 'fine' } }) }, /answered without a new result/],
  ])('should fail with ProbeInvokeError on %s', async (_name, answer, message) => {
    mock.on(InvokeCommand).resolves(answer);
    const error = await runner(target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeInvokeError);
    expect(String(error)).toMatch(message);
  });

  it("should pass the probe's synthetic health on, and drop one that is not well-formed without failing the probe", async () => {
    mock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ result: { ...result, health: { requests: 130, errors5xx: 3 } } }) });
    expect(await runner(target)).toEqual({ ...result, health: { requests: 130, errors5xx: 3 } });
    mock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ result: { ...result, health: { requests: 3, errors5xx: 30 } } }) });
    expect(await runner(target)).toEqual(result);
    // The 4XX count (the probe's deliberate 404, 413 … included) comes along; a damaged one is dropped alone.
    mock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ result: { ...result, health: { requests: 130, errors4xx: 48, errors5xx: 3 } } }) });
    expect(await runner(target)).toEqual({ ...result, health: { requests: 130, errors4xx: 48, errors5xx: 3 } });
    mock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ result: { ...result, health: { requests: 130, errors4xx: 200, errors5xx: 3 } } }) });
    expect(await runner(target)).toEqual({ ...result, health: { requests: 130, errors5xx: 3 } });
  });

  it("should send only the side for a target with connectTo and headers: the probe function's own target has them", async () => {
    mock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ result }) });
    await runner({ ...target, connectTo: 'alb-new.example.com', headers: { 'X-Cutover-Probe-Side': 'new' } });
    const sent = mock.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(JSON.parse(new TextDecoder().decode(sent.Payload as Uint8Array))).toEqual({ probeNow: { side: 'new', migrationKey: 'api:live' } });
  });

  it('should make the controller call a probe that could not run inconclusive, never ok', async () => {
    mock.on(InvokeCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' }));
    const recorded: unknown[] = [];
    const probes = new TableProbes({
      store: { putProbeResult: async (_id: string, r: unknown) => void recorded.push(r) } as never,
      migrationId: 'm',
      targets: [target],
      runner,
      now: () => 5,
      onWarning: () => undefined,
    });
    const outcome = await probes.probeNow('new');
    expect(outcome).toMatchObject({ side: 'new', verdict: 'inconclusive' });
    expect(outcome.summary).toMatch(/failed to run: TooManyRequestsException: Rate exceeded/);
    expect(recorded).toEqual([]);
  });

  it('should wait for a whole fresh probe, once', async () => {
    const config = probeInvokeClientConfig({ region: 'us-east-1' });
    expect(config.maxAttempts).toBe(1);
    const client = new LambdaClient(config);
    const options = await (client.config.requestHandler as unknown as { configProvider: Promise<{ requestTimeout?: number }> }).configProvider;
    expect(options.requestTimeout).toBeGreaterThan(PROBE_NOW_MAX_DURATION_MS);
    client.destroy();
  });
});
