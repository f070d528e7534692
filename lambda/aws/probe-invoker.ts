/**
 * Fresh probes for the controller, run by the probe function.
 *
 * The controller asks for a fresh Keep-Alive probe at the gate and before every weight increase.
 * It used to run the probe engine itself; it now invokes the probe function synchronously with
 * `{ "probeNow": { "side": "new", "migrationKey": "…" } }`, and the probe function probes that
 * migration's configured target for that side (one probe function serves every migration of a
 * stack, each with its own targets in the registry) and returns the result. Why:
 * - one place runs probes, with one network position (a probe function in the VPC that reaches
 *   private load balancers reaches them for the controller too);
 * - the request names a side, never a URL (nor a `connectTo` address or headers: the probe
 *   function's own target for the side carries them), so whoever may invoke the probe function
 *   cannot point it anywhere else;
 * - the controller's bundle does not carry the probe engine (about 36 KB minified), which keeps it
 *   under its size target and its cold start short.
 *
 * The controller's `TableProbes` records the returned result in the migration's partition, as it
 * did with an in-process probe. A probe that cannot run (the invoke fails, times out or returns
 * something else) throws here, and `TableProbes` turns that into an `inconclusive` outcome: never
 * healthy, and never a rollback.
 */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { Side } from '../core/ports';
import { clientConfig, type AwsClientOptions } from './clients';
import type { StoredProbeResult } from './dynamodb-store';
import { probeHealthOf, type ProbeRunner } from './table-probes';

/** What the controller sends to the probe function. */
export interface ProbeNowRequest {
  /**
   * `migrationKey`: whose targets to probe. Always sent by this version's controller; optional in
   * the type so that the probe function can recognise (and refuse with the fix) a request of an
   * older one.
   */
  readonly probeNow: { readonly side: Side; readonly migrationKey?: string };
}

/** What the probe function answers. */
export interface ProbeNowResponse {
  readonly result: StoredProbeResult;
}

/** How long one fresh probe may take in the probe function (its runs, all included), in ms. */
export const PROBE_NOW_MAX_DURATION_MS = 20_000;

/**
 * Client settings for the invoke: one attempt (a fresh probe repeated later measures another
 * moment; the next tick asks again) that may wait for the whole probe plus the function's start.
 */
export function probeInvokeClientConfig(options: Omit<AwsClientOptions, 'requestTimeoutMs' | 'maxAttempts'> = {}) {
  return clientConfig({ ...options, requestTimeoutMs: PROBE_NOW_MAX_DURATION_MS + 10_000, maxAttempts: 1 });
}

/** True when the probe function's event asks for one fresh probe. */
export function isProbeNowRequest(event: unknown): event is ProbeNowRequest {
  const request = (event as { probeNow?: { side?: unknown; migrationKey?: unknown } } | null)?.probeNow;
  const side = request?.side;
  if (request?.migrationKey !== undefined && typeof request.migrationKey !== 'string') return false;
  return side === 'old' || side === 'new';
}

/** The probe function did not answer a fresh probe with a result. */
export class ProbeInvokeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeInvokeError';
  }
}

export interface InvokingProbeRunnerProps {
  /** A client built with `probeInvokeClientConfig()`, once per container. */
  readonly lambda: LambdaClient;
  /** Name or ARN of the probe function. */
  readonly functionName: string;
  /** The migration whose targets the probe function probes (its registry key). */
  readonly migrationKey: string;
}

/** A `ProbeRunner` that asks the probe function (see the module comment). */
export function createInvokingProbeRunner(props: InvokingProbeRunnerProps): ProbeRunner {
  if (!props.functionName) throw new TypeError('functionName of the probe function must be a non-empty string');
  if (!props.migrationKey) throw new TypeError('migrationKey of the probed migration must be a non-empty string');
  return async (target) => {
    const request: ProbeNowRequest = { probeNow: { side: target.side, migrationKey: props.migrationKey } };
    const response = await props.lambda.send(
      new InvokeCommand({
        FunctionName: props.functionName,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify(request)),
      }),
    );
    const text = response.Payload ? new TextDecoder().decode(response.Payload) : '';
    if (response.FunctionError) {
      throw new ProbeInvokeError(`probe function ${props.functionName} failed (${response.FunctionError}): ${text.slice(0, 300)}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProbeInvokeError(`probe function ${props.functionName} answered with no JSON: ${JSON.stringify(text.slice(0, 120))}`);
    }
    const result = (body as Partial<ProbeNowResponse> | null)?.result;
    if (!isResult(result, target.side)) {
      throw new ProbeInvokeError(`probe function ${props.functionName} answered without a ${target.side} result: ${text.slice(0, 300)}`);
    }
    // The synthetic health (requests, 5XX and, when counted, 4XX) is kept only when well-formed:
    // a damaged figure is dropped, not guessed, and never costs the verdict.
    const { health: raw, ...rest } = result;
    const health = probeHealthOf(raw);
    return { ...rest, ...(health ? { health } : {}) };
  };
}

function isResult(value: unknown, side: Side): value is StoredProbeResult {
  const r = value as Partial<StoredProbeResult> | null | undefined;
  return (
    !!r &&
    r.side === side &&
    (r.verdict === 'ok' || r.verdict === 'desync' || r.verdict === 'inconclusive') &&
    typeof r.atMs === 'number' &&
    Number.isFinite(r.atMs) &&
    typeof r.summary === 'string' &&
    typeof r.findings === 'number'
  );
}
